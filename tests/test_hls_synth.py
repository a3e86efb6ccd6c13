"""HLS project writing for both backends, synthesis report parsing, and (where Vitis/Vivado HLS is on
PATH) a real C synthesis."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from swinfpga.boards import load_board
from swinfpga.ir.build import random_model
from swinfpga.models import SWIN_DIGITS, SWIN_DIGITS_LN
from tests.conftest import require_module, require_tool

HLS_TOOLS = ("vitis_hls", "vivado_hls", "vitis-run")


def _have_hls() -> bool:
    return any(shutil.which(t) for t in HLS_TOOLS)


@pytest.mark.parametrize("backend", ["Vitis", "Vivado"])
def test_write_project_both_backends(backend: str, tmp_path: Path) -> None:
    """The written project (build_prj.tcl, firmware, generated weight headers) compiles (syntax) with g++."""
    hls4ml = require_module("hls4ml")
    gxx = require_tool("g++")
    from swinfpga.backends.hls4ml import write_hls_project

    out = tmp_path / "hls"
    write_hls_project(random_model(SWIN_DIGITS_LN), load_board("zcu102"), out, reuse_factor=2, backend=backend,
                      strategy="resource")
    for f in ("build_prj.tcl", "firmware/myproject.cpp", "firmware/parameters.h", "swinfpga_hls.json",
              "firmware/nnet_utils/swin_attention.h", "firmware/weights/swin_s0b0_attn.h", "hls_check.json",
              "hls_estimate.json"):
        assert (out / f).exists(), f
    cpp = (out / "firmware" / "myproject.cpp").read_text()
    assert "swin::window_attention<" in cpp and "swin::layernorm_rs<" in cpp and "swin::mlp_rs<" in cpp
    top = cpp[cpp.index("void myproject("):]
    assert "#pragma HLS DATAFLOW" in top and "#pragma HLS PIPELINE" not in top  # layers as units
    assert json.loads((out / "hls_check.json").read_text())["ok"] is True
    assert "xczu9eg" in (out / "project.tcl").read_text()
    ap = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    for rom in ([], ["-DSWIN_ROM_T(AP,C)=AP"]):  # C-sim ROM types, and the exact ap_int ROMs synthesis sees
        r = subprocess.run([gxx, "-std=c++17", "-fsyntax-only", *rom, f"-I{ap}", f"-I{out / 'firmware'}",
                            str(out / "firmware" / "myproject.cpp")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]


def test_types_are_asserted_after_passes() -> None:
    """A type changed behind swinfpga's back is caught by check_types."""
    require_module("hls4ml")
    from swinfpga.backends.hls4ml.graph import build_graph, check_types
    from swinfpga.backends.hls4ml.plan import plan_model
    from swinfpga.fixed import Fmt

    plans = plan_model(random_model(SWIN_DIGITS))
    g = build_graph(plans, Path("/nonexistent-never-written"), "xcvu13p-flga2577-2-e", 5.0)
    check_types(g, plans)
    att = next(p for p in plans if p.kind == "SwinWindowAttention")
    att.types["score_acc"] = Fmt(True, 12, 4)
    with pytest.raises(AssertionError, match="score_acc"):
        check_types(g, plans)


def test_summarize_report() -> None:
    from swinfpga.synth.hls import summarize

    rep = {"CSynthesisReport": {"TargetClockPeriod": "5.00", "EstimatedClockPeriod": "4.20", "BestLatency": "40",
                                "WorstLatency": "42", "IntervalMin": "1", "IntervalMax": "1", "LUT": "12345",
                                "FF": "678", "DSP": "9", "BRAM_18K": "0", "URAM": "0", "AvailableLUT": "1728000",
                                "AvailableFF": "3456000", "AvailableDSP": "12288", "AvailableBRAM_18K": "5376",
                                "AvailableURAM": "1280"}}
    s = summarize(rep)
    assert s["latency_cycles"] == 42 and s["ii_cycles"] == 1 and s["latency_ns"] == pytest.approx(42 * 4.2)
    assert s["resources"] == {"LUT": 12345, "FF": 678, "DSP": 9, "BRAM_18K": 0, "URAM": 0}
    with pytest.raises(RuntimeError, match="no C-synthesis report"):
        summarize({})


def test_missing_tool_message(tmp_path: Path, monkeypatch) -> None:
    from swinfpga.synth.hls import run_synth

    (tmp_path / "build_prj.tcl").write_text("")
    monkeypatch.setenv("PATH", str(tmp_path))  # no HLS tool reachable
    with pytest.raises(RuntimeError, match="vitis_hls"):
        run_synth(tmp_path)


@pytest.mark.synth
def test_synthesize_swin_digits(tmp_path: Path) -> None:
    if not _have_hls():
        pytest.skip("no vitis_hls / vivado_hls / vitis-run on PATH")
    from swinfpga.project import ConvertOptions, convert
    from swinfpga.synth.hls import run_synth

    convert(random_model(SWIN_DIGITS), tmp_path / "p", ConvertOptions(n_vectors=10, rtl=False))
    rep = run_synth(tmp_path / "p")
    assert rep["latency_cycles"] > 0 and rep["ii_cycles"] > 0 and rep["resources"]["LUT"] > 0
    est = json.loads((tmp_path / "p" / "hls" / "hls_estimate.json").read_text())["CSynthesisReport"]
    # the estimates must be the right order of magnitude where Vitis can tell
    assert 0.25 <= rep["latency_cycles"] / est["WorstLatency"] <= 4, (rep, est)
    assert 0.25 <= rep["ii_cycles"] / est["IntervalMax"] <= 4, (rep, est)
    for k in ("LUT", "DSP"):
        assert rep["resources"][k] <= 4 * est[k] + 100 and est[k] <= 4 * rep["resources"][k] + 100, (k, rep, est)


def test_write_stream_project_compiles(tmp_path: Path) -> None:
    """io_stream project: token streams, DATAFLOW top, sized skip FIFOs; compiles (syntax) on both ROM paths."""
    hls4ml = require_module("hls4ml")
    gxx = require_tool("g++")
    from swinfpga.backends.hls4ml import write_hls_project

    out = tmp_path / "hls"
    rep = write_hls_project(random_model(SWIN_DIGITS), load_board("vu13p"), out, reuse_factor=2, strategy="resource",
                            io_type="io_stream")
    assert rep.ok and json.loads((out / "swinfpga_hls.json").read_text())["io_type"] == "io_stream"
    cpp = (out / "firmware" / "myproject.cpp").read_text()
    assert "hls::stream<" in cpp and "#pragma HLS DATAFLOW" in cpp and "swin::window_attention_s<" in cpp
    assert "swin::mlp_rs_s<" in cpp and "depth=24" in cpp and "depth=16" in cpp
    ap = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    for rom in ([], ["-DSWIN_ROM_T(AP,C)=AP"]):
        r = subprocess.run([gxx, "-std=c++17", "-fsyntax-only", *rom, f"-I{ap}", f"-I{out / 'firmware'}",
                            str(out / "firmware" / "myproject.cpp")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
