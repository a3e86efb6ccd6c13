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
    from .arch import is_arch_file
    from .train import TrainError, train, train_arch

    if is_arch_file(a.model):
        if not a.data:
            raise TrainError(f"training the architecture file {a.model} needs --data DATA.npz "
                             "(x_train, y_train, x_test, y_test)")
        res = train_arch(a.model, a.data, Path(a.out), epochs=a.epochs, seed=a.seed, force=a.force,
                         progress=_console().log)
        print(json.dumps(res.metrics, indent=1))
        return 0
    if a.data:
        raise TrainError(f"--data is for architecture files (.yaml); {a.model!r} trains on sklearn digits")
    res = train(a.model, Path(a.out), epochs=a.epochs, seed=a.seed, force=a.force, progress=_console().log)
    print(json.dumps(res.metrics, indent=1))
    return 0


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
    if a.rtl:
        from .synth.report import make_report
        from .synth.vivado import synth_rtl

        def report(d: Path) -> dict[str, Any]:
            return make_report(d, progress=_console().log).data.get("vivado", {})

        runs = synth_rtl([Path(d) for d in a.dir], scheduler=a.scheduler, workers=a.workers,
                         synth_only=a.synth_only, timeout=a.timeout, report=report, progress=_console().log)
        print(json.dumps({str(r.project): {"host": r.host, "seconds": round(r.seconds, 1), "latency_ns": r.latency_ns,
                                           **r.result.to_json()} for r in runs}, indent=1))
        return 0
    if len(a.dir) > 1 or a.scheduler:
        raise SwinfpgaError("several DIRs and --scheduler are for the Vivado flow of the RTL: add --rtl")
    from .synth.hls import run_synth

    rep = run_synth(Path(a.dir[0]), progress=_console().log)
    print(json.dumps(rep, indent=1))
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .synth.report import make_report

    if a.vivado_reports:
        from .synth.vivado import import_reports

        import_reports(Path(a.dir), Path(a.vivado_reports))

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
    t.add_argument("model", help="swin-digits | swin-digits-ln | swin-free-digits | seq-digits | ARCH.yaml")
    t.add_argument("--data", default=None, help="with ARCH.yaml: .npz with x_train, y_train, x_test, y_test")
    t.add_argument("-o", "--out", required=True)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--force", action="store_true")
    t.set_defaults(fn=cmd_train)

    c = sub.add_parser("convert", help="model -> hls4ml project + RTL + manifest")
    c.add_argument("model", help="reference model name, IR .json, .keras, QKeras .h5, a train output dir, "
                   "or an architecture file ARCH.yaml (with --random)")
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
    s.add_argument("dir", nargs="+", help="project directory (several only with --rtl)")
    s.add_argument("--rtl", action="store_true",
                   help="Vivado out-of-context synthesis + implementation of the RTL (rtl/vivado/run.tcl)")
    s.add_argument("--scheduler", default=None,
                   help="with --rtl: Dask scheduler address for the runs (default: a LocalCluster for several DIRs)")
    s.add_argument("--workers", type=int, default=None, help="with --rtl: LocalCluster worker processes")
    s.add_argument("--synth-only", action="store_true", help="with --rtl: stop after synth_design")
    s.add_argument("--timeout", type=float, default=None, help="with --rtl: seconds per Vivado run")
    s.set_defaults(fn=cmd_synth)

    r = sub.add_parser("report", help="latency, II and resources (Markdown + JSON + PNG)")
    r.add_argument("dir")
    r.add_argument("--vivado-reports", default=None, metavar="PATH",
                   help="folder with the reports of rtl/vivado/run.tcl run elsewhere (copied into the project)")
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
