"""ROM files of the RTL: one name per table, and a check that each ROM holds its IR tables.

da4ml names a ROM ``table_<uuid of its contents>.mem``.  :func:`name_roms` renames every ROM after
the first IR table it holds (``rom_<table name>.mem``, sanitized for file systems and Verilog
strings) and describes it as a :class:`Rom` (recorded under ``rom_tables`` in ``rtl.json``).  da4ml
shares one ROM between lookups of equal contents, so a ROM may hold several IR tables; each is a
:class:`RomTable` with its role:

* ``lut``: a :class:`swinfpga.lut.Lut` looked up directly (exp, rsqrt, GELU): the entry at input
  value ``v`` (after the table's offset and shift) holds ``table[clip(v / (lsb * 2**shift))]``;
* ``recip``: a softmax reciprocal table looked up at the mantissa of the row sum, normalised in
  logic by its leading one (see :class:`swinfpga.lut.SoftmaxSpec`): the entry at input value ``v``
  holds ``RECIP[clip(v * 2**B)] * 2**-R`` (``B = exp_frac - recip.shift``, ``R = recip_frac``);
* ``requant``: an identity table the tracer inserts to reset da4ml's scale factor (no IR table;
  the file is ``rom_<unit>_requant_<i>.mem``).

A ROM is addressed by the raw bits of its input, a fixed-point number ``in_kif`` = (signed, integer
bits, fractional bits) scaled by ``2**in_exp`` (da4ml's internal scale factor, per table); entries
are codes of ``out_kif``; ``X`` entries are unreachable inputs.  :func:`check_roms` re-reads a
written project and checks, per ROM, the file's SHA-256 and, per table, that the manifest's hash
equals the IR table's and that every reachable entry is the IR table's under its role.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SwinfpgaError
from ...lut import Lut, SoftmaxSpec

ROLES = ("lut", "recip", "requant")
EXP_RANGE = 48  # da4ml scale factors searched: 2**(e0 - 48) .. 2**(e0 + 48) around the natural e0


class RomError(SwinfpgaError, ValueError):
    """An emitted ROM does not hold the table its name and the manifest say it holds."""


@dataclass(frozen=True)
class RomTable:
    """One table a ROM holds: IR table ``name`` ('' for requant), ``role``, the IR table's hash
    (``Lut.hash`` == the manifest's ``TableInfo.sha256``; None for requant) and ``in_exp`` (the
    input's real value = its bits read as ``in_kif`` x ``2**in_exp``)."""

    name: str
    role: str
    ir_sha256: str | None
    in_exp: int


@dataclass(frozen=True)
class Rom:
    """One emitted ROM file (see the module docstring for roles and addressing)."""

    file: str
    unit: str
    in_kif: tuple[int, int, int]
    out_kif: tuple[int, int, int]
    entries: int
    sha256: str  # of the .mem file as written
    tables: tuple[RomTable, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON-native (lists, not tuples): equal to what ``json.load`` gives back."""
        return {**asdict(self), "in_kif": list(self.in_kif), "out_kif": list(self.out_kif),
                "tables": [asdict(t) for t in self.tables]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Rom:
        return cls(d["file"], d["unit"], tuple(d["in_kif"]), tuple(d["out_kif"]), int(d["entries"]),  # type: ignore[arg-type]
                   d["sha256"], tuple(RomTable(**x) for x in d["tables"]))


def sanitize(name: str) -> str:
    """A table name as a file name / Verilog string: ``[A-Za-z0-9_]`` only."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "table"


def mem_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _tables_of(obj: Any, luts: list[Lut], softmaxes: list[SoftmaxSpec]) -> None:
    """Every Lut and SoftmaxSpec reachable through an IR node's dataclass fields (no per-node code)."""
    if isinstance(obj, Lut):
        luts.append(obj)
    elif isinstance(obj, SoftmaxSpec) and obj.kind == "hgq2":  # both tables looked up directly
        luts.extend((obj.exp, obj.recip))
    elif isinstance(obj, SoftmaxSpec):
        softmaxes.append(obj)
        luts.append(obj.exp)
    elif is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            _tables_of(getattr(obj, f.name), luts, softmaxes)
    elif isinstance(obj, tuple | list):
        for x in obj:
            _tables_of(x, luts, softmaxes)


def _decode(codes: np.ndarray, kif: tuple[int, int, int]) -> np.ndarray:
    """Real values of raw bit patterns ``codes`` of fixed-point ``kif``."""
    k, i, f = (int(v) for v in kif)
    w = k + i + f
    c = codes.astype(np.int64)
    if k:
        c = np.where(c >= (1 << (w - 1)), c - (1 << w), c)
    return c * 2.0**-f


def _parse_mem(text: str, kif: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(valid mask, real values) of a ``$readmemh`` file."""
    lines = [s.strip() for s in text.split("\n") if s.strip()]
    valid = np.array([not s.upper().startswith("X") for s in lines], dtype=bool)
    codes = np.array([int(s, 16) if ok else 0 for s, ok in zip(lines, valid, strict=True)], dtype=np.int64)
    return valid, _decode(codes, kif)


def expected_values(role: str, table: Lut | SoftmaxSpec | None, v: np.ndarray) -> np.ndarray:
    """What a ROM of ``role`` holding ``table`` must hold at input values ``v`` (real numbers)."""
    if role == "requant":
        return v
    if role == "lut":
        assert isinstance(table, Lut)
        addr = np.clip(np.round(v / (table.in_fmt.lsb * 2.0**table.shift)), 0, table.size - 1).astype(np.int64)
        return table.array()[addr] * table.out_fmt.lsb
    if role == "recip":
        assert isinstance(table, SoftmaxSpec)
        b = table.exp_frac - table.recip.shift
        addr = np.clip(np.round(v * 2.0**b), 0, table.recip.size - 1).astype(np.int64)
        return table.recip.array()[addr] * 2.0 ** (-table.recip_frac)
    raise ValueError(f"unknown ROM role {role!r}; known: {', '.join(ROLES)}")


def _matches(role: str, table: Any, mem: str, in_kif: tuple[int, int, int], out_kif: tuple[int, int, int],
             in_exp: int) -> bool:
    valid, got = _parse_mem(mem, out_kif)
    v = _decode(np.arange(len(valid), dtype=np.int64), in_kif) * 2.0**in_exp
    return bool(valid.any()) and np.array_equal(got[valid], expected_values(role, table, v[valid]))


def _natural_exp(role: str, table: Any, in_kif: tuple[int, int, int], out_kif: tuple[int, int, int]) -> int:
    """The scale at which one input step is one address step of ``table`` (tried first)."""
    if role == "lut":
        return int(round(math.log2(table.in_fmt.lsb))) + table.shift + in_kif[2]
    if role == "recip":
        return table.recip.shift - table.exp_frac + in_kif[2]
    return in_kif[2] - out_kif[2]


def _find_exp(role: str, table: Any, mem: str, in_kif: tuple[int, int, int],
              out_kif: tuple[int, int, int]) -> int | None:
    """The power of two ``e`` (input value = bits x 2**e; da4ml rescales variables internally) under
    which the ROM holds ``table`` in ``role``, or None; the natural scale first, then the nearest."""
    valid, got = _parse_mem(mem, out_kif)
    if not valid.any():
        return None
    v = _decode(np.arange(len(valid), dtype=np.int64), in_kif)[valid]
    got = got[valid]
    e0 = _natural_exp(role, table, in_kif, out_kif)
    for e in sorted(range(e0 - EXP_RANGE, e0 + EXP_RANGE + 1), key=lambda e: abs(e - e0)):
        if np.array_equal(got, expected_values(role, table, v * 2.0**e)):
            return e
    return None


def _identify(mem: str, in_kif: tuple[int, int, int], out_kif: tuple[int, int, int], luts: list[Lut],
              sms: list[SoftmaxSpec], requant: bool = True) -> list[RomTable]:
    """Every table of ``luts`` / ``sms`` that the ROM holds (under some input scale); else, with
    ``requant``, the identity requant if it is one; else []."""
    cands: list[tuple[str, Any, str, str]] = [("lut", t, t.name, t.hash) for t in luts]
    cands += [("recip", s, s.recip.name, s.recip.hash) for s in sms]
    out = []
    for role, table, name, h in cands:
        e = _find_exp(role, table, mem, in_kif, out_kif)
        if e is not None:
            out.append(RomTable(name, role, h, e))
    if not out and requant:
        e = _find_exp("requant", None, mem, in_kif, out_kif)
        if e is not None:
            out.append(RomTable("", "requant", None, e))
    return out


def name_roms(units: list[tuple[str, Any, tuple[Any, ...]]], files: dict[str, str],
              mems: dict[str, str]) -> tuple[dict[str, str], dict[str, str], list[Rom]]:
    """Rename da4ml's ROMs after their IR tables.

    ``units``: per traced unit (unit module name, its da4ml ``CombLogic``, its IR nodes); ``files``
    (module -> Verilog) and ``mems`` (ROM file -> contents) as emitted.  Returns the files with the
    ROM names replaced, the renamed ROMs, and their descriptions.  Raises :class:`RomError` when a
    ROM matches no table of its unit."""
    from da4ml.codegen.rtl.verilog.comb import get_table_name_memfile
    from da4ml.types import minimal_kif

    rename: dict[str, str] = {}
    roms: dict[str, Rom] = {}  # by da4ml's name
    taken: set[str] = set()

    def fresh(base: str) -> str:
        name, i = f"rom_{base}.mem", 1
        while name in taken:
            name, i = f"rom_{base}_{i}.mem", i + 1
        taken.add(name)
        return name

    for unit, comb, nodes in units:
        luts: list[Lut] = []
        sms: list[SoftmaxSpec] = []
        _tables_of(tuple(nodes), luts, sms)
        n_requant = 0
        done: set[str] = set()
        for op in comb.ops:
            if op.opcode != 8:
                continue
            old, mem = get_table_name_memfile(comb, op)
            if old in done:
                continue
            done.add(old)
            if old not in mems:
                raise RomError(f"{unit}: ROM {old} of the traced program was not emitted (da4ml pipelining changed it)")
            in_kif = tuple(int(x) for x in minimal_kif(comb.ops[op.id0].qint))
            out_kif = tuple(int(x) for x in comb.lookup_tables[op.data].spec.out_kif)
            if old in roms:  # the same contents in another unit: add that unit's tables
                r0 = roms[old]
                if r0.tables[0].role != "requant":
                    # (its input may be typed differently in this unit: read it as the ROM's first input)
                    found = _identify(mem, r0.in_kif, r0.out_kif, luts, sms, requant=False)
                    more = [x for x in found if x not in r0.tables]
                    roms[old] = replace(r0, tables=r0.tables + tuple(more))
                continue
            held = _identify(mem, in_kif, out_kif, luts, sms)
            if not held:
                raise RomError(f"{unit}: ROM {old} holds none of the unit's tables "
                               f"({', '.join(t.name for t in luts) or 'none'}) nor an identity requant")
            if held[0].role == "requant":
                new = fresh(f"{sanitize(unit)}_requant_{n_requant}")
                n_requant += 1
            else:
                new = fresh(sanitize(held[0].name))
            rename[old] = new
            roms[old] = Rom(new, unit, in_kif, out_kif, len(mem.split("\n")), mem_sha256(mem),  # type: ignore[arg-type]
                            tuple(held))
    missing = sorted(set(mems) - set(rename))
    if missing:
        raise RomError(f"ROM files {missing} belong to no traced lookup")
    pat = re.compile("|".join(re.escape(f'"{k}"') for k in rename)) if rename else None
    new_files = {k: pat.sub(lambda m: f'"{rename[m.group(0)[1:-1]]}"', v) if pat else v for k, v in files.items()}
    return new_files, {rename[k]: v for k, v in mems.items()}, list(roms.values())


def check_roms(project_dir: str | Path) -> list[Rom]:
    """Check every ROM of a converted project (see the module docstring); returns the ROMs checked.

    Raises :class:`RomError` naming the ROM file and the table on the first difference."""
    from ...manifest import Project

    proj = Project.open(project_dir)
    if proj.rtl_dir is None:
        raise RomError(f"{project_dir}: the project has no RTL (convert without --no-rtl)")
    rtl = json.loads((proj.rtl_dir / "rtl.json").read_text())
    if "rom_tables" not in rtl:
        raise RomError(f"{proj.rtl_dir / 'rtl.json'} has no 'rom_tables' (older swinfpga); convert again")
    manifest_hash = {t.name: t.sha256 for t in proj.manifest.tables}
    luts: list[Lut] = []
    sms: list[SoftmaxSpec] = []
    _tables_of(tuple(proj.model().nodes), luts, sms)
    by_name: dict[str, Any] = {t.name: t for t in luts}
    by_name.update({sm.recip.name: sm for sm in sms})
    roms = [Rom.from_json(d) for d in rtl["rom_tables"]]
    on_disk = {p.name for p in proj.rtl_dir.glob("*.mem")}
    if on_disk != {r.file for r in roms}:
        raise RomError(f"{proj.rtl_dir}: ROM files {sorted(on_disk)} differ from rtl.json's "
                       f"{sorted(r.file for r in roms)}")
    for r in roms:
        text = (proj.rtl_dir / r.file).read_text()
        if mem_sha256(text) != r.sha256:
            raise RomError(f"{r.file}: contents changed since conversion (SHA-256 differs from rtl.json)")
        if not r.tables:
            raise RomError(f"{r.file}: rtl.json names no table for this ROM")
        for x in r.tables:
            if x.role == "requant":
                if not _matches("requant", None, text, r.in_kif, r.out_kif, x.in_exp):
                    raise RomError(f"{r.file}: identity requant ROM does not map every input to itself")
                continue
            t = by_name.get(x.name)
            if t is None:
                raise RomError(f"{r.file}: table {x.name!r} is not in the project's model.json")
            ir_hash = t.recip.hash if x.role == "recip" else t.hash
            if manifest_hash.get(x.name) != ir_hash or x.ir_sha256 != ir_hash:
                raise RomError(f"{r.file}: table {x.name!r} hash in manifest.json ({manifest_hash.get(x.name)}) / "
                               f"rtl.json ({x.ir_sha256}) differs from model.json's ({ir_hash})")
            if not _matches(x.role, t, text, r.in_kif, r.out_kif, x.in_exp):
                raise RomError(f"{r.file}: entries differ from table {x.name!r} ({x.role} addressing)")
    return roms


__all__ = ["ROLES", "Rom", "RomError", "RomTable", "check_roms", "expected_values", "mem_sha256", "name_roms",
           "sanitize"]
