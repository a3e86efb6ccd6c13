"""``swinfpga synth DIR --rtl`` and ``swinfpga report DIR --vivado-reports PATH`` on a converted
project (a small random-weight attention unit, Verilog from the RTL cache).

Without Vivado the CLI exits 2 with how to run the Tcl elsewhere.  A stand-in ``vivado`` (a shell
script running the project's real run.tcl in ``tclsh`` with Vivado's commands stubbed, writing the
fixture reports) makes the whole flow run, locally and on Dask clusters.  The last test runs the
real Vivado and skips only when ``vivado`` is not on PATH."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from swinfpga.cli import main
from swinfpga.synth import vivado as V
from tests.conftest import require_module, require_tool

FIX = Path(__file__).parent / "fixtures" / "vivado"
STUB = FIX / "stub_vivado.tcl"
ACHIEVED = 5.0 - 0.412  # the routed fixtures: 5 ns target, WNS 0.412 ns


def _unit_model():
    from swinfpga.fixed import Fmt
    from swinfpga.ir.build import random_model
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec(name="attn-unit", img=(4, 4, 8), patch=0, embed=8,
                    stages=(StageSpec(depth=2, heads=2, window=2, shift=1),), classes=0,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"))
    return random_model(spec, seed=3)  # the same unit as tests/test_rtl_unit.py: one cached trace


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    require_module("da4ml")
    from swinfpga.project import ConvertOptions, convert

    out = tmp_path_factory.mktemp("vivado_flow") / "prj"
    convert(_unit_model(), out, ConvertOptions(hls=False, n_vectors=4, force=True))
    return out


@pytest.fixture
def project(converted, tmp_path):
    """A fresh copy of the converted project per test."""
    dst = tmp_path / "prj"
    shutil.copytree(converted, dst)
    return dst


@pytest.fixture
def stub_vivado(tmp_path, monkeypatch):
    """A ``vivado`` on PATH that runs ``-source FILE [-tclargs ...]`` in tclsh with the stubs."""
    tclsh = require_tool("tclsh")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "vivado"
    exe.write_text(
        "#!/bin/sh\n"
        "# test stand-in for: vivado -mode batch -nojournal -log LOG -source FILE [-tclargs ARGS]\n"
        'src=""; log="vivado.log"; targs=""\n'
        "while [ $# -gt 0 ]; do case \"$1\" in\n"
        '  -source) src="$2"; shift 2;; -log) log="$2"; shift 2;;\n'
        '  -tclargs) shift; targs="$*"; break;; *) shift;; esac; done\n'
        f'exec {tclsh} {STUB} "$src" $targs > "$log" 2>&1\n')
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SWINFPGA_STUB_FIXTURES", raising=False)
    return exe


def _predicted_cycles(prj: Path) -> int:
    return int(json.loads((prj / "rtl" / "rtl.json").read_text())["predicted"]["latency_cycles"])


def _check_vivado_report(prj: Path) -> dict:
    rep = json.loads((prj / "report.json").read_text())
    viv = rep["vivado"]
    assert rep["resources"]["source"] == "vivado (post-route, out-of-context)"  # replaces the Yosys estimate
    assert rep["resources"]["total"] == {"lut": 48213, "ff": 61877, "dsp": 544, "bram36": 3.5, "uram": 2}
    assert rep["utilization_pct"]["LUT"] == pytest.approx(100.0 * 48213 / 1728000)
    assert viv["timing"]["wns_ns"] == 0.412 and viv["target_period_ns"] == 5.0
    assert viv["achieved_period_ns"] == pytest.approx(ACHIEVED)
    cycles = _predicted_cycles(prj)
    assert viv["latency_cycles"] == cycles
    assert viv["latency_ns"] == pytest.approx(cycles * ACHIEVED)
    md = (prj / "report.md").read_text()
    assert "Vivado, out-of-context, post-route" in md and "ESTIMATE" not in md
    assert f"{cycles} cycles x {ACHIEVED:.3f} ns" in md
    rtl = json.loads((prj / "rtl" / "rtl.json").read_text())
    s0 = rtl["segments"][0]  # per-instance rows next to da4ml's cost of the same unit
    assert f"u_unit | {s0['unit']} | 23,877 | 27,301 | 288 | 2.5 | 1 | {s0['da4ml_cost']:,.0f} |" in md
    return rep


def test_convert_writes_the_vivado_flow(converted):
    vd = converted / "rtl" / "vivado"
    flow = V.load_flow(converted / "rtl")
    rtl = json.loads((converted / "rtl" / "rtl.json").read_text())
    assert (vd / "run.tcl").exists() and (vd / "clock.xdc").exists()
    assert flow.part == "xcvu13p-flga2577-2-e" and flow.period_ns == 5.0 and flow.top == rtl["top"]
    assert list(flow.sources) == rtl["files"] and list(flow.mems) == rtl["roms"] and flow.mems
    assert flow.rtl_hash == rtl["content_hash"]


def test_synth_rtl_without_vivado_exits_2_with_the_way_out(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    assert main(["synth", str(project), "--rtl"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "`vivado` is not on PATH" in err
    assert "vivado -mode batch -nojournal -log vivado.log -source run.tcl" in err
    assert f"swinfpga report {project} --vivado-reports" in err
    assert not (project / "report.json").exists()


@pytest.mark.parametrize("args,msg", [
    (["synth", "P", "P"], "add --rtl"),
    (["synth", "--rtl", "P", "P", "--workers", "0"], "--workers 0"),
    (["synth", "P", "--rtl", "--timeout", "-1"], "--timeout -1"),
])
def test_bad_synth_arguments(args, msg, project, capsys):
    assert main([str(project) if a == "P" else a for a in args]) == 2
    assert msg in " ".join(capsys.readouterr().err.split())


def test_synth_rtl_with_stub_vivado(project, stub_vivado, capsys):
    shutil.rmtree(project / "rtl" / "vivado")  # a project converted before the flow existed gets it written
    assert main(["synth", str(project), "--rtl"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[str(project)]["utilization"]["lut"] == 48213
    assert out[str(project)]["latency_ns"] == pytest.approx(_predicted_cycles(project) * ACHIEVED)
    vd = project / "rtl" / "vivado"
    assert {"utilization.rpt", "timing_summary.rpt", "critical_path.rpt", "swinfpga_run.txt"} <= {
        p.name for p in (vd / "reports").iterdir()}
    assert (vd / "post_synth.dcp").exists() and (vd / "post_route.dcp").exists()  # ran here, in place
    res = json.loads((vd / "vivado.json").read_text())
    assert res["rtl_hash"] == V.load_flow(project / "rtl").rtl_hash  # the run recorded this RTL
    assert res["latency_ns"] == pytest.approx(_predicted_cycles(project) * ACHIEVED)
    _check_vivado_report(project)
    # a later `swinfpga report` keeps the Vivado numbers
    assert main(["report", str(project)]) == 0
    _check_vivado_report(project)


def test_synth_only(project, stub_vivado):
    assert main(["synth", str(project), "--rtl", "--synth-only"]) == 0
    rep = json.loads((project / "report.json").read_text())
    assert rep["vivado"]["stage"] == "post-synthesis" and rep["resources"]["total"]["lut"] == 51002
    assert "post-synthesis (timing is Vivado's estimate)" in (project / "report.md").read_text()


def test_report_with_vivado_reports_from_elsewhere(project, tmp_path, capsys):
    brought = tmp_path / "brought_back"
    shutil.copytree(FIX / "vu13p_routed", brought)
    assert main(["report", str(project), "--vivado-reports", str(brought)]) == 0
    _check_vivado_report(project)
    assert (project / "rtl" / "vivado" / "reports" / "utilization.rpt").exists()
    assert json.loads((project / "rtl" / "vivado" / "vivado.json").read_text())["imported_from"] == str(brought)


@pytest.mark.parametrize("case", ["other_part", "other_rtl", "not_reports"])
def test_report_rejects_foreign_reports(case, project, tmp_path, capsys):
    brought = tmp_path / "brought_back"
    if case == "other_part":
        brought.mkdir()
        for n in ("utilization", "timing_summary", "critical_path"):
            shutil.copy(FIX / "other" / f"zcu102_{n}.rpt", brought / f"{n}.rpt")
        want = "device"
    elif case == "other_rtl":
        shutil.copytree(FIX / "vu13p_routed", brought)
        (brought / V.RUN_INFO).write_text("rtl_hash 0123456789abcdef\n")
        want = "another RTL"
    else:
        brought.mkdir()
        (brought / "notes.txt").write_text("hello\n")
        want = "report_utilization"
    assert main(["report", str(project), "--vivado-reports", str(brought)]) == 2
    assert want in " ".join(capsys.readouterr().err.split())
    assert not (project / "rtl" / "vivado" / "reports").exists()


def _second(project: Path, tmp_path: Path) -> Path:
    other = tmp_path / "prj2"
    shutil.copytree(project, other)
    return other


def test_several_projects_on_a_local_dask_cluster(project, tmp_path, stub_vivado, capsys):
    require_module("distributed")
    other = _second(project, tmp_path)
    assert main(["synth", "--rtl", str(project), str(other), "--workers", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {str(project), str(other)}
    for prj in (project, other):
        _check_vivado_report(prj)
        assert (prj / "rtl" / "vivado" / "vivado.log").exists()
        assert not (prj / "rtl" / "vivado" / "post_route.dcp").exists()  # ran on a worker's copy


def test_existing_scheduler(project, tmp_path, stub_vivado, capsys):
    require_module("distributed")
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        assert main(["synth", "--rtl", str(project), "--scheduler", cluster.scheduler_address]) == 0
    _check_vivado_report(project)


def test_worker_without_vivado_is_reported(project, tmp_path, monkeypatch, capsys):
    require_module("distributed")
    from dask.distributed import LocalCluster

    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        assert main(["synth", "--rtl", str(project), "--scheduler", cluster.scheduler_address]) == 2
    assert "not on PATH on worker" in " ".join(capsys.readouterr().err.split())



def _report(d: Path) -> dict:
    from swinfpga.synth.report import make_report

    return make_report(d).data.get("vivado", {})


@pytest.mark.synth
def test_real_vivado(project):
    """The real tool (skips only when `vivado` is not on PATH)."""
    if shutil.which("vivado") is None:
        pytest.skip("vivado is not on PATH")
    runs = V.synth_rtl([project], report=_report)
    r = runs[0].result
    assert r.stage == "post-route" and r.utilization.lut > 0 and r.utilization.ff > 0
    assert r.target_period_ns == pytest.approx(5.0) and r.achieved_period_ns is not None
    rep = json.loads((project / "report.json").read_text())
    assert rep["vivado"]["latency_ns"] == pytest.approx(_predicted_cycles(project) * r.achieved_period_ns)


def _break(prj: Path) -> None:
    tcl = prj / "rtl" / "vivado" / "run.tcl"
    tcl.write_text(tcl.read_text().replace("    place_design\n", "    place_desgn\n", 1))


def test_failed_vivado_run_names_the_log(project, stub_vivado, capsys):
    _break(project)
    assert main(["synth", str(project), "--rtl"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Vivado failed (exit 1" in err and "vivado.log" in err
    assert 'invalid command name "place_desgn"' in (project / "rtl" / "vivado" / "vivado.log").read_text()
    assert not (project / "report.json").exists()


def test_one_failed_run_keeps_the_others(project, tmp_path, stub_vivado, capsys):
    require_module("distributed")
    from dask.distributed import LocalCluster

    other = _second(project, tmp_path)
    _break(other)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        rc = main(["synth", "--rtl", str(project), str(other), "--scheduler", cluster.scheduler_address])
    assert rc == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{other}: Vivado failed" in err and "1 other run(s) finished" in err
    _check_vivado_report(project)
    assert "place_desgn" in (other / "rtl" / "vivado" / "vivado.log").read_text()


def test_project_without_rtl(tmp_path, capsys):
    from swinfpga.ir.build import random_model
    from swinfpga.models import SWIN_DIGITS

    ir = tmp_path / "m.json"
    random_model(SWIN_DIGITS, seed=5).save(ir)
    out = tmp_path / "golden_only"
    assert main(["convert", str(ir), "-o", str(out), "--no-hls", "--no-rtl", "--vectors", "2"]) == 0
    assert main(["synth", str(out), "--rtl"]) == 2
    assert "--no-rtl" in capsys.readouterr().err


def test_timeout_stops_the_run(project, tmp_path, monkeypatch, capsys):
    bindir = tmp_path / "slowbin"
    bindir.mkdir()
    exe = bindir / "vivado"
    pidfile = tmp_path / "child.pid"
    exe.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pidfile}\nwait\n")  # a launcher with a child, like Vivado's
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert main(["synth", str(project), "--rtl", "--timeout", "1"]) == 2
    assert "did not finish within --timeout 1 s" in " ".join(capsys.readouterr().err.split())
    status = Path(f"/proc/{int(pidfile.read_text())}/status")
    for _ in range(50):  # the child went with its process group (gone, or a zombie until reaped)
        if not status.exists() or "\nState:\tZ" in status.read_text():
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the launcher's child is still running: {status.read_text()[:200]}")


def test_half_written_reports_fall_back_with_a_warning(project, capsys):
    from swinfpga.manifest import Project
    from swinfpga.synth.report import rtl_vivado_section

    rd = project / "rtl" / "vivado" / "reports"
    rd.mkdir()
    shutil.copy(FIX / "vu13p_synth" / "synth_utilization.rpt", rd)  # the run died before its timing report
    assert rtl_vivado_section(Project.open(project), None) is None
    assert "Vivado reports not used" in capsys.readouterr().err
    shutil.copy(FIX / "vu13p_synth" / "synth_timing_summary.rpt", rd)
    lines, res, util, data = rtl_vivado_section(Project.open(project), {"cycles": 10, "source": "test"})
    assert res["total"]["lut"] == 51002 and data["latency_ns"] == pytest.approx(10 * (5.0 - 1.103))


def test_flow_is_kept_unless_stale(project):
    vd = project / "rtl" / "vivado"
    (vd / "run.tcl").write_text((vd / "run.tcl").read_text() + "# my edit\n")
    V.project_flow(project)
    assert (vd / "run.tcl").read_text().endswith("# my edit\n")  # current flow: edits are kept
    fj = json.loads((vd / "flow.json").read_text())
    (vd / "flow.json").write_text(json.dumps({**fj, "version": 0}))
    _, flow = V.project_flow(project)
    assert flow.version == V.FLOW_VERSION and "# my edit" not in (vd / "run.tcl").read_text()  # older: rewritten


def test_given_client_is_used_and_left_open(project, stub_vivado):
    """The design sweep's own Dask client can take the Vivado runs."""
    require_module("distributed")
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        runs = V.synth_rtl([project], client=client, report=_report)
        assert client.status == "running"
    assert runs[0].result.utilization.dsp == 544 and runs[0].latency_ns == pytest.approx(
        _predicted_cycles(project) * ACHIEVED)


def test_latency_uses_the_simulated_cycles(project, tmp_path):
    """With an RTL simulation on record (``swinfpga verify --rtl`` writes rtl/sim_result.json), the
    latency in ns is the simulated cycles x the achieved period."""
    sim = {"simulator": "icarus", "mismatches": 0, "samples": 4, "latency_cycles": 57, "ii_cycles": 4,
           "variants": ["stream"], "runs": [], "build_seconds": 0.0, "run_seconds": 0.0}
    (project / "rtl" / "sim_result.json").write_text(json.dumps(sim))
    brought = tmp_path / "brought_back"
    shutil.copytree(FIX / "vu13p_routed", brought)
    assert main(["report", str(project), "--vivado-reports", str(brought)]) == 0
    viv = json.loads((project / "report.json").read_text())["vivado"]
    assert viv["latency_cycles"] == 57 and viv["latency_cycles_source"] == "RTL simulation (icarus)"
    assert viv["latency_ns"] == pytest.approx(57 * ACHIEVED)


def test_other_board_and_failed_timing(tmp_path):
    """A ZCU102 project, reports of a run at 300 MHz that missed timing: the achieved clock is slower
    than the target, and the report says the run's clock is not the board's."""
    require_module("da4ml")
    from swinfpga.project import ConvertOptions, convert

    prj = tmp_path / "zcu"
    convert(_unit_model(), prj, ConvertOptions(board="zcu102", hls=False, n_vectors=2))
    assert V.load_flow(prj / "rtl").part == "xczu9eg-ffvb1156-2-e"
    brought = tmp_path / "brought_back"
    brought.mkdir()
    for n in ("utilization", "timing_summary", "critical_path"):
        shutil.copy(FIX / "other" / f"zcu102_{n}.rpt", brought / f"{n}.rpt")
    assert main(["report", str(prj), "--vivado-reports", str(brought)]) == 0
    rep = json.loads((prj / "report.json").read_text())
    viv = rep["vivado"]
    assert viv["timing"]["met"] is False and viv["achieved_period_ns"] == pytest.approx(3.333 + 0.387)
    assert viv["latency_ns"] == pytest.approx(_predicted_cycles(prj) * (3.333 + 0.387))
    assert rep["resources"]["total"]["uram"] == 0 and "URAM" not in rep["utilization_pct"]  # the part has none
    md = (prj / "report.md").read_text()
    assert "NOT met; 61 failing endpoints" in md and "not the board's 5.000 ns" in md
