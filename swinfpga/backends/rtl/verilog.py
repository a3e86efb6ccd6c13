"""Verilog emission: da4ml units, the per-segment streaming wrapper, and the top module.

Frame port layout: a frame is a concatenation of fields (:class:`~.plan.Field`; node output
frames, the top-level ports included, have one field); element ``e`` of the flat frame occupies
the bits after element ``e - 1`` as a two's complement (or unsigned) code of its field's format,
so in a one-field frame bits ``[e*W + W-1 : e*W]`` (``W`` = format width).  Balanced segments pass
frames with several fields (e.g. the residual, q, k and v of every token) between their units.

Segment wrapper (one per unit): a group counter walks the ``G`` groups of the input frame, one per
clock, gathering each group's elements (plus its constant shift-mask bits and bias rows) into the
unit; a valid/group tag shift register runs alongside the unit's pipeline; results (the unit's last
stage, unregistered) are scattered into one of two output frame buffers (ping-pong, filled in
order). The wrapper exports both buffers and its read pointer (``out_buf0/1``, ``out_sel``): the
next segment gathers its group from both (G:1 each) and then picks the read buffer (2:1), so the
2:1 read multiplexer sits on the gathered group's bits instead of on every frame bit
(``out_frame``, the muxed frame, feeds only the top's output). When a result reaches the end of the
pipeline while its buffer is still waiting for the consumer, the whole unit stalls (clock enable
``ce`` on every pipeline register), so back-pressure never drops data and the initiation interval
is ``G`` clocks when the consumer keeps up. The input frame is popped (``in_ready``) when its last
group is issued; ``out_valid`` rises when every group of a buffer has arrived. Handshakes are
AXI-stream style (data stable while valid; transfer when valid and ready).

Two forms of the gather/scatter (same ports, same timing, same registers):

* *flat* (segments with at most :data:`INDEXED_MIN_GROUPS` groups): one ``case`` item per group
  selects the group's elements from the input frame and writes its results into the frame buffer
  at constant bit positions;
* *indexed* (more groups, e.g. a 56 x 56 map folded to one token per clock): every group reads
  the same pattern of *runs* (consecutive frame elements, :func:`frame_runs`) starting at
  per-group bit offsets, so the gather is a few variable part-selects ``in_frame[off +: W]`` fed by
  a small offset table (one ``case`` on the group counter per segment, offsets only), and the
  scatter writes each output run at its table offset.  Per-group constants (shift-mask bits, bias
  rows) come from one table whose identical rows share a ``case`` item.  The Verilog grows with
  ``G`` x runs (a few numbers per group) instead of ``G`` x elements, so Verilator builds a
  56 x 56 map without the G-way element multiplexers of the flat form.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...fixed import Fmt
from .plan import Segment, frame_fmts, frame_offsets
from .trace import TracedUnit

TIMESCALE = "`timescale 1 ns / 1 ps"
# segments with more groups than this get the indexed gather/scatter (see module docstring); the
# committed models (at most 64 groups per segment) keep the flat form
INDEXED_MIN_GROUPS = 64
# only the top ports are visible to cocotb under Verilator (no --public-flat-rw on the whole netlist)
PUB = "/*verilator public_flat_rw*/"


@dataclass(frozen=True)
class UnitRtl:
    """Generated sources of one traced unit: ``files`` (module name -> Verilog), ``mems`` (ROM
    file name -> contents), ``stages`` (da4ml pipeline stages, each a combinational block behind a
    register: da4ml registers the unit input as ``stage0_inp``).  ``out_reg``: da4ml's output
    register ``model_out`` is present (the wrapper drops it with :func:`drop_output_register`: its
    frame buffer registers the last stage).  ``latency``: clocks from issue to the result at the
    unit's output."""

    name: str
    files: dict[str, str]
    mems: dict[str, str]
    stages: int
    out_reg: bool = True

    @property
    def latency(self) -> int:
        return self.stages + int(self.out_reg)


def unit_rtl(unit: TracedUnit, name: str, latency_cutoff: float) -> UnitRtl:
    """Pipeline ``unit`` at ``latency_cutoff`` (da4ml latency units per stage) and emit Verilog."""
    from da4ml.codegen.rtl.verilog import pipeline_logic_gen
    from da4ml.codegen.rtl.verilog.comb import table_mem_gen

    pipe = pipeline(unit.comb, latency_cutoff)
    files = pipeline_logic_gen(pipe, name, print_latency=False)
    mems: dict[str, str] = {}
    for sol in pipe.solutions:
        mems.update(table_mem_gen(sol))
    return UnitRtl(name, files, mems, len(pipe.solutions))


def pipeline(comb: Any, latency_cutoff: float) -> Any:
    """da4ml's ``to_pipeline`` of ``comb``.  Its retiming re-traces the stages with da4ml's own
    arithmetic, which expands a product with a constant operand (offloaded weights, offload.py) back
    into shift-and-add; when that happens the split without retiming is used (the stages then
    follow the latencies of :mod:`.timing` as traced)."""
    from da4ml.trace import to_pipeline

    from .offload import count_dsp

    pipe = to_pipeline(comb, latency_cutoff, verbose=False)
    n_const = count_dsp(comb)[0]
    if n_const and sum(count_dsp(s)[0] for s in pipe.solutions) < n_const:
        pipe = to_pipeline(comb, latency_cutoff, retiming=False, verbose=False)
    return pipe


def add_clock_enable(text: str, name: str) -> str:
    """Give da4ml's pipeline module ``name`` a clock enable ``ce`` (all its registers hold while
    ``ce`` is low), so the wrapper can stall it on back-pressure."""
    head = f"module {name} (\n    input clk,\n"
    if head not in text or "always @(posedge clk) begin" not in text:
        raise ValueError(f"unexpected da4ml pipeline module layout in {name}")
    text = text.replace(head, head + "    input ce,\n", 1)
    return text.replace("always @(posedge clk) begin", "always @(posedge clk) if (ce) begin")


def drop_output_register(text: str, name: str) -> str:
    """Drive ``model_out`` of da4ml's pipeline module ``name`` from its last stage's logic
    instead of a register.  The wrapper writes that value straight into its output frame buffer
    (a register with no logic in front of it), so ``model_out`` -> frame buffer was a pure
    one-clock delay."""
    m = re.search(r"output reg (\[\d+:0\]) model_out", text)
    a = re.search(r"^\s*model_out <= (stage\d+_out);\n", text, flags=re.M)
    if m is None or a is None:
        raise ValueError(f"unexpected da4ml output register layout in {name}")
    text = text.replace(a.group(0), "", 1).replace(m.group(0), f"output {m.group(1)} model_out", 1)
    return text.replace("\nendmodule", f"\n    assign model_out = {a.group(1)};\nendmodule", 1)


_WIRE = re.compile(r"(wire \[\d+:\d+\] v\d+; )?assign (v\d+|model_out)\[\d+:\d+\] = (model_inp|v\d+)\[\d+:\d+\];")


def stage_is_wiring(text: str) -> bool:
    """True when a da4ml stage module only renames bits (no adder, multiplier, lookup, mux).
    da4ml leaves such stages in front of products it models as longer than one clock (their
    registers are for retiming into the product); reported, never removed."""
    body = text[text.index(");") + 2:] if ");" in text else text
    for line in body.splitlines():
        t = line.strip()
        if not t or t.startswith("//") or t == "endmodule" or _WIRE.fullmatch(t):
            continue
        return False
    return True


def static_sources(dsp: bool = False) -> dict[str, str]:
    """da4ml's primitive modules (adders, multiplier, mux, lookup_table...); ``dsp``: also
    :data:`DSP_MULTIPLIER` (units with offloaded constant products, :func:`mark_dsp_multipliers`)."""
    from pathlib import Path

    import da4ml.codegen.rtl as r

    out = {}
    for p in sorted((Path(r.__file__).parent / "verilog" / "source").glob("*.v")):
        out[p.stem] = re.sub(r"\(\*\s*rom_style[^*]*\*\)", "", p.read_text())
    if dsp:
        text = out["multiplier"]
        if "module multiplier #(" not in text:
            raise ValueError("unexpected da4ml multiplier module layout")
        head = f'(* use_dsp = "yes" *)\nmodule {DSP_MULTIPLIER} #('
        out[DSP_MULTIPLIER] = text.replace("module multiplier #(", head, 1)
    return out


# da4ml's multiplier with Vivado's ``use_dsp`` attribute: Vivado may build a product with a small
# constant operand from LUTs; offloaded weights (offload.py) exist to use DSP48E2 slices
DSP_MULTIPLIER = "multiplier_dsp"


def mark_dsp_multipliers(text: str) -> str:
    """Instantiate :data:`DSP_MULTIPLIER` instead of da4ml's ``multiplier`` in a unit's Verilog."""
    return re.sub(r"\bmultiplier #\(", f"{DSP_MULTIPLIER} #(", text)


def _bits(n: int) -> int:
    return max(1, math.ceil(math.log2(max(n, 2))))


def _in_elem(frame: str, base: int, fmt: Fmt, kif: tuple[int, int, int]) -> str:
    """Unit input element (da4ml packed kif) from the frame element at bit ``base`` (same LSB,
    <= width)."""
    k, i, f = kif
    wd = k + i + f
    if f != fmt.frac or wd > fmt.width:
        raise ValueError(f"unit input kif {kif} does not match the frame format {fmt}")
    return f"{frame}[{base + wd - 1}:{base}]"


def _out_elem(uout: str, off: int, kif: tuple[int, int, int], fmt: Fmt, const: int | None) -> str:
    """Expression (fmt.width bits) of one frame code from the unit's packed output element."""
    k, i, f = kif
    wd = k + i + f
    w = fmt.width
    if wd == 0:
        return f"{w}'d{(const or 0) & ((1 << w) - 1)}"
    sh = fmt.frac - f
    if sh < 0 or wd + sh > w:
        raise ValueError(f"unit output kif {kif} does not fit its format {fmt}")
    src = f"{uout}[{off + wd - 1}:{off}]"
    body = f"{src}, {sh}'d0" if sh else src
    ext = w - wd - sh
    if ext == 0:
        return f"{{{body}}}"
    if k:
        return f"{{{{{ext}{{{uout}[{off + wd - 1}]}}}}, {body}}}"
    return f"{{{ext}'d0, {body}}}"


def frame_runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Split the columns of a ``(G, n)`` frame-index table into runs ``(first column, length)``
    within which every group's indices are consecutive (``idx[g, c + 1] == idx[g, c] + 1`` for all
    ``g``): the run pattern shared by all groups, so run ``r`` of group ``g`` is the frame elements
    ``idx[g, c] ... idx[g, c] + length - 1``."""
    n = int(idx.shape[1])
    if n == 0:
        return []
    brk = np.any(np.diff(idx, axis=1) != 1, axis=0) if n > 1 else np.zeros(0, dtype=bool)
    starts = [0] + [int(c) + 1 for c in np.flatnonzero(brk)]
    return [(a, b - a) for a, b in zip(starts, starts[1:] + [n], strict=True)]


def _group_case(sel: str, gb: int, rows: list[str], default: str, indent: str = "            ") -> list[str]:
    """``case`` items for per-group statements ``rows[g]``; identical rows share one item."""
    items: dict[str, list[int]] = {}
    for gi, r in enumerate(rows):
        items.setdefault(r, []).append(gi)
    out = [f"        case ({sel})"]
    for r, gs in items.items():
        labels = ", ".join(f"{gb}'d{gi}" for gi in gs)
        out.append(f"{indent}{labels}: {r}")
    out += [f"{indent}default: {default}", "        endcase"]
    return out


def use_indexed(seg: Segment) -> bool:
    """Whether :func:`segment_wrapper` emits the indexed form for ``seg`` (more than
    :data:`INDEXED_MIN_GROUPS` groups)."""
    return seg.groups > INDEXED_MIN_GROUPS


def segment_wrapper(seg: Segment, unit: TracedUnit, urtl: UnitRtl, name: str, indexed: bool | None = None) -> str:
    """The streaming wrapper module ``name`` around ``urtl`` (see module docstring).  ``indexed``:
    the gather/scatter form (None: :func:`use_indexed`)."""
    if indexed is None:
        indexed = use_indexed(seg)
    g = seg.groups
    gb = _bits(g)
    lat = urtl.latency
    in_off, out_off = frame_offsets(seg.frame_in), frame_offsets(seg.frame_out)
    in_fm, out_fm = frame_fmts(seg.frame_in), frame_fmts(seg.frame_out)
    win, wout = in_off[-1], out_off[-1]
    wu_in = sum(sum(k) for k in unit.in_kif)
    wu_out = sum(sum(k) for k in unit.out_kif)
    lines = [TIMESCALE, "", "// generated by swinfpga: streaming wrapper, one group (window) per clock",
             f"// {seg.name}: groups={g} unit_latency={lat} computes {', '.join(seg.labels)}",
             f"// in frame: {', '.join(f'{f.name}[{f.size}] {f.fmt.ap_type}' for f in seg.frame_in)}",
             f"// out frame: {', '.join(f'{f.name}[{f.size}] {f.fmt.ap_type}' for f in seg.frame_out)}",
             f"module {name} (", "    input clk,", "    input rst,", "    input in_valid,", "    output in_ready,",
             f"    input [{win - 1}:0] in_frame,", f"    input [{win - 1}:0] in_frame1,", "    input in_sel,",
             "    output out_valid,", "    input out_ready,", f"    output [{wout - 1}:0] out_frame,",
             f"    output [{wout - 1}:0] out_buf0,", f"    output [{wout - 1}:0] out_buf1,", "    output out_sel,",
             "    output can_issue", ");"]
    lines += [f"    reg [{gb - 1}:0] cnt;", "    reg wptr, rptr, full0, full1;",
              f"    reg [{gb - 1}:0] ocnt;", f"    reg [{wout - 1}:0] obuf0, obuf1;",
              "    wire ov;",
              "    wire wfull = wptr ? full1 : full0;",
              "    wire ce = !(ov && wfull);  // stall: the finished group has nowhere to go",
              "    wire issue = in_valid && ce;",
              "    assign can_issue = ce;  // a group offered now is issued",
              f"    wire last = (cnt == {gb}'d{g - 1});",
              "    assign in_ready = issue && last;",
              "    assign out_valid = rptr ? full1 : full0;",
              "    assign out_frame = rptr ? obuf1 : obuf0;",
              "    // both buffers unmuxed: the next segment gathers its group from each, then picks the read buffer",
              "    assign out_buf0 = obuf0;", "    assign out_buf1 = obuf1;", "    assign out_sel = rptr;",
              "    wire pop = out_valid && out_ready;",
              "    wire wr = ov && ce;"]
    if indexed:
        lines += _indexed_gather(seg, unit, in_off, in_fm, win, wu_in, gb)
    else:
        lines += _flat_gather(seg, unit, in_off, in_fm, wu_in, gb)
    lines += _pipeline(urtl, lat, gb, wu_out)
    # output element conversion
    offs = [0]
    for k in unit.out_kif:
        offs.append(offs[-1] + sum(k))
    for j in range(seg.n_out):
        fm = out_fm[int(seg.out_idx[0, j])]
        lines.append(f"    wire [{fm.width - 1}:0] oc{j} = "
                     f"{_out_elem('uout', offs[j], unit.out_kif[j], fm, unit.out_const[j])};")
    if indexed:
        lines += _indexed_scatter(seg, out_off, out_fm, wout, gb)
    else:
        lines += _flat_scatter(seg, out_off, out_fm, gb)
    lines += _control(gb, g)
    return "\n".join(lines) + "\n"


def _flat_gather(seg: Segment, unit: TracedUnit, in_off: list[int], in_fm: list[Fmt], wu_in: int,
                 gb: int) -> list[str]:
    """Flat form: one case item per group concatenating its input elements and constants, from
    each of the producer's two buffers (``uin0``/``uin1``), then the read buffer's (``in_sel``)."""
    g = seg.groups
    lines = [f"    reg [{wu_in - 1}:0] uin0, uin1;"]
    for sel in (0, 1):
        frame = "in_frame1" if sel else "in_frame"
        lines.append("    always @(*) begin")
        lines.append("        case (cnt)")
        for gi in range(g):
            parts = []
            mb = seg.mask[gi].reshape(-1) if seg.mask is not None else None
            for j, kif in enumerate(unit.in_kif):
                if sum(kif) == 0:
                    continue
                if j < seg.n_in:
                    e = int(seg.in_idx[gi, j])
                    parts.append(_in_elem(frame, in_off[e], in_fm[e], kif))
                elif j < seg.n_in + seg.n_mask:
                    assert mb is not None
                    parts.append("1'b1" if mb[j - seg.n_in] else "1'b0")
                else:  # per-group constant (a bias row): a literal in the unit's input kif
                    assert seg.consts is not None and seg.const_fmt is not None
                    if kif[2] != seg.const_fmt.frac:
                        raise ValueError(f"unit constant kif {kif} does not match {seg.const_fmt}")
                    wd = sum(kif)
                    code = int(seg.consts[gi, j - seg.n_in - seg.n_mask])
                    parts.append(f"{wd}'d{code & ((1 << wd) - 1)}")
            lines.append(f"            {gb}'d{gi}: uin{sel} = {{{', '.join(reversed(parts))}}};")
        lines.append(f"            default: uin{sel} = {wu_in}'d0;")
        lines += ["        endcase", "    end"]
    lines.append(f"    wire [{wu_in - 1}:0] uin = in_sel ? uin1 : uin0;  // the producer's read buffer")
    return lines


def _group_consts(seg: Segment, unit: TracedUnit, gi: int) -> tuple[int, int]:
    """(value, width) of group ``gi``'s constant unit inputs (shift-mask bits, then bias-row
    codes in the unit's input kif), packed first at the LSB."""
    mb = seg.mask[gi].reshape(-1) if seg.mask is not None else None
    val, pos = 0, 0
    for j, kif in enumerate(unit.in_kif):
        wd = sum(kif)
        if j < seg.n_in or wd == 0:
            continue
        if j < seg.n_in + seg.n_mask:
            assert mb is not None
            val |= int(bool(mb[j - seg.n_in])) << pos
        else:
            assert seg.consts is not None and seg.const_fmt is not None
            if kif[2] != seg.const_fmt.frac:
                raise ValueError(f"unit constant kif {kif} does not match {seg.const_fmt}")
            val |= (int(seg.consts[gi, j - seg.n_in - seg.n_mask]) & ((1 << wd) - 1)) << pos
        pos += wd
    return val, pos


def _run_layout(idx: np.ndarray, off: list[int], fm: list[Fmt], what: str) -> list[tuple[int, int, int]]:
    """Runs of ``idx`` as ``(first column, length, bits)``; checks that every group's run has the
    same element formats (so element ``c`` sits at the same bit inside the run for every group)."""
    kinds: dict[Fmt, int] = {}
    fid = np.asarray([kinds.setdefault(f, len(kinds)) for f in fm], dtype=np.int64)
    ids = fid[idx]
    runs = []
    for c0, n in frame_runs(idx):
        bad = np.flatnonzero(np.any(ids[:, c0:c0 + n] != ids[0, c0:c0 + n], axis=1))
        if bad.size:
            raise ValueError(f"{what}: group {int(bad[0])} reads elements of other formats than group 0 in run at {c0}")
        e0 = int(idx[0, c0])
        runs.append((c0, n, off[e0 + n] - off[e0]))
    return runs


def _indexed_gather(seg: Segment, unit: TracedUnit, in_off: list[int], in_fm: list[Fmt], win: int, wu_in: int,
                    gb: int) -> list[str]:
    """Indexed form: runs of the input frame at per-group bit offsets (one offset table), plus
    the per-group constant table."""
    g = seg.groups
    runs = _run_layout(seg.in_idx, in_off, in_fm, seg.name)
    ab = _bits(win + 1)
    lines = [f"    // indexed gather: {len(runs)} run(s) of the input frame at per-group bit offsets",
             f"    wire [{win - 1}:0] in_frame_m = in_sel ? in_frame1 : in_frame;  // the producer's read buffer"]
    lines += [f"    reg [{ab - 1}:0] ia{r};" for r in range(len(runs))]
    rows = [" ".join(f"ia{r} = {ab}'d{in_off[int(seg.in_idx[gi, c0])]};" for r, (c0, _, _) in enumerate(runs))
            for gi in range(g)]
    rows = [f"begin {x} end" for x in rows]
    dflt = "begin " + " ".join(f"ia{r} = {ab}'d0;" for r in range(len(runs))) + " end"
    lines += ["    always @(*) begin"] + _group_case("cnt", gb, rows, dflt) + ["    end"]
    col_run = {}
    for r, (c0, n, bits) in enumerate(runs):
        lines.append(f"    wire [{bits - 1}:0] ir{r} = in_frame_m[ia{r} +: {bits}];")
        for k in range(n):
            col_run[c0 + k] = (r, in_off[int(seg.in_idx[0, c0 + k])] - in_off[int(seg.in_idx[0, c0])])
    parts = []
    for j, kif in enumerate(unit.in_kif[:seg.n_in]):
        if sum(kif) == 0:
            continue
        r, rel = col_run[j]
        parts.append(_in_elem(f"ir{r}", rel, in_fm[int(seg.in_idx[0, j])], kif))
    consts = [_group_consts(seg, unit, gi) for gi in range(g)]
    cw = consts[0][1] if consts else 0
    if cw:
        lines.append(f"    reg [{cw - 1}:0] gconst;  // per-group shift-mask bits and bias rows")
        rows = [f"gconst = {cw}'h{v:x};" for v, _ in consts]
        lines += ["    always @(*) begin"] + _group_case("cnt", gb, rows, f"gconst = {cw}'d0;") + ["    end"]
        parts.append("gconst")
    if sum(sum(k) for k in unit.in_kif[:seg.n_in]) + cw != wu_in:
        raise ValueError(f"{seg.name}: indexed gather covers {wu_in} unit input bits inconsistently")
    lines.append(f"    wire [{wu_in - 1}:0] uin = {{{', '.join(reversed(parts))}}};")
    return lines


def _indexed_scatter(seg: Segment, out_off: list[int], out_fm: list[Fmt], wout: int, gb: int) -> list[str]:
    """Indexed form: each output run written at its per-group bit offset (table on the result's
    group tag ``og``)."""
    g = seg.groups
    runs = _run_layout(seg.out_idx, out_off, out_fm, seg.name)
    ab = _bits(wout + 1)
    lines = [f"    // indexed scatter: {len(runs)} run(s) of the output frame at per-group bit offsets"]
    lines += [f"    reg [{ab - 1}:0] oa{r};" for r in range(len(runs))]
    rows = ["begin " + " ".join(f"oa{r} = {ab}'d{out_off[int(seg.out_idx[gi, c0])]};"
                                for r, (c0, _, _) in enumerate(runs)) + " end" for gi in range(g)]
    dflt = "begin " + " ".join(f"oa{r} = {ab}'d0;" for r in range(len(runs))) + " end"
    lines += ["    always @(*) begin"] + _group_case("og", gb, rows, dflt) + ["    end"]
    for r, (c0, n, bits) in enumerate(runs):
        lines.append(f"    wire [{bits - 1}:0] or{r} = {{{', '.join(f'oc{c0 + k}' for k in reversed(range(n)))}}};")
    lines += ["    always @(posedge clk) begin", "        if (wr) begin"]
    for b in (0, 1):
        assigns = " ".join(f"obuf{b}[oa{r} +: {bits}] <= or{r};" for r, (_, _, bits) in enumerate(runs))
        lines.append(f"            if (wptr == 1'b{b}) begin {assigns} end")
    lines += ["        end", "    end"]
    return lines


def _pipeline(urtl: UnitRtl, lat: int, gb: int, wu_out: int) -> list[str]:
    """The unit instance and the valid/group tag shift registers beside its pipeline."""
    lines = []
    lines.append(f"    wire [{wu_out - 1}:0] uout;")
    lines.append(f"    {urtl.name} unit (.clk(clk), .ce(ce), .model_inp(uin), .model_out(uout));")
    lines += [f"    reg [{lat - 1}:0] vp;", f"    reg [{lat * gb - 1}:0] gp;",
              "    always @(posedge clk) begin",
              "        if (rst) vp <= 0;",
              "        else if (ce) " + (f"vp <= (vp << 1) | {{{{{lat - 1}{{1'b0}}}}, issue}};" if lat > 1
                                         else "vp <= issue;"),
              "        if (ce) " + (f"gp <= (gp << {gb}) | {{{{{(lat - 1) * gb}{{1'b0}}}}, cnt}};" if lat > 1
                                    else "gp <= cnt;"),
              "    end",
              f"    assign ov = vp[{lat - 1}];", f"    wire [{gb - 1}:0] og = gp[{lat * gb - 1}:{(lat - 1) * gb}];"]
    return lines


def _flat_scatter(seg: Segment, out_off: list[int], out_fm: list[Fmt], gb: int) -> list[str]:
    """Flat form: one case item per group writing its elements at constant bit positions."""
    g = seg.groups
    lines = ["    always @(posedge clk) begin", "        if (wr) begin"]
    for b in (0, 1):
        lines.append(f"            if (wptr == 1'b{b}) begin")
        lines.append("                case (og)")
        for gi in range(g):
            els = [int(seg.out_idx[gi, j]) for j in range(seg.n_out)]
            assigns = " ".join(f"obuf{b}[{out_off[e] + out_fm[e].width - 1}:{out_off[e]}] <= oc{j};"
                               for j, e in enumerate(els))
            lines.append(f"                    {gb}'d{gi}: begin {assigns} end")
        lines += ["                    default: ;", "                endcase", "            end"]
    lines += ["        end", "    end"]
    return lines


def _control(gb: int, g: int) -> list[str]:
    """Group counters, ping-pong buffer pointers and full flags."""
    return [
        "    always @(posedge clk) begin",
        "        if (rst) begin",
        f"            cnt <= {gb}'d0; wptr <= 1'b0; rptr <= 1'b0; full0 <= 1'b0; full1 <= 1'b0; ocnt <= {gb}'d0;",
        "        end else begin",
        f"            if (issue) cnt <= last ? {gb}'d0 : cnt + {gb}'d1;",
        "            if (wr) begin",
        f"                if (ocnt == {gb}'d{g - 1}) begin",
        f"                    ocnt <= {gb}'d0; wptr <= ~wptr;",
        "                    if (wptr == 1'b0) full0 <= 1'b1; else full1 <= 1'b1;",
        "                end else begin",
        f"                    ocnt <= ocnt + {gb}'d1;",
        "                end",
        "            end",
        "            if (pop) begin",
        "                if (rptr == 1'b0) full0 <= 1'b0; else full1 <= 1'b0;",
        "                rptr <= ~rptr;",
        "            end",
        "        end",
        "    end",
        "endmodule",
    ]


def top_module(name: str, segs: list[Segment], seg_names: list[str]) -> str:
    """Top: segment chain, output = last segment's buffer.

    Input: an accepted sample issues its first group straight from ``in_data`` in the accepting
    clock (the first unit registers its input, da4ml's ``stage0_inp``), while ``ibuf`` keeps the
    frame for the remaining groups, so the input costs no extra cycle.  ``in_ready`` is high when
    no earlier sample is still being issued and the first unit is not stalled."""
    import numpy as np

    s0, sl = segs[0], segs[-1]
    win = int(np.prod(s0.in_shape)) * s0.in_fmt.width
    wout = int(np.prod(sl.out_shape)) * sl.out_fmt.width
    L = [TIMESCALE, "", "// generated by swinfpga: whole-model top, AXI-stream style valid/ready",
         f"// in_data: {int(np.prod(s0.in_shape))} x {s0.in_fmt.ap_type} (element e at bits e*{s0.in_fmt.width})",
         f"// out_data: {int(np.prod(sl.out_shape))} x {sl.out_fmt.ap_type} (element e at bits e*{sl.out_fmt.width})",
         f"module {name} (", f"    input clk {PUB},", f"    input rst {PUB},", f"    input in_valid {PUB},",
         f"    output in_ready {PUB},", f"    input [{win - 1}:0] in_data {PUB},", f"    output out_valid {PUB},",
         f"    input out_ready {PUB},", f"    output [{wout - 1}:0] out_data {PUB}", ");",
         "    reg ibv;", f"    reg [{win - 1}:0] ibuf;", "    wire s0_ready, s0_can;",
         "    // ibv: ibuf holds a sample whose later groups are still to be issued",
         "    assign in_ready = !ibv && s0_can;",
         "    wire acc = in_valid && in_ready;",
         "    wire s0_iv = ibv || in_valid;",
         f"    wire [{win - 1}:0] s0_id = ibv ? ibuf : in_data;",
         "    always @(posedge clk) begin",
         "        if (acc) ibuf <= in_data;",
         "        if (rst) ibv <= 1'b0;",
         "        else if (acc && !s0_ready) ibv <= 1'b1;",
         "        else if (ibv && s0_ready) ibv <= 1'b0;",
         "    end"]
    # segment k reads segment k-1's two frame buffers and its read pointer (the gather muxes both);
    # the first reads s0_id (a second buffer of zeros, never selected)
    prev_v, prev_in = "s0_iv", f".in_frame(s0_id), .in_frame1({win}'d0), .in_sel(1'b0)"
    for k, (seg, sn) in enumerate(zip(segs, seg_names, strict=True)):
        w = frame_offsets(seg.frame_out)[-1]
        L += [f"    wire s{k}_ov, s{k}_sel;", f"    wire [{w - 1}:0] s{k}_od, s{k}_b0, s{k}_b1;"]
        if k + 1 < len(segs):
            L.append(f"    wire s{k + 1}_ready;")
        ready_next = f"s{k + 1}_ready" if k + 1 < len(segs) else "out_ready"
        can = ".can_issue(s0_can)" if k == 0 else ".can_issue()"
        L.append(f"    {sn} u_s{k} (.clk(clk), .rst(rst), .in_valid({prev_v}), .in_ready(s{k}_ready), "
                 f"{prev_in}, .out_valid(s{k}_ov), .out_ready({ready_next}), .out_frame(s{k}_od), "
                 f".out_buf0(s{k}_b0), .out_buf1(s{k}_b1), .out_sel(s{k}_sel), {can});")
        prev_v = f"s{k}_ov"
        prev_in = f".in_frame(s{k}_b0), .in_frame1(s{k}_b1), .in_sel(s{k}_sel)"
    L += [f"    assign out_valid = {prev_v};", f"    assign out_data = s{len(segs) - 1}_od;", "endmodule"]
    return "\n".join(L) + "\n"
