"""Window attention (W-MSA / SW-MSA): cyclic shift, window partition, q/k/v, scores + relative
position bias, shifted-window and padding masks, integer softmax (tables ``n.softmax.exp`` /
``n.softmax.recip``, :class:`swinfpga.lut.SoftmaxSpec`), probabilities x values, projection,
window reverse, reverse shift.  C++: ``swin_attention.h:window_attention``,
``swin_softmax.h:softmax_row``.

Shared with the RTL trace: :func:`qkv`, :func:`core` (scores + bias, softmax, probabilities x
values, per head) and the projection (:mod:`.linear`).  The golden model runs them on every
window at once (batch and window axes first), the tracer on one gathered window.  Kept in the
callers: the cyclic shift, window partition and reverse (golden: the whole map; RTL: the planner's
window token tables) and the valid bits (shifted-window regions, padding keys).  The softmax is the
interface primitive ``A.softmax``: NumpyFx and TraceFx run its one kernel (:mod:`.softmax`) per head."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir import nodes as N
from ..ir.graph import infer_window_attention as infer
from ..ir.nodes import WindowAttention
from ..lut import Lut
from . import linear
from .fx import NumpyFx, Taps
from .registry import GOLDEN, TABLES

NODE = WindowAttention
__all__ = ["NODE", "infer", "qkv", "core", "golden", "tables"]


def qkv(A: Any, n: WindowAttention, x: Any, x_fmt: Fmt) -> tuple[Any, Any, Any]:
    """Token-local q, k, v projections."""
    return (linear.kernel(A, n.q, x, x_fmt, f"{n.name}.q"), linear.kernel(A, n.k, x, x_fmt, f"{n.name}.k"),
            linear.kernel(A, n.v, x, x_fmt, f"{n.name}.v"))


def core(A: Any, n: WindowAttention, q: Any, k: Any, v: Any, valid: Any, bias: Any) -> Any:
    """Query rows ``q`` (..., R, C) of a window against its keys/values ``k``, ``v`` (..., N, C):
    ``scores = requant(q.k + bias, score_fmt)``, softmax per row (``valid``: see ``fx.softmax``),
    ``requant(probs @ v, attn_fmt)``, heads joined: (..., R, C) codes of ``n.attn_fmt``.
    ``bias``: (heads, R, N) of ``n.bias_fmt``."""
    qh, kh, vh = A.heads(q, n.heads), A.heads(k, n.heads), A.heads(v, n.heads)
    af = n.q.out_fmt.frac + n.k.out_fmt.frac
    acc = A.add(A.qk(qh, kh), af, bias, n.bias_fmt.frac)
    scores = A.requant(f"{n.name}.scores", acc, af, n.score_fmt)
    probs = A.softmax(scores, n.softmax, valid)
    A.tap(f"{n.name}.probs", probs)
    o = A.requant(f"{n.name}.attn", A.pv(probs, vh), n.softmax.prob_fmt.frac + n.v.out_fmt.frac, n.attn_fmt)
    return A.merge_heads(o)


@GOLDEN.handles(WindowAttention)
def golden(n: WindowAttention, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    """``ins[1]`` (with ``n.mask``): (B, H, W, 1) 1 = real token; padded keys are excluded from every
    softmax row (a window of padding only attends over all its tokens: its outputs are never pooled)."""
    A = NumpyFx(taps)
    x, x_fmt = ins[0], fmts[0]
    mask = ins[1] if n.mask is not None else None
    b, h, w, c = x.shape
    s, win = n.shift, n.window_hw
    if s:
        x = np.roll(x, (-s, -s), axis=(1, 2))
        if mask is not None:
            mask = np.roll(mask, (-s, -s), axis=(1, 2))
    xw = N.window_partition(x, win)  # B, nW, N, C
    taps.put(f"{n.name}.windows", xw)
    q, k, v = qkv(A, n, xw, x_fmt)
    valid = n.valid_mask()[None, :, None]  # 1, nW, 1, N, N
    if mask is not None:
        keys = N.window_partition(mask, win)[..., 0] != 0  # B, nW, N
        keys = keys | ~np.any(keys, axis=-1, keepdims=True)
        valid = valid & keys[:, :, None, None, :]
    o = core(A, n, q, k, v, valid, n.bias_matrix())
    y = linear.kernel(A, n.proj, o, n.attn_fmt, f"{n.name}.proj")
    y = N.window_reverse(y, win, h, w)
    if s:
        y = np.roll(y, (s, s), axis=(1, 2))
    return y


@TABLES.handles(WindowAttention)
def tables(n: WindowAttention) -> list[Lut]:
    return [n.softmax.exp, n.softmax.recip]
