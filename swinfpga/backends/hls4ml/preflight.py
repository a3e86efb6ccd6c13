"""Synthesizability pre-flight and per-layer estimates of the generated HLS design (no Vitis needed).

Both read the :class:`~.plan.Unit` lists that :func:`~.plan.plan_model` builds together with the C++ it
writes (one loop of the C++ = one unit), never the C++ text.  Per function (layer) and loop:
pipeline / II, unrolled constant and variable products per pipeline iteration, table reads per cycle
and fully partitioned array elements, each checked against a named limit with its source.  The
result is ``hls/hls_check.json`` = ``{"ok": bool, "functions": [...]}``; ``convert`` refuses a failing
design (:class:`PreflightError`, CLI exit 2) naming the layer and the option that fixes it.

Estimates (``hls/hls_estimate.json``) follow the keys of hls4ml's ``parse_vivado_report``
(``CSynthesisReport``: BestLatency, WorstLatency, IntervalMax, LUT, FF, DSP, BRAM_18K, URAM) and are
labelled ``"source": "estimate"`` until a Vitis report (``swinfpga synth``) replaces them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ...boards import Board
from ...errors import SwinfpgaError
from .plan import ArrayUse, LayerPlan, TableUse, Unit


@dataclass(frozen=True)
class Limit:
    """A limit Vitis HLS (or hls4ml's flow around it) enforces: ``key`` <= ``max``, and where it comes from."""

    key: str
    max: int
    what: str
    source: str


UNROLL = Limit(
    "unrolled_multiplies", 4096, "multiplies unrolled into one pipeline iteration (constant + variable)",
    "Vitis HLS XFORM 203-504 (unrolling stops: 'may cause large runtime and excessive memory usage'); hls4ml "
    "users hit it near 4k multiplies per loop nest (fastmachinelearning/hls4ml issue 1013); UG1399 PIPELINE: "
    "a pipelined loop or function unrolls every loop beneath it")
PARTITION = Limit(
    "partitioned_elements", 4096, "elements of one completely partitioned array (one register / ROM each)",
    "hls4ml build_prj.tcl `config_array_partition -maximum_size` (MaximumSize, default 4096); UG1399 "
    "ARRAY_PARTITION complete")
ROM_PORTS = Limit(
    "rom_reads_per_cycle", 1, "reads per clock of a ROM bound as BIND_STORAGE type=rom_1p",
    "UG1399 BIND_STORAGE: rom_1p has one port (rom_2p two); more reads per cycle need a partitioned table")
LIMITS = (UNROLL, PARTITION, ROM_PORTS)


@dataclass(frozen=True)
class Check:
    limit: str
    value: int
    max: int
    ok: bool
    source: str
    fix: str


@dataclass(frozen=True)
class UnitCheck:
    """One loop: ``pipeline`` II (None: not pipelined), iterations, and the checked quantities."""

    label: str
    ii: int | None
    trips: int
    calls: int
    const_mults: int
    var_mults: int
    multipliers: int
    table_reads_per_cycle: dict[str, int]
    partitioned_elements: dict[str, int]
    checks: tuple[Check, ...]
    ok: bool


@dataclass(frozen=True)
class FunctionCheck:
    """One generated function (a layer, or the whole top in the legacy flat layout)."""

    layer: str
    ir_name: str
    function: str
    units: tuple[UnitCheck, ...]
    checks: tuple[Check, ...]
    ok: bool


@dataclass(frozen=True)
class PreflightReport:
    ok: bool
    strategy: str
    reuse_factor: int
    layout: str
    io_type: str
    limits: tuple[Limit, ...]
    functions: tuple[FunctionCheck, ...]

    def failures(self) -> list[tuple[FunctionCheck, str, Check]]:
        out = []
        for f in self.functions:
            out += [(f, "output", c) for c in f.checks if not c.ok]
            for u in f.units:
                out += [(f, u.label, c) for c in u.checks if not c.ok]
        return out

    def to_json(self) -> dict:
        return asdict(self)


class PreflightError(SwinfpgaError):
    """The generated design breaks a Vitis HLS limit; the message names the layer, the limit and the fix."""

    def __init__(self, report: PreflightReport, suggestion: str = "") -> None:
        self.report = report
        self.suggestion = suggestion
        lines = [f"HLS pre-flight failed (strategy {report.strategy}, reuse factor {report.reuse_factor}, "
                 f"{report.io_type}, layout {report.layout}); nothing Vitis could synthesize was written:"]
        for f, where, c in report.failures()[:12]:
            lines.append(f"  layer {f.ir_name} ({f.function}, {where}): {c.limit} = {c.value:,} > {c.max:,} "
                         f"[{c.source.split(';')[0]}]; fix: {c.fix}")
        if len(report.failures()) > 12:
            lines.append(f"  ... and {len(report.failures()) - 12} more")
        if suggestion:
            lines.append(f"Options that pass the pre-flight: {suggestion}")
        super().__init__("\n".join(lines))


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _unroll_fix(u: Unit, strategy: str, rf: int) -> str:
    n = u.const_mults + u.var_mults
    if u.label.endswith("Rows"):
        return ("the attention row (scores + softmax + P.V over one window) is unrolled whatever the reuse factor; "
                "use a smaller window or head_dim")
    if strategy == "latency":
        return f"--strategy resource --reuse-factor {max(2, _ceil(n, UNROLL.max))} (shares the multipliers)"
    return f"--reuse-factor {rf * _ceil(n, UNROLL.max)} or more"


def _check_unit(u: Unit, strategy: str, rf: int, flat: bool) -> UnitCheck:
    ii = u.ii or 1
    checks = []
    n = u.const_mults + u.var_mults
    fix = ("per-layer functions (the default layout; the flat top-level PIPELINE unrolls the whole model)" if flat
           else _unroll_fix(u, strategy, rf))
    checks.append(Check(UNROLL.key, n, UNROLL.max, n <= UNROLL.max, UNROLL.source, fix))
    reads = {}
    for t in u.tables:
        per_cycle = _ceil(t.reads, ii)
        reads[t.name] = per_cycle
        if t.storage == "ram":  # a line / frame buffer in BRAM (true dual port: one write, one read per cycle)
            continue
        if t.storage == "rom":
            checks.append(Check(f"{ROM_PORTS.key}[{t.name}]", per_cycle, ROM_PORTS.max, per_cycle <= ROM_PORTS.max,
                                ROM_PORTS.source, fix if flat else f"--reuse-factor {rf * per_cycle}"))
        else:
            checks.append(Check(f"{PARTITION.key}[{t.name}]", t.entries, PARTITION.max, t.entries <= PARTITION.max,
                                PARTITION.source, "a smaller table (fewer entries in swinfpga.lut)"))
    parts = {}
    for a in u.arrays:
        parts[a.name] = a.banks
        checks.append(Check(f"{PARTITION.key}[{a.name}]", a.banks, PARTITION.max, a.banks <= PARTITION.max,
                            PARTITION.source, "--io-type io_stream" if not flat else "per-layer functions"))
    mults = min(u.mult_limit or n, _ceil(n, ii)) if n else 0
    return UnitCheck(u.label, u.ii, u.trips, u.calls, u.const_mults, u.var_mults, mults, reads, parts, tuple(checks),
                     all(c.ok for c in checks))


def _out_array(p: LayerPlan) -> ArrayUse:
    n = 1
    for s in p.shape:
        n *= int(s)
    return ArrayUse(f"{p.name}_out", n, p.out_fmt.width)


def _io_checks(p: LayerPlan) -> tuple[Check, ...]:
    """hls4ml io_parallel partitions every layer output completely (one register per element)."""
    a = _out_array(p)
    return (Check(f"{PARTITION.key}[{a.name}]", a.banks, PARTITION.max, a.banks <= PARTITION.max, PARTITION.source,
                  "--io-type io_stream (token streams instead of completely partitioned feature maps)"),)


def flat_unit(plans: list[LayerPlan], rf: int) -> Unit:
    """The legacy layout: one PIPELINE on the top function unrolls every loop of every layer."""
    cm = vm = 0
    tables: list[TableUse] = []
    arrays: list[ArrayUse] = []
    for p in plans[1:]:
        for u in p.units:
            k = u.trips * u.calls
            cm += u.const_mults * k
            vm += u.var_mults * k
            tables += [TableUse(f"{p.name}.{t.name}", t.entries, t.width, t.reads * k, t.storage) for t in u.tables]
            arrays += [ArrayUse(f"{p.name}.{a.name}", a.banks * u.calls, a.width) for a in u.arrays]
    return Unit("top PIPELINE", rf, 1, 1, 0, cm, vm, cm + vm, (0, 0), 0, tuple(tables), tuple(arrays))


def preflight(plans: list[LayerPlan], strategy: str, reuse_factor: int, layout: str = "layers",
              board: Board | None = None, io_type: str = "io_parallel") -> PreflightReport:
    """Check every function of the planned design against :data:`LIMITS`."""
    rf = max(1, int(reuse_factor))
    funcs: list[FunctionCheck] = []
    inp = plans[0]
    stream = io_type == "io_stream"

    def io(p: LayerPlan) -> tuple[Check, ...]:
        return () if stream else _io_checks(p)

    funcs.append(FunctionCheck(inp.name, inp.ir_name, "input", (), io(inp), all(c.ok for c in io(inp))))
    if layout == "flat":
        u = _check_unit(flat_unit(plans, rf), strategy, rf, True)
        ios = tuple(c for p in plans[1:] for c in io(p))
        funcs.append(FunctionCheck("myproject", "myproject (whole model)", "myproject", (u,), ios,
                                   u.ok and all(c.ok for c in ios)))
    else:
        for p in plans[1:]:
            us = tuple(_check_unit(u, strategy, rf, False) for u in p.units)
            ios = io(p)
            funcs.append(FunctionCheck(p.name, p.ir_name, f"swin::{p.function}", us, ios,
                                       all(u.ok for u in us) and all(c.ok for c in ios)))
    return PreflightReport(all(f.ok for f in funcs), strategy, rf, layout, io_type, LIMITS, tuple(funcs))


def suggest(model, report: PreflightReport) -> str:
    """Smallest resource reuse factor (and io_stream where feature maps are too big to partition) with which
    ``model`` passes the pre-flight; '' if none up to 1024."""
    from .plan import plan_model

    io = "io_stream" if any(f.checks and not all(c.ok for c in f.checks) for f in report.functions) else \
        report.io_type
    for rf in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        for strategy in ("latency", "resource"):
            if strategy == "latency" and rf > 1:
                continue
            rep = preflight(plan_model(model, rf, strategy, "layers", io), strategy, rf, "layers", None, io)
            if rep.ok:
                return f"--strategy {strategy} --reuse-factor {rf} --io-type {io} (per-layer functions)"
    return ""


# ----- estimates ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """hls4ml-report-shaped figures of one layer (or the top): cycles and resources."""

    BestLatency: int
    WorstLatency: int
    IntervalMin: int
    IntervalMax: int
    LUT: int
    FF: int
    DSP: int
    BRAM_18K: int
    URAM: int


def _unit_latency(u: Unit) -> int:
    return u.calls * (u.trips * (u.ii or 1) + u.depth)


def _unit_resources(u: Unit) -> tuple[int, int, int, int]:
    """(LUT, FF, DSP, BRAM_18K) of one loop: instantiated multipliers (variable -> DSP48E2, constant ->
    LUT shift-add ~ a*b/2), adders (~ 16 bits each), register tables (LUT-ROM: entries*width/64 per read),
    ROMs (BRAM_18K when deeper than 64 words, else LUTRAM), partitioned arrays (FF)."""
    ii = u.ii or 1
    a, b = u.mult_bits
    n = u.const_mults + u.var_mults
    inst = min(u.mult_limit or n, _ceil(n, ii)) if n else 0
    var = _ceil(inst * u.var_mults, n) if n else 0
    const = inst - var
    lut = const * max(1, a * b // 2) + _ceil(u.adds, ii) * 16
    ff = inst * (a + b) + _ceil(u.adds, ii) * 4
    dsp = var if a * b > 36 else 0
    lut += (var - dsp) * a * b
    bram = 0
    for t in u.tables:
        bits = t.entries * t.width
        if t.storage == "registers":
            lut += _ceil(t.entries, 64) * t.width * _ceil(t.reads, ii)
        elif t.entries > 64:
            bram += _ceil(t.width, 36) * _ceil(t.entries, 512) if t.width > 36 else _ceil(bits, 18432)
        else:
            lut += _ceil(bits, 64)
    ff += sum(x.banks * x.width for x in u.arrays)
    return lut, ff, dsp, bram


def estimate(plans: list[LayerPlan], board: Board | None = None, io_type: str = "io_parallel") -> dict:
    """Per-layer estimates (hls4ml report keys) and the DATAFLOW top: latency = sum of the layers,
    interval = the slowest layer (layers overlap across inferences)."""
    layers = {}
    for p in plans[1:]:
        lat = sum(_unit_latency(u) for u in p.units)
        res = [sum(r) for r in zip(*(_unit_resources(u) for u in p.units), strict=True)] if p.units else [0] * 4
        io_ff = 0 if io_type == "io_stream" else _out_array(p).banks * p.out_fmt.width
        layers[p.name] = Estimate(lat, lat, lat, lat, res[0], res[1] + io_ff, res[2], res[3], 0)
    total_lat = sum(e.WorstLatency for e in layers.values())
    ii = max((e.IntervalMax for e in layers.values()), default=0)
    top = Estimate(total_lat, total_lat, ii, ii, *(sum(getattr(e, k) for e in layers.values())
                                                   for k in ("LUT", "FF", "DSP", "BRAM_18K", "URAM")))
    cs = asdict(top)
    if board is not None:
        cs.update(TargetClockPeriod=board.clock_ns, EstimatedClockPeriod=board.clock_ns,
                  AvailableLUT=board.resources.lut, AvailableFF=board.resources.ff,
                  AvailableDSP=board.resources.dsp, AvailableBRAM_18K=2 * board.resources.bram36,
                  AvailableURAM=board.resources.uram)
    return {"source": "estimate", "note": "swinfpga's model of the generated loops; replaced by a Vitis report "
            "(swinfpga synth) where one exists", "CSynthesisReport": cs,
            "Layers": {k: asdict(v) for k, v in layers.items()}}


def write_reports(rep: PreflightReport, est: dict, out_dir: Path) -> None:
    """``hls_check.json`` and ``hls_estimate.json`` in the hls4ml project directory."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "hls_check.json").write_text(json.dumps(rep.to_json(), indent=1))
    (Path(out_dir) / "hls_estimate.json").write_text(json.dumps(est, indent=1))


__all__ = ["LIMITS", "PreflightError", "PreflightReport", "estimate", "flat_unit", "preflight", "suggest",
           "write_reports"]
