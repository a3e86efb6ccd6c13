"""``swinfpga convert``: resolve a model reference to IR, write a project directory atomically.

The project is assembled in a sibling temporary directory and renamed into place at the end, so
an interrupted conversion leaves nothing half-written; an existing directory is replaced only
with ``force=True``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, golden
from .boards import Board, load_board
from .errors import SwinfpgaError
from .ir import Model, atomic_write_text
from .lut import Lut
from .manifest import MANIFEST, Manifest, TableInfo
from .outdir import check_output_dir, make_stage, replace_dir

MODELS_DIR = Path(__file__).resolve().parent / "models"


class ConvertError(SwinfpgaError, RuntimeError):
    """Conversion cannot proceed; the message says why and what to do."""


def reference_model_path(name: str) -> Path:
    return MODELS_DIR / name / "model.json"


def resolve_model(ref: str, random_ok: bool = False) -> Model:
    """Turn a model reference into IR.

    ``ref`` is a reference-model name (``swin-digits``: the trained copy shipped in
    ``swinfpga/models``), an IR ``.json``, a Keras 3 ``.keras`` file, a legacy QKeras ``.h5``, or
    a ``swinfpga train`` output directory.  ``random_ok`` allows a random-weight model for a
    known architecture without a trained copy."""
    from .models import SPECS

    p = Path(ref)
    if ref in SPECS:
        path = reference_model_path(ref)
        if path.exists():
            return Model.load(path)
        if random_ok:
            from .ir.build import random_model

            return random_model(SPECS[ref])
        from .train import TRAINABLE

        if ref in TRAINABLE:
            raise ConvertError(
                f"no trained copy of {ref!r} in {MODELS_DIR}; run `swinfpga train {ref} -o DIR` and convert DIR, "
                "or pass --random for random weights"
            )
        raise ConvertError(f"{ref!r} has no trained weights (it is an architecture only, not trainable on digits); "
                           "pass --random to convert it with random weights")
    if p.is_dir():
        if (p / "model.json").exists():
            return Model.load(p / "model.json")
        raise ConvertError(f"{p} has no model.json (expected a `swinfpga train` output directory)")
    if not p.exists():
        raise ConvertError(f"{ref!r} is neither a reference model ({', '.join(SPECS)}) nor an existing file")
    if p.suffix.lower() in (".yaml", ".yml"):
        from .arch import load_arch

        if not random_ok:
            raise ConvertError(f"{p.name} is an architecture file (no weights): pass --random for random weights, "
                               f"or train it first (`swinfpga train {p} --data DATA.npz -o DIR`) and convert DIR")
        from .ir.build import random_model

        return random_model(load_arch(p))
    if p.suffix == ".json":
        return Model.load(p)
    if p.suffix == ".keras":
        from .frontend.keras import from_keras_file

        return from_keras_file(p)
    if p.suffix == ".h5":
        from .frontend.qkeras_h5 import from_h5

        return from_h5(p)
    raise ConvertError(f"unsupported model file {p.name!r}: use .json (IR), .keras (Keras 3/HGQ2) or .h5 (QKeras)")


def test_vectors(model: Model, n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """Input codes for the manifest: the digits test split for 8x8x1 models, else random codes."""
    if tuple(model.input.shape) == (8, 8, 1):
        from .data import digits_split

        x = digits_split().x_test
        if model.input.fmt.contains(x):
            return x[:n], "sklearn digits test split (stratified 80/20, seed 0)"
    if tuple(model.input.shape) == (8, 1, 8):  # seq-digits: 8 row tokens of 8 pixels
        from .data import digits_seq_split

        x = digits_seq_split().x_test
        if model.input.fmt.contains(x):
            return x[:n], "sklearn digits test split as 8 row tokens (stratified 80/20, seed 0)"
    from .ir.build import random_input

    return random_input(model, n, seed), f"uniform random input codes (seed {seed})"


def model_tables(model: Model) -> list[Lut]:
    """Every table of the model, node by node (each operator module's registered ``tables``)."""
    from .ops import node_tables

    return [t for n in model.nodes for t in node_tables(n)]


@dataclass(frozen=True)
class ConvertOptions:
    board: str = "vu13p"
    n_vectors: int = 360
    hls: bool = True
    rtl: bool = True
    reuse_factor: int = 1
    hls_backend: str = "Vitis"
    force: bool = False
    ii: int | None = None  # RTL initiation interval (clocks per sample); None = natural
    strategy: str = "latency"  # HLS: latency (hls4ml dense_latency) | resource (dense_resource, shared multipliers)
    io_type: str = "io_parallel"  # HLS: io_parallel | io_stream
    hls_layout: str = "layers"  # HLS: layers (one function + pipeline per layer) | flat (legacy; pre-flight rejects)
    dsp_offload: str = "none"  # RTL: none | auto (weights with >= dsp_min_digits CSD digits as DSP48E2 products)
    dsp_min_digits: int | None = None  # RTL, with dsp_offload auto: the CSD digit threshold (default 2)

    def __post_init__(self) -> None:
        for key, v in (("n_vectors (--vectors)", self.n_vectors), ("reuse_factor (--reuse-factor)", self.reuse_factor)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ConvertError(f"{key} must be a positive integer, got {v!r}")
        if self.hls_backend not in ("Vitis", "Vivado"):
            raise ConvertError(f"hls_backend (--backend) must be Vitis or Vivado, got {self.hls_backend!r}")
        from .backends.hls4ml.plan import IO_TYPES, LAYOUTS, STRATEGIES  # pure Python: no hls4ml import

        for key, v, ok in (("strategy (--strategy)", self.strategy, STRATEGIES),
                           ("io_type (--io-type)", self.io_type, IO_TYPES),
                           ("hls_layout (--hls-layout)", self.hls_layout, LAYOUTS)):
            if v not in ok:
                raise ConvertError(f"{key} must be one of {', '.join(ok)}, got {v!r}")
        if self.ii is not None and (isinstance(self.ii, bool) or not isinstance(self.ii, int | np.integer)
                                    or self.ii < 1):
            raise ConvertError(f"ii (--ii) must be a positive integer (clocks per sample), got {self.ii!r}")
        from .backends.rtl.offload import parse_mode

        parse_mode(self.dsp_offload, self.dsp_min_digits)


@dataclass(frozen=True)
class ConvertResult:
    out_dir: Path
    manifest: Manifest
    seconds: dict[str, float]


def convert(model: Model, out_dir: str | Path, opts: ConvertOptions,
            progress: Callable[[str], None] = lambda s: None, inputs: tuple[str | Path, ...] = ()) -> ConvertResult:
    """Write the project for ``model`` to ``out_dir`` (see :mod:`swinfpga.manifest`).

    An existing ``out_dir`` is replaced only with ``opts.force`` and only if it is a swinfpga
    project that is neither the current directory (or an ancestor) nor holds one of ``inputs``
    (the files the model was read from); see :mod:`swinfpga.outdir`."""
    out = check_output_dir(out_dir, opts.force, (MANIFEST,), "a swinfpga project", inputs, ConvertError)
    board: Board = load_board(opts.board)
    stage = make_stage(out)
    times: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        progress("golden model: computing test vectors")
        x, source = test_vectors(model, opts.n_vectors)
        res = golden.run(model, x)
        np.savez_compressed(stage / "vectors.npz", x=x, y=res.output)
        model.save(stage / "model.json")
        info = model.infer()
        times["golden"] = time.perf_counter() - t0
        if opts.hls:
            t0 = time.perf_counter()
            progress("hls4ml project: writing")
            from .backends.hls4ml import write_hls_project

            write_hls_project(model, board, stage / "hls", reuse_factor=opts.reuse_factor, backend=opts.hls_backend,
                              strategy=opts.strategy, layout=opts.hls_layout, io_type=opts.io_type)
            times["hls"] = time.perf_counter() - t0
        if opts.rtl:
            t0 = time.perf_counter()
            progress("RTL: generating Verilog")
            from .backends.rtl import write_rtl_project

            write_rtl_project(model, board, stage / "rtl", ii=opts.ii, dsp_offload=opts.dsp_offload,
                              dsp_min_digits=opts.dsp_min_digits)
            from .synth.vivado import write_vivado_flow

            write_vivado_flow(stage / "rtl", board, model.name)
            times["rtl"] = time.perf_counter() - t0
        tables = tuple(
            TableInfo(t.name, t.kind, t.size, t.in_fmt.ap_type, t.out_fmt.ap_type, t.hash) for t in model_tables(model)
        )
        man = Manifest(
            model=model.name, board=board.name, part=board.part, clock_mhz=board.clock_mhz,
            input_shape=tuple(model.input.shape), input_fmt=model.input.fmt,
            output_shape=tuple(info[model.output].shape), output_fmt=info[model.output].fmt,
            n_vectors=int(x.shape[0]), vector_source=source, tables=tables,
            hls_dir="hls" if opts.hls else None, rtl_dir="rtl" if opts.rtl else None,
            swinfpga_version=__version__, extra={"meta": model.meta, "convert_seconds": times},
        )
        atomic_write_text(stage / MANIFEST, json.dumps(man.to_json(), indent=1))
        replace_dir(stage, out)
        return ConvertResult(out, man, times)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
