"""IR -> RTL project: segments, traced units (cached by content hash), wrappers, top, ``rtl.json``."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...boards import Board
from ...ir import Model, atomic_write_text
from ...ir.graph import _encode
from .contract import RTL_JSON, FramePort, RtlInfo, Schedule, UnitInfo
from .offload import OFF, Offload
from .plan import Segment, balance_segments, gather_groups, scatter_groups
from .timing import UNITS_PER_NS

TOP = "swinfpga_top"
GEN_VERSION = "rtl-5"  # bump when generated Verilog changes (rtl-2: softmax normalised in logic;
# rtl-3: products re-timed as DSP48E2 multipliers, backends/rtl/timing.py; rtl-4: LayerNorm sum of squares
# beside the mean, ops/layer_norm.py; rtl-5: node latencies after the re-timing)


def cache_root() -> Path:
    env = os.environ.get("SWINFPGA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "swinfpga"


def latency_cutoff_for(clock_mhz: float) -> float:
    """da4ml pipelining cutoff (latency units per register stage) for a clock in MHz."""
    return max(1.0, round(1000.0 / clock_mhz * UNITS_PER_NS, 3))


def _da4ml_version() -> str:
    try:
        from importlib.metadata import version

        return version("da4ml")
    except Exception:  # pragma: no cover
        return "?"


# the code that decides what a unit computes and how it is emitted: its text is part of every unit's
# cache key, so an edit there can never serve a stale unit (GEN_VERSION stays for meaning changes)
_GENERATOR_SOURCES = ("fixed.py", "lut.py", "ir/nodes.py", "ops", "backends/rtl/trace.py", "backends/rtl/timing.py",
                      "backends/rtl/verilog.py", "backends/rtl/plan.py", "backends/rtl/roles.py",
                      "backends/rtl/offload.py", "backends/rtl/tree.py")


@functools.cache
def generator_hash() -> str:
    """SHA-256 over the source text of :data:`_GENERATOR_SOURCES` in the installed package."""
    return source_hash(Path(__file__).resolve().parents[2])


def source_hash(root: Path) -> str:
    """SHA-256 (16 hex digits) over the :data:`_GENERATOR_SOURCES` files under package dir ``root``."""
    h = hashlib.sha256()
    for rel in _GENERATOR_SOURCES:
        p = root / rel
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def segment_hash(seg: Segment, cutoff: float, unit_name: str, offload: Offload = OFF) -> str:
    h = hashlib.sha256()
    d = {"v": GEN_VERSION, "gen": generator_hash(), "da4ml": _da4ml_version(), "cut": cutoff, "name": unit_name,
         "src": seg.src, "in_fmt": seg.in_fmt.to_json(), "in_shape": list(seg.in_shape),
         "nodes": [_encode(n) for n in seg.nodes]}
    if offload.on:  # constant products on DSP48E2 (offload.py)
        d["dsp_offload"] = offload.key()
    if seg.steps:  # a part of a balanced segment: what it computes on how many tokens
        d.update({"part": "rtl-part-1", "steps": [list(x) for x in seg.steps], "tokens": int(seg.tokens.shape[1]),
                  "in_values": [list(x) for x in seg.in_values], "out_values": [list(x) for x in seg.out_values],
                  "field_fmts": [[f.name, f.fmt.to_json()] for f in seg.frame_in + seg.frame_out],
                  "mask": None if seg.mask is None else seg.mask.astype(int).tolist(), "n_in": seg.n_in})
    h.update(json.dumps(d, sort_keys=True).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class BuiltSegment:
    """A segment with its unit (traced program + Verilog), read from or written to the cache."""

    seg: Segment
    unit_name: str
    wrapper_name: str
    stages: int
    cost: float
    node_latency: dict[str, float]
    in_kif: tuple[tuple[int, int, int], ...]
    out_kif: tuple[tuple[int, int, int], ...]
    out_const: tuple[int | None, ...]
    files: dict[str, str]
    mems: dict[str, str]
    comb_path: Path
    cached: bool
    dsp_const: int = 0  # constant products (offloaded weights, offload.py) in the unit
    dsp_var: int = 0  # variable x variable products in the unit
    dsp_const_cost: float = 0.0  # da4ml's cost figure of the constant products (LUT-priced; they are DSPs)

    @property
    def unit_latency(self) -> int:
        """Clocks from a group's issue to its result at the unit output (da4ml's ``stages``
        registers; its output register is dropped, the wrapper's frame buffer takes its place)."""
        return self.stages

    def comb(self) -> Any:
        from da4ml.types import CombLogic

        return CombLogic.load(self.comb_path)


def build_segment(seg: Segment, fmts: dict, cutoff: float, unit_name: str, wrapper_name: str,
                  progress: Callable[[str], None] = lambda s: None, offload: Offload = OFF) -> BuiltSegment:
    """Trace + pipeline + emit one segment, or load it from the cache (keyed by content hash);
    ``offload``: which weights become DSP48E2 products (:mod:`.offload`)."""
    from . import offload as off
    from .trace import TracedUnit, trace_segment
    from .verilog import UnitRtl, add_clock_enable, drop_output_register, segment_wrapper, unit_rtl
    from .verilog import mark_dsp_multipliers as mark_dsp

    key = segment_hash(seg, cutoff, unit_name, offload)
    d = cache_root() / "rtl" / key[:24]
    meta_p = d / "meta.json"
    if not meta_p.exists():
        progress(f"RTL: tracing {seg.name} ({', '.join(n.name for n in seg.nodes)}) with da4ml")
        with off.active(offload):
            unit = trace_segment(seg, fmts, cutoff)
        urtl = unit_rtl(unit, unit_name, cutoff)
        if offload.on:
            urtl = UnitRtl(urtl.name, {k: mark_dsp(v) for k, v in urtl.files.items()}, urtl.mems,
                           urtl.stages, urtl.out_reg)
        n_const, n_var, const_cost = off.count_dsp(unit.comb)
        tmp = d.with_name(d.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "src").mkdir(parents=True)
        for k, v in urtl.files.items():
            (tmp / "src" / f"{k}.v").write_text(v)
        for k, v in urtl.mems.items():
            (tmp / "src" / k).write_text(v)
        unit.comb.save(tmp / "comb.json")
        meta = {"stages": urtl.stages, "cost": float(unit.comb.cost), "node_latency": unit.node_latency,
                "in_kif": unit.in_kif, "out_kif": unit.out_kif, "out_const": unit.out_const,
                "files": sorted(urtl.files), "mems": sorted(urtl.mems), "dsp_const": n_const, "dsp_var": n_var,
                "dsp_const_cost": const_cost}
        (tmp / "meta.json").write_text(json.dumps(meta))
        if d.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, d)
        cached = False
    else:
        cached = True
        progress(f"RTL: {seg.name} from cache {d}")
    meta = json.loads(meta_p.read_text())
    files = {k: (d / "src" / f"{k}.v").read_text() for k in meta["files"]}
    files[unit_name] = drop_output_register(add_clock_enable(files[unit_name], unit_name), unit_name)
    mems = {k: (d / "src" / k).read_text() for k in meta["mems"]}
    in_kif = tuple(tuple(k) for k in meta["in_kif"])
    out_kif = tuple(tuple(k) for k in meta["out_kif"])
    stub = TracedUnit(None, in_kif, out_kif, tuple(meta["out_const"]), {})
    files[wrapper_name] = segment_wrapper(seg, stub, UnitRtl(unit_name, {}, {}, int(meta["stages"]), out_reg=False),
                                            wrapper_name)
    return BuiltSegment(
        seg, unit_name, wrapper_name, int(meta["stages"]), float(meta["cost"]), dict(meta["node_latency"]),
        in_kif, out_kif, tuple(meta["out_const"]), files, mems, d / "comb.json", cached,
        int(meta.get("dsp_const", 0)), int(meta.get("dsp_var", 0)), float(meta.get("dsp_const_cost", 0.0)),
    )


def build_model(model: Model, clock_mhz: float, progress: Callable[[str], None] = lambda s: None,
                top: str = TOP, ii: int | None = None, offload: Offload = OFF) -> tuple[list[BuiltSegment], float]:
    """Units of ``model`` (balanced for initiation interval ``ii``, None = natural) built at the
    cutoff for ``clock_mhz``, weights offloaded to DSP48E2 products by ``offload``; returns (units, cutoff)."""
    cutoff = latency_cutoff_for(clock_mhz)
    fmts = {k: v.fmt for k, v in model.infer().items()}
    out = []
    segs, _ = balance_segments(model, ii)
    for i, seg in enumerate(segs):
        out.append(build_segment(seg, fmts, cutoff, f"{top}_s{i}_unit", f"{top}_s{i}", progress, offload))
    return out, cutoff


def dsp_products(built: list[BuiltSegment]) -> tuple[int, int]:
    """(constant, variable x variable) products of the units: DSP48E2 slices before synthesis
    shares identical ones."""
    return sum(b.dsp_const for b in built), sum(b.dsp_var for b in built)


def build_offloaded(model: Model, board: Board, mode: str = "none", min_digits: int | None = None,
                    progress: Callable[[str], None] = lambda s: None, ii: int | None = None,
                    top: str = TOP) -> tuple[list[BuiltSegment], float, Offload]:
    """:func:`build_model` under a ``--dsp-offload`` mode: ``none``; ``auto``: weights with at least
    ``min_digits`` (default 2) CSD digits become DSP48E2 products, the threshold raised while the
    units' products exceed the board's DSPs (none at all when even 6 digits do not fit)."""
    from .offload import parse_mode

    parse_mode(mode, min_digits)
    if mode == "none":
        built, cutoff = build_model(model, board.clock_mhz, progress, top=top, ii=ii)
        return built, cutoff, OFF
    budget = board.resources.dsp
    d = min_digits or 2
    while True:
        pol = Offload(d)
        built, cutoff = build_model(model, board.clock_mhz, progress, top=top, ii=ii, offload=pol)
        n_const, n_var = dsp_products(built)
        progress(f"RTL: DSP offload of weights with >= {d} CSD digits: {n_const} constant + {n_var} variable "
                 f"products, board {board.name} has {budget} DSP48E2")
        if n_const + n_var <= budget:
            return built, cutoff, pol
        if d >= 6:
            progress("RTL: DSP offload does not fit the board; building without it")
            built, cutoff = build_model(model, board.clock_mhz, progress, top=top, ii=ii)
            return built, cutoff, OFF
        d += 1


def check_traced(model: Model, built: list[BuiltSegment], x: np.ndarray) -> dict[str, int]:
    """Mismatching codes per segment between da4ml's int64 interpreter and the golden model,
    each segment fed the golden input frame (0 everywhere = bit-exact)."""
    from ... import golden
    from .trace import TracedUnit, predict_codes

    res = golden.run(model, x)
    bad: dict[str, int] = {}
    frame = None  # the previous part's output frame inside a balanced segment
    for b in built:
        src = res.outputs[b.seg.src] if b.seg.src in res.outputs else frame
        assert src is not None
        xi = gather_groups(b.seg, src)
        bb, g, k = xi.shape
        unit = TracedUnit(b.comb(), b.in_kif, b.out_kif, b.out_const, b.node_latency)
        y = predict_codes(unit, b.seg, xi.reshape(bb * g, k)).reshape(bb, g, -1)
        frame = scatter_groups(b.seg, y)
        if b.seg.dst in res.outputs:  # parts are checked where their chain ends (a node frame)
            bad[b.seg.parent or b.seg.name] = int(np.count_nonzero(frame != res.outputs[b.seg.dst]))
    return bad


def predicted_schedule(built: list[BuiltSegment]) -> dict[str, Any]:
    """Cycle budget from the structure, from the input transfer to the output being valid: per
    segment, its groups (one issued per clock) + its unit latency (the last group's result is
    written into the frame buffer, which the next segment reads from the following clock).  The
    first group is issued in the clock the sample is accepted (the top's input bypass), so the input
    adds no cycle.  The simulator measures the real number; ``rtl.json`` records this up front."""
    segs = []
    total = 0
    for b in built:
        cyc = b.seg.groups + b.unit_latency
        segs.append({"segment": b.seg.name, "cycles": cyc})
        total += cyc
    ii = max(b.seg.groups for b in built)
    return {"latency_cycles": total, "ii_cycles": ii, "segments": segs}


def layer_cycles(built: list[BuiltSegment], cutoff: float) -> dict[str, int]:
    """Pipeline cycles attributed to each IR node: the register stage at which its outputs are
    ready inside its unit, minus the previous node's; plus each segment's group issue cycles."""
    out: dict[str, int] = {}
    for b in built:
        out[f"{b.seg.name}.issue({b.seg.groups} groups)"] = b.seg.groups
        prev = 0
        for lab in b.seg.labels:
            st = math.floor(b.node_latency.get(lab, 0.0) / (cutoff + 1e-9))
            st = min(st, b.stages)
            out[lab] = max(0, st - prev)
            prev = max(prev, st)
        out[f"{b.seg.name}.output_register"] = b.unit_latency - prev
    return out


def register_bits(b: BuiltSegment) -> int:
    """Flip-flops of a segment counted from the generated Verilog: the unit's pipeline registers
    plus the wrapper's read buffer, staging buffer, tag pipeline and counter (an exact count of
    ``reg`` bits, except the staging buffer's slots of the last group: declared but never read, so
    synthesis removes them and they are not counted)."""
    import re

    unit = b.files[b.unit_name]
    bits = sum(int(m) + 1 for m in re.findall(r"reg \[(\d+):0\] stage\d+_inp", unit))
    bits += sum(int(m) + 1 for m in re.findall(r"output reg \[(\d+):0\] model_out", unit))
    from .plan import frame_fmts, frame_offsets

    wout = frame_offsets(b.seg.frame_out)[-1]
    fm = frame_fmts(b.seg.frame_out)
    last = sum(fm[int(e)].width for e in b.seg.out_idx[b.seg.groups - 1])
    gb = max(1, math.ceil(math.log2(max(b.seg.groups, 2))))
    return bits + 2 * wout - last + b.unit_latency * (1 + gb) + gb + 1


def write_rtl_project(model: Model, board: Board, out_dir: Path,
                      progress: Callable[[str], None] = lambda s: None, ii: int | None = None,
                      dsp_offload: str = "none", dsp_min_digits: int | None = None) -> None:
    """Write synthesizable Verilog for the whole ``model`` into ``out_dir`` (flat: ``*.v``, ROM
    ``*.mem`` files, ``rtl.json``).  Units come from the content-hash cache when unchanged; every
    traced unit is checked bit-exact against the golden model with da4ml's int64 interpreter."""
    from ...ir.build import random_input
    from .roms import name_roms
    from .verilog import static_sources, top_module

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    built, cutoff, offload = build_offloaded(model, board, dsp_offload, dsp_min_digits, progress, ii=ii)
    x = random_input(model, 64, seed=1)
    bad = check_traced(model, built, x)
    if any(bad.values()):
        raise RuntimeError(f"traced da4ml program differs from the golden model: {bad}")
    files: dict[str, str] = {}
    mems: dict[str, str] = {}
    for b in built:
        files.update(b.files)
        mems.update(b.mems)
    files, mems, roms = name_roms([(b.unit_name, b.comb(), b.seg.nodes) for b in built], files, mems)
    if sorted(mems) != sorted(r.file for r in roms):  # rtl.json lists the ROM files from rom_tables
        raise RuntimeError(f"ROM files {sorted(mems)} != described ROMs {sorted(r.file for r in roms)}")
    files.update(static_sources(any(b.dsp_const for b in built)))
    files[TOP] = top_module(TOP, [b.seg for b in built], [b.wrapper_name for b in built])
    for k, v in files.items():
        (out_dir / f"{k}.v").write_text(v)
    for k, v in mems.items():
        (out_dir / k).write_text(v)
    s0, sl = built[0].seg, built[-1].seg
    sched = predicted_schedule(built)
    rtl = RtlInfo(
        top=TOP, model=model.name, clock_mhz=board.clock_mhz, latency_cutoff=cutoff, ii_requested=ii,
        in_data=FramePort(tuple(s0.in_shape), s0.in_fmt), out_data=FramePort(tuple(sl.out_shape), sl.out_fmt),
        predicted=Schedule(sched["latency_cycles"], sched["ii_cycles"],
                           tuple((r["segment"], r["cycles"]) for r in sched["segments"])),
        layer_cycles=layer_cycles(built, cutoff),
        segments=tuple(UnitInfo(
            name=b.seg.name, module=b.wrapper_name, unit=b.unit_name, src=b.seg.src, dst=b.seg.dst,
            nodes=b.seg.labels, kind=b.seg.kind, parent=b.seg.parent or b.seg.name,
            tokens_per_group=int(b.seg.tokens.shape[1]), groups=b.seg.groups, ii_cycles=sched["ii_cycles"],
            group_inputs=b.seg.n_in, mask_bits=b.seg.n_mask, group_outputs=b.seg.n_out, unit_stages=b.stages,
            unit_latency=b.unit_latency, da4ml_cost=b.cost, register_bits=register_bits(b),
            node_stage={k: math.floor(v / (cutoff + 1e-9)) for k, v in b.node_latency.items()},
            frame_in={"shape": list(b.seg.in_shape), "type": b.seg.in_fmt.ap_type,
                      "fields": [[f.name, f.size, f.fmt.ap_type] for f in b.seg.frame_in]},
            frame_out={"shape": list(b.seg.out_shape), "type": b.seg.out_fmt.ap_type,
                       "fields": [[f.name, f.size, f.fmt.ap_type] for f in b.seg.frame_out]})
            for b in built),
        files=tuple(sorted(f"{k}.v" for k in files)),
        traced_samples=int(x.shape[0]), traced_mismatches=bad,
        content_hash=hashlib.sha256("".join(files[k] for k in sorted(files)).encode()).hexdigest(),
        rom_tables=tuple(roms), dsp_min_digits=offload.min_digits, dsp_products=dsp_products(built),
    )
    atomic_write_text(out_dir / RTL_JSON, json.dumps(rtl.to_json(), indent=1))
    progress(f"RTL: wrote {len(files)} Verilog files, {len(mems)} ROM files, predicted latency "
             f"{sched['latency_cycles']} cycles, II {sched['ii_cycles']}")
