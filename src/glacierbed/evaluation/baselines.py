"""Reference ice-thickness maps on a DEM grid, to measure the inpainting against.

Every function takes a metric DEM :class:`~glacierbed.data.rasters.Raster` and RGI-style
outlines (one or many glaciers) and returns a thickness raster (m) on the DEM grid:
0 outside the outlines, NaN where the DEM has no data.

* :func:`volume_area_thickness`: volume-area scaling V = 0.034 A^1.375 (km3, km2; Bahr
  et al. 1997, Alpine/global constants as in Farinotti et al. 2019 "VAS"), spread
  uniformly or shaped as sqrt(distance to the ice margin);
* :func:`glabtop_thickness`: GlabTop-style perfect plasticity, h = tau / (f rho g sin a)
  (Haeberli & Hoelzle 1995; Linsbauer et al. 2012) evaluated per pixel on a smoothed DEM;
* :func:`mass_conservation_map`: the apparent balance flux routed down the surface, Glen's law;
* :func:`external_thickness`: any thickness product (Farinotti 2019 consensus, Millan 2022)
  resampled onto the DEM grid;

OGGM, the peer model, is in :mod:`glacierbed.evaluation.oggm_peer`.
"""

from __future__ import annotations

import logging
import os

import geopandas as gpd
import numpy as np
from scipy import ndimage

from glacierbed.data.outlines import rasterize_ids
from glacierbed.core import glaciology
from glacierbed.core.glaciology import VA_C_KM3, VA_GAMMA, va_volume_km3
from glacierbed.data.rasters import Raster, resample_to_grid
from glacierbed.core.errors import MissingCRSError, NoOverlapError

log = logging.getLogger(__name__)

#: GlabTop's shape factor (Linsbauer et al. 2012)
SHAPE_FACTOR = 0.8


def _check_metric(dem: Raster) -> None:
    if not dem.crs.is_projected:
        raise MissingCRSError(f"{dem.source or 'DEM'}: baselines need a metric (projected) DEM grid; "
                              "read it with glacierbed.data.rasters.read_dem")


def _ids(dem: Raster, outlines: gpd.GeoDataFrame) -> np.ndarray:
    _check_metric(dem)
    ids = rasterize_ids(outlines, dem)
    if not ids.any():
        raise NoOverlapError(f"{outlines.attrs.get('source', 'outlines')}: no outline covers a pixel centre of "
                             f"the DEM {dem.source or ''}")
    return ids


def finish_thickness(dem: Raster, ids: np.ndarray, thickness: np.ndarray) -> Raster:
    """0 outside outlines, >= 0 inside, NaN where the DEM has no data."""
    out = np.where(ids > 0, np.clip(np.nan_to_num(thickness, nan=0.0), 0.0, None), 0.0)
    out[~np.isfinite(dem.data)] = np.nan
    return dem.with_data(out)


def outline_areas_km2(outlines: gpd.GeoDataFrame, crs) -> np.ndarray:
    """Geometric area of each outline (km2) in the metric ``crs``."""
    return outlines.to_crs(crs).geometry.area.to_numpy() / 1e6


def va_thickness_array(ids: np.ndarray, pixel_size_m: float, volumes_m3: np.ndarray | None = None,
                       shaped: bool = True, exponent: float = 0.5, c: float = VA_C_KM3,
                       gamma: float = VA_GAMMA) -> np.ndarray:
    """Volume-area thickness on a label grid (labels 1..N): glacier ``i`` holds ``volumes_m3[i-1]``
    (default: c A^gamma of its pixel area), spread uniformly or as d^exponent (d the distance
    to the ice-free margin; the array edge is a margin, divides are not)."""
    n = int(ids.max())
    labels = np.arange(1, n + 1)
    if volumes_m3 is None:
        area_km2 = np.bincount(ids.ravel(), minlength=n + 1)[1:] * pixel_size_m**2 / 1e6
        volumes_m3 = va_volume_km3(area_km2, c, gamma) * 1e9
    if shaped:
        weight = np.where(ids > 0, glaciology.distance_to_margin_m(ids > 0, pixel_size_m) ** exponent, 0.0)
    else:
        weight = (ids > 0).astype(float)
    w_sum = np.asarray(ndimage.sum(weight, ids, index=labels), float).reshape(-1)
    scale = np.zeros(n + 1)
    ok = w_sum > 0
    scale[1:][ok] = np.asarray(volumes_m3)[ok] / (w_sum[ok] * pixel_size_m**2)
    return weight * scale[ids]


def volume_area_thickness(dem: Raster, outlines: gpd.GeoDataFrame, shaped: bool = True,
                          exponent: float = 0.5, c: float = VA_C_KM3, gamma: float = VA_GAMMA) -> Raster:
    """Thickness from volume-area scaling on the outline's own (geometric) area.

    ``shaped=False``: mean thickness V/A everywhere on the glacier. ``shaped=True``:
    h proportional to d^exponent, d the distance from the pixel centre to the ice-free
    margin (distance transform of the all-glacier mask minus half a pixel, so h -> 0 at
    the outline; divides between glaciers are not margins), scaled per glacier so the
    volume on the grid equals c A^gamma exactly. exponent 0.5 mimics the parabolic
    cross-section of a valley glacier (h ~ sqrt(d) for a perfectly plastic ice margin).
    """
    ids = _ids(dem, outlines)
    vol_m3 = va_volume_km3(outline_areas_km2(outlines, dem.crs), c, gamma) * 1e9
    n_px = np.bincount(ids.ravel(), minlength=len(outlines) + 1)[1:]
    _warn_coverage(outlines, n_px * dem.pixel_area_m2 / 1e6, vol_m3)
    full = np.zeros(int(ids.max()))
    full[:] = vol_m3[:len(full)]
    return finish_thickness(dem, ids, va_thickness_array(ids, dem.res[0], full, shaped, exponent, c, gamma))


def _warn_coverage(outlines: gpd.GeoDataFrame, grid_area_km2: np.ndarray, vol_m3: np.ndarray) -> None:
    """Glaciers (nearly) missing from the grid cannot carry their volume: say so."""
    geo = vol_m3 > 0
    missing = geo & (grid_area_km2 == 0)
    if missing.any():
        log.warning("%d glaciers cover no pixel centre of the grid (too small or outside): %s",
                    int(missing.sum()), ", ".join(outlines["rgi_id"].to_numpy()[missing][:10]))


def glabtop_thickness_array(surface: np.ndarray, ids: np.ndarray, pixel_size_m: float, smooth_m: float = 200.0,
                            min_slope_deg: float = 3.0, f: float = SHAPE_FACTOR) -> np.ndarray:
    """GlabTop thickness on a label grid: tau from each glacier's elevation range, h = tau / (f rho g sin a)."""
    labels = np.arange(1, int(ids.max()) + 1)
    z = np.where(np.isfinite(surface), surface, np.nan)
    zmax = ndimage.labeled_comprehension(z, ids, labels, np.nanmax, float, np.nan)
    zmin = ndimage.labeled_comprehension(z, ids, labels, np.nanmin, float, np.nan)
    tau = np.concatenate([[0.0], np.nan_to_num(glaciology.glabtop_tau_pa((zmax - zmin) / 1000.0))])
    sin_a, _, _ = glaciology.surface_slope(surface, pixel_size_m, smooth_m, min_slope_deg)
    return np.where(ids > 0, glaciology.sia_thickness(tau[ids], sin_a, f), 0.0)


def glabtop_thickness(dem: Raster, outlines: gpd.GeoDataFrame, smooth_m: float = 200.0,
                      min_slope_deg: float = 3.0, f: float = SHAPE_FACTOR) -> Raster:
    """Perfect-plasticity thickness h = tau / (f rho g sin(alpha)) per pixel (GlabTop-style).

    tau per glacier from the DEM's elevation range inside its outline
    (:func:`glacierbed.core.glaciology.glabtop_tau_pa`); alpha is the slope of the DEM smoothed
    over ``smooth_m`` and bounded below by ``min_slope_deg`` (3 degrees caps h at ~400 m
    for tau = 1.5 bar) so flat pixels do not give infinite ice.
    """
    ids = _ids(dem, outlines)
    return finish_thickness(dem, ids, glabtop_thickness_array(dem.data, ids, dem.res[0], smooth_m, min_slope_deg, f))


def mass_conservation_map(dem: Raster, outlines: gpd.GeoDataFrame) -> Raster:
    """Mass conservation only: each glacier's apparent balance flux routed down its surface and
    carried with Glen's law (:func:`glacierbed.core.glaciology.mass_conservation_thickness`)."""
    ids = _ids(dem, outlines)
    surface = np.where(np.isfinite(dem.data), dem.data, float(np.nanmean(dem.data)))
    return finish_thickness(dem, ids, glaciology.mass_conservation_thickness(surface, ids, dem.res[0]))


def external_thickness(product: Raster | str | os.PathLike, dem: Raster, outlines: gpd.GeoDataFrame | None = None,
                       resampling: str = "bilinear") -> Raster:
    """A thickness product (e.g. Farinotti 2019 consensus, Millan 2022) on the DEM grid.

    With ``outlines``, values outside them are set to 0 (products are often 0 or nodata
    there) and pixels inside an outline that the product does not cover stay NaN, so they
    are counted as "no prediction" by the evaluation rather than as zero ice.
    """
    if not isinstance(product, Raster):
        product = Raster.from_file(product)
    out = resample_to_grid(product, dem, resampling)
    if outlines is not None:
        ids = rasterize_ids(outlines, dem)
        data = np.where(ids > 0, out.data, 0.0)
        data[~np.isfinite(dem.data)] = np.nan
        out = dem.with_data(data)
    out.source = str(product.source)
    return out
