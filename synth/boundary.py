"""Boundary registers: a generated Verilog wrapper that registers every input and output of a unit.

Peers time and price a unit between registers (FormatScope: inputs and the running total
registered), so its delay is register to register and its area includes the flip-flops.  The
wrapper ``<top>__bounded`` has the unit's ports plus ``clk`` (shared with the unit when it has
one): every other input, reset included, goes through one flip-flop before the unit, and every
output through one after it.
"""

from __future__ import annotations

import re

CLOCK = "clk"

_MODULE = re.compile(r"^\s*module\s+(\\\S+\s|[\w$]+)\s*\((.*?)\)\s*;(.*?)^\s*endmodule", re.M | re.S)
_PORT = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):(\d+)\]\s*)?(\\\S+\s|[\w$]+)\s*[;=]",
                   re.M)


def _plain(name: str) -> str:
    name = name.strip()
    return name[1:] if name.startswith("\\") else name


def _ident(name: str) -> str:
    """A Verilog identifier for ``name``, escaped when it is not a simple one."""
    return name if re.fullmatch(r"[A-Za-z_][\w$]*", name) else f"\\{name} "


def ports(verilog: str, top: str) -> list[tuple[str, int, str]]:
    """(direction, width, name) of every port of module ``top``, in declaration order."""
    for match in _MODULE.finditer(verilog):
        if _plain(match[1]) == top:
            found = [(d, abs(int(hi) - int(lo)) + 1 if hi else 1, _plain(n))
                     for d, hi, lo, n in _PORT.findall(match[3])]
            if not found:
                raise ValueError(f"module {top}: no input/output declarations found")
            return found
    raise ValueError(f"no module {top!r} in the Verilog")


def wrapper_name(top: str) -> str:
    return f"{top}__bounded"


def wrap(verilog: str, top: str) -> tuple[str, str]:
    """(wrapper top name, Verilog of the unit plus the wrapper)."""
    plist = ports(verilog, top)
    name = wrapper_name(top)
    header = [CLOCK] + [n for _, _, n in plist if n != CLOCK]
    body = [f"module {name}({', '.join(map(_ident, header))});", f"  input {CLOCK};"]
    always, conns = [], []
    for i, (direction, width, port) in enumerate(plist):
        if port == CLOCK:
            conns.append(f".{_ident(port)}({CLOCK})")
            continue
        vec = f"[{width - 1}:0] " if width > 1 else ""
        body.append(f"  {direction} {vec}{_ident(port)};")
        body.append(f"  reg {vec}bnd_q{i};")
        if direction == "input":
            always.append(f"    bnd_q{i} <= {_ident(port)};")
            conns.append(f".{_ident(port)}(bnd_q{i})")
        else:
            body.append(f"  wire {vec}bnd_d{i};")
            always.append(f"    bnd_q{i} <= bnd_d{i};")
            body.append(f"  assign {_ident(port)} = bnd_q{i};")
            conns.append(f".{_ident(port)}(bnd_d{i})")
    body += [f"  always @(posedge {CLOCK}) begin", *always, "  end",
             f"  {_ident(top)} unit ({', '.join(conns)});", "endmodule"]
    return name, verilog.rstrip() + "\n\n" + "\n".join(body) + "\n"


def boundary_bits(verilog: str, top: str) -> int:
    """Flip-flops the wrapper adds before constant folding: every port bit except the clock."""
    return sum(w for _, w, n in ports(verilog, top) if n != CLOCK)


def serial_name(top: str) -> str:
    return f"{top}__serial"


def wrap_serial(verilog: str, top: str) -> tuple[str, str]:
    """(top name, Verilog plus ``<top>__serial``): the unit between boundary registers that
    form shift chains, for FPGA place and route with four pins (``clk``, ``sin``, ``load``,
    ``sout``) whatever the unit's width.  Every input bit is a flip-flop of a chain shifted from
    ``sin``; every output bit a flip-flop loaded from the unit (``load``) or shifted towards
    ``sout``, one LUT in front of it, so the unit's paths stay register to register."""
    plist = [p for p in ports(verilog, top) if p[2] != CLOCK]
    n_in = sum(w for d, w, _ in plist if d == "input")
    n_out = sum(w for d, w, _ in plist if d == "output")
    if not n_in or not n_out:
        raise ValueError(f"module {top}: needs inputs and outputs to place and route")
    name = serial_name(top)
    shift_in = f"{{sh_in[{n_in - 2}:0], sin}}" if n_in > 1 else "sin"
    shift_out = f"{{sh_out[{n_out - 2}:0], 1'b0}}" if n_out > 1 else "1'b0"
    conns, pos = [], {"input": 0, "output": 0}
    has_clk = any(n == CLOCK for _, _, n in ports(verilog, top))
    if has_clk:
        conns.append(f".{CLOCK}({CLOCK})")
    for direction, width, port in plist:
        bus = "sh_in" if direction == "input" else "y"
        lo = pos[direction]
        conns.append(f".{_ident(port)}({bus}[{lo + width - 1}:{lo}])")
        pos[direction] += width
    body = [f"module {name}({CLOCK}, sin, load, sout);",
            f"  input {CLOCK}, sin, load;", "  output sout;",
            f"  reg [{n_in - 1}:0] sh_in;", f"  reg [{n_out - 1}:0] sh_out;",
            f"  wire [{n_out - 1}:0] y;",
            f"  always @(posedge {CLOCK}) begin",
            f"    sh_in <= {shift_in};", f"    sh_out <= load ? y : {shift_out};", "  end",
            f"  assign sout = sh_out[{n_out - 1}];",
            f"  {_ident(top)} unit ({', '.join(conns)});", "endmodule"]
    return name, verilog.rstrip() + "\n\n" + "\n".join(body) + "\n"
