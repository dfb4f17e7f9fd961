"""The ``finescale`` command: one subcommand per job, one module of this package each.

A subcommand module ``finescale.cli.<name>`` parses its options and calls the library
(golden, hw, sim, synth, the studies), which takes plain keyword arguments.  It exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments, returns an exit code).
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> module that registers it
COMMANDS = {name: f"finescale.cli.{name}" for name in (
    "quantize", "bench", "study", "selectors", "rtl", "regress", "mutate", "prove", "synth",
    "validate", "characterize", "report")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finescale",
        description="Bit-accurate model of microscaling FP4 quantization: golden model, "
                    "RTL, regression, synthesis and the papers' studies.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("finescale: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, not a traceback
        if args.debug:
            raise
        print(f"finescale {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
