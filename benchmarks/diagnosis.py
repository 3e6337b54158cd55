"""Diagnosis: the raw default's per-glacier bias and RMSE against glacier attributes.

Real data kit (``GLACIERBED_DATA``). :func:`glacierbed.evaluation.measured_table.collect`
runs the shipped default **uncalibrated** (physics on, as in every benchmark) on South
Glacier's radar, the 23 GlaThiDa grids and the Ötztal GlaThiDa means; per glacier the
error (metres of ice) is set beside area, elevation range and median, slope, latitude,
aspect, hypsometric index, pixel size and years between DEM and survey
(:mod:`glacierbed.evaluation.diagnosis`), with flags for glaciers outside the simulator's
envelope. Nothing is fitted here.

Run: ``python benchmarks/diagnosis.py [--run-dir DIR]`` (the estimates are cached in the
run dir, default ``~/.cache/glacierbed-calibration``, shared with benchmarks/calibration.py).
``--out-of-fold CONFIG``: for a default fine-tuned on the measured glaciers (whose own maps would
be in-sample): each glacier's map from the fold network of that recipe fine-tuned without it
(:func:`~glacierbed.evaluation.measured_finetune.cross_validate_finetune`, cached in
``--finetune-run-dir``; the rows are those of ``--reference``, the network it started from).
Writes ``benchmarks/results/diagnosis.csv`` (per glacier), ``diagnosis_correlations.csv``,
``diagnosis_kinds.csv``, ``diagnosis.md`` and ``diagnosis.png``. ``--continentality``: only the distance to the ocean
of the committed table's glaciers beside their errors (``diagnosis_continentality.{csv,md}``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from glacierbed.core.atomic import file_sha256, write_text
from glacierbed.core.figures import save_figure
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.diagnosis import (SIMULATOR_ENVELOPE, attribute_correlations, diagnose, kinds_summary,
                                             ocean_distances, one_per_glacier)
from glacierbed.evaluation.measured_finetune import cross_validate_finetune
from glacierbed.evaluation.measured_table import MeasuredSet, collect
from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
from glacierbed.pipeline.store import shipped_weights
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).resolve().parent / "results"
PANELS = [("area_km2", "area (km², log)", True), ("z_range_m", "elevation range (m)", False),
          ("z_median_m", "median elevation (m)", False), ("slope_deg", "mean surface slope (°)", False),
          ("latitude_deg", "latitude (°)", False), ("northness", "northness (cos aspect)", False),
          ("hypsometric_index", "hypsometric index", True), ("pixel_size_m", "pixel size (m)", False),
          ("years_dem_to_survey", "survey year − DEM year", False)]


def figure(table: pd.DataFrame, path: Path) -> Path:
    """Relative bias (%) of the raw default against each attribute, one point per glacier."""
    fig = Figure(figsize=(13, 11))
    axes = fig.subplots(3, 3).ravel()
    regions = sorted(table["region"].astype(str).unique())
    colours = dict(zip(regions, ["C0", "C1", "C2", "C3", "C4", "C5", "C6"]))
    for ax, (col, label, log) in zip(axes, PANELS):
        for region, sub in table.groupby(table["region"].astype(str)):
            ax.scatter(sub[col], 100 * sub["rel_bias"], s=18 + sub["obs_mean_m"] / 4, c=colours[region],
                       label=f"RGI {region}", alpha=0.8, edgecolors="k", linewidths=0.3)
        ax.axhline(0, c="k", lw=0.6)
        ax.axhspan(-20, 20, color="0.9", zorder=0)
        ax.set_xscale("log" if log else "linear")
        ax.set(xlabel=label, ylabel="bias / measured mean (%)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Raw default (thickness network, no calibration): per-glacier bias vs attributes "
                 "(marker size ∝ measured mean thickness; grey: ±20 %)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def markdown(table: pd.DataFrame, corr: pd.DataFrame, kinds: pd.DataFrame, info: dict) -> str:
    per = one_per_glacier(table)
    within = float((per["rel_bias"].abs() <= 0.2).mean())
    cols = ["case", "rgi_id", "region", "n", "obs_mean_m", "pred_mean_m", "bias_m", "rel_bias", "rmse_m",
            "area_km2", "z_range_m", "slope_deg", "latitude_deg", "hypsometric_index", "pixel_size_m",
            "years_dem_to_survey", "outside_any"]
    return "\n".join([
        "# Diagnosis: the raw default's per-glacier error against glacier attributes", "",
        f"Model: {info['model']} (default identity {str(info['model_identity'])[:12]}), physics on, **no calibration**; "
        f"{len(per)} glacier identities ({len(table)} glacier-case rows). Errors in metres of ice; "
        "`rel_bias` = mean(predicted − measured) / measured mean. One row per glacier identity for the "
        "statistics (a glacier's grid before its Ötztal mean; South Glacier's grid before its radar).", "",
        f"|bias| ≤ 20 % of the measured mean on **{100 * within:.0f} %** of the glaciers "
        f"(median relative bias {100 * per['rel_bias'].median():+.0f} %, median |relative bias| "
        f"{100 * per['rel_bias'].abs().median():.0f} %).", "",
        "## Rank correlation of the error with each attribute (Spearman, over glaciers)", "",
        to_markdown(corr, ".2f"), "",
        "## Inside vs outside the simulator's envelope", "",
        f"Envelope of the simulated training set: {SIMULATOR_ENVELOPE}.", "",
        to_markdown(kinds, ".2f"), "",
        "## Per glacier", "", to_markdown(per[cols].sort_values("rel_bias"), ".3g"), "",
        "![diagnosis](diagnosis.png)", ""])


def continentality(results: Path = RESULTS) -> None:
    """The committed diagnosis' glaciers with their distance to the ocean (a continentality proxy, issue 16 item 4; the
    table's own column, computed only for a table that predates it), ranked against the errors already there: the
    diagnosis' own rows and model, no new run."""
    table = pd.read_csv(results / "diagnosis.csv", dtype={"rgi_id": str, "example": str, "region": str})
    if "distance_to_ocean_km" not in table:  # a diagnosis written before the attribute was part of it
        ocean = pd.concat([ocean_distances(e) for e in table["example"].unique()], ignore_index=True)
        table = table.merge(ocean, on=["example", "rgi_id"], how="left")
    per = one_per_glacier(table)
    corr = attribute_correlations(per)
    row = corr[corr["attribute"] == "distance_to_ocean_km"]
    by_region = per.groupby("region").agg(glaciers=("rgi_id", "size"), distance_to_ocean_km=("distance_to_ocean_km",
                                          "median"), median_rel_bias=("rel_bias", "median")).reset_index()
    write_table(per[["example", "rgi_id", "region", "distance_to_ocean_km", "rel_bias", "rel_rmse"]],
                results / "diagnosis_continentality.csv", ".6g")
    lines = ["# A continentality proxy beside the diagnosis' errors (issue 16, item 4)", "",
             "The distance from each glacier's centroid to the nearest ocean cell of the GLOBE land mask that the "
             "`global-land-mask` package ships (`glacierbed.data.attributes.distance_to_ocean_km`), for the "
             f"{len(per)} glacier identities of [diagnosis.csv](diagnosis.csv) (its model and rows, unchanged), and "
             "its rank correlation with their raw out-of-fold relative bias and RMSE. Nothing is fitted; the proxy is "
             "no feature of the calibration.", "", to_markdown(row, ".2f"), "",
             "Per region (the proxy varies mostly between regions, which the kit samples with 1–31 glaciers each):", "",
             to_markdown(by_region, ".3g"), "",
             "Per glacier: [diagnosis_continentality.csv](diagnosis_continentality.csv). All rank correlations, for "
             "scale: [diagnosis_correlations.csv](diagnosis_correlations.csv).", ""]
    write_text(results / "diagnosis_continentality.md", "\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-calibration")
    ap.add_argument("--out-of-fold", type=Path, default=None, metavar="CONFIG",
                    help="a measured fine-tuning recipe (YAML): diagnose its out-of-fold maps (the fine-tuned default)")
    ap.add_argument("--finetune-run-dir", type=Path,
                    default=Path.home() / ".cache" / "glacierbed-finetune-spanning-p128")
    ap.add_argument("--reference", default="runs/previous_default/thickness-net.pt",
                    help="with --out-of-fold: the network the recipe starts from (its measured table gives the rows)")
    ap.add_argument("--continentality", action="store_true",
                    help="only add the distance to the ocean to the committed diagnosis.csv's glaciers and rank it "
                         "against their errors (diagnosis_continentality.{csv,md}; runs no model)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.continentality:
        return continentality()
    cases = ("south-glacier", "glathida-grids", "oetztal-means")
    if args.out_of_fold is None:
        ms = collect(args.run_dir, None, True, cases=cases)
    else:  # each glacier by the fold network fine-tuned without it: what a new glacier gets
        cfg = MeasuredFinetuneConfig.from_yaml(args.out_of_fold)
        reference = collect(args.run_dir, args.reference, True)
        oof, _ = cross_validate_finetune(reference, cfg, Path(cfg.init_weights), args.finetune_run_dir)
        ms = MeasuredSet(oof.rows[oof.rows["case"].isin(cases)], oof.pixels,
                         {"model": f"out-of-fold maps of {args.out_of_fold.name} ({cfg.folds} glacier-wise folds)",
                          "model_identity": file_sha256(shipped_weights("thickness_net.pt"))})
    table = diagnose(ms.rows)
    per = one_per_glacier(table)
    corr = attribute_correlations(per)
    kinds = kinds_summary(per)
    write_table(table, RESULTS / "diagnosis.csv", ".6g")
    write_table(corr, RESULTS / "diagnosis_correlations.csv", ".6g")
    write_table(kinds, RESULTS / "diagnosis_kinds.csv", ".6g")
    figure(per, RESULTS / "diagnosis.png")
    write_text(RESULTS / "diagnosis.md", markdown(table, corr, kinds, ms.info))
    print(to_markdown(corr, ".2f"))
    print(to_markdown(kinds, ".2f"))
    print(f"|bias| <= 20 %: {np.mean(per['rel_bias'].abs() <= 0.2):.2f} of {len(per)} glaciers")


if __name__ == "__main__":
    run_script(main)
