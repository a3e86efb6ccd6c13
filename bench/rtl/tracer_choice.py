"""Tracer dependency: da4ml 0.6 vs alkaid 0.8 (da4ml's successor) on the reference models.

Every RTL segment of each reference model is traced by ``swinfpga.backends.rtl.trace`` with

* ``da4ml`` 0.6 (the default; identity-lookup workaround in ``trace._q`` on),
* ``da4ml-nolut``: da4ml 0.6 with the workaround off (to show the bug it works around),
* ``alkaid`` 0.8 with the workaround off (does its requantization rework fix the saturation bug?),
* ``alkaid`` 0.8 with the workaround on,

and run by that library's own int64 interpreter (``CombLogic.predict``) on the golden model's
input frames of the 360 digits test images; mismatching output codes vs the golden model are
counted per segment.  Cost = the library's own LUT-equivalent figure; latency = its latency units.

Writes ``bench/results/tracer_choice.{json,md}``.

    python bench/rtl/tracer_choice.py [--models swin-digits ...] [--tracers da4ml alkaid alkaid+lut]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MODELS = ["swin-digits", "swin-digits-ln", "swin-free-digits"]
TRACERS = ["da4ml", "alkaid", "alkaid+lut"]


def run(model_name: str, tracer: str, x: np.ndarray, segments: list[str] | None = None) -> list[dict]:
    from swinfpga import golden
    from swinfpga.backends.rtl import trace as T
    from swinfpga.backends.rtl.plan import gather_groups, scatter_groups, split_segments
    from swinfpga.project import resolve_model

    os.environ["SWINFPGA_TRACER"] = "alkaid" if tracer.startswith("alkaid") else "da4ml"
    T.IDENTITY_LUT_WORKAROUND = tracer in ("da4ml", "alkaid+lut")  # off for alkaid, da4ml-nolut
    model = resolve_model(model_name, random_ok=False)
    fmts = {k: v.fmt for k, v in model.infer().items()}
    res = golden.run(model, x)
    rows = []
    for seg in split_segments(model):
        if segments and seg.name not in segments:
            continue
        row = {"model": model_name, "tracer": tracer, "segment": seg.name,
               "identity_lut_workaround": T.IDENTITY_LUT_WORKAROUND}
        t0 = time.perf_counter()
        try:
            unit = T.trace_segment(seg, fmts)
        except Exception as e:  # record and continue
            row["error"] = f"{type(e).__name__}: {e}"[:200]
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        row["trace_seconds"] = round(time.perf_counter() - t0, 1)
        xi = gather_groups(seg, res.outputs[seg.src])
        bb, g, k = xi.shape
        t1 = time.perf_counter()
        y = T.predict_codes(unit, seg, xi.reshape(bb * g, k)).reshape(bb, g, -1)
        row["predict_seconds"] = round(time.perf_counter() - t1, 1)
        want = res.outputs[seg.dst]
        got = scatter_groups(seg, y)
        row["mismatches"] = int(np.count_nonzero(got != want))
        row["values"] = int(want.size)
        if row["mismatches"]:
            idx = np.argwhere(got != want)[0]
            row["first_mismatch"] = {"index": idx.tolist(), "got": int(got[tuple(idx)]), "want": int(want[tuple(idx)])}
        row["cost"] = float(unit.comb.cost)
        row["latency"] = float(np.max(unit.comb.latency))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tracer_choice.json").write_text(json.dumps(res, indent=1))
    md = ["# Tracer: da4ml 0.6 vs alkaid 0.8 on the reference models", "",
          f"Command: `python bench/rtl/tracer_choice.py`. da4ml {res['versions'].get('da4ml')}, alkaid "
          f"{res['versions'].get('alkaid')}. Each library's int64 interpreter vs the golden model on the "
          f"{res['images']} digits test images (every output code of every segment). Cost: each library's own "
          "LUT-equivalent figure (not a synthesis count); latency: its latency units (~ns).", "",
          "| model | tracer | identity-LUT workaround | segment | mismatches / values | cost | latency | trace s |",
          "|---|---|---|---|---:|---:|---:|---:|"]
    for r in res["rows"]:
        if "error" in r:
            md.append(f"| {r['model']} | {r['tracer']} | {r['identity_lut_workaround']} | {r['segment']} | "
                      f"{r['error']} | | | |")
            continue
        md.append(f"| {r['model']} | {r['tracer']} | {r['identity_lut_workaround']} | {r['segment']} | "
                  f"{r['mismatches']:,} / {r['values']:,} | {r['cost']:,.0f} | {r['latency']:.1f} | "
                  f"{r['trace_seconds']} |")
    if res.get("decision"):
        md += ["", "## Decision", "", res["decision"]]
    (out / "tracer_choice.md").write_text("\n".join(md) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--tracers", nargs="*", default=TRACERS)
    ap.add_argument("--segments", nargs="*", default=None, help="only these segments (e.g. seg1)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--decision", default="", help="text for the Decision section (kept from the previous run)")
    a = ap.parse_args()
    from swinfpga.data import digits_split

    x = digits_split().x_test
    out = Path(a.out)
    prev = out / "tracer_choice.json"
    old = json.loads(prev.read_text()) if prev.exists() else {}
    vers = {}
    for p in ("da4ml", "alkaid"):
        try:
            vers[p] = version(p)
        except Exception:
            vers[p] = "not installed"
    res = {"versions": vers, "images": int(x.shape[0]), "rows": [], "decision": a.decision or old.get("decision", "")}
    keep = [r for r in old.get("rows", []) if not (r["model"] in a.models and r["tracer"] in a.tracers
                                                   and (not a.segments or r["segment"] in a.segments))]
    res["rows"] = keep
    for m in a.models:
        for t in a.tracers:
            res["rows"] += run(m, t, x, a.segments)
            res["rows"].sort(key=lambda r: (MODELS.index(r["model"]) if r["model"] in MODELS else 9,
                                            r["tracer"], r["segment"]))
            write(res, out)


if __name__ == "__main__":
    main()
