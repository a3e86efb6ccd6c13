"""``rtl.json``: the typed contract between the RTL writer and its readers (verify, simulation,
report, testbenches).  Frozen dataclasses with a JSON round trip; the JSON layout is what
:meth:`RtlInfo.to_json` writes (readers of the plain dict keep working).

Units of the fields: cycles are clock cycles of the board clock (``clock_mhz``); ``da4ml_cost`` is
da4ml's LUT-equivalent cost figure; ``register_bits`` counts flip-flops in the generated Verilog.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import SwinfpgaError
from ...fixed import Fmt
from .roms import Rom

RTL_JSON = "rtl.json"


class RtlJsonError(SwinfpgaError, ValueError):
    """``rtl.json`` is missing a key or malformed."""


@dataclass(frozen=True)
class FramePort:
    """A top-level data port: ``elements`` codes of ``fmt``, element 0 at the LSB (row-major)."""

    shape: tuple[int, ...]
    fmt: Fmt

    @property
    def elements(self) -> int:
        n = 1
        for s in self.shape:
            n *= int(s)
        return n

    @property
    def width(self) -> int:
        return self.elements * self.fmt.width

    def to_json(self) -> dict[str, Any]:
        return {"width": self.width, "shape": list(self.shape), "elements": self.elements,
                "elem_width": self.fmt.width, "fmt": self.fmt.to_json(), "type": self.fmt.ap_type,
                "order": "row-major, element 0 at LSB"}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FramePort:
        return cls(tuple(int(x) for x in d["shape"]), Fmt.from_json(d["fmt"]))


@dataclass(frozen=True)
class UnitInfo:
    """One traced unit in its streaming wrapper (a whole segment, or a part of a balanced one).

    ``busy_cycles``: clocks per sample the unit computes (groups issued), out of ``ii_cycles``;
    ``frame_in``/``frame_out``: ``{"shape", "type", "fields": [[name, elements, ap_type], ...]}``."""

    name: str
    module: str
    unit: str
    src: str
    dst: str
    nodes: tuple[str, ...]
    kind: str
    parent: str
    tokens_per_group: int
    groups: int
    ii_cycles: int
    group_inputs: int
    mask_bits: int
    group_outputs: int
    unit_stages: int
    unit_latency: int
    da4ml_cost: float
    register_bits: int
    node_stage: dict[str, int]
    frame_in: dict[str, Any]
    frame_out: dict[str, Any]

    @property
    def busy_cycles(self) -> int:
        return self.groups

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "unit": self.unit, "src": self.src, "dst": self.dst,
                "nodes": list(self.nodes), "kind": self.kind, "parent": self.parent,
                "tokens_per_group": self.tokens_per_group, "busy_cycles": self.busy_cycles,
                "ii_cycles": self.ii_cycles, "groups": self.groups, "group_inputs": self.group_inputs,
                "mask_bits": self.mask_bits, "group_outputs": self.group_outputs, "unit_stages": self.unit_stages,
                "unit_latency": self.unit_latency, "da4ml_cost": self.da4ml_cost,
                "register_bits": self.register_bits, "node_stage": dict(self.node_stage),
                "frame_in": self.frame_in, "frame_out": self.frame_out}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> UnitInfo:
        return cls(d["name"], d["module"], d["unit"], d["src"], d["dst"], tuple(d["nodes"]), d.get("kind", "group"),
                   d.get("parent", d["name"]), int(d.get("tokens_per_group", 0)), int(d["groups"]),
                   int(d.get("ii_cycles", 0)), int(d["group_inputs"]), int(d["mask_bits"]), int(d["group_outputs"]),
                   int(d["unit_stages"]), int(d["unit_latency"]), float(d["da4ml_cost"]), int(d["register_bits"]),
                   {k: int(v) for k, v in d["node_stage"].items()}, dict(d["frame_in"]), dict(d["frame_out"]))


@dataclass(frozen=True)
class Schedule:
    """Cycle budget predicted from the structure: 1 input register + per unit (groups + latency)."""

    latency_cycles: int
    ii_cycles: int
    unit_cycles: tuple[tuple[str, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {"latency_cycles": self.latency_cycles, "ii_cycles": self.ii_cycles,
                "segments": [{"segment": k, "cycles": v} for k, v in self.unit_cycles]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Schedule:
        return cls(int(d["latency_cycles"]), int(d["ii_cycles"]),
                   tuple((s["segment"], int(s["cycles"])) for s in d["segments"]))


@dataclass(frozen=True)
class RtlInfo:
    """Everything ``rtl.json`` records about an RTL project (see module docstring)."""

    top: str
    model: str
    clock_mhz: float
    latency_cutoff: float
    ii_requested: int | None
    in_data: FramePort
    out_data: FramePort
    predicted: Schedule
    layer_cycles: dict[str, int]
    segments: tuple[UnitInfo, ...]
    files: tuple[str, ...]
    traced_samples: int
    traced_mismatches: dict[str, int]
    content_hash: str
    interface: str = "axi-stream style valid/ready; one whole sample per beat"
    rom_tables: tuple[Rom, ...] = ()  # every ROM file and the IR tables it holds (see roms.py)
    legacy_roms: tuple[str, ...] = ()  # ROM files of an rtl.json without ``rom_tables`` (read only)
    dsp_min_digits: int = 0  # weights with >= this many CSD digits are DSP48E2 products (0: none; offload.py)
    dsp_products: tuple[int, int] = (0, 0)  # (constant, variable x variable) products in the units

    @property
    def roms(self) -> tuple[str, ...]:
        """The ROM (``.mem``) files, sorted: derived from ``rom_tables`` (the one source of truth;
        written to ``rtl.json`` as ``roms`` for plain-dict readers such as the Vivado flow)."""
        if self.rom_tables:
            return tuple(sorted(r.file for r in self.rom_tables))
        return tuple(self.legacy_roms)

    @property
    def da4ml_cost_total(self) -> float:
        return float(sum(s.da4ml_cost for s in self.segments))

    def to_json(self) -> dict[str, Any]:
        return {
            "top": self.top, "model": self.model, "clock_mhz": self.clock_mhz, "latency_cutoff": self.latency_cutoff,
            "ii_requested": self.ii_requested, "interface": self.interface,
            "ports": {"clk": {"width": 1}, "rst": {"width": 1, "active": "high", "sync": True},
                      "in_valid": {"width": 1}, "in_ready": {"width": 1}, "out_valid": {"width": 1},
                      "out_ready": {"width": 1}, "in_data": self.in_data.to_json(),
                      "out_data": self.out_data.to_json()},
            "predicted": self.predicted.to_json(),
            "units": [{"unit": s.name, "kind": s.kind, "busy_cycles": s.busy_cycles, "ii_cycles": s.ii_cycles,
                       "utilization": round(s.busy_cycles / max(1, s.ii_cycles), 4), "da4ml_cost": s.da4ml_cost}
                      for s in self.segments],
            "da4ml_cost_total": self.da4ml_cost_total,
            "layer_cycles": dict(self.layer_cycles),
            "segments": [s.to_json() for s in self.segments],
            "files": list(self.files), "roms": list(self.roms),
            "rom_tables": [r.to_json() for r in self.rom_tables],
            "traced_check": {"samples": self.traced_samples, "mismatches": dict(self.traced_mismatches)},
            "content_hash": self.content_hash,
            "dsp_offload": {"min_digits": self.dsp_min_digits, "const_products": self.dsp_products[0],
                            "var_products": self.dsp_products[1]},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = RTL_JSON) -> RtlInfo:
        try:
            p = d["ports"]
            rom_tables = tuple(Rom.from_json(r) for r in d.get("rom_tables", ()))
            files = tuple(sorted(r.file for r in rom_tables))
            if rom_tables and "roms" in d and tuple(sorted(d["roms"])) != files:
                raise RtlJsonError(f"{where}: 'roms' {sorted(d['roms'])} differs from the files of 'rom_tables' "
                                   f"{list(files)} (edited by hand?); re-run `swinfpga convert`")
            return cls(
                top=d["top"], model=d["model"], clock_mhz=float(d["clock_mhz"]),
                latency_cutoff=float(d["latency_cutoff"]), ii_requested=d.get("ii_requested"),
                in_data=FramePort.from_json(p["in_data"]), out_data=FramePort.from_json(p["out_data"]),
                predicted=Schedule.from_json(d["predicted"]),
                layer_cycles={k: int(v) for k, v in d["layer_cycles"].items()},
                segments=tuple(UnitInfo.from_json(s) for s in d["segments"]),
                files=tuple(d["files"]),
                traced_samples=int(d["traced_check"]["samples"]),
                traced_mismatches={k: int(v) for k, v in d["traced_check"]["mismatches"].items()},
                content_hash=d["content_hash"], interface=d.get("interface", cls.interface),
                rom_tables=rom_tables, legacy_roms=() if rom_tables else tuple(d.get("roms", ())),
                dsp_min_digits=int(d.get("dsp_offload", {}).get("min_digits", 0)),
                dsp_products=(int(d.get("dsp_offload", {}).get("const_products", 0)),
                              int(d.get("dsp_offload", {}).get("var_products", 0))),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise RtlJsonError(f"{where}: malformed or from an older swinfpga ({type(e).__name__}: {e}); "
                               "re-run `swinfpga convert`") from e

    @classmethod
    def load(cls, path: str | Path) -> RtlInfo:
        path = Path(path)
        if path.is_dir():
            path = path / RTL_JSON
        if not path.exists():
            raise RtlJsonError(f"{path} does not exist; convert without --no-rtl")
        return cls.from_json(json.loads(path.read_text()), str(path))
