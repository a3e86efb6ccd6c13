"""IR -> per-layer HLS plans: every C++ type (as :class:`~swinfpga.fixed.Fmt`), constant, code array
and the config struct / function call text of the ``hls_templates/`` functions.

Pure Python (no hls4ml import): :mod:`.graph` wraps these plans into hls4ml layers.  Accumulator
formats are *exact*: they hold every partial sum of the worst-case inputs of their formats, so the
only rounding/overflow happens where the IR requantizes (a conversion into a type with the IR's modes).
Type placeholders ``{t:KEY}`` in the config text are replaced by hls4ml's type names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import SwinfpgaError
from ...fixed import ChanFmt, Fmt, acc_fmt
from ...ir import nodes as N
from ...ir.graph import Model, TensorInfo
from ...lut import Lut, SoftmaxSpec
from ...registry import Registry

HEADERS = ("swin_common.h", "swin_softmax.h", "swin_attention.h", "swin_layernorm.h", "swin_layers.h",
           "swin_stream.h")
STRATEGIES = ("latency", "resource")
LAYOUTS = ("layers", "flat")
IO_TYPES = ("io_parallel", "io_stream")  # "flat": the old single pipeline over the whole model (pre-flight rejects it)
OVERFLOW_CODE = {"WRAP": 0, "SAT": 1, "SAT_SYM": 2}  # a per-channel struct's ovf (swin_common.h requant)


class PlanError(SwinfpgaError, ValueError):
    """The IR uses something the HLS templates cannot express exactly."""


@dataclass(frozen=True)
class TableUse:
    """A lookup table / ROM read by a unit: ``entries`` x ``width`` bits, ``reads`` per iteration, held in
    ``storage`` 'registers' (complete partition: LUT-ROM / registers, any number of reads per cycle) or
    'rom' (BIND_STORAGE rom_1p: one read per cycle)."""

    name: str
    entries: int
    width: int
    reads: int
    storage: str


@dataclass(frozen=True)
class ArrayUse:
    """An array split into ``banks`` registers/memories (complete partition of some dims) of ``width`` bits."""

    name: str
    banks: int
    width: int


@dataclass(frozen=True)
class Unit:
    """One loop of the generated C++ as HLS schedules it: ``label`` (the C++ loop label), pipelined with
    ``ii`` (None: not pipelined), ``trips`` iterations per entry, entered ``calls`` times per inference;
    per iteration ``const_mults`` constant-coefficient and ``var_mults`` variable products unrolled,
    at most ``mult_limit`` multipliers instantiated (ALLOCATION), ``mult_bits`` the widest operand widths;
    ``depth`` estimated pipeline depth (cycles)."""

    label: str
    ii: int | None
    trips: int
    calls: int
    depth: int
    const_mults: int = 0
    var_mults: int = 0
    mult_limit: int = 0
    mult_bits: tuple[int, int] = (0, 0)
    adds: int = 0
    tables: tuple[TableUse, ...] = ()
    arrays: tuple[ArrayUse, ...] = ()


@dataclass
class LayerPlan:
    """One hls4ml layer: ``kind`` (custom layer class), sanitized ``name``, input layer names, output
    shape and format, internal ``types`` (key -> Fmt; C++ name ``{t:key}``), integer ``arrays``
    (name -> int64 codes, emitted into a generated header), and the C++ text."""

    kind: str
    name: str
    ir_name: str
    inputs: list[str]
    shape: tuple[int, ...]
    out_fmt: Fmt
    in_fmts: list[Fmt]
    types: dict[str, Fmt] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    config: str = ""  # body of `struct config{index} { ... };`
    call: str = ""  # swin::fn<{input_t}, {output_t}, config{index}>({input}, {output}, {arrays...});
    function: str = ""  # the swin:: function called
    lag_tokens: int = 1  # io_stream: input tokens consumed before the first output token (FIFO sizing)
    units: list[Unit] = field(default_factory=list)  # its loops as HLS schedules them (pre-flight, estimates)


def code_ctype(codes: np.ndarray) -> str:
    """Narrowest ap_int / ap_uint C type holding every integer code of ``codes`` (a ROM's entry type)."""
    codes = np.asarray(codes, dtype=np.int64)
    lo, hi = (int(codes.min()), int(codes.max())) if codes.size else (0, 0)
    if lo >= 0:
        return f"ap_uint<{max(1, hi.bit_length())}>"
    return f"ap_int<{max((-lo - 1).bit_length(), hi.bit_length()) + 1}>"


def rom_ctype(codes: np.ndarray) -> str:
    """The ROM entry type as the generated C++ spells it: :func:`code_ctype` in synthesis, the smallest C
    integer (:func:`ctype_for`) in C simulation (``SWIN_ROM_T`` in swin_common.h)."""
    return f"SWIN_ROM_T({code_ctype(codes)}, {ctype_for(np.asarray(codes, dtype=np.int64))})"


def _log2(n: int) -> int:
    return max(0, int(n - 1).bit_length())


def hls_name(ir_name: str) -> str:
    n = ir_name.replace(".", "_").replace("-", "_")
    return "x_" + n if n == "input" else n


def ctype_for(codes: np.ndarray) -> str:
    """Narrowest C integer type holding all codes."""
    lo, hi = (int(codes.min()), int(codes.max())) if codes.size else (0, 0)
    for bits, t in ((8, "int8_t"), (16, "int16_t"), (32, "int32_t")):
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return t
    return "int64_t"


NO_TABLE_T = rom_ctype(np.zeros(1, dtype=np.int64))  # type of the 1-entry placeholder ROM of absent tables


def _rng(f: Fmt, frac: int | None = None) -> tuple[int, int]:
    """Code range of ``f`` expressed at ``frac`` fraction bits (>= f.frac)."""
    frac = f.frac if frac is None else frac
    sh = frac - f.frac
    assert sh >= 0
    return f.min_code << sh, f.max_code << sh


def _prod_rng(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return min(p), max(p)


class _Cfg:
    """Accumulates C++ struct lines and types for one layer."""

    def __init__(self, plan: LayerPlan) -> None:
        self.p = plan
        self.lines: list[str] = []

    def typ(self, key: str, f: Fmt, alias: str | None = None, ind: str = "    ") -> str:
        if key in self.p.types and self.p.types[key] != f:
            raise PlanError(f"{self.p.ir_name}: type {key} defined twice")
        self.p.types[key] = f
        if alias:
            self.lines.append(f"{ind}typedef {{t:{key}}} {alias};")
        return f"{{t:{key}}}"

    def const(self, name: str, v: int, ind: str = "    ") -> None:
        v = int(v)
        if abs(v) < 2**31:
            self.lines.append(f"{ind}static const int {name} = {v};")
        else:
            self.lines.append(f"{ind}static const long long {name} = {v}LL;")

    def array(self, name: str, codes: np.ndarray, full_name: str | None = None) -> str:
        """Register a code array for the weights header: C++ name ``<layer>_<name>``, or ``full_name``."""
        cname = full_name or f"{self.p.name}_{name}"
        if cname in self.p.arrays:
            raise PlanError(f"{self.p.ir_name}: two C++ arrays named {cname}")
        self.p.arrays[cname] = np.asarray(codes, dtype=np.int64).reshape(-1)
        return f"swin_w::{cname}"

    def chan(self, key: str, f: Fmt, n: int, ind: str = "    ") -> None:
        """Where ``f`` is a per-channel format (:class:`~swinfpga.fixed.ChanFmt`) of ``n`` channels, emit its
        :func:`chan_struct`; a plain format emits nothing, so its layer's C++ stays the ap_fixed cast."""
        if not isinstance(f, ChanFmt):
            return
        if f.n_chans != n:
            raise PlanError(f"{self.p.ir_name}: per-channel format {key} has {f.n_chans} channels, the tensor {n}")
        self.lines += chan_struct(key, f, ind)

    def linear(self, key: str, lin: N.Linear, x_fmt: Fmt, reuse: int, strategy: str = "latency",
               ind: str = "    ") -> tuple[str, str]:
        """Emit ``struct key { n_in, n_out, reuse, strategy, mults, mult_limit, w_t, b_t, acc_t, out_t, wc_t,
        bc_t }``; return (w, b) array refs.  Resource strategy: weights reshaped for ``linear_impl<1>``."""
        af = lin.acc_frac(x_fmt)
        w = lin.weight
        if lin.bias is not None:
            assert lin.b_fmt is not None
            b, b_fmt = lin.bias, lin.b_fmt
        else:
            b, b_fmt = np.zeros(lin.n_out, dtype=np.int64), Fmt(False, 1, 1 - af)
        bal = b << (af - b_fmt.frac)
        xl, xh = _rng(x_fmt)
        t1, t2 = xl * w, xh * w
        pos = np.sum(np.maximum(np.maximum(t1, t2), 0), axis=0)
        neg = np.sum(np.minimum(np.minimum(t1, t2), 0), axis=0)
        lo, hi = int(np.min(bal + neg)), int(np.max(bal + pos))
        r = max(1, min(reuse, lin.n_in))
        lanes = -(-lin.n_in // r)
        mults = lanes * lin.n_out
        if strategy == "resource":
            wr = np.zeros((lanes, lin.n_out, r), dtype=np.int64)  # [m = lane*n_out + o][cycle]
            for lane in range(lanes):
                rows = w[lane * r: min(lin.n_in, (lane + 1) * r)]  # (<= r, n_out)
                wr[lane, :, : rows.shape[0]] = rows.T
            w = wr.reshape(-1)
        i2 = ind + "    "
        self.lines.append(f"{ind}struct {key} {{")
        self.const("n_in", lin.n_in, i2)
        self.const("n_out", lin.n_out, i2)
        self.const("reuse", r, i2)
        self.const("strategy", int(strategy == "resource"), i2)
        self.const("mults", mults, i2)
        self.const("mult_limit", -(-lin.n_in * lin.n_out // r), i2)
        self.typ(f"{key}_w", lin.w_fmt, "w_t", i2)
        self.typ(f"{key}_b", b_fmt, "b_t", i2)
        self.typ(f"{key}_acc", acc_fmt(lo, hi, af), "acc_t", i2)
        self.typ(f"{key}_out", lin.out_fmt, "out_t", i2)
        self.chan("out_chan", lin.out_fmt, lin.n_out, i2)
        self.lines.append(f"{i2}typedef {rom_ctype(w)} wc_t;")
        self.lines.append(f"{i2}typedef {rom_ctype(b)} bc_t;")
        self.lines.append(f"{ind}}};")
        return self.array(f"{key}_w", w), self.array(f"{key}_b", b)

    def lut(self, key: str, lut: Lut, code_w: int, ind: str = "    ") -> str:
        i2 = ind + "    "
        self.lines.append(f"{ind}struct {key} {{")
        self.typ(f"{key}_out", lut.out_fmt, "out_t", i2)
        self.lines.append(f"{i2}typedef {rom_ctype(lut.array())} code_t;")
        self.const("size", lut.size, i2)
        self.const("shift", lut.shift, i2)
        self.const("offset", lut.offset, i2)
        self.const("calc_w", max(code_w, abs(lut.offset).bit_length() + 1) + 2, i2)
        self.lines.append(f"{ind}}};")
        # the ROM array carries the IR table's own name (as the manifest and the Verilog ROM file do)
        return self.array(f"{key}_table", lut.array(), full_name=hls_name(lut.name))

    def softmax(self, key: str, sm: SoftmaxSpec, ind: str = "    ") -> tuple[str, str]:
        if sm.kind == "hgq2":  # HGQ2's table softmax: its own struct (softmax_hgq2.py)
            from .softmax_hgq2 import emit_struct
            return emit_struct(self, key, sm, ind)
        if sm.prob_fmt.signed:
            raise PlanError(f"{self.p.ir_name}: signed probability format unsupported")
        i2 = ind + "    "
        self.lines.append(f"{ind}struct {key} {{")
        self.const("n", sm.n, i2)
        self.const("E", sm.exp_frac, i2)
        self.const("R", sm.recip_frac, i2)
        self.const("P", sm.prob_fmt.frac, i2)
        self.const("max_k", sm.max_k, i2)
        self.const("sum_w", sm.sum_fmt.width, i2)
        self.const("prob_rnd", int(sm.prob_fmt.rounding == "RND"), i2)
        self.const("prob_sat", int(sm.prob_fmt.overflow != "WRAP"), i2)
        self.const("prob_max", sm.prob_fmt.max_code, i2)
        self.typ(f"{key}_score", sm.score_fmt, "score_t", i2)
        self.typ(f"{key}_prob", sm.prob_fmt, "prob_t", i2)
        e = self.lut("exp_lut", sm.exp, sm.score_fmt.width + 2, i2)
        r = self.lut("recip_lut", sm.recip, sm.sum_fmt.width + 1, i2)
        self.lines.append(f"{ind}}};")
        return e, r

    def layernorm(self, key: str, ln: N.LayerNorm, x_fmt: Fmt, c: int, ind: str = "    ") -> tuple[str, str, str]:
        _plain(ln.name, mean_fmt=ln.mean_fmt, var_fmt=ln.var_fmt, norm_fmt=ln.norm_fmt)
        i2 = ind + "    "
        self.lines.append(f"{ind}struct {key} {{")
        self.const("C", c, i2)
        inv_w = max(1, int(ln.inv_c).bit_length())
        self.typ(f"{key}_inv", Fmt(False, inv_w, inv_w - ln.inv_frac), "inv_t", i2)
        self.const("inv_code", ln.inv_c, i2)
        xl, xh = _rng(x_fmt)
        self.typ(f"{key}_sum", acc_fmt(min(0, c * xl), max(0, c * xh), x_fmt.frac), "sum_t", i2)
        self.typ(f"{key}_mean", ln.mean_fmt, "mean_t", i2)
        mf = ln.mean_fmt.frac
        (xl2, xh2), (ml, mh) = _rng(x_fmt, mf), _rng(ln.mean_fmt)
        dl, dh = xl2 - mh, xh2 - ml
        self.typ(f"{key}_d", acc_fmt(dl, dh, mf), "d_t", i2)
        self.typ(f"{key}_ss", acc_fmt(0, c * max(dl * dl, dh * dh), 2 * mf), "ss_t", i2)
        self.typ(f"{key}_var", ln.var_fmt, "var_t", i2)
        self.typ(f"{key}_norm", ln.norm_fmt, "norm_t", i2)
        self.typ(f"{key}_g", ln.g_fmt, "g_t", i2)
        self.typ(f"{key}_b", ln.b_fmt, "b_t", i2)
        af = ln.norm_fmt.frac + ln.g_fmt.frac
        pl, ph = _prod_rng(_rng(ln.norm_fmt), (int(ln.gamma.min()), int(ln.gamma.max())))
        bal = ln.beta << (af - ln.b_fmt.frac)
        self.typ(f"{key}_gacc", acc_fmt(pl + min(0, int(bal.min())), ph + max(0, int(bal.max())), af), "gacc_t", i2)
        t = self.lut("rsqrt_lut", ln.rsqrt, ln.var_fmt.width + 1, i2)
        self.chan("out_chan", ln.out_fmt, c, i2)
        self.lines.append(f"{i2}typedef {rom_ctype(ln.gamma)} gc_t;")
        self.lines.append(f"{i2}typedef {rom_ctype(ln.beta)} bc_t;")
        self.lines.append(f"{ind}}};")
        return self.array(f"{key}_gamma", ln.gamma), self.array(f"{key}_beta", ln.beta), t

    def text(self) -> str:
        return "\n".join(self.lines)


def _plain(where: str, **fmts: Fmt) -> None:
    """Refuse per-channel formats where the C++ requantizes per tensor (not a token-local channel axis)."""
    for what, f in fmts.items():
        if isinstance(f, ChanFmt):
            raise PlanError(f"{where}: {what} is a per-channel format, which the HLS templates support only on "
                            "Linear, LayerNorm, ReLU-hidden, Add and Pool outputs; give it one format for all "
                            "channels")


def chan_struct(key: str, f: ChanFmt, ind: str = "    ") -> list[str]:
    """C++ lines of ``struct key { n, sgn, rnd, ovf, min_frac, width(c), frac(c) }``: the per-channel table
    of ``f`` that ``swin::requant`` (swin_common.h) reads; ``width(c) == 0``: channel c is pruned."""
    i2 = ind + "    "
    n = f.n_chans
    fr = [w - i if w else 0 for w, i in f.chans]
    live = [x for (w, _), x in zip(f.chans, fr, strict=True) if w]
    consts = (("n", n), ("sgn", int(f.signed)), ("rnd", int(f.rounding == "RND")), ("ovf", OVERFLOW_CODE[f.overflow]),
              ("min_frac", min(live, default=f.frac)))
    out = [f"{ind}struct {key} {{", *(f"{i2}static const int {k} = {v};" for k, v in consts)]
    for fn, vals in (("width", [w for w, _ in f.chans]), ("frac", fr)):
        out.append(f"{i2}static int {fn}(int c) {{ static const int t[{n}] = {{{', '.join(map(str, vals))}}}; "
                   "return t[c]; }")
    return [*out, f"{ind}}};"]


def _call(fn: str, plan: LayerPlan, args: list[str], in_t: str = "{input_t}") -> str:
    a = ", ".join(["{input}", "{output}", *args])
    return f"swin::{fn}<{in_t}, {{output_t}}, config{{index}}>({a});"


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _lin_depth(n_in: int) -> int:
    """Pipeline depth of one Linear: multiply, an adder tree of n_in terms (two levels per cycle), requant."""
    return 3 + _ceil(_log2(n_in), 2)


def _lin_units(label: str, lin: N.Linear, x_fmt: Fmt, rf: int, calls: int) -> list[Unit]:
    """The resource strategy's shared dense_resource instance: ``reuse`` cycles of ``mults`` products."""
    r = max(1, min(rf, lin.n_in))
    mults = _ceil(lin.n_in, r) * lin.n_out
    rom = TableUse(f"{label}_w", r, mults * lin.w_fmt.width, 1, "rom")
    return [Unit(f"{label}/Reuse", 1, r, calls, _lin_depth(_ceil(lin.n_in, r)), var_mults=mults, mult_limit=mults,
                 mult_bits=(x_fmt.width, lin.w_fmt.width), adds=mults, tables=(rom,))]


def _ln_counts(c: int, ln: N.LayerNorm, x_fmt: Fmt) -> tuple[int, int]:
    """(constant, variable) products of one LayerNorm token: sum*inv, ss*inv, n*gamma; d*d, d*rs."""
    return c + 2, 2 * c


def plan_model(model: Model, reuse_factor: int = 1, strategy: str = "latency",
               layout: str = "layers", io_type: str = "io_parallel") -> list[LayerPlan]:
    """Plans for every IR node (the Input node becomes hls4ml's Input layer, plan kind 'Input').

    ``strategy`` 'latency' (hls4ml dense_latency: token loops pipelined at II = reuse, products unrolled,
    ALLOCATION-limited) or 'resource' (hls4ml dense_resource: shared Linear instances, reshaped ROM
    weights); ``layout`` 'flat' marks the legacy single-pipeline top (same layer C++, see :mod:`.preflight`)."""
    if strategy not in STRATEGIES:
        raise PlanError(f"--strategy {strategy!r} unknown; use one of {', '.join(STRATEGIES)}")
    if layout not in LAYOUTS:
        raise PlanError(f"HLS layout {layout!r} unknown; use one of {', '.join(LAYOUTS)}")
    if io_type not in IO_TYPES:
        raise PlanError(f"--io-type {io_type!r} unknown; use one of {', '.join(IO_TYPES)}")
    st = io_type == "io_stream"
    info = model.infer()
    plans: list[LayerPlan] = []
    rf = max(1, int(reuse_factor))
    rs = strategy == "resource"
    sfx = "_rs" if rs else ""
    for n in model.nodes:
        ins = [hls_name(i) for i in n.inputs]
        in_fmts = [info[i].fmt for i in n.inputs]
        out = info[n.name]
        p = LayerPlan(type(n).__name__, hls_name(n.name), n.name, ins, tuple(out.shape), out.fmt, in_fmts)
        c = _Cfg(p)
        PLAN.handler(n)(n, p, _Ctx(model, info, in_fmts, out, rf, rs, sfx, st, strategy, c))
        if p.kind in ("SwinPatchEmbed", "SwinMlp", "SwinLayerNorm", "SwinPatchMerging", "SwinDense"):
            c.const("mult_limit", _latency_limit(n, in_fmts[0], info, rf))  # ALLOCATION of the token pipeline
        p.config = c.text()
        plans.append(p)
    return plans


@dataclass(frozen=True)
class _Ctx:
    """What a plan handler reads besides its node: the model, inferred tensors, the node's input formats
    and output, reuse factor, strategy flags and the layer's config builder."""

    model: Model
    info: dict
    in_fmts: list[Fmt]
    out: TensorInfo
    rf: int
    rs: bool
    sfx: str
    st: bool
    strategy: str
    cfg: _Cfg


# ----- one handler per IR node type (fills p.kind, p.function, p.call, config lines and units) -------------
PLAN = Registry("HLS plan", PlanError)


@PLAN.handles(N.Input)
def _plan_input(n: N.Input, p: LayerPlan, ctx: _Ctx) -> None:
    p.kind = "Input"


@PLAN.handles(N.PatchEmbed)
def _plan_patch_embed(n: N.PatchEmbed, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    info, in_fmts, rf, rs, sfx, st, strategy = ctx.info, ctx.in_fmts, ctx.rf, ctx.rs, ctx.sfx, ctx.st, ctx.strategy
    h, w, cin = info[n.src].shape
    p.kind = "SwinPatchEmbed"
    for k, v in (("height", h), ("width", w), ("cin", cin), ("patch", n.patch), ("reuse", rf)):
        c.const(k, v)
    lin = n.linear
    wr, br = c.linear("lin", lin, in_fmts[0], rf, strategy)
    tokens = (h // n.patch) * (w // n.patch)
    p.function = "patch_embed" + sfx + ("_s" if st else "")
    if st:
        p.lag_tokens = n.patch * w
        u.append(Unit("Bands/Read", 1, n.patch * w, h // n.patch, 2,
                      arrays=(ArrayUse("lb", n.patch * n.patch * cin, in_fmts[0].width),)))
    if rs:
        u.append(Unit("Patches/Gather", 1, lin.n_in, tokens, 2))
        u += _lin_units("lin", lin, in_fmts[0], rf, tokens)
    else:
        u.append(Unit("Patches", rf, tokens, 1, _lin_depth(lin.n_in), const_mults=lin.n_in * lin.n_out,
                      mult_limit=_ceil(lin.n_in * lin.n_out, rf), mult_bits=(in_fmts[0].width, lin.w_fmt.width),
                      adds=lin.n_in * lin.n_out))
    p.call = _call(p.function, p, [wr, br])


@PLAN.handles(N.WindowAttention)
def _plan_window_attention(n: N.WindowAttention, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    in_fmts, out, rf, rs, st, strategy = ctx.in_fmts, ctx.out, ctx.rf, ctx.rs, ctx.st, ctx.strategy
    p.kind = "SwinWindowAttention"
    _plain(n.name, score_fmt=n.score_fmt, attn_fmt=n.attn_fmt, prob_fmt=n.softmax.prob_fmt)
    h, w = n.resolution
    wh, ww = n.window_hw
    nt, hd, ch = n.tokens, n.head_dim, n.dim
    row_mults = 2 * nt * hd + nt
    has_bias = n.rel_bias is not None
    for k, v in (("height", h), ("width", w), ("C", ch), ("heads", n.heads), ("head_dim", hd),
                 ("window_h", wh), ("window_w", ww), ("shift", n.shift), ("N", nt),
                 ("n_windows", n.n_windows), ("reuse", rf), ("strategy", int(rs)), ("has_bias", int(has_bias)),
                 ("masked", int(n.mask is not None)), ("row_mult_limit", _ceil(row_mults, rf)),
                 ("rows_buf", h if n.shift else wh), ("qkv_mult_limit", _ceil(3 * ch * ch, rf))):
        c.const(k, v)
    refs = []
    for key, lin, xf in (("q_lin", n.q, in_fmts[0]), ("k_lin", n.k, in_fmts[0]), ("v_lin", n.v, in_fmts[0]),
                         ("p_lin", n.proj, n.attn_fmt)):
        refs += list(c.linear(key, lin, xf, rf, strategy))
    af = n.q.out_fmt.frac + n.k.out_fmt.frac
    c.typ("rel_bias", n.bias_fmt, "rel_bias_t")
    if has_bias:
        c.lines.append(f"    typedef {rom_ctype(n.rel_bias)} rel_bias_code_t;")
        rb = c.array("rel_bias", n.rel_bias)
        sh = af - n.bias_fmt.frac
        bl, bh = int(n.rel_bias.min()) << sh, int(n.rel_bias.max()) << sh
    else:  # no table, no add: a 1-entry placeholder ROM the C++ never reads
        c.lines.append(f"    typedef {NO_TABLE_T} rel_bias_code_t;")
        rb = c.array("no_table", np.zeros(1, dtype=np.int64))
        bl = bh = 0
    pl, ph = _prod_rng(_rng(n.q.out_fmt), _rng(n.k.out_fmt))
    c.typ("score_acc", acc_fmt(min(bl, 0) + hd * min(pl, 0), max(bh, 0) + hd * max(ph, 0), af),
          "score_acc_t")
    vf = n.v.out_fmt
    pvl, pvh = _prod_rng((min(0, n.softmax.prob_fmt.min_code), n.softmax.prob_fmt.max_code), _rng(vf))
    c.typ("pv_acc", acc_fmt(nt * min(pvl, 0), nt * max(pvh, 0), n.softmax.prob_fmt.frac + vf.frac),
          "pv_acc_t")
    c.typ("attn", n.attn_fmt, "attn_t")
    if n.softmax.score_fmt != n.score_fmt:
        raise PlanError(f"{n.name}: softmax score format differs from score_fmt")
    e, r = c.softmax("sm", n.softmax)
    if n.mask is None:
        p.function = "window_attention_s" if st else "window_attention"
        p.call = _call(p.function, p, [*refs, rb, e, r])
    else:  # second input: the TokenMask layer's (H, W, 1) codes
        p.function = "window_attention_ms" if st else "window_attention_m"
        p.call = (f"swin::{p.function}<{{input_t}}, {{input2_t}}, {{output_t}}, config{{index}}>"
                  f"({{input}}, {{input2}}, {{output}}, {', '.join([*refs, rb, e, r])});")
    wn, xw = n.n_windows, in_fmts[0].width
    if st:  # line buffer of `window_h` rows, or (cyclic shift) the whole map: C banks each
        rbuf = h if n.shift else wh
        p.lag_tokens = rbuf * w
        u.append(Unit("Chunks/Read", 1, rbuf * w, h // rbuf, 2, arrays=(ArrayUse("xb", ch, xw),),
                      tables=(TableUse("xb", rbuf * w, ch * xw, 1, "ram"),)))
    u.append(Unit("Windows/Gather", 1, nt, wn, 3, arrays=(ArrayUse("xw", ch, xw),)))
    if rs:
        for key, lin in (("q_lin", n.q), ("k_lin", n.k), ("v_lin", n.v)):
            u += _lin_units(key, lin, in_fmts[0], rf, wn * nt)
    else:
        u.append(Unit("QKV", rf, nt, wn, _lin_depth(ch), const_mults=3 * ch * ch,
                      mult_limit=_ceil(3 * ch * ch, rf), mult_bits=(xw, n.q.w_fmt.width), adds=3 * ch * ch))
    sm = n.softmax
    qkv_banks = tuple(ArrayUse(k, nt * hd, f.width) for k, f in (("q", n.q.out_fmt), ("k", n.k.out_fmt),
                                                                ("v", vf)))
    tabs = (TableUse("exp_table", sm.exp.size, sm.exp.out_fmt.width, nt, "registers"),
            *((TableUse("rel_bias", n.rel_bias.size, n.bias_fmt.width, nt, "registers"),) if has_bias else ()),
            TableUse("recip_table", sm.recip.size, sm.recip.out_fmt.width, 1, "rom"))
    u.append(Unit("Heads/Rows", rf, nt, wn * n.heads, 10 + _ceil(_log2(hd) + _log2(nt), 2), var_mults=row_mults,
                  mult_limit=_ceil(row_mults, rf), mult_bits=(max(n.q.out_fmt.width, vf.width),
                                                              max(n.k.out_fmt.width, sm.prob_fmt.width)),
                  adds=2 * nt * hd, tables=tabs, arrays=(*qkv_banks, ArrayUse("o", ch, n.attn_fmt.width))))
    if rs:
        u += _lin_units("p_lin", n.proj, n.attn_fmt, rf, wn * nt)
    else:
        u.append(Unit("Proj", rf, nt, wn, _lin_depth(ch), const_mults=ch * ch, mult_limit=_ceil(ch * ch, rf),
                      mult_bits=(n.attn_fmt.width, n.proj.w_fmt.width), adds=ch * ch))
    u.append(Unit("Windows/Scatter", 1, nt, wn, 2, arrays=(ArrayUse("yw", ch, out.fmt.width),)))
    if st:
        u.append(Unit("Chunks/Write", 1, rbuf * w, h // rbuf, 2, arrays=(ArrayUse("yb", ch, out.fmt.width),),
                      tables=(TableUse("yb", rbuf * w, ch * out.fmt.width, 1, "ram"),)))


@PLAN.handles(N.Mlp)
def _plan_mlp(n: N.Mlp, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    info, in_fmts, rf, rs, sfx, st, strategy = ctx.info, ctx.in_fmts, ctx.rf, ctx.rs, ctx.sfx, ctx.st, ctx.strategy
    p.kind = "SwinMlp"
    shape = info[n.src].shape
    tokens = int(np.prod(shape[:-1]))
    ch, hid = shape[-1], n.fc1.n_out
    for k, v in (("tokens", tokens), ("C", ch), ("gelu", int(n.act == "gelu")), ("reuse", rf)):
        c.const(k, v)
    w1, b1 = c.linear("fc1", n.fc1, in_fmts[0], rf, strategy)
    c.typ("hidden", n.hidden_fmt, "hidden_t")
    if n.act == "relu":
        c.chan("hidden_chan", n.hidden_fmt, hid)
    else:
        _plain(n.name, hidden_fmt=n.hidden_fmt)  # the GELU table's output
    w2, b2 = c.linear("fc2", n.fc2, n.hidden_fmt, rf, strategy)
    if n.gelu is not None:
        g = c.lut("gelu_lut", n.gelu, n.fc1.out_fmt.width + 1)
        gt = (TableUse("gelu_table", n.gelu.size, n.gelu.out_fmt.width, 1 if rs else hid,
                       "rom" if rs else "registers"),)
    else:
        c.lines.append(f"    struct gelu_lut {{ typedef hidden_t out_t; typedef {NO_TABLE_T} code_t;"
                       " static const int size = 1, shift = 0, calc_w = 2;"
                       " static const long long offset = 0; };")
        g = c.array("no_table", np.zeros(1, dtype=np.int64))
        gt = ()
    p.function = "mlp" + sfx + ("_s" if st else "")
    p.call = _call(p.function, p, [w1, b1, w2, b2, g])
    if rs:
        u += _lin_units("fc1", n.fc1, in_fmts[0], rf, tokens)
        u.append(Unit("Tokens/Act", 1, hid, tokens, 2, tables=gt))
        u += _lin_units("fc2", n.fc2, n.hidden_fmt, rf, tokens)
    else:
        k2 = 2 * ch * hid
        u.append(Unit("Tokens", rf, tokens, 1, _lin_depth(ch) + _lin_depth(hid) + 1, const_mults=k2,
                      mult_limit=_ceil(k2, rf), mult_bits=(max(in_fmts[0].width, n.hidden_fmt.width),
                                                           max(n.fc1.w_fmt.width, n.fc2.w_fmt.width)),
                      adds=k2, tables=gt))


@PLAN.handles(N.LayerNorm)
def _plan_layer_norm(n: N.LayerNorm, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    info, in_fmts, rf, rs, sfx, st = ctx.info, ctx.in_fmts, ctx.rf, ctx.rs, ctx.sfx, ctx.st
    p.kind = "SwinLayerNorm"
    shape = info[n.src].shape
    tokens, ch = int(np.prod(shape[:-1])), shape[-1]
    c.const("tokens", tokens)
    c.const("reuse", rf)
    gm, bt, t = c.layernorm("ln", n, in_fmts[0], ch)
    p.function = "layernorm" + sfx + ("_s" if st else "")
    p.call = _call(p.function, p, [gm, bt, t])
    u += _ln_units("Tokens", n, in_fmts[0], ch, tokens, rf, rs)


@PLAN.handles(N.PatchMerging)
def _plan_patch_merging(n: N.PatchMerging, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    info, in_fmts, rf, rs, sfx, st, strategy = ctx.info, ctx.in_fmts, ctx.rf, ctx.rs, ctx.sfx, ctx.st, ctx.strategy
    p.kind = "SwinPatchMerging"
    h, w, ch = info[n.src].shape
    for k, v in (("height", h), ("width", w), ("C", ch), ("has_norm", int(n.norm is not None)),
                 ("reuse", rf)):
        c.const(k, v)
    if n.norm is not None:
        gm, bt, t = c.layernorm("ln", n.norm, in_fmts[0], 4 * ch)
        c.typ("cat", n.norm.out_fmt, "cat_t")
        lin_in = n.norm.out_fmt
    else:
        c.typ("cat", in_fmts[0], "cat_t")
        c.lines.append(f"    struct ln {{ typedef {NO_TABLE_T} gc_t; typedef {NO_TABLE_T} bc_t;"
                       f" struct rsqrt_lut {{ typedef {NO_TABLE_T} code_t; }}; }};")
        gm = bt = t = c.array("no_table", np.zeros(1, dtype=np.int64))
        lin_in = in_fmts[0]
    lin = n.linear
    wr, br = c.linear("lin", lin, lin_in, rf, strategy)
    p.function = "patch_merging" + sfx + ("_s" if st else "")
    p.call = _call(p.function, p, [wr, br, gm, bt, t])
    tokens = (h // 2) * (w // 2)
    if st:
        p.lag_tokens = 2 * w
        u.append(Unit("Rows/Read", 1, 2 * w, h // 2, 2, arrays=(ArrayUse("rb", 4 * ch, in_fmts[0].width),)))
    if rs:
        u.append(Unit("Tokens/Gather", 1, 4 * ch, tokens, 2))
        if n.norm is not None:
            u += _ln_units("Tokens/Norm", n.norm, in_fmts[0], 4 * ch, tokens, rf, True)
        u += _lin_units("lin", lin, lin_in, rf, tokens)
    else:
        cm, vm, tabs = lin.n_in * lin.n_out, 0, ()
        if n.norm is not None:
            lu = _ln_units("Tokens", n.norm, in_fmts[0], 4 * ch, tokens, rf, False)[0]
            cm, vm, tabs = cm + lu.const_mults, lu.var_mults, lu.tables
        u.append(Unit("Tokens", rf, tokens, 1, _lin_depth(lin.n_in) + (8 if n.norm is not None else 0),
                      const_mults=cm, var_mults=vm, mult_limit=_ceil(cm + vm, rf),
                      mult_bits=(lin_in.width, lin.w_fmt.width), adds=cm + vm, tables=tabs))


@PLAN.handles(N.Add)
def _plan_add(n: N.Add, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    in_fmts, out, st = ctx.in_fmts, ctx.out, ctx.st
    p.kind = "SwinAdd"
    fa, fb = in_fmts
    f = max(fa.frac, fb.frac)
    (al, ah), (bl, bh) = _rng(fa, f), _rng(fb, f)
    ch = int(out.shape[-1])
    c.const("n", int(np.prod(out.shape)))
    c.const("C", ch)
    c.typ("sum", acc_fmt(al + bl, ah + bh, f), "sum_t")
    c.chan("out_chan", out.fmt, ch)
    p.function = "add_s" if st else "add"
    p.call = (f"swin::{p.function}<{{input_t}}, {{input2_t}}, {{output_t}}, config{{index}}>"
              "({input}, {input2}, {output});")
    u.append(Unit("Tokens", 1, int(np.prod(out.shape)) // ch, 1, 2, adds=ch))


@PLAN.handles(N.Pool)
def _plan_pool(n: N.Pool, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    info, in_fmts, st = ctx.info, ctx.in_fmts, ctx.st
    p.kind = "SwinPool"
    shape = info[n.src].shape
    tokens = int(np.prod(shape[:-1]))
    c.const("tokens", tokens)
    c.const("C", shape[-1])
    xl, xh = _rng(in_fmts[0])
    c.typ("sum", acc_fmt(min(0, tokens * xl), max(0, tokens * xh), in_fmts[0].frac), "sum_t")
    c.chan("out_chan", ctx.out.fmt, shape[-1])
    if n.mask is None:
        inv_w = max(1, int(n.inv_n).bit_length())
        c.typ("inv", Fmt(False, inv_w, inv_w - n.inv_frac), "inv_t")
        c.const("inv_code", n.inv_n)
        p.function = "pool_s" if st else "pool"
        p.call = _call(p.function, p, [])
    else:  # masked: sum of real tokens times inv_table[count] (a ROM of tokens + 1 entries)
        assert n.inv_table is not None
        if n.inv_table.shape != (tokens + 1,):
            raise PlanError(f"{n.name}: inv_table has {n.inv_table.size} entries, the pool needs "
                            f"{tokens + 1} (one per token count 0..{tokens})")
        inv_w = max(1, int(n.inv_table.max()).bit_length())
        c.typ("inv", Fmt(False, inv_w, inv_w - n.inv_frac), "inv_t")
        c.lines.append(f"    typedef {rom_ctype(n.inv_table)} inv_code_t;")
        c.lines.append(f"    typedef ap_uint<{max(1, tokens.bit_length())}> count_t;")
        it = c.array("inv_table", n.inv_table)
        p.function = "pool_ms" if st else "pool_m"
        p.call = (f"swin::{p.function}<{{input_t}}, {{input2_t}}, {{output_t}}, config{{index}}>"
                  f"({{input}}, {{input2}}, {{output}}, {it});")
    inv_t = (TableUse("inv_table", tokens + 1, inv_w, 1, "rom"),) if n.mask is not None else ()
    u.append(Unit("Tokens", 1, tokens, 1, 2, adds=shape[-1]))
    u.append(Unit("Scale", 1, 1, 1, 3, const_mults=shape[-1], mult_limit=shape[-1], mult_bits=(inv_w, inv_w),
                  tables=inv_t))


@PLAN.handles(N.TokenMask)
def _plan_token_mask(n: N.TokenMask, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    model, info, st = ctx.model, ctx.info, ctx.st
    p.kind = "SwinTokenMask"
    shape = info[n.src].shape
    readers = [m.name for m in model.nodes if n.name in m.inputs]
    if st and len(readers) > 7:
        raise PlanError(f"{n.name}: the padding mask is read by {len(readers)} layers, but hls4ml's io_stream "
                        "clones a stream into at most 7; use --io-type io_parallel or fewer attention blocks")
    tokens = int(np.prod(shape[:-1]))
    c.const("tokens", tokens)
    c.const("C", shape[-1])
    p.function = "token_mask_s" if st else "token_mask"
    p.call = _call(p.function, p, [])
    u.append(Unit("Tokens", 1, tokens, 1, 2, adds=shape[-1]))


@PLAN.handles(N.Dense)
def _plan_dense(n: N.Dense, p: LayerPlan, ctx: _Ctx) -> None:
    c = ctx.cfg
    u = p.units
    info, in_fmts, rf, rs, sfx, st, strategy = ctx.info, ctx.in_fmts, ctx.rf, ctx.rs, ctx.sfx, ctx.st, ctx.strategy
    p.kind = "SwinDense"
    shape = info[n.src].shape
    rows = int(np.prod(shape[:-1]))
    c.const("rows", rows)
    c.const("relu", int(n.relu))
    c.const("reuse", rf)
    lin = n.linear
    wr, br = c.linear("lin", lin, in_fmts[0], rf, strategy)
    p.function = "dense" + sfx + ("_s" if st else "")
    p.call = _call(p.function, p, [wr, br])
    if rs:
        u += _lin_units("lin", lin, in_fmts[0], rf, rows)
    else:
        u.append(Unit("Rows", rf, rows, 1, _lin_depth(lin.n_in), const_mults=lin.n_in * lin.n_out,
                      mult_limit=_ceil(lin.n_in * lin.n_out, rf), mult_bits=(in_fmts[0].width, lin.w_fmt.width),
                      adds=lin.n_in * lin.n_out))


PRODUCTS = Registry("HLS token-pipeline product count", PlanError)


def _latency_limit(n: N.Node, x_fmt: Fmt, info: dict, rf: int) -> int:
    """ALLOCATION limit of a latency-strategy token pipeline: its unrolled products / reuse (at least 1)."""
    return max(1, _ceil(PRODUCTS.handler(n)(n, x_fmt, info), rf))


@PRODUCTS.handles(N.PatchEmbed, N.Dense)
def _products_linear(n: N.PatchEmbed | N.Dense, x_fmt: Fmt, info: dict) -> int:
    return n.linear.n_in * n.linear.n_out


@PRODUCTS.handles(N.Mlp)
def _products_mlp(n: N.Mlp, x_fmt: Fmt, info: dict) -> int:
    return n.fc1.n_in * n.fc1.n_out + n.fc2.n_in * n.fc2.n_out


@PRODUCTS.handles(N.LayerNorm)
def _products_layer_norm(n: N.LayerNorm, x_fmt: Fmt, info: dict) -> int:
    return sum(_ln_counts(int(info[n.src].shape[-1]), n, x_fmt))


@PRODUCTS.handles(N.PatchMerging)
def _products_patch_merging(n: N.PatchMerging, x_fmt: Fmt, info: dict) -> int:
    c = int(info[n.src].shape[-1])
    return n.linear.n_in * n.linear.n_out + (sum(_ln_counts(4 * c, n.norm, x_fmt)) if n.norm is not None else 0)


def _ln_units(label: str, ln: N.LayerNorm, x_fmt: Fmt, c: int, tokens: int, rf: int, rs: bool) -> list[Unit]:
    cm, vm = _ln_counts(c, ln, x_fmt)
    mb = (max(x_fmt.width, ln.norm_fmt.width), max(ln.g_fmt.width, ln.rsqrt.out_fmt.width))
    rs_t = TableUse("rsqrt_table", ln.rsqrt.size, ln.rsqrt.out_fmt.width, 1, "rom")
    if not rs:
        return [Unit(label, rf, tokens, 1, 12 + 2 * _ceil(_log2(c), 2), const_mults=cm, var_mults=vm,
                     mult_limit=_ceil(cm + vm, rf), mult_bits=mb, adds=3 * c, tables=(rs_t,))]
    return [Unit(f"{label}/Sum", 1, c, tokens, 2, adds=1),
            Unit(f"{label}/Var", 1, c, tokens, 4, var_mults=1, mult_limit=1, mult_bits=mb, adds=2, tables=(rs_t,)),
            Unit(f"{label}/Out", 1, c, tokens, 5, const_mults=1, var_mults=1, mult_limit=2, mult_bits=mb, adds=1)]


def plan_softmax(name: str, spec: SoftmaxSpec, rows: int, reuse_factor: int = 1) -> list[LayerPlan]:
    """Plans for a two-layer model: Input (rows*n scores) -> standalone softmax-LUT layer."""
    shape = (rows * spec.n,)
    inp = LayerPlan("Input", "x_scores", "input", [], shape, spec.score_fmt, [])
    p = LayerPlan("SwinSoftmaxLut", hls_name(name), name, ["x_scores"], shape, spec.prob_fmt, [spec.score_fmt])
    c = _Cfg(p)
    c.const("rows", rows)
    c.const("n", spec.n)
    c.const("reuse", max(1, reuse_factor))
    e, r = c.softmax("sm", spec)
    p.call = _call("softmax_lut", p, [e, r])
    p.config = c.text()
    return [inp, p]


ROM_T_MACRO = """#ifndef SWIN_ROM_T
#ifdef __SYNTHESIS__
#define SWIN_ROM_T(AP, C) AP
#else
#define SWIN_ROM_T(AP, C) C
#endif
#endif"""


def weights_header(plan: LayerPlan) -> str:
    """Generated C++ header with the layer's integer code arrays (namespace ``swin_w``), each array in the
    narrowest ap_int / ap_uint of its codes (:func:`code_ctype`, the same type its config struct names)."""
    guard = f"SWIN_W_{plan.name.upper()}_H_"
    out = [f"// generated by swinfpga from IR node {plan.ir_name!r}: integer codes (see config struct for formats)",
           f"#ifndef {guard}", f"#define {guard}", '#include "ap_int.h"', "#include <stdint.h>", ROM_T_MACRO,
           "namespace swin_w {"]
    for k, a in plan.arrays.items():
        sfx = "LL" if ctype_for(a) == "int64_t" else ""
        body = ",".join(f"{int(v)}{sfx}" for v in a)
        out.append(f"static const {rom_ctype(a)} {k}[{a.size}] = {{{body}}};")
    out += ["}", "#endif", ""]
    return "\n".join(out)
