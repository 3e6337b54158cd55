"""What a raster's values mean: stored units turned into metres, and whether they can be the quantity expected.

GDAL files say how their values are stored (band scale/offset, a band unit tag, a compound CRS's height unit):
:func:`stored_to_metres` reads that, :func:`in_metres` applies it. Files that say nothing are checked against
physics instead: a DEM above any elevation on Earth is in feet or decimetres (:func:`elevation_problem`), an SMB
of thousands is in mm w.e. (:func:`physical_range_problem`), 8-bit pixels are an image (:func:`check_dem_header`);
:func:`grid_problem` refuses grids that cannot be placed (rotated; "degrees" that are metres). Every check returns
why, or ``None``, so the reader raising it can name the file.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import rasterio
from pyproj import CRS

from glacierbed.core.errors import UnitError
from glacierbed.data.crs import METRES_PER_UNIT, degrees_problem, vertical_unit

log = logging.getLogger(__name__)

#: void value of int16 SRTM/ASTER DEMs, honoured even when a file declares no nodata
SRTM_VOID = -32768
#: elevations in metres lie within these bounds (Everest 8,849 m; the Dead Sea shore -430 m): a DEM outside
#: them is in other units (feet, decimetres) or holds undeclared nodata (-9999)
ELEVATION_RANGE_M = (-1000.0, 9000.0)


def implied_nodata(src: "rasterio.io.DatasetReader", band: int = 1) -> float | None:
    """A band's nodata value: the declared one, else SRTM/ASTER's -32768 for int16 (voids even when no
    nodata is declared), else ``None``."""
    if src.nodata is not None:
        return float(src.nodata)
    return float(SRTM_VOID) if src.dtypes[band - 1] == "int16" else None


def grid_problem(src: "rasterio.io.DatasetReader") -> str | None:
    """Why an open raster's grid cannot be placed (no CRS; a rotated geotransform; coordinates that cannot be
    degrees under a geographic CRS), or ``None``."""
    if src.crs is None:
        return "raster has no coordinate reference system (CRS)"
    if not src.transform.is_rectilinear:
        return ("its grid is rotated (the geotransform is not north-up); warp it north-up first "
                "(gdalwarp in.tif out.tif does)")
    return degrees_problem(CRS.from_user_input(src.crs.to_wkt()), src.bounds)


def stored_to_metres(src: "rasterio.io.DatasetReader", band: int = 1) -> tuple[float, float, str]:
    """``(gain, offset, why)`` with metres = stored value x gain + offset for one band of an open file.

    GDAL's band scale and offset come first (e.g. int16 decimetres stored with scale 0.1); then the
    unit: the band's unit tag (``gdal_edit -units ft``) when it names a length
    (:data:`~glacierbed.data.crs.METRES_PER_UNIT`), else the vertical axis of a compound CRS (a national
    grid + a height system in US feet). Other tags (``m/yr``, ``mm w.e.``) are left as they are. ``why``
    says what was applied ("" when nothing was).
    """
    scale, offset = float(src.scales[band - 1] or 1.0), float(src.offsets[band - 1] or 0.0)
    tag = (src.units[band - 1] or "").strip()
    crs = CRS.from_user_input(src.crs.to_wkt()) if src.crs is not None else None
    unit, per_unit = tag, METRES_PER_UNIT.get(tag.lower())
    vertical = vertical_unit(crs) if per_unit is None and crs is not None else None
    if vertical is not None:
        unit, per_unit = vertical
    why = [f"GDAL scale {scale:g} and offset {offset:g} applied"] if (scale, offset) != (1.0, 0.0) else []
    if per_unit is not None and per_unit != 1.0:
        why.append(f"values in {unit} converted to metres (x {per_unit:.6g})")
    elif per_unit is None and crs is not None and crs.is_projected:
        horizontal = crs.axis_info[0]
        if abs(horizontal.unit_conversion_factor - 1.0) > 1e-12:
            why.append(f"the CRS is in {horizontal.unit_name} but the band names no unit: values taken as metres "
                       f"(if they are not, tag the band's unit, e.g. gdal_edit -units ft)")
    per_unit = 1.0 if per_unit is None else per_unit
    return scale * per_unit, offset * per_unit, "; ".join(why)


def in_metres(data: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """``data`` x gain + offset as float32 (unchanged when the pair is (1, 0)); NaN stays NaN."""
    return data if (gain, offset) == (1.0, 0.0) else (data * gain + offset).astype(np.float32)


def elevation_problem(data: np.ndarray) -> str | None:
    """Why ``data`` cannot be elevations in metres (outside :data:`ELEVATION_RANGE_M`), or ``None``."""
    if not np.isfinite(data).any():
        return None
    low, top = float(np.nanmin(data)), float(np.nanmax(data))
    if top > ELEVATION_RANGE_M[1]:
        return (f"elevations reach {top:,.0f}, above any on Earth (8,849 m): stored in feet or decimetres? Tag "
                f"the band's unit (gdal_edit -units ft, or -scale 0.1 for decimetres) or convert the DEM to metres")
    if low < ELEVATION_RANGE_M[0]:
        return (f"elevations reach down to {low:,.0f} m, far below any land (-430 m): undeclared nodata? Declare "
                f"it (gdal_edit -a_nodata {low:g}) or mask those pixels")
    return None


#: largest magnitude a physics input can have, its unit and the likely mistake beyond it (the fastest glaciers
#: flow ~17 km/yr; the most extreme balances are ~ +-15 m w.e./yr)
PHYSICAL_LIMITS = {"vx": (20000.0, "m/yr", "cm/yr or mm/yr?"), "vy": (20000.0, "m/yr", "cm/yr or mm/yr?"),
                   "smb": (25.0, "m w.e./yr", "mm w.e. or kg m-2?")}


def physical_range_problem(name: str, data: np.ndarray) -> str | None:
    """Why a physics input raster (``vx``, ``vy``, ``smb``) cannot hold its quantity in the units expected
    (:data:`PHYSICAL_LIMITS`), or ``None``."""
    if name not in PHYSICAL_LIMITS or not np.isfinite(data).any():
        return None
    limit, unit, guess = PHYSICAL_LIMITS[name]
    worst = float(np.nanmax(np.abs(data)))
    if worst <= limit:
        return None
    return f"{name} values reach {worst:,.0f}, beyond any glacier's ({limit:,.0f} {unit}): {guess} Convert to {unit}"


def check_dem_header(src: "rasterio.io.DatasetReader", path: Any) -> None:
    """Raise :class:`UnitError` naming ``path`` when an open file cannot be a DEM from its header alone (8-bit or
    boolean pixels: an image, a hillshade or a mask); several bands are allowed, band 1 is read, and a log line
    says so."""
    dtype = src.dtypes[0]
    if dtype in ("uint8", "int8", "bool"):
        raise UnitError(f"{path}: {dtype} pixels cannot hold elevations (0-255: an image, a hillshade or a mask?); "
                        f"give the DEM itself")
    if src.count > 1:
        log.warning("%s: %d bands; band 1 is read as the DEM", path, src.count)


def check_elevations(dem: Any, source: str) -> None:
    """Raise :class:`UnitError` naming ``source`` when ``dem`` (a :class:`~glacierbed.data.raster_io.Raster`)
    cannot be elevations in metres."""
    problem = elevation_problem(dem.data)
    if problem is not None:
        raise UnitError(f"{source}: {problem}")


__all__ = ["ELEVATION_RANGE_M", "PHYSICAL_LIMITS", "SRTM_VOID", "check_dem_header", "check_elevations",
           "elevation_problem", "grid_problem", "implied_nodata", "in_metres", "physical_range_problem",
           "stored_to_metres"]
