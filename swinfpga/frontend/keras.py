"""Trained Keras 3 model (swinfpga quantized layers on HGQ2 quantizers) -> IR.

Every layer must be one of :data:`swinfpga.keras.SUPPORTED` (plus Keras ``InputLayer``), and every
quantization site must have a fixed-point format (a float / uncalibrated model is rejected).  Layer
names become IR node names; weights are exported as the codes the quantized forward pass uses
(folded BatchNorm included), so the IR and the quantized Keras model compute the same integers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..ir import Model
from .errors import KerasFrontendError


def from_keras_model(model: Any, name: str | None = None) -> Model:
    """Convert a functional Keras model built from swinfpga layers into an IR :class:`Model`."""
    import keras

    from ..keras import SUPPORTED, QInput, QLayer
    from ..keras.model import inbound

    supported = ", ".join(c.__name__ for c in SUPPORTED)
    if not isinstance(model, keras.Model) or not hasattr(model, "_inbound_nodes"):
        raise KerasFrontendError(f"expected a functional keras.Model, got {type(model).__name__}")
    from .hgq2 import from_hgq2_model, is_hgq2_model

    if is_hgq2_model(model):  # a model of HGQ2 layers (hgq.layers): its own importer
        return from_hgq2_model(model, name=name)
    nodes = []
    keras_inputs: set[str] = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            keras_inputs.add(layer.name)
            continue
        if not isinstance(layer, QLayer):
            raise KerasFrontendError(
                f"layer {layer.name!r} ({type(layer).__name__}) is not supported by the swinfpga Keras front end "
                f"(its class comes from {type(layer).__module__.split('.')[0]}, not swinfpga.keras); "
                f"supported layers: {supported} (build the model from swinfpga.keras layers)"
            )
        if not layer.quantized:
            raise KerasFrontendError(
                f"layer {layer.name!r} ({type(layer).__name__}) is in float mode: its weights are unquantized; "
                "calibrate and quantize the model (swinfpga.keras.calibrate + set_quantized, or `swinfpga train`)"
            )
        missing = [s for s in layer.required_sites() if s not in layer.fmts]
        if missing:
            raise KerasFrontendError(
                f"layer {layer.name!r} ({type(layer).__name__}) has unquantized (float) tensors without a "
                f"fixed-point format: {', '.join(missing)}; calibrate the model first"
            )
        srcs = inbound(layer)
        if isinstance(layer, QInput):
            if not all(s in keras_inputs for s in srcs):
                raise KerasFrontendError(f"input quantizer {layer.name!r} must read a Keras Input directly")
            shape = tuple(int(d) for d in layer._inbound_nodes[0].input_tensors[0].shape[1:])
            nodes.append(layer.to_ir([], shape))
            continue
        bad = [s for s in srcs if s in keras_inputs]
        if bad:
            raise KerasFrontendError(
                f"layer {layer.name!r} reads the raw Keras input {bad[0]!r}; put a QInput (the input format) first"
            )
        nodes.append(layer.to_ir(srcs, ()))
    if not nodes or nodes[0].__class__.__name__ != "Input":
        raise KerasFrontendError("the model has no QInput layer (the IR needs the input's fixed-point format)")
    outs = model.outputs
    if len(outs) != 1:
        raise KerasFrontendError(f"expected one model output, got {len(outs)}")
    out = outs[0]._keras_history.operation.name
    return Model(name or model.name, tuple(nodes), out, {"source": "keras", "keras_model": model.name})


def from_keras_file(path: str | Path) -> Model:
    """Load a ``.keras`` file saved from swinfpga layers (or HGQ2 layers: :mod:`.hgq2`) and convert it.
    A missing, empty, truncated or corrupt archive, or one with layers swinfpga does not know (e.g.
    QKeras layers), raises :class:`KerasFrontendError` naming the file and the fix."""
    import zipfile

    p = Path(path)
    fix = "re-save it with model.save('model.keras') from a model built of swinfpga.keras (or HGQ2) layers"
    if not p.is_file():
        raise KerasFrontendError(f"{p}: file not found" if not p.exists() else f"{p}: is not a file")
    if p.stat().st_size == 0:
        raise KerasFrontendError(f"{p}: the file is empty (0 bytes); {fix}")
    try:
        with zipfile.ZipFile(p) as z:
            bad = z.testzip()
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as e:
        raise KerasFrontendError(f"{p}: not a valid .keras archive (a zip file): {_short(e)}; "
                                 f"the file is truncated or corrupt; {fix}") from None
    except Exception as e:  # zlib.error and friends on damaged members
        raise KerasFrontendError(f"{p}: corrupt .keras archive ({type(e).__name__}: {_short(e)}); {fix}") from None
    if bad is not None:
        raise KerasFrontendError(f"{p}: corrupt .keras archive (bad CRC in member {bad!r}); {fix}")
    if "config.json" not in names:
        raise KerasFrontendError(f"{p}: not a Keras 3 .keras archive (no config.json inside); {fix}")

    import keras

    import swinfpga.keras  # noqa: F401  (registers the layers)

    if _mentions_hgq(p):
        import hgq  # noqa: F401  (registers HGQ2's layers for loading)

    try:
        model = keras.models.load_model(p, compile=False)
    except Exception as e:  # Keras raises TypeError/ValueError/OSError/... with the whole config in the text
        raise KerasFrontendError(f"{p}: cannot load the Keras model: {_keras_reason(e)}; {fix}") from None
    try:
        return from_keras_model(model, name=model.name)
    except KerasFrontendError as e:
        raise KerasFrontendError(f"{p}: {e}") from None


def _mentions_hgq(p: Path) -> bool:
    """Whether a .keras archive's config names HGQ2 classes (module ``hgq...`` / package ``hgq``)."""
    import zipfile

    with zipfile.ZipFile(p) as z:
        text = z.read("config.json").decode("utf-8", "replace")
    return '"module": "hgq' in text or '"hgq>' in text


def _short(e: object, limit: int = 200) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= limit else s[:limit] + " ..."


def _keras_reason(e: Exception) -> str:
    """One line instead of Keras' multi-kilobyte config dump: the unknown class, else the first line."""
    import re

    text = str(e)
    m = re.search(r"[Cc]ould not (?:locate|deserialize) (?:class|function)\s+'?([\w.]+)'?", text)
    if m:
        return (f"layer class {m.group(1)!r} is unknown to swinfpga (swinfpga.keras layers and the HGQ2 layers "
                "of the README's 'HGQ2 models' convert; QKeras / other layers do not)")
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return f"{type(e).__name__}: {_short(first)}"


__all__ = ["from_keras_model", "from_keras_file", "KerasFrontendError"]
