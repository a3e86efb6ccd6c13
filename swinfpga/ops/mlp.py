"""MLP: ``fc2(act(fc1(x)))`` with ``act`` = ReLU (requant to ``hidden_fmt``) or a GELU table
(``n.gelu``, output ``hidden_fmt``).  C++: ``swin_layers.h:mlp``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir.graph import infer_mlp as infer
from ..ir.nodes import Mlp
from ..lut import Lut
from . import linear
from .fx import NumpyFx, Taps
from .registry import GOLDEN, TABLES

NODE = Mlp
__all__ = ["NODE", "infer", "kernel", "golden", "tables"]


def kernel(A: Any, n: Mlp, x: Any, x_fmt: Fmt) -> Any:
    h = linear.kernel(A, n.fc1, x, x_fmt, f"{n.name}.fc1")
    if n.act == "relu":
        hid = A.requant(f"{n.name}.act", A.relu(h), n.fc1.out_fmt.frac, n.hidden_fmt)
    else:
        assert n.gelu is not None
        hid = A.lookup(h, n.gelu)
        A.tap(f"{n.name}.act", hid)
    return linear.kernel(A, n.fc2, hid, n.hidden_fmt, f"{n.name}.fc2")


@GOLDEN.handles(Mlp)
def golden(n: Mlp, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    return kernel(NumpyFx(taps), n, ins[0], fmts[0])


@TABLES.handles(Mlp)
def tables(n: Mlp) -> list[Lut]:
    return [n.gelu] if n.gelu is not None else []
