"""Compatibility names: the integer kernels moved to one module per operator (:mod:`swinfpga.ops`);
``Taps``/``align`` live in :mod:`swinfpga.ops.fx`."""

from __future__ import annotations

from ..ops.fx import NumpyFx, Taps, align

__all__ = ["Taps", "align", "NumpyFx"]
