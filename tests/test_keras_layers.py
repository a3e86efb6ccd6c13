"""Float-mode patch embedding / patch merging / pool vs reference semantics, BatchNorm folding, and
quantization-aware training: gradients reach every trainable variable through the quantizers,
integer softmax and LUTs (straight-through estimators)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_module

keras = require_module("keras")
require_module("quantizers")
tf = require_module("tensorflow")

from swinfpga.fixed import Fmt  # noqa: E402
from swinfpga.keras import (  # noqa: E402
    QDense,
    QPatchEmbed,
    QPatchMerging,
    build_model,
    calibrate,
    set_quantized,
)
from swinfpga.models import StageSpec, SwinSpec  # noqa: E402


def test_patch_embed_equals_conv2d():
    rng = np.random.default_rng(0)
    inp = keras.Input((8, 12, 3), dtype="float64")
    pe = QPatchEmbed(4, 5, name="pe")
    m = keras.Model(inp, pe(inp))
    for v in pe.weights:
        v.assign(rng.normal(0, 1, v.shape))
    conv = keras.layers.Conv2D(5, 4, strides=4, dtype="float64")
    conv.build((None, 8, 12, 3))
    conv.kernel.assign(np.asarray(pe.lin.kernel).reshape(4, 4, 3, 5))  # (kh, kw, cin, cout)
    conv.bias.assign(np.asarray(pe.lin.bias))
    x = rng.normal(0, 1, (2, 8, 12, 3))
    np.testing.assert_allclose(np.asarray(m(x)), np.asarray(conv(x)), rtol=1e-12, atol=1e-12)


def test_patch_merging_order_and_layernorm():
    rng = np.random.default_rng(1)
    inp = keras.Input((4, 6, 3), dtype="float64")
    pm = QPatchMerging(5, norm="ln", name="pm")
    m = keras.Model(inp, pm(inp))
    for v in pm.weights:
        v.assign(rng.normal(0, 1, v.shape))
    x = rng.normal(0, 1, (2, 4, 6, 3))
    # Swin: x0 = x[0::2, 0::2], x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2]
    cat = np.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    mu = cat.mean(-1, keepdims=True)
    var = cat.var(-1, keepdims=True)
    g, b = np.asarray(pm.ln.gamma), np.asarray(pm.ln.beta)
    want = ((cat - mu) / np.sqrt(var + 1e-5) * g + b) @ np.asarray(pm.lin.kernel)  # reduction has no bias
    np.testing.assert_allclose(np.asarray(m(x)), want, rtol=1e-10, atol=1e-10)


def test_batchnorm_folding_matches_unfolded():
    """Frozen BatchNorm folded into the next linear == BatchNorm then linear (before quantization)."""
    rng = np.random.default_rng(2)
    inp = keras.Input((6,), dtype="float64")
    d = QDense(4, pre_bn=True, name="d")
    m = keras.Model(inp, d(inp))
    for v in d.weights:
        v.assign(rng.uniform(0.5, 2.0, v.shape) if "variance" in v.path else rng.normal(0, 1, v.shape))
    x = rng.normal(0, 1, (5, 6))
    w, b = d.lin.effective()
    np.testing.assert_allclose(x @ np.asarray(w) + np.asarray(b), np.asarray(m(x, training=False)), rtol=1e-12)


@pytest.mark.parametrize("norm,act", [("ln", "gelu"), ("bn", "relu")])
def test_qat_gradients_reach_every_variable(norm, act):
    spec = SwinSpec(name=f"tiny-{norm}", img=(8, 8, 1), patch=2, embed=8,
                    stages=(StageSpec(2, 2, 2, 1), StageSpec(1, 2, 2, 0, merge=True)), act=act, norm=norm,
                    classes=4)
    keras.utils.set_random_seed(0)
    m = build_model(spec)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, (32, 8, 8, 1)) * Fmt(False, 5, 1).lsb
    y = rng.integers(0, 4, 32)
    calibrate(m, x)
    set_quantized(m, True)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, m(x, training=True))
    grads = tape.gradient(loss, m.trainable_variables)
    missing = [v.path for v, g in zip(m.trainable_variables, grads, strict=True) if g is None]
    assert not missing, f"no gradient for {missing}"
    zero = [v.path for v, g in zip(m.trainable_variables, grads, strict=True) if not np.any(np.asarray(g))]
    assert not zero, f"all-zero gradient for {zero}"
    assert np.isfinite(float(loss))


@pytest.mark.parametrize("training", [False, True])
def test_quantized_forward_same_in_training_mode(training):
    """The QAT forward pass computes the same values as inference (STE changes gradients only)."""
    spec = SwinSpec(name="tiny-bn", img=(8, 8, 1), patch=2, embed=8,
                    stages=(StageSpec(2, 2, 2, 1),), classes=3)
    keras.utils.set_random_seed(1)
    m = build_model(spec)
    x = np.random.default_rng(1).integers(0, 17, (16, 8, 8, 1)) / 16.0
    calibrate(m, x)
    set_quantized(m, True)
    a = np.asarray(m(x, training=False))
    b = np.asarray(m(x, training=training))
    np.testing.assert_array_equal(a, b)
