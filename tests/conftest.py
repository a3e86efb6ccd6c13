"""Shared fixtures.  ``require_tool`` skips locally when a tool is missing but fails in CI."""

from __future__ import annotations

import os
import shutil

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
