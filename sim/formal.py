"""``finescale prove``: each pipelined unit proved equal to its combinational twin with Yosys.

For a unit kind (:data:`TWINS`) the pipelined variant P (latency Lp) and its
twin C (fewest stages, latency Lc) are emitted (:func:`finescale.hw.emit.emit`)
and wrapped in a generated Verilog module that feeds both the same inputs and
delays C's outputs by ``Lp - Lc`` registers (its ``valid_out`` cleared by
``rst`` like P's pipeline).  The property ``ok``: the two ``valid_out`` agree
every cycle, and every data output agrees whenever ``valid_out`` is high.
Yosys proves it with ``sat -tempinduct -prove ok 1 -set-init-zero`` (k-induction
from the all-zero state); that is how a test shows a wrong ``delay`` fails.

Stateless pipelines (scale, element, quantizer, 4o6, dot) are proved faster
and as strongly by :func:`prove_cuts`: SAT on two unrolled copies of the
arithmetic (multipliers, squares) does not finish in minutes, so instead every
input-to-output path of P is shown to cross exactly ``latency`` registers (a
depth count on Yosys's netlist) and P with its registers made wires is proved
equal to C for all inputs (miter + sat, after ``opt_merge`` has shared the
common logic).  Together: P's outputs equal C's ``latency`` cycles later.
Pipelines with state (the accumulating dot products, Kulisch and FP32; the dot
product in beats) by :func:`prove_state_cuts`: the registers both twins hold
are the state (:func:`shared_state`); in P every path crosses a balanced number
of pipeline registers, the state registers counted as none, each state
register at its lag (:data:`STATE_AFTER`) and each output at the latency
difference; and P with its pipeline registers made wires has C's next state and
outputs for every state and input (each state register everted by ``expose
-evert-dff``, one combinational miter, ``rst`` tied low: a reset returns P to
its init state).
The wrapper's ``delay`` is a parameter so a test can show a wrong one fails.
Results: ``prove.csv`` / ``.json`` / ``.md``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path


from finescale.hw import emit
from finescale.hw.units import spec as unit_spec


def twins(kind: str, block_size: int = 4, scale_format: str = "e4m3"):
    """(pipelined spec, combinational twin) of a unit kind."""
    b = dict(scale_format=scale_format, block_size=block_size)
    if kind in ("scale", "element", "quantizer", "4o6"):
        return unit_spec(kind, pipelined=True, **b), unit_spec(kind, pipelined=False, **b)
    if kind == "dot":
        return unit_spec("dot", stages=4, **b), unit_spec("dot", stages=0, **b)
    if kind == "dot-lanes":
        lanes = max(1, block_size // 2)
        return (unit_spec("dot", lanes=lanes, stages=4, **b),
                unit_spec("dot", lanes=lanes, stages=0, **b))
    if kind in ("dot-acc", "dot-fp32"):
        acc = "fp32" if kind == "dot-fp32" else "kulisch"
        return (unit_spec("dot", accumulate=acc, stages=4, **b),
                unit_spec("dot", accumulate=acc, stages=1, **b))
    raise ValueError(f"unknown unit kind {kind!r}; choose from {list(KINDS)}")


KINDS = ("scale", "element", "quantizer", "4o6", "dot", "dot-lanes", "dot-acc", "dot-fp32")
#: where a dot product's state registers sit among its cuts: the cuts before them (the beat
#: counter before every cut; the partial sum of a block's beats after ``products``; any
#: other state, the accumulators, after ``products``, ``sum`` and ``scaled``)
STATE_AFTER = {"beat": (), "partial": ("products",)}
ACC_STATE_AFTER = ("products", "sum", "scaled")
COLUMNS = ("kind", "pipelined", "twin", "delay", "result", "proof", "seconds")


def wrapper(p_side: dict, c_side: dict, delay: int, state=()) -> str:
    """Verilog of ``equiv_top``: P and C side by side, C's outputs delayed ``delay`` cycles.

    ``state``: (name, width, init, lag) of state registers both hold, exposed as ports of
    that name (Yosys ``expose``): ``ok`` also needs P's register equal to C's ``lag``
    cycles earlier (a delay line that ``rst`` loads with ``init``), the strengthening that
    lets k-induction prove twins with state."""
    ports = {q["name"]: q for q in p_side["ports"]}
    ins = [q for q in p_side["ports"] if q["dir"] == "in"]
    outs = [q for q in p_side["ports"] if q["dir"] == "out"]
    c_ports = {q["name"] for q in c_side["ports"]}
    if {q["name"] for q in c_side["ports"]} - {"clk", "rst"} != set(ports) - {"clk", "rst"}:
        raise ValueError("the twins do not have the same data ports")
    decl = [f"  input {_rng(q)}{q['name']};" for q in ins]
    body = [f"  wire {_rng(q)}p_{q['name']};" for q in outs]
    body += [f"  wire {_rng(q)}c_{q['name']};" for q in outs]
    conn = lambda pre, names: ", ".join(  # noqa: E731
        [f".{q['name']}({q['name']})" for q in ins if q["name"] in names]
        + [f".{q['name']}({pre}{q['name']})" for q in outs])
    sts = [(f"st{i}", name, dict(width=w), init, lag)
           for i, (name, w, init, lag) in enumerate(state)]
    for pre in ("p_", "c_"):
        body += [f"  wire {_rng(q)}{pre}{n};" for n, _, q, _, _ in sts]
    ex = lambda pre: "".join(f", .\\{name} ({pre}{n})" for n, name, *_ in sts)  # noqa: E731
    body += [f"  {p_side['top']} p ({conn('p_', ports)}{ex('p_')});",
             f"  {c_side['top']} c ({conn('c_', c_ports)}{ex('c_')});"]
    same_state = []
    for n, _, q, init, lag in sts:  # C's state, ``lag`` cycles late
        prev = f"c_{n}"
        for i in range(lag):
            body.append(f"  reg {_rng(q)}d{i}_{n} = {q['width']}'d{init};")
            body.append(f"  always @(posedge clk) d{i}_{n} <= rst ? {q['width']}'d{init} : "
                        f"{prev};")
            prev = f"d{i}_{n}"
        same_state.append(f"p_{n} == {prev}")
    for q in outs:  # the delay line of C's outputs
        n = q["name"]
        prev = f"c_{n}"
        for i in range(delay):
            body.append(f"  reg {_rng(q)}d{i}_{n} = 0;")
            nxt = f"rst ? 0 : {prev}" if n == "valid_out" else prev
            body.append(f"  always @(posedge clk) d{i}_{n} <= {nxt};")
            prev = f"d{i}_{n}"
        body.append(f"  wire {_rng(q)}q_{n} = {prev};")
    data = [q["name"] for q in outs if q["name"] != "valid_out"]
    same = " && ".join(f"p_{n} == q_{n}" for n in data) or "1"
    body.append(f"  assign ok = (p_valid_out == q_valid_out) && (!p_valid_out || ({same}))"
                + "".join(f" && ({e})" for e in same_state) + ";")
    names = [q["name"] for q in ins] + ["ok"]
    return "\n".join([f"module equiv_top({', '.join(names)});", *decl, "  output ok;", *body,
                      "endmodule", ""])


def _rng(q) -> str:
    return f"[{q['width'] - 1}:0] " if q["width"] > 1 else ""


def prove(kind: str, workdir, *, block_size: int = 4, scale_format: str = "e4m3",
          maxsteps: int = 12, delay: int | None = None, timeout: float | None = 300) -> dict:
    """Prove one kind's twins equal; ``delay`` (default: the latency difference) is for tests.
    Returns a row: result 'proved' / 'bounded' / 'FAILED', proof, seconds."""
    from finescale.synth.flow import run_yosys

    p, c = twins(kind, block_size, scale_format)
    wd = Path(workdir) / f"{kind}_b{block_size}"
    if wd.exists():
        shutil.rmtree(wd)
    d = p.latency - c.latency if delay is None else delay
    t0 = time.perf_counter()
    row = {"kind": kind, "pipelined": p.name, "twin": c.name, "delay": d}
    if not p.stateful and delay is None:
        try:
            result, proof = prove_cuts(p, c, wd, timeout)
        except subprocess.TimeoutExpired:
            result, proof = "timeout", f"a Yosys call gave no answer in {timeout} s"
        row.update(result=result, proof=proof, seconds=round(time.perf_counter() - t0, 1))
        return row
    if p.stateful and delay is None:
        try:
            result, proof = prove_state_cuts(p, c, wd, timeout)
        except subprocess.TimeoutExpired:
            result, proof = "timeout", f"a Yosys call gave no answer in {timeout} s"
        row.update(result=result, proof=proof)
    else:  # a given delay (tests): plain k-induction over P and the delayed C
        ep, ec = emit.emit(p, wd), emit.emit(c, wd)
        (wd / "equiv_top.v").write_text(wrapper(ep.sidecar, ec.sidecar, d))
        (wd / "induct.ys").write_text("\n".join([
            *_read_twins(ep, ec), "read_verilog -sv equiv_top.v", "hierarchy -top equiv_top",
            "proc", "flatten", "memory_map", "opt_clean", "async2sync",
            f"sat -tempinduct -prove ok 1 -set-init-zero -maxsteps {maxsteps} -verify "
            "-show-inputs"]) + "\n")
        try:
            run_yosys(wd, "induct.ys", timeout=timeout)
            row.update(result="proved", proof=f"k-induction (sat -tempinduct, <= {maxsteps})")
        except RuntimeError:
            row.update(result="FAILED", proof="no proof: counterexample or failed induction")
        except subprocess.TimeoutExpired:
            row.update(result="timeout", proof=f"sat -tempinduct: no answer in {timeout} s")
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def _read_twins(ep, ec) -> list[str]:
    """Yosys commands: both twins read and each flattened (neither is the top)."""
    return [f"read_verilog -sv {ep.path.name} {ec.path.name}", "setattr -mod -unset top",
            "proc", "flatten", "opt_clean"]


def registers(verilog: str, top: str) -> set:
    """Names (as flattened: ``sub.name`` in submodule ``sub``) of the registers Amaranth's
    Verilog of ``top`` assigns in ``always @(posedge clk)`` blocks."""
    out = set()
    for m in re.finditer(r"^module (\\?\S+?)\s*\((.*?)^endmodule", verilog, re.M | re.S):
        mod = m.group(1).lstrip("\\")
        prefix = mod[len(top) + 1:] + "." if mod != top else ""
        out |= {prefix + r.lstrip("\\") for r in
                re.findall(r"always @\(posedge clk\)\s+(\\?\S+)\s*<=", m.group(2))}
    return out


def shared_state(p, c, ep, ec, wd: Path, timeout) -> list:
    """(name, width, init, lag) of the registers P and C both hold (the dot product's beat
    counter, partial sum and accumulators); ``lag``: the cuts before it in P less in C
    (:data:`STATE_AFTER`)."""
    from finescale.synth.flow import run_yosys

    (wd / "regs.ys").write_text("\n".join(_read_twins(ep, ec) + ["write_json regs.json"]))
    run_yosys(wd, "regs.ys", timeout=timeout)
    net = json.loads((wd / "regs.json").read_text())["modules"]
    shared = (registers(ep.path.read_text(), ep.name)
              & registers(ec.path.read_text(), ec.name))
    cp, cc = p.build().cuts, c.build().cuts
    out = []
    for name in sorted(shared):
        after = STATE_AFTER.get(name.split(".")[-1], ACC_STATE_AFTER)
        lag = len(cp & set(after)) - len(cc & set(after))
        shape = [(len(n["bits"]), n.get("attributes", {}).get("init", "0"))
                 for n in (net[ep.name]["netnames"][name], net[ec.name]["netnames"][name])]
        if shape[0] != shape[1] or lag < 0:
            raise RuntimeError(f"state register {name} differs between the twins")
        init = shape[0][1]
        out.append((name, shape[0][0], int(init, 2) if set(init) <= set("01") else 0, lag))
    return out


def cuts_as_wires(verilog: str, top: str, keep) -> str:
    """The top module of Amaranth's Verilog with its registers but those named in ``keep``
    (the state) made combinational: a pipeline's logic without its cuts, state kept."""
    head = f"module {top}("
    a = verilog.index(head)
    b = verilog.index("endmodule", a)
    body = verilog[a:b]
    cut = lambda m: m.group(0) if m.group(2) in keep else f"always @*{m.group(1)}"  # noqa: E731
    body = re.sub(r"always @\(posedge clk\)(\s+(\\?\S+)\s*<=)", cut, body)
    init = lambda m: m.group(0) if m.group(2) in keep else f"{m.group(1)} ;"  # noqa: E731
    body = re.sub(r"^(\s*reg (?:\[[^\]]*\] )?(\\?\S+))\s*=\s*[^;]+;", init, body,
                  flags=re.M)
    return verilog[:a] + body + verilog[b:]


def prove_state_cuts(p, c, wd: Path, timeout) -> tuple[str, str]:
    """A pipeline P with state (a block in beats, an accumulator) against its twin C, whose
    registers are all state P holds too (:func:`shared_state`): every path of P crosses
    a balanced number of pipeline registers (the state registers counted as none): each
    state register sits at its lag, each output at ``P.latency - C.latency``; and P with
    its pipeline registers made wires, its state kept, equals C (k-induction, the state
    registers of the two equal, after ``opt_merge`` has shared their common logic)."""
    from finescale.synth.flow import run_yosys

    ep, ec = emit.emit(p, wd), emit.emit(c, wd)
    state = shared_state(p, c, ep, ec, wd, timeout)
    d = p.latency - c.latency
    (wd / "depth.ys").write_text(f"read_verilog -sv {ep.path.name}\nprep -top {p.name} "
                                 "-flatten\nmemory_map\nopt_clean\nwrite_json p.json\n")
    run_yosys(wd, "depth.ys", timeout=timeout)
    net = json.loads((wd / "p.json").read_text())
    nets = net["modules"][p.name]["netnames"]
    held = {b for name, *_ in state for b in nets[name]["bits"]}
    outs, clash = register_depths(net, p.name, transparent=held)
    depth, _ = depth_map(net, p.name, transparent=held)
    bad = {n: sorted(v) for n, v in outs.items() if v and v != {d}}
    lags = {name: {depth[b] for b in nets[name]["bits"] if b in depth} for name, *_ in state}
    bad.update({n: sorted(lags[n]) for n, _, _, lag in state if lags[n] != {lag}})
    if clash or bad:
        return "FAILED", f"unbalanced pipeline: depths {bad}, clashes {clash}"
    keep = {name for name, *_ in state if "." not in name}
    (wd / "pcomb.v").write_text(cuts_as_wires(ep.path.read_text(), p.name, keep))
    # each state register everted (expose -evert-dff): its Q an input, its D an output
    (wd / "evert.ys").write_text("\n".join([
        f"read_verilog -sv pcomb.v {ec.path.name}", "setattr -mod -unset top", "proc",
        "flatten", "memory_map", "opt_clean", "write_json pre.json",
        f"expose -evert-dff {p.name}/t:*dff* "
        f"{c.name}/t:*dff*", "opt_clean", "write_rtlil twins.il", "write_json twins.json"]))
    run_yosys(wd, "evert.ys", timeout=timeout)
    mods = json.loads((wd / "twins.json").read_text())["modules"]
    pre = json.loads((wd / "pre.json").read_text())["modules"]
    names = {name for name, *_ in state}
    pp, pc = ({n: (_state_port(n, pre[t], names), q) for n, q in mods[t]["ports"].items()}
              for t in (p.name, c.name))
    kp, kc = ({k for k, _ in v.values()} for v in (pp, pc))
    if kp != kc:
        return "FAILED", f"the state differs: {sorted(kp ^ kc)}"
    (wd / "step.v").write_text(step_wrapper(p.name, c.name, pp, pc))
    (wd / "step.ys").write_text("\n".join([
        "read_rtlil twins.il", "read_verilog -sv step.v", "hierarchy -top step_top", "proc",
        "flatten", "opt", "opt_merge -share_all", "opt",
        "sat -prove ok 1 -verify -show-inputs"]) + "\n")
    try:
        run_yosys(wd, "step.ys", timeout=timeout)
    except RuntimeError:
        return "FAILED", "P with its pipeline registers as wires differs from C (yosys.log)"
    lagged = ", ".join(f"{n} +{lag}" for n, _, _, lag in state)
    return "proved", (f"every path balanced (state registers at their lag: {lagged}; outputs "
                      f"at {d}); with its pipeline registers as wires P has C's state "
                      "(same names, widths, init) and, for every state and input, C's next "
                      "state and outputs (state registers everted, miter + sat); rst tied "
                      "low there (a reset returns P to its init state)")


def _state_port(port: str, module: dict, names) -> str:
    """An everted register's port (``X.q`` / ``.d`` / ``.c``) under the name in ``names`` of
    the register (Yosys names it after any wire on its output); other ports unchanged."""
    base, dot, end = port.rpartition(".")
    if not dot or end not in ("q", "d", "c") or base in names:
        return port
    bits = module["netnames"].get(base, {}).get("bits")
    same = [n for n in names if module["netnames"].get(n, {}).get("bits") == bits]
    return f"{same[0]}.{end}" if bits and len(same) == 1 else port


def step_wrapper(p_top: str, c_top: str, p_ports: dict, c_ports: dict, *,
                 tie_rst: bool = True) -> str:
    """Verilog of ``step_top``: P and C with the same inputs, the state inputs (``X.q``)
    among them, ``rst`` low; ``ok`` when every output (next states ``X.d`` too) agrees.
    ``p_ports`` / ``c_ports``: port -> (canonical name, Yosys port); ports of one canonical
    name (a register's aliases) share their input, and the first of them is compared."""
    width = {k: len(q["bits"]) for k, q in list(p_ports.values()) + list(c_ports.values())}
    ins = sorted({k for k, q in p_ports.values() if q["direction"] == "input"}
                 - ({"rst"} if tie_rst else set()))
    outs = sorted({k for k, q in p_ports.values() if q["direction"] == "output"
                   and not k.endswith(".c")})
    rng = lambda k: f"[{width[k] - 1}:0] "  # noqa: E731
    lines = [f"module step_top({', '.join(f'i{j}' for j in range(len(ins)))}, ok);"]
    lines += [f"  input {rng(k)}i{j};" for j, k in enumerate(ins)] + ["  output ok;"]
    same = []
    for side, top, ports in (("p", p_top, p_ports), ("c", c_top, c_ports)):
        conn, first = [], {}
        for j, (n, (k, q)) in enumerate(ports.items()):
            if q["direction"] == "input":
                conn.append("1'b0" if k not in ins else f"i{ins.index(k)}")
            else:
                lines.append(f"  wire {_rng(dict(width=len(q['bits'])))}{side}{j};")
                conn.append(f"{side}{j}")
                if k in outs:
                    first.setdefault(k, f"{side}{j}")
        # by position (Yosys's port order): an everted register may have a private name
        lines.append(f"  {top} {side} ({', '.join(conn)});")
        same.append(first)
    eq = " && ".join(f"{same[0][k]} == {same[1][k]}" for k in outs) or "1"
    return "\n".join(lines + [f"  assign ok = {eq};", "endmodule", ""])


def registers_as_wires(verilog: str) -> str:
    """Amaranth's Verilog with every ``always @(posedge clk)`` made combinational (and the
    registers' initial values dropped): the pipeline's logic without its cuts."""
    text = re.sub(r"always @\(posedge clk\)", "always @*", verilog)
    return re.sub(r"^(\s*reg (?:\[[^\]]*\] )?\S+)\s*=\s*[^;]+;", r"\1 ;", text, flags=re.M)


def register_depths(netlist: dict, top: str, transparent=frozenset()) -> tuple[dict, list]:
    """Registers crossed on every path from the inputs (``clk``/``rst`` aside) to each output
    bit of a flattened Yosys JSON netlist: ({output: set of depths}, [cells whose inputs
    arrive at different depths]).  Flip-flops whose outputs are all ``transparent`` bits
    (state registers) count as none."""
    depth, clash = depth_map(netlist, top, transparent)
    mod = netlist["modules"][top]
    outs = {name: {depth[b] for b in port["bits"] if b in depth}
            for name, port in mod["ports"].items() if port["direction"] == "output"}
    return outs, clash


def depth_map(netlist: dict, top: str, transparent=frozenset()) -> tuple[dict, list]:
    """({bit: registers crossed}, clashes) of :func:`register_depths`."""
    mod = netlist["modules"][top]
    depth: dict = {}
    for name, port in mod["ports"].items():
        if port["direction"] == "input" and name not in ("clk", "rst"):
            depth.update({b: 0 for b in port["bits"] if isinstance(b, int)})
    cells = list(mod["cells"].values())
    clash, changed = [], True
    while changed:
        changed = False
        for cell in cells:
            conns, dirs = cell["connections"], cell["port_directions"]
            ff = "dff" in cell["type"] and not set(conns.get("Q", [])) <= transparent
            ins = conns.get("D", []) if ff else [b for p, bits in conns.items()
                                                 if dirs[p] == "input" for b in bits]
            ds = {depth[b] for b in ins if b in depth}
            if not ds:
                continue
            if len(ds) > 1:
                clash.append(cell["type"])
                ds = {max(ds)}
            d = ds.pop() + int(ff)
            for p, bits in conns.items():
                if dirs[p] == "output":
                    for b in bits:
                        if isinstance(b, int) and depth.get(b) != d:
                            if b in depth and depth[b] > d:
                                continue
                            depth[b] = d
                            changed = True
    return depth, sorted(set(clash))


def prove_cuts(p, c, wd: Path, timeout) -> tuple[str, str]:
    """A stateless pipeline P against its combinational twin C: every input-to-output path
    of P crosses exactly ``P.latency`` registers (from Yosys's netlist), and P with its
    registers made wires equals C for all inputs (miter + sat).  Returns (result, proof)."""
    from finescale.synth.flow import run_yosys

    ep, ec = emit.emit(p, wd), emit.emit(c, wd)
    (wd / "depth.ys").write_text(f"read_verilog -sv {ep.path.name}\nprep -top {p.name} "
                                 "-flatten\nmemory_map\nopt_clean\nwrite_json p.json\n")
    run_yosys(wd, "depth.ys", timeout=timeout)
    outs, clash = register_depths(json.loads((wd / "p.json").read_text()), p.name)
    bad = {n: sorted(d) for n, d in outs.items() if d and d != {p.latency}}
    if clash or bad:
        return "FAILED", f"unbalanced pipeline: outputs at depths {bad}, clashes {clash}"
    (wd / "pcomb.v").write_text(registers_as_wires(ep.path.read_text()))
    side = dict(ep.sidecar, ports=[q for q in ep.sidecar["ports"] if q["name"] not in
                                   ("clk", "rst")])
    (wd / "equiv_comb.v").write_text(wrapper(side, ec.sidecar, 0).replace(
        f"  {p.name} p (", f"  {p.name} p (.clk(1'b0), .rst(1'b0), "))
    (wd / "comb.ys").write_text("\n".join([
        f"read_verilog -sv pcomb.v {ec.path.name} equiv_comb.v",
        "prep -top equiv_top -flatten", "memory_map", "opt", "opt_merge -share_all", "opt",
        "sat -prove ok 1 -verify -show-inputs"]) + "\n")
    try:
        run_yosys(wd, "comb.ys", timeout=timeout)
    except RuntimeError:
        return "FAILED", "P with its registers as wires differs from C (see yosys.log)"
    return "proved", (f"every path through {p.latency} registers; registers as wires "
                      "equal to the twin (miter + sat)")


def write_tables(rows, out: Path) -> None:
    from .regress import markdown, write_csv
    write_csv(out / "prove.csv", rows, COLUMNS)
    (out / "prove.json").write_text(json.dumps(rows, indent=1))
    (out / "prove.md").write_text(markdown(rows, COLUMNS))
