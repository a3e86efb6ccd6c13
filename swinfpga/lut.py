"""Lookup tables as data.

A :class:`Lut` maps an input code ``c`` (in ``in_fmt``) to an output code::

    addr = clip((c - offset) >> shift, 0, size - 1)
    out  = table[addr]                     # a code of out_fmt

Tables are built once here, stored in the IR (and its JSON), and emitted verbatim into C++
headers and Verilog ROM files; no back end recomputes them.  Entry ``a`` holds ``f`` evaluated at
the middle of its address bucket, rounded to nearest.  Each builder states its error bound; the
tests check every address against it.

The softmax of swinfpga (``design_softmax``; its integer kernel: :mod:`swinfpga.ops.softmax`) is built from an exp table
over max-subtracted scores and a reciprocal table over the row sum, sized so that every output is
within 1 LSB of the float softmax of the same score codes, and so that the largest input keeps the
largest output whenever scores differ (no argmax flips); see :class:`SoftmaxSpec`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fixed import Fmt, FormatError


@dataclass(frozen=True, eq=False)
class Lut:
    """An integer lookup table (see module docstring for the addressing rule)."""

    name: str
    kind: str  # exp | recip | rsqrt | gelu | custom
    in_fmt: Fmt
    offset: int
    shift: int
    out_fmt: Fmt
    table: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.shift < 0:
            raise FormatError(f"LUT {self.name}: negative address shift")
        if not self.table:
            raise FormatError(f"LUT {self.name}: empty table")
        self.out_fmt.check_codes(np.asarray(self.table), f"LUT {self.name} contents")

    @property
    def size(self) -> int:
        return len(self.table)

    @property
    def addr_bits(self) -> int:
        return max(1, (self.size - 1).bit_length())

    def array(self) -> np.ndarray:
        return np.asarray(self.table, dtype=np.int64)

    def address(self, codes: Any) -> np.ndarray:
        c = np.asarray(codes, dtype=np.int64)
        return np.clip((c - self.offset) >> self.shift, 0, self.size - 1)

    def lookup(self, codes: Any) -> np.ndarray:
        return self.array()[self.address(codes)]

    @property
    def hash(self) -> str:
        """SHA-256 of the table's meaning: addressing, formats and contents."""
        h = hashlib.sha256()
        h.update(f"{self.kind}|{self.in_fmt.ap_type}|{self.offset}|{self.shift}|{self.out_fmt.ap_type}|".encode())
        h.update(self.array().astype("<i8").tobytes())
        return h.hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lut) and self.name == other.name and self.hash == other.hash

    def __hash__(self) -> int:
        return hash((self.name, self.hash))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "in_fmt": self.in_fmt.to_json(),
            "offset": self.offset,
            "shift": self.shift,
            "out_fmt": self.out_fmt.to_json(),
            "table": list(self.table),
            "sha256": self.hash,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Lut:
        lut = cls(
            d["name"], d["kind"], Fmt.from_json(d["in_fmt"]), int(d["offset"]), int(d["shift"]),
            Fmt.from_json(d["out_fmt"]), tuple(int(x) for x in d["table"]),
        )
        if "sha256" in d and d["sha256"] != lut.hash:
            raise FormatError(f"LUT {lut.name}: content hash mismatch (file corrupted or edited)")
        return lut

    def input_values(self) -> np.ndarray:
        """Real input value at the middle of each address bucket."""
        a = np.arange(self.size, dtype=np.float64)
        mid = (2.0**self.shift - 1) / 2.0
        return (self.offset + a * 2.0**self.shift + mid) * self.in_fmt.lsb


def _tabulate(name: str, kind: str, f: Callable[[np.ndarray], np.ndarray], in_fmt: Fmt, offset: int,
              shift: int, size: int, out_fmt: Fmt) -> Lut:
    a = np.arange(size, dtype=np.float64)
    x = (offset + a * 2.0**shift + (2.0**shift - 1) / 2.0) * in_fmt.lsb
    codes = out_fmt.with_(rounding="RND", overflow="SAT").from_float(f(x))
    return Lut(name, kind, in_fmt, offset, shift, out_fmt, tuple(int(c) for c in codes))


# ----- exp / reciprocal / softmax -------------------------------------------------------------
def exp_table(name: str, d_fmt: Fmt, out_frac: int) -> Lut:
    """``exp(-d)`` for max-subtracted scores ``d >= 0`` (unsigned ``d_fmt``), one entry per code.

    Output ``ufixed<out_frac+1, 1>`` (1.0 is exact at d = 0); error <= 1/2 LSB everywhere.  The
    table stops at the first entry that rounds to 0; larger ``d`` clip to that entry.
    """
    if d_fmt.signed:
        raise FormatError("exp table input (max - score) must be unsigned")
    out_fmt = Fmt(False, out_frac + 1, 1, "RND", "SAT")
    # first d with exp(-d) < 2**-(out_frac+1)  ->  rounds to 0
    d_zero = math.ceil((out_frac + 1) * math.log(2) / d_fmt.lsb)
    size = int(min(d_fmt.max_code + 1, d_zero + 1))
    return _tabulate(name, "exp", lambda x: np.exp(-x), d_fmt, 0, 0, size, out_fmt)


def recip_table(name: str, sum_frac: int, bucket_frac: int, out_frac: int) -> Lut:
    """``1/m`` for a normalized row sum ``m`` in ``[1, 2)`` (codes with ``sum_frac`` fraction bits).

    ``2**bucket_frac`` buckets of width ``2**-bucket_frac`` starting at 1.0; output
    ``ufixed<out_frac+1, 1>``.  Error <= ``2**-(bucket_frac+1) + 2**-(out_frac+1)`` (bucket
    half-width times max |d(1/m)/dm| = 1, plus rounding).
    """
    bucket_frac = min(bucket_frac, sum_frac)
    in_fmt = Fmt(False, sum_frac + 1, 1)
    size = 1 << bucket_frac
    out_fmt = Fmt(False, out_frac + 1, 1, "RND", "SAT")
    return _tabulate(name, "recip", lambda x: 1.0 / x, in_fmt, 1 << sum_frac, sum_frac - bucket_frac, size,
                     out_fmt)


@dataclass(frozen=True)
class SoftmaxSpec:
    """Integer softmax over a row of ``n`` scores (codes of ``score_fmt``).

    Definition (identical in golden, HLS C++ and Verilog)::

        m    = max(s[j] for valid j)
        e[j] = EXP[min(m - s[j], EXP.size-1)]  if valid else 0   # ufixed<E+1,1>; e = 1.0 at the max
        S    = sum(e)                                            # S >= 1.0, frac E
        k    = floor(log2(S >> E))                               # 0 <= k <= floor(log2 n)
        r    = RECIP[((S >> k) - 2**E) >> (E - B)]               # 1/(S/2**k), ufixed<R+1,1>
        p[j] = sat(round_half_up(e[j] * r / 2**(E + R + k - P)))  # prob_fmt = ufixed<P+1,1>

    Error (vs float softmax of the same codes) <= 1/2 LSB (output rounding) + r error
    (2**-(B+1) + 2**-(R+1), as e <= 1) + sum error ((n+1) 2**-(E+1)) < 1 LSB with B = P+1,
    R = P+3, E = P + ceil(log2(n+1)) + 2.  ``P`` is chosen so that adjacent score codes at the top
    of any row differ by at least 3 output LSBs, which with that bound rules out argmax flips.
    Those are the ``analytic`` widths; ``design_softmax``'s default ``proven`` design picks narrower
    ones for which the same two guarantees are proven directly (:mod:`swinfpga.softmax_sizing`).
    """

    n: int
    score_fmt: Fmt
    exp: Lut
    recip: Lut
    prob_fmt: Fmt
    kind: str = "swinfpga"  # swinfpga (above) | hgq2 (HGQ2's QSoftmax, see :func:`swinfpga.ops.softmax.hgq2_softmax`)

    def __post_init__(self) -> None:
        if self.kind not in SOFTMAX_KINDS:
            raise FormatError(f"softmax kind {self.kind!r} unknown; one of {', '.join(SOFTMAX_KINDS)}")
        if self.kind == "hgq2":
            for lut in (self.exp, self.recip):
                if lut.shift != 0 or lut.offset != lut.in_fmt.min_code or lut.size != 1 << lut.in_fmt.width:
                    raise FormatError(f"HGQ2 softmax table {lut.name}: needs one entry per code of {lut.in_fmt} "
                                      f"(offset {lut.in_fmt.min_code}, shift 0, {1 << lut.in_fmt.width} entries)")

    @property
    def exp_frac(self) -> int:
        """E: fraction bits of exp codes and of the row sum."""
        return self.exp.out_fmt.frac

    @property
    def recip_frac(self) -> int:
        """R: fraction bits of reciprocal codes."""
        return self.recip.out_fmt.frac

    @property
    def max_k(self) -> int:
        """Largest normalization shift: floor(log2 n)."""
        return self.n.bit_length() - 1

    @property
    def sum_fmt(self) -> Fmt:
        """Exact format of the row sum S (unsigned, frac E)."""
        ib = self.n.bit_length()
        return Fmt(False, self.exp_frac + ib, ib)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "score_fmt": self.score_fmt.to_json(),
            "exp": self.exp.to_json(),
            "recip": self.recip.to_json(),
            "prob_fmt": self.prob_fmt.to_json(),
            # the default kind is left out so existing JSON (and build-cache hashes) stay byte for byte
            **({} if self.kind == "swinfpga" else {"kind": self.kind}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SoftmaxSpec:
        return cls(int(d["n"]), Fmt.from_json(d["score_fmt"]), Lut.from_json(d["exp"]),
                   Lut.from_json(d["recip"]), Fmt.from_json(d["prob_fmt"]), str(d.get("kind", "swinfpga")))


SOFTMAX_KINDS = ("swinfpga", "hgq2")


def min_prob_frac(score_fmt: Fmt, n: int, margin_lsb: int = 3) -> int:
    """Fraction bits so that the two top outputs of any row differ by >= ``margin_lsb`` LSBs."""
    gap = (1.0 / n) * (1.0 - math.exp(-score_fmt.lsb))
    return max(1, math.ceil(math.log2(margin_lsb / gap)))


# ----- LayerNorm / GELU ----------------------------------------------------------------------
def rsqrt_table(name: str, var_fmt: Fmt, addr_bits: int, eps: float, out_fmt: Fmt) -> Lut:
    """``1/sqrt(v + eps)`` for a variance code of unsigned ``var_fmt``, addressed by its top
    ``addr_bits`` bits (shift = width - addr_bits)."""
    if var_fmt.signed:
        raise FormatError("rsqrt table input (variance) must be unsigned")
    shift = max(0, var_fmt.width - addr_bits)
    size = 1 << min(addr_bits, var_fmt.width)
    return _tabulate(name, "rsqrt", lambda x: 1.0 / np.sqrt(x + eps), var_fmt, 0, shift, size, out_fmt)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as torch.nn.GELU() in the Swin reference."""
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_table(name: str, in_fmt: Fmt, out_fmt: Fmt) -> Lut:
    """GELU for every code of ``in_fmt`` (one entry per code; at most 2**12 entries)."""
    if in_fmt.width > 12:
        raise FormatError(f"GELU table input {in_fmt} is wider than 12 bits; quantize the input first")
    size = 1 << in_fmt.width
    return _tabulate(name, "gelu", gelu, in_fmt, in_fmt.min_code, 0, size, out_fmt)
