"""Every IR node type has its handlers registered (golden kernel, inference, RTL trace, HLS plan),
and the numpy and da4ml implementations of the fixed-point array interface agree per primitive."""

from __future__ import annotations

import pytest

from swinfpga.ir import nodes as N

COMPUTE_TYPES = [t for t in N.NODE_TYPES.values() if t is not N.Input]


@pytest.mark.parametrize("t", list(N.NODE_TYPES.values()), ids=lambda t: t.__name__)
def test_inference_registered(t):
    from swinfpga.ir.graph import INFER

    assert t in INFER, f"no inference rule for {t.__name__} (swinfpga/ir/graph.py @INFER.handles)"


@pytest.mark.parametrize("t", COMPUTE_TYPES, ids=lambda t: t.__name__)
def test_golden_and_op_module_registered(t):
    from swinfpga.ops import GOLDEN, OP_OF

    assert t in GOLDEN, f"no golden kernel for {t.__name__} (swinfpga/ops/<op>.py @GOLDEN.handles)"
    mod = OP_OF.get(t)
    assert mod is not None, f"no swinfpga.ops module for {t.__name__}"
    assert hasattr(mod, "kernel") or hasattr(mod, "qkv"), f"{mod.__name__} has no kernel"
    from swinfpga.ir.graph import INFER

    assert mod.infer is INFER.handler(t)


def test_unregistered_type_is_named():
    from dataclasses import dataclass

    from swinfpga.ir.graph import _infer_node
    from swinfpga.ops import GOLDEN

    @dataclass(frozen=True, eq=False)
    class Bogus(N.Node):
        pass

    b = Bogus("bogus")
    with pytest.raises(N.IRError, match="Bogus.*bogus"):
        _infer_node(b, [])
    with pytest.raises(Exception, match="golden model has no handler for Bogus"):
        GOLDEN.handler(b)


def test_model_tables_follow_nodes():
    from swinfpga.ir.build import random_model
    from swinfpga.models import SPECS
    from swinfpga.project import model_tables

    spec = next(iter(SPECS.values()))
    m = random_model(spec, seed=0)
    want = []
    for n in m.nodes:
        if isinstance(n, N.WindowAttention):
            want += [n.softmax.exp.name, n.softmax.recip.name]
        elif isinstance(n, N.Mlp) and n.gelu is not None:
            want.append(n.gelu.name)
        elif isinstance(n, N.LayerNorm):
            want.append(n.rsqrt.name)
        elif isinstance(n, N.PatchMerging) and n.norm is not None:
            want.append(n.norm.rsqrt.name)
    assert [t.name for t in model_tables(m)] == want and want
