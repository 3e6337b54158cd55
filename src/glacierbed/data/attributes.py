"""Glacier attributes a user always has: from the surface DEM and the outline alone.

Area, elevation range and median, mean surface slope, latitude, aspect, hypsometry and pixel
size; and, for the diagnosis, the distance to the ocean (a continentality proxy from a packaged land mask). They
describe *what kind of glacier* a glacier is (small steep cirque, large valley glacier, flat ice cap), which is what
the diagnosis of the model's errors, the glacier-level calibration and the intervals that widen away from the fitted
glaciers need. The hypsometric index is Jiskoot et al. (2009): HI = (z_max - z_med) / (z_med - z_min); HI > 1 is
bottom-heavy (most area low, e.g. a valley tongue), HI < 1 top-heavy (plateau, ice cap).
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


def mask_lonlat(grid: Raster, mask: np.ndarray) -> tuple[float, float]:
    """Longitude and latitude (degrees) of the centroid of ``mask`` on ``grid``, from its CRS (NaN without a CRS or
    pixel)."""
    mask = np.asarray(mask, bool)
    if grid.crs is None or not mask.any():
        return float("nan"), float("nan")
    rows, cols = np.nonzero(mask)
    x, y = grid.transform @ (cols.mean() + 0.5, rows.mean() + 0.5)
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return float(lon), float(lat)


def mask_latitude(grid: Raster, mask: np.ndarray) -> float:
    """Latitude (degrees) of the centroid of ``mask`` on ``grid``, from its CRS (NaN without a CRS or pixel)."""
    return mask_lonlat(grid, mask)[1]


#: kinds of glaciers with a known, specific weakness of the default, each a row of docs/accuracy.md, told by what a
#: user always has (what the measured glaciers say per flag: ``benchmarks/results/caution_evidence.md``):
#: ``plateau_or_ice_cap``: mean surface slope below 10 degrees (the diagnosis' threshold; every Arctic ice cap of the
#: kit's grids and no Oetztal glacier lies below it; its hypsometry criterion, HI < 0.8, is left out here: it also
#: takes 6 of the 20 Oetztal glaciers, where the default is measured at its best); ``large``: above 10 km2 (on
#: simulated glaciers of known bed the default finds 0.72-0.75 of the ice of such glaciers,
#: ``benchmarks/results/large_glaciers.md``); ``unmeasured_region``: an RGI region without a measured glacier
#: (``measured_region`` False; leave one region out the default ties the best classical method)
PLATEAU_SLOPE_DEG = 10.0
LARGE_AREA_KM2 = 10.0
CAUTION_FLAGS = ("plateau_or_ice_cap", "large", "unmeasured_region")


def kind_flags(table: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per flag of :data:`CAUTION_FLAGS` for every row of ``table`` (columns ``slope_deg``,
    ``area_km2`` and, when present, ``measured_region``); an attribute that is NaN raises no flag (a glacier without
    pixels)."""
    flags = pd.DataFrame(index=table.index)
    flags["plateau_or_ice_cap"] = table["slope_deg"] < PLATEAU_SLOPE_DEG
    flags["large"] = table["area_km2"] > LARGE_AREA_KM2
    measured = table["measured_region"] if "measured_region" in table else pd.Series(True, index=table.index)
    flags["unmeasured_region"] = measured.eq(False)
    return flags


def caution(table: pd.DataFrame) -> pd.Series:
    """The flags of :func:`kind_flags` each row raises, joined by ``;`` (empty when none): what ``glaciers.csv``'s
    ``caution`` column says, each flag a row of docs/accuracy.md."""
    flags = kind_flags(table)
    return pd.Series([";".join(f for f in CAUTION_FLAGS if row[f]) for row in flags.to_dict("records")],
                     index=table.index, dtype=str)


#: km per degree of latitude (spherical Earth, radius 6,371 km)
KM_PER_DEGREE = 6371.0 * np.pi / 180.0


def distance_to_ocean_km(lon: float, lat: float, reach_deg: float = 30.0, step: int = 6) -> float:
    """Distance (km, on a local plane) from a point to the nearest ocean cell of the GLOBE land mask shipped by the
    ``global-land-mask`` package (30", about 1 km; read every ``step``-th cell): a continentality proxy, maritime
    glaciers near 0, continental ones hundreds of km. Measured with x scaled by cos(lat) within ``reach_deg`` of
    the point; ``inf`` when no ocean lies that close. Not a climate record: a proxy a user can
    compute offline anywhere."""
    from scipy import ndimage

    try:
        from global_land_mask import globe
    except ImportError as exc:
        raise ImportError("distance_to_ocean_km needs the global-land-mask package (pip install -e '.[dev]')") from exc
    if not (np.isfinite(lon) and np.isfinite(lat)):
        return float("nan")
    res = float(abs(globe._lat[1] - globe._lat[0])) * step  # degrees per cell read
    n_lat, n_lon = globe._mask.shape
    i0 = int(globe.lat_to_index(np.clip(lat, -89.99, 89.99)))
    j0 = int(globe.lon_to_index(((lon + 180.0) % 360.0) - 180.0))
    half_i = int(reach_deg / res) * step
    half_j = min(int(reach_deg / max(np.cos(np.radians(lat)), 0.05) / res) * step, n_lon // 2 - step)
    rows = np.clip(np.arange(i0 - half_i, i0 + half_i + 1, step), 0, n_lat - 1)
    cols = np.arange(j0 - half_j, j0 + half_j + 1, step) % n_lon
    land = ~globe._mask[np.ix_(rows, cols)]  # the package's mask is True on water (most lakes count as land)
    if land.all():
        return float("inf")
    km = res * KM_PER_DEGREE
    dist = ndimage.distance_transform_edt(land, sampling=(km, km * np.cos(np.radians(lat))))
    return float(dist[half_i // step, half_j // step])
