"""GlaThiDa thickness by elevation band on the rgi11-alps glaciers: the shape of a map along a glacier.

A glacier-mean survey says how much ice a glacier holds; GlaThiDa's band table (``band.csv``) also
says where: the mean thickness of each surface-elevation band. :func:`alps_band_surveys` ties the band
surveys to the rgi11-alps glaciers through their glacier-table survey (the ``alps-means`` match,
:func:`glacierbed.evaluation.glathida_means.alps_mean_surveys`); :func:`band_means` averages a
thickness map over each band of a glacier on its DEM; :func:`band_errors` scores a profile: the RMSE
over bands, and the same after removing the method's mean band error (its shape alone).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: a band is scored when the glacier has at least this many DEM pixels in it
MIN_BAND_PIXELS = 3


def alps_band_surveys() -> pd.DataFrame:
    """Band rows (held-out surveys dropped) of the surveys matched to an rgi11-alps glacier, with its
    ``rgi_id``, survey ``name`` and ``year``."""
    from glacierbed.data import registry
    from glacierbed.data.observations import read_glathida_bands
    from glacierbed.evaluation.glathida_means import alps_mean_surveys

    bands = read_glathida_bands(registry.get_file("glathida/band.csv"), for_fitting=True)
    surveys = alps_mean_surveys()[["id", "rgi_id", "name", "year"]]
    out = bands.merge(surveys, left_on="glacier_id", right_on="id", how="inner").drop(columns="id")
    return out.sort_values(["rgi_id", "from_elevation"]).reset_index(drop=True)


def band_means(thickness: np.ndarray, elevation: np.ndarray, own: np.ndarray, lower_m: np.ndarray,
               upper_m: np.ndarray, min_pixels: int = MIN_BAND_PIXELS) -> np.ndarray:
    """Mean of ``thickness`` over the ``own`` pixels whose ``elevation`` is in [lower, upper) of each
    band; NaN for a band with fewer than ``min_pixels`` such pixels."""
    z = np.asarray(elevation, float)
    h = np.asarray(thickness, float)
    ok = np.asarray(own, bool) & np.isfinite(z) & np.isfinite(h)
    out = np.full(len(lower_m), np.nan)
    for i, (lo, hi) in enumerate(zip(np.asarray(lower_m, float), np.asarray(upper_m, float))):
        sel = ok & (z >= lo) & (z < hi)
        if sel.sum() >= min_pixels:
            out[i] = float(h[sel].mean())
    return out


def band_errors(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """RMSE, bias and shape RMSE (errors minus their mean) over the bands both have; NaN when none."""
    err = np.asarray(predicted, float) - np.asarray(measured, float)
    err = err[np.isfinite(err)]
    if not err.size:
        return {"n_bands": 0, "rmse_m": np.nan, "bias_m": np.nan, "shape_rmse_m": np.nan}
    return {"n_bands": int(err.size), "rmse_m": float(np.sqrt(np.mean(err ** 2))), "bias_m": float(err.mean()),
            "shape_rmse_m": float(np.sqrt(np.mean((err - err.mean()) ** 2)))}


__all__ = ["MIN_BAND_PIXELS", "alps_band_surveys", "band_errors", "band_means"]
