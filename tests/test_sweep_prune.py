"""`swinfpga sweep --prune`: the pruned fraction as a sweep dimension.  The key rule (old keys unchanged),
the CLI cross product, the argument check, reuse only of a training with the same fraction, and one tiny
pruned point (no Dask, no RTL) whose IR has at least half of every linear map's weights at 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from swinfpga.sweep import SweepConfig, SweepError, SweepPoint, markdown, run_point, sweep, train_point
from tests.conftest import require_module


def test_prune_suffix_only_when_pruned_and_old_keys_unchanged():
    # keys of sweep directories written before --prune existed (README, bench/results): must not change
    old = {SweepPoint(0.0): "beta0-8bit", SweepPoint(0.0, bits=6): "beta0-6bit",
           SweepPoint(3e-7, "weight"): "beta3e-07-weight", SweepPoint(3e-7, "channel", 6): "beta3e-07-channel-6bit",
           SweepPoint(3e-7, ii=4): "beta3e-07-channel-ii4", SweepPoint(6e-7, ii=16): "beta6e-07-channel-ii16",
           SweepPoint(1e-6, prune=0.0): "beta1e-06-channel"}
    assert {p: p.key for p in old} == old
    assert SweepPoint(0.0, prune=0.7).key == "beta0-8bit-p0.7"
    assert SweepPoint(0.0, bits=6, prune=0.5).key == "beta0-6bit-p0.5"
    assert SweepPoint(3e-7, "channel", 6, prune=0.25).key == "beta3e-07-channel-6bit-p0.25"
    p = SweepPoint(3e-7, ii=8, prune=0.5)
    assert p.key == "beta3e-07-channel-p0.5-ii8"
    assert p.train_key == SweepPoint(3e-7, ii=16, prune=0.5).train_key == SweepPoint(3e-7, prune=0.5).key
    assert p.train_key != SweepPoint(3e-7).train_key


def _cli_points(monkeypatch, tmp_path, *args: str) -> tuple[int, SweepConfig]:
    """Run `swinfpga sweep` with ``args`` with the sweep itself replaced by a recorder."""
    import swinfpga.sweep as S
    from swinfpga.cli import main

    seen: list[SweepConfig] = []

    def fake(cfg, out, **kw):
        S._check(cfg)
        seen.append(cfg)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "sweep.md").write_text("ok\n")
        return {"points": [{"key": p.key} for p in cfg.points]}

    monkeypatch.setattr(S, "sweep", fake)
    rc = main(["sweep", "swin-digits", "-o", str(tmp_path / "s"), *args])
    return rc, (seen[0] if seen else None)


def test_cli_prune_is_a_cross_product_dimension(monkeypatch, tmp_path):
    rc, cfg = _cli_points(monkeypatch, tmp_path, "--beta", "0", "--beta", "3e-7", "--granularity", "channel",
                          "--granularity", "weight", "--prune", "0", "0.5", "0.7", "--ii", "4", "8")
    assert rc == 0
    # beta 0 has one granularity; (1 + 2) trainings x 3 fractions x 2 IIs, prune varying before II
    assert [p.key for p in cfg.points] == [
        f"{t}{'' if f == 0 else f'-p{f:g}'}-ii{ii}"
        for t in ("beta0-8bit", "beta3e-07-channel", "beta3e-07-weight") for f in (0.0, 0.5, 0.7) for ii in (4, 8)]
    assert {p.prune for p in cfg.points} == {0.0, 0.5, 0.7}
    assert len({p.train_key for p in cfg.points}) == 9
    # default: no pruning, the keys of before
    rc, cfg = _cli_points(monkeypatch, tmp_path, "--beta", "3e-7")
    assert rc == 0 and [(p.key, p.prune) for p in cfg.points] == [("beta3e-07-channel", 0.0)]


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1])
def test_prune_out_of_range_is_refused(bad, tmp_path):
    with pytest.raises(SweepError, match=r"--prune must be in \[0, 1\)"):
        sweep(SweepConfig("swin-digits", (SweepPoint(1e-7), SweepPoint(1e-7, prune=bad))), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_cli_prune_out_of_range_exits_2_with_one_message(tmp_path, capsys):
    from swinfpga.cli import main

    assert main(["sweep", "swin-digits", "-o", str(tmp_path / "s"), "--beta", "0", "--prune", "0", "1.2"]) == 2
    err = capsys.readouterr().err
    assert "--prune must be in [0, 1)" in err and "1.2" in err and "Traceback" not in err


def test_training_reused_only_with_the_same_prune_fraction(tmp_path, monkeypatch):
    """A finished training is reused when its recorded prune fraction is the point's; one whose fraction
    differs (e.g. an unpruned `swinfpga train` output copied into a `-p0.5` directory) is retrained."""
    import swinfpga.train as T

    pt = SweepPoint(0.0, prune=0.5)
    cfg = SweepConfig("swin-digits", (pt,), rtl=False)
    mdir = tmp_path / "points" / "beta0-8bit-p0.5" / "model"
    mdir.mkdir(parents=True)
    metrics = {"accuracy": {"golden": 0.97, "quantized": 0.97}, "keras_golden_mismatches": 0,
               "config": {"prune": 0.5}, "prune": {"target": 0.5, "sparsity": 0.5, "zero_weights": 1234,
                                                   "weights": 2468}, "train_seconds": {"qat": 1.0}}
    (mdir / "metrics.json").write_text(json.dumps(metrics))
    (mdir / "model.json").write_text("{}")
    m = train_point(cfg, pt, str(tmp_path))
    assert m["reused"] is True
    rec = run_point(cfg, pt, str(tmp_path), m)
    assert rec["prune"] == 0.5 and rec["zero_weights"] == 1234 and rec["ebops"] is None
    md = markdown({"model": "swin-digits", "board": "vu13p", "pareto": [], "points": [rec]})
    assert "| prune |" in md and "| beta0-8bit-p0.5 | 0 | channel | 8 | 0.5 | 97.00% | 0 | - | 1234 |" in md

    calls: list[float] = []

    def no_training(spec, out, tcfg, *a, **kw):
        calls.append(tcfg.prune)
        raise RuntimeError("retrained")

    monkeypatch.setattr(T, "train_spec", no_training)
    metrics["config"] = {}  # an unpruned training (no prune in its config)
    (mdir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RuntimeError, match="retrained"):
        train_point(cfg, pt, str(tmp_path))
    assert calls == [0.5]  # the point's fraction goes to the training


def test_markdown_of_records_without_prune():
    """Records of sweeps run before --prune (no ``prune`` field) show fraction 0."""
    rec = {"key": "beta0-8bit", "beta": 0.0, "granularity": "channel", "bits": 8, "ii": None,
           "accuracy_golden": 0.98, "keras_golden_mismatches": 0, "ebops": None, "zero_weights": None}
    md = markdown({"model": "m", "board": "vu13p", "pareto": [], "points": [rec]})
    assert "| beta0-8bit | 0 | channel | 8 | 0 | 98.00% | 0 | - | - | - |" in md


def test_tiny_pruned_point_has_half_of_every_linear_map_at_zero(tmp_path):
    """One tiny from-scratch point at prune 0.5 (8-bit, no RTL): its trained IR has >= 50% zero weight
    codes in every linear map, Keras == golden, and the record carries the fraction and the zero count."""
    require_module("keras")
    from swinfpga.ir import Model
    from swinfpga.ir import nodes as N
    from swinfpga.models import StageSpec, SwinSpec

    tiny = SwinSpec(name="tiny-sweep-prune", img=(8, 8, 1), patch=4, embed=8,
                    stages=(StageSpec(1, 1, 2, 0), StageSpec(1, 1, 1, 0, merge=True)), mlp_ratio=1)
    pt = SweepPoint(0.0, prune=0.5)
    cfg = SweepConfig("tiny-sweep-prune", (pt,), epochs=2, qat_epochs=1, spec=tiny, rtl=False)
    rec = run_point(cfg, pt, str(tmp_path))
    mdir = tmp_path / "points" / "beta0-8bit-p0.5" / "model"
    metrics = json.loads((mdir / "metrics.json").read_text())
    assert metrics["config"]["prune"] == 0.5 and metrics["prune"]["sparsity"] >= 0.49
    assert rec["key"] == "beta0-8bit-p0.5" and rec["prune"] == 0.5 and rec["keras_golden_mismatches"] == 0
    ir = Model.load(mdir / "model.json")
    attrs = {N.PatchEmbed: ("linear",), N.Dense: ("linear",), N.PatchMerging: ("linear",),
             N.WindowAttention: ("q", "k", "v", "proj"), N.Mlp: ("fc1", "fc2")}
    zeros = n_maps = 0
    for node in ir.nodes:
        for a in attrs.get(type(node), ()):
            w = np.asarray(getattr(node, a).weight)
            z = int(np.count_nonzero(w == 0))
            assert z >= np.floor(0.5 * w.size), f"{node.name}.{a}: {z} of {w.size} weights at 0"
            zeros += z
            n_maps += 1
    assert n_maps >= 8
    assert metrics["prune"]["zero_weights"] == rec["zero_weights"] <= zeros
    assert json.loads((tmp_path / "points" / rec["key"] / "point.json").read_text()) == rec


def test_prune_layer_and_teacher_reach_every_training_and_gate_reuse(tmp_path, monkeypatch):
    """`sweep --prune-layer GLOB=F --teacher DIR`: every point's training gets both; a finished training
    is reused only when its record has the same overrides and teacher."""
    import swinfpga.train as T

    pt = SweepPoint(1e-6, prune=0.7)
    cfg = SweepConfig("swin-digits", (pt,), rtl=False, act_granularity="channel",
                      prune_layers=(("s0*", 0.85),), teacher="FL")
    mdir = tmp_path / "points" / pt.train_key / "model"
    mdir.mkdir(parents=True)
    metrics = {"accuracy": {"golden": 0.97, "quantized": 0.97}, "keras_golden_mismatches": 0,
               "config": {"prune": 0.7, "act_granularity": "channel", "prune_layers": [["s0*", 0.85]],
                          "teacher": "FL"}}
    (mdir / "metrics.json").write_text(json.dumps(metrics))
    (mdir / "model.json").write_text("{}")
    assert train_point(cfg, pt, str(tmp_path))["reused"] is True
    seen = []

    def no_training(spec, out, tcfg, *a, **kw):
        seen.append((tcfg.prune_layers, tcfg.teacher))
        raise RuntimeError("retrained")

    monkeypatch.setattr(T, "train_spec", no_training)
    for change in ({"prune_layers": [["s0*", 0.8]]}, {"teacher": None}):
        (mdir / "metrics.json").write_text(json.dumps({**metrics, "config": {**metrics["config"], **change}}))
        with pytest.raises(RuntimeError, match="retrained"):
            train_point(cfg, pt, str(tmp_path))
    assert seen == [((("s0*", 0.85),), "FL")] * 2


def test_cli_sweep_prune_layer_and_teacher(monkeypatch, tmp_path):
    rc, cfg = _cli_points(monkeypatch, tmp_path, "--beta", "1e-6", "--prune", "0.7", "--prune-layer", "s0*=0.85",
                          "--teacher", "FL")
    assert rc == 0 and cfg.prune_layers == (("s0*", 0.85),) and cfg.teacher == "FL"
