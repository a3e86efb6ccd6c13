"""HGQ training (swinfpga.keras.hgq): bits train under the EBOPs penalty, freeze into the existing IR,
and the quantized Keras model then equals the golden model bit for bit (logits and every layer)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_module

keras = require_module("keras")
tf = require_module("tensorflow")
require_module("quantizers")

from swinfpga import golden  # noqa: E402
from swinfpga.fixed import Fmt  # noqa: E402
from swinfpga.ir import Model  # noqa: E402
from swinfpga.ir import nodes as N  # noqa: E402
from swinfpga.models import StageSpec, SwinSpec  # noqa: E402

IN_FMT = Fmt(False, 5, 1)


def tiny(norm: str, act: str) -> SwinSpec:
    return SwinSpec(name=f"tiny-hgq-{norm}", img=(8, 8, 1), patch=2, embed=8,
                    stages=(StageSpec(2, 2, 2, 1), StageSpec(1, 2, 2, 0, merge=True)), act=act, norm=norm,
                    classes=4)


def trained(norm: str, act: str, granularity: str, steps: int = 6, qk: bool = False, m=None, codes=None,
            act_gran: str = "tensor"):
    """A tiny model calibrated, HGQ-trained for a few eager steps with a strong penalty, and frozen
    (``m``, ``codes``: continue HGQ on that frozen model instead)."""
    from swinfpga.keras import hgq_train as hgq
    from swinfpga.keras.model import build_model, calibrate, set_quantized, widen_saturated_weights

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    fresh = m is None
    if fresh:
        m = build_model(tiny(norm, act))
        codes = rng.integers(0, 17, (48, 8, 8, 1))
        x = codes * IN_FMT.lsb
        calibrate(m, x)
        set_quantized(m, True)
    x, y = codes * IN_FMT.lsb, rng.integers(0, 4, 48)
    hgq.enable(m, granularity, beta=0.0, qk=qk, act=act_gran, x=x)
    e0 = hgq.total_ebops(m)
    for ly in m.layers:
        if hasattr(ly, "hgq_beta"):
            ly.hgq_beta = 3.0 / e0  # penalty ~3 at the start: bits must fall
    opt = keras.optimizers.Adam(0.02)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    bit_vars = [v for v in m.trainable_variables if "frac" in v.path]
    assert bit_vars
    for step in range(steps):
        with tf.GradientTape() as tape:
            logits = m(x, training=True)
            penalty = tf.add_n(m.losses)
            loss = loss_fn(y, logits) + tf.cast(penalty, loss_fn(y, logits).dtype)
        grads = tape.gradient(loss, m.trainable_variables)
        if step == 0:
            got = {v.path for v, g in zip(m.trainable_variables, grads, strict=True) if g is not None and np.any(g)}
            # continuing: frozen bits may sit where the loss is flat; the new q/k bits must move
            lacking = [v.path for v in bit_vars
                       if v.path not in got and (fresh or v.path.endswith(("frac_q.out", "frac_k.out")))
                       and not (act_gran == "channel" and "/frac_" in v.path)]  # per-tensor bits unused
            assert not lacking, f"no gradient for bit variables {lacking}"
        opt.apply(grads, m.trainable_variables)
    summ = hgq.freeze(m)
    widen_saturated_weights(m)  # as swinfpga train does: weights that grew past their integer bits
    return m, codes, e0, summ


@pytest.mark.parametrize("norm,act,granularity,qk", [("bn", "relu", "channel", False), ("ln", "gelu", "weight", False),
                                                     ("bn", "relu", "channel", True)])
def test_hgq_bits_fall_and_export_is_bitexact(norm, act, granularity, qk, tmp_path):
    m, codes, e0, summ = trained(norm, act, granularity, qk=qk)
    assert summ.ebops < 0.9 * e0, (summ.ebops, e0)
    if qk:  # q and k trained their own bits: some fell below the calibrated 8
        attn = [ly for ly in m.layers if getattr(ly, "hgq_qk", False)]
        assert attn and any(ly.fmt(s).width < 8 for ly in attn for s in ("q.out", "k.out"))
    check_export(m, codes, summ, tmp_path)


def test_hgq_qk_bits_added_to_a_model_trained_without(tmp_path):
    """Fine-tuning (`swinfpga train --init`) a model HGQ-trained before q/k bits existed: the new bit
    variables come after the saved ones, the model reloads, and the export stays bit-exact."""
    p = tmp_path / "old.keras"
    m, codes, _, _ = trained("bn", "relu", "channel")
    assert not any(getattr(ly, "hgq_qk", True) for ly in m.layers if hasattr(ly, "hgq_qk"))
    m.save(p)
    m = keras.models.load_model(p, compile=False)
    m, codes, e0, summ = trained("bn", "relu", "channel", qk=True, m=m, codes=codes)
    assert all(ly.hgq_qk for ly in m.layers if hasattr(ly, "hgq_qk"))
    check_export(m, codes, summ, tmp_path)


def compare_layers(m, codes, ir) -> None:
    """Keras == golden on the logits and on every layer output (integer codes, 0 mismatches)."""
    from swinfpga.keras import predict_quantized

    info = ir.infer()
    g = golden.run(ir, codes)
    out_fmt = info[ir.output].fmt
    kc = np.ldexp(predict_quantized(m, codes * IN_FMT.lsb), out_fmt.frac)
    assert np.array_equal(kc, np.round(kc))
    np.testing.assert_array_equal(kc.astype(np.int64), g.output, err_msg="logits")
    names = [n.name for n in ir.nodes[1:]]
    sub = keras.Model(m.inputs[0], [m.get_layer(n).output for n in names])
    bad = []
    for n, o in zip(names, sub(codes * IN_FMT.lsb, training=False), strict=True):
        c = np.ldexp(np.asarray(o), info[n].fmt.frac)
        assert np.array_equal(c, np.round(c)), f"{n}: values off the grid of {info[n].fmt}"
        diff = np.argwhere(c.astype(np.int64) != g.outputs[n])
        if diff.size:
            bad.append(f"{n}: {len(diff)} of {c.size} codes differ, first at {tuple(diff[0])}")
    assert not bad, "; ".join(bad)


def check_export(m, codes, summ, tmp_path):
    from swinfpga.frontend.keras import from_keras_model
    from swinfpga.keras.hgq import frac_np

    ir = from_keras_model(m)
    compare_layers(m, codes, ir)  # logits and every layer output: Keras == golden
    # one format per tensor: a weight with f < F fraction bits has F - f trailing zero bits; 0 bits -> code 0
    checked = 0
    for layer in m.layers:
        for lin in getattr(layer, "lins", lambda: [])():
            node = ir.node(layer.name)
            irl = {"q.": "q", "k.": "k", "v.": "v", "proj.": "proj", "fc1.": "fc1", "fc2.": "fc2"}.get(lin.prefix)
            ln: N.Linear = getattr(node, irl) if irl else node.linear
            f = np.broadcast_to(frac_np(lin.fvar), ln.weight.shape).astype(np.int64)
            ib = layer.fmt(lin.prefix + "w").int_bits
            assert ln.w_fmt.int_bits == ib and ln.w_fmt.frac >= f[ib + f > 0].max(initial=0)
            assert ln.w_fmt.width <= 8, f"{layer.name}.{lin.prefix}w: {ln.w_fmt} wider than calibrated"
            assert np.all(ln.weight[ib + f <= 0] == 0)
            live = ib + f > 0
            step = 2 ** (ln.w_fmt.frac - f[live])
            assert np.all(ln.weight[live] % step == 0)
            checked += 1
    assert checked >= 5
    assert summ.zero_weights > 0
    # the frozen model saves, reloads and exports the same IR
    p = tmp_path / "m.keras"
    m.save(p)
    m2 = keras.models.load_model(p, compile=False)
    a, b = from_keras_model(m2).to_json(), ir.to_json()
    assert a == b
    assert Model.from_json(a).to_json() == b


def test_hgq_rejects_bad_arguments():
    from swinfpga.keras import QuantizationError
    from swinfpga.keras import hgq_train as hgq
    from swinfpga.keras.model import build_model

    m = build_model(tiny("bn", "relu"))
    with pytest.raises(QuantizationError, match="granularity 'tensor' unknown"):
        hgq.enable(m, "tensor", 1e-6)
    with pytest.raises(QuantizationError, match="beta must be >= 0"):
        hgq.enable(m, "channel", -1.0)


def test_train_rejects_negative_beta(tmp_path):
    from swinfpga.train import TrainError, train

    with pytest.raises(TrainError, match="--beta must be >= 0"):
        train("swin-digits", tmp_path / "o", epochs=1, beta=-1e-6)


def test_weight_beyond_the_exported_format_is_widened(tmp_path):
    """A weight that fits the calibrated 8-bit format but not the exported one (the widest trained
    fraction is coarser, so its largest code is smaller) gets an integer bit before export, instead
    of the export refusing it as saturating."""
    from swinfpga.frontend.keras import from_keras_model
    from swinfpga.keras.model import widen_saturated_weights

    m, codes, _, summ = trained("bn", "relu", "channel")
    layer = next(ly for ly in m.layers if type(ly).__name__ == "QMlp")
    lin = layer.fc2  # no folded BatchNorm / scale: the effective weight is the kernel
    ef = lin.export_w_fmt()
    assert ef.frac < layer.fmt("fc2.w").frac, "the test needs a coarser exported format"
    v = ef.max_value + 0.75 * ef.lsb  # rounds past the exported format's largest code
    assert v <= layer.fmt("fc2.w").max_value
    k = np.asarray(lin.kernel).copy()
    k[0, 0] = v
    lin.kernel.assign(k)
    changed = widen_saturated_weights(m)
    assert any(c.startswith(f"{layer.name}.fc2.w") for c in changed), changed
    check_export(m, codes, summ, tmp_path)
    assert from_keras_model(m).node(layer.name).fc2.w_fmt.int_bits == ef.int_bits + 1


# ----- per-channel activation bits (act granularity "channel") ---------------------------------------
@pytest.mark.parametrize("norm,act,granularity", [("bn", "relu", "channel"), ("ln", "gelu", "weight")])
def test_hgq_per_channel_activations_prune_and_export_is_bitexact(norm, act, granularity, tmp_path):
    from swinfpga.fixed import ChanFmt
    from swinfpga.frontend.keras import from_keras_model

    m, codes, e0, summ = trained(norm, act, granularity, act_gran="channel")
    assert summ.ebops < 0.9 * e0, (summ.ebops, e0)
    ir = from_keras_model(m)
    chan = {k: v.fmt for k, v in ir.infer().items() if isinstance(v.fmt, ChanFmt)}
    assert len(chan) >= 5, sorted(chan)
    # channels differ in width and some trained to 0 bits (pruned): all 0 in the golden model
    assert any(len({w for w, _ in f.chans}) > 1 for f in chan.values())
    assert sum(summ.pruned_channels.values()) > 0, summ.pruned_channels
    g = golden.run(ir, codes)
    for k, f in chan.items():
        for c, (w, _) in enumerate(f.chans):
            if w == 0:
                assert not np.any(g.outputs[k][..., c]), f"{k} channel {c}"
    # no per-channel site of attention's per-head output, nor a GELU table's input
    assert not any(k.endswith(".attn") for k in summ.act_mean_widths)
    if act == "gelu":
        assert not any(k.endswith("fc1.out") for k in summ.act_mean_widths)
    check_export(m, codes, summ, tmp_path)


def test_hgq_per_channel_ebops_are_bits_in_at_bits_w():
    """EBOPs of a linear fed by a per-channel tensor: ``sum_ij bits_in[i] * bits_w[ij]``; a pruned input
    channel costs nothing."""
    from swinfpga.fixed import ChanFmt
    from swinfpga.keras.hgq import frac_np, weight_bits
    from swinfpga.keras.quant import as_numpy

    m, codes, e0, summ = trained("bn", "relu", "channel", act_gran="channel")
    layer = next(ly for ly in m.layers if type(ly).__name__ == "QMlp")
    hid = layer.fmt("hidden")
    assert isinstance(hid, ChanFmt)
    wq, _ = layer.fc2.quant_weights(False)
    f = np.broadcast_to(frac_np(layer.fc2.fvar), wq.shape)
    wb = as_numpy(weight_bits(wq, f))
    bits_in = np.asarray([w for w, _ in hid.chans], dtype=np.float64)
    assert float(as_numpy(layer.fc2.ebops())) == float(np.sum(bits_in[:, None] * wb))
    assert float(as_numpy(layer.fc2.ebops())) != float(hid.width * wb.sum())  # not the container width


def test_hgq_act_granularity_errors():
    from swinfpga.keras import QuantizationError
    from swinfpga.keras import hgq_train as hgq
    from swinfpga.keras.model import build_model

    m = build_model(tiny("bn", "relu"))
    with pytest.raises(QuantizationError, match="activation granularity 'weight' unknown"):
        hgq.enable(m, "channel", 1e-6, act="weight")
    m, codes, _, _ = trained("bn", "relu", "channel", act_gran="channel")
    with pytest.raises(QuantizationError, match="continue with --act-granularity channel"):
        hgq.enable(m, "channel", 1e-6)


def test_train_and_sweep_act_granularity_options(tmp_path, capsys, monkeypatch):
    """``--act-granularity``: refused without HGQ (beta 0) and when unknown; a sweep does not reuse a
    training of the other granularity (it retrains), and one of the same is reused."""
    import dataclasses
    import json

    from swinfpga.cli import main
    from swinfpga.sweep import SweepConfig, SweepError, SweepPoint, _check, train_point

    assert main(["train", "swin-digits", "-o", str(tmp_path / "o"), "--act-granularity", "channel"]) == 2
    assert "needs --beta > 0" in capsys.readouterr().err
    assert main(["train", "swin-digits", "-o", str(tmp_path / "o"), "--beta", "1e-6", "--qat-lr", "0"]) == 2
    assert "--qat-lr must be > 0" in capsys.readouterr().err
    with pytest.raises(SweepError, match="--act-granularity 'word' unknown"):
        _check(SweepConfig("swin-digits", (SweepPoint(1e-6),), act_granularity="word"))
    cfg = SweepConfig("swin-digits", (SweepPoint(1e-6),), rtl=False, act_granularity="channel")
    mdir = tmp_path / "points" / "beta1e-06-channel" / "model"
    mdir.mkdir(parents=True)
    metrics = {"accuracy": {"golden": 0.975, "quantized": 0.975}, "keras_golden_mismatches": 0,
               "config": {"act_granularity": "channel"}, "train_seconds": {"qat": 1.0}}
    (mdir / "metrics.json").write_text(json.dumps(metrics))
    (mdir / "model.json").write_text("{}")
    assert train_point(cfg, cfg.points[0], str(tmp_path))["reused"] is True
    called = []
    import swinfpga.train as T

    def fake(spec, out, tcfg, *a, **kw):
        called.append(tcfg.act_granularity)
        return T.TrainResult(out, metrics)

    monkeypatch.setattr(T, "train_spec", fake)
    m = train_point(dataclasses.replace(cfg, act_granularity="tensor"), cfg.points[0], str(tmp_path))
    assert called == ["tensor"] and m["reused"] is False


def test_train_per_channel_bits_only_flow_is_bitexact(tmp_path, monkeypatch):
    """`swinfpga train --beta B --act-granularity channel --hgq-bits-only` on a tiny digits model: the HGQ
    epochs train bit variables only, the frozen per-channel formats reach the IR, and the flow's own
    Keras == golden check finds 0 mismatching logit codes."""
    import json

    import swinfpga.train as T
    from swinfpga.fixed import ChanFmt
    from swinfpga.models import StageSpec, SwinSpec

    seen: dict[str, list[str]] = {}
    orig = T._fit

    def spy(model, x, y, epochs, lr, cfg, seed, progress, tag, *a, **kw):
        seen[tag] = [v.path for v in model.trainable_variables]
        return orig(model, x, y, epochs, lr, cfg, seed, progress, tag, *a, **kw)

    monkeypatch.setattr(T, "_fit", spy)
    spec = SwinSpec(name="tiny-digits", img=(8, 8, 1), patch=4, embed=8,
                    stages=(StageSpec(1, 1, 2, 0), StageSpec(1, 1, 1, 0, merge=True)), mlp_ratio=1)
    cfg = T.TrainConfig(float_epochs=1, qat_epochs=1, finetune_epochs=1, beta=1e-5, act_granularity="channel",
                        hgq_bits_only=True)
    res = T.train_spec(spec, tmp_path / "run", cfg, seed=3, progress=lambda s: None)
    assert seen["HGQ"] and all("frac" in p for p in seen["HGQ"]), seen["HGQ"]
    assert any("kernel" in p for p in seen["QAT"])  # the fine-tune trains the weights again
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["keras_golden_mismatches"] == 0 and m == res.metrics
    assert m["config"]["act_granularity"] == "channel" and m["hgq"]["act_granularity"] == "channel"
    from swinfpga.ir import Model

    ir = Model.load(tmp_path / "run" / "model.json")
    assert any(isinstance(v.fmt, ChanFmt) for v in ir.infer().values())
