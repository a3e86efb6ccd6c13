"""Issue 12: nothing lost, no tracebacks.  One test per reported case: the safe ``--force``, a clean
one-line error (exit 2, naming the file / key / layer / argument and the fix) for every bad file and
argument, results printed before they are written, signals, stale temporaries and file modes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from swinfpga.cli import main
from swinfpga.ir.build import random_model
from swinfpga.models import SWIN_DIGITS, StageSpec, SwinSpec

ROOT = Path(__file__).resolve().parent.parent
TINY = SwinSpec("tiny", (4, 4, 1), 2, 4, (StageSpec(1, 1, 2, 0),), mlp_ratio=1, classes=2)
FAST = ["--no-hls", "--no-rtl", "--vectors", "5"]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr as one line)."""
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, " ".join(cap.err.split())


def clean_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert "error: " in err, err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def ir(tmp_path) -> Path:
    p = tmp_path / "in" / "m.json"
    p.parent.mkdir()
    random_model(TINY, seed=1).save(p)
    return p


@pytest.fixture
def project(tmp_path, ir, capsys) -> Path:
    out = tmp_path / "prj"
    assert main(["convert", str(ir), "-o", str(out), *FAST]) == 0
    capsys.readouterr()
    return out


# ----- data loss: the safe --force ------------------------------------------------------------------
def test_force_never_replaces_the_current_directory(tmp_path, ir, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ir.parent)
    (ir.parent / "manifest.json").write_text("{}")  # even if it looks like a project
    before = snapshot(ir.parent)
    rc, _, err = run(["convert", ir.name, "-o", ".", *FAST, "--force"], capsys)
    clean_error(rc, err, "current directory", "never")
    assert snapshot(ir.parent) == before


def test_force_never_replaces_an_ancestor_of_the_current_directory(tmp_path, project, ir, capsys,
                                                                  monkeypatch) -> None:
    sub = project / "hls_work"
    sub.mkdir()
    monkeypatch.chdir(sub)
    before = snapshot(project)
    rc, _, err = run(["convert", ir, "-o", project, *FAST, "--force"], capsys)
    clean_error(rc, err, "ancestor of the current directory")
    assert snapshot(project) == before


def test_force_never_replaces_the_directory_holding_the_input(tmp_path, capsys) -> None:
    train_dir = tmp_path / "run"  # a `swinfpga train` output: model.json + metrics.json (+ model.keras)
    train_dir.mkdir()
    random_model(TINY, seed=2).save(train_dir / "model.json")
    (train_dir / "metrics.json").write_text('{"accuracy": {}}')
    (train_dir / "manifest.json").write_text("{}")  # even with a project marker
    before = snapshot(train_dir)
    rc, _, err = run(["convert", train_dir, "-o", train_dir, *FAST, "--force"], capsys)
    clean_error(rc, err, "holds the input", str(train_dir))
    assert snapshot(train_dir) == before


def test_force_refuses_a_directory_that_is_not_a_project(tmp_path, ir, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    rc, _, err = run(["convert", ir, "-o", out, *FAST, "--force"], capsys)
    clean_error(rc, err, "not a swinfpga project", "manifest.json", str(out))
    assert (out / "thesis.tex").read_text() == "years of work"


def test_force_replaces_an_empty_directory_or_one_holding_only_stale_temporaries(tmp_path, ir, capsys) -> None:
    out = tmp_path / "d"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / f".project.tmp-{int(dead.stdout)}-abc").mkdir()  # a demo killed mid-convert
    assert run(["convert", ir, "-o", out, *FAST, "--force"], capsys)[0] == 0
    assert (out / "manifest.json").is_file()
    (out / "x.txt").write_text("x")  # no longer empty, still a project: fine
    assert run(["convert", ir, "-o", out, *FAST, "--force"], capsys)[0] == 0


def test_force_replaces_a_project(project, ir, capsys) -> None:
    (project / "stale.txt").write_text("old")
    assert run(["convert", ir, "-o", project, "--no-hls", "--no-rtl", "--vectors", "3", "--force"], capsys)[0] == 0
    assert not (project / "stale.txt").exists()
    assert json.loads((project / "manifest.json").read_text())["n_vectors"] == 3


def test_train_force_refuses_a_foreign_directory(tmp_path, capsys) -> None:
    out = tmp_path / "t"
    out.mkdir()
    (out / "notes.txt").write_text("x")
    rc, _, err = run(["train", "swin-digits", "-o", out, "--epochs", "1", "--force"], capsys)
    clean_error(rc, err, "not a `swinfpga train` output directory", "metrics.json")
    assert (out / "notes.txt").exists()


def test_demo_into_an_existing_directory(tmp_path, capsys) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    rc, _, err = run(["demo", "swin-digits", "-o", out, "--no-rtl", "--no-csim"], capsys)
    clean_error(rc, err, "exists", "--force")
    rc, _, err = run(["demo", "swin-digits", "-o", out, "--no-rtl", "--no-csim", "--force"], capsys)
    clean_error(rc, err, "not a `swinfpga demo` output directory")
    assert (out / "keep.txt").exists()


# ----- tracebacks -> clean errors: model files ----------------------------------------------------
def test_corrupt_keras_bad_crc(tmp_path, capsys) -> None:
    p = tmp_path / "m.keras"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
        z.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"layers": []}}))
        z.writestr("model.weights.h5", b"\0" * 64)
    raw = bytearray(p.read_bytes())
    i = raw.index(b"Functional")
    raw[i] ^= 0xFF
    p.write_bytes(bytes(raw))
    rc, _, err = run(["convert", p, "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, str(p), "bad CRC", "re-save")
    assert not (tmp_path / "o").exists()


def test_empty_keras_is_not_file_not_found(tmp_path, capsys) -> None:
    p = tmp_path / "m.keras"
    p.write_bytes(b"")
    rc, _, err = run(["convert", p, "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, str(p), "empty")
    assert "not found" not in err.lower()


def test_truncated_keras(tmp_path, capsys) -> None:
    p = tmp_path / "m.keras"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", "{}" * 500)
    p.write_bytes(buf.getvalue()[:100])
    rc, _, err = run(["convert", p, "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, str(p), "not a valid .keras archive")


def _h5(tmp_path) -> Path:
    from legacy_fixture import legacy_model

    p = tmp_path / "legacy.h5"
    legacy_model(p)
    return p


@pytest.mark.parametrize("damage", ["plain-text", "truncated", "corrupt", "empty"])
def test_bad_h5(tmp_path, capsys, damage) -> None:
    p = _h5(tmp_path)
    raw = p.read_bytes()
    if damage == "plain-text":
        p.write_text("this is not an HDF5 file\n")
    elif damage == "truncated":
        p.write_bytes(raw[: len(raw) // 3])
    elif damage == "corrupt":
        b = bytearray(raw)
        for i in range(600, len(b), 97):  # keep the signature, damage everything after it
            b[i] ^= 0x5A
        p.write_bytes(bytes(b))
    else:
        p.write_bytes(b"")
    rc, _, err = run(["convert", p, "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, str(p))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("fault,needle", [("hang", "did not finish within 1 s"), ("crash", "crashed")])
def test_h5_library_hang_or_crash_is_a_clean_error(tmp_path, monkeypatch, fault, needle) -> None:
    """The HDF5 C library loops forever on some damaged files (found by fuzzing): the file is read in
    a forked child with a time limit.  Simulated here: the child's reader sleeps or dies."""
    import swinfpga.frontend.qkeras_h5 as Q

    p = _h5(tmp_path)
    monkeypatch.setattr(Q, "read_h5", (lambda path: time.sleep(60)) if fault == "hang" else (lambda path: os._exit(3)))
    t0 = time.perf_counter()
    with pytest.raises(Q.LegacyModelError, match=needle):
        Q.read_h5_isolated(p, timeout=1)
    assert time.perf_counter() - t0 < 30


def test_hgq2_model_gets_a_short_message(tmp_path, capsys) -> None:
    from tests.conftest import require_module

    keras = require_module("keras")
    layers = require_module("hgq.layers")
    inp = keras.Input((4,))
    p = tmp_path / "hgq.keras"
    keras.Model(inp, layers.QSoftmax()(layers.QDense(3)(inp))).save(p)  # HGQ2 models import; a lone QSoftmax not
    rc, _, err = run(["convert", p, "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, str(p), "QSoftmax")
    assert len(err) < 600, f"{len(err)} characters: {err[:300]}"


def test_keras_config_dump_is_reduced_to_the_unknown_class() -> None:
    from swinfpga.frontend.keras import _keras_reason

    dump = TypeError("Could not locate class 'QDense'. Make sure custom classes are decorated. Full object config: "
                     + json.dumps({"config": {"layers": [{"x": "y" * 50}] * 200}}))
    assert len(str(dump)) > 10_000
    msg = _keras_reason(dump)
    assert "'QDense'" in msg and len(msg) < 300


# ----- IR JSON ---------------------------------------------------------------------------------------
def _ir_variant(tmp_path, edit) -> Path:
    d = random_model(TINY, seed=3).to_json()
    d = edit(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    return p


def _attn(d):
    return next(n for n in d["nodes"] if n["__type__"] == "WindowAttention")


def _drop_heads(d):
    del _attn(d)["heads"]
    return d


def _str_heads(d):
    _attn(d)["heads"] = "1"
    return d


def _big_weight(d):
    _attn(d)["k"]["weight"]["__codes__"][0][0] = 10**6
    return d


def _drop_nodes(d):
    del d["nodes"]
    return d


@pytest.mark.parametrize("edit,needles", [
    (lambda d: d["nodes"], ["expected a JSON object"]),
    (_drop_heads, ["'s0b0.attn'", "WindowAttention", "missing field 'heads'"]),
    (_str_heads, ["'s0b0.attn'", "field 'heads' must be an integer", "'1'"]),
    (_big_weight, ["'s0b0.attn'", "field 'k'", "1000000", "does not fit"]),
    (_drop_nodes, ["missing key 'nodes'"]),
], ids=["list", "no-heads", "string-heads", "weight-out-of-range", "no-nodes"])
def test_bad_ir_json(tmp_path, capsys, edit, needles) -> None:
    p = _ir_variant(tmp_path, edit)
    rc, _, err = run(["convert", p, "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, str(p), *needles)


def test_invalid_json_names_the_file(tmp_path, capsys) -> None:
    p = tmp_path / "m.json"
    p.write_text('{"schema": 1, "name": ')
    rc, _, err = run(["convert", p, "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, str(p), "not valid JSON", "line 1")


# ----- boards ---------------------------------------------------------------------------------------
BOARD = ("name: b\npart: xcvu13p-flga2577-2-e\nfamily: virtexuplus\nclock_mhz: 200\n"
         "resources: {lut: 1, ff: 1, dsp: 1, bram36: 1, uram: 0}\n")


@pytest.mark.parametrize("text,needles", [
    ("name: b\npart: [unclosed\n", ["malformed YAML"]),
    (BOARD.replace("resources: {lut: 1, ff: 1, dsp: 1, bram36: 1, uram: 0}", "resources: {lut: 1}"),
     ["resources lacks ff, dsp, bram36, uram"]),
    (BOARD.replace("family: virtexuplus\n", ""), ["missing key 'family'"]),
    (BOARD.replace("clock_mhz: 200", "clock_mhz: 0"), ["clock_mhz must be a positive number"]),
], ids=["malformed", "partial-resources", "no-family", "clock-0"])
def test_bad_board_yaml_fails_before_any_work(tmp_path, ir, capsys, monkeypatch, text, needles) -> None:
    bdir = tmp_path / "boards"
    bdir.mkdir()
    (bdir / "b.yaml").write_text(text)
    monkeypatch.setenv("SWINFPGA_BOARDS", str(bdir))
    import swinfpga.project as P

    def no_work(*a, **k):
        raise AssertionError("work started before the board was checked")

    monkeypatch.setattr(P, "resolve_model", no_work)
    rc, _, err = run(["convert", ir, "-o", tmp_path / "o", "--board", "b", *FAST], capsys)
    clean_error(rc, err, str(bdir / "b.yaml"), *needles)
    assert not (tmp_path / "o").exists()


# ----- project files --------------------------------------------------------------------------------
def test_truncated_vectors(project, capsys) -> None:
    v = project / "vectors.npz"
    v.write_bytes(v.read_bytes()[:200])
    rc, _, err = run(["verify", project, "--csim"], capsys)
    clean_error(rc, err, str(v), "regenerate")


def test_garbage_vectors_never_suggest_allow_pickle(project, capsys) -> None:
    v = project / "vectors.npz"
    np.savez(v, x=np.array([{"a": 1}], dtype=object), y=np.zeros(3))
    rc, _, err = run(["verify", project, "--csim"], capsys)
    clean_error(rc, err, str(v), "never loads")
    assert "allow_pickle" not in err
    v.write_bytes(b"garbage" * 10)
    rc, _, err = run(["verify", project, "--csim"], capsys)
    clean_error(rc, err, str(v), "not an .npz archive")
    assert "allow_pickle" not in err and "pickle" not in err


def test_manifest_missing_key_names_file_and_key(project, capsys) -> None:
    m = project / "manifest.json"
    d = json.loads(m.read_text())
    del d["board"]
    m.write_text(json.dumps(d))
    rc, _, err = run(["report", project], capsys)
    clean_error(rc, err, str(m), "missing key 'board'", "swinfpga convert")


def test_generated_cpp_that_does_not_compile(tmp_path, ir, capsys) -> None:
    from tests.conftest import require_module, require_tool

    require_tool("g++")
    require_module("hls4ml")
    out = tmp_path / "p"
    assert main(["convert", str(ir), "-o", str(out), "--no-rtl", "--vectors", "4"]) == 0
    cpp = out / "hls" / "firmware" / "myproject.cpp"
    cpp.write_text(cpp.read_text() + f"\nnot C++ at all {time.time_ns()} ;\n")  # unique: never cached
    capsys.readouterr()
    rc, _, err = run(["verify", out, "--csim"], capsys)
    clean_error(rc, err, "does not compile", str(cpp), "error:")


def test_verify_what_the_project_does_not_have(project, capsys) -> None:
    rc, _, err = run(["verify", project, "--rtl"], capsys)
    clean_error(rc, err, "--rtl", "--no-rtl")
    rc, _, err = run(["verify", project, "--csim"], capsys)
    clean_error(rc, err, "--csim", "--no-hls")


def test_report_on_a_no_rtl_project_says_why(project, capsys) -> None:
    rc, out, err = run(["report", project], capsys)
    assert rc == 0, err
    assert "no RTL" in out and "--no-rtl" in out


# ----- arguments, validated before any work ----------------------------------------------------------
@pytest.mark.parametrize("args,flag", [
    (["convert", "IR", "-o", "OUT", "--no-hls", "--no-rtl", "--vectors", "-3"], "--vectors"),
    (["convert", "IR", "-o", "OUT", "--no-hls", "--no-rtl", "--reuse-factor", "0"], "--reuse-factor"),
    (["verify", "PRJ", "-n", "-5"], "-n"),
    (["demo", "swin-digits", "-o", "OUT", "-n", "0"], "-n"),
    (["train", "swin-digits", "-o", "OUT", "--epochs", "0"], "--epochs"),
], ids=["vectors", "reuse-factor", "verify-n", "demo-n", "epochs"])
def test_bad_arguments(tmp_path, ir, project, capsys, args, flag) -> None:
    subst = {"IR": ir, "OUT": tmp_path / "new", "PRJ": project}
    rc, _, err = run([subst.get(a, a) for a in args], capsys)
    clean_error(rc, err, f"{flag} must be a positive integer")
    assert not (tmp_path / "new").exists()


def test_verify_json_pointing_at_a_directory(project, tmp_path, capsys) -> None:
    rc, _, err = run(["verify", project, "--json", tmp_path], capsys)
    clean_error(rc, err, "--json", "is a directory")


def test_verify_results_are_printed_before_the_json_write(project, tmp_path, capsys, monkeypatch) -> None:
    import errno

    import swinfpga.cli as C
    import swinfpga.verify as V

    monkeypatch.setattr(V, "verify", lambda *a, **k: {"model": "m", "csim": {"mismatches": 0, "samples": 7}})

    def ro(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "r.json"))

    monkeypatch.setattr(C, "atomic_write_text", ro)
    rc, out, err = run(["verify", project, "--json", tmp_path / "r.json"], capsys)
    clean_error(rc, err, "--json", "Read-only file system", "printed above")
    assert json.loads(out)["csim"]["samples"] == 7


def test_read_only_output_file_system(tmp_path, ir, capsys, monkeypatch) -> None:
    import errno

    import swinfpga.outdir as O

    def ro(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(O.tempfile, "mkdtemp", ro)
    rc, _, err = run(["convert", ir, "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, "Read-only file system", str(tmp_path / "o"), "writable")


def test_reference_without_training_does_not_suggest_train(tmp_path, capsys) -> None:
    rc, _, err = run(["convert", "swin-t-stage1", "-o", tmp_path / "o", *FAST], capsys)
    clean_error(rc, err, "--random")
    assert "swinfpga train" not in err


def test_unexpected_exception_is_one_line_and_debug_shows_the_traceback(tmp_path, ir, capsys,
                                                                      monkeypatch) -> None:
    import swinfpga.project as P

    monkeypatch.setattr(P, "model_tables", lambda m: 1 / 0)
    rc, _, err = run(["convert", ir, "-o", tmp_path / "o", *FAST], capsys)
    assert rc == 2 and "Traceback" not in err and "ZeroDivisionError" in err and "--debug" in err
    rc, _, err = run(["convert", ir, "-o", tmp_path / "o", *FAST, "--debug"], capsys)
    assert rc == 2 and "Traceback" in err
    assert not (tmp_path / "o").exists()


# ----- signals, stale temporaries, file modes (subprocesses) ------------------------------------------
SLOW = """
import sys, time
import swinfpga.golden as G
orig = G.run
def slow(*a, **k):
    print("STAGED", flush=True)
    time.sleep(120)
    return orig(*a, **k)
G.run = slow
from swinfpga.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _default_sigint() -> None:
    # a run started from a background job of a non-interactive shell inherits SIGINT ignored (POSIX),
    # and Python then keeps it ignored: give the child the terminal's default, as a user's shell does
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _slow_convert(ir: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-c", SLOW, "convert", str(ir), "-o", str(out), *FAST, "--force"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT),
                         preexec_fn=_default_sigint)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "STAGED"
    return p


def _temps(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signal_keeps_the_previous_output_and_leaves_nothing(project, ir, sig, code, word) -> None:
    before = snapshot(project)
    p = _slow_convert(ir, project)
    assert _temps(project), "the run should be staging next to the output"
    p.send_signal(sig)
    _, err = p.communicate(timeout=180)  # seconds on a loaded 2-core machine; the child exits at once
    assert p.returncode == code, err
    assert "Traceback" not in err and word in err and len(err.strip().splitlines()) <= 3, err
    assert snapshot(project) == before
    assert _temps(project) == []


def test_killed_run_temporaries_are_cleaned_by_the_next_run(project, ir, capsys) -> None:
    p = _slow_convert(ir, project)
    p.kill()
    p.communicate(timeout=60)
    stale = _temps(project)
    assert stale, "SIGKILL cannot clean up: its temporary directory stays"
    alive = project.parent / f".{project.name}.tmp-{os.getpid()}-x"  # a live run's staging dir is kept
    alive.mkdir()
    assert run(["convert", ir, "-o", project, *FAST, "--force"], capsys)[0] == 0
    assert _temps(project) == [alive]


def test_files_get_the_users_umask(tmp_path, ir, capsys) -> None:
    old = os.umask(0o022)
    try:
        out = tmp_path / "p"
        assert run(["convert", ir, "-o", out, *FAST], capsys)[0] == 0
        assert run(["verify", out, "--json", tmp_path / "v.json"], capsys)[0] in (0, 1)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755
    for f in ("manifest.json", "model.json", "vectors.npz"):
        assert (out / f).stat().st_mode & 0o777 == 0o644, f
    assert (tmp_path / "v.json").stat().st_mode & 0o777 == 0o644


def test_swin_digits_force_round_trip_keeps_no_temporaries(tmp_path, capsys) -> None:
    ir = tmp_path / "m.json"
    random_model(SWIN_DIGITS, seed=5).save(ir)
    out = tmp_path / "prj"
    for _ in range(2):
        assert run(["convert", ir, "-o", out, *FAST, "--force"], capsys)[0] == 0
    assert _temps(out) == []
