"""Does a network give one glacier the same mean thickness from the kit's different windows?

Some glaciers are in more than one measured case of the kit, each with its own DEM, outline
and pixel size: South Glacier (the OGGM sample's 20 m radar case and its GlaThiDa grid),
Hintereisferner (its own case and the Ötztal case), and the Ötztal glaciers that also have
a GlaThiDa grid. Nothing is measured here: the same glacier's mean thickness from two
windows should agree about as well as their outlines do. A network whose two means drift
apart has learned something about the window (pixel size, DEM source, outline) rather than
the glacier, and no calibration can fix that per case.

Reads the per-glacier ``thickness.tif`` that ``glacierbed.evaluation.measured_table.collect``
writes under each table folder (``<table>/<case>/estimate/glaciers/<RGI id>/``):

    python benchmarks/window_consistency.py --table shipped=~/.cache/glacierbed-calibration/thickness-net-physics-b6c680bb06 \\
        --table finetuned=~/.cache/glacierbed-finetune-spanning-all/tables/weights-physics-42c3b0b316 ...

Writes ``benchmarks/results/window_consistency.{csv,md}``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from glacierbed.core.atomic import replacing, write_text
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).resolve().parent / "results"
#: cases whose windows share one DEM, outline file and pixel size (the RGI 11 tiles: a glacier
#: mapped again as a neighbour in another glacier's mosaic); left out, they are not different windows
SAME_SOURCE_CASES = ("rgi11-alps-",)


def glacier_means(table: Path) -> pd.DataFrame:
    """Mean thickness (m), area (km²) and the case's working pixel size of every glacier map under
    ``table``, keyed by the RGI number without its version (RGI50-11.00897 and RGI60-11.00897 meet)."""
    rows = []
    working_px: dict[str, str] = {}  # one summary.json per case, however many glaciers it maps
    for tif in sorted(table.glob("*/estimate/glaciers/*/thickness.tif")):
        case, glacier = tif.parents[3].name, tif.parent.name
        if case.startswith(SAME_SOURCE_CASES):
            continue
        if case not in working_px:
            working_px[case] = working_resolution(tif.parents[2])
        number = re.sub(r"^RGI\d0-", "", glacier)
        with rasterio.open(tif) as src:
            h = src.read(1, masked=True).astype(np.float64)
            px = abs(src.transform.a)
        h = h.compressed()
        h = h[np.isfinite(h) & (h > 0)]
        if h.size:
            rows.append(dict(case=case, glacier=glacier, number=number, working_px=working_px[case],
                             area_km2=h.size * px * px / 1e6, mean_thickness_m=float(h.mean())))
    return pd.DataFrame(rows)


def working_resolution(estimate_dir: Path) -> str:
    """The network's working pixel size(s) in that estimate (its ``summary.json``), e.g. "25" or
    "50–75"; the maps themselves are written back on the DEM's grid."""
    res = json.loads((estimate_dir / "summary.json").read_text())["working_resolution_m"]
    lo, hi = float(res["min"]), float(res["max"])
    return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"


def pairs(means: pd.DataFrame) -> pd.DataFrame:
    """Every two windows of one glacier: their means and the relative difference (b / a − 1)."""
    out = []
    for number, g in means.groupby("number"):
        g = g.sort_values("case").reset_index(drop=True)
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                a, b = g.loc[i], g.loc[j]
                out.append(dict(glacier=a.glacier, case_a=a.case, case_b=b.case, px_a=a.working_px, px_b=b.working_px,
                                area_ratio=b.area_km2 / a.area_km2, mean_a_m=a.mean_thickness_m,
                                mean_b_m=b.mean_thickness_m, rel_diff=b.mean_thickness_m / a.mean_thickness_m - 1))
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", action="append", required=True, metavar="NAME=DIR",
                    help="a measured-table folder; repeat with the same NAME to pool folds of one variant")
    ap.add_argument("--out", default=str(RESULTS / "window_consistency"))
    a = ap.parse_args()
    frames = []
    for spec in a.table:
        name, folder = spec.split("=", 1)
        p = pairs(glacier_means(Path(folder).expanduser()))
        if len(p):
            frames.append(p.assign(network=name, table=Path(folder).name))
    df = pd.concat(frames, ignore_index=True)
    # one row per network and glacier pair (folds of one variant give the same pair several times: average)
    keys = ["network", "glacier", "case_a", "case_b"]
    per = df.groupby(keys, sort=False).agg(px_a=("px_a", "first"), px_b=("px_b", "first"),
                                           area_ratio=("area_ratio", "first"), mean_a_m=("mean_a_m", "mean"),
                                           mean_b_m=("mean_b_m", "mean"), rel_diff=("rel_diff", "mean"),
                                           tables=("table", "nunique")).reset_index()
    out = Path(a.out)
    with replacing(out.with_suffix(".csv"), keep_suffix=True) as tmp:
        per.to_csv(tmp, index=False, float_format="%.4f")
    summary = per.assign(abs_diff=per.rel_diff.abs()).groupby("network", sort=False).agg(
        pairs=("glacier", "size"), median_abs_rel_diff=("abs_diff", "median"), worst_abs_rel_diff=("abs_diff", "max"))
    md = "\n".join([
        "# One glacier, two windows: does the mean thickness agree?", "",
        "Glaciers that are in more than one measured case of the kit (different DEM, outline and pixel size); "
        "`rel_diff` = mean thickness from window b / from window a − 1; `px`: the network's working pixel "
        "size (m) in each case; `area_ratio`: how much the two outlines differ. Folds of one variant are averaged (`tables`). No measurement is used.", "",
        summary.round(3).to_markdown(), "",
        per.round(3).to_markdown(index=False), ""])
    write_text(out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    run_script(main)
