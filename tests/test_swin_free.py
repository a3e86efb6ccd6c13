"""Swin-Free (issue 5): no cyclic shift anywhere; the trained swin-free-digits C-simulates
bit-exactly (its whole-model RTL run is in test_rtl_model.py, Keras == golden in
test_keras_bitexact.py)."""

from __future__ import annotations

import json

import pytest

from swinfpga import golden
from swinfpga.data import digits_split
from swinfpga.ir import nodes as N
from swinfpga.project import reference_model_path, resolve_model


def test_swin_free_has_no_shift_and_meets_accuracy() -> None:
    m = resolve_model("swin-free-digits")
    attn = m.of_type(N.WindowAttention)
    assert attn and all(a.shift == 0 for a in attn)
    assert all(a.valid_mask().all() for a in attn)  # no shifted-window mask either
    d = digits_split()
    acc = float((golden.predict(m, d.x_test).argmax(-1) == d.y_test).mean())
    metrics = json.loads((reference_model_path("swin-free-digits").parent / "metrics.json").read_text())
    assert acc == pytest.approx(metrics["accuracy"]["golden"], abs=1e-9)
    assert acc >= 0.95


@pytest.mark.csim
def test_swin_free_csim_bit_exact(tmp_path) -> None:
    from conftest import require_tool

    require_tool("g++")
    from swinfpga.backends.hls4ml import verify_csim
    from swinfpga.manifest import Project
    from swinfpga.project import ConvertOptions, convert

    out = tmp_path / "prj"
    convert(resolve_model("swin-free-digits"), out, ConvertOptions(rtl=False, n_vectors=360))
    rep = verify_csim(Project.open(out))
    assert rep.samples == 360 and rep.mismatches == 0, [str(m) for m in rep.first]
