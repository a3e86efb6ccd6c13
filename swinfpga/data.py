"""Reference data: scikit-learn's bundled digits (1,797 real 8x8 images, no download).

Pixels are integers 0..16; they are used directly as input codes of ``ufixed<5,1>`` (value =
pixel / 16).  Split: stratified 80/20, seed 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Input codes (N, 8, 8, 1) int64 and labels (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_split(seed: int = 0, test_size: float = 0.2) -> Split:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.int64)[..., None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return Split(xtr, ytr, xte, yte)
