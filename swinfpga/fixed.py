"""The one fixed-point vocabulary of swinfpga.

A value ``v`` in format ``Fmt(signed, width, int_bits)`` is stored as an integer *code* ``c`` with
``v = c * 2**-frac`` where ``frac = width - int_bits``.  ``int_bits`` counts the sign bit, exactly
as ``ap_fixed<W, I>`` does.  Every back end (golden numpy, HLS C++, Verilog) works on codes;
this module is the only place that writes an ``ap_fixed<>`` string or decides how a value is
rounded and saturated.

Rounding (applied when fractional bits are dropped):
  * ``TRN``: floor (``AP_TRN``; drop bits in two's complement).
  * ``RND``: round half towards +inf, i.e. ``floor(x + 1/2)`` (``AP_RND``).
Overflow (applied after rounding):
  * ``WRAP``: two's complement wrap-around (``AP_WRAP``).
  * ``SAT``: clip to ``[min, max]`` (``AP_SAT``).
  * ``SAT_SYM``: clip to ``[-max, max]`` (``AP_SAT_SYM``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SwinfpgaError

ROUNDING = ("TRN", "RND")
OVERFLOW = ("WRAP", "SAT", "SAT_SYM")
MAX_WIDTH = 62  # codes live in int64; keep headroom for one sign/carry bit


class FormatError(SwinfpgaError, ValueError):
    """A fixed-point format is malformed or too narrow for the values it must hold."""


@dataclass(frozen=True)
class Fmt:
    """Fixed-point format: ``ap_[u]fixed<width, int_bits, rounding, overflow>``.

    ``int_bits`` includes the sign bit for signed formats and may be negative or exceed ``width``
    (pure scaling), as in ``ap_fixed``.
    """

    signed: bool
    width: int
    int_bits: int
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self) -> None:
        if not 1 <= self.width <= MAX_WIDTH:
            raise FormatError(f"width {self.width} out of range 1..{MAX_WIDTH}")
        if self.signed and self.width < 2 and self.overflow != "WRAP":
            raise FormatError("a signed format needs at least 2 bits to saturate")
        if self.rounding not in ROUNDING:
            raise FormatError(f"rounding {self.rounding!r} not one of {ROUNDING}")
        if self.overflow not in OVERFLOW:
            raise FormatError(f"overflow {self.overflow!r} not one of {OVERFLOW}")

    # ----- derived properties ------------------------------------------------------------
    @property
    def frac(self) -> int:
        """Fractional bits: one LSB is ``2**-frac``."""
        return self.width - self.int_bits

    @property
    def lsb(self) -> float:
        return 2.0**-self.frac

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_value(self) -> float:
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_code * self.lsb

    @property
    def kif(self) -> tuple[int, int, int]:
        """HGQ2/da4ml convention: (sign bit, integer bits without sign, fractional bits)."""
        return int(self.signed), self.int_bits - int(self.signed), self.frac

    def with_(self, **kw: Any) -> Fmt:
        d = {k: getattr(self, k) for k in ("signed", "width", "int_bits", "rounding", "overflow")}
        d.update(kw)
        return Fmt(**d)

    # ----- strings -----------------------------------------------------------------------
    @property
    def ap_type(self) -> str:
        """The ``ap_fixed<>`` / ``ap_ufixed<>`` type string for HLS C++."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        q = "AP_RND" if self.rounding == "RND" else "AP_TRN"
        o = {"WRAP": "AP_WRAP", "SAT": "AP_SAT", "SAT_SYM": "AP_SAT_SYM"}[self.overflow]
        if q == "AP_TRN" and o == "AP_WRAP":
            return f"{base}<{self.width},{self.int_bits}>"
        return f"{base}<{self.width},{self.int_bits},{q},{o}>"

    @property
    def verilog_decl(self) -> str:
        """Verilog vector declaration for one code, e.g. ``signed [7:0]``."""
        return f"{'signed ' if self.signed else ''}[{self.width - 1}:0]"

    def __str__(self) -> str:
        return self.ap_type

    def to_json(self) -> dict[str, Any]:
        return {
            "signed": self.signed,
            "width": self.width,
            "int_bits": self.int_bits,
            "rounding": self.rounding,
            "overflow": self.overflow,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Fmt:
        args = (bool(d["signed"]), int(d["width"]), int(d["int_bits"]), str(d["rounding"]), str(d["overflow"]))
        if "chans" in d:
            return ChanFmt(*args, chans=tuple((int(w), int(i)) for w, i in d["chans"]))
        return Fmt(*args)

    # ----- per-channel refinement (see ChanFmt) ---------------------------------------------
    @property
    def container(self) -> Fmt:
        """The one format every back end stores this tensor's codes in (itself for a plain Fmt)."""
        return self

    def chan(self, c: int) -> Fmt | None:
        """Format of channel ``c`` (None: the channel is always 0); a plain Fmt is its own."""
        return self

    @classmethod
    def parse(cls, s: str) -> Fmt:
        """Parse ``ap_fixed<8,3>``, ``ap_ufixed<8,0,AP_RND,AP_SAT>`` or ``fixed<8,3,RND,SAT>``."""
        s = s.strip().replace(" ", "")
        head, _, rest = s.partition("<")
        if not rest.endswith(">") or head not in ("ap_fixed", "ap_ufixed", "fixed", "ufixed"):
            raise FormatError(f"cannot parse fixed-point type {s!r}")
        parts = rest[:-1].split(",")
        w, i = int(parts[0]), int(parts[1])
        q = parts[2].removeprefix("AP_") if len(parts) > 2 else "TRN"
        o = parts[3].removeprefix("AP_") if len(parts) > 3 else "WRAP"
        return cls(not head.endswith("ufixed"), w, i, q, o)

    @classmethod
    def from_kif(cls, k: int | bool, i: int, f: int, rounding: str = "TRN", overflow: str = "WRAP") -> Fmt:
        """From HGQ2's (keep_negative, integer bits excluding sign, fractional bits)."""
        k = int(bool(k))
        return cls(bool(k), k + i + f, k + i, rounding, overflow)

    # ----- arithmetic on codes -----------------------------------------------------------
    def from_float(self, x: Any) -> np.ndarray:
        """Quantize real values to codes with this format's rounding and overflow (exact in float64
        for |x| * 2**frac < 2**52)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise FormatError("cannot quantize NaN or infinity")
        scaled = np.ldexp(x, self.frac)
        codes = np.floor(scaled + 0.5) if self.rounding == "RND" else np.floor(scaled)
        big = np.abs(codes) > 2.0**61
        if np.any(big):
            raise FormatError(f"value {x[big].flat[0]!r} is far outside {self}")
        return self.overflow_codes(codes.astype(np.int64))

    def to_float(self, codes: Any) -> np.ndarray:
        return np.ldexp(np.asarray(codes, dtype=np.float64), -self.frac)

    def overflow_codes(self, codes: np.ndarray) -> np.ndarray:
        """Apply this format's overflow mode to integer codes already at this format's LSB."""
        codes = np.asarray(codes, dtype=np.int64)
        lo, hi = self.min_code, self.max_code
        if self.overflow == "WRAP":
            span = 1 << self.width
            return ((codes - lo) & (span - 1)) + lo
        if self.overflow == "SAT_SYM" and self.signed:
            lo = -hi
        return np.clip(codes, lo, hi)

    def requant(self, codes: Any, frac_in: int) -> np.ndarray:
        """Re-express integer codes with ``frac_in`` fractional bits in this format."""
        out, _ = self.requant_count(codes, frac_in)
        return out

    def requant_count(self, codes: Any, frac_in: int) -> tuple[np.ndarray, int]:
        """Like :meth:`requant`, also returning how many elements overflowed (saturated/wrapped)."""
        c = np.asarray(codes, dtype=np.int64)
        shift = frac_in - self.frac
        if shift > 0:
            if self.rounding == "RND":
                c = (c + (1 << (shift - 1))) >> shift
            else:
                c = c >> shift
        lo = -self.max_code if (self.overflow == "SAT_SYM" and self.signed) else self.min_code
        if shift < 0:
            s = -shift
            # clamp first so the shift cannot overflow int64; clamped values still overflow the format
            top = (self.max_code >> s) + 1
            bot = -((-lo) >> s) - 1
            if self.overflow == "WRAP":
                over = (c > top - 1) | (c < bot + 1)
                c = (c & ((1 << self.width) - 1)) << s
                n_over = int(np.count_nonzero(over))
                return self.overflow_codes(c), n_over
            c = np.clip(c, bot, top) << s
        n_over = int(np.count_nonzero((c < lo) | (c > self.max_code)))
        return self.overflow_codes(c), n_over

    def contains(self, codes: Any) -> bool:
        c = np.asarray(codes)
        return bool(np.all((c >= self.min_code) & (c <= self.max_code)))

    def check_codes(self, codes: Any, what: str) -> np.ndarray:
        """Validate that ``codes`` are integers representable in this format."""
        c = np.asarray(codes)
        if c.dtype.kind == "f":
            if not np.all(c == np.round(c)):
                raise FormatError(f"{what}: expected integer codes of {self}, got non-integer floats")
        c = c.astype(np.int64)
        if c.size and not self.contains(c):
            bad = c[(c < self.min_code) | (c > self.max_code)].flat[0]
            raise FormatError(
                f"{what}: code {bad} does not fit {self} (range {self.min_code}..{self.max_code}); "
                "widen the format or re-quantize"
            )
        return c


@dataclass(frozen=True)
class ChanFmt(Fmt):
    """Per-channel formats (last axis) inside one container format.

    Channel ``c`` holds values of ``Fmt(signed, w_c, I_c, rounding, overflow)`` (``chans[c] = (w_c,
    I_c)``; ``w_c == 0``: the channel is always 0, pruned).  Every channel's range and LSB lie inside
    the container (``I_c <= int_bits``, ``w_c - I_c <= frac``), so its codes are stored as container
    codes (the channel code shifted left by ``frac - (w_c - I_c)``): every consumer reads the
    container format (``ap_type``, ``width``, ``kif`` ...) unchanged, and only the requantization
    that produces the tensor rounds and saturates per channel, from the exact accumulator.
    """

    chans: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "chans", tuple((int(w), int(i)) for w, i in self.chans))
        if not self.chans:
            raise FormatError("a per-channel format needs at least one channel")
        for c, (w, i) in enumerate(self.chans):
            if w == 0:
                continue
            if w < 0 or w > self.width:
                raise FormatError(f"channel {c}: width {w} out of range 0..{self.width} (container {self.container})")
            if self.signed and w < 2 and self.overflow != "WRAP":
                raise FormatError(f"channel {c}: a signed channel needs 0 or at least 2 bits to saturate")
            if i > self.int_bits or w - i > self.frac:
                raise FormatError(
                    f"channel {c}: <{w},{i}> does not lie inside the container {self.container} "
                    "(its integer and fraction bits must not exceed the container's)")

    @classmethod
    def union(cls, signed: bool, chans: Any, rounding: str = "RND", overflow: str = "SAT") -> Fmt:
        """The per-channel format of ``chans`` ((width, int_bits) per channel) in the narrowest
        container; a plain :class:`Fmt` when every channel is the same (and not pruned)."""
        ch = tuple((int(w), int(i)) for w, i in chans)
        live = [(w, i) for w, i in ch if w > 0]
        if live and all(c == live[0] for c in ch):
            return Fmt(signed, live[0][0], live[0][1], rounding, overflow)
        if not live:
            live = [(2 if signed else 1, 1)]
        ib = max(i for _, i in live)
        fb = max(w - i for w, i in live)
        return cls(signed, ib + fb, ib, rounding, overflow, chans=ch)

    @property
    def container(self) -> Fmt:
        return Fmt(self.signed, self.width, self.int_bits, self.rounding, self.overflow)

    @property
    def n_chans(self) -> int:
        return len(self.chans)

    def chan(self, c: int) -> Fmt | None:
        w, i = self.chans[c]
        return None if w == 0 else Fmt(self.signed, w, i, self.rounding, self.overflow)

    def groups(self) -> list[tuple[Fmt | None, np.ndarray]]:
        """Channels grouped by format: ``[(fmt or None, channel indices)]`` in first-seen order."""
        seen: dict[tuple[int, int], list[int]] = {}
        for c, wi in enumerate(self.chans):
            seen.setdefault(wi if wi[0] else (0, 0), []).append(c)
        return [(None if wi[0] == 0 else Fmt(self.signed, wi[0], wi[1], self.rounding, self.overflow),
                 np.asarray(idx)) for wi, idx in seen.items()]

    def with_(self, **kw: Any) -> Fmt:
        d = {k: getattr(self, k) for k in ("signed", "width", "int_bits", "rounding", "overflow", "chans")}
        d.update(kw)
        return ChanFmt(**d)

    def _check_axis(self, c: np.ndarray) -> None:
        if c.ndim == 0 or c.shape[-1] != self.n_chans:
            raise FormatError(f"per-channel format of {self.n_chans} channels applied to shape {c.shape}")

    def requant_count(self, codes: Any, frac_in: int) -> tuple[np.ndarray, int]:
        """Per channel (last axis): round and saturate at the channel's format, then store as
        container codes; the count is the sum of the channels' overflows (a pruned channel counts none)."""
        n = 0

        def one(f: Fmt, part: np.ndarray) -> np.ndarray:
            nonlocal n
            o, k = f.requant_count(part, frac_in)
            n += k
            return o

        return self.per_channel(np.asarray(codes, dtype=np.int64), one), n

    def per_channel(self, x: np.ndarray, fn: Any) -> np.ndarray:
        """Container codes of ``fn(channel format, x[..., channels of that format])`` (codes at that
        format's LSB) for each group of channels (:meth:`groups`); pruned channels are 0."""
        self._check_axis(x)
        out = np.zeros(x.shape, dtype=np.int64)
        for f, idx in self.groups():
            if f is not None:
                out[..., idx] = np.asarray(fn(f, x[..., idx]), dtype=np.int64) << (self.frac - f.frac)
        return out

    def from_float(self, x: Any) -> np.ndarray:
        return self.per_channel(np.asarray(x, dtype=np.float64), lambda f, part: f.from_float(part))

    def contains(self, codes: Any) -> bool:
        c = np.asarray(codes, dtype=np.int64)
        if not self.container.contains(c):
            return False
        if c.ndim == 0 or c.shape[-1] != self.n_chans:
            return False
        return bool(np.array_equal(self.requant(c, self.frac), c))

    def check_codes(self, codes: Any, what: str) -> np.ndarray:
        c = self.container.check_codes(codes, what)
        if c.size and not self.contains(c):
            self._check_axis(c)
            bad = np.argwhere(self.requant(c, self.frac) != c)[0]
            ch = int(bad[-1])
            raise FormatError(
                f"{what}: code {int(c[tuple(bad)])} at {tuple(int(v) for v in bad)} is not a code of channel {ch}'s "
                f"format {self.chan(ch) or 'pruned (always 0)'} inside {self.container}; re-quantize per channel"
            )
        return c

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d["chans"] = [list(wi) for wi in self.chans]
        return d

    def __str__(self) -> str:
        return f"{self.ap_type} per channel ({self.n_chans})"


# ----- helpers -------------------------------------------------------------------------------
def bits_for_range(lo: int, hi: int) -> tuple[bool, int]:
    """Smallest (signed, width) two's complement holding the integer range [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return False, max(1, int(hi).bit_length())
    w = max((-lo - 1).bit_length(), max(hi, 0).bit_length()) + 1
    return True, w


def acc_fmt(lo: int, hi: int, frac: int) -> Fmt:
    """Exact (never-overflowing) accumulator format for the code range [lo, hi] at ``frac`` bits."""
    signed, w = bits_for_range(lo, hi)
    return Fmt(signed, w, w - frac)


def fit_fmt(values: Any, width: int, signed: bool | None = None, rounding: str = "RND",
            overflow: str = "SAT") -> Fmt:
    """A ``width``-bit format whose range covers ``max|values|`` with the most fractional bits."""
    v = np.asarray(values, dtype=np.float64)
    if signed is None:
        signed = bool(np.any(v < 0))
    m = float(np.max(np.abs(v))) if v.size else 0.0
    ib = 0 if m == 0 else math.floor(math.log2(m)) + 1
    ib += int(signed)
    f = Fmt(signed, width, ib, rounding, overflow)
    if m and math.floor(m * 2.0**f.frac + (0.5 if rounding == "RND" else 0.0)) > f.max_code:
        f = Fmt(signed, width, ib + 1, rounding, overflow)  # rounding up at the top needs one more bit
    return f


def from_qkeras(cfg: dict[str, Any] | str) -> Fmt:
    """Convert a QKeras quantizer config to a format.

    ``quantized_bits(bits, integer, keep_negative=1)`` is ``ap_fixed<bits, integer + 1>``: QKeras'
    ``integer`` excludes the sign bit.  ``quantized_relu(bits, integer)`` is
    ``ap_ufixed<bits, integer>``.  Accepts the serialized dict (``{"class_name": ..., "config":
    {...}}``) or the string form ``"quantized_bits(8,0,alpha=1)"``.
    """
    if isinstance(cfg, str):
        cfg = _parse_qkeras_string(cfg)
    cls = cfg.get("class_name", "")
    c = cfg.get("config", cfg)
    bits = int(c.get("bits", 8))
    integer = int(c.get("integer", 0))
    if cls == "quantized_bits":
        alpha = c.get("alpha", 1)
        if alpha not in (1, 1.0, None, "1"):
            raise FormatError(
                f"quantized_bits alpha={alpha!r} is a per-channel scale, not a fixed-point format; "
                "retrain with alpha=1"
            )
        keep_negative = bool(c.get("keep_negative", True))
        rounding = "RND"  # QKeras rounds to nearest
        overflow = "SAT_SYM" if bool(c.get("symmetric", False)) else "SAT"
        if keep_negative:
            return Fmt(True, bits, integer + 1, rounding, overflow)
        return Fmt(False, bits, integer, rounding, overflow)
    if cls == "quantized_relu":
        negative_slope = float(c.get("negative_slope", 0.0))
        if negative_slope != 0.0:
            raise FormatError("quantized_relu with negative_slope is not a fixed-point ReLU")
        return Fmt(False, bits, integer, "RND", "SAT")
    raise FormatError(
        f"QKeras quantizer {cls!r} has no fixed-point format; supported: quantized_bits, quantized_relu"
    )


def _parse_qkeras_string(s: str) -> dict[str, Any]:
    name, _, args = s.strip().partition("(")
    args = args.rstrip(")")
    pos: list[Any] = []
    kw: dict[str, Any] = {}
    for a in filter(None, (x.strip() for x in args.split(","))):
        if "=" in a:
            k, v = a.split("=", 1)
            kw[k.strip()] = _lit(v.strip())
        else:
            pos.append(_lit(a))
    keys = ["bits", "integer", "symmetric", "keep_negative", "alpha"]
    if name == "quantized_relu":
        keys = ["bits", "integer"]
    for k, v in zip(keys, pos, strict=False):
        kw.setdefault(k, v)
    return {"class_name": name, "config": kw}


def _lit(v: str) -> Any:
    if v in ("True", "False"):
        return v == "True"
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v.strip("'\"")


def from_hgq(k: Any, i: Any, f: Any, round_mode: str = "TRN", overflow_mode: str = "WRAP") -> Fmt:
    """Convert HGQ2 per-tensor quantizer parameters (k, i, f; arrays allowed) to one format.

    HGQ2 may learn per-element bit widths; a per-tensor format takes the widest of each.
    """
    k = int(np.max(np.asarray(k)))
    i = int(np.max(np.asarray(i)))
    f = int(np.max(np.asarray(f)))
    rm = round_mode.upper().removeprefix("S_")
    if rm not in ROUNDING:
        raise FormatError(f"HGQ2 round mode {round_mode!r} unsupported; use TRN or RND")
    om = overflow_mode.upper()
    if om not in OVERFLOW:
        raise FormatError(f"HGQ2 overflow mode {overflow_mode!r} unsupported; use WRAP, SAT or SAT_SYM")
    return Fmt.from_kif(k, i, f, rm, om)
