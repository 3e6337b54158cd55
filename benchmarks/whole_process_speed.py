"""Whole-process speed of `glacierbed estimate` against OGGM's offline inversion, side by side.

Real data kit (``GLACIERBED_DATA``): the 20 Ötztal glaciers. Each round runs, as fresh
processes and alternating, (a) ``glacierbed estimate --example oetztal`` (shipped default,
calibration and physics on, overview map only, a fresh output folder) and (b) OGGM 1.6 on
the same DEM and outlines through ``glacierbed.evaluation.oggm_peer.oggm_thickness_map``
(OGGM's own GIS, flowline, climate-free mass-conservation inversion tasks, offline).
Wall time and peak memory (``/usr/bin/time``) per run; medians over ``--rounds`` (default 5).
The load average is recorded: figures mean something on a quiet machine only.

Run: ``python benchmarks/whole_process_speed.py [--rounds N]``. Writes
``benchmarks/results/whole_process_speed.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table

RESULTS = Path(__file__).resolve().parent / "results"
OGGM_SCRIPT = """
from glacierbed.data import registry
from glacierbed.data.outlines import check_overlap, read_outlines
from glacierbed.data.rasters import read_dem
from glacierbed.evaluation.oggm_peer import oggm_thickness_map
ex = registry.get_example("oetztal")
dem = read_dem(ex.dem)
outlines = check_overlap(read_outlines(ex.outlines), dem).reset_index(drop=True)
print(oggm_thickness_map(dem, outlines).status)
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh process."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True, text=True,
                         env=os.environ.copy())
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {out.stderr[-500:]}")
    wall, kb = re.findall(r"TIME ([\d.]+) (\d+)", out.stderr)[-1]
    return float(wall), int(kb) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    glacierbed = str(Path(sys.executable).with_name("glacierbed"))
    rows = []
    load_start = os.getloadavg()
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            for tool, cmd in (("glacierbed", [glacierbed, "estimate", "--example", "oetztal", "--out", tmp]),
                              ("oggm", [sys.executable, "-c", OGGM_SCRIPT])):
                wall, mib = timed(cmd)
                rows.append({"round": r, "tool": tool, "wall_s": wall, "peak_mib": mib})
                print(rows[-1], flush=True)
    load_end = os.getloadavg()
    df = pd.DataFrame(rows)
    med = df.groupby("tool")[["wall_s", "peak_mib"]].median()
    ratio = med.loc["glacierbed", "wall_s"] / med.loc["oggm", "wall_s"]
    extra = med.loc["glacierbed", "peak_mib"] - med.loc["oggm", "peak_mib"]
    write_table(df, RESULTS / "whole_process_speed.csv", ".4g")
    text = "\n".join([
        "# Whole process: glacierbed estimate vs OGGM offline inversion, 20 Ötztal glaciers", "",
        f"{args.rounds} alternating rounds, fresh processes; load average at start "
        f"{', '.join(f'{x:.2f}' for x in load_start)}, at end {', '.join(f'{x:.2f}' for x in load_end)}.", "",
        to_markdown(med.reset_index(), ".3g"), "",
        f"**Time ratio glacierbed / OGGM (medians): {ratio:.2f}** (target ≤ 0.5); peak memory "
        f"glacierbed − OGGM: {extra:+.0f} MiB (target ≤ +100).", "",
        "Per run: [whole_process_speed.csv](whole_process_speed.csv).", ""])
    write_text(RESULTS / "whole_process_speed.md", text)
    print(text)


if __name__ == "__main__":
    run_script(main)
