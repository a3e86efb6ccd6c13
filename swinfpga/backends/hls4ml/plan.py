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
from ...fixed import Fmt, acc_fmt
from ...ir import nodes as N
from ...ir.graph import Model
from ...lut import Lut, SoftmaxSpec

HEADERS = ("swin_common.h", "swin_softmax.h", "swin_attention.h", "swin_layernorm.h", "swin_layers.h")


class PlanError(SwinfpgaError, ValueError):
    """The IR uses something the HLS templates cannot express exactly."""


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

    def array(self, name: str, codes: np.ndarray) -> str:
        self.p.arrays[name] = np.asarray(codes, dtype=np.int64).reshape(-1)
        return f"swin_w::{self.p.name}_{name}"

    def linear(self, key: str, lin: N.Linear, x_fmt: Fmt, reuse: int, ind: str = "    ") -> tuple[str, str]:
        """Emit ``struct key { n_in, n_out, reuse, w_t, b_t, acc_t, out_t }``; return (w, b) array refs."""
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
        i2 = ind + "    "
        self.lines.append(f"{ind}struct {key} {{")
        self.const("n_in", lin.n_in, i2)
        self.const("n_out", lin.n_out, i2)
        self.const("reuse", max(1, min(reuse, lin.n_in)), i2)
        self.typ(f"{key}_w", lin.w_fmt, "w_t", i2)
        self.typ(f"{key}_b", b_fmt, "b_t", i2)
        self.typ(f"{key}_acc", acc_fmt(lo, hi, af), "acc_t", i2)
        self.typ(f"{key}_out", lin.out_fmt, "out_t", i2)
        self.lines.append(f"{ind}}};")
        return self.array(f"{key}_w", w), self.array(f"{key}_b", b)

    def lut(self, key: str, lut: Lut, code_w: int, ind: str = "    ") -> str:
        i2 = ind + "    "
        self.lines.append(f"{ind}struct {key} {{")
        self.typ(f"{key}_out", lut.out_fmt, "out_t", i2)
        self.const("size", lut.size, i2)
        self.const("shift", lut.shift, i2)
        self.const("offset", lut.offset, i2)
        self.const("calc_w", max(code_w, abs(lut.offset).bit_length() + 1) + 2, i2)
        self.lines.append(f"{ind}}};")
        return self.array(f"{key}_table", lut.array())

    def softmax(self, key: str, sm: SoftmaxSpec, ind: str = "    ") -> tuple[str, str]:
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
        self.lines.append(f"{ind}}};")
        return self.array(f"{key}_gamma", ln.gamma), self.array(f"{key}_beta", ln.beta), t

    def text(self) -> str:
        return "\n".join(self.lines)


def _call(fn: str, plan: LayerPlan, args: list[str], in_t: str = "{input_t}") -> str:
    a = ", ".join(["{input}", "{output}", *args])
    return f"swin::{fn}<{in_t}, {{output_t}}, config{{index}}>({a});"


def plan_model(model: Model, reuse_factor: int = 1) -> list[LayerPlan]:
    """Plans for every IR node (the Input node becomes hls4ml's Input layer, plan kind 'Input')."""
    info = model.infer()
    plans: list[LayerPlan] = []
    rf = max(1, int(reuse_factor))
    for n in model.nodes:
        ins = [hls_name(i) for i in n.inputs]
        in_fmts = [info[i].fmt for i in n.inputs]
        out = info[n.name]
        p = LayerPlan(type(n).__name__, hls_name(n.name), n.name, ins, tuple(out.shape), out.fmt, in_fmts)
        c = _Cfg(p)
        if isinstance(n, N.Input):
            p.kind = "Input"
        elif isinstance(n, N.PatchEmbed):
            h, w, cin = info[n.src].shape
            p.kind = "SwinPatchEmbed"
            for k, v in (("height", h), ("width", w), ("cin", cin), ("patch", n.patch), ("reuse", rf)):
                c.const(k, v)
            wr, br = c.linear("lin", n.linear, in_fmts[0], rf)
            p.call = _call("patch_embed", p, [wr, br])
        elif isinstance(n, N.WindowAttention):
            p.kind = "SwinWindowAttention"
            h, w = n.resolution
            for k, v in (("height", h), ("width", w), ("C", n.dim), ("heads", n.heads), ("head_dim", n.head_dim),
                         ("window", n.window), ("shift", n.shift), ("N", n.tokens), ("n_windows", n.n_windows),
                         ("reuse", rf)):
                c.const(k, v)
            refs = []
            for key, lin, xf in (("q_lin", n.q, in_fmts[0]), ("k_lin", n.k, in_fmts[0]), ("v_lin", n.v, in_fmts[0]),
                                 ("p_lin", n.proj, n.attn_fmt)):
                refs += list(c.linear(key, lin, xf, rf))
            c.typ("rel_bias", n.bias_fmt, "rel_bias_t")
            rb = c.array("rel_bias", n.rel_bias)
            af = n.q.out_fmt.frac + n.k.out_fmt.frac
            bl, bh = int(n.rel_bias.min()) << (af - n.bias_fmt.frac), int(n.rel_bias.max()) << (af - n.bias_fmt.frac)
            pl, ph = _prod_rng(_rng(n.q.out_fmt), _rng(n.k.out_fmt))
            hd = n.head_dim
            c.typ("score_acc", acc_fmt(bl + hd * min(pl, 0), bh + hd * max(ph, 0), af), "score_acc_t")
            vf = n.v.out_fmt
            pvl, pvh = _prod_rng((0, n.softmax.prob_fmt.max_code), _rng(vf))
            c.typ("pv_acc", acc_fmt(n.tokens * min(pvl, 0), n.tokens * max(pvh, 0), n.softmax.prob_fmt.frac + vf.frac),
                  "pv_acc_t")
            c.typ("attn", n.attn_fmt, "attn_t")
            if n.softmax.score_fmt != n.score_fmt:
                raise PlanError(f"{n.name}: softmax score format differs from score_fmt")
            e, r = c.softmax("sm", n.softmax)
            fn = "window_attention" if rf == 1 else "window_attention_rf"
            p.call = _call(fn, p, [*refs, rb, e, r])
        elif isinstance(n, N.Mlp):
            p.kind = "SwinMlp"
            shape = info[n.src].shape
            tokens = int(np.prod(shape[:-1]))
            for k, v in (("tokens", tokens), ("C", shape[-1]), ("gelu", int(n.act == "gelu")), ("reuse", rf)):
                c.const(k, v)
            w1, b1 = c.linear("fc1", n.fc1, in_fmts[0], rf)
            c.typ("hidden", n.hidden_fmt, "hidden_t")
            w2, b2 = c.linear("fc2", n.fc2, n.hidden_fmt, rf)
            if n.gelu is not None:
                g = c.lut("gelu_lut", n.gelu, n.fc1.out_fmt.width + 1)
            else:
                c.lines.append("    struct gelu_lut { typedef hidden_t out_t; static const int size = 1, shift = 0,"
                               " calc_w = 2; static const long long offset = 0; };")
                g = c.array("no_table", np.zeros(1, dtype=np.int64))
            p.call = _call("mlp", p, [w1, b1, w2, b2, g])
        elif isinstance(n, N.LayerNorm):
            p.kind = "SwinLayerNorm"
            shape = info[n.src].shape
            c.const("tokens", int(np.prod(shape[:-1])))
            c.const("reuse", rf)
            gm, bt, t = c.layernorm("ln", n, in_fmts[0], shape[-1])
            p.call = _call("layernorm", p, [gm, bt, t])
        elif isinstance(n, N.PatchMerging):
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
                c.lines.append("    struct ln { };")
                gm = bt = t = c.array("no_table", np.zeros(1, dtype=np.int64))
                lin_in = in_fmts[0]
            wr, br = c.linear("lin", n.linear, lin_in, rf)
            p.call = _call("patch_merging", p, [wr, br, gm, bt, t])
        elif isinstance(n, N.Add):
            p.kind = "SwinAdd"
            fa, fb = in_fmts
            f = max(fa.frac, fb.frac)
            (al, ah), (bl, bh) = _rng(fa, f), _rng(fb, f)
            c.const("n", int(np.prod(out.shape)))
            c.typ("sum", acc_fmt(al + bl, ah + bh, f), "sum_t")
            p.call = ("swin::add<{input_t}, {input2_t}, {output_t}, config{index}>({input}, {input2}, {output});")
        elif isinstance(n, N.Pool):
            p.kind = "SwinPool"
            shape = info[n.src].shape
            tokens = int(np.prod(shape[:-1]))
            c.const("tokens", tokens)
            c.const("C", shape[-1])
            xl, xh = _rng(in_fmts[0])
            c.typ("sum", acc_fmt(min(0, tokens * xl), max(0, tokens * xh), in_fmts[0].frac), "sum_t")
            inv_w = max(1, int(n.inv_n).bit_length())
            c.typ("inv", Fmt(False, inv_w, inv_w - n.inv_frac), "inv_t")
            c.const("inv_code", n.inv_n)
            p.call = _call("pool", p, [])
        elif isinstance(n, N.Dense):
            p.kind = "SwinDense"
            shape = info[n.src].shape
            c.const("rows", int(np.prod(shape[:-1])))
            c.const("relu", int(n.relu))
            c.const("reuse", rf)
            wr, br = c.linear("lin", n.linear, in_fmts[0], rf)
            p.call = _call("dense", p, [wr, br])
        else:
            raise PlanError(f"no HLS template for IR node type {type(n).__name__}")
        p.config = c.text()
        plans.append(p)
    return plans


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


def weights_header(plan: LayerPlan) -> str:
    """Generated C++ header with the layer's integer code arrays (namespace ``swin_w``)."""
    guard = f"SWIN_W_{plan.name.upper()}_H_"
    out = [f"// generated by swinfpga from IR node {plan.ir_name!r}: integer codes (see config struct for formats)",
           f"#ifndef {guard}", f"#define {guard}", "#include <cstdint>", "namespace swin_w {"]
    ct = ctype_for(np.concatenate(list(plan.arrays.values()))) if plan.arrays else "int8_t"
    for k, a in plan.arrays.items():  # one C type per layer: the templates deduce one code type per role
        sfx = "LL" if ct == "int64_t" else ""
        body = ",".join(f"{int(v)}{sfx}" for v in a)
        out.append(f"static const {ct} {plan.name}_{k}[{a.size}] = {{{body}}};")
    out += ["}", "#endif", ""]
    return "\n".join(out)
