"""Registries owned by the operator modules: the golden kernel and the manifest's tables per node
type (inference is registered in ``swinfpga.ir.graph.INFER``, re-exported by each op module;
back ends keep their own registries: ``backends/rtl/trace.py:TRACE``,
``backends/hls4ml/plan.py:PLAN``)."""

from __future__ import annotations

from ..registry import Registry

GOLDEN = Registry("golden model")
TABLES = Registry("manifest tables")
