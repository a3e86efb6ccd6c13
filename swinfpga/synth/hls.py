"""Vitis/Vivado HLS synthesis of a converted project and its reports (read with hls4ml's readers).

``run_synth(DIR)`` runs C synthesis of ``DIR/hls`` (or of ``DIR`` itself when it is the hls4ml
project) with the tool matching the project's hls4ml backend, and returns::

    {"tool": str, "latency_cycles": int (worst case), "latency_best_cycles": int,
     "latency_ns": float (worst case x estimated clock period), "ii_cycles": int,
     "clock_target_ns": float, "clock_estimated_ns": float,
     "resources": {"LUT": int, "FF": int, "DSP": int, "BRAM_18K": int, "URAM": int},
     "available": {...same keys...}, "seconds": float}

The same dictionary is written to ``<hls dir>/synth.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SETTINGS = "swinfpga_hls.json"
RESOURCES = ("LUT", "FF", "DSP", "BRAM_18K", "URAM")
BUILD_OPTS = "array set opt {\n    reset 1\n    csim 0\n    synth 1\n    cosim 0\n    validation 0\n" \
             "    export 0\n    vsynth 0\n    fifo_opt 0\n}\n"


def hls_project_dir(project_dir: Path) -> Path:
    """The hls4ml project inside a swinfpga project (or ``project_dir`` itself)."""
    p = Path(project_dir)
    if (p / "build_prj.tcl").exists():
        return p
    if (p / "manifest.json").exists():
        from ..manifest import Project

        hls = Project.open(p).hls_dir
        if hls is not None and (hls / "build_prj.tcl").exists():
            return hls
    raise FileNotFoundError(f"{p} holds no hls4ml project (no build_prj.tcl); run `swinfpga convert` with HLS enabled")


def find_tool(backend: str) -> tuple[str, list[str]]:
    """(tool name, command) for synthesizing a ``backend`` project; RuntimeError when none is on PATH."""
    if backend == "Vivado":
        if shutil.which("vivado_hls"):
            return "vivado_hls", ["vivado_hls", "-f", "build_prj.tcl",
                                  "reset=1 csim=0 synth=1 cosim=0 validation=0 export=0 vsynth=0"]
        if shutil.which("vitis_hls"):  # Vitis HLS reads Vivado HLS scripts
            return "vitis_hls", ["vitis_hls", "-f", "build_prj.tcl", "-tclargs",
                                 "reset=1 csim=0 synth=1 cosim=0 validation=0 export=0 vsynth=0"]
    else:
        if shutil.which("vitis-run"):
            return "vitis-run", ["vitis-run", "--mode", "hls", "--tcl", "build_prj.tcl"]
        if shutil.which("vitis_hls"):
            return "vitis_hls", ["vitis_hls", "-f", "build_prj.tcl"]
    need = ("vivado_hls (Vivado HLS <= 2020.1) or vitis_hls" if backend == "Vivado"
            else "vitis_hls or vitis-run (AMD Vitis >= 2023.2)")
    raise RuntimeError(
        f"HLS synthesis of this {backend} project needs {need} on PATH, and none was found. "
        "Install AMD Vitis (or Vivado HLS for the Vivado backend) and source its "
        "settings64.sh; C simulation (`swinfpga verify --csim`) needs only g++."
    )


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(str(v).split()[0])
    except (ValueError, IndexError):
        return None


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """hls4ml's ``parse_vivado_report`` dictionary -> latency (cycles, ns), II and resources."""
    cs = report.get("CSynthesisReport")
    if not cs:
        raise RuntimeError("HLS ran but wrote no C-synthesis report (<top>_csynth.xml); see the tool's log")
    target = _num(cs.get("TargetClockPeriod"))
    est = _num(cs.get("EstimatedClockPeriod")) or target
    worst = int(_num(cs.get("WorstLatency")) or 0)
    out: dict[str, Any] = {
        "latency_cycles": worst,
        "latency_best_cycles": int(_num(cs.get("BestLatency")) or 0),
        "ii_cycles": int(_num(cs.get("IntervalMax")) or 0),
        "clock_target_ns": target,
        "clock_estimated_ns": est,
        "latency_ns": worst * est if est else None,
        "resources": {k: int(_num(cs.get(k)) or 0) for k in RESOURCES},
        "available": {k: int(_num(cs.get("Available" + k)) or 0) for k in RESOURCES},
    }
    return out


def read_reports(hls_dir: Path) -> dict[str, Any]:
    """Summarize the synthesis reports already present in an hls4ml project (hls4ml's reader)."""
    from hls4ml.report import parse_vivado_report

    rep = parse_vivado_report(str(hls_dir))
    if rep is None:
        raise RuntimeError(f"no HLS reports under {hls_dir}")
    return summarize(rep)


def run_synth(project_dir: Path, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run HLS C synthesis of a converted project and return its latency, II and resources."""
    hls = hls_project_dir(Path(project_dir))
    st = json.loads((hls / SETTINGS).read_text()) if (hls / SETTINGS).exists() else {}
    backend = str(st.get("backend", "Vitis"))
    tool, cmd = find_tool(backend)
    (hls / "build_opt.tcl").write_text(BUILD_OPTS)
    progress(f"{tool}: C synthesis of {hls} (log: {hls / 'synth.log'})")
    t0 = time.perf_counter()
    with open(hls / "synth.log", "w") as log:
        r = subprocess.run(cmd, cwd=hls, stdout=log, stderr=subprocess.STDOUT, check=False)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{tool} failed (exit {r.returncode}); see {hls / 'synth.log'}")
    out = {"tool": tool, **read_reports(hls), "seconds": secs}
    est_path = hls / "hls_estimate.json"
    if est_path.exists():  # the pre-flight's estimates, side by side with the report that replaces them
        out["estimate"] = summarize(json.loads(est_path.read_text()))
    (hls / "synth.json").write_text(json.dumps(out, indent=1))
    progress(f"{tool}: latency {out['latency_cycles']} cycles, II {out['ii_cycles']}")
    return out
