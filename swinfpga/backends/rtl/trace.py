"""Trace one segment's group function with da4ml (the only module importing da4ml's tracer).

Values in the trace are real numbers (code x LSB).  Each IR node runs its operator kernel
(:mod:`swinfpga.ops`, dispatched through ``TRACE``) on :class:`TraceFx`, the tracer's
implementation of the fixed-point array interface: every requant site of the golden model becomes
a da4ml ``quantize`` with the same (k, i, f), rounding and overflow, so the traced program is
bit-exact by construction and is checked against the golden model with da4ml's int64 interpreter
(``CombLogic.predict``) before any Verilog is simulated.  The softmax is its kernel too
(:mod:`swinfpga.ops.softmax`, one per kind) on the primitives below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import ops
from ...errors import SwinfpgaError
from ...fixed import ChanFmt, Fmt
from ...ir import nodes as N
from ...lut import Lut, SoftmaxSpec
from ...registry import Registry
from .plan import Segment
from .tree import tree as _tree


class TraceError(SwinfpgaError, RuntimeError):
    """The segment cannot be traced (unsupported node or a table that is too large)."""


@dataclass(frozen=True)
class TracedUnit:
    """A traced segment: da4ml ``CombLogic`` plus the I/O formats of its flat ports.

    ``in_kif``/``out_kif``: per element (k, i, f) of da4ml's packed ports (element 0 at bit 0);
    ``out_const``: per output element the constant code when its packed width is 0, else None."""

    comb: Any
    in_kif: tuple[tuple[int, int, int], ...]
    out_kif: tuple[tuple[int, int, int], ...]
    out_const: tuple[int | None, ...]
    node_latency: dict[str, float]


FACTOR_LIMIT = 2.0**-24  # see _q
IDENTITY_LUT_WORKAROUND = True  # see _q; bench/rtl/tracer_choice.py turns it off to test alkaid


@dataclass(frozen=True)
class Tracer:
    """The tracing library's entry points (da4ml 0.6 by default; ``SWINFPGA_TRACER=alkaid`` selects
    alkaid 0.8, da4ml's successor, for evaluation: bench/rtl/tracer_choice.py).  Verilog emission
    and loading of saved programs stay on da4ml (backends/rtl/verilog.py, build.py)."""

    name: str
    var: Any  # scalar variable class (from_const)
    array: Any  # object ndarray -> traced array
    inputs: Any  # shape -> traced input array
    trace: Any  # (inputs, outputs) -> CombLogic
    kif: Any  # QInterval -> (k, i, f)


def tracer() -> Tracer:
    import os

    if os.environ.get("SWINFPGA_TRACER", "da4ml") == "alkaid":
        from alkaid.trace import FVariable, FVArray, FVArrayInput, trace

        return Tracer("alkaid", FVariable, lambda v: FVArray(np.asarray(v, dtype=object)), FVArrayInput, trace,
                      lambda q: tuple(int(x) for x in q.kif))
    from da4ml.trace import FixedVariable, FixedVariableArray, FixedVariableArrayInput, comb_trace
    from da4ml.types import minimal_kif

    return Tracer("da4ml", FixedVariable, lambda v: FixedVariableArray(np.asarray(v, dtype=object), None),
                  FixedVariableArrayInput, comb_trace, lambda q: tuple(int(x) for x in minimal_kif(q)))


def _elems(x: Any) -> np.ndarray:
    """The object ndarray of scalar variables behind a traced array (either tracer)."""
    return x._vars if hasattr(x, "_vars") else np.asarray(x).view(np.ndarray)


def _is_array(x: Any) -> bool:
    return hasattr(x, "_vars") or isinstance(x, np.ndarray)


def _q(x: Any, fmt: Fmt) -> Any:
    """Requantize to ``fmt`` (same rounding/overflow as the golden requant).

    da4ml carries a power-of-two scale factor per variable; through long fused chains (patch
    merging LayerNorm -> LayerNorm -> attention) it reached 2**-40, and da4ml 0.6 then saturated
    q.k scores wrongly (code 127 came out 0; found with its int64 interpreter).  Where a requant
    result carries a factor below ``FACTOR_LIMIT`` it is passed through an identity lookup
    (factor 1; a small ROM of the format's codes, formats of <= 12 bits) to reset the chain.

    A per-channel format (:class:`~swinfpga.fixed.ChanFmt`) requantizes each element to its
    channel's format (last axis, :func:`_q_chan`)."""
    if isinstance(fmt, ChanFmt):
        return _q_chan(x, fmt)
    k, i, f = fmt.kif
    if _is_array(x):
        xs = _elems(x)
        out = np.empty(xs.shape, dtype=object)
        for idx in np.ndindex(*xs.shape):
            out[idx] = _q(xs[idx], fmt)
        return _arr(out)
    y = x.quantize(k, i, f, fmt.overflow, fmt.rounding)
    n_vals = round(float((y.high - y.low) / y.step)) + 1 if y.low != y.high else 1
    if IDENTITY_LUT_WORKAROUND and 1 < n_vals <= 4096 and abs(float(y._factor)) < FACTOR_LIMIT:
        y = _lut_table(y, None, lambda vals: vals)
    return y


def _zero(like: Any) -> Any:
    """The constant 0 (no logic; a unit output of width 0 that the wrapper fills with code 0)."""
    return tracer().var.from_const(0.0, hwconf=like.hwconf)


def _chan_of(xs: np.ndarray, fmt: ChanFmt, what: str) -> list[Fmt | None]:
    """Per element of the last axis of ``xs``: its channel's format (element ``j`` is channel
    ``j % n_chans``: a token's channels, or a patch-merging concatenation of several tokens')."""
    n = fmt.n_chans
    if xs.ndim == 0 or xs.shape[-1] % n:
        raise TraceError(f"{what}: a per-channel format of {n} channels applied to a traced value of shape "
                         f"{xs.shape} (the channel axis must be last)")
    chans = [fmt.chan(c) for c in range(n)]
    return [chans[j % n] for j in range(xs.shape[-1])]


def _q_chan(x: Any, fmt: ChanFmt) -> Any:
    """Requantize per channel: element ``[..., c]`` to ``fmt.chan(c)`` (its own (k, i, f), the shared
    rounding/overflow, the identity-lookup workaround of :func:`_q` per element); a pruned channel
    (width 0) is the constant 0.  Values stay real numbers, so consumers read them unchanged and
    the unit's output port holds each element in its channel's width (the wrapper shifts it into
    the container code, :func:`~.verilog._out_elem`)."""
    if not _is_array(x):
        raise TraceError(f"per-channel format {fmt} applied to a scalar traced value (no channel axis)")
    xs = _elems(x)
    if xs.shape[-1] != fmt.n_chans:
        raise TraceError(f"a per-channel format of {fmt.n_chans} channels requantizes a traced value of shape "
                         f"{xs.shape}")
    return _map_chans(xs, fmt, "requant", _q)


def _relabel(x: Any, fmt: Fmt, what: str) -> Any:
    """Values read from a frame of ``fmt``.  With a per-channel format every element already lies on
    its channel's grid and range (the requant that produced it, here or in golden, put it there),
    so a wrap/truncate to the channel's (k, i, f) keeps the value and costs no logic, but tells da4ml
    the narrower width: consumers are built for the channel's bits, pruned channels become the
    constant 0.  Plain formats: ``x`` unchanged."""
    if not isinstance(fmt, ChanFmt):
        return x
    return _map_chans(_elems(x), fmt, what, lambda v, f: v.quantize(*f.kif, "WRAP", "TRN"))


def _map_chans(xs: np.ndarray, fmt: ChanFmt, what: str, fn: Any) -> Any:
    """``fn(value, its channel's Fmt)`` on every scalar variable of ``xs`` (channel = last-axis index,
    :func:`_chan_of`); elements of pruned channels become the constant 0."""
    per = _chan_of(xs, fmt, what)
    out = np.empty(xs.shape, dtype=object)
    for idx in np.ndindex(*xs.shape):
        f = per[idx[-1]]
        out[idx] = _zero(xs[idx]) if f is None else fn(xs[idx], f)
    return _arr(out)


def _arr(vars_: Any) -> Any:
    return tracer().array(vars_)


def _obj(x: Any) -> np.ndarray:
    """The scalar variables of a traced array (or of an object ndarray) as an object ndarray."""
    return np.asarray(_elems(x), dtype=object)


def _consts(codes: np.ndarray, lsb: float) -> np.ndarray:
    """Constant codes as an object ndarray of Python floats (code x LSB)."""
    c = np.asarray(codes)
    out = np.empty(c.shape, dtype=object)
    for idx in np.ndindex(*c.shape):
        out[idx] = float(c[idx]) * lsb
    return out


class TraceFx:
    """The RTL tracer's implementation of the fixed-point array interface (:mod:`swinfpga.ops.fx`):
    values are da4ml variables of real numbers (code x LSB) for one gathered group of tokens, so
    the ``frac`` arguments are ignored; requant is :func:`_q`, sums are adder trees (:func:`_tree`),
    lookups ROMs (:func:`lut_apply`), masks muxes on a bit."""

    def tap(self, name: str, x: Any) -> None:
        pass

    def requant(self, name: str, acc: Any, frac: int, fmt: Fmt) -> Any:
        if isinstance(acc, list):  # per head
            return [_q(a, fmt) for a in acc]
        return _q(acc, fmt)

    def matmul(self, x: Any, lin: N.Linear, x_fmt: Fmt) -> Any:
        from . import offload

        w = lin.weight.astype(np.float64) * lin.w_fmt.lsb
        policy = offload.current()
        if policy.on:  # some weights as DSP48E2 products (backends/rtl/offload.py)
            if tracer().name != "da4ml":
                raise TraceError(f"--dsp-offload needs the da4ml tracer, not {tracer().name}")
            acc = offload.matmul(x, w, policy)
        else:
            acc = (x if hasattr(x, "_vars") else _arr(x)) @ w
        if lin.bias is not None:
            assert lin.b_fmt is not None
            acc = acc + lin.bias.astype(np.float64) * lin.b_fmt.lsb
        return acc

    def scale(self, x: Any, code: Any, frac: int) -> Any:
        c = code * 2.0**-frac
        return _map(lambda v: v * c, x)

    def mul(self, a: Any, b: Any) -> np.ndarray:
        return _obj(a) * _obj(b)

    def mul_const(self, x: Any, codes: np.ndarray, fmt: Fmt) -> np.ndarray:
        return _obj(x) * _consts(codes, fmt.lsb)

    def add(self, a: Any, fa: int, b: Any, fb: int) -> Any:
        if isinstance(a, list):  # per head: b indexed by head
            return [a[h] + b[h] for h in range(len(a))]
        return _obj(a) + _obj(b)

    def sub(self, a: Any, fa: int, b: Any, fb: int) -> np.ndarray:
        return _obj(a) - _obj(b)

    def add_const(self, x: Any, fx: int, codes: np.ndarray, fmt: Fmt) -> np.ndarray:
        return _obj(x) + _consts(codes, fmt.lsb)

    def sum(self, x: Any, axis: int = -1, keepdims: bool = True) -> np.ndarray:
        xs = np.moveaxis(_obj(x), axis, -1)
        out = np.empty(xs.shape[:-1], dtype=object)
        for idx in np.ndindex(*out.shape):
            out[idx] = _tree(list(xs[idx]), lambda a, b: a + b)
        return np.expand_dims(out, axis) if keepdims else out

    def relu(self, x: Any) -> Any:
        return (x if hasattr(x, "_vars") else _arr(x)).relu()

    def lookup(self, x: Any, lut: Lut, what: str | None = None) -> Any:
        """A ROM per variable; ``what`` (e.g. "softmax inverse"): check the reachable inputs fit a
        da4ml table first and name the table if not."""
        if what is not None:
            _map(lambda v: _check_reachable(v, lut, what), x)
        return _map(lambda v: lut_apply(v, lut), x)

    def mask(self, x: Any, bits: Any) -> np.ndarray:
        const = tracer().var.from_const
        xs, bs = _obj(x), _obj(bits)
        out = np.empty(xs.shape, dtype=object)
        for idx in np.ndindex(*xs.shape):
            out[idx] = bs[idx[:-1] + (0,)].msb_mux(xs[idx], const(0.0, hwconf=xs[idx].hwconf))
        return out

    def count_lookup(self, bits: Any, table: np.ndarray, frac: int, name: str) -> np.ndarray:
        """``table[count]`` as a chain of muxes on ``count >= c`` (constants, no ROM)."""
        const = tracer().var.from_const
        bs = np.moveaxis(_obj(bits)[..., 0], -1, 0)  # tokens first
        nt = bs.shape[0]
        if len(table) < nt + 1:
            raise TraceError(f"{name}: inv_table has {len(table)} entries for {nt} tokens")
        tab = table.astype(np.float64) * 2.0**-frac
        out = np.empty(bs.shape[1:] + (1,), dtype=object)
        for idx in np.ndindex(*bs.shape[1:]):
            count = _tree([bs[(t, *idx)] for t in range(nt)], lambda a, b: a + b)
            inv = const(float(tab[0]), hwconf=count.hwconf)
            for c in range(1, nt + 1):
                inv = (count >= float(c)).msb_mux(const(float(tab[c]), hwconf=count.hwconf), inv)
            out[idx + (0,)] = inv
        return out

    def any_nonzero(self, x: Any) -> Any:
        xs = _obj(x)
        out = np.empty(xs.shape[:-1] + (1,), dtype=object)
        for idx in np.ndindex(*xs.shape[:-1]):
            out[idx + (0,)] = _tree([abs(v) > 0.0 for v in xs[idx]], lambda a, b: a | b)
        return _arr(out)


    # multi-head values are Python lists of per-head traced arrays (slices of the (R, C) array)
    def heads(self, x: Any, n: int) -> list[Any]:
        d = x.shape[-1] // n
        return [x[:, h * d: (h + 1) * d] for h in range(n)]

    def merge_heads(self, x: list[Any]) -> Any:
        return np.concatenate(x, axis=-1) if len(x) > 1 else x[0]

    def qk(self, q: list[Any], k: list[Any]) -> list[Any]:
        return [qh @ kh.T for qh, kh in zip(q, k, strict=True)]

    def pv(self, p: list[Any], v: list[Any]) -> list[Any]:
        return [ph @ vh for ph, vh in zip(p, v, strict=True)]

    def softmax(self, scores: list[Any], spec: SoftmaxSpec, valid: Any | None) -> list[Any]:
        """Per head, the kernel :func:`swinfpga.ops.softmax.kernel` on the head's (R, n) scores;
        ``valid``: R*n bits (row-major; any indexable) or None."""
        out = []
        for sc in scores:
            nr, nt = sc.shape
            v = None
            if valid is not None:
                v = np.empty((nr, nt), dtype=object)
                for i in range(nr):
                    for j in range(nt):
                        v[i, j] = valid[i * nt + j]
            out.append(_arr(ops.softmax.kernel(self, spec, _obj(sc), v)))
        return out

    def max(self, x: Any, axis: int = -1) -> np.ndarray:
        xs = np.moveaxis(_obj(x), axis, -1)
        out = np.empty(xs.shape[:-1], dtype=object)
        for idx in np.ndindex(*out.shape):
            out[idx] = _tree(list(xs[idx]), lambda a, b: a.max_of(b))
        return np.expand_dims(out, axis)

    def select(self, bits: Any, a: Any, fa: int, b: Any, fb: int) -> np.ndarray:
        """``bits.msb_mux(a, b)`` per element; a constant code ``b`` becomes a da4ml constant."""
        const = tracer().var.from_const
        is_const = not _is_array(b)
        if is_const:
            ks, xs = np.broadcast_arrays(_obj(bits), _obj(a))
            ys = None
        else:
            ks, xs, ys = np.broadcast_arrays(_obj(bits), _obj(a), _obj(b))
        out = np.empty(xs.shape, dtype=object)
        for idx in np.ndindex(*xs.shape):
            y = const(float(b) * 2.0**-fb, hwconf=xs[idx].hwconf) if is_const else ys[idx]  # type: ignore[index]
            out[idx] = ks[idx].msb_mux(xs[idx], y)
        return out

    def cast(self, x: Any, frac: int, fmt: Fmt) -> Any:
        k, i, f = fmt.kif
        return _map(lambda v: v.quantize(k, i, f, fmt.overflow, fmt.rounding), x)

    def ge(self, x: Any, fx: int, code: int, frac: int) -> Any:
        """A comparison.  (The softmax's top leading-one bit is one: an ``msb_mux`` key that is a wrap
        of a variable at that variable's own width makes da4ml 0.6 mux on the source instead, and its
        int64 interpreter then disagrees with its Python one.)"""
        c = float(code * 2.0**-frac)
        return _map(lambda v: v >= c, x)

    def shr(self, x: Any, j: int) -> Any:
        return _map(lambda v: v >> j, x)

    def index(self, a: Any, frac: int, lut: Lut) -> Any:
        table, out_lsb = lut.array(), lut.out_fmt.lsb

        def f(vals: np.ndarray) -> np.ndarray:
            return table[np.clip(np.round(vals * 2**frac).astype(np.int64), 0, lut.size - 1)] * out_lsb

        return _map(lambda v: _lut_table(v, table, f), a)


FX = TraceFx()


def _map(fn: Any, x: Any) -> Any:
    if not _is_array(x):
        return fn(x)
    xs = _obj(x)
    out = np.empty(xs.shape, dtype=object)
    for idx in np.ndindex(*xs.shape):
        out[idx] = fn(xs[idx])
    return out


def _lut_table(var: Any, values: np.ndarray, fn_addr: Any, max_entries: int = 1 << 14) -> Any:
    """Look ``var`` up in a numpy table indexed from ``var``'s lowest value; ``fn_addr`` maps the
    real values of ``var`` to output real values."""
    lo, hi, st = float(var.low), float(var.high), float(var.step)
    n = round((hi - lo) / st) + 1
    if n > max_entries:
        raise TraceError(f"lookup over {n} input values is too large (> {max_entries})")
    vals = lo + np.arange(n) * st
    return var.lookup(np.asarray(fn_addr(vals), dtype=np.float64))


def lut_apply(var: Any, lut: Lut) -> Any:
    """``lut.lookup`` on the code of ``var`` (a value of ``lut.in_fmt``'s LSB grid)."""
    lsb = lut.in_fmt.lsb
    if lut.offset:
        var = var - lut.offset * lsb
    if lut.shift:
        ib = max(1, math.ceil(math.log2(float(max(abs(var.low), abs(var.high))) + 1)) + 1)
        var = var.quantize(1 if var.low < 0 else 0, ib, lut.in_fmt.frac - lut.shift, "WRAP", "TRN")
    table = lut.array()
    out_lsb = lut.out_fmt.lsb

    def f(vals: np.ndarray) -> np.ndarray:
        addr = np.clip(np.round(vals / (lsb * 2**lut.shift)).astype(np.int64), 0, lut.size - 1)
        return table[addr] * out_lsb

    return _lut_table(var, table, f)


MAX_TABLE = 1 << 14  # da4ml's lookup limit (entries per table)


def _check_reachable(var: Any, lut: Lut, what: str) -> None:
    """Raise naming ``lut`` when ``var`` can take more values than one da4ml table holds."""
    n = 1 if var.low == var.high else round(float((var.high - var.low) / var.step)) + 1
    if n > MAX_TABLE:
        layer = lut.name.rsplit("_", 1)[0]  # importers name tables LAYER_<role>
        raise TraceError(f"layer {layer!r}: {what} table {lut.name!r} (input {lut.in_fmt}, {lut.size} entries): "
                         f"the RTL lookup would need {n} entries over its reachable inputs, more than da4ml's "
                         f"{MAX_TABLE}; narrow that table's input quantizer (fewer integer/fraction bits) and "
                         "retrain, or convert with --no-rtl")


def _linear(x: Any, lin: N.Linear, in_fmt: Fmt) -> Any:
    return ops.linear.kernel(FX, lin, x, in_fmt, "")


def trace_softmax_row(sm: SoftmaxSpec, masked: bool = False) -> Any:
    """Trace one softmax row on its own (inputs: ``n`` score codes, then ``n`` valid bits when
    ``masked``; outputs: ``n`` probability values); returns da4ml's ``CombLogic`` (for tests and
    cost measurements)."""
    tr = tracer()
    n = sm.n
    inp = tr.inputs((2 * n if masked else n,))
    k, i, f = sm.score_fmt.kif
    s = inp[:n].quantize(k, i, f)
    valid = inp[n:].quantize(0, 1, 0) if masked else None
    sv = _obj(s).reshape(1, n)
    vv = None if valid is None else _obj(valid).reshape(1, n)
    return tr.trace(inp, _arr(ops.softmax.kernel(FX, sm, sv, vv).reshape(n)))


def _attention(x: Any, n: N.WindowAttention, in_fmt: Fmt, mask: Any | None, keys: Any | None = None) -> Any:
    q, k, v = _attention_qkv(x, n, in_fmt)
    return _linear(_attention_core(q, k, v, n, _pair_valid(mask, keys, q.shape[0], k.shape[0])), n.proj, n.attn_fmt)


def _pair_valid(shift_bits: Any | None, keys: Any | None, nr: int, nt: int) -> list[Any] | None:
    """Valid bits of the ``nr x nt`` score pairs (row-major): the shifted-window bits ``shift_bits``
    (flat) and, with a padding mask, the key token's bit ``keys`` ((nt, 1) bits of the window's
    tokens; a window of padding only keeps all its keys, as the golden model does)."""
    if keys is None:
        return None if shift_bits is None else [shift_bits[j] for j in range(nr * nt)]
    kb = [keys[j, 0] for j in range(nt)]
    none = ~_tree(list(kb), lambda a, b: a | b)
    kv = [b | none for b in kb]
    if shift_bits is None:
        return [kv[j % nt] for j in range(nr * nt)]
    return [shift_bits[j] & kv[j % nt] for j in range(nr * nt)]


def _attention_qkv(x: Any, n: N.WindowAttention, in_fmt: Fmt) -> tuple[Any, Any, Any]:
    """Token-local q, k, v projections of (tokens, C) variables."""
    return ops.window_attention.qkv(FX, n, x, in_fmt)


def _attention_core(q: Any, k: Any, v: Any, n: N.WindowAttention, mask: Any | None, bias: Any | None = None) -> Any:
    """Query rows ``q`` (R, C) of one window against all its keys/values ``k``, ``v`` (n, C): the
    shared kernel :func:`swinfpga.ops.window_attention.core` (codes of ``n.attn_fmt``; the projection
    is applied by the caller).  ``mask``: R*n valid bits (row-major); ``bias``: (heads, R, n) values
    (default: the constant bias matrix, R == n)."""
    if bias is None:
        bias = n.bias_matrix().astype(np.float64) * n.bias_fmt.lsb  # heads, N, N
    return ops.window_attention.core(FX, n, q, k, v, mask, bias)


# steps of nodes that balanced segments split into phases (their ``Role.phases`` other than "full"):
# handler(node, phase, vals, fmt_of, mask, bias) -> the step's output, its values stored in ``vals``
TRACE_PHASES = Registry("RTL trace phases", TraceError)


@TRACE_PHASES.handles(N.WindowAttention)
def _window_attention_phase(node: N.WindowAttention, ph: str, vals: dict, fmt_of: dict, mask: Any,
                            bias: Any) -> Any:
    name = node.name
    if ph == "qkv":
        q, k, v = _attention_qkv(vals[node.src], node, fmt_of[node.src])
        vals[f"{name}.q"], vals[f"{name}.k"], vals[f"{name}.v"] = q, k, v
        return v
    if ph == "core":
        y = _attention_core(vals[f"{name}.q"], vals[f"{name}.k"], vals[f"{name}.v"], node,
                            mask if node.shift else None, bias)
        vals[f"{name}.o"] = y
        return y
    if ph != "proj":
        raise TraceError(f"{name}: no attention phase {ph!r}")
    y = _linear(vals[f"{name}.o"], node.proj, node.attn_fmt)
    vals[name] = y
    return y


# ----- per-node handlers: the operator kernels of swinfpga.ops on TraceFx ----------------------------
TRACE = Registry("RTL trace", TraceError)


def _trace_node(node: N.Node, vals: dict[str, Any], fmt_of: dict[str, Fmt], x: Any, in_fmt: Fmt,
                mask: Any | None) -> Any:
    """Trace one IR node on (tokens, C) variables; ``x``: the previous output (the raw gathered
    group for patch embedding/merging, format ``in_fmt``); ``mask``: shifted-window valid bits."""
    y = TRACE.handler(node)(node, vals, fmt_of, x, in_fmt, mask)
    return y if hasattr(y, "_vars") else _arr(y)


@TRACE.handles(N.PatchEmbed)
def _patch_embed(node: N.PatchEmbed, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    return ops.patch_embed.kernel(FX, node, x, in_fmt)  # x: the planner's gathered patches


@TRACE.handles(N.PatchMerging)
def _patch_merging(node: N.PatchMerging, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    return ops.patch_merging.kernel(FX, node, x, in_fmt)  # x: the planner's gathered 2x2 concatenation


@TRACE.handles(N.WindowAttention)
def _window_attention(node: N.WindowAttention, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    keys = vals[node.mask] if node.mask is not None else None
    return _attention(vals[node.src], node, fmt_of[node.src], mask if node.shift else None, keys)


@TRACE.handles(N.TokenMask)
def _token_mask(node: N.TokenMask, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    return ops.token_mask.kernel(FX, node, vals[node.src])


@TRACE.handles(N.Mlp)
def _mlp(node: N.Mlp, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    return ops.mlp.kernel(FX, node, vals[node.src], fmt_of[node.src])


@TRACE.handles(N.LayerNorm)
def _layer_norm(node: N.LayerNorm, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    return ops.layer_norm.kernel(FX, node, vals[node.src], fmt_of[node.src])


@TRACE.handles(N.Add)
def _add(node: N.Add, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    return ops.add.kernel(FX, node, vals[node.a], fmt_of[node.a], vals[node.b], fmt_of[node.b])


@TRACE.handles(N.Pool)
def _pool(node: N.Pool, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    keep = vals[node.mask] if node.mask is not None else None
    return ops.pool.kernel(FX, node, vals[node.src], fmt_of[node.src], keep)


@TRACE.handles(N.Dense)
def _dense(node: N.Dense, vals: dict, fmt_of: dict, x: Any, in_fmt: Fmt, mask: Any) -> Any:
    return ops.dense.kernel(FX, node, vals[node.src], fmt_of[node.src])


def trace_segment(seg: Segment, fmts: dict[str, Fmt], cutoff: float = -1.0) -> TracedUnit:
    """Trace ``seg``'s group function: inputs ``n_in`` codes (+ ``n_mask`` bits), outputs ``n_out``.

    ``fmts``: output format of every node (``Model.infer()``).  A part of a balanced segment
    (``seg.steps``) is traced by :func:`_trace_part`.  ``cutoff``: the pipelining cutoff the unit
    will be split at (latency units per stage; products are re-timed against it, :mod:`.timing`)."""
    if seg.steps:
        return _trace_part(seg, fmts, cutoff)
    tr = tracer()
    n_tok = seg.tokens.shape[1]
    inp = tr.inputs((seg.n_in + seg.n_mask,))
    k, i, f = seg.in_fmt.kif
    xin = inp[: seg.n_in].quantize(k, i, f)
    mask = None
    if seg.n_mask:
        mask = inp[seg.n_in:].quantize(0, 1, 0)
    vals: dict[str, Any] = {}
    node_out: dict[str, Any] = {}
    fmt_of: dict[str, Fmt] = dict(fmts)
    x = _relabel(xin.reshape(n_tok, -1), seg.in_fmt, f"{seg.name} input {seg.src}")
    vals[seg.src] = x
    for node in seg.nodes:
        y = _trace_node(node, vals, fmt_of, x, seg.in_fmt, mask)
        vals[node.name] = y
        node_out[node.name] = y
        if not isinstance(node, N.TokenMask):  # the mask is a side value: the next node reads the data
            x = y
    return _finish(seg, inp, vals[seg.dst].flatten(), node_out, cutoff)


def _finish(seg: Segment, inp: Any, out: Any, node_out: dict[str, Any], cutoff: float) -> TracedUnit:
    """Re-time the products (:func:`.timing.dsp_products`), then record the program and each
    node's output latency (``node_out``: node label -> its traced output)."""
    from .timing import DSP_PRODUCT_NS, UNITS_PER_NS, dsp_products

    tr = tracer()
    if tr.name == "da4ml":
        # node outputs too: da4ml rebuilds some of them downstream (a constant product moves into a
        # saturating mux), and the originals still give the node's latency
        roots = list(_elems(out).ravel()) + [v for y in node_out.values() for v in _elems(y).ravel()]
        dsp_products(roots, cutoff, DSP_PRODUCT_NS * UNITS_PER_NS)
    node_lat = {k: float(np.max([float(v.latency) for v in _elems(y).ravel()])) for k, y in node_out.items()}
    comb = tr.trace(inp, out)
    in_kif = tuple(tr.kif(q) for q in comb.inp_qint)
    out_kif = tuple(tr.kif(q) for q in comb.out_qint)
    _check_live(seg, in_kif)
    consts: list[int | None] = []
    for q, kif, fm in zip(comb.out_qint, out_kif, seg.out_elem_fmts, strict=True):
        if sum(kif) == 0:
            consts.append(int(round(q.min / fm.lsb)))
        else:
            consts.append(None)
    return TracedUnit(comb, in_kif, out_kif, tuple(consts), node_lat)


def _check_live(seg: Segment, in_kif: tuple[tuple[int, int, int], ...]) -> None:
    """A unit that reads none of its inputs computes constants only, and da4ml emits no valid
    Verilog for it (a ``[-1:0]`` input port): per-channel formats can prune every value a unit
    depends on (e.g. every channel of a pool output)."""
    if not any(sum(k) for k in in_kif):
        raise TraceError(f"{seg.name} ({', '.join(seg.labels)}) reads none of its inputs: per-channel formats "
                         "(or zero weights) make every output a constant; keep at least one channel of the "
                         "pruned per-channel formats in it (width > 0), or convert with --no-rtl")


def _trace_part(seg: Segment, fmts: dict[str, Fmt], cutoff: float = -1.0) -> TracedUnit:
    """Trace one part of a balanced segment (see :func:`swinfpga.backends.rtl.plan.split_balanced`):
    inputs are ``seg.in_values`` (value-major, then token, then channel; + mask bits), outputs
    ``seg.out_values`` in the same order; attention runs as ``qkv`` / ``core`` / ``proj`` steps."""
    from .plan import value_fmt

    n_tok = int(seg.tokens.shape[1])
    node_of = {n.name: n for n in seg.nodes}
    inp = tracer().inputs((seg.n_in + seg.n_mask + seg.n_const,))
    mask = inp[seg.n_in: seg.n_in + seg.n_mask].quantize(0, 1, 0) if seg.n_mask else None
    bias = None
    if seg.n_const:
        assert seg.const_fmt is not None
        bias = inp[seg.n_in + seg.n_mask:].quantize(*seg.const_fmt.kif).reshape(-1, n_tok, seg.win_n)
    vals: dict[str, Any] = {}
    fmt_of: dict[str, Fmt] = dict(fmts)
    off = 0
    for name, ch in seg.in_values:
        fm = seg.in_fmt if name == seg.src else value_fmt(name, node_of, fmts)
        k, i, f = fm.kif
        nt = seg.win_n if name in seg.wide else n_tok
        vals[name] = _relabel(inp[off: off + nt * ch].quantize(k, i, f).reshape(nt, ch), fm, f"{seg.name} input {name}")
        off += nt * ch
    x = vals[seg.in_values[0][0]]
    node_out: dict[str, Any] = {}
    for name, ph in seg.steps:
        node = node_of[name]
        if ph == "full":
            y = _trace_node(node, vals, fmt_of, x, seg.in_fmt, mask)
            vals[name] = y
        else:  # a step of a node that a balanced segment splits (see backends/rtl/roles.py)
            y = TRACE_PHASES.handler(node)(node, ph, vals, fmt_of, mask, bias)
        label = name if ph == "full" else f"{name}.{ph}"
        node_out[label] = y
        if not isinstance(node, N.TokenMask):
            x = y
    out = _arr(np.concatenate([np.asarray(_elems(vals[name])).ravel() for name, _ in seg.out_values]))
    return _finish(seg, inp, out, node_out, cutoff)


def predict_codes(unit: TracedUnit, seg: Segment, x_codes: np.ndarray) -> np.ndarray:
    """Run the traced program with da4ml's int64 interpreter: (M, n_in + n_mask) codes ->
    (M, n_out) codes of ``seg.out_fmt``."""
    x = np.asarray(x_codes, dtype=np.float64).copy()
    x[:, : seg.n_in] *= np.asarray([f.lsb for f in seg.in_elem_fmts])
    if seg.n_const:
        assert seg.const_fmt is not None
        x[:, seg.n_in + seg.n_mask:] *= seg.const_fmt.lsb
    y = unit.comb.predict(x)
    return np.round(np.asarray(y) / np.asarray([f.lsb for f in seg.out_elem_fmts])).astype(np.int64)
