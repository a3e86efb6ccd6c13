"""The Vivado Tcl written for the open RTL: generated for every board file and run by ``tclsh`` with
Vivado's commands stubbed (tests/fixtures/vivado/stub_vivado.tcl), so a typo, an unbalanced brace, a
command the stubs do not know or a source file that does not resolve fails."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from swinfpga.boards import list_boards, load_board
from swinfpga.synth import vivado as V
from tests.conftest import require_tool

STUB = Path(__file__).parent / "fixtures" / "vivado" / "stub_vivado.tcl"
SOURCES = ["swinfpga_top.v", "swinfpga_top_s0.v", "swinfpga_top_s0_unit.v", "lookup_table.v"]
MEMS = ["table_6cf1f37c-c9d2-4897-bf5c-946a5205a26c.mem", "table_ef6d9a99.mem"]


def fake_rtl(root: Path, sources=SOURCES, mems=MEMS) -> Path:
    """An rtl/ folder as convert writes it (rtl.json + the files it lists); the Verilog is a placeholder."""
    rtl = root / "rtl"
    rtl.mkdir(parents=True)
    for s in sources:
        (rtl / s).write_text(f"// {s}\n")
    for m in mems:
        (rtl / m).write_text("0\n1\n")
    (rtl / "rtl.json").write_text(json.dumps({"top": "swinfpga_top", "files": list(sources), "roms": list(mems),
                                              "content_hash": "feedc0de" * 8}))
    return rtl


def run_stubbed(script: Path, log: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SWINFPGA_STUB_LOG": str(log), "SWINFPGA_STUB_FIXTURES": "0"}
    return subprocess.run(["tclsh", str(STUB), str(script), *args], cwd=cwd or script.parent, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("board", list_boards())
def test_tcl_for_every_board_runs_in_tclsh(board, tmp_path):
    require_tool("tclsh")
    b = load_board(board)
    rtl = fake_rtl(tmp_path / "prj")
    flow = V.write_vivado_flow(rtl, b, "m")
    vd = rtl / "vivado"
    assert flow.part == b.part and flow.period_ns == pytest.approx(1000.0 / b.clock_mhz, abs=1e-3)
    assert V.load_flow(rtl) == flow
    log = tmp_path / "calls.log"
    elsewhere = tmp_path / "elsewhere"  # the script must not depend on the working directory
    elsewhere.mkdir()
    r = run_stubbed(vd / "run.tcl", log, cwd=elsewhere)
    assert r.returncode == 0, r.stderr + r.stdout
    calls = [ln.split() for ln in log.read_text().splitlines()]
    names = [c[0] for c in calls]
    assert names == ["read_verilog", "read_mem", "create_clock", "set_input_delay", "set_output_delay",
                     "read_xdc", "synth_design", "write_checkpoint", "utilization", "timing_summary",
                     "critical_path", "opt_design", "place_design", "phys_opt_design", "route_design",
                     "write_checkpoint", "utilization", "utilization_hier", "timing_summary", "critical_path"]
    assert calls[0] == ["read_verilog", str(len(SOURCES))] and calls[1] == ["read_mem", str(len(MEMS))]
    assert calls[2] == ["create_clock", f"{flow.period_ns:.3f}", "clk", "clk"]
    assert calls[3:5] == [["set_input_delay", "0.000", "4"], ["set_output_delay", "0.000", "3"]]  # not on clk
    assert calls[6] == ["synth_design", "swinfpga_top", b.part]
    assert [c[1] for c in calls if c[0] in ("utilization", "utilization_hier", "timing_summary", "critical_path")] == [
        "synth_utilization.rpt", "synth_timing_summary.rpt", "synth_critical_path.rpt",
        "utilization.rpt", "utilization_hier.rpt", "timing_summary.rpt", "critical_path.rpt"]
    info = dict(ln.split(" ", 1) for ln in (vd / "reports" / V.RUN_INFO).read_text().splitlines())
    assert info == {"rtl_hash": "feedc0de" * 8, "part": b.part, "top": "swinfpga_top",
                    "period_ns": f"{flow.period_ns:.3f}", "stage": "post-route"}


def test_synth_only_stops_after_synthesis(tmp_path):
    require_tool("tclsh")
    rtl = fake_rtl(tmp_path / "prj", mems=[])
    V.write_vivado_flow(rtl, load_board("kv260"))
    log = tmp_path / "calls.log"
    r = run_stubbed(rtl / "vivado" / "run.tcl", log, "synth_only")
    assert r.returncode == 0, r.stderr
    names = [ln.split()[0] for ln in log.read_text().splitlines()]
    assert "read_mem" not in names  # no ROMs, no read_mem
    assert "route_design" not in names and names[-1] == "critical_path"
    assert "stage post-synthesis" in (rtl / "vivado" / "reports" / V.RUN_INFO).read_text()


@pytest.mark.parametrize("damage", [
    ("    route_design\n", "    route_design\n}\n"),           # unbalanced brace
    ("    place_design\n", "    place_desgn\n"),               # typo: a command Vivado does not have
    ("read_xdc [file join $here clock.xdc]", "read_xdc clock.xdc"),  # a path that does not resolve
])
def test_stubbed_tclsh_catches_broken_scripts(damage, tmp_path):
    """The check above can fail: damaged copies of a generated script are rejected."""
    require_tool("tclsh")
    rtl = fake_rtl(tmp_path / "prj")
    V.write_vivado_flow(rtl, load_board("vu13p"))
    tcl = rtl / "vivado" / "run.tcl"
    text = tcl.read_text()
    assert damage[0] in text
    tcl.write_text(text.replace(damage[0], damage[1], 1))
    r = run_stubbed(tcl, tmp_path / "calls.log")
    assert r.returncode != 0


def test_missing_rtl_file_is_a_user_error(tmp_path):
    rtl = fake_rtl(tmp_path / "prj")
    (rtl / MEMS[0]).unlink()
    with pytest.raises(V.VivadoError, match=MEMS[0]):
        V.write_vivado_flow(rtl, load_board("vu13p"))


def test_odd_file_names_are_quoted_or_refused(tmp_path):
    require_tool("tclsh")
    rtl = fake_rtl(tmp_path / "prj", sources=["swinfpga_top.v", "a b$c.v"], mems=[])
    V.write_vivado_flow(rtl, load_board("vu13p"))
    r = run_stubbed(rtl / "vivado" / "run.tcl", tmp_path / "calls.log")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "calls.log").read_text().splitlines()[0] == "read_verilog 2"
    with pytest.raises(V.VivadoError, match="rename"):
        V._tcl_word("bad{name}.v")


def test_clock_xdc_period():
    lines = [ln for ln in V.clock_xdc(3.333).splitlines() if not ln.startswith("#")]
    assert lines[0] == "create_clock -period 3.333 -name clk [get_ports clk]"
    assert lines[1] == "set_input_delay -clock clk 0.000 [get_ports -filter {DIRECTION == IN && NAME != clk}]"
