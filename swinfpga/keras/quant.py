"""Quantization helpers shared by the swinfpga Keras layers (value domain, float64).

Every tensor inside a quantized layer holds real values ``code * 2**-frac``; all products and
sums are exact in float64 (codes stay far below 2**53), so a requant here equals
:meth:`swinfpga.fixed.Fmt.requant` on the codes bit for bit.  Rounding/saturation use HGQ2's
fixed-point quantizer (``quantizers.get_fixed_quantizer``): straight-through gradient for the
rounding, zero gradient outside the saturation range.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import keras
import numpy as np
from keras import ops

from ..fixed import ChanFmt, Fmt
from ..lut import Lut

DTYPE = "float64"
MASK_VALUE = -100.0  # Swin's additive mask for cross-region pairs (float mode)


@cache
def _quantizer(rounding: str, overflow: str) -> Any:
    from quantizers import get_fixed_quantizer

    return get_fixed_quantizer(rounding, overflow)


def quantize(x: Any, fmt: Fmt, training: bool | None = False) -> Any:
    """Round/saturate real values ``x`` to ``fmt`` (HGQ2 quantizer, STE gradient).  A per-channel
    format (:class:`~swinfpga.fixed.ChanFmt`) rounds and saturates each channel (last axis) at its own
    format; pruned channels are 0."""
    if isinstance(fmt, ChanFmt):
        i, f, keep = chan_if(fmt)
        return quantize_chan(x, fmt.signed, fmt.rounding, fmt.overflow, i, f, keep, training)
    k, i, f = fmt.kif
    q = _quantizer(fmt.rounding, fmt.overflow)
    x = ops.convert_to_tensor(x)
    kk, ii, ff = (ops.convert_to_tensor(float(v), dtype=x.dtype) for v in (k, i, f))
    return q(x, kk, ii, ff, training=bool(training))


def chan_if(fmt: Fmt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel of a :class:`~swinfpga.fixed.ChanFmt`: integer bits (sign included, as
    ``Fmt.int_bits``), fractional bits and live (1.0) / pruned (0.0), as float64 vectors."""
    ch = np.asarray(fmt.chans, dtype=np.float64).reshape(-1, 2)
    return ch[:, 1], ch[:, 0] - ch[:, 1], (ch[:, 0] > 0).astype(np.float64)


def quantize_chan(x: Any, signed: bool, rounding: str, overflow: str, int_bits: Any, f: Any, keep: Any,
                  training: bool | None = False) -> Any:
    """Per channel (last axis): round/saturate ``x`` to ``(signed, int_bits + f, int_bits)`` (vectors
    ``int_bits`` / ``f`` broadcast on the last axis; ``f`` may be a trainable tensor) and zero the
    channels where ``keep`` is 0 (pruned)."""
    q = _quantizer(rounding, overflow)
    x = ops.convert_to_tensor(x)
    kk = ops.convert_to_tensor(float(signed), dtype=x.dtype)
    ii = ops.cast(int_bits, x.dtype) - float(signed)
    ff = ops.cast(f, x.dtype)
    keep = ops.cast(keep, x.dtype)
    # a pruned channel's (i, f) may be any: keep the quantizer away from negative widths
    ff = ops.where(keep > 0, ff, ops.maximum(ff, 1.0 - ii))
    return q(x, kk, ii, ff, training=bool(training)) * keep


def quantize_f(x: Any, fmt: Fmt, f: Any, training: bool | None = False) -> Any:
    """:func:`quantize` with ``fmt``'s sign and integer bits but fractional bits ``f`` (a tensor that
    broadcasts against ``x``: per channel / per weight / per tensor; HGQ training)."""
    k, i, _ = fmt.kif
    q = _quantizer(fmt.rounding, fmt.overflow)
    x = ops.convert_to_tensor(x)
    kk, ii = (ops.convert_to_tensor(float(v), dtype=x.dtype) for v in (k, i))
    return q(x, kk, ii, ops.cast(f, x.dtype), training=bool(training))


def codes(x: Any, fmt: Fmt) -> Any:
    """Values already in ``fmt`` -> integer-valued float64 codes."""
    return x * (2.0**fmt.frac)


def ste(forward: Any, surrogate: Any) -> Any:
    """``forward`` values (bit for bit: ``s - stop_gradient(s)`` is exactly 0) with the gradient of
    ``surrogate``.  (``s + stop_gradient(f - s)`` would round and could move ``f`` by an ulp.)"""
    return ops.stop_gradient(forward) + (surrogate - ops.stop_gradient(surrogate))


def lut_at(lut: Lut, addr: Any) -> Any:
    """Real outputs (``lut.out_fmt``) of ``lut`` at float addresses ``addr`` (whole numbers; clipped
    to the table)."""
    addr = ops.cast(ops.clip(addr, 0, lut.size - 1), "int32")
    table = ops.convert_to_tensor(lut.array().astype(np.float64) * lut.out_fmt.lsb, dtype=DTYPE)
    return ops.take(table, addr, axis=0)


def lut_lookup(lut: Lut, x: Any) -> Any:
    """Table lookup of real inputs ``x`` (already in ``lut.in_fmt``) -> real outputs (``lut.out_fmt``)."""
    c = codes(x, lut.in_fmt)
    return lut_at(lut, ops.floor((c - lut.offset) / float(2**lut.shift)))


def exact_cast(x: Any, fmt: Fmt) -> Any:
    """Real values ``x`` (``code * 2**-frac``, any ``frac``) re-expressed in ``fmt`` exactly as
    :meth:`swinfpga.fixed.Fmt.requant` on the codes (RND: half up; TRN: floor; WRAP / SAT / SAT_SYM),
    in Keras ops on integer-valued float64 codes (exact below 2**52).  No gradient (a forward-only
    requant, e.g. inside the softmax kernel)."""
    c = ops.convert_to_tensor(x, dtype=DTYPE) * 2.0**fmt.frac
    c = ops.floor(c + 0.5) if fmt.rounding == "RND" else ops.floor(c)
    lo, hi = float(fmt.min_code), float(fmt.max_code)
    if fmt.overflow == "WRAP":
        c = ops.mod(c, float(1 << fmt.width)) if lo == 0 else ops.mod(c - lo, float(1 << fmt.width)) + lo
    else:
        c = ops.clip(c, -hi if (fmt.overflow == "SAT_SYM" and fmt.signed) else lo, hi)
    return ops.stop_gradient(c * fmt.lsb)


def fmt_or_none(d: dict[str, Any] | None) -> Fmt | None:
    return None if d is None else Fmt.from_json(d)


def fmts_to_config(fmts: dict[str, Fmt]) -> dict[str, Any]:
    return {k: v.to_json() for k, v in fmts.items()}


def fmts_from_config(d: dict[str, Any] | None) -> dict[str, Fmt]:
    return {k: Fmt.from_json(v) for k, v in (d or {}).items()}


def as_numpy(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))
