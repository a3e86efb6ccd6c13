"""``swinfpga`` command line: demo | train | convert | verify | synth | report.  Thin: each
command calls one library function and prints its result."""

from __future__ import annotations

import argparse
import json
import os
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
        try:
            atomic_write_text(Path(path), json.dumps(data, indent=1))
        except OSError as e:
            raise ArgumentError(f"cannot write --json {path}: {e.strerror or e}; the results are printed above; "
                                "choose a writable file path") from e


def cmd_train(a: argparse.Namespace) -> int:
    from .arch import is_arch_file
    from .train import TrainError, train, train_arch

    if is_arch_file(a.model):
        if not a.data:
            raise TrainError(f"training the architecture file {a.model} needs --data DATA.npz "
                             "(x_train, y_train, x_test, y_test)")
        res = train_arch(a.model, a.data, Path(a.out), epochs=a.epochs, seed=a.seed, force=a.force,
                         progress=_console().log, beta=a.beta, granularity=a.granularity, qat_epochs=a.qat_epochs)
        print(json.dumps(res.metrics, indent=1))
        return 0
    if a.data:
        raise TrainError(f"--data is for architecture files (.yaml); {a.model!r} trains on sklearn digits")
    res = train(a.model, Path(a.out), epochs=a.epochs, seed=a.seed, force=a.force, progress=_console().log,
                beta=a.beta, granularity=a.granularity, qat_epochs=a.qat_epochs, init=a.init,
                finetune_epochs=a.finetune_epochs, hgq_qk=a.hgq_qk, act_granularity=a.act_granularity,
                qat_lr=a.qat_lr, hgq_bits_only=a.hgq_bits_only, prune=a.prune,
                teacher=a.teacher, distill_alpha=a.distill_alpha, prune_layers=tuple(a.prune_layer))
    print(json.dumps(res.metrics, indent=1))
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    from .sweep import SweepConfig, SweepPoint, sweep

    grans = a.granularity or ["channel"]
    pts = tuple(SweepPoint(b, g, n, ii, pr) for n in (a.bits or [8]) for b in a.beta for g in grans
                for pr in a.prune for ii in (a.ii or [None]) if b > 0 or g == grans[0])
    cfg = SweepConfig(a.model, pts, epochs=a.epochs, qat_epochs=a.qat_epochs, init=a.init, rtl=not a.no_rtl,
                      board=a.board, seed=a.seed, finetune_epochs=a.finetune_epochs, hgq_qk=a.hgq_qk,
                      act_granularity=a.act_granularity, prune_layers=tuple(a.prune_layer), teacher=a.teacher)
    res = sweep(cfg, Path(a.out), scheduler=a.scheduler, workers=a.workers, progress=_console().log)
    print((Path(a.out) / "sweep.md").read_text())
    return 0 if res["points"] else 1


def cmd_convert(a: argparse.Namespace) -> int:
    from .manifest import MANIFEST
    from .outdir import check_output_dir
    from .project import ConvertOptions, convert, resolve_model

    con = _console()
    opts = ConvertOptions(board=a.board, n_vectors=a.vectors, hls=not a.no_hls, rtl=not a.no_rtl,
                          reuse_factor=a.reuse_factor, hls_backend=a.backend, force=a.force, ii=a.ii,
                          strategy=a.strategy, io_type=a.io_type, hls_layout=a.hls_layout,
                          dsp_offload=a.dsp_offload, dsp_min_digits=a.dsp_min_digits)
    inputs = (a.model,) if Path(a.model).exists() else ()
    check_output_dir(a.out, a.force, (MANIFEST,), "a swinfpga project", inputs)  # before loading the model
    model = resolve_model(a.model, random_ok=a.random)
    res = convert(model, a.out, opts, progress=con.log, inputs=inputs)
    con.log(f"wrote {res.out_dir} ({', '.join(f'{k} {v:.1f}s' for k, v in res.seconds.items())})")
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    from .verify import verify

    rep = verify(Path(a.dir), csim=a.csim, rtl=a.rtl, simulator=a.sim, n=a.n, progress=_console().log)
    print(json.dumps(rep, indent=1))  # printed first: a failing --json write loses nothing
    _write_json(a.json, rep)
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

    rep = make_report(Path(a.dir), progress=_console().log, quick=a.quick)
    print(rep.markdown)
    return 0


def _print_demo(s: dict[str, Any], out: Path) -> None:
    print(s.get("report_markdown", ""))
    v = s["verify"]
    line = {k: {"mismatches": v[k]["mismatches"], "samples": v[k]["samples"]} for k in ("csim", "rtl") if k in v}
    print(json.dumps({"model": s["model"], "training": s.get("training"), "verify": line,
                      "latency_ns": v.get("latency_ns"), "summary": str(out / "summary.json")}, indent=1))


def cmd_demo(a: argparse.Namespace) -> int:
    from .pipeline import run_demo

    res = run_demo(a.model, Path(a.out), board=a.board, force=a.force, csim=not a.no_csim, rtl=not a.no_rtl,
                   simulator=a.sim, n=a.n, progress=_console().log, show=lambda s: _print_demo(s, Path(a.out)),
                   quick_report=not a.yosys)
    v = res.summary["verify"]
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
    t.add_argument("--beta", type=float, default=0.0,
                   help="HGQ: train bit widths under this penalty per EBOP (0: fixed 8-bit formats)")
    t.add_argument("--granularity", default="channel", choices=["channel", "weight"],
                   help="HGQ weight bits per output channel or per weight")
    t.add_argument("--qat-epochs", type=int, default=None, help="quantization-aware (HGQ) epochs")
    t.add_argument("--init", default=None, help="start from this trained output directory (skip float training)")
    t.add_argument("--finetune-epochs", type=int, default=None,
                   help="HGQ: fixed-format epochs after the bits froze (default: a quarter of --qat-epochs)")
    t.add_argument("--hgq-qk", action="store_true", help="HGQ: attention's q and k outputs train their bits too")
    t.add_argument("--act-granularity", default="tensor", choices=["tensor", "channel"],
                   help="HGQ activation bits per tensor or per channel (per-channel formats; channels may prune)")
    t.add_argument("--qat-lr", type=float, default=None,
                   help="QAT / HGQ learning rate (default 2e-4; fixed-format epochs after HGQ use half)")
    t.add_argument("--hgq-bits-only", action="store_true",
                   help="HGQ epochs train the bit widths only (weights fixed until the fixed-format fine-tune)")
    t.add_argument("--prune", type=float, default=0.0, metavar="FRACTION",
                   help="gradual magnitude pruning: this fraction of every linear map's weights ends at 0 "
                        "(ramped in the first training phase, then held)")
    t.add_argument("--prune-layer", type=_prune_override, action="append", default=[], metavar="GLOB=FRACTION",
                   help="override --prune for the linear maps whose names match GLOB (s0b0.attn.q, s1b1.mlp.fc2, "
                        "patch_embed, head, ...; repeatable, the last match wins), e.g. 's0*=0.85'")
    t.add_argument("--teacher", default=None, metavar="DIR",
                   help="knowledge distillation: every phase also learns the float model of this trained directory")
    t.add_argument("--distill-alpha", type=float, default=None,
                   help="with --teacher: weight of the labels against the teacher (default 0.5)")
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
    w.add_argument("--finetune-epochs", type=int, default=None, help="HGQ: fixed-format epochs after the bits froze")
    w.add_argument("--hgq-qk", action="store_true", help="HGQ: attention's q and k outputs train their bits too")
    w.add_argument("--act-granularity", default="tensor", choices=["tensor", "channel"],
                   help="HGQ activation bits per tensor or per channel, for every point")
    w.add_argument("--ii", type=int, nargs="+", default=None,
                   help="RTL initiation intervals: each trained point is traced at each II (no retraining)")
    w.add_argument("--prune", type=float, nargs="+", default=[0.0], metavar="FRACTION",
                   help="pruned fractions: one training per fraction of every linear map's weights at 0 (default 0)")
    w.add_argument("--prune-layer", type=_prune_override, action="append", default=[], metavar="GLOB=FRACTION",
                   help="override the pruned fraction of the maps matching GLOB, for every point (see train)")
    w.add_argument("--teacher", default=None, metavar="DIR",
                   help="knowledge distillation: every point also learns this trained directory's float model")
    w.add_argument("--no-rtl", action="store_true", help="skip the RTL trace (no da4ml cost)")
    w.add_argument("--board", default="vu13p")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (default: local cluster)")
    w.add_argument("--workers", type=int, default=1, help="local cluster worker processes")
    w.set_defaults(fn=cmd_sweep)

    c = sub.add_parser("convert", help="model -> hls4ml project + RTL + manifest")
    c.add_argument("model", help="reference model name, IR .json, .keras, QKeras .h5, a train output dir, "
                   "or an architecture file ARCH.yaml (with --random)")
    c.add_argument("--board", default="vu13p", help="vu13p | vcu118 | zcu102 | u250 | kv260")
    c.add_argument("-o", "--out", required=True)
    c.add_argument("--force", action="store_true", help="replace an existing output directory")
    c.add_argument("--vectors", type=int, default=360, help="number of golden test vectors")
    c.add_argument("--reuse-factor", type=int, default=1)
    c.add_argument("--strategy", default="latency", choices=["latency", "resource"],
                   help="HLS Linear layers: latency (unrolled, hls4ml dense_latency) or resource (multipliers "
                        "shared over --reuse-factor cycles, hls4ml dense_resource)")
    c.add_argument("--io-type", default="io_parallel", choices=["io_parallel", "io_stream"],
                   help="HLS interface between layers: arrays (io_parallel) or token streams (io_stream)")
    c.add_argument("--hls-layout", default="layers", choices=["layers", "flat"], help=argparse.SUPPRESS)
    c.add_argument("--backend", default="Vitis", choices=["Vitis", "Vivado"])
    c.add_argument("--no-hls", action="store_true")
    c.add_argument("--no-rtl", action="store_true")
    c.add_argument("--ii", type=int, default=None,
                   help="RTL initiation interval in clocks per sample (default: the natural one); a larger II "
                        "time-multiplexes the units for less area")
    c.add_argument("--dsp-offload", default="none", choices=["none", "auto"],
                   help="RTL: constant weights with >= --dsp-min-digits CSD digits become DSP48E2 products "
                        "instead of adders (auto: within the board's DSPs)")
    c.add_argument("--dsp-min-digits", type=int, default=None,
                   help="RTL, with --dsp-offload auto: CSD digit threshold (default 2)")
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
    r.add_argument("--quick", action="store_true",
                   help="no Yosys runs: cached Yosys counts where present, else da4ml's cost (labelled)")
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
    d.add_argument("--yosys", action="store_true", help="run Yosys per RTL unit for the report (slow when cold; "
                   "default: a quick report from cached Yosys counts, else da4ml's cost, labelled)")
    d.set_defaults(fn=cmd_demo)
    return p


class ArgumentError(SwinfpgaError, ValueError):
    """A command-line argument is out of range; the message names it and the valid values."""


def _prune_override(text: str) -> tuple[str, float]:
    """``--prune-layer GLOB=FRACTION`` as ``(glob, fraction)`` (argparse type: a bad value exits 2)."""
    glob, sep, frac = text.rpartition("=")
    try:
        f = float(frac)
    except ValueError:
        f = float("nan")
    if not sep or not glob or not 0.0 <= f < 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected GLOB=FRACTION with FRACTION in [0, 1), e.g. 's0*=0.85' "
            "(map names as s0b0.attn.q, s1b1.mlp.fc2, patch_embed, head)")
    return glob, f


def _positive(a: argparse.Namespace, attr: str, flag: str, allow_none: bool = True) -> None:
    v = getattr(a, attr, None)
    if v is None and allow_none:
        return
    if v is None or v < 1:
        raise ArgumentError(f"{flag} must be a positive integer, got {v}")


def validate_args(a: argparse.Namespace) -> None:
    """Check arguments before any work starts (ranges, board file, --json target)."""
    _positive(a, "vectors", "--vectors")
    _positive(a, "n", "-n")
    _positive(a, "reuse_factor", "--reuse-factor")
    _positive(a, "epochs", "--epochs")
    if getattr(a, "board", None) is not None:
        from .boards import load_board

        load_board(a.board)
    js = getattr(a, "json", None)
    if js:
        jp = Path(js)
        if jp.is_dir():
            raise ArgumentError(f"--json {js}: is a directory; give a file path, e.g. --json {jp / 'verify.json'}")
        if not jp.parent.resolve().is_dir():
            raise ArgumentError(f"--json {js}: directory {jp.parent} does not exist; create it or choose another path")
    if getattr(a, "dir", None) is not None and a.cmd in ("verify", "synth", "report"):
        from .manifest import Project

        dirs = a.dir if isinstance(a.dir, list) else [a.dir]  # synth takes several (--rtl)
        proj = None
        for d in dirs:
            proj = Project.open(Path(d))
        if a.cmd == "verify" and proj is not None:
            proj.vectors()  # a corrupt vectors.npz fails now, not after a compile
            for flag, sub, opt in (("csim", proj.hls_dir, "--no-hls"), ("rtl", proj.rtl_dir, "--no-rtl")):
                if getattr(a, flag) and (sub is None or not sub.is_dir()):
                    raise ArgumentError(f"--{flag}: {a.dir} has no {'hls4ml project' if flag == 'csim' else 'RTL'} "
                                        f"(converted with {opt}?); convert again without {opt}, or drop --{flag}")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` / cleanup runs."""


def _install_sigterm() -> Any:
    """SIGTERM unwinds like Ctrl-C, so temporary directories are removed on the way out.  Returns
    the previous handler (restored when :func:`main` returns)."""
    import signal

    def _term(signum, frame):  # noqa: ARG001
        raise Terminated()

    try:
        return signal.signal(signal.SIGTERM, _term)
    except ValueError:  # not the main thread (e.g. called from a worker)
        return None


def _restore_sigterm(prev: Any) -> None:
    import signal

    if prev is not None:
        signal.signal(signal.SIGTERM, prev)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI.  Exit codes: 0 ok, 1 verification mismatches, 2 an error (one message naming
    the file / key / layer / argument and the fix), 130 interrupted (Ctrl-C), 143 SIGTERM.  ``--debug`` (anywhere
    on the command line) also prints the traceback."""
    from rich.markup import escape

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SWINFPGA_DEBUG", "") not in ("", "0")
    argv = [x for x in argv if x != "--debug"]
    parser = build_parser()
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    args = parser.parse_args(argv)
    con = _console()
    prev = _install_sigterm()
    try:
        validate_args(args)
        return int(args.fn(args) or 0)
    except SwinfpgaError as e:
        if debug:
            con.print_exception()
        con.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        con.print("[bold yellow]interrupted[/] (Ctrl-C): no partial output was written; an output directory is "
                  "replaced only when complete, so the previous one is kept", soft_wrap=True)
        return 130
    except Terminated:
        con.print("[bold yellow]terminated[/] (SIGTERM): no partial output was written; an output directory is "
                  "replaced only when complete, so the previous one is kept", soft_wrap=True)
        return 143
    except OSError as e:
        if debug:
            con.print_exception()
        what = f" {e.filename}" if e.filename else ""
        con.print(f"[bold red]error:[/] cannot access{escape(what)}: {escape(str(e.strerror or e))}; check the path, "
                  "permissions and free space (rerun with --debug for the traceback)", highlight=False, soft_wrap=True)
        return 2
    except Exception as e:  # a bug: one line, the traceback only on request
        if debug:
            con.print_exception()
        con.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(_one_line(e))} -- this is a swinfpga "
                  "bug; rerun with --debug for the traceback and report it", highlight=False, soft_wrap=True)
        return 2
    finally:
        _restore_sigterm(prev)


def _one_line(e: BaseException, limit: int = 300) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= limit else s[:limit] + " ..."


if __name__ == "__main__":
    sys.exit(main())
