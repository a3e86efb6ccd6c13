"""CLI and convert orchestration: clear errors, no overwrite without --force, atomic output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from swinfpga import golden
from swinfpga.cli import main
from swinfpga.ir.build import random_model
from swinfpga.manifest import Project
from swinfpga.models import SWIN_DIGITS


def test_convert_golden_only_then_refuse_and_force(tmp_path, capsys) -> None:
    ir = tmp_path / "m.json"
    random_model(SWIN_DIGITS, seed=5).save(ir)
    out = tmp_path / "prj"
    assert main(["convert", str(ir), "-o", str(out), "--no-hls", "--no-rtl", "--vectors", "40"]) == 0
    proj = Project.open(out)
    x, y = proj.vectors()
    assert x.shape == (40, 8, 8, 1) and proj.manifest.vector_source.startswith("sklearn digits")
    np.testing.assert_array_equal(golden.predict(proj.model(), x), y)
    assert {t.kind for t in proj.manifest.tables} == {"exp", "recip"}
    before = (out / "manifest.json").read_text()
    assert main(["convert", str(ir), "-o", str(out), "--no-hls", "--no-rtl"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "manifest.json").read_text() == before
    assert main(["convert", str(ir), "-o", str(out), "--no-hls", "--no-rtl", "--vectors", "10", "--force"]) == 0
    assert json.loads((out / "manifest.json").read_text())["n_vectors"] == 10
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".prj")], "temporary directories left behind"


@pytest.mark.parametrize("args,msg", [
    (["convert", "nosuch-model", "-o", "X"], "neither a reference model"),
    (["convert", "swin-digits", "-o", "X", "--board", "nosuch", "--random", "--no-hls", "--no-rtl"], "unknown board"),
    (["verify", "/nonexistent"], "not a swinfpga project"),
])
def test_errors_are_clear(args, msg, tmp_path, capsys) -> None:
    args = [str(tmp_path / a) if a == "X" else a for a in args]
    assert main(args) == 2
    assert msg in capsys.readouterr().err.replace("\n", " ")


def test_failed_convert_leaves_nothing(tmp_path, monkeypatch) -> None:
    import swinfpga.project as P

    def boom(*a, **k):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(P, "model_tables", boom)
    with pytest.raises(RuntimeError):
        P.convert(random_model(SWIN_DIGITS), tmp_path / "p", P.ConvertOptions(hls=False, rtl=False))
    assert list(tmp_path.iterdir()) == []
