"""Reading tensors for the command line: ``.npy``, ``.npz`` and ``.safetensors``.

The safetensors reader is the format's few lines (an 8-byte little-endian
header length, a JSON header, raw little-endian data), so no extra package is
needed; BF16 tensors come back as ``ml_dtypes.bfloat16`` arrays.
"""

from __future__ import annotations

import json
import pathlib
import struct

import ml_dtypes
import numpy as np

SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
                      "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32,
                      "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def load_safetensors(path) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file, by name (read-only views of one buffer)."""
    data = pathlib.Path(path).read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a safetensors file ({exc})") from None
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype=np.dtype(dtype).newbyteorder("<")
                                  ).reshape(info["shape"])
    return out


def load(path) -> dict[str, np.ndarray]:
    """Tensors of a .npy (named after the file), .npz or .safetensors file."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return {path.stem: np.load(path, allow_pickle=False)}
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if suffix == ".safetensors":
        return load_safetensors(path)
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use .npy, .npz or .safetensors)")
