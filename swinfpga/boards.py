"""Target boards (``boards/*.yaml``): part, clock and resources."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from . import resources
from .errors import SwinfpgaError


@dataclass(frozen=True)
class Resources:
    lut: int
    ff: int
    dsp: int
    bram36: int
    uram: int


@dataclass(frozen=True)
class Board:
    """A board: FPGA part, target clock (MHz) and available resources."""

    name: str
    title: str
    part: str
    family: str
    clock_mhz: float
    resources: Resources

    @property
    def clock_ns(self) -> float:
        return 1000.0 / self.clock_mhz


def boards_dir() -> Path:
    env = os.environ.get("SWINFPGA_BOARDS")
    return Path(env) if env else resources.boards_dir()


def list_boards() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.yaml"))


class BoardError(SwinfpgaError, ValueError):
    """Unknown board, or a malformed ``boards/*.yaml`` file."""


RESOURCE_KEYS = ("lut", "ff", "dsp", "bram36", "uram")


def load_board(name: str) -> Board:
    """Load ``boards/<name>.yaml``; unknown names list the known ones."""
    path = boards_dir() / f"{name}.yaml"
    if not name or "/" in name or "\\" in name or not path.is_file():
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(list_boards())} "
                         f"(files in {boards_dir()}); pass one of them to --board")
    return load_board_file(path)


def load_board_file(path: str | Path) -> Board:
    """Parse and check one board YAML file (see ``boards/vu13p.yaml``); every problem raises
    :class:`BoardError` naming the file, the key and the fix."""
    import yaml

    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise BoardError(f"{path}: malformed YAML ({_short(e)}); fix the syntax (see boards/vu13p.yaml)") from None
    except (OSError, UnicodeDecodeError, RecursionError, ValueError) as e:
        raise BoardError(f"{path}: cannot read the board file ({type(e).__name__}: {_short(e)})") from None
    if not isinstance(d, dict):
        raise BoardError(f"{path}: expected a mapping with keys name, part, family, clock_mhz, resources; "
                         f"got {type(d).__name__} (see boards/vu13p.yaml)")
    for key in ("name", "part", "family", "clock_mhz", "resources"):
        if key not in d:
            raise BoardError(f"{path}: missing key {key!r} (see boards/vu13p.yaml)")
    for key in ("name", "part", "family"):
        if not isinstance(d[key], str) or not d[key]:
            raise BoardError(f"{path}: key {key!r} must be a non-empty string, got {d[key]!r}")
    title = d.get("title", d["name"])
    if not isinstance(title, str):
        raise BoardError(f"{path}: key 'title' must be a string, got {title!r}")
    clk = d["clock_mhz"]
    if isinstance(clk, bool) or not isinstance(clk, int | float) or not math.isfinite(clk) or clk <= 0:
        raise BoardError(f"{path}: clock_mhz must be a positive number of MHz (e.g. 200), got {clk!r}")
    res = d["resources"]
    if not isinstance(res, dict):
        raise BoardError(f"{path}: key 'resources' must be a mapping of {', '.join(RESOURCE_KEYS)}, got {res!r}")
    missing = [k for k in RESOURCE_KEYS if k not in res]
    if missing:
        raise BoardError(f"{path}: resources lacks {', '.join(missing)}; give all of {', '.join(RESOURCE_KEYS)} "
                         "(0 where the part has none)")
    unknown = [str(k) for k in res if k not in RESOURCE_KEYS]
    if unknown:
        raise BoardError(f"{path}: unknown resources key(s) {', '.join(unknown)}; use {', '.join(RESOURCE_KEYS)}")
    for k in RESOURCE_KEYS:
        v = res[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise BoardError(f"{path}: resources.{k} must be a non-negative integer, got {v!r}")
    return Board(d["name"], title, d["part"], d["family"], float(clk), Resources(**{k: res[k] for k in RESOURCE_KEYS}))


def _short(e: object, limit: int = 200) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= limit else s[:limit] + " ..."
