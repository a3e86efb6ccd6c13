"""Architecture files (swinfpga.arch): the issue's example, every key's error, a fuzz test that
every input loads or raises ArchError, and `convert ARCH.yaml --random` through golden."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swinfpga import golden
from swinfpga.arch import DEFAULT_IN_FMT, ArchError, load_arch, loads_arch, spec_from_dict
from swinfpga.cli import main
from swinfpga.errors import SwinfpgaError
from swinfpga.fixed import Fmt
from swinfpga.ir import nodes as N
from swinfpga.ir.build import random_input, random_model
from swinfpga.models import GLOBAL

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "jet-16x3.yaml"
ISSUE_TEXT = """\
name: jet-16x3
input: {shape: [16, 3]}            # [tokens, features] for a sequence, [H, W, C] for an image
patch: 0                           # images: patch size of the embedding; sequences: 0 (a Dense embedding)
embed: 16
stages:
  - {depth: 2, heads: 2, window: global}   # window: global | int | [wh, ww]; shift and merge as in SwinSpec
mlp_ratio: 2
act: relu                          # relu | gelu
norm: ln                           # ln | bn
classes: 5
"""


def test_issue_example_loads_as_a_sequence() -> None:
    assert EXAMPLE.read_text() == ISSUE_TEXT
    s = load_arch(EXAMPLE)
    assert s.name == "jet-16x3" and s.seq and s.img == (16, 1, 3) and s.patch == 1 and s.embed == 16
    assert s.stages[0].depth == 2 and s.stages[0].heads == 2 and s.stages[0].window == GLOBAL
    assert s.stage_window(0) == (16, 1) and s.stage_dims() == [((16, 1), 16)]
    assert (s.mlp_ratio, s.act, s.norm, s.classes, s.rel_bias, s.in_fmt) == (2, "relu", "ln", 5, False, DEFAULT_IN_FMT)
    m = random_model(s)
    attn = m.of_type(N.WindowAttention)
    assert len(attn) == 2 and all(a.is_global and a.tokens == 16 and a.rel_bias is None for a in attn)
    y = golden.predict(m, random_input(m, 8))
    assert y.shape == (8, 5)


def test_image_arch_with_every_key() -> None:
    s = loads_arch("""
name: img
input: {shape: [8, 8, 1], fmt: "ufixed<5,1>"}
patch: 2
embed: 8
stages:
  - {depth: 2, heads: 2, window: 2, shift: 1}
  - {depth: 1, heads: 2, window: [2, 1], merge: true}
mlp_ratio: 3
act: gelu
norm: bn
classes: 10
rel_bias: true
""")
    assert s.img == (8, 8, 1) and not s.seq and s.patch == 2 and s.in_fmt == Fmt(False, 5, 1)
    assert s.stage_dims() == [((4, 4), 8), ((2, 2), 16)]
    assert s.stage_window(0) == (2, 2) and s.stage_window(1) == (2, 1)
    assert s.block_shift(0, 1) == 1 and s.block_shift(0, 0) == 0
    m = random_model(s)
    assert golden.predict(m, random_input(m, 3)).shape == (3, 10)


BASE = yaml.safe_load(ISSUE_TEXT)


def _with(**kw):
    d = json.loads(json.dumps(BASE))
    for k, v in kw.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


@pytest.mark.parametrize("d,match", [
    (_with(name=None), "missing required key 'name'"),
    (_with(embed=None), "missing required key 'embed'"),
    (_with(bogus=1), "unknown key.*bogus"),
    (_with(input={"shape": [16]}), "input.shape must be"),
    (_with(input={"shape": [16, 0]}), r"input.shape\[1\] must be >= 1"),
    (_with(input={"shape": [16, 3], "fmt": "int8"}), "input.fmt"),
    (_with(input={"shape": [16, 3], "size": 2}), "unknown key.*input.size"),
    (_with(input={}), "input.shape"),
    (_with(patch=2), "patch must be 0 for a sequence"),
    (_with(embed=15), r"stages\[0\].heads 2 does not divide"),
    (_with(embed="16"), "embed must be an integer"),
    (_with(act="tanh"), "act must be one of relu | gelu"),
    (_with(norm="rms"), "norm must be one of ln | bn"),
    (_with(classes=-1), "classes must be >= 0"),
    (_with(rel_bias="yes"), "rel_bias must be true or false"),
    (_with(pad_mask=1), "pad_mask must be true or false"),
    (_with(input={"shape": [4, 4, 16]}, pad_mask=True), "pad_mask is for sequences"),
    (_with(stages=[]), "stages must be a non-empty list"),
    (_with(stages=[{"depth": 1, "heads": 2}]), r"missing required key 'stages\[0\].window'"),
    (_with(stages=[{"depth": 1, "heads": 2, "window": "local"}]), r"stages\[0\].window must be global"),
    (_with(stages=[{"depth": 1, "heads": 2, "window": 5}]), r"stages\[0\].window 5x1 does not tile the 16x1"),
    (_with(stages=[{"depth": 1, "heads": 2, "window": [32, 1]}]), r"stages\[0\].window 32x1 does not tile"),
    (_with(stages=[{"depth": 1, "heads": 2, "window": 4, "shift": 1}]), r"stages\[0\].shift: shifted windows"),
    (_with(stages=[{"depth": 1, "heads": 2, "window": 4, "merge": True}]), r"stages\[0\].merge"),
    (_with(stages=[{"depth": 0, "heads": 2, "window": 4}]), r"stages\[0\].depth must be >= 1"),
    (_with(input={"shape": [8, 8, 1]}, patch=3), "patch 3 does not divide the input 8x8"),
    (_with(input={"shape": [8, 8, 1]}, patch=0), "must equal embed"),
    (_with(input={"shape": [4, 4, 16]}, stages=[{"depth": 2, "heads": 2, "window": 8}]),
     r"stages\[0\].window 8x8 does not tile the 4x4"),
    (_with(input={"shape": [4, 4, 16]}, stages=[{"depth": 2, "heads": 2, "window": 2, "shift": 2}]),
     r"stages\[0\].shift 2 must be smaller"),
    ([1, 2], "must be a mapping"),
])
def test_bad_files_name_the_key(d, match) -> None:
    with pytest.raises(ArchError, match=match):
        spec_from_dict(d, "jet.yaml")


def test_bad_yaml_and_missing_file(tmp_path) -> None:
    with pytest.raises(ArchError, match="x.yaml: not valid YAML"):
        loads_arch("name: [unclosed", "x.yaml")
    with pytest.raises(ArchError, match="cannot read architecture file"):
        load_arch(tmp_path / "none.yaml")


# ----- fuzz: anything loads as a spec that random_model accepts, or raises ArchError --------------
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.text(max_size=6),
                    st.sampled_from(["global", "relu", "gelu", "ln", "bn", "fixed<8,3>", "ufixed<5,1>"]))
_value = st.recursive(_scalar, lambda c: st.one_of(st.lists(c, max_size=4),
                                                    st.dictionaries(st.text(max_size=6), c, max_size=3)),
                      max_leaves=6)
_window = st.one_of(st.just("global"), st.integers(-1, 9), st.lists(st.integers(0, 9), min_size=0, max_size=3),
                    _scalar)
_stage = st.fixed_dictionaries(
    {"depth": st.one_of(st.integers(0, 2), _scalar), "heads": st.one_of(st.integers(1, 4), _scalar),
     "window": _window},
    optional={"shift": st.one_of(st.integers(0, 3), _scalar), "merge": st.one_of(st.booleans(), _scalar),
              "junk": _value})
_shape = st.one_of(st.lists(st.integers(0, 16), min_size=1, max_size=4), _value)
_arch = st.fixed_dictionaries(
    {"name": st.one_of(st.just("fz"), _scalar),
     "input": st.one_of(st.fixed_dictionaries({"shape": _shape},
                                              optional={"fmt": st.one_of(st.just("fixed<8,3,RND,SAT>"), _scalar)}),
                        _value),
     "embed": st.one_of(st.sampled_from([4, 6, 8]), _scalar),
     "stages": st.one_of(st.lists(_stage, min_size=0, max_size=3), _value)},
    optional={"patch": st.one_of(st.integers(0, 4), _scalar), "mlp_ratio": st.one_of(st.integers(0, 3), _scalar),
              "act": _scalar, "norm": _scalar, "classes": st.one_of(st.integers(0, 4), _scalar),
              "rel_bias": _scalar, "extra": _value})


# near-valid architectures (most load): small sequences and images, every window form
_near_stage = st.fixed_dictionaries(
    {"depth": st.integers(1, 2), "heads": st.sampled_from([1, 2, 4]),
     "window": st.sampled_from(["global", 1, 2, 4, [2, 1], [1, 2], [2, 2], [4, 1], [3, 1]])},
    optional={"shift": st.integers(0, 2), "merge": st.booleans()})
_near = st.fixed_dictionaries(
    {"name": st.just("near"),
     "input": st.fixed_dictionaries({"shape": st.one_of(
         st.tuples(st.sampled_from([4, 8, 12, 15, 16]), st.integers(1, 4)).map(list),
         st.tuples(st.sampled_from([2, 4, 8]), st.sampled_from([2, 4, 8]), st.sampled_from([1, 3, 8])).map(list))}),
     "embed": st.sampled_from([4, 8]),
     "stages": st.lists(_near_stage, min_size=1, max_size=2)},
    optional={"patch": st.sampled_from([0, 1, 2]), "act": st.sampled_from(["relu", "gelu"]),
              "norm": st.sampled_from(["ln", "bn"]), "classes": st.integers(0, 3), "rel_bias": st.booleans(),
              "pad_mask": st.booleans()})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.one_of(_near, _arch, _value))
def test_fuzz_every_input_loads_or_raises_arch_error(d) -> None:
    try:
        spec = spec_from_dict(d, "fuzz.yaml")
    except ArchError as e:
        assert "fuzz.yaml" in str(e)
        return
    # a spec that loads is a valid architecture: the IR builds (tiny shapes keep this fast)
    if np.prod(spec.img) * spec.embed <= 4096:
        random_model(spec)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_fuzz_yaml_text_loads_or_raises_arch_error(text) -> None:
    try:
        loads_arch(text, "t.yaml")
    except ArchError:
        pass


# ----- CLI -------------------------------------------------------------------------------------------
def test_convert_arch_random_golden_only(tmp_path, capsys) -> None:
    out = tmp_path / "jet"
    assert main(["convert", str(EXAMPLE), "--random", "-o", str(out), "--vectors", "64", "--no-hls", "--no-rtl"]) == 0
    z = np.load(out / "vectors.npz")
    assert z["x"].shape == (64, 16, 1, 3) and z["y"].shape == (64, 5)
    man = json.loads((out / "manifest.json").read_text())
    assert man["input_shape"] == [16, 1, 3]


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # the console wraps lines


def test_convert_arch_errors(tmp_path, capsys) -> None:
    # no --random: an architecture has no weights
    assert main(["convert", str(EXAMPLE), "-o", str(tmp_path / "a")]) == 2
    assert "--random" in _err(capsys)
    bad = tmp_path / "bad.yaml"
    bad.write_text(ISSUE_TEXT.replace("act: relu", "act: swish"))
    assert main(["convert", str(bad), "--random", "-o", str(tmp_path / "c"), "--no-hls", "--no-rtl"]) == 2
    assert "act must be one of" in _err(capsys)
    assert issubclass(ArchError, SwinfpgaError)
