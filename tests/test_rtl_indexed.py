"""RTL tier, indexed segment wrapper: the gather/scatter form for segments with many groups (the
56 x 56 window-7 map folded to one token per clock has 3136).

The run split of frame-index tables is checked against the tables it describes; the small
balanced model of ``test_rtl_balance`` is converted with every segment forced into the indexed form
(shift-mask bits and bias rows as per-group constants included) and simulated on Icarus: RTL ==
golden with 0 mismatches, with and without back-pressure, latency == the prediction, II 8.  The
flat form of the committed models is untouched below the threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import icarus_bit_exact, require_module

pytestmark = pytest.mark.rtl


def test_frame_runs_describe_the_table():
    from swinfpga.backends.rtl.verilog import frame_runs

    rng = np.random.default_rng(0)
    for _ in range(50):
        g, lens = int(rng.integers(1, 6)), [int(v) for v in rng.integers(1, 5, size=rng.integers(1, 5))]
        starts = rng.integers(0, 1000, size=(g, len(lens)))
        idx = np.concatenate([s[:, None] + np.arange(n)[None] for s, n in
                              zip(starts.T, lens, strict=True)], axis=1)
        runs = frame_runs(idx)
        rebuilt = np.concatenate([idx[:, [c]] + np.arange(n)[None] for c, n in runs], axis=1)
        np.testing.assert_array_equal(rebuilt, idx)
        assert len(runs) <= len(lens)
    # a break in one group only splits the run for every group
    idx = np.array([[0, 1, 2, 3], [10, 11, 20, 21]])
    assert frame_runs(idx) == [(0, 2), (2, 2)]
    assert frame_runs(np.array([[5, 6, 7]])) == [(0, 3)]


def test_threshold_keeps_small_segments_flat():
    from swinfpga.backends.rtl import verilog
    from swinfpga.backends.rtl.plan import balance_segments
    from tests.test_rtl_balance import _model

    segs, _ = balance_segments(_model(), 8)
    assert verilog.INDEXED_MIN_GROUPS == 64
    assert not any(verilog.use_indexed(s) for s in segs)


@pytest.fixture(scope="module")
def indexed_project(tmp_path_factory):
    require_module("da4ml")
    from swinfpga.backends.rtl import verilog
    from swinfpga.project import ConvertOptions, convert
    from tests.test_rtl_balance import _model

    out = tmp_path_factory.mktemp("rtl_indexed") / "prj"
    mp = pytest.MonkeyPatch()
    mp.setattr(verilog, "INDEXED_MIN_GROUPS", 0)
    try:
        convert(_model(), out, ConvertOptions(hls=False, n_vectors=16, force=True, ii=8))
    finally:
        mp.undo()
    return out


def test_indexed_wrappers_emitted(indexed_project):
    rtl = json.loads((indexed_project / "rtl" / "rtl.json").read_text())
    for s in rtl["segments"]:
        text = (indexed_project / "rtl" / f"{s['module']}.v").read_text()
        assert "indexed gather" in text and "indexed scatter" in text, s["module"]
        assert "in_frame[ia0 +:" in text and "+: " in text
    seg1b = (indexed_project / "rtl" / "swinfpga_top_s3.v").read_text()
    assert "gconst" in seg1b  # the shifted block's mask bits and bias rows


def test_icarus_indexed_bit_exact(indexed_project):
    rep = icarus_bit_exact(indexed_project, 10, 6)
    assert rep.ii_cycles == 8


def _stub_unit(seg):
    """A :class:`TracedUnit` stand-in with the kif of the segment's element formats (no tracing):
    enough for the wrapper, which reads only the port layout."""
    from swinfpga.backends.rtl.trace import TracedUnit

    def kif(fm):
        return (int(fm.signed), fm.int_bits - int(fm.signed), fm.frac)

    ins = [kif(f) for f in seg.in_elem_fmts] + [(0, 1, 0)] * seg.n_mask
    if seg.n_const:
        ins += [kif(seg.const_fmt)] * seg.n_const
    outs = [kif(f) for f in seg.out_elem_fmts]
    return TracedUnit(None, tuple(ins), tuple(outs), (None,) * len(outs), {})


@pytest.mark.parametrize("shift", [0, 3])
def test_swin_t_map_wrapper_scales(shift):
    """Window-7 attention on the 56 x 56 Swin-T stage-1 map folded to one token per clock (3136
    groups per unit): the wrappers take the indexed form and stay small (a few hundred bytes per
    group; the flat form was 56.9 MB and Verilator could not build it in 17.8 GB)."""
    from dataclasses import replace

    from swinfpga.backends.rtl.plan import balance_segments
    from swinfpga.backends.rtl.verilog import UnitRtl, segment_wrapper, use_indexed
    from swinfpga.fixed import Fmt
    from swinfpga.ir import Model
    from swinfpga.ir.build import random_model
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec(name="w7", img=(56, 56, 6), patch=0, embed=6, classes=0, in_fmt=Fmt(True, 8, 3, "RND", "SAT"),
                    stages=(StageSpec(depth=2 if shift else 1, heads=3, window=7, shift=shift),))
    full = random_model(spec, seed=7)
    attn = [n for n in full.nodes if type(n).__name__ == "WindowAttention"][-1]
    m = Model("w7", (full.nodes[0], replace(attn, src="input")), attn.name, {})
    segs, ii = balance_segments(m, 3136)
    assert ii == 3136 and [s.groups for s in segs] == [3136, 3136]
    for s in segs:
        assert use_indexed(s)
        text = segment_wrapper(s, _stub_unit(s), UnitRtl("u", {}, {}, 20, out_reg=False), "w")
        assert len(text) < 300 * s.groups, (s.name, len(text))
        assert "indexed gather" in text and "in_frame[ia0 +:" in text
    core = segs[1]
    assert core.n_in == 6 + 2 * 49 * 6  # the query row, the window's keys and values
    assert (core.mask is not None) == bool(shift) and core.n_const == 3 * 49
