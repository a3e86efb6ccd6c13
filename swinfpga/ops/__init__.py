"""One module per operator: its node type, shape/format inference, tables and integer kernel.

Each ``swinfpga.ops.<op>`` module exposes ``NODE`` (the IR dataclass, defined in
:mod:`swinfpga.ir.nodes` so the JSON round-trip stays generic), ``infer`` (registered in
``swinfpga.ir.graph.INFER``: the IR validates itself on construction and must not import this
package), ``kernel`` (the integer definition, written against the fixed-point array interface of
:mod:`.fx`), the golden handler (``GOLDEN``) and, where it has tables, ``tables`` (``TABLES``).
Back ends register their own handlers by node type (``backends/rtl/trace.py:TRACE``,
``backends/hls4ml/plan.py:PLAN``).  See docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from ..ir import nodes as N
from ..lut import Lut
from . import (
    add,
    dense,
    layer_norm,
    linear,
    mlp,
    patch_embed,
    patch_merging,
    pool,
    softmax,
    token_mask,
    window_attention,
)
from .fx import NumpyFx, Taps, align, softmax_codes
from .registry import GOLDEN, TABLES

MODULES = (patch_embed, window_attention, mlp, layer_norm, patch_merging, add, pool, token_mask, dense)
OP_OF: dict[type, Any] = {m.NODE: m for m in MODULES}


def node_tables(node: N.Node) -> list[Lut]:
    """Tables a node uses (none for a type without a ``TABLES`` handler)."""
    return TABLES.handler(node)(node) if type(node) in TABLES else []


__all__ = ["GOLDEN", "TABLES", "MODULES", "OP_OF", "NumpyFx", "Taps", "align", "node_tables", "linear", "softmax",
           "softmax_codes"]
