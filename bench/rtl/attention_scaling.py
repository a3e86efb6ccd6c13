"""How one window-attention unit's cost grows with window size, head count and embed dim.

For each configuration a single ``WindowAttention`` (random weights, default 8-bit formats) is
traced with da4ml, checked bit-exact against the golden model with da4ml's int64 interpreter,
pipelined for the board clock and (optionally) synthesized with Yosys ``synth_xilinx -family
xcup`` (estimate).  Writes ``bench/results/rtl_attention_scaling.{json,md,png}``.

    python bench/rtl/attention_scaling.py [--yosys-timeout S] [--budget S] [--configs w,h,d ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT = ["2,1,8", "2,2,8", "2,2,16", "2,4,16", "2,2,32", "3,2,16", "4,2,16", "4,2,32", "7,3,96"]


def attention_model(window: int, heads: int, dim: int):
    from swinfpga.fixed import Fmt
    from swinfpga.ir import Model
    from swinfpga.ir.build import random_model
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec(name=f"attn-w{window}-h{heads}-d{dim}", img=(window, window, dim), patch=0, embed=dim,
                    stages=(StageSpec(depth=1, heads=heads, window=window, shift=0),), classes=0,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"))
    full = random_model(spec)
    return Model(spec.name, tuple(full.nodes[:2]), full.nodes[1].name, {"bench": True})


def run_one(window: int, heads: int, dim: int, clock_mhz: float, yosys_timeout: float) -> dict:
    from swinfpga.backends.rtl.build import build_model, check_traced, latency_cutoff_for, predicted_schedule
    from swinfpga.backends.rtl.verilog import static_sources
    from swinfpga.ir.build import random_input
    from swinfpga.synth.yosys import run_yosys

    m = attention_model(window, heads, dim)
    row: dict = {"window": window, "heads": heads, "dim": dim, "tokens": window * window,
                 "clock_mhz": clock_mhz, "latency_cutoff": latency_cutoff_for(clock_mhz)}
    t0 = time.perf_counter()
    built, _ = build_model(m, clock_mhz, top=f"attn_w{window}_h{heads}_d{dim}")
    row["trace_seconds"] = round(time.perf_counter() - t0, 1)
    b = built[0]
    row["trace_cached"] = b.cached
    row["da4ml_cost"] = b.cost
    row["unit_stages"] = b.stages
    row["latency_cycles"] = predicted_schedule(built)["latency_cycles"]
    row["latency_ns"] = row["latency_cycles"] * 1000.0 / clock_mhz
    row["mismatches_vs_golden"] = sum(check_traced(m, built, random_input(m, 200, seed=3)).values())
    if yosys_timeout > 0:
        with tempfile.TemporaryDirectory() as td:
            d = Path(td)
            files = {**b.files, **static_sources()}
            for k, v in files.items():
                (d / f"{k}.v").write_text(v)
            for k, v in b.mems.items():
                (d / k).write_text(v)
            r = run_yosys(sorted(d.glob("*.v")), b.unit_name, timeout=yosys_timeout, mem_dir=d)
        row.update({"yosys_status": r.status, "yosys_seconds": round(r.seconds, 1), "lut": r.lut, "ff": r.ff,
                    "dsp": r.dsp, "bram36": r.bram36, "carry": r.carry})
    return row


def write(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "rtl_attention_scaling.json").write_text(json.dumps(rows, indent=1))
    hdr = ("| window | tokens | heads | dim | da4ml cost (LUT-eq) | stages | latency cycles | latency ns | "
           "Yosys LUT | FF | DSP | Yosys status | trace s | mismatches |")
    md = ["# One window-attention unit: cost vs window, heads, dim (open flow, estimates)", "",
          "Latency = top input register + 1 issue cycle + unit pipeline (stages + 1) at the clock's da4ml cutoff.",
          "Resources: Yosys synth_xilinx -family xcup (estimate; not Vivado).", "", hdr,
          "|" + "---:|" * 14]
    for r in rows:
        md.append(f"| {r['window']} | {r['tokens']} | {r['heads']} | {r['dim']} | {r.get('da4ml_cost', 0):,.0f} | "
                  f"{r.get('unit_stages', '-')} | {r.get('latency_cycles', '-')} | {r.get('latency_ns', 0):.0f} | "
                  f"{r.get('lut', '-')} | {r.get('ff', '-')} | {r.get('dsp', '-')} | "
                  f"{r.get('yosys_status', r.get('error', '-'))} | "
                  f"{r.get('trace_seconds', '-')} | {r.get('mismatches_vs_golden', '-')} |")
    (out / "rtl_attention_scaling.md").write_text("\n".join(md) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ok = [r for r in rows if "da4ml_cost" in r]
        fig, ax = plt.subplots(1, 2, figsize=(11, 4.5))
        lab = [f"w{r['window']} h{r['heads']} d{r['dim']}" for r in ok]
        ax[0].bar(lab, [r["da4ml_cost"] for r in ok], label="da4ml cost (LUT-eq)")
        ax[0].bar(lab, [r.get("lut", 0) or 0 for r in ok], alpha=0.6, label="Yosys LUT (estimate)")
        ax[0].set_yscale("log")
        ax[0].legend()
        ax[0].tick_params(axis="x", rotation=60)
        ax[1].bar(lab, [r["latency_cycles"] for r in ok])
        ax[1].set_ylabel("latency cycles")
        ax[1].tick_params(axis="x", rotation=60)
        fig.tight_layout()
        fig.savefig(out / "rtl_attention_scaling.png", dpi=110)
    except ImportError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--configs", nargs="*", default=DEFAULT, help="window,heads,dim triples")
    ap.add_argument("--clock", type=float, default=200.0)
    ap.add_argument("--yosys-timeout", type=float, default=600.0)
    ap.add_argument("--budget", type=float, default=2400.0, help="stop starting new configs after this many s")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    a = ap.parse_args()
    rows = []
    t0 = time.perf_counter()
    for c in a.configs:
        w, h, d = (int(v) for v in c.split(","))
        if time.perf_counter() - t0 > a.budget:
            rows.append({"window": w, "heads": h, "dim": d, "tokens": w * w, "error": "skipped (time budget)"})
            continue
        print(f"== window {w} heads {h} dim {d}", flush=True)
        try:
            rows.append(run_one(w, h, d, a.clock, a.yosys_timeout))
        except Exception as e:  # record and continue: the point is to see where it stops
            rows.append({"window": w, "heads": h, "dim": d, "tokens": w * w, "error": f"{type(e).__name__}: {e}"[:200]})
        print(json.dumps(rows[-1]), flush=True)
        write(rows, Path(a.out))
    write(rows, Path(a.out))
    _ = np


if __name__ == "__main__":
    main()
