"""Constant products on DSP48E2: which weight x activation products of a constant matmul are emitted
as multiplications instead of da4ml shift-and-add adder graphs.

da4ml 0.6 compiles ``x @ W`` (``W`` constant) into adders: a weight with ``d`` nonzero canonical
signed digits (CSD) costs about ``d`` adder inputs.  Its ``offload_fn`` solver option (a mask of
weights to take out of the adder graph) does not help here: it multiplies the masked weights as
``FixedVariable * float``, which da4ml again expands into CSD shift-and-add (measured: no
multiplication op in the traced program).  So the offload is done here: the adder graph gets the
weights the policy keeps (da4ml's ``cmvm`` on the masked matrix), and every offloaded weight
``w = s * m * 2**e`` (``m`` odd) becomes one product ``x * m`` (da4ml ``vmul`` with a constant
operand, emitted as da4ml's ``multiplier`` module, which synthesis maps to a DSP48E2), shifted and
signed for free, and summed into the column.  Products are shared: one per (activation, ``m``) in a
traced unit, whatever the columns and signs that use it.

Arithmetic is unchanged (exact integer products and sums, the same requant afterwards), so the
unit stays bit-exact; :func:`swinfpga.backends.rtl.trace.predict_codes` checks that on every unit.

Policy: :class:`Offload` ``min_digits`` D offloads weights with at least D CSD digits (D >= 2 saves
about D - 1 adder inputs per product, but each product needs an adder into its column unless the
DSP's post-adder absorbs it; Yosys 0.23 packs no post-adder into DSP48E2); ``if_cheaper`` (the
``auto`` mode) keeps a matmul's adder graph whole unless da4ml's cost estimate drops.  ``auto``
starts at D = 2 and raises D while the model's DSPs (offloaded + variable x variable products)
exceed the board's (``build.build_offloaded``).  Measured: bench/results/dsp_offload.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ...errors import SwinfpgaError
from .tree import tree as _tree

MODES = ("none", "auto")


class OffloadError(SwinfpgaError, ValueError):
    """A bad ``--dsp-offload`` / ``--dsp-min-digits`` value."""


@dataclass(frozen=True)
class Offload:
    """Offload weights with at least ``min_digits`` CSD digits to multiplications (0 = off);
    ``if_cheaper``: only in a matmul where da4ml's cost estimate drops (:func:`matmul`)."""

    min_digits: int = 0
    if_cheaper: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.min_digits, bool) or not isinstance(self.min_digits, int) or self.min_digits < 0:
            raise OffloadError(f"dsp min_digits (--dsp-min-digits) must be an integer >= 0, got {self.min_digits!r}")

    @property
    def on(self) -> bool:
        return self.min_digits > 0

    def key(self) -> str:
        return (f"dsp{self.min_digits}" + ("c" if self.if_cheaper else "")) if self.on else "none"


OFF = Offload(0)


def parse_mode(mode: str, min_digits: int | None = None) -> str:
    """Check a ``--dsp-offload`` mode (and an explicit digit threshold)."""
    if mode not in MODES:
        raise OffloadError(f"dsp offload (--dsp-offload) must be one of {', '.join(MODES)}, got {mode!r}")
    if min_digits is not None:
        Offload(min_digits)
        if min_digits < 1:
            raise OffloadError(f"--dsp-min-digits must be >= 1, got {min_digits}")
    return mode


def csd_digits(n: int) -> int:
    """Nonzero digits of the canonical signed-digit (non-adjacent) form of integer ``n``."""
    n = abs(int(n))
    d = 0
    while n:
        if n & 1:
            d += 1
            n = n - 1 if (n & 3) == 1 else n + 1
        n >>= 1
    return d


def split_weight(w: float) -> tuple[int, int, int]:
    """``w`` (a float: a dyadic rational) as (sign, odd magnitude m, exponent e): ``w = sign * m * 2**e``."""
    if w == 0:
        return 0, 0, 0
    fr = Fraction(abs(w))
    num, den = fr.numerator, fr.denominator
    e = -(den.bit_length() - 1)  # a float's denominator is a power of two
    while num % 2 == 0:
        num //= 2
        e += 1
    return (1 if w > 0 else -1), num, e


def weight_digits(w: np.ndarray) -> np.ndarray:
    """CSD digit count of every (real-valued, dyadic) weight of ``w``."""
    flat = [csd_digits(split_weight(float(v))[1]) for v in np.asarray(w, dtype=np.float64).ravel()]
    return np.asarray(flat, dtype=np.int64).reshape(np.shape(w))


# ----- the policy in force while a unit is traced --------------------------------------------------
_STATE: dict[str, Any] = {"policy": OFF, "products": {}}


@contextlib.contextmanager
def active(policy: Offload) -> Iterator[None]:
    """Trace under ``policy``; products are shared within the block (one traced unit)."""
    old = dict(_STATE)
    _STATE.update(policy=policy, products={})
    try:
        yield
    finally:
        _STATE.clear()
        _STATE.update(old)


def current() -> Offload:
    return _STATE["policy"]


def _product(x: Any, m: int) -> Any:
    """The shared product ``x * m`` (da4ml ``vmul`` with a constant operand ``m``, odd, > 1)."""
    prods: dict = _STATE["products"]
    key = (id(x), m)
    hit = prods.get(key)
    if hit is not None and hit[0] is x:
        return hit[1]
    const = type(x).from_const(float(m), hwconf=x.hwconf)
    p = x._var_mul(const)  # da4ml's public ``*`` would expand a constant into shift-and-add again
    prods[key] = (x, p)  # keeps ``x`` alive: its id stays unique while the entry exists
    return p


# Yosys synth_xilinx maps a product to a DSP48E2 only from 9 result bits up (mul2dsp DSP_Y_MINWIDTH; operands
# >= 2 bits); a smaller one becomes LUTs: measured, a 5-bit unsigned activation x 3 stayed in LUTs
DSP_MIN_PRODUCT_BITS = 9


def _dsp_ok(x: Any, m: int) -> bool:
    """``x * m`` fits one DSP48E2 multiplier and is wide enough that synthesis puts it there."""
    from .timing import DSP_A_BITS, DSP_B_BITS, _signed_bits

    if x.low == x.high:
        return False
    wx = _signed_bits(x)
    wm = int(m).bit_length() + 1
    a, b = sorted((wx, wm), reverse=True)
    return a <= DSP_A_BITS and b <= DSP_B_BITS and sum(x.kif) + int(m).bit_length() >= DSP_MIN_PRODUCT_BITS


def _cost_above(outputs: list[Any], stop: set[int]) -> float:
    """da4ml's cost figure of the operations behind ``outputs`` down to the variables ``stop``
    (their ids), constant products excluded (DSPs)."""
    seen: set = set()
    total = 0.0
    todo = list(outputs)
    while todo:
        v = todo.pop()
        if v.id in seen or v.id in stop:
            continue
        seen.add(v.id)
        if v.opr != "vmul" or all(u.low != u.high for u in v._from):
            total += float(v.cost)
        todo.extend(v._from)
    return total


def matmul(x: Any, w: np.ndarray, policy: Offload) -> Any:
    """``x @ w`` for traced ``x`` (rows, K) and a constant real matrix ``w`` (K, M) under ``policy``:
    the weights it keeps go through da4ml's adder graph, the others become shared products.  With
    ``policy.if_cheaper`` the offload happens only when, traced on the first row, the kept weights'
    adder graph plus the adders that sum the products into their columns cost less (da4ml's figure)
    than the whole adder graph: da4ml shares common subexpressions across columns, so a 2-digit
    weight often costs it less than the adder that sums its product into the column."""
    xa = x if hasattr(x, "_vars") else _arr(x)
    xs = np.asarray(_elems(xa), dtype=object)
    split = [[split_weight(float(v)) for v in row] for row in w]
    x0 = xs.reshape(-1, xs.shape[-1])[:1]
    mask = np.zeros(w.shape, dtype=bool)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            s, m, _ = split[i][j]
            mask[i, j] = s != 0 and m > 1 and csd_digits(m) >= policy.min_digits and _dsp_ok(x0[0][i], m)
    if not mask.any():
        return xa @ w
    if policy.if_cheaper:
        stop = {v.id for v in x0[0]}
        whole = _cost_above(list(_elems(_arr(x0) @ w).ravel()), stop)
        part = _cost_above(list(_offloaded(x0, w, mask, split).ravel()), stop)
        if part >= whole:
            return xa @ w
    return _arr(_offloaded(xs, w, mask, split))


def _offloaded(xs: np.ndarray, w: np.ndarray, mask: np.ndarray, split: list) -> np.ndarray:
    """Object array (rows..., M): the adder graph of the unmasked weights plus, per column, the
    masked weights' shared products (shifted and signed: free) summed in a tree."""
    rest = np.where(mask, 0.0, w)
    base = _elems(_arr(xs) @ rest) if np.any(rest) else None
    out = np.empty(xs.shape[:-1] + (w.shape[1],), dtype=object)
    for r in np.ndindex(*xs.shape[:-1]):
        xr = xs[r]
        for j in range(w.shape[1]):
            terms = []
            for i in np.flatnonzero(mask[:, j]):
                s, m, e = split[i][j]
                if _dsp_ok(xr[i], m):
                    terms.append(_product(xr[i], m) * (s * 2.0**e))
                else:
                    terms.append(xr[i] * float(w[i, j]))
            acc = _tree(terms, lambda a, b: a + b) if terms else None
            if base is not None:
                acc = base[r + (j,)] if acc is None else base[r + (j,)] + acc
            out[r + (j,)] = acc
    return out


def _elems(x: Any) -> np.ndarray:
    return x._vars if hasattr(x, "_vars") else np.asarray(x)


def _arr(v: Any) -> Any:
    """A da4ml traced array of the scalar variables ``v`` (offloading is da4ml-only: ``_var_mul``)."""
    from da4ml.trace import FixedVariableArray

    return FixedVariableArray(np.asarray(v, dtype=object), None)


def count_dsp(comb: Any) -> tuple[int, int, float]:
    """(constant products, variable x variable products, da4ml cost of the constant products) of a
    traced program (da4ml ``CombLogic``).  da4ml prices a product as a LUT shift-and-add array; on a
    DSP48E2 it costs no LUTs, so ``comb.cost`` minus the third figure is the adder graphs' cost."""
    ops = comb.ops
    n_const = n_var = 0
    cost = 0.0
    for op in ops:
        if op.opcode != 7:
            continue
        if ops[op.id0].opcode == 5 or ops[op.id1].opcode == 5:
            n_const += 1
            cost += float(op.cost)
        else:
            n_var += 1
    return n_const, n_var, cost
