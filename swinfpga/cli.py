"""``swinfpga`` command line: demo | train | convert | verify | synth | report.  Thin: each
command calls one library function and prints its result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import SwinfpgaError
from .ir import atomic_write_text


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        atomic_write_text(Path(path), json.dumps(data, indent=1))


def cmd_train(a: argparse.Namespace) -> int:
    from .train import train

    res = train(a.model, Path(a.out), epochs=a.epochs, seed=a.seed, force=a.force, progress=_console().log,
                beta=a.beta, granularity=a.granularity, qat_epochs=a.qat_epochs, init=a.init)
    print(json.dumps(res.metrics, indent=1))
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    from .sweep import SweepConfig, SweepPoint, sweep

    grans = a.granularity or ["channel"]
    pts = tuple(SweepPoint(b, g, n) for n in (a.bits or [8]) for b in a.beta for g in grans if b > 0 or g == grans[0])
    cfg = SweepConfig(a.model, pts, epochs=a.epochs, qat_epochs=a.qat_epochs, init=a.init, rtl=not a.no_rtl,
                      board=a.board, seed=a.seed)
    res = sweep(cfg, Path(a.out), scheduler=a.scheduler, workers=a.workers, progress=_console().log)
    print((Path(a.out) / "sweep.md").read_text())
    return 0 if res["points"] else 1


def cmd_convert(a: argparse.Namespace) -> int:
    from .project import ConvertOptions, convert, resolve_model

    con = _console()
    model = resolve_model(a.model, random_ok=a.random)
    opts = ConvertOptions(board=a.board, n_vectors=a.vectors, hls=not a.no_hls, rtl=not a.no_rtl,
                          reuse_factor=a.reuse_factor, hls_backend=a.backend, force=a.force)
    res = convert(model, a.out, opts, progress=con.log)
    con.log(f"wrote {res.out_dir} ({', '.join(f'{k} {v:.1f}s' for k, v in res.seconds.items())})")
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    from .verify import verify

    rep = verify(Path(a.dir), csim=a.csim, rtl=a.rtl, simulator=a.sim, n=a.n, progress=_console().log)
    _write_json(a.json, rep)
    print(json.dumps(rep, indent=1))
    bad = sum(int(rep[k]["mismatches"]) for k in ("csim", "rtl") if k in rep)
    return 1 if bad else 0


def cmd_synth(a: argparse.Namespace) -> int:
    from .synth.hls import run_synth

    rep = run_synth(Path(a.dir), progress=_console().log)
    print(json.dumps(rep, indent=1))
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .synth.report import make_report

    rep = make_report(Path(a.dir), progress=_console().log)
    print(rep.markdown)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from .pipeline import run_demo

    res = run_demo(a.model, Path(a.out), board=a.board, force=a.force, csim=not a.no_csim, rtl=not a.no_rtl,
                   simulator=a.sim, n=a.n, progress=_console().log)
    s = res.summary
    print(s.get("report_markdown", ""))
    v = s["verify"]
    line = {k: {"mismatches": v[k]["mismatches"], "samples": v[k]["samples"]} for k in ("csim", "rtl") if k in v}
    print(json.dumps({"model": s["model"], "training": s.get("training"), "verify": line,
                      "latency_ns": v.get("latency_ns"), "summary": str(res.out_dir / "summary.json")}, indent=1))
    bad = sum(int(v[k]["mismatches"]) for k in ("csim", "rtl") if k in v)
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swinfpga", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a reference model on sklearn digits")
    t.add_argument("model", help="swin-digits | swin-digits-ln | swin-free-digits")
    t.add_argument("-o", "--out", required=True)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--force", action="store_true")
    t.add_argument("--beta", type=float, default=0.0,
                   help="HGQ: train bit widths under this penalty per EBOP (0: fixed 8-bit formats)")
    t.add_argument("--granularity", default="channel", choices=["channel", "weight"],
                   help="HGQ weight bits per output channel or per weight")
    t.add_argument("--qat-epochs", type=int, default=None, help="quantization-aware (HGQ) epochs")
    t.add_argument("--init", default=None, help="start from this trained output directory (skip float training)")
    t.set_defaults(fn=cmd_train)

    w = sub.add_parser("sweep", help="design-space sweep over HGQ beta / granularity on Dask (resumes)")
    w.add_argument("model", help="swin-digits | swin-digits-ln | swin-free-digits")
    w.add_argument("-o", "--out", required=True)
    w.add_argument("--beta", type=float, action="append", required=True, help="repeat: one point per beta")
    w.add_argument("--granularity", action="append", choices=["channel", "weight"], default=None)
    w.add_argument("--bits", type=int, action="append", default=None,
                   help="repeat: calibrated weight/activation widths per point (default 8)")
    w.add_argument("--epochs", type=int, default=None)
    w.add_argument("--qat-epochs", type=int, default=None)
    w.add_argument("--init", default=None, help="start every point from this trained output directory")
    w.add_argument("--no-rtl", action="store_true", help="skip the RTL trace (no da4ml cost)")
    w.add_argument("--board", default="vu13p")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (default: local cluster)")
    w.add_argument("--workers", type=int, default=1, help="local cluster worker processes")
    w.set_defaults(fn=cmd_sweep)

    c = sub.add_parser("convert", help="model -> hls4ml project + RTL + manifest")
    c.add_argument("model", help="reference model name, IR .json, .keras, QKeras .h5, or a train output dir")
    c.add_argument("--board", default="vu13p", help="vu13p | vcu118 | zcu102 | u250 | kv260")
    c.add_argument("-o", "--out", required=True)
    c.add_argument("--force", action="store_true", help="replace an existing output directory")
    c.add_argument("--vectors", type=int, default=360, help="number of golden test vectors")
    c.add_argument("--reuse-factor", type=int, default=1)
    c.add_argument("--backend", default="Vitis", choices=["Vitis", "Vivado"])
    c.add_argument("--no-hls", action="store_true")
    c.add_argument("--no-rtl", action="store_true")
    c.add_argument("--random", action="store_true", help="random weights if no trained copy exists")
    c.set_defaults(fn=cmd_convert)

    v = sub.add_parser("verify", help="C simulation and/or RTL simulation vs the golden model")
    v.add_argument("dir")
    v.add_argument("--csim", action="store_true")
    v.add_argument("--rtl", action="store_true")
    v.add_argument("--sim", default=None, choices=["icarus", "verilator"])
    v.add_argument("-n", type=int, default=None, help="number of test vectors (default: all)")
    v.add_argument("--json", default=None)
    v.set_defaults(fn=cmd_verify)

    s = sub.add_parser("synth", help="run Vitis/Vivado HLS synthesis and read its reports")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_synth)

    r = sub.add_parser("report", help="latency, II and resources (Markdown + JSON + PNG)")
    r.add_argument("dir")
    r.set_defaults(fn=cmd_report)
    d = sub.add_parser("demo", help="the main job: load/train -> convert -> verify -> report")
    d.add_argument("model", nargs="?", default="swin-digits")
    d.add_argument("-o", "--out", default="out/demo")
    d.add_argument("--board", default="vu13p")
    d.add_argument("--force", action="store_true")
    d.add_argument("--sim", default=None, choices=["icarus", "verilator"])
    d.add_argument("-n", type=int, default=None, help="test vectors to simulate (default: all)")
    d.add_argument("--no-csim", action="store_true")
    d.add_argument("--no-rtl", action="store_true")
    d.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except (SwinfpgaError, KeyError, ValueError, FileNotFoundError, RuntimeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        _console().print(f"[bold red]error:[/] {msg}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
