"""Where swinfpga's data folders are at run time: ``hls_templates/``, ``sim/`` and ``boards/``.

The three folders live at the repository's top level.  A built wheel ships copies of them inside
the package as ``swinfpga/_data/<folder>/`` (``setup.py``'s ``build_py`` hook), so a regular
``pip install .`` works from any directory.  Each look-up prefers that installed copy and falls back
to the source tree (editable installs and running from a checkout).  Nothing else in the package
should compute these paths.
"""

from __future__ import annotations

from pathlib import Path

from .errors import SwinfpgaError

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "_data"
SOURCE_ROOT = PACKAGE_DIR.parent
FOLDERS = ("hls_templates", "sim", "boards")


class ResourceError(SwinfpgaError, FileNotFoundError):
    """A data folder is neither installed with the package nor in a source checkout."""


def data_path(folder: str) -> Path:
    """The folder ``folder`` (one of :data:`FOLDERS`): installed package data, else the source tree."""
    if folder not in FOLDERS:
        raise ValueError(f"unknown data folder {folder!r}; known: {', '.join(FOLDERS)}")
    for p in (DATA_DIR / folder, SOURCE_ROOT / folder):
        if p.is_dir():
            return p
    raise ResourceError(
        f"swinfpga's {folder}/ folder was found neither in the installed package ({DATA_DIR / folder}) nor in "
        f"a source checkout ({SOURCE_ROOT / folder}); reinstall swinfpga (pip install .) or run from the repository"
    )


def templates_dir() -> Path:
    """The C++ HLS headers (``hls_templates/``)."""
    return data_path("hls_templates")


def sim_dir() -> Path:
    """The cocotb test module and testbench (``sim/``)."""
    return data_path("sim")


def boards_dir() -> Path:
    """The board descriptions (``boards/*.yaml``)."""
    return data_path("boards")


def package_parent() -> Path:
    """The folder that holds the ``swinfpga`` package (site-packages, or the checkout), for the
    ``PYTHONPATH`` of subprocesses that import swinfpga."""
    return SOURCE_ROOT


__all__ = ["FOLDERS", "ResourceError", "boards_dir", "data_path", "package_parent", "sim_dir", "templates_dir"]
