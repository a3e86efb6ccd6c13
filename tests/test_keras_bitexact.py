"""Quantized Keras inference == golden model, bit for bit, on the digits test split, for the
committed trained models: logits, every layer output, and the attention internals (taps)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from tests.conftest import require_module

keras = require_module("keras")
require_module("quantizers")

from swinfpga import golden  # noqa: E402
from swinfpga.data import digits_split  # noqa: E402
from swinfpga.ir import Model  # noqa: E402
from swinfpga.ir import nodes as N  # noqa: E402
from swinfpga.project import MODELS_DIR  # noqa: E402

NAMES = ["swin-digits", "swin-digits-ln", "swin-free-digits"]


def committed(name: str) -> tuple[object, Model]:
    d = MODELS_DIR / name
    if not (d / "model.keras").exists():
        pytest.fail(f"no committed trained copy of {name} in {d}; run `swinfpga train {name} -o {d} --force`")
    return _load(name)


@cache
def _load(name: str):
    import swinfpga.keras  # noqa: F401

    d = MODELS_DIR / name
    return keras.models.load_model(d / "model.keras", compile=False), Model.load(d / "model.json")


@cache
def _golden(name: str):
    _, ir = _load(name)
    return golden.run(ir, digits_split().x_test, taps=True)


def to_codes(v: np.ndarray, frac: int) -> np.ndarray:
    c = np.ldexp(np.asarray(v, dtype=np.float64), frac)
    assert np.all(c == np.round(c)), "Keras values are off the fixed-point grid"
    return c.astype(np.int64)


@pytest.mark.parametrize("name", NAMES)
def test_keras_logits_equal_golden(name):
    from swinfpga.keras import predict_quantized

    km, ir = committed(name)
    x = digits_split().x_test
    out_fmt = ir.infer()[ir.output].fmt
    got = to_codes(predict_quantized(km, x * ir.input.fmt.lsb), out_fmt.frac)
    np.testing.assert_array_equal(got, _golden(name).output)


@pytest.mark.parametrize("name", NAMES)
def test_keras_every_layer_equals_golden(name):
    km, ir = committed(name)
    info = ir.infer()
    names = [n.name for n in ir.nodes[1:]]
    sub = keras.Model(km.inputs[0], [km.get_layer(n).output for n in names])
    x = digits_split().x_test
    outs = sub(x * ir.input.fmt.lsb, training=False)
    g = _golden(name)
    bad = []
    for n, o in zip(names, outs, strict=True):
        c = to_codes(np.asarray(o), info[n].fmt.frac)
        if not np.array_equal(c, g.outputs[n]):
            bad.append(f"{n}: {int(np.count_nonzero(c != g.outputs[n]))} of {c.size} codes differ")
    assert not bad, "; ".join(bad)


@pytest.mark.parametrize("name", NAMES)
def test_attention_taps_equal_golden(name):
    """q, k, v, scores, softmax probabilities, p.v and projection of every attention layer."""
    km, ir = committed(name)
    x = digits_split().x_test[:120]
    g = golden.run(ir, x, taps=True)
    attn = ir.of_type(N.WindowAttention)
    layers = [km.get_layer(a.name) for a in attn]
    for ly in layers:
        ly.record = {}
    try:
        km(x * ir.input.fmt.lsb, training=False)
        for a, ly in zip(attn, layers, strict=True):
            pairs = {"q.out": ("q", a.q.out_fmt), "k.out": ("k", a.k.out_fmt), "v.out": ("v", a.v.out_fmt),
                     "scores": ("scores", a.score_fmt), "probs": ("probs", a.softmax.prob_fmt),
                     "attn": ("attn", a.attn_fmt), "proj.out": ("proj", a.proj.out_fmt)}
            for site, (tap, fmt) in pairs.items():
                got = to_codes(ly.record[site], fmt.frac)
                np.testing.assert_array_equal(got, g.taps[f"{a.name}.{tap}"], err_msg=f"{a.name}.{tap}")
    finally:
        for ly in layers:
            ly.record = None


@pytest.mark.parametrize("name", NAMES)
def test_keras_file_converts_to_committed_ir(name):
    from swinfpga.frontend.keras import from_keras_file

    committed(name)
    ir = from_keras_file(MODELS_DIR / name / "model.keras")
    ref = Model.load(MODELS_DIR / name / "model.json")
    a, b = ir.to_json(), ref.to_json()
    a.pop("meta"), b.pop("meta")
    assert a == b
