"""The Keras implementation of the fixed-point array interface (swinfpga.keras.fx.KerasFx) equals the
numpy one (golden) per primitive, its trainable pieces carry gradients, and the quantized Keras
layers run the shared operator kernels (swinfpga.ops.<op>.kernel).  Whole-model bit-exactness:
tests/test_keras_bitexact.py, tests/test_keras_hgq.py, tests/test_seq.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_module

keras = require_module("keras")
require_module("quantizers")
tf = require_module("tensorflow")

from swinfpga.fixed import Fmt  # noqa: E402
from swinfpga.ops.fx import NumpyFx, Taps  # noqa: E402

M = 32  # random samples per primitive


def _fmt(signed=True, width=8, int_bits=3, rounding="RND", overflow="SAT"):
    return Fmt(signed, width, int_bits, rounding, overflow)


def _codes(rng, fmt, shape):
    return rng.integers(fmt.min_code, fmt.max_code + 1, size=(M, *shape), dtype=np.int64)


class _Const:
    """An IR-like constant linear map (codes) that KerasFx.matmul accepts (the KLinear protocol)."""

    def __init__(self, lin) -> None:
        self.lin, self.out_fmt = lin, lin.out_fmt

    def acc_frac(self, in_fmt):
        return self.lin.acc_frac(in_fmt)

    def quant_weights(self, training=False):
        b = None if self.lin.bias is None else self.lin.bias * self.lin.b_fmt.lsb
        return self.lin.weight * self.lin.w_fmt.lsb, b


def _layer(sites: dict[str, Fmt]):
    from swinfpga.keras.layers import QLayer

    return QLayer(fmts={k: f.to_json() for k, f in sites.items()}, quantized=True, name="t")


def _check(prim, args, out_frac, kfx_prim=None, sites=None):
    """``prim(A, *vals)`` on numpy codes and on KerasFx real values (``kfx_prim``: the Keras side when
    constants differ); compares the codes."""
    from swinfpga.keras.fx import KerasFx

    want = np.asarray(prim(NumpyFx(Taps()), *[c for c, _ in args]))
    A = KerasFx(_layer(sites or {}))  # noqa: N806
    vals = [tf.constant(c * f.lsb, dtype="float64") for c, f in args]
    y = np.asarray((kfx_prim or prim)(A, *vals))
    c = np.ldexp(y, out_frac)
    assert np.all(c == np.round(c)), "KerasFx values are off the fixed-point grid"
    got = c.astype(np.int64)
    assert got.shape == want.shape, (got.shape, want.shape)
    bad = np.argwhere(want != got)
    assert not len(bad), f"first mismatch at {tuple(bad[0])}: numpy {want[tuple(bad[0])]} keras {got[tuple(bad[0])]}"


def test_primitives_keras_equals_numpy():
    from swinfpga.ir.nodes import Linear
    from swinfpga.keras.fx import Param, Table
    from swinfpga.lut import Lut
    from swinfpga.softmax_sizing import design_softmax

    rng = np.random.default_rng(0)
    a_f, b_f = _fmt(), _fmt(True, 6, 2)  # frac 5, 4
    a = (_codes(rng, a_f, (3, 4)), a_f)
    b = (_codes(rng, b_f, (3, 4)), b_f)
    col = (_codes(rng, b_f, (3, 1)), b_f)
    bits_f = _fmt(False, 1, 1, "TRN", "WRAP")
    bits = (_codes(rng, bits_f, (3, 1)), bits_f)
    out = _fmt(True, 7, 2)
    for f in (_fmt(True, 5, 1), _fmt(True, 5, 3, "TRN", "SAT"), _fmt(False, 4, 1, "RND", "SAT")):
        _check(lambda A, x, f=f: A.requant("t.r", x, a_f.frac, f), [a], f.frac, sites={"r": f})
    w_f, bb_f = _fmt(True, 4, 1), _fmt(True, 6, 3)
    lin = Linear(rng.integers(-8, 8, size=(4, 5)), w_f, rng.integers(-32, 32, size=5), bb_f, out)
    _check(lambda A, x: A.matmul(x, lin, a_f), [a], lin.acc_frac(a_f),
           kfx_prim=lambda A, x: A.matmul(x, _Const(lin), a_f))
    _check(lambda A, x: A.scale(x, 11, 4), [a], a_f.frac + 4)
    _check(lambda A, x, y: A.mul(x, y), [a, b], a_f.frac + b_f.frac)
    _check(lambda A, x, y: A.mul(x, y), [a, col], a_f.frac + b_f.frac)
    g = rng.integers(-8, 8, size=4)  # within w_f: a Param saturates at its site
    _check(lambda A, x: A.mul_const(x, g, w_f), [a], a_f.frac + w_f.frac)
    _check(lambda A, x: A.mul_const(x, g, w_f), [a], a_f.frac + w_f.frac, sites={"gamma": w_f},
           kfx_prim=lambda A, x: A.mul_const(x, Param("gamma", tf.constant(g * w_f.lsb + 0.3 * w_f.lsb)), w_f))
    _check(lambda A, x, y: A.add(x, a_f.frac, y, b_f.frac), [a, b], a_f.frac)
    _check(lambda A, x, y: A.sub(x, a_f.frac, y, b_f.frac), [a, col], a_f.frac)
    _check(lambda A, x: A.add_const(x, a_f.frac, g, w_f), [a], a_f.frac)
    _check(lambda A, x: A.sum(x, -1), [a], a_f.frac)
    _check(lambda A, x: A.sum(x, -2, keepdims=False), [a], a_f.frac)
    _check(lambda A, x: A.relu(x), [a], a_f.frac)
    lut = Lut("t", "custom", a_f, a_f.min_code + 3, 2, b_f,
              tuple(int(v) for v in rng.integers(b_f.min_code, b_f.max_code + 1, size=50)))
    _check(lambda A, x: A.lookup(x, lut), [a], b_f.frac)
    _check(lambda A, x: A.lookup(x, lut), [a], b_f.frac, kfx_prim=lambda A, x: A.lookup(x, Table(lut, lambda v: v)))
    _check(lambda A, x, m: A.mask(x, m), [a, bits], a_f.frac)
    table = rng.integers(0, 100, size=4)
    _check(lambda A, m: A.count_lookup(m, table, 6, "pool"), [bits], 6)
    sparse = (a[0] * (rng.random(a[0].shape) < 0.2), a_f)  # rows of zeros occur
    _check(lambda A, x: A.any_nonzero(x), [sparse], 0)
    # the softmax kernels' primitives (KerasFx.softmax runs the kernel on them)
    _check(lambda A, x: A.max(x, -1), [a], a_f.frac)
    _check(lambda A, x: A.max(x, -2), [a], a_f.frac)
    _check(lambda A, m, x, y: A.select(m, x, a_f.frac, y, b_f.frac), [bits, a, b], a_f.frac)
    _check(lambda A, m, x: A.select(m, x, a_f.frac, -7, 2), [bits, a], a_f.frac)
    _check(lambda A, x: A.select(x[..., :1] > 0 if isinstance(x, np.ndarray) else np.asarray(x)[..., :1] > 0,
                                 x, a_f.frac, 3, 0), [a], a_f.frac)  # numpy bool keys (valid bits)
    for f in (Fmt(False, 5, 3, "TRN", "WRAP"), Fmt(True, 4, 1, "RND", "WRAP"), Fmt(False, 1, 2, "TRN", "WRAP"),
              Fmt(True, 6, 2, "RND", "SAT_SYM"), Fmt(False, 12, 5, "TRN", "SAT")):
        _check(lambda A, x, f=f: A.cast(x, a_f.frac, f), [a], f.frac)
        _check(lambda A, x, f=f: A.requant(None, x, a_f.frac, f), [a], f.frac)
    _check(lambda A, x: A.ge(x, a_f.frac, 3, 2), [a], 0)
    _check(lambda A, x: A.ge(x, a_f.frac, -5, 6), [a], 0)
    _check(lambda A, x: A.shr(x, 3), [a], a_f.frac + 3)
    ulut = Lut("u", "custom", a_f, 0, 0, b_f, tuple(int(v) for v in rng.integers(b_f.min_code, b_f.max_code, 40)))
    _check(lambda A, x: A.index(x, a_f.frac, ulut), [a], b_f.frac)  # clipped both ways
    # multi-head attention pieces and the softmax (4 tokens, 2 heads)
    sf = _fmt(True, 6, 4)
    spec = design_softmax("sm", sf, 4)
    q, k, v = (_codes(rng, a_f, (4, 4)), a_f), (_codes(rng, a_f, (4, 4)), a_f), (_codes(rng, b_f, (4, 4)), b_f)
    valid = rng.random((1, 1, 4, 4)) < 0.8
    valid[..., 0] = True

    def att(A, q, k, v):
        s = A.qk(A.heads(q, 2), A.heads(k, 2))
        s = A.requant("t.scores", s, 2 * a_f.frac, sf)
        p = A.softmax(s, spec, valid)
        return A.merge_heads(A.pv(p, A.heads(v, 2)))

    _check(att, [q, k, v], spec.prob_fmt.frac + b_f.frac, sites={"scores": sf})


def test_site_names_follow_the_kernels():
    from swinfpga.keras.fx import KerasFx

    A = KerasFx(_layer({}), sites={"fc1": "fc1.out", "act": "hidden"})  # noqa: N806
    assert [A.site_of(n) for n in ("t", "t.fc1", "t.act", "t.norm.mean", "t.probs")] == \
        ["out", "fc1.out", "hidden", "norm.mean", "probs"]


def test_trainable_pieces_have_gradients():
    """Param (trainable constants), Table (STE through a lookup), the softmax (float gradient) and
    requant (STE) pass gradients when training."""
    from swinfpga.keras.fx import KerasFx, Param, Table
    from swinfpga.lut import rsqrt_table
    from swinfpga.softmax_sizing import design_softmax

    f = _fmt(True, 10, 4)
    A = KerasFx(_layer({"g": f, "out": f, "scores": f}), training=True)  # noqa: N806
    g = tf.Variable(np.full(4, 0.75))
    x = tf.Variable(np.linspace(-2, 2, 12).reshape(3, 4))
    var_f = Fmt(False, 8, 2, "TRN", "SAT")
    rs = rsqrt_table("rs", var_f, 6, 1e-5, Fmt(False, 10, 4, "RND", "SAT"))
    spec = design_softmax("sm", f, 4)
    with tf.GradientTape(persistent=True) as tape:
        y = A.requant("t", A.mul_const(x, Param("g", g), f), 0, f)
        r = A.lookup(x * x * 0.25 + 0.5, Table(rs, lambda v: 1.0 / tf.sqrt(v + 1e-5)))
        p = A.softmax(A.requant("t.scores", x, 0, f), spec, None)
        loss = tf.reduce_sum(y) + tf.reduce_sum(r) + tf.reduce_sum(p * x)
    for what, var in (("gamma", g), ("input", x)):
        grad = tape.gradient(loss, var)
        assert grad is not None and np.any(np.asarray(grad) != 0), f"no gradient to {what}"
    assert np.any(np.asarray(tape.gradient(tf.reduce_sum(r), x)) != 0), "lookup has no gradient"
    assert np.any(np.asarray(tape.gradient(tf.reduce_sum(p * p), x)) != 0), "softmax has no gradient"


@pytest.mark.parametrize("norm,act", [("ln", "gelu"), ("bn", "relu")])
def test_quantized_layers_run_the_shared_kernels(norm, act, monkeypatch):
    """Every quantized Keras layer of a tiny model calls its operator's kernel (counted through the
    ``swinfpga.ops`` modules), and the outputs still equal the golden model's bit for bit."""
    from swinfpga import golden, ops
    from swinfpga.frontend.keras import from_keras_model
    from swinfpga.keras import build_model, calibrate, set_quantized
    from swinfpga.models import StageSpec, SwinSpec

    in_fmt = Fmt(False, 5, 1)
    spec = SwinSpec(name=f"tiny-kfx-{norm}", img=(8, 8, 1), patch=2, embed=8,
                    stages=(StageSpec(2, 2, 2, 1), StageSpec(1, 2, 2, 0, merge=True)), act=act, norm=norm,
                    classes=4)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    m = build_model(spec)
    codes = rng.integers(0, 17, (16, 8, 8, 1))
    calibrate(m, codes * in_fmt.lsb)
    set_quantized(m, True)
    calls: dict[str, int] = {}
    for mod, fn in ((ops.patch_embed, "kernel"), (ops.window_attention, "qkv"), (ops.window_attention, "core"),
                    (ops.mlp, "kernel"), (ops.layer_norm, "kernel"), (ops.patch_merging, "kernel"),
                    (ops.add, "kernel"), (ops.pool, "kernel"), (ops.dense, "kernel"), (ops.linear, "kernel")):
        key = f"{mod.__name__.rsplit('.', 1)[1]}.{fn}"
        orig = getattr(mod, fn)

        def counted(*a, _orig=orig, _key=key, **kw):
            calls[_key] = calls.get(_key, 0) + 1
            return _orig(*a, **kw)

        monkeypatch.setattr(mod, fn, counted)
    y = np.asarray(m(codes * in_fmt.lsb, training=False))
    want = {"patch_embed.kernel", "window_attention.qkv", "window_attention.core", "mlp.kernel", "add.kernel",
            "pool.kernel", "dense.kernel", "linear.kernel", "patch_merging.kernel"}
    if norm == "ln":
        want.add("layer_norm.kernel")
    missing = sorted(want - set(calls))
    assert not missing, f"quantized Keras layers did not run {missing}"
    monkeypatch.undo()
    ir = from_keras_model(m, name=spec.name)
    g = golden.run(ir, codes)
    out_fmt = ir.infer()[ir.output].fmt
    np.testing.assert_array_equal(np.ldexp(y, out_fmt.frac).astype(np.int64), g.output)
