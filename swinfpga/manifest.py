"""``manifest.json`` of a converted project: what the back ends and testbenches read instead of
retyping parameters.

Project layout written by ``swinfpga convert``::

    DIR/manifest.json   this file
    DIR/model.json      the IR (swinfpga.ir.Model JSON)
    DIR/vectors.npz     x: input codes (B, *input_shape) int64; y: golden output codes
    DIR/hls/            hls4ml project (build_prj.tcl, firmware/, ...)
    DIR/rtl/            Verilog, ROM files, rtl.json
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fixed import Fmt

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class TableInfo:
    name: str
    kind: str
    size: int
    in_type: str
    out_type: str
    sha256: str


@dataclass(frozen=True)
class Manifest:
    model: str
    board: str
    part: str
    clock_mhz: float
    input_shape: tuple[int, ...]
    input_fmt: Fmt
    output_shape: tuple[int, ...]
    output_fmt: Fmt
    n_vectors: int
    vector_source: str
    tables: tuple[TableInfo, ...] = ()
    ir: str = "model.json"
    vectors: str = "vectors.npz"
    hls_dir: str | None = "hls"
    rtl_dir: str | None = "rtl"
    swinfpga_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_fmt"] = self.input_fmt.to_json()
        d["output_fmt"] = self.output_fmt.to_json()
        d["input_type"] = self.input_fmt.ap_type
        d["output_type"] = self.output_fmt.ap_type
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        return cls(
            model=d["model"], board=d["board"], part=d["part"], clock_mhz=float(d["clock_mhz"]),
            input_shape=tuple(d["input_shape"]), input_fmt=Fmt.from_json(d["input_fmt"]),
            output_shape=tuple(d["output_shape"]), output_fmt=Fmt.from_json(d["output_fmt"]),
            n_vectors=int(d["n_vectors"]), vector_source=d["vector_source"],
            tables=tuple(TableInfo(**t) for t in d.get("tables", [])), ir=d.get("ir", "model.json"),
            vectors=d.get("vectors", "vectors.npz"), hls_dir=d.get("hls_dir"), rtl_dir=d.get("rtl_dir"),
            swinfpga_version=d.get("swinfpga_version", ""), extra=dict(d.get("extra", {})),
        )


@dataclass(frozen=True)
class Project:
    """A converted project directory."""

    root: Path
    manifest: Manifest

    @classmethod
    def open(cls, root: str | Path) -> Project:
        root = Path(root)
        p = root / MANIFEST
        if not p.exists():
            raise FileNotFoundError(f"{root} is not a swinfpga project (no {MANIFEST}); run `swinfpga convert` first")
        return cls(root, Manifest.from_json(json.loads(p.read_text())))

    def model(self):
        from .ir import Model

        return Model.load(self.root / self.manifest.ir)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y): input codes and golden output codes, int64."""
        with np.load(self.root / self.manifest.vectors) as z:
            return z["x"].astype(np.int64), z["y"].astype(np.int64)

    @property
    def hls_dir(self) -> Path | None:
        return self.root / self.manifest.hls_dir if self.manifest.hls_dir else None

    @property
    def rtl_dir(self) -> Path | None:
        return self.root / self.manifest.rtl_dir if self.manifest.rtl_dir else None
