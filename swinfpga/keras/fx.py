"""The Keras implementation of the fixed-point array interface (:mod:`swinfpga.ops.fx`): the quantized
path of the Keras layers runs the operator kernels ``swinfpga.ops.<op>.kernel`` through it, the same
code as the golden model (:class:`~swinfpga.ops.fx.NumpyFx`) and the RTL tracer (``TraceFx``).

Values are float64 Keras tensors of real numbers (code x LSB, leading batch axes); products and sums
of such values are exact in float64 (:mod:`.quant`), so, as for ``TraceFx``, the kernels' ``frac``
arguments are ignored and a layer may pass :data:`CARRIED` as an input format.  Where the kernel's
interface takes IR constants, a Keras layer passes objects this implementation understands instead
(the kernels only pass them through):

* requant ``name`` (``<node>.<part>``) is the owning layer's quantization site
  (:meth:`KerasFx.site_of`; :meth:`swinfpga.keras.layers.QLayer.site`): HGQ2 rounding/saturation with
  STE gradients, HGQ trainable fractional bits, calibration statistics and recording all stay there;
  the ``fmt`` argument is ignored (the site has its own, possibly trained, format);
* ``matmul(x, lin, ...)``: ``lin`` is a :class:`KLinear` (``layers.Lin``): the layer's own trainable
  weights, BatchNorm folded and quantized at the sites ``<prefix>w`` / ``<prefix>b``;
* ``mul_const`` / ``add_const``: ``codes`` may be a :class:`Param` (a trainable vector quantized at
  its own site, e.g. LayerNorm's gamma/beta);
* ``lookup(x, t)``: ``t`` is a :class:`Table` (the :class:`~swinfpga.lut.Lut` plus the float function
  whose gradient the lookup takes, straight-through);
* ``softmax``: the forward is the softmax kernel (:func:`swinfpga.ops.softmax.kernel`) run on this
  implementation's exact primitives (``max``/``select``/``cast``/``ge``/``shr``/``index``, unreported
  ``requant(None, ...)``: Keras ops on float64 values, exact like ``NumpyFx``), carrying the gradient
  of the float softmax with Swin's additive ``-100`` mask (straight-through, :func:`.quant.ste`).

The node objects below (``K<Op>``) carry the fields each kernel reads, with the Keras pieces in place
of the IR constants.  The gathering (patches, 2x2 merge, window partition, shift, the valid bits)
stays in the layers, as it stays in the golden handlers and the RTL planner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import keras
import numpy as np
from keras import ops

from ..fixed import Fmt
from ..lut import Lut, SoftmaxSpec
from ..ops import softmax as _softmax
from .quant import DTYPE, MASK_VALUE, exact_cast, lut_at, lut_lookup, ste

CARRIED = Fmt(True, 32, 16)
"""Placeholder input format for kernels run on :class:`KerasFx`: values carry their own scale, so
the frac arithmetic a kernel does with it is never used."""


class KLinear(Protocol):
    """What ``KerasFx.matmul`` and :func:`swinfpga.ops.linear.kernel` need of a Keras linear map
    (implemented by ``swinfpga.keras.layers.Lin``)."""

    @property
    def out_fmt(self) -> Fmt: ...

    def acc_frac(self, in_fmt: Fmt) -> int: ...

    def quant_weights(self, training: Any = False) -> tuple[Any, Any | None]: ...


@dataclass(frozen=True)
class Param:
    """A trainable constant vector (last axis) quantized at the layer's site ``site``."""

    site: str
    var: Any


@dataclass(frozen=True)
class Table:
    """A lookup table and the float function ``grad`` whose gradient the lookup takes (STE)."""

    lut: Lut
    grad: Callable[[Any], Any]

    @property
    def out_fmt(self) -> Fmt:
        return self.lut.out_fmt


class KerasFx:
    """The interface on float64 Keras tensors of real values for one layer call (``training``).

    ``sites`` maps a kernel's requant/tap name, relative to the layer name (``fc1`` for
    ``<layer>.fc1``), to the layer's site (``fc1.out``); the node's own name maps to ``out`` and any
    other relative name to itself."""

    def __init__(self, layer: Any, training: Any = False, sites: Mapping[str, str] | None = None) -> None:
        self.layer, self.training, self.sites = layer, training, dict(sites or {})

    def site_of(self, name: str) -> str:
        base = self.layer.name
        rel = "" if name == base else name[len(base) + 1:] if name.startswith(base + ".") else name
        rel = self.sites.get(rel, rel)
        return rel or "out"

    def tap(self, name: str, x: Any) -> None:
        self.layer.tap(self.site_of(name), x)

    def requant(self, name: str | None, acc: Any, frac: int, fmt: Fmt) -> Any:
        """``name``: the layer's site; None: not a site, ``fmt`` applied exactly (no gradient)."""
        if name is None:
            return exact_cast(acc, fmt)
        return self.layer.site(self.site_of(name), acc, self.training)

    def matmul(self, x: Any, lin: KLinear, x_fmt: Fmt) -> Any:
        wq, bq = lin.quant_weights(self.training)
        acc = ops.matmul(x, wq)
        return acc if bq is None else acc + bq

    def scale(self, x: Any, code: int, frac: int) -> Any:
        return x * (code * 2.0**-frac)

    def mul(self, a: Any, b: Any) -> Any:
        return a * b

    def _const(self, codes: Any, fmt: Fmt) -> Any:
        if isinstance(codes, Param):
            return self.layer.site(codes.site, codes.var, self.training)
        return ops.convert_to_tensor(np.asarray(codes, dtype=np.float64) * fmt.lsb, dtype=DTYPE)

    def mul_const(self, x: Any, codes: Any, fmt: Fmt) -> Any:
        return x * self._const(codes, fmt)

    def add(self, a: Any, fa: int, b: Any, fb: int) -> Any:
        return a + b

    def sub(self, a: Any, fa: int, b: Any, fb: int) -> Any:
        return a - b

    def add_const(self, x: Any, fx: int, codes: Any, fmt: Fmt) -> Any:
        return x + self._const(codes, fmt)

    def sum(self, x: Any, axis: int = -1, keepdims: bool = True) -> Any:
        return ops.sum(x, axis=axis, keepdims=keepdims)

    def relu(self, x: Any) -> Any:
        return ops.relu(x)

    def lookup(self, x: Any, t: Table | Lut, what: str | None = None) -> Any:
        if isinstance(t, Table):
            return ste(lut_lookup(t.lut, x), t.grad(x))
        return lut_lookup(t, x)  # a plain table: no gradient through it

    def mask(self, x: Any, bits: Any) -> Any:
        return x * bits

    def count_lookup(self, bits: Any, table: np.ndarray, frac: int, name: str) -> Any:
        count = ops.cast(ops.sum(bits, axis=-2), "int32")
        tab = ops.convert_to_tensor(np.asarray(table).astype(np.float64), dtype=DTYPE)
        return ops.take(tab, count, axis=0) * 2.0**-frac

    def any_nonzero(self, x: Any) -> Any:
        return ops.cast(ops.any(ops.not_equal(x, 0.0), axis=-1, keepdims=True), x.dtype)

    def heads(self, x: Any, n: int) -> Any:
        shape = x.shape
        y = ops.reshape(x, (-1, *shape[1:-1], n, shape[-1] // n))
        return ops.moveaxis(y, -2, -3)

    def merge_heads(self, x: Any) -> Any:
        y = ops.moveaxis(x, -3, -2)
        return ops.reshape(y, (-1, *y.shape[1:-2], y.shape[-2] * y.shape[-1]))

    def qk(self, q: Any, k: Any) -> Any:  # einsum (not matmul): the gradients' summation order of the
        # hand-written layers before KerasFx, so training is unchanged bit for bit
        return ops.einsum("...id,...jd->...ij", q, k)

    def pv(self, p: Any, v: Any) -> Any:
        return ops.einsum("...ij,...jd->...id", p, v)

    def softmax(self, scores: Any, spec: SoftmaxSpec, valid: Any) -> Any:
        """The softmax kernel of ``spec`` forward (on this implementation, no gradient through it), the
        gradient of the float softmax with Swin's additive mask; ``valid``: None, a numpy bool array or
        a bool tensor broadcastable to ``scores``."""
        if valid is None:
            masked = scores
        elif isinstance(valid, np.ndarray):
            masked = scores + np.where(valid, 0.0, MASK_VALUE)
        else:
            masked = scores + ops.cast(ops.where(valid, 0.0, MASK_VALUE), scores.dtype)
        p_float = ops.softmax(masked, axis=-1) if spec.n > 1 else ops.ones_like(masked)
        return ste(_softmax.kernel(self, spec, ops.stop_gradient(scores), valid), p_float)

    # ----- the primitives of the softmax kernels (exact on integer-valued codes x LSB) ------------
    def max(self, x: Any, axis: int = -1) -> Any:
        return ops.max(x, axis=axis, keepdims=True)

    def select(self, bits: Any, a: Any, fa: int, b: Any, fb: int) -> Any:
        """``a`` where ``bits`` is true / non-zero (numpy or tensor), else ``b`` (a tensor or a constant
        code of ``fb`` fraction bits)."""
        if isinstance(b, (int, np.integer)):
            b = float(b) * 2.0**-fb
        dt = getattr(bits, "dtype", None)
        key = bits if dt is not None and keras.backend.standardize_dtype(dt) == "bool" else ops.not_equal(bits, 0)
        return ops.where(key, a, b)

    def cast(self, x: Any, frac: int, fmt: Fmt) -> Any:
        return exact_cast(x, fmt)

    def ge(self, x: Any, fx: int, code: int, frac: int) -> Any:
        return ops.cast(ops.greater_equal(x, float(code) * 2.0**-frac), DTYPE)

    def shr(self, x: Any, j: int) -> Any:
        return x * 2.0**-j

    def index(self, a: Any, frac: int, lut: Lut) -> Any:
        return lut_at(lut, a * 2.0**frac)


# ----- node objects: the fields each kernel reads, Keras pieces in place of IR constants ----------
@dataclass(frozen=True)
class KAdd:
    name: str
    out_fmt: Fmt


@dataclass(frozen=True)
class KDense:
    name: str
    linear: KLinear
    relu: bool = False


@dataclass(frozen=True)
class KPatchEmbed:
    name: str
    linear: KLinear


@dataclass(frozen=True)
class KMlp:
    name: str
    fc1: KLinear
    act: str
    hidden_fmt: Fmt
    gelu: Table | None
    fc2: KLinear


@dataclass(frozen=True)
class KLayerNorm:
    name: str
    inv_c: int
    inv_frac: int
    mean_fmt: Fmt
    var_fmt: Fmt
    rsqrt: Table
    norm_fmt: Fmt
    gamma: Param
    g_fmt: Fmt
    beta: Param
    b_fmt: Fmt
    out_fmt: Fmt


@dataclass(frozen=True)
class KPatchMerging:
    name: str
    linear: KLinear
    norm: KLayerNorm | None


@dataclass(frozen=True)
class KPool:
    name: str
    inv_n: int
    inv_frac: int
    out_fmt: Fmt
    inv_table: np.ndarray | None = None


@dataclass(frozen=True)
class KTokenMask:
    name: str


@dataclass(frozen=True)
class KWindowAttention:
    name: str
    heads: int
    q: KLinear
    k: KLinear
    v: KLinear
    bias_fmt: Fmt
    score_fmt: Fmt
    softmax: SoftmaxSpec
    attn_fmt: Fmt
    proj: KLinear


__all__ = ["CARRIED", "KLinear", "Param", "Table", "KerasFx", "KAdd", "KDense", "KPatchEmbed", "KMlp", "KLayerNorm",
           "KPatchMerging", "KPool", "KTokenMask", "KWindowAttention"]
