"""Calibrations scored without leakage on the measured table: leave one glacier (or region) out.

:func:`cross_validate` refits a calibration without each glacier (``by="group"``: a
glacier's radar, grid and mean leave together) or each RGI region (``by="region"``) and
predicts the held-out rows and pixels (:func:`predict_glaciers` for whole glaciers);
:func:`score` turns that into the acceptance metrics per case, with
:func:`glathida_per_glacier` / :func:`glathida_regions` for the GlaThiDa grids against the
baselines sampled on the same cells. The table: :func:`glacierbed.evaluation.measured_table.collect`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from glacierbed.core.metrics import error_metrics, geometric_mean, relative_error
from glacierbed.evaluation.measured_table import BASELINES, HEF_CONSENSUS_KM3, MeasuredSet
from glacierbed.posterior.calibration import (MEAN_UNIT, Calibration, IntervalCalibrator, apply_to_rows, table_features,
                                              weighted_coverage)

#: calibration variants scored by the benchmark
VARIANTS = ("none", "scale", "residual+scale", "scale+interval", "residual+scale+interval")


# --------------------------------------------------------------------------------------
# leave-one-glacier/region-out
# --------------------------------------------------------------------------------------
@dataclass
class CrossValidation:
    """Out-of-fold predictions of one calibration variant.

    ``rows``: the measured rows with ``mu_cal``, ``sigma_cal``, ``z90`` and ``fold`` (the
    held-out label whose fit predicted them); glacier-mean rows take the mean of their
    glacier's calibrated pixels (``sigma_cal``: :meth:`Calibration.glacier_mean_std`,
    ``z90``: the glacier-level 90 % multiplier). ``glaciers``: per glacier of ``pixels``:
    calibrated mean thickness, volume and their 1-sigma.
    """

    variant: str
    by: str
    rows: pd.DataFrame
    glaciers: pd.DataFrame
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)


def predict_glaciers(cal: Calibration, pixels: pd.DataFrame) -> pd.DataFrame:
    """Per glacier of ``pixels``: calibrated mean thickness, its 1-sigma, volume and its 1-sigma."""
    out = []
    if len(pixels) == 0:
        return pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mean_thickness_m",
                                     "mean_thickness_std_m", "volume_km3", "volume_std_km3", "n_pixels"])
    mu, sigma = cal.apply(pixels["mu"].to_numpy(float), pixels["sigma"].to_numpy(float), table_features(pixels))
    p = pixels.assign(mu_cal=mu, sigma_cal=sigma)
    for (example, rid), g in p.groupby(["example", "rgi_id"], sort=False):
        area = g["pixel_area_m2"].to_numpy(float)
        out.append({"case": g["case"].iloc[0], "example": example, "rgi_id": rid, "group": g["group"].iloc[0],
                    "region": g["region"].iloc[0], "mean_thickness_m": float(np.nanmean(g["mu_cal"])),
                    "mean_thickness_std_m": cal.glacier_mean_std(g["sigma_cal"].to_numpy(float)),
                    "z90": cal.glacier_z90,
                    "volume_km3": float(np.nansum(g["mu_cal"].to_numpy(float) * area) / 1e9),
                    "volume_std_km3": cal.volume_std_km3(g["sigma_cal"].to_numpy(float), float(area[0])),
                    "n_pixels": int(len(g))})
    return pd.DataFrame(out)


def cross_validate(ms: MeasuredSet, variant: str | Callable[[], Calibration], by: str = "group",
                   progress: Callable[[str], None] | None = None, only: Sequence[str] | None = None,
                   interval_on: MeasuredSet | None = None) -> CrossValidation:
    """Refit ``variant`` without each glacier (``by="group"``) or region (``by="region"``).

    Every row and pixel is predicted by the one fit that did not see its ``by`` label (a
    glacier's radar, grid and mean all left out together). Labels that only have pixels
    (no measurement) are predicted by the fit on all rows. ``only``: hold out these labels
    alone (the rest are only fitted on; e.g. a nested fit's outer fold). ``interval_on``: the same glaciers'
    rows from other maps, whose errors the interval step is fitted to (see :meth:`Calibration.fit`).
    """
    make = (lambda: Calibration.variant(variant)) if isinstance(variant, str) else variant
    name = variant if isinstance(variant, str) else make().name
    rows, pixels = ms.rows.reset_index(drop=True), ms.pixels.reset_index(drop=True)
    labels = sorted(set(rows[by].astype(str)) | set(pixels[by].astype(str))) if only is None else list(only)
    out_rows, out_glaciers, fits = [], [], {}
    for held in labels:
        train = rows[rows[by].astype(str) != held]
        if interval_on is None:
            cal = make().fit(train, pixels)
        else:
            cal = make().fit(train, pixels, interval_on.rows[interval_on.rows[by].astype(str) != held],
                             interval_on.pixels)
        fits[held] = {"steps": [{k: v for k, v in s.to_dict().items() if k not in ("trees", "hyperparameters")}
                                for s in cal.steps], "n_train_rows": int(len(train))}
        test = rows[rows[by].astype(str) == held]
        if len(test):
            pred = apply_to_rows(cal.steps, test, pixels)
            out_rows.append(test.assign(mu_cal=pred["mu"].to_numpy(), sigma_cal=pred["sigma"].to_numpy(),
                                        z90=cal.z90, fold=held))
        px = pixels[pixels[by].astype(str) == held]
        if len(px):
            out_glaciers.append(predict_glaciers(cal, px).assign(fold=held))
        if progress:
            progress(held)
    # no row (or no pixel) held out, e.g. ``only`` a label without measurements: nothing predicted, never
    # the fitted side's rows or pixels
    oof = (pd.concat(out_rows, ignore_index=True) if out_rows
           else rows.iloc[0:0].assign(mu_cal=np.nan, sigma_cal=np.nan, z90=np.nan, fold=""))
    gl = pd.concat(out_glaciers, ignore_index=True) if out_glaciers else predict_glaciers(Calibration(), pixels.iloc[0:0])
    return CrossValidation(name, by, _glacier_means_from_pixels(oof, gl), gl, fits)


def predict_with(cal: Calibration, ms: MeasuredSet, label: str = "fitted") -> CrossValidation:
    """Every row and pixel of ``ms`` predicted by one calibration fitted elsewhere (e.g. the shipped one
    on glaciers ``ms`` does not hold), scored like :func:`cross_validate`'s tables."""
    rows, pixels = ms.rows.reset_index(drop=True), ms.pixels.reset_index(drop=True)
    pred = apply_to_rows(cal.steps, rows, pixels)
    out = rows.assign(mu_cal=pred["mu"].to_numpy(), sigma_cal=pred["sigma"].to_numpy(), z90=cal.z90, fold=label)
    gl = predict_glaciers(cal, pixels).assign(fold=label)
    return CrossValidation(cal.name, label, _glacier_means_from_pixels(out, gl), gl, {})


def _glacier_means_from_pixels(rows: pd.DataFrame, glaciers: pd.DataFrame) -> pd.DataFrame:
    """Glacier-mean rows take their glacier's calibrated pixels (mean thickness, its std, z90)."""
    is_mean = (rows["unit"] == MEAN_UNIT).to_numpy()
    if is_mean.any():
        idx = glaciers.set_index(["example", "rgi_id"])
        keys = list(zip(rows.loc[is_mean, "example"], rows.loc[is_mean, "rgi_id"]))
        rows.loc[is_mean, "mu_cal"] = [idx.loc[k, "mean_thickness_m"] if k in idx.index else np.nan for k in keys]
        rows.loc[is_mean, "sigma_cal"] = [idx.loc[k, "mean_thickness_std_m"] if k in idx.index else np.nan
                                          for k in keys]
        rows.loc[is_mean, "z90"] = [idx.loc[k, "z90"] if k in idx.index else np.nan for k in keys]
    return rows


# --------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------
def _coverage(df: pd.DataFrame, weights: np.ndarray | None = None) -> dict[str, float]:
    e = (df["mu_cal"] - df["obs"]).abs().to_numpy(float)
    s = df["sigma_cal"].to_numpy(float)
    z = df["z90"].to_numpy(float)
    return {"coverage68": weighted_coverage(e, s, weights), "coverage90": weighted_coverage(e, z * s, weights)}


def glathida_per_glacier(cv: CrossValidation) -> pd.DataFrame:
    """Per GlaThiDa grid glacier: calibrated RMSE, coverage and the baselines on the same cells."""
    r = cv.rows[cv.rows["case"] == "glathida-grids"]
    out = []
    for rid, g in r.groupby("rgi_id", sort=True):
        row = {"rgi_id": rid, "name": g["name"].iloc[0] if "name" in g else "", "region": g["region"].iloc[0],
               "group": g["group"].iloc[0], **{k: v for k, v in error_metrics(g["mu_cal"], g["obs"]).items()
                                               if k in ("n", "rmse", "mae", "bias")}, **_coverage(g)}
        for b in BASELINES:
            if f"base_{b}" in g:
                row[f"rmse_{b}"] = error_metrics(g[f"base_{b}"], g["obs"])["rmse"]
        bases = {b: row.get(f"rmse_{b}", np.nan) for b in BASELINES}
        finite = {b: v for b, v in bases.items() if np.isfinite(v)}
        row["best_baseline"] = min(finite, key=finite.get) if finite else ""
        row["best_baseline_rmse"] = min(finite.values()) if finite else np.nan
        row["ratio_to_best_baseline"] = row["rmse"] / row["best_baseline_rmse"] if finite else np.nan
        out.append(row)
    return pd.DataFrame(out)


def glathida_regions(per_glacier: pd.DataFrame) -> pd.DataFrame:
    """Per RGI region: median RMSE of the calibrated model and of each baseline, the best baseline."""
    rows = []
    for reg, g in per_glacier.groupby("region", sort=True):
        row = {"region": reg, "n_glaciers": len(g), "median_rmse": float(g["rmse"].median())}
        for b in BASELINES:
            if f"rmse_{b}" in g:
                row[f"median_rmse_{b}"] = float(g[f"rmse_{b}"].median())
        finite = {b: row[f"median_rmse_{b}"] for b in BASELINES
                  if f"median_rmse_{b}" in row and np.isfinite(row[f"median_rmse_{b}"])}
        row["best_baseline"] = min(finite, key=finite.get) if finite else ""
        row["best_baseline_median_rmse"] = min(finite.values()) if finite else np.nan
        row["ratio"] = row["median_rmse"] / row["best_baseline_median_rmse"] if finite else np.nan
        row["median_ratio_per_glacier"] = float(g["ratio_to_best_baseline"].median())
        rows.append(row)
    return pd.DataFrame(rows)


def _pooled_row(rows: pd.DataFrame, case: str, unit: str) -> dict[str, Any]:
    """Acceptance metrics of one case scored over all its rows, with the baselines on the same rows."""
    m = error_metrics(rows["mu_cal"], rows["obs"])
    return {"case": case, "unit": unit, "n": m["n"], "rmse": m["rmse"], "mae": m["mae"], "bias": m["bias"],
            **_coverage(rows), **{f"rmse_{b}": error_metrics(rows[f"base_{b}"], rows["obs"])["rmse"]
                                  for b in BASELINES if f"base_{b}" in rows}}


def score(cv: CrossValidation) -> pd.DataFrame:
    """One row per case with the acceptance metrics (RMSE, bias, ratios, coverage 68/90)."""
    out = []
    r = cv.rows
    sg = r[r["case"] == "south-glacier"]
    if len(sg):
        out.append(_pooled_row(sg, "south-glacier", "radar points"))
    gg = r[r["case"] == "glathida-grids"]
    if len(gg):
        pg = glathida_per_glacier(cv)
        reg = glathida_regions(pg)
        pooled = error_metrics(gg["mu_cal"], gg["obs"])
        base_medians = {b: float(pg[f"rmse_{b}"].median()) for b in BASELINES if f"rmse_{b}" in pg}
        best_median = min(base_medians.values()) if base_medians else np.nan
        out.append({"case": "glathida-grids", "unit": "glaciers (median of per-glacier RMSE)", "n": len(pg),
                    "rmse": float(pg["rmse"].median()), "mae": float(pg["mae"].median()),
                    "bias": float(pg["bias"].median()), **_coverage(gg, _cell_weights(gg)),
                    **{f"{k}_cells": v for k, v in _coverage(gg).items()},
                    "pooled_rmse": pooled["rmse"],
                    "median_ratio_to_best_baseline": float(pg["ratio_to_best_baseline"].median()),
                    "ratio_to_best_baseline_median": float(pg["rmse"].median()) / best_median,
                    "regions_worse_than_best_baseline": int((reg["ratio"] > 1).sum()),
                    "worst_region_ratio": float(reg["ratio"].max()),
                    **{f"rmse_{b}": v for b, v in base_medians.items()}})
    for case in ("oetztal-means", "alps-means"):
        means = r[r["case"] == case]
        if len(means):
            out.append(_pooled_row(means, case, "glacier means"))
    hef = cv.glaciers[cv.glaciers["case"] == "hintereisferner"] if len(cv.glaciers) else pd.DataFrame()
    if len(hef):
        v, s = float(hef["volume_km3"].sum()), float(hef["volume_std_km3"].sum())
        e = abs(v - HEF_CONSENSUS_KM3)
        out.append({"case": "hintereisferner", "unit": "volume vs consensus (km3)", "n": 1, "volume_km3": v,
                    "volume_std_km3": s, "rel_error_volume": relative_error(v, HEF_CONSENSUS_KM3),
                    "coverage68": float(e <= s), "coverage90": float(e <= float(hef["z90"].iloc[0]) * s)})
    return pd.DataFrame(out)


def acceptance_summary(cv: CrossValidation) -> dict[str, float]:
    """Issue 16's acceptance figures of one out-of-fold table: the grids per glacier (median ratio to
    the best baseline, its geometric mean over glaciers (a steadier statistic for comparing variants), median RMSE,
    regions over 1, share with |bias| <= 20 % of the measured mean), South Glacier and Ötztal RMSE, the Hintereisferner volume error, and the Alps means when scored."""
    s = score(cv).set_index("case")

    def get(case: str, col: str) -> float:
        return float(s.loc[case, col]) if case in s.index and col in s.columns else float("nan")

    grids = cv.rows[cv.rows["case"] == "glathida-grids"]
    share = geomean = float("nan")
    if len(grids):
        per = glathida_per_glacier(cv).set_index("rgi_id")
        share = float(((per["bias"] / grids.groupby("rgi_id")["obs"].mean()).abs() <= 0.2).mean())
        geomean = geometric_mean(per["ratio_to_best_baseline"])
    out = {"grids_median_ratio": get("glathida-grids", "median_ratio_to_best_baseline"),
           "grids_geomean_ratio": geomean,
           "grids_median_rmse_m": get("glathida-grids", "rmse"),
           "grids_regions_over_1": get("glathida-grids", "regions_worse_than_best_baseline"),
           "grids_share_bias_within_20pct": share,
           "south_glacier_rmse_m": get("south-glacier", "rmse"), "oetztal_means_rmse_m": get("oetztal-means", "rmse"),
           "hef_volume_rel_error": get("hintereisferner", "rel_error_volume")}
    if "alps-means" in s.index:
        out.update({f"alps_means_{k}": get("alps-means", col) for k, col in (
            ("n", "n"), ("rmse_m", "rmse"), ("bias_m", "bias"), ("mae_m", "mae"), ("coverage68", "coverage68"),
            ("coverage90", "coverage90"))})
    return out


def ratio_gaps(values: pd.Series, reference: pd.Series) -> dict[str, float | bool]:
    """Per-glacier ratios (indexed by glacier) of a variant against a reference's: for the median and the mean log
    ratio, the variant's value and 90 % bootstrap interval, and the paired gap (glaciers present in both, resampled
    together) with its interval and whether it is resolved (the interval excludes 0)."""
    from glacierbed.core.metrics import paired_bootstrap_gap

    values = values.dropna()
    joined = pd.concat([values, reference], axis=1, join="inner").dropna()
    out: dict[str, float | bool] = {}
    for statistic in ("median", "mean_log"):
        value, low, high = paired_bootstrap_gap(values.to_numpy(), statistic=statistic)
        gap, gap_low, gap_high = paired_bootstrap_gap(joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy(),
                                                      statistic=statistic)
        out.update({statistic: value, f"{statistic}_low_90": low, f"{statistic}_high_90": high, f"{statistic}_gap": gap,
                    f"{statistic}_gap_low_90": gap_low, f"{statistic}_gap_high_90": gap_high,
                    f"{statistic}_gap_resolved": bool(gap_low > 0 or gap_high < 0)})
    return out


def gap_text(gaps: Mapping[str, Any], statistic: str, note: str = "") -> str:
    """``+0.054 (+0.006 to +0.104<note>)``: a paired gap of :func:`ratio_gaps` (``statistic``: ``median`` or
    ``mean_log``) and its 90 % interval, as the benchmarks' reports write it."""
    return (f"{gaps[f'{statistic}_gap']:+.3f} ({gaps[f'{statistic}_gap_low_90']:+.3f} to "
            f"{gaps[f'{statistic}_gap_high_90']:+.3f}{note})")


def cross_validate_on(ms: MeasuredSet, variant: str | Callable[[], Calibration], fit_cases: Sequence[str],
                      by: str = "group") -> CrossValidation:
    """Leave-one-``by``-out on the rows of ``fit_cases``; the rows of every other case predicted by the
    fit on the ``fit_cases`` rows (never fitted on: how the shipped calibration meets a new case), without
    the rows of their own ``by`` label where the fit cases hold it too (e.g. an Alps mean of a grid glacier)."""
    def part(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(part=np.where(df["case"].isin(fit_cases), "fit", "other"))

    rows, pixels = part(ms.rows), part(ms.pixels)
    fit_rows, fit_px = rows[rows["part"] == "fit"], pixels[pixels["part"] == "fit"]
    logo = cross_validate(MeasuredSet(fit_rows, fit_px), variant, by=by)
    other_rows, other_px = rows[rows["part"] == "other"], pixels[pixels["part"] == "other"]
    if not len(other_rows):
        return logo
    fitted = set(fit_rows[by].astype(str))

    def predicted(label: str | None) -> CrossValidation:
        """The other cases' rows of ``label`` (None: of every label the fit cases lack) by the fit without it."""
        def pick(df: pd.DataFrame) -> pd.DataFrame:
            lab = df[by].astype(str)
            own = ~lab.isin(fitted) if label is None else lab == label
            return df[((df["part"] == "fit") & (lab != label)) | ((df["part"] == "other") & own)]

        return cross_validate(MeasuredSet(pick(rows), pick(pixels)), variant, by="part", only=["other"])

    own = set(other_rows[by].astype(str)) | set(other_px[by].astype(str))
    parts = [predicted(label) for label in ([None] if own - fitted else []) + sorted(own & fitted)]
    return CrossValidation(logo.variant, f"{by} on {'+'.join(fit_cases)}",
                           pd.concat([logo.rows, *(p.rows for p in parts)], ignore_index=True),
                           pd.concat([logo.glaciers, *(p.glaciers for p in parts)], ignore_index=True))


def per_glacier_coverage(cv: CrossValidation) -> pd.DataFrame:
    """Per glacier and case with measured points or cells (not glacier means): n and the share of
    its measurements inside the 68 % (±sigma) and 90 % (±z90 sigma) intervals."""
    r = cv.rows[cv.rows["unit"] != MEAN_UNIT] if "unit" in cv.rows else cv.rows
    out = [{"case": case, "rgi_id": rid, "group": g["group"].iloc[0], "region": g["region"].iloc[0], "n": len(g),
            **_coverage(g)} for (case, rid), g in r.groupby(["case", "rgi_id"], sort=True)]
    return pd.DataFrame(out, columns=["case", "rgi_id", "group", "region", "n", "coverage68", "coverage90"])


def coverage_spread(per_glacier: pd.DataFrame, quantile: float = 0.1) -> dict[str, float]:
    """Median, ``quantile`` (10th percentile) and minimum over glaciers of the per-glacier coverages."""
    out: dict[str, float] = {"n_glaciers": float(len(per_glacier))}
    for col in ("coverage68", "coverage90"):
        v = per_glacier[col].to_numpy(float)
        v = v[np.isfinite(v)]
        out[f"{col}_median"] = float(np.median(v)) if v.size else float("nan")
        out[f"{col}_p{round(100 * quantile)}"] = float(np.quantile(v, quantile)) if v.size else float("nan")
        out[f"{col}_worst"] = float(v.min()) if v.size else float("nan")
    return out


def glacier_level_coverage(cv: CrossValidation) -> pd.DataFrame:
    """Per glacier unit (a glacier's measured cells or points of one case, or one glacier-mean row):
    the error of its mean thickness against the calibrated glacier-level 1-sigma and 90 % multiplier,
    which is what a glacier's volume interval is about.

    Cells: |mean(mu_cal) - mean(obs)| against :meth:`IntervalCalibrator.glacier_std` of their
    ``sigma_cal`` with the within-glacier correlation of the fit that predicted them (``cv.fits`` of
    their ``fold``) and its ``glacier_z90``; a glacier-mean row carries its own (``sigma_cal``, ``z90``).
    Needs an interval step."""
    out = []
    r = cv.rows
    is_mean = (r["unit"] == MEAN_UNIT).to_numpy() if "unit" in r else np.zeros(len(r), bool)
    for (fold, group, case), g in r[~is_mean].groupby(["fold", "group", "case"], sort=True):
        steps = [st for st in cv.fits.get(str(fold), {}).get("steps", []) if st["kind"] == "interval"]
        if not steps:
            raise ValueError(f"{cv.variant}: fold {fold} has no interval step: no glacier-level interval to score")
        st = steps[0]
        interval = IntervalCalibrator(glacier_correlation=float(st["glacier_correlation"]),
                                      glacier_factor=float(st["glacier_factor"]))
        out.append({"case": case, "group": group, "region": g["region"].iloc[0], "n": len(g),
                    "obs_mean_m": float(g["obs"].mean()), "error_m": abs(float(g["mu_cal"].mean() - g["obs"].mean())),
                    "sigma_m": interval.glacier_std(g["sigma_cal"].to_numpy(float)),
                    "z90": float(st["glacier_z90"])})
    for row in r[is_mean].itertuples(index=False):
        out.append({"case": row.case, "group": row.group, "region": row.region, "n": 1, "obs_mean_m": float(row.obs),
                    "error_m": abs(float(row.mu_cal) - float(row.obs)), "sigma_m": float(row.sigma_cal),
                    "z90": float(row.z90)})
    units = pd.DataFrame(out, columns=["case", "group", "region", "n", "obs_mean_m", "error_m", "sigma_m", "z90"])
    units["covered68"] = units["error_m"] <= units["sigma_m"]
    units["covered90"] = units["error_m"] <= units["z90"] * units["sigma_m"]
    return units


def glacier_level_summary(units: pd.DataFrame) -> pd.DataFrame:
    """68 % / 90 % glacier-level coverage per case and over every glacier of
    :func:`glacier_level_coverage`'s units (each glacier weighing once, split between its units)."""
    def row(case: str, g: pd.DataFrame) -> dict[str, Any]:
        w = 1.0 / g["group"].map(g["group"].value_counts()).to_numpy(float)
        return {"case": case, "n_glaciers": int(g["group"].nunique()), "n_units": len(g),
                "coverage68": float(np.average(g["covered68"], weights=w)),
                "coverage90": float(np.average(g["covered90"], weights=w))}

    return pd.DataFrame([row("all glaciers", units), *(row(str(c), g) for c, g in units.groupby("case", sort=True))])


def _cell_weights(df: pd.DataFrame) -> np.ndarray:
    """Each glacier equal (for coverage over the GlaThiDa grids)."""
    n = df["rgi_id"].map(df["rgi_id"].value_counts()).to_numpy(float)
    return 1.0 / n


__all__ = ["VARIANTS", "CrossValidation", "cross_validate", "cross_validate_on", "predict_with", "predict_glaciers", "score",
           "glacier_level_coverage", "glacier_level_summary",
           "acceptance_summary", "ratio_gaps", "gap_text", "glathida_per_glacier", "glathida_regions", "per_glacier_coverage", "coverage_spread"]
