"""A legacy QKeras (Keras 2) model written as an .h5 file with h5py, from the documented schema
in swinfpga.frontend.qkeras_h5, plus an independent float64 evaluation of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swinfpga.frontend.qkeras_h5 import write_h5


def qb(bits: int, integer: int, keep_negative: bool = True) -> dict:
    return {"class_name": "quantized_bits", "config": {"bits": bits, "integer": integer, "symmetric": 0,
                                                        "keep_negative": keep_negative, "alpha": 1}}


def layer(cls: str, name: str, inbound: list[str], **cfg) -> dict:
    return {"class_name": cls, "name": name, "config": {"name": name, **cfg},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


def legacy_model(path: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Input 8x8x1 -> QConv2D patch embed + BN + ReLU -> Reshape (16 tokens) -> token-wise
    projection / MLP with residual (attention-shaped, no token mixing) -> GAP -> QDense(10)."""
    rng = np.random.default_rng(seed)
    L = [
        layer("InputLayer", "in", [], batch_input_shape=[None, 8, 8, 1], dtype="float32"),
        layer("QActivation", "in_q", ["in"], activation="quantized_bits(5,1,keep_negative=False)"),
        layer("QConv2D", "embed", ["in_q"], filters=16, kernel_size=[2, 2], strides=[2, 2], padding="valid",
              kernel_quantizer=qb(8, 0), bias_quantizer=qb(8, 2)),
        layer("BatchNormalization", "embed_bn", ["embed"], epsilon=1e-3),
        layer("QActivation", "embed_act", ["embed_bn"], activation="quantized_relu(8,3)"),
        layer("Reshape", "tokens", ["embed_act"], target_shape=[16, 16]),
        layer("QDense", "proj", ["tokens"], units=16, kernel_quantizer=qb(8, 0), bias_quantizer=qb(8, 2)),
        layer("QActivation", "proj_q", ["proj"], activation="quantized_bits(8,3)"),
        layer("QDense", "fc1", ["proj_q"], units=32, kernel_quantizer=qb(8, 0), bias_quantizer=qb(8, 2)),
        layer("QActivation", "fc1_act", ["fc1"], activation="quantized_relu(8,3)"),
        layer("QDense", "fc2", ["fc1_act"], units=16, kernel_quantizer=qb(8, 0), bias_quantizer=qb(8, 2)),
        layer("QActivation", "fc2_q", ["fc2"], activation="quantized_bits(8,3)"),
        layer("Add", "res", ["proj_q", "fc2_q"]),
        layer("QActivation", "res_q", ["res"], activation="quantized_bits(8,3)"),
        layer("GlobalAveragePooling1D", "gap", ["res_q"]),
        layer("QActivation", "gap_q", ["gap"], activation="quantized_bits(8,3)"),
        layer("QDense", "head", ["gap_q"], units=10, kernel_quantizer=qb(8, 1), bias_quantizer=qb(8, 3)),
    ]
    W = {
        "embed": {"kernel": rng.normal(0, 0.5, (2, 2, 1, 16)), "bias": rng.normal(0, 0.2, 16)},
        "embed_bn": {"gamma": 1 + rng.normal(0, 0.1, 16), "beta": rng.normal(0, 0.1, 16),
                     "moving_mean": rng.normal(0, 0.2, 16), "moving_variance": rng.uniform(0.5, 2, 16)},
        "proj": {"kernel": rng.normal(0, 0.25, (16, 16)), "bias": rng.normal(0, 0.1, 16)},
        "fc1": {"kernel": rng.normal(0, 0.25, (16, 32)), "bias": rng.normal(0, 0.1, 32)},
        "fc2": {"kernel": rng.normal(0, 0.18, (32, 16)), "bias": rng.normal(0, 0.1, 16)},
        "head": {"kernel": rng.normal(0, 0.5, (16, 10)), "bias": rng.normal(0, 0.2, 10)},
    }
    write_h5(path, L, W, ["head"], name="legacy_digits")
    return W
