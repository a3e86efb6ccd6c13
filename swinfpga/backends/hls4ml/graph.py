"""hls4ml glue (imports hls4ml): custom layers, templates, sources and a writer pass registered
through hls4ml's extension API, and the ModelGraph built from :mod:`.plan` layer plans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hls4ml
import numpy as np
from hls4ml.backends import get_backend
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.model.flow import update_flow
from hls4ml.model.graph import ModelGraph
from hls4ml.model.layers import Layer, layer_map, register_layer
from hls4ml.model.optimizer import register_pass
from hls4ml.model.optimizer.optimizer import ModelOptimizerPass
from hls4ml.model.types import FixedPrecisionType, NamedType

from ...fixed import Fmt
from ...resources import templates_dir
from .plan import HEADERS, LayerPlan, weights_header

TEMPLATES_DIR = templates_dir()
BACKENDS = ("Vivado", "Vitis")
PROJECT = "myproject"
KINDS = ("SwinPatchEmbed", "SwinWindowAttention", "SwinMlp", "SwinLayerNorm", "SwinPatchMerging", "SwinAdd",
         "SwinPool", "SwinDense", "SwinSoftmaxLut", "SwinTokenMask")


def precision(f: Fmt) -> FixedPrecisionType:
    """hls4ml precision of a format, parsed from :attr:`Fmt.ap_type` (the one ap_fixed spelling)."""
    p = get_backend("Vitis").convert_precision_string(f.ap_type)
    if not isinstance(p, FixedPrecisionType):
        raise TypeError(f"hls4ml parsed {f.ap_type} as {type(p).__name__}")
    return p


def fmt_of(t: Any) -> Fmt:
    """Format of an hls4ml type as the generated C++ spells it."""
    prec = t.precision if hasattr(t, "precision") else t
    if hasattr(prec, "definition_cpp"):
        return Fmt.parse(prec.definition_cpp())
    rnd = str(prec.rounding_mode).removeprefix("AP_")
    sat = str(prec.saturation_mode).removeprefix("AP_")
    return Fmt(bool(prec.signed), int(prec.width), int(prec.integer), rnd, sat)


class SwinLayer(Layer):
    """Base of swinfpga's custom layers: all formats come from the attached :class:`LayerPlan`."""

    def initialize(self) -> None:
        plan: LayerPlan = self.get_attr("swin_plan")
        self.add_output_variable(list(plan.shape), precision=precision(plan.out_fmt))
        for key, f in plan.types.items():
            self.set_attr(f"{key}_t", NamedType(f"{self.name}_{key}_t", precision(f)))


_CLASSES: dict[str, type] = {k: type(k, (SwinLayer,), {}) for k in KINDS}


def _type_names(node: Layer, text: str) -> str:
    plan: LayerPlan = node.get_attr("swin_plan")
    for key in plan.types:
        text = text.replace(f"{{t:{key}}}", node.get_attr(f"{key}_t").name)
    return text


class SwinConfigTemplate(LayerConfigTemplate):
    def __init__(self) -> None:
        super().__init__(tuple(_CLASSES.values()))

    def format(self, node: Layer) -> str:
        plan: LayerPlan = node.get_attr("swin_plan")
        return f"struct config{node.index} {{\n{_type_names(node, plan.config)}\n}};\n"


class SwinFunctionTemplate(FunctionCallTemplate):
    def __init__(self) -> None:
        super().__init__(tuple(_CLASSES.values()), include_header=[f"nnet_utils/{h}" for h in HEADERS])

    def format(self, node: Layer) -> str:
        plan: LayerPlan = node.get_attr("swin_plan")
        params = {
            "index": node.index,
            "input_t": node.get_input_variable().type.name,
            "input": node.get_input_variable().name,
            "output_t": node.get_output_variable().type.name,
            "output": node.get_output_variable().name,
        }
        if len(node.inputs) > 1:
            v2 = node.get_input_variable(node.inputs[1])
            params.update(input2_t=v2.type.name, input2=v2.name)
        return plan.call.format(**params)

    def transform(self, model: ModelGraph, node: Layer) -> bool:
        super().transform(model, node)
        node.set_attr("include_header", [*self.include_header, f"weights/swin_{node.name}.h"])
        return False


def _write_weight_headers(model: ModelGraph) -> bool:
    out = Path(model.config.get_output_dir()) / "firmware" / "weights"
    out.mkdir(parents=True, exist_ok=True)
    for layer in model.get_layers():
        plan = layer.get_attr("swin_plan")
        if plan is not None:
            (out / f"swin_{layer.name}.h").write_text(weights_header(plan))
    return False


_registered = False


def register() -> None:
    """Register swinfpga's layers, templates, sources and writer pass with hls4ml (idempotent)."""
    global _registered
    if _registered:
        return
    for kind, cls in _CLASSES.items():
        if kind not in layer_map:
            register_layer(kind, cls)
    for bname in BACKENDS:
        b = get_backend(bname)
        b.register_template(SwinConfigTemplate)
        b.register_template(SwinFunctionTemplate)
        for h in HEADERS:
            b.register_source(TEMPLATES_DIR / h)
        name = register_pass("swin_write_weights", ModelOptimizerPass("swin_write_weights", _write_weight_headers),
                             backend=bname)
        update_flow(b.get_writer_flow(), add_optimizers=[name])
    _registered = True


def hls_config(out_dir: Path, part: str, clock_ns: float, backend: str, reuse_factor: int,
               layer_names: list[str], input_name: str, input_fmt: Fmt, strategy: str = "latency",
               layout: str = "layers", io_type: str = "io_parallel") -> dict[str, Any]:
    """hls4ml config.  ``layout`` 'layers': the top is a DATAFLOW region of layer functions, each with its own
    pipelines (hls4ml's PipelineStyle 'dataflow'); 'flat': the legacy top-level PIPELINE over everything."""
    b = get_backend(backend)
    cfg = b.create_initial_config(part=part, clock_period=clock_ns, io_type=io_type, write_weights_txt=False)
    cfg.update(OutputDir=str(out_dir), ProjectName=PROJECT, Backend=backend, TraceOutput=True)
    cfg["HLSConfig"] = {
        # hls4ml's own Strategy only steers hls4ml layers (and its Vitis feature check wants their n_in):
        # swinfpga's layers take the strategy from their config structs.
        "Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": int(reuse_factor), "Strategy": "Latency",
                  "PipelineStyle": "pipeline" if layout == "flat" and io_type == "io_parallel" else "dataflow"},
        "LayerName": {n: {"Trace": True} for n in layer_names},
    }
    cfg["HLSConfig"]["LayerName"][input_name] = {"Precision": {"result": input_fmt.ap_type}, "Trace": False}
    return cfg


def build_graph(plans: list[LayerPlan], out_dir: Path, part: str, clock_ns: float, backend: str = "Vitis",
                reuse_factor: int = 1, strategy: str = "latency", layout: str = "layers",
                io_type: str = "io_parallel") -> ModelGraph:
    """ModelGraph from layer plans (first plan: the Input), types asserted after hls4ml's passes."""
    if backend not in BACKENDS:
        raise ValueError(f"hls4ml backend {backend!r} unsupported; use one of {BACKENDS}")
    register()
    inp = plans[0]
    layers: list[dict[str, Any]] = [
        {"class_name": "InputLayer", "name": inp.name, "input_shape": list(inp.shape)}
    ]
    for p in plans[1:]:
        layers.append({"class_name": p.kind, "name": p.name, "inputs": list(p.inputs), "swin_plan": p})
    cfg = hls_config(out_dir, part, clock_ns, backend, reuse_factor, [p.name for p in plans[1:]], inp.name,
                     inp.out_fmt, strategy, layout, io_type)
    model = ModelGraph.from_layer_list(cfg, layers)
    check_types(model, plans)
    if io_type == "io_stream":
        size_fifos(model, plans)
    return model


def fifo_depths(plans: list[LayerPlan]) -> dict[tuple[str, str], int]:
    """FIFO depth (tokens) of every residual edge (producer, Add) from the schedule: the skip path must hold
    what the other branch consumes before its first output = the sum of its layers' ``lag_tokens`` (a
    window band, or the whole map for a shifted window), plus slack for the pipelines.  Every edge out of a
    padding mask (TokenMask -> attention / pool) holds the whole map: later blocks read it much later."""
    by = {p.name: p for p in plans}
    out: dict[tuple[str, str], int] = {}
    for p in plans:
        if p.kind != "SwinAdd":
            continue
        a, b = p.inputs
        for skip, branch in ((a, b), (b, a)):
            lag, cur, ok = 0, branch, False
            while cur in by and by[cur].inputs:
                if cur == skip:
                    ok = True
                    break
                lag += by[cur].lag_tokens
                cur = by[cur].inputs[0]
            if ok or cur == skip:
                out[(skip, p.name)] = lag + 8
    for p in plans:  # a padding mask is read by every attention block and the pool: hold the whole map
        if p.kind == "SwinTokenMask":
            for q in plans:
                if p.name in q.inputs:
                    out[(p.name, q.name)] = int(np.prod(p.shape[:-1]))
    return out


def size_fifos(model: ModelGraph, plans: list[LayerPlan]) -> None:
    """io_stream: every stream 2 tokens deep, except residual skip paths (depth from :func:`fifo_depths`)."""
    depths = fifo_depths(plans)
    for layer in model.get_layers():
        for v in layer.variables.values():
            if isinstance(getattr(v, "pragma", None), tuple) and v.pragma[0] == "stream":
                v.pragma = ("stream", 2)
    for layer in model.get_layers():
        plan = layer.get_attr("swin_plan")
        if plan is not None and plan.kind == "SwinTokenMask":  # single reader (no Clone): its own stream
            users = [q.name for q in plans if plan.name in q.inputs]
            if len(users) == 1:
                layer.get_output_variable().pragma = ("stream", depths[(plan.name, users[0])])
        if layer.class_name != "Clone":
            continue
        src = layer.inputs[0]
        for out_name in layer.outputs:
            users = [lay.name for lay in model.get_layers() if out_name in lay.inputs]
            d = max([depths.get((src, u), 2) for u in users], default=2)
            layer.variables[out_name].pragma = ("stream", d)


def check_types(model: ModelGraph, plans: list[LayerPlan]) -> None:
    """Assert that every tensor and internal ``*_t`` type survived hls4ml's passes unchanged (a per-channel
    format's C++ type is its container's)."""
    by_name = {p.name: p for p in plans}
    layers = {layer.name: layer for layer in model.get_layers() if layer.class_name != "Clone"}
    if list(layers) != [p.name for p in plans]:
        raise AssertionError(f"hls4ml changed the layer list: {list(layers)} != {[p.name for p in plans]}")
    for name, layer in layers.items():
        p = by_name[name]
        got = fmt_of(layer.get_output_variable().type)
        if got != p.out_fmt.container:
            raise AssertionError(f"{p.ir_name}: output type {got} != IR {p.out_fmt}")
        for key, f in p.types.items():
            t = layer.get_attr(f"{key}_t")
            if t is None or fmt_of(t) != f.container:
                raise AssertionError(f"{p.ir_name}: type {key}_t is {None if t is None else fmt_of(t)}, IR says {f}")
        if p.kind == "Input":
            continue
        for i, f in zip(layer.inputs, p.in_fmts, strict=True):
            got = fmt_of(layer.get_input_variable(i).type)
            if got != f.container:
                raise AssertionError(f"{p.ir_name}: input {i} type {got} != IR {f}")


__all__ = ["build_graph", "check_types", "register", "precision", "fmt_of", "hls4ml", "PROJECT"]
