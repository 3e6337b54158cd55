"""Per-pixel features of a calibration: their names, how a window's are computed, how a table's are read."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from glacierbed.core.errors import EmptySelectionError
from glacierbed.data.rasters import fill_nearest
from glacierbed.models.thickness.features import thickness_features
from glacierbed.posterior.calibration.distance import DISTANCE_ATTRIBUTES

#: version of :func:`calibration_features` (a saved calibration records it; applying checks it)
FEATURES_VERSION = 1
#: per-pixel features, in the order of :func:`calibration_features`' output
FEATURE_NAMES: tuple[str, ...] = (
    "mu_m",  # the model's thickness (after the previous calibration steps)
    "sigma_m",  # the model's 1-sigma (thickness_std)
    "h_mc_m",  # mass-conservation thickness (glaciology.mass_conservation_thickness), m
    "h_sia_m",  # perfect-plasticity thickness tau / (rho g sin alpha), tau = 100 kPa, m
    "slope_100m", "slope_300m", "slope_1000m",  # sin(surface slope) smoothed over these widths
    "dist_margin_m",  # distance to the ice-free margin (divides are not margins)
    "rel_elevation",  # (z - z_min) / (z_max - z_min) within the glacier
    "log10_area_km2",  # the glacier's area on the grid
    "elev_range_m",  # z_max - z_min of the glacier
    "pixel_size_m",
)
#: not a feature: the glacier label of each pixel or row (0 = no glacier), so a step can act per glacier
GLACIER_KEY = "glacier"
#: features the residual model uses by default (pixel size is left out: in the kit it mostly
#: says "Arctic ice cap grid", a data-set artefact, not physics)
RESIDUAL_FEATURES: tuple[str, ...] = (
    "mu_m", "h_mc_m", "h_sia_m", "slope_100m", "slope_300m", "slope_1000m", "dist_margin_m",
    "rel_elevation", "log10_area_km2", "elev_range_m",
)
#: features of the boosted interval model (mu_m = the calibrated thickness)
SIGMA_FEATURES: tuple[str, ...] = ("mu_m", "sigma_m", "h_mc_m", "slope_300m", "dist_margin_m", "rel_elevation",
                                   "log10_area_km2", "elev_range_m", "pixel_size_m")
#: measurement units of a table row: a radar point or a grid cell (has per-pixel features)
#: or a glacier's mean thickness (one row per glacier, no features)
CELL_UNITS = ("point", "cell")
MEAN_UNIT = "glacier_mean"
#: interval levels every calibration reports
LEVELS = (0.68, 0.90)
GAUSS_Z90 = 1.6448536269514722


def calibration_features(surface: np.ndarray, ids: np.ndarray, pixel_size_m: float, mu: np.ndarray,
                         sigma: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel features (:data:`FEATURE_NAMES`) of one window, float64 arrays.

    ``surface``: the DEM (m; NaN voids are filled with the nearest value for the features);
    ``ids``: glacier labels (0 = no ice; every glacier of the window, neighbours included,
    so divides are not margins); ``mu``/``sigma``: the model's thickness and 1-sigma (m).
    Built on :func:`glacierbed.models.thickness.features.thickness_features` (the thickness network's inputs).
    """
    surface = np.asarray(surface, np.float64)
    ids = np.asarray(ids)
    if not np.isfinite(surface).any():
        raise EmptySelectionError("surface window has no finite elevation")
    z = fill_nearest(surface)
    stack = thickness_features(z, ids, pixel_size_m).astype(np.float64)
    ice = ids > 0
    elev_range = np.zeros(z.shape)
    labels = np.unique(ids[ice])
    if labels.size:
        zmin = np.asarray(ndimage.minimum(z, ids, labels))
        zmax = np.asarray(ndimage.maximum(z, ids, labels))
        lut = np.zeros(int(ids.max()) + 1)
        lut[labels] = zmax - zmin
        elev_range = np.where(ice, lut[np.where(ice, ids, 0)], 0.0)
    thick_scale = 100.0  # features.THICK_SCALE_M
    return {
        "mu_m": np.asarray(mu, np.float64), "sigma_m": np.asarray(sigma, np.float64),
        "h_mc_m": stack[10] * thick_scale, "h_sia_m": stack[9] * thick_scale,
        "slope_100m": stack[5], "slope_300m": stack[6], "slope_1000m": stack[7],
        "dist_margin_m": stack[2] * 1000.0, "rel_elevation": stack[3], "log10_area_km2": stack[4],
        "elev_range_m": elev_range, "pixel_size_m": np.full(z.shape, float(pixel_size_m)),
        GLACIER_KEY: ids.astype(np.float64),
    }


def table_features(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The features of table rows (or pixels), their glacier attributes (``attr_*`` columns, when
    present) and the glacier of each (1, 2, ... by ``example`` and ``rgi_id``) under
    :data:`GLACIER_KEY` when the table names it."""
    feats = {n: rows[n].to_numpy(float) for n in (*FEATURE_NAMES, *DISTANCE_ATTRIBUTES) if n in rows}
    if {"example", "rgi_id"} <= set(rows.columns):
        feats[GLACIER_KEY] = pd.MultiIndex.from_arrays([rows["example"].astype(str),
                                                        rows["rgi_id"].astype(str)]).factorize()[0] + 1.0
    return feats


def rows_arrays(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``mu``, ``sigma`` (NaN when the table has none) and :func:`table_features` of table rows."""
    mu = rows["mu"].to_numpy(float)
    sigma = rows["sigma"].to_numpy(float) if "sigma" in rows else np.full(len(rows), np.nan)
    return mu, sigma, table_features(rows)


def feature_matrix(names: Sequence[str], features: Mapping[str, np.ndarray], mu: np.ndarray) -> np.ndarray:
    """(n, len(names)) matrix of the named features, ``mu_m`` taken from ``mu``."""
    cols = []
    for name in names:
        if name == "mu_m":
            cols.append(np.asarray(mu, float).ravel())
        elif name in features:
            cols.append(np.asarray(features[name], float).ravel())
        else:
            raise EmptySelectionError(f"feature {name!r} missing (have {', '.join(features)})")
    return np.stack(cols, axis=1)


def keep_glacier_means(new: np.ndarray, old: np.ndarray, glacier: np.ndarray) -> np.ndarray:
    """Per glacier (label > 0), the factor that gives ``new`` the mean of ``old`` on its pixels."""
    new, old = np.asarray(new, float), np.asarray(old, float)
    g = np.asarray(glacier).reshape(new.shape)
    on = (g > 0) & np.isfinite(new) & np.isfinite(old)
    factor = np.ones(new.shape)
    if on.any():
        sums = pd.DataFrame({"g": g[on], "new": new[on], "old": np.clip(old[on], 0, None)}).groupby("g").transform("sum")
        factor[on] = np.where(sums["new"] > 0, sums["old"] / sums["new"], 1.0)
    return factor
