"""Global average pool over tokens: ``requant(sum_t x * inv_n)``; with a padding mask, padded
tokens are zeroed and the scale is ``inv_table[number of real tokens]`` (C++:
``swin_layers.h:pool``).  Kernel input: (..., T, C) tokens (golden: the map flattened; RTL: one
group), output (..., C)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir.graph import infer_pool as infer
from ..ir.nodes import Pool
from .fx import NumpyFx, Taps
from .registry import GOLDEN

NODE = Pool
__all__ = ["NODE", "infer", "kernel", "golden"]


def kernel(A: Any, n: Pool, x: Any, x_fmt: Fmt, keep: Any | None = None) -> Any:
    if keep is None:
        s = A.sum(x, -2, keepdims=False)
        return A.requant(n.name, A.scale(s, n.inv_n, n.inv_frac), x_fmt.frac + n.inv_frac, n.out_fmt)
    assert n.inv_table is not None
    inv = A.count_lookup(keep, n.inv_table, n.inv_frac, n.name)  # (..., 1)
    s = A.sum(A.mask(x, keep), -2, keepdims=False)
    return A.requant(n.name, A.mul(s, inv), x_fmt.frac + n.inv_frac, n.out_fmt)


@GOLDEN.handles(Pool)
def golden(n: Pool, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    x = ins[0]
    b, c = x.shape[0], x.shape[-1]
    keep = ins[1].reshape(b, -1, 1) if n.mask is not None else None
    return kernel(NumpyFx(taps), n, x.reshape(b, -1, c), fmts[0], keep)
