"""Every IR node type has its handlers registered (golden kernel, inference, RTL trace, HLS plan),
and the numpy and da4ml implementations of the fixed-point array interface agree per primitive."""

from __future__ import annotations

import numpy as np
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


@pytest.mark.parametrize("t", COMPUTE_TYPES, ids=lambda t: t.__name__)
def test_rtl_trace_registered(t):
    from swinfpga.backends.rtl.trace import TRACE

    assert t in TRACE, f"no RTL trace handler for {t.__name__} (backends/rtl/trace.py @TRACE.handles)"


@pytest.mark.parametrize("t", list(N.NODE_TYPES.values()), ids=lambda t: t.__name__)
def test_hls_plan_registered(t):
    from swinfpga.backends.hls4ml.plan import PLAN

    assert t in PLAN, f"no HLS plan handler for {t.__name__} (backends/hls4ml/plan.py @PLAN.handles)"


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


# ----- numpy (golden) vs da4ml (RTL tracer) implementations of the fixed-point interface ----------------
M = 64  # random samples per primitive


def _fmt(signed=True, width=8, int_bits=3, rounding="RND", overflow="SAT"):
    from swinfpga.fixed import Fmt

    return Fmt(signed, width, int_bits, rounding, overflow)


def _codes(rng, fmt, shape):
    return rng.integers(fmt.min_code, fmt.max_code + 1, size=(M, *shape), dtype=np.int64)


def _both(prim, args, out_frac):
    """Run ``prim(A, *vals)`` on numpy codes and on da4ml variables; ``args``: (codes (M, ...), fmt)
    inputs.  Returns (numpy result codes, tracer result codes from da4ml's int64 interpreter)."""
    from swinfpga.backends.rtl.trace import TraceFx, _arr, _obj, tracer
    from swinfpga.ops.fx import NumpyFx, Taps

    want = np.asarray(prim(NumpyFx(Taps()), *[c for c, _ in args]))
    tr = tracer()
    sizes = [int(np.prod(c.shape[1:])) for c, _ in args]
    inp = tr.inputs((sum(sizes),))
    vals, off = [], 0
    for (c, f), n in zip(args, sizes, strict=True):
        vals.append(inp[off: off + n].quantize(*f.kif).reshape(c.shape[1:]))
        off += n
    y = prim(TraceFx(), *vals)
    comb = tr.trace(inp, _arr(np.asarray(_obj(y)).ravel()))
    x = np.concatenate([c.reshape(M, -1) * f.lsb for c, f in args], axis=1)
    got = np.round(np.asarray(comb.predict(x)) * 2.0**out_frac).astype(np.int64).reshape(want.shape)
    return want, got


def _check(prim, args, out_frac):
    want, got = _both(prim, args, out_frac)
    bad = np.argwhere(want != got)
    assert not len(bad), f"first mismatch at {tuple(bad[0])}: numpy {want[tuple(bad[0])]} tracer {got[tuple(bad[0])]}"


def test_primitives_numpy_equals_tracer():
    pytest.importorskip("da4ml")
    from swinfpga.ir.nodes import Linear
    from swinfpga.lut import Lut

    rng = np.random.default_rng(0)
    a_f, b_f = _fmt(), _fmt(True, 6, 2)  # frac 5, 4
    a = (_codes(rng, a_f, (3, 4)), a_f)
    b = (_codes(rng, b_f, (3, 4)), b_f)
    col = (_codes(rng, b_f, (3, 1)), b_f)
    bits_f = _fmt(False, 1, 1, "TRN", "WRAP")
    bits = (_codes(rng, bits_f, (3, 1)), bits_f)
    out = _fmt(True, 7, 2)
    _check(lambda A, x: A.requant("r", x, a_f.frac, _fmt(True, 5, 1)), [a], 4)
    _check(lambda A, x: A.requant("r", x, a_f.frac, _fmt(True, 5, 3, "TRN", "WRAP")), [a], 2)
    w_f, bb_f = _fmt(True, 4, 1), _fmt(True, 6, 3)
    lin = Linear(rng.integers(-8, 8, size=(4, 5)), w_f, rng.integers(-32, 32, size=5), bb_f, out)
    _check(lambda A, x: A.matmul(x, lin, a_f), [a], lin.acc_frac(a_f))
    _check(lambda A, x: A.requant("l", A.matmul(x, lin, a_f), lin.acc_frac(a_f), out), [a], out.frac)
    _check(lambda A, x: A.scale(x, 11, 4), [a], a_f.frac + 4)
    _check(lambda A, x, y: A.mul(x, y), [a, b], a_f.frac + b_f.frac)
    _check(lambda A, x, y: A.mul(x, y), [a, col], a_f.frac + b_f.frac)
    g = rng.integers(-16, 16, size=4)
    _check(lambda A, x: A.mul_const(x, g, w_f), [a], a_f.frac + w_f.frac)
    _check(lambda A, x, y: A.add(x, a_f.frac, y, b_f.frac), [a, b], a_f.frac)
    _check(lambda A, x, y: A.sub(x, a_f.frac, y, b_f.frac), [a, col], a_f.frac)
    _check(lambda A, x: A.add_const(x, a_f.frac, g, w_f), [a], a_f.frac)
    _check(lambda A, x: A.sum(x, -1), [a], a_f.frac)
    _check(lambda A, x: A.sum(x, -2, keepdims=False), [a], a_f.frac)
    _check(lambda A, x: A.relu(x), [a], a_f.frac)
    lut = Lut("t", "custom", a_f, a_f.min_code + 3, 2, b_f,
              tuple(int(v) for v in rng.integers(b_f.min_code, b_f.max_code + 1, size=50)))
    _check(lambda A, x: A.lookup(x, lut), [a], b_f.frac)
    _check(lambda A, x, m: A.mask(x, m), [a, bits], a_f.frac)
    table = rng.integers(0, 100, size=4)
    _check(lambda A, m: A.count_lookup(m, table, 6, "pool"), [bits], 6)
    sparse = (a[0] * (rng.random(a[0].shape) < 0.2), a_f)  # rows of zeros occur
    _check(lambda A, x: A.any_nonzero(x), [sparse], 0)
    # multi-head pieces of attention (numpy: a heads axis; tracer: per-head lists of slices)
    q, k, v = a, (_codes(rng, a_f, (3, 4)), a_f), (_codes(rng, b_f, (3, 4)), b_f)

    def att(A, q, k, v):
        s = A.qk(A.heads(q, 2), A.heads(k, 2))
        s = A.requant("s", s, 2 * a_f.frac, _fmt(True, 6, 4))
        return A.merge_heads(A.pv(s, A.heads(v, 2)))

    _check(att, [q, k, v], 2 + b_f.frac)


def test_softmax_primitives_numpy_equals_tracer():
    """The primitives the softmax kernel adds (max, select, cast, ge, shr, index) agree."""
    pytest.importorskip("da4ml")
    from swinfpga.lut import Lut

    rng = np.random.default_rng(1)
    a_f, u_f = _fmt(), _fmt(False, 9, 4, "TRN", "WRAP")  # frac 5, 5
    a = (_codes(rng, a_f, (3, 4)), a_f)
    u = (_codes(rng, u_f, (3, 1)), u_f)
    bits_f = _fmt(False, 1, 1, "TRN", "WRAP")
    bits = (_codes(rng, bits_f, (3, 4)), bits_f)
    col_bits = (_codes(rng, bits_f, (3, 1)), bits_f)
    _check(lambda A, x: A.max(x, -1), [a], a_f.frac)
    _check(lambda A, x, m: A.select(m, x, a_f.frac, -7, 2), [a, bits], a_f.frac)
    _check(lambda A, x, y, m: A.select(m, x, a_f.frac, y, u_f.frac), [a, u, col_bits], a_f.frac)
    _check(lambda A, x, y, m: A.select(m, A.shr(y, 2), u_f.frac + 2, x, a_f.frac), [a, u, col_bits], u_f.frac + 2)
    for fmt in (_fmt(False, 6, 3, "TRN", "WRAP"), _fmt(False, 1, 3, "TRN", "WRAP"), _fmt(False, 5, 0, "TRN", "WRAP")):
        _check(lambda A, x, fmt=fmt: A.cast(x, u_f.frac, fmt), [u], fmt.frac)
    for code, frac in ((4, 0), (37, 3), (0, 0)):
        _check(lambda A, x, code=code, frac=frac: A.ge(x, u_f.frac, code, frac), [u], 0)
    lut = Lut("t", "custom", u_f, 7, 1, a_f, tuple(int(v) for v in rng.integers(a_f.min_code, a_f.max_code + 1, 20)))
    _check(lambda A, x: A.index(A.cast(x, u_f.frac, _fmt(False, 5, 0, "TRN", "WRAP")), 5, lut), [u], a_f.frac)


def test_softmax_is_one_kernel_per_kind():
    """Every softmax kind has a registered kernel, and golden and tracer run the same one (a kernel
    replaced in the registry changes both)."""
    from swinfpga.lut import SOFTMAX_KINDS
    from swinfpga.ops import softmax

    assert set(softmax.KINDS) == set(SOFTMAX_KINDS)


def test_rtl_planner_uses_roles_not_node_types():
    """backends/rtl/plan.py never switches on IR node types: structure comes from the roles of
    backends/rtl/roles.py (unregistered types are token-local)."""
    import ast
    from pathlib import Path

    from swinfpga.backends.rtl import plan
    from swinfpga.backends.rtl.roles import TOKEN_LOCAL, reads_writes, role, sub_value
    from swinfpga.ir.build import random_model
    from swinfpga.models import SWIN_DIGITS_LN

    tree = ast.parse(Path(plan.__file__).read_text())
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and ast.unparse(c.func) == "isinstance"]
    switches = [ast.unparse(c) for c in calls if "N." in ast.unparse(c.args[1])]
    assert switches == []
    m = random_model(SWIN_DIGITS_LN)
    kinds = {type(n).__name__: role(n) for n in m.nodes}
    assert kinds["PatchEmbed"].prefix == "patch_embed" and kinds["PatchMerging"].prefix == "merge"
    assert kinds["WindowAttention"].windowed and kinds["Pool"].pooled and kinds["LayerNorm"].norm
    assert kinds["Mlp"] is TOKEN_LOCAL and kinds["Add"] is TOKEN_LOCAL
    att = next(n for n in m.nodes if type(n).__name__ == "WindowAttention")
    assert reads_writes(att, "core") == ([f"{att.name}.q", f"{att.name}.k", f"{att.name}.v"], [f"{att.name}.o"])
    assert reads_writes(att, "full") == (list(att.inputs), [att.name])
    assert sub_value(att, "o") == (att.attn_fmt, att.proj.n_in)


def test_split_phases_have_trace_handlers():
    """A node type whose RTL role splits it into phases (balanced segments) has a tracer handler for
    them (backends/rtl/trace.py:TRACE_PHASES) and writes the values its role declares."""
    pytest.importorskip("da4ml")
    from swinfpga.backends.rtl.roles import ROLES, role
    from swinfpga.backends.rtl.trace import TRACE_PHASES
    from swinfpga.ir.build import random_model
    from swinfpga.models import SWIN_DIGITS

    m = random_model(SWIN_DIGITS)
    split = {type(n) for n in m.nodes if type(n) in ROLES and [p for p, _ in role(n).phases if p != "full"]}
    assert split and split <= TRACE_PHASES.types()


def test_hls_planner_has_no_node_type_switches():
    """backends/hls4ml/plan.py dispatches per node type through registries (PLAN, PRODUCTS), never an
    ``isinstance(n, N.<Type>)`` chain."""
    import ast
    from pathlib import Path

    from swinfpga.backends.hls4ml import plan

    tree = ast.parse(Path(plan.__file__).read_text())
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and ast.unparse(c.func) == "isinstance"]
    assert [ast.unparse(c) for c in calls if "N." in ast.unparse(c.args[1])] == []
