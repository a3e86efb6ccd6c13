"""cocotb 2.1 testbench for swinfpga designs: driver, monitor, golden model, in-order checker.

Nothing is retyped here: shapes, formats and vectors come from the project's ``manifest.json``,
``vectors.npz`` and ``rtl/rtl.json``.  The DUT is reached through an *adapter* so the same
:class:`Testbench` drives

* :class:`SwinfpgaAdapter`: the open-flow top (``in_valid/in_ready/in_data``,
  ``out_valid/out_ready/out_data``; element ``e`` at bits ``e*W``), and
* :class:`VitisHlsAdapter`: the top that Vitis/Vivado HLS writes from the hls4ml project
  (``ap_clk/ap_rst/ap_start/ap_ready/ap_done`` + ``<in>``/``<in>_ap_vld`` and ``<out>``/
  ``<out>_ap_vld``, io_parallel).  UNTESTED: Vitis HLS is not installed where this was written.

Timing convention: one loop iteration per rising edge; right after ``RisingEdge`` the values read
are those present at the edge, so ``valid and ready`` read there is a transfer at that edge.
Latency of a sample = output transfer cycle - input transfer cycle; the initiation interval is
the median distance between consecutive input transfers while streaming without idles or
back-pressure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np


# ----- packing --------------------------------------------------------------------------------
def pack_codes(codes: np.ndarray, width: int) -> int:
    """Flat codes -> one integer, element 0 at the least significant bits (two's complement)."""
    v = 0
    mask = (1 << width) - 1
    for e, c in enumerate(np.asarray(codes, dtype=np.int64).ravel()):
        v |= (int(c) & mask) << (e * width)
    return v


def unpack_codes(value: int, n: int, width: int, signed: bool) -> np.ndarray:
    mask = (1 << width) - 1
    out = np.empty(n, dtype=np.int64)
    for e in range(n):
        c = (value >> (e * width)) & mask
        if signed and c >> (width - 1):
            c -= 1 << width
        out[e] = c
    return out


# ----- adapters -------------------------------------------------------------------------------
class SwinfpgaAdapter:
    """Ports of swinfpga's open-flow top (see ``rtl.json`` ``ports``)."""

    backpressure = True

    def __init__(self, dut: Any, rtl: dict[str, Any]):
        self.dut = dut
        p = rtl["ports"]
        self.n_in, self.w_in = p["in_data"]["elements"], p["in_data"]["elem_width"]
        self.n_out, self.w_out = p["out_data"]["elements"], p["out_data"]["elem_width"]
        self.out_signed = bool(p["out_data"]["fmt"]["signed"])
        self.clk = dut.clk

    def reset_value(self, on: bool) -> None:
        self.dut.rst.value = int(on)

    def idle(self) -> None:
        self.dut.in_valid.value = 0
        self.dut.in_data.value = 0
        self.dut.out_ready.value = 0

    def drive(self, codes: np.ndarray | None) -> None:
        if codes is None:
            self.dut.in_valid.value = 0
        else:
            self.dut.in_data.value = pack_codes(codes, self.w_in)
            self.dut.in_valid.value = 1

    def in_ready(self) -> bool:
        return bool(int(self.dut.in_ready.value))

    def set_out_ready(self, r: bool) -> None:
        self.dut.out_ready.value = int(r)

    def out_valid(self) -> bool:
        return bool(int(self.dut.out_valid.value))

    def read(self) -> np.ndarray:
        return unpack_codes(int(self.dut.out_data.value), self.n_out, self.w_out, self.out_signed)


class VitisHlsAdapter(SwinfpgaAdapter):
    """hls4ml io_parallel top synthesized by Vitis/Vivado HLS (``ap_ctrl_hs`` + ``ap_vld`` ports).

    ``in_port``/``out_port``: the array port names (hls4ml: the input layer name and
    ``layer<N>_out``); they are found automatically when left empty.  The output has no
    back-pressure (``ap_vld``), so back-pressure variants are not available.  UNTESTED here."""

    backpressure = False

    def __init__(self, dut: Any, rtl: dict[str, Any], in_port: str = "", out_port: str = ""):
        super().__init__(dut, rtl)
        self.clk = dut.ap_clk
        names = [h._name for h in dut]
        vld = [n[: -len("_ap_vld")] for n in names if n.endswith("_ap_vld")]
        self.in_port = in_port or next(n for n in vld if hasattr(dut, n) and "out" not in n)
        self.out_port = out_port or next(n for n in vld if n != self.in_port)

    def reset_value(self, on: bool) -> None:
        self.dut.ap_rst.value = int(on)

    def idle(self) -> None:
        self.dut.ap_start.value = 0
        getattr(self.dut, self.in_port + "_ap_vld").value = 0

    def drive(self, codes: np.ndarray | None) -> None:
        vld = getattr(self.dut, self.in_port + "_ap_vld")
        if codes is None:
            self.dut.ap_start.value = 0
            vld.value = 0
        else:
            getattr(self.dut, self.in_port).value = pack_codes(codes, self.w_in)
            vld.value = 1
            self.dut.ap_start.value = 1

    def in_ready(self) -> bool:
        return bool(int(self.dut.ap_ready.value))

    def set_out_ready(self, r: bool) -> None:
        return None

    def out_valid(self) -> bool:
        return bool(int(getattr(self.dut, self.out_port + "_ap_vld").value))

    def read(self) -> np.ndarray:
        return unpack_codes(int(getattr(self.dut, self.out_port).value), self.n_out, self.w_out, self.out_signed)


# ----- testbench ------------------------------------------------------------------------------
@dataclass
class TbResult:
    """Outcome of one run: mismatching elements, samples checked, cycles."""

    variant: str
    samples: int
    mismatches: int
    first: list[str] = field(default_factory=list)
    latency_cycles: int = -1  # first sample, empty pipeline
    latency_max: int = -1
    ii_cycles: int = -1
    cycles: int = 0
    got: list[list[int]] = field(default_factory=list)


class Testbench:
    """Drive ``x`` (B, ...) codes into the DUT in order, collect outputs, compare with ``y``.

    ``idle_prob``: chance of an idle (valid low) cycle before each sample; ``bp_prob``: chance
    that ``out_ready`` is low in a cycle (back-pressure).  Sample 0 is sent alone first to
    measure the empty-pipeline latency; the rest stream."""

    def __init__(self, adapter: SwinfpgaAdapter, x: np.ndarray, y: np.ndarray, idle_prob: float = 0.0,
                 bp_prob: float = 0.0, seed: int = 0, timeout_cycles: int = 0):
        self.a = adapter
        self.x = np.asarray(x, dtype=np.int64).reshape(x.shape[0], -1)
        self.y = np.asarray(y, dtype=np.int64).reshape(y.shape[0], -1)
        self.idle_prob = idle_prob
        self.bp_prob = bp_prob if adapter.backpressure else 0.0
        self.rng = random.Random(seed)
        self.timeout = timeout_cycles or 2000 + 200 * self.x.shape[0]

    async def reset(self, cycles: int = 3) -> None:
        from cocotb.triggers import RisingEdge

        self.a.idle()
        self.a.reset_value(True)
        for _ in range(cycles):
            await RisingEdge(self.a.clk)
        self.a.reset_value(False)
        await RisingEdge(self.a.clk)

    async def run(self, variant: str = "stream") -> TbResult:
        from cocotb.triggers import RisingEdge

        n = self.x.shape[0]
        sent, recv, cycle = 0, 0, 0
        acc_cycle: list[int] = []
        out_cycle: list[int] = []
        got: list[np.ndarray] = []
        driving = False
        ready = True
        pending_idle = 0
        self.a.drive(None)
        self.a.set_out_ready(True)
        while recv < n:
            await RisingEdge(self.a.clk)
            cycle += 1
            if cycle > self.timeout:
                raise TimeoutError(f"{variant}: {recv}/{n} outputs after {cycle} cycles")
            # --- sample what happened at this edge
            if driving and self.a.in_ready():
                acc_cycle.append(cycle)
                sent += 1
                driving = False
                if self.idle_prob:
                    pending_idle = 0
                    while self.rng.random() < self.idle_prob:
                        pending_idle += 1
            if ready and self.a.out_valid():
                got.append(self.a.read())
                out_cycle.append(cycle)
                recv += 1
            # --- drive the next cycle
            hold_first = sent == 1 and recv == 0  # sample 0 travels alone
            if not driving and sent < n and not hold_first:
                if pending_idle:
                    pending_idle -= 1
                else:
                    self.a.drive(self.x[sent])
                    driving = True
            if not driving:
                self.a.drive(None)
            ready = self.rng.random() >= self.bp_prob
            self.a.set_out_ready(ready)
        self.a.drive(None)
        got_arr = np.stack(got)
        bad = np.argwhere(got_arr != self.y[:n])
        first = [f"sample {int(i)} element {int(j)}: expected {int(self.y[i, j])}, got {int(got_arr[i, j])}"
                 for i, j in bad[:10]]
        lat = [o - a for a, o in zip(acc_cycle, out_cycle, strict=False)]
        # mean distance between input transfers over the streamed samples (1..n-1): a median would
        # hide bursts (a design that takes 4 back-to-back and then stalls 90 cycles is not II 4)
        ii = round((acc_cycle[-1] - acc_cycle[1]) / (len(acc_cycle) - 2)) if len(acc_cycle) > 2 else 0
        return TbResult(variant, n, int(bad.shape[0]), first, int(lat[0]), int(max(lat)), int(ii), cycle,
                        got_arr.tolist())
