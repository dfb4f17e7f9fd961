"""Reading tensors for the command line: ``.npy``, ``.npz`` and ``.safetensors``.

Safetensors files are read by the ``safetensors`` package (its numpy loader gives BF16
tensors as ``ml_dtypes.bfloat16`` arrays); a file it cannot parse is one line of error.
"""

from __future__ import annotations

import pathlib

import ml_dtypes  # noqa: F401  (registers 'bfloat16' with numpy, which safetensors asks for)
import numpy as np


def load_safetensors(path) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file, by name."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except (SafetensorError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not a readable safetensors file ({reason})") from None


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
