"""``finescale rtl``: write Verilog and a JSON sidecar for one unit or the whole matrix.

Each unit becomes ``DIR/<top>.v`` and ``DIR/<top>.json`` (top, unit, params,
latency, clock, reset, ports and the sha256 of the Verilog), written by the one
emit step :func:`finescale.hw.emit.emit`; ``DIR/manifest.json`` lists the top
names written.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from tqdm import tqdm

from finescale.hw.emit import emit

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rtl", help="generate Verilog (+ JSON sidecars) of the quantization datapaths",
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--unit", help="scale | element | quantizer | 4o6 | selector | dot")
    p.add_argument("--all", action="store_true", help="emit the whole matrix (see --matrix)")
    p.add_argument("--matrix", default="default", choices=["default", "all"],
                   help="which matrix --all emits")
    p.add_argument("--scale-format", default="e4m3", help="scale format (golden format name)")
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--input-format", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--rule", default=None,
                   help="scale rule: abs-max | mx (default: mx for e8m0, else abs-max); "
                        "selector: kc-m<M>_<M>..|kc-o<offsets>[-up][-mae|-maxabs][-f<F>] or "
                        "pg<t>-m<M>_<M>[-up] (default kc-m6_4-up)")
    p.add_argument("--prevent-zero", action="store_true")
    p.add_argument("--metric", default=None, help="4o6 block error: mse | mae")
    p.add_argument("--error-frac-bits", type=int, default=None, help="4o6 fixed-point F")
    p.add_argument("--pipelined", action="store_true",
                   help="registered stages, 1 block/cycle (dot: use --stages)")
    p.add_argument("--lanes", type=int, default=None,
                   help="dot: element pairs per cycle (divides the block size; default all)")
    p.add_argument("--accumulate", nargs="?", const="kulisch", choices=["kulisch", "fp32"],
                   help="dot: accumulate blocks, exactly in a wide fixed-point (Kulisch) "
                        "accumulator (the default with no value) or in an FP32 total rounded "
                        "once per block")
    p.add_argument("--headroom", type=int, default=None,
                   help="dot --accumulate: log2 of the blocks the accumulator adds exactly")
    p.add_argument("--stages", type=int, default=None,
                   help="dot: pipeline registers (0..4; accumulate 1..4, the accumulator is one)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=run)


def _one_spec(args):
    from finescale.hw.units import UNITS, UnitSpec

    if args.unit not in UNITS:
        raise ValueError(f"--unit must be one of {list(UNITS)}, not {args.unit!r}")
    defaults = UNITS[args.unit].defaults
    given = {"scale_format": args.scale_format, "block_size": args.block_size,
             "input_format": args.input_format, "rule": args.rule,
             "prevent_zero": args.prevent_zero, "metric": args.metric,
             "error_frac_bits": args.error_frac_bits, "pipelined": args.pipelined or None,
             "lanes": args.lanes, "accumulate": args.accumulate,
             "headroom": args.headroom, "stages": args.stages}
    params = {k: v for k, v in given.items() if k in defaults and v is not None}
    for k in ("rule", "metric", "error_frac_bits", "pipelined", "lanes", "accumulate",
              "headroom", "stages"):
        if given[k] is not None and k not in defaults:
            raise ValueError(f"--{k.replace('_', '-')} does not apply to unit {args.unit!r}")
    if args.prevent_zero and "prevent_zero" not in defaults:
        raise ValueError(f"--prevent-zero does not apply to unit {args.unit!r}")
    return UnitSpec(args.unit, params)


def run(args) -> int:
    from finescale.hw.units import matrix

    if args.all == bool(args.unit):
        raise ValueError("give either --unit or --all")
    specs = matrix(args.matrix) if args.all else [_one_spec(args)]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for spec in tqdm(specs, desc="rtl", unit="unit", disable=len(specs) < 2):
        emit(spec, out)
        names.append(spec.name)
    manifest = out / "manifest.json"
    known = json.loads(manifest.read_text()) if manifest.exists() and not args.all else []
    manifest.write_text(json.dumps(sorted(set(known) | set(names)), indent=2) + "\n")
    print(f"wrote {len(names)} unit(s) to {out}")
    return 0
