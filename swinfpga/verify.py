"""Verification ladder: golden -> C simulation -> RTL simulation, integer codes compared exactly.

Back ends return the report dataclasses defined here; :func:`verify` assembles the JSON that
``swinfpga verify --json`` writes::

    {"csim": {"mismatches": int, "samples": int, ...},
     "rtl": {"mismatches": int, "samples": int, "latency_cycles": int, "ii_cycles": int,
             "simulator": str, ...},
     "clock_mhz": float, "latency_ns": float}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .manifest import Project


@dataclass(frozen=True)
class Mismatch:
    """One differing element: ``layer`` (IR node name or 'output'), sample and element index."""

    layer: str
    index: tuple[int, ...]
    expected: int
    got: int

    def __str__(self) -> str:
        return f"{self.layer}{list(self.index)}: expected {self.expected}, got {self.got}"


def compare_codes(
    layer: str, expected: np.ndarray, got: np.ndarray, limit: int = 10
) -> tuple[int, tuple[Mismatch, ...]]:
    """Count differing integer codes and describe the first ``limit`` (index includes batch)."""
    e = np.asarray(expected, dtype=np.int64)
    g = np.asarray(got, dtype=np.int64)
    if e.shape != g.shape:
        raise ValueError(f"{layer}: shape {g.shape} differs from golden {e.shape}")
    bad = np.argwhere(e != g)
    first = tuple(
        Mismatch(layer, tuple(int(i) for i in ix), int(e[tuple(ix)]), int(g[tuple(ix)])) for ix in bad[:limit]
    )
    return int(bad.shape[0]), first


@dataclass(frozen=True)
class CsimReport:
    mismatches: int
    samples: int
    first: tuple[Mismatch, ...] = ()
    layers: dict[str, int] = field(default_factory=dict)  # per-layer mismatch counts (trace)
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    cached: bool = False


@dataclass(frozen=True)
class RtlReport:
    mismatches: int
    samples: int
    latency_cycles: int
    ii_cycles: int
    simulator: str
    first: tuple[Mismatch, ...] = ()
    layer_cycles: dict[str, int] = field(default_factory=dict)  # where the cycles go
    build_seconds: float = 0.0
    run_seconds: float = 0.0


def _jsonable(r: Any) -> dict[str, Any]:
    d = asdict(r)
    d["first"] = [str(m) for m in r.first]
    return d


def verify(root: Path, csim: bool, rtl: bool, simulator: str | None = None, n: int | None = None,
           progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    proj = Project.open(root)
    if not (csim or rtl):
        csim = proj.hls_dir is not None
        rtl = proj.rtl_dir is not None
    out: dict[str, Any] = {"model": proj.manifest.model, "board": proj.manifest.board,
                           "clock_mhz": proj.manifest.clock_mhz}
    if csim:
        from .backends.hls4ml import verify_csim

        r = verify_csim(proj, n=n, progress=progress)
        out["csim"] = _jsonable(r)
    if rtl:
        from .backends.rtl import verify_rtl

        r2 = verify_rtl(proj, simulator=simulator, n=n, progress=progress)
        out["rtl"] = _jsonable(r2)
        out["latency_ns"] = r2.latency_cycles * 1000.0 / proj.manifest.clock_mhz
    return out
