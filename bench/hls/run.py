"""HLS pre-flight and estimates across strategies, reuse factors and io types (no Vitis needed).

For each reference model (random weights: the structure, not the values, sets the figures) and each
configuration, plans the hls4ml project exactly as ``convert`` writes it, runs the synthesizability
pre-flight (``swinfpga.backends.hls4ml.preflight``) and the per-layer estimates, and writes
``hls_estimates.json`` and ``hls_estimates.md``: pass/fail with the first failing limit, the largest
unrolled-multiply count in one pipeline, and the estimated latency (cycles), interval and resources.
Estimates, not synthesis results: a Vitis report (``swinfpga synth``) replaces them where one exists.

    python bench/hls/run.py [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from swinfpga.backends.hls4ml.plan import plan_model  # noqa: E402
from swinfpga.backends.hls4ml.preflight import estimate, preflight  # noqa: E402
from swinfpga.boards import load_board  # noqa: E402
from swinfpga.ir.build import random_model  # noqa: E402
from swinfpga.models import SWIN_DIGITS, SWIN_DIGITS_LN, SWIN_T_STAGE1  # noqa: E402

CONFIGS = (("flat", "latency", 1, "io_parallel"), ("layers", "latency", 1, "io_parallel"),
           ("layers", "latency", 4, "io_parallel"), ("layers", "resource", 4, "io_parallel"),
           ("layers", "resource", 16, "io_parallel"), ("layers", "latency", 1, "io_stream"),
           ("layers", "resource", 4, "io_stream"), ("layers", "resource", 16, "io_stream"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    board = load_board("vu13p")
    rows = []
    for spec in (SWIN_DIGITS, SWIN_DIGITS_LN, SWIN_T_STAGE1):
        m = random_model(spec)
        for layout, strategy, rf, io in CONFIGS:
            plans = plan_model(m, rf, strategy, layout, io)
            rep = preflight(plans, strategy, rf, layout, board, io)
            est = estimate(plans, board, io)["CSynthesisReport"]
            fails = rep.failures()
            worst = max(u.const_mults + u.var_mults for f in rep.functions for u in f.units)
            first = f"{fails[0][0].ir_name} {fails[0][1]}: {fails[0][2].limit} {fails[0][2].value:,}" if fails else ""
            rows.append({"model": spec.name, "layout": layout, "strategy": strategy, "reuse_factor": rf, "io_type": io,
                         "ok": rep.ok, "n_failures": len(fails), "first_failure": first,
                         "max_unrolled_multiplies": worst, "estimate": est})
            print(f"{spec.name:14s} {layout:6s} {strategy:8s} RF{rf:<3d} {io:11s} ok={rep.ok!s:5s} "
                  f"max_unroll={worst:7,d} lat={est['WorstLatency']:9,d} II={est['IntervalMax']:9,d} "
                  f"LUT={est['LUT']:9,d} DSP={est['DSP']:6,d} BRAM18={est['BRAM_18K']:5,d} {first}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hls_estimates.json").write_text(json.dumps({"board": board.name, "clock_mhz": board.clock_mhz,
                                                        "source": "estimate", "rows": rows}, indent=1))
    md = ["# HLS pre-flight and estimates (swinfpga's model of the generated loops; not a Vitis report)", "",
          f"Board {board.name} at {board.clock_mhz:g} MHz; `python bench/hls/run.py`.", "",
          "| model | layout | strategy | RF | io | pre-flight | max unrolled mults / pipeline | latency (cycles) "
          "| interval | LUT | DSP | BRAM_18K | first failure |", "|" + "---|" * 13]
    for r in rows:
        e = r["estimate"]
        md.append(f"| {r['model']} | {r['layout']} | {r['strategy']} | {r['reuse_factor']} | {r['io_type']} | "
                  f"{'ok' if r['ok'] else 'FAIL'} | {r['max_unrolled_multiplies']:,} | {e['WorstLatency']:,} | "
                  f"{e['IntervalMax']:,} | {e['LUT']:,} | {e['DSP']:,} | {e['BRAM_18K']:,} | {r['first_failure']} |")
    (out / "hls_estimates.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
