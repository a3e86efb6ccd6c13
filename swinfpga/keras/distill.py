"""Knowledge distillation (Hinton et al. 2015) for quantization-aware / pruned training.

The student learns from ``alpha`` x the labels plus ``1 - alpha`` x the teacher's softened class
probabilities at temperature ``T`` (the KL term scaled by ``T**2`` so its gradient does not shrink
with T).  Targets travel as one array per sample, ``[one-hot labels (C), teacher logits (C)]``, so
Keras' ``fit`` needs no custom loop.  The teacher is any trained swinfpga model run in float mode
(e.g. the unpruned or the pruned float model before QAT)."""

from __future__ import annotations

from typing import Any

import numpy as np


def targets(y: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
    """``[one-hot(y), teacher logits]`` (float32, (n, 2C))."""
    c = teacher_logits.shape[-1]
    oh = np.eye(c, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    return np.concatenate([oh, np.asarray(teacher_logits, dtype=np.float32)], axis=-1)


def loss(n_classes: int, alpha: float, temperature: float) -> Any:
    """Keras loss on :func:`targets`: ``alpha * CE(labels) + (1 - alpha) * T**2 * CE(teacher / T)``
    (cross-entropy against the teacher differs from KL by the teacher's entropy, a constant)."""
    import keras
    from keras import ops

    t = float(temperature)

    def kd(y_true: Any, y_pred: Any) -> Any:
        oh, tl = y_true[:, :n_classes], y_true[:, n_classes:]
        hard = keras.losses.categorical_crossentropy(oh, y_pred, from_logits=True)
        soft = keras.losses.categorical_crossentropy(ops.softmax(tl / t, axis=-1), y_pred / t, from_logits=True)
        return alpha * hard + (1.0 - alpha) * (t * t) * soft

    return kd


def accuracy(n_classes: int) -> Any:
    """Label accuracy on :func:`targets` (for the training log)."""
    from keras import ops

    def acc(y_true: Any, y_pred: Any) -> Any:
        return ops.mean(ops.cast(ops.argmax(y_true[:, :n_classes], -1) == ops.argmax(y_pred, -1), "float32"))

    acc.__name__ = "accuracy"
    return acc


__all__ = ["targets", "loss", "accuracy"]
