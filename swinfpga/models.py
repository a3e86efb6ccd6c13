"""Architecture specs of the reference models (shapes only; weights come from training or
from :func:`swinfpga.ir.build.random_model`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .fixed import Fmt

GLOBAL = "global"


@dataclass(frozen=True)
class StageSpec:
    """One Swin stage: ``depth`` blocks; odd blocks use ``shift`` (0 = never shifted).
    ``merge`` puts a PatchMerging before the stage.

    ``window``: an int (square; shrinks to the map on small maps, Swin's rule), ``(wh, ww)``
    (rectangular; used exactly as given) or ``"global"`` (one window over the whole map)."""

    depth: int
    heads: int
    window: int | tuple[int, int] | str
    shift: int
    merge: bool = False


@dataclass(frozen=True)
class SwinSpec:
    """A Swin classifier (or a bare block stack when ``classes == 0``).

    ``img`` is (H, W, C_in) of the input; with ``patch == 0`` the input already is a token map
    ``(H, W, embed)`` and there is no patch embedding.  ``norm``: ``bn`` (BatchNorm, folded into
    the next linear layer) or ``ln`` (integer LayerNorm with an rsqrt table).  ``act``: ``relu``
    or ``gelu`` (table).
    """

    name: str
    img: tuple[int, int, int]
    patch: int
    embed: int
    stages: tuple[StageSpec, ...]
    mlp_ratio: int = 2
    act: str = "relu"
    norm: str = "bn"
    classes: int = 10
    in_fmt: Fmt = field(default_factory=lambda: Fmt(False, 5, 1))
    seq: bool = False  # the input is a token sequence (tokens, features), held as an (N, 1, F) map
    rel_bias: bool = True  # relative position bias in attention (sequences: usually off)
    pad_mask: bool = False  # sequences: tokens whose input features are all 0 are padding (not attended/pooled)

    def stage_window(self, stage: int) -> tuple[int, int]:
        """``(wh, ww)`` of a stage's attention window at that stage's resolution.

        ``global`` is the whole map; an int window on a map not larger than it shrinks to
        ``min(H, W)`` (Swin's rule, images; on a sequence an int ``n`` is ``(n, 1)``, never
        shrunk); ``(wh, ww)`` is used as given."""
        st = self.stages[stage]
        (h, w), _ = self.stage_dims()[stage]
        if st.window == GLOBAL:
            return h, w
        if isinstance(st.window, tuple | list):
            return int(st.window[0]), int(st.window[1])
        win = int(st.window)
        if self.seq:  # a sequence: an int window is that many consecutive tokens, never shrunk
            return win, 1
        if min(h, w) <= win:
            win = min(h, w)
        return win, win

    def stage_dims(self) -> list[tuple[tuple[int, int], int]]:
        """((H, W), C) at each stage."""
        h, w = (self.img[0] // self.patch, self.img[1] // self.patch) if self.patch else self.img[:2]
        c = self.embed
        out = []
        for st in self.stages:
            if st.merge:
                h, w, c = h // 2, w // 2, 2 * c
            out.append(((h, w), c))
        return out

    def block_shift(self, stage: int, block: int) -> int:
        """Shift of a block: odd blocks shift, and only when the resolution exceeds the window."""
        st = self.stages[stage]
        (h, w), _ = self.stage_dims()[stage]
        wh, ww = self.stage_window(stage)
        if block % 2 == 0 or h <= wh or w <= ww:
            return 0
        return st.shift


# Pixel values of sklearn's digits are integers 0..16: input codes are the pixels themselves,
# read as ufixed<5,1> (value = pixel / 16).
SWIN_DIGITS = SwinSpec(
    name="swin-digits",
    img=(8, 8, 1),
    patch=2,
    embed=16,
    stages=(StageSpec(depth=2, heads=2, window=2, shift=1), StageSpec(depth=2, heads=2, window=2, shift=0, merge=True)),
    mlp_ratio=2,
    act="relu",
    norm="bn",
)

SWIN_DIGITS_LN = SwinSpec(
    name="swin-digits-ln",
    img=(8, 8, 1),
    patch=2,
    embed=16,
    stages=SWIN_DIGITS.stages,
    mlp_ratio=2,
    act="gelu",
    norm="ln",
)

# Swin-Free: no cyclic shift; window size varies across stages instead.
SWIN_FREE_DIGITS = SwinSpec(
    name="swin-free-digits",
    img=(8, 8, 1),
    patch=2,
    embed=16,
    stages=(StageSpec(depth=2, heads=2, window=2, shift=0), StageSpec(depth=2, heads=2, window=2, shift=0, merge=True)),
    mlp_ratio=2,
    act="relu",
    norm="bn",
)

# One full-size Swin-T stage-1 block on a 56x56x96 token map (input = tokens).
SWIN_T_STAGE1 = SwinSpec(
    name="swin-t-stage1",
    img=(56, 56, 96),
    patch=0,
    embed=96,
    stages=(StageSpec(depth=1, heads=3, window=7, shift=3),),
    mlp_ratio=4,
    act="gelu",
    norm="ln",
    classes=0,
    in_fmt=Fmt(True, 8, 3, "RND", "SAT"),
)

# Each digits image as a sequence of 8 row tokens of 8 pixels, one global attention window over the 8 tokens.
# The relative position bias (a (15, heads) table along the sequence) is the only source of token order.
SEQ_DIGITS = SwinSpec(
    name="seq-digits",
    img=(8, 1, 8),
    patch=1,
    embed=16,
    stages=(StageSpec(depth=2, heads=2, window=GLOBAL, shift=0),),
    mlp_ratio=2,
    act="relu",
    norm="bn",
    seq=True,
    rel_bias=True,
)

SPECS: dict[str, SwinSpec] = {
    s.name: s for s in (SWIN_DIGITS, SWIN_DIGITS_LN, SWIN_FREE_DIGITS, SWIN_T_STAGE1, SEQ_DIGITS)
}


def get_spec(name: str) -> SwinSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown reference model {name!r}; known: {', '.join(SPECS)}") from None
