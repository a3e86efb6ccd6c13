"""Trained models before / after the proven softmax re-sizing: golden accuracy and da4ml cost per RTL unit.

For each ``NAME=OLD_DIR,NEW_DIR`` (``git:REV:PATH`` allowed, as in bench/hgq/run.py) the RTL is traced
(content-hash cached), the new model's traced units are checked bit-exact against golden with
da4ml's int64 interpreter on the 360 digits test images, and the golden accuracy of both is measured.
Writes ``bench/results/softmax_models.{json,md}``::

    nice -n 10 python bench/softmax/model_costs.py \\
        --model swin-free-digits=git:c90129a:swinfpga/models/swin-free-digits,swinfpga/models/swin-free-digits
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "hgq"))


def measure(ref: str, work: Path, check: bool) -> dict:
    from run import from_git

    from swinfpga import golden
    from swinfpga.backends.rtl.build import build_model, check_traced
    from swinfpga.data import digits_seq_split, digits_split
    from swinfpga.ir import Model
    from swinfpga.ir import nodes as N
    from swinfpga.softmax_sizing import widths

    d = from_git(ref, work) if ref.startswith("git:") else Path(ref)
    m = Model.load(d / "model.json")
    data = digits_seq_split() if m.meta.get("spec") == "seq-digits" else digits_split()
    t0 = time.perf_counter()
    built, _ = build_model(m, 200.0)
    row = {"model": ref, "golden_accuracy": float(np.mean(golden.predict(m, data.x_test).argmax(-1) == data.y_test)),
           "softmax_PEBR": {n.name: list(widths(n.softmax)) for n in m.of_type(N.WindowAttention)},
           "units": {b.seg.name: float(b.cost) for b in built}, "total_cost": float(sum(b.cost for b in built)),
           "trace_seconds": round(time.perf_counter() - t0, 1)}
    if check:
        bad = check_traced(m, built, data.x_test)
        row["traced_mismatches"] = bad
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="NAME=OLD,NEW")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for spec in a.model:
            name, refs = spec.split("=", 1)
            old, new = refs.split(",")
            r = {"name": name, "before": measure(old, Path(td), False), "after": measure(new, Path(td), True)}
            print(json.dumps(r), flush=True)
            rows.append(r)
    out = Path(a.out)
    (out / "softmax_models.json").write_text(json.dumps(rows, indent=1))
    md = ["# Trained models: analytic vs proven softmax widths (da4ml cost per RTL unit)", "",
          "Same weights and formats; only the softmax tables differ (re-derived by `bench/softmax/rederive.py`, "
          "Keras == golden checked there). Traced mismatches: the new model's da4ml units vs golden on the 360 "
          "test images (da4ml int64 interpreter).", "",
          "| model | softmax P/E/B/R before -> after | golden acc before -> after | unit | da4ml cost before | after | "
          "change |", "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        b, n = r["before"], r["after"]
        wb = sorted({"/".join(map(str, v)) for v in b["softmax_PEBR"].values()})
        wn = sorted({"/".join(map(str, v)) for v in n["softmax_PEBR"].values()})
        head = (f"| {r['name']} | {', '.join(wb)} -> {', '.join(wn)} | {b['golden_accuracy']:.2%} -> "
                f"{n['golden_accuracy']:.2%} | ")
        for u in n["units"]:
            cb, cn = b["units"].get(u), n["units"][u]
            md.append(head + f"{u} | {cb:,.0f} | {cn:,.0f} | {cn / cb - 1:+.1%} |" if cb else head + f"{u} | - | "
                      f"{cn:,.0f} | - |")
            head = "| | | | "
        md.append(head + f"**total** | {b['total_cost']:,.0f} | {n['total_cost']:,.0f} | "
                  f"{n['total_cost'] / b['total_cost'] - 1:+.1%} |")
        md.append(f"| | | | traced mismatches (after) | | {sum(n.get('traced_mismatches', {}).values())} | |")
    md += ["", "Command: `nice -n 10 python bench/softmax/model_costs.py " + " ".join(f"--model {m}" for m in a.model)
           + "`", ""]
    (out / "softmax_models.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
