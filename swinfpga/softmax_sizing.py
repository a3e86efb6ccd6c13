"""Proven sizing of swinfpga's table softmax (:class:`swinfpga.lut.SoftmaxSpec`).

The integer definition is fixed (see ``SoftmaxSpec``); only four widths are free: ``P`` (probability
fraction bits), ``E`` (exp codes and row sum), ``B`` (reciprocal address bits) and ``R`` (reciprocal
codes).  :func:`search` returns the cheapest ``(P, E, B, R)`` for which both guarantees are *proven*:

* **error**: every output is within 1 LSB (``2**-P``) of the float64 softmax of the same score codes,
  for every row of ``n`` scores, any subset of them masked (at least one valid);
* **no argmax flips**: an element whose score is strictly the largest gets a strictly larger
  probability code than every element with a smaller score.

Two proofs (:func:`prove`):

* ``exhaustive`` (small ``n``): a row is determined, up to order, by the multiset of
  ``d = max - s`` of its other ``n - 1`` elements, each a table address ``0 .. EXP.size-1`` or masked;
  all ``d >= EXP.size-1`` read the same entry, so that last address stands for an interval of ``d``
  and the float reference is bounded over it (softmax is monotone in every other input).  Every
  multiset is run through :func:`swinfpga.ops.softmax_codes` itself.
* ``bound`` (any ``n``): a rigorous per-cell bound.  A cell is a normalisation shift ``k`` and a
  reciprocal address ``a``; in it the normalised sum ``S^ = S / 2**E`` lies in
  ``2**k [1 + a 2**-B, 1 + (a+1) 2**-B)`` and the reciprocal ``rho = RECIP[a] 2**-(R+k)`` is fixed.
  With ``e^j = x_j + eps_j`` (``x_j = exp(-d_j)``, ``|eps| <= eps_max`` the exp table's largest
  error, 0 at the max), ``X = sum x``::

      |p_j 2**-P - x_j / X| <= 2**-(P+1)                         (round half up)
                             + max_cell |rho - 1 / S^|           (e^_j <= 1)
                             + eps_max max((n-1) / X_lo, 1 + (n-3) / X_lo) / S^_lo

  where ``X_lo = max(1, S^_lo - (n-1) eps_max)`` (from ``e^_j/S^ - x_j/X = (eps_j (1-q) - q
  sum_{i!=j} eps_i) / S^``, ``q = x_j / X <= 1 / X``).  The flip check evaluates the final product
  and rounding on the integers for both top codes (``EXP[0]`` and ``EXP[1]``) in every reachable cell.

:func:`adversarial_check` (not a proof) runs structured worst-case rows (one or two repeated ``d``
values plus masked entries) and random rows through ``softmax_codes``.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .fixed import Fmt, FormatError
from .lut import SoftmaxSpec, exp_table, min_prob_frac, recip_table
from .ops.fx import softmax_codes

EXHAUSTIVE_LIMIT = 3_000_000  # multisets (rows) beyond which only the bound is used
P_FLOOR = 8  # smallest probability fraction the default design uses


@dataclass(frozen=True)
class SoftmaxProof:
    """What is proven about a spec.  ``max_err_lsb``: exhaustive: the largest error over all rows;
    bound: a rigorous upper bound (LSB of ``prob_fmt``).  ``cases``: rows enumerated or cells bounded."""

    method: str  # exhaustive | bound
    max_err_lsb: float
    flip_free: bool
    cases: int

    @property
    def ok(self) -> bool:
        return self.flip_free and self.max_err_lsb <= 1.0


def build_spec(name: str, score_fmt: Fmt, n: int, p: int, e: int, b: int, r: int) -> SoftmaxSpec:
    """The spec with widths ``P, E, B, R`` (tables as :func:`exp_table` / :func:`recip_table` build them)."""
    d_fmt = Fmt(False, score_fmt.width, score_fmt.width - score_fmt.frac)
    return SoftmaxSpec(n, score_fmt, exp_table(f"{name}_exp", d_fmt, e), recip_table(f"{name}_recip", e, b, r),
                       Fmt(False, p + 1, 1, "RND", "SAT"))


def widths(spec: SoftmaxSpec) -> tuple[int, int, int, int]:
    """``(P, E, B, R)`` of a spec."""
    return (spec.prob_fmt.frac, spec.exp_frac, spec.exp_frac - spec.recip.shift, spec.recip_frac)


def _prob(spec: SoftmaxSpec, e: np.ndarray, r: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The definition's last line, ``p = sat(round(e * r / 2**(E + R + k - P)))``, on given e, r, k."""
    sh = spec.exp_frac + spec.recip_frac + k - spec.prob_fmt.frac
    t = e * r + (np.int64(1) << (sh - 1))
    return spec.prob_fmt.overflow_codes(t >> sh)


def _exp_x(spec: SoftmaxSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per exp address: the float ``exp(-d)`` range it stands for (lo, hi); the last address covers
    every ``d >= size - 1`` up to the largest ``max - s``."""
    lsb = spec.score_fmt.lsb
    d = np.arange(spec.exp.size, dtype=np.float64)
    hi = np.exp(-d * lsb)
    lo = hi.copy()
    lo[-1] = math.exp(-(2**spec.score_fmt.width - 1) * lsb)
    return lo, hi


def _cells(spec: SoftmaxSpec, s_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reachable (k, address) cells with ``S^`` in [lo, hi) intersecting [1, s_max]: (k, r, lo, hi)."""
    b = spec.exp_frac - spec.recip.shift
    a = np.arange(spec.recip.size)
    ks, rs, los, his = [], [], [], []
    for k in range(spec.max_k + 1):
        lo = 2.0**k * (1 + a * 2.0**-b)
        hi = np.minimum(2.0**k * (1 + (a + 1) * 2.0**-b), s_max)
        keep = lo <= s_max
        ks.append(np.full(int(keep.sum()), k))
        rs.append(spec.recip.array()[keep])
        los.append(lo[keep])
        his.append(hi[keep])
    return np.concatenate(ks), np.concatenate(rs), np.concatenate(los), np.concatenate(his)


def flip_free(spec: SoftmaxSpec) -> bool:
    """Proof of no argmax flips: in every reachable cell the strict maximum (``EXP[0]``) gets a larger
    code than the best runner-up (``EXP[1]``; outputs are monotone in ``e``, so every lower score too)."""
    if spec.n < 2 or spec.exp.size < 2:
        return spec.n < 2
    t = spec.exp.array()
    s_max = (spec.n - 1) + t[1] / 2.0**spec.exp_frac  # a runner-up exists: at most n-1 maxima
    k, r, _, _ = _cells(spec, s_max)
    return bool(np.all(_prob(spec, np.int64(t[0]), r, k) > _prob(spec, np.int64(t[1]), r, k)))


def error_bound(spec: SoftmaxSpec) -> tuple[float, int]:
    """Rigorous upper bound on |error| in LSBs of ``prob_fmt`` (module docstring); (bound, cells)."""
    n, big_e = spec.n, spec.exp_frac
    lo, hi = _exp_x(spec)
    e = spec.exp.array() / 2.0**big_e
    eps = float(max(np.max(np.abs(e - lo)), np.max(np.abs(e - hi))))
    k, r, s_lo, s_hi = _cells(spec, float(n))
    rho = r / 2.0 ** (spec.recip_frac + k)
    t1 = np.maximum(np.abs(rho - 1 / s_lo), np.abs(rho - 1 / s_hi))
    if n == 1:
        t2 = np.zeros_like(t1)
    else:
        x_lo = np.maximum(1.0, s_lo - (n - 1) * eps)
        t2 = eps * np.maximum((n - 1) / x_lo, 1 + max(0, n - 3) / x_lo) / s_lo
    bound = 0.5 + float(np.max(t1 + t2)) * 2.0**spec.prob_fmt.frac
    return bound, int(len(k))


def _multisets(alphabet: int, m: int) -> np.ndarray:
    """All nondecreasing m-tuples over range(alphabet), shape (count, m)."""
    if m == 0:
        return np.zeros((1, 0), dtype=np.int64)
    cnt = math.comb(alphabet + m - 1, m)
    flat = np.fromiter(itertools.chain.from_iterable(itertools.combinations_with_replacement(range(alphabet), m)),
                       dtype=np.int64, count=cnt * m)
    return flat.reshape(cnt, m)


def exhaustive_rows(spec: SoftmaxSpec) -> int:
    """Rows the exhaustive proof enumerates (multisets of n-1 addresses or masked)."""
    return math.comb(spec.exp.size + 1 + spec.n - 2, spec.n - 1)


@functools.lru_cache(maxsize=4)
def _all_rows(alphabet: int, m: int) -> np.ndarray:
    return _multisets(alphabet, m)


def exhaustive(spec: SoftmaxSpec, chunk: int = 200_000, sample: int | None = None) -> tuple[float, int, int]:
    """Every row (module docstring) through ``softmax_codes``: (max error LSB, rows with a flip, rows).
    ``sample``: only that many rows (a seeded random subset; a quick rejection test, not a proof)."""
    size, n = spec.exp.size, spec.n
    rows = _all_rows(size + 1, n - 1)  # address size == masked
    if sample is not None and sample < len(rows):
        rows = rows[np.random.default_rng(0).choice(len(rows), sample, replace=False)]
    lo, hi = _exp_x(spec)
    lo, hi = np.append(lo, 0.0), np.append(hi, 0.0)
    worst, flips = 0.0, 0
    for c0 in range(0, len(rows), chunk):
        d = np.concatenate([np.zeros((min(chunk, len(rows) - c0), 1), np.int64), rows[c0:c0 + chunk]], axis=1)
        valid = d < size
        p = softmax_codes(spec, -np.minimum(d, size - 1), valid).astype(np.float64) * 2.0**-spec.prob_fmt.frac
        xl, xh = lo[d], hi[d]
        sl, sh = xl.sum(-1, keepdims=True), xh.sum(-1, keepdims=True)
        q_hi = xh / (xh + sl - xl)
        q_lo = xl / np.maximum(xl + sh - xh, 1e-300)
        err = np.where(valid, np.maximum(np.abs(p - q_lo), np.abs(p - q_hi)), 0.0)
        worst = max(worst, float(err.max()))
        below = valid & (d >= 1)
        flips += int(np.count_nonzero(np.any(below & (p >= p[:, :1]), axis=-1)))
    return worst * 2.0**spec.prob_fmt.frac, flips, len(rows)


def _check_rows(spec: SoftmaxSpec, s: np.ndarray, valid: np.ndarray) -> tuple[float, int]:
    """(max error LSB vs float64 softmax, rows with a flip) for concrete score-code rows."""
    p = softmax_codes(spec, s, valid)
    z = np.where(valid, s * spec.score_fmt.lsb, -np.inf)
    x = np.exp(z - z.max(-1, keepdims=True))
    ref = x / x.sum(-1, keepdims=True)
    err = float((np.abs(spec.prob_fmt.to_float(p) - ref) * valid).max() / spec.prob_fmt.lsb)
    top = valid & (s == np.where(valid, s, np.iinfo(np.int64).min).max(-1, keepdims=True))
    ptop = np.where(top, p, -1).max(-1, keepdims=True)
    flips = int(np.count_nonzero(np.any(valid & ~top & (p >= ptop), axis=-1)))
    return err, flips


def adversarial_check(spec: SoftmaxSpec, rows: int = 10_000, seed: int = 0) -> tuple[float, int]:
    """Not a proof: (max error LSB, rows with a flip) over ``rows`` random rows (uniform and normal
    scores, 30% masked) and structured rows: the max plus ``c`` copies of one ``d`` (rest masked) for
    every ``d`` and ``c``, and the max plus two repeated ``d`` values (a grid of them)."""
    f, n = spec.score_fmt, spec.n
    rng = np.random.default_rng(seed)
    h = rows // 2
    s = np.concatenate([rng.integers(f.min_code, f.max_code + 1, (h, n)),
                        np.clip(rng.normal(0, 2 / f.lsb, (rows - h, n)).round(), f.min_code, f.max_code)])
    s = s.astype(np.int64)
    v = rng.random(s.shape) > 0.3
    v[:, 0] = True
    worst, flips = _check_rows(spec, s, np.ones(s.shape, bool))
    e2, f2 = _check_rows(spec, s, v)
    worst, flips = max(worst, e2), flips + f2
    dmax = 2**f.width - 1
    ds = np.unique(np.r_[np.arange(min(spec.exp.size + 2, dmax + 1)), dmax])
    top = f.max_code
    blocks = []
    for c in range(1, n):  # max + c copies of d, rest masked
        row = np.full((len(ds), n), top, np.int64)
        row[:, 1:c + 1] = top - ds[:, None]
        vv = np.zeros((len(ds), n), bool)
        vv[:, :c + 1] = True
        blocks.append((row, vv))
    if n >= 3:
        g = ds[:: max(1, len(ds) // 48)]
        d1, d2 = (a.reshape(-1) for a in np.meshgrid(g, g))
        for c in sorted({1, n // 2, n - 2}):
            row = np.full((len(d1), n), top, np.int64)
            row[:, 1:c + 1] = top - d1[:, None]
            row[:, c + 1:] = top - d2[:, None]
            blocks.append((row, np.ones(row.shape, bool)))
    for row, vv in blocks:
        e2, f2 = _check_rows(spec, row, vv)
        worst, flips = max(worst, e2), flips + f2
    return worst, flips


def prove(spec: SoftmaxSpec, method: str = "auto") -> SoftmaxProof:
    """Prove the guarantees: ``exhaustive`` where the rows fit :data:`EXHAUSTIVE_LIMIT` (``auto``), else ``bound``."""
    if method == "auto":
        method = "exhaustive" if exhaustive_rows(spec) <= EXHAUSTIVE_LIMIT else "bound"
    if method == "exhaustive":
        err, flips, rows = exhaustive(spec)
        return SoftmaxProof("exhaustive", err, flips == 0, rows)
    bound, cells = error_bound(spec)
    return SoftmaxProof("bound", bound, flip_free(spec), cells)


def cost_proxy(n: int, p: int, e: int, b: int, r: int, exp_entries: int) -> float:
    """Estimated da4ml LUT-equivalents of one traced row (``trace._softmax_rows``), to rank candidates:
    n products (E+1) x (R+1) bits, the 2**B x (R+1)-bit reciprocal ROM, n exp lookups and the row sum.
    Coefficients fitted to 42 traced rows (8-bit scores, n = 4 .. 16, random widths): within ~15 %."""
    return 0.9 * n * (e + 1) * (r + 1) + 0.02 * 2**b * (r + 1) + 14 * n * (e + 1) + 0.25 * n * exp_entries


def _passes(err: float, flips: int) -> bool:
    return err <= 1.0 and flips == 0


@functools.lru_cache(maxsize=64)
def search(score_fmt: Fmt, n: int, prob_frac: int | None = None) -> tuple[int, int, int, int, str]:
    """Cheapest proven ``(P, E, B, R, method)``: P from :data:`P_FLOOR` (or ``prob_frac``) up, and for
    each P the candidates in :func:`cost_proxy` order; the first one :func:`prove` accepts wins."""
    if n < 1:
        raise ValueError("softmax row length must be >= 1")
    p_list = [prob_frac] if prob_frac is not None else list(range(P_FLOOR, 25))
    lg = math.ceil(math.log2(n + 1))
    for p in p_list:
        d_fmt = Fmt(False, score_fmt.width, score_fmt.width - score_fmt.frac)
        cands = []
        for e in range(p + 1, p + lg + 4):
            size = exp_table("x", d_fmt, e).size
            for b in range(max(1, p - 2), min(e, p + 4) + 1):
                for r in range(max(1, p - 1), p + 6):
                    cands.append((cost_proxy(n, p, e, b, r, size), e, b, r))
        for _, e, b, r in sorted(cands):
            spec = build_spec("t", score_fmt, n, p, e, b, r)
            if not flip_free(spec):
                continue
            bound, _ = error_bound(spec)
            if bound <= 1.0:
                return p, e, b, r, "bound"
            if exhaustive_rows(spec) <= EXHAUSTIVE_LIMIT and _passes(*exhaustive(spec, sample=20_000)[:2]) \
                    and prove(spec, "exhaustive").ok:
                return p, e, b, r, "exhaustive"
    raise ValueError(f"no proven softmax design for n={n}, scores {score_fmt}")


SOFTMAX_DESIGNS = ("proven", "analytic")


def design_softmax(name: str, score_fmt: Fmt, n: int, prob_frac: int | None = None,
                   design: str = "proven") -> SoftmaxSpec:
    """Size the exp and reciprocal tables for rows of ``n`` scores of ``score_fmt`` (see
    :class:`SoftmaxSpec` for the definition).

    ``design="proven"`` (default): the cheapest widths for which <= 1 LSB error and no argmax flips are
    proven, exhaustively over all rows for small ``n``, else by a rigorous bound
    (:mod:`swinfpga.softmax_sizing`; P >= 8 unless ``prob_frac`` is given).  ``"analytic"``: the
    original sizing (B = P+1, R = P+3, E = P + ceil(log2(n+1)) + 2, P from :func:`min_prob_frac`),
    which models converted before the proven design keep."""
    if n < 1:
        raise FormatError("softmax row length must be >= 1")
    if design not in SOFTMAX_DESIGNS:
        raise FormatError(f"softmax design {design!r} unknown; one of {', '.join(SOFTMAX_DESIGNS)}")
    if design == "proven":
        p, e, b, r, _ = search(score_fmt, n, prob_frac)
        return build_spec(name, score_fmt, n, p, e, b, r)
    p = prob_frac if prob_frac is not None else max(8, min_prob_frac(score_fmt, n))
    e = p + math.ceil(math.log2(n + 1)) + 2
    d_fmt = Fmt(False, score_fmt.width, score_fmt.width - score_fmt.frac)
    exp = exp_table(f"{name}_exp", d_fmt, e)
    recip = recip_table(f"{name}_recip", e, p + 1, p + 3)
    prob_fmt = Fmt(False, p + 1, 1, "RND", "SAT")
    return SoftmaxSpec(n, score_fmt, exp, recip, prob_fmt)
