"""Residual add: both inputs aligned to the larger fraction, summed exactly, requantized to
``out_fmt`` (C++: ``swin_layers.h:add``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir.graph import infer_add as infer
from ..ir.nodes import Add
from .fx import NumpyFx, Taps
from .registry import GOLDEN

NODE = Add
__all__ = ["NODE", "infer", "kernel", "golden"]


def kernel(A: Any, n: Add, a: Any, a_fmt: Fmt, b: Any, b_fmt: Fmt) -> Any:
    f = max(a_fmt.frac, b_fmt.frac)
    return A.requant(n.name, A.add(a, a_fmt.frac, b, b_fmt.frac), f, n.out_fmt)


@GOLDEN.handles(Add)
def golden(n: Add, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    return kernel(NumpyFx(taps), n, ins[0], fmts[0], ins[1], fmts[1])
