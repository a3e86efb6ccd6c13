"""The model graph: an ordered tuple of nodes (topological), JSON round-trip, shape/format
inference and validation."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SwinfpgaError
from ..fixed import ChanFmt, Fmt
from ..lut import Lut, SoftmaxSpec
from ..outdir import umask
from ..registry import Registry
from . import nodes as N
from .nodes import IRError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TensorInfo:
    """Per-sample shape and format of a node's output."""

    shape: tuple[int, ...]
    fmt: Fmt


@dataclass(frozen=True, eq=False)
class Model:
    name: str
    nodes: tuple[N.Node, ...]
    output: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.infer()  # validates

    # ----- access --------------------------------------------------------------------------
    @property
    def input(self) -> N.Input:
        first = self.nodes[0]
        if not isinstance(first, N.Input):
            raise IRError("the first node must be an Input")
        return first

    def node(self, name: str) -> N.Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def of_type(self, cls: type) -> list[Any]:
        return [n for n in self.nodes if isinstance(n, cls)]

    # ----- inference -----------------------------------------------------------------------
    def infer(self) -> dict[str, TensorInfo]:
        """Output shape and format of every node; raises :class:`IRError` on inconsistency."""
        info: dict[str, TensorInfo] = {}
        seen: set[str] = set()
        for n in self.nodes:
            if n.name in seen:
                raise IRError(f"duplicate node name {n.name!r}")
            seen.add(n.name)
            for i in n.inputs:
                if i not in info:
                    raise IRError(f"{n.name}: input {i!r} is not defined before it")
            info[n.name] = _infer_node(n, [info[i] for i in n.inputs])
        if self.output not in info:
            raise IRError(f"output {self.output!r} is not a node")
        return info

    # ----- JSON ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "name": self.name,
            "output": self.output,
            "meta": self.meta,
            "nodes": [_encode(n) for n in self.nodes],
        }

    @classmethod
    def from_json(cls, d: Any, source: str = "IR JSON") -> Model:
        """Build a model from its JSON form; any malformed input raises :class:`IRError` naming
        ``source`` (the file), the node and the field."""
        if not isinstance(d, dict):
            raise IRError(f"{source}: expected a JSON object with keys schema, name, output, nodes; "
                          f"got {_json_kind(d)}; is this a swinfpga IR file (model.json)?")
        if d.get("schema") != SCHEMA_VERSION:
            raise IRError(f"{source}: IR schema {d.get('schema')!r} unsupported (this swinfpga reads "
                          f"{SCHEMA_VERSION}); regenerate the file with this version of swinfpga")
        for key, typ in (("name", str), ("output", str), ("nodes", list)):
            if key not in d:
                raise IRError(f"{source}: missing key {key!r}; regenerate the file (swinfpga convert / train)")
            if not isinstance(d[key], typ):
                raise IRError(f"{source}: key {key!r} must be a {_KIND[typ]}, got {_json_kind(d[key])}")
        meta = d.get("meta", {})
        if not isinstance(meta, dict):
            raise IRError(f"{source}: key 'meta' must be an object, got {_json_kind(meta)}")
        if not d["nodes"]:
            raise IRError(f"{source}: key 'nodes' is empty; a model needs at least an Input node")
        nodes = []
        for i, x in enumerate(d["nodes"]):
            label = _node_label(i, x)
            try:
                n = _decode(x)
                if not isinstance(n, N.Node):
                    raise IRError(f"expected a node object with '__type__' (one of {', '.join(N.NODE_TYPES)}), "
                                  f"got {_json_kind(x)}")
            except SwinfpgaError as e:
                raise IRError(f"{source}: {label}: {e}") from None
            except _DECODE_ERRORS as e:
                raise IRError(f"{source}: {label}: invalid ({type(e).__name__}: {_short(e)}); "
                              "fix the value or regenerate the file") from None
            nodes.append(n)
        try:
            return cls(d["name"], tuple(nodes), d["output"], dict(meta))
        except SwinfpgaError as e:
            raise IRError(f"{source}: {e}") from None
        except _DECODE_ERRORS as e:
            raise IRError(f"{source}: inconsistent model ({type(e).__name__}: {_short(e)}); "
                          "regenerate the file") from None

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_json(), separators=(",", ":")))

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Read an IR JSON file; a missing, unreadable or malformed file raises :class:`IRError`."""
        p = Path(path)
        return cls.from_json(read_json(p, "IR", IRError), source=str(p))


_DECODE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError,
                  AssertionError, ZeroDivisionError, MemoryError)
_KIND = {str: "string", list: "list", dict: "object", int: "integer", float: "number", bool: "boolean"}


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    for t in (bool, str, list, dict, int, float):
        if isinstance(v, t):
            return f"a {_KIND[t]}" if t is not int else "an integer"
    return type(v).__name__


def _short(e: BaseException, limit: int = 200) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= limit else s[:limit] + " ..."


def _node_label(i: int, x: Any) -> str:
    label = f"node {i}"
    if isinstance(x, dict):
        if isinstance(x.get("name"), str):
            label += f" {x['name']!r}"
        if isinstance(x.get("__type__"), str):
            label += f" ({x['__type__']})"
    return label


def read_json(path: Path, what: str, error: type[Exception]) -> Any:
    """Parse the JSON file ``path`` (a ``what`` file); every failure raises ``error`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found; check the path") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a {what} JSON file") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text (UTF-8 JSON) file; expected a {what} JSON file") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} file: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                    f"fix or regenerate the {what} file") from None
    except (RecursionError, ValueError) as e:
        raise error(f"{path}: unreadable JSON ({type(e).__name__}); fix or regenerate the {what} file") from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp creates 0600; give the file the user's umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----- inference per node (registered by node type; re-exported by each swinfpga.ops module) -----------
INFER = Registry("shape/format inference", IRError)


def _infer_node(n: N.Node, ins: list[TensorInfo]) -> TensorInfo:
    out = INFER.handler(n)(n, ins)
    check_chan_fmts(n, ins)
    return out


# ----- per-channel formats (ChanFmt): only where every back end carries them ----------------------------
def chan_sites(n: N.Node, ins: list[TensorInfo]) -> dict[str, int]:
    """Fields of ``n`` that may hold a per-channel format (:class:`~swinfpga.fixed.ChanFmt`), with the
    channel count of the tensor each one produces: outputs of token-local requantizations (linear
    layers, a ReLU MLP's hidden layer, LayerNorm, residual adds, pooling), whose codes no table reads."""
    lin = {"linear.out_fmt": n.linear.n_out} if isinstance(n, N.PatchEmbed | N.PatchMerging | N.Dense) else {}
    if isinstance(n, N.WindowAttention):
        return {f"{k}.out_fmt": getattr(n, k).n_out for k in ("q", "k", "v", "proj")}
    if isinstance(n, N.Mlp):
        relu = {"fc1.out_fmt": n.fc1.n_out, "hidden_fmt": n.fc1.n_out} if n.act == "relu" else {}
        return {**relu, "fc2.out_fmt": n.fc2.n_out}
    if isinstance(n, N.PatchMerging) and n.norm is not None:
        return {**lin, "norm.out_fmt": n.linear.n_in}
    if isinstance(n, N.LayerNorm | N.Add | N.Pool):
        return {"out_fmt": int(ins[0].shape[-1])}
    return lin


def _fmt_fields(v: Any, path: str = "") -> list[tuple[str, Fmt]]:
    """Every format inside ``v`` (a node, Linear, table ...) as ``(dotted field path, format)``."""
    if isinstance(v, Fmt):
        return [(path, v)]
    if isinstance(v, np.ndarray | str | int | float | tuple) or v is None or not dataclasses.is_dataclass(v):
        return []
    out: list[tuple[str, Fmt]] = []
    for k, x in vars(v).items():
        if k != "name":
            out += _fmt_fields(x, f"{path}.{k}" if path else k)
    return out


def check_chan_fmts(n: N.Node, ins: list[TensorInfo]) -> None:
    """Raise :class:`IRError` for a per-channel format outside :func:`chan_sites` (attention scores,
    softmax, LayerNorm internals, tables, weights, the model input ...) or with a channel count that
    differs from its tensor's."""
    sites = chan_sites(n, ins)
    for path, fmt in _fmt_fields(n):
        if not isinstance(fmt, ChanFmt):
            continue
        if path not in sites:
            why = {"Input": "the input path (data loading, test vectors) quantizes the whole tensor to one format",
                   "fc1.out_fmt": "its codes address the GELU table",
                   "hidden_fmt": "it is the GELU table's output format"}.get(
                path if isinstance(n, N.Mlp) else type(n).__name__, "no back end carries it there")
            where = (f"per-channel formats fit {type(n).__name__} fields {', '.join(sites)} only" if sites
                     else f"{type(n).__name__} nodes take no per-channel format")
            raise IRError(f"{n.name}: {path} is a per-channel format ({fmt}), but {why} ({where}); use one "
                          f"format for the whole tensor there, e.g. its container {fmt.container}")
        if fmt.n_chans != sites[path]:
            raise IRError(f"{n.name}: {path} has formats for {fmt.n_chans} channels but the tensor has "
                          f"{sites[path]}; give one (width, int_bits) per channel")


@INFER.handles(N.Input)
def infer_input(n: N.Input, ins: list[TensorInfo]) -> TensorInfo:
    return TensorInfo(tuple(n.shape), n.fmt)


@INFER.handles(N.PatchEmbed)
def infer_patch_embed(n: N.PatchEmbed, ins: list[TensorInfo]) -> TensorInfo:
    x = ins[0]
    h, w, c = x.shape
    if h % n.patch or w % n.patch:
        raise IRError(f"{n.name}: patch {n.patch} does not divide the input {h}x{w}")
    if n.linear.n_in != n.patch * n.patch * c:
        raise IRError(f"{n.name}: weight rows {n.linear.n_in} != patch*patch*C = {n.patch * n.patch * c}")
    n.linear.check_input(x.fmt, n.name)
    return TensorInfo((h // n.patch, w // n.patch, n.linear.n_out), n.linear.out_fmt)


@INFER.handles(N.WindowAttention)
def infer_window_attention(n: N.WindowAttention, ins: list[TensorInfo]) -> TensorInfo:
    x = ins[0]
    if x.shape != (*n.resolution, n.dim):
        raise IRError(f"{n.name}: input shape {x.shape} != {(*n.resolution, n.dim)}")
    for lin in (n.q, n.k, n.v):
        lin.check_input(x.fmt, n.name)
    n.proj.check_input(n.attn_fmt, n.name)
    if n.mask is not None and ins[1].shape != (*n.resolution, 1):
        raise IRError(f"{n.name}: mask {n.mask!r} shape {ins[1].shape} != {(*n.resolution, 1)}")
    return TensorInfo(x.shape, n.proj.out_fmt)


@INFER.handles(N.TokenMask)
def infer_token_mask(n: N.TokenMask, ins: list[TensorInfo]) -> TensorInfo:
    x = ins[0]
    if len(x.shape) != 3:
        raise IRError(f"{n.name}: a token mask needs an (H, W, C) input, got {x.shape}")
    return TensorInfo((*x.shape[:2], 1), N.MASK_FMT)


@INFER.handles(N.Mlp)
def infer_mlp(n: N.Mlp, ins: list[TensorInfo]) -> TensorInfo:
    x = ins[0]
    if n.fc1.n_in != x.shape[-1] or n.fc2.n_in != n.fc1.n_out or n.fc2.n_out != x.shape[-1]:
        raise IRError(f"{n.name}: MLP shapes {n.fc1.n_in}->{n.fc1.n_out}->{n.fc2.n_out} vs C={x.shape[-1]}")
    n.fc1.check_input(x.fmt, n.name)
    n.fc2.check_input(n.hidden_fmt, n.name)
    return TensorInfo(x.shape, n.fc2.out_fmt)


@INFER.handles(N.LayerNorm)
def infer_layer_norm(n: N.LayerNorm, ins: list[TensorInfo]) -> TensorInfo:
    x = ins[0]
    c = x.shape[-1]
    if n.gamma.shape != (c,) or n.beta.shape != (c,):
        raise IRError(f"{n.name}: gamma/beta must have shape ({c},)")
    if n.mean_fmt.frac < x.fmt.frac:
        raise IRError(f"{n.name}: mean_fmt must keep at least the input's {x.fmt.frac} fraction bits")
    return TensorInfo(x.shape, n.out_fmt)


@INFER.handles(N.PatchMerging)
def infer_patch_merging(n: N.PatchMerging, ins: list[TensorInfo]) -> TensorInfo:
    x = ins[0]
    h, w, c = x.shape
    if h % 2 or w % 2:
        raise IRError(
            f"{n.name}: patch merging needs an even resolution, got {h}x{w}; "
            "change the patch size or the number of stages"
        )
    if n.linear.n_in != 4 * c:
        raise IRError(f"{n.name}: reduction weight rows {n.linear.n_in} != 4C = {4 * c}")
    n.linear.check_input(n.norm.out_fmt if n.norm else x.fmt, n.name)
    return TensorInfo((h // 2, w // 2, n.linear.n_out), n.linear.out_fmt)


@INFER.handles(N.Add)
def infer_add(n: N.Add, ins: list[TensorInfo]) -> TensorInfo:
    a, b = ins
    if a.shape != b.shape:
        raise IRError(f"{n.name}: cannot add shapes {a.shape} and {b.shape}")
    return TensorInfo(a.shape, n.out_fmt)


@INFER.handles(N.Pool)
def infer_pool(n: N.Pool, ins: list[TensorInfo]) -> TensorInfo:
    x = ins[0]
    if n.mask is not None:
        ntok = int(np.prod(x.shape[:-1]))
        if ins[1].shape != (*x.shape[:-1], 1):
            raise IRError(f"{n.name}: mask {n.mask!r} shape {ins[1].shape} != {(*x.shape[:-1], 1)}")
        assert n.inv_table is not None
        if n.inv_table.shape != (ntok + 1,):
            raise IRError(f"{n.name}: inv_table shape {n.inv_table.shape} != ({ntok + 1},)")
    return TensorInfo((x.shape[-1],), n.out_fmt)


@INFER.handles(N.Dense)
def infer_dense(n: N.Dense, ins: list[TensorInfo]) -> TensorInfo:
    x = ins[0]
    if n.linear.n_in != x.shape[-1]:
        raise IRError(f"{n.name}: weight rows {n.linear.n_in} != input features {x.shape[-1]}")
    n.linear.check_input(x.fmt, n.name)
    return TensorInfo((*x.shape[:-1], n.linear.n_out), n.linear.out_fmt)


def _type_ok(v: Any, t: Any) -> bool:
    """Whether a decoded JSON value ``v`` fits the dataclass field annotation ``t``."""
    if t is Any:
        return True
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(v, a) for a in typing.get_args(t))
    if t is type(None):
        return v is None
    if origin is tuple:
        args = typing.get_args(t)
        if not isinstance(v, tuple | list):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(x, args[0]) for x in v)
        return len(v) == len(args) and all(_type_ok(x, a) for x, a in zip(v, args, strict=True))
    if origin is not None:
        return isinstance(v, origin)
    if t is int:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)
    if t is float:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if isinstance(t, type):
        return isinstance(v, t)
    return True


def _hint_name(t: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if t in names:
        return names[t]
    return str(t).replace("typing.", "").replace("numpy.ndarray", "integer codes")


# ----- generic (de)serialization ---------------------------------------------------------------------
# optional fields added after schema 1 shipped: left out while unset, so the JSON (and the content
# hashes of the RTL / C-sim build cache) of existing models stay byte for byte as they were
_OMIT_IF_NONE = frozenset({"mask", "inv_table"})


def _encode(v: Any) -> Any:
    if isinstance(v, Fmt):
        return {"__fmt__": v.to_json()}
    if isinstance(v, Lut):
        return {"__lut__": v.to_json()}
    if isinstance(v, SoftmaxSpec):
        return {"__softmax__": v.to_json()}
    if isinstance(v, np.ndarray):
        return {"__codes__": v.astype(np.int64).tolist(), "shape": list(v.shape)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        d = {f.name: _encode(getattr(v, f.name)) for f in dataclasses.fields(v)
             if not (f.name in _OMIT_IF_NONE and getattr(v, f.name) is None)}
        d["__type__"] = type(v).__name__
        return d
    if isinstance(v, tuple | list):
        return [_encode(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    return v


_TYPES: dict[str, type] = {**N.NODE_TYPES, "Linear": N.Linear}


def _decode(v: Any) -> Any:
    if isinstance(v, dict):
        if "__fmt__" in v:
            return Fmt.from_json(v["__fmt__"])
        if "__lut__" in v:
            return Lut.from_json(v["__lut__"])
        if "__softmax__" in v:
            return SoftmaxSpec.from_json(v["__softmax__"])
        if "__codes__" in v:
            codes = np.asarray(v["__codes__"])
            if codes.dtype.kind not in "iu" and codes.size:
                raise IRError("'__codes__' must be a (nested) list of integers")
            return codes.astype(np.int64).reshape(v["shape"])
        if "__type__" in v:
            cls = _TYPES.get(v["__type__"])
            if cls is None:
                raise IRError(f"unknown IR node type {v['__type__']!r}")
            hints = typing.get_type_hints(cls)
            kw = {}
            for f in dataclasses.fields(cls):
                if f.name in v:
                    try:
                        val = _decode(v[f.name])
                    except SwinfpgaError as e:
                        raise IRError(f"field {f.name!r}: {e}") from None
                    hint = hints.get(f.name, Any)
                    if not _type_ok(val, hint):
                        raise IRError(f"field {f.name!r} must be {_hint_name(hint)}, got {_json_kind(v[f.name])} "
                                      f"({_short(repr(v[f.name]), 60)})")
                    if "tuple" in str(hint) and isinstance(val, list):
                        val = tuple(val)
                    kw[f.name] = val
                elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise IRError(f"missing field {f.name!r} ({_hint_name(hints.get(f.name, Any))})")
            return cls(**kw)
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v
