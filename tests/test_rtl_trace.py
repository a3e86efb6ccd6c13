"""RTL tier, before any Verilog: every da4ml-traced unit of swin-digits and swin-digits-ln is
bit-exact against the golden model under da4ml's int64 interpreter (CombLogic.predict) on the
360 digits test images; segment plan and rtl.json structure."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_module, require_tool

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


@pytest.mark.parametrize("n", [1, 2, 4, 9, 16, 32, 49, 64])
def test_softmax_row_trace_bit_exact(n):
    """The traced softmax (leading-one normalisation in logic, reciprocal lookup over 2**B entries)
    equals the golden ``softmax_codes`` under da4ml's int64 interpreter, masked and unmasked, and
    its reciprocal table no longer grows with the row length."""
    require_module("da4ml")
    from swinfpga.backends.rtl.trace import trace_softmax_row
    from swinfpga.ir.build import S8
    from swinfpga.ops.fx import softmax_codes
    from swinfpga.softmax_sizing import design_softmax

    sm = design_softmax("t", S8, n)
    assert sm.recip.size <= 1 << 13
    rng = np.random.default_rng(n)
    s = np.concatenate([
        rng.integers(S8.min_code, S8.max_code + 1, (1500, n)),
        np.clip(rng.normal(0, 2 / S8.lsb, (1500, n)).round(), S8.min_code, S8.max_code).astype(np.int64),
        np.zeros((1, n), np.int64),  # equal scores: S = n, the largest normalisation shift
    ])
    valid = rng.random(s.shape) > 0.3
    valid[:, 0] = True
    for masked in (False, True):
        comb = trace_softmax_row(sm, masked)
        ref = softmax_codes(sm, s, valid if masked else None)
        x = s * S8.lsb
        if masked:
            x = np.concatenate([x, valid.astype(np.float64)], axis=1)
        got = np.round(np.asarray(comb.predict(x)) / sm.prob_fmt.lsb).astype(np.int64)
        bad = np.argwhere(got != ref)
        assert bad.size == 0, f"n={n} masked={masked}: {len(bad)} mismatches, first row {bad[0][0]} " \
                              f"element {bad[0][1]}: got {got[tuple(bad[0])]} want {ref[tuple(bad[0])]}"
        # da4ml's Python interpreter agrees with its int64 one (the key-width pitfall: TraceFx.ge)
        for r in range(0, len(x), 500):
            py = np.asarray(comb(x[r]), dtype=np.float64)
            assert np.array_equal(np.round(py / sm.prob_fmt.lsb).astype(np.int64), ref[r])


def test_global_attention_16_traces():
    """One WindowAttention with a single window over 16 tokens (global attention; random weights,
    dim 8, 2 heads) traces with default settings (its raw-sum lookup had 32,769 entries before) and
    is bit-exact under da4ml's interpreter.  49 and 64 tokens: bench/rtl/softmax_scaling.py."""
    tokens = 16
    require_module("da4ml")
    from swinfpga.backends.rtl.build import build_model, check_traced
    from swinfpga.ir.build import random_input

    m = _attention_model(tokens, 2, 8)
    built, _ = build_model(m, 200.0, top=f"gattn{tokens}")
    assert sum(check_traced(m, built, random_input(m, 32, seed=5)).values()) == 0


def _attention_model(tokens: int, heads: int, dim: int):
    """A one-window attention over ``tokens`` = h x w tokens (h, w as square as possible)."""
    from swinfpga.fixed import Fmt
    from swinfpga.ir import Model
    from swinfpga.ir.build import random_model
    from swinfpga.models import StageSpec, SwinSpec

    h = int(np.sqrt(tokens))
    assert h * h == tokens, "square windows only"
    spec = SwinSpec(name=f"gattn-{tokens}", img=(h, h, dim), patch=0, embed=dim,
                    stages=(StageSpec(depth=1, heads=heads, window=h, shift=0),), classes=0,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"))
    full = random_model(spec, seed=tokens)
    return Model(spec.name, tuple(full.nodes[:2]), full.nodes[1].name, {"test": True})


def test_icarus_global_attention_16(tmp_path):
    """Global attention over 16 tokens (one 4x4 window, 1 head, dim 2: the smallest unit whose softmax
    needs the normalisation in logic) simulates on Icarus with 0 mismatches vs golden, II 1.  Dim 8 /
    2 heads (704k LUT-eq) took 14 min on Icarus: bench/rtl/softmax_scaling.py --sim."""
    require_module("da4ml")
    require_module("cocotb")
    require_tool("iverilog")
    from swinfpga.backends.rtl.verify import verify_rtl
    from swinfpga.manifest import Project
    from swinfpga.project import ConvertOptions, convert

    m = _attention_model(16, 1, 2)
    convert(m, tmp_path / "prj", ConvertOptions(hls=False, n_vectors=6, force=True))
    rep = verify_rtl(Project.open(tmp_path / "prj"), simulator="icarus",
                     variants=[{"name": "stream", "n": 6, "idle_prob": 0.0, "bp_prob": 0.0}])
    assert rep.mismatches == 0, [str(m) for m in rep.first]
    assert rep.samples == 6 and rep.ii_cycles == 1
