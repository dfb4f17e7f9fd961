"""Torch adapter: fake-quantize ``nn.Linear`` weights and input activations with the golden model.

The module is named ``fakequant`` (not ``torch``) so that ``import torch`` inside
``finescale.golden`` always means the torch package; it needs the ``torch``
extra and is not imported by ``finescale.golden`` itself.

Bit-identical to the numpy path by construction: a tensor goes to numpy float32,
through ``golden.quantize(x, **options).dequantize()`` along its last axis (the
reduction axis of ``x @ W.T`` for both ``x`` and ``W``), and back to its own
dtype and device.

>>> with fake_quantized(model, weight=TensorQuantizer(recipe="nvfp4"),
...                     act=TensorQuantizer(recipe="nvfp4")):   # doctest: +SKIP
...     loss = model(ids, labels=ids).loss
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from finescale.golden.quantize import quantize
from finescale.golden.recipes import resolve

__all__ = ["MLP_LINEARS", "fake_quantize", "TensorQuantizer", "IntervalMask", "AtSigma",
           "FakeQuantLinear", "fake_quantized"]

#: attribute names of the MLP linears of Llama-style models (SmolLM2, Llama, Granite, Qwen)
MLP_LINEARS = ("gate_proj", "up_proj", "down_proj")


def _check_tensor(t, name="t"):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")


def fake_quantize(t: torch.Tensor, **options) -> torch.Tensor:
    """``golden.quantize(t, **options).dequantize()`` computed in float32, as a new tensor of t's dtype."""
    _check_tensor(t)
    x = t.detach().to("cpu", torch.float32).numpy()
    y = quantize(x, **options).dequantize(np.float32)
    return torch.from_numpy(y).to(device=t.device, dtype=t.dtype)


class TensorQuantizer:
    """A callable ``t -> fake_quantize(t, **options)`` with the options checked up front.

    It remembers its last input, so layers that read one tensor (``gate_proj``
    and ``up_proj`` both read the MLP input) pay for one quantization.
    """

    def __init__(self, **options):
        resolve(options.get("recipe"), {k: v for k, v in options.items() if k != "recipe"})
        self.options = options
        self._last = None

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        last = self._last
        if last is not None and last[0] is t and last[1] == t._version:
            return last[2]
        out = fake_quantize(t, **self.options)
        self._last = (t, t._version, out)
        return out

    def __repr__(self):
        return f"TensorQuantizer({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"


class IntervalMask:
    """A callable that zeroes the entries with ``lo <= |t| < hi`` (the papers' Fig. 10 ablation)."""

    def __init__(self, lo: float, hi: float):
        lo, hi = float(lo), float(hi)
        if not (0 <= lo < hi):
            raise ValueError(f"need 0 <= lo < hi for a magnitude interval, got lo={lo}, hi={hi}")
        self.lo, self.hi = lo, hi

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        _check_tensor(t)
        a = t.abs()
        return torch.where((a >= self.lo) & (a < self.hi), torch.zeros_like(t), t)

    def __repr__(self):
        return f"IntervalMask({self.lo}, {self.hi})"


class AtSigma:
    """``t -> fn(t * c) / c`` with c the power of two that brings t's std nearest to ``sigma``.

    Places a tensor in a region of the numerical study (A/B/C) without changing
    the function it computes: scaling by a power of two is exact (barring
    float32 underflow), so only the quantizer sees the new magnitude.
    """

    def __init__(self, fn, sigma: float):
        sigma = float(sigma)
        if not callable(fn):
            raise TypeError("fn must be a callable tensor -> tensor")
        if not (sigma > 0 and np.isfinite(sigma)):
            raise ValueError(f"sigma must be a positive number, got {sigma}")
        self.fn, self.sigma = fn, sigma

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        _check_tensor(t)
        std = float(t.float().std())
        if not std > 0:
            return self.fn(t)
        c = 2.0 ** round(float(np.log2(self.sigma / std)))
        return self.fn(t * c) / c

    def __repr__(self):
        return f"AtSigma({self.fn!r}, {self.sigma})"


class FakeQuantLinear(nn.Module):
    """``nn.Linear`` whose weight is transformed once and whose input is transformed every call.

    ``weight`` and ``act`` are callables tensor -> tensor (a :class:`TensorQuantizer`,
    an :class:`IntervalMask`, ...) or None for "leave as is".  The wrapped layer
    is not modified; ``original`` holds it.
    """

    def __init__(self, linear: nn.Linear, *, weight=None, act=None):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        for name, fn in (("weight", weight), ("act", act)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be a callable tensor -> tensor or None")
        self.original = [linear]  # a list: not registered as a submodule
        w = linear.weight.detach()
        self.register_buffer("weight", weight(w) if weight is not None else w)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach())
        self.act = act

    def forward(self, x):
        if self.act is not None:
            x = self.act(x)
        return F.linear(x, self.weight, self.bias)


@contextlib.contextmanager
def fake_quantized(model: nn.Module, *, weight=None, act=None, names=MLP_LINEARS):
    """Swap every ``nn.Linear`` whose attribute name is in ``names`` for a :class:`FakeQuantLinear`.

    Yields the dotted names of the swapped layers; the originals are put back on
    exit, whatever happens inside.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    names = (names,) if isinstance(names, str) else tuple(names)
    targets = [(full, parent, attr) for parent_name, parent in model.named_modules()
               for attr, child in parent.named_children()
               if attr in names and isinstance(child, nn.Linear)
               for full in [f"{parent_name}.{attr}" if parent_name else attr]]
    if not targets:
        raise ValueError(f"model has no nn.Linear named one of {list(names)}")
    swapped = []
    try:
        for full, parent, attr in targets:
            original = getattr(parent, attr)
            setattr(parent, attr, FakeQuantLinear(original, weight=weight, act=act))
            swapped.append((parent, attr, original))
        yield [full for full, _, _ in targets]
    finally:
        for parent, attr, original in swapped:
            setattr(parent, attr, original)
