"""How often the anchors' named faults fire, and how the anchor recipes fare on the vectors.

    python tools/anchor_faults.py [--out results/anchors] [--rows 64] [--cols 4096]

Needs only finescale (the committed vectors in ``tests/data/anchors`` and the
golden model's ``faults="reproduce"``, which the tests hold to the anchors' bytes).
Writes ``vectors.csv`` (per recipe: elements compared, mismatching elements of the
default and of ``faults="reproduce"``), ``faults.csv`` / ``faults.json`` / ``faults.md``
(per recipe and data set: the share of elements whose code, block scale code or
float32 dequantized value the faults change) and ``faults.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib

import numpy as np

from finescale import golden

DATA = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "anchors"
SIGMAS = (1e-40, 1e-38, 1e-36, 1e-3, 1.0, 1e3)


def anchor_recipes():
    return [n for n in golden.recipes.names() if n.startswith(("fouroversix-", "torchao-"))]


def _differs(a, b):
    """Elementwise: code or float32 bits differ (NaN equals NaN)."""
    ca, da = a
    cb, db = b
    same = (da.view(np.uint32) == db.view(np.uint32)) | (np.isnan(da) & np.isnan(db))
    return (ca != cb) | ~same


def _run(x, name, faults):
    """(codes, dq) with each block's scale code in the codes' high bits."""
    bs = golden.recipes.RECIPES[name]["block_size"]
    with np.errstate(all="ignore"):
        q = golden.quantize(x, recipe=name, faults=faults)
        codes = q.element_codes | (np.repeat(q.scale_codes, bs, axis=1).astype(np.uint16) << 8)
        return codes, q.dequantize(np.float32)


def vectors_table():
    """Per recipe: elements compared, mismatches of the default and of reproduce."""
    inputs = np.load(DATA / "inputs.npz")
    rows = []
    for name in anchor_recipes():
        ref = np.load(DATA / f"{name}.npz")
        n = bad_default = bad_repro = 0
        for case in inputs.files:
            x = inputs[case]
            want = (ref[f"{case}/codes"], ref[f"{case}/dq"])
            bs = golden.recipes.RECIPES[name]["block_size"]
            for faults in ("exact", "reproduce"):
                with np.errstate(all="ignore"):
                    q = golden.quantize(x, recipe=name, faults=faults)
                    got = (q.element_codes, q.dequantize(np.float32))
                d = _differs(got, want)
                d |= np.repeat(q.scale_codes != ref[f"{case}/scales"], bs, axis=1)
                if faults == "exact":
                    bad_default += int(d.sum())
                else:
                    bad_repro += int(d.sum())
            n += x.size
        rows.append(dict(recipe=name, version=str(ref["version"]), elements=n,
                         mismatches_default=bad_default, mismatches_reproduce=bad_repro))
    return rows


def datasets(rows, cols, seed=0):
    rng = np.random.default_rng(seed)
    for s in SIGMAS:
        yield f"N(0, {s:g}^2)", (rng.normal(0, 1, (rows, cols)) * s).astype(np.float32)
    sig = np.logspace(-7, 3, rows)[:, None]
    yield "N(0, s_r^2), s_r = 1e-7..1e3 by row", (rng.normal(0, 1, (rows, cols)) * sig).astype(
        np.float32)


def fault_shares(rows, cols):
    from tqdm import tqdm
    out = []
    sets = list(datasets(rows, cols))
    for name in tqdm(anchor_recipes(), desc="fault shares"):
        for label, x in sets:
            share = _differs(_run(x, name, "exact"), _run(x, name, "reproduce")).mean()
            out.append(dict(recipe=name, data=label, elements=x.size, share=float(share)))
    return out


def _markdown(vec, shares):
    lines = ["| recipe | anchor | elements | mismatches (default) | mismatches (reproduce) |",
             "|---|---|---|---|---|"]
    lines += [f"| `{r['recipe']}` | {r['version']} | {r['elements']} | "
              f"{r['mismatches_default']} | {r['mismatches_reproduce']} |" for r in vec]
    labels = list(dict.fromkeys(s["data"] for s in shares))
    lines += ["", "| recipe | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name in anchor_recipes():
        vals = {s["data"]: s["share"] for s in shares if s["recipe"] == name}
        lines.append(f"| `{name}` | " + " | ".join(f"{vals[k]:.3g}" for k in labels) + " |")
    return "\n".join(lines) + "\n"


def _plot(shares, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = list(dict.fromkeys(s["data"] for s in shares))
    names = anchor_recipes()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    w = 0.8 / len(labels)
    for k, lab in enumerate(labels):
        vals = [next(s["share"] for s in shares if s["recipe"] == n and s["data"] == lab)
                for n in names]
        ax.bar(np.arange(len(names)) + k * w, np.maximum(vals, 1e-7), w, label=lab)
    ax.set_yscale("log")
    ax.set_ylim(1e-7, 1.5)
    ax.set_xticks(np.arange(len(names)) + 0.4, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share of elements the faults change (1e-7 = none)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/anchors")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--cols", type=int, default=4096)
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vec = vectors_table()
    shares = fault_shares(args.rows, args.cols)
    for fname, rows in (("vectors.csv", vec), ("faults.csv", shares)):
        with open(out / fname, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    (out / "faults.json").write_text(json.dumps(dict(vectors=vec, shares=shares), indent=1))
    (out / "faults.md").write_text(_markdown(vec, shares))
    _plot(shares, out / "faults.png")
    print((out / "faults.md").read_text())


if __name__ == "__main__":
    main()
