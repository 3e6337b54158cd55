"""Is a CRS a local metric grid over an area? Scale factors, units, the UTM zone of a point.

:func:`crs_problem` says why a CRS is not fit to measure areas and slopes in (geographic,
not in metres, or distorted by more than :data:`MAX_SCALE_ERROR`); :func:`utm_crs_for`
gives the UTM zone (or a local equal-area projection) to reproject to. The decision for a
raster is :func:`glacierbed.data.warping.local_metric_crs`.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from pyproj import CRS

#: metres per unit of the length units a raster's values may be stored in (GDAL band unit tags, lower case)
METRES_PER_UNIT: dict[str, float] = {
    **dict.fromkeys(("m", "metre", "meter", "metres", "meters"), 1.0),
    **dict.fromkeys(("ft", "foot", "feet", "international foot"), 0.3048),
    **dict.fromkeys(("us-ft", "ftus", "us survey foot", "us_survey_foot"), 1200 / 3937),
    **dict.fromkeys(("dm", "decimetre", "decimeter", "decimetres", "decimeters"), 0.1),
    **dict.fromkeys(("cm", "centimetre", "centimeter", "centimetres", "centimeters"), 0.01),
    **dict.fromkeys(("km", "kilometre", "kilometer", "kilometres", "kilometers"), 1000.0),
}

#: largest accepted departure of a projection's scale factors from 1 (areal, meridional and
#: parallel) at the raster's centre and corners; beyond it areas and slopes are wrong
MAX_SCALE_ERROR = 0.01


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS containing a point (as ``GeoDataFrame.estimate_utm_crs``:
    pyproj's CRS database is asked which zone covers it).

    Beyond the UTM band (north of 84° N, south of 80° S) a Lambert azimuthal equal-area
    projection centred on the point is returned (metres, scale ~1 near the centre).
    """
    return CRS.from_wkt(_utm_wkt(round(float(lon), 6), round(float(lat), 6)))


@functools.lru_cache(maxsize=256)
def _utm_wkt(lon: float, lat: float) -> str:  # the database query takes ~50 ms: once per point
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    aoi = AreaOfInterest(west_lon_degree=lon, south_lat_degree=lat, east_lon_degree=lon, north_lat_degree=lat)
    zones = query_utm_crs_info(datum_name="WGS 84", area_of_interest=aoi)
    if zones:
        return CRS.from_authority(zones[0].auth_name, zones[0].code).to_wkt()
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m +no_defs").to_wkt()


def _lonlat_points(crs: CRS, bounds: Sequence[float]) -> list[tuple[float, float]]:
    """Centre and corners of ``bounds`` (in ``crs``) as WGS 84 lon/lat."""
    from pyproj import Transformer

    left, bottom, right, top = bounds
    xs = [(left + right) / 2, left, right, left, right]
    ys = [(bottom + top) / 2, bottom, bottom, top, top]
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    return [(float(a), float(b)) for a, b in zip(lon, lat) if np.isfinite(a) and np.isfinite(b)]


def vertical_unit(crs: CRS) -> tuple[str, float] | None:
    """Name and metres per unit of a CRS's vertical axis (a compound or 3-D CRS), or ``None``."""
    up = [a for a in crs.axis_info if a.direction == "up"]
    return (up[0].unit_name, float(up[0].unit_conversion_factor)) if up else None


def degrees_problem(crs: CRS, bounds: Sequence[float]) -> str | None:
    """Why ``bounds`` cannot be in ``crs`` when it is geographic (coordinates beyond +-180 / +-90: projected
    metres under a WGS 84 label, a wrong ``.prj``), or ``None``."""
    if not crs.is_geographic:
        return None
    west, south, east, north = (float(v) for v in bounds)
    if west >= -181 and east <= 361 and south >= -91 and north <= 91:  # a degree of slack: half-pixel edges
        return None
    return (f"coordinates ({west:.0f}, {south:.0f}, {east:.0f}, {north:.0f}) cannot be degrees, though the CRS "
            f"({crs_label(crs)}) is geographic: a wrong CRS label? Set the right one (gdal_edit -a_srs, "
            f"ogr2ogr -a_srs EPSG:...)")


def crs_label(crs: CRS | str) -> str:
    """A short name of a CRS for logs and figure titles: ``EPSG:32632`` when it is one, else its
    name, else its PROJ string (a local Transverse Mercator has no code; its WKT is a page long)."""
    import warnings

    crs = CRS.from_user_input(crs)
    code = crs.to_epsg(min_confidence=90)
    if code is not None:
        return f"EPSG:{code}"
    if crs.name and crs.name.lower() not in ("unknown", "unnamed", "undefined"):
        return crs.name
    with warnings.catch_warnings():  # "lossy conversion": a label, not a definition
        warnings.simplefilter("ignore")
        return crs.to_proj4().replace(" +no_defs", "").replace(" +type=crs", "").strip()


def crs_problem(crs: CRS, bounds: Sequence[float], max_scale_error: float = MAX_SCALE_ERROR,
                scales: Sequence[str] = ("areal", "meridional", "parallel")) -> str | None:
    """Why ``crs`` is not a local metric grid over ``bounds`` (given in ``crs``), or ``None``.

    A local metric grid is projected, in metres, and its scale factors (pyproj's
    ``Proj.get_factors``: areal, meridional and parallel scale) are within
    ``max_scale_error`` of 1 at the centre and corners of ``bounds``; then pixel size x
    pixel size is the true ground area. ``scales`` limits the check (e.g. to "areal" for
    areas only). Web Mercator at 47° N (areal scale ~2.1), US state
    planes in feet or a national grid used far from its origin are not.
    """
    name = crs.name if crs.name and crs.name != "unknown" else crs.to_string()
    if not crs.is_projected:
        kind = "geographic (degrees)" if crs.is_geographic else "neither geographic nor projected"
        return f"{name} is {kind}"
    units = {(a.unit_name, float(a.unit_conversion_factor)) for a in crs.axis_info[:2]}
    if any(abs(factor - 1.0) > 1e-12 for _, factor in units):
        return f"{name} is in {', '.join(sorted(u for u, _ in units))}, not metres"
    try:
        from pyproj import Proj

        proj = Proj(crs.to_2d() if hasattr(crs, "to_2d") else crs)
        worst, where = 0.0, ""
        for lon, lat in _lonlat_points(crs, bounds):
            f = proj.get_factors(lon, lat)
            for what, v in (("areal", f.areal_scale), ("meridional", f.meridional_scale),
                            ("parallel", f.parallel_scale)):
                if what not in scales:
                    continue
                if not np.isfinite(v):
                    return f"{name}: scale factors undefined at ({lon:.2f}, {lat:.2f})"
                if abs(v - 1.0) > worst:
                    worst, where = abs(v - 1.0), f"{what} scale {v:.3f} at ({lon:.2f}° E, {lat:.2f}° N)"
    except Exception as exc:  # noqa: BLE001 - pyproj raises several types; unknown = not trusted
        return f"{name}: scale factors cannot be computed ({exc})"
    if worst > max_scale_error:
        return f"{name} is distorted here ({where}; more than {max_scale_error:.0%} off 1)"
    return None



@functools.lru_cache(maxsize=64)
def crs_problem_cached(wkt: str, bounds: tuple[float, ...], scales: tuple[str, ...]) -> str | None:
    """:func:`crs_problem` memoised on the CRS's WKT, rounded bounds and the scales checked."""
    return crs_problem(CRS.from_wkt(wkt), bounds, scales=scales)

