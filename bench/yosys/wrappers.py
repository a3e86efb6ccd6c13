"""Yosys counts of the streaming wrappers: the top level and every segment wrapper (group gather
muxes, frame buffers, issue counters) of a converted design, with the da4ml units read as black
boxes (``read_verilog -lib``), so that units (``bench/yosys/run.py``) + wrappers = the whole design.

Writes ``bench/results/yosys_wrappers.{json,md}``; with ``--units JSON`` (a ``yosys_vs_da4ml.json``)
the Markdown adds the whole-design total (units + wrappers).

    nice -n 10 python bench/yosys/wrappers.py [--models swin-digits ...] [--project NAME=DIR ...]
        [--units bench/results/yosys_vs_da4ml.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def wrapper_counts(design: str, rtl: Path, budget: float) -> dict:
    """Synthesize ``swinfpga_top`` of the Verilog in ``rtl`` with the units as black boxes."""
    from swinfpga.synth.yosys import run_yosys, yosys_exe, yosys_version

    info = json.loads((rtl / "rtl.json").read_text())
    top = info.get("top", "swinfpga_top")
    units = sorted(rtl.glob(f"{top}_s*_unit.v"))
    wrappers = [rtl / f"{top}.v", *sorted(p for p in rtl.glob(f"{top}_s*.v") if not p.name.endswith("_unit.v")
                                          and "_unit_stage" not in p.name)]
    r = run_yosys(wrappers, top, timeout=budget, lib=tuple(units))
    exe = yosys_exe()
    return {"design": design, "top": top, "wrappers": len(wrappers) - 1, "status": r.status,
            "seconds": round(r.seconds, 1), "cached": r.cached, "lut": r.lut, "inv": int(r.cells.get("INV", 0)),
            "ff": r.ff, "dsp": r.dsp, "carry8": r.carry, "lutram": r.lutram,
            "mux": sum(v for k, v in r.cells.items() if k.startswith("MUXF")),
            "yosys": yosys_version(exe) if exe else None}


def convert(name: str, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "swinfpga.cli", "convert", name, "-o", str(out), "--no-hls", "--force"],
                   check=True, cwd=ROOT)
    return out / "rtl"


def write(rows: list[dict], units_json: Path | None, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "yosys_wrappers.json").write_text(json.dumps(rows, indent=1) + "\n")
    md = ["# Yosys counts of the streaming wrappers (units as black boxes)", "",
          "Command: `nice -n 10 python bench/yosys/wrappers.py` (see its docstring). The top level and every segment "
          "wrapper (group gather muxes, frame buffers, issue/valid counters) synthesized with "
          "`synth_xilinx -family xcup -flatten -noiopad -noclkbuf`, the da4ml units read as black boxes; "
          "`bench/yosys/run.py` counts the units. Yosys counts are estimates of Yosys' own Xilinx mapping (no Vivado). "
          "LUT = LUT1-LUT6 cells; INV = Yosys' inverter cells (a LUT1 each in Vivado unless absorbed), listed apart.",
          "", "| design | wrappers | LUT | INV | FF | DSP | MUXF7/8 | SRL/LUTRAM | status | s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        md.append(f"| {r['design']} | {r['wrappers']} | {r['lut']:,} | {r.get('inv', '-')} | {r['ff']:,} | "
                  f"{r['dsp']} | {r['mux']:,} | {r['lutram']} | {r['status']} | {r['seconds']} |")
    if units_json is not None and units_json.exists():
        urows = json.loads(units_json.read_text())
        src = units_json.relative_to(ROOT) if units_json.is_relative_to(ROOT) else units_json
        md += ["", f"Whole design = units (`{src}`) + wrappers:", "",
               "| design | units finished | unit LUT | wrapper LUT | total LUT (+ SRL/LUTRAM) | total INV "
               "| total LUT + INV | total FF | total DSP |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            mine = [u for u in urows if u["design"] == r["design"]]
            if not mine:
                continue
            ok = all(u["status"] == "ok" for u in mine)
            ul = sum(u["lut"] for u in mine)
            tot = ul + r["lut"] + r["lutram"] + sum(u.get("lutram", 0) for u in mine)
            done = f"{sum(u['status'] == 'ok' for u in mine)}/{len(mine)}{'' if ok else ' (partial)'}"
            inv = (sum(u["inv"] for u in mine) + r["inv"]) if all("inv" in u for u in [*mine, r]) else None
            inv_s = "-" if inv is None else f"{inv:,}"
            both = "-" if inv is None else f"{tot + inv:,}"
            md.append(f"| {r['design']} | {done} | {ul:,} | {r['lut']:,} | {tot:,} | {inv_s} | {both} | "
                      f"{sum(u['ff'] for u in mine) + r['ff']:,} | {sum(u['dsp'] for u in mine) + r['dsp']:,} |")
    (out / "yosys_wrappers.md").write_text("\n".join(md) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=None, help="reference models to convert (default: swin-digits, "
                    "unless --project is given)")
    ap.add_argument("--project", nargs="*", default=[], metavar="NAME=DIR", help="an existing convert output")
    ap.add_argument("--units", default=str(ROOT / "bench" / "results" / "yosys_vs_da4ml.json"))
    ap.add_argument("--budget", type=float, default=3600.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        models = a.models if a.models is not None else ([] if a.project else ["swin-digits"])
        todo = [(n, None) for n in models] + [tuple(p.split("=", 1)) for p in a.project]
        for name, d in todo:
            rtl = Path(d) / "rtl" if d else convert(name, Path(td) / name.replace("/", "_"))
            print(f"== {name}: Yosys on the wrappers of {rtl}", flush=True)
            rows.append(wrapper_counts(name, rtl, a.budget))
            print(json.dumps(rows[-1]), flush=True)
            write(rows, Path(a.units) if a.units else None, Path(a.out))


if __name__ == "__main__":
    main()
