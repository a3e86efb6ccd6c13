"""Synthesizability pre-flight and estimates: pure Python over the plans that write the C++ (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swinfpga.backends.hls4ml.plan import plan_model
from swinfpga.backends.hls4ml.preflight import UNROLL, PreflightError, estimate, preflight
from swinfpga.boards import load_board
from swinfpga.ir.build import random_model
from swinfpga.models import SWIN_DIGITS, SWIN_DIGITS_LN, SWIN_T_STAGE1


def _pf(spec, rf=1, strategy="latency", layout="layers", io_type="io_parallel"):
    return preflight(plan_model(random_model(spec), rf, strategy, layout, io_type), strategy, rf, layout, None,
                     io_type)


@pytest.mark.parametrize("spec,rf,strategy", [(SWIN_DIGITS, 1, "latency"), (SWIN_DIGITS, 4, "resource"),
                                              (SWIN_DIGITS_LN, 1, "latency"), (SWIN_DIGITS_LN, 4, "resource")],
                         ids=lambda v: getattr(v, "name", v))
def test_reference_designs_pass(spec, rf, strategy) -> None:
    rep = _pf(spec, rf, strategy)
    assert rep.ok, [(f.ir_name, w, c.limit, c.value) for f, w, c in rep.failures()]
    js = json.loads(json.dumps(rep.to_json()))
    assert js["ok"] is True and len(js["functions"]) == len(random_model(spec).nodes)
    att = next(f for f in rep.functions if f.function == "swin::window_attention")
    rows = next(u for u in att.units if u.label == "Heads/Rows")
    assert rows.ii == rf and rows.table_reads_per_cycle["exp_table"] == -(-4 // rf)  # 4 tokens per window
    assert rows.calls == 4 * 2  # one engine: 4 windows x 2 heads, in sequence


def test_flat_single_pipeline_is_rejected() -> None:
    """Today's (old) layout: the top PIPELINE unrolls the whole model -> far past the unroll limit."""
    rep = _pf(SWIN_DIGITS, layout="flat")
    assert not rep.ok
    top = next(f for f in rep.functions if f.function == "myproject")
    u = top.units[0]
    assert u.const_mults > 100_000 and u.var_mults > 5_000  # ~140k constant and 6k variable products
    bad = [c for c in u.checks if not c.ok]
    assert bad[0].limit == UNROLL.key and "XFORM 203-504" in bad[0].source and "per-layer functions" in bad[0].fix
    msg = str(PreflightError(rep))
    assert "myproject" in msg and "unrolled_multiplies" in msg and "fix:" in msg


def test_swin_t_needs_resource_and_stream() -> None:
    """Swin-T stage 1: latency RF1 breaks the unroll limit in QKV (fix names the strategy); resource RF16
    shares the multipliers but io_parallel's 301k-element feature maps break the partition limit
    (fix names io_stream)."""
    lat = _pf(SWIN_T_STAGE1, 1, "latency")
    f, where, c = next((f, w, c) for f, w, c in lat.failures() if c.limit == UNROLL.key)
    assert f.function == "swin::window_attention" and where == "QKV" and c.value == 3 * 96 * 96
    assert "--strategy resource" in c.fix
    res = _pf(SWIN_T_STAGE1, 16, "resource")
    assert all(c.limit != UNROLL.key for _, _, c in res.failures())
    assert any("io_stream" in c.fix and c.value == 56 * 56 * 96 for _, _, c in res.failures())
    msg = str(PreflightError(res))
    assert "--io-type io_stream" in msg and "s0b0.attn" in msg or "input" in msg


def test_resource_strategy_shares_multipliers() -> None:
    """Resource RF R: each Linear holds ceil(n_in/R)*n_out multipliers, reused R cycles per token."""
    m = random_model(SWIN_DIGITS_LN)
    for rf in (1, 4, 16):
        rep = preflight(plan_model(m, rf, "resource"), "resource", rf)
        mlp = next(f for f in rep.functions if f.ir_name == "s0b0.mlp")
        fc1 = next(u for u in mlp.units if u.label == "fc1/Reuse")
        assert fc1.ii == 1 and fc1.trips == rf and fc1.multipliers == -(-16 // rf) * 32 and fc1.const_mults == 0


def test_estimates_are_report_shaped() -> None:
    board = load_board("vu13p")
    m = random_model(SWIN_DIGITS)
    e1 = estimate(plan_model(m, 1, "latency"), board)
    e8 = estimate(plan_model(m, 8, "resource"), board)
    assert e1["source"] == "estimate"
    for e in (e1, e8):
        cs = e["CSynthesisReport"]
        for k in ("BestLatency", "WorstLatency", "IntervalMax", "LUT", "FF", "DSP", "BRAM_18K", "AvailableDSP"):
            assert k in cs
        assert set(e["Layers"]) == {n.name.replace(".", "_") for n in m.nodes[1:]}
        assert cs["WorstLatency"] == sum(v["WorstLatency"] for v in e["Layers"].values())
    # sharing multipliers costs cycles and saves LUTs
    assert e8["CSynthesisReport"]["WorstLatency"] > e1["CSynthesisReport"]["WorstLatency"]
    assert e8["CSynthesisReport"]["LUT"] < e1["CSynthesisReport"]["LUT"]
    from swinfpga.synth.hls import summarize

    s = summarize(e1)
    assert s["latency_cycles"] == e1["CSynthesisReport"]["WorstLatency"]


def test_swin_t_stream_resource_rf16_passes() -> None:
    """The acceptance configuration: io_stream + resource RF16 passes; the suggestion search finds it."""
    from swinfpga.backends.hls4ml.preflight import suggest

    rep = _pf(SWIN_T_STAGE1, 16, "resource", io_type="io_stream")
    assert rep.ok, [(f.ir_name, w, c.limit, c.value) for f, w, c in rep.failures()]
    att = next(f for f in rep.functions if f.function == "swin::window_attention_s")
    read = next(u for u in att.units if u.label == "Chunks/Read")
    assert read.partitioned_elements == {"xb": 96}  # line buffer: 7 rows x 56 tokens in 96 channel banks
    bad = _pf(SWIN_T_STAGE1, 1, "latency")
    want = "--strategy resource --reuse-factor 16 --io-type io_stream"
    assert suggest(random_model(SWIN_T_STAGE1), bad).startswith(want)


def test_residual_fifos_sized_from_schedule() -> None:
    """io_stream: the skip FIFO of each residual holds what the attention branch buffers before its first
    output (window rows x width tokens; the whole map for the shifted window) plus slack."""
    pytest.importorskip("hls4ml")
    from swinfpga.backends.hls4ml.graph import fifo_depths

    plans = plan_model(random_model(SWIN_DIGITS), 1, "latency", io_type="io_stream")
    d = fifo_depths(plans)
    assert d[("patch_embed", "s0b0_add1")] == 2 * 4 + 8  # W-MSA: 2 token rows of 4
    assert d[("s0b0_add2", "s0b1_add1")] == 4 * 4 + 8  # SW-MSA (shift 1): the whole 4x4 map
    assert d[("s0b0_add1", "s0b0_add2")] == 1 + 8  # MLP: token by token


def test_cli_convert_refuses_with_exit_2(tmp_path) -> None:
    """`swinfpga convert` on a design the pre-flight rejects exits 2 naming the layer, limit and fix."""
    import subprocess
    import sys

    from tests.conftest import require_module

    require_module("hls4ml")
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "t"
    r = subprocess.run([sys.executable, "-m", "swinfpga.cli", "convert", "swin-t-stage1", "--random", "--no-rtl",
                        "--vectors", "1", "-o", str(out)], capture_output=True, text=True, cwd=root, timeout=600)
    assert r.returncode == 2, r.stderr[-2000:]
    err = " ".join((r.stdout + r.stderr).split())  # the console wraps long lines
    assert "s0b0.attn" in err and "unrolled_multiplies" in err and "--io-type io_stream" in err
    assert "--strategy resource --reuse-factor 16 --io-type io_stream" in err and not out.exists()
