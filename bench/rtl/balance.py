"""da4ml cost per RTL unit: the unbalanced pipeline (one unit per segment, every group's tokens in
parallel) against the balanced one (segments with fewer groups than the II time-multiplexed), at
the natural II and at the larger ``--ii`` values asked for.

Every unit is traced with da4ml (cached by content hash) and the traced programs are checked
bit-exact against the golden model with da4ml's int64 interpreter on ``--samples`` test images.
Latency/II are the structural prediction (``rtl.json`` ``predicted``); ``--sim DIR`` adds the
measured figures of a project verified with ``swinfpga verify DIR --rtl`` (``sim_result.json``).
Writes ``bench/results/rtl_balance.{json,md}``.

    python bench/rtl/balance.py [--model swin-digits] [--ii 8 16] [--sim /tmp/x] [--no-unbalanced]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _wiring_stages(b) -> int:
    """da4ml stages of a unit that hold no logic (registers in front of products da4ml models as
    longer than one clock, kept for retiming into them)."""
    from swinfpga.backends.rtl.verilog import stage_is_wiring

    return sum(stage_is_wiring(b.files[f"{b.unit_name}_stage{k}"]) for k in range(b.stages))


def _units(model, built, clock_mhz: float, x) -> dict:
    from swinfpga.backends.rtl.build import check_traced, predicted_schedule

    sched = predicted_schedule(built)
    cyc = dict((r["segment"], r["cycles"]) for r in sched["segments"])
    units = [{"unit": b.seg.name, "kind": b.seg.kind, "computes": list(b.seg.labels),
              "tokens_per_clock": int(b.seg.tokens.shape[1]), "busy_cycles": b.seg.groups,
              "stages": b.stages, "register_only_stages": _wiring_stages(b), "da4ml_cost": b.cost,
              # the previous wrapper kept da4ml's output register in front of the frame buffer
              "cycles": cyc[b.seg.name], "cycles_before": b.seg.groups + b.stages + 1} for b in built]
    return {"units": units, "da4ml_cost_total": sum(b.cost for b in built), "latency_cycles": sched["latency_cycles"],
            # ... and a top input register in front of the first segment
            "latency_cycles_before": 1 + sum(u["cycles_before"] for u in units),
            "ii_cycles": sched["ii_cycles"], "latency_ns": sched["latency_cycles"] * 1000.0 / clock_mhz,
            "traced_mismatches": check_traced(model, built, x)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="swin-digits")
    ap.add_argument("--ii", type=int, nargs="*", default=[8, 16], help="extra initiation intervals to fold to")
    ap.add_argument("--clock", type=float, default=200.0, help="MHz")
    ap.add_argument("--samples", type=int, default=360)
    ap.add_argument("--sim", type=Path, default=None, help="a converted+verified project of the natural II")
    ap.add_argument("--no-unbalanced", action="store_true",
                    help="skip the unbalanced design (its stage-2 unit is ~1.2M LUT-eq: a long trace when not cached)")
    a = ap.parse_args()

    from swinfpga.backends.rtl.build import build_model, build_segment, latency_cutoff_for
    from swinfpga.backends.rtl.plan import split_segments
    from swinfpga.project import resolve_model, test_vectors

    model = resolve_model(a.model, random_ok=True)
    x, _ = test_vectors(model, a.samples)
    fmts = {k: v.fmt for k, v in model.infer().items()}
    cutoff = latency_cutoff_for(a.clock)
    rows = {}
    t0 = time.perf_counter()
    if not a.no_unbalanced:
        before = [build_segment(s, fmts, cutoff, f"swinfpga_top_s{i}_unit", f"swinfpga_top_s{i}", print)
                  for i, s in enumerate(split_segments(model))]
        rows["unbalanced"] = _units(model, before, a.clock, x)
    for ii in [None, *a.ii]:
        built, _ = build_model(model, a.clock, print, ii=ii)
        rows["balanced (natural II)" if ii is None else f"balanced --ii {ii}"] = _units(model, built, a.clock, x)
    out = {"model": a.model, "clock_mhz": a.clock, "samples": int(x.shape[0]), "latency_cutoff": cutoff,
           "seconds": round(time.perf_counter() - t0, 1), "designs": rows}
    if a.sim is not None:
        sim = json.loads((a.sim / "rtl" / "sim_result.json").read_text())
        out["measured"] = {k: sim[k] for k in ("simulator", "mismatches", "samples", "latency_cycles", "ii_cycles")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rtl_balance.json").write_text(json.dumps(out, indent=1))
    md = [f"# Balanced RTL pipeline: da4ml cost per unit, {a.model} at {a.clock:g} MHz", "",
          f"`python bench/rtl/balance.py --model {a.model} --ii {' '.join(map(str, a.ii))}"
          + (" --no-unbalanced" if a.no_unbalanced else "") + (f" --sim {a.sim}`" if a.sim else "`"), "",
          "Costs are da4ml's LUT-equivalent figure; latency/II predicted from the structure "
          "(the RTL simulation measures the same numbers; see `measured`).  Traced programs checked "
          f"against golden with da4ml's int64 interpreter on {int(x.shape[0])} test images.", "",
          "Latency before: the previous wrapper (da4ml's output register kept in front of each frame buffer, "
          "and a top input register before the first group), on the same units.", "",
          "| design | latency (cycles) | before | ns | II | da4ml cost total | traced mismatches |",
          "|---|---:|---:|---:|---:|---:|---|"]
    for k, r in rows.items():
        md.append(f"| {k} | {r['latency_cycles']} | {r['latency_cycles_before']} | {r['latency_ns']:.0f} | "
                  f"{r['ii_cycles']} | {r['da4ml_cost_total']:,.0f} | {r['traced_mismatches']} |")
    if "measured" in out:
        m = out["measured"]
        md += ["", f"Measured ({m['simulator']}, natural II): {m['mismatches']} mismatches on {m['samples']} samples, "
               f"latency {m['latency_cycles']} cycles, II {m['ii_cycles']}."]
    md += ["", "Where the cycles go: a segment hands its frame on when all its groups are written, so latency = "
           "sum over segments of (groups - 1) issue clocks + da4ml stages + one frame-buffer clock.  At the natural "
           "II nothing is lost by waiting for the whole frame: there every segment needs all groups of the previous "
           "one (shifted windows, patch merging, attention over the one stage-2 window and pooling each read every "
           "token).  "
           "Register-only stages are da4ml's registers in front of variable x variable products (q.k, exp x "
           "reciprocal, p.v) whose modelled delay exceeds one clock; they are kept for retiming into the product.", "",
           "| design | issue clocks | da4ml stages | of which register-only | frame buffers | latency |",
           "|---|---:|---:|---:|---:|---:|"]
    for k, r in rows.items():
        us = r["units"]
        md.append(f"| {k} | {sum(u['busy_cycles'] - 1 for u in us)} | {sum(u['stages'] for u in us)} | "
                  f"{sum(u['register_only_stages'] for u in us)} | {len(us)} | {r['latency_cycles']} |")
    for k, r in rows.items():
        md += ["", f"## {k}", "", "| unit | kind | computes | tokens/clock | busy / II | stages (register-only) | "
               "cycles | before | da4ml cost |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for u in r["units"]:
            md.append(f"| {u['unit']} | {u['kind']} | {', '.join(u['computes'])} | {u['tokens_per_clock']} | "
                      f"{u['busy_cycles']} / {r['ii_cycles']} | {u['stages']} ({u['register_only_stages']}) | "
                      f"{u['cycles']} | {u['cycles_before']} | {u['da4ml_cost']:,.0f} |")
    (RESULTS / "rtl_balance.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
