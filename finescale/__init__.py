"""finescale: a bit-accurate hardware model of microscaling (MX / NVFP4-style) quantization.

Subpackages: :mod:`finescale.golden` (the numpy golden model), :mod:`finescale.hw`
(Amaranth datapaths), :mod:`finescale.sim` (cocotb regression), :mod:`finescale.synth`
(Yosys area study).
"""

__version__ = "0.1.0"
