"""The balanced reduction tree of the RTL tracer: adder, comparator and OR trees of traced variables
(pairs at each level, an odd one out passed up), so a sum of ``n`` values has depth ``ceil(log2 n)``."""

from __future__ import annotations

from typing import Any


def tree(xs: list[Any], fn: Any) -> Any:
    """``fn``-reduce ``xs`` (at least one value) as a balanced binary tree."""
    while len(xs) > 1:
        nxt = [fn(xs[j], xs[j + 1]) for j in range(0, len(xs) - 1, 2)]
        if len(xs) % 2:
            nxt.append(xs[-1])
        xs = nxt
    return xs[0]
