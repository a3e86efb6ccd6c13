"""Typed IR nodes.  Every tensor is a batch of integer codes; the per-sample layout is
``(H, W, C)`` for token maps and ``(C,)`` after pooling.  Each node states its formats; the
integer semantics are implemented once in :mod:`swinfpga.ops` and mirrored by the back ends.

All ``np.ndarray`` fields hold ``int64`` codes in the format named next to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SwinfpgaError
from ..fixed import Fmt, FormatError
from ..lut import Lut, SoftmaxSpec


class IRError(SwinfpgaError, ValueError):
    """The IR is inconsistent (shapes, formats, windows) or uses something unsupported."""


@dataclass(frozen=True, eq=False)
class Linear:
    """``y = requant(x @ weight + bias, out_fmt)`` on the last axis.

    weight: (in, out) codes of ``w_fmt``; bias: (out,) codes of ``b_fmt`` (or None).  The
    accumulator is exact (frac = x.frac + w_fmt.frac); the bias is aligned to it by a left shift,
    so ``b_fmt.frac`` must not exceed the accumulator's fraction bits.
    """

    weight: np.ndarray
    w_fmt: Fmt
    bias: np.ndarray | None
    b_fmt: Fmt | None
    out_fmt: Fmt

    def __post_init__(self) -> None:
        w = np.asarray(self.weight)
        if w.ndim != 2:
            raise IRError(f"Linear weight must be 2-D (in, out), got shape {w.shape}")
        object.__setattr__(self, "weight", self.w_fmt.check_codes(w, "Linear weight"))
        if self.bias is not None:
            if self.b_fmt is None:
                raise IRError("Linear bias given without b_fmt")
            b = self.b_fmt.check_codes(np.asarray(self.bias), "Linear bias")
            if b.shape != (w.shape[1],):
                raise IRError(f"Linear bias shape {b.shape} != ({w.shape[1]},)")
            object.__setattr__(self, "bias", b)

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[1])

    def acc_frac(self, in_fmt: Fmt) -> int:
        return in_fmt.frac + self.w_fmt.frac

    def check_input(self, in_fmt: Fmt, where: str) -> None:
        if self.b_fmt is not None and self.b_fmt.frac > self.acc_frac(in_fmt):
            raise IRError(
                f"{where}: bias has {self.b_fmt.frac} fraction bits but the accumulator only "
                f"{self.acc_frac(in_fmt)}; quantize the bias to <= {self.acc_frac(in_fmt)} fraction bits"
            )


@dataclass(frozen=True, eq=False)
class Node:
    name: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, eq=False)
class Input(Node):
    shape: tuple[int, ...]
    fmt: Fmt


@dataclass(frozen=True, eq=False)
class PatchEmbed(Node):
    """Non-overlapping ``patch x patch`` patches -> Linear.  Patch vector order is
    ``(dy, dx, c)`` row-major (a Conv2D kernel ``(kh, kw, cin, cout)`` reshaped)."""

    src: str
    patch: int
    linear: Linear

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True, eq=False)
class WindowAttention(Node):
    """(Shifted-)window multi-head self-attention as in Swin, on an ``(H, W, C)`` map.

    roll(-shift) -> window partition (row-major windows, row-major tokens) -> q, k, v Linear
    (q's weights/bias already carry ``head_dim**-0.5``) -> scores = q k^T + relative position bias
    (``rel_bias`` table ``((2wh-1)*(2ww-1), heads)`` codes of ``bias_fmt``, indexed as in Swin;
    ``None`` = no bias) -> requant to ``score_fmt`` -> integer softmax (cross-region pairs of
    shifted windows excluded) -> p v requant to ``attn_fmt`` -> proj Linear -> window reverse ->
    roll(+shift).  Channel ``c`` of q/k/v belongs to head ``c // head_dim``.

    ``window`` is an int for a square window (as before) or ``(wh, ww)`` for a rectangular one;
    :attr:`window_hw` always gives ``(wh, ww)``.  A window equal to the resolution is global
    attention; a 1-D sequence of N tokens is an ``(N, 1)`` map with window ``(N, 1)``.
    """

    src: str
    resolution: tuple[int, int]
    dim: int
    heads: int
    window: int | tuple[int, int]
    shift: int
    q: Linear
    k: Linear
    v: Linear
    rel_bias: np.ndarray | None
    bias_fmt: Fmt
    score_fmt: Fmt
    softmax: SoftmaxSpec
    attn_fmt: Fmt
    proj: Linear
    mask: str | None = None  # a TokenMask node: padded tokens are not attended to (keys excluded)

    def __post_init__(self) -> None:
        wh, ww = _window_hw(self.window, self.name)
        if wh == ww:
            object.__setattr__(self, "window", wh)  # square windows stay ints (back ends read an int)
        else:
            object.__setattr__(self, "window", (wh, ww))
        object.__setattr__(self, "resolution", tuple(int(v) for v in self.resolution))
        h, w = self.resolution
        if h % wh or w % ww:
            raise IRError(
                f"{self.name}: window {wh if wh == ww else f'{wh}x{ww}'} does not divide the resolution {h}x{w}; "
                "pick a window size that divides both sides (or pad the input)"
            )
        if self.dim % self.heads:
            raise IRError(f"{self.name}: dim {self.dim} not divisible by {self.heads} heads")
        if not 0 <= self.shift < min(wh, ww):
            raise IRError(f"{self.name}: shift {self.shift} must be in [0, min(window)={min(wh, ww)})")
        if self.shift and (h <= wh or w <= ww):
            raise IRError(f"{self.name}: shift must be 0 when the resolution is not larger than the window")
        if self.rel_bias is not None:
            nb = (2 * wh - 1) * (2 * ww - 1)
            rb = self.bias_fmt.check_codes(np.asarray(self.rel_bias), f"{self.name} relative position bias")
            if rb.shape != (nb, self.heads):
                raise IRError(f"{self.name}: rel_bias shape {rb.shape} != ({nb}, {self.heads})")
            object.__setattr__(self, "rel_bias", rb)
        if self.softmax.n != wh * ww:
            raise IRError(f"{self.name}: softmax row length {self.softmax.n} != window tokens {wh * ww}")
        if self.softmax.score_fmt != self.score_fmt:
            raise IRError(f"{self.name}: softmax designed for {self.softmax.score_fmt}, scores are {self.score_fmt}")
        for nm, lin, (ni, no) in (("q", self.q, (self.dim, self.dim)), ("k", self.k, (self.dim, self.dim)),
                                  ("v", self.v, (self.dim, self.dim)), ("proj", self.proj, (self.dim, self.dim))):
            if (lin.n_in, lin.n_out) != (ni, no):
                raise IRError(f"{self.name}.{nm}: weight shape {(lin.n_in, lin.n_out)} != {(ni, no)}")

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,) if self.mask is None else (self.src, self.mask)

    @property
    def window_hw(self) -> tuple[int, int]:
        """``(wh, ww)`` of the window (square windows: ``(window, window)``)."""
        return _window_hw(self.window, self.name)

    @property
    def is_square(self) -> bool:
        wh, ww = self.window_hw
        return wh == ww

    @property
    def is_global(self) -> bool:
        """One window over the whole map."""
        return self.window_hw == tuple(self.resolution)

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def tokens(self) -> int:
        wh, ww = self.window_hw
        return wh * ww

    @property
    def n_windows(self) -> int:
        wh, ww = self.window_hw
        return (self.resolution[0] // wh) * (self.resolution[1] // ww)

    def bias_matrix(self) -> np.ndarray:
        """(heads, N, N) bias codes gathered with Swin's relative position index (zeros without a table)."""
        if self.rel_bias is None:
            return np.zeros((self.heads, self.tokens, self.tokens), dtype=np.int64)
        idx = relative_position_index(self.window_hw)
        return self.rel_bias[idx.reshape(-1)].reshape(self.tokens, self.tokens, self.heads).transpose(2, 0, 1)

    def valid_mask(self) -> np.ndarray:
        """(n_windows, N, N) bool: False for cross-region pairs of the shifted-window mask."""
        return shift_valid_mask(self.resolution, self.window_hw, self.shift)


def _window_hw(window: int | tuple[int, int] | list[int], where: str) -> tuple[int, int]:
    if isinstance(window, int | np.integer) and not isinstance(window, bool):
        wh = ww = int(window)
    elif isinstance(window, tuple | list) and len(window) == 2 and all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in window):
        wh, ww = int(window[0]), int(window[1])
    else:
        raise IRError(f"{where}: window {window!r} must be an int or a pair (wh, ww) of ints")
    if wh < 1 or ww < 1:
        raise IRError(f"{where}: window {window!r} must be positive")
    return wh, ww


@dataclass(frozen=True, eq=False)
class Mlp(Node):
    """fc1 -> ReLU (requant to ``hidden_fmt``) or GELU table (``hidden_fmt = gelu.out_fmt``) -> fc2."""

    src: str
    fc1: Linear
    act: str  # relu | gelu
    hidden_fmt: Fmt
    fc2: Linear
    gelu: Lut | None = None

    def __post_init__(self) -> None:
        if self.act not in ("relu", "gelu"):
            raise IRError(f"{self.name}: activation {self.act!r} unsupported; use relu or gelu")
        if self.act == "gelu":
            if self.gelu is None:
                raise IRError(f"{self.name}: GELU needs a lookup table")
            if self.gelu.in_fmt != self.fc1.out_fmt or self.gelu.out_fmt != self.hidden_fmt:
                raise IRError(f"{self.name}: GELU table formats do not match fc1.out_fmt / hidden_fmt")

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True, eq=False)
class LayerNorm(Node):
    """Per-token LayerNorm over C channels, integer form::

        mean = requant(sum(x) * inv_c, x.frac + inv_frac, mean_fmt)
        d    = x - mean                                  (exact, frac mean_fmt.frac)
        var  = requant(sum(d*d) * inv_c, 2*mean.frac + inv_frac, var_fmt)
        y    = requant(d * RSQRT[var], mean.frac + rsqrt.frac, norm_fmt)
        out  = requant(y * gamma + beta, norm.frac + g_fmt.frac, out_fmt)

    ``inv_c = round(2**inv_frac / C)``.
    """

    src: str
    inv_c: int
    inv_frac: int
    mean_fmt: Fmt
    var_fmt: Fmt
    rsqrt: Lut
    norm_fmt: Fmt
    gamma: np.ndarray
    g_fmt: Fmt
    beta: np.ndarray
    b_fmt: Fmt
    out_fmt: Fmt

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", self.g_fmt.check_codes(self.gamma, f"{self.name} gamma"))
        object.__setattr__(self, "beta", self.b_fmt.check_codes(self.beta, f"{self.name} beta"))
        if self.rsqrt.in_fmt != self.var_fmt:
            raise IRError(f"{self.name}: rsqrt table input {self.rsqrt.in_fmt} != var_fmt {self.var_fmt}")

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True, eq=False)
class PatchMerging(Node):
    """(H, W, C) -> (H/2, W/2, 4C) as concat(x0, x1, x2, x3) with x0 = x[0::2, 0::2],
    x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2] -> [LayerNorm(4C)] -> Linear(4C -> 2C).
    ``norm`` (LayerNorm variant only) is applied to the concatenated vector; its ``src`` is unused."""

    src: str
    linear: Linear
    norm: LayerNorm | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True, eq=False)
class Add(Node):
    """Residual add: both operands aligned to the larger frac (exact), then requant."""

    a: str
    b: str
    out_fmt: Fmt

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.a, self.b)


@dataclass(frozen=True, eq=False)
class Pool(Node):
    """Global average over tokens: ``requant(sum(x) * inv_n, x.frac + inv_frac, out_fmt)``,
    ``inv_n = round(2**inv_frac / (H*W))`` (exact when H*W is a power of two).

    With ``mask`` (a :class:`TokenMask` node) only real tokens are summed and ``inv_n`` is
    ``inv_table[count]``, ``inv_table[k] = round(2**inv_frac / k)`` (``inv_table[0] = 0``: an
    all-padding sample pools to 0)."""

    src: str
    inv_n: int
    inv_frac: int
    out_fmt: Fmt
    mask: str | None = None
    inv_table: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.mask is not None:
            if self.inv_table is None:
                raise IRError(f"{self.name}: a masked pool needs inv_table (one entry per token count)")
            object.__setattr__(self, "inv_table", np.asarray(self.inv_table, dtype=np.int64))

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,) if self.mask is None else (self.src, self.mask)


@dataclass(frozen=True, eq=False)
class TokenMask(Node):
    """Padding mask of the model input: ``(H, W, C)`` codes -> ``(H, W, 1)`` codes of
    ``ufixed<1,1>``, 1 for a real token, 0 for padding (a token whose C input codes are all 0)."""

    src: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,)


MASK_FMT = Fmt(False, 1, 1)


def masked_pool_table(npos: int) -> tuple[int, np.ndarray]:
    """``(inv_frac, inv_table)`` of a masked :class:`Pool` over ``npos`` token positions:
    ``inv_table[k] = round(2**inv_frac / k)``, ``inv_table[0] = 0``, ``inv_frac = ceil(log2 npos) + 12``."""
    inv_frac = max(0, math.ceil(math.log2(npos))) + 12
    return inv_frac, np.array([0] + [round(2**inv_frac / k) for k in range(1, npos + 1)], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Dense(Node):
    """Linear on the last axis, optional ReLU fused after the requant (ReLU of the output code)."""

    src: str
    linear: Linear
    relu: bool = False

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.src,)


NODE_TYPES: dict[str, type[Node]] = {
    c.__name__: c for c in (Input, PatchEmbed, WindowAttention, Mlp, LayerNorm, PatchMerging, Add, Pool, Dense,
                            TokenMask)
}


# ----- Swin window helpers ---------------------------------------------------------------------
def _hw(window: int | tuple[int, int]) -> tuple[int, int]:
    return (int(window), int(window)) if isinstance(window, int | np.integer) else (int(window[0]), int(window[1]))


def relative_position_index(window: int | tuple[int, int]) -> np.ndarray:
    """(N, N) index into the ((2wh-1)*(2ww-1), heads) bias table, as in microsoft/Swin-Transformer."""
    wh, ww = _hw(window)
    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij"))  # 2, wh, ww
    flat = coords.reshape(2, -1)
    rel = flat[:, :, None] - flat[:, None, :]  # 2, N, N
    rel = rel.transpose(1, 2, 0) + np.array([wh - 1, ww - 1])
    return rel[:, :, 0] * (2 * ww - 1) + rel[:, :, 1]


def window_partition(x: np.ndarray, window: int | tuple[int, int]) -> np.ndarray:
    """(B, H, W, C) -> (B, nW, wh*ww, C), windows and tokens row-major."""
    wh, ww = _hw(window)
    b, h, w, c = x.shape
    x = x.reshape(b, h // wh, wh, w // ww, ww, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // wh) * (w // ww), wh * ww, c)


def window_reverse(x: np.ndarray, window: int | tuple[int, int], h: int, w: int) -> np.ndarray:
    """(B, nW, wh*ww, C) -> (B, H, W, C); inverse of :func:`window_partition`."""
    wh, ww = _hw(window)
    b, c = x.shape[0], x.shape[-1]
    x = x.reshape(b, h // wh, w // ww, wh, ww, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shift_region_ids(resolution: tuple[int, int], window: int | tuple[int, int], shift: int) -> np.ndarray:
    """(H, W) region label of each (already rolled) position, as Swin's ``img_mask``."""
    wh, ww = _hw(window)
    h, w = resolution
    ids = np.zeros((h, w), dtype=np.int64)
    if shift == 0:
        return ids
    cnt = 0
    for hs in (slice(0, -wh), slice(-wh, -shift), slice(-shift, None)):
        for ws in (slice(0, -ww), slice(-ww, -shift), slice(-shift, None)):
            ids[hs, ws] = cnt
            cnt += 1
    return ids


def shift_valid_mask(resolution: tuple[int, int], window: int | tuple[int, int], shift: int) -> np.ndarray:
    ids = shift_region_ids(resolution, window, shift)
    win = window_partition(ids[None, :, :, None], window)[0, :, :, 0]  # nW, N
    return win[:, :, None] == win[:, None, :]


def node_field_names(node: Node) -> list[str]:
    from dataclasses import fields

    return [f.name for f in fields(node)]


__all__ = [
    "IRError", "FormatError", "Linear", "Node", "Input", "PatchEmbed", "WindowAttention", "Mlp",
    "LayerNorm", "PatchMerging", "Add", "Pool", "Dense", "TokenMask", "MASK_FMT", "NODE_TYPES", "masked_pool_table",
    "relative_position_index",
    "window_partition", "window_reverse", "shift_region_ids", "shift_valid_mask", "field",
]
