"""HGQ (Sun et al., high-granularity quantization): trainable fractional bits under a resource penalty.

Weights get a trainable fractional-bit count per output channel (``channel``) or per weight
(``weight``); the main token activations (:meth:`QLayer.hgq_act_sites`) get one per tensor, or (activation
granularity ``channel``) one per channel at the token-local sites (:meth:`QLayer.hgq_chan_sites`), whose
integer bits then come per channel from the ranges the quantized model sees (``hgq_train.calibrate_channels``);
a channel whose width falls below the minimum (signed 2, unsigned 1) is pruned: always 0, and the EBOPs of
the products it feeds are 0 (``bits_in @ bits_w``).  Integer bits stay those of calibration, and no format
grows beyond its calibrated width (bits only go down).
The forward pass quantizes with HGQ2's fixed-point quantizer (``quantizers``) at ``round(f)``
(straight-through), whose gradient w.r.t. ``f`` is ``ln2 * (x - q(x))``; the penalty is
``beta * EBOPs`` with EBOPs as HGQ2 counts them for a dense layer: ``sum(bits_in @ bits_w)`` over
all token positions of one sample, where a weight's bits are those of its quantized value
(``1 + floor(log2|q|) + 1 + f`` for ``q != 0``, 0 for ``q == 0``, gradient 1 in ``f``), plus the
``probs @ v`` products of attention.

Export: ``hgq_train.freeze`` rounds the bit variables, sets every per-tensor trained activation format
to ``Fmt(signed, I + f, I)`` and every per-channel one to ``ChanFmt.union`` of its channels'
``(I_c + f_c, I_c)`` (pruned ``(0, 0)``), gives each linear's weights the
widest fraction over its channels (finer channels' codes end in zero bits; weights at zero bits are
code 0) and trims bias fractions to the accumulator's.  After freezing, quantized Keras inference
equals the golden model bit for bit, as for 8-bit training.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ..fixed import ChanFmt, Fmt
from .quant import as_numpy

GRANULARITY = ("channel", "weight")
ACT_GRANULARITY = ("tensor", "channel")  # activation bits: one per tensor | per channel (ChanFmt)
# A bit variable stores f / FRAC_SCALE: the optimizer's steps (~ learning rate) then move f FRAC_SCALE
# times faster than the weights (a power of two: frozen values f / FRAC_SCALE are exact).
FRAC_SCALE = 64.0


class FracRange(keras.constraints.Constraint):
    """Clamp fractional-bit variables to ``[lo, hi]`` after every optimizer step."""

    def __init__(self, lo: Any, hi: Any) -> None:  # in fractional bits: numbers, or vectors (per channel)
        if np.ndim(lo) or np.ndim(hi):
            self.lo = (np.asarray(lo, dtype=np.float64) / FRAC_SCALE).tolist()
            self.hi = (np.asarray(hi, dtype=np.float64) / FRAC_SCALE).tolist()
        else:
            self.lo, self.hi = float(lo) / FRAC_SCALE, float(hi) / FRAC_SCALE

    def __call__(self, w: Any) -> Any:
        if isinstance(self.lo, list):
            lo, hi = (ops.convert_to_tensor(np.asarray(v), dtype=w.dtype) for v in (self.lo, self.hi))
            return ops.minimum(ops.maximum(w, lo), hi)
        return ops.clip(w, self.lo, self.hi)

    def get_config(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi}


def round_ste(v: Any, train: bool) -> Any:
    """Fractional bits ``round(FRAC_SCALE * v)`` of bit variable ``v`` (ties to even); straight-through
    gradient when ``train``, else no gradient."""
    f = v * FRAC_SCALE
    r = ops.round(f)
    return ops.stop_gradient(r - f) + f if train else ops.stop_gradient(r)


def frac_np(v: Any) -> np.ndarray:
    """Integer fractional bits held by bit variable ``v`` (numpy)."""
    return np.round(as_numpy(v) * FRAC_SCALE)


def set_frac(v: Any, f: Any) -> None:
    v.assign(np.broadcast_to(np.asarray(f, dtype=np.float64), tuple(v.shape)) / FRAC_SCALE)


def min_width(fmt: Fmt) -> int:
    return 2 if fmt.signed else 1


def act_range(fmt: Fmt) -> tuple[int, int]:
    """Trainable range of an activation's fractional bits: width >= 2 (signed) / 1, frac >= min(0,
    calibrated frac), never wider than calibrated."""
    return max(min_width(fmt) - fmt.int_bits, min(fmt.frac, 0)), fmt.frac


def chan_int_bits(fmt: Fmt) -> np.ndarray:
    """Integer bits per channel (sign included) of a per-channel format (pruned channels: their stored
    integer bits, 0); a plain format's on every channel (a scalar)."""
    if isinstance(fmt, ChanFmt):
        return np.asarray([float(i) for _, i in fmt.chans])
    return np.asarray(float(fmt.int_bits))


def chan_act_range(fmt: Fmt, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Trainable range of per-channel activation fractional bits: down to width 0 (``f = -I_c``,
    pruned; below the minimum width a channel is pruned), never wider than the channel's format."""
    i = np.broadcast_to(chan_int_bits(fmt), (c,))
    if isinstance(fmt, ChanFmt):
        hi = np.asarray([float(w - ii) if w else 0.0 for w, ii in fmt.chans])
    else:
        hi = np.full(c, float(fmt.frac))
    return np.minimum(-i, hi), hi


def weight_range(fmt: Fmt) -> tuple[int, int]:
    """Trainable range of a weight's fractional bits: down to 0 bits (``I + f == 0``: the weight is 0)."""
    return -fmt.int_bits, fmt.frac


def weight_bits(q: Any, f: Any) -> Any:
    """HGQ effective bits of quantized weights ``q`` with fraction bits ``f`` (sign included; 0 for
    ``q == 0``); the gradient flows to ``f`` only."""
    a = ops.stop_gradient(ops.abs(q))
    nz = a > 0
    i = ops.floor(ops.log2(ops.where(nz, a, 1.0))) + 1.0  # integer bits of the magnitude
    return ops.where(nz, ops.maximum(1.0 + i + f, 0.0), 0.0)


__all__ = ["GRANULARITY", "FracRange", "round_ste", "frac_np", "set_frac", "min_width", "act_range",
           "weight_range", "weight_bits", "chan_int_bits", "chan_act_range", "ACT_GRANULARITY"]
