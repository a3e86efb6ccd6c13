"""cocotb test module: runs the :class:`swinfpga_tb.Testbench` variants on a converted project.

Configuration comes from the JSON file named by ``SWINFPGA_TB`` (written by
``swinfpga.backends.rtl.sim``): ``{"project": dir, "n": int, "variants": [{"name", "n",
"idle_prob", "bp_prob"}], "adapter": "swinfpga" | "vitis", "result": path}``.
Results (per variant: mismatches, latency, II, cycles) are written to ``result`` as JSON.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import cocotb
from cocotb.clock import Clock


def _load() -> tuple[dict, dict, object, object]:
    import numpy as np

    cfg = json.loads(Path(os.environ["SWINFPGA_TB"]).read_text())
    proj = Path(cfg["project"])
    with np.load(proj / "vectors.npz") as z:
        x, y = z["x"].astype(np.int64), z["y"].astype(np.int64)
    rtl = json.loads((proj / json.loads((proj / "manifest.json").read_text()).get("rtl_dir", "rtl") / "rtl.json")
                     .read_text())
    return cfg, rtl, x, y


def _timeout(rtl: dict, n: int) -> int:
    """Cycles before a run is declared hung: the testbench default (2000 + 200 per sample) raised
    by the predicted latency and II of ``rtl.json`` (a 56 x 56 map folded to one token per clock
    takes 6,000+ cycles per sample); back-pressure / idle variants at most double the cycles."""
    pred = rtl.get("predicted", {})
    lat, ii = int(pred.get("latency_cycles", 0)), int(pred.get("ii_cycles", 0))
    return 2000 + 200 * n + 4 * (lat + ii * n)


@cocotb.test()
async def run_variants(dut) -> None:
    from swinfpga_tb import SwinfpgaAdapter, Testbench, VitisHlsAdapter

    cfg, rtl, x, y = _load()
    adapter = VitisHlsAdapter(dut, rtl) if cfg.get("adapter") == "vitis" else SwinfpgaAdapter(dut, rtl)
    cocotb.start_soon(Clock(adapter.clk, 10, unit="ns").start())
    results = []
    for i, v in enumerate(cfg["variants"]):
        n = min(int(v["n"]), x.shape[0])
        tb = Testbench(adapter, x[:n], y[:n], idle_prob=float(v.get("idle_prob", 0.0)),
                       bp_prob=float(v.get("bp_prob", 0.0)), seed=i, timeout_cycles=_timeout(rtl, n))
        await tb.reset()
        t0 = time.perf_counter()
        r = await tb.run(v["name"])
        d = asdict(r)
        d["seconds"] = time.perf_counter() - t0
        if not cfg.get("keep_outputs"):
            d.pop("got")
        results.append(d)
        dut._log.info(f"{v['name']}: {r.mismatches} mismatches / {r.samples} samples, latency {r.latency_cycles}, "
                      f"II {r.ii_cycles}, {r.cycles} cycles in {d['seconds']:.1f}s")
    Path(cfg["result"]).write_text(json.dumps(results, indent=1))
    assert all(r["mismatches"] == 0 for r in results), "RTL differs from the golden model"
