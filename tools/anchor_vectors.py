"""Reference vectors from the anchor libraries themselves (fouroversix, torchao).

Run from the repository root with the anchors installed (they are not finescale
dependencies; CI only reads the committed vectors):

    pip install --no-deps torchao==0.18.0
    pip install --target /tmp/st setuptools wheel   # fouroversix's setup.py imports torch and
    export PYTHONPATH=/tmp/st SKIP_CUDA_BUILD=1     # setuptools.command.bdist_wheel (>= 70.1)
    pip download --no-deps --no-build-isolation --no-binary :all: fouroversix==1.0.5
    pip install --no-deps --no-build-isolation ./fouroversix-1.0.5.tar.gz
    unset PYTHONPATH; python tools/anchor_vectors.py [--out tests/data/anchors]

Its PyTorch path runs on CPU without CUDA.  The vectors were written on an x86-64
(AVX2) CPU with torch 2.13.0: fouroversix's 4-over-6 errors are ``torch.sum`` in
float32, whose order depends on the CPU's vector width.

It writes ``inputs.npz`` (one float32 array per corner case, shape (64, 128))
and one ``<recipe>.npz`` per finescale anchor recipe holding, per case,
``<case>/codes`` (E2M1 codes, uint8, shape of x), ``<case>/scales`` (scale
codes, uint8, one per block) and ``<case>/dq`` (the anchor's float32
dequantization), plus ``version``.  Each anchor is called the way its users
call it (fouroversix: ``quantize_to_fp4`` on the PyTorch backend and
``dequantize(..., torch.float32)``; torchao: ``NVFP4Tensor.to_nvfp4`` /
``MXTensor.to_mx`` and ``.dequantize(torch.float32)``), on CPU.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

ROWS, COLS = 64, 128
E2M1_MIDS = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])


def _e4m3_values():
    from finescale.golden import formats
    v = formats.get("e4m3").values()
    return v[v > 0]


def cases() -> dict[str, np.ndarray]:
    """The corner cases, float32 (64, 128), deterministic."""
    rng = np.random.default_rng(2026)
    out = {}
    for sigma in (1e-6, 1e-3, 1.0, 1e2):
        out[f"normal-{sigma:g}"] = rng.normal(0, sigma, (ROWS, COLS)).astype(np.float32)
    # one sigma a row, 1e-7 .. 1e3: subnormal block scales under a per-tensor scale
    sig = np.logspace(-7, 3, ROWS)[:, None]
    out["normal-rows"] = (rng.normal(0, 1, (ROWS, COLS)) * sig).astype(np.float32)
    # exact E2M1 ties: every element a midpoint times a block scale S (an E4M3 value)
    e4 = _e4m3_values()
    s = rng.choice(e4[(e4 >= 2.0 ** -6) & (e4 <= 64)], (ROWS, COLS // 16, 1))
    mids = rng.choice(E2M1_MIDS, (ROWS, COLS // 16, 16)) * rng.choice([-1, 1], (ROWS, COLS // 16, 16))
    mids[..., 0] = 6.0  # block amax = 6 S
    out["e2m1-ties"] = (mids * s).reshape(ROWS, COLS).astype(np.float32)
    # exact E4M3 ties: amax / 6 halfway between two E4M3 values (normal and subnormal)
    lo = e4[:-1]
    mid = (lo + e4[1:]) / 2
    pick = rng.choice(mid, (ROWS, COLS // 16, 1))
    blk = rng.uniform(-1, 1, (ROWS, COLS // 16, 16)) * 6 * pick
    blk[..., 3] = 6 * pick[..., 0] * rng.choice([-1, 1], (ROWS, COLS // 16))
    x = blk.reshape(ROWS, COLS).astype(np.float32)
    x[0, 0] = 6 * 448.0  # tensor amax so that the per-tensor encode scale is 1
    out["e4m3-ties"] = x
    # amax = 6 * 2**k +/- 1 ulp, one block each, k spread over the float32 range
    k = rng.integers(-120, 100, (ROWS, COLS // 16))
    base = np.ldexp(np.float32(6), k).astype(np.float32)
    which = rng.integers(0, 3, base.shape)
    amax = np.where(which == 0, np.nextafter(base, np.float32(0)),
                    np.where(which == 1, base, np.nextafter(base, np.float32(np.inf))))
    blk = rng.uniform(-1, 1, (ROWS, COLS // 16, 16)) * amax[..., None]
    blk[..., 5] = -amax
    out["amax-6x2k"] = blk.reshape(ROWS, COLS).astype(np.float32)
    # zeros: all-zero blocks (+0 and -0), tiny values that round to zero, one outlier a row
    x = rng.normal(0, 1, (ROWS, COLS)).astype(np.float32)
    x[::2, 16:48] = 0.0
    x[1::4, 48:64] = -0.0
    x[2::4, 64:80] = rng.normal(0, 1e-3, (ROWS // 4, 16)).astype(np.float32)
    x[:, 100] = rng.choice([-1, 1], ROWS) * 1e4
    x[5, 7] = 3e6  # single tensor outlier
    out["zeros-outliers"] = x
    out["all-zero"] = np.zeros((ROWS, COLS), np.float32)
    # float32 subnormal inputs (and normals near the bottom of the range)
    x = rng.normal(0, 1, (ROWS, COLS)) * np.ldexp(1.0, rng.integers(-149, -118, (ROWS, 1)))
    out["f32-subnormal"] = x.astype(np.float32)
    return out


def _fouroversix(x, dtype, rule):
    import torch
    from fouroversix.quantize import QuantizationConfig, dequantize, from_blocked, quantize_to_fp4
    t = torch.from_numpy(x)
    q = quantize_to_fp4(t, QuantizationConfig(backend="pytorch", dtype=dtype, scale_rule=rule))
    dq = dequantize(q, torch.float32, backend="pytorch").numpy()
    packed = q.values.numpy()
    codes = np.empty((packed.shape[0], packed.shape[1] * 2), np.uint8)
    codes[:, 0::2], codes[:, 1::2] = packed & 0xF, packed >> 4
    bs = 32 if dtype == "mxfp4" else 16
    scales = from_blocked(q.scale_factors, (q.padded_shape[0], q.padded_shape[1] // bs))
    scales = scales.contiguous().view(torch.uint8).numpy()
    r, c = x.shape
    return codes[:r, :c], scales[:r, :c // bs], dq


def _torchao_nvfp4(x, pts):
    import torch
    from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor, per_tensor_amax_to_scale
    t = torch.from_numpy(x)
    g = per_tensor_amax_to_scale(t.abs().max()) if pts else None
    q = NVFP4Tensor.to_nvfp4(t, per_tensor_scale=g)
    return _torchao_out(q, x)


def _torchao_mx(x, mode):
    import torch
    from torchao.prototype.mx_formats.config import ScaleCalculationMode
    from torchao.prototype.mx_formats.mx_tensor import MXTensor
    q = MXTensor.to_mx(torch.from_numpy(x), torch.float4_e2m1fn_x2, 32,
                       scaling_mode=ScaleCalculationMode[mode.upper()])
    return _torchao_out(q, x)


def _torchao_out(q, x):
    import torch
    packed = q.qdata.contiguous().view(torch.uint8).numpy()
    codes = np.empty((packed.shape[0], packed.shape[1] * 2), np.uint8)
    codes[:, 0::2], codes[:, 1::2] = packed & 0xF, packed >> 4
    scales = q.scale.contiguous().view(torch.uint8).numpy().reshape(x.shape[0], -1)
    return codes, scales, q.dequantize(torch.float32).numpy()


def anchors():
    """finescale recipe -> (library version, function of x)."""
    import importlib.metadata as md
    fos = f"fouroversix {md.version('fouroversix')}"
    tao = f"torchao {md.version('torchao')}"
    return {
        "fouroversix-nvfp4": (fos, lambda x: _fouroversix(x, "nvfp4", "static_6")),
        "fouroversix-nvfp4-static4": (fos, lambda x: _fouroversix(x, "nvfp4", "static_4")),
        "fouroversix-nvfp4-4o6-mse": (fos, lambda x: _fouroversix(x, "nvfp4", "mse")),
        "fouroversix-nvfp4-4o6-mae": (fos, lambda x: _fouroversix(x, "nvfp4", "mae")),
        "fouroversix-nvfp4-4o6-abs-max": (fos, lambda x: _fouroversix(x, "nvfp4", "abs_max")),
        "fouroversix-mxfp4": (fos, lambda x: _fouroversix(x, "mxfp4", "static_6")),
        "fouroversix-mxfp4-static4": (fos, lambda x: _fouroversix(x, "mxfp4", "static_4")),
        "torchao-nvfp4": (tao, lambda x: _torchao_nvfp4(x, True)),
        "torchao-nvfp4-nopts": (tao, lambda x: _torchao_nvfp4(x, False)),
        **{f"torchao-mxfp4-{m}": (tao, lambda x, m=m: _torchao_mx(x, m))
           for m in ("floor", "ceil", "even", "rceil")},
    }


def main(argv=None):
    from tqdm import tqdm
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/data/anchors")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xs = cases()
    np.savez_compressed(out / "inputs.npz", **xs)
    for name, (version, fn) in tqdm(anchors().items(), desc="anchors"):
        arrays = {"version": np.array(version)}
        for case, x in xs.items():
            codes, scales, dq = fn(x.copy())
            arrays[f"{case}/codes"] = codes
            arrays[f"{case}/scales"] = scales
            arrays[f"{case}/dq"] = np.ascontiguousarray(dq, np.float32)
        np.savez_compressed(out / f"{name}.npz", **arrays)
    size = sum(p.stat().st_size for p in out.glob("*.npz"))
    print(f"wrote {len(xs)} cases x {len(anchors())} recipes to {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
