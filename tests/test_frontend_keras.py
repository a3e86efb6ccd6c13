"""Keras -> IR front end: small calibrated models convert and run bit-exact in the golden model;
bad input gives clear errors (unsupported layer, unquantized weights, window not dividing the
resolution, odd resolution into patch merging, format too narrow)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from tests.conftest import require_module

keras = require_module("keras")
require_module("quantizers")

from swinfpga import golden  # noqa: E402
from swinfpga.fixed import Fmt, FormatError  # noqa: E402
from swinfpga.frontend.keras import KerasFrontendError, from_keras_file, from_keras_model  # noqa: E402
from swinfpga.keras import (  # noqa: E402
    QInput,
    QPatchMerging,
    QPool,
    QWindowAttention,
    build_model,
    calibrate,
    predict_quantized,
    set_quantized,
)
from swinfpga.models import StageSpec, SwinSpec  # noqa: E402

IN_FMT = Fmt(False, 5, 1)


def tiny_spec(norm: str, act: str, shift: int = 1) -> SwinSpec:
    return SwinSpec(
        name=f"tiny-{norm}", img=(8, 8, 1), patch=2, embed=8,
        stages=(StageSpec(2, 2, 2, shift), StageSpec(1, 2, 2, 0, merge=True)),
        mlp_ratio=2, act=act, norm=norm, classes=4,
    )


@cache
def tiny(norm: str, act: str):
    keras.utils.set_random_seed(1)
    m = build_model(tiny_spec(norm, act))
    rng = np.random.default_rng(0)
    for layer in m.layers:  # non-trivial BatchNorm statistics and LayerNorm affine parameters
        for v in layer.weights:
            if "moving_variance" in v.path:
                v.assign(rng.uniform(0.5, 2.0, v.shape))
            elif "moving_mean" in v.path or "beta" in v.path or "rel_bias" in v.path:
                v.assign(rng.normal(0, 0.3, v.shape))
    x = rng.integers(0, 17, (96, 8, 8, 1))
    calibrate(m, x[:64] * IN_FMT.lsb)
    set_quantized(m, True)
    return m, x


@pytest.mark.parametrize("norm,act", [("bn", "relu"), ("ln", "gelu")])
def test_tiny_model_bit_exact(norm, act):
    m, x = tiny(norm, act)
    ir = from_keras_model(m)
    res = golden.run(ir, x)
    fmt = ir.infer()[ir.output].fmt
    got = predict_quantized(m, x * IN_FMT.lsb)
    codes = np.ldexp(got, fmt.frac)
    assert np.all(codes == np.round(codes))
    np.testing.assert_array_equal(codes.astype(np.int64), res.output)
    names = [n.name for n in ir.nodes]
    assert names[:2] == ["input", "patch_embed"]
    assert "s0b1.attn" in names and "s1.merge" in names and names[-2:] == ["pool", "head"]
    assert ("patch_norm" in names) == (norm == "ln")
    assert ir.node("s0b1.attn").shift == 1 and ir.node("s0b0.attn").shift == 0
    assert ir.node("s1b0.attn").shift == 0  # 2x2 tokens, window 2: never shifted


def test_save_load_roundtrip(tmp_path):
    m, x = tiny("bn", "relu")
    m.save(tmp_path / "m.keras")
    ir = from_keras_file(tmp_path / "m.keras")
    np.testing.assert_array_equal(golden.run(ir, x).output, golden.run(from_keras_model(m), x).output)


def test_unsupported_layer_is_named():
    inp = keras.Input((8, 8, 1), name="image", dtype="float64")
    x = QInput(fmt=IN_FMT.to_json(), quantized=True, name="input")(inp)
    x = keras.layers.Conv2D(4, 2, name="plain_conv", dtype="float64")(x)
    m = keras.Model(inp, x)
    with pytest.raises(KerasFrontendError, match=r"'plain_conv' \(Conv2D\) is not supported.*QWindowAttention"):
        from_keras_model(m)


def test_float_model_rejected_as_unquantized():
    keras.utils.set_random_seed(0)
    m = build_model(tiny_spec("bn", "relu"))
    with pytest.raises(KerasFrontendError, match="float mode: its weights are unquantized"):
        from_keras_model(m)
    set_quantized(m, True)  # quantized but never calibrated: no formats
    with pytest.raises(KerasFrontendError, match="without a fixed-point format"):
        from_keras_model(m)


def test_raw_input_without_input_quantizer():
    inp = keras.Input((2, 2, 4), name="image", dtype="float64")
    m = keras.Model(inp, QPool(name="pool", quantized=True, fmts={"out": Fmt(True, 8, 3).to_json()})(inp))
    with pytest.raises(KerasFrontendError, match="QInput"):
        from_keras_model(m)


@pytest.mark.parametrize("shape,window", [((4, 8, 4), 3), ((6, 10, 4), 4), ((9, 12, 4), 4)])
def test_window_not_dividing_resolution(shape, window):
    inp = keras.Input(shape, dtype="float64")
    with pytest.raises(ValueError, match=f"window {window} does not divide the resolution {shape[0]}x{shape[1]}"):
        QWindowAttention(1, window, 0, name="bad_attn")(inp)


def test_odd_resolution_into_patch_merging():
    inp = keras.Input((3, 4, 4), dtype="float64")
    with pytest.raises(ValueError, match="patch merging needs an even resolution, got 3x4"):
        QPatchMerging(8, name="bad_merge")(inp)


def test_heads_not_dividing_dim():
    inp = keras.Input((4, 4, 6), dtype="float64")
    with pytest.raises(ValueError, match="dim 6 is not divisible by 4 heads"):
        QWindowAttention(4, 2, 0, name="bad_heads")(inp)


def test_weight_format_too_narrow():
    from swinfpga.keras.model import widen_saturated_weights

    m, _ = tiny("bn", "relu")
    layer = m.get_layer("s0b0.attn")
    orig = layer.fmts["q.w"]
    layer.fmts["q.w"] = orig.with_(int_bits=orig.int_bits - 3)
    try:
        with pytest.raises(FormatError, match=r"s0b0.attn: q\.weight: .* the format is too narrow"):
            from_keras_model(m)
        changed = widen_saturated_weights(m)
        assert any(c.startswith("s0b0.attn.q.w") for c in changed)
        from_keras_model(m)  # converts again
    finally:
        layer.fmts["q.w"] = orig
        layer.fmts.pop("_", None)


def test_activation_overflow_is_counted():
    """A too-narrow activation format saturates: the golden model counts it per requant site."""
    m, x = tiny("bn", "relu")
    layer = m.get_layer("s0b0.add1")
    orig = layer.fmts["out"]
    layer.fmts["out"] = Fmt(True, 4, 0, "RND", "SAT")  # +-0.5
    try:
        ir = from_keras_model(m)
        res = golden.run(ir, x)
        assert res.overflow["s0b0.add1"] > 0
        got = predict_quantized(m, x * IN_FMT.lsb)  # saturation is mirrored bit for bit
        np.testing.assert_array_equal(np.ldexp(got, ir.infer()[ir.output].fmt.frac).astype(np.int64), res.output)
    finally:
        layer.fmts["out"] = orig


def test_input_codes_outside_input_format():
    m, x = tiny("bn", "relu")
    ir = from_keras_model(m)
    with pytest.raises(FormatError, match="does not fit"):
        golden.run(ir, x + 40)
