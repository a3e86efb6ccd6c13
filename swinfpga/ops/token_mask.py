"""Token mask: 1 where any input code of a token is non-zero (padding tokens are all zero); the
bits feed ``WindowAttention.mask`` and ``Pool.mask``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import Fmt
from ..ir.graph import infer_token_mask as infer
from ..ir.nodes import TokenMask
from .fx import NumpyFx, Taps
from .registry import GOLDEN

NODE = TokenMask
__all__ = ["NODE", "infer", "kernel", "golden"]


def kernel(A: Any, n: TokenMask, x: Any) -> Any:
    y = A.any_nonzero(x)
    A.tap(n.name, y)
    return y


@GOLDEN.handles(TokenMask)
def golden(n: TokenMask, ins: list[np.ndarray], fmts: list[Fmt], taps: Taps) -> np.ndarray:
    return kernel(NumpyFx(taps), n, ins[0])
