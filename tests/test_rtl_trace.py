"""RTL tier, before any Verilog: every da4ml-traced unit of swin-digits and swin-digits-ln is
bit-exact against the golden model under da4ml's int64 interpreter (CombLogic.predict) on the
360 digits test images; segment plan and rtl.json structure."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_module

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize("name", ["swin-digits", "swin-digits-ln"])
def test_traced_units_bit_exact(name):
    require_module("da4ml")
    from swinfpga.backends.rtl.build import build_model, check_traced
    from swinfpga.data import digits_split
    from swinfpga.project import resolve_model

    model = resolve_model(name, random_ok=True)
    built, cutoff = build_model(model, 200.0)
    assert cutoff == 5.0
    x = digits_split().x_test
    assert x.shape[0] >= 200
    bad = check_traced(model, built, x)
    assert bad == {b.seg.parent or b.seg.name: 0 for b in built}  # balanced segments: checked per segment


def test_segment_plan_swin_digits():
    from swinfpga.backends.rtl.plan import gather_groups, scatter_groups, split_segments
    from swinfpga.ir.build import random_input, random_model
    from swinfpga.models import SWIN_DIGITS

    m = random_model(SWIN_DIGITS)
    segs = split_segments(m)
    assert [s.groups for s in segs] == [4, 4, 1]
    assert [s.dst for s in segs] == ["s0b0.add2", "s0b1.add2", "head"]
    assert segs[0].mask is None and segs[1].mask is not None and segs[2].mask is None
    # gather/scatter of an identity "unit" on a token-map segment reproduces the frame
    x = np.arange(2 * 4 * 4 * 16).reshape(2, 4, 4, 16)
    g = gather_groups(segs[1], x)[..., : segs[1].n_in]
    assert np.array_equal(scatter_groups(segs[1], g), x)
    _ = random_input
