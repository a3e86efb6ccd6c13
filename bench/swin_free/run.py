"""Swin-Free vs Swin: accuracy (float / golden) and RTL latency of the trained reference models.

Converts each trained model (cached), C-simulates and RTL-simulates it against the golden model
on the digits test split, and writes bench/results/swin_free.{json,md}.

    python bench/swin_free/run.py [-n 200] [--sim verilator]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from swinfpga.ir import atomic_write_text
from swinfpga.project import ConvertOptions, convert, reference_model_path, resolve_model
from swinfpga.verify import verify

MODELS = ("swin-digits", "swin-free-digits")
OUT = Path(__file__).resolve().parents[1] / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200, help="test images to simulate")
    ap.add_argument("--sim", default=None)
    ap.add_argument("--board", default="vu13p")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for name in MODELS:
            t0 = time.perf_counter()
            metrics = json.loads((reference_model_path(name).parent / "metrics.json").read_text())
            model = resolve_model(name)
            proj = Path(td) / name
            convert(model, proj, ConvertOptions(board=a.board, n_vectors=a.n), progress=print)
            rep = verify(proj, csim=True, rtl=True, simulator=a.sim, n=a.n, progress=print)
            shifts = sorted({n.shift for n in model.nodes if type(n).__name__ == "WindowAttention"})
            rows.append({
                "model": name,
                "shifts": shifts,
                "accuracy_float": metrics["accuracy"]["float"],
                "accuracy_golden": metrics["accuracy"]["golden"],
                "csim_mismatches": rep["csim"]["mismatches"],
                "rtl_mismatches": rep["rtl"]["mismatches"],
                "samples": rep["rtl"]["samples"],
                "latency_cycles": rep["rtl"]["latency_cycles"],
                "ii_cycles": rep["rtl"]["ii_cycles"],
                "latency_ns": rep["latency_ns"],
                "clock_mhz": rep["clock_mhz"],
                "layer_cycles": rep["rtl"].get("layer_cycles", {}),
                "seconds": round(time.perf_counter() - t0, 1),
            })
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / "swin_free.json", json.dumps({"board": a.board, "rows": rows}, indent=1))
    md = [f"# Swin-Free vs Swin on digits ({a.board}, {rows[0]['clock_mhz']:.0f} MHz)", "",
          "| model | shifts | float acc | golden acc | C-sim / RTL mismatches (samples) | latency cycles | "
          "latency ns | II |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['shifts']} | {100 * r['accuracy_float']:.2f}% | "
                  f"{100 * r['accuracy_golden']:.2f}% | {r['csim_mismatches']} / {r['rtl_mismatches']} "
                  f"({r['samples']}) | {r['latency_cycles']} | {r['latency_ns']:.0f} | {r['ii_cycles']} |")
    md += ["", "Latency: RTL simulation, first input accepted to last output, in cycles at the board clock.",
           "Accuracy: digits test split (360 images), from each model's committed metrics.json."]
    atomic_write_text(OUT / "swin_free.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
