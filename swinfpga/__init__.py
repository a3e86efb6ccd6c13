"""swinfpga: quantized Swin / windowed-attention models to bit-exact FPGA designs."""

__version__ = "0.1.0"
