"""Committed trained reference models: accuracy targets (read from metrics.json AND recomputed from
the committed IR with the golden model), and the `train` entry point (refusals, a 1-epoch smoke run)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from swinfpga import golden
from swinfpga.data import digits_split
from swinfpga.ir import Model
from swinfpga.project import MODELS_DIR
from tests.conftest import require_module

NAMES = ["swin-digits", "swin-digits-ln", "swin-free-digits"]


def load(name: str) -> tuple[dict, Model]:
    d = MODELS_DIR / name
    if not (d / "metrics.json").exists():
        pytest.fail(f"no committed trained copy of {name} in {d} (metrics.json); commit it or retrain")
    return json.loads((d / "metrics.json").read_text()), Model.load(d / "model.json")


@pytest.mark.parametrize("name", NAMES)
def test_committed_metrics_match_golden_recomputation(name):
    metrics, ir = load(name)
    split = digits_split()
    acc = float(np.mean(golden.predict(ir, split.x_test).argmax(-1) == split.y_test))
    assert metrics["test_samples"] == len(split.y_test) == 360
    assert acc == pytest.approx(metrics["accuracy"]["golden"], abs=1e-12)
    assert metrics["accuracy"]["quantized"] == pytest.approx(acc, abs=1e-12)  # Keras == golden
    assert metrics["keras_golden_mismatches"] == 0


def test_swin_digits_accuracy_targets():
    metrics, ir = load("swin-digits")
    split = digits_split()
    acc = float(np.mean(golden.predict(ir, split.x_test).argmax(-1) == split.y_test))
    f = metrics["accuracy"]["float"]
    assert acc >= 0.97, f"golden {acc:.4f} below issue 9's 97%"
    # HGQ bits at 70% pruned weights: the integer model stays within 1 point of its own float weights
    assert acc >= f - 0.01, f"golden {acc:.4f} more than 1 point below float {f:.4f}"


@pytest.mark.parametrize("name", NAMES)
def test_committed_formats_within_8_bits(name):
    """Weights and token activations <= 8 bits (biases 12; LayerNorm internals and softmax wider)."""
    from swinfpga.ir import nodes as N

    _, ir = load(name)
    for n in ir.nodes:
        lins = {"PatchEmbed": ["linear"], "Dense": ["linear"], "PatchMerging": ["linear"],
                "WindowAttention": ["q", "k", "v", "proj"], "Mlp": ["fc1", "fc2"]}.get(type(n).__name__, [])
        for attr in lins:
            lin = getattr(n, attr)
            assert lin.w_fmt.width <= 8 and lin.out_fmt.width <= 8, (n.name, attr)
        if isinstance(n, N.WindowAttention):
            assert n.score_fmt.width <= 8 and n.attn_fmt.width <= 8 and n.bias_fmt.width <= 8
        if isinstance(n, N.Add | N.Pool):
            assert n.out_fmt.width <= 8


def test_train_refuses_existing_dir(tmp_path):
    from swinfpga.train import TrainError, train

    (tmp_path / "out").mkdir()
    with pytest.raises(TrainError, match="exists; pass --force"):
        train("swin-digits", tmp_path / "out", epochs=1)


def test_train_rejects_unknown_model(tmp_path):
    from swinfpga.train import TrainError, train

    with pytest.raises(TrainError, match="trainable reference models are swin-digits"):
        train("swin-t-stage1", tmp_path / "o", epochs=1)


@pytest.mark.slow  # ~1 min of TensorFlow graph tracing (3 min on a loaded 2-core machine)
def test_train_smoke_one_epoch(tmp_path):
    require_module("keras")
    require_module("quantizers")
    from swinfpga.frontend.keras import from_keras_file
    from swinfpga.models import StageSpec, SwinSpec
    from swinfpga.train import TrainConfig, train_spec

    tiny = SwinSpec(name="tiny-digits", img=(8, 8, 1), patch=4, embed=8,
                    stages=(StageSpec(1, 1, 2, 0), StageSpec(1, 1, 1, 0, merge=True)), mlp_ratio=1)
    logs: list[str] = []
    res = train_spec(tiny, tmp_path / "run", TrainConfig(float_epochs=1, qat_epochs=1), seed=3,
                     progress=logs.append)
    out = tmp_path / "run"
    for f in ("model.keras", "model.json", "metrics.json"):
        assert (out / f).exists(), f
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["accuracy"]) == {"float", "quantized", "golden"} and m["test_samples"] == 360
    assert m == res.metrics
    assert m["keras_golden_mismatches"] == 0
    assert m["accuracy"]["quantized"] == m["accuracy"]["golden"]
    ir = Model.load(out / "model.json")
    a, b = from_keras_file(out / "model.keras").to_json(), ir.to_json()
    a.pop("meta"), b.pop("meta")
    assert a == b
    assert any("QAT" in s for s in logs)


def test_cli_train_refuses_existing_dir(tmp_path, capsys):
    from swinfpga.cli import main

    (tmp_path / "out").mkdir()
    assert main(["train", "swin-digits", "-o", str(tmp_path / "out")]) == 2


def test_cli_train_rejects_negative_beta(tmp_path, capsys):
    from swinfpga.cli import main

    assert main(["train", "swin-digits", "-o", str(tmp_path / "o"), "--beta=-1e-6"]) == 2
    assert "--beta must be >= 0" in capsys.readouterr().err


def test_committed_swin_digits_is_hgq_trained():
    """The committed swin-digits came from HGQ training: its record says so, and some weights are 0."""
    metrics, ir = load("swin-digits")
    h = metrics["hgq"]
    assert h["beta"] > 0 and h["granularity"] in ("channel", "weight")
    assert h["ebops"] < h["ebops_before"]
    from swinfpga.ir import nodes as N

    zero = sum(int(np.count_nonzero(n.linear.weight == 0)) for n in ir.nodes if isinstance(n, N.PatchEmbed | N.Dense))
    zero += sum(int(np.count_nonzero(getattr(n, a).weight == 0)) for n in ir.nodes
                if isinstance(n, N.WindowAttention) for a in ("q", "k", "v", "proj"))
    assert zero > 0
    assert metrics["accuracy"]["golden"] >= 0.97
