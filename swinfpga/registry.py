"""Handlers registered per IR node type (instead of ``isinstance`` chains).

Each execution (golden model, shape/format inference, RTL trace, HLS plan, manifest tables) keeps
one :class:`Registry`; an operator registers its handler with ``@REG.handles(NodeType)``.  A node
whose type has no handler raises the registry's error naming the execution and the type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import SwinfpgaError


class RegistryError(SwinfpgaError, ValueError):
    """No handler is registered for a node type (or two are)."""


class Registry:
    """Node type -> handler, for one execution ``what`` (e.g. "golden model")."""

    def __init__(self, what: str, error: type[Exception] = RegistryError) -> None:
        self.what = what
        self.error = error
        self._fns: dict[type, Callable[..., Any]] = {}

    def handles(self, *types: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register the function as the handler of every node type in ``types``."""

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            for t in types:
                if t in self._fns:
                    raise RegistryError(f"{self.what}: {t.__name__} already handled by {self._fns[t].__qualname__}")
                self._fns[t] = fn
            return fn

        return deco

    def handler(self, node_or_type: Any) -> Callable[..., Any]:
        t = node_or_type if isinstance(node_or_type, type) else type(node_or_type)
        fn = self._fns.get(t)
        if fn is None:
            name = getattr(node_or_type, "name", None)
            where = f" ({name})" if isinstance(name, str) else ""
            raise self.error(f"{self.what} has no handler for {t.__name__}{where}")
        return fn

    def __contains__(self, t: type) -> bool:
        return t in self._fns

    def types(self) -> frozenset[type]:
        return frozenset(self._fns)
