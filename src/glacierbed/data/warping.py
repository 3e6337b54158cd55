"""Metric grids: choose the CRS to work in, read DEMs onto it, mosaic tiles, resample rasters.

:func:`local_metric_crs` is the one place that decides the working CRS of a raster;
:func:`read_dem` opens (and mosaics) DEM files, warps them there and fills small voids;
auxiliary rasters (SMB, velocity) are brought onto a window's grid by
:func:`raster_on_grid` and :func:`velocity_on_grid`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import rasterio
import rasterio.merge
import rasterio.warp
from pyproj import CRS
from rasterio.enums import Resampling

from glacierbed.core.errors import DataNotFoundError, MissingCRSError, NoOverlapError, OptionError, VoidError
from glacierbed.data.crs import MAX_SCALE_ERROR, crs_problem, utm_crs_for
from glacierbed.data.raster_io import Raster
from glacierbed.data.units import check_dem_header, check_elevations
from glacierbed.data.voids import fill_voids

log = logging.getLogger(__name__)


def local_metric_crs(raster: Raster, max_scale_error: float = MAX_SCALE_ERROR) -> CRS:
    """The CRS to work in: the raster's own if it is a local metric grid over its
    footprint (see :func:`crs_problem`), else the UTM zone of its centre.

    This is the one place that decides; :func:`read_dem`, :func:`check_overlap
    <glacierbed.data.outlines.check_overlap>` and the estimation stage go through it.
    """
    problem = crs_problem(raster.crs, raster.bounds, max_scale_error)
    if problem is None:
        return raster.crs
    if not (raster.crs.is_projected or raster.crs.is_geographic):
        raise MissingCRSError(f"{raster.source or 'raster'}: {problem}; cannot place it on Earth to reproject")
    left, bottom, right, top = rasterio.warp.transform_bounds(raster.crs, "EPSG:4326", *raster.bounds,
                                                              densify_pts=21)
    lon, lat = (left + right) / 2, (bottom + top) / 2
    dst = utm_crs_for(lon, lat)
    too_big = crs_problem(dst, rasterio.warp.transform_bounds(raster.crs, dst, *raster.bounds, densify_pts=21),
                          max_scale_error)
    if too_big is not None:  # wider than one UTM zone serves: equal-area, centred on the DEM
        problem += ("; too large for one UTM zone" if dst == raster.crs else f"; its UTM zone would be too ({too_big})")
        dst = CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m +no_defs")
    label = dst.name if dst.name and dst.name != "unknown" else dst.to_string()
    if raster.crs.is_projected:  # a geographic DEM going to UTM is routine; this is not
        log.warning("%s: %s; working in %s instead", raster.source or "raster", problem, label)
    else:
        log.info("%s: %s; working in %s", raster.source or "raster", problem, label)
    return dst



#: pixel sizes a DEM may be warped to: at most this many times finer than its own (nothing is gained, memory
#: grows with the square), and no coarser than this (glaciers would be a few pixels)
MAX_REFINEMENT, MAX_RESOLUTION_M = 4.0, 1000.0


def check_resolution(resolution: float, dem: Raster, dst_crs: CRS) -> None:
    """Refuse a pixel size (``--resolution``, in ``dst_crs`` units) that cannot work for ``dem``."""
    if dst_crs == dem.crs:
        native = max(dem.res)
    else:
        transform, _, _ = rasterio.warp.calculate_default_transform(dem.crs, dst_crs, dem.shape[1], dem.shape[0],
                                                                    *dem.bounds)
        native = abs(transform.a)
    if not 0 < resolution <= MAX_RESOLUTION_M:
        raise OptionError(f"{dem.source}: a resolution of {resolution:g} m cannot work: give a pixel size above 0 "
                          f"and at most {MAX_RESOLUTION_M:,.0f} m (the DEM's own is {native:.0f} m)")
    if resolution < native / MAX_REFINEMENT:
        raise OptionError(f"{dem.source}: a resolution of {resolution:g} m is {native / resolution:.0f}x finer than "
                          f"the DEM's own {native:.0f} m pixels: no detail is gained and memory grows "
                          f"{(native / resolution) ** 2:,.0f}x; give at least {native / MAX_REFINEMENT:.0f} m")


def read_dem(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    crs: CRS | str | int | None = None,
    resolution: float | None = None,
    resampling: str = "bilinear",
    max_void_px: int = 64,
    max_void_fraction: float | None = None,
) -> Raster:
    """Open one DEM or mosaic several tiles, and bring it to a metric grid.

    Unless ``crs`` is given, the DEM is worked on in its own CRS only if that is a local
    metric grid (projected, in metres, scale factors within 1 % of 1 over the DEM: see
    :func:`local_metric_crs`); geographic DEMs (e.g. SRTM in EPSG:4326), Web Mercator,
    feet-based or far-from-origin grids go to the UTM zone of their centre, with a log line
    saying why. ``resolution`` is in metres (CRS units when ``crs`` is given). Small voids
    are filled, larger ones stay NaN and are reported; ``max_void_fraction`` refuses DEMs
    with more voids.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataNotFoundError("no DEM file given")
    rasters = [Raster.from_file(p) for p in paths]
    for path, raster in zip(paths, rasters):
        with rasterio.open(path) as src:  # readable: from_file opened it
            check_dem_header(src, path)
        check_elevations(raster, raster.source)
    dem = rasters[0] if len(rasters) == 1 else mosaic(rasters)
    if crs is not None:
        dst_crs = CRS.from_user_input(crs)
        if dst_crs != dem.crs:
            bounds = rasterio.warp.transform_bounds(dem.crs, dst_crs, *dem.bounds, densify_pts=21)
        else:
            bounds = dem.bounds
        problem = crs_problem(dst_crs, bounds)
        if problem is not None and dst_crs.is_projected:
            log.warning("%s: requested CRS %s", dem.source, problem)
    else:
        dst_crs = local_metric_crs(dem)
    if resolution is not None:
        check_resolution(resolution, dem, dst_crs)
    if dst_crs != dem.crs or (resolution is not None and not np.isclose(resolution, dem.res[0])) or dem.res[0] != dem.res[1]:
        dem = dem.reproject(dst_crs, resolution, resampling)
    dem = fill_voids(dem, max_void_px)
    if max_void_fraction is not None and dem.voids.n_left_px > max_void_fraction * dem.data.size:
        raise VoidError(f"{', '.join(map(str, paths))}: {dem.voids.n_left_px} nodata pixels "
                        f"({dem.voids.n_left_px / dem.data.size:.1%}) exceed the allowed {max_void_fraction:.1%}")
    if np.all(np.isnan(dem.data)):
        raise VoidError(f"{', '.join(map(str, paths))}: DEM holds no valid elevation")
    return dem


def as_metric_dem(dem: "Raster | str | os.PathLike | Sequence[str | os.PathLike]",
                  resolution: float | None = None) -> Raster:
    """A DEM on a local metric grid: a :class:`Raster` is warped if needed
    (:func:`local_metric_crs`), file path(s) go through :func:`read_dem`."""
    if isinstance(dem, Raster):
        crs = local_metric_crs(dem)
        if crs != dem.crs or (resolution is not None and not np.isclose(resolution, dem.res[0])):
            dem = dem.reproject(crs, resolution)
        return dem
    return read_dem(dem, resolution=resolution)


def mosaic(rasters: Sequence[Raster]) -> Raster:
    """Merge tiles (same CRS after warping to the first one's) into one raster."""
    base = rasters[0]
    memfiles = []
    datasets = []
    try:
        for r in rasters:
            if r.crs != base.crs:
                r = r.reproject(base.crs, base.res[0])
            mf = rasterio.io.MemoryFile()
            ds = mf.open(driver="GTiff", height=r.shape[0], width=r.shape[1], count=1, dtype="float32",
                         crs=r.crs.to_wkt(), transform=r.transform, nodata=np.nan)
            ds.write(r.data, 1)
            memfiles.append(mf)
            datasets.append(ds)
        data, transform = rasterio.merge.merge(datasets, nodata=np.nan, res=base.res)
    finally:
        for ds in datasets:
            ds.close()
        for mf in memfiles:
            mf.close()
    return Raster(data[0].astype(np.float32), transform, base.crs, ";".join(r.source for r in rasters))



def resample_to_grid(src: Raster, grid: Raster, resampling: str = "bilinear") -> Raster:
    """``src`` warped onto exactly ``grid``'s pixels (NaN where it has no data)."""
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    rasterio.warp.reproject(source=src.data, destination=out, src_transform=src.transform, src_crs=src.crs,
                            src_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
                            resampling=Resampling[resampling])
    return grid.with_data(out)


# --- auxiliary rasters (velocity, SMB) on a window's grid ------------------------------
def raster_on_grid(src: Raster | str | Path, grid: Raster) -> np.ndarray:
    """A scalar raster (SMB, dh/dt) bilinearly on ``grid``'s pixels (NaN where it has none)."""
    src = src if isinstance(src, Raster) else Raster.from_file(src)
    return resample_to_grid(src, grid).data.astype(np.float64)


def velocity_on_grid(vx: Raster | str | Path, vy: Raster | str | Path, grid: Raster
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Surface velocity (m/yr) on ``grid`` as array-axis components (x = columns, y = rows).

    The vectors are given in their own CRS (e.g. ITS_LIVE, EPSG:3413): each window pixel
    centre is mapped there, vx/vy sampled bilinearly, and the vector carried back by
    mapping a short step along it, so the direction is right on the window's projection.
    """
    from pyproj import Transformer

    vx = vx if isinstance(vx, Raster) else Raster.from_file(vx)
    vy = vy if isinstance(vy, Raster) else Raster.from_file(vy)
    if not vx.same_grid(vy):
        raise NoOverlapError(f"{vx.source} and {vy.source}: vx and vy are not on the same grid")
    xs, ys = grid.xy()
    xx, yy = np.meshgrid(xs, ys)
    fwd = Transformer.from_crs(grid.crs, vx.crs, always_xy=True)
    back = Transformer.from_crs(vx.crs, grid.crs, always_xy=True)
    sx, sy = fwd.transform(xx.ravel(), yy.ravel())
    ux, uy = vx.sample(np.asarray(sx), np.asarray(sy)), vy.sample(np.asarray(sx), np.asarray(sy))
    speed = np.hypot(ux, uy)
    step = 10.0  # m, along the vector in the source CRS
    with np.errstate(invalid="ignore", divide="ignore"):
        ex, ey = back.transform(sx + step * ux / speed, sy + step * uy / speed)
    dx, dy = (np.asarray(ex) - xx.ravel()), (np.asarray(ey) - yy.ravel())
    norm = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        gx = speed * dx / norm
        gy = speed * dy / norm
    # array axes: columns increase with x if transform.a > 0; rows increase with y if transform.e > 0
    gx = gx * np.sign(grid.transform.a)
    gy = gy * np.sign(grid.transform.e)
    return gx.reshape(grid.shape), gy.reshape(grid.shape)
