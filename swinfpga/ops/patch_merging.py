"""Patch merging: 2x2 neighbours concatenated (x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2],
x[1::2, 1::2]), an optional LayerNorm, then a :class:`~swinfpga.ir.nodes.Linear` (C++:
``swin_layers.h:patch_merging``).

The gathering differs by execution (golden: slices of the whole map; RTL: the planner's frame
gathers one group, ``backends/rtl/plan.py``); the kernel starts at the concatenation."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir.graph import infer_patch_merging as infer
from ..ir.nodes import PatchMerging
from ..lut import Lut
from . import layer_norm, linear
from .fx import NumpyFx, Taps
from .registry import GOLDEN, TABLES

NODE = PatchMerging
__all__ = ["NODE", "infer", "kernel", "golden", "tables", "gather"]


def kernel(A: Any, n: PatchMerging, cat: Any, x_fmt: Fmt) -> Any:
    if n.norm is not None:
        cat = layer_norm.kernel(A, n.norm, cat, x_fmt)
        x_fmt = n.norm.out_fmt
    return linear.kernel(A, n.linear, cat, x_fmt, n.name)


def gather(x: np.ndarray) -> np.ndarray:
    """(B, H, W, C) codes -> (B, H/2, W/2, 4C)."""
    return np.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)


@GOLDEN.handles(PatchMerging)
def golden(n: PatchMerging, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    cat = gather(ins[0])
    taps.put(f"{n.name}.concat", cat)
    return kernel(NumpyFx(taps), n, cat, fmts[0])


@TABLES.handles(PatchMerging)
def tables(n: PatchMerging) -> list[Lut]:
    return [n.norm.rsqrt] if n.norm is not None else []
