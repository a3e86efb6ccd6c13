"""The trained seq-digits reference (each digits image as 8 row tokens of 8 pixels, one global
attention window, relative position bias) through the RTL back end on the whole 360-image test split.

``convert seq-digits --no-hls --vectors 360`` then ``verify --rtl`` (cocotb, default Verilator;
streaming run on all 360 images + back-pressure/idle run): RTL == golden with 0 mismatches, latency
and II measured, da4ml cost.  Too slow for the suite cold (tracing + a Verilator build of the fully
unrolled netlist take well over 5 minutes on 2 cores), hence a bench.

Writes ``bench/results/rtl_seq_digits.{json,md}``.

    nice -n 10 python bench/rtl/seq_digits.py [--project DIR] [--sim verilator|icarus]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    from jet import run_main

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", default=None, help="an already converted seq-digits project (reused)")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    row = run_main("seq-digits", Path(a.project) if a.project else None, a.sim, 0.0, n_vectors=360)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rtl_seq_digits.json").write_text(json.dumps(row, indent=1) + "\n")
    s = row["sim"]
    md = ["# seq-digits (trained) through the RTL back end", "",
          "Command: `nice -n 10 python bench/rtl/seq_digits.py`; 200 MHz, da4ml 0.6 traced units, "
          f"cocotb + {s['simulator']}; vectors: the sklearn digits test split as 8 row tokens (360 images).", "",
          "| model | RTL vs golden | latency (cycles) | latency (ns) | II | da4ml cost (LUT-eq) | stages | "
          "traced check (da4ml int64 interpreter) | sim build s | sim run s |",
          "|---|---|---:|---:|---:|---:|---|---|---:|---:|",
          f"| {row['model']} | {s['mismatches']} mismatches on {s['samples']} images "
          f"({', '.join(f'{k}: {v}' for k, v in s['variants'].items())}) | {s['latency_cycles']} | {s['latency_ns']} | "
          f"{s['ii_cycles']} | {row['da4ml_cost']:,.0f} | {row['unit_stages']} | "
          f"{sum(row['traced_check']['mismatches'].values())} mismatches / {row['traced_check']['samples']} samples | "
          f"{s['build_seconds']} | {s['run_seconds']} |", "",
          "Cycles per layer (`rtl.json` layer_cycles):", "", "| layer | cycles |", "|---|---:|"]
    md += [f"| {k} | {v} |" for k, v in row["layer_cycles"].items()]
    (out / "rtl_seq_digits.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
