"""HGQ training of a whole model: switch trainable bits on (:func:`enable`), count EBOPs
(:func:`total_ebops`), and freeze the trained bits into formats (:func:`freeze`); see
:mod:`swinfpga.keras.hgq` for the method and the per-tensor primitives the layers use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import ops

from ..fixed import ChanFmt, Fmt
from .hgq import ACT_GRANULARITY, GRANULARITY, frac_np, min_width, set_frac, weight_bits
from .quant import DTYPE, as_numpy


@dataclass(frozen=True)
class HGQSummary:
    """Bits after :func:`freeze`: EBOPs, weights at zero bits, mean weight/activation widths."""

    ebops: float
    zero_weights: int
    weights: int
    mean_weight_bits: float
    act_widths: dict[str, int]  # container widths
    act_mean_widths: dict[str, float] = field(default_factory=dict)  # per-channel sites: mean channel width
    pruned_channels: dict[str, int] = field(default_factory=dict)  # per-channel sites: channels at 0 bits

    def as_dict(self) -> dict[str, Any]:
        d = {"ebops": self.ebops, "zero_weights": self.zero_weights, "weights": self.weights,
             "mean_weight_bits": self.mean_weight_bits, "act_widths": dict(self.act_widths)}
        if self.act_mean_widths:
            d["act_mean_widths"] = dict(self.act_mean_widths)
            d["pruned_channels"] = dict(self.pruned_channels)
        return d


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


def enable(model: keras.Model, granularity: str = "channel", beta: float = 0.0, qk: bool = False,
           act: str = "tensor", x: np.ndarray | None = None) -> None:
    """Add trainable bit variables (initialised to the calibrated formats) to every layer of a
    calibrated, quantized model and switch HGQ training on with penalty ``beta`` (per EBOP).
    ``qk``: attention's q and k outputs train their bits too (also on a model HGQ-trained without).
    ``act``: activation bits per ``tensor`` or per ``channel``; ``channel`` first gives each per-channel
    site (:meth:`~swinfpga.keras.layers.QLayer.hgq_chan_sites`) per-channel integer bits from the ranges
    the quantized model sees on ``x`` (real inputs; :func:`calibrate_channels`)."""
    from .layers import QuantizationError as HGQError
    from .model import set_quantized

    if granularity not in GRANULARITY:
        raise HGQError(f"HGQ granularity {granularity!r} unknown; use one of {', '.join(GRANULARITY)}")
    if act not in ACT_GRANULARITY:
        raise HGQError(f"HGQ activation granularity {act!r} unknown; use one of {', '.join(ACT_GRANULARITY)}")
    if beta < 0:
        raise HGQError(f"beta must be >= 0, got {beta}")
    layers = list(_qlayers(model))
    for layer in layers:
        if layer.hgq_act == "channel" and act != "channel":
            raise HGQError(f"layer {layer.name!r} trained per-channel activation bits; continue with "
                           "--act-granularity channel")
        if qk and layer.hgq_act == "channel" and hasattr(layer, "hgq_qk") and not layer.hgq_qk:
            raise HGQError(f"layer {layer.name!r}: --hgq-qk cannot be added to a model trained with per-channel "
                           "activation bits (start from a model without them, or drop --hgq-qk)")
    for layer in layers:
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
    new = [ly for ly in layers if act == "channel" and ly.hgq_act is None]
    if new:
        if x is None:
            raise HGQError("per-channel activation bits need calibration inputs (x) for their integer bits")
        for layer in new:
            layer.hgq_act = "channel"
        set_quantized(model, True)
        calibrate_channels(model, x, new)
        for layer in new:
            layer.build_hgq()  # appends the per-channel variables
            for site in layer.hgq_chan_sites():
                f = layer.fmt(site)
                set_frac(layer.hgq_chan_var(site), [w - i if w else 0 for w, i in f.chans])
    for layer in layers:
        for site in layer.hgq_chan_sites():  # its per-tensor bits (created first: the saved order) are unused
            if site in layer._act_vars:
                layer._act_vars[site].trainable = False
        layer.hgq_active = True
        layer.hgq_beta = float(beta)
    link_inputs(model)
    set_quantized(model, True)


def chan_int_bits_for(lo: np.ndarray, hi: np.ndarray, fmt: Fmt) -> list[int]:
    """Per channel: the fewest integer bits (sign included, at most ``fmt.int_bits``) at ``fmt``'s
    fractional bits whose range holds the rounded codes of ``[lo, hi]`` (width at least the minimum)."""
    s = 2.0**fmt.frac
    half = 0.5 if fmt.rounding == "RND" else 0.0
    out = []
    for a, b in zip(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64), strict=True):
        ca, cb = np.floor(a * s + half), np.floor(b * s + half)
        i = fmt.int_bits
        while i - 1 + fmt.frac >= min_width(fmt):
            g = Fmt(fmt.signed, i - 1 + fmt.frac, i - 1, fmt.rounding, fmt.overflow)
            if ca < g.min_code or cb > g.max_code:
                break
            i -= 1
        out.append(i)
    return out


def calibrate_channels(model: keras.Model, x: np.ndarray, layers: list[Any], batch: int = 256) -> None:
    """Give the per-channel sites of ``layers`` (quantized model, current formats) per-channel
    formats in their container: each channel keeps the fractional bits and takes the fewest integer
    bits holding the values that reach the site on real inputs ``x`` (:func:`chan_int_bits_for`)."""
    for layer in layers:
        layer.calib_ch = {s: None for s in layer.hgq_chan_sites()}
    try:
        for i in range(0, len(x), batch):
            model(x[i:i + batch], training=False)
        for layer in layers:
            for site, r in layer.calib_ch.items():
                f = layer.fmts[site].container
                ib = chan_int_bits_for(r[0], r[1], f)
                layer.fmts[site] = ChanFmt(f.signed, f.width, f.int_bits, f.rounding, f.overflow,
                                           chans=tuple((i + f.frac, i) for i in ib))
    finally:
        for layer in layers:
            layer.calib_ch = None


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
        chan = layer.hgq_chan_sites() if layer.hgq else {}
        for site in layer.hgq_act_sites() if layer.hgq else ():
            f0 = layer.fmts[site]
            if site in chan:  # per channel: I_c + f_c bits, pruned below the minimum width
                fr = frac_np(layer.hgq_chan_var(site))
                chans = f0.chans if isinstance(f0, ChanFmt) else [(f0.width, f0.int_bits)] * chan[site]
                ch = [(i + int(f), i) if w and i + int(f) >= min_width(f0) else (0, 0)
                      for (w, i), f in zip(chans, fr, strict=True)]
                layer.fmts[site] = ChanFmt.union(f0.signed, ch, f0.rounding, f0.overflow)
                continue
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
    means: dict[str, float] = {}
    pruned: dict[str, int] = {}
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
            f = layer.fmt(site)
            acts[f"{layer.name}.{site}"] = f.width
            if isinstance(f, ChanFmt):
                means[f"{layer.name}.{site}"] = round(float(np.mean([w for w, _ in f.chans])), 3)
                pruned[f"{layer.name}.{site}"] = sum(1 for w, _ in f.chans if w == 0)
    return HGQSummary(total_ebops(model), zero, total, bits / max(total, 1), acts, means, pruned)


__all__ = ["HGQSummary", "enable", "freeze", "summary", "total_ebops", "link_inputs", "calibrate_channels"]
