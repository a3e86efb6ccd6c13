"""Shared fixtures.  ``require_tool`` skips locally when a tool is missing but fails in CI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """Path of executable ``name``; in CI a missing tool is a failure, elsewhere a skip."""
    path = shutil.which(name)
    if path is None:
        msg = f"required tool {name!r} is not on PATH (.ci/run installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def require_module(name: str):
    """Import ``name``; in CI a missing module is a failure, elsewhere a skip."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as e:
        if IN_CI:
            pytest.fail(f"required Python module {name!r} missing: {e}")
        pytest.skip(f"module {name!r} not installed")


@contextmanager
def csim_cache(tmp_path_factory) -> Iterator[None]:
    """g++ and hls4ml required; SWINFPGA_CACHE points at a fresh directory for the block, then is restored."""
    require_tool("g++")
    require_module("hls4ml")
    old = os.environ.get("SWINFPGA_CACHE")
    os.environ["SWINFPGA_CACHE"] = str(tmp_path_factory.mktemp("swinfpga-cache"))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SWINFPGA_CACHE", None)
        else:
            os.environ["SWINFPGA_CACHE"] = old


def icarus_bit_exact(prj, n: int, bp_n: int):
    """Simulate the RTL of project directory ``prj`` in Icarus: ``n`` samples streamed, then ``bp_n``
    with idle input and back-pressure; asserts 0 mismatches and latency == the predicted cycles
    (``rtl.json``); returns the :func:`~swinfpga.backends.rtl.verify.verify_rtl` report."""
    import json

    from swinfpga.backends.rtl.verify import verify_rtl
    from swinfpga.manifest import Project

    require_tool("iverilog")
    variants = [{"name": "stream", "n": n, "idle_prob": 0.0, "bp_prob": 0.0},
                {"name": "backpressure_idle", "n": bp_n, "idle_prob": 0.3, "bp_prob": 0.5}]
    rep = verify_rtl(Project.open(prj), simulator="icarus", variants=variants)
    assert rep.mismatches == 0, [str(m) for m in rep.first]
    assert rep.latency_cycles == json.loads((prj / "rtl" / "rtl.json").read_text())["predicted"]["latency_cycles"]
    return rep
