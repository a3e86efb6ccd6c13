"""The integer softmax, one kernel per kind, written once against the fixed-point array interface
(:mod:`.fx`): the golden model runs it on :class:`~.fx.NumpyFx` (``NumpyFx.softmax``; entry point
:func:`swinfpga.ops.fx.softmax_codes`), the RTL tracer on ``TraceFx`` (``backends/rtl/trace.py``),
both through the interface primitive ``A.softmax``.  C++ mirror: ``hls_templates/swin_softmax.h``
(kind ``swinfpga``) and ``backends/hls4ml/softmax_hgq2.py`` (kind ``hgq2``).

``kernel(A, spec, scores, valid)``: ``scores`` (..., R, n) codes of ``spec.score_fmt`` (the
tracer: an object array of variables), one softmax per row (last axis); ``valid``: None (every pair
valid) or bits of the same shape (1 = valid; every row needs a valid element).  Returns codes of
``spec.prob_fmt``.  The kinds register themselves in :data:`KINDS` by
:attr:`swinfpga.lut.SoftmaxSpec.kind`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..fixed import Fmt

KINDS: dict[str, Callable[..., Any]] = {}


def kind(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register the kernel of softmax kind ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        KINDS[name] = fn
        return fn

    return deco


def kernel(A: Any, spec: Any, scores: Any, valid: Any | None) -> Any:
    """The softmax of ``spec`` (its kind's kernel) on rows of ``scores`` (see the module docstring)."""
    fn = KINDS.get(spec.kind)
    if fn is None:
        from ..errors import SwinfpgaError

        raise SwinfpgaError(f"softmax kind {spec.kind!r} has no kernel; one of {', '.join(sorted(KINDS))}")
    return fn(A, spec, scores, valid)


def _masked_max(A: Any, spec: Any, s: Any, valid: Any | None) -> Any:
    """Row maximum over the valid scores (masked ones replaced by ``min_code - 1``; keepdims)."""
    f = spec.score_fmt.frac
    sv = s if valid is None else A.select(valid, s, f, spec.score_fmt.min_code - 1, f)
    return A.max(sv, axis=-1)


@kind("swinfpga")
def swinfpga_softmax(A: Any, spec: Any, s: Any, valid: Any | None) -> Any:
    """The softmax of :class:`swinfpga.lut.SoftmaxSpec` (kind ``swinfpga``), normalised by the
    leading one of the row sum::

        m = max(valid s);  e = EXP[m - s] (0 where not valid);  S = sum(e)      (frac E)
        T = trunc(S, B)                              # B = E - RECIP.shift fraction bits
        bit_j = bit j of T's integer part (j = 1 .. max_k - 1), T >= 2**max_k  # leading one
        U = T >> k (k: the highest set bit_j; a mux chain, higher j overriding lower)
        r = RECIP[U - 1]                              # the B bits below the leading one
        X = trunc(e * r, F = P + max(max_k, 1))       # exact for the final rounding
        p = requant(X >> k, prob_fmt)                 # round half up, saturate

    equal to ``p = round(e * r / 2**(E + R + k - P))`` (floor((X + c) / 2**m) = floor((floor(X) + c)
    / 2**m) for integer c): the integer definition of ``SoftmaxSpec``."""
    sf = spec.score_fmt.frac
    big_e, big_b = spec.exp_frac, spec.exp_frac - spec.recip.shift
    big_r, big_p, max_k = spec.recip_frac, spec.prob_fmt.frac, spec.max_k
    m = _masked_max(A, spec, s, valid)
    e = A.lookup(A.sub(m, sf, s, sf), spec.exp)  # frac E; m - s >= 0 on valid pairs
    if valid is not None:
        e = A.select(valid, e, big_e, 0, big_e)
    total = A.sum(e, axis=-1)
    ib = max(1, spec.n.bit_length())
    t_fmt = Fmt(False, ib + big_b, ib)  # TRN / WRAP: a bit slice
    t = A.cast(total, big_e, t_fmt)
    # bit j of T (a 1-bit value of weight 2**j); the top one is a comparison (see TraceFx.ge)
    sel = [A.cast(t, big_b, Fmt(False, 1, j + 1)) for j in range(1, max_k)]
    if max_k >= 1:
        sel.append(A.ge(t, big_b, 1 << max_k, 0))
    u = t
    for j in range(1, max_k + 1):
        u = A.select(sel[j - 1], A.cast(A.shr(t, j), big_b + j, t_fmt), big_b, u, big_b)
    a = A.cast(u, big_b, Fmt(False, big_b, 0))  # U - 1 (U in [1, 2)): the reciprocal table's address
    r = A.index(a, big_b, spec.recip)  # frac R
    big_f = big_p + max(max_k, 1)
    x = A.cast(A.mul(e, r), big_e + big_r, Fmt(False, big_f + 1, 1))
    y, fy = x, big_f
    for j in range(1, max_k + 1):
        y = A.select(sel[j - 1], A.shr(x, j), big_f + j, y, fy)
        fy = big_f + j
    return A.requant(None, y, fy, spec.prob_fmt)


@kind("hgq2")
def hgq2_softmax(A: Any, spec: Any, s: Any, valid: Any | None) -> Any:
    """HGQ2's table softmax (``hgq.layers.QSoftmax``, stable), kind ``hgq2``::

        d    = max(s[j] for valid j) - s                        # exact, frac score_fmt.frac
        e[j] = EXP[requant(d[j], EXP.in_fmt)] if valid else 0   # EXP.in_fmt: the exp input quantizer
        S    = sum(e)                                           # exact, frac EXP.out_fmt.frac
        r    = RECIP[requant(S, RECIP.in_fmt)]                  # RECIP.in_fmt: the inverse input quantizer
        p[j] = requant(e[j] * r, prob_fmt)                      # the softmax output quantizer

    The tables hold HGQ2's own quantized ``exp(-x * input_scaler)`` and ``1 / (x + eps)`` for every
    input code (one entry per code, RND_CONV / SAT as HGQ2 forces them), read from the trained layer.
    ``what`` names a lookup's table for the tracer's error when its reachable inputs exceed a ROM."""
    sf = spec.score_fmt.frac
    m = _masked_max(A, spec, s, valid)
    d = A.requant(None, A.sub(m, sf, s, sf), sf, spec.exp.in_fmt)
    e = A.lookup(d, spec.exp, what="softmax exp")
    ef = spec.exp.out_fmt.frac
    if valid is not None:
        e = A.select(valid, e, ef, 0, ef)
    total = A.requant(None, A.sum(e, axis=-1), ef, spec.recip.in_fmt)
    r = A.lookup(total, spec.recip, what="softmax inverse")
    return A.requant(None, A.mul(e, r), ef + spec.recip.out_fmt.frac, spec.prob_fmt)
