"""A regular (non-editable) install works without the source tree: ``hls_templates/``, ``sim/`` and
``boards/`` ship inside the wheel and are found through :mod:`swinfpga.resources`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import require_module, require_tool

from swinfpga import resources

ROOT = Path(__file__).resolve().parents[1]
# what a copy of the repository leaves out: VCS data, build products, caches, outputs
COPY_IGNORE = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
                                     ".hypothesis", "out", "work", "sim_build", ".swinfpga-cache", "results")


def _copy_repo(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=COPY_IGNORE)
    return dest


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` (in {cwd}) exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def _clean_env() -> dict[str, str]:
    """The environment minus anything that would put the source tree on the import path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    for k in ("SWINFPGA_BOARDS", "SWINFPGA_SIM_DIR"):
        env.pop(k, None)
    return env


def _require_build_backend() -> None:
    """setuptools (and, before setuptools 70.1, ``wheel``) for ``--no-build-isolation`` builds."""
    st = require_module("setuptools")
    if tuple(int(x) for x in st.__version__.split(".")[:2]) < (70, 1):
        require_module("wheel")


def test_resources_fall_back_to_the_source_tree() -> None:
    # running from the checkout (no swinfpga/_data/ unless a wheel build put it there)
    for folder, fn, probe in [("hls_templates", resources.templates_dir, "swin_common.h"),
                              ("sim", resources.sim_dir, "test_swinfpga.py"),
                              ("boards", resources.boards_dir, "vu13p.yaml")]:
        d = fn()
        assert d.name == folder and (d / probe).is_file(), (folder, d)
    with pytest.raises(ValueError, match="unknown data folder"):
        resources.data_path("nosuch")


def test_missing_data_folder_is_a_user_error(monkeypatch, tmp_path) -> None:
    from swinfpga.errors import SwinfpgaError

    monkeypatch.setattr(resources, "DATA_DIR", tmp_path / "_data")
    monkeypatch.setattr(resources, "SOURCE_ROOT", tmp_path)
    with pytest.raises(SwinfpgaError, match=r"hls_templates/ folder .*pip install \."):
        resources.templates_dir()


def test_wheel_ships_the_data_folders(tmp_path) -> None:
    _require_build_backend()
    src = _copy_repo(tmp_path / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(tmp_path / "dist"), str(src)], tmp_path, _clean_env(), 300)
    (whl,) = (tmp_path / "dist").glob("swinfpga-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for folder in resources.FOLDERS:
        expected = {f"swinfpga/_data/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
                    for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert expected and expected <= names, f"{folder}/ files missing from the wheel: {sorted(expected - names)}"
    assert not [n for n in names if "__pycache__" in n]


def test_regular_install_converts_and_csims_from_any_directory(tmp_path) -> None:
    """Fresh venv (system site packages reused for TF/hls4ml), ``pip install --no-deps .`` of a copy
    of the repository, then convert + C-sim from an unrelated directory with that venv: 0 mismatches."""
    require_module("hls4ml")
    _require_build_backend()
    require_tool("g++")
    src = _copy_repo(tmp_path / "src")
    venv = tmp_path / "venv"
    env = _clean_env()
    # --without-pip: the system pip (visible through --system-site-packages) installs into the venv
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], tmp_path, env, 120)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(src)],
         tmp_path, env, 300)
    shutil.rmtree(src)  # the installed package must not need its source tree
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = _run([str(py), "-c", "import json, swinfpga, swinfpga.resources as r; print(json.dumps("
                  "[swinfpga.__file__, str(r.templates_dir()), str(r.sim_dir()), str(r.boards_dir())]))"],
                 work, env, 120)
    paths = json.loads(probe.stdout.strip().splitlines()[-1])
    site = str(venv.resolve())
    assert all(p.startswith(site) for p in paths), f"not imported from the fresh venv {site}: {paths}"
    assert all("/_data/" in p for p in paths[1:]), paths
    exe = venv / "bin" / "swinfpga"
    assert exe.exists(), "pip did not install the `swinfpga` console script"
    _run([str(exe), "convert", "swin-digits", "-o", "X", "--no-rtl"], work, env, 600)
    assert (work / "X" / "hls" / "firmware").is_dir()
    _run([str(exe), "verify", "X", "--csim", "--json", "verify.json"], work, env, 1200)
    res = json.loads((work / "verify.json").read_text())
    assert res["csim"]["samples"] > 0 and res["csim"]["mismatches"] == 0, res["csim"]
