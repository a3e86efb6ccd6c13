"""The main job on a reference model: load (or train) -> convert -> verify (golden, C-sim, RTL)
-> report.  ``swinfpga demo`` runs it; every step prints progress and the summary is JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ir import atomic_write_text

DEMO_MARKERS = ("summary.json", "project/manifest.json")  # what marks a demo output directory (for --force)


@dataclass
class DemoResult:
    out_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)


def run_demo(name: str, out_dir: Path, board: str = "vu13p", force: bool = False, csim: bool = True,
             rtl: bool = True, simulator: str | None = None, n: int | None = None,
             progress: Callable[[str], None] = print,
             show: Callable[[dict[str, Any]], None] | None = None, quick_report: bool = False) -> DemoResult:
    """``show`` (if given) receives the summary before ``summary.json`` is written, so a failing
    write never loses the results.  ``quick_report``: the report runs no Yosys (see
    :func:`swinfpga.synth.report.make_report`)."""
    from .outdir import check_output_dir
    from .project import ConvertOptions, convert, reference_model_path, resolve_model
    from .verify import verify

    inputs = [name] if Path(name).exists() else []
    out_dir = check_output_dir(out_dir, force, DEMO_MARKERS, "a `swinfpga demo` output directory", inputs)
    summary: dict[str, Any] = {"model": name, "board": board}
    t0 = time.perf_counter()
    if Path(name).exists() or reference_model_path(name).exists():
        progress(f"loading {name}")
        model = resolve_model(name)
        mpath = reference_model_path(name).parent / "metrics.json"
        if mpath.exists():
            summary["training"] = json.loads(mpath.read_text())
    else:
        from .train import train

        progress(f"no trained copy of {name}: training")
        res = train(name, out_dir.parent / f"{out_dir.name}-train", force=True, progress=progress)
        summary["training"] = res.metrics
        model = resolve_model(str(res.out_dir))
    proj = out_dir / "project"
    progress("converting")
    conv = convert(model, proj, ConvertOptions(board=board, hls=csim, rtl=rtl, force=True), progress=progress,
                   inputs=tuple(inputs))
    summary["convert_seconds"] = conv.seconds
    progress("verifying")
    summary["verify"] = verify(proj, csim=csim, rtl=rtl, simulator=simulator, n=n, progress=progress)
    if rtl:
        from .synth.report import make_report

        progress("report")
        rep = make_report(proj, progress=progress, quick=quick_report)
        summary["report"] = str(proj / "report.md")
        summary["report_markdown"] = rep.markdown
    summary["seconds"] = time.perf_counter() - t0
    if show is not None:
        show(summary)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1, default=str))
    return DemoResult(out_dir, summary)
