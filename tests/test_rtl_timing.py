"""Timing model of traced units (swinfpga/backends/rtl/timing.py): variable x variable products are
timed as one DSP48E2 (started at a stage boundary when they would straddle one), so the pipeline
holds no register-only stages in front of them; values are untouched."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_module


def _product_chain(bits_a: int = 8, bits_b: int = 8):
    """((x0 + x1) + x2) * x3, then + x0: a product whose operand arrives mid-stage."""
    from da4ml.trace import FixedVariableArrayInput

    inp = FixedVariableArrayInput((4,))
    a = inp[:3].quantize(1, bits_a - 1, 0)
    b = inp[3:].quantize(1, bits_b - 1, 0)
    s = (a[0] + a[1]) + a[2]
    p = s * b[0]
    return inp, s, p, p + a[0]


def test_product_retimed_as_one_dsp_and_aligned():
    require_module("da4ml")
    from swinfpga.backends.rtl.timing import dsp_products

    _, s, p, out = _product_chain()
    assert float(p.latency) - float(s.latency) > 5  # da4ml: one adder delay per operand bit
    base = float(s.latency)
    assert 0 < base % 5 and base % 5 + 4 > 5  # straddles a 5-unit stage
    assert dsp_products([out], 5.0, 4.0) == 1
    assert float(p.latency) == (base // 5 + 1) * 5 + 4  # starts at the next boundary
    assert float(out.latency) > float(p.latency)
    _, s, p, out = _product_chain()
    dsp_products([out], -1.0, 4.0)  # no cutoff: no alignment
    assert float(p.latency) == float(s.latency) + 4


def test_too_wide_product_keeps_da4mls_delay():
    require_module("da4ml")
    from swinfpga.backends.rtl.timing import dsp_products, fits_dsp

    _, s, p, out = _product_chain(26, 18)  # s: a sum of three 26-bit values, 28 bits
    assert sum(s.kif) == 28 and not fits_dsp(*p._from)
    lat = float(p.latency)
    assert dsp_products([out], 5.0, 4.0) == 0
    assert float(p.latency) == lat
    assert fits_dsp(*_product_chain(25, 18)[2]._from)  # 27 x 18
    assert not fits_dsp(*_product_chain(25, 19)[2]._from)


@pytest.mark.parametrize("retime", [False, True])
def test_pipeline_has_no_register_only_stage(retime):
    require_module("da4ml")
    from da4ml.codegen.rtl.verilog import pipeline_logic_gen
    from da4ml.trace import comb_trace, to_pipeline

    from swinfpga.backends.rtl.timing import dsp_products
    from swinfpga.backends.rtl.verilog import stage_is_wiring

    inp, _, _, out = _product_chain()
    if retime:
        dsp_products([out], 5.0, 4.0)
    comb = comb_trace(inp, out)
    pipe = to_pipeline(comb, 5.0, verbose=False)
    files = pipeline_logic_gen(pipe, "u", print_latency=False)
    wiring = [stage_is_wiring(files[f"u_stage{k}"]) for k in range(len(pipe.solutions))]
    assert any(wiring) != retime, wiring  # da4ml's own model leaves operand-only stages; the DSP model none
    x = np.array([[3, -7, 12, -5], [-128, -128, -128, -128], [127, 127, 127, 127]], dtype=np.float64)
    np.testing.assert_array_equal(comb.predict(x).ravel(), (x[:, 0] + x[:, 1] + x[:, 2]) * x[:, 3] + x[:, 0])
