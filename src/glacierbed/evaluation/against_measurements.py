"""Validation of thickness maps against measurements and other products.

* :func:`evaluate_points`: a thickness raster against radar/drilling points, per glacier
  and pooled, every point accounted for (used / outside outlines / no prediction);
* :func:`evaluate_glacier_means`: mean thickness per glacier against GlaThiDa surveys;
* :func:`glacier_volumes`: volume, mean thickness and share of non-positive pixels.

Metrics are the pure functions of :mod:`glacierbed.core.metrics`; figures are in
:mod:`glacierbed.evaluation.figures`; running every method on a named case is :mod:`glacierbed.evaluation.benchmark`.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import ndimage

from glacierbed.data.observations import match_points_to_glaciers
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import Raster
from glacierbed.core.errors import EmptySelectionError, MissingCRSError, UnitError
from glacierbed.core.metrics import error_metrics

log = logging.getLogger(__name__)

POOLED = "ALL"


#: a thickness map whose median ice-covered pixel is thicker than this is not a thickness map (mountain glaciers
#: average 50-300 m; the thickest measured ones reach ~1.5 km at their deepest)
MAX_MEDIAN_THICKNESS_M = 1000.0


def check_thickness_map(thickness: Raster) -> None:
    """Refuse a raster that cannot be ice thickness (a DEM or a bed elevation given by mistake), naming it."""
    ice = thickness.data[np.isfinite(thickness.data) & (thickness.data > 0)]
    if ice.size and float(np.median(ice)) > MAX_MEDIAN_THICKNESS_M:
        raise UnitError(f"{thickness.source}: median value {np.median(ice):,.0f} m is no ice thickness (mountain "
                        f"glaciers average 50-300 m): a DEM or bed elevation given as --thickness?")


# --- points -----------------------------------------------------------------------------
def evaluate_points(thickness: Raster, points: gpd.GeoDataFrame, outlines: gpd.GeoDataFrame | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare a thickness raster with point observations.

    Returns ``(table, per_point)``. ``per_point`` has x, y (raster CRS), ``obs``, ``pred``
    (bilinear), ``error`` and ``status``: "used", "outside_outlines" (only with outlines;
    such points are not scored since the map is 0 there by construction) or
    "no_prediction" (raster NaN or outside the raster). ``table`` has one row per glacier
    and a pooled row (``rgi_id == "ALL"``) with :func:`error_metrics` and the counts
    ``n_points``, ``n_used``, ``n_outside_outlines``, ``n_no_prediction``.
    """
    if points.crs is None:
        raise MissingCRSError("observation points have no CRS")
    if len(points) == 0:
        raise EmptySelectionError("no observation points to evaluate")
    pts = points.to_crs(thickness.crs)
    x, y = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    df = pd.DataFrame({"x": x, "y": y, "obs": pts["thickness_m"].to_numpy(float), "pred": thickness.sample(x, y)})
    df["error"] = df["pred"] - df["obs"]
    if outlines is not None:
        df["rgi_id"] = match_points_to_glaciers(points, outlines)["rgi_id"].to_numpy()
        outside = df["rgi_id"].isna().to_numpy()
    else:
        df["rgi_id"] = None
        outside = np.zeros(len(df), bool)
    df["status"] = np.where(outside, "outside_outlines", np.where(np.isfinite(df["pred"]), "used", "no_prediction"))
    rows = []
    groups = [(POOLED, df)]
    if outlines is not None:
        groups += [(gid, g) for gid, g in df[~outside].groupby("rgi_id")]
    for gid, g in groups:
        used = g["status"] == "used"
        rows.append({"rgi_id": gid, **error_metrics(g.loc[used, "pred"], g.loc[used, "obs"]),
                     "n_points": len(g), "n_used": int(used.sum()),
                     "n_outside_outlines": int((g["status"] == "outside_outlines").sum()),
                     "n_no_prediction": int((g["status"] == "no_prediction").sum())})
    table = pd.DataFrame(rows)
    n_skip = len(df) - int((df["status"] == "used").sum())
    if n_skip:
        log.info("%d of %d points not scored (%d outside outlines, %d without prediction)", n_skip, len(df),
                 int((df["status"] == "outside_outlines").sum()), int((df["status"] == "no_prediction").sum()))
    return table, df


# --- glaciers ---------------------------------------------------------------------------
def glacier_volumes(thickness: Raster, outlines: gpd.GeoDataFrame) -> pd.DataFrame:
    """Per glacier: grid area, volume (km3), mean thickness (m), share of pixels <= 0 and
    the number of glacier pixels without a value (NaN; they add nothing to the volume)."""
    ids = rasterize_ids(outlines, thickness)
    labels = np.arange(1, len(outlines) + 1)
    h = thickness.data.astype(np.float64)
    finite = np.isfinite(h)
    px = thickness.pixel_area_m2
    n_px = ndimage.sum(np.ones_like(h), ids, labels)
    n_nan = ndimage.sum(~finite, ids, labels)
    vol = ndimage.sum(np.where(finite, h, 0.0), ids, labels) * px / 1e9
    nonpos = ndimage.sum(finite & (h <= 0), ids, labels)
    n_val = n_px - n_nan
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_h = np.where(n_val > 0, ndimage.sum(np.where(finite, h, 0.0), ids, labels) / n_val, np.nan)
        share = np.where(n_val > 0, nonpos / n_val, np.nan)
    return pd.DataFrame({"rgi_id": outlines["rgi_id"].to_numpy(), "name": outlines["name"].to_numpy(),
                         "grid_area_km2": n_px * px / 1e6, "volume_km3": vol, "mean_thickness_m": mean_h,
                         "share_nonpositive": share, "n_nan_px": n_nan.astype(int)})


def evaluate_glacier_means(thickness: Raster, outlines: gpd.GeoDataFrame, glathida_matches: pd.DataFrame,
                           latest_only: bool = True) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predicted vs GlaThiDa mean thickness per matched glacier (latest survey by default).

    Returns the per-glacier table (``obs_mean_m``, ``pred_mean_m``, ``error_m``,
    ``rel_error``, volumes) and pooled :func:`error_metrics` over glaciers.
    """
    m = glathida_matches
    if latest_only and "latest" in m:
        m = m[m["latest"].astype(bool)]
    vols = glacier_volumes(thickness, outlines).set_index("rgi_id")
    known = m["rgi_id"].isin(vols.index)
    if (~known).any():
        log.warning("%d GlaThiDa matches refer to outlines not given: %s", int((~known).sum()),
                    ", ".join(m.loc[~known, "rgi_id"].astype(str)))
    m = m[known]
    v = vols.loc[m["rgi_id"]]
    table = pd.DataFrame({"rgi_id": m["rgi_id"].to_numpy(), "name": v["name"].to_numpy(),
                          "survey_id": m["id"].to_numpy(), "survey_name": m["name"].to_numpy(),
                          "survey_year": m["year"].to_numpy() if "year" in m else np.nan,
                          "obs_mean_m": m["mean_thickness"].to_numpy(float),
                          "pred_mean_m": v["mean_thickness_m"].to_numpy(),
                          "grid_area_km2": v["grid_area_km2"].to_numpy(), "pred_volume_km3": v["volume_km3"].to_numpy()})
    table["error_m"] = table["pred_mean_m"] - table["obs_mean_m"]
    table["rel_error"] = table["error_m"] / table["obs_mean_m"]
    table["obs_volume_km3"] = table["obs_mean_m"] * table["grid_area_km2"] / 1e3
    return table, error_metrics(table["pred_mean_m"], table["obs_mean_m"])


