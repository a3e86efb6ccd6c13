"""HGQ (Sun et al., high-granularity quantization): trainable fractional bits under a resource penalty.

Weights get a trainable fractional-bit count per output channel (``channel``) or per weight
(``weight``); the main token activations (:meth:`QLayer.hgq_act_sites`) get one per tensor.  Integer
bits stay those of calibration, and no format grows beyond its calibrated width (bits only go down).
The forward pass quantizes with HGQ2's fixed-point quantizer (``quantizers``) at ``round(f)``
(straight-through), whose gradient w.r.t. ``f`` is ``ln2 * (x - q(x))``; the penalty is
``beta * EBOPs`` with EBOPs as HGQ2 counts them for a dense layer: ``sum(bits_in @ bits_w)`` over
all token positions of one sample, where a weight's bits are those of its quantized value
(``1 + floor(log2|q|) + 1 + f`` for ``q != 0``, 0 for ``q == 0``, gradient 1 in ``f``), plus the
``probs @ v`` products of attention.

Export stays in the existing IR (one format per tensor): :func:`freeze` rounds the bit variables,
sets every trained activation format to ``Fmt(signed, I + f, I)``, gives each linear's weights the
widest fraction over its channels (finer channels' codes end in zero bits; weights at zero bits are
code 0) and trims bias fractions to the accumulator's.  After freezing, quantized Keras inference
equals the golden model bit for bit, as for 8-bit training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from ..fixed import Fmt
from .quant import DTYPE, as_numpy

GRANULARITY = ("channel", "weight")
# A bit variable stores f / FRAC_SCALE: the optimizer's steps (~ learning rate) then move f FRAC_SCALE
# times faster than the weights (a power of two: frozen values f / FRAC_SCALE are exact).
FRAC_SCALE = 64.0


class FracRange(keras.constraints.Constraint):
    """Clamp fractional-bit variables to ``[lo, hi]`` after every optimizer step."""

    def __init__(self, lo: float, hi: float) -> None:  # in fractional bits
        self.lo, self.hi = float(lo) / FRAC_SCALE, float(hi) / FRAC_SCALE

    def __call__(self, w: Any) -> Any:
        return ops.clip(w, self.lo, self.hi)

    def get_config(self) -> dict[str, float]:
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


@dataclass(frozen=True)
class HGQSummary:
    """Bits after :func:`freeze`: EBOPs, weights at zero bits, mean weight/activation widths."""

    ebops: float
    zero_weights: int
    weights: int
    mean_weight_bits: float
    act_widths: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"ebops": self.ebops, "zero_weights": self.zero_weights, "weights": self.weights,
                "mean_weight_bits": self.mean_weight_bits, "act_widths": dict(self.act_widths)}


def _qlayers(model: keras.Model) -> Iterator[Any]:
    from .layers import QLayer

    for layer in model.layers:
        if isinstance(layer, QLayer):
            yield layer


def link_inputs(model: keras.Model) -> None:
    """Tell each layer which (layer, site) produces its input (for the input bits of EBOPs and for
    bias alignment at :func:`freeze`)."""
    from .model import inbound, output_site

    by_name = {ly.name: ly for ly in _qlayers(model)}
    for layer in by_name.values():
        srcs = inbound(layer)
        layer.hgq_in[:] = [(by_name[s], output_site(by_name[s])) for s in srcs if s in by_name]


def enable(model: keras.Model, granularity: str = "channel", beta: float = 0.0) -> None:
    """Add trainable bit variables (initialised to the calibrated formats) to every layer of a
    calibrated, quantized model and switch HGQ training on with penalty ``beta`` (per EBOP)."""
    from .layers import QuantizationError as HGQError
    from .model import set_quantized

    if granularity not in GRANULARITY:
        raise HGQError(f"HGQ granularity {granularity!r} unknown; use one of {', '.join(GRANULARITY)}")
    if beta < 0:
        raise HGQError(f"beta must be >= 0, got {beta}")
    for layer in _qlayers(model):
        if layer.hgq is None:
            layer.hgq = granularity
            layer.build_hgq()
            layer.init_hgq()
        elif layer.hgq != granularity:
            raise HGQError(f"layer {layer.name!r} already has {layer.hgq}-granular bits, not {granularity}")
        layer.hgq_active = True
        layer.hgq_beta = float(beta)
    link_inputs(model)
    set_quantized(model, True)


def total_ebops(model: keras.Model) -> float:
    """EBOPs of the model at its current bits (one sample)."""
    link_inputs(model)
    return float(sum(float(as_numpy(ly.ebops())) for ly in _qlayers(model) if ly.has_ebops()))


def freeze(model: keras.Model) -> HGQSummary:
    """End HGQ training: integer bits in the variables, trained formats into ``fmts`` (see module
    docstring).  The model stays quantized; its bit variables no longer train."""
    from .model import set_quantized

    link_inputs(model)
    layers = list(_qlayers(model))
    for layer in layers:
        layer.hgq_active = False
        for v in layer.hgq_vars():
            set_frac(v, frac_np(v))
            v.trainable = False  # out of later fits (saving keeps the creation order)
        for site in layer.hgq_act_sites() if layer.hgq else ():
            f0 = layer.fmts[site]
            fr = int(frac_np(layer.hgq_act_var(site)))
            layer.fmts[site] = Fmt(f0.signed, f0.int_bits + fr, f0.int_bits, f0.rounding, f0.overflow)
    for layer in layers:
        for lin in layer.lins():
            if lin.fvar is None or not lin.has_bias:
                continue
            acc = lin.in_fmt().frac + lin.export_w_fmt().frac
            bf = layer.fmts[lin.prefix + "b"]
            if bf.frac > acc:
                layer.fmts[lin.prefix + "b"] = Fmt(True, max(2, bf.int_bits + acc), bf.int_bits, "RND", "SAT")
    set_quantized(model, True)
    return summary(model)


def summary(model: keras.Model) -> HGQSummary:
    zero = total = 0
    bits = 0.0
    acts: dict[str, int] = {}
    for layer in _qlayers(model):
        for lin in layer.lins():
            wq, _ = lin.quant_weights(False)
            q = as_numpy(wq)
            if lin.fvar is not None:
                f = np.broadcast_to(frac_np(lin.fvar), q.shape)
            else:
                f = np.full(q.shape, layer.fmt(lin.prefix + "w").frac, dtype=np.float64)
            b = as_numpy(weight_bits(ops.convert_to_tensor(q, DTYPE), ops.convert_to_tensor(f, DTYPE)))
            zero += int(np.count_nonzero(q == 0))
            total += q.size
            bits += float(b.sum())
        for site in layer.hgq_act_sites():
            acts[f"{layer.name}.{site}"] = layer.fmt(site).width
    return HGQSummary(total_ebops(model), zero, total, bits / max(total, 1), acts)


__all__ = ["GRANULARITY", "FracRange", "HGQSummary", "enable", "freeze", "summary", "total_ebops", "weight_bits",
           "link_inputs", "act_range", "weight_range", "round_ste"]
