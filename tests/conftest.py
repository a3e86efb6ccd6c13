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
