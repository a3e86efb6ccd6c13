"""Build hook: ship the top-level ``hls_templates/``, ``sim/`` and ``boards/`` folders inside the
wheel as ``swinfpga/_data/<folder>/`` (found at run time by :mod:`swinfpga.resources`).

Everything else about the package is declared in ``pyproject.toml``.  Editable installs copy
nothing: :mod:`swinfpga.resources` then reads the folders from the source tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("hls_templates", "sim", "boards")  # keep in step with swinfpga.resources.FOLDERS
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "sim_build", "results.xml", "*.vcd", "*.fst")


class BuildPyWithData(build_py):
    """``build_py`` that also copies the data folders into ``<build_lib>/swinfpga/_data/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "swinfpga" / "_data"
        for folder in DATA_FOLDERS:
            src = ROOT / folder
            if not src.is_dir():
                raise FileNotFoundError(f"{src} is missing: swinfpga's wheel needs the {folder}/ folder")
            shutil.rmtree(dest / folder, ignore_errors=True)
            shutil.copytree(src, dest / folder, ignore=IGNORE)


setup(cmdclass={"build_py": BuildPyWithData})
