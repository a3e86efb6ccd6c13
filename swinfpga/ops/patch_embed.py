"""Patch embedding: non-overlapping ``patch x patch`` patches, flattened (row, col, channel), then
a :class:`~swinfpga.ir.nodes.Linear` (C++: ``swin_layers.h:patch_embed``).

The gathering differs by execution (golden: a reshape of the whole map; RTL: the planner's frame
gathers one group, ``backends/rtl/plan.py``); the kernel is the linear layer on gathered patches."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir.graph import infer_patch_embed as infer
from ..ir.nodes import PatchEmbed
from . import linear
from .fx import NumpyFx, Taps
from .registry import GOLDEN

NODE = PatchEmbed
__all__ = ["NODE", "infer", "kernel", "golden", "gather"]


def kernel(A: Any, n: PatchEmbed, patches: Any, x_fmt: Fmt) -> Any:
    return linear.kernel(A, n.linear, patches, x_fmt, n.name)


def gather(n: PatchEmbed, x: np.ndarray) -> np.ndarray:
    """(B, H, W, C) codes -> (B, H/p, W/p, p*p*C) patches."""
    b, h, w, c = x.shape
    p = n.patch
    return x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h // p, w // p, p * p * c)


@GOLDEN.handles(PatchEmbed)
def golden(n: PatchEmbed, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    patches = gather(n, ins[0])
    taps.put(f"{n.name}.patches", patches)
    return kernel(NumpyFx(taps), n, patches, fmts[0])
