"""Timing model of a traced unit: da4ml 0.6's latency estimates, with variable x variable products
re-estimated as DSP48E2 multipliers.

da4ml estimates every operation's delay in latency units (about one adder level; ~1 ns on
UltraScale+, ``UNITS_PER_NS``) and ``to_pipeline`` places register stages every
``latency_cutoff`` units.  For a product of two variables (``vmul``) it charges one adder delay per
bit of the narrower operand, as for a LUT shift-and-add array: 8-9 units for 8 x 8 bits, 14 for the
softmax's 16 x 14 bits.  That is longer than a 5 ns stage at 200 MHz, so the pipeline got stages
that only register the operands on their way to the product (``verilog.stage_is_wiring``): 10 of
swin-digits' 87 unit stages, 26 of jet-16x3's 110.

Synthesis maps these products to DSP48E2 slices (Yosys ``synth_xilinx -family xcup`` does:
``bench/results/yosys_vs_da4ml.md``): one slice multiplies 27 x 18 bits (two's complement), so
every product here fits one slice.  Products of a variable and a constant (weights offloaded from
the adder graphs, :mod:`.offload`) are re-timed the same way.  :func:`dsp_products` re-times them as one DSP delay,
``DSP_PRODUCT_NS``, started at a register boundary when it would otherwise straddle one (da4ml's own
rule for an operation that crosses the cutoff), and re-propagates every later operation's latency
with da4ml's own per-operation delays.  Bit-exactness is untouched (only latencies change, which
decide where registers go).

Timing ASSUMPTION (no Vivado here; not verified by a timing report): a DSP48E2 used as a
combinational 27 x 18 multiplier (AREG = BREG = MREG = PREG = 0) settles within
``DSP_PRODUCT_NS`` = 4 ns on a -2 Virtex UltraScale+ part, leaving ~1 ns of a 5 ns (200 MHz) stage
for routing.  The figure was not read from a data sheet here: check it against AMD DS923 (DSP48E2
switching characteristics, combinational A/B -> P delay through the multiplier) or Vivado's timing
report (``swinfpga synth``) before relying on 200 MHz.  The slice's own pipeline registers
(A/B, M, P; UG579) are what make it run at its full clock; where a product does not fit one stage
(a faster clock, or a larger ``DSP_PRODUCT_NS``), ``to_pipeline`` again registers its operands in
front of it, registers that synthesis can absorb into the slice.
"""

from __future__ import annotations

import math
from typing import Any

# da4ml's latency model counts roughly one unit per adder level; ~1 unit per ns on UltraScale+
# (da4ml's own examples pair latency_cutoff=5 with a 5 ns clock).
UNITS_PER_NS = 1.0
DSP_PRODUCT_NS = 4.0  # assumed combinational delay of one DSP48E2 27 x 18 product (see module docstring)
DSP_A_BITS, DSP_B_BITS = 27, 18  # DSP48E2 multiplier port widths (two's complement)


def _signed_bits(v: Any) -> int:
    k, i, f = v.kif
    return int(k + i + f) + (0 if k else 1)  # an unsigned operand needs a zero sign bit in the slice


def fits_dsp(a: Any, b: Any) -> bool:
    """True when the product of variables ``a`` and ``b`` fits one DSP48E2 multiplier."""
    wa, wb = sorted((_signed_bits(a), _signed_bits(b)), reverse=True)
    return wa <= DSP_A_BITS and wb <= DSP_B_BITS


def _post_order(outputs: list[Any]) -> list[Any]:
    seen: set[int] = set()
    order: list[Any] = []
    for root in outputs:
        if id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            v, done = stack.pop()
            if done:
                order.append(v)
                continue
            if id(v) in seen:
                continue
            seen.add(id(v))
            stack.append((v, True))
            stack.extend((u, False) for u in v._from if id(u) not in seen)
    return order


def dsp_products(outputs: list[Any], cutoff: float, units: float) -> int:
    """Re-time the da4ml variables behind ``outputs`` in place: every variable x variable product
    that fits a DSP48E2 takes ``units`` latency units (aligned to the next multiple of ``cutoff``
    when it would cross one; ``cutoff <= 0``: no alignment), every other operation keeps the delay
    da4ml gave it, and latencies are propagated again from the inputs.  Constants take their
    consumer's latency (as da4ml does).  Returns the number of products re-timed."""
    order = _post_order(outputs)
    orig = {id(v): float(v.latency) for v in order}
    n = 0
    for v in order:
        if v.opr in ("const", "new") or not v._from:
            continue
        src = [u for u in v._from if u.opr != "const"]
        base0 = max((orig[id(u)] for u in src), default=0.0)
        base = max((float(u.latency) for u in src), default=0.0)
        dlat = orig[id(v)] - base0
        if v.opr == "vmul" and len(v._from) == 2 and src and fits_dsp(*v._from):  # a constant operand too (offload.py)
            dlat = units
            n += 1
            if cutoff > 0 and math.ceil((base + dlat) / cutoff) > math.ceil(base / cutoff):
                base = math.ceil(base / cutoff) * cutoff  # start at the register boundary
        v.latency = base + dlat
        for u in v._from:
            if u.opr == "const":
                u.latency = v.latency
    return n
