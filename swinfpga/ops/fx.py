"""The fixed-point array interface that every operator kernel is written against, and its numpy
implementation (the golden model).

A kernel (``swinfpga.ops.<op>.kernel``) receives an implementation ``A`` and arrays of values and
tracks fraction bits itself (the ``frac`` arguments).  Three implementations execute it:

* :class:`NumpyFx` (here): ``int64`` codes with leading batch axes; ``frac`` says what the codes
  mean; every requant is counted and tapped (:class:`Taps`).
* ``TraceFx`` (``swinfpga.backends.rtl.trace``): da4ml traced variables holding real values (code
  x LSB) of one gathered group of tokens; ``frac`` arguments are ignored (the values carry their
  scale) and requant is a da4ml ``quantize`` with the format's (k, i, f), rounding and overflow.
* ``KerasFx`` (``swinfpga.keras.fx``): float64 Keras tensors of real values (the quantized Keras
  layers); ``frac`` arguments are ignored and requant is the layer's (trainable) quantization site
  (``requant(None, ...)`` and ``cast``: exact, no gradient).

Primitives (last axis = channels; ``fmt`` arguments are :class:`swinfpga.fixed.Fmt`):

- ``requant(name, acc, frac, fmt)``: re-express ``acc`` (``frac`` bits) in ``fmt`` (round, saturate)
- ``matmul(x, lin, x_fmt)``: ``x @ W + b`` with a constant :class:`~swinfpga.ir.nodes.Linear`
  (frac ``lin.acc_frac(x_fmt)``, the bias aligned to it)
- ``scale(x, code, frac)``: ``x * code``, a constant scalar code of ``frac`` bits
- ``mul(a, b)``: elementwise product (fracs add)
- ``mul_const(x, codes, fmt)``: ``x * codes``, constant codes on the last axis (fracs add)
- ``add(a, fa, b, fb)`` / ``sub(...)``: aligned sum / difference (frac ``max(fa, fb)``)
- ``add_const(x, fx, codes, fmt)``: ``x + codes`` aligned to ``fx`` (``fmt.frac <= fx``)
- ``sum(x, axis, keepdims=True)``: exact sum over ``axis`` (an adder tree in hardware)
- ``relu(x)``: ``max(x, 0)``
- ``lookup(x, lut)``: ``lut.lookup`` (a ROM; :class:`swinfpga.lut.Lut` addressing)
- ``mask(x, bits)``: ``x`` where ``bits`` (last axis 1) is 1, else 0 (a mux on a bit)
- ``count_lookup(bits, table, frac, name)``: ``table[number of ones of bits over axis -2]``
  (keepdims; ``frac``: the table's fraction bits; a mux chain in hardware)
- ``any_nonzero(x)``: 1 where any value on the last axis is non-zero (keepdims)
- ``heads(x, n)`` / ``merge_heads(x)``: split the channels of (..., N, C) into ``n`` heads / join them
- ``qk(q, k)``: per head ``q @ k.T`` of two variable arrays (an exact product sum)
- ``pv(p, v)``: per head ``p @ v`` of two variable arrays
- ``softmax(scores, spec, valid)``: the integer softmax of :class:`swinfpga.lut.SoftmaxSpec` along the
  last axis, per head: every implementation runs its kernel :func:`swinfpga.ops.softmax.kernel` (one
  per kind, on the primitives below; KerasFx: forward only, with the float softmax's gradient
  straight-through); ``valid``: the implementation's valid bits (numpy: a bool array broadcastable to
  ``scores``, or None; tracer: the row-major bits of one window's pairs, or None; Keras: a numpy bool
  array or a bool tensor, or None).  The golden entry point is :func:`softmax_codes`
- ``max(x, axis)``: maximum over ``axis`` (keepdims; a comparator tree in hardware)
- ``select(bits, a, fa, b, fb)``: ``a`` where ``bits`` is 1 else ``b`` (elementwise, broadcast; frac
  ``max(fa, fb)``; ``b`` may be a constant code); a mux on a bit
- ``cast(x, frac, fmt)``: re-express in ``fmt`` with its rounding/overflow, not a reported requant
  site (bit slices: TRN / WRAP)
- ``ge(x, fx, code, frac)``: 1 where ``x >= code`` (a constant of ``frac`` bits), else 0
- ``shr(x, j)``: ``x * 2**-j`` exactly (numpy: codes unchanged, the caller's frac grows by ``j``;
  wiring in hardware)
- ``index(a, frac, lut)``: ``lut``'s entry at the address ``a``'s code (clipped; a ROM addressed by
  a bit slice, bypassing ``lut``'s own addressing)
- ``lookup(x, lut, what=None)``: as above; ``what`` names the table in the tracer's too-large error
- ``requant(None, ...)``: a requant that is not a reported site (golden: no taps, no overflow count)
- ``tap(name, x)``: record an intermediate (golden only)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..fixed import Fmt
from . import softmax as _softmax


@dataclass
class Taps:
    """Intermediates by name (``node.part``) and overflow counts by requant site."""

    enabled: bool = True
    values: dict[str, np.ndarray] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)
    elements: dict[str, int] = field(default_factory=dict)

    def put(self, name: str, v: np.ndarray) -> None:
        if self.enabled:
            self.values[name] = v

    def requant(self, name: str, acc: np.ndarray, frac_in: int, fmt: Fmt) -> np.ndarray:
        out, n = fmt.requant_count(acc, frac_in)
        self.overflow[name] = self.overflow.get(name, 0) + n
        self.elements[name] = self.elements.get(name, 0) + int(out.size)
        self.put(name + ".acc", acc)
        self.put(name, out)
        return out


def align(codes: np.ndarray, frac_from: int, frac_to: int) -> np.ndarray:
    """Exactly re-express codes at more fraction bits (``frac_to >= frac_from``)."""
    assert frac_to >= frac_from, (frac_from, frac_to)
    c = np.asarray(codes, dtype=np.int64)
    return c if frac_to == frac_from else c << (frac_to - frac_from)


class NumpyFx:
    """The golden implementation of the interface: exact ``int64`` codes, batch axes first."""

    def __init__(self, taps: Taps) -> None:
        self.taps = taps

    def tap(self, name: str, x: np.ndarray) -> None:
        self.taps.put(name, x)

    def requant(self, name: str | None, acc: np.ndarray, frac: int, fmt: Fmt) -> np.ndarray:
        if name is None:
            return _requant_uncounted(acc, frac, fmt)
        return self.taps.requant(name, acc, frac, fmt)

    def matmul(self, x: np.ndarray, lin: Any, x_fmt: Fmt) -> np.ndarray:
        acc = np.einsum("...i,io->...o", x.astype(np.int64), lin.weight, dtype=np.int64)
        if lin.bias is not None:
            assert lin.b_fmt is not None
            acc = acc + align(lin.bias, lin.b_fmt.frac, lin.acc_frac(x_fmt))
        return acc

    def scale(self, x: np.ndarray, code: int, frac: int) -> np.ndarray:
        return x * code

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    def mul_const(self, x: np.ndarray, codes: np.ndarray, fmt: Fmt) -> np.ndarray:
        return x * codes

    def add(self, a: np.ndarray, fa: int, b: np.ndarray, fb: int) -> np.ndarray:
        f = max(fa, fb)
        return align(a, fa, f) + align(b, fb, f)

    def sub(self, a: np.ndarray, fa: int, b: np.ndarray, fb: int) -> np.ndarray:
        f = max(fa, fb)
        return align(a, fa, f) - align(b, fb, f)

    def add_const(self, x: np.ndarray, fx: int, codes: np.ndarray, fmt: Fmt) -> np.ndarray:
        return x + align(codes, fmt.frac, fx)

    def sum(self, x: np.ndarray, axis: int = -1, keepdims: bool = True) -> np.ndarray:
        return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.int64)

    def relu(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def lookup(self, x: np.ndarray, lut: Any, what: str | None = None) -> np.ndarray:
        return lut.lookup(x)

    def mask(self, x: np.ndarray, bits: np.ndarray) -> np.ndarray:
        return x * bits

    def count_lookup(self, bits: np.ndarray, table: np.ndarray, frac: int, name: str) -> np.ndarray:
        return table[np.sum(bits, axis=-2)]

    def any_nonzero(self, x: np.ndarray) -> np.ndarray:
        return np.any(x != 0, axis=-1, keepdims=True).astype(np.int64)

    def heads(self, x: np.ndarray, n: int) -> np.ndarray:
        *lead, t, c = x.shape
        return np.moveaxis(x.reshape(*lead, t, n, c // n), -2, -3)

    def merge_heads(self, x: np.ndarray) -> np.ndarray:
        y = np.moveaxis(x, -3, -2)
        return y.reshape(*y.shape[:-2], -1)

    def qk(self, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.einsum("...id,...jd->...ij", q, k, dtype=np.int64)

    def pv(self, p: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.einsum("...ij,...jd->...id", p, v, dtype=np.int64)

    def softmax(self, scores: np.ndarray, spec: Any, valid: Any) -> np.ndarray:
        """All heads at once (a batch axis): :func:`swinfpga.ops.softmax.kernel`."""
        v = None if valid is None else np.broadcast_to(np.asarray(valid, bool), scores.shape)
        return _softmax.kernel(self, spec, scores, v)

    def max(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.max(x, axis=axis, keepdims=True)

    def select(self, bits: np.ndarray, a: Any, fa: int, b: Any, fb: int) -> np.ndarray:
        f = max(fa, fb)
        key = np.asarray(bits)
        return np.where(key if key.dtype == bool else key != 0, align(a, fa, f), align(b, fb, f))

    def cast(self, x: np.ndarray, frac: int, fmt: Fmt) -> np.ndarray:
        return _requant_uncounted(x, frac, fmt)

    def ge(self, x: np.ndarray, fx: int, code: int, frac: int) -> np.ndarray:
        f = max(fx, frac)
        return (align(x, fx, f) >= (np.int64(code) << (f - frac))).astype(np.int64)

    def shr(self, x: np.ndarray, j: int) -> np.ndarray:
        return x

    def index(self, a: np.ndarray, frac: int, lut: Any) -> np.ndarray:
        return lut.array()[np.clip(a, 0, lut.size - 1)]


def _requant_uncounted(c: np.ndarray, frac: int, fmt: Fmt) -> np.ndarray:
    """``fmt.requant(c, frac)`` without counting overflows (the same codes)."""
    s = frac - fmt.frac
    if s < 0 or fmt.container is not fmt:  # per-channel formats (ChanFmt) round and saturate per channel
        return fmt.requant(c, frac)
    if s > 0:
        c = (c + (np.int64(1) << (s - 1))) >> s if fmt.rounding == "RND" else c >> s
    return fmt.overflow_codes(c)


def softmax_codes(spec: Any, scores: Any, valid: Any | None = None) -> np.ndarray:
    """The golden softmax of ``spec`` along the last axis of ``scores`` (int codes): its kernel
    (:mod:`swinfpga.ops.softmax`) on :class:`NumpyFx`; ``valid`` (bool, broadcastable) excludes
    masked pairs; every row needs a valid element."""
    return NumpyFx(Taps(enabled=False)).softmax(np.asarray(scores, dtype=np.int64), spec, valid)
