"""Verification result types shared by the back ends and :mod:`swinfpga.verify`.

Integer codes are compared exactly (:func:`compare_codes`); a :class:`Mismatch` names the layer
and the element.  This module imports nothing from swinfpga, so back ends can return these types
while :mod:`swinfpga.verify` imports the back ends (no import circle).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


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
    """C simulation vs golden: mismatching output codes over ``samples`` inputs; times in seconds."""

    mismatches: int
    samples: int
    first: tuple[Mismatch, ...] = ()
    layers: dict[str, int] = field(default_factory=dict)  # per-layer mismatch counts (trace)
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    cached: bool = False


@dataclass(frozen=True)
class RtlReport:
    """RTL simulation vs golden; latency and initiation interval in clock cycles; times in seconds."""

    mismatches: int
    samples: int
    latency_cycles: int
    ii_cycles: int
    simulator: str
    first: tuple[Mismatch, ...] = ()
    layer_cycles: dict[str, int] = field(default_factory=dict)  # where the cycles go
    build_seconds: float = 0.0
    run_seconds: float = 0.0


def report_json(r: CsimReport | RtlReport) -> dict[str, Any]:
    """A report as JSON-able dict (mismatches as strings)."""
    d = asdict(r)
    d["first"] = [str(m) for m in r.first]
    return d


__all__ = ["CsimReport", "Mismatch", "RtlReport", "compare_codes", "report_json"]
