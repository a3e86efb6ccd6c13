"""One name per table: the RTL's ROM files are named after their IR tables, and each ROM is checked
against the table (and its hash in the manifest) it claims to hold."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import require_module


def _ln_unit_model():
    from swinfpga.fixed import Fmt
    from swinfpga.ir.build import random_model
    from swinfpga.models import StageSpec, SwinSpec

    # LayerNorm (rsqrt table), GELU table, softmax exp + reciprocal: every kind of ROM
    spec = SwinSpec(name="ln-unit", img=(4, 4, 8), patch=0, embed=8,
                    stages=(StageSpec(depth=2, heads=2, window=2, shift=1),), classes=0,
                    in_fmt=Fmt(True, 8, 3, "RND", "SAT"), norm="ln", act="gelu")
    return random_model(spec, seed=3)


@pytest.fixture(scope="module")
def ln_project(tmp_path_factory):
    require_module("da4ml")
    from swinfpga.project import ConvertOptions, convert

    out = tmp_path_factory.mktemp("rtl_roms") / "prj"
    convert(_ln_unit_model(), out, ConvertOptions(hls=False, n_vectors=8, force=True))
    return out


def _copy(src, tmp_path):
    dst = tmp_path / "prj"
    shutil.copytree(src, dst)
    return dst


def test_roms_are_named_by_ir_table(ln_project) -> None:
    from swinfpga.backends.rtl.roms import check_roms, sanitize
    from swinfpga.manifest import Project

    rtl_dir = ln_project / "rtl"
    roms = check_roms(ln_project)
    mems = sorted(p.name for p in rtl_dir.glob("*.mem"))
    assert mems == sorted(r.file for r in roms) and not [m for m in mems if m.startswith("table_")]
    verilog = "".join(p.read_text() for p in rtl_dir.glob("*.v"))
    used = set(re.findall(r'lookup_table #\(\d+, \d+, "([^"]+)"\)', verilog))
    assert used == set(mems), f"Verilog ROM instances name other files: {sorted(used ^ set(mems))}"
    ir_tables = {t.name: t for t in Project.open(ln_project).manifest.tables}
    assert {t.kind for t in ir_tables.values()} == {"exp", "recip", "rsqrt", "gelu"}
    held = {x.name for r in roms for x in r.tables if x.role != "requant"}
    assert held == set(ir_tables), f"tables without a ROM: {set(ir_tables) - held}"
    for r in roms:
        if r.tables[0].role != "requant":
            assert re.fullmatch(rf"rom_{sanitize(r.tables[0].name)}(_\d+)?\.mem", r.file), r
            assert all(x.ir_sha256 == ir_tables[x.name].sha256 for x in r.tables)
    # a shared ROM records every IR table it stands for
    assert any(len(r.tables) > 1 for r in roms)


def test_check_roms_catches_a_changed_entry(ln_project, tmp_path) -> None:
    from swinfpga.backends.rtl.roms import RomError, check_roms, mem_sha256

    prj = _copy(ln_project, tmp_path)
    rtl_p = prj / "rtl" / "rtl.json"
    rtl = json.loads(rtl_p.read_text())
    rom = next(r for r in rtl["rom_tables"] if r["tables"][0]["role"] == "lut" and "gelu" in r["file"])
    mem_p = prj / "rtl" / rom["file"]
    lines = mem_p.read_text().split("\n")
    i = next(j for j, s in enumerate(lines) if s and not s.startswith("X"))
    lines[i] = format(int(lines[i], 16) ^ 1, "X").zfill(len(lines[i]))
    mem_p.write_text("\n".join(lines))
    with pytest.raises(RomError, match=re.escape(rom["file"]) + ".*SHA-256"):
        check_roms(prj)
    rom["sha256"] = mem_sha256(mem_p.read_text())  # hash recorded again: the contents check still fails
    rtl_p.write_text(json.dumps(rtl))
    name = rom["tables"][0]["name"]
    with pytest.raises(RomError, match=re.escape(rom["file"]) + f".*entries differ from table '{name}'"):
        check_roms(prj)


def test_check_roms_catches_a_manifest_hash_mismatch(ln_project, tmp_path) -> None:
    from swinfpga.backends.rtl.roms import RomError, check_roms

    prj = _copy(ln_project, tmp_path)
    man_p = prj / "manifest.json"
    man = json.loads(man_p.read_text())
    t = next(t for t in man["tables"] if t["kind"] == "recip")
    t["sha256"] = "0" * 64
    man_p.write_text(json.dumps(man))
    with pytest.raises(RomError, match=f"table '{t['name']}' hash in manifest.json"):
        check_roms(prj)


def test_expected_values_follow_the_lut_addressing() -> None:
    import numpy as np

    from swinfpga.backends.rtl.roms import expected_values
    from swinfpga.fixed import Fmt
    from swinfpga.lut import Lut

    lut = Lut("t", "custom", Fmt(False, 6, 3), 0, 1, Fmt(False, 8, 0), tuple(range(10, 42)))
    codes = np.arange(64)
    v = (codes >> 1) * lut.in_fmt.lsb * 2  # the traced input after the address shift
    np.testing.assert_array_equal(expected_values("lut", lut, v), lut.lookup(codes) * lut.out_fmt.lsb)


def test_verify_rtl_checks_the_roms_first(ln_project, tmp_path, monkeypatch) -> None:
    import swinfpga.backends.rtl as rtl_backend
    from swinfpga.backends.rtl.roms import RomError
    from swinfpga.results import RtlReport
    from swinfpga.verify import verify

    calls = []

    def fake_sim(project, simulator=None, n=None, progress=None):  # the simulation itself is tested elsewhere
        calls.append(project.root)
        return RtlReport(0, 8, 10, 4, "none")

    monkeypatch.setattr(rtl_backend, "verify_rtl", fake_sim)
    rep = verify(ln_project, csim=False, rtl=True)
    assert rep["rtl"]["rom_files_checked"] == len(list((ln_project / "rtl").glob("*.mem"))) > 0
    prj = _copy(ln_project, tmp_path)
    mem = sorted((prj / "rtl").glob("*.mem"))[0]
    mem.write_text(mem.read_text() + "\n00")
    with pytest.raises(RomError, match=mem.name):
        verify(prj, csim=False, rtl=True)
    assert len(calls) == 1, "the simulation ran on a project whose ROMs do not check"


@pytest.mark.parametrize("io_type", ["io_parallel", "io_stream"])
def test_cpp_rom_arrays_carry_the_ir_table_names(io_type):
    """The C++ ROM arrays (weights headers, namespace ``swin_w``) are named exactly as the IR tables /
    manifest entries / Verilog ROM files are, and hold the table's codes."""
    import numpy as np

    from swinfpga.backends.hls4ml.plan import hls_name, plan_model
    from swinfpga.project import model_tables

    m = _ln_unit_model()
    arrays = {k: a for p in plan_model(m, io_type=io_type) for k, a in p.arrays.items()}
    tables = model_tables(m)
    assert {t.kind for t in tables} >= {"exp", "recip", "rsqrt", "gelu"}, sorted({t.kind for t in tables})
    for t in tables:
        name = hls_name(t.name)
        assert name in arrays, f"table {t.name}: no C++ array {name} (have {sorted(arrays)[:6]}...)"
        np.testing.assert_array_equal(arrays[name], np.asarray(t.array()).reshape(-1), err_msg=t.name)


def _rtl_info(rom_files):
    from swinfpga.backends.rtl.contract import FramePort, RtlInfo, Schedule
    from swinfpga.backends.rtl.roms import Rom, RomTable
    from swinfpga.fixed import Fmt

    f = Fmt(True, 8, 3)
    roms = tuple(Rom(name, "u0", (0, 4, 0), (0, 1, 8), 16, "0" * 64, (RomTable(name[4:-4], "lut", "1" * 64, 0),))
                 for name in rom_files)
    return RtlInfo(top="t", model="m", clock_mhz=200.0, latency_cutoff=5.0, ii_requested=None,
                   in_data=FramePort((2, 3), f), out_data=FramePort((4,), f), predicted=Schedule(3, 1, (("seg0", 2),)),
                   layer_cycles={"a": 1}, segments=(), files=("t.v",), traced_samples=4, traced_mismatches={"seg0": 0},
                   content_hash="c", rom_tables=roms)


def test_rtl_json_rom_files_come_from_rom_tables() -> None:
    """``roms`` in rtl.json is derived from ``rom_tables`` (one source of truth); an rtl.json whose
    ``roms`` disagrees is refused; an older rtl.json with only ``roms`` still reads."""
    from swinfpga.backends.rtl.contract import RtlInfo, RtlJsonError

    info = _rtl_info(["rom_b_exp.mem", "rom_a_recip.mem"])
    d = json.loads(json.dumps(info.to_json()))
    assert d["roms"] == ["rom_a_recip.mem", "rom_b_exp.mem"]
    back = RtlInfo.from_json(d)
    assert back == info and back.roms == ("rom_a_recip.mem", "rom_b_exp.mem") and back.to_json() == d
    bad = dict(d, roms=["rom_a_recip.mem"])
    with pytest.raises(RtlJsonError, match=r"'roms' .* differs from the files of 'rom_tables'"):
        RtlInfo.from_json(bad, "x/rtl.json")
    old = {k: v for k, v in d.items() if k != "rom_tables"}
    legacy = RtlInfo.from_json(old)
    assert legacy.roms == ("rom_a_recip.mem", "rom_b_exp.mem") and legacy.rom_tables == ()
    assert legacy.to_json()["roms"] == d["roms"]


def test_unit_cache_key_follows_the_generator_source(tmp_path):
    """Editing the tracer, an operator kernel or the Verilog emitter changes every unit's cache key
    (no stale unit is served after a code change without a GEN_VERSION bump)."""
    import shutil
    from pathlib import Path

    import swinfpga
    from swinfpga.backends.rtl import build

    pkg = Path(swinfpga.__file__).resolve().parent
    root = tmp_path / "swinfpga"
    shutil.copytree(pkg, root, ignore=shutil.ignore_patterns("models", "hls_templates", "__pycache__"))
    base = build.source_hash(root)
    assert base == build.generator_hash()
    for rel in ("ops/layer_norm.py", "backends/rtl/trace.py", "backends/rtl/timing.py", "backends/rtl/verilog.py"):
        f = root / rel
        text = f.read_text()
        f.write_text(text + "\n# edited\n")
        assert build.source_hash(root) != base, rel
        f.write_text(text)
    assert build.source_hash(root) == base
    (root / "cli.py").write_text("# not generator code\n")
    assert build.source_hash(root) == base
