"""Keras-side building blocks vs the integer definition: HGQ2 quantizer == Fmt.from_float, LUT
gathers == Lut.lookup, exact casts == Fmt.requant, the softmax kernel on KerasFx == ops.fx.softmax_codes
(with masks), exact STE."""

from __future__ import annotations

import numpy as np
import pytest

from swinfpga.fixed import Fmt
from swinfpga.lut import gelu_table, rsqrt_table
from swinfpga.ops.fx import softmax_codes
from swinfpga.softmax_sizing import design_softmax
from tests.conftest import require_module

keras = require_module("keras")
require_module("quantizers")

from swinfpga.keras.quant import exact_cast, lut_lookup, quantize, ste  # noqa: E402


@pytest.mark.parametrize("rounding", ["TRN", "RND"])
@pytest.mark.parametrize("overflow", ["SAT", "SAT_SYM", "WRAP"])
@pytest.mark.parametrize("signed,width,ib", [(True, 8, 3), (False, 8, 1), (True, 6, -2), (True, 12, 9)])
def test_quantizer_matches_fmt(rounding, overflow, signed, width, ib):
    f = Fmt(signed, width, ib, rounding, overflow)
    rng = np.random.default_rng(width * 7 + ib)
    span = 2.0 ** (ib + 1)
    x = np.concatenate([rng.uniform(-span, span, 4000),
                        (np.arange(-300, 300) + 0.5) * f.lsb,  # exact ties
                        np.arange(-300, 300) * f.lsb])
    want = f.to_float(f.from_float(x))
    got = np.asarray(quantize(x, f, training=False))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rounding", ["TRN", "RND"])
@pytest.mark.parametrize("overflow", ["SAT", "SAT_SYM", "WRAP"])
@pytest.mark.parametrize("signed,width,ib", [(True, 8, 3), (False, 8, 1), (True, 6, -2), (False, 1, 3)])
@pytest.mark.parametrize("frac_in", [-1, 2, 9])
def test_exact_cast_matches_fmt_requant(rounding, overflow, signed, width, ib, frac_in):
    f = Fmt(signed, width, ib, rounding, overflow)
    rng = np.random.default_rng(width * 7 + ib + frac_in)
    c = np.concatenate([rng.integers(-(1 << 14), 1 << 14, 3000), np.arange(-300, 300)])
    got = np.asarray(exact_cast(np.ldexp(c.astype(np.float64), -frac_in), f))
    np.testing.assert_array_equal(np.ldexp(got, f.frac), f.requant(c, frac_in))


@pytest.mark.parametrize("n,score_fmt", [(1, Fmt(True, 8, 4, "RND", "SAT")), (4, Fmt(True, 8, 4, "RND", "SAT")),
                                         (9, Fmt(True, 8, 3, "RND", "SAT")), (16, Fmt(True, 10, 5, "RND", "SAT")),
                                         (49, Fmt(True, 8, 4, "RND", "SAT"))])
@pytest.mark.parametrize("valid_as", ["numpy", "tensor"])
def test_keras_softmax_matches_definition(n, score_fmt, valid_as):
    """``KerasFx.softmax``'s forward (the softmax kernel on KerasFx) == the golden kernel on NumpyFx."""
    from swinfpga.keras.fx import KerasFx

    spec = design_softmax("t", score_fmt, n)
    rng = np.random.default_rng(n)
    codes = rng.integers(score_fmt.min_code, score_fmt.max_code + 1, (300, n))
    codes[:20] = score_fmt.max_code  # all equal rows
    codes[20:40, : n // 2] = score_fmt.min_code
    valid = rng.random((300, n)) < 0.7
    valid[np.arange(300), rng.integers(0, n, 300)] = True  # >= 1 valid per row
    for v in (None, valid):
        want = softmax_codes(spec, codes, v)
        kv = v if v is None or valid_as == "numpy" else keras.ops.convert_to_tensor(v)
        got = np.asarray(KerasFx(None).softmax(keras.ops.convert_to_tensor(score_fmt.to_float(codes)), spec, kv))
        np.testing.assert_array_equal(np.ldexp(got, spec.prob_fmt.frac), want)


def test_keras_softmax_hgq2_kind_matches_definition():
    """Kind ``hgq2`` (wrapping inverse input, saturating exp input, signed wrapping output) through
    ``KerasFx.softmax`` == golden: the Keras forward is the kernel of whichever kind the spec names."""
    from swinfpga.keras.fx import KerasFx
    from swinfpga.lut import Lut, SoftmaxSpec

    rng = np.random.default_rng(3)
    score = Fmt(True, 10, 4)
    ein, eout = Fmt(True, 6, 3, "RND", "SAT"), Fmt(False, 8, 1, "RND", "SAT")
    rin, rout = Fmt(True, 7, 3, "RND", "WRAP"), Fmt(False, 8, 0, "RND", "SAT")
    exp = Lut("t_exp", "custom", ein, ein.min_code, 0, eout, tuple(int(c) for c in rng.integers(0, 256, 64)))
    rec = Lut("t_inv", "custom", rin, rin.min_code, 0, rout, tuple(int(c) for c in rng.integers(0, 256, 128)))
    spec = SoftmaxSpec(5, score, exp, rec, Fmt(True, 6, 2, "RND", "WRAP"), kind="hgq2")
    s = rng.integers(score.min_code, score.max_code + 1, (2000, 5))
    s[:500] = rng.integers(-40, 40, (500, 5))
    valid = rng.random(s.shape) > 0.3
    valid[:, 0] = True
    for v in (None, valid):
        want = softmax_codes(spec, s, v)
        assert len(np.unique(want)) > 8
        got = np.asarray(KerasFx(None).softmax(keras.ops.convert_to_tensor(score.to_float(s)), spec, v))
        np.testing.assert_array_equal(np.ldexp(got, spec.prob_fmt.frac), want)


def test_lut_lookups_match():
    var_fmt = Fmt(False, 16, 5, "TRN", "SAT")
    rs = rsqrt_table("r", var_fmt, 10, 1e-5, Fmt(False, 12, 5, "RND", "SAT"))
    c = np.arange(0, 1 << 16, 7)
    np.testing.assert_array_equal(np.ldexp(np.asarray(lut_lookup(rs, var_fmt.to_float(c))), rs.out_fmt.frac),
                                  rs.lookup(c))
    gin = Fmt(True, 8, 3, "RND", "SAT")
    g = gelu_table("g", gin, Fmt(True, 8, 2, "RND", "SAT"))
    c = np.arange(gin.min_code, gin.max_code + 1)
    np.testing.assert_array_equal(np.ldexp(np.asarray(lut_lookup(g, gin.to_float(c))), g.out_fmt.frac), g.lookup(c))


def test_ste_forward_is_exact():
    import tensorflow as tf

    f = np.array([2.0**-10, 0.001953125, 1.0 - 2.0**-9])
    s = tf.Variable(np.array([0.9, 0.123456789, 1e-7]))
    with tf.GradientTape() as tape:
        y = ste(f, s * 3.0)
    np.testing.assert_array_equal(np.asarray(y), f)  # bit for bit
    np.testing.assert_allclose(np.asarray(tape.gradient(y, s)), 3.0)
