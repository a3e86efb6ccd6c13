"""Keras 3 model of HGQ2 layers -> IR, bit-exact against HGQ2's own quantized inference.

Supported (a token-sequence classifier or an MLP): a ``(tokens, features)`` or ``(features,)`` Keras
input, ``QDense`` / ``QBatchNormDense`` (linear or ReLU; also a separate ``ReLU``), ``QEinsumDense``
with a dense equation on the last axis, ``QMultiHeadAttention`` self-attention (global over all
tokens; its ``QSoftmax`` becomes a softmax of kind ``hgq2`` whose tables are HGQ2's own), ``QAdd`` /
``Add`` residuals, ``QGlobalAveragePooling1D`` / ``GlobalAveragePooling1D`` (any token count; the
mean's integer multiplier is verified exhaustively), ``Dropout``.  A sequence of N tokens is the IR's
``(N, 1)`` token map; attention is one ``(N, 1)`` window without a position bias.

How HGQ2's quantizers map to IR formats:

* HGQ2 quantizes a tensor where it is *consumed* (a layer's input quantizer ``iq``) and optionally
  where it is produced (``oq``).  A producer's IR ``out_fmt`` is its ``oq`` format, else the one
  ``iq`` format all its consumers share, else its exact accumulator format (no rounding, no
  overflow); a consumer whose ``iq`` still changes codes gets a requantizing node in front
  (``<layer>_iq``: a Dense with identity weights).
* A data quantizer (k, i, f: keep-negative, integer bits without sign, fraction bits) becomes
  ``Fmt.from_kif(k, i, f)`` with its rounding (``RND`` = round half up, ``TRN``) and overflow
  (``WRAP``, ``SAT``, ``SAT_SYM``); HGQ2 applies them exactly as :class:`swinfpga.fixed.Fmt`.
  Per-element (heterogeneous) data formats are accepted only when every element has the same
  (k, i, f) or the tensor's exact range fits every element's format at one fraction width (then
  the enclosing format gives the same codes); otherwise the layer is refused by name.
* Weights and biases are constants: HGQ2's quantized values are exported as codes of the
  narrowest format that holds all of them exactly (per-element bit widths included).

Float32 caveat: HGQ2 computes in float32; it equals the integer semantics as long as every
accumulator fits a float32 mantissa (24 bits), which :func:`from_hgq2_model` checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..fixed import ChanFmt, Fmt, FormatError, acc_fmt
from ..ir import Model
from ..ir import nodes as N
from ..lut import Lut, SoftmaxSpec
from .errors import KerasFrontendError

F32_BITS = 24  # float32 mantissa: HGQ2's float arithmetic is exact below this accumulator width
MAX_TABLE_BITS = 16
CHECK_INPUTS = 256  # random inputs on which every import is compared with HGQ2's own inference


class Hgq2ImportError(KerasFrontendError):
    """An HGQ2 model uses a layer or quantizer configuration swinfpga cannot reproduce exactly."""


SUPPORTED = ("QDense", "QBatchNormDense", "QEinsumDense", "Dropout", "ReLU", "Activation (relu / linear)",
             "QMultiHeadAttention", "QAdd", "Add", "QGlobalAveragePooling1D", "GlobalAveragePooling1D")


def is_hgq2_model(model: Any) -> bool:
    """Whether a Keras model contains HGQ2 layers (classes from the ``hgq`` package)."""
    return any(type(layer).__module__.split(".")[0] == "hgq" for layer in getattr(model, "layers", ()))


@dataclass(frozen=True)
class _Tensor:
    """A Keras tensor's IR counterpart: the node holding it, its format, and the exact code range."""

    node: str
    fmt: Fmt
    lo: int
    hi: int
    ch: int  # channels (last axis)


# ----- quantizers ---------------------------------------------------------------------------------
def _np(t: Any) -> np.ndarray:
    from keras import ops

    return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)


def _modes(q: Any, where: str) -> tuple[str, str]:
    inner = q.quantizer
    rm = str(inner.round_mode).upper()
    rm = rm.removeprefix("S_")  # stochastic rounding is a training-time mode; inference rounds
    if rm not in ("RND", "TRN"):
        raise Hgq2ImportError(f"{where}: round mode {inner.round_mode!r} has no swinfpga equivalent; "
                              "use RND (round half up) or TRN")
    om = str(inner.overflow_mode).upper()
    if om not in ("WRAP", "SAT", "SAT_SYM"):
        raise Hgq2ImportError(f"{where}: overflow mode {inner.overflow_mode!r} has no swinfpga equivalent; "
                              "use WRAP, SAT or SAT_SYM")
    return rm, om


def _kif(q: Any, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from hgq.quantizer.internal.fixed_point_quantizer import FixedPointQuantizerBase

    if not isinstance(q.quantizer, FixedPointQuantizerBase):
        raise Hgq2ImportError(f"{where}: quantizer {type(q.quantizer).__name__} is not fixed point; "
                              "swinfpga imports fixed-point (kif / kbi) quantizers only")
    if q.scaler is not None or q.affine is not None:
        raise Hgq2ImportError(f"{where}: quantizer with scaler/affine is not a plain fixed-point format")
    k, i, f = (np.round(_np(t)) for t in q.quantizer.kif)
    k, i, f = np.broadcast_arrays(k, i, f)
    return k.astype(np.int64), i.astype(np.int64), f.astype(np.int64)


def data_fmt(q: Any, where: str, in_range: tuple[int, int, int] | None = None, chans: int | None = None) -> Fmt:
    """:class:`Fmt` of an HGQ2 data quantizer ``q`` (``hgq.quantizer.Quantizer``).

    Heterogeneous (per-element) formats are accepted if they give the same codes as one format:
    all elements equal, or (``in_range`` = ``(lo, hi, frac)`` of the codes reaching the quantizer)
    one fraction width and every element's range holding the rounded input range.  Where the tensor
    may carry per-channel formats (``chans`` = its channel count), formats that differ only along the
    last axis become a :class:`~swinfpga.fixed.ChanFmt` (channels at 0 bits: pruned, always 0)."""
    rm, om = _modes(q, where)
    k, i, f = _kif(q, where)
    b = k + i + f
    if chans is not None:
        per_ch = _per_channel(k, i, f, chans)
        if per_ch is not None and len(set(per_ch)) > 1:
            return _chan_fmt(per_ch, rm, om, where)
    if np.any(b <= 0):
        raise Hgq2ImportError(f"{where}: {int(np.sum(b <= 0))} element(s) have 0 bits (HGQ2 prunes them to 0); "
                              "swinfpga prunes whole channels only (quantizers of token-local layer outputs): "
                              "retrain without pruning this tensor, or with the same bits on every token")
    trip = {(int(a), int(c), int(d)) for a, c, d in zip(k.ravel(), i.ravel(), f.ravel(), strict=True)}
    if len(trip) == 1:
        kk, ii, ff = trip.pop()
        return _fmt(kk, ii, ff, rm, om, where)
    fr = {t[2] for t in trip}
    if len(fr) == 1 and in_range is not None:
        ff = fr.pop()
        lo, hi, fin = in_range
        probe = Fmt(True, 62, 62 - ff, rm, "WRAP")
        rlo, rhi = (int(c) for c in probe.requant(np.array([lo, hi]), fin))
        fmts = [_fmt(kk, ii, ff, rm, om, where) for kk, ii, _ in trip]
        if all(fm.min_code <= rlo and rhi <= fm.max_code for fm in fmts):
            kk = max(t[0] for t in trip)
            ii = max(t[1] for t in trip)
            return _fmt(kk, ii, ff, rm, om, where)
    ks, is_, fs = sorted({t[0] for t in trip}), sorted({t[1] for t in trip}), sorted({t[2] for t in trip})
    raise Hgq2ImportError(
        f"{where}: per-element (heterogeneous) formats that no single format reproduces exactly "
        f"(k in {ks}, i in [{is_[0]}, {is_[-1]}], f in [{fs[0]}, {fs[-1]}] over {k.size} elements); swinfpga needs "
        "one fixed-point format per activation tensor, or per channel on token-local layer outputs: train this "
        "quantizer per tensor, e.g. QuantizerConfigScope(place='datalane', heterogeneous_axis=()), or per channel "
        "(the same bits on every token)"
    )


def _per_channel(k: np.ndarray, i: np.ndarray, f: np.ndarray, chans: int) -> list[tuple[int, int, int]] | None:
    """Per-channel (k, i, f) when the element formats vary along the last axis only (None otherwise)."""
    if k.ndim == 0 or k.shape[-1] != chans:
        return None
    flat = [a.reshape(-1, chans) for a in (k, i, f)]
    if any(np.any(a != a[:1]) for a in flat):
        return None
    return [(int(a), int(c), int(d)) for a, c, d in zip(flat[0][0], flat[1][0], flat[2][0], strict=True)]


def _chan_fmt(per_ch: list[tuple[int, int, int]], rm: str, om: str, where: str) -> Fmt:
    """The :class:`ChanFmt` of per-channel HGQ2 (k, i, f).  A channel is pruned (always 0) where HGQ2's
    quantizer outputs only 0: unsigned with ``i + f <= 0``; a signed channel keeps its sign bit (HGQ2's
    quantizer then still outputs ``-2**(i-1)``-style values), so it is a 1-bit (or wider) format."""
    dead = [kk == 0 and ii + ff <= 0 for kk, ii, ff in per_ch]
    signs = {kk for (kk, _, _), d in zip(per_ch, dead, strict=True) if not d}
    if len(signs) > 1:
        raise Hgq2ImportError(f"{where}: per-channel formats mix signed and unsigned channels; swinfpga's per-channel "
                              "format has one sign: keep k the same on every channel (e.g. all signed)")
    chans = []
    for (kk, ii, ff), d in zip(per_ch, dead, strict=True):
        if d:
            chans.append((0, 0))
        else:
            fm = _fmt(kk, ii, ff, rm, om, where)
            chans.append((fm.width, fm.int_bits))
    try:
        return ChanFmt.union(bool(signs.pop()) if signs else True, chans, rm, om)
    except FormatError as e:
        raise Hgq2ImportError(f"{where}: per-channel formats: {e}") from None


def _fmt(k: int, i: int, f: int, rm: str, om: str, where: str) -> Fmt:
    try:
        return Fmt.from_kif(k, max(i, -f), f, rm, om)
    except FormatError as e:
        raise Hgq2ImportError(f"{where}: format k={k}, i={i}, f={f} ({rm}, {om}): {e}") from None


def const_codes(values: Any, where: str, min_frac: int | None = None) -> tuple[np.ndarray, Fmt]:
    """Exact codes and the narrowest format of quantized constants (weights / biases, any per-element
    bit widths).  ``min_frac`` forces at least that many fraction bits."""
    v = np.asarray(values, dtype=np.float64)
    nz = v[v != 0]
    frac = -60 if nz.size == 0 else 0
    for fb in range(-30, 40):
        if np.all(np.ldexp(nz, fb) == np.round(np.ldexp(nz, fb))):
            frac = fb
            break
    else:
        raise Hgq2ImportError(f"{where}: quantized values are not fixed-point numbers (more than 40 fraction bits)")
    if nz.size == 0:
        frac = 0
    if min_frac is not None:
        frac = max(frac, min_frac)
    codes = np.round(np.ldexp(v, frac)).astype(np.int64)
    lo, hi = int(codes.min(initial=0)), int(codes.max(initial=0))
    fm = acc_fmt(lo, hi, frac)
    if fm.signed and fm.width < 2:
        fm = Fmt(True, 2, 2 - frac)
    return codes, fm


# ----- graph helpers ---------------------------------------------------------------------------
def _inputs(layer: Any) -> list[str]:
    if len(layer._inbound_nodes) != 1:
        raise Hgq2ImportError(f"layer {layer.name!r} ({type(layer).__name__}) is called "
                              f"{len(layer._inbound_nodes)} times; shared layers are not supported")
    return [t._keras_history.operation.name for t in layer._inbound_nodes[0].input_tensors]


def _exact(lo: int, hi: int, frac: int) -> Fmt:
    return acc_fmt(min(lo, 0), max(hi, 0), frac)


def _range_after(fmt: Fmt, lo: int, hi: int, frac: int) -> tuple[int, int]:
    """Code range of ``fmt.requant`` applied to codes in [lo, hi] at ``frac`` (monotone except WRAP;
    a per-channel format: its container's whole range, a bound that holds on every channel)."""
    if fmt.container is not fmt:
        return fmt.min_code, fmt.max_code
    if fmt.overflow == "WRAP":
        probe = Fmt(True, 62, 62 - fmt.frac, fmt.rounding, "WRAP")
        a, b = (int(c) for c in probe.requant(np.array([lo, hi]), frac))
        if fmt.min_code <= a and b <= fmt.max_code:
            return a, b
        return fmt.min_code, fmt.max_code
    a, b = (int(c) for c in fmt.requant(np.array([lo, hi]), frac))
    return a, b


def _lin_range(w: np.ndarray, b: np.ndarray | None, b_shift: int, lo: int, hi: int) -> tuple[int, int]:
    """Exact range of ``x @ w + (b << b_shift)`` for x codes in [lo, hi] (w: (in, out))."""
    w = w.astype(np.int64)
    top = np.sum(np.maximum(w * lo, w * hi), axis=0)
    bot = np.sum(np.minimum(w * lo, w * hi), axis=0)
    if b is not None:
        top = top + (b.astype(np.int64) << b_shift)
        bot = bot + (b.astype(np.int64) << b_shift)
    return int(bot.min()), int(top.max())


class _Builder:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.nodes: list[N.Node] = []
        self.tensors: dict[str, _Tensor] = {}  # Keras layer name -> its output in the IR
        self.requants: dict[tuple[str, Fmt], _Tensor] = {}
        self.consumers: dict[str, list[tuple[Any, int]]] = {}
        for layer in model.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            for slot, src in enumerate(_inputs(layer)):
                self.consumers.setdefault(src, []).append((layer, slot))

    # --- quantizers seen by consumers ---
    def iq_of(self, layer: Any, slot: int) -> Any | None:
        """The HGQ2 input quantizer ``layer`` applies to its input ``slot`` (None: none)."""
        cls = type(layer).__name__
        if cls == "QMultiHeadAttention":
            if not layer.enable_iq:
                return None
            return layer._value_dense.iq  # q/k/v input quantizers are checked equal in mha()
        if cls in ("QAdd",):
            return layer.iq[slot] if layer.enable_iq else None
        if cls in ("Add", "GlobalAveragePooling1D", "Dropout", "ReLU", "Activation"):
            return None
        if hasattr(layer, "enable_iq") and layer.enable_iq:
            return layer.iq
        return None

    def target_fmt(self, layer: Any, exact: tuple[int, int, int]) -> Fmt | None:
        """The format ``layer``'s output is quantized to where it is produced: its oq, else the one input
        quantizer every consumer applies (None: keep it exact)."""
        if getattr(layer, "enable_oq", False) and type(layer).__name__ != "QMultiHeadAttention":
            return data_fmt(layer.oq, f"layer {layer.name!r} output quantizer", exact, int(layer.output.shape[-1]))
        cons = self.consumers.get(layer.name, [])
        fmts = set()
        for c, slot in cons:
            q = self.iq_of(c, slot)
            if q is None:
                return None
            fmts.add(data_fmt(q, f"layer {c.name!r} input quantizer", exact, int(layer.output.shape[-1])))
        return fmts.pop() if len(fmts) == 1 else None

    # --- emitting ---
    def add(self, node: N.Node) -> None:
        self.nodes.append(node)

    def source(self, layer: Any, slot: int, src: str) -> _Tensor:
        """The IR tensor ``layer`` reads at input ``slot``, requantized by its input quantizer if needed."""
        t = self.tensors[src]
        q = self.iq_of(layer, slot)
        if q is None:
            return t
        qf = data_fmt(q, f"layer {layer.name!r} input quantizer", (t.lo, t.hi, t.fmt.frac), t.ch)
        return self.requant(t, qf, f"{layer.name}_iq{slot}" if slot else f"{layer.name}_iq")

    def requant(self, t: _Tensor, qf: Fmt, name: str) -> _Tensor:
        if qf == t.fmt or _noop(qf, t):
            return t
        key = (t.node, qf)
        if key in self.requants:
            return self.requants[key]
        lin = N.Linear(np.eye(t.ch, dtype=np.int64), Fmt(False, 1, 1), None, None, qf)
        self.add(N.Dense(name, t.node, lin))
        lo, hi = _range_after(qf, t.lo, t.hi, t.fmt.frac)
        out = _Tensor(name, qf, lo, hi, t.ch)
        self.requants[key] = out
        return out

    def finish(self, layer: Any, node_fn: Any, lo: int, hi: int, frac: int, relu: bool = False,
               post: tuple[Fmt, ...] = ()) -> None:
        """Emit ``node_fn(out_fmt)`` for ``layer`` whose exact result spans [lo, hi] at ``frac``; fold its
        output quantization into ``out_fmt`` where that gives the same codes."""
        exact = _exact(lo, hi, frac)
        tgt = post[0] if post else self.target_fmt(layer, (lo, hi, frac))
        rest = post[1:]
        if tgt is not None and (not relu or tgt.overflow != "WRAP" or _fits(tgt, lo, hi, frac)):
            fmt = tgt
            olo, ohi = _range_after(tgt, lo, hi, frac)
        else:
            fmt, olo, ohi = exact, lo, hi
            if tgt is not None:
                rest = (tgt, *rest)
        if relu:
            olo, ohi = max(olo, 0), max(ohi, 0)
        node = node_fn(fmt)
        self.add(node)
        t = _Tensor(node.name, fmt, olo, ohi, int(layer.output.shape[-1]))
        for i, q in enumerate(rest):
            t = self.requant(t, q, f"{layer.name}_oq{i if i else ''}")
        self.tensors[layer.name] = t

    # --- per-layer converters ---
    def input_layer(self, layer: Any) -> None:
        shape = tuple(int(d) for d in layer.output.shape[1:])
        if len(shape) not in (1, 2):
            raise Hgq2ImportError(f"input {layer.name!r}: shape {shape}; the HGQ2 importer takes a (tokens, features) "
                                  "sequence or a (features,) vector")
        cons = self.consumers.get(layer.name, [])
        fmts = {data_fmt(q, f"layer {c.name!r} input quantizer") for c, s in cons
                if (q := self.iq_of(c, s)) is not None}
        if len(fmts) != 1 or any(self.iq_of(c, s) is None for c, s in cons):
            raise Hgq2ImportError(
                f"input {layer.name!r}: its consumers ({', '.join(c.name for c, _ in cons)}) must all quantize it with "
                "one input quantizer (that is the IR input format); the model input is float otherwise"
            )
        fm = fmts.pop()
        c = shape[-1]
        self.add(N.Input(layer.name, (shape[0], 1, c) if len(shape) == 2 else shape, fm))
        self.tensors[layer.name] = _Tensor(layer.name, fm, fm.min_code, fm.max_code, c)

    def dense(self, layer: Any, src: str) -> None:
        cls = type(layer).__name__
        act = _act_name(layer)
        if act not in ("linear", "relu"):
            raise Hgq2ImportError(f"layer {layer.name!r} ({cls}): activation {act!r} unsupported; use linear or relu")
        kernel = _np(layer.qkernel)
        bias = None if layer.bias is None else _np(layer.qbias)
        if cls == "QEinsumDense":
            kernel, bias = _einsum_as_dense(layer, kernel, bias)
        x = self.source(layer, 0, src)
        lin, lo, hi = _linear(layer.name, kernel, bias, x, Fmt(True, 2, 2))  # out_fmt placeholder
        self.finish(layer, lambda fm: N.Dense(layer.name, x.node, _with_out(lin, fm), relu=act == "relu"),
                    lo, hi, x.fmt.frac + lin.w_fmt.frac, relu=act == "relu")

    def relu(self, layer: Any, src: str) -> None:
        """A standalone ReLU: an identity Dense with ReLU (exact), its output quantized like any other."""
        cls = type(layer).__name__
        plain = (cls == "Activation" and _act_name(layer) == "relu") or (
            cls == "ReLU" and layer.max_value is None and not float(layer.negative_slope)
            and not float(layer.threshold))
        if not plain:
            raise Hgq2ImportError(f"layer {layer.name!r} ({cls}): only a plain ReLU (no max_value, negative_slope, "
                                  "threshold) or a linear activation converts")
        x = self.source(layer, 0, src)
        lin = N.Linear(np.eye(x.ch, dtype=np.int64), Fmt(False, 1, 1), None, None, x.fmt)
        self.finish(layer, lambda fm: N.Dense(layer.name, x.node, _with_out(lin, fm), relu=True), x.lo, x.hi,
                    x.fmt.frac, relu=True)

    def add_layer(self, layer: Any, srcs: list[str]) -> None:
        if len(srcs) != 2:
            raise Hgq2ImportError(f"layer {layer.name!r} ({type(layer).__name__}): {len(srcs)} inputs; only two-input "
                                  "adds are supported")
        a, b = (self.source(layer, i, s) for i, s in enumerate(srcs))
        f = max(a.fmt.frac, b.fmt.frac)
        lo = (a.lo << (f - a.fmt.frac)) + (b.lo << (f - b.fmt.frac))
        hi = (a.hi << (f - a.fmt.frac)) + (b.hi << (f - b.fmt.frac))
        self.finish(layer, lambda fm: N.Add(layer.name, a.node, b.node, fm), lo, hi, f)

    def pool(self, layer: Any, src: str) -> None:
        if getattr(layer, "data_format", "channels_last") != "channels_last" or getattr(layer, "keepdims", False):
            raise Hgq2ImportError(f"layer {layer.name!r}: only channels_last pooling without keepdims is supported")
        x = self.source(layer, 0, src)
        ntok = int(layer.input.shape[1])
        _check_f32(f"layer {layer.name!r} sum", ntok * x.lo, ntok * x.hi)
        if ntok & (ntok - 1) == 0:  # the float mean is a shift: exact
            sh = ntok.bit_length() - 1
            self.finish(layer, lambda fm: N.Pool(layer.name, x.node, 1, sh, fm), ntok * x.lo, ntok * x.hi,
                        x.fmt.frac + sh)
            return

        def node(fm: Fmt) -> N.Pool:
            inv_n, inv_frac = _mean_multiplier(layer.name, ntok, x, fm)
            return N.Pool(layer.name, x.node, inv_n, inv_frac, fm)

        if self.target_fmt(layer, (x.lo, x.hi, x.fmt.frac)) is None:
            raise Hgq2ImportError(
                f"layer {layer.name!r} ({type(layer).__name__}): the mean over {ntok} tokens is not a fixed-point "
                "number; it must be quantized right after (an output quantizer or the next layer's input quantizer)"
            )
        self.finish(layer, node, x.lo, x.hi, x.fmt.frac)

    def mha(self, layer: Any, srcs: list[str]) -> None:
        where = f"layer {layer.name!r} (QMultiHeadAttention)"
        node = layer._inbound_nodes[0]
        kw = {k: v for k, v in node.arguments.kwargs.items() if v is not None and v is not False}
        kw.pop("training", None)
        if kw:
            raise Hgq2ImportError(f"{where}: call arguments {sorted(kw)} are unsupported (masks, causal masks, "
                                  "attention scores); call it as mha(x, x)")
        if len(set(srcs)) != 1:
            raise Hgq2ImportError(f"{where}: cross-attention (query, key, value from different tensors) is "
                                  "unsupported; swinfpga imports self-attention mha(x, x)")
        if not layer._stable_softmax:
            raise Hgq2ImportError(f"{where}: stable_softmax=False is unsupported (the table softmax needs the "
                                  "max-subtracted input)")
        shape = tuple(int(d) for d in layer._inbound_nodes[0].input_tensors[0].shape[1:])
        if len(shape) != 2:
            raise Hgq2ImportError(f"{where}: input shape {shape}; a (tokens, features) sequence is required")
        ntok, dim = shape
        heads, kd, vd = int(layer._num_heads), int(layer._key_dim), int(layer._value_dim)
        if kd != vd or heads * kd != dim or tuple(layer._attention_axes) != (1,):
            raise Hgq2ImportError(
                f"{where}: swinfpga's attention needs key_dim == value_dim and num_heads * key_dim == features "
                f"(got heads {heads}, key_dim {kd}, value_dim {vd}, features {dim}) and attention over the tokens"
            )
        if layer._output_shape not in (None, dim, (dim,), [dim]):
            raise Hgq2ImportError(f"{where}: output_shape {layer._output_shape} != features {dim} is unsupported")
        qd, kdn, vdn, od = layer._query_dense, layer._key_dense, layer._value_dense, layer._output_dense
        # one input quantizer for q, k and v (they share it when fused)
        if layer.enable_iq:
            t0 = self.tensors[srcs[0]]
            rng = (t0.lo, t0.hi, t0.fmt.frac)
            qs = {d.name: data_fmt(d.iq, f"{where} {d.name} input quantizer", rng)
                  for d in (qd, kdn, vdn) if d.enable_iq}
            if len(set(qs.values())) != 1:
                raise Hgq2ImportError(
                    f"{where}: query, key and value quantize the input to different formats "
                    f"({', '.join(f'{k}: {v}' for k, v in qs.items())}); swinfpga's attention reads one input "
                    "format: use fuse='qkv' or one shared qkvo_iq_conf with per-tensor formats"
                )
        x = self.source(layer, 0, srcs[0])

        def proj(d: Any, name: str, xin: _Tensor, out: Fmt | None) -> tuple[N.Linear, int, int]:
            k_ = _np(d.qkernel)
            b_ = None if d.bias is None else _np(d.qbias)
            k2 = k_.reshape(k_.shape[0], -1) if name != "proj" else k_.reshape(-1, k_.shape[-1])
            b2 = None if b_ is None else b_.reshape(-1)
            return _linear(f"{layer.name}.{name}", k2, b2, xin, out or Fmt(True, 2, 2))

        lins = {}
        ranges = {}
        for nm, d in (("q", qd), ("k", kdn), ("v", vdn)):
            lin0, lo, hi = proj(d, nm, x, None)
            of = data_fmt(d.oq, f"{where} {d.name} output quantizer", (lo, hi, x.fmt.frac + lin0.w_fmt.frac))
            lins[nm] = _with_out(lin0, of)
            ranges[nm] = _range_after(of, lo, hi, x.fmt.frac + lin0.w_fmt.frac)
        (qlo, qhi), (klo, khi) = ranges["q"], ranges["k"]
        prods = [a * b for a in (qlo, qhi) for b in (klo, khi)]
        sf = lins["q"].out_fmt.frac + lins["k"].out_fmt.frac
        score_fmt = _exact(kd * min(prods), kd * max(prods), sf)
        sm = hgq2_softmax(layer, ntok, score_fmt, where)
        vlo, vhi = ranges["v"]
        pv = [a * b for a in (sm.prob_fmt.min_code, sm.prob_fmt.max_code) for b in (vlo, vhi)]
        pvf = sm.prob_fmt.frac + lins["v"].out_fmt.frac
        attn_fmt = data_fmt(od.iq, f"{where} {od.name} input quantizer", (ntok * min(pv), ntok * max(pv), pvf))
        alo, ahi = _range_after(attn_fmt, ntok * min(pv), ntok * max(pv), pvf)
        _check_f32(where + " scores", kd * min(prods), kd * max(prods))
        _check_f32(where + " attention x value", ntok * min(pv), ntok * max(pv))
        plin, plo, phi = proj(od, "proj", _Tensor("", attn_fmt, alo, ahi, dim), None)
        post = tuple(data_fmt(q.oq, f"{where} {q.name} output quantizer", None)
                     for q in (od, layer) if q.enable_oq)

        def build(fm: Fmt) -> N.WindowAttention:
            return N.WindowAttention(
                layer.name, x.node, (ntok, 1), dim, heads, (ntok, 1), 0, lins["q"], lins["k"], lins["v"], None,
                Fmt(True, 2, 2), score_fmt, sm, attn_fmt, _with_out(plin, fm))

        self.finish(layer, build, plo, phi, attn_fmt.frac + plin.w_fmt.frac, post=post)


def _mean_multiplier(name: str, ntok: int, x: _Tensor, fm: Fmt) -> tuple[int, int]:
    """``(inv_n, inv_frac)`` with which the IR Pool ``requant(sum * inv_n, x.frac + inv_frac, fm)`` gives, for
    every possible token sum, the code HGQ2 gets from its float32 mean (``sum / n``) quantized to ``fm``
    (checked exhaustively over the sum's range)."""
    s = np.arange(ntok * x.lo, ntok * x.hi + 1, dtype=np.int64)
    if s.size > 1 << 22:
        raise Hgq2ImportError(f"layer {name!r}: {s.size} possible token sums are too many to verify the mean; "
                              "narrow its input quantizer")
    mean = np.ldexp(s.astype(np.float32), -x.fmt.frac).astype(np.float32) / np.float32(ntok)
    fmts = [g for g, _ in fm.groups() if g is not None] if isinstance(fm, ChanFmt) else [fm]  # every channel's
    wants = []
    for g in fmts:
        scaled = (mean * np.float32(2.0**g.frac)).astype(np.float32)
        want = np.floor(scaled + np.float32(0.5)) if g.rounding == "RND" else np.floor(scaled)
        wants.append(g.overflow_codes(want.astype(np.int64)))
    for inv_frac in range(max(0, fm.frac - x.fmt.frac), 40):
        base = 2.0**inv_frac / ntok
        for inv_n in sorted({math.floor(base), math.ceil(base), round(base)}):
            if inv_n and all(np.array_equal(g.requant(s * inv_n, x.fmt.frac + inv_frac), w)
                             for g, w in zip(fmts, wants, strict=True)):
                return int(inv_n), inv_frac
    raise Hgq2ImportError(
        f"layer {name!r}: no integer multiplier reproduces HGQ2's float32 mean over {ntok} tokens quantized to {fm} "
        f"(from {x.fmt}): some means are exact ties, which HGQ2 rounds half up on both signs and one multiplier "
        "cannot; give the quantizer after the pooling at least as many fraction bits as the one before it, or use a "
        "power-of-two token count"
    )


def _noop(qf: Fmt, t: _Tensor) -> bool:
    """Whether requantizing codes in [t.lo, t.hi] (format t.fmt) to ``qf`` changes nothing."""
    if qf.container is not qf:
        return False
    if qf.frac < t.fmt.frac:
        return False
    s = qf.frac - t.fmt.frac
    return qf.min_code <= (t.lo << s) and (t.hi << s) <= qf.max_code


def _fits(fmt: Fmt, lo: int, hi: int, frac: int) -> bool:
    if fmt.container is not fmt:
        return False  # a narrower channel may wrap where the container does not
    probe = Fmt(True, 62, 62 - fmt.frac, fmt.rounding, "WRAP")
    a, b = (int(c) for c in probe.requant(np.array([lo, hi]), frac))
    return fmt.min_code <= a and b <= fmt.max_code


def _with_out(lin: N.Linear, fm: Fmt) -> N.Linear:
    return N.Linear(lin.weight, lin.w_fmt, lin.bias, lin.b_fmt, fm)


def _linear(where: str, kernel: np.ndarray, bias: np.ndarray | None, x: _Tensor,
            out: Fmt) -> tuple[N.Linear, int, int]:
    """IR Linear of HGQ2's quantized kernel/bias on codes ``x``; the exact accumulator range."""
    bias_frac = None
    if bias is not None:
        _, bf = const_codes(bias, f"layer {where!r} bias")
        bias_frac = bf.frac
    w, wf = const_codes(kernel, f"layer {where!r} kernel",
                        None if bias_frac is None else bias_frac - x.fmt.frac)
    af = x.fmt.frac + wf.frac
    b = bfm = None
    if bias is not None:
        b, bfm = const_codes(bias, f"layer {where!r} bias")
    lin = N.Linear(w, wf, b, bfm, out)
    lo, hi = _lin_range(w, b, 0 if bfm is None else af - bfm.frac, x.lo, x.hi)
    _check_f32(f"layer {where!r}", lo, hi)
    return lin, lo, hi


def _check_f32(where: str, lo: int, hi: int) -> None:
    if max(abs(lo), abs(hi)).bit_length() > F32_BITS:
        raise Hgq2ImportError(
            f"{where}: the exact accumulator needs {max(abs(lo), abs(hi)).bit_length()} bits; HGQ2 computes it in "
            f"float32 ({F32_BITS}-bit mantissa), so its result is rounded and no integer model reproduces it bit for "
            "bit: narrow the quantizers feeding this layer"
        )


def _einsum_as_dense(layer: Any, kernel: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    import re

    eq = layer.equation.replace(" ", "")
    m = re.fullmatch(r"(\.\.\.|[a-z]*)([a-z]),\2([a-z])->\1\3", eq)
    if m is None or kernel.ndim != 2:
        raise Hgq2ImportError(f"layer {layer.name!r} (QEinsumDense): equation {layer.equation!r} is not a dense layer "
                              "on the last axis (e.g. 'btf,fo->bto'); only that form converts")
    if bias is not None and bias.shape != (kernel.shape[1],):
        raise Hgq2ImportError(f"layer {layer.name!r} (QEinsumDense): bias_axes must be the output axis only")
    return kernel, bias


# ----- the HGQ2 softmax ----------------------------------------------------------------------------
def _all_codes(fmt: Fmt) -> np.ndarray:
    if fmt.width > MAX_TABLE_BITS:
        raise Hgq2ImportError(f"table input {fmt} has {fmt.width} bits (> {MAX_TABLE_BITS}); narrow the quantizer")
    return np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)


def _table(name: str, tl: Any, in_fmt: Fmt, where: str) -> Lut:
    """HGQ2's table layer ``tl`` (QUnaryFunctionLUT) evaluated on every code of ``in_fmt``."""
    codes = _all_codes(in_fmt)
    x = in_fmt.to_float(codes).astype(np.float32).reshape(1, 1, 1, -1)
    y = _np(tl(x, training=False)).reshape(-1)
    qo = tl.oq
    om = str(qo.quantizer.overflow_mode).upper()  # the table contents are data: its rounding is already applied
    om = om if om in ("WRAP", "SAT", "SAT_SYM") else "WRAP"
    k, i, f = _kif(qo, f"{where} {tl.name} output quantizer")
    if len({(int(a), int(b), int(c)) for a, b, c in zip(k.ravel(), i.ravel(), f.ravel(), strict=True)}) != 1:
        raise Hgq2ImportError(f"{where}: {tl.name} has per-element output formats; use allow_heterogeneous_table=False")
    out = _fmt(int(k.flat[0]), int(i.flat[0]), int(f.flat[0]), "RND", om, f"{where} {tl.name}")
    t = np.ldexp(y, out.frac)
    if not np.all(t == np.round(t)):
        raise Hgq2ImportError(f"{where}: {tl.name} outputs are not codes of {out}")
    return Lut(name, "custom", in_fmt, in_fmt.min_code, 0, out, tuple(int(c) for c in np.round(t)))


def hgq2_softmax(layer: Any, ntok: int, score_fmt: Fmt, where: str) -> SoftmaxSpec:
    """A softmax of kind ``hgq2`` with HGQ2's tables, read from the trained ``QMultiHeadAttention``."""
    sm = layer._softmax
    if sm.enable_iq:
        raise Hgq2ImportError(f"{where}: a softmax input quantizer is unsupported (MHA builds its QSoftmax without)")
    s_rng = (0, score_fmt.max_code - score_fmt.min_code, score_fmt.frac)
    ef = data_fmt(sm.exp_table.iq, f"{where} softmax exp-table input quantizer", s_rng)
    exp = _table(f"{layer.name}_exp", sm.exp_table, ef, where)
    e_hi = int(np.max(exp.array()))
    rf = data_fmt(sm.inv_table.iq, f"{where} softmax inverse-table input quantizer",
                  (0, ntok * e_hi, exp.out_fmt.frac))
    recip = _table(f"{layer.name}_recip", sm.inv_table, rf, where)
    r_hi = int(np.max(recip.array()))
    pf = data_fmt(sm.oq, f"{where} softmax output quantizer", (0, e_hi * r_hi, exp.out_fmt.frac + recip.out_fmt.frac))
    _check_f32(where + " softmax sum", 0, ntok * e_hi)
    _check_f32(where + " softmax product", 0, e_hi * r_hi)
    return SoftmaxSpec(ntok, score_fmt, exp, recip, pf, kind="hgq2")


# ----- entry point ---------------------------------------------------------------------------------
def from_hgq2_model(model: Any, name: str | None = None, check: int = CHECK_INPUTS) -> Model:
    """Convert a functional Keras model of HGQ2 layers into an IR :class:`Model` (see module docstring).

    ``check`` > 0: run HGQ2's inference and the golden model on that many random input codes and compare
    every layer's output codes (:func:`check_layers`); a difference raises :class:`Hgq2ImportError`
    naming the first layer and element.  The result is in ``meta["hgq2_check"]``."""
    import keras

    if not isinstance(model, keras.Model) or not hasattr(model, "_inbound_nodes"):
        raise Hgq2ImportError(f"expected a functional keras.Model, got {type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise Hgq2ImportError(f"expected one input and one output, got {len(model.inputs)} and {len(model.outputs)}")
    b = _Builder(model)
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "InputLayer":
            b.input_layer(layer)
        else:
            srcs = _inputs(layer)
            missing = [s for s in srcs if s not in b.tensors]
            if missing:
                raise Hgq2ImportError(f"layer {layer.name!r}: input {missing[0]!r} is not converted before it")
            if cls in ("QDense", "QBatchNormDense", "QEinsumDense"):
                _one(layer, srcs)
                b.dense(layer, srcs[0])
            elif cls == "Dropout" or (cls == "Activation" and _act_name(layer) == "linear"):  # identities
                _one(layer, srcs)
                b.tensors[layer.name] = b.tensors[srcs[0]]
            elif cls in ("ReLU", "Activation"):
                _one(layer, srcs)
                b.relu(layer, srcs[0])
            elif cls == "QMultiHeadAttention":
                b.mha(layer, srcs)
            elif cls in ("QAdd", "Add"):
                b.add_layer(layer, srcs)
            elif cls in ("QGlobalAveragePooling1D", "GlobalAveragePooling1D"):
                _one(layer, srcs)
                b.pool(layer, srcs[0])
            else:
                raise Hgq2ImportError(
                    f"layer {layer.name!r} ({cls}, from {type(layer).__module__.split('.')[0]}) is not supported by "
                    f"the HGQ2 importer; supported: {', '.join(SUPPORTED)}"
                )
    out = model.outputs[0]._keras_history.operation.name
    meta: dict[str, Any] = {"source": "hgq2", "keras_model": model.name,
                            "keras_input_shape": [int(d) for d in model.inputs[0].shape[1:]]}
    try:
        ir = Model(name or model.name, tuple(b.nodes), b.tensors[out].node, meta)
    except FormatError as e:
        raise Hgq2ImportError(str(e)) from None
    if check > 0:
        meta["hgq2_check"] = check_layers(model, ir, {k: t.node for k, t in b.tensors.items()}, check)
    return ir


def _quantize_f32(y: np.ndarray, fm: Fmt) -> np.ndarray:
    """HGQ2's quantizer arithmetic in float32: ``floor(y * 2**f (+ 1/2))``, then ``fm``'s overflow (a per-channel
    format: each channel at its own format, stored as container codes; pruned channels 0)."""
    if isinstance(fm, ChanFmt):
        return fm.per_channel(y, lambda g, part: _quantize_f32(part, g))
    scaled = (y * np.float32(2.0**fm.frac)).astype(np.float32)
    if fm.rounding == "RND":
        scaled = (scaled + np.float32(0.5)).astype(np.float32)
    return fm.overflow_codes(np.floor(scaled).astype(np.int64))


def check_layers(model: Any, ir: Model, nodes: dict[str, str], n: int, seed: int = 0) -> dict[str, Any]:
    """Compare HGQ2's inference with the golden model on ``n`` uniform random input codes, layer by layer.

    ``nodes`` maps a Keras layer name to the IR node holding its output; HGQ2's float output of the layer,
    quantized to that node's format (the consumer's input quantizer folded there, else exact), must equal the
    node's codes.  Raises :class:`Hgq2ImportError` at the first layer that differs."""
    import keras

    from .. import golden

    fin = ir.input.fmt
    ishape = tuple(int(d) for d in model.inputs[0].shape[1:])
    codes = np.random.default_rng(seed).integers(fin.min_code, fin.max_code + 1, size=(n, *ishape))
    layers = [ly for ly in model.layers if type(ly).__name__ != "InputLayer"]
    probe = keras.Model(model.inputs, [ly.output for ly in layers])
    outs = probe(fin.to_float(codes).astype(np.float32), training=False)
    outs = outs if isinstance(outs, list | tuple) else [outs]
    res = golden.run(ir, codes.reshape(n, *ir.input.shape))
    info = ir.infer()
    for ly, y in zip(layers, outs, strict=True):
        node = nodes[ly.name]
        fm = info[node].fmt
        want = _quantize_f32(np.asarray(y, dtype=np.float32), fm)
        got = res.outputs[node].reshape(want.shape)
        bad = np.argwhere(got != want)
        if bad.size:
            i = tuple(int(v) for v in bad[0])
            raise Hgq2ImportError(
                f"layer {ly.name!r} ({type(ly).__name__}): the imported model differs from HGQ2's inference in "
                f"{len(bad)} of {got.size} codes of {fm} on {n} random inputs (first at {i}: swinfpga {got[i]}, "
                f"HGQ2 {want[i]}); this layer's configuration is not reproduced exactly"
            )
    return {"inputs": n, "layers": len(layers), "mismatches": 0}


def _act_name(layer: Any) -> str:
    return str(getattr(layer.activation, "__name__", layer.activation))


def _one(layer: Any, srcs: list[str]) -> None:
    if len(srcs) != 1:
        raise Hgq2ImportError(f"layer {layer.name!r} ({type(layer).__name__}) has {len(srcs)} inputs; expected 1")


__all__ = ["from_hgq2_model", "check_layers", "is_hgq2_model", "Hgq2ImportError", "data_fmt", "const_codes",
           "hgq2_softmax"]
