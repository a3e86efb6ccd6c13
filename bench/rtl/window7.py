"""Window-7 attention at the Swin-T stage-1 shape through the RTL back end.

One ``WindowAttention`` (random weights, the default 8-bit formats of ``ir.build``) on a
``res x res`` map (Swin-T stage 1: 56 x 56, 64 windows of 7 x 7 = 49 tokens, 3 heads), the embedding
reduced from 96 (``--dim``; da4ml unrolls the unit fully, so cost grows with dim and heads).  The
unit is traced with da4ml at the 200 MHz cutoff, checked bit-exact against the golden model with
da4ml's int64 interpreter, pipelined and emitted as Verilog, then simulated (cocotb, default
Verilator) on a few random vectors: RTL == golden, 0 mismatches, latency and II measured.

Writes ``bench/results/rtl_window7.{json,md}``.

    nice -n 15 python bench/rtl/window7.py [--res 56] [--dim 6] [--heads 3] [--shift 0] [--vectors 4]
                                           [--ii N] [--sim verilator|icarus|none]

``--ii N`` folds the unit (``convert --ii``): at ``--ii 3136`` (56 x 56 tokens, one per clock) the
q/k/v projections run token-serial and the attention core one query row per clock (1/49 of the
fully parallel window unit), which is what simulates on this machine.  Rows of earlier runs with
another configuration are kept in the results.
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


def attention_model(res: int, dim: int, heads: int, window: int, shift: int):
    """Input + one WindowAttention of ``random_model`` (seed 7) on a ``res x res x dim`` map."""
    from swinfpga.fixed import Fmt
    from swinfpga.ir import Model
    from swinfpga.ir.build import random_model
    from swinfpga.models import StageSpec, SwinSpec

    depth = 2 if shift else 1
    spec = SwinSpec(name=f"w{window}-{res}x{res}-d{dim}h{heads}", img=(res, res, dim), patch=0, embed=dim,
                    stages=(StageSpec(depth=depth, heads=heads, window=window, shift=shift),), classes=0,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"))
    full = random_model(spec, seed=7)
    attn = [n for n in full.nodes if type(n).__name__ == "WindowAttention"][-1]
    from dataclasses import replace

    return Model(spec.name, (full.nodes[0], replace(attn, src="input")), attn.name, {"bench": "window7"})


def unit_cached(m) -> bool:
    """Whether the traced unit of ``m`` is already in the RTL build cache (convert then skips tracing)."""
    from swinfpga.backends.rtl.build import TOP, cache_root, latency_cutoff_for, segment_hash
    from swinfpga.backends.rtl.plan import balance_segments

    segs, _ = balance_segments(m)
    return all((cache_root() / "rtl" / segment_hash(s, latency_cutoff_for(200.0), f"{TOP}_s{i}_unit")[:24]).exists()
               for i, s in enumerate(segs))


class RssWatch:
    """Peak resident memory (GB) of this process's descendants while the simulator builds (read from
    ``/proc``, every second): the largest single process (``verilator_bin`` or a C++ compiler) and
    the sum over all of them.  A descendant above ``limit_gb`` is killed (SIGKILL, by its pid), so
    a build that would exhaust the shared machine stops instead."""

    def __init__(self, limit_gb: float):
        import threading

        self.limit = limit_gb
        self.peak_one = 0.0
        self.peak_sum = 0.0
        self.peak_name = ""
        self.killed = ""
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssWatch:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()

    @staticmethod
    def _procs() -> list[tuple[int, str, float]]:
        import os

        me = os.getpid()
        parent: dict[int, int] = {}
        info: dict[int, tuple[str, float]] = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
                status = (d / "status").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            rss = next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0)
            parent[int(d.name)] = ppid
            info[int(d.name)] = (name, rss / 1e6)
        out = []
        for pid, (name, gb) in info.items():
            q = parent.get(pid, 0)
            while q > 1 and q != me:
                q = parent.get(q, 0)
            if q == me:
                out.append((pid, name, gb))
        return out

    def _run(self) -> None:
        import os
        import signal

        while not self._stop.wait(1.0):
            procs = self._procs()
            if not procs:
                continue
            pid, name, gb = max(procs, key=lambda t: t[2])
            if gb > self.peak_one:
                self.peak_one, self.peak_name = gb, name
            self.peak_sum = max(self.peak_sum, sum(t[2] for t in procs))
            if gb > self.limit:
                self.killed = f"{name} (pid {pid}) at {gb:.1f} GB"
                print(f"RSS limit {self.limit} GB: killing {self.killed}", flush=True)
                os.kill(pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, default=56)
    ap.add_argument("--window", type=int, default=7)
    ap.add_argument("--dim", type=int, default=6)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--shift", type=int, default=0)
    ap.add_argument("--vectors", type=int, default=4)
    ap.add_argument("--ii", type=int, default=None, help="RTL initiation interval (convert --ii); default natural")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus", "none"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--wrapper", default="auto", choices=["auto", "flat", "indexed"],
                    help="segment wrapper gather/scatter form (auto: indexed above 64 groups per segment)")
    ap.add_argument("--rss-limit-gb", type=float, default=8.0,
                    help="kill a simulator build process above this resident size (shared machine)")
    ap.add_argument("--note", default="", help="a sentence for the Markdown (e.g. why the simulation was not run)")
    a = ap.parse_args()

    from swinfpga.backends.rtl import verilog
    from swinfpga.backends.rtl.plan import balance_segments
    from swinfpga.backends.rtl.verify import verify_rtl
    from swinfpga.manifest import Project
    from swinfpga.project import ConvertOptions, convert

    if a.wrapper != "auto":  # force one form for every segment (comparison runs)
        verilog.INDEXED_MIN_GROUPS = 0 if a.wrapper == "indexed" else 1 << 30
    m = attention_model(a.res, a.dim, a.heads, a.window, a.shift)
    forms = {verilog.use_indexed(sg) for sg in balance_segments(m, a.ii)[0]}
    attn = m.nodes[1]
    row: dict = {"model": m.name, "resolution": [a.res, a.res], "window": a.window, "tokens": a.window**2,
                 "windows": attn.n_windows, "dim": a.dim, "heads": a.heads, "shift": a.shift,
                 "ii_requested": a.ii, "wrapper": "/".join(sorted("indexed" if f else "flat" for f in forms)),
                 "softmax": {"P": attn.softmax.prob_fmt.frac, "E": attn.softmax.exp_frac,
                             "R": attn.softmax.recip_frac}}
    with tempfile.TemporaryDirectory(prefix="window7-") as td:
        prj = Path(td) / "prj"
        t0 = time.perf_counter()
        row["trace_cached"] = unit_cached(m)
        res = convert(m, prj, ConvertOptions(hls=False, n_vectors=max(a.vectors, 1), force=True, ii=a.ii),
                      progress=lambda s: print(f"[{time.perf_counter() - t0:7.1f}s] {s}", flush=True))
        row["convert_seconds"] = round(time.perf_counter() - t0, 1)
        row["rtl_seconds"] = round(res.seconds.get("rtl", 0.0), 1)
        rtl = json.loads((prj / "rtl" / "rtl.json").read_text())
        segs = rtl["segments"]
        row.update({"da4ml_cost": sum(sg["da4ml_cost"] for sg in segs),
                    "unit_stages": sum(sg["unit_stages"] for sg in segs), "units": len(segs),
                    "predicted_latency_cycles": rtl["predicted"]["latency_cycles"],
                    "predicted_ii_cycles": rtl["predicted"]["ii_cycles"], "clock_mhz": rtl["clock_mhz"],
                    "traced_check": rtl["traced_check"],
                    "verilog_mb": round(sum((prj / "rtl" / f).stat().st_size for f in rtl["files"]) / 1e6, 2)})
        print(json.dumps(row, indent=1), flush=True)
        write(row, a)  # the trace results stand even if the simulation is stopped
        if a.sim != "none":
            with RssWatch(a.rss_limit_gb) as watch:
                rep = verify_rtl(Project.open(prj), simulator=a.sim, check_trace=False,
                                 variants=[{"name": "stream", "n": a.vectors, "idle_prob": 0.0, "bp_prob": 0.0}],
                                 progress=lambda s: print(f"[{time.perf_counter() - t0:7.1f}s] {s}", flush=True))
            row["sim"] = {"simulator": rep.simulator, "samples": rep.samples, "mismatches": rep.mismatches,
                          "latency_cycles": rep.latency_cycles, "ii_cycles": rep.ii_cycles,
                          "build_seconds": round(rep.build_seconds, 1), "run_seconds": round(rep.run_seconds, 1),
                          "build_cached": rep.build_seconds == 0.0,
                          "peak_rss_gb": round(watch.peak_one, 2), "peak_rss_process": watch.peak_name,
                          "peak_rss_sum_gb": round(watch.peak_sum, 2)}
    write(row, a)


def _key(r: dict) -> tuple:
    return (tuple(r["resolution"]), r["window"], r["dim"], r["heads"], r["shift"], r.get("ii_requested"),
            r.get("wrapper", "flat"))


def write(row: dict, a: argparse.Namespace) -> None:
    """``rtl_window7.{json,md}``: ``row`` replaces the earlier row of the same configuration, rows of
    other configurations are kept (``row["sim"]`` absent: not simulated, ``note`` says why)."""
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.note:
        row["note"] = a.note
    row["command"] = (f"nice -n 15 python bench/rtl/window7.py --res {a.res} --dim {a.dim} --heads {a.heads} "
                      f"--shift {a.shift} --vectors {a.vectors}" + (f" --ii {a.ii}" if a.ii else "")
                      + (f" --wrapper {a.wrapper}" if a.wrapper != "auto" else "") + f" --sim {a.sim}")
    path = out / "rtl_window7.json"
    rows: list[dict] = []
    if path.exists():
        old = json.loads(path.read_text())
        rows = old.get("rows", []) if isinstance(old, dict) and "rows" in old else [old]
    rows = [r for r in rows if _key(r) != _key(row)] + [row]
    path.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    md = ["# Window-7 attention at the Swin-T stage-1 shape (RTL back end)", "",
          "One WindowAttention, random weights (seed 7), 8-bit formats of `ir.build`, da4ml 0.6 at the 200 MHz "
          "cutoff. Natural II: one traced unit computes a whole window per clock (II = windows per sample). "
          "`--ii 3136`: one token per clock (q/k/v token-serial, the attention core one query row per clock).", "",
          "Wrapper: the product's segment wrapper (`swinfpga/backends/rtl/verilog.py`), simulated as generated by "
          "`convert`, no bench harness. `flat`: one case item per group gathers/scatters its elements (segments "
          "of at most 64 groups, the committed models); `indexed`: runs of the frame at per-group bit offsets "
          "from a small table (segments of more than 64 groups); `--wrapper flat|indexed` forces one form.", "",
          "| map | window | tokens | windows | dim | heads | shift | II | wrapper | da4ml cost (LUT-eq) | stages | "
          "latency (cycles) | Verilog MB | convert s | traced mismatches | sim | sim samples | sim mismatches | "
          "sim latency | sim II | sim build s | sim build peak RSS GB | sim run s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"
          "---:|"]
    for r in rows:
        sim = r.get("sim")
        res = r["resolution"]
        md.append(
            f"| {res[0]}x{res[1]} | {r['window']} | {r['tokens']} | {r['windows']} | {r['dim']} | {r['heads']} | "
            f"{r['shift']} | {r['predicted_ii_cycles']} | {r.get('wrapper', 'flat')} | {r['da4ml_cost']:,.0f} | "
            f"{r['unit_stages']} | "
            f"{r['predicted_latency_cycles']} | {r['verilog_mb']} | {r['convert_seconds']}"
            f"{' (unit from cache)' if r.get('trace_cached') else ''} | "
            f"{sum(r['traced_check']['mismatches'].values())} / {r['traced_check']['samples']} samples | "
            + (f"{sim['simulator']} | {sim['samples']} | {sim['mismatches']} | {sim['latency_cycles']} | "
               f"{sim['ii_cycles'] or '-'} | {sim['build_seconds'] if not sim.get('build_cached') else 'cached'} | "
               f"{sim.get('peak_rss_gb', '-') if not sim.get('build_cached') else '-'} | {sim['run_seconds']} |"
               if sim else "- | - | - | - | - | - | - | - |"))
    md += ["", "Latency: cycles at 200 MHz from the first input to the last output (predicted from the schedule; "
           "`sim latency` measured). Traced check: da4ml's int64 interpreter vs the golden model on every window of "
           "the samples. `sim II`: mean clocks between input transfers while streaming (needs 3+ samples). Peak RSS: "
           "largest single process of the simulator build (verilator_bin or g++), sampled every second.", "",
           "Commands:"]
    md += [f"- `{r.get('command', '')}`" + (f": {r['note']}" if r.get("note") else "") for r in rows]
    (out / "rtl_window7.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
