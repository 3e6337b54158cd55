"""The default's thickness along Alpine glaciers it never saw: GlaThiDa thickness by elevation band.

Evaluation only (one installed model, nothing selected). The band table of GlaThiDa gives, for some
surveys, the mean thickness of each surface-elevation band: where the ice is, not only how much. On
the rgi11-alps glaciers whose band survey is matched (``alps-means`` match) and that share no identity
with a glacier the default was fine-tuned or calibrated on, the default (calibrated, physics on: what
``glacierbed estimate`` gives a user), the previous default (``--reference``, with its own calibration) and VA (shaped), GlabTop and OGGM on the same DEM are averaged over
each band (:mod:`glacierbed.evaluation.glathida_bands`). Per glacier: RMSE over bands, and the shape RMSE
(each method's mean band error removed); the headline is the median over glaciers of each glacier's
ratio to its best baseline, for both.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/band_profiles.py --reference PATH [--run-dir DIR]`` (baseline maps
from the calibration benchmark's cache, ``~/.cache/glacierbed-calibration/baselines``, computed when
missing). Writes ``benchmarks/results/band_profiles.{csv,md,png}`` and ``band_profiles_glaciers.csv``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import EmptySelectionError, quiet_per_glacier_logs, run_script
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import Raster
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.glathida_bands import alps_band_surveys, band_errors, band_means
from glacierbed.evaluation.measured_table import BASELINES, baseline_maps, read_case_inputs
from glacierbed.data.registry import RGI11_EXAMPLE_PREFIX
from glacierbed.models.thickness.records import measured_groups
from glacierbed.pipeline.estimate import EstimateConfig, estimate
from glacierbed.pipeline.store import load_predictor

RESULTS = Path(__file__).resolve().parent / "results"
NETWORKS = ("default", "previous_default")
METHODS = (*NETWORKS, *BASELINES)


def network_map(dem: Raster, outlines, rgi_id: str, predictor, run_dir: Path) -> np.ndarray:
    """``predictor``'s thickness on ``dem``'s grid as ``glacierbed estimate`` gives it (its own calibration,
    physics on), 0 off the glaciers."""
    res = estimate(dem, outlines, run_dir / "band-estimates" / predictor.identity[:12] / rgi_id, model=predictor,
                   config=EstimateConfig())
    thick = Raster.from_file(res.paths["thickness"])
    if not thick.same_grid(dem):
        raise EmptySelectionError(f"{RGI11_EXAMPLE_PREFIX + rgi_id}: estimate wrote another grid than the DEM")
    return np.nan_to_num(thick.data)


def glacier_profiles(rgi_id: str, bands: pd.DataFrame, predictors: dict, run_dir: Path) -> pd.DataFrame:
    """One row per band of ``rgi_id``: measured and each method's mean thickness over the band (estimates
    under ``run_dir/band-estimates``, baseline maps cached in ``run_dir/baselines``)."""
    example = RGI11_EXAMPLE_PREFIX + rgi_id
    dem, outlines, _ = read_case_inputs(example)
    own = rasterize_ids(outlines, dem) == int(np.flatnonzero(outlines["rgi_id"].to_numpy() == rgi_id)[0]) + 1
    maps = {name: network_map(dem, outlines, rgi_id, p, run_dir) for name, p in predictors.items()}
    maps.update(baseline_maps(example, run_dir / "baselines"))
    lo, hi = bands["from_elevation"].to_numpy(float), bands["to_elevation"].to_numpy(float)
    out = bands[["rgi_id", "name", "year", "from_elevation", "to_elevation", "mean_thickness"]].copy()
    for m in maps:
        out[m] = band_means(maps[m], dem.data, own, lo, hi)
    out["dem_pixels"] = [int((own & (dem.data >= a) & (dem.data < b)).sum()) for a, b in zip(lo, hi)]
    return out


def per_glacier(profiles: pd.DataFrame) -> pd.DataFrame:
    """RMSE / bias / shape RMSE of every method per glacier, on the bands all methods have."""
    rows = []
    for rgi_id, g in profiles.groupby("rgi_id", sort=True):
        g = g[g[list(METHODS)].notna().all(axis=1)]
        row = {"rgi_id": rgi_id, "name": g["name"].iloc[0] if len(g) else "", "n_bands": len(g),
               "measured_mean_m": float(g["mean_thickness"].mean()) if len(g) else np.nan}
        for m in METHODS:
            e = band_errors(g[m].to_numpy(), g["mean_thickness"].to_numpy())
            row.update({f"{m}_rmse_m": e["rmse_m"], f"{m}_bias_m": e["bias_m"], f"{m}_shape_rmse_m": e["shape_rmse_m"]})
        rows.append(row)
    t = pd.DataFrame(rows)
    t = t[t["n_bands"] >= 2].reset_index(drop=True)  # a shape needs two bands
    for kind in ("rmse", "shape_rmse"):
        best = t[[f"{b}_{kind}_m" for b in BASELINES]].min(axis=1)
        for net in NETWORKS:
            t[f"{net}_{kind}_ratio"] = t[f"{net}_{kind}_m"] / best
    return t


def summary(t: pd.DataFrame) -> pd.DataFrame:
    """Per method: median over glaciers of RMSE, bias and shape RMSE; for the networks, the median per-glacier
    ratio to the best baseline and on how many glaciers they beat every baseline."""
    rows = []
    for m in METHODS:
        row = {"method": m, "glaciers": len(t), "median_rmse_m": t[f"{m}_rmse_m"].median(),
               "median_bias_m": t[f"{m}_bias_m"].median(), "median_shape_rmse_m": t[f"{m}_shape_rmse_m"].median()}
        if m in NETWORKS:
            for kind in ("rmse", "shape_rmse"):
                row[f"{kind}_ratio_to_best_baseline"] = t[f"{m}_{kind}_ratio"].median()
                row[f"{kind}_better_than_all_baselines"] = int((t[f"{m}_{kind}_ratio"] < 1).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def plot(profiles: pd.DataFrame, glaciers: pd.DataFrame, path: Path) -> Path:
    """Thickness against band elevation, one panel per glacier: measured, the default and the baselines."""
    from matplotlib.figure import Figure

    from glacierbed.core.figures import save_figure

    ids = list(glaciers["rgi_id"])
    ncol = 4
    fig = Figure(figsize=(3.0 * ncol, 2.6 * int(np.ceil(len(ids) / ncol))), layout="constrained")
    axes = fig.subplots(int(np.ceil(len(ids) / ncol)), ncol, squeeze=False).ravel()
    for ax, rgi_id in zip(axes, ids):
        g = profiles[profiles["rgi_id"] == rgi_id]
        z = 0.5 * (g["from_elevation"] + g["to_elevation"])
        ax.plot(g["mean_thickness"], z, "ko-", ms=3, lw=1.2, label="GlaThiDa bands")
        for m, style in zip(METHODS, ("C0-", "C4-", "C1--", "C2--", "C3--")):
            ax.plot(g[m], z, style, lw=1, label=m)
        ax.set_title(f"{g['name'].iloc[0]} ({int(g['year'].iloc[0])})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(ids):]:
        ax.axis("off")
    axes[0].legend(fontsize=6)
    fig.supxlabel("mean thickness in the band (m)")
    fig.supylabel("band elevation (m)")
    return save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-calibration")
    ap.add_argument("--reference", required=True,
                    help="the previous default (weights path; its calibration beside it), scored the same way")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_per_glacier_logs()
    t0 = time.perf_counter()
    predictor = load_predictor(None)
    predictors = {"default": predictor, "previous_default": load_predictor(args.reference)}
    seen = measured_groups(predictor.record)
    bands = alps_band_surveys()
    matched = sorted(bands["rgi_id"].unique())
    unseen = [r for r in matched if r not in seen]
    profiles = pd.concat([glacier_profiles(r, bands[bands["rgi_id"] == r], predictors, args.run_dir)
                          for r in unseen], ignore_index=True)
    glaciers = per_glacier(profiles)
    table = summary(glaciers)
    write_table(profiles, args.out / "band_profiles_bands.csv")
    write_table(glaciers, args.out / "band_profiles_glaciers.csv")
    write_table(table, args.out / "band_profiles.csv")
    plot(profiles, glaciers, args.out / "band_profiles.png")
    lines = [
        "# The default along Alpine glaciers it never saw: GlaThiDa thickness by elevation band", "",
        f"Run {dt.date.today()}, {(time.perf_counter() - t0) / 60:.0f} min. Default `{predictor.identity[:12]}`, "
        f"calibrated, physics on (what `glacierbed estimate` gives); previous default `{predictors['previous_default'].identity[:12]}` "
        "with its own calibration; VA (shaped), GlabTop and OGGM on the same DEM "
        f"(rgi11-alps). {len(matched)} rgi11-alps glaciers have a matched GlaThiDa band survey (held-out surveys "
        f"dropped); {len(unseen)} share no identity with a glacier the default was fine-tuned or calibrated on; "
        f"{len(glaciers)} of them have ≥ 2 bands with ≥ 3 DEM pixels each (scored on the bands every method has). "
        "Band elevations are the survey's; the DEM's surface is of another date (the surveys are 2006–2013), so a "
        "thinning glacier's bands sit lower on it. Evaluation only: nothing was fitted or selected.", "",
        "Per glacier: RMSE over bands, and shape RMSE (each method's mean band error removed). Ratio: the default's "
        "over the best baseline's on that glacier.", "",
        to_markdown(table), "",
        f"- default / best baseline, per glacier (median): RMSE **{glaciers['default_rmse_ratio'].median():.2f}**, "
        f"shape RMSE **{glaciers['default_shape_rmse_ratio'].median():.2f}** (previous default "
        f"{glaciers['previous_default_rmse_ratio'].median():.2f} / {glaciers['previous_default_shape_rmse_ratio'].median():.2f}).", "",
        to_markdown(glaciers[["rgi_id", "name", "n_bands", "measured_mean_m", "default_rmse_m", "default_bias_m",
                              "default_shape_rmse_m", "default_rmse_ratio", "default_shape_rmse_ratio"]]), "",
        "![band profiles](band_profiles.png)", ""]
    write_text(args.out / "band_profiles.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
