"""Scores against a known truth: an estimate of a region simulated by ``glacierbed region build``.

Used by ``benchmarks/region_scale.py`` (thousands of simulated glaciers) and ``benchmarks/coarse_dem_refinement.py``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glacierbed.core.metrics import error_metrics
from glacierbed.data.outlines import read_outlines, rasterize_ids
from glacierbed.data.rasters import Raster


def region_truth_scores(region: Path, est: Path, ids: list[str] | None = None) -> dict[str, float]:
    """An estimate (``est``: the folder ``glacierbed estimate`` wrote) against the truth of a simulated region
    (``region``: the folder ``glacierbed region build`` wrote): thickness on the glaciers' pixels (all, or those of
    ``ids``), and volumes."""
    truth = Raster.from_file(region / "thickness.tif")
    pred = Raster.from_file(est / "thickness.tif")
    g = read_outlines(region / "outlines.gpkg")
    if ids is not None:
        g = g[g["rgi_id"].isin(ids)]
    inside = rasterize_ids(g, truth) > 0
    m = error_metrics(pred.data[inside], truth.data[inside])
    t = pd.read_csv(region / "truth.csv").merge(pd.read_csv(est / "glaciers.csv"), on="rgi_id",
                                                 suffixes=("_true", "_est"))
    if ids is not None:
        t = t[t["rgi_id"].isin(ids)]
    ratio = t["volume_km3_est"] / t["volume_km3_true"]
    return dict(glaciers=len(t), pixels=m["n"], missing_pixels=int(inside.sum()) - m["n"], rmse_m=m["rmse"],
                bias_m=m["bias"], mae_m=m["mae"], r=m["r"], mean_true_m=m["mean_obs"], mean_est_m=m["mean_pred"],
                volume_true_km3=float(t["volume_km3_true"].sum()), volume_est_km3=float(t["volume_km3_est"].sum()),
                volume_ratio=float(t["volume_km3_est"].sum() / t["volume_km3_true"].sum()),
                glacier_volume_ratio_p10=float(ratio.quantile(0.1)),
                glacier_volume_ratio_median=float(ratio.median()),
                glacier_volume_ratio_p90=float(ratio.quantile(0.9)))


__all__ = ["region_truth_scores"]
