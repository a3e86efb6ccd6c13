"""Dense head: a :class:`~swinfpga.ir.nodes.Linear`, then an optional ReLU (C++:
``swin_layers.h:dense``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir.graph import infer_dense as infer
from ..ir.nodes import Dense
from . import linear
from .fx import NumpyFx, Taps
from .registry import GOLDEN

NODE = Dense
__all__ = ["NODE", "infer", "kernel", "golden"]


def kernel(A: Any, n: Dense, x: Any, x_fmt: Fmt) -> Any:
    y = linear.kernel(A, n.linear, x, x_fmt, n.name)
    if n.relu:
        y = A.relu(y)
        A.tap(n.name, y)
    return y


@GOLDEN.handles(Dense)
def golden(n: Dense, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    return kernel(NumpyFx(taps), n, ins[0], fmts[0])
