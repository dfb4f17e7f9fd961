"""Dot-product unit against golden.dotproduct (Amaranth simulator)."""

import numpy as np
import pytest

from finescale import golden
from finescale.hw.simulate import simulate
from finescale.hw.units import spec


def check(s, inputs):
    got = simulate(s.build(), inputs, latency=s.latency)["result"]
    want = s.reference(inputs)["result"]
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} mismatches; first: "
                           f"{ {k: v[bad[0]] for k, v in inputs.items()} } "
                           f"got {got[bad[0]]:#x} want {want[bad[0]]:#x}")


@pytest.mark.parametrize("fmt", ["e4m3", "ue5m3", "e8m0"])
def test_every_fp4_product_and_every_scale_code(fmt):
    """All 16 x 16 code pairs (one a vector), then every scale code against a spread of others."""
    s = spec("dot", scale_format=fmt, block_size=1)
    codes = np.arange(16, dtype=np.uint8)
    a, b = (g.reshape(-1, 1) for g in np.meshgrid(codes, codes, indexing="ij"))
    one = int(golden.formats.get(fmt).encode(1.0))
    check(s, {"a": a, "b": b, "scale_a": np.full(256, one, np.uint8),
              "scale_b": np.full(256, one, np.uint8)})
    rng = np.random.default_rng(5)
    sa = np.repeat(np.arange(256, dtype=np.uint8), 3)
    sb = rng.integers(0, 256, sa.size).astype(np.uint8)
    sb[::3] = 255 - sa[::3]  # extreme pairs: overflow and underflow with E8M0
    n = sa.size
    check(s, {"a": rng.integers(0, 16, (n, 1)).astype(np.uint8),
              "b": rng.integers(0, 16, (n, 1)).astype(np.uint8), "scale_a": sa, "scale_b": sb})


@pytest.mark.parametrize("fmt", ["e4m3", "e8m0"])
@pytest.mark.parametrize("block_size,pipelined", [(16, False), (32, True)])
def test_random_blocks(fmt, block_size, pipelined):
    s = spec("dot", scale_format=fmt, block_size=block_size, pipelined=pipelined)
    assert s.latency == (2 if pipelined else 0)
    check(s, s.random_inputs(np.random.default_rng(block_size), 200))
