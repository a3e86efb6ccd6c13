"""Float-mode Keras WindowAttention / Swin block vs an independent numpy reference written from
microsoft/Swin-Transformer's semantics (roll(-s), row-major windows, relative position index,
-100 mask for cross-region pairs, q * head_dim**-0.5, window reverse, roll(+s))."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import require_module

keras = require_module("keras")
require_module("quantizers")

from swinfpga.keras import QWindowAttention, swin_block  # noqa: E402


# ----- independent numpy reference ----------------------------------------------------------------
def ref_partition(x: np.ndarray, ws: int) -> np.ndarray:
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)  # (B*nW, N, C) as in Swin


def ref_reverse(win: np.ndarray, ws: int, h: int, w: int) -> np.ndarray:
    b = win.shape[0] // ((h // ws) * (w // ws))
    x = win.reshape(b, h // ws, w // ws, ws, ws, -1)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def ref_rel_index(ws: int) -> np.ndarray:
    coords_h, coords_w = np.arange(ws), np.arange(ws)
    coords = np.stack(np.meshgrid(coords_h, coords_w, indexing="ij"))
    flat = coords.reshape(2, -1)
    rel = (flat[:, :, None] - flat[:, None, :]).transpose(1, 2, 0).copy()
    rel[:, :, 0] += ws - 1
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    return rel.sum(-1)


def ref_attn_mask(h: int, w: int, ws: int, shift: int) -> np.ndarray | None:
    if shift == 0:
        return None
    img = np.zeros((1, h, w, 1))
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    mw = ref_partition(img, ws).reshape(-1, ws * ws)
    m = mw[:, None, :] - mw[:, :, None]
    return np.where(m != 0, -100.0, 0.0)


def ref_softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_window_attention(x: np.ndarray, p: dict[str, np.ndarray], heads: int, ws: int, shift: int) -> np.ndarray:
    b, h, w, c = x.shape
    if min(h, w) <= ws:
        shift, ws = 0, min(h, w)
    if shift:
        x = np.roll(x, (-shift, -shift), axis=(1, 2))
    xw = ref_partition(x, ws)
    bn, n, _ = xw.shape
    hd = c // heads

    def split(t: np.ndarray) -> np.ndarray:
        return t.reshape(bn, n, heads, hd).transpose(0, 2, 1, 3)

    q = split(xw @ p["wq"] + p["bq"]) * hd**-0.5
    k = split(xw @ p["wk"] + p["bk"])
    v = split(xw @ p["wv"] + p["bv"])
    attn = q @ k.transpose(0, 1, 3, 2)
    bias = p["table"][ref_rel_index(ws).reshape(-1)].reshape(n, n, heads).transpose(2, 0, 1)
    attn = attn + bias[None]
    mask = ref_attn_mask(h, w, ws, shift)
    if mask is not None:
        nw = mask.shape[0]
        attn = attn.reshape(bn // nw, nw, heads, n, n) + mask[None, :, None]
        attn = attn.reshape(-1, heads, n, n)
    attn = ref_softmax(attn)
    o = (attn @ v).transpose(0, 2, 1, 3).reshape(bn, n, c)
    o = o @ p["wp"] + p["bp"]
    y = ref_reverse(o, ws, h, w)
    if shift:
        y = np.roll(y, (shift, shift), axis=(1, 2))
    return y


def ref_ln(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def ref_gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


# ----- helpers -----------------------------------------------------------------------------------------
def randomize(layer, rng: np.random.Generator) -> None:
    for v in layer.weights:
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 2.0, v.shape))
        else:
            v.assign(rng.normal(0.0, 0.5, v.shape))


def attn_params(layer) -> dict[str, np.ndarray]:
    g = {n: np.asarray(getattr(layer, n).kernel) for n in ("q", "k", "v", "proj")}
    bb = {n: np.asarray(getattr(layer, n).bias) for n in ("q", "k", "v", "proj")}
    return {"wq": g["q"], "bq": bb["q"], "wk": g["k"], "bk": bb["k"], "wv": g["v"], "bv": bb["v"],
            "wp": g["proj"], "bp": bb["proj"], "table": np.asarray(layer.rel_bias)}


CASES = [  # (H, W, C, heads, window, shift)
    (4, 4, 8, 2, 2, 1),
    (4, 8, 6, 1, 2, 1),
    (6, 9, 12, 3, 3, 1),
    (6, 6, 6, 2, 3, 0),
    (8, 12, 16, 4, 4, 2),
    (8, 4, 12, 3, 4, 2),  # resolution == window along one side: shift -> 0
    (12, 8, 9, 3, 4, 1),
    (6, 6, 8, 4, 3, 2),
]


@pytest.mark.parametrize("h,w,c,heads,ws,shift", CASES)
def test_window_attention_float_matches_reference(h, w, c, heads, ws, shift):
    rng = np.random.default_rng(h * 100 + w * 10 + heads)
    inp = keras.Input((h, w, c), dtype="float64")
    layer = QWindowAttention(heads, ws, shift, name="attn")
    m = keras.Model(inp, layer(inp))
    randomize(layer, rng)
    x = rng.normal(0, 1, (3, h, w, c))
    got = np.asarray(m(x, training=False))
    want = ref_window_attention(x, attn_params(layer), heads, ws, shift)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    if shift and min(h, w) > ws:  # the mask matters: ignoring it must change the result
        unmasked = ref_window_attention(x, attn_params(layer), heads, ws, 0)
        assert not np.allclose(got, unmasked)


@pytest.mark.parametrize("norm,act", [("ln", "gelu"), ("bn", "relu")])
@pytest.mark.parametrize("h,w,c,heads,ws,shift", [CASES[0], CASES[2], CASES[4], CASES[6]])
def test_swin_block_float_matches_reference(h, w, c, heads, ws, shift, norm, act):
    rng = np.random.default_rng(7 + h + w + c)
    inp = keras.Input((h, w, c), dtype="float64")
    out = swin_block(inp, "blk", heads, ws, shift, 2, act, norm)
    m = keras.Model(inp, out)
    for layer in m.layers:
        randomize(layer, rng)
    x = rng.normal(0, 1, (2, h, w, c))
    got = np.asarray(m(x, training=False))

    attn = m.get_layer("blk.attn")
    mlp = m.get_layer("blk.mlp")

    def norm_fn(t: np.ndarray, layer_name: str, bn_owner) -> np.ndarray:
        if norm == "ln":
            core = m.get_layer(layer_name).core
            return ref_ln(t, np.asarray(core.gamma), np.asarray(core.beta))
        bn = bn_owner.bn
        return (t - np.asarray(bn.moving_mean)) / np.sqrt(np.asarray(bn.moving_variance) + 1e-5) * \
            np.asarray(bn.gamma) + np.asarray(bn.beta)

    y = x + ref_window_attention(norm_fn(x, "blk.norm1", attn), attn_params(attn), heads, ws, shift)
    t = norm_fn(y, "blk.norm2", mlp)
    hdn = t @ np.asarray(mlp.fc1.kernel) + np.asarray(mlp.fc1.bias)
    hdn = np.maximum(hdn, 0) if act == "relu" else ref_gelu(hdn)
    want = y + hdn @ np.asarray(mlp.fc2.kernel) + np.asarray(mlp.fc2.bias)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_relative_position_index_matches_swin():
    from swinfpga.ir.nodes import relative_position_index

    for ws in (2, 3, 4, 7):
        np.testing.assert_array_equal(relative_position_index(ws), ref_rel_index(ws))
