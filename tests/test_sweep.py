"""`swinfpga sweep`: Pareto selection, refusals, reuse of a finished training, and a 3-point run (two
trainings, one of them also traced at II 2) of a tiny model on a Dask local
cluster (train -> Keras == golden -> da4ml trace -> JSON/Markdown/PNG) that resumes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from swinfpga.sweep import SweepConfig, SweepError, SweepPoint, pareto, sweep
from tests.conftest import require_module


def test_pareto_keeps_only_undominated_points():
    rows = [
        {"key": "a", "accuracy_golden": 0.99, "da4ml_cost_total": 100.0},
        {"key": "b", "accuracy_golden": 0.98, "da4ml_cost_total": 50.0},
        {"key": "c", "accuracy_golden": 0.97, "da4ml_cost_total": 60.0},  # b is better on both
        {"key": "d", "accuracy_golden": 0.99, "da4ml_cost_total": 120.0},  # a: same accuracy, cheaper
        {"key": "e", "accuracy_golden": 0.90, "da4ml_cost_total": 10.0},
        {"key": "f", "accuracy_golden": 0.95},  # no RTL: not on the plot
    ]
    assert pareto(rows) == ["a", "b", "e"]


@pytest.mark.parametrize("cfg,msg", [
    (SweepConfig("swin-t-stage1", (SweepPoint(1e-7),)), "trainable reference models"),
    (SweepConfig("swin-digits", ()), "no points"),
    (SweepConfig("swin-digits", (SweepPoint(-1.0),)), "--beta must be >= 0"),
    (SweepConfig("swin-digits", (SweepPoint(1e-7, "tensor"),)), "granularity 'tensor' unknown"),
    (SweepConfig("swin-digits", (SweepPoint(1e-7), SweepPoint(1e-7))), "duplicate sweep points"),
    (SweepConfig("swin-digits", (SweepPoint(1e-7, bits=1),)), "--bits 1: must be in 2..16"),
    (SweepConfig("swin-digits", (SweepPoint(1e-7, bits=6),), init="somewhere"), "8 with --init"),
    (SweepConfig("swin-digits", (SweepPoint(1e-7, ii=0),)), "--ii 0: the initiation interval must be >= 1"),
    (SweepConfig("swin-digits", (SweepPoint(1e-7, ii=8),), rtl=False), "--no-rtl skips the RTL"),
    (SweepConfig("swin-digits", (SweepPoint(1e-7, ii=8), SweepPoint(1e-7, ii=8))), "duplicate sweep points"),
])
def test_sweep_refuses_bad_configs(cfg, msg, tmp_path):
    with pytest.raises(SweepError, match=msg):
        sweep(cfg, tmp_path / "s")


def test_point_keys_name_beta_granularity_and_budget():
    assert SweepPoint(0.0).key == "beta0-8bit"
    assert SweepPoint(0.0, bits=6).key == "beta0-6bit"
    assert SweepPoint(3e-7, "weight").key == "beta3e-07-weight"
    assert SweepPoint(3e-7, "channel", 6).key == "beta3e-07-channel-6bit"
    assert SweepPoint(3e-7, ii=8).key == "beta3e-07-channel-ii8"
    assert SweepPoint(3e-7, ii=8).train_key == SweepPoint(3e-7, ii=16).train_key == SweepPoint(3e-7).key


def test_pareto_counts_latency_and_ii():
    rows = [
        {"key": "fast", "accuracy_golden": 0.97, "da4ml_cost_total": 300.0, "latency_cycles": 100, "ii_cycles": 4},
        {"key": "small", "accuracy_golden": 0.97, "da4ml_cost_total": 200.0, "latency_cycles": 140, "ii_cycles": 8},
        {"key": "worse", "accuracy_golden": 0.97, "da4ml_cost_total": 250.0, "latency_cycles": 150, "ii_cycles": 8},
    ]
    assert pareto(rows) == ["fast", "small"]


def test_finished_training_is_reused_not_retrained(tmp_path):
    """A training already in OUT/points/<train key>/model (e.g. a copied `swinfpga train` output) is
    reused by every II point of that configuration; no Keras needed."""
    from swinfpga.sweep import run_point, train_point

    cfg = SweepConfig("swin-digits", (SweepPoint(1e-6), SweepPoint(1e-6, ii=8)), rtl=False)
    mdir = tmp_path / "points" / "beta1e-06-channel" / "model"
    mdir.mkdir(parents=True)
    metrics = {"accuracy": {"golden": 0.975, "quantized": 0.975}, "keras_golden_mismatches": 0,
               "hgq": {"ebops": 123.0, "zero_weights": 7}, "train_seconds": {"qat": 1.0}}
    (mdir / "metrics.json").write_text(json.dumps(metrics))
    (mdir / "model.json").write_text("{}")
    m = train_point(cfg, cfg.points[0], str(tmp_path))
    assert m["reused"] is True and m["accuracy"]["golden"] == 0.975
    rec = run_point(dataclasses.replace(cfg, points=cfg.points[:1]), cfg.points[0], str(tmp_path), m)
    assert rec["training_reused"] and rec["accuracy_golden"] == 0.975 and rec["ebops"] == 123.0
    assert rec["train_key"] == "beta1e-06-channel" and "da4ml_cost_total" not in rec
    assert json.loads((tmp_path / "points" / "beta1e-06-channel" / "point.json").read_text()) == rec


def test_cli_sweep_refusal_exits_2(tmp_path):
    from swinfpga.cli import main

    assert main(["sweep", "swin-digits", "-o", str(tmp_path / "s"), "--beta=-1"]) == 2


@pytest.mark.slow  # two tiny trainings + da4ml traces in a Dask worker: ~2-4 min on a loaded 2-core machine
def test_sweep_points_on_local_dask_cluster_share_training_and_resume(tmp_path):
    require_module("distributed")
    require_module("keras")
    require_module("quantizers")
    require_module("da4ml")
    from swinfpga.models import StageSpec, SwinSpec

    tiny = SwinSpec(name="tiny-sweep", img=(8, 8, 1), patch=4, embed=8,
                    stages=(StageSpec(1, 1, 2, 0), StageSpec(1, 1, 1, 0, merge=True)), mlp_ratio=1)
    cfg = SweepConfig("tiny-sweep", (SweepPoint(0.0), SweepPoint(1e-4, "weight"), SweepPoint(1e-4, "weight", ii=2)),
                      epochs=2, qat_epochs=2, spec=tiny)
    out = tmp_path / "sweep"
    logs: list[str] = []
    res = sweep(cfg, out, progress=logs.append)
    assert [p["key"] for p in res["points"]] == ["beta0-8bit", "beta0.0001-weight", "beta0.0001-weight-ii2"]
    # the II point reuses its configuration's training: same accuracy, no model of its own, traced at
    # II 2 (natural: 1) with its token-local work time-multiplexed: less hardware
    ii2, nat = res["points"][2], res["points"][1]
    assert ii2["accuracy_golden"] == nat["accuracy_golden"] and (nat["ii_cycles"], ii2["ii_cycles"]) == (1, 2)
    assert not (out / "points" / ii2["key"] / "model").exists() and (out / "points" / ii2["key"] / "rtl").is_dir()
    assert 0 < ii2["da4ml_cost_total"] < nat["da4ml_cost_total"]
    for p in res["points"][:2]:
        assert p["keras_golden_mismatches"] == 0
        assert p["da4ml_cost_total"] > 0 and p["latency_cycles"] > 0
        assert (out / "points" / p["key"] / "model" / "model.json").exists()
    hgq_pt = res["points"][1]
    assert hgq_pt["ebops"] > 0 and hgq_pt["zero_weights"] >= 0
    assert res["points"][0]["ebops"] is None
    assert set(res["pareto"]) <= {p["key"] for p in res["points"]} and res["pareto"]
    assert json.loads((out / "sweep.json").read_text()) == res
    md = (out / "sweep.md").read_text()
    assert "beta0.0001-weight" in md and "da4ml cost" in md
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    # resume: nothing re-runs, the finished records are kept as they were
    stamps = {p["key"]: (out / "points" / p["key"] / "point.json").stat().st_mtime_ns for p in res["points"]}
    logs.clear()
    again = sweep(cfg, out, progress=logs.append)
    assert again["points"] == res["points"]
    assert any("3 already done, 0 to run" in s for s in logs)
    assert stamps == {p: (out / "points" / p / "point.json").stat().st_mtime_ns for p in stamps}
