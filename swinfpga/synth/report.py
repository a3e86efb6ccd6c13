"""``swinfpga report DIR``: latency (cycles, ns), II, per-layer cycles and resources of a project,
written as ``report.md``, ``report.json`` and ``report.png`` into the project directory.

Latency/II come from the last RTL simulation (``rtl/sim_result.json``, written by
``swinfpga verify --rtl``) or, if there is none, from the structure recorded in ``rtl/rtl.json``
(labelled *predicted*).  Resources come from Vivado/Vitis reports where present (hls4ml's report
reader), else from Yosys ``synth_xilinx -family xcup`` per RTL segment (labelled *estimate*);
a segment Yosys does not finish in time falls back to da4ml's LUT-equivalent cost (labelled).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..boards import load_board
from ..ir import atomic_write_text
from ..manifest import Project

YOSYS_TIMEOUT = float(os.environ.get("SWINFPGA_YOSYS_TIMEOUT", "60"))  # s per unit; large unrolled units do not finish


@dataclass
class Report:
    """What ``swinfpga report`` prints (``markdown``) and writes (``data`` as JSON, a PNG)."""

    markdown: str
    data: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _vivado_resources(proj: Project) -> dict[str, Any] | None:
    """Vivado/Vitis HLS report numbers through hls4ml's reader, if such reports exist."""
    hd = proj.hls_dir
    if hd is None or not hd.exists():
        return None
    if not any(hd.rglob("*_csynth.xml")) and not any(hd.rglob("vivado_synth.rpt")):
        return None
    try:
        from hls4ml.report import parse_vivado_report

        rep = parse_vivado_report(str(hd))
    except Exception as e:  # pragma: no cover - needs Vivado output
        return {"source": "vivado", "error": str(e)}
    return {"source": "vivado", "report": rep}


def yosys_resources(proj: Project, progress: Callable[[str], None], timeout: float = YOSYS_TIMEOUT,
                    quick: bool = False) -> dict[str, Any]:
    """Per-segment Yosys estimates (cached by content hash) and their sum.  ``quick``: use cached
    Yosys results only; other segments fall back to da4ml's cost (labelled), no Yosys run."""
    from .yosys import run_yosys

    rtl_dir = proj.rtl_dir
    assert rtl_dir is not None
    rtl = json.loads((rtl_dir / "rtl.json").read_text())
    sources = sorted(rtl_dir.glob("*.v"))
    segs = []
    total = {"lut": 0, "ff": rtl["ports"]["in_data"]["width"] + 1, "dsp": 0, "bram36": 0.0, "uram": 0}
    complete = True
    for s in rtl["segments"]:
        if not quick:
            progress(f"Yosys: synth_xilinx -family xcup on {s['module']} (timeout {timeout:.0f}s; cached by hash)")
        r = run_yosys(sources, s["module"], timeout=timeout, mem_dir=rtl_dir, cache_only=quick)
        row = {"segment": s["name"], "module": s["module"], "status": r.status, "seconds": round(r.seconds, 1),
               "lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram36": r.bram36, "uram": r.uram, "carry": r.carry,
               "lutram": r.lutram, "da4ml_cost": s.get("da4ml_cost"), "cached": r.cached}
        if r.status == "ok":
            for k in ("lut", "ff", "dsp", "bram36", "uram"):
                total[k] += row[k]
        else:
            complete = False
            row["fallback"] = ("da4ml cost (LUT-equivalents); FF = register bits in the Verilog"
                               + ("; quick report: Yosys not run" if r.status == "skipped" else ""))
            total["lut"] += int(s.get("da4ml_cost") or 0)
            total["ff"] += int(s.get("register_bits") or 0)
        segs.append(row)
    return {"source": "yosys synth_xilinx -family xcup (estimate)", "segments": segs, "total": total,
            "complete": complete, "quick": quick}


def _plot(path: Path, layer_cycles: dict[str, int], util: dict[str, float], title: str,
          util_label: str = "estimate") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 1]})
    names = [k for k, v in layer_cycles.items() if v]
    vals = [layer_cycles[k] for k in names]
    a1.barh(range(len(names)), vals, color="tab:blue")
    a1.set_yticks(range(len(names)), names, fontsize=7)
    a1.invert_yaxis()
    a1.set_xlabel("clock cycles")
    a1.set_title(f"{title}: where the cycles go (total {sum(layer_cycles.values())})")
    ks = list(util)
    a2.bar(ks, [util[k] for k in ks], color="tab:orange")
    a2.set_ylabel("% of board")
    a2.set_title(f"utilization ({util_label})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rtl_vivado_section(proj: Project, latency: dict[str, Any] | None
                       ) -> tuple[list[str], dict[str, Any], dict[str, float], dict[str, Any]] | None:
    """The Vivado section (Markdown lines, resources, utilization %, JSON) from ``rtl/vivado/reports``
    (``swinfpga synth DIR --rtl`` or ``swinfpga report DIR --vivado-reports PATH``), or None without them.
    Latency in ns = latency cycles (RTL simulation, else predicted) x achieved period (target - WNS)."""
    from .vivado import VivadoError, project_result

    try:
        res = project_result(proj.root)
    except VivadoError as e:  # e.g. a run that died half-way: say so, fall back to the estimate
        import sys

        print(f"warning: Vivado reports not used: {e}", file=sys.stderr)
        return None
    if res is None:
        return None
    u, t = res.utilization, res.timing
    avail = asdict(load_board(proj.manifest.board).resources)
    used = {"lut": u.lut, "ff": u.ff, "dsp": u.dsp, "bram36": u.bram36, "uram": u.uram}
    for k in used:
        avail[k] = u.available_of(k) or avail.get(k, 0)
    util = {k.upper(): 100.0 * float(v) / avail[k] for k, v in used.items() if avail.get(k)}
    ach = res.achieved_period_ns
    cycles = int(latency["cycles"]) if latency else None
    lat_ns = res.latency_ns(cycles) if cycles is not None else None
    data = {**res.to_json(), "latency_cycles": cycles,
            "latency_cycles_source": latency.get("source") if latency else None, "latency_ns": lat_ns}
    label = "post-route" if res.stage == "post-route" else "post-synthesis (timing is Vivado's estimate)"
    lines = [f"## Resources and timing (Vivado, out-of-context, {label})", "",
             f"Part {res.part}; reports in rtl/vivado/reports ({', '.join(res.reports)}); "
             f"{u.header.tool or 'Vivado'}.", "",
             "| resource | used | available | utilization |", "|---|---:|---:|---:|"]
    for k in ("lut", "ff", "dsp", "bram36", "uram"):
        a = avail.get(k) or 0
        pct = f"{100.0 * float(used[k]) / a:.2f}%" if a else "n/a"
        lines.append(f"| {k.upper()} | {used[k]:,.1f} | {a:,.0f} | {pct} |" if k == "bram36"
                     else f"| {k.upper()} | {used[k]:,} | {a:,.0f} | {pct} |")
    wns = "n/a (no constrained path)" if t.wns_ns is None else f"{t.wns_ns:.3f} ns"
    board_ns = 1000.0 / proj.manifest.clock_mhz
    other = f" (not the board's {board_ns:.3f} ns: the run used another clock constraint)" \
        if abs(board_ns - t.period_ns) > 1e-3 else ""
    data["board_period_ns"] = board_ns
    lines += ["", "| timing | value |", "|---|---:|",
              f"| target clock | {t.period_ns:.3f} ns ({1000.0 / t.period_ns:.1f} MHz){other} |",
              f"| WNS (setup) | {wns} ({'met' if t.met else 'NOT met'}; {t.failing_endpoints} failing endpoints) |"]
    if ach is not None:
        lines.append(f"| achieved clock (target - WNS) | {ach:.3f} ns ({res.achieved_mhz:.1f} MHz) |")
    if lat_ns is not None:
        lines.append(f"| latency at the achieved clock | {cycles} cycles x {ach:.3f} ns = {lat_ns:.1f} ns |")
    cp = res.critical_path
    if cp is not None:
        lines.append(f"| critical path | {cp.data_path_ns} ns, {cp.logic_levels} logic levels ({cp.level_cells}); "
                     f"{cp.source} -> {cp.destination} |")
    lines.append("")
    if res.hierarchy:
        rtl_dir = proj.rtl_dir
        segs = json.loads((rtl_dir / "rtl.json").read_text())["segments"] if rtl_dir else []
        cost = {s["unit"]: s.get("da4ml_cost") for s in segs}
        lines += ["Per instance (report_utilization -hierarchical; da4ml's LUT-equivalent cost for comparison):", "",
                  "| instance | module | LUT | FF | DSP | BRAM36 | URAM | da4ml cost |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for h in res.hierarchy:
            c = cost.get(h.module)
            lines.append(f"| {'&nbsp;&nbsp;' * h.depth}{h.instance} | {h.module} | {h.lut:,} | {h.ff:,} | {h.dsp} | "
                         f"{h.bram36:g} | {h.uram} | {f'{c:,.0f}' if c is not None else ''} |")
        lines.append("")
    resources = {"source": f"vivado ({res.stage}, out-of-context)", "total": used, "available": avail}
    return lines, resources, util, data


def make_report(project_dir: Path, progress: Callable[[str], None] = lambda s: None, quick: bool = False) -> Report:
    """Build the report for the project at ``project_dir`` (see module docstring).  ``quick``: no
    Yosys runs (cached Yosys results are used; other segments show da4ml's cost, labelled)."""
    proj = Project.open(project_dir)
    man = proj.manifest
    board = load_board(man.board)
    clk = man.clock_mhz
    data: dict[str, Any] = {"model": man.model, "board": board.name, "part": board.part, "clock_mhz": clk}
    lines = [f"# {man.model} on {board.title} ({board.part}) at {clk:g} MHz", ""]
    rtl_dir = proj.rtl_dir
    rtl = json.loads((rtl_dir / "rtl.json").read_text()) if rtl_dir and (rtl_dir / "rtl.json").exists() else None
    sim = None
    if rtl_dir and (rtl_dir / "sim_result.json").exists():
        sim = json.loads((rtl_dir / "sim_result.json").read_text())
    layer_cycles: dict[str, int] = {}
    if rtl is not None:
        layer_cycles = {k: int(v) for k, v in rtl["layer_cycles"].items()}
        if sim is not None:
            lat, ii, src = int(sim["latency_cycles"]), int(sim["ii_cycles"]), f"RTL simulation ({sim['simulator']})"
        else:
            lat, ii = int(rtl["predicted"]["latency_cycles"]), int(rtl["predicted"]["ii_cycles"])
            src = "predicted from the RTL structure (run `swinfpga verify DIR --rtl` to measure)"
        data["latency"] = {"cycles": lat, "ns": lat * 1000.0 / clk, "ii_cycles": ii, "ii_ns": ii * 1000.0 / clk,
                           "source": src, "layer_cycles": layer_cycles}
        if sim is not None:
            data["rtl_sim"] = sim
        lines += ["## Latency (open RTL)", "",
                  "| quantity | cycles | ns |", "|---|---:|---:|",
                  f"| latency (first input accepted -> output) | {lat} | {lat * 1000.0 / clk:.1f} |",
                  f"| initiation interval | {ii} | {ii * 1000.0 / clk:.1f} |", "",
                  f"Source: {src}.  Throughput {clk * 1e6 / ii / 1e6:.1f} M samples/s." if ii else f"Source: {src}.",
                  ""]
        if sim is not None:
            lines += [f"RTL == golden: {sim['mismatches']} mismatching codes on {sim['samples']} samples "
                      f"({sim['simulator']}; variants {', '.join(sim.get('variants', []))}).", ""]
        lines += ["### Where the cycles go (pipeline stages per layer)", "", "| layer | cycles |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in layer_cycles.items()]
        lines += [f"| **total** | **{sum(layer_cycles.values())}** |", ""]
        ii_all = int(rtl["predicted"]["ii_cycles"])
        lines += ["Units (one da4ml-traced unit each in a streaming wrapper; `busy` = clocks per sample it "
                  "computes, out of the II; `group`: one attention window (all its tokens) per clock, `token`: "
                  "time-multiplexed token-serial work, `global`: the whole token map once):", "",
                  "| unit | kind | computes | tokens/clock | busy / II | unit stages | da4ml cost (LUT-eq) |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for s in rtl["segments"]:
            lines.append(f"| {s['name']} | {s.get('kind', 'group')} | {', '.join(s['nodes'])} | "
                         f"{s.get('tokens_per_group', '')} | {s.get('busy_cycles', s['groups'])} / {ii_all} | "
                         f"{s['unit_stages']} | {s['da4ml_cost']:.0f} |")
        lines += [f"| **total** | | | | | | **{sum(s['da4ml_cost'] for s in rtl['segments']):.0f}** |", ""]
    # resources
    res_src: dict[str, Any] | None = _vivado_resources(proj)
    util: dict[str, float] = {}
    viv = rtl_vivado_section(proj, data.get("latency")) if rtl is not None else None
    if viv is not None:  # Vivado's own numbers replace the Yosys estimate
        vlines, res_src, util, data["vivado"] = viv
        lines += vlines
    elif res_src is None and rtl is not None:
        res_src = yosys_resources(proj, progress, quick=quick)
        tot = res_src["total"]
        avail = asdict(board.resources)
        util = {k.upper(): 100.0 * float(tot[k]) / avail[k] for k in ("lut", "ff", "dsp", "bram36") if avail.get(k)}
        title = ("## Resources (ESTIMATE: Yosys synth_xilinx -family xcup, not Vivado)" if res_src["complete"] else
                 "## Resources (ESTIMATE: Yosys synth_xilinx -family xcup where it finished, else da4ml "
                 "LUT-equivalent cost and counted register bits; not Vivado)")
        lines += [title, "",
                  "| resource | used (estimate) | available | utilization |", "|---|---:|---:|---:|"]
        for k in ("lut", "ff", "dsp", "bram36"):
            if k in ("dsp", "bram36") and not res_src["complete"]:
                why = "quick: Yosys not run" if quick else "Yosys did not finish"
                lines.append(f"| {k.upper()} | n/a ({why}) | {avail[k]:,} | n/a |")
                util.pop(k.upper(), None)
                continue
            lines.append(f"| {k.upper()} | {tot[k]:,.0f} | {avail[k]:,} | {100.0 * float(tot[k]) / avail[k]:.2f}% |")
        lines += ["", "| segment | status | LUT | FF | DSP | BRAM36 | CARRY8 | Yosys s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for s in res_src["segments"]:
            if s["status"] == "skipped":  # quick report: say what the total counts instead of zeros
                lines.append(f"| {s['segment']} | skipped | {s['da4ml_cost'] or 0:,.0f} (da4ml cost) | "
                             "- | - | - | - | - |")
                continue
            lines.append(f"| {s['segment']} | {s['status']} | {s['lut']:,} | {s['ff']:,} | {s['dsp']} | "
                         f"{s['bram36']} | {s['carry']:,} | {s['seconds']} |")
        if quick and not res_src["complete"]:
            lines += ["", "QUICK report: Yosys was not run; segments marked `skipped` count da4ml's "
                      "LUT-equivalent cost and the register bits of the generated Verilog (cached Yosys "
                      "results are used where present).  Run `swinfpga report DIR` for Yosys counts."]
        elif not res_src["complete"]:
            lines += ["", "Segments marked other than `ok` did not finish in Yosys within the timeout "
                      f"(SWINFPGA_YOSYS_TIMEOUT={YOSYS_TIMEOUT:.0f}s; timeouts are cached per content hash); "
                      "their LUT count in the total is da4ml's LUT-equivalent cost and their FF count the "
                      "register bits of the generated Verilog.  DSP/BRAM are then unknown (da4ml maps "
                      "products to LUT logic; ROMs are small distributed tables)."]
        lines.append("")
    elif res_src is not None:
        dump = json.dumps(res_src, indent=1, default=str)[:4000]
        lines += ["## Resources (Vivado/Vitis HLS reports)", "", "```", dump, "```", ""]
    if rtl is None and res_src is None:
        why = ("this project has no RTL (converted with --no-rtl)" if rtl_dir is None else
               f"{rtl_dir / 'rtl.json'} is missing")
        lines += ["## No latency or resource figures", "",
                  f"Nothing to report: {why} and no Vivado/Vitis HLS reports were found.  Convert without "
                  "--no-rtl (open-flow latency and Yosys estimates), or run `swinfpga synth DIR` where Vitis/Vivado "
                  "HLS is installed.", ""]
        data["empty_reason"] = why
        progress(f"report: {why}; nothing to report beyond the header")
    data["resources"] = res_src
    data["utilization_pct"] = util
    md = "\n".join(lines)
    root = Path(project_dir)
    atomic_write_text(root / "report.md", md)
    atomic_write_text(root / "report.json", json.dumps(data, indent=1, default=str))
    files = ["report.md", "report.json"]
    try:
        _plot(root / "report.png", layer_cycles, util, man.model, "Vivado" if viv is not None else "estimate")
        files.append("report.png")
    except ImportError:  # pragma: no cover
        progress("matplotlib missing: no report.png")
    return Report(md, data, files)
