"""Window attention (W-MSA / SW-MSA): cyclic shift, window partition, q/k/v, scores + relative
position bias, shifted-window and padding masks, integer softmax (tables ``n.softmax.exp`` /
``n.softmax.recip``, :class:`swinfpga.lut.SoftmaxSpec`), probabilities x values, projection,
window reverse, reverse shift.  C++: ``swin_attention.h:window_attention``,
``swin_softmax.h:softmax_row``.

Shared with the RTL trace: the q/k/v/proj linear kernel (:mod:`.linear`).  Not yet shared: the
per-window score/softmax/value core (golden: all windows and heads at once with
:func:`swinfpga.lut.softmax_codes`; trace: one gathered window, ``trace.py:_attention_core`` /
``_softmax_rows``); the shift/partition/reverse stay in the callers (golden: the whole map; RTL:
the planner's window token tables)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir import nodes as N
from ..ir.graph import infer_window_attention as infer
from ..ir.nodes import WindowAttention
from ..lut import Lut, softmax_codes
from . import linear
from .fx import NumpyFx, Taps, align
from .registry import GOLDEN, TABLES

NODE = WindowAttention
__all__ = ["NODE", "infer", "qkv", "golden", "tables"]


def qkv(A: Any, n: WindowAttention, x: Any, x_fmt: Fmt) -> tuple[Any, Any, Any]:
    """Token-local q, k, v projections."""
    return (linear.kernel(A, n.q, x, x_fmt, f"{n.name}.q"), linear.kernel(A, n.k, x, x_fmt, f"{n.name}.k"),
            linear.kernel(A, n.v, x, x_fmt, f"{n.name}.v"))


@GOLDEN.handles(WindowAttention)
def golden(n: WindowAttention, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    """``ins[1]`` (with ``n.mask``): (B, H, W, 1) 1 = real token; padded keys are excluded from every
    softmax row (a window of padding only attends over all its tokens: its outputs are never pooled)."""
    A = NumpyFx(taps)
    x, x_fmt = ins[0], fmts[0]
    mask = ins[1] if n.mask is not None else None
    b, h, w, c = x.shape
    s, win, heads, hd = n.shift, n.window_hw, n.heads, n.head_dim
    if s:
        x = np.roll(x, (-s, -s), axis=(1, 2))
        if mask is not None:
            mask = np.roll(mask, (-s, -s), axis=(1, 2))
    xw = N.window_partition(x, win)  # B, nW, N, C
    taps.put(f"{n.name}.windows", xw)
    q, k, v = qkv(A, n, xw, x_fmt)
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
    y = linear.kernel(A, n.proj, o, n.attn_fmt, f"{n.name}.proj")
    y = N.window_reverse(y, win, h, w)
    if s:
        y = np.roll(y, (s, s), axis=(1, 2))
    return y


@TABLES.handles(WindowAttention)
def tables(n: WindowAttention) -> list[Lut]:
    return [n.softmax.exp, n.softmax.recip]
