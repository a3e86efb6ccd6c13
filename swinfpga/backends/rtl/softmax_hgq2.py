"""RTL (da4ml trace) of HGQ2's table softmax, softmax kind ``hgq2`` (see :func:`swinfpga.lut.hgq2_softmax_codes`).

One row of ``n`` score variables (codes of ``sm.score_fmt``)::

    d[j] = max(valid s) - s[j]                       exact (max tree, subtract)
    e[j] = EXP[quantize(d[j], EXP.in_fmt)]           SAT / RND quantize, then a lookup (0 where not valid)
    S    = sum e                                     exact adder tree (frac of EXP.out_fmt)
    r    = RECIP[quantize(S, RECIP.in_fmt)]          WRAP quantize, then a lookup
    p[j] = quantize(e[j] * r, prob_fmt)              exact products, output requant

Every quantize is the golden requant (same (k, i, f), rounding and overflow), so the trace is bit-exact
by construction; the tables are the IR's (one entry per input code), looked up as ROMs.
"""

from __future__ import annotations

from typing import Any

from ...lut import SoftmaxSpec
from .trace import SOFTMAX_KINDS, TraceError, _q, _tree, lut_apply, tracer

MAX_TABLE = 1 << 14  # da4ml's lookup limit (entries per table)


def _reachable(var: Any) -> int:
    """Number of values a traced variable can take (the entries its lookup table needs)."""
    if var.low == var.high:
        return 1
    return round(float((var.high - var.low) / var.step)) + 1


def _lookup(var: Any, lut: Any, sm: SoftmaxSpec, what: str) -> Any:
    n = _reachable(var)
    if n > MAX_TABLE:
        layer = lut.name.rsplit("_", 1)[0]  # the importer names the tables LAYER_exp / LAYER_recip
        raise TraceError(f"layer {layer!r}: softmax {what} table {lut.name!r} (input {lut.in_fmt}, {lut.size} "
                         f"entries): the RTL lookup would need {n} entries over the reachable inputs of a {sm.n}-token "
                         f"row, more than da4ml's {MAX_TABLE}; narrow that HGQ2 table's input quantizer (fewer "
                         "integer/fraction bits) and retrain, or convert with --no-rtl")
    return lut_apply(var, lut)


def softmax_row(s: list[Any], sm: SoftmaxSpec, valid: list[Any] | None) -> list[Any]:
    """The ``hgq2`` softmax of one row of score variables ``s``; ``valid``: per element a 1-bit variable
    (None: all valid).  Returns the ``n`` probability variables (codes of ``sm.prob_fmt``)."""
    const = tracer().var.from_const
    n = len(s)
    if valid is None:
        sv = list(s)
    else:
        low = (sm.score_fmt.min_code - 1) * sm.score_fmt.lsb
        sv = [valid[j].msb_mux(s[j], const(low, hwconf=s[j].hwconf)) for j in range(n)]
    m = _tree(sv, lambda a, b: a.max_of(b))
    e = []
    for j in range(n):
        ej = _lookup(_q(m - s[j], sm.exp.in_fmt), sm.exp, sm, "exp")
        if valid is not None:
            ej = valid[j].msb_mux(ej, const(0.0, hwconf=ej.hwconf))
        e.append(ej)
    total = _tree(list(e), lambda a, b: a + b)
    r = _lookup(_q(total, sm.recip.in_fmt), sm.recip, sm, "inverse")
    return [_q(ej * r, sm.prob_fmt) for ej in e]


SOFTMAX_KINDS["hgq2"] = softmax_row
