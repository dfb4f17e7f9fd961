"""``finescale regress``: the cocotb regression of RTL units (or any Verilog with its sidecar)
against the golden model.
"""

from __future__ import annotations

from finescale.sim import regress as library
from finescale.sim import runner, units
from finescale.sim.regress import markdown, regress, row


def register(subparsers) -> None:
    p = subparsers.add_parser("regress", help="cocotb regression of every RTL unit against "
                              "the golden model", description=library.__doc__)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="default matrix, few vectors (the default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="every parameter set, many vectors, exhaustive sweeps")
    p.add_argument("--sim", choices=runner.SIMULATORS, default="verilator")
    p.add_argument("--unit", action="append", default=[],
                   help="unit kind (scale, element, quantizer, 4o6, selector, dot) or whole top "
                        "name; repeatable")
    p.add_argument("--verilog", action="append", default=[], metavar="FILE.v",
                   help="regress this Verilog file (its sidecar FILE.json beside it gives the "
                   "unit, parameters, ports and latency); repeatable")
    p.add_argument("--seed", type=int, default=1, help="stimulus seed (printed on failure)")
    p.add_argument("--vectors", type=int, help="random vectors a unit (overrides the mode)")
    p.add_argument("--jobs", type=int, default=1,
                   help="units built and run at a time (Dask LocalCluster worker processes)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler to run the units on")
    p.add_argument("--waves", action="store_true", help="dump waveforms (dump.vcd / dump.fst)")
    p.add_argument("--build-dir", default="sim_build", help="one subdirectory a unit")
    p.add_argument("--out", default="regress_out", help="where the CSV/JSON/Markdown go")
    p.add_argument("--source", default=units.DEFAULT_SOURCE,
                   help="where the units come from, 'module:function(which)'")
    p.set_defaults(func=run, mode="quick")


def run(args) -> int:
    if args.vectors is not None and args.vectors < 1:
        raise ValueError(f"--vectors must be positive, got {args.vectors}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be positive, got {args.jobs}")
    if args.verilog and args.unit:
        raise ValueError("give either --unit or --verilog")
    for v in args.verilog:  # a missing file or sidecar: a one-line error before any build
        from finescale.hw.emit import load
        load(v)
    rows, reports = regress(mode=args.mode, sim=args.sim, wanted=args.unit,
                            verilog=args.verilog, seed=args.seed,
                            vectors=args.vectors, waves=args.waves, build_root=args.build_dir,
                            out=args.out, source=args.source, jobs=args.jobs,
                            scheduler=args.scheduler)
    print(markdown(rows), end="")
    failed = [r for r in reports if row(r)["status"] != "PASS"]
    for rep in failed:
        for text in rep["first_mismatches"] + rep["protocol_errors"]:
            print(text)
        if rep["missed"]:
            print(f"{rep['name']}: coverage goals missed: {rep['missed']}")
    if args.waves:
        print("waveforms: " + ", ".join(r["build_dir"] for r in reports))
    print(f"{len(reports) - len(failed)}/{len(reports)} units pass; tables in {args.out}/")
    return 1 if failed else 0
