"""Build IR models from a :class:`~swinfpga.models.SwinSpec`.

:func:`random_model` builds random weights with fixed default formats, for back-end development
and tests.  The Keras front end (:mod:`swinfpga.frontend.keras`) produces the same node names:

``input, patch_embed, [patch_norm], s{i}.merge (LayerNorm inside for ln), s{i}b{j}.norm1?, s{i}b{j}.attn,
s{i}b{j}.add1, s{i}b{j}.norm2?, s{i}b{j}.mlp, s{i}b{j}.add2, norm?, pool, head``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..fixed import ChanFmt, Fmt
from ..lut import gelu_table, rsqrt_table
from ..models import SwinSpec
from ..softmax_sizing import design_softmax
from . import nodes as N
from .graph import Model

A8 = Fmt(True, 8, 3, "RND", "SAT")  # token activations: +-4, lsb 1/32
W8 = Fmt(True, 8, 1, "RND", "SAT")  # weights: +-1, lsb 1/128
B12 = Fmt(True, 12, 3, "RND", "SAT")  # biases: +-4, lsb 1/512
S8 = Fmt(True, 8, 4, "RND", "SAT")  # attention scores: +-8, lsb 1/16
RB8 = Fmt(True, 8, 2, "RND", "SAT")  # relative position bias: +-2, lsb 1/64
H8U = Fmt(False, 8, 3, "RND", "SAT")  # ReLU hidden: 0..8, lsb 1/32
LOGIT = Fmt(True, 10, 5, "RND", "SAT")


@dataclass(frozen=True)
class BlockFormats:
    act: Fmt = A8
    weight: Fmt = W8
    bias: Fmt = B12
    score: Fmt = S8
    rel_bias: Fmt = RB8
    hidden_relu: Fmt = H8U
    logits: Fmt = LOGIT


def _lin(rng: np.random.Generator, n_in: int, n_out: int, out_fmt: Fmt, f: BlockFormats, scale: float = 1.0,
         bias: bool = True) -> N.Linear:
    w = rng.normal(0.0, 1.0 / math.sqrt(n_in), (n_in, n_out)) * scale
    b = rng.normal(0.0, 0.1, n_out) * scale if bias else None
    return N.Linear(f.weight.from_float(w), f.weight, None if b is None else f.bias.from_float(b),
                    f.bias if bias else None, out_fmt)


def _layer_norm(name: str, src: str, c: int, rng: np.random.Generator | None, out_fmt: Fmt,
                gamma: np.ndarray | None = None, beta: np.ndarray | None = None, eps: float = 1e-5) -> N.LayerNorm:
    inv_frac = 16
    mean_fmt = Fmt(True, 14, 5, "TRN", "SAT")  # frac 9
    var_fmt = Fmt(False, 16, 5, "TRN", "SAT")  # frac 11, 0..32
    rs_fmt = Fmt(False, 12, 5, "RND", "SAT")  # frac 7, up to 32
    norm_fmt = Fmt(True, 10, 4, "RND", "SAT")  # frac 6, +-8
    g_fmt = Fmt(True, 8, 2, "RND", "SAT")
    b_fmt = Fmt(True, 8, 2, "RND", "SAT")
    if gamma is None:
        gamma = 1.0 + (rng.normal(0, 0.1, c) if rng is not None else 0.0)
    if beta is None:
        beta = rng.normal(0, 0.1, c) if rng is not None else np.zeros(c)
    return N.LayerNorm(
        name, src, round(2**inv_frac / c), inv_frac, mean_fmt, var_fmt,
        rsqrt_table(f"{name}_rsqrt", var_fmt, 10, eps, rs_fmt), norm_fmt,
        g_fmt.from_float(gamma), g_fmt, b_fmt.from_float(beta), b_fmt, out_fmt,
    )




def random_model(spec: SwinSpec, seed: int = 0, formats: BlockFormats | None = None) -> Model:
    """A model of ``spec``'s architecture with random weights and fixed default formats."""
    f = formats or BlockFormats()
    rng = np.random.default_rng(seed)
    nodes: list[N.Node] = [N.Input("input", tuple(spec.img), spec.in_fmt)]
    cur = "input"
    mask = None
    if spec.pad_mask:
        if spec.patch > 1 or any(st.merge for st in spec.stages):
            raise N.IRError(f"{spec.name}: a padding mask needs one token per input position (patch <= 1, no merge)")
        nodes.append(N.TokenMask("mask", "input"))
        mask = "mask"
    if spec.patch:
        p = spec.patch
        nodes.append(N.PatchEmbed("patch_embed", cur, p, _lin(rng, p * p * spec.img[2], spec.embed, f.act, f)))
        cur = "patch_embed"
        if spec.norm == "ln":
            nodes.append(_layer_norm("patch_norm", cur, spec.embed, rng, f.act))
            cur = "patch_norm"
    for si, (st, ((h, w), c)) in enumerate(zip(spec.stages, spec.stage_dims(), strict=True)):
        if st.merge:
            mnorm = _layer_norm(f"s{si}.merge.norm", cur, 2 * c, rng, f.act) if spec.norm == "ln" else None
            nodes.append(N.PatchMerging(f"s{si}.merge", cur, _lin(rng, 2 * c, c, f.act, f), mnorm))
            cur = f"s{si}.merge"
        for bi in range(st.depth):
            pre = f"s{si}b{bi}"
            shift = spec.block_shift(si, bi)
            src = cur
            if spec.norm == "ln":
                nodes.append(_layer_norm(f"{pre}.norm1", cur, c, rng, f.act))
                src = f"{pre}.norm1"
            hd = c // st.heads
            wh, ww = spec.stage_window(si)
            nt = wh * ww
            sm = design_softmax(f"{pre}_attn_softmax", f.score, nt)
            q = _lin(rng, c, c, f.act, f, scale=hd**-0.5 * 2.0)
            k = _lin(rng, c, c, f.act, f)
            v = _lin(rng, c, c, f.act, f)
            rb = f.rel_bias.from_float(rng.normal(0, 0.5, ((2 * wh - 1) * (2 * ww - 1), st.heads)))
            attn = N.WindowAttention(
                f"{pre}.attn", src, (h, w), c, st.heads, wh if wh == ww else (wh, ww), shift,
                q=q, k=k, v=v, rel_bias=rb if spec.rel_bias else None, mask=mask,
                bias_fmt=f.rel_bias, score_fmt=f.score, softmax=sm, attn_fmt=f.act,
                proj=_lin(rng, c, c, f.act, f),
            )
            nodes.append(attn)
            nodes.append(N.Add(f"{pre}.add1", cur, attn.name, f.act))
            cur = f"{pre}.add1"
            src = cur
            if spec.norm == "ln":
                nodes.append(_layer_norm(f"{pre}.norm2", cur, c, rng, f.act))
                src = f"{pre}.norm2"
            hid = c * spec.mlp_ratio
            if spec.act == "relu":
                mlp = N.Mlp(f"{pre}.mlp", src, _lin(rng, c, hid, f.act, f), "relu", f.hidden_relu,
                            _lin(rng, hid, c, f.act, f, bias=True))
            else:
                g = gelu_table(f"{pre}_gelu", f.act, f.act)
                mlp = N.Mlp(f"{pre}.mlp", src, _lin(rng, c, hid, f.act, f), "gelu", f.act,
                            _lin(rng, hid, c, f.act, f), gelu=g)
            nodes.append(mlp)
            nodes.append(N.Add(f"{pre}.add2", cur, mlp.name, f.act))
            cur = f"{pre}.add2"
    if spec.classes:
        (h, w), c = spec.stage_dims()[-1]
        if spec.norm == "ln":
            nodes.append(_layer_norm("norm", cur, c, rng, f.act))
            cur = "norm"
        npos = h * w
        inv_frac = max(0, math.ceil(math.log2(npos))) + (0 if npos & (npos - 1) == 0 else 12)
        if mask is None:
            nodes.append(N.Pool("pool", cur, round(2**inv_frac / npos), inv_frac, f.act))
        else:
            inv_frac, table = N.masked_pool_table(npos)
            nodes.append(N.Pool("pool", cur, round(2**inv_frac / npos), inv_frac, f.act, mask=mask, inv_table=table))
        nodes.append(N.Dense("head", "pool", _lin(rng, c, spec.classes, f.logits, f)))
        cur = "head"
    return Model(spec.name, tuple(nodes), cur, {"spec": spec.name, "weights": f"random(seed={seed})"})


def chan_fmt_in(fmt: Fmt, n: int, rng: np.random.Generator, p_zero: float = 0.1) -> ChanFmt:
    """A random per-channel format of ``n`` channels inside ``fmt`` (container == ``fmt``): each channel
    drops 0-1 integer and 0-2 fraction bits, or (probability ``p_zero``) is pruned to 0 bits."""
    lo_w = 2 if fmt.signed else 1
    chans = []
    for _ in range(n):
        if rng.random() < p_zero:
            chans.append((0, 0))
            continue
        i = fmt.int_bits - int(rng.integers(0, 2))
        f = fmt.frac - int(rng.integers(0, 3))
        if i + f < lo_w:
            i, f = fmt.int_bits, fmt.frac
        chans.append((i + f, i))
    return ChanFmt(fmt.signed, fmt.width, fmt.int_bits, fmt.rounding, fmt.overflow, chans=tuple(chans))


# requantization sites that may carry per-channel formats (ChanFmt): the outputs of token-local
# layers, whose requant runs on the whole channel axis (not attention's per-head scores/probabilities)
CHAN_SITES = ("linear", "hidden", "add")


def per_channel(model: Model, seed: int = 0, sites: tuple[str, ...] = CHAN_SITES, p_zero: float = 0.1) -> Model:
    """``model`` with random per-channel formats (:func:`chan_fmt_in`, containers unchanged) on its
    requant ``sites``: ``linear`` every Linear's ``out_fmt``, ``hidden`` a ReLU MLP's ``hidden_fmt``,
    ``add`` residual outputs.  For back-end tests of :class:`~swinfpga.fixed.ChanFmt`."""
    rng = np.random.default_rng(seed)

    def lin(x: N.Linear) -> N.Linear:
        if "linear" not in sites:
            return x
        return replace(x, out_fmt=chan_fmt_in(x.out_fmt.container, x.n_out, rng, p_zero))

    out: list[N.Node] = []
    for n in model.nodes:
        kw: dict = {}
        for fld in ("linear", "q", "k", "v", "proj", "fc1", "fc2"):
            v = getattr(n, fld, None)
            if isinstance(v, N.Linear) and not (fld == "fc1" and getattr(n, "act", "") == "gelu"):  # table input
                kw[fld] = lin(v)
        if isinstance(n, N.Mlp) and n.act == "relu" and "hidden" in sites:
            kw["hidden_fmt"] = chan_fmt_in(n.hidden_fmt.container, n.fc1.n_out, rng, p_zero)
        if isinstance(n, N.Add) and "add" in sites:
            c = model.infer()[n.name].shape[-1]
            kw["out_fmt"] = chan_fmt_in(n.out_fmt.container, c, rng, p_zero)
        out.append(replace(n, **kw) if kw else n)
    return Model(model.name, tuple(out), model.output, {**model.meta, "per_channel": f"random(seed={seed})"})


def random_input(model: Model, n: int, seed: int = 0) -> np.ndarray:
    """Random input codes covering the input format's range.  With a padding mask (a
    :class:`~swinfpga.ir.nodes.TokenMask`) every other sample ends in padding (all-zero tokens):
    sample ``2j + 1`` has its last ``1 + j % tokens`` tokens zeroed, so the mask is exercised."""
    inp = model.input
    rng = np.random.default_rng(seed)
    x = rng.integers(inp.fmt.min_code, inp.fmt.max_code + 1, size=(n, *inp.shape), dtype=np.int64)
    if any(isinstance(nd, N.TokenMask) for nd in model.nodes) and len(inp.shape) == 3:
        tok = x.reshape(n, inp.shape[0] * inp.shape[1], inp.shape[2])  # a view of x
        for i in range(1, n, 2):
            tok[i, tok.shape[1] - 1 - (i // 2) % tok.shape[1]:] = 0
    return x
