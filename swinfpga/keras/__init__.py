"""Trainable quantized Keras 3 layers (HGQ2 quantizers) for the swinfpga IR nodes.

Importing this package imports TensorFlow/Keras and registers the layers for ``.keras`` loading.
"""

from .layers import (
    SUPPORTED,
    QAdd,
    QDense,
    QInput,
    QLayer,
    QLayerNorm,
    QMlp,
    QPatchEmbed,
    QPatchMerging,
    QPool,
    QuantizationError,
    QWindowAttention,
)
from .model import Bits, build_model, calibrate, inbound, predict_quantized, set_quantized, swin_block

__all__ = [
    "SUPPORTED", "QAdd", "QDense", "QInput", "QLayer", "QLayerNorm", "QMlp", "QPatchEmbed", "QPatchMerging",
    "QPool", "QuantizationError", "QWindowAttention", "Bits", "build_model", "calibrate", "inbound",
    "predict_quantized", "set_quantized", "swin_block",
]
