"""Trainable quantized Keras 3 layers, one per IR node (all computing in float64).

Each layer has two modes:

* float (``quantized=False``): reference Swin math (BatchNorm with batch statistics in training,
  LayerNorm, softmax with Swin's additive ``-100`` mask, GELU).  With ``calib`` set (a dict), every
  quantization site records its observed min/max, from which :mod:`swinfpga.keras.model` chooses
  formats.
* quantized (``quantized=True``): the operator kernels ``swinfpga.ops.<op>.kernel`` (the integer
  definition shared with the golden model and the RTL tracer) run on :class:`~swinfpga.keras.fx.KerasFx`
  in the value domain (every value ``code * 2**-frac``; exact in float64), so inference equals the
  golden model bit for bit.  BatchNorm is folded (Jacob et al.: moving statistics folded into the next
  linear's weights and bias *before* weight quantization; the statistics are frozen).  Rounding
  and saturation use HGQ2's fixed-point quantizer with straight-through gradients; the integer
  softmax / rsqrt / GELU tables get the gradient of their float counterparts.

Quantization sites are named ``<linear>.w``, ``<linear>.b``, ``<linear>.out`` and per layer
(``scores``, ``attn``, ``rel_bias``, ``hidden``, ``mean``, ``var``, ``rsqrt``, ``norm``,
``gamma``, ``beta``, ``out``); ``fmts`` maps site -> :class:`~swinfpga.fixed.Fmt`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from ..errors import SwinfpgaError
from ..fixed import ChanFmt, Fmt, FormatError, fit_fmt
from ..ir import nodes as N
from ..lut import SoftmaxSpec, gelu_table, rsqrt_table
from ..ops import add as op_add
from ..ops import dense as op_dense
from ..ops import layer_norm as op_layer_norm
from ..ops import linear as op_linear
from ..ops import mlp as op_mlp
from ..ops import patch_embed as op_patch_embed
from ..ops import patch_merging as op_patch_merging
from ..ops import pool as op_pool
from ..ops import token_mask as op_token_mask
from ..ops import window_attention as op_window_attention
from ..softmax_sizing import design_softmax
from .fx import (
    CARRIED,
    KAdd,
    KDense,
    KerasFx,
    KLayerNorm,
    KMlp,
    KPatchEmbed,
    KPatchMerging,
    KPool,
    KTokenMask,
    KWindowAttention,
    Param,
    Table,
)
from .quant import (
    DTYPE,
    MASK_VALUE,
    as_numpy,
    fmts_from_config,
    fmts_to_config,
    quantize,
    quantize_f,
)

PKG = "swinfpga"
LN_INV_FRAC = 16  # LayerNorm: inv_c = round(2**16 / C)
LN_EPS = 1e-5
BN_EPS = 1e-5
BN_MOMENTUM = 0.9


def gelu(x: Any) -> Any:
    """Exact (erf) GELU in the input's precision (``keras.ops.gelu`` uses a float32 constant)."""
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


def chan_sum(b: Any, n: int) -> Any:
    """Sum over ``n`` channels of bits ``b``: per channel (a vector of ``n``, or of a divisor of ``n``
    repeated, as a 2x2 merge's concatenation) or one per tensor (a scalar, ``n`` times)."""
    if len(b.shape) == 0:
        return b * float(n)
    return ops.sum(b) * float(n // int(b.shape[0]))


class QuantizationError(SwinfpgaError, ValueError):
    """A layer is missing a format (not calibrated / float weights) or is misconfigured."""


class QLayer(keras.layers.Layer):
    """Base: quantization sites, float/quantized mode, calibration and tap recording."""

    def __init__(self, fmts: dict[str, Any] | None = None, quantized: bool = False, hgq: str | None = None,
                 hgq_act: str | None = None, **kw: Any) -> None:
        kw["dtype"] = DTYPE
        super().__init__(**kw)
        self.fmts: dict[str, Fmt] = fmts_from_config(fmts)
        self.quantized = bool(quantized)
        self.calib: dict[str, list[float]] | None = None
        self.record: dict[str, np.ndarray] | None = None
        # HGQ (swinfpga.keras.hgq): ``hgq`` = granularity of the trainable weight bits (None: fixed
        # formats); bit variables exist when set, and train (with the EBOPs penalty) while ``hgq_active``.
        self.hgq = hgq
        # "channel": the per-channel activation sites (:meth:`hgq_chan_sites`) train one fractional bit
        # count per channel (integer bits per channel in their ChanFmt), else one per tensor
        self.hgq_act = hgq_act
        self.hgq_active = False
        self.hgq_beta = 0.0
        # plain containers, not Keras-tracked (the variables are tracked by add_weight, layers by the model)
        object.__setattr__(self, "hgq_in", [])  # [(upstream layer, site)]
        object.__setattr__(self, "_lins", [])
        object.__setattr__(self, "_act_vars", {})
        object.__setattr__(self, "_chan_vars", {})
        # per-channel range recording in any mode (swinfpga.keras.hgq_train.calibrate_channels): site -> [lo, hi]
        object.__setattr__(self, "calib_ch", None)
        self._ntok = 1

    # ----- sites -----------------------------------------------------------------------------
    def fmt(self, site: str) -> Fmt:
        try:
            return self.fmts[site]
        except KeyError:
            raise QuantizationError(
                f"layer {self.name!r}: no fixed-point format for {site!r} (float/unquantized); calibrate the "
                "model (swinfpga.keras.model.calibrate) or train it with swinfpga train"
            ) from None

    def site(self, name: str, x: Any, training: Any = False) -> Any:
        if self.calib_ch is not None and name in self.calib_ch:
            v = as_numpy(x)
            v = v.reshape(-1, v.shape[-1])
            old = self.calib_ch[name]
            lo, hi = v.min(axis=0), v.max(axis=0)
            self.calib_ch[name] = [lo, hi] if old is None else [np.minimum(old[0], lo), np.maximum(old[1], hi)]
        if self.quantized and self.hgq_active and name in self._chan_vars:
            from .hgq import chan_int_bits, round_ste
            from .quant import quantize_chan

            f0 = self.fmt(name)
            fr = round_ste(self._chan_vars[name], True)
            i = chan_int_bits(f0)
            x = quantize_chan(x, f0.signed, f0.rounding, f0.overflow, i, fr, self._chan_keep(f0, fr), training)
        elif self.quantized and self.hgq_active and name in self._act_vars:
            from .hgq import round_ste

            x = quantize_f(x, self.fmt(name), round_ste(self._act_vars[name], True), training)
        elif self.quantized:
            x = quantize(x, self.fmt(name), training)
        elif self.calib is not None:
            v = as_numpy(x)
            lo, hi = float(np.min(v)), float(np.max(v))
            old = self.calib.get(name)
            self.calib[name] = [lo, hi] if old is None else [min(old[0], lo), max(old[1], hi)]
        self.tap(name, x)
        return x

    def tap(self, name: str, x: Any) -> None:
        if self.record is not None:
            self.record[name] = as_numpy(x)

    def required_sites(self) -> list[str]:
        """Sites that need a format in quantized mode."""
        return []

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("dtype", None)
        cfg.update(fmts=fmts_to_config(self.fmts), quantized=self.quantized)
        if self.hgq is not None:
            cfg["hgq"] = self.hgq
        if self.hgq_act is not None:
            cfg["hgq_act"] = self.hgq_act
        return cfg

    # ----- HGQ: trainable bits ------------------------------------------------------------------
    def lins(self) -> list[Lin]:
        return list(self._lins)

    def hgq_act_sites(self) -> list[str]:
        """Activation sites whose fractional bits train under HGQ (per tensor)."""
        return []

    def hgq_chan_sites(self) -> dict[str, int]:
        """Activation sites whose bits train per channel (``hgq_act == "channel"``) -> channel counts:
        the trained sites that are token-local requants on the whole channel axis (linear outputs but a
        GELU table's input, a ReLU MLP's hidden layer, residual adds; not attention's per-head ``attn``)."""
        if self.hgq_act != "channel":
            return {}
        outs = {lin.prefix + "out": lin.n_out for lin in self._lins}
        outs.update(self._extra_chan_sites())
        return {s: outs[s] for s in self.hgq_act_sites() if s in outs}

    def _extra_chan_sites(self) -> dict[str, int]:
        return {}

    @staticmethod
    def _chan_keep(fmt: Fmt, f: Any) -> Any:
        """1.0 for the channels whose width (integer bits + ``f``) is at least the minimum (signed 2,
        unsigned 1), else 0.0 (pruned)."""
        from .hgq import chan_int_bits, min_width

        w = chan_int_bits(fmt) + ops.stop_gradient(f)
        return ops.cast(w >= float(min_width(fmt)), DTYPE)

    def build_hgq(self) -> None:
        """Create the bit variables (after every other variable: the order ``.keras`` loading expects):
        weight bits, per-tensor activation bits, then per-channel activation bits (``hgq_act``)."""
        from .hgq import FracRange, act_range, chan_act_range, weight_range

        tracker = getattr(self, "_tracker", None)
        if self.built and tracker is not None:  # Keras locks a built layer's state; HGQ adds to it
            tracker.unlock()
        for lin in self._lins:
            if lin.fvar is None:
                wf = self.fmt(lin.prefix + "w")
                shape = (1, lin.n_out) if self.hgq == "channel" else (lin.n_in, lin.n_out)
                lin.fvar = self.add_weight(name=f"{lin.prefix}wfrac", shape=shape, initializer="zeros",
                                           constraint=FracRange(*weight_range(wf)))
        for site in self.hgq_act_sites():
            if site not in self._act_vars:
                self._act_vars[site] = self.add_weight(name=f"frac_{site}", shape=(), initializer="zeros",
                                                       constraint=FracRange(*act_range(self.fmt(site))))
        for site, c in self.hgq_chan_sites().items():
            if site not in self._chan_vars:
                self._chan_vars[site] = self.add_weight(name=f"chfrac_{site}", shape=(c,), initializer="zeros",
                                                        constraint=FracRange(*chan_act_range(self.fmt(site), c)))
        if self.built and tracker is not None:
            tracker.lock()

    def init_hgq(self) -> None:
        """Bit variables := the current (calibrated) fractional bits."""
        from .hgq import set_frac

        for lin in self._lins:
            set_frac(lin.fvar, self.fmt(lin.prefix + "w").frac)
        for site, v in self._act_vars.items():
            set_frac(v, self.fmt(site).frac)

    def hgq_vars(self) -> list[Any]:
        return ([lin.fvar for lin in self._lins if lin.fvar is not None] + list(self._act_vars.values())
                + list(self._chan_vars.values()))

    def hgq_chan_var(self, site: str) -> Any:
        return self._chan_vars[site]

    def hgq_act_var(self, site: str) -> Any:
        return self._act_vars[site]

    def site_bits(self, site: str) -> Any:
        """Width of ``site`` as a tensor (trainable under active HGQ)."""
        f = self.fmt(site)
        if self.hgq_active and site in self._chan_vars:  # per channel (C,); pruned channels 0
            from .hgq import chan_int_bits, round_ste

            fr = round_ste(self._chan_vars[site], True)
            return ops.maximum(chan_int_bits(f) + fr, 0.0) * self._chan_keep(f, fr)
        if self.hgq_active and site in self._act_vars:
            from .hgq import round_ste

            return ops.maximum(f.int_bits + round_ste(self._act_vars[site], True), 0.0)
        if isinstance(f, ChanFmt):  # frozen per-channel widths (C,)
            return ops.convert_to_tensor(np.asarray([float(w) for w, _ in f.chans]), dtype=DTYPE)
        return ops.convert_to_tensor(float(f.width), dtype=DTYPE)

    def in_fmt(self, src: str | None) -> Fmt:
        """Format of the layer's input (``src`` None) or of its own site ``src``."""
        if src is not None:
            return self.fmt(src)
        if not self.hgq_in:
            raise QuantizationError(f"layer {self.name!r}: input not linked (swinfpga.keras.hgq.link_inputs)")
        up, site = self.hgq_in[0]
        return up.fmt(site)

    def in_bits(self, src: str | None) -> Any:
        if src is not None:
            return self.site_bits(src)
        if not self.hgq_in:
            raise QuantizationError(f"layer {self.name!r}: input not linked (swinfpga.keras.hgq.link_inputs)")
        up, site = self.hgq_in[0]
        return up.site_bits(site)

    def has_ebops(self) -> bool:
        return any(lin.fvar is not None for lin in self._lins) or (self.hgq is not None and self._ln() is not None)

    def _ln(self) -> LNCore | None:
        return getattr(self, "core", None) or getattr(self, "ln", None)

    def lin_tokens(self, lin: Lin) -> int:
        """Token positions per sample each linear runs on."""
        return self._ntok

    def ebops(self) -> Any:
        """HGQ2-style effective bit operations of this layer per sample (see :mod:`swinfpga.keras.hgq`)."""
        e = ops.convert_to_tensor(0.0, dtype=DTYPE)
        for lin in self._lins:
            if lin.fvar is not None:
                e = e + lin.ebops() * float(self.lin_tokens(lin))
        ln = self._ln()
        if ln is not None and self.hgq is not None:  # LayerNorm on the input: (x - mean)**2 per element
            b = self.in_bits(None)
            e = e + chan_sum(b * b, ln.c) * float(self._ln_tokens)
        return e

    def hgq_penalty(self, training: Any) -> None:
        """Add ``beta * EBOPs`` to the training loss (HGQ training only)."""
        if training and self.hgq_active and self.hgq_beta > 0 and self.has_ebops():
            self.add_loss(ops.cast(self.ebops() * self.hgq_beta, keras.config.floatx()))

    # ----- formats ----------------------------------------------------------------------------
    def stat(self, name: str) -> tuple[float, float]:
        if not self.calib or name not in self.calib:
            raise QuantizationError(f"layer {self.name!r}: no calibration statistics for {name!r}")
        lo, hi = self.calib[name]
        return lo, hi


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPS, dtype=DTYPE, name=name)


def _build_bn(bn: keras.layers.BatchNormalization, c: int) -> None:
    bn.build((None, c))


def _apply_bn(bn: keras.layers.BatchNormalization, x: Any, training: Any) -> Any:
    """BatchNorm over all axes but the last (statistics per channel over batch and tokens)."""
    shape = x.shape
    y = bn(ops.reshape(x, (-1, shape[-1])), training=training)
    return ops.reshape(y, (-1, *shape[1:]))


def bn_affine(bn: keras.layers.BatchNormalization) -> tuple[Any, Any]:
    """Frozen BatchNorm as ``x * a + c`` (moving statistics)."""
    a = bn.gamma / ops.sqrt(bn.moving_variance + bn.epsilon)
    return a, bn.beta - bn.moving_mean * a


class Lin:
    """A linear map owned by a :class:`QLayer` (variables created with ``add_weight``).

    Effective (folded) weights: ``W' = scale * a_pre[:, None] * W * a_post``,
    ``b' = scale * ((c_pre @ W + b) * a_post + c_post)`` with BatchNorms as ``x*a + c``.
    """

    def __init__(self, layer: QLayer, prefix: str, n_in: int, n_out: int, bias: bool = True, scale: float = 1.0,
                 pre_bn: keras.layers.BatchNormalization | None = None,
                 post_bn: keras.layers.BatchNormalization | None = None) -> None:
        self.layer, self.prefix, self.scale = layer, prefix, scale
        self.n_in, self.n_out = n_in, n_out
        self.kernel = layer.add_weight(name=f"{prefix}kernel", shape=(n_in, n_out), initializer="glorot_uniform")
        self.bias = layer.add_weight(name=f"{prefix}bias", shape=(n_out,), initializer="zeros") if bias else None
        self.pre_bn, self.post_bn = pre_bn, post_bn
        self.src: str | None = None  # input: the layer's input (None) or one of its sites
        self.fvar: Any = None  # HGQ fractional bits per channel (1, n_out) or per weight (n_in, n_out)
        layer._lins.append(self)

    @property
    def has_bias(self) -> bool:
        return self.bias is not None or self.pre_bn is not None or self.post_bn is not None

    def effective(self) -> tuple[Any, Any | None]:
        w = self.kernel
        b = self.bias
        if self.pre_bn is not None:
            a, c = bn_affine(self.pre_bn)
            cb = ops.matmul(c[None, :], w)[0]
            b = cb if b is None else b + cb
            w = a[:, None] * w
        if self.post_bn is not None:
            a, c = bn_affine(self.post_bn)
            w = w * a[None, :]
            b = c if b is None else b * a + c
        if self.scale != 1.0:
            w = w * self.scale
            b = None if b is None else b * self.scale
        return w, b

    def float_call(self, x: Any) -> Any:
        """Plain float linear (BatchNorms are applied by the owning layer in float mode)."""
        y = ops.matmul(x, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        return y * self.scale if self.scale != 1.0 else y

    def weight_frac(self, train: bool = False) -> Any:
        """HGQ fractional bits of each weight (rounded; straight-through when ``train``)."""
        from .hgq import round_ste

        return round_ste(self.fvar, train)

    def quant_weights(self, training: Any = False) -> tuple[Any, Any | None]:
        w, b = self.effective()
        wf = self.layer.fmt(self.prefix + "w")
        if self.fvar is None:
            wq = quantize(w, wf, training)
        else:  # HGQ: own fraction per channel / weight; zero bits (I + f <= 0) -> 0
            f = self.weight_frac(bool(training) and self.layer.hgq_active)
            wq = ops.where(wf.int_bits + f > 0, quantize_f(w, wf, f, training), 0.0)
        bq = None if b is None else quantize(b, self.layer.fmt(self.prefix + "b"), training)
        return wq, bq

    @property
    def out_fmt(self) -> Fmt:
        """Output format (the site ``<prefix>out``; :class:`swinfpga.keras.fx.KLinear`)."""
        return self.layer.fmt(self.prefix + "out")

    def acc_frac(self, in_fmt: Fmt) -> int:
        return in_fmt.frac + self.layer.fmt(self.prefix + "w").frac

    def sites(self) -> list[str]:
        return [self.prefix + "w", self.prefix + "out"] + ([self.prefix + "b"] if self.has_bias else [])

    def in_fmt(self) -> Fmt:
        return self.layer.in_fmt(self.src)

    def export_w_fmt(self) -> Fmt:
        """The weights' one IR format: calibrated integer bits, the widest trained fraction (HGQ)."""
        wf = self.layer.fmt(self.prefix + "w")
        if self.fvar is None:
            return wf
        from .hgq import frac_np

        f = frac_np(self.fvar)
        live = f[wf.int_bits + f > 0]
        frac = max(int(live.max()) if live.size else 0, 2 - wf.int_bits)
        return Fmt(True, wf.int_bits + frac, wf.int_bits, wf.rounding, wf.overflow)

    def ebops(self) -> Any:
        """``bits_in * sum(bits_w)`` for one token (HGQ2's dense EBOPs)."""
        from .hgq import weight_bits

        train = self.layer.hgq_active
        wq, _ = self.quant_weights(False)
        f = ops.broadcast_to(self.weight_frac(train), (self.n_in, self.n_out))
        wb = weight_bits(wq, f)
        b = self.layer.in_bits(self.src)
        if len(b.shape) == 0:
            return b * ops.sum(wb)
        if int(b.shape[0]) != self.n_in:  # a 2x2 merge: the input channels repeat 4 times
            b = ops.tile(b, (self.n_in // int(b.shape[0]),))
        return ops.sum(b[:, None] * wb)  # bits_in @ bits_w

    # ----- formats / export -----------------------------------------------------------------
    def assign_formats(self, in_fmt: Fmt, act_bits: int = 8, weight_bits: int = 8, bias_bits: int = 12,
                       out_signed: bool = True) -> None:
        w, b = self.effective()
        f = self.layer.fmts
        f[self.prefix + "w"] = fit_param_fmt(as_numpy(w), weight_bits)
        if b is not None:
            f[self.prefix + "b"] = bias_fmt(as_numpy(b), bias_bits, in_fmt.frac + f[self.prefix + "w"].frac)
        lo, hi = self.layer.stat(self.prefix + "out")
        f[self.prefix + "out"] = fit_fmt([lo, hi], act_bits, signed=out_signed)

    def to_ir(self) -> N.Linear:
        """Quantized IR Linear (codes computed by the same Keras ops as the forward pass)."""
        w, b = self.effective()
        wf = self.export_w_fmt()
        check_weight_range(as_numpy(w), wf, f"{self.layer.name}: {self.prefix or ''}weight")
        wq, bq = self.quant_weights(False)
        wc = to_codes(wq, wf)
        if bq is None:
            return N.Linear(wc, wf, None, None, self.layer.fmt(self.prefix + "out"))
        bf = self.layer.fmt(self.prefix + "b")
        check_weight_range(as_numpy(b), bf, f"{self.layer.name}: {self.prefix or ''}bias")
        return N.Linear(wc, wf, to_codes(bq, bf), bf, self.layer.fmt(self.prefix + "out"))


def fit_param_fmt(v: np.ndarray, bits: int) -> Fmt:
    """Signed ``bits``-bit format for parameters ``v`` that none of them saturates after rounding
    (:func:`swinfpga.fixed.fit_fmt` can round the maximum up to one code past the range)."""
    f = fit_fmt(v, bits, signed=True)
    while True:
        try:
            check_weight_range(np.asarray(v), f, "")
            return f
        except FormatError:
            f = f.with_(int_bits=f.int_bits + 1)


def bias_fmt(b: np.ndarray, bits: int, acc_frac: int) -> Fmt:
    """Signed ``bits``-bit bias format covering ``b`` (and at least +-1), with at most ``acc_frac`` fraction bits."""
    ib = max(1, fit_param_fmt(b, bits).int_bits)  # at least +-1: biases grow during QAT
    frac = min(bits - ib, acc_frac)
    return Fmt(True, max(2, ib + frac), ib if ib + frac >= 2 else 2 - frac, "RND", "SAT")


def to_codes(x: Any, fmt: Fmt) -> np.ndarray:
    v = np.ldexp(as_numpy(x).astype(np.float64), fmt.frac)
    c = np.round(v)
    assert np.all(c == v), "quantized values are not on the format grid"
    return c.astype(np.int64)


def check_weight_range(w: np.ndarray, fmt: Fmt, what: str) -> None:
    """Raise if float weights lie beyond ``fmt``'s range (they would saturate: format too narrow)."""
    hi, lo = fmt.max_value + fmt.lsb / 2, fmt.min_value - fmt.lsb / 2
    bad = (w >= hi) | (w < lo)
    if np.any(bad):
        v = float(w[bad].flat[0])
        raise FormatError(
            f"{what}: value {v:.6g} is outside {fmt} (range {fmt.min_value:g}..{fmt.max_value:g}); "
            f"the format is too narrow ({int(np.count_nonzero(bad))} of {w.size} values would saturate) - "
            "widen its integer bits or re-calibrate"
        )


def _relu_fmt(lo_hi: tuple[float, float], bits: int) -> Fmt:
    return fit_fmt([0.0, max(lo_hi[1], 0.0)], bits, signed=False)


# =============================================================================================
@keras.saving.register_keras_serializable(package=PKG)
class QInput(QLayer):
    """Input quantizer: real inputs -> ``fmt`` (the IR ``Input`` node; identity on in-range data)."""

    def __init__(self, fmt: dict[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        if fmt is not None:
            self.fmts["out"] = Fmt.from_json(fmt) if isinstance(fmt, dict) else fmt

    def call(self, x: Any, training: Any = None) -> Any:
        if self.quantized:
            return quantize(x, self.fmt("out"), training)
        return x

    def required_sites(self) -> list[str]:
        return ["out"]

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        return N.Input(self.name, tuple(shape), self.fmt("out"))


def _patches(x: Any, p: int) -> Any:
    """(B, H, W, C) -> (B, H/p, W/p, p*p*C) with patch vector order (dy, dx, c)."""
    _, h, w, c = x.shape
    x = ops.reshape(x, (-1, h // p, p, w // p, p, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, h // p, w // p, p * p * c))


@keras.saving.register_keras_serializable(package=PKG)
class QPatchEmbed(QLayer):
    """Non-overlapping patch embedding (Conv2D kernel=stride=patch as a Linear over (dy, dx, c)).
    ``post_bn``: a BatchNorm after the projection (folded into it when quantized)."""

    def __init__(self, patch: int, embed: int, post_bn: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.patch, self.embed, self.post_bn = int(patch), int(embed), bool(post_bn)

    def build(self, input_shape: Any) -> None:
        _, h, w, c = input_shape
        if h % self.patch or w % self.patch:
            raise ValueError(f"{self.name}: patch {self.patch} does not divide the input {h}x{w}")
        self.bn = _bn("bn") if self.post_bn else None
        if self.bn is not None:
            _build_bn(self.bn, self.embed)
        self.lin = Lin(self, "", self.patch * self.patch * c, self.embed, post_bn=self.bn)
        self._ntok = (h // self.patch) * (w // self.patch)
        if self.hgq:
            self.build_hgq()

    def hgq_act_sites(self) -> list[str]:
        return ["out"]

    def call(self, x: Any, training: Any = None) -> Any:
        self.hgq_penalty(training)
        p = _patches(x, self.patch)
        if self.quantized:
            return op_patch_embed.kernel(KerasFx(self, training), KPatchEmbed(self.name, self.lin), p, CARRIED)
        y = self.lin.float_call(p)
        if self.bn is not None:
            y = _apply_bn(self.bn, y, training)
        return self.site("out", y)

    def required_sites(self) -> list[str]:
        return self.lin.sites()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "patch": self.patch, "embed": self.embed, "post_bn": self.post_bn}

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        self.lin.assign_formats(in_fmts[0], bits["act"], bits["weight"], bits["bias"])

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        return N.PatchEmbed(self.name, srcs[0], self.patch, self.lin.to_ir())


# ----- window helpers (Keras ops) -------------------------------------------------------------
def _k_hw(w: int | tuple[int, int]) -> tuple[int, int]:
    return (w, w) if isinstance(w, int) else (int(w[0]), int(w[1]))


def k_window_partition(x: Any, w: int | tuple[int, int]) -> Any:
    """(B, H, W, C) -> (B, nW, wh*ww, C), windows and tokens row-major."""
    wh, ww = _k_hw(w)
    _, h, wd, c = x.shape
    x = ops.reshape(x, (-1, h // wh, wh, wd // ww, ww, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, (h // wh) * (wd // ww), wh * ww, c))


def k_window_reverse(x: Any, w: int | tuple[int, int], h: int, wd: int) -> Any:
    wh, ww = _k_hw(w)
    c = x.shape[-1]
    x = ops.reshape(x, (-1, h // wh, wd // ww, wh, ww, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, h, wd, c))


@keras.saving.register_keras_serializable(package=PKG)
class QWindowAttention(QLayer):
    """(Shifted-)window multi-head self-attention, Swin semantics (see
    :class:`swinfpga.ir.nodes.WindowAttention`).  ``window``: an int (square; when
    ``min(H, W) <= window`` it shrinks to ``min(H, W)`` and the shift is 0, as in
    microsoft/Swin-Transformer), ``[wh, ww]`` (used exactly as given) or ``"global"`` (the whole
    map, shift 0).  q, k and v are separate ``dim x dim`` linears; ``head_dim**-0.5`` is folded into
    q's weights and bias.  ``pre_bn``: a BatchNorm on the input (the block's norm1), folded into
    q, k, v when quantized.  ``rel_bias``: learn a relative position bias table (else none).
    ``hgq_qk``: under HGQ, q's and k's outputs get trainable bits too (and ``q @ k^T`` counts in EBOPs).
    ``softmax_design``: how :func:`swinfpga.softmax_sizing.design_softmax` sizes the tables (``proven`` for new
    layers; a saved layer without the key was sized ``analytic`` and loads so)."""

    KERNEL_SITES = {"q": "q.out", "k": "k.out", "v": "v.out", "proj": "proj.out"}  # kernel names -> sites

    def __init__(self, heads: int, window: int | list[int] | str, shift: int = 0, pre_bn: bool = False,
                 rel_bias: bool = True, masked: bool = False, hgq_qk: bool = False, softmax_design: str = "proven",
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.softmax_design = str(softmax_design)
        self.hgq_qk = bool(hgq_qk)
        if isinstance(window, str):
            if window != "global":
                raise ValueError(f"window {window!r}: use an int, [wh, ww] or 'global'")
        elif isinstance(window, list | tuple):
            window = [int(window[0]), int(window[1])]
        else:
            window = int(window)
        self.heads, self.window, self.shift, self.pre_bn = int(heads), window, int(shift), bool(pre_bn)
        self.use_rel_bias = bool(rel_bias)
        self.masked = bool(masked)  # called on [x, mask]: padded keys are excluded (QTokenMask)

    def build(self, input_shape: Any) -> None:
        if self.masked:
            input_shape = input_shape[0]
        _, h, w, c = input_shape
        shift = self.shift
        if self.window == "global":
            (wh, ww), shift = (h, w), 0
        elif isinstance(self.window, list):
            wh, ww = self.window
        else:
            wh = ww = self.window
            if min(h, w) <= wh:
                wh = ww = min(h, w)
                shift = 0
        if h % wh or w % ww:
            raise ValueError(
                f"{self.name}: window {wh if wh == ww else f'{wh}x{ww}'} does not divide the resolution {h}x{w}; "
                "pick a window size that divides both sides (or pad the input)"
            )
        if c % self.heads:
            raise ValueError(f"{self.name}: dim {c} is not divisible by {self.heads} heads")
        if not 0 <= shift < min(wh, ww):
            raise ValueError(f"{self.name}: shift {shift} must be in [0, window={min(wh, ww)})")
        win = wh if wh == ww else (wh, ww)
        self.res, self.dim, self.win, self.eff_shift = (h, w), c, win, shift
        self.win_hw = (wh, ww)
        self.head_dim = c // self.heads
        self.bn = _bn("bn") if self.pre_bn else None
        if self.bn is not None:
            _build_bn(self.bn, c)
        scale = self.head_dim**-0.5
        self.q = Lin(self, "q.", c, c, scale=scale, pre_bn=self.bn)
        self.k = Lin(self, "k.", c, c, pre_bn=self.bn)
        self.v = Lin(self, "v.", c, c, pre_bn=self.bn)
        self.rel_bias = self.add_weight(
            name="rel_bias", shape=((2 * wh - 1) * (2 * ww - 1), self.heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        ) if self.use_rel_bias else None
        self.proj = Lin(self, "proj.", c, c)
        self.proj.src = "attn"
        self._ntok = h * w
        if self.hgq:
            self.build_hgq()
        self.rel_index = N.relative_position_index(win).reshape(-1)
        self.valid = N.shift_valid_mask((h, w), win, shift)  # nW, N, N
        self._softmax: SoftmaxSpec | None = None

    @property
    def softmax_spec(self) -> SoftmaxSpec:
        if self._softmax is None or self._softmax.score_fmt != self.fmt("scores"):
            self._softmax = design_softmax(f"{self.name.replace('.', '_')}_softmax", self.fmt("scores"),
                                           self.win_hw[0] * self.win_hw[1], design=self.softmax_design)
        return self._softmax

    def _heads(self, t: Any) -> Any:  # B, nW, N, C -> B, nW, h, N, d
        nw, nt = t.shape[1], t.shape[2]
        return ops.transpose(ops.reshape(t, (-1, nw, nt, self.heads, self.head_dim)), (0, 1, 3, 2, 4))

    def hgq_act_sites(self) -> list[str]:
        return ["v.out", "attn", "proj.out", *(("q.out", "k.out") if self.hgq_qk else ())]

    def ebops(self) -> Any:
        """Linears plus the ``probs @ v`` products (probabilities: the softmax's output width), and
        with ``hgq_qk`` the ``q @ k^T`` products."""
        pairs = self._ntok * self.win_hw[0] * self.win_hw[1]  # (query, key) pairs, each over dim channels
        e = super().ebops() + chan_sum(self.site_bits("v.out"), self.dim) * float(
            pairs * self.softmax_spec.prob_fmt.width)
        if self.hgq_qk:
            e = e + chan_sum(self.site_bits("q.out") * self.site_bits("k.out"), self.dim) * float(pairs)
        return e

    def call(self, x: Any, training: Any = None) -> Any:
        self.hgq_penalty(training)
        mk = None
        if self.masked:
            x, mk = x
        h, w = self.res
        s, win = self.eff_shift, self.win
        qm = self.quantized
        if self.bn is not None and not qm:
            x = _apply_bn(self.bn, x, training)
        if s:
            x = ops.roll(x, (-s, -s), axis=(1, 2))
        xw = k_window_partition(x, win)
        self.tap("windows", xw)
        valid = self.valid[None, :, None]
        if mk is not None:
            if s:
                mk = ops.roll(mk, (-s, -s), axis=(1, 2))
            keys = k_window_partition(mk, win)[..., 0] > 0.5  # B, nW, N
            keys = ops.logical_or(keys, ops.logical_not(ops.any(keys, axis=-1, keepdims=True)))
            valid = ops.logical_and(ops.convert_to_tensor(valid), keys[:, :, None, None, :])
        if qm:
            y = self._quant_windows(xw, valid, training)
        else:
            y = self._float_windows(xw, valid, mk is not None)
        y = k_window_reverse(y, win, h, w)
        if s:
            y = ops.roll(y, (s, s), axis=(1, 2))
        return y

    def _bias(self, table: Any) -> Any:
        """(heads, N, N) relative position bias gathered from ``table`` (Swin's relative index)."""
        nt = self.win_hw[0] * self.win_hw[1]
        bias = ops.take(table, self.rel_index, axis=0)
        return ops.transpose(ops.reshape(bias, (nt, nt, self.heads)), (2, 0, 1))

    def _quant_windows(self, xw: Any, valid: Any, training: Any) -> Any:
        """Windows (B, nW, N, C) -> projected (B, nW, N, C): ``ops.window_attention.qkv``, ``core`` and
        the projection kernel on :class:`KerasFx` (the golden handler's steps between partition and reverse)."""
        A = KerasFx(self, training, self.KERNEL_SITES)  # noqa: N806
        bias_fmt = self.fmt("rel_bias") if self.rel_bias is not None else CARRIED
        n = KWindowAttention(self.name, self.heads, self.q, self.k, self.v, bias_fmt, self.fmt("scores"),
                             self.softmax_spec, self.fmt("attn"), self.proj)
        q, k, v = op_window_attention.qkv(A, n, xw, CARRIED)
        # no table: the golden model adds zero codes (``bias_matrix``); x + 0.0 is x
        bias = self._bias(self.site("rel_bias", self.rel_bias, training)) if self.rel_bias is not None else 0.0
        o = op_window_attention.core(A, n, q, k, v, valid, bias)
        return op_linear.kernel(A, n.proj, o, n.attn_fmt, f"{self.name}.proj")

    def _float_windows(self, xw: Any, valid: Any, tensor_valid: bool) -> Any:
        """Float Swin attention on windows (B, nW, N, C) (additive ``-100`` mask, float softmax)."""
        nt = self.win_hw[0] * self.win_hw[1]
        q, k, v = (self.site(p + "out", lin.float_call(xw)) for p, lin in (("q.", self.q), ("k.", self.k),
                                                                            ("v.", self.v)))
        qh, kh, vh = self._heads(q), self._heads(k), self._heads(v)
        scores = ops.einsum("bwhid,bwhjd->bwhij", qh, kh)
        if self.rel_bias is not None:
            scores = scores + self._bias(self.site("rel_bias", self.rel_bias))[None, None]
        scores = self.site("scores", scores)
        if not tensor_valid:
            masked = scores + np.where(valid, 0.0, MASK_VALUE)
        else:
            masked = scores + ops.cast(ops.where(valid, 0.0, MASK_VALUE), scores.dtype)
        probs = ops.softmax(masked, axis=-1) if nt > 1 else ops.ones_like(masked)
        self.tap("probs", probs)
        o = self.site("attn", ops.einsum("bwhij,bwhjd->bwhid", probs, vh))
        o = ops.reshape(ops.transpose(o, (0, 1, 3, 2, 4)), (-1, o.shape[1], nt, self.dim))
        return self.site("proj.out", self.proj.float_call(o))

    def required_sites(self) -> list[str]:
        rb = ["rel_bias"] if self.use_rel_bias else []
        return [*self.q.sites(), *self.k.sites(), *self.v.sites(), *self.proj.sites(), *rb, "scores", "attn"]

    def get_config(self) -> dict[str, Any]:
        cfg = {**super().get_config(), "heads": self.heads, "window": self.window, "shift": self.shift,
               "pre_bn": self.pre_bn}
        if not self.use_rel_bias:  # only when off: configs of existing models stay as they were
            cfg["rel_bias"] = False
        if self.masked:
            cfg["masked"] = True
        if self.hgq_qk:
            cfg["hgq_qk"] = True
        if self.softmax_design != "analytic":  # saved configs without the key load as "analytic"
            cfg["softmax_design"] = self.softmax_design
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> QWindowAttention:
        return super().from_config({"softmax_design": "analytic", **config})

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        x = in_fmts[0]
        for lin in (self.q, self.k, self.v):
            lin.assign_formats(x, bits["act"], bits["weight"], bits["bias"])
        f = self.fmts
        qk_frac = f["q.out"].frac + f["k.out"].frac
        if self.rel_bias is not None:
            rb = fit_param_fmt(np.append(as_numpy(self.rel_bias), 0.99), bits["weight"])  # >= +-1
            if rb.frac > qk_frac:  # the bias is aligned to the q.k accumulator: no more fraction bits
                rb = Fmt(True, rb.width, rb.width - qk_frac, "RND", "SAT")
            f["rel_bias"] = rb
        f["scores"] = fit_fmt(self.stat("scores"), bits["score"], signed=True)
        f["attn"] = fit_fmt(self.stat("attn"), bits["act"], signed=True)
        self.proj.assign_formats(f["attn"], bits["act"], bits["weight"], bits["bias"])

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        if self.rel_bias is not None:
            rb_fmt = self.fmt("rel_bias")
            check_weight_range(as_numpy(self.rel_bias), rb_fmt, f"{self.name}: relative position bias")
            rb = to_codes(quantize(self.rel_bias, rb_fmt), rb_fmt)
        else:  # no table: a placeholder format (unused; IR rel_bias None)
            rb_fmt, rb = Fmt(True, 8, 2, "RND", "SAT"), None
        return N.WindowAttention(
            self.name, srcs[0], self.res, self.dim, self.heads, self.win, self.eff_shift,
            q=self.q.to_ir(), k=self.k.to_ir(), v=self.v.to_ir(), rel_bias=rb, bias_fmt=rb_fmt,
            score_fmt=self.fmt("scores"), softmax=self.softmax_spec, attn_fmt=self.fmt("attn"), proj=self.proj.to_ir(),
            mask=srcs[1] if self.masked else None,
        )


@keras.saving.register_keras_serializable(package=PKG)
class QMlp(QLayer):
    """fc1 -> ReLU (requant to ``hidden``) or GELU (table over fc1's output format) -> fc2.
    ``pre_bn``: BatchNorm on the input (norm2), folded into fc1 when quantized."""

    KERNEL_SITES = {"fc1": "fc1.out", "act": "hidden", "fc2": "fc2.out"}  # ops.mlp.kernel's names -> sites

    def __init__(self, hidden: int, act: str = "relu", pre_bn: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        if act not in ("relu", "gelu"):
            raise ValueError(f"{self.name}: activation {act!r} unsupported; use relu or gelu")
        self.hidden, self.act, self.pre_bn = int(hidden), act, bool(pre_bn)
        self._gelu = None

    def build(self, input_shape: Any) -> None:
        c = input_shape[-1]
        self.bn = _bn("bn") if self.pre_bn else None
        if self.bn is not None:
            _build_bn(self.bn, c)
        self.fc1 = Lin(self, "fc1.", c, self.hidden, pre_bn=self.bn)
        self.fc2 = Lin(self, "fc2.", self.hidden, c)
        self.fc2.src = "hidden"
        self._ntok = int(np.prod(input_shape[1:-1]))
        if self.hgq:
            self.build_hgq()

    def hgq_act_sites(self) -> list[str]:
        return ["fc1.out", "hidden", "fc2.out"] if self.act == "relu" else ["fc2.out"]

    def _extra_chan_sites(self) -> dict[str, int]:
        return {"hidden": self.fc1.n_out} if self.act == "relu" else {}

    @property
    def gelu_lut(self) -> Any:
        key = (self.fmt("fc1.out"), self.fmt("hidden"))
        if self._gelu is None or (self._gelu.in_fmt, self._gelu.out_fmt) != key:
            self._gelu = gelu_table(f"{self.name.replace('.', '_')}_gelu", *key)
        return self._gelu

    def call(self, x: Any, training: Any = None) -> Any:
        self.hgq_penalty(training)
        if self.quantized:
            n = KMlp(self.name, self.fc1, self.act, self.fmt("hidden"),
                     Table(self.gelu_lut, gelu) if self.act == "gelu" else None, self.fc2)
            return op_mlp.kernel(KerasFx(self, training, self.KERNEL_SITES), n, x, CARRIED)
        if self.bn is not None:
            x = _apply_bn(self.bn, x, training)
        h = self.site("fc1.out", self.fc1.float_call(x))
        h = ops.relu(h) if self.act == "relu" else gelu(h)
        h = self.site("hidden", h)
        return self.site("fc2.out", self.fc2.float_call(h))

    def required_sites(self) -> list[str]:
        return [*self.fc1.sites(), "hidden", *self.fc2.sites()]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden": self.hidden, "act": self.act, "pre_bn": self.pre_bn}

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        self.fc1.assign_formats(in_fmts[0], bits["act"], bits["weight"], bits["bias"])
        if self.act == "relu":
            self.fmts["hidden"] = _relu_fmt(self.stat("hidden"), bits["act"])
        else:
            self.fmts["hidden"] = fit_fmt(self.stat("hidden"), bits["act"], signed=True)
        self.fc2.assign_formats(self.fmts["hidden"], bits["act"], bits["weight"], bits["bias"])

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        return N.Mlp(self.name, srcs[0], self.fc1.to_ir(), self.act, self.fmt("hidden"), self.fc2.to_ir(),
                     gelu=self.gelu_lut if self.act == "gelu" else None)


class LNCore:
    """LayerNorm over the last axis owned by a layer: float (eps 1e-5) or the integer steps of
    :class:`swinfpga.ir.nodes.LayerNorm` (sites ``<prefix>mean|var|norm|gamma|beta|out``)."""

    def __init__(self, layer: QLayer, prefix: str, c: int) -> None:
        self.layer, self.prefix, self.c = layer, prefix, c
        self.gamma = layer.add_weight(name=f"{prefix}gamma", shape=(c,), initializer="ones")
        self.beta = layer.add_weight(name=f"{prefix}beta", shape=(c,), initializer="zeros")
        self.inv_c = round(2**LN_INV_FRAC / c)
        self._rsqrt = None

    @property
    def rsqrt_lut(self) -> Any:
        L = self.layer  # noqa: N806
        p = self.prefix
        key = (L.fmt(p + "var"), L.fmt(p + "rsqrt"))
        if self._rsqrt is None or (self._rsqrt.in_fmt, self._rsqrt.out_fmt) != key:
            nm = (L.name + ("." + p.rstrip(".") if p else "")).replace(".", "_")
            self._rsqrt = rsqrt_table(f"{nm}_rsqrt", key[0], 10, LN_EPS, key[1])
        return self._rsqrt

    def call(self, x: Any, training: Any = None) -> Any:
        L, p = self.layer, self.prefix  # noqa: N806
        if not L.quantized:
            mean = L.site(p + "mean", ops.mean(x, axis=-1, keepdims=True))
            d = x - mean
            var = L.site(p + "var", ops.mean(d * d, axis=-1, keepdims=True))
            y = L.site(p + "norm", d / ops.sqrt(var + LN_EPS))
            return L.site(p + "out", y * self.gamma + self.beta)
        n = self.knode()
        return op_layer_norm.kernel(KerasFx(L, training, {p.rstrip("."): p + "out"} if p else None), n, x, CARRIED)

    def knode(self) -> KLayerNorm:
        """The node :func:`swinfpga.ops.layer_norm.kernel` reads (named as in :meth:`to_ir`)."""
        L, p = self.layer, self.prefix  # noqa: N806
        return KLayerNorm(
            L.name + ("." + p.rstrip(".") if p else ""), self.inv_c, LN_INV_FRAC, L.fmt(p + "mean"), L.fmt(p + "var"),
            Table(self.rsqrt_lut, lambda v: 1.0 / ops.sqrt(v + LN_EPS)), L.fmt(p + "norm"),
            Param(p + "gamma", self.gamma), L.fmt(p + "gamma"), Param(p + "beta", self.beta), L.fmt(p + "beta"),
            L.fmt(p + "out"))

    def sites(self) -> list[str]:
        return [self.prefix + s for s in ("mean", "var", "rsqrt", "norm", "gamma", "beta", "out")]

    def assign_formats(self, in_fmt: Fmt, bits: dict[str, int]) -> None:
        L, p, f = self.layer, self.prefix, self.layer.fmts  # noqa: N806
        f[p + "mean"] = Fmt(True, in_fmt.width + 4 + int(not in_fmt.signed), in_fmt.int_bits + int(not in_fmt.signed),
                            "TRN", "SAT")
        vlo, vhi = L.stat(p + "var")
        vib = max(1, math.floor(math.log2(max(vhi, 2.0**-20))) + 1)
        f[p + "var"] = Fmt(False, 16, vib, "TRN", "SAT")
        rs_max = 1.0 / math.sqrt(max(vlo, 0.0) + LN_EPS)
        f[p + "rsqrt"] = fit_fmt([rs_max], 12, signed=False)
        f[p + "norm"] = fit_fmt(L.stat(p + "norm"), 10, signed=True)
        f[p + "gamma"] = fit_param_fmt(as_numpy(self.gamma), bits["weight"])
        f[p + "beta"] = fit_param_fmt(np.append(as_numpy(self.beta), 0.49), bits["weight"])  # >= +-0.5
        f[p + "out"] = fit_fmt(L.stat(p + "out"), bits["act"], signed=True)

    def to_ir(self, name: str, src: str) -> N.LayerNorm:
        L, p = self.layer, self.prefix  # noqa: N806
        gf, bf = L.fmt(p + "gamma"), L.fmt(p + "beta")
        check_weight_range(as_numpy(self.gamma), gf, f"{name}: gamma")
        check_weight_range(as_numpy(self.beta), bf, f"{name}: beta")
        return N.LayerNorm(
            name, src, self.inv_c, LN_INV_FRAC, L.fmt(p + "mean"), L.fmt(p + "var"), self.rsqrt_lut, L.fmt(p + "norm"),
            to_codes(quantize(self.gamma, gf), gf), gf, to_codes(quantize(self.beta, bf), bf), bf, L.fmt(p + "out"),
        )


@keras.saving.register_keras_serializable(package=PKG)
class QLayerNorm(QLayer):
    """LayerNorm over channels (float: eps 1e-5; quantized: integer steps with an rsqrt table)."""

    def build(self, input_shape: Any) -> None:
        self.core = LNCore(self, "", int(input_shape[-1]))
        self._ln_tokens = int(np.prod(input_shape[1:-1]))

    def call(self, x: Any, training: Any = None) -> Any:
        self.hgq_penalty(training)
        return self.core.call(x, training)


    def required_sites(self) -> list[str]:
        return self.core.sites()

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        self.core.assign_formats(in_fmts[0], bits)

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        return self.core.to_ir(self.name, srcs[0])


@keras.saving.register_keras_serializable(package=PKG)
class QPatchMerging(QLayer):
    """(H, W, C) -> concat(x0, x1, x2, x3) -> norm (``bn``: folded BatchNorm; ``ln``: LayerNorm)
    -> Linear(4C -> out_dim) (bias only when a BatchNorm is folded into it, as Swin's reduction)."""

    def __init__(self, out_dim: int, norm: str = "ln", **kw: Any) -> None:
        super().__init__(**kw)
        if norm not in ("bn", "ln"):
            raise ValueError(f"{self.name}: norm {norm!r} unsupported; use bn or ln")
        self.out_dim, self.norm = int(out_dim), norm

    def build(self, input_shape: Any) -> None:
        _, h, w, c = input_shape
        if h % 2 or w % 2:
            raise ValueError(
                f"{self.name}: patch merging needs an even resolution, got {h}x{w}; "
                "change the patch size or the number of stages"
            )
        self.bn = _bn("bn") if self.norm == "bn" else None
        if self.bn is not None:
            _build_bn(self.bn, 4 * c)
        self.ln = LNCore(self, "norm.", 4 * c) if self.norm == "ln" else None
        self.lin = Lin(self, "", 4 * c, self.out_dim, bias=False, pre_bn=self.bn)
        self.lin.src = "norm.out" if self.ln is not None else None
        self._ntok = (h // 2) * (w // 2)
        self._ln_tokens = self._ntok
        if self.hgq:
            self.build_hgq()

    def hgq_act_sites(self) -> list[str]:
        return ["out"]

    def call(self, x: Any, training: Any = None) -> Any:
        self.hgq_penalty(training)
        x0, x1, x2, x3 = x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]
        cat = ops.concatenate([x0, x1, x2, x3], axis=-1)
        if self.quantized:
            norm = self.ln.knode() if self.ln is not None else None
            fx = KerasFx(self, training, {"norm": "norm.out"})
            return op_patch_merging.kernel(fx, KPatchMerging(self.name, self.lin, norm), cat, CARRIED)
        if self.ln is not None:
            cat = self.ln.call(cat, training)
        if self.bn is not None:
            cat = _apply_bn(self.bn, cat, training)
        return self.site("out", self.lin.float_call(cat))

    def required_sites(self) -> list[str]:
        return [*(self.ln.sites() if self.ln else []), *self.lin.sites()]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "out_dim": self.out_dim, "norm": self.norm}

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        x = in_fmts[0]
        if self.ln is not None:
            self.ln.assign_formats(x, bits)
            x = self.fmts["norm.out"]
        self.lin.assign_formats(x, bits["act"], bits["weight"], bits["bias"])

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        norm = self.ln.to_ir(f"{self.name}.norm", srcs[0]) if self.ln is not None else None
        return N.PatchMerging(self.name, srcs[0], self.lin.to_ir(), norm)


@keras.saving.register_keras_serializable(package=PKG)
class QAdd(QLayer):
    """Residual add ``[a, b]`` -> requant to ``out`` (exact sum of the aligned operands)."""

    def build(self, input_shape: Any) -> None:
        self._c = int(input_shape[0][-1])
        if self.hgq:
            self.build_hgq()

    def hgq_act_sites(self) -> list[str]:
        return ["out"]

    def _extra_chan_sites(self) -> dict[str, int]:
        return {"out": self._c}

    def call(self, inputs: Any, training: Any = None) -> Any:
        a, b = inputs
        if self.quantized:
            return op_add.kernel(KerasFx(self, training), KAdd(self.name, self.fmt("out")), a, CARRIED, b, CARRIED)
        return self.site("out", a + b, training)

    def required_sites(self) -> list[str]:
        return ["out"]

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        self.fmts["out"] = fit_fmt(self.stat("out"), bits["act"], signed=True)

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        return N.Add(self.name, srcs[0], srcs[1], self.fmt("out"))


def pool_constants(npos: int) -> tuple[int, int]:
    """(inv_n, inv_frac) of the average pool over ``npos`` tokens (exact for powers of two)."""
    inv_frac = max(0, math.ceil(math.log2(npos))) + (0 if npos & (npos - 1) == 0 else 12)
    return round(2**inv_frac / npos), inv_frac


@keras.saving.register_keras_serializable(package=PKG)
class QTokenMask(QLayer):
    """Padding mask (the IR ``TokenMask``): (B, H, W, C) input -> (B, H, W, 1), 1.0 for a real
    token, 0.0 for padding (all C features 0).  Read it from the QInput output."""

    def build(self, input_shape: Any) -> None:
        self.fmts["out"] = N.MASK_FMT

    def call(self, x: Any, training: Any = None) -> Any:
        return op_token_mask.kernel(KerasFx(self, training), KTokenMask(self.name), x)

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        self.fmts["out"] = N.MASK_FMT

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        return N.TokenMask(self.name, srcs[0])


@keras.saving.register_keras_serializable(package=PKG)
class QPool(QLayer):
    """Global average pool over tokens: (B, H, W, C) -> (B, C); quantized: sum * inv_n requant."""

    def __init__(self, masked: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.masked = bool(masked)  # called on [x, mask]: the mean over real tokens only

    def build(self, input_shape: Any) -> None:
        if self.masked:
            input_shape = input_shape[0]
        self.npos = int(input_shape[1]) * int(input_shape[2])
        self.inv_n, self.inv_frac = pool_constants(self.npos)
        if self.masked:
            self.inv_frac, self.inv_table = N.masked_pool_table(self.npos)
        if self.hgq:
            self.build_hgq()

    def hgq_act_sites(self) -> list[str]:
        return ["out"]

    def call(self, x: Any, training: Any = None) -> Any:
        mk = None
        if self.masked:
            x, mk = x
        if self.quantized:  # tokens (B, T, C), keep bits (B, T, 1)
            n = KPool(self.name, self.inv_n, self.inv_frac, self.fmt("out"), self.inv_table if self.masked else None)
            keep = None if mk is None else ops.reshape(mk, (-1, self.npos, 1))
            return op_pool.kernel(KerasFx(self, training), n, ops.reshape(x, (-1, self.npos, x.shape[-1])), CARRIED,
                                  keep)
        if mk is not None:
            s = ops.sum(x * mk, axis=(1, 2))
            cnt = ops.sum(mk, axis=(1, 2))  # B, 1
            return self.site("out", s / ops.maximum(cnt, 1.0))
        return self.site("out", ops.mean(x, axis=(1, 2)))

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        if self.masked:
            cfg["masked"] = True
        return cfg

    def required_sites(self) -> list[str]:
        return ["out"]

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        self.fmts["out"] = fit_fmt(self.stat("out"), bits["act"], signed=in_fmts[0].signed)

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        if self.masked:
            return N.Pool(self.name, srcs[0], self.inv_n, self.inv_frac, self.fmt("out"), mask=srcs[1],
                          inv_table=self.inv_table)
        return N.Pool(self.name, srcs[0], self.inv_n, self.inv_frac, self.fmt("out"))


@keras.saving.register_keras_serializable(package=PKG)
class QDense(QLayer):
    """Dense on the last axis; ``pre_bn``: BatchNorm on the input (folded when quantized)."""

    def __init__(self, units: int, pre_bn: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.units, self.pre_bn = int(units), bool(pre_bn)

    def build(self, input_shape: Any) -> None:
        c = int(input_shape[-1])
        self.bn = _bn("bn") if self.pre_bn else None
        if self.bn is not None:
            _build_bn(self.bn, c)
        self.lin = Lin(self, "", c, self.units, pre_bn=self.bn)
        if self.hgq:
            self.build_hgq()

    def call(self, x: Any, training: Any = None) -> Any:
        self.hgq_penalty(training)
        if self.quantized:
            return op_dense.kernel(KerasFx(self, training), KDense(self.name, self.lin), x, CARRIED)
        if self.bn is not None:
            x = _apply_bn(self.bn, x, training)
        return self.site("out", self.lin.float_call(x))

    def required_sites(self) -> list[str]:
        return self.lin.sites()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "pre_bn": self.pre_bn}

    def assign_formats(self, in_fmts: list[Fmt], bits: dict[str, int]) -> None:
        self.lin.assign_formats(in_fmts[0], bits["logit"], bits["weight"], bits["bias"])

    def to_ir(self, srcs: list[str], shape: tuple[int, ...]) -> N.Node:
        return N.Dense(self.name, srcs[0], self.lin.to_ir())


SUPPORTED = (QInput, QPatchEmbed, QWindowAttention, QMlp, QLayerNorm, QPatchMerging, QAdd, QPool, QDense,
             QTokenMask)
