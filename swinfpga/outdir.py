"""Output directories: the safe ``--force``, atomic replacement, stale temporaries, umask.

Every command that writes a directory (``convert -o``, ``train -o``, ``demo -o``) assembles it
in a sibling temporary directory ``.NAME.tmp-PID-XXXX`` and renames it into place at the end.
An existing directory is replaced only with ``force`` and only when all of these hold:

* it is a directory holding the command's own marker file (``manifest.json`` for a project,
  ``metrics.json`` for a training run, ``summary.json`` or ``project/manifest.json`` for a demo),
  or an empty one (nothing but temporaries of killed runs: nothing to lose);
* it is not the current directory nor one of its ancestors;
* it does not hold (and is not) an input of the command (the model being converted).

Temporaries left by killed runs (SIGTERM/SIGKILL, power loss) are removed by the next run that
writes next to them, once their process id no longer exists.  Files and directories get the
user's umask (``tempfile`` alone would create them 0600 / 0700).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import SwinfpgaError


class OutputDirError(SwinfpgaError, RuntimeError):
    """The output directory cannot be (re)placed; the message says why and what to do."""


def umask() -> int:
    """The process umask: from /proc (thread-safe) where available, else set-and-restore."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    m = os.umask(0o022)
    os.umask(m)
    return m


def apply_umask(path: Path, directory: bool) -> None:
    """Give ``path`` the mode a plain ``open()`` / ``mkdir()`` would have given it."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output_dir(out: str | Path, force: bool, markers: Sequence[str], what: str,
                     inputs: Iterable[str | Path] = (), error: type[SwinfpgaError] | None = None) -> Path:
    """Resolve ``out`` and refuse to proceed unless it may be (re)written.

    ``markers``: relative paths of which at least one marks ``out`` as ``what`` (e.g. "a swinfpga
    project"); ``inputs``: files / directories the command reads, never replaced.  Raises ``error``
    (default :class:`OutputDirError`) naming the directory, the reason and the fix; returns the
    resolved path."""
    err = error or OutputDirError
    o = Path(out).expanduser().resolve()
    if not o.exists():
        if o.parent.exists() and not o.parent.is_dir():
            raise err(f"cannot create {o}: {o.parent} is a file, not a directory; choose another -o")
        return o
    if not force:
        raise err(f"{o} exists; pass --force to replace it, or choose another -o (nothing was written)")
    if not o.is_dir():
        raise err(f"{o} is a file, not a directory; --force replaces only {what}; "
                             "choose another -o or remove the file yourself")
    cwd = Path.cwd().resolve()
    if _is_within(cwd, o):
        where = "the current directory" if cwd == o else f"an ancestor of the current directory {cwd}"
        raise err(f"refusing to replace {o}: it is {where}; --force never replaces that; "
                             "choose a new output directory, e.g. -o out/NAME")
    for i in inputs:
        ip = Path(i).expanduser().resolve()
        if _is_within(ip, o):
            raise err(f"refusing to replace {o}: it holds the input {ip}; --force never replaces an "
                                 "input; choose another -o")
    if not any((o / m).is_file() for m in markers) and not _only_stale(o):
        raise err(
            f"refusing to replace {o}: it is not {what} (no {' or '.join(markers)}); --force replaces only "
            f"{what}; choose a new -o, or delete {o} yourself if you really want it gone"
        )
    return o


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_stale(p: Path) -> bool:
    m = _TEMP.match(p.name)
    return m is not None and p.is_dir() and int(m.group("pid")) != os.getpid() and not _pid_alive(int(m.group("pid")))


def _only_stale(d: Path) -> bool:
    """``d`` is empty, or holds only temporaries of killed runs (e.g. a demo killed mid-convert)."""
    try:
        return all(_is_stale(p) for p in d.iterdir())
    except OSError:
        return False


def clean_stale(out: Path) -> list[Path]:
    """Remove ``.NAME.tmp-PID-*`` / ``.NAME.old-PID-*`` siblings of ``out`` whose process is gone."""
    removed: list[Path] = []
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return removed
    for p in siblings:
        m = _TEMP.match(p.name)
        if m is None or m.group("name") != out.name or not _is_stale(p):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def make_stage(out: Path) -> Path:
    """Create the temporary sibling in which ``out`` is assembled (after cleaning stale ones)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        apply_umask(stage, directory=True)
    except OSError as e:
        raise OutputDirError(f"cannot write the output directory {out}: {e.strerror or e} "
                             f"({e.filename or out.parent}); choose a writable -o") from e
    return stage


def replace_dir(stage: Path, out: Path) -> None:
    """Move the finished ``stage`` to ``out``, replacing an existing ``out`` (already checked)."""
    try:
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
            out.rename(trash / out.name)
            try:
                stage.rename(out)
            except OSError:
                (trash / out.name).rename(out)  # put the previous output back
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            stage.rename(out)
    except OSError as e:
        raise OutputDirError(f"cannot move the finished output into {out}: {e.strerror or e}; "
                             f"nothing was replaced") from e


__all__ = ["OutputDirError", "check_output_dir", "clean_stale", "make_stage", "replace_dir", "apply_umask", "umask"]
