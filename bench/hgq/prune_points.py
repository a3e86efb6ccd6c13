"""Pruned (and distilled) swin-digits trainings side by side, from their ``metrics.json`` alone (no
RTL trace): golden accuracy, EBOPs, weights at 0, and the command that made each.  da4ml cost comes
from ``bench/hgq/run.py`` (``--cost NAME=JSON`` adds a row's measured total, a ``measure`` row).

    python bench/hgq/prune_points.py --model NAME=DIR [--model ...] [--cost NAME=ROW.json ...] [--append]

``--append`` keeps the rows and notes already in the JSON (a row of the same name is replaced).

Writes bench/results/prune_swin_digits.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import OUT, train_command  # noqa: E402

from swinfpga.ir import atomic_write_text  # noqa: E402


def row(name: str, d: Path, cost: dict | None) -> dict:
    m = json.loads((d / "metrics.json").read_text())
    h = m.get("hgq") or {}
    c = m.get("config", {})
    zero = h.get("zero_weights", (m.get("prune") or {}).get("zero_weights"))
    weights = h.get("weights", (m.get("prune") or {}).get("weights"))
    return {"name": name, "dir": str(d), "golden_accuracy": m["accuracy"]["golden"],
            "float_accuracy": m.get("float_after_qat", m["accuracy"]["float"]),
            "keras_golden_mismatches": m.get("keras_golden_mismatches"), "prune": c.get("prune", 0.0),
            "beta": c.get("beta", 0.0), "teacher": c.get("teacher"), "ebops": h.get("ebops"),
            "zero_weights": zero, "weights": weights, "seed": m.get("seed", 0),
            "da4ml_cost_total": None if cost is None else cost.get("da4ml_cost_total"),
            "train_command": train_command(m).replace("swinfpga train swin-digits -o OUT --epochs 120",
                                                      "swinfpga train swin-digits -o OUT")}


def markdown(rows: list[dict], notes: list[str]) -> str:
    md = ["# swin-digits: pruning, HGQ and distillation points", "",
          "| point | prune | beta | distilled | golden acc | float acc | Keras vs golden | EBOPs | zero weights | "
          "da4ml cost |", "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        eb = "-" if r["ebops"] is None else f"{r['ebops']:,.0f}"
        zw = "-" if r["zero_weights"] is None else f"{r['zero_weights']}/{r['weights']}"
        cost = "-" if r["da4ml_cost_total"] is None else f"{r['da4ml_cost_total']:,.0f}"
        md.append(f"| {r['name']} | {r['prune']:g} | {r['beta']:g} | {'yes' if r['teacher'] else 'no'} | "
                  f"{100 * r['golden_accuracy']:.2f}% | {100 * r['float_accuracy']:.2f}% | "
                  f"{r['keras_golden_mismatches']} | {eb} | {zw} | {cost} |")
    md += ["", "Accuracy: golden model on the 360 digits test images (one image = 0.28 points). EBOPs: HGQ's "
           "effective bit-operations after the bits froze. da4ml cost: LUT-equivalents of the traced RTL units "
           "(`bench/hgq/run.py`), where measured.", "", "Commands (OUT / DIR are the output directories of "
           "the rows named in `--init` / `--teacher`):", ""]
    md += [f"- {r['name']}: `{r['train_command']}`" for r in rows]
    if notes:
        md += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(md) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True, help="NAME=DIR (a swinfpga train output directory)")
    ap.add_argument("--cost", action="append", default=[], help="NAME=JSON (a bench/hgq/run.py row)")
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--append", action="store_true", help="keep the rows and notes already written")
    a = ap.parse_args()
    costs = {}
    for spec in a.cost:
        n, _, f = spec.partition("=")
        costs[n] = json.loads(Path(f).read_text())
    old = json.loads((OUT / "prune_swin_digits.json").read_text()) if a.append else {"rows": [], "notes": []}
    new = []
    for spec in a.model:
        n, _, d = spec.partition("=")
        new.append(row(n, Path(d), costs.get(n)))
    names = {r["name"] for r in new}
    rows = [r for r in old["rows"] if r["name"] not in names] + new
    notes = old["notes"] + a.note
    atomic_write_text(OUT / "prune_swin_digits.json", json.dumps({"rows": rows, "notes": notes}, indent=1) + "\n")
    md = markdown(rows, notes)
    atomic_write_text(OUT / "prune_swin_digits.md", md)
    print(md)


if __name__ == "__main__":
    main()
