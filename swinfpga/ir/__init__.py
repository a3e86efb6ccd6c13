"""Typed IR of quantized Swin models (frozen dataclasses, JSON round-trip)."""

from .graph import Model, TensorInfo, atomic_write_text
from .nodes import (
    Add,
    Dense,
    Input,
    IRError,
    LayerNorm,
    Linear,
    Mlp,
    Node,
    PatchEmbed,
    PatchMerging,
    Pool,
    WindowAttention,
)

__all__ = [
    "Model", "TensorInfo", "atomic_write_text", "Add", "Dense", "Input", "IRError", "LayerNorm",
    "Linear", "Mlp", "Node", "PatchEmbed", "PatchMerging", "Pool", "WindowAttention",
]
