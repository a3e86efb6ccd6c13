"""Bit-exact numpy interpreter of the IR (the reference every back end is compared with)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixed import FormatError
from ..ir import nodes as N
from ..ir.graph import Model
from . import ops
from .ops import Taps


@dataclass
class GoldenResult:
    """Output codes ``(B, ...)``, every node output and intermediate (``taps``), and overflow
    counts per requant site (``overflow[name]`` of ``elements[name]`` values)."""

    output: np.ndarray
    outputs: dict[str, np.ndarray]
    taps: dict[str, np.ndarray] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)
    elements: dict[str, int] = field(default_factory=dict)


def run(model: Model, x: np.ndarray, taps: bool = False, until: str | None = None) -> GoldenResult:
    """Run ``model`` on input codes ``x`` of shape ``(B, *input.shape)``.

    ``until`` stops after the named node (its output becomes ``output``)."""
    info = model.infer()
    inp = model.input
    x = np.asarray(x)
    if x.shape[1:] != tuple(inp.shape):
        raise FormatError(f"input shape {x.shape[1:]} != model input {tuple(inp.shape)} (batch axis first)")
    x = inp.fmt.check_codes(x, "model input")
    t = Taps(enabled=taps)
    vals: dict[str, np.ndarray] = {inp.name: x}
    last = inp.name
    for n in model.nodes[1:]:
        ins = [vals[i] for i in n.inputs]
        fm = [info[i].fmt for i in n.inputs]
        if isinstance(n, N.PatchEmbed):
            y = ops.patch_embed(n, ins[0], fm[0], t)
        elif isinstance(n, N.WindowAttention):
            y = ops.window_attention(n, ins[0], fm[0], t, ins[1] if n.mask is not None else None)
        elif isinstance(n, N.Mlp):
            y = ops.mlp(n, ins[0], fm[0], t)
        elif isinstance(n, N.LayerNorm):
            y = ops.layer_norm(n, ins[0], fm[0], t)
        elif isinstance(n, N.PatchMerging):
            y = ops.patch_merging(n, ins[0], fm[0], t)
        elif isinstance(n, N.Add):
            y = ops.add(n, ins[0], fm[0], ins[1], fm[1], t)
        elif isinstance(n, N.Pool):
            y = ops.pool(n, ins[0], fm[0], t, ins[1] if n.mask is not None else None)
        elif isinstance(n, N.TokenMask):
            y = ops.token_mask(n, ins[0], t)
        elif isinstance(n, N.Dense):
            y = ops.dense(n, ins[0], fm[0], t)
        else:  # pragma: no cover - graph validation rejects these
            raise N.IRError(f"golden model cannot run {type(n).__name__}")
        vals[n.name] = y
        last = n.name
        if until == n.name:
            break
    out = vals[until or model.output] if (until or model.output) in vals else vals[last]
    return GoldenResult(out, vals, t.values, t.overflow, t.elements)


def predict(model: Model, x: np.ndarray) -> np.ndarray:
    """Output codes only."""
    return run(model, x).output


__all__ = ["run", "predict", "GoldenResult", "Taps"]
