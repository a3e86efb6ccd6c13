"""HGQ2 models through both back ends: an imported HGQ2 model (softmax kind ``hgq2``) converts with HLS and
RTL, and C-sim == golden == RTL simulation bit for bit.

The hgq2 softmax row alone is checked on da4ml's interpreters (seconds, wrapping sum, saturating exp input,
masked elements); the whole small model (8 tokens x 3 features, embed 8, 2 heads, random bit widths) then
goes through ``convert`` (CLI, .keras file) and ``verify --csim`` / ``verify --rtl`` (Icarus)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_module, require_tool


def _spec(n: int = 5, rin_bits: int = 7, seed: int = 0):
    from swinfpga.fixed import Fmt
    from swinfpga.lut import Lut, SoftmaxSpec

    rng = np.random.default_rng(seed)
    score = Fmt(True, 10, 4)
    ein, eout = Fmt(True, 6, 3, "RND", "SAT"), Fmt(False, 8, 1, "RND", "SAT")
    rin, rout = Fmt(True, rin_bits, 3, "RND", "WRAP"), Fmt(False, 8, 0, "RND", "SAT")
    prob = Fmt(True, 6, 2, "RND", "WRAP")
    exp = Lut("t_exp", "custom", ein, ein.min_code, 0, eout, tuple(int(c) for c in rng.integers(0, 256, 64)))
    rec = Lut("t_inv", "custom", rin, rin.min_code, 0, rout,
              tuple(int(c) for c in rng.integers(0, 256, 1 << rin_bits)))
    return SoftmaxSpec(n, score, exp, rec, prob, kind="hgq2")


def test_hgq2_softmax_row_trace_matches_golden():
    """The traced hgq2 row (da4ml int64 and Python interpreters) == golden, masked and not."""
    require_module("da4ml")
    from swinfpga.backends.rtl.trace import trace_softmax_row
    from swinfpga.ops.fx import softmax_codes

    sm = _spec()
    rng = np.random.default_rng(1)
    s = rng.integers(sm.score_fmt.min_code, sm.score_fmt.max_code + 1, (2000, sm.n))
    s[:500] = rng.integers(-40, 40, (500, sm.n))  # small differences: the exp table's interior
    valid = rng.random(s.shape) > 0.3
    valid[:, 0] = True
    for masked in (False, True):
        comb = trace_softmax_row(sm, masked)
        ref = softmax_codes(sm, s, valid if masked else None)
        assert len(np.unique(ref)) > 8  # many distinct probability codes: a comparison that can fail
        x = s * sm.score_fmt.lsb
        if masked:
            x = np.concatenate([x, valid.astype(np.float64)], axis=1)
        got = np.round(np.asarray(comb.predict(x)) / sm.prob_fmt.lsb).astype(np.int64)
        bad = np.argwhere(got != ref)
        assert bad.size == 0, f"masked={masked}: {len(bad)} mismatches, first row {bad[0][0]} element " \
                              f"{bad[0][1]}: got {got[tuple(bad[0])]} want {ref[tuple(bad[0])]}"
        for r in range(0, len(x), 400):
            py = np.asarray(comb(x[r]), dtype=np.float64)
            np.testing.assert_array_equal(np.round(py / sm.prob_fmt.lsb).astype(np.int64), ref[r])


def test_hgq2_inverse_table_too_large_is_a_clear_error():
    """An inverse table whose reachable input range exceeds da4ml's lookup limit: an error naming the table."""
    require_module("da4ml")
    from swinfpga.backends.rtl.trace import TraceError, trace_softmax_row
    from swinfpga.errors import SwinfpgaError
    from swinfpga.fixed import Fmt
    from swinfpga.lut import Lut, SoftmaxSpec

    sm = _spec()
    # 16-bit exp codes summed over 5 tokens, then an inverse input quantizer wide enough to keep them all
    eout = Fmt(False, 16, 1, "RND", "SAT")
    exp = Lut("t_exp", "custom", sm.exp.in_fmt, sm.exp.in_fmt.min_code, 0, eout,
              tuple(int(c) for c in np.random.default_rng(2).integers(0, 1 << 16, 64)))
    rin = Fmt(False, 20, 4, "RND", "WRAP")
    rec = Lut("t_inv", "custom", rin, 0, 0, sm.recip.out_fmt, tuple([1] * (1 << 20)))
    big = SoftmaxSpec(sm.n, sm.score_fmt, exp, rec, sm.prob_fmt, kind="hgq2")
    msg = r"layer 't': softmax inverse table 't_inv' \(.*1048576 entries.*16384.*--no-rtl"
    with pytest.raises(TraceError, match=msg) as ei:
        trace_softmax_row(big)
    assert isinstance(ei.value, SwinfpgaError)


# ----- the whole model: convert (CLI) -> C-sim and RTL simulation --------------------------------------
@pytest.fixture(scope="module")
def hgq2_project(tmp_path_factory):
    """An HGQ2 sequence classifier (tests/test_hgq2_import.py's, seed 12) saved as .keras and converted with
    HLS and RTL through the CLI (64 vectors)."""
    require_module("hgq")
    require_module("hls4ml")
    require_module("da4ml")
    from swinfpga.cli import main
    from tests.test_hgq2_import import _build

    d = tmp_path_factory.mktemp("hgq2be")
    path = d / "hgq2_seq.keras"
    _build(12).save(path)
    out = d / "proj"
    assert main(["convert", str(path), "-o", str(out), "--vectors", "64"]) == 0
    model = json.loads((out / "model.json").read_text())
    sms = [n["softmax"]["__softmax__"] for n in model["nodes"] if n["__type__"] == "WindowAttention"]
    assert [s.get("kind") for s in sms] == ["hgq2"]
    return out


def _verify(out, *args: str) -> dict:
    from swinfpga.cli import main

    rep = out.parent / f"verify{'_'.join(args)}.json"
    assert main(["verify", str(out), *args, "--json", str(rep)]) == 0
    return json.loads(rep.read_text())


@pytest.mark.csim
def test_hgq2_model_csim_matches_golden(hgq2_project):
    require_tool("g++")
    r = _verify(hgq2_project, "--csim")["csim"]
    assert r["samples"] == 64 and r["mismatches"] == 0, r["first"]
    y = np.load(hgq2_project / "vectors.npz")["y"]
    assert len(np.unique(y)) > 16  # golden outputs vary: the comparison can fail


@pytest.mark.rtl
def test_hgq2_model_rtl_matches_golden(hgq2_project):
    require_tool("iverilog")
    r = _verify(hgq2_project, "--rtl", "--sim", "icarus")["rtl"]
    assert r["samples"] == 64 and r["mismatches"] == 0, r


@pytest.mark.csim
def test_hgq2_model_csim_io_stream_every_layer(hgq2_project):
    """The same model with token streams between layers (io_stream): output and every layer == golden."""
    require_tool("g++")
    from swinfpga import golden
    from swinfpga.backends.hls4ml.csim import compile_model
    from swinfpga.ir.graph import Model

    m = Model.load(hgq2_project / "model.json")
    x = np.load(hgq2_project / "vectors.npz")["x"]
    cm = compile_model(m, 1, io_type="io_stream")
    np.testing.assert_array_equal(cm.predict_codes(x), golden.run(m, x).output, err_msg="io_stream output")
    traced = cm.trace_codes(x[:16])
    part = golden.run(m, x[:16]).outputs
    for node in m.nodes[1:]:
        np.testing.assert_array_equal(traced[node.name], part[node.name], err_msg=f"io_stream: layer {node.name}")
