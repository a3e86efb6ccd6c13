"""HGQ2 model import: golden == HGQ2's own quantized Keras inference, bit for bit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_module

T, F, E = 8, 3, 8  # tokens, features, embedding
N_VEC = 128


def _build(seed: int, heads: int = 2, fuse: str = "none", act: str = "relu", train_steps: int = 0,
           per_element_acts: bool = False, tokens: int = T):
    """A token-sequence classifier of HGQ2 layers with randomised quantizer bit widths (per tensor for
    activations and tables, per element for weights), optionally a few training steps."""
    import keras
    from hgq.config import QuantizerConfigScope
    from hgq.layers import QAdd, QDense, QGlobalAveragePooling1D, QMultiHeadAttention

    keras.utils.set_random_seed(seed)
    scopes = [QuantizerConfigScope(place="table", heterogeneous_axis=())]
    if not per_element_acts:
        scopes.append(QuantizerConfigScope(place="datalane", heterogeneous_axis=()))
    for s in scopes:
        s.__enter__()
    try:
        inp = keras.Input((tokens, F), name="tokens")
        x = QDense(E, name="embed")(inp)
        a = QMultiHeadAttention(heads, E // heads, name="mha", fuse=fuse)(x, x)
        x = QAdd(name="add1")([x, a])
        h = QDense(2 * E, activation=act, name="fc1")(x)
        h = QDense(E, name="fc2")(h)
        x = QAdd(name="add2")([x, h])
        p = QGlobalAveragePooling1D(name="pool")(x)
        out = QDense(5, name="head")(p)
        model = keras.Model(inp, out, name=f"hgq2_seq_{seed}")
    finally:
        for s in reversed(scopes):
            s.__exit__(None, None, None)
    _randomise(model, np.random.default_rng(seed))
    if tokens & (tokens - 1):  # a mean over n != 2**k is exact only without ties: f after the pool >= f before
        fp, fh = model.get_layer("pool").iq.quantizer._f, model.get_layer("head").iq.quantizer._f
        fh.assign(np.full(fh.shape, max(float(np.max(fh.numpy())), float(np.max(fp.numpy()))), np.float32))
    if train_steps:
        rng = np.random.default_rng(seed + 1)
        xs = rng.normal(0, 1, (64, tokens, F)).astype(np.float32)
        ys = rng.integers(0, 5, 64)
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(xs, ys, batch_size=16, epochs=1, steps_per_epoch=train_steps, verbose=0)
    return model


def _randomise(model, rng: np.random.Generator, mha_names: tuple[str, ...] = ("mha",)) -> None:
    """Random integer bit widths: data quantizers per tensor, weights per element, softmax tables."""
    from hgq.quantizer.internal.fixed_point_quantizer import FixedPointQuantizerKBI, FixedPointQuantizerKIF

    def walk(layer):
        yield layer
        yield from layer._flatten_layers(include_self=False, recursive=True)

    seen = set()
    for layer in model.layers:
        for q in walk(layer):
            if id(q) in seen:
                continue
            seen.add(id(q))
            path = q.path if hasattr(q, "path") else q.name
            if isinstance(q, FixedPointQuantizerKIF):  # data lanes
                shape = q._i.shape
                if "exp_table" in path:
                    i, f = rng.integers(2, 4), rng.integers(1, 4)
                elif "inv_table" in path:
                    i, f = rng.integers(2, 5), rng.integers(2, 6)
                else:
                    i, f = rng.integers(0, 4), rng.integers(2, 6)
                q._i.assign(np.full(shape, i, np.float32))
                q._f.assign(np.full(shape, f, np.float32))
            elif isinstance(q, FixedPointQuantizerKBI):
                shape = q._b.shape
                if "table" in path:  # softmax tables: per tensor, unsigned
                    b = rng.integers(5, 9)
                    i = 1 if "exp" in path else rng.integers(0, 3)
                    q._b.assign(np.full(shape, b, np.float32))
                    q._i.assign(np.full(shape, i, np.float32))
                else:  # weights / biases: per element
                    q._b.assign(rng.integers(0, 7, shape).astype(np.float32))
                    q._i.assign(rng.integers(-1, 2, shape).astype(np.float32))
    for name in mha_names:  # swinfpga's attention reads one input format: q, k, v share it
        mha = model.get_layer(name)
        src = mha._value_dense.iq.quantizer
        for d in (mha._query_dense, mha._key_dense):
            if d.enable_iq and d.iq.quantizer is not src:
                d.iq.quantizer._i.assign(src._i)
                d.iq.quantizer._f.assign(src._f)


def _compare(model, n: int = N_VEC, seed: int = 0):
    from swinfpga import golden
    from swinfpga.frontend.hgq2 import from_hgq2_model

    ir = from_hgq2_model(model)
    fin = ir.input.fmt
    rng = np.random.default_rng(seed)
    t = int(model.inputs[0].shape[1])
    codes = rng.integers(fin.min_code, fin.max_code + 1, size=(n, t, F))
    y = np.asarray(model(fin.to_float(codes).astype(np.float32), training=False), dtype=np.float64)
    res = golden.run(ir, codes.reshape(n, t, 1, F), taps=True)
    of = ir.infer()[ir.output].fmt
    yc = np.ldexp(y, of.frac)
    assert np.all(yc == np.round(yc)), f"HGQ2 output is not a code of {of}"
    return ir, res, yc.astype(np.int64)


def _assert_exact(got: np.ndarray, want: np.ndarray, what: str) -> None:
    bad = np.argwhere(got != want)
    assert bad.size == 0, (f"{what}: {len(bad)} of {got.size} codes differ; first at {tuple(bad[0])}: "
                           f"golden {got[tuple(bad[0])]} vs HGQ2 {want[tuple(bad[0])]}")


@pytest.mark.parametrize("seed,heads,fuse,steps,tokens", [(0, 2, "none", 0, T), (1, 4, "qkv", 0, T),
                                                          (2, 2, "qkv", 3, T), (8, 2, "none", 0, 15)])
def test_hgq2_model_matches_golden(seed, heads, fuse, steps, tokens):
    """Random quantizer bits (and a few training steps): 0 of 128 x 5 logit codes differ; 15 tokens
    exercises global attention over a non-power-of-two count and a non-power-of-two mean."""
    require_module("hgq")
    from swinfpga.ir import nodes as N

    model = _build(seed, heads=heads, fuse=fuse, train_steps=steps, tokens=tokens)
    ir, res, want = _compare(model)
    _assert_exact(res.output, want, f"model output (seed {seed})")
    att = ir.node("mha")
    assert isinstance(att, N.WindowAttention) and att.softmax.kind == "hgq2" and att.is_global
    assert att.window_hw == (tokens, 1) and att.rel_bias is None


def test_hgq2_attention_probs_match():
    """The imported softmax reproduces QSoftmax's probabilities exactly (intermediate, not just the logits)."""
    require_module("hgq")
    import keras

    model = _build(3, train_steps=0)
    ir, res, _ = _compare(model, n=64)
    fin = ir.input.fmt
    codes = np.random.default_rng(0).integers(fin.min_code, fin.max_code + 1, size=(64, T, F))
    mha = model.get_layer("mha")
    x_in = keras.Model(model.inputs, mha.input[0] if isinstance(mha.input, list) else mha.input)
    xf = np.asarray(x_in(fin.to_float(codes).astype(np.float32)))
    _, scores = mha(xf, xf, return_attention_scores=True)
    att = ir.node("mha")
    p = np.ldexp(np.asarray(scores, dtype=np.float64), att.softmax.prob_fmt.frac)  # B, heads, T, S
    assert np.all(p == np.round(p))
    got = res.taps["mha.probs"][:, 0]  # B, nW=1, heads, N, N -> B, heads, N, N
    _assert_exact(got, p.astype(np.int64), "mha softmax probabilities")


def test_hgq2_softmax_kind_round_trips_json(tmp_path):
    require_module("hgq")
    from swinfpga import golden
    from swinfpga.ir import Model

    model = _build(4)
    ir, res, _ = _compare(model, n=64)
    ir.save(tmp_path / "m.json")
    back = Model.load(tmp_path / "m.json")
    assert back.node("mha").softmax.kind == "hgq2"
    fin = ir.input.fmt
    codes = np.random.default_rng(0).integers(fin.min_code, fin.max_code + 1, size=(64, T, 1, F))
    np.testing.assert_array_equal(golden.predict(back, codes), res.output)


def test_hgq2_unsupported_layer_named():
    require_module("hgq")
    import keras
    from hgq.layers import QDense

    from swinfpga.frontend.hgq2 import Hgq2ImportError, from_hgq2_model

    inp = keras.Input((T, F))
    x = QDense(E, name="embed")(inp)
    x = keras.layers.LayerNormalization(name="ln0")(x)
    out = QDense(5, name="head")(keras.layers.GlobalAveragePooling1D()(x))
    with pytest.raises(Hgq2ImportError, match=r"'ln0' \(LayerNormalization"):
        from_hgq2_model(keras.Model(inp, out))


def test_hgq2_per_element_activation_formats_refused():
    """Default HGQ2 data quantizers are per element; differing formats are refused by layer name."""
    require_module("hgq")
    from swinfpga.frontend.hgq2 import Hgq2ImportError, from_hgq2_model

    model = _build(5, per_element_acts=True)
    q = model.get_layer("fc2").iq.quantizer  # make its formats differ per element
    q._f.assign(np.random.default_rng(0).integers(2, 6, q._f.shape).astype(np.float32))
    with pytest.raises(Hgq2ImportError, match=r"per-element .*heterogeneous"):
        from_hgq2_model(model)


def test_hgq2_dispatch_from_keras_frontend():
    require_module("hgq")
    from swinfpga.frontend.keras import from_keras_model

    model = _build(6)
    ir = from_keras_model(model)
    assert ir.meta["source"] == "hgq2"


def test_hgq2_cli_convert_saved_model(tmp_path):
    require_module("hgq")
    from swinfpga import golden
    from swinfpga.ir import Model

    model = _build(7)
    path = tmp_path / "seq.keras"
    model.save(path)
    out = tmp_path / "proj"
    r = subprocess.run([sys.executable, "-m", "swinfpga.cli", "convert", str(path), "-o", str(out), "--no-hls",
                        "--no-rtl", "--vectors", "64"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    ir = Model.load(out / "model.json")
    vec = np.load(out / "vectors.npz")
    np.testing.assert_array_equal(golden.predict(ir, vec["x"]), vec["y"])
    x = ir.input.fmt.to_float(vec["x"]).reshape(-1, T, F).astype(np.float32)
    y = np.ldexp(np.asarray(model(x, training=False), dtype=np.float64), ir.infer()[ir.output].fmt.frac)
    _assert_exact(vec["y"], y.astype(np.int64), "CLI project vectors vs HGQ2")


def test_hgq2_data_fmt_heterogeneous_rules():
    """Per-element data formats: one fraction width whose every element holds the input's range -> the
    enclosing format (same codes); otherwise refused."""
    require_module("hgq")
    from hgq.quantizer import Quantizer, QuantizerConfig

    from swinfpga.fixed import Fmt
    from swinfpga.frontend.hgq2 import Hgq2ImportError, data_fmt

    q = Quantizer(QuantizerConfig("kif", "datalane", homogeneous_axis=(0,)))
    q.build((None, 4))
    q.quantizer._i.assign(np.array([[3, 4, 3, 5]], np.float32))
    q.quantizer._f.assign(np.full((1, 4), 2, np.float32))
    assert data_fmt(q, "x", (-8, 7, 2)) == Fmt.from_kif(1, 5, 2, "RND", "WRAP")  # [-2, 1.75] fits i=3
    with pytest.raises(Hgq2ImportError, match="heterogeneous"):
        data_fmt(q, "x", (-200, 200, 2))  # 50 would wrap in the i=3 elements only
    q.quantizer._f.assign(np.array([[2, 3, 2, 2]], np.float32))
    with pytest.raises(Hgq2ImportError, match="heterogeneous"):
        data_fmt(q, "x", (-8, 7, 2))


def test_hgq2_softmax_hls_template_matches_golden(tmp_path):
    """``swin::softmax_row_hgq2`` (hls_templates/swin_softmax.h), run with g++, == golden on random rows,
    with a wrapping sum quantizer, saturating exp input and masked elements."""
    from swinfpga.fixed import Fmt
    from swinfpga.lut import Lut, SoftmaxSpec
    from swinfpga.ops.fx import softmax_codes
    from tests.conftest import require_tool

    gxx = require_tool("g++")
    hls4ml = require_module("hls4ml")
    ap = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    rng = np.random.default_rng(0)
    n, rows = 5, 400
    score = Fmt(True, 14, 8)
    ein, eout = Fmt(True, 6, 3, "RND", "SAT"), Fmt(False, 8, 1, "RND", "SAT")
    rin, rout = Fmt(True, 7, 3, "RND", "WRAP"), Fmt(False, 8, 0, "RND", "SAT")
    prob = Fmt(True, 6, 2, "RND", "WRAP")
    exp = Lut("e", "custom", ein, ein.min_code, 0, eout, tuple(int(c) for c in rng.integers(0, 256, 64)))
    rec = Lut("r", "custom", rin, rin.min_code, 0, rout, tuple(int(c) for c in rng.integers(0, 256, 128)))
    sm = SoftmaxSpec(n, score, exp, rec, prob, kind="hgq2")
    s = rng.integers(-600, 600, (rows, n))
    valid = rng.random((rows, n)) < 0.85
    valid[:, 0] = True
    want = softmax_codes(sm, s, valid)

    def arr(a):
        return ", ".join(str(int(v)) for v in np.ravel(a))

    src = tmp_path / "t.cpp"
    src.write_text(f"""
#include <cstdio>
#include "swin_softmax.h"
struct EL {{ typedef {eout.ap_type} out_t; typedef ap_uint<8> code_t;
            static const int size = 64, shift = 0, calc_w = 12; static const long long offset = {ein.min_code}; }};
struct RL {{ typedef {rout.ap_type} out_t; typedef ap_uint<8> code_t;
            static const int size = 128, shift = 0, calc_w = 12; static const long long offset = {rin.min_code}; }};
struct SM {{ static const int n = {n}; typedef {score.ap_type} score_t; typedef ap_fixed<16, 10> diff_t;
            typedef {ein.ap_type} exp_in_t; typedef ap_ufixed<12, 5> sum_t; typedef {rin.ap_type} inv_in_t;
            typedef {prob.ap_type} prob_t; typedef EL exp_lut; typedef RL recip_lut; }};
const ap_uint<8> ET[64] = {{{arr(exp.table)}}};
const ap_uint<8> RT[128] = {{{arr(rec.table)}}};
const int S[{rows * n}] = {{{arr(s)}}};
const int V[{rows * n}] = {{{arr(valid.astype(int))}}};
int main() {{
    for (int r = 0; r < {rows}; r++) {{
        SM::score_t x[{n}]; bool v[{n}]; SM::prob_t p[{n}];
        for (int j = 0; j < {n}; j++) {{ x[j] = swin::from_code<SM::score_t>(S[r * {n} + j]); v[j] = V[r * {n} + j]; }}
        swin::softmax_row_hgq2<SM>(x, v, p, ET, RT);
        for (int j = 0; j < {n}; j++) std::printf("%d ", (int)swin::code_of(p[j]));
    }}
    return 0;
}}
""")
    exe = tmp_path / "t"
    r = subprocess.run([gxx, "-std=c++17", "-O0", f"-I{Path(__file__).resolve().parents[1] / 'hls_templates'}",
                        f"-I{ap}", str(src), "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    got = np.array(out.split(), dtype=np.int64)
    assert len(np.unique(want)) > 8  # a non-trivial comparison: many distinct probability codes
    _assert_exact(got.reshape(rows, n), want, "softmax_row_hgq2 (g++) vs golden")


def test_hgq2_mlp_vector_input_matches_golden():
    """A plain HGQ2 MLP on a (features,) vector (the common jet-tagging shape), default per-element
    configs whose formats are still uniform, per-element weight bits, a folded batch norm, a dropout, a
    separate ReLU layer."""
    require_module("hgq")
    import keras
    from hgq.layers import QBatchNormDense, QDense

    from swinfpga import golden
    from swinfpga.frontend.hgq2 import from_hgq2_model

    keras.utils.set_random_seed(9)
    rng0 = np.random.default_rng(90)
    inp = keras.Input((16,))
    h = keras.layers.ReLU(name="r1")(QDense(32, name="d1")(inp))
    h = QBatchNormDense(16, activation="relu", name="d2")(keras.layers.Dropout(0.2, name="drop")(h))
    model = keras.Model(inp, QDense(5, name="out")(h))
    bn = model.get_layer("d2")
    bn.moving_mean.assign(rng0.normal(0, 0.5, 32).astype(np.float32))
    bn.moving_variance.assign(rng0.uniform(0.5, 2, 32).astype(np.float32))
    rng = np.random.default_rng(9)
    for layer in (ly for ly in model.layers[1:] if hasattr(ly, "kq")):
        kq = layer.kq.quantizer
        kq._b.assign(rng.integers(0, 7, kq._b.shape).astype(np.float32))
    ir = from_hgq2_model(model)
    fin = ir.input.fmt
    codes = rng.integers(fin.min_code, fin.max_code + 1, size=(N_VEC, 16))
    y = np.asarray(model(fin.to_float(codes).astype(np.float32), training=False), dtype=np.float64)
    want = np.ldexp(y, ir.infer()[ir.output].fmt.frac)
    _assert_exact(golden.predict(ir, codes), want.astype(np.int64), "HGQ2 MLP output")


@pytest.mark.parametrize("seed", [0, 1])
def test_hgq2_output_quantizers_einsum_and_plain_add(seed):
    """Output quantizers (oq) followed by the next layer's input quantizer (requantizing nodes), a
    QEinsumDense embedding, a plain keras Add, layers without bias: still bit-exact."""
    require_module("hgq")
    import keras
    from hgq.config import QuantizerConfigScope
    from hgq.layers import QAdd, QDense, QEinsumDense, QGlobalAveragePooling1D, QMultiHeadAttention

    keras.utils.set_random_seed(seed)
    with QuantizerConfigScope(place="table", heterogeneous_axis=()), \
            QuantizerConfigScope(place="datalane", heterogeneous_axis=()):
        inp = keras.Input((T, F), name="tokens")
        x = QEinsumDense("btf,fo->bto", (T, E), bias_axes="o", name="embed", enable_oq=True)(inp)
        a = QMultiHeadAttention(2, E // 2, name="mha", use_bias=bool(seed))(x, x)
        x = keras.layers.Add(name="add1")([x, a])
        h = QDense(2 * E, activation="relu", name="fc1", enable_oq=True)(x)
        h = QDense(E, name="fc2", use_bias=False)(h)
        x = QAdd(name="add2", enable_oq=True)([x, h])
        out = QDense(5, name="head")(QGlobalAveragePooling1D(name="pool")(x))
        model = keras.Model(inp, out, name=f"hgq2_oq_{seed}")
    _randomise(model, np.random.default_rng(seed))
    ir, res, want = _compare(model)
    _assert_exact(res.output, want, "model output")
    assert "mha_iq" in [n.name for n in ir.nodes]  # embed's oq, then mha's own input quantizer


@pytest.mark.parametrize("case", ["mask", "cross"])
def test_hgq2_attention_limits_named(case):
    require_module("hgq")
    import keras
    from hgq.layers import QDense, QMultiHeadAttention

    from swinfpga.frontend.hgq2 import Hgq2ImportError, from_hgq2_model

    inp = keras.Input((T, F))
    x = QDense(E, name="embed")(inp)
    mha = QMultiHeadAttention(2, E // 2, name="att")
    if case == "mask":
        y = mha(x, x, use_causal_mask=True)
        needle = r"'att' \(QMultiHeadAttention\).*use_causal_mask"
    else:
        y = mha(x, QDense(E, name="other")(inp))
        needle = r"'att' \(QMultiHeadAttention\).*cross-attention"
    with pytest.raises(Hgq2ImportError, match=needle):
        from_hgq2_model(keras.Model(inp, y))


def test_hgq2_import_self_check_names_the_layer(monkeypatch):
    """Every import compares each layer with HGQ2's inference on random inputs (meta['hgq2_check']); a wrong
    softmax (here: off by one LSB) is reported at the attention layer, by name and element."""
    require_module("hgq")
    from swinfpga.frontend.hgq2 import Hgq2ImportError, from_hgq2_model
    from swinfpga.ops import softmax

    model = _build(10)
    ir = from_hgq2_model(model)
    assert ir.meta["hgq2_check"] == {"inputs": 256, "layers": len(model.layers) - 1, "mismatches": 0}
    orig = softmax.KINDS["hgq2"]
    monkeypatch.setitem(softmax.KINDS, "hgq2", lambda A, spec, s, v: orig(A, spec, s, v) + 1)
    with pytest.raises(Hgq2ImportError, match=r"layer 'mha' \(QMultiHeadAttention\).*first at"):
        from_hgq2_model(model)


def test_hgq2_jet_16x3():
    """The issue's jet shape (16 particles x 3 features, embed 16, 2 heads, 2 blocks), per-tensor data
    quantizers with random bit widths: imports, bit-exact.  (With HGQ2's default per-element data
    quantizers, one epoch of training gave the value projection's output quantizer i in [2, 3] over its
    256 elements: refused by name, see test_hgq2_per_element_activation_formats_refused.)"""
    require_module("hgq")
    import keras
    from hgq.config import QuantizerConfigScope
    from hgq.layers import QAdd, QDense, QGlobalAveragePooling1D, QMultiHeadAttention

    from swinfpga import golden
    from swinfpga.frontend.hgq2 import from_hgq2_model

    t, f, e = 16, 3, 16
    keras.utils.set_random_seed(11)
    with QuantizerConfigScope(place="datalane", heterogeneous_axis=()):
        inp = keras.Input((t, f), name="particles")
        x = QDense(e, name="embed")(inp)
        for blk in range(2):
            a = QMultiHeadAttention(2, e // 2, name=f"mha{blk}")(x, x)
            x = QAdd(name=f"res{blk}a")([x, a])
            h = QDense(2 * e, activation="relu", name=f"fc{blk}a")(x)
            x = QAdd(name=f"res{blk}b")([x, QDense(e, name=f"fc{blk}b")(h)])
        model = keras.Model(inp, QDense(5, name="head")(QGlobalAveragePooling1D(name="pool")(x)), name="jet16x3")
    rng = np.random.default_rng(11)
    _randomise(model, rng, mha_names=("mha0", "mha1"))
    ir = from_hgq2_model(model)
    assert [n.name for n in ir.nodes if type(n).__name__ == "WindowAttention"] == ["mha0", "mha1"]
    fin = ir.input.fmt
    codes = rng.integers(fin.min_code, fin.max_code + 1, size=(N_VEC, t, f))
    y = np.asarray(model(fin.to_float(codes).astype(np.float32), training=False), dtype=np.float64)
    want = np.ldexp(y, ir.infer()[ir.output].fmt.frac)
    _assert_exact(golden.predict(ir, codes.reshape(N_VEC, t, 1, f)), want.astype(np.int64), "jet-16x3 output")


def _per_channel_bits(model, names, rng: np.random.Generator, prune: float = 0.2) -> int:
    """Give the input quantizers of layers ``names`` per-channel bits (the same on every token): random
    fraction bits, a fraction ``prune`` of channels at 0 bits.  Returns the number of pruned channels.
    An attention layer: its q, k and v input quantizers, all the same."""
    pruned = 0
    qs = []
    for name in names:
        layer = model.get_layer(name)
        if hasattr(layer, "_value_dense"):
            qs.append([d.iq.quantizer for d in (layer._query_dense, layer._key_dense, layer._value_dense)])
        else:
            qs.append([layer.iq.quantizer])
    for group in qs:
        q = group[0]
        c = q._f.shape[-1]
        f = rng.integers(1, 5, c).astype(np.float32)
        i = np.full(c, float(np.max(q._i.numpy())), np.float32)
        dead = rng.random(c) < prune
        dead[0] = True
        pruned += int(dead.sum())
        i[dead], f[dead] = -2.0, 1.0  # unsigned with i + f <= 0: HGQ2 outputs 0 (a pruned channel)
        k = np.where(dead, 0.0, np.max(q._k.numpy())).astype(np.float32)
        for qq in group:
            qq._f.assign(np.broadcast_to(f, qq._f.shape).astype(np.float32))
            qq._i.assign(np.broadcast_to(i, qq._i.shape).astype(np.float32))
            qq._k.assign(np.broadcast_to(k, qq._k.shape).astype(np.float32))
    return pruned


@pytest.mark.parametrize("seed", [11, 12])
def test_hgq2_per_channel_activation_formats_import_as_chan_fmt(seed):
    """HGQ2 data quantizers whose bits differ per channel only (with pruned channels) on token-local layers
    import as per-channel formats: golden == HGQ2 on every logit code; the C++ and RTL back ends follow
    ChanFmt (tests/test_chan_hls.py, tests/test_chan_rtl.py)."""
    require_module("hgq")
    from swinfpga.fixed import ChanFmt

    model = _build(seed, per_element_acts=True)
    _per_channel_bits(model, ("fc2", "head"), np.random.default_rng(seed))
    ir, res, want = _compare(model)
    fm = ir.infer()
    chan = {k: v.fmt for k, v in fm.items() if isinstance(v.fmt, ChanFmt)}
    assert {"fc1_oq", "pool"} <= set(chan), sorted(chan)  # fc1 (ReLU, WRAP) gets a requant node after it
    assert all(any(w == 0 for w, _ in f.chans) for f in chan.values())  # pruned channels came through
    _assert_exact(res.output, want, "golden vs HGQ2 with per-channel formats")


def test_hgq2_per_channel_formats_on_attention_inputs_refused():
    require_module("hgq")
    from swinfpga.frontend.hgq2 import Hgq2ImportError, from_hgq2_model

    model = _build(13, per_element_acts=True)
    _per_channel_bits(model, ("mha",), np.random.default_rng(0))
    with pytest.raises(Hgq2ImportError, match=r"mha.*(heterogeneous|0 bits.*whole channels only)"):
        from_hgq2_model(model)
