"""A three-cell Liberty with NLDM timing (inverter, NAND2, D flip-flop), written for the timing
tests, and the tests' own table lookup: bilinear interpolation as the Liberty NLDM model defines it.

The numbers are invented (no real library): the tests check that OpenSTA and the flow use the
tables, not what sky130 measures.
"""

from __future__ import annotations

import numpy as np

PREFIX = "sky130_fd_sc_hd__"
SLEWS = (0.0, 0.2, 0.8)          # ns, index_1: input transition
LOADS = (0.0005, 0.005, 0.05)    # pF, index_2: output load

#: cell -> (inputs {pin: cap pF}, output, function, {table: 3x3 values in ns})
CELLS = {
    "inv_1": ({"A": 0.0023}, "Y", "!A", {
        "cell_rise": [[0.020, 0.060, 0.400], [0.050, 0.100, 0.450], [0.120, 0.190, 0.560]],
        "cell_fall": [[0.015, 0.045, 0.300], [0.040, 0.080, 0.350], [0.100, 0.160, 0.470]],
        "rise_transition": [[0.020, 0.090, 0.700], [0.060, 0.120, 0.720], [0.200, 0.250, 0.800]],
        "fall_transition": [[0.015, 0.060, 0.500], [0.050, 0.090, 0.520], [0.180, 0.210, 0.600]]}),
    "buf_1": ({"A": 0.0021}, "X", "A", {
        "cell_rise": [[0.050, 0.090, 0.430], [0.080, 0.130, 0.480], [0.150, 0.220, 0.590]],
        "cell_fall": [[0.045, 0.075, 0.330], [0.070, 0.110, 0.380], [0.130, 0.190, 0.500]],
        "rise_transition": [[0.020, 0.090, 0.700], [0.030, 0.100, 0.710], [0.040, 0.110, 0.720]],
        "fall_transition": [[0.015, 0.060, 0.500], [0.025, 0.070, 0.510], [0.035, 0.080, 0.520]]}),
    "nand2_1": ({"A": 0.0024, "B": 0.0023}, "Y", "!(A&B)", {
        "cell_rise": [[0.030, 0.080, 0.500], [0.070, 0.130, 0.560], [0.160, 0.230, 0.680]],
        "cell_fall": [[0.025, 0.070, 0.450], [0.060, 0.110, 0.500], [0.140, 0.210, 0.620]],
        "rise_transition": [[0.030, 0.110, 0.900], [0.070, 0.150, 0.920], [0.220, 0.280, 1.000]],
        "fall_transition": [[0.025, 0.090, 0.700], [0.060, 0.120, 0.720], [0.200, 0.240, 0.800]]}),
    # small and slow: what a delay target trades against NAND trees
    "xor2_1": ({"A": 0.0044, "B": 0.0046}, "X", "A^B", {
        "cell_rise": [[0.200, 0.300, 0.900], [0.250, 0.350, 0.950], [0.350, 0.450, 1.100]],
        "cell_fall": [[0.180, 0.260, 0.800], [0.220, 0.300, 0.850], [0.320, 0.400, 1.000]],
        "rise_transition": [[0.050, 0.150, 1.000], [0.070, 0.170, 1.020], [0.100, 0.200, 1.100]],
        "fall_transition": [[0.040, 0.120, 0.800], [0.060, 0.140, 0.820], [0.090, 0.170, 0.900]]}),
}
SENSE = {"buf_1": "positive", "xor2_1": "non"}
AREAS = {"inv_1": 3.7536, "buf_1": 3.7536, "nand2_1": 3.7536, "xor2_1": 8.7584}
FLOP = {"cap": 0.0017, "clk_cap": 0.0018, "setup": 0.110, "clk_to_q": 0.300, "q_slew": 0.080}


def interpolate(table, slew: float, load: float) -> float:
    """Bilinear interpolation in a 3x3 NLDM table (inside its index ranges only)."""
    t = np.asarray(table, dtype=float)
    assert SLEWS[0] <= slew <= SLEWS[-1] and LOADS[0] <= load <= LOADS[-1], (slew, load)
    i = min(np.searchsorted(SLEWS, slew, side="right") - 1, len(SLEWS) - 2)
    j = min(np.searchsorted(LOADS, load, side="right") - 1, len(LOADS) - 2)
    x = (slew - SLEWS[i]) / (SLEWS[i + 1] - SLEWS[i])
    y = (load - LOADS[j]) / (LOADS[j + 1] - LOADS[j])
    return float((1 - x) * (1 - y) * t[i, j] + x * (1 - y) * t[i + 1, j]
                 + (1 - x) * y * t[i, j + 1] + x * y * t[i + 1, j + 1])


def _table(name: str, values) -> str:
    rows = ", ".join('"' + ", ".join(f"{v:g}" for v in row) + '"' for row in values)
    return f"        {name} (tbl) {{ values ({rows}); }}"


def _scalar(name: str, value: float) -> str:
    return f'        {name} (scalar) {{ values ("{value:g}"); }}'


def liberty() -> str:
    idx1, idx2 = ", ".join(map(str, SLEWS)), ", ".join(map(str, LOADS))
    out = ["library (test_timing) {", "  delay_model : table_lookup;", '  time_unit : "1ns";',
           '  voltage_unit : "1V";', '  current_unit : "1mA";', "  capacitive_load_unit (1, pf);",
           '  pulling_resistance_unit : "1kohm";', "  nom_voltage : 1.8; nom_temperature : 25;",
           "  nom_process : 1;",
           "  input_threshold_pct_rise : 50; input_threshold_pct_fall : 50;",
           "  output_threshold_pct_rise : 50; output_threshold_pct_fall : 50;",
           "  slew_lower_threshold_pct_rise : 20; slew_upper_threshold_pct_rise : 80;",
           "  slew_lower_threshold_pct_fall : 20; slew_upper_threshold_pct_fall : 80;",
           "  lu_table_template (tbl) { variable_1 : input_net_transition; "
           f'variable_2 : total_output_net_capacitance; index_1 ("{idx1}"); index_2 ("{idx2}"); }}']
    for cell, (pins, output, function, tables) in CELLS.items():
        out += [f"  cell ({PREFIX}{cell}) {{", f"    area : {AREAS[cell]};"]
        out += [f"    pin ({p}) {{ direction : input; capacitance : {c}; }}" for p, c in pins.items()]
        out += [f"    pin ({output}) {{", "      direction : output;", f'      function : "{function}";']
        for p in pins:
            out += ["      timing () {", f'        related_pin : "{p}";',
                    "        timing_sense : "
                    f"{SENSE.get(cell, 'negative')}_unate;"]
            out += [_table(k, v) for k, v in tables.items()]
            out.append("      }")
        out += ["    }", "  }"]
    f = FLOP
    out += [f"  cell ({PREFIX}dfxtp_1) {{", "    area : 20.0192;",
            '    ff (IQ, IQN) { clocked_on : "CLK"; next_state : "D"; }',
            f"    pin (CLK) {{ direction : input; clock : true; capacitance : {f['clk_cap']}; }}",
            f"    pin (D) {{ direction : input; capacitance : {f['cap']};",
            '      timing () { related_pin : "CLK"; timing_type : setup_rising;',
            _scalar("rise_constraint", f["setup"]), _scalar("fall_constraint", f["setup"]),
            "      }", "    }",
            '    pin (Q) { direction : output; function : "IQ";',
            '      timing () { related_pin : "CLK"; timing_type : rising_edge; timing_sense : non_unate;',
            _scalar("cell_rise", f["clk_to_q"]), _scalar("cell_fall", f["clk_to_q"]),
            _scalar("rise_transition", f["q_slew"]), _scalar("fall_transition", f["q_slew"]),
            "      }", "    }", "  }", "}"]
    return "\n".join(out) + "\n"
