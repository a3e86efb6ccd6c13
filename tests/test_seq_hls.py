"""hls4ml back end beyond square Swin windows (issue 11): token sequences as (N, 1) maps, global and
rectangular (wh, ww) windows, an absent relative-position bias, and the padding mask (TokenMask,
masked softmax keys, masked Pool).  C simulation == golden bit for bit, every layer, in io_parallel
(latency and resource strategies) and io_stream; the jet-16x3 example and the committed seq-digits
reference through `convert --no-rtl` + `verify --csim`.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest

from swinfpga import golden
from swinfpga.backends.hls4ml.plan import PlanError, plan_model
from swinfpga.backends.hls4ml.preflight import preflight
from swinfpga.fixed import Fmt
from swinfpga.ir import nodes as N
from swinfpga.ir.build import random_input, random_model
from swinfpga.ir.graph import Model
from swinfpga.models import StageSpec, SwinSpec
from tests.conftest import csim_cache

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "jet-16x3.yaml")
F8 = Fmt(True, 8, 3, "RND", "SAT")
RECT = SwinSpec("rect", (4, 8, 8), 0, 8, (StageSpec(2, 2, (2, 4), 1),), norm="bn", classes=3, in_fmt=F8)
NOBIAS = SwinSpec("seq-nobias", (15, 1, 3), 1, 8, (StageSpec(1, 2, "global", 0),), norm="ln", classes=4, in_fmt=F8,
                  seq=True, rel_bias=False)
MASKED = SwinSpec("seq-mask", (12, 1, 3), 1, 8, (StageSpec(2, 2, (4, 1), 0),), norm="ln", classes=3, in_fmt=F8,
                  seq=True, rel_bias=True, pad_mask=True)
SPECS = {s.name: s for s in (RECT, NOBIAS, MASKED)}


def _inputs(model: Model, spec: SwinSpec, n: int = 64) -> np.ndarray:
    """Random input codes; with a padding mask, sample i has its last (i % (N+1)) tokens all zero (padding;
    sample 0 none, sample N all)."""
    x = random_input(model, n, seed=1)
    if spec.pad_mask:
        t = spec.img[0]
        for i in range(n):
            x[i, t - i % (t + 1):] = 0
    return x


def _unmasked(model: Model) -> Model:
    """The same model with the padding mask ignored (attention and pool see every token)."""
    nodes = [n for n in model.nodes if not isinstance(n, N.TokenMask)]
    nodes = [replace(n, mask=None) if isinstance(n, N.WindowAttention | N.Pool) else n for n in nodes]
    return Model(model.name, tuple(nodes), model.output, model.meta)


# ----- plans (no g++) ---------------------------------------------------------------------------------
def test_plan_rectangular_window_constants() -> None:
    m = random_model(RECT, seed=3)
    attn = m.of_type(N.WindowAttention)
    assert [a.window_hw for a in attn] == [(2, 4), (2, 4)] and [a.shift for a in attn] == [0, 1]
    for io in ("io_parallel", "io_stream"):
        plans = plan_model(m, io_type=io)
        p = next(q for q in plans if q.ir_name == "s0b1.attn")
        for const in ("window_h = 2;", "window_w = 4;", "N = 8;", "n_windows = 4;", "has_bias = 1;", "shift = 1;",
                      "rows_buf = 4;"):
            assert f"static const int {const}" in p.config, const
        assert p.arrays[f"{p.name}_rel_bias"].size == 3 * 7 * 2  # (2wh-1)(2ww-1) rows x heads
        assert preflight(plans, "latency", 1, io_type=io).ok


def test_plan_without_bias_has_no_table() -> None:
    m = random_model(NOBIAS, seed=3)
    p = next(q for q in plan_model(m) if q.kind == "SwinWindowAttention")
    assert "static const int has_bias = 0;" in p.config and "static const int window_h = 15;" in p.config
    assert f"{p.name}_rel_bias" not in p.arrays and p.arrays[f"{p.name}_no_table"].size == 1
    assert not any(t.name == "rel_bias" for u in p.units for t in u.tables)


def test_plan_padding_mask_layers_and_fifos() -> None:
    from swinfpga.backends.hls4ml.graph import fifo_depths

    m = random_model(MASKED, seed=3)
    plans = plan_model(m, io_type="io_stream")
    kinds = {p.ir_name: p for p in plans}
    assert kinds["mask"].kind == "SwinTokenMask" and kinds["mask"].function == "token_mask_s"
    assert [kinds[a].function for a in ("s0b0.attn", "s0b1.attn", "pool")] == ["window_attention_ms"] * 2 + ["pool_ms"]
    assert "{input2}" in kinds["pool"].call and kinds["pool"].arrays["pool_inv_table"].size == 13
    depths = fifo_depths(plans)
    assert all(depths[("mask", r)] == 12 for r in ("s0b0_attn", "s0b1_attn", "pool"))  # the whole sequence
    assert preflight(plans, "latency", 1, io_type="io_stream").ok


def test_io_stream_mask_read_by_too_many_layers_is_refused() -> None:
    spec = replace(MASKED, stages=(StageSpec(7, 2, (4, 1), 0),))  # 7 attention blocks + the pool read the mask
    m = random_model(spec, seed=3)
    with pytest.raises(PlanError, match="mask: the padding mask is read by 8 layers"):
        plan_model(m, io_type="io_stream")
    plan_model(m, io_type="io_parallel")


# ----- C simulation -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def _csim_cache(tmp_path_factory):
    with csim_cache(tmp_path_factory):
        yield


@pytest.mark.csim
@pytest.mark.parametrize("name, io_type, strategy, reuse", [
    ("rect", "io_parallel", "latency", 1),
    ("rect", "io_stream", "resource", 2),
    ("seq-nobias", "io_parallel", "latency", 1),
    ("seq-mask", "io_parallel", "latency", 1),
    ("seq-mask", "io_stream", "latency", 1),
])
def test_csim_every_layer_bit_exact(name, io_type, strategy, reuse, _csim_cache) -> None:
    from swinfpga.backends.hls4ml.csim import compile_model

    spec = SPECS[name]
    m = random_model(spec, seed=3)
    x = _inputs(m, spec)
    ref = golden.run(m, x)
    if spec.pad_mask:  # the mask must matter for this test to mean anything
        assert not np.array_equal(golden.run(_unmasked(m), x).output, ref.output)
        assert int(ref.outputs["mask"].sum()) < ref.outputs["mask"].size
    plans = plan_model(m, reuse, strategy, io_type=io_type)
    assert preflight(plans, strategy, reuse, io_type=io_type).ok
    cm = compile_model(m, reuse, strategy=strategy, io_type=io_type, plans=plans)
    np.testing.assert_array_equal(cm.predict_codes(x), ref.output, err_msg=f"{name} output")
    traced = cm.trace_codes(x[:16])
    part = golden.run(m, x[:16]).outputs
    for node in m.nodes[1:]:
        np.testing.assert_array_equal(traced[node.name], part[node.name], err_msg=f"{name}: layer {node.name}")


@pytest.mark.csim
def test_jet_example_convert_and_verify(tmp_path, _csim_cache) -> None:
    """Acceptance: the issue's example file, random weights, --no-rtl: C-sim == golden on 64 vectors."""
    from swinfpga.cli import main

    out = tmp_path / "jet"
    assert main(["convert", EXAMPLE, "--random", "-o", str(out), "--no-rtl", "--vectors", "64"]) == 0
    model = json.loads((out / "model.json").read_text())
    attn = [n for n in model["nodes"] if n["__type__"] == "WindowAttention"]
    assert [(a["window"], a["resolution"], a["rel_bias"]) for a in attn] == [([16, 1], [16, 1], None)] * 2
    assert json.loads((out / "hls" / "hls_check.json").read_text())["ok"] is True
    rep = tmp_path / "verify.json"
    assert main(["verify", str(out), "--csim", "--json", str(rep)]) == 0
    r = json.loads(rep.read_text())["csim"]
    assert r["mismatches"] == 0 and r["samples"] == 64


@pytest.mark.csim
def test_seq_digits_whole_test_split(tmp_path, _csim_cache) -> None:
    """The committed seq-digits reference (8 row tokens, global attention): C-sim == golden on all 360."""
    from swinfpga.cli import main
    from swinfpga.data import digits_seq_split

    out = tmp_path / "sd"
    assert main(["convert", "seq-digits", "-o", str(out), "--no-rtl"]) == 0
    rep = tmp_path / "verify.json"
    assert main(["verify", str(out), "--csim", "--json", str(rep)]) == 0
    r = json.loads(rep.read_text())["csim"]
    assert r["mismatches"] == 0 and r["samples"] == len(digits_seq_split().x_test) == 360
