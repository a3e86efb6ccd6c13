"""Trainable quantized Keras 3 layers (HGQ2 quantizers) for the swinfpga IR nodes.

Importing this package imports TensorFlow/Keras and registers the layers for ``.keras`` loading.
Workflow (what :func:`swinfpga.train.train` does)::

    m = build_model(spec)                 # float mode; layer names = IR node names
    m.fit(x / 16, y)                      # inputs are real values (digits: pixel codes * 2**-4)
    calibrate(m, x_train / 16)            # per-tensor formats from observed ranges
    set_quantized(m, True); m.fit(...)    # QAT; inference now equals the golden model bit for bit
    ir = swinfpga.frontend.keras.from_keras_model(m)

HGQ (trained bit widths, :mod:`swinfpga.keras.hgq_train`): after calibration, ``hgq_train.enable(m, "channel",
beta)``, fit, ``hgq_train.freeze(m)``; the frozen model exports to the same IR, bit-exact.
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
    QTokenMask,
    QuantizationError,
    QWindowAttention,
)
from .model import Bits, build_model, calibrate, inbound, predict_quantized, set_quantized, swin_block

__all__ = [
    "SUPPORTED", "QAdd", "QDense", "QInput", "QLayer", "QLayerNorm", "QMlp", "QPatchEmbed", "QPatchMerging",
    "QPool", "QTokenMask", "QuantizationError", "QWindowAttention", "Bits", "build_model", "calibrate", "inbound",
    "predict_quantized", "set_quantized", "swin_block",
]
