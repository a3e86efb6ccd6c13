"""Architecture files: a YAML description of a transformer classifier, loaded into a
:class:`~swinfpga.models.SwinSpec` (shapes only; weights come from ``--random`` or training).

Example (a 16-token x 3-feature sequence, global attention)::

    name: jet-16x3
    input: {shape: [16, 3]}            # [tokens, features] for a sequence, [H, W, C] for an image
    patch: 0                           # images: patch size of the embedding; sequences: 0 (a Dense embedding)
    embed: 16
    stages:
      - {depth: 2, heads: 2, window: global}   # window: global | int | [wh, ww]; shift and merge as in SwinSpec
    mlp_ratio: 2
    act: relu                          # relu | gelu
    norm: ln                           # ln | bn
    classes: 5

Optional keys: ``input.fmt`` (input fixed-point type, default ``fixed<8,3,RND,SAT>``),
``rel_bias`` (relative position bias; default true for images, false for sequences),
``pad_mask`` (sequences: tokens whose input features are all 0 are padding, neither attended to
nor pooled; default false),
per stage ``shift`` (default 0) and ``merge`` (default false).  A sequence of N tokens is held as
an ``(N, 1)`` token map (``SwinSpec.seq``) with a patch-1 embedding (a Dense on each token).
Windows are used as given: a window that does not fit the map is an error, never shrunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SwinfpgaError
from .fixed import Fmt, FormatError
from .models import GLOBAL, StageSpec, SwinSpec

DEFAULT_IN_FMT = Fmt(True, 8, 3, "RND", "SAT")
TOP_KEYS = {"name", "input", "patch", "embed", "stages", "mlp_ratio", "act", "norm", "classes", "rel_bias",
            "pad_mask"}
REQUIRED = ("name", "input", "embed", "stages")
STAGE_KEYS = {"depth", "heads", "window", "shift", "merge"}
INPUT_KEYS = {"shape", "fmt"}


class ArchError(SwinfpgaError, ValueError):
    """An architecture file is malformed; the message names the file and the key."""


def _int(v: Any, key: str, where: str, lo: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ArchError(f"{where}: {key} must be an integer, got {v!r}")
    if v < lo:
        raise ArchError(f"{where}: {key} must be >= {lo}, got {v}")
    return v


def _bool(v: Any, key: str, where: str) -> bool:
    if not isinstance(v, bool):
        raise ArchError(f"{where}: {key} must be true or false, got {v!r}")
    return v


def _choice(v: Any, key: str, where: str, options: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v not in options:
        raise ArchError(f"{where}: {key} must be one of {' | '.join(options)}, got {v!r}")
    return v


def _mapping(v: Any, key: str, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ArchError(f"{where}: {key} must be a mapping, got {type(v).__name__}")
    bad = [str(k) for k in v if k not in allowed]
    if bad:
        raise ArchError(f"{where}: unknown key(s) {', '.join(f'{key}.{b}' if key else b for b in bad)}; "
                        f"allowed: {', '.join(sorted(allowed))}")
    return v


def spec_from_dict(d: Any, where: str = "architecture") -> SwinSpec:
    """Validate a parsed architecture (see the module docstring) and build its spec.
    Raises :class:`ArchError` naming ``where`` and the offending key."""
    d = _mapping(d, "", where, TOP_KEYS)
    for k in REQUIRED:
        if k not in d:
            raise ArchError(f"{where}: missing required key {k!r}")
    name = d["name"]
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\\0"):
        raise ArchError(f"{where}: name must be a non-empty string without slashes, got {name!r}")
    inp = _mapping(d["input"], "input", where, INPUT_KEYS)
    if "shape" not in inp:
        raise ArchError(f"{where}: missing required key 'input.shape' ([tokens, features] or [H, W, C])")
    shape = inp["shape"]
    if not isinstance(shape, list) or len(shape) not in (2, 3):
        raise ArchError(f"{where}: input.shape must be [tokens, features] or [H, W, C], got {shape!r}")
    shape = [_int(v, f"input.shape[{i}]", where, 1) for i, v in enumerate(shape)]
    in_fmt = DEFAULT_IN_FMT
    if "fmt" in inp:
        if not isinstance(inp["fmt"], str):
            raise ArchError(f"{where}: input.fmt must be a string like 'fixed<8,3,RND,SAT>', got {inp['fmt']!r}")
        try:
            in_fmt = Fmt.parse(inp["fmt"])
        except FormatError as e:
            raise ArchError(f"{where}: input.fmt: {e}") from None
    seq = len(shape) == 2
    patch = _int(d.get("patch", 0), "patch", where)
    embed = _int(d["embed"], "embed", where, 1)
    mlp_ratio = _int(d.get("mlp_ratio", 2), "mlp_ratio", where, 1)
    act = _choice(d.get("act", "relu"), "act", where, ("relu", "gelu"))
    norm = _choice(d.get("norm", "ln"), "norm", where, ("ln", "bn"))
    classes = _int(d.get("classes", 0), "classes", where)
    rel_bias = _bool(d.get("rel_bias", not seq), "rel_bias", where)
    pad_mask = _bool(d.get("pad_mask", False), "pad_mask", where)
    if pad_mask and not seq:
        raise ArchError(f"{where}: pad_mask is for sequences (a token whose features are all 0 is padding); "
                        "remove it for an image input")
    if seq:
        if patch != 0:
            raise ArchError(f"{where}: patch must be 0 for a sequence input (a Dense embedding per token), got {patch}")
        img = (shape[0], 1, shape[1])
        h, w, p = shape[0], 1, 1
    else:
        img = (shape[0], shape[1], shape[2])
        if patch:
            if shape[0] % patch or shape[1] % patch:
                raise ArchError(f"{where}: patch {patch} does not divide the input {shape[0]}x{shape[1]}")
            h, w, p = shape[0] // patch, shape[1] // patch, patch
        else:
            if shape[2] != embed:
                raise ArchError(f"{where}: with patch 0 an image input already is the token map, so input.shape[2] "
                                f"({shape[2]}) must equal embed ({embed})")
            h, w, p = shape[0], shape[1], 0
    stages_in = d["stages"]
    if not isinstance(stages_in, list) or not stages_in:
        raise ArchError(f"{where}: stages must be a non-empty list of {{depth, heads, window, ...}}")
    stages: list[StageSpec] = []
    c = embed
    for i, st in enumerate(stages_in):
        key = f"stages[{i}]"
        st = _mapping(st, key, where, STAGE_KEYS)
        for k in ("depth", "heads", "window"):
            if k not in st:
                raise ArchError(f"{where}: missing required key '{key}.{k}'")
        depth = _int(st["depth"], f"{key}.depth", where, 1)
        heads = _int(st["heads"], f"{key}.heads", where, 1)
        shift = _int(st.get("shift", 0), f"{key}.shift", where)
        merge = _bool(st.get("merge", False), f"{key}.merge", where)
        if merge:
            if seq:
                raise ArchError(f"{where}: {key}.merge: patch merging is for images (2x2 neighbours); a sequence "
                                "cannot merge")
            if h % 2 or w % 2:
                raise ArchError(f"{where}: {key}.merge needs an even map, the map there is {h}x{w}")
            h, w, c = h // 2, w // 2, 2 * c
        if c % heads:
            raise ArchError(f"{where}: {key}.heads {heads} does not divide the stage's {c} channels")
        win = st["window"]
        wkey = f"{key}.window"
        window: int | tuple[int, int] | str
        if win == GLOBAL:
            window, wh, ww = GLOBAL, h, w
        elif isinstance(win, list):
            if len(win) != 2:
                raise ArchError(f"{where}: {wkey} must be global, an int or [wh, ww], got {win!r}")
            wh, ww = (_int(v, f"{wkey}[{j}]", where, 1) for j, v in enumerate(win))
            window = (wh, ww)
        elif isinstance(win, int) and not isinstance(win, bool):
            wh = _int(win, wkey, where, 1)
            ww = 1 if seq else wh
            window = (wh, 1) if seq else wh
        else:
            raise ArchError(f"{where}: {wkey} must be global, an int or [wh, ww], got {win!r}")
        if wh > h or ww > w or h % wh or w % ww:
            raise ArchError(f"{where}: {wkey} {wh}x{ww} does not tile the {h}x{w} token map of this stage; use a "
                            "window that divides it, or window: global")
        if shift:
            if seq:
                raise ArchError(f"{where}: {key}.shift: shifted windows are for images; use shift 0 for a sequence")
            if shift >= min(wh, ww) or h <= wh or w <= ww:
                raise ArchError(f"{where}: {key}.shift {shift} must be smaller than the window and the map larger "
                                f"than the window (window {wh}x{ww}, map {h}x{w}); use shift 0")
        stages.append(StageSpec(depth=depth, heads=heads, window=window, shift=shift, merge=merge))
    return SwinSpec(name=name.strip(), img=img, patch=p, embed=embed, stages=tuple(stages), mlp_ratio=mlp_ratio,
                    act=act, norm=norm, classes=classes, in_fmt=in_fmt, seq=seq, rel_bias=rel_bias, pad_mask=pad_mask)


def load_arch(path: str | Path) -> SwinSpec:
    """Load an architecture file (``.yaml`` / ``.yml``).  Raises :class:`ArchError`."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ArchError(f"cannot read architecture file {p}: {e}") from None
    return loads_arch(text, str(p))


def loads_arch(text: str, where: str = "architecture") -> SwinSpec:
    """:func:`load_arch` from a YAML string."""
    import yaml

    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ArchError(f"{where}: not valid YAML: {str(e).splitlines()[0] if str(e) else e}") from None
    return spec_from_dict(d, where)


def is_arch_file(ref: str) -> bool:
    return Path(ref).suffix.lower() in (".yaml", ".yml")


__all__ = ["ArchError", "load_arch", "loads_arch", "spec_from_dict", "is_arch_file", "DEFAULT_IN_FMT"]
