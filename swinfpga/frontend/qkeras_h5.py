"""Legacy QKeras (Keras 2) ``.h5`` models -> IR, read straight from the file with h5py.

Neither QKeras nor Keras 2 is imported.  The file layout read here (Keras 2 HDF5 format):

* root attribute ``model_config``: JSON ``{"class_name": "Functional" | "Model" | "Sequential",
  "config": {"layers": [...], ...}}``; each layer ``{"class_name", "config": {"name", ...},
  "inbound_nodes": [[[src_name, 0, 0, {}], ...]]}`` (Sequential: no inbound nodes, chained).
* group ``model_weights``: attribute ``layer_names``; per layer a group with attribute
  ``weight_names`` (e.g. ``b"qdense/kernel:0"``) and datasets at those paths below the group.

Weights are stored unquantized; the layer's quantizer config is applied here (``quantized_bits``:
round to nearest, saturate; ``quantized_po2``: nearest power of two).  An output quantizer comes
from a following ``QActivation`` (fused); without one, a layer keeps its exact accumulator format.

Supported: InputLayer, QDense, QConv2D (patch embedding: kernel == stride, valid padding),
QActivation (quantized_bits / quantized_relu), BatchNormalization (folded into the preceding
QDense/QConv2D; the folded weights are re-quantized to 4 more bits), Add, Reshape / Flatten (layout
no-ops that keep the channel axis last), Permute (identity only), GlobalAveragePooling1D/2D.

Difference from QKeras itself: QKeras rounds ties to even (``tf.round``); swinfpga rounds half up
(``AP_RND``), as hls4ml's ``ap_fixed`` does.  Only exact ties differ.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SwinfpgaError
from ..fixed import Fmt, FormatError, acc_fmt, fit_fmt, from_qkeras
from ..ir import nodes as N
from ..ir.graph import Model

SUPPORTED = (
    "InputLayer", "QDense", "QConv2D", "QActivation", "BatchNormalization", "Add", "Reshape", "Flatten",
    "Permute", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
)
_FLOAT_TWINS = {"Dense": "QDense", "Conv2D": "QConv2D", "Activation": "QActivation", "ReLU": "QActivation"}


class LegacyModelError(SwinfpgaError, ValueError):
    """The .h5 file cannot be converted; the message names the layer and the fix."""


@dataclass
class _Layer:
    cls: str
    name: str
    cfg: dict[str, Any]
    inputs: list[str]
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Tensor:
    """Where a Keras tensor lives in the IR: node name, per-sample shape and format."""

    node: str
    shape: tuple[int, ...]
    fmt: Fmt


def read_h5(path: str | Path) -> tuple[list[_Layer], list[str]]:
    """Parse layers (topological order) and output layer names from a Keras 2 ``.h5``."""
    import h5py

    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise LegacyModelError(f"{path}: no model_config attribute (weights-only file?); save with model.save()")
        raw = f.attrs["model_config"]
        conf = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        layers_cfg = conf["config"]["layers"] if isinstance(conf["config"], dict) else conf["config"]
        sequential = conf["class_name"] == "Sequential"
        layers: list[_Layer] = []
        prev: str | None = None
        for lc in layers_cfg:
            name = lc["config"]["name"]
            if sequential:
                ins = [prev] if prev else []
            else:
                nodes = lc.get("inbound_nodes") or []
                ins = [x[0] for x in nodes[0]] if nodes else []
            layers.append(_Layer(lc["class_name"], name, lc["config"], ins))
            prev = name
        if sequential and layers and layers[0].cls != "InputLayer":
            shape = layers[0].cfg.get("batch_input_shape")
            if shape is None:
                raise LegacyModelError("Sequential model without batch_input_shape on its first layer")
            layers.insert(0, _Layer("InputLayer", "input", {"name": "input", "batch_input_shape": shape}, []))
            layers[1].inputs = ["input"]
        outputs = [layers[-1].name] if sequential else [o[0] for o in conf["config"]["output_layers"]]
        mw = f["model_weights"] if "model_weights" in f else f
        for layer in layers:
            if layer.name not in mw:
                continue
            g = mw[layer.name]
            for wn in g.attrs.get("weight_names", []):
                wn = wn.decode() if isinstance(wn, bytes) else str(wn)
                short = wn.split("/")[-1].split(":")[0]
                layer.weights[short] = np.asarray(g[wn])
    return layers, outputs


def _quantize_weights(w: np.ndarray, q: Any, what: str) -> tuple[np.ndarray, Fmt]:
    if q is None:
        raise LegacyModelError(f"{what}: no quantizer; float weights cannot be converted bit-exactly "
                               "(set kernel_quantizer/bias_quantizer, e.g. quantized_bits(8,0,alpha=1))")
    qd = q if isinstance(q, dict) else {"class_name": str(q).split("(")[0], "config": {}}
    if qd.get("class_name") == "quantized_po2" or str(q).startswith("quantized_po2"):
        return _po2(w, q, what)
    try:
        fmt = from_qkeras(q)
    except FormatError as e:
        raise LegacyModelError(f"{what}: {e}") from None
    return fmt.from_float(w), fmt


def _po2(w: np.ndarray, q: Any, what: str) -> tuple[np.ndarray, Fmt]:
    c = q["config"] if isinstance(q, dict) else {}
    bits = int(c.get("bits", 8))
    max_value = c.get("max_value")
    n_exp = 2 ** (bits - 1) - 1  # exponents available (QKeras: one bit for the sign)
    hi = math.floor(math.log2(max_value)) if max_value else 0
    lo = hi - n_exp + 1
    a = np.abs(w)
    e = np.where(a > 0, np.clip(np.round(np.log2(np.maximum(a, 1e-30))), lo, hi), lo)
    v = np.sign(w) * np.exp2(e)
    v = np.where(a > 0, v, 0.0)
    fmt = Fmt(True, hi - lo + 2 + 1, hi + 2, "RND", "SAT")
    if fmt.width > 30:
        raise LegacyModelError(f"{what}: quantized_po2 exponent range too wide for a fixed-point format")
    return fmt.from_float(v), fmt


def _bias(layer: _Layer, n_out: int, acc_frac: int) -> tuple[np.ndarray | None, Fmt | None]:
    if "bias" not in layer.weights:
        return None, None
    codes, fmt = _quantize_weights(layer.weights["bias"], layer.cfg.get("bias_quantizer"), f"{layer.name} bias")
    if fmt.frac > acc_frac:  # finer than the accumulator: re-round to its LSB
        fmt2 = Fmt(fmt.signed, fmt.width - (fmt.frac - acc_frac), fmt.int_bits, "RND", "SAT")
        codes = fmt2.from_float(fmt.to_float(codes))
        fmt = fmt2
    return codes, fmt


def from_h5(path: str | Path, name: str | None = None) -> Model:
    """Convert a legacy QKeras ``.h5`` model to IR (see module docstring for what is supported).

    Every problem (missing, empty, truncated, corrupt or non-HDF5 file, malformed model config,
    unsupported layer) raises :class:`LegacyModelError` naming the file."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise LegacyModelError(f"{p}: file not found" if not p.exists() else f"{p}: is not a file")
    fix = "re-save the model with model.save('model.h5') (Keras 2 / QKeras)"
    if p.stat().st_size == 0:
        raise LegacyModelError(f"{p}: the file is empty; {fix}")
    try:
        ok = h5py.is_hdf5(str(p))
    except OSError:
        ok = False
    if not ok:
        raise LegacyModelError(f"{p}: not an HDF5 file (plain text, truncated or corrupt); {fix}")
    try:
        return _from_h5(p, name)
    except LegacyModelError as e:
        msg = str(e)
        raise LegacyModelError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None
    except SwinfpgaError:
        raise
    except (OSError, KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
        raise LegacyModelError(f"{p}: cannot read the model ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
                               f"the file is truncated, corrupt or not a Keras 2 model; {fix}") from None


H5_TIMEOUT = float(os.environ.get("SWINFPGA_H5_TIMEOUT", "60"))  # seconds for reading one .h5


def _child_read(path: Path, conn: Any) -> None:
    try:
        res: tuple[bool, Any] = (True, read_h5(path))
    except BaseException as e:  # sent to the parent, which re-raises it
        res = (False, e)
    try:
        conn.send(res)
    except Exception as e:  # an unpicklable exception
        conn.send((False, RuntimeError(f"{type(e).__name__}: {e}")))
    conn.close()
    os._exit(0)


def read_h5_isolated(path: Path, timeout: float | None = None) -> tuple[list[_Layer], list[str]]:
    """:func:`read_h5` in a forked child: the HDF5 library can loop forever (or crash) on a
    damaged file, which no Python exception handler can stop.  A hang past ``timeout`` seconds
    (default ``SWINFPGA_H5_TIMEOUT`` = 60) or a crash raises :class:`LegacyModelError`."""
    import multiprocessing as mp

    timeout = H5_TIMEOUT if timeout is None else timeout
    try:
        ctx = mp.get_context("fork")
    except ValueError:  # pragma: no cover (no fork on this platform)
        return read_h5(path)
    fix = "the file is corrupt; re-save the model with model.save('model.h5') (Keras 2 / QKeras)"
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_read, args=(path, send), daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout):
            raise LegacyModelError(f"{path}: reading the HDF5 file did not finish within {timeout:g} s (the HDF5 "
                                   f"library loops on damaged files; SWINFPGA_H5_TIMEOUT sets the limit); {fix}")
        ok, payload = recv.recv()
    except EOFError:
        proc.join(5)
        raise LegacyModelError(f"{path}: the HDF5 library crashed reading the file (exit code {proc.exitcode}); "
                               f"{fix}") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    if ok:
        return payload
    raise payload


def _from_h5(path: Path, name: str | None) -> Model:
    layers, outputs = read_h5_isolated(path)
    if len(outputs) != 1:
        raise LegacyModelError(f"models with {len(outputs)} outputs are unsupported (need exactly one)")
    by_name = {ly.name: ly for ly in layers}
    consumers: dict[str, list[str]] = {ly.name: [] for ly in layers}
    for ly in layers:
        for i in ly.inputs:
            consumers[i].append(ly.name)
    for ly in layers:
        if ly.cls not in SUPPORTED:
            hint = ""
            if ly.cls in _FLOAT_TWINS:
                hint = f" (use {_FLOAT_TWINS[ly.cls]}: float layers have no fixed-point format)"
            raise LegacyModelError(
                f"layer {ly.name!r} of type {ly.cls} is not supported{hint}; supported: {', '.join(SUPPORTED)}"
            )

    def sole_consumer(n: str, cls: str) -> _Layer | None:
        c = consumers[n]
        return by_name[c[0]] if len(c) == 1 and by_name[c[0]].cls == cls else None

    nodes: list[N.Node] = []
    where: dict[str, _Tensor] = {}
    done: set[str] = set()

    def out_fmt_for(ly: _Layer, exact: Fmt) -> tuple[Fmt, list[str]]:
        """Fuse a following QActivation (and BN before it) into this layer's output format."""
        absorbed: list[str] = []
        cur = ly.name
        bn = sole_consumer(cur, "BatchNormalization")
        if bn is not None:
            absorbed.append(bn.name)
            cur = bn.name
        act = sole_consumer(cur, "QActivation")
        if act is not None:
            absorbed.append(act.name)
            try:
                return from_qkeras(act.cfg["activation"]), absorbed
            except FormatError as e:
                raise LegacyModelError(f"layer {act.name!r}: {e}") from None
        return exact, absorbed

    for ly in layers:
        if ly.name in done:
            continue
        ins = [where[i] for i in ly.inputs]
        if ly.cls == "InputLayer":
            shape = tuple(int(s) for s in ly.cfg["batch_input_shape"][1:])
            act = sole_consumer(ly.name, "QActivation")
            if act is None:
                raise LegacyModelError(
                    f"input {ly.name!r} is not quantized: follow it with QActivation(quantized_bits(...)) "
                    "so the input format is known"
                )
            fmt = from_qkeras(act.cfg["activation"])
            nodes.append(N.Input("input", shape if len(shape) == 3 else (1, 1, shape[-1]), fmt))
            where[ly.name] = where[act.name] = _Tensor("input", nodes[-1].shape, fmt)  # type: ignore[attr-defined]
            done.add(act.name)
            continue
        x = ins[0]
        if ly.cls in ("QDense", "QConv2D"):
            k = ly.weights.get("kernel")
            if k is None:
                raise LegacyModelError(f"layer {ly.name!r}: kernel weights missing from the file")
            if ly.cls == "QConv2D":
                kh, kw = ly.cfg.get("kernel_size", k.shape[:2])
                sh, sw = ly.cfg.get("strides", (1, 1))
                if (kh, kw) != (sh, sw) or kh != kw or ly.cfg.get("padding", "valid") != "valid":
                    raise LegacyModelError(
                        f"layer {ly.name!r}: only patch-embedding convolutions (square kernel == stride, "
                        "valid padding) are supported"
                    )
                k = k.reshape(-1, k.shape[-1])
            wc, wf = _quantize_weights(k, ly.cfg.get("kernel_quantizer"), f"{ly.name} kernel")
            bias_codes, bias_fmt = _bias(ly, wc.shape[1], x.fmt.frac + wf.frac)
            b_float = bias_fmt.to_float(bias_codes) if bias_codes is not None and bias_fmt else np.zeros(wc.shape[1])
            bn = sole_consumer(ly.name, "BatchNormalization")
            if bn is not None:  # fold: w' = w*s, b' = (b - mean)*s + beta
                s, t = _bn_affine(bn)
                w_new = wf.to_float(wc) * s
                wf = fit_fmt(w_new, wf.width + 4, signed=True)
                wc = wf.from_float(w_new)
                b_new = (b_float - bn.weights["moving_mean"]) * s + t
                bias_fmt = fit_fmt(b_new, 16, signed=True)
                af = x.fmt.frac + wf.frac
                if bias_fmt.frac > af:
                    bias_fmt = Fmt(True, bias_fmt.width - (bias_fmt.frac - af), bias_fmt.int_bits, "RND", "SAT")
                bias_codes = bias_fmt.from_float(b_new)
            af = x.fmt.frac + wf.frac
            lo, hi = _acc_range(x.fmt, wc, bias_codes, bias_fmt, af)
            fmt, absorbed = out_fmt_for(ly, acc_fmt(lo, hi, af))
            lin = N.Linear(wc, wf, bias_codes, bias_fmt, fmt)
            if ly.cls == "QConv2D":
                node: N.Node = N.PatchEmbed(ly.name, x.node, int(ly.cfg.get("kernel_size", [1])[0]), lin)
                shape = (x.shape[0] // node.patch, x.shape[1] // node.patch, lin.n_out)  # type: ignore[attr-defined]
            else:
                node = N.Dense(ly.name, x.node, lin)
                shape = (*x.shape[:-1], lin.n_out)
        elif ly.cls == "BatchNormalization":
            raise LegacyModelError(f"layer {ly.name!r}: BatchNormalization must directly follow a QDense/QConv2D")
        elif ly.cls == "QActivation":
            raise LegacyModelError(
                f"layer {ly.name!r}: a QActivation must directly follow the input, a QDense/QConv2D or an Add "
                "(a standalone re-quantization is not supported)"
            )
        elif ly.cls == "Add":
            if len(ins) != 2:
                raise LegacyModelError(f"layer {ly.name!r}: Add of {len(ins)} inputs unsupported (need 2)")
            a, b = ins
            f = max(a.fmt.frac, b.fmt.frac)
            lo = (a.fmt.min_code << (f - a.fmt.frac)) + (b.fmt.min_code << (f - b.fmt.frac))
            hi = (a.fmt.max_code << (f - a.fmt.frac)) + (b.fmt.max_code << (f - b.fmt.frac))
            fmt, absorbed = out_fmt_for(ly, acc_fmt(lo, hi, f))
            node = N.Add(ly.name, a.node, b.node, fmt)
            shape = a.shape
        elif ly.cls in ("GlobalAveragePooling1D", "GlobalAveragePooling2D"):
            npos = int(np.prod(x.shape[:-1]))
            if npos & (npos - 1):
                raise LegacyModelError(
                    f"layer {ly.name!r}: average over {npos} positions is not exact; use a power of 2"
                )
            inv_frac = npos.bit_length() - 1
            exact = acc_fmt(x.fmt.min_code * npos, x.fmt.max_code * npos, x.fmt.frac + inv_frac)
            fmt, absorbed = out_fmt_for(ly, exact)
            node = N.Pool(ly.name, x.node, 1, inv_frac, fmt)
            shape = (x.shape[-1],)
        elif ly.cls in ("Reshape", "Flatten"):
            target = tuple(ly.cfg.get("target_shape", ())) if ly.cls == "Reshape" else (int(np.prod(x.shape)),)
            if int(np.prod(target)) != int(np.prod(x.shape)) or target[-1] != x.shape[-1]:
                raise LegacyModelError(
                    f"layer {ly.name!r}: {ly.cls} to {target} changes the channel axis; only reshapes that keep "
                    f"the last axis ({x.shape[-1]}) are supported"
                )
            where[ly.name] = x
            continue
        elif ly.cls == "Permute":
            dims = tuple(ly.cfg.get("dims", ()))
            if dims != tuple(range(1, len(dims) + 1)):
                raise LegacyModelError(f"layer {ly.name!r}: Permute{dims} reorders axes; only identity is supported")
            where[ly.name] = x
            continue
        else:  # pragma: no cover - filtered above
            raise LegacyModelError(f"layer {ly.name!r} of type {ly.cls} is not supported")
        nodes.append(node)
        t = _Tensor(node.name, tuple(shape), fmt)
        where[ly.name] = t
        for a in absorbed:
            where[a] = t
            done.add(a)
    out = where[outputs[0]]
    return Model(name or Path(path).stem, tuple(nodes), out.node, {"source": f"qkeras-h5:{Path(path).name}"})


def _bn_affine(bn: _Layer) -> tuple[np.ndarray, np.ndarray]:
    eps = float(bn.cfg.get("epsilon", 1e-3))
    var = bn.weights["moving_variance"]
    gamma = bn.weights.get("gamma", np.ones_like(var))
    beta = bn.weights.get("beta", np.zeros_like(var))
    s = gamma / np.sqrt(var + eps)
    return s, beta


def _acc_range(x_fmt: Fmt, w: np.ndarray, b: np.ndarray | None, b_fmt: Fmt | None, af: int) -> tuple[int, int]:
    """Exact bounds of ``x @ w + b`` over every input code (per output, then the extremes)."""
    pos = np.clip(w, 0, None).sum(0)
    neg = np.clip(w, None, 0).sum(0)
    hi = pos * x_fmt.max_code + neg * x_fmt.min_code
    lo = pos * x_fmt.min_code + neg * x_fmt.max_code
    if b is not None and b_fmt is not None:
        bb = b << (af - b_fmt.frac)
        hi, lo = hi + bb, lo + bb
    return int(lo.min()), int(hi.max())


# ----- writing (for fixtures and round-trips; the same schema as read above) ----------------------
def write_h5(path: str | Path, layers: list[dict[str, Any]], weights: dict[str, dict[str, np.ndarray]],
             outputs: list[str], name: str = "model") -> None:
    """Write a Keras-2-layout ``.h5`` (``layers``: Keras layer configs with ``inbound_nodes``)."""
    import h5py

    conf = {
        "class_name": "Functional",
        "config": {"name": name, "layers": layers, "input_layers": [[layers[0]["config"]["name"], 0, 0]],
                   "output_layers": [[o, 0, 0] for o in outputs]},
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(conf).encode()
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = np.array([ly["config"]["name"].encode() for ly in layers])
        for ly in layers:
            lname = ly["config"]["name"]
            g = mw.create_group(lname)
            ws = weights.get(lname, {})
            g.attrs["weight_names"] = np.array([f"{lname}/{k}:0".encode() for k in ws])
            for k, v in ws.items():
                g.create_dataset(f"{lname}/{k}:0", data=v)
