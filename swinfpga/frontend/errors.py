"""Errors shared by the Keras front ends (swinfpga's own layers and HGQ2 models)."""

from __future__ import annotations

from ..ir.nodes import IRError


class KerasFrontendError(IRError):
    """The Keras model cannot be converted (unsupported layer, unquantized weights, topology)."""
