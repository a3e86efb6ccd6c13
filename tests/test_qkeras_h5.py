"""Legacy QKeras .h5 front end: conversion, golden vs an independent float evaluation, errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from legacy_fixture import legacy_model

from swinfpga import golden
from swinfpga.data import digits_split
from swinfpga.fixed import Fmt
from swinfpga.frontend.qkeras_h5 import LegacyModelError, from_h5


def q(x: np.ndarray, fmt: Fmt) -> np.ndarray:
    return fmt.to_float(fmt.from_float(x))


def test_converts_and_matches_float_evaluation(tmp_path) -> None:
    p = tmp_path / "legacy.h5"
    W = legacy_model(p)
    m = from_h5(p)
    assert [type(n).__name__ for n in m.nodes] == ["Input", "PatchEmbed", "Dense", "Dense", "Dense", "Add", "Pool",
                                                    "Dense"]
    x = digits_split().x_test[:64]
    got = golden.run(m, x)
    # independent float64 evaluation of the quantized network (no IR involved)
    a8_3 = Fmt(True, 8, 4, "RND", "SAT")  # quantized_bits(8,3) = ap_fixed<8,4>
    r8_3 = Fmt(False, 8, 3, "RND", "SAT")
    w8_0, b8_2 = Fmt(True, 8, 1, "RND", "SAT"), Fmt(True, 8, 3, "RND", "SAT")
    xin = x / 16.0
    patches = xin.reshape(-1, 4, 2, 4, 2, 1).transpose(0, 1, 3, 2, 4, 5).reshape(-1, 4, 4, 4)
    bn = W["embed_bn"]
    s = bn["gamma"] / np.sqrt(bn["moving_variance"] + 1e-3)
    emb = m.node("embed")
    wk = emb.linear.w_fmt.to_float(emb.linear.weight)
    np.testing.assert_allclose(wk, q(W["embed"]["kernel"].reshape(4, 16), w8_0) * s, atol=emb.linear.w_fmt.lsb)
    h = patches @ wk + emb.linear.b_fmt.to_float(emb.linear.bias)
    h = q(np.maximum(h, 0), r8_3).reshape(-1, 16, 16)
    np.testing.assert_array_equal(r8_3.from_float(h).reshape(-1, 4, 4, 16), got.outputs["embed"])
    proj = q(h @ q(W["proj"]["kernel"], w8_0) + q(W["proj"]["bias"], b8_2), a8_3)
    f1 = q(np.maximum(proj @ q(W["fc1"]["kernel"], w8_0) + q(W["fc1"]["bias"], b8_2), 0), r8_3)
    f2 = q(f1 @ q(W["fc2"]["kernel"], w8_0) + q(W["fc2"]["bias"], b8_2), a8_3)
    res = q(proj + f2, a8_3)
    gap = q(res.mean(1), a8_3)
    w8_1, b8_3 = Fmt(True, 8, 2, "RND", "SAT"), Fmt(True, 8, 4, "RND", "SAT")
    head = gap @ q(W["head"]["kernel"], w8_1) + q(W["head"]["bias"], b8_3)
    out_fmt = m.infer()[m.output].fmt
    np.testing.assert_array_equal(got.output, out_fmt.from_float(head))


def _edit_config(p, fn) -> None:
    with h5py.File(p, "r+") as f:
        conf = json.loads(f.attrs["model_config"])
        fn(conf["config"]["layers"])
        f.attrs["model_config"] = json.dumps(conf).encode()


def _plain_dense(layers) -> None:
    layers[6]["class_name"] = "Dense"


def _unquantized(layers) -> None:
    layers[6]["config"]["kernel_quantizer"] = None


def _lstm(layers) -> None:
    layers[8]["class_name"] = "LSTM"


def _permute(layers) -> None:
    layers[5] = {"class_name": "Permute", "name": "tokens", "config": {"name": "tokens", "dims": [2, 1, 3]},
                 "inbound_nodes": [[["embed_act", 0, 0, {}]]]}


@pytest.mark.parametrize("edit,match", [
    (_plain_dense, "'proj' of type Dense.*use QDense"),
    (_unquantized, "proj kernel: no quantizer"),
    (_lstm, "'fc1' of type LSTM is not supported; supported: InputLayer"),
    (_permute, "reorders axes"),
])
def test_errors_name_the_layer(tmp_path, edit, match) -> None:
    p = tmp_path / "m.h5"
    legacy_model(p)
    _edit_config(p, edit)
    with pytest.raises(LegacyModelError, match=match):
        from_h5(p)


@pytest.mark.csim
def test_legacy_model_csim_bit_exact(tmp_path) -> None:
    """Acceptance (issue 5): a QKeras .h5 model converts and C-simulates bit-exactly vs golden."""
    from conftest import require_tool

    require_tool("g++")
    from swinfpga.backends.hls4ml import verify_csim
    from swinfpga.manifest import Project
    from swinfpga.project import ConvertOptions, convert

    p = tmp_path / "legacy.h5"
    legacy_model(p)
    out = tmp_path / "prj"
    convert(from_h5(p), out, ConvertOptions(rtl=False, n_vectors=360))
    rep = verify_csim(Project.open(out))
    assert rep.samples == 360
    assert rep.mismatches == 0, [str(m) for m in rep.first]
