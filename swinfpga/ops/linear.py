"""The shared linear piece (:class:`~swinfpga.ir.nodes.Linear`): ``requant(x @ W + b, out_fmt)``.

Used by patch embedding, attention (q, k, v, proj), MLP, patch merging and dense.  C++:
``swin_common.h:linear``."""

from __future__ import annotations

from typing import Any

from ..fixed import Fmt
from ..ir.nodes import Linear

NODE = Linear


def kernel(A: Any, lin: Linear, x: Any, x_fmt: Fmt, name: str) -> Any:
    """``x`` (..., n_in) of ``x_fmt`` -> (..., n_out) codes of ``lin.out_fmt``; exact accumulation."""
    return A.requant(name, A.matmul(x, lin, x_fmt), lin.acc_frac(x_fmt), lin.out_fmt)
