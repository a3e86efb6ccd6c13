"""IR -> hls4ml project with swinfpga's custom layers (the only package that imports hls4ml, lazily).

* :func:`write_hls_project` writes an hls4ml project (``build_prj.tcl``, ``firmware/``...) whose layers
  are the ``hls_templates/`` functions, every ``*_t`` type taken from the IR and asserted after
  hls4ml's optimizer passes.
* :mod:`.preflight` checks the planned loops against Vitis limits (``hls/hls_check.json``) and estimates
  per-layer latency / resources (``hls/hls_estimate.json``); a failing design is refused.
* :func:`verify_csim` compiles it with hls4ml (g++; cached by content hash) and compares the output
  codes, and on mismatch every traced layer's codes, with the golden model.
"""

from __future__ import annotations

from .csim import verify_csim, write_hls_project

__all__ = ["write_hls_project", "verify_csim"]
