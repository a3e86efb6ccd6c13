"""Integer semantics of every IR node: the definition that HLS C++ and Verilog reproduce.

Inputs and outputs are ``int64`` code arrays with a leading batch axis.  ``Taps`` collects every
intermediate (by dotted name) and per-requant overflow counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixed import Fmt
from ..ir import nodes as N
from ..lut import softmax_codes


@dataclass
class Taps:
    """Intermediates by name (``node.part``) and overflow counts by requant site."""

    enabled: bool = True
    values: dict[str, np.ndarray] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)
    elements: dict[str, int] = field(default_factory=dict)

    def put(self, name: str, v: np.ndarray) -> None:
        if self.enabled:
            self.values[name] = v

    def requant(self, name: str, acc: np.ndarray, frac_in: int, fmt: Fmt) -> np.ndarray:
        out, n = fmt.requant_count(acc, frac_in)
        self.overflow[name] = self.overflow.get(name, 0) + n
        self.elements[name] = self.elements.get(name, 0) + int(out.size)
        self.put(name + ".acc", acc)
        self.put(name, out)
        return out


def align(codes: np.ndarray, frac_from: int, frac_to: int) -> np.ndarray:
    """Exactly re-express codes at more fraction bits (``frac_to >= frac_from``)."""
    assert frac_to >= frac_from, (frac_from, frac_to)
    return np.asarray(codes, dtype=np.int64) << (frac_to - frac_from)


def linear(lin: N.Linear, x: np.ndarray, x_fmt: Fmt, taps: Taps, name: str) -> np.ndarray:
    """``requant(x @ W + b, out_fmt)``; exact int64 accumulation."""
    acc = np.einsum("...i,io->...o", x.astype(np.int64), lin.weight, dtype=np.int64)
    af = lin.acc_frac(x_fmt)
    if lin.bias is not None:
        assert lin.b_fmt is not None
        acc = acc + align(lin.bias, lin.b_fmt.frac, af)
    return taps.requant(name, acc, af, lin.out_fmt)


def patch_embed(n: N.PatchEmbed, x: np.ndarray, x_fmt: Fmt, taps: Taps) -> np.ndarray:
    b, h, w, c = x.shape
    p = n.patch
    patches = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h // p, w // p, p * p * c)
    taps.put(f"{n.name}.patches", patches)
    return linear(n.linear, patches, x_fmt, taps, n.name)


def window_attention(n: N.WindowAttention, x: np.ndarray, x_fmt: Fmt, taps: Taps,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """``mask``: (B, H, W, 1) 1 = real token; padded keys are excluded from every softmax row (a
    window of padding only attends over all its tokens: its outputs are never pooled)."""
    b, h, w, c = x.shape
    s, win, heads, hd = n.shift, n.window_hw, n.heads, n.head_dim
    if s:
        x = np.roll(x, (-s, -s), axis=(1, 2))
        if mask is not None:
            mask = np.roll(mask, (-s, -s), axis=(1, 2))
    xw = N.window_partition(x, win)  # B, nW, N, C
    taps.put(f"{n.name}.windows", xw)
    q = linear(n.q, xw, x_fmt, taps, f"{n.name}.q")
    k = linear(n.k, xw, x_fmt, taps, f"{n.name}.k")
    v = linear(n.v, xw, x_fmt, taps, f"{n.name}.v")
    nw, nt = xw.shape[1], xw.shape[2]

    def heads_split(t: np.ndarray) -> np.ndarray:  # B, nW, N, C -> B, nW, h, N, d
        return t.reshape(b, nw, nt, heads, hd).transpose(0, 1, 3, 2, 4)

    qh, kh, vh = heads_split(q), heads_split(k), heads_split(v)
    acc = np.einsum("bwhid,bwhjd->bwhij", qh, kh, dtype=np.int64)
    af = n.q.out_fmt.frac + n.k.out_fmt.frac
    acc = acc + align(n.bias_matrix(), n.bias_fmt.frac, af)[None, None]
    scores = taps.requant(f"{n.name}.scores", acc, af, n.score_fmt)
    valid = n.valid_mask()[None, :, None]  # 1, nW, 1, N, N
    if mask is not None:
        keys = N.window_partition(mask, win)[..., 0] != 0  # B, nW, N
        keys = keys | ~np.any(keys, axis=-1, keepdims=True)
        valid = valid & keys[:, :, None, None, :]
    probs = softmax_codes(n.softmax, scores, valid)
    taps.put(f"{n.name}.probs", probs)
    pv = np.einsum("bwhij,bwhjd->bwhid", probs, vh, dtype=np.int64)
    o = taps.requant(f"{n.name}.attn", pv, n.softmax.prob_fmt.frac + n.v.out_fmt.frac, n.attn_fmt)
    o = o.transpose(0, 1, 3, 2, 4).reshape(b, nw, nt, c)
    y = linear(n.proj, o, n.attn_fmt, taps, f"{n.name}.proj")
    y = N.window_reverse(y, win, h, w)
    if s:
        y = np.roll(y, (s, s), axis=(1, 2))
    return y


def mlp(n: N.Mlp, x: np.ndarray, x_fmt: Fmt, taps: Taps) -> np.ndarray:
    hpre = linear(n.fc1, x, x_fmt, taps, f"{n.name}.fc1")
    if n.act == "relu":
        hid = taps.requant(f"{n.name}.act", np.maximum(hpre, 0), n.fc1.out_fmt.frac, n.hidden_fmt)
    else:
        assert n.gelu is not None
        hid = n.gelu.lookup(hpre)
        taps.put(f"{n.name}.act", hid)
    return linear(n.fc2, hid, n.hidden_fmt, taps, f"{n.name}.fc2")


def layer_norm(n: N.LayerNorm, x: np.ndarray, x_fmt: Fmt, taps: Taps) -> np.ndarray:
    s = np.sum(x, axis=-1, keepdims=True, dtype=np.int64)
    mean = taps.requant(f"{n.name}.mean", s * n.inv_c, x_fmt.frac + n.inv_frac, n.mean_fmt)
    mf = n.mean_fmt.frac
    d = align(x, x_fmt.frac, mf) - mean
    ss = np.sum(d * d, axis=-1, keepdims=True, dtype=np.int64)
    var = taps.requant(f"{n.name}.var", ss * n.inv_c, 2 * mf + n.inv_frac, n.var_fmt)
    rs = n.rsqrt.lookup(var)
    taps.put(f"{n.name}.rsqrt", rs)
    y = taps.requant(f"{n.name}.norm", d * rs, mf + n.rsqrt.out_fmt.frac, n.norm_fmt)
    af = n.norm_fmt.frac + n.g_fmt.frac
    acc = y * n.gamma + align(n.beta, n.b_fmt.frac, af)
    return taps.requant(n.name, acc, af, n.out_fmt)


def patch_merging(n: N.PatchMerging, x: np.ndarray, x_fmt: Fmt, taps: Taps) -> np.ndarray:
    x0 = x[:, 0::2, 0::2]
    x1 = x[:, 1::2, 0::2]
    x2 = x[:, 0::2, 1::2]
    x3 = x[:, 1::2, 1::2]
    cat = np.concatenate([x0, x1, x2, x3], axis=-1)
    taps.put(f"{n.name}.concat", cat)
    if n.norm is not None:
        cat = layer_norm(n.norm, cat, x_fmt, taps)
        x_fmt = n.norm.out_fmt
    return linear(n.linear, cat, x_fmt, taps, n.name)


def add(n: N.Add, a: np.ndarray, a_fmt: Fmt, b: np.ndarray, b_fmt: Fmt, taps: Taps) -> np.ndarray:
    f = max(a_fmt.frac, b_fmt.frac)
    return taps.requant(n.name, align(a, a_fmt.frac, f) + align(b, b_fmt.frac, f), f, n.out_fmt)


def pool(n: N.Pool, x: np.ndarray, x_fmt: Fmt, taps: Taps, mask: np.ndarray | None = None) -> np.ndarray:
    if mask is None:
        s = np.sum(x.reshape(x.shape[0], -1, x.shape[-1]), axis=1, dtype=np.int64)
        return taps.requant(n.name, s * n.inv_n, x_fmt.frac + n.inv_frac, n.out_fmt)
    m = mask.reshape(x.shape[0], -1, 1)
    s = np.sum(x.reshape(x.shape[0], -1, x.shape[-1]) * m, axis=1, dtype=np.int64)
    assert n.inv_table is not None
    inv = n.inv_table[np.sum(m[..., 0], axis=1)][:, None]  # B, 1
    return taps.requant(n.name, s * inv, x_fmt.frac + n.inv_frac, n.out_fmt)


def token_mask(n: N.TokenMask, x: np.ndarray, taps: Taps) -> np.ndarray:
    y = np.any(x != 0, axis=-1, keepdims=True).astype(np.int64)
    taps.put(n.name, y)
    return y


def dense(n: N.Dense, x: np.ndarray, x_fmt: Fmt, taps: Taps) -> np.ndarray:
    y = linear(n.linear, x, x_fmt, taps, n.name)
    if n.relu:
        y = np.maximum(y, 0)
        taps.put(n.name, y)
    return y
