"""Predicted RTL latency of the reference designs (the structural schedule of ``rtl.json``: per
segment its issue clocks + its unit's pipeline stages), with the pipeline stages that hold no logic
(da4ml register-only stages, :func:`swinfpga.backends.rtl.verilog.stage_is_wiring`) and the cycles
the LayerNorms take.  Traces every unit (content-hash cached), simulates nothing: the Verilator runs
that confirm measured == predicted are the models' RTL tests and ``bench/rtl/jet.py``.

Writes ``bench/results/rtl_latency.{json,md}`` (``--tag`` names the column, e.g. before/after).

    nice -n 10 python bench/rtl/latency.py [--tag after] [--models swin-digits,examples/jet-16x3.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MODELS = ("swin-digits", "swin-digits-ln", "swin-free-digits", "seq-digits", "examples/jet-16x3.yaml")
OUT = ROOT / "bench" / "results" / "rtl_latency"


def measure(ref: str, clock_mhz: float = 200.0) -> dict:
    """Build (or load from the cache) the units of ``ref`` at ``clock_mhz`` and read the schedule."""
    from swinfpga.backends.rtl.build import build_model, layer_cycles, predicted_schedule
    from swinfpga.backends.rtl.verilog import stage_is_wiring
    from swinfpga.ir import nodes as N
    from swinfpga.project import resolve_model

    t0 = time.perf_counter()
    model = resolve_model(str(ROOT / ref) if ref.endswith(".yaml") else ref, random_ok=True)
    built, cutoff = build_model(model, clock_mhz)
    sched = predicted_schedule(built)
    lc = layer_cycles(built, cutoff)
    ln = {n.name for n in model.nodes if isinstance(n, N.LayerNorm)}
    wiring = sum(stage_is_wiring(b.files[f"{b.unit_name}_stage{k}"]) for b in built for k in range(b.stages))
    return {"model": ref, "latency_cycles": sched["latency_cycles"], "ii_cycles": sched["ii_cycles"],
            "issue_cycles": sum(b.seg.groups for b in built), "unit_stages": sum(b.stages for b in built),
            "wiring_stages": wiring, "layernorm_cycles": sum(v for k, v in lc.items() if k in ln),
            "da4ml_cost": round(sum(b.cost for b in built)), "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", default="after")
    ap.add_argument("--models", default=",".join(MODELS))
    a = ap.parse_args()
    data = json.loads(OUT.with_suffix(".json").read_text()) if OUT.with_suffix(".json").exists() else {}
    for ref in a.models.split(","):
        row = measure(ref)
        print(json.dumps(row), flush=True)
        data.setdefault(a.tag, {})[ref] = row
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    cols = ("latency_cycles", "ii_cycles", "issue_cycles", "unit_stages", "wiring_stages", "layernorm_cycles",
            "da4ml_cost")
    lines = ["# Predicted RTL latency (VU13P, 200 MHz, da4ml 0.6 units)", "",
             "Command: `nice -n 10 python bench/rtl/latency.py --tag TAG`. latency = issue clocks + unit stages "
             "(the structural schedule; Verilator measures the same number); wiring stages: pipeline stages "
             "holding no logic; layernorm cycles: stages attributed to LayerNorm nodes.", "",
             "| design | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for tag, rows in data.items():
        for ref, r in rows.items():
            lines.append(f"| {ref} ({tag}) | " + " | ".join(f"{r[c]:,}" for c in cols) + " |")
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
