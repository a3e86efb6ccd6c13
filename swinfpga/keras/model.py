"""Swin models from :class:`~swinfpga.models.SwinSpec` as Keras functional models whose layer names
are the IR node names (see :mod:`swinfpga.ir.build`), plus mode switching and calibration."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from ..fixed import Fmt
from ..models import SwinSpec
from .layers import (
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
    QWindowAttention,
)
from .quant import DTYPE


@dataclass(frozen=True)
class Bits:
    """Bit widths chosen at calibration (weights, activations, scores, biases, logits)."""

    weight: int = 8
    act: int = 8
    score: int = 8
    bias: int = 12
    logit: int = 8

    def as_dict(self) -> dict[str, int]:
        return {"weight": self.weight, "act": self.act, "score": self.score, "bias": self.bias, "logit": self.logit}


def swin_block(x: Any, pre: str, heads: int, window: Any, shift: int, mlp_ratio: int, act: str, norm: str,
               rel_bias: bool = True, mask: Any = None) -> Any:
    """One Swin block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))`` (``norm``: bn folded | ln).
    ``window``: int | [wh, ww] | "global" (see :class:`QWindowAttention`)."""
    c = x.shape[-1]
    bn = norm == "bn"
    h = QLayerNorm(name=f"{pre}.norm1")(x) if not bn else x
    if isinstance(window, tuple):
        window = list(window)
    kw: dict[str, Any] = {} if rel_bias else {"rel_bias": False}
    if mask is not None:
        kw["masked"] = True
    a = QWindowAttention(heads, window, shift, pre_bn=bn, name=f"{pre}.attn", **kw)(h if mask is None else [h, mask])
    x = QAdd(name=f"{pre}.add1")([x, a])
    h = QLayerNorm(name=f"{pre}.norm2")(x) if not bn else x
    m = QMlp(c * mlp_ratio, act, pre_bn=bn, name=f"{pre}.mlp")(h)
    return QAdd(name=f"{pre}.add2")([x, m])


def build_model(spec: SwinSpec) -> keras.Model:
    """Keras model of ``spec`` (float mode).  Input: real pixel values ``code * 2**-in_fmt.frac``
    of shape ``spec.img``; output: logits (or the token map when ``classes == 0``)."""
    inp = keras.Input(spec.img, name="image", dtype=DTYPE)
    x = QInput(fmt=spec.in_fmt.to_json(), name="input")(inp)
    mask = QTokenMask(name="mask")(x) if spec.pad_mask else None
    bn = spec.norm == "bn"
    if spec.patch:
        x = QPatchEmbed(spec.patch, spec.embed, post_bn=bn, name="patch_embed")(x)
        if not bn:
            x = QLayerNorm(name="patch_norm")(x)
    for si, (st, (_, c)) in enumerate(zip(spec.stages, spec.stage_dims(), strict=True)):
        if st.merge:
            x = QPatchMerging(c, norm=spec.norm, name=f"s{si}.merge")(x)
        for bi in range(st.depth):
            win = list(spec.stage_window(si)) if spec.seq and isinstance(st.window, int) else st.window
            x = swin_block(x, f"s{si}b{bi}", st.heads, win, spec.block_shift(si, bi), spec.mlp_ratio,
                           spec.act, spec.norm, spec.rel_bias, mask)
    if spec.classes:
        if not bn:
            x = QLayerNorm(name="norm")(x)
        x = QPool(name="pool")(x) if mask is None else QPool(masked=True, name="pool")([x, mask])
        x = QDense(spec.classes, pre_bn=bn, name="head")(x)
    return keras.Model(inp, x, name=spec.name)


def qlayers(model: keras.Model) -> Iterator[QLayer]:
    for layer in model.layers:
        if isinstance(layer, QLayer):
            yield layer


def inbound(layer: keras.layers.Layer) -> list[str]:
    """Names of the layers feeding ``layer`` (first call site) in a functional model."""
    node = layer._inbound_nodes[0]
    return [t._keras_history.operation.name for t in node.input_tensors]


def set_quantized(model: keras.Model, on: bool = True) -> None:
    """Switch every swinfpga layer between float and quantized mode (resets compiled functions)."""
    for layer in qlayers(model):
        layer.quantized = bool(on)
    for attr in ("train_function", "test_function", "predict_function"):
        if hasattr(model, attr):
            setattr(model, attr, None)


def batched(fn: Any, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)], axis=0)


def calibrate(model: keras.Model, x: np.ndarray, bits: Bits | None = None, batch: int = 256) -> dict[str, Fmt]:
    """Observe float-mode ranges on ``x`` (real inputs), then choose every format (per tensor:
    integer bits from the observed range, widths from ``bits``).  Returns ``{layer.site: Fmt}``."""
    bits = bits or Bits()
    set_quantized(model, False)
    layers = list(qlayers(model))
    for layer in layers:
        layer.calib = {}
    try:
        for i in range(0, len(x), batch):
            model(x[i:i + batch], training=False)
        out_fmt: dict[str, Fmt] = {}
        for layer in layers:
            if isinstance(layer, QInput):
                out_fmt[layer.name] = layer.fmt("out")
                continue
            ins = [out_fmt[n] for n in inbound(layer)]
            layer.assign_formats(ins, bits.as_dict())
            out_fmt[layer.name] = output_fmt(layer)
    finally:
        for layer in layers:
            layer.calib = None
    return {f"{ly.name}.{k}": v for ly in layers for k, v in ly.fmts.items()}


def output_site(layer: QLayer) -> str:
    """The site holding ``layer``'s output."""
    if isinstance(layer, QWindowAttention):
        return "proj.out"
    if isinstance(layer, QMlp):
        return "fc2.out"
    if isinstance(layer, QLayerNorm):
        return layer.core.prefix + "out"
    return "out"


def output_fmt(layer: QLayer) -> Fmt:
    return layer.fmt(output_site(layer))


def predict_quantized(model: keras.Model, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """Quantized-mode outputs (real values) for real inputs ``x`` (the model must be quantized)."""
    return batched(lambda b: keras.ops.convert_to_numpy(model(b, training=False)), x, batch)


def to_codes(values: np.ndarray, fmt: Fmt) -> np.ndarray:
    """Real values on ``fmt``'s grid -> int64 codes (raises if a value is off the grid)."""
    v = np.ldexp(np.asarray(values, dtype=np.float64), fmt.frac)
    c = np.round(v)
    if not np.all(c == v):
        raise ValueError(f"values are not on the grid of {fmt}")
    return c.astype(np.int64)


def widen_saturated_weights(model: keras.Model) -> list[str]:
    """Give every weight/bias format whose float values would saturate enough integer bits (same
    width); returns the sites changed.  Run after QAT, before export."""
    from ..fixed import FormatError
    from .layers import Lin, LNCore, check_weight_range
    from .quant import as_numpy

    changed: list[str] = []

    def fix(layer: QLayer, site: str, values: np.ndarray, extra: int = 0, frac: int | None = None) -> int:
        """``frac``: check at these fraction bits (HGQ: the exported weight format's) instead of the site's."""
        f0 = layer.fmts[site]
        f = f0.with_(int_bits=f0.int_bits + extra)
        while True:
            try:
                chk = f
                if frac is not None:  # the fvar cap below keeps the exported fraction <= the site's
                    fr = min(frac, f.frac)
                    chk = Fmt(f.signed, max(2, f.int_bits + fr), f.int_bits, f.rounding, f.overflow)
                check_weight_range(values, chk, site)
                break
            except FormatError:
                f = f.with_(int_bits=f.int_bits + 1)
        if f != f0:
            layer.fmts[site] = f
            changed.append(f"{layer.name}.{site}: {f0} -> {f}")
        return f.int_bits - f0.int_bits

    for layer in qlayers(model):
        for attr in vars(layer).values():
            if isinstance(attr, Lin):
                w, b = attr.effective()
                # HGQ: the IR format has the widest trained fraction, whose largest code can be below a value
                # that fits the calibrated (finer) format: check at the exported fraction
                ef = attr.export_w_fmt().frac if attr.fvar is not None else None
                dw = fix(layer, attr.prefix + "w", as_numpy(w), frac=ef)
                if dw and attr.fvar is not None:  # HGQ: keep the width, as for one format (frac - dw)
                    from .hgq import frac_np, set_frac

                    set_frac(attr.fvar, np.minimum(frac_np(attr.fvar), layer.fmts[attr.prefix + "w"].frac))
                if b is not None:  # keep the bias within the accumulator's fraction bits
                    fix(layer, attr.prefix + "b", as_numpy(b), extra=dw)
            elif isinstance(attr, LNCore):
                fix(layer, attr.prefix + "gamma", as_numpy(attr.gamma))
                fix(layer, attr.prefix + "beta", as_numpy(attr.beta))
        if isinstance(layer, QWindowAttention) and layer.rel_bias is not None:
            fix(layer, "rel_bias", as_numpy(layer.rel_bias))
    return changed
