"""Per-channel formats (:class:`swinfpga.fixed.ChanFmt`) in quantized Keras inference: a Keras model whose
requant sites hold per-channel formats equals the golden model of its exported IR bit for bit, on every
layer, and the formats survive ``.keras`` saving."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_module

keras = require_module("keras")
require_module("tensorflow")
require_module("quantizers")

from swinfpga.fixed import ChanFmt  # noqa: E402
from swinfpga.ir.build import chan_fmt_in  # noqa: E402
from tests.test_keras_hgq import IN_FMT, compare_layers, tiny  # noqa: E402  (the same tiny Swin specs)


def chan_sites(layer) -> dict[str, int]:
    """The layer's requant sites that may hold per-channel formats -> their channel counts."""
    from swinfpga.keras.layers import LNCore, QAdd, QMlp, QPool

    out: dict[str, int] = {}
    for lin in layer.lins():
        if not (isinstance(layer, QMlp) and layer.act == "gelu" and lin.prefix == "fc1."):  # table input
            out[lin.prefix + "out"] = lin.n_out
    if isinstance(layer, QMlp) and layer.act == "relu":
        out["hidden"] = layer.fc1.n_out
    if isinstance(layer, QAdd | QPool):
        out["out"] = int(layer.output.shape[-1])
    for attr in vars(layer).values():
        if isinstance(attr, LNCore):
            out[attr.prefix + "out"] = attr.c
    return out


@pytest.mark.parametrize("norm,act", [("bn", "relu"), ("ln", "gelu")])
def test_per_channel_formats_keras_equals_golden(norm, act, tmp_path):
    from swinfpga.frontend.keras import from_keras_model
    from swinfpga.keras.model import build_model, calibrate, set_quantized

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    m = build_model(tiny(norm, act))
    codes = rng.integers(0, 17, (48, 8, 8, 1))
    calibrate(m, codes * IN_FMT.lsb)
    set_quantized(m, True)
    n_chan = 0
    for layer in (ly for ly in m.layers if hasattr(ly, "lins")):
        for site, c in chan_sites(layer).items():
            f = chan_fmt_in(layer.fmts[site], c, rng, p_zero=0.25)
            layer.fmts[site] = ChanFmt.union(f.signed, f.chans, f.rounding, f.overflow)
            n_chan += isinstance(layer.fmts[site], ChanFmt)
    assert n_chan >= 10
    ir = from_keras_model(m)
    info = ir.infer()
    chan = [k for k in info if isinstance(info[k].fmt, ChanFmt)]
    assert len(chan) >= 8, chan
    compare_layers(m, codes, ir)
    # pruned channels are 0 in Keras too (the golden equality above), and some exist
    assert any(w == 0 for k in chan for w, _ in info[k].fmt.chans)
    # the formats survive saving: the reloaded model exports the same IR
    p = tmp_path / "m.keras"
    m.save(p)
    m2 = keras.models.load_model(p, compile=False)
    assert from_keras_model(m2).to_json() == ir.to_json()
