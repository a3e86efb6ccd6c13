"""RTL tier, balanced pipeline: a two-stage model whose stage 2 has one window (fewer groups than
the II) is split into token-serial units and a per-window attention core, on Icarus.

Checks RTL == golden with 0 mismatches (streaming, and back-pressure with idle cycles), measured
latency == the structural prediction, the II (natural 4, and ``--ii 8``), the per-unit busy cycles
in rtl.json, and that folding further (II 8) lowers da4ml's total cost."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import icarus_bit_exact, require_module

pytestmark = pytest.mark.rtl


def _model():
    from swinfpga.fixed import Fmt
    from swinfpga.ir.build import random_model
    from swinfpga.models import StageSpec, SwinSpec

    spec = SwinSpec(name="bal", img=(4, 4, 8), patch=0, embed=8,
                    stages=(StageSpec(depth=2, heads=2, window=2, shift=1),
                            StageSpec(depth=1, heads=2, window=2, shift=0, merge=True)),
                    classes=4, in_fmt=Fmt(True, 8, 3, "RND", "SAT"))
    return random_model(spec, seed=3)


def _convert(tmp_path_factory, ii):
    require_module("da4ml")
    from swinfpga.project import ConvertOptions, convert

    out = tmp_path_factory.mktemp(f"rtl_bal_{ii}") / "prj"
    convert(_model(), out, ConvertOptions(hls=False, n_vectors=24, force=True, ii=ii))
    return out


@pytest.fixture(scope="module")
def natural(tmp_path_factory):
    return _convert(tmp_path_factory, None)


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    return _convert(tmp_path_factory, 8)


def _rtl(prj):
    return json.loads((prj / "rtl" / "rtl.json").read_text())


def test_plan_natural_ii(natural):
    rtl = _rtl(natural)
    segs = {s["name"]: s for s in rtl["segments"]}
    # stage 1 (4 windows) stays whole; stage 2 (1 window of 4 tokens) becomes token-serial units:
    # merge + q/k/v projections, then one query row per clock through the attention core + MLP
    assert list(segs) == ["seg0", "seg1", "seg2a", "seg2b", "seg2c"]
    assert [segs[k]["kind"] for k in ("seg2a", "seg2b", "seg2c")] == ["token", "token", "global"]
    assert segs["seg2a"]["nodes"] == ["s1.merge", "s1b0.attn.qkv"]
    assert segs["seg2b"]["nodes"][:2] == ["s1b0.attn.core", "s1b0.attn.proj"]
    assert segs["seg2a"]["tokens_per_group"] == 1 and segs["seg2a"]["busy_cycles"] == 4
    assert segs["seg2b"]["tokens_per_group"] == 1 and segs["seg2b"]["busy_cycles"] == 4
    assert {u["unit"]: u["busy_cycles"] for u in rtl["units"]}["seg2c"] == 1
    assert all(u["ii_cycles"] == 4 for u in rtl["units"])
    assert rtl["traced_check"]["mismatches"] == {"seg0": 0, "seg1": 0, "seg2": 0}


def test_plan_ii_below_natural_is_a_user_error():
    from swinfpga.backends.rtl.plan import PlanError, balance_segments
    from swinfpga.errors import SwinfpgaError

    with pytest.raises(PlanError, match="--ii 2 is below the natural initiation interval 4") as e:
        balance_segments(_model(), 2)
    assert isinstance(e.value, SwinfpgaError)


def test_fold_lowers_cost(natural, folded):
    a, b = _rtl(natural), _rtl(folded)
    assert b["predicted"]["ii_cycles"] == 8
    assert all(s["tokens_per_group"] <= 2 for s in b["segments"] if s["kind"] == "token")
    # stage 1's shifted block: two query rows per clock, its mask rows and bias rows as per-group constants
    seg1b = next(s for s in b["segments"] if s["name"] == "seg1b")
    assert seg1b["nodes"][0] == "s0b1.attn.core" and seg1b["mask_bits"] == 2 * 4
    assert b["da4ml_cost_total"] < 0.8 * a["da4ml_cost_total"]
    assert b["traced_check"]["mismatches"] == {"seg0": 0, "seg1": 0, "seg2": 0}


@pytest.mark.parametrize("which,ii", [("natural", 4), ("folded", 8)])
def test_icarus_balanced_bit_exact(request, which, ii):
    prj = request.getfixturevalue(which)
    rep = icarus_bit_exact(prj, 12, 8)
    assert rep.ii_cycles == ii
    res = json.loads((prj / "rtl" / "sim_result.json").read_text())
    assert [r["mismatches"] for r in res["runs"]] == [0, 0]


def test_rtl_json_contract_round_trip(natural, tmp_path):
    from swinfpga.backends.rtl.contract import RtlInfo, RtlJsonError

    d = _rtl(natural)
    info = RtlInfo.load(natural / "rtl")
    assert info.to_json() == d  # the typed contract writes exactly what is on disk
    assert info.predicted.ii_cycles == 4 and info.da4ml_cost_total == d["da4ml_cost_total"]
    assert [u.busy_cycles for u in info.segments] == [4, 4, 4, 4, 1]
    del d["predicted"]
    bad = tmp_path / "rtl.json"
    bad.write_text(json.dumps(d))
    with pytest.raises(RtlJsonError, match="rtl.json: malformed.*predicted.*re-run `swinfpga convert`"):
        RtlInfo.load(bad)


def test_quick_report_runs_no_yosys(natural, tmp_path, monkeypatch):
    """``report --quick`` (the demo's default) starts no Yosys: cold, every unit falls back to
    da4ml's cost and says so."""
    import swinfpga.synth.yosys as ys
    from swinfpga.synth.report import make_report

    def no_yosys(*a, **k):
        raise AssertionError("quick report started Yosys")

    monkeypatch.setenv("SWINFPGA_CACHE", str(tmp_path / "cold"))
    monkeypatch.setattr(ys.subprocess, "run", no_yosys)
    monkeypatch.setattr(ys, "yosys_exe", lambda: "yosys")
    monkeypatch.setattr(ys, "yosys_version", lambda exe: "yosys|test")
    rep = make_report(natural, quick=True)
    assert "QUICK report: Yosys was not run" in rep.markdown
    res = rep.data["resources"]
    assert res["quick"] and not res["complete"]
    assert {s["status"] for s in res["segments"]} == {"skipped"}
    assert [s["segment"] for s in res["segments"]] == [s["name"] for s in _rtl(natural)["segments"]]
    assert res["total"]["lut"] == sum(int(s["da4ml_cost"]) for s in _rtl(natural)["segments"])


def test_unit_output_register_dropped(natural):
    """The wrapper's frame buffer registers the unit's last stage: da4ml's ``model_out`` register
    is gone, every other register stage stays (unit latency = da4ml stages)."""
    rtl = _rtl(natural)
    for s in rtl["segments"]:
        text = (natural / "rtl" / f"{s['unit']}.v").read_text()
        assert "output reg" not in text and "assign model_out = stage" in text
        assert len(re.findall(r"^\s*stage\d+_inp <= ", text, flags=re.M)) == s["unit_stages"]
        assert s["unit_latency"] == s["unit_stages"]
    top = (natural / "rtl" / "swinfpga_top.v").read_text()
    assert "wire [" in top and "ibv ? ibuf : in_data" in top  # first group issued from in_data


def test_stage_is_wiring_tells_renames_from_logic():
    from swinfpga.backends.rtl.verilog import stage_is_wiring

    head = "`timescale 1 ns / 1 ps\n\nmodule u_stage3 (\n    input [15:0] model_inp,\n    output [15:0] model_out\n);\n"
    wires = ("    // verilator lint_off UNUSEDSIGNAL\n    wire [7:0] v0; assign v0[7:0] = model_inp[7:0];\n"
             "    wire [7:0] v1; assign v1[7:0] = v0[7:0];\n    assign model_out[7:0] = v1[7:0];\n")
    assert stage_is_wiring(head + wires + "\nendmodule\n")
    adder = "    wire [8:0] v2; shift_adder #(8, 8, 1, 1, 9, 0, 1) op_2 (v0[7:0], v1[7:0], v2[8:0]);\n"
    assert not stage_is_wiring(head + wires + adder + "endmodule\n")
