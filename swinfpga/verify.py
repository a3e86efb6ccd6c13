"""Verification ladder: golden -> C simulation -> RTL simulation, integer codes compared exactly.

Back ends return the report dataclasses of :mod:`swinfpga.results` (re-exported here); :func:`verify`
assembles the JSON that ``swinfpga verify --json`` writes::

    {"csim": {"mismatches": int, "samples": int, ...},
     "rtl": {"mismatches": int, "samples": int, "latency_cycles": int, "ii_cycles": int,
             "simulator": str, "rom_files_checked": int, ...},
     "clock_mhz": float, "latency_ns": float}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .manifest import Project
from .results import CsimReport, Mismatch, RtlReport, compare_codes, report_json

_jsonable = report_json  # former private name


def verify(root: Path, csim: bool, rtl: bool, simulator: str | None = None, n: int | None = None,
           progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the requested simulations of the project at ``root`` (both available ones when neither is
    asked for) on at most ``n`` vectors; the JSON-able result described in the module docstring."""
    proj = Project.open(root)
    if not (csim or rtl):
        csim = proj.hls_dir is not None
        rtl = proj.rtl_dir is not None
    out: dict[str, Any] = {"model": proj.manifest.model, "board": proj.manifest.board,
                           "clock_mhz": proj.manifest.clock_mhz}
    if csim:
        from .backends.hls4ml import verify_csim

        r = verify_csim(proj, n=n, progress=progress)
        out["csim"] = report_json(r)
    if rtl:
        from .backends.rtl import verify_rtl
        from .backends.rtl.roms import check_roms

        roms = check_roms(proj.root)  # every ROM holds the tables (and hashes) the IR and manifest name
        r2 = verify_rtl(proj, simulator=simulator, n=n, progress=progress)
        out["rtl"] = report_json(r2)
        out["rtl"]["rom_files_checked"] = len(roms)
        out["latency_ns"] = r2.latency_cycles * 1000.0 / proj.manifest.clock_mhz
    return out


__all__ = ["CsimReport", "Mismatch", "RtlReport", "compare_codes", "verify"]
