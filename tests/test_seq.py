"""Token sequences and rectangular / global windows through Keras (quantized Keras == golden bit
for bit), the users' own data (.npz validation), `swinfpga train ARCH.yaml --data`, and the
committed seq-digits reference (8 row tokens of 8 pixels, global attention)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_module

keras = require_module("keras")
require_module("quantizers")

from swinfpga import golden  # noqa: E402
from swinfpga.arch import loads_arch  # noqa: E402
from swinfpga.cli import main  # noqa: E402
from swinfpga.data import DataError, digits_seq_split, digits_split, load_user_data  # noqa: E402
from swinfpga.fixed import Fmt  # noqa: E402
from swinfpga.ir import Model  # noqa: E402
from swinfpga.ir import nodes as N  # noqa: E402
from swinfpga.models import SEQ_DIGITS, StageSpec, SwinSpec  # noqa: E402
from swinfpga.project import MODELS_DIR  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "jet-16x3.yaml"


def to_codes(v: np.ndarray, frac: int) -> np.ndarray:
    c = np.ldexp(np.asarray(v, dtype=np.float64), frac)
    assert np.all(c == np.round(c)), "Keras values are off the fixed-point grid"
    return c.astype(np.int64)


@pytest.mark.parametrize("spec", [
    SwinSpec("seq-g", (15, 1, 3), 1, 8, (StageSpec(1, 2, "global", 0),), norm="ln", classes=4,
             in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=True, rel_bias=False),
    SwinSpec("seq-w", (12, 1, 3), 1, 8, (StageSpec(1, 2, (4, 1), 0),), norm="bn", classes=3,
             in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=True, rel_bias=True),
    SwinSpec("seq-int", (8, 1, 3), 1, 8, (StageSpec(1, 2, 4, 0),), norm="ln", act="gelu", classes=2,
             in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=True, rel_bias=True),  # int window on a sequence: 4x1
    SwinSpec("seq-mask", (12, 1, 3), 1, 8, (StageSpec(2, 2, (4, 1), 0),), norm="ln", classes=3,
             in_fmt=Fmt(True, 8, 3, "RND", "SAT"), seq=True, rel_bias=True, pad_mask=True),
    SwinSpec("rect", (4, 8, 8), 0, 8, (StageSpec(2, 2, (2, 4), 1),), norm="bn", classes=3,
             in_fmt=Fmt(True, 8, 3, "RND", "SAT")),
], ids=lambda s: s.name)
def test_keras_sequences_and_rectangular_windows_equal_golden(spec, tmp_path) -> None:
    """Calibrated (untrained) quantized Keras model == its IR through golden, every layer; the
    model survives a .keras save / load."""
    from swinfpga.frontend.keras import from_keras_model
    from swinfpga.keras import build_model, calibrate, set_quantized

    keras.utils.set_random_seed(0)
    km = build_model(spec)
    rng = np.random.default_rng(0)
    fmt = spec.in_fmt
    x = rng.integers(fmt.min_code, fmt.max_code + 1, size=(64, *spec.img))
    if spec.pad_mask:  # padding: trailing tokens all zero, a different number per sample (all: sample 0)
        for i in range(64):
            x[i, 12 - i % 13:] = 0
    calibrate(km, x * fmt.lsb)
    set_quantized(km, True)
    ir = from_keras_model(km, name=spec.name)
    attn = ir.of_type(N.WindowAttention)
    assert [a.window_hw for a in attn] == [spec.stage_window(0)] * len(attn)
    assert all((a.rel_bias is None) == (not spec.rel_bias) for a in attn)
    assert all(a.mask == ("mask" if spec.pad_mask else None) for a in attn)
    assert (ir.node("pool").mask is not None) == spec.pad_mask
    info = ir.infer()
    names = [n.name for n in ir.nodes[1:]]
    sub = keras.Model(km.inputs[0], [km.get_layer(n).output for n in names])
    outs = sub(x * fmt.lsb, training=False)
    g = golden.run(ir, x)
    for n, o in zip(names, outs, strict=True):
        c = to_codes(np.asarray(o), info[n].fmt.frac)
        bad = np.argwhere(c != g.outputs[n])
        assert not len(bad), f"{n}: {len(bad)} codes differ, first at {tuple(bad[0])}"
    km.save(tmp_path / "m.keras")
    km2 = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_array_equal(np.asarray(km2(x * fmt.lsb)), np.asarray(km(x * fmt.lsb)))
    # the IR survives a JSON round trip bit for bit (rectangular windows become tuples)
    ir2 = Model.from_json(json.loads(json.dumps(ir.to_json())))
    np.testing.assert_array_equal(golden.predict(ir2, x), g.output)


# ----- users' own data ------------------------------------------------------------------------
def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _jet_data(n: int = 96, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 2 * n)
    x = rng.normal(0, 0.5, (2 * n, 16, 3)) + (y[:, None, None] - 2) * 0.6  # separable by the mean
    x = np.clip(x, -3.9, 3.9)
    return {"x_train": x[:n], "y_train": y[:n], "x_test": x[n:], "y_test": y[n:]}


def test_user_data_loads_and_quantizes(tmp_path) -> None:
    spec = loads_arch(EXAMPLE.read_text())
    d = _jet_data()
    s = load_user_data(_npz(tmp_path / "d.npz", **d), spec)
    assert s.x_train.shape == (96, 16, 1, 3) and s.x_train.dtype == np.int64
    np.testing.assert_array_equal(s.x_train[:, :, 0], np.round(d["x_train"] * 32).astype(np.int64))  # fixed<8,3>
    np.testing.assert_array_equal(s.y_test, d["y_test"])


@pytest.mark.parametrize("change,match", [
    ({"x_test": None}, "missing key.*x_test"),
    ({"x_train": np.zeros((4, 16, 4))}, r"x_train has shape \(4, 16, 4\).*expected numeric \(n, 16, 3\)"),
    ({"y_train": np.zeros(96)}, "y_train has shape .* dtype float64; expected integer class ids"),
    ({"y_test": np.full(96, 7)}, r"y_test has labels in \[7, 7\]; expected \[0, 5\)"),
    ({"x_train": np.full((96, 16, 3), 9.0)}, "outside the input format"),
    ({"x_test": np.full((96, 16, 3), np.nan)}, "NaN"),
    ({"x_train": np.array(["a"] * 96)}, "x_train has shape"),
])
def test_user_data_errors_name_the_key(tmp_path, change, match) -> None:
    spec = loads_arch(EXAMPLE.read_text())
    d = _jet_data()
    for k, v in change.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    with pytest.raises(DataError, match=match):
        load_user_data(_npz(tmp_path / "d.npz", **d), spec)
    with pytest.raises(DataError, match="does not exist"):
        load_user_data(tmp_path / "none.npz", spec)


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_train_arch_on_user_data_cli(tmp_path, capsys) -> None:
    data = _npz(tmp_path / "jet.npz", **_jet_data())
    out = tmp_path / "run"
    assert main(["train", str(EXAMPLE), "--data", str(data), "-o", str(out), "--epochs", "1"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["keras_golden_mismatches"] == 0 and m["test_samples"] == 96
    ir = Model.load(out / "model.json")
    assert ir.input.shape == (16, 1, 3) and "jet.npz" in ir.meta["data"]
    assert all(a.is_global for a in ir.of_type(N.WindowAttention))
    # errors: no --data for an architecture file; --data for a reference model
    assert main(["train", str(EXAMPLE), "-o", str(tmp_path / "x")]) == 2
    assert "needs --data" in _err(capsys)
    assert main(["train", "swin-digits", "--data", str(data), "-o", str(tmp_path / "y")]) == 2
    assert "--data is for architecture files" in _err(capsys)


# ----- seq-digits (committed) -------------------------------------------------------------------
def test_digits_seq_split_is_the_digits_rows() -> None:
    a, b = digits_split(), digits_seq_split()
    np.testing.assert_array_equal(b.x_test[:, :, 0, :], a.x_test[..., 0])  # token r = image row r
    np.testing.assert_array_equal(b.y_test, a.y_test)


@cache
def _seq_digits():
    import swinfpga.keras  # noqa: F401

    d = MODELS_DIR / "seq-digits"
    if not (d / "model.keras").exists():
        pytest.fail(f"no committed trained copy of seq-digits in {d}; run `swinfpga train seq-digits -o {d} --force`")
    ir = Model.load(d / "model.json")
    return keras.models.load_model(d / "model.keras", compile=False), ir, golden.run(ir, digits_seq_split().x_test)


def test_seq_digits_golden_accuracy_and_shape() -> None:
    _, ir, g = _seq_digits()
    assert ir.input.shape == SEQ_DIGITS.img
    attn = ir.of_type(N.WindowAttention)
    assert len(attn) == 2 and all(a.is_global and a.tokens == 8 for a in attn)
    acc = float(np.mean(np.argmax(g.output, -1) == digits_seq_split().y_test))
    assert acc >= 0.95, f"seq-digits golden accuracy {acc:.4f} < 0.95"
    m = json.loads((MODELS_DIR / "seq-digits" / "metrics.json").read_text())
    assert m["accuracy"]["golden"] == pytest.approx(acc)


def test_seq_digits_keras_equals_golden_every_layer() -> None:
    km, ir, g = _seq_digits()
    x = digits_seq_split().x_test
    info = ir.infer()
    names = [n.name for n in ir.nodes[1:]]
    sub = keras.Model(km.inputs[0], [km.get_layer(n).output for n in names])
    outs = sub(x * ir.input.fmt.lsb, training=False)
    bad = []
    for n, o in zip(names, outs, strict=True):
        c = to_codes(np.asarray(o), info[n].fmt.frac)
        if not np.array_equal(c, g.outputs[n]):
            bad.append(f"{n}: {int(np.count_nonzero(c != g.outputs[n]))} of {c.size} codes differ")
    assert not bad, "; ".join(bad)
