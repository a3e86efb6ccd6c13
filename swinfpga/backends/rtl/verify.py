"""``swinfpga verify --rtl``: traced-program check, then cocotb RTL simulation vs golden."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from ...ir import atomic_write_text
from ...manifest import Project
from ...results import Mismatch, RtlReport, compare_codes
from .build import build_model, check_traced
from .contract import RTL_JSON, RtlInfo
from .offload import Offload
from .sim import DEFAULT_SIMULATOR, run_cocotb

BP_SAMPLES = 40  # samples of the back-pressure + idle variant


def default_variants(n: int) -> list[dict]:
    """Streaming run on all ``n`` samples, then back-pressure (50%) with idle cycles (30%)."""
    return [{"name": "stream", "n": n, "idle_prob": 0.0, "bp_prob": 0.0},
            {"name": "backpressure_idle", "n": min(n, BP_SAMPLES), "idle_prob": 0.3, "bp_prob": 0.5}]


def verify_rtl(project: Project, simulator: str | None = None, n: int | None = None,
               progress: Callable[[str], None] = lambda s: None, variants: list[dict] | None = None,
               check_trace: bool = True) -> RtlReport:
    """Run the testbench variants; mismatches are summed over variants, latency and II come from
    the streaming run (latency: first sample through the empty pipeline)."""
    sim = simulator or DEFAULT_SIMULATOR
    rtl_dir = project.rtl_dir
    if rtl_dir is None or not (rtl_dir / RTL_JSON).exists():
        raise FileNotFoundError(f"{project.root} has no RTL; convert without --no-rtl")
    rtl = RtlInfo.load(rtl_dir)
    x, y = project.vectors()
    n = min(n or x.shape[0], x.shape[0])
    first: list[Mismatch] = []
    if check_trace:
        model = project.model()
        built, _ = build_model(model, rtl.clock_mhz, progress, ii=rtl.ii_requested,
                               offload=Offload(rtl.dsp_min_digits))
        bad = check_traced(model, built, x[:n])
        progress(f"da4ml int64 interpreter vs golden on {n} samples: {bad}")
        if any(bad.values()):
            first.append(Mismatch("traced:" + ",".join(k for k, v in bad.items() if v), (), 0, sum(bad.values())))
    run = run_cocotb(rtl_dir, project.root, sim, variants or default_variants(n), progress=progress,
                     keep_outputs=True)
    total = 0
    for r in run.results:
        m = len(r["got"])
        got = np.asarray(r["got"], dtype=np.int64).reshape(y[:m].shape)
        cnt, f = compare_codes(f"output[{r['variant']}]", y[:m], got)
        total += cnt
        first.extend(f)
    s = run.results[0]
    summary = {"simulator": sim, "mismatches": total, "samples": int(s["samples"]),
               "latency_cycles": int(s["latency_cycles"]), "ii_cycles": int(s["ii_cycles"]),
               "variants": [r["variant"] for r in run.results],
               "runs": [{k: v for k, v in r.items() if k != "got"} for r in run.results],
               "build_seconds": run.build_seconds, "run_seconds": run.run_seconds}
    atomic_write_text(rtl_dir / "sim_result.json", json.dumps(summary, indent=1))
    return RtlReport(
        mismatches=total, samples=int(s["samples"]), latency_cycles=int(s["latency_cycles"]),
        ii_cycles=int(s["ii_cycles"]), simulator=sim, first=tuple(first[:10]),
        layer_cycles=dict(rtl.layer_cycles),
        build_seconds=run.build_seconds, run_seconds=run.run_seconds,
    )
