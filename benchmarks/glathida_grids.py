"""Every method on the 23 GlaThiDa thickness grids, scored on exactly the measured cells.

Case ``glathida-grids`` (:func:`glacierbed.evaluation.benchmark.run_glathida_grids`, real data kit,
``GLACIERBED_DATA``): per glacier, on its OGGM surface DEM and outline, volume-area
scaling (shaped), GlabTop, OGGM (its own tasks, offline), the consensus mean thickness as
a constant map, and glacierbed's default pipeline (shipped network + physics) and its
biharmonic variant (+ physics); RMSE/MAE/bias per glacier, pooled over all cells, median
per RGI region, and each glacier's RMSE over the best baseline's in the same run.

Run: ``python benchmarks/glathida_grids.py [--model NAME] [--glaciers ID ...] [--no-oggm]``.
Writes ``benchmarks/results/glathida_grids.csv`` (glacier x method),
``glathida_grids_regions.csv``, ``glathida_grids_summary.csv`` and ``glathida_grids.md``.

Glaciers nobody on the team has seen: ``--grids-dir FOLDER --out OUT`` scores the grid folders of FOLDER (the
kit's layout: ``<RGI id>/surface.tif, thickness.tif, outline.gpkg``, ``meta.json`` optional), read in place, with
the same methods plus the default exactly as ``glacierbed estimate`` gives it (network, physics and its shipped
calibration: the ``thickness-net + physics + calibration`` row, scored only on glaciers it was never fitted on).
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.data.sources import RGI6_REGIONS
from glacierbed.evaluation.benchmark import (
    CALIBRATED_ROW,
    GLATHIDA_BASELINES,
    GLATHIDA_METHODS,
    run_glathida_grids,
    to_markdown,
    write_table,
)
from glacierbed.evaluation.oggm_peer import MB_GRADIENT, OGGM_TASKS, oggm_version
from glacierbed.core.errors import quiet_per_glacier_logs, run_script

log = logging.getLogger("glathida_grids")
RESULTS = Path(__file__).resolve().parent / "results"
#: the names the kit's tables have always used for its six grid regions
KIT_REGION_NAMES = {"01": "Alaska", "03": "Arctic Canada N", "04": "Arctic Canada S", "05": "Greenland periphery",
                    "11": "Central Europe", "12": "Caucasus"}
#: every RGI 6.0 region: the kit's names, else the words of its RGI file name (SouthernAndes: Southern Andes)
REGION_NAMES = {f"{r:02d}": KIT_REGION_NAMES.get(f"{r:02d}") or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
                for r, name in RGI6_REGIONS.items()}


def wide(metrics: pd.DataFrame, value: str) -> pd.DataFrame:
    """One row per glacier (its attributes first), one column per method holding ``value``."""
    table = metrics.pivot(index="rgi_id", columns="method", values=value)
    table = table[[m for m in GLATHIDA_METHODS if m in table.columns]]
    glaciers = metrics.drop_duplicates("rgi_id").set_index("rgi_id")
    attrs = glaciers[["region", "name", "dx_m", "location_tier", "mean_obs"]].rename(columns={"mean_obs": "mean_obs_m"})
    return attrs.join(table).reset_index()[["region", "rgi_id", *attrs.columns[1:], *table.columns]]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="thickness network name/path (default: the shipped one)")
    ap.add_argument("--glaciers", nargs="*", default=None, help="RGI ids (default: all 23)")
    ap.add_argument("--no-oggm", action="store_true", help="skip OGGM")
    ap.add_argument("--grids-dir", type=Path, default=None,
                    help="score the grid folders of this folder instead of the kit's 23 (needs --out)")
    ap.add_argument("--out", type=Path, default=None, help=f"output folder (default {RESULTS}, the kit's grids only)")
    args = ap.parse_args(argv)
    if args.grids_dir is not None and args.out is None:
        ap.error("--grids-dir needs --out: the committed results are the kit's 23 grids")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_per_glacier_logs("glacierbed.models.inpainting.network")
    out: Path = args.out or RESULTS
    t0 = time.perf_counter()
    res = run_glathida_grids(model=args.model, glaciers=args.glaciers, with_oggm=not args.no_oggm,
                             grids_dir=args.grids_dir)
    seconds = time.perf_counter() - t0
    m = res.metrics
    cols = ["rgi_id", "name", "region", "dx_m", "location_tier", "method", "status", "seconds", "n", "rmse", "mae",
            "bias", "r", "mean_obs", "mean_pred", "volume_km3", "best_baseline", "rmse_ratio_to_best_baseline", "rank"]
    write_table(m[cols], out / "glathida_grids.csv")
    write_table(res.details["regions"], out / "glathida_grids_regions.csv")
    summary = res.details["summary"].merge(
        res.details["pooled"][["method", "n", "rmse", "mae", "bias"]].rename(
            columns={"n": "pooled_n", "rmse": "pooled_rmse", "mae": "pooled_mae", "bias": "pooled_bias"}),
        on="method", how="left")
    write_table(summary, out / "glathida_grids_summary.csv")

    per_glacier = wide(m, "rmse")
    best = m.drop_duplicates("rgi_id").set_index("rgi_id")["best_baseline"]
    per_glacier["best_baseline"] = per_glacier["rgi_id"].map(best)
    for method in ("old default (network + SIA band)", "thickness-net + physics", CALIBRATED_ROW):
        ratio = m[m["method"] == method].set_index("rgi_id")["rmse_ratio_to_best_baseline"]
        per_glacier[f"{method} / best"] = per_glacier["rgi_id"].map(ratio)
    regions = res.details["regions"]
    region_rmse = regions.pivot(index="region", columns="method", values="median_rmse")
    region_rmse = region_rmse[[c for c in GLATHIDA_METHODS if c in region_rmse]].reset_index()
    region_rmse.insert(1, "name", region_rmse["region"].map(REGION_NAMES))
    region_rmse.insert(2, "glaciers", region_rmse["region"].map(m.drop_duplicates("rgi_id").groupby("region").size()))
    region_rmse["best"] = region_rmse[[c for c in GLATHIDA_METHODS if c in region_rmse]].idxmin(axis=1)
    region_ratio = regions.pivot(index="region", columns="method", values="median_ratio")
    region_ratio = region_ratio[[c for c in GLATHIDA_METHODS if c in region_ratio]].reset_index()
    not_ok = m[~m["status"].str.startswith(("ok", "constant map"))][["rgi_id", "method", "status"]]
    oggm = m[m["method"] == "oggm"][["rgi_id", "status", "seconds", "volume_km3"]]

    source = ("`glathida-grids/` of the data kit" if args.grids_dir is None
              else f"the grid folders of `{args.grids_dir}`")
    md = [f"# GlaThiDa thickness grids: every method on the measured cells ({len(per_glacier)} glaciers)", "",
          f"Data: {source} (GlaThiDa Consortium 2019, doi:10.5904/wgms-glathida-2019-03; "
          "Welty et al. 2020, ESSD; grids, masks and surfaces from OGGM, Maussion et al. 2019; consensus: "
          "Farinotti et al. 2019). Each glacier is scored on its observed cells only (mean of the GlaThiDa "
          "points per cell); the surface is the DEM's date (SRTM 2000 etc.), the survey later (see caveats in "
          "the kit's README).", "",
          "Methods: `va_shaped` volume-area scaling shaped as sqrt(distance to margin); `glabtop` GlabTop; "
          f"`oggm` OGGM {oggm_version() or '(not installed)'} run offline ({', '.join(OGGM_TASKS)}; linear mass "
          f"balance {MB_GRADIENT:g} mm w.e./m balanced over the glacier, default Glen A 2.4e-24, no sliding); "
          "`consensus_mean` the consensus mean thickness as a constant map (one number per glacier, not a "
          "map); `mass_conservation` the apparent balance flux routed down the surface with Glen's law; the "
          "pipeline rows run `benchmark.estimate_thickness` without calibration: `biharmonic + physics`, the "
          "old default (inpainting network + the 50-150 kPa stress band) and the thickness network "
          f"({args.model or 'shipped'}) without and with the physics posterior; `{CALIBRATED_ROW}` is the default as "
          "`glacierbed estimate` gives it, with its shipped calibration (scored only on glaciers neither the network "
          "nor the calibration was fitted on). Ratios are against the best "
          "(lowest RMSE) of the baselines "
          f"{', '.join(GLATHIDA_BASELINES)} on the same glacier in the same run.", "",
          "## Median RMSE per RGI region (m)", "", to_markdown(region_rmse, ".0f"), "",
          "## Median ratio to the best baseline per region", "", to_markdown(region_ratio, ".2f"), "",
          "## Over all glaciers", "",
          "Median over glaciers and pooled over all measured cells (pooled numbers are dominated by the thick "
          "Arctic ice caps); `wins` = glaciers where the method has the lowest RMSE of all.", "",
          to_markdown(summary), "",
          "## RMSE per glacier (m)", "", to_markdown(per_glacier, ".3g"), ""]
    md += ["## OGGM per glacier", "", to_markdown(oggm), ""]
    if len(not_ok):
        md += ["## Rows without a score", "", to_markdown(not_ok), ""]
    md += [f"Total run time {seconds:.0f} s (2 CPU cores, shared).", ""]
    text = "\n".join(md)
    write_text(out / "glathida_grids.md", text)
    print(text)


if __name__ == "__main__":
    run_script(main)
