"""Bit-exact numpy interpreter of the IR (the reference every back end is compared with): each node
runs its operator kernel (:mod:`swinfpga.ops`) on the numpy implementation of the fixed-point
interface, dispatched through the ``GOLDEN`` registry."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixed import FormatError
from ..ir.graph import Model
from ..ops import GOLDEN, Taps


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
        y = GOLDEN.handler(n)(n, ins, fm, t)
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
