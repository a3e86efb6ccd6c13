"""Real resource counts: Yosys ``synth_xilinx -family xcup`` on every RTL unit of the reference
designs (and a few small attention units), next to da4ml's LUT-equivalent cost figure.

Each unit (da4ml's pipelined module: its register stages kept as separate hierarchy, everything
else flattened into them) is synthesized on its own by :func:`swinfpga.synth.yosys.run_yosys`
(native ``yosys`` preferred; cached by content hash), smallest da4ml cost first, each with
``--budget`` seconds.  Results are written after every unit, so the script can run in the
background (``nice -n 15``) and be re-run: finished units come from the cache.

Writes ``bench/results/yosys_vs_da4ml.{json,md}``.

    nice -n 15 python bench/yosys/run.py [--budget 7200] [--models swin-digits ...] [--small 2,1,8 ...]
        [--segments seg0 ...] [--out DIR]
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
sys.path.insert(0, str(ROOT / "bench" / "rtl"))

MODELS = ["swin-digits", "swin-free-digits", "swin-digits-ln"]
SMALL = ["2,1,4", "2,1,8", "2,2,8", "2,2,16"]


def units(models: list[str], small: list[str], clock_mhz: float) -> list[tuple[str, object]]:
    """(design name, BuiltSegment) for every unit, RTL traces from the content-hash cache."""
    from swinfpga.backends.rtl.build import build_model
    from swinfpga.project import resolve_model

    out = []
    for c in small:
        from attention_scaling import attention_model

        w, h, d = (int(v) for v in c.split(","))
        m = attention_model(w, h, d)
        built, _ = build_model(m, clock_mhz, top=f"attn_w{w}_h{h}_d{d}")
        out += [(f"attention w{w} h{h} d{d}", b) for b in built]
    for name in models:
        m = resolve_model(name, random_ok=False)
        built, _ = build_model(m, clock_mhz, progress=lambda s: print(s, flush=True))
        out += [(name, b) for b in built]
    return out


def synth_unit(design: str, b, budget: float, cache_only: bool = False) -> dict:
    from swinfpga.backends.rtl.verilog import static_sources
    from swinfpga.synth.yosys import run_yosys, yosys_exe, yosys_version

    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        files = {k: v for k, v in b.files.items() if k != b.wrapper_name}
        files.update(static_sources(bool(getattr(b, "dsp_const", 0))))
        for k, v in files.items():
            (d / f"{k}.v").write_text(v)
        for k, v in b.mems.items():
            (d / k).write_text(v)
        r = run_yosys(sorted(d.glob("*.v")), b.unit_name, timeout=budget, mem_dir=d,
                      keep=(f"{b.unit_name}_stage*",), cache_only=cache_only)
    exe = yosys_exe()
    row = {"design": design, "segment": b.seg.name, "unit": b.unit_name, "groups": b.seg.groups,
           "stages": b.stages, "da4ml_cost": b.cost, "status": r.status, "seconds": round(r.seconds, 1),
           "cached": r.cached, "lut": r.lut, "inv": int(r.cells.get("INV", 0)), "ff": r.ff, "dsp": r.dsp,
           "carry8": r.carry, "lutram": r.lutram,
           "bram36": r.bram36, "budget": budget, "yosys": yosys_version(exe) if exe else None}
    if r.status == "ok" and b.cost:
        row["lut_per_da4ml_cost"] = round(r.lut / b.cost, 3)
    if r.status != "ok":
        row["log_tail"] = r.log[-400:]
    return row


def write(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "yosys_vs_da4ml.json").write_text(json.dumps(rows, indent=1))
    yv = next((r["yosys"] for r in rows if r.get("yosys")), "?")
    md = ["# Yosys synth_xilinx -family xcup vs da4ml's cost figure, per RTL unit", "",
          f"Command: `nice -n 15 python bench/yosys/run.py`. Yosys: {yv}. One run per unit (da4ml's pipelined "
          "module; its register stages kept as hierarchy, all else flattened into them; `-noiopad -noclkbuf`), "
          "cached by content hash. Yosys counts are estimates of Yosys' own Xilinx mapping (no Vivado). "
          "DSP = DSP48E2; FF excludes the segment wrapper's frame buffers; s = wall seconds (at the run's nice). "
          "LUT = LUT1-LUT6 cells; INV = Yosys' separate inverter cells (a LUT1 each in Vivado unless it absorbs "
          "them into a neighbouring LUT), listed apart so both totals are visible.", "",
          "| design | segment | groups | da4ml cost | Yosys LUT | INV | LUT / cost | FF | DSP | CARRY4/8 | status "
          "| s |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        head = f"| {r['design']} | {r['segment']} | {r['groups']} | {r['da4ml_cost']:,.0f} | "
        if r["status"] == "ok":
            inv = f"{r['inv']:,}" if "inv" in r else "-"
            md.append(head + f"{r['lut']:,} | {inv} | {r.get('lut_per_da4ml_cost', '-')} | {r['ff']:,} | "
                      f"{r['dsp']:,} | {r['carry8']:,} | ok | {r['seconds']} |")
        else:
            md.append(head + f"- | - | - | - | - | - | {r['status']} (budget {r['budget']:.0f} s) | {r['seconds']} |")
    done = [r for r in rows if r["status"] == "ok" and r["da4ml_cost"]]
    if done:
        ratios = [r["lut"] / r["da4ml_cost"] for r in done]
        md += ["", f"Yosys LUT / da4ml cost over {len(done)} finished units: min {min(ratios):.2f}, "
               f"max {max(ratios):.2f}, median {sorted(ratios)[len(ratios) // 2]:.2f}. da4ml's figure prices every "
               "product as LUT adders; Yosys maps wide variable x variable products to DSP48E2 (DSP column), so the "
               "LUT ratio alone understates those units' size."]
    for design in dict.fromkeys(r["design"] for r in rows):
        mine = [r for r in rows if r["design"] == design]
        if len(mine) > 1 and all(r["status"] == "ok" for r in mine):
            cost = sum(r["da4ml_cost"] for r in mine)
            lut, ff, dsp = (sum(r[k] for r in mine) for k in ("lut", "ff", "dsp"))
            n_inv = sum(r["inv"] for r in mine) if all("inv" in r for r in mine) else None
            inv = "" if n_inv is None else f" + {n_inv:,} INV (LUT + INV {lut + n_inv:,})"
            md += ["", f"{design}, sum over its {len(mine)} unit rows: {lut:,} Yosys LUT{inv} (da4ml cost "
                   f"{cost:,.0f}, LUT ratio {lut / cost:.2f}), {ff:,} FF, {dsp:,} DSP48E2."]
    left = [r for r in rows if r["status"] != "ok"]
    if left:
        md += ["", f"{len(left)} unit(s) did not finish within their budget; re-running the command continues from "
               "the cache (finished units are not synthesized again)."]
    (out / "yosys_vs_da4ml.md").write_text("\n".join(md) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--small", nargs="*", default=SMALL, help="extra attention units window,heads,dim")
    ap.add_argument("--budget", type=float, default=7200.0, help="Yosys seconds per unit")
    ap.add_argument("--clock", type=float, default=200.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--segments", nargs="*", default=None,
                    help="only these segments (e.g. seg0 seg2b: a second run in parallel; results meet in the cache)")
    ap.add_argument("--merge", nargs="*", default=None, metavar="JSON",
                    help="no synthesis: merge the rows of these yosys_vs_da4ml.json files (later files win per "
                         "design and segment) and write --out")
    a = ap.parse_args()
    if a.merge is not None:
        merged: dict[tuple[str, str], dict] = {}
        for f in a.merge:
            for r in json.loads(Path(f).read_text()):
                merged[(r["design"], r["segment"])] = r
        write(sorted(merged.values(), key=lambda r: r["da4ml_cost"]), Path(a.out))
        return
    todo = sorted(units(a.models, a.small, a.clock), key=lambda t: t[1].cost)
    if a.segments is not None:
        todo = [t for t in todo if t[1].seg.name in a.segments]
    rows: list[dict] = []
    for design, b in todo:
        print(f"== {design} {b.seg.name}: da4ml cost {b.cost:,.0f}; Yosys budget {a.budget:.0f} s", flush=True)
        t0 = time.perf_counter()
        rows.append(synth_unit(design, b, a.budget))
        print(json.dumps(rows[-1]), f"({time.perf_counter() - t0:.0f} s)", flush=True)
        write(rows, Path(a.out))


if __name__ == "__main__":
    main()
