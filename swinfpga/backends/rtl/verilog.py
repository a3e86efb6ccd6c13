"""Verilog emission: da4ml units, the per-segment streaming wrapper, and the top module.

Frame port layout: a frame is a concatenation of fields (:class:`~.plan.Field`; node output
frames, the top-level ports included, have one field); element ``e`` of the flat frame occupies
the bits after element ``e - 1`` as a two's complement (or unsigned) code of its field's format,
so in a one-field frame bits ``[e*W + W-1 : e*W]`` (``W`` = format width).  Balanced segments pass
frames with several fields (e.g. the residual, q, k and v of every token) between their units.

Segment wrapper (one per unit): a group counter walks the ``G`` groups of the input frame, one per
clock, gathering each group's elements (plus its constant shift-mask bits and bias rows) into the
unit; a valid/group tag shift register runs alongside the unit's pipeline.  Results of groups
``0..G-2`` go into a staging buffer; the last group's results and the staging buffer load the
*read buffer* in one clock, which the next segment reads directly: a G:1 multiplexer per gathered
bit, none on the elements every group reads alike (a window's keys and values), and no ping-pong
read multiplexer.  One read buffer suffices because the top accepts at most one sample per II
clocks (II = the most groups of any segment): every frame is loaded at least II clocks after the
previous one and its consumer reads it in the ``G <= II`` clocks right after the load, so a load
never meets an unread frame inside the pipeline.  The only back-pressure is the top's
``out_ready``: when the last segment's next frame is due while the previous output is not taken,
one ``run`` signal stalls every register of the design (da4ml's pipeline registers through their
clock enable ``ce``), so nothing is dropped and timing stays as scheduled.  The input frame is
popped (``in_ready``) when its last group is issued; ``out_valid`` is the read buffer's full flag.
Handshakes are AXI-stream style (data stable while valid; transfer when valid and ready).

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
from .plan import Segment, frame_fmts, frame_offsets, natural_ii
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
             f"module {name} (", "    input clk,", "    input rst,", "    input run,", "    input in_valid,",
             "    output in_ready,", f"    input [{win - 1}:0] in_frame,", "    output out_valid,",
             "    input out_ready,", f"    output [{wout - 1}:0] out_frame,", "    output load_pending", ");"]
    lines += [f"    reg [{gb - 1}:0] cnt;", "    reg rfull;",
              f"    reg [{wout - 1}:0] sbuf, rbuf;  // staging (groups 0..G-2), read buffer (whole frames)",
              "    wire ov;",
              f"    wire [{gb - 1}:0] og;",
              "    wire issue = in_valid && run;",
              f"    wire last = (cnt == {gb}'d{g - 1});",
              "    assign in_ready = issue && last;  // the input frame's last group is issued: pop it",
              "    assign out_valid = rfull;",
              "    assign out_frame = rbuf;",
              "    wire pop = rfull && out_ready;",
              "    wire wr = ov && run;",
              f"    assign load_pending = ov && (og == {gb}'d{g - 1});  // the frame's last result is here",
              "    wire load = load_pending && run;"]
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
    """Flat form: one case item per group (the last one as ``default``: a full case, G inputs per
    multiplexer) selects the group's input elements and constants from the producer's read buffer;
    elements every group reads alike (a window's keys and values in a row-serial core) are plain
    wires outside the case."""
    g = seg.groups
    static = [j < seg.n_in and bool(np.all(seg.in_idx[:, j] == seg.in_idx[0, j])) for j in range(len(unit.in_kif))]
    rows: list[list[str]] = []
    for gi in range(g):
        parts = []
        mb = seg.mask[gi].reshape(-1) if seg.mask is not None else None
        for j, kif in enumerate(unit.in_kif):
            if sum(kif) == 0 or static[j]:
                continue
            if j < seg.n_in:
                e = int(seg.in_idx[gi, j])
                parts.append(_in_elem("in_frame", in_off[e], in_fm[e], kif))
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
        rows.append(parts)
    wv = sum(sum(k) for j, k in enumerate(unit.in_kif) if not static[j])
    lines = []
    if wv:
        lines += [f"    reg [{wv - 1}:0] gv;  // the elements and constants that differ between groups",
                  "    always @(*) begin", "        case (cnt)"]
        for gi, parts in enumerate(rows):
            item = "default" if gi == g - 1 else f"{gb}'d{gi}"
            lines.append(f"            {item}: gv = {{{', '.join(reversed(parts))}}};")
        lines += ["        endcase", "    end"]
    cat, pos = [], 0
    for j, kif in enumerate(unit.in_kif):
        wd = sum(kif)
        if wd == 0:
            continue
        if static[j]:
            e = int(seg.in_idx[0, j])
            cat.append(_in_elem("in_frame", in_off[e], in_fm[e], kif))
        else:
            cat.append(f"gv[{pos + wd - 1}:{pos}]")
            pos += wd
    lines.append(f"    wire [{wu_in - 1}:0] uin = {{{', '.join(reversed(cat))}}};")
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
    lines = [f"    // indexed gather: {len(runs)} run(s) of the input frame at per-group bit offsets"]
    lines += [f"    reg [{ab - 1}:0] ia{r};" for r in range(len(runs))]
    rows = [" ".join(f"ia{r} = {ab}'d{in_off[int(seg.in_idx[gi, c0])]};" for r, (c0, _, _) in enumerate(runs))
            for gi in range(g)]
    rows = [f"begin {x} end" for x in rows]
    dflt = "begin " + " ".join(f"ia{r} = {ab}'d0;" for r in range(len(runs))) + " end"
    lines += ["    always @(*) begin"] + _group_case("cnt", gb, rows, dflt) + ["    end"]
    col_run = {}
    for r, (c0, n, bits) in enumerate(runs):
        lines.append(f"    wire [{bits - 1}:0] ir{r} = in_frame[ia{r} +: {bits}];")
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
    last = [out_off[int(seg.out_idx[g - 1, c0])] for c0, _, _ in runs]
    lines += ["    always @(posedge clk) begin",
              "        if (wr) begin " + " ".join(f"sbuf[oa{r} +: {bits}] <= or{r};"
                                               for r, (_, _, bits) in enumerate(runs)) + " end",
              "        if (load) begin  // the frame's last group: straight into the read buffer",
              "            rbuf <= sbuf;"]
    lines += [f"            rbuf[{o + bits - 1}:{o}] <= or{r};"
              for r, ((_, _, bits), o) in enumerate(zip(runs, last, strict=True))]
    lines += ["        end", "    end"]
    return lines


def _pipeline(urtl: UnitRtl, lat: int, gb: int, wu_out: int) -> list[str]:
    """The unit instance and the valid/group tag shift registers beside its pipeline."""
    lines = []
    lines.append(f"    wire [{wu_out - 1}:0] uout;")
    lines.append(f"    {urtl.name} unit (.clk(clk), .ce(run), .model_inp(uin), .model_out(uout));")
    lines += [f"    reg [{lat - 1}:0] vp;", f"    reg [{lat * gb - 1}:0] gp;",
              "    always @(posedge clk) begin",
              "        if (rst) vp <= 0;",
              "        else if (run) " + (f"vp <= (vp << 1) | {{{{{lat - 1}{{1'b0}}}}, issue}};" if lat > 1
                                          else "vp <= issue;"),
              "        if (run) " + (f"gp <= (gp << {gb}) | {{{{{(lat - 1) * gb}{{1'b0}}}}, cnt}};" if lat > 1
                                     else "gp <= cnt;"),
              "    end",
              f"    assign ov = vp[{lat - 1}];", f"    assign og = gp[{lat * gb - 1}:{(lat - 1) * gb}];"]
    return lines


def _flat_scatter(seg: Segment, out_off: list[int], out_fm: list[Fmt], gb: int) -> list[str]:
    """Flat form: groups 0..G-2 write their elements into the staging buffer at constant bit
    positions; the last group's results and the staging buffer load the read buffer at once."""
    g = seg.groups

    def assigns(buf: str, gi: int) -> list[str]:
        return [f"{buf}[{out_off[e] + out_fm[e].width - 1}:{out_off[e]}] <= oc{j};"
                for j, e in enumerate(int(seg.out_idx[gi, j]) for j in range(seg.n_out))]

    lines = ["    always @(posedge clk) begin"]
    if g > 1:
        lines += ["        if (wr) begin", "            case (og)"]
        lines += [f"                {gb}'d{gi}: begin {' '.join(assigns('sbuf', gi))} end" for gi in range(g - 1)]
        lines += ["                default: ;", "            endcase", "        end"]
    lines += ["        if (load) begin  // the frame's last group: straight into the read buffer",
              "            rbuf <= sbuf;"]
    lines += [f"            {a}" for a in assigns("rbuf", g - 1)]
    lines += ["        end", "    end"]
    return lines


def _control(gb: int, g: int) -> list[str]:
    """Group counter and the read buffer's full flag (a load and a pop in one clock: full)."""
    return [
        "    always @(posedge clk) begin",
        "        if (rst) begin",
        f"            cnt <= {gb}'d0; rfull <= 1'b0;",
        "        end else begin",
        f"            if (issue) cnt <= last ? {gb}'d0 : cnt + {gb}'d1;",
        "            if (load) rfull <= 1'b1;",
        "            else if (pop) rfull <= 1'b0;",
        "        end",
        "    end",
        "`ifndef SYNTHESIS",
        "    // the schedule guarantees a load never meets an unread frame (module docstring); say so loudly if not",
        "    always @(posedge clk) if (!rst && load && rfull && !pop) begin",
        "        $display(\"ERROR %m: a frame loads over an unread one\"); $finish;",
        "    end",
        "`endif",
        "endmodule",
    ]


def top_module(name: str, segs: list[Segment], seg_names: list[str]) -> str:
    """Top: segment chain under one run signal, output = last segment's read buffer.

    Input: an accepted sample issues its first group straight from ``in_data`` in the accepting
    clock (the first unit registers its input, da4ml's ``stage0_inp``), while ``ibuf`` keeps the
    frame for the remaining groups, so the input costs no extra cycle.  Samples are accepted at
    most one per II clocks (``thr``; II = the most groups of any segment), which is what lets every
    segment's single read buffer suffice (module docstring).  ``run`` falls only when the last
    segment's next frame is due while the previous output is still not taken."""
    import numpy as np

    s0, sl = segs[0], segs[-1]
    win = int(np.prod(s0.in_shape)) * s0.in_fmt.width
    wout = int(np.prod(sl.out_shape)) * sl.out_fmt.width
    ii = natural_ii(segs)
    tb = _bits(ii)
    last = len(segs) - 1
    L = [TIMESCALE, "", "// generated by swinfpga: whole-model top, AXI-stream style valid/ready",
         f"// in_data: {int(np.prod(s0.in_shape))} x {s0.in_fmt.ap_type} (element e at bits e*{s0.in_fmt.width})",
         f"// out_data: {int(np.prod(sl.out_shape))} x {sl.out_fmt.ap_type} (element e at bits e*{sl.out_fmt.width})",
         f"// II {ii}: one sample accepted per {ii} clocks at most",
         f"module {name} (", f"    input clk {PUB},", f"    input rst {PUB},", f"    input in_valid {PUB},",
         f"    output in_ready {PUB},", f"    input [{win - 1}:0] in_data {PUB},", f"    output out_valid {PUB},",
         f"    input out_ready {PUB},", f"    output [{wout - 1}:0] out_data {PUB}", ");",
         "    reg ibv;", f"    reg [{win - 1}:0] ibuf;", f"    reg [{tb - 1}:0] thr;", "    wire s0_ready;",
         f"    wire s{last}_ov, s{last}_lp;",
         "    // stall everything only when the last segment's next frame is due and its output is not taken",
         f"    wire run = !(s{last}_ov && !out_ready && s{last}_lp);",
         "    // ibv: ibuf holds a sample whose later groups are still to be issued",
         f"    assign in_ready = !ibv && run && (thr == {tb}'d0);",
         "    wire acc = in_valid && in_ready;",
         "    wire s0_iv = ibv || acc;",
         f"    wire [{win - 1}:0] s0_id = ibv ? ibuf : in_data;",
         "    always @(posedge clk) begin",
         "        if (acc) ibuf <= in_data;",
         "        if (rst) begin",
         f"            ibv <= 1'b0; thr <= {tb}'d0;",
         "        end else begin",
         "            if (acc && !s0_ready) ibv <= 1'b1;",
         "            else if (ibv && s0_ready) ibv <= 1'b0;",
         f"            if (acc) thr <= {tb}'d{ii - 1};",
         f"            else if (run && thr != {tb}'d0) thr <= thr - {tb}'d1;",
         "        end",
         "    end"]
    prev_v, prev_d = "s0_iv", "s0_id"
    for k, (seg, sn) in enumerate(zip(segs, seg_names, strict=True)):
        w = frame_offsets(seg.frame_out)[-1]
        if k != last:
            L.append(f"    wire s{k}_ov, s{k}_lp;")
        L.append(f"    wire [{w - 1}:0] s{k}_od;")
        if k + 1 < len(segs):
            L.append(f"    wire s{k + 1}_ready;")
        ready_next = f"s{k + 1}_ready" if k + 1 < len(segs) else "out_ready"
        L.append(f"    {sn} u_s{k} (.clk(clk), .rst(rst), .run(run), .in_valid({prev_v}), .in_ready(s{k}_ready), "
                 f".in_frame({prev_d}), .out_valid(s{k}_ov), .out_ready({ready_next}), .out_frame(s{k}_od), "
                 f".load_pending(s{k}_lp));")
        prev_v, prev_d = f"s{k}_ov", f"s{k}_od"
    L += [f"    assign out_valid = {prev_v};", f"    assign out_data = s{last}_od;", "endmodule"]
    return "\n".join(L) + "\n"
