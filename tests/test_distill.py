"""Knowledge distillation (swinfpga.keras.distill, `swinfpga train --teacher DIR`): the loss is the
label cross-entropy at alpha 1, is smallest where the student matches the teacher at alpha 0, and a
tiny distilled training exports a bit-exact IR."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_module


def test_loss_is_label_ce_at_alpha_1_and_pulls_to_teacher_at_alpha_0():
    require_module("keras")
    import keras

    from swinfpga.keras import distill

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 16)
    tl = rng.normal(size=(16, 5)).astype(np.float32)
    s = rng.normal(size=(16, 5)).astype(np.float32)
    yt = distill.targets(y, tl)
    assert yt.shape == (16, 10) and np.array_equal(yt[:, :5].argmax(-1), y) and np.array_equal(yt[:, 5:], tl)
    ce = keras.losses.sparse_categorical_crossentropy(y, s, from_logits=True)
    np.testing.assert_allclose(np.asarray(distill.loss(5, 1.0, 2.0)(yt, s)), np.asarray(ce), rtol=1e-5)
    soft = distill.loss(5, 0.0, 2.0)
    at_teacher = np.asarray(soft(yt, tl))
    elsewhere = np.asarray(soft(yt, s))
    assert np.all(at_teacher <= elsewhere + 1e-6) and np.any(at_teacher < elsewhere - 1e-3)
    acc = float(distill.accuracy(5)(yt, np.eye(5, dtype=np.float32)[y]))
    assert acc == 1.0


def test_cli_rejects_bad_distill_alpha_and_missing_teacher(tmp_path, capsys):
    from swinfpga.cli import main

    assert main(["train", "swin-digits", "-o", str(tmp_path / "o"), "--teacher", str(tmp_path),
                 "--distill-alpha", "1.5"]) == 2
    assert "--distill-alpha must be in [0, 1]" in capsys.readouterr().err
    assert main(["train", "swin-digits", "-o", str(tmp_path / "o2"), "--teacher", str(tmp_path / "none")]) == 2
    assert "--teacher" in capsys.readouterr().err


@pytest.mark.slow  # ~1 min of TensorFlow graph tracing
def test_distilled_pruned_training_is_bitexact(tmp_path):
    require_module("keras")
    require_module("quantizers")
    import swinfpga.train as T
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec(name="tiny-digits", img=(8, 8, 1), patch=4, embed=8,
                    stages=(StageSpec(1, 1, 2, 0), StageSpec(1, 1, 1, 0, merge=True)), mlp_ratio=1)
    T.train_spec(spec, tmp_path / "teacher", T.TrainConfig(float_epochs=2, qat_epochs=1), seed=1,
                 progress=lambda s: None)
    logs: list[str] = []
    cfg = T.TrainConfig(float_epochs=1, qat_epochs=1, teacher=str(tmp_path / "teacher"), distill_alpha=0.3, prune=0.5)
    res = T.train_spec(spec, tmp_path / "run", cfg, seed=3, progress=logs.append)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m == res.metrics and m["keras_golden_mismatches"] == 0
    assert m["config"]["teacher"] == str(tmp_path / "teacher") and m["config"]["distill_alpha"] == 0.3
    assert any("distilling from" in s for s in logs)
