"""Reference data: scikit-learn's bundled digits (1,797 real 8x8 images, no download), and the
users' own data (``.npz``, :func:`load_user_data`).

Pixels are integers 0..16; they are used directly as input codes of ``ufixed<5,1>`` (value =
pixel / 16).  Split: stratified 80/20, seed 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import SwinfpgaError

if TYPE_CHECKING:
    from .models import SwinSpec


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


def digits_seq_split(seed: int = 0, test_size: float = 0.2) -> Split:
    """:func:`digits_split` as sequences: each image is 8 row tokens of 8 pixels, held as the
    ``(8, 1, 8)`` token map of a sequence (codes of ``ufixed<5,1>``, as the images)."""
    d = digits_split(seed, test_size)
    return Split(*(a.reshape(len(a), 8, 1, 8) if a.ndim == 4 else a for a in
                   (d.x_train, d.y_train, d.x_test, d.y_test)))


class DataError(SwinfpgaError, ValueError):
    """A user data file is missing a key or has the wrong shape / dtype."""


DATA_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_user_data(path: str | Path, spec: SwinSpec) -> Split:
    """Load ``x_train, y_train, x_test, y_test`` from an ``.npz`` for ``spec`` and turn the inputs
    into codes of ``spec.in_fmt`` (round to nearest, values outside its range are an error).

    ``x_*``: real values (float) or integer codes when integer-typed, of shape ``(n, *input)``
    (a sequence: ``(n, tokens, features)``); ``y_*``: integer class ids in ``[0, classes)``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file {p} does not exist (expected an .npz with {', '.join(DATA_KEYS)})")
    try:
        z = np.load(p, allow_pickle=False)
        arrays = {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{p}: cannot read as .npz ({e}); save it with numpy.savez(path, x_train=..., ...)") from None
    missing = [k for k in DATA_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{p}: missing key(s) {', '.join(missing)}; found {', '.join(sorted(arrays)) or 'none'}")
    shape = (spec.img[0], spec.img[2]) if spec.seq else tuple(spec.img)
    out = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype.kind not in "fiu" or x.shape[1:] != shape:
            raise DataError(f"{p}: x_{split} has shape {x.shape} dtype {x.dtype}; expected numeric (n, "
                            f"{', '.join(map(str, shape))}) for {spec.name!r} (input shape in the architecture file)")
        if len(x) == 0:
            raise DataError(f"{p}: x_{split} is empty")
        if y.dtype.kind not in "iu" or y.shape != (len(x),):
            raise DataError(f"{p}: y_{split} has shape {y.shape} dtype {y.dtype}; expected integer class ids "
                            f"of shape ({len(x)},)")
        if spec.classes and (y.min() < 0 or y.max() >= spec.classes):
            raise DataError(f"{p}: y_{split} has labels in [{y.min()}, {y.max()}]; expected [0, {spec.classes})")
        fmt = spec.in_fmt
        if x.dtype.kind == "f":
            if not np.all(np.isfinite(x)):
                raise DataError(f"{p}: x_{split} has NaN or infinite values")
            codes = np.round(np.ldexp(x.astype(np.float64), fmt.frac))
        else:
            codes = x.astype(np.float64)
        if codes.min() < fmt.min_code or codes.max() > fmt.max_code:
            raise DataError(f"{p}: x_{split} values span [{x.min()}, {x.max()}] (codes [{codes.min():.0f}, "
                            f"{codes.max():.0f}]), outside the input format {fmt}; set input.fmt in the "
                            "architecture file or rescale the data")
        out[f"x_{split}"] = codes.astype(np.int64).reshape(len(x), *spec.img)
        out[f"y_{split}"] = y.astype(np.int64)
    return Split(out["x_train"], out["y_train"], out["x_test"], out["y_test"])
