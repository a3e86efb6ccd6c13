"""An HGQ2 model through both back ends at the jet shape: golden == C-sim == RTL simulation.

Builds the HGQ2 jet classifier of ``bench/hgq2/import_check.py`` (16 particles x 3 features, embed 16,
2 heads, random weights and bit widths; softmax kind ``hgq2``), saves it as ``.keras`` and runs the CLI:
``convert`` (HLS io_parallel + RTL), ``verify --csim`` and ``verify --rtl``; reports mismatches, latency
cycles (RTL simulated; HLS estimated), da4ml's cost estimate (LUT-equivalents) and wall times.

    nice -n 15 python bench/hgq2/backends.py [--blocks 2] [--vectors 64] [--sim icarus|verilator]  (default icarus)

Writes bench/results/hgq2_backends.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "hgq2"))


def _timed(fn, *a):
    t0 = time.perf_counter()
    r = fn(*a)
    return r, round(time.perf_counter() - t0, 1)


def run(blocks: int, vectors: int, sim: str, work: Path, on_partial=None) -> dict:
    from import_check import build

    from swinfpga.cli import main as cli

    model = build("jet-16x3-hgq2", 16, 3, 16, 2, blocks, seed=100)
    path = work / "jet.keras"
    model.save(path)
    out = work / "proj"
    rc, t_conv = _timed(cli, ["convert", str(path), "-o", str(out), "--vectors", str(vectors), "--force"])
    if rc != 0:
        raise SystemExit(f"convert failed (exit {rc})")
    rep_c, rep_r = work / "csim.json", work / "rtl.json"
    rc_c, t_csim = _timed(cli, ["verify", str(out), "--csim", "--json", str(rep_c)])
    csim = json.loads(rep_c.read_text())["csim"] if rep_c.exists() else {}
    rtl_json = json.loads((out / "rtl" / "rtl.json").read_text())
    traced = interpreter_check(out, rtl_json["clock_mhz"])
    partial = {"csim": csim, "traced": traced, "rtl_json": rtl_json, "rc_c": rc_c, "t_conv": t_conv, "t_csim": t_csim}
    if on_partial is not None:
        on_partial(_row(out, blocks, vectors, sim, {}, None, None, **partial))
    rc_r, t_rtl = (None, None) if sim == "none" else \
        _timed(cli, ["verify", str(out), "--rtl", "--sim", sim, "--json", str(rep_r)])
    rtl = json.loads(rep_r.read_text())["rtl"] if rep_r.exists() else {}
    return _row(out, blocks, vectors, sim, rtl, rc_r, t_rtl, **partial)


def interpreter_check(out: Path, clock_mhz: float) -> dict:
    """da4ml's int64 interpreter of every traced segment vs golden on the project's vectors (mismatches)."""
    import numpy as np

    from swinfpga.backends.rtl.build import build_model, check_traced
    from swinfpga.ir.graph import Model

    model = Model.load(out / "model.json")
    x = np.load(out / "vectors.npz")["x"]
    built, _ = build_model(model, clock_mhz, lambda s: None)
    return {k: int(v) for k, v in check_traced(model, built, x).items()}


def _row(out: Path, blocks: int, vectors: int, sim: str, rtl: dict, rc_r, t_rtl, *, csim: dict, traced: dict,
         rtl_json: dict, rc_c: int, t_conv: float, t_csim: float) -> dict:
    est = json.loads((out / "hls" / "hls_estimate.json").read_text())["CSynthesisReport"]
    ir = json.loads((out / "model.json").read_text())
    sms = [n["softmax"]["__softmax__"] for n in ir["nodes"] if n["__type__"] == "WindowAttention"]
    return {
        "model": "jet-16x3-hgq2", "tokens": 16, "features": 3, "embed": 16, "heads": 2, "blocks": blocks,
        "softmax_kinds": sorted({s.get("kind", "swinfpga") for s in sms}),
        "exp_table_entries": [2 ** s["exp"]["in_fmt"]["width"] for s in sms],
        "inverse_table_entries": [2 ** s["recip"]["in_fmt"]["width"] for s in sms],
        "vectors": vectors, "verify_exit": {"csim": rc_c, "rtl": rc_r},
        "csim_mismatches": csim.get("mismatches"), "csim_samples": csim.get("samples"),
        "traced_interpreter_mismatches": traced, "rtl_planned_latency_cycles": sum(rtl_json["layer_cycles"].values()),
        "rtl_mismatches": rtl.get("mismatches"), "rtl_samples": rtl.get("samples"), "simulator": sim,
        "rtl_latency_cycles": rtl.get("latency_cycles"), "rtl_ii_cycles": rtl.get("ii_cycles"),
        "clock_mhz": rtl_json["clock_mhz"], "da4ml_cost": rtl_json["da4ml_cost_total"],
        "hls_estimate_latency_cycles": est["WorstLatency"], "hls_estimate_lut": est["LUT"],
        "seconds": {"convert": t_conv, "csim": t_csim, "rtl_sim": t_rtl,
                    "rtl_build": rtl.get("build_seconds"), "rtl_run": rtl.get("run_seconds")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--vectors", type=int, default=64)
    ap.add_argument("--sim", choices=("icarus", "verilator", "none"), default="icarus",
                    help="RTL simulator (none: da4ml's int64 interpreter only)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        r = run(a.blocks, a.vectors, a.sim, Path(d), on_partial=lambda r: write(r, a))
    write(r, a)
    print(r)


def write(r: dict, a: argparse.Namespace) -> None:
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "hgq2_backends.json").write_text(json.dumps(r, indent=1) + "\n")
    ns = r["rtl_latency_cycles"] * 1000 / r["clock_mhz"] if r["rtl_latency_cycles"] is not None else None
    sim_row = (f"| RTL mismatches (vs golden, {r['simulator']}) | {r['rtl_mismatches']} of {r['rtl_samples']} samples |"
               if r["rtl_samples"] is not None else f"| RTL simulation ({r['simulator']}) | not run / not finished |")
    md = ["# An HGQ2 model through HLS and RTL: golden == C-sim == RTL", "",
          f"`nice -n 15 python bench/hgq2/backends.py --blocks {a.blocks} --vectors {a.vectors} --sim {a.sim}`: "
          f"HGQ2 jet classifier ({r['tokens']} x {r['features']}, embed {r['embed']}, {r['heads']} heads, "
          f"{r['blocks']} blocks; random weights and bit widths as bench/hgq2/import_check.py), imported from "
          "`.keras` (softmax kind `hgq2`: HGQ2's own exp and inverse tables), converted with HLS (io_parallel) "
          "and RTL.", "",
          "| | value |", "|---|---:|",
          f"| C-sim mismatches (vs golden) | {r['csim_mismatches']} of {r['csim_samples']} samples |",
          f"| traced RTL program (da4ml int64 interpreter) mismatches per segment | "
          f"{r['traced_interpreter_mismatches']} on {r['vectors']} samples |",
          sim_row,
          f"| RTL latency (simulated) | {r['rtl_latency_cycles']} cycles ({ns} ns at {r['clock_mhz']:g} MHz), II "
          f"{r['rtl_ii_cycles']} |",
          f"| RTL latency (planned, sum of layer cycles) | {r['rtl_planned_latency_cycles']} cycles |",
          f"| RTL da4ml cost estimate | {r['da4ml_cost']:,.0f} LUT-eq |",
          f"| HLS latency (swinfpga's estimate, not synthesis) | {r['hls_estimate_latency_cycles']} cycles |",
          f"| softmax tables (entries per layer) | exp {r['exp_table_entries']}, inverse "
          f"{r['inverse_table_entries']} |",
          f"| wall time (s) | convert {r['seconds']['convert']}, C-sim {r['seconds']['csim']}, RTL build + sim "
          f"{r['seconds']['rtl_sim']} |", ""]
    (a.out / "hgq2_backends.md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
