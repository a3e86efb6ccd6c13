"""Target boards (``boards/*.yaml``): part, clock and resources."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import resources


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


def load_board(name: str) -> Board:
    """Load ``boards/<name>.yaml``; unknown names list the known ones."""
    import yaml

    path = boards_dir() / f"{name}.yaml"
    if not path.exists():
        raise KeyError(f"unknown board {name!r}; known boards: {', '.join(list_boards())}")
    d = yaml.safe_load(path.read_text())
    return Board(str(d["name"]), str(d.get("title", d["name"])), str(d["part"]), str(d["family"]),
                 float(d["clock_mhz"]), Resources(**{k: int(v) for k, v in d["resources"].items()}))
