"""Gradual magnitude pruning (swinfpga.keras.prune, `swinfpga train --prune`): the schedule, the
masks (per linear map, largest magnitudes kept, only growing), and a tiny end-to-end training whose
exported IR carries the zeros with Keras == golden."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_module


def test_schedule_is_cubic_and_reaches_target():
    from swinfpga.keras.prune import sparsity_at

    vals = [sparsity_at(t, 0.7, 100) for t in range(0, 130, 5)]
    assert vals[0] == 0.0 and sparsity_at(100, 0.7, 100) == 0.7 and sparsity_at(500, 0.7, 100) == 0.7
    assert all(b >= a for a, b in zip(vals, vals[1:], strict=False))
    assert sparsity_at(50, 0.7, 100) == pytest.approx(0.7 * (1 - 0.5**3))
    assert sparsity_at(3, 0.4, 0) == 0.4  # no ramp: the target at once


def _tiny_model():
    require_module("keras")
    from swinfpga.keras.model import build_model
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec(name="tiny-prune", img=(8, 8, 1), patch=4, embed=8,
                    stages=(StageSpec(1, 1, 2, 0), StageSpec(1, 1, 1, 0, merge=True)), mlp_ratio=1)
    return build_model(spec)


def test_masks_keep_the_largest_weights_per_map_and_only_grow():
    from swinfpga.keras.prune import Pruner, linear_maps

    model = _tiny_model()
    maps = list(linear_maps(model))
    assert len(maps) >= 6  # patch embed, q, k, v, proj, fc1, fc2, merge, ... head
    before = [np.abs(np.asarray(lin.effective()[0])) for lin in maps]
    pr = Pruner(model, 0.5)
    pr.update(0.5)
    pr.apply()
    for lin, mag, m in zip(maps, before, pr.masks, strict=True):
        w = lin.kernel.numpy()
        assert int((~m).sum()) == int(np.floor(0.5 * w.size)), lin.prefix
        assert np.all(w[~m] == 0) and np.all(w[m] != 0)
        top = np.zeros_like(m)
        top[np.argmax(mag, axis=0), np.arange(mag.shape[1])] = True  # each output's largest: always kept
        assert mag[m & ~top].min() >= mag[~m].max()  # magnitude order within the map
    kept = [m.copy() for m in pr.masks]
    pr.update(0.3)  # lower target: nothing comes back
    assert all(np.array_equal(a, b) for a, b in zip(kept, pr.masks, strict=True))
    pr.update(0.75)
    assert all(np.all(b <= a) for a, b in zip(kept, pr.masks, strict=True))
    assert pr.sparsity() == pytest.approx(sum(int(np.floor(0.75 * m.size)) for m in pr.masks)
                                          / sum(m.size for m in pr.masks))
    pr.update(0.99)  # every output keeps its largest weight
    for lin, m in zip(maps, pr.masks, strict=True):
        assert m.any(axis=0).all() and int(m.sum()) == m.shape[1], lin.prefix
    with pytest.raises(ValueError, match="prune target"):
        Pruner(model, 1.0)


@pytest.mark.slow  # ~1 min of TensorFlow graph tracing
def test_train_with_prune_exports_zero_weights_bitexact(tmp_path):
    """`train --prune 0.5` with HGQ per-channel bits on a tiny digits model: every linear map of the
    IR has at least half its weight codes at 0 (HGQ may add zeros), Keras == golden, and the record
    holds the measured sparsity."""
    require_module("keras")
    require_module("quantizers")
    import swinfpga.train as T
    from swinfpga.ir import Model
    from swinfpga.ir import nodes as N
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec(name="tiny-digits", img=(8, 8, 1), patch=4, embed=8,
                    stages=(StageSpec(1, 1, 2, 0), StageSpec(1, 1, 1, 0, merge=True)), mlp_ratio=1)
    cfg = T.TrainConfig(float_epochs=2, qat_epochs=1, finetune_epochs=1, beta=1e-5, act_granularity="channel",
                        prune=0.5)
    res = T.train_spec(spec, tmp_path / "run", cfg, seed=3, progress=lambda s: None)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m == res.metrics and m["keras_golden_mismatches"] == 0
    assert m["prune"]["target"] == 0.5 and m["prune"]["sparsity"] >= 0.49
    ir = Model.load(tmp_path / "run" / "model.json")
    attrs = {N.PatchEmbed: ("linear",), N.Dense: ("linear",), N.PatchMerging: ("linear",),
             N.WindowAttention: ("q", "k", "v", "proj"), N.Mlp: ("fc1", "fc2")}
    n_maps = 0
    for node in ir.nodes:
        for a in attrs.get(type(node), ()):
            w = np.asarray(getattr(node, a).weight)
            assert np.count_nonzero(w == 0) >= np.floor(0.5 * w.size), f"{node.name}.{a}"
            n_maps += 1
    assert n_maps >= 8


def test_cli_train_rejects_bad_prune(tmp_path, capsys):
    from swinfpga.cli import main

    assert main(["train", "swin-digits", "-o", str(tmp_path / "o"), "--prune", "1.2"]) == 2
    assert "--prune must be in [0, 1)" in capsys.readouterr().err


def test_per_map_overrides_set_each_maps_target():
    """``--prune-layer GLOB=F``: maps whose names match take F (the last match wins), the others the
    global target; the schedule scales every map's own target; a glob matching no map is refused
    with the map names."""
    from swinfpga.keras.prune import Pruner, linear_maps, map_name

    model = _tiny_model()
    names = [map_name(lin) for lin in linear_maps(model)]
    assert "patch_embed" in names and any(n.endswith(".attn.q") for n in names)
    q = next(n for n in names if n.endswith(".attn.q"))
    stage0 = q.split(".")[0][:2] + "*"  # e.g. s0*
    pr = Pruner(model, 0.5, overrides=((stage0, 0.75), (q, 0.25)))
    want = {n: (0.25 if n == q else 0.75 if n.startswith(stage0[:-1]) else 0.5) for n in names}
    assert dict(zip(names, pr.targets, strict=True)) == want
    assert sorted(set(want.values())) == [0.25, 0.5, 0.75]
    pr.update(1.0, scale=True)
    pr.apply()
    for lin, m in zip(pr.maps, pr.masks, strict=True):
        k = min(int(np.floor(want[map_name(lin)] * m.size)), m.size - m.shape[1])
        assert int((~m).sum()) == k, map_name(lin)
    pr2 = Pruner(_tiny_model(), 0.5, overrides=((stage0, 0.75),))
    pr2.update(0.5, scale=True)  # half-way along the schedule: half of each map's target
    for lin, m in zip(pr2.maps, pr2.masks, strict=True):
        t = 0.5 * (0.75 if map_name(lin).startswith(stage0[:-1]) else 0.5)
        assert int((~m).sum()) == min(int(np.floor(t * m.size)), m.size - m.shape[1]), map_name(lin)
    with pytest.raises(ValueError, match="matches no linear map.*patch_embed"):
        Pruner(model, 0.5, overrides=(("nope*", 0.5),))


def test_cli_train_rejects_bad_prune_layer(tmp_path, capsys):
    from swinfpga.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "swin-digits", "-o", str(tmp_path / "o"), "--prune-layer", "s0*"])
    assert e.value.code == 2 and "GLOB=FRACTION" in capsys.readouterr().err
