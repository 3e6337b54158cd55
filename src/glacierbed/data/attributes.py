"""Glacier attributes a user always has: from the surface DEM and the outline alone.

Area, elevation range and median, mean surface slope, latitude, aspect, hypsometry and pixel
size. They describe *what kind of glacier* a glacier is (small steep cirque, large valley
glacier, flat ice cap), which is what the diagnosis of the model's errors, the
glacier-level calibration and the intervals that widen away from the fitted glaciers need.
The hypsometric index is Jiskoot et al. (2009): HI = (z_max - z_med) / (z_med - z_min);
HI > 1 is bottom-heavy (most area low, e.g. a valley tongue), HI < 1 top-heavy (plateau,
ice cap).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyproj import Transformer

from glacierbed.data.rasters import Raster

#: attribute columns of :func:`glacier_attributes`, in order
ATTRIBUTES = ("area_km2", "z_min_m", "z_max_m", "z_median_m", "z_range_m", "slope_deg", "latitude_deg",
              "aspect_deg", "northness", "hypsometric_index", "pixel_size_m")


def _surface_slope_aspect(surface: np.ndarray, pixel_size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees) and aspect of the downslope direction (degrees clockwise from north)."""
    filled = np.where(np.isfinite(surface), surface, np.nanmean(surface))
    d_row, d_col = np.gradient(filled, pixel_size_m)
    slope = np.degrees(np.arctan(np.hypot(d_row, d_col)))
    # rows grow southwards: downslope northward component is +d_row, eastward is -d_col
    aspect = np.degrees(np.arctan2(-d_col, d_row)) % 360.0
    return slope, aspect


def attributes_of_mask(surface: np.ndarray, mask: np.ndarray, pixel_size_m: float,
                       latitude_deg: float = float("nan"),
                       slope_aspect: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """The attributes of one glacier given as a boolean ``mask`` on a metric ``surface`` grid.

    ``slope_aspect``: the surface's slope and aspect when already computed (many glaciers on
    one DEM: computed once, not once per glacier).
    """
    z = surface[mask & np.isfinite(surface)]
    if z.size == 0:
        return {k: float("nan") for k in ATTRIBUTES} | {"pixel_size_m": float(pixel_size_m)}
    slope, aspect = slope_aspect if slope_aspect is not None else _surface_slope_aspect(surface, pixel_size_m)
    a = np.radians(aspect[mask])
    mean_aspect = float(np.degrees(np.arctan2(np.sin(a).mean(), np.cos(a).mean())) % 360.0)
    z_min, z_max, z_med = float(z.min()), float(z.max()), float(np.median(z))
    hi = (z_max - z_med) / (z_med - z_min) if z_med > z_min else float("nan")
    return {"area_km2": float(mask.sum()) * pixel_size_m ** 2 / 1e6, "z_min_m": z_min, "z_max_m": z_max,
            "z_median_m": z_med, "z_range_m": z_max - z_min, "slope_deg": float(np.mean(slope[mask])),
            "latitude_deg": float(latitude_deg), "aspect_deg": mean_aspect,
            "northness": float(np.cos(a).mean()), "hypsometric_index": float(hi),
            "pixel_size_m": float(pixel_size_m)}


def glacier_attributes(dem: Raster, ids: np.ndarray, rgi_ids: dict[int, str]) -> pd.DataFrame:
    """One row of :data:`ATTRIBUTES` per glacier of an id raster on ``dem``'s (metric) grid.

    ``rgi_ids`` maps the id raster's values to glacier ids; latitude is the glacier
    centroid's, from the DEM's CRS.
    """
    out = []
    slope_aspect = _surface_slope_aspect(dem.data, dem.res[0])
    for value, rgi_id in rgi_ids.items():
        mask = ids == value
        if not mask.any():
            continue
        out.append({"rgi_id": rgi_id, **attributes_of_mask(dem.data, mask, dem.res[0], mask_latitude(dem, mask),
                                                           slope_aspect)})
    return pd.DataFrame(out, columns=["rgi_id", *ATTRIBUTES])


def mask_latitude(grid: Raster, mask: np.ndarray) -> float:
    """Latitude (degrees) of the centroid of ``mask`` on ``grid``, from its CRS (NaN without a CRS or pixel)."""
    mask = np.asarray(mask, bool)
    if grid.crs is None or not mask.any():
        return float("nan")
    rows, cols = np.nonzero(mask)
    x, y = grid.transform @ (cols.mean() + 0.5, rows.mean() + 0.5)
    _, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return float(lat)
