"""finescale.golden: the bit-exact golden model of microscaling quantization.

>>> from finescale import golden
>>> q = golden.quantize(x, recipe="nvfp4")          # doctest: +SKIP
>>> q.element_codes, q.scale_codes, q.dequantize()  # doctest: +SKIP
"""

from . import blockformat, formats, recipes
from .blockformat import BlockFormat, Rule
from .formats import Format, get
from .quantize import QuantizedTensor, pack, quantize, unpack

__all__ = ["blockformat", "formats", "recipes", "BlockFormat", "Rule", "Format", "get", "quantize", "QuantizedTensor", "pack",
           "unpack"]
