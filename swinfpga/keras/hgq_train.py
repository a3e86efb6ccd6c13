"""HGQ training of a whole model: switch trainable bits on (:func:`enable`), count EBOPs
(:func:`total_ebops`), and freeze the trained bits into formats (:func:`freeze`); see
:mod:`swinfpga.keras.hgq` for the method and the per-tensor primitives the layers use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from ..fixed import Fmt
from .hgq import GRANULARITY, frac_np, set_frac, weight_bits
from .quant import DTYPE, as_numpy


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


def enable(model: keras.Model, granularity: str = "channel", beta: float = 0.0, qk: bool = False) -> None:
    """Add trainable bit variables (initialised to the calibrated formats) to every layer of a
    calibrated, quantized model and switch HGQ training on with penalty ``beta`` (per EBOP).
    ``qk``: attention's q and k outputs train their bits too (also on a model HGQ-trained without)."""
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
        if qk and hasattr(layer, "hgq_qk") and not layer.hgq_qk:
            layer.hgq_qk = True
            old = set(layer._act_vars)
            layer.build_hgq()  # appends the new bit variables (after the existing ones: the saved order)
            for site in layer.hgq_act_sites():
                if site not in old:
                    set_frac(layer.hgq_act_var(site), layer.fmt(site).frac)
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
        if getattr(layer, "hgq_qk", False) and "rel_bias" in layer.fmts:  # aligned to the q.k accumulator
            rb, qk_frac = layer.fmts["rel_bias"], layer.fmts["q.out"].frac + layer.fmts["k.out"].frac
            if rb.frac > qk_frac:
                ib = rb.int_bits if rb.int_bits + qk_frac >= 2 else 2 - qk_frac
                layer.fmts["rel_bias"] = Fmt(True, ib + qk_frac, ib, rb.rounding, rb.overflow)
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


__all__ = ["HGQSummary", "enable", "freeze", "summary", "total_ebops", "link_inputs"]
