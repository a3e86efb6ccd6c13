"""LayerNorm over the channel axis (C++: ``swin_layernorm.h:layernorm``).

``mean = requant(sum(x) * inv_c)``, ``d = x - mean``, ``var = requant(sum(d*d) * inv_c)``,
``rs = rsqrt[var]`` (table ``n.rsqrt``), ``y = requant(d * rs, norm_fmt)``,
``out = requant(y * gamma + beta, out_fmt)``.  The golden model runs the kernel on whole maps
(B, H, W, C), the tracer on one group of tokens (T, C): the same code.

The sum of squares is computed without waiting for the mean: for the quantized mean ``M`` (an
integer code, saturated or not) and codes ``X`` aligned to its fraction bits, exactly
``sum((X - M)**2) = sum(X**2) + M * (C*M - 2*sum(X))``.  ``sum(X**2)`` is an adder tree beside
``sum(X)``, so after the mean only one product and one addition remain, not C products and a
second adder tree (the C++ header keeps the textbook order; the integers are identical)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir.graph import infer_layer_norm as infer
from ..ir.nodes import LayerNorm
from ..lut import Lut
from .fx import NumpyFx, Taps
from .registry import GOLDEN, TABLES

NODE = LayerNorm
__all__ = ["NODE", "infer", "kernel", "golden", "tables"]


def kernel(A: Any, n: LayerNorm, x: Any, x_fmt: Fmt) -> Any:
    s = A.sum(x, -1)
    mean = A.requant(f"{n.name}.mean", A.scale(s, n.inv_c, n.inv_frac), x_fmt.frac + n.inv_frac, n.mean_fmt)
    mf = n.mean_fmt.frac
    d = A.sub(x, x_fmt.frac, mean, mf)
    # sum(d*d) == sum(x*x) + mean * (C*mean - 2*sum(x)), exact (mf >= x_fmt.frac: IR rule)
    xf, c = x_fmt.frac, int(x.shape[-1])
    sq = A.sum(A.mul(x, x), -1)
    t = A.sub(A.scale(mean, c, 0), mf, A.scale(s, 2, 0), xf)
    ss = A.add(sq, 2 * xf, A.mul(mean, t), 2 * mf)
    var = A.requant(f"{n.name}.var", A.scale(ss, n.inv_c, n.inv_frac), 2 * mf + n.inv_frac, n.var_fmt)
    rs = A.lookup(var, n.rsqrt)
    A.tap(f"{n.name}.rsqrt", rs)
    y = A.requant(f"{n.name}.norm", A.mul(d, rs), mf + n.rsqrt.out_fmt.frac, n.norm_fmt)
    af = n.norm_fmt.frac + n.g_fmt.frac
    acc = A.add_const(A.mul_const(y, n.gamma, n.g_fmt), af, n.beta, n.b_fmt)
    return A.requant(n.name, acc, af, n.out_fmt)


@GOLDEN.handles(LayerNorm)
def golden(n: LayerNorm, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    return kernel(NumpyFx(taps), n, ins[0], fmts[0])


@TABLES.handles(LayerNorm)
def tables(n: LayerNorm) -> list[Lut]:
    return [n.rsqrt]
