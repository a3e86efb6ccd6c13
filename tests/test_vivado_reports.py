"""Readers of Vivado's report_utilization / report_timing_summary / report_timing text, on fixtures
written for these tests in Vivado's format (tests/fixtures/vivado; the numbers are our own)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swinfpga.synth import vivado as V

FIX = Path(__file__).parent / "fixtures" / "vivado"
PART = "xcvu13p-flga2577-2-e"
TOP = "swinfpga_top"


def _text(rel: str) -> str:
    return (FIX / rel).read_text()


def test_utilization_post_route_ultrascale_plus():
    u = V.parse_utilization(_text("vu13p_routed/utilization.rpt"))
    # the 'Site Type | Used' tables only: the per-SLR table and the primitives table do not count
    assert (u.lut, u.ff, u.dsp, u.bram36, u.uram) == (48213, 61877, 544, 3.5, 2)
    assert dict(u.available) == {"lut": 1728000, "ff": 3456000, "dsp": 12288, "bram36": 2688, "uram": 1280}
    assert u.header.design == TOP and u.header.state == "Routed"
    assert u.header.tool.startswith("Vivado v.2023.2")


def test_utilization_post_synthesis_starred_lut_row():
    u = V.parse_utilization(_text("vu13p_synth/synth_utilization.rpt"))
    assert (u.lut, u.ff, u.dsp, u.bram36, u.uram) == (51002, 61908, 548, 4.0, 2)
    assert u.header.state == "Synthesized"


def test_utilization_no_uram_and_slice_names():
    z = V.parse_utilization(_text("other/zcu102_utilization.rpt"))  # no Prohibited column, no URAM row
    assert (z.lut, z.ff, z.dsp, z.bram36, z.uram) == (203117, 148022, 1730, 12.5, 0)
    assert z.available_of("uram") is None and z.available_of("lut") == 274080
    k = V.parse_utilization(_text("other/kintex7_utilization.rpt"))  # 7-series: Slice LUTs / Slice Registers
    assert (k.lut, k.ff, k.dsp, k.bram36, k.uram) == (15377, 9021, 73, 6.0, 0)


def test_hierarchical_utilization():
    rows = V.parse_hierarchy(_text("vu13p_routed/utilization_hier.rpt"))
    assert len(rows) == 6
    top, glue, s0 = rows[0], rows[1], rows[2]
    assert (top.instance, top.depth, top.lut, top.ff, top.dsp, top.bram36, top.uram) == (
        "swinfpga_top", 0, 48213, 61877, 544, 3.5, 2)
    assert (glue.instance, glue.depth, glue.lut, glue.ff) == ("(swinfpga_top)", 1, 2, 1025)
    assert (s0.module, s0.lut, s0.ff, s0.dsp, s0.bram36, s0.uram) == ("swinfpga_top_s0", 25109, 31470, 288, 2.5, 1)
    assert sum(r.lut for r in rows if r.depth == 1) == top.lut  # the fixture is self-consistent
    # a hierarchical report alone (hls4ml's util.rpt) gives the totals
    u = V.parse_utilization(_text("vu13p_routed/utilization_hier.rpt"))
    assert (u.lut, u.ff, u.dsp, u.bram36, u.uram) == (48213, 61877, 544, 3.5, 2)
    with pytest.raises(V.VivadoReportError, match="Total LUTs"):
        V.parse_hierarchy(_text("vu13p_routed/utilization.rpt"))


def test_timing_summary_met_and_violated():
    t = V.parse_timing_summary(_text("vu13p_routed/timing_summary.rpt"))
    assert (t.wns_ns, t.tns_ns, t.failing_endpoints, t.total_endpoints, t.whs_ns) == (0.412, 0.0, 0, 118362, 0.021)
    assert (t.clock, t.period_ns, t.met) == ("clk", 5.0, True)
    v = V.parse_timing_summary(_text("other/zcu102_timing_summary.rpt"))
    assert (v.wns_ns, v.tns_ns, v.failing_endpoints, v.period_ns, v.met) == (-0.387, -12.904, 61, 3.333, False)


def test_timing_summary_without_clock_is_an_error_naming_the_file():
    with pytest.raises(V.VivadoReportError, match=r"no_clock\.rpt: no clock .*create_clock"):
        V.parse_timing_summary(_text("other/no_clock_timing_summary.rpt"), "no_clock.rpt")


def test_critical_path():
    c = V.parse_critical_path(_text("vu13p_routed/critical_path.rpt"))
    assert (c.slack_ns, c.requirement_ns, c.data_path_ns, c.logic_ns, c.route_ns) == (0.412, 5.0, 4.457, 1.602, 2.855)
    assert c.logic_levels == 11 and c.level_cells == "CARRY8=4 LUT2=1 LUT3=2 LUT6=4"
    assert c.source == "u_s0/u_unit/stage3_inp_reg[117]/C" and c.destination == "u_s0/u_unit/stage4_inp_reg[40]/D"
    v = V.parse_critical_path(_text("other/zcu102_critical_path.rpt"))
    assert (v.slack_ns, v.logic_levels, v.data_path_ns) == (-0.387, 8, 3.629)


def test_wrong_report_kind_is_an_error():
    with pytest.raises(V.VivadoReportError, match="CLB LUTs"):
        V.parse_utilization(_text("vu13p_routed/timing_summary.rpt"), "x.rpt")
    with pytest.raises(V.VivadoReportError, match="Design Timing Summary"):
        V.parse_timing_summary(_text("vu13p_routed/utilization.rpt"))
    with pytest.raises(V.VivadoReportError, match="Slack"):
        V.parse_critical_path(_text("vu13p_routed/utilization.rpt"))


def _dir(tmp_path: Path, *subdirs: str) -> Path:
    d = tmp_path / "reports"
    d.mkdir()
    for s in subdirs:
        for p in (FIX / s).iterdir():
            shutil.copy(p, d / p.name)
    return d


def test_read_reports_prefers_routed_and_computes_achieved_clock(tmp_path):
    d = _dir(tmp_path, "vu13p_synth", "vu13p_routed")
    r = V.read_reports(d, top=TOP, part=PART)
    assert r.stage == "post-route" and r.utilization.lut == 48213
    assert r.reports == ("utilization.rpt", "timing_summary.rpt", "critical_path.rpt", "utilization_hier.rpt")
    assert [(h.instance, h.module, h.depth) for h in r.hierarchy][2:4] == [
        ("u_s0", "swinfpga_top_s0", 1), ("u_unit", "swinfpga_top_s0_unit", 2)]
    assert r.target_period_ns == 5.0
    assert r.achieved_period_ns == pytest.approx(4.588)
    assert r.achieved_mhz == pytest.approx(1000.0 / 4.588)
    assert r.latency_ns(50) == pytest.approx(229.4)
    j = r.to_json()
    assert j["achieved_period_ns"] == pytest.approx(4.588) and j["timing"]["met"] is True


def test_read_reports_post_synthesis_only(tmp_path):
    r = V.read_reports(_dir(tmp_path, "vu13p_synth"), top=TOP, part=PART)
    assert r.stage == "post-synthesis" and r.utilization.lut == 51002
    assert r.achieved_period_ns == pytest.approx(5.0 - 1.103)


def test_read_reports_classifies_by_header_not_name(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    shutil.copy(FIX / "other/zcu102_utilization.rpt", d / "a.rpt")
    shutil.copy(FIX / "other/zcu102_timing_summary.rpt", d / "b.rpt")
    shutil.copy(FIX / "other/zcu102_critical_path.rpt", d / "c.rpt")
    r = V.read_reports(d, top=TOP, part="xczu9eg-ffvb1156-2-e")
    assert r.utilization.dsp == 1730 and r.critical_path is not None and r.critical_path.logic_levels == 8
    assert r.achieved_period_ns == pytest.approx(3.333 + 0.387)  # violated: slower than the target


def test_read_reports_rejects_other_designs(tmp_path):
    d = _dir(tmp_path, "vu13p_routed")
    with pytest.raises(V.VivadoReportError, match="device"):
        V.read_reports(d, top=TOP, part="xczu9eg-ffvb1156-2-e")
    with pytest.raises(V.VivadoReportError, match="design 'swinfpga_top'"):
        V.read_reports(d, top="other_top", part=PART)
    (d / V.RUN_INFO).write_text("rtl_hash 1234abcd\npart x\n")
    with pytest.raises(V.VivadoReportError, match="another RTL"):
        V.read_reports(d, top=TOP, part=PART, rtl_hash="99999999")
    assert V.read_reports(d, top=TOP, part=PART, rtl_hash="1234abcd").rtl_hash == "1234abcd"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(V.VivadoReportError, match="report_utilization"):
        V.read_reports(empty)
    with pytest.raises(V.VivadoReportError, match="not a directory"):
        V.read_reports(tmp_path / "nope")


def test_unreadable_critical_path_is_not_fatal(tmp_path):
    d = _dir(tmp_path, "vu13p_routed")
    (d / "critical_path.rpt").write_text(_text("vu13p_routed/critical_path.rpt").split("Timing Report")[0]
                                         + "Timing Report\n\nSlack:                    inf\n")
    r = V.read_reports(d, top=TOP, part=PART)
    assert r.critical_path is None and r.achieved_period_ns == pytest.approx(4.588)
