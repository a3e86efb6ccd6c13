"""HLS config struct of HGQ2's table softmax (softmax kind ``hgq2``; see :func:`swinfpga.ops.softmax.hgq2_softmax`).

Emits the ``SM`` struct that ``swin::softmax_row`` (hls_templates/swin_softmax.h) dispatches on: a
``hgq2_tag`` typedef, the exact difference and row-sum types, HGQ2's exp- and inverse-table input
quantizers (their ap rounding/overflow modes carry the SAT / WRAP of the golden requant) and the two
tables as ROM arrays of codes (one entry per input code).
"""

from __future__ import annotations

from typing import Any

from ...fixed import Fmt, acc_fmt
from ...lut import SoftmaxSpec


def diff_fmt(sm: SoftmaxSpec) -> Fmt:
    """Exact format of ``max(s) - s[j]`` (>= 0, at the score LSB; one bit wider than the scores)."""
    s = sm.score_fmt
    return acc_fmt(0, s.max_code - s.min_code, s.frac)


def sum_fmt(sm: SoftmaxSpec) -> Fmt:
    """Exact format of the row sum of ``n`` exp codes (frac of the exp table's output)."""
    o = sm.exp.out_fmt
    return acc_fmt(sm.n * min(o.min_code, 0), sm.n * max(o.max_code, 0), o.frac)


def emit_struct(cfg: Any, key: str, sm: SoftmaxSpec, ind: str = "    ") -> tuple[str, str]:
    """Append ``struct key {...}`` to the layer config ``cfg`` (a plan ``_Cfg``); return the (exp, inverse)
    table array references."""
    i2 = ind + "    "
    cfg.lines.append(f"{ind}struct {key} {{")
    cfg.lines.append(f"{i2}typedef void hgq2_tag;")
    cfg.const("n", sm.n, i2)
    cfg.typ(f"{key}_score", sm.score_fmt, "score_t", i2)
    cfg.typ(f"{key}_diff", diff_fmt(sm), "diff_t", i2)
    cfg.typ(f"{key}_exp_in", sm.exp.in_fmt, "exp_in_t", i2)
    cfg.typ(f"{key}_sum", sum_fmt(sm), "sum_t", i2)
    cfg.typ(f"{key}_inv_in", sm.recip.in_fmt, "inv_in_t", i2)
    cfg.typ(f"{key}_prob", sm.prob_fmt, "prob_t", i2)
    e = cfg.lut("exp_lut", sm.exp, sm.exp.in_fmt.width, i2)
    r = cfg.lut("recip_lut", sm.recip, sm.recip.in_fmt.width, i2)
    cfg.lines.append(f"{ind}}};")
    return e, r
