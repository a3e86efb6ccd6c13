"""RTL tier, constant products on DSP48E2 (backends/rtl/offload.py): CSD digit counts, the offloaded
matmul bit-exact under da4ml's int64 interpreter, products shared and re-timed as DSPs, the policy
in the unit cache key, and one small Icarus simulation with the offload on (RTL == golden)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import icarus_bit_exact, require_module

pytestmark = pytest.mark.rtl


def _naf_digits(n: int) -> int:
    """Minimal number of signed power-of-two terms of ``n`` (brute force over a DP on bits)."""
    best: dict[int, int] = {0: 0, 1: 1}

    def f(v: int) -> int:
        if v in best:
            return best[v]
        if v % 2 == 0:
            r = f(v // 2)
        else:
            r = 1 + min(f((v - 1) // 2), f((v + 1) // 2))
        best[v] = r
        return r

    return f(abs(n))


def test_csd_digits_minimal():
    from swinfpga.backends.rtl.offload import csd_digits

    assert [csd_digits(n) for n in (0, 1, 2, 3, 5, 7, 11, 15, -7, 85)] == [0, 1, 1, 2, 2, 2, 3, 2, 2, 4]
    for n in range(-600, 600):
        assert csd_digits(n) == _naf_digits(n), n


def test_split_weight():
    from swinfpga.backends.rtl.offload import split_weight

    assert split_weight(0.0) == (0, 0, 0)
    assert split_weight(-0.375) == (-1, 3, -3)
    assert split_weight(12.0) == (1, 3, 2)
    assert split_weight(0.1)[0] == 1 and split_weight(0.1)[1] % 2 == 1


def _traced_matmul(w_codes: np.ndarray, min_digits: int, rows: int = 2, if_cheaper: bool = False):
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    from swinfpga.backends.rtl import offload

    k = w_codes.shape[0]
    inp = FixedVariableArrayInput((rows * k,))
    x = inp.quantize(1, 4, 2).reshape(rows, k)  # codes of an 7-bit signed format, LSB 1/4
    w = w_codes.astype(np.float64) * 2.0**-5
    with offload.active(offload.Offload(min_digits, if_cheaper)):
        y = offload.matmul(x, w, offload.current())
    return comb_trace(inp, y.reshape(rows * w.shape[1])), w


def test_offloaded_matmul_bit_exact_and_shared():
    """Weights with >= 2 CSD digits become products (one per activation and odd magnitude: 3, -6,
    12 in one row share one), the rest stay adders; int64 interpreter == numpy."""
    require_module("da4ml")
    from swinfpga.backends.rtl.offload import count_dsp

    rng = np.random.default_rng(0)
    w_codes = rng.integers(-40, 41, size=(6, 5))
    w_codes[0, :3] = [3, -6, 12]
    for d in (2, 3):
        comb, w = _traced_matmul(w_codes, d)
        x = rng.integers(-64, 64, size=(200, 12)) * 0.25
        want = (x.reshape(200, 2, 6) @ w).reshape(200, 10)
        np.testing.assert_array_equal(np.asarray(comb.predict(x)), want)
        n_const, n_var, cost = count_dsp(comb)
        from swinfpga.backends.rtl.offload import csd_digits, split_weight

        expect = {(r, i, split_weight(float(v))[1]) for r in range(2) for i in range(6) for v in w[i]
                  if split_weight(float(v))[1] > 1 and csd_digits(split_weight(float(v))[1]) >= d}
        assert (n_const, n_var) == (len(expect), 0)
        assert cost > 0
    comb0, _ = _traced_matmul(w_codes, 9)  # nothing has 9 digits: plain adder graph
    assert count_dsp(comb0)[:2] == (0, 0)


def test_offload_only_if_cheaper():
    """``if_cheaper``: a weight 3 shared by every column costs da4ml one adder in all (x*3 is a
    common subexpression), far less than summing 8 products: kept; a column of 4-digit weights
    (85, 83, 77, 109) is offloaded.  Both stay exact."""
    require_module("da4ml")
    from swinfpga.backends.rtl.offload import count_dsp

    rng = np.random.default_rng(1)
    x = rng.integers(-64, 64, size=(100, 8)) * 0.25
    for w_codes, n in ((np.full((4, 8), 3), 0), (np.array([[85], [83], [77], [109]]), 8)):
        comb, w = _traced_matmul(w_codes, 2, if_cheaper=True)
        assert count_dsp(comb)[0] == n
        np.testing.assert_array_equal(np.asarray(comb.predict(x)), (x.reshape(100, 2, 4) @ w).reshape(100, -1))
        comb_f, _ = _traced_matmul(w_codes, 2, if_cheaper=False)
        assert count_dsp(comb_f)[0] == 8  # forced: one product per activation and row


def test_offloaded_products_retimed_as_dsp():
    """A constant product takes the DSP delay (not da4ml's LUT shift-and-add estimate)."""
    require_module("da4ml")
    from da4ml.trace import FixedVariableArrayInput

    from swinfpga.backends.rtl import offload
    from swinfpga.backends.rtl.timing import dsp_products

    inp = FixedVariableArrayInput((1,))
    x = inp.quantize(1, 7, 0)[0]
    with offload.active(offload.Offload(2)):
        p = offload._product(x, 7)
        assert offload._product(x, 7) is p  # shared
    assert dsp_products([p], 5.0, 4.0) == 1
    assert float(p.latency) == 4.0


def test_offload_options_checked():
    from swinfpga.errors import SwinfpgaError
    from swinfpga.project import ConvertOptions

    with pytest.raises(SwinfpgaError, match="--dsp-offload"):
        ConvertOptions(dsp_offload="all")
    with pytest.raises(SwinfpgaError, match="--dsp-min-digits"):
        ConvertOptions(dsp_offload="auto", dsp_min_digits=0)


def _unit_model():
    from tests.test_rtl_unit import _unit_model as m

    return m()


def test_offload_unit_cache_key_and_trace():
    """The policy is part of the unit's cache key; offloaded units are bit-exact (int64
    interpreter vs golden), hold constant products and instantiate the use_dsp multiplier."""
    require_module("da4ml")
    from swinfpga.backends.rtl.build import build_model, check_traced, segment_hash
    from swinfpga.backends.rtl.offload import OFF, Offload
    from swinfpga.backends.rtl.plan import balance_segments
    from swinfpga.ir.build import random_input

    m = _unit_model()
    seg = balance_segments(m, None)[0][0]
    assert segment_hash(seg, 5.0, "u", OFF) == segment_hash(seg, 5.0, "u")
    assert segment_hash(seg, 5.0, "u", Offload(2)) != segment_hash(seg, 5.0, "u")
    assert segment_hash(seg, 5.0, "u", Offload(2)) != segment_hash(seg, 5.0, "u", Offload(2, False))
    base, _ = build_model(m, 200.0)
    built, _ = build_model(m, 200.0, offload=Offload(2, False))
    assert check_traced(m, built, random_input(m, 64, seed=2)) == {"seg0": 0, "seg1": 0}
    assert all(b.dsp_const > 0 for b in built) and all(b.dsp_const == 0 for b in base)
    assert all(b.dsp_var == a.dsp_var for a, b in zip(base, built, strict=True))
    for b in built:  # every product reaches the Verilog (none lost to da4ml's retiming)
        assert sum(t.count("multiplier_dsp #(") for t in b.files.values()) == b.dsp_const + b.dsp_var
    assert not any("multiplier_dsp" in t for b in base for t in b.files.values())


@pytest.fixture(scope="module")
def offload_project(tmp_path_factory):
    require_module("da4ml")
    from swinfpga.project import ConvertOptions, convert

    out = tmp_path_factory.mktemp("rtl_offload") / "prj"
    convert(_unit_model(), out, ConvertOptions(hls=False, n_vectors=16, force=True, dsp_offload="auto"))
    return out


def test_icarus_offload_bit_exact(offload_project):
    rtl = json.loads((offload_project / "rtl" / "rtl.json").read_text())
    assert rtl["dsp_offload"]["min_digits"] == 2 and rtl["dsp_offload"]["const_products"] > 0
    assert (offload_project / "rtl" / "multiplier_dsp.v").exists()
    icarus_bit_exact(offload_project, 12, 6)


def test_pipeline_keeps_constant_products():
    """da4ml's pipeline retiming re-traces a product with a constant operand as shift-and-add (seen
    on the patch embedding of swin-free-digits up to session 6, and of swin-digits before it was
    pruned; its weights are kept here so the quirk stays reproducible when the models are retrained);
    ``verilog.pipeline`` keeps every product."""
    require_module("da4ml")
    from da4ml.trace import FixedVariableArrayInput, comb_trace, to_pipeline

    from swinfpga.backends.rtl import offload
    from swinfpga.backends.rtl.timing import dsp_products
    from swinfpga.backends.rtl.verilog import pipeline
    # swin-free-digits' patch embedding (4 x 16, ap_fixed<8,3> codes) at its ap_ufixed<5,1> pixels
    codes = np.array([[-56, 36, -62, 52, -10, -42, -70, -42, 58, 10, 68, -6, 44, 70, 32, -100],
                      [-8, -6, -28, 40, -45, -64, 8, 58, 74, -40, -28, -8, 28, -64, 80, 36],
                      [-56, 40, 46, 24, -50, -16, 2, 32, -22, -42, 28, -96, -74, -48, -62, 80],
                      [20, 36, -62, -16, 1, 34, 78, 40, -68, -36, 20, 34, -56, -32, -72, -6]])
    w = codes.astype(np.float64) * 2.0**-5
    inp = FixedVariableArrayInput((w.shape[0],))
    x = inp.quantize(0, 1, 4).reshape(1, -1)
    pol = offload.Offload(2, if_cheaper=False)
    with offload.active(pol):
        y = offload.matmul(x, w, pol)
    dsp_products(list(np.asarray(y._vars).ravel()), 5.0, 4.0)
    comb = comb_trace(inp, y.ravel())
    n = offload.count_dsp(comb)[0]
    assert n > 0
    lost = sum(offload.count_dsp(s)[0] for s in to_pipeline(comb, 5.0, verbose=False).solutions)
    assert lost < n  # what the fallback is for (if da4ml stops doing this, the fallback is moot)
    assert sum(offload.count_dsp(s)[0] for s in pipeline(comb, 5.0).solutions) == n


def test_auto_respects_board_dsps():
    """``auto`` raises the digit threshold while the products exceed the board's DSP48E2s, and
    builds without offload when even the variable products do not fit."""
    require_module("da4ml")
    from dataclasses import replace

    from swinfpga.backends.rtl.build import build_offloaded, dsp_products
    from swinfpga.boards import load_board

    m = _unit_model()
    big = load_board("vu13p")
    built, _, pol = build_offloaded(m, big, "auto")
    assert pol.min_digits == 2 and dsp_products(built)[0] > 0
    n_var = dsp_products(built)[1]
    exact = replace(big, resources=replace(big.resources, dsp=n_var))  # room for no constant product
    built, _, pol = build_offloaded(m, exact, "auto")
    assert pol.min_digits > 2 and dsp_products(built) == (0, n_var)
    tiny = replace(big, resources=replace(big.resources, dsp=n_var - 1))  # nothing fits: no offload
    built, _, pol = build_offloaded(m, tiny, "auto")
    assert pol.min_digits == 0 and dsp_products(built) == (0, n_var)
    built, _, pol = build_offloaded(m, big, "none")
    assert pol.min_digits == 0 and dsp_products(built)[0] == 0
