"""Georeferenced rasters: read, mosaic, reproject, fill voids, write atomically.

A :class:`Raster` is a float32 array with NaN for nodata, plus its affine transform and
CRS, so the grid travels with the pixels (as in geoutils' ``Raster``).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import rasterio
import rasterio.merge
import rasterio.warp
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine, from_origin
from scipy import ndimage

from glacierbed.core.atomic import replacing
from glacierbed.core.errors import CorruptFileError, DataNotFoundError, MissingCRSError, NoOverlapError, VoidError

log = logging.getLogger(__name__)

#: nodata value written to float32 GeoTIFFs
NODATA = -9999.0
#: void value of int16 SRTM/ASTER DEMs, honoured even when a file declares no nodata
SRTM_VOID = -32768


@dataclass
class VoidReport:
    """What :func:`fill_voids` found and did."""

    n_void_px: int = 0
    n_voids: int = 0
    largest_void_px: int = 0
    n_filled_px: int = 0
    n_left_px: int = 0

    @property
    def clean(self) -> bool:
        return self.n_void_px == 0


@dataclass
class Raster:
    """A single-band raster: ``data`` (float32, NaN = nodata), ``transform``, ``crs``."""

    data: np.ndarray
    transform: Affine
    crs: CRS
    source: str = ""
    voids: VoidReport = field(default_factory=VoidReport)

    # --- construction -------------------------------------------------------------
    @classmethod
    def from_array(cls, data: np.ndarray, transform: Affine, crs: CRS | str | int, source: str = "") -> "Raster":
        return cls(np.asarray(data, dtype=np.float32), transform, CRS.from_user_input(crs), source)

    @classmethod
    def from_file(cls, path: str | os.PathLike, band: int = 1) -> "Raster":
        """Read one band of any GDAL raster; nodata (and non-finite values) become NaN."""
        path = Path(path)
        if not path.exists():
            raise DataNotFoundError(f"{path}: file not found")
        try:
            with rasterio.open(path) as src:
                if src.crs is None:
                    raise MissingCRSError(f"{path}: raster has no coordinate reference system (CRS)")
                arr = src.read(band, masked=True)
                data = np.ma.filled(arr.astype(np.float32), np.nan)
                if src.nodata is None and src.dtypes[band - 1] == "int16":
                    # SRTM/ASTER convention: -32768 marks voids even when no nodata is declared
                    data[np.ma.getdata(arr) == SRTM_VOID] = np.nan
                transform, crs = src.transform, CRS.from_user_input(src.crs.to_wkt())
        except RasterioIOError as exc:
            raise CorruptFileError(f"{path}: cannot be read as a raster ({exc})") from exc
        data[~np.isfinite(data)] = np.nan
        return cls(data, transform, crs, str(path))

    # --- grid properties ----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape  # type: ignore[return-value]

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y), positive, in CRS units."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def pixel_area_m2(self) -> float:
        """Ground area of a pixel; refuses grids where that is not pixel size squared
        (geographic, not in metres, or areas distorted by more than 1 %: :func:`crs_problem`)."""
        problem = _crs_problem_cached(self.crs.to_wkt(), tuple(round(b, 3) for b in self.bounds), ("areal",))
        if problem is not None:
            raise MissingCRSError(f"{self.source or 'raster'}: pixel area needs a local metric CRS: {problem} "
                                  f"(reproject with glacierbed.data.rasters.local_metric_crs)")
        return self.res[0] * self.res[1]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top)."""
        return rasterio.transform.array_bounds(self.shape[0], self.shape[1], self.transform)  # type: ignore[return-value]

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """1-D x (columns) and y (rows) coordinates of pixel centres."""
        ny, nx = self.shape
        x = self.transform.c + (np.arange(nx) + 0.5) * self.transform.a
        y = self.transform.f + (np.arange(ny) + 0.5) * self.transform.e
        return x, y

    def same_grid(self, other: "Raster") -> bool:
        return self.shape == other.shape and self.transform.almost_equals(other.transform) and self.crs == other.crs

    def with_data(self, data: np.ndarray) -> "Raster":
        """A raster on the same grid with other pixels."""
        if data.shape != self.shape:
            raise ValueError(f"shape {data.shape} does not match grid {self.shape}")
        return replace(self, data=np.asarray(data, dtype=np.float32), voids=VoidReport())

    # --- operations ---------------------------------------------------------------
    def reproject(
        self,
        crs: CRS | str | int | None = None,
        resolution: float | None = None,
        resampling: str = "bilinear",
        bounds: Sequence[float] | None = None,
    ) -> "Raster":
        """Warp to ``crs`` at ``resolution`` (CRS units); NaN nodata is respected."""
        dst_crs = CRS.from_user_input(crs) if crs is not None else self.crs
        left, bottom, right, top = self.bounds
        if bounds is None:
            bounds = rasterio.warp.transform_bounds(self.crs, dst_crs, left, bottom, right, top, densify_pts=21)
        b = list(bounds)
        if resolution is None:
            if dst_crs == self.crs:
                resolution = self.res[0]
            else:
                _, w, h = rasterio.warp.calculate_default_transform(self.crs, dst_crs, self.shape[1], self.shape[0], left, bottom, right, top)
                resolution = max((b[2] - b[0]) / w, (b[3] - b[1]) / h)
        # snap the grid to whole multiples of the resolution so tiles line up
        x0 = np.floor(b[0] / resolution) * resolution
        y1 = np.ceil(b[3] / resolution) * resolution
        nx = max(1, int(np.ceil((b[2] - x0) / resolution)))
        ny = max(1, int(np.ceil((y1 - b[1]) / resolution)))
        dst_transform = from_origin(x0, y1, resolution, resolution)
        out = np.full((ny, nx), np.nan, dtype=np.float32)
        rasterio.warp.reproject(
            source=self.data,
            destination=out,
            src_transform=self.transform,
            src_crs=self.crs,
            src_nodata=np.nan,
            dst_transform=dst_transform,
            dst_crs=dst_crs,
            dst_nodata=np.nan,
            resampling=Resampling[resampling],
        )
        return Raster(out, dst_transform, dst_crs, self.source)

    def window(self, row0: int, col0: int, nrows: int, ncols: int, fill: float = np.nan) -> "Raster":
        """A sub-grid starting at (row0, col0); parts outside the raster are ``fill``."""
        out = np.full((nrows, ncols), fill, dtype=np.float32)
        r0, c0 = max(row0, 0), max(col0, 0)
        r1, c1 = min(row0 + nrows, self.shape[0]), min(col0 + ncols, self.shape[1])
        if r1 > r0 and c1 > c0:
            out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = self.data[r0:r1, c0:c1]
        transform = self.transform @ Affine.translation(col0, row0)
        return Raster(out, transform, self.crs, self.source)

    def sample(self, x: np.ndarray, y: np.ndarray, order: int = 1) -> np.ndarray:
        """Values at map coordinates (in this raster's CRS); NaN outside or on nodata."""
        inv = ~self.transform
        cols, rows = inv @ (np.asarray(x, float), np.asarray(y, float))
        cols, rows = np.asarray(cols) - 0.5, np.asarray(rows) - 0.5
        data = np.nan_to_num(self.data, nan=0.0)
        valid = np.isfinite(self.data).astype(np.float32)
        vals = ndimage.map_coordinates(data, [rows, cols], order=order, mode="nearest")
        ok = ndimage.map_coordinates(valid, [rows, cols], order=1, mode="constant", cval=0.0)
        inside = (rows >= -0.5) & (rows <= self.shape[0] - 0.5) & (cols >= -0.5) & (cols <= self.shape[1] - 0.5)
        return np.where(inside & (ok > 0.999), vals, np.nan).astype(np.float64)

    def to_file(self, path: str | os.PathLike, nodata: float = NODATA) -> Path:
        """Write a float32 GeoTIFF atomically (``*.tmp`` then rename), NaN -> ``nodata``."""
        path = Path(path)
        data = np.where(np.isfinite(self.data), self.data, nodata).astype(np.float32)
        profile = dict(
            driver="GTiff", height=self.shape[0], width=self.shape[1], count=1, dtype="float32",
            crs=self.crs.to_wkt(), transform=self.transform, nodata=nodata, compress="deflate",
        )
        with replacing(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
        return path


@functools.lru_cache(maxsize=64)
def _crs_problem_cached(wkt: str, bounds: tuple[float, ...], scales: tuple[str, ...]) -> str | None:
    return crs_problem(CRS.from_wkt(wkt), bounds, scales=scales)


def read_window(path: str | os.PathLike, bounds: Sequence[float]) -> Raster:
    """The pixels of a single-band raster file covering ``bounds`` (NaN outside it), read lazily."""
    import rasterio.windows

    with rasterio.open(path) as src:
        win = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        win = win.round_offsets(op="floor").round_lengths(op="ceil")
        data = src.read(1, window=win, boundless=True, fill_value=src.nodata, masked=True)
        return Raster.from_array(np.ma.filled(data.astype(np.float32), np.nan), src.window_transform(win),
                                 src.crs.to_wkt(), str(path))


def sample_layers(src: Raster, stack: np.ndarray, dst: Raster, where: np.ndarray) -> np.ndarray:
    """Bilinear values of each layer of ``stack`` (on ``src``'s grid) at ``dst`` pixels ``where``."""
    x, y = dst.xy()
    rr, cc = np.nonzero(where)
    out = np.full((stack.shape[0],) + dst.shape, np.nan, np.float32)
    for k in range(stack.shape[0]):
        out[k][rr, cc] = src.with_data(stack[k]).sample(x[cc], y[rr])
    return out


def checked_rasters(named: dict[str, str | os.PathLike]) -> dict[str, str]:
    """Absolute paths of readable rasters by name; a missing or unreadable one stops with its name and file."""
    out = {}
    for name, value in named.items():
        path = Path(value)
        if not path.exists():
            raise DataNotFoundError(f"{path}: {name} raster not found")
        Raster.from_file(path)  # fails early with a clear message if unreadable
        out[name] = str(path.resolve())
    return out


def fill_nearest(a: np.ndarray) -> np.ndarray:
    """NaNs replaced by the nearest finite value (for inputs that cannot hold NaN)."""
    bad = ~np.isfinite(a)
    if not bad.any():
        return a
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return a[tuple(idx)]


def resample_to_grid(src: Raster, grid: Raster, resampling: str = "bilinear") -> Raster:
    """``src`` warped onto exactly ``grid``'s pixels (NaN where it has no data)."""
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    rasterio.warp.reproject(source=src.data, destination=out, src_transform=src.transform, src_crs=src.crs,
                            src_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
                            resampling=Resampling[resampling])
    return grid.with_data(out)


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


def fill_voids(raster: Raster, max_void_px: int = 64) -> Raster:
    """Fill nodata voids of up to ``max_void_px`` pixels by harmonic interpolation.

    Larger voids are left as NaN and reported in ``raster.voids``; nodata connected to the
    raster's edge is treated as outside the footprint and neither filled nor reported.
    """
    from glacierbed.core.fill import harmonic_fill  # local import: fill depends on nothing of ours

    void = ~np.isfinite(raster.data)
    labels, n = ndimage.label(void)
    # nodata touching the raster's edge is outside the footprint (e.g. after warping), not a void
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    labels[np.isin(labels, edge[edge > 0])] = 0
    void = labels > 0
    report = VoidReport(n_void_px=int(void.sum()), n_voids=int(n - (edge > 0).sum()))
    if report.n_voids == 0:
        return replace(raster, voids=report)
    idx = np.setdiff1d(np.arange(1, n + 1), edge)
    sizes = ndimage.sum(void, labels, index=idx).astype(int)
    report.largest_void_px = int(sizes.max())
    small = np.isin(labels, idx[sizes <= max_void_px])
    data = raster.data
    if small.any():
        # harmonic_fill would also fill every other NaN (big voids, outside the footprint):
        # give those a dummy value first (a small void has no NaN 4-neighbour, and only
        # 4-neighbours enter the stencil) and keep them NaN in the result
        other_nan = ~np.isfinite(raster.data) & ~small
        filled = harmonic_fill(np.where(other_nan, 0.0, raster.data), small)
        data = np.where(small, filled, raster.data)
    report.n_filled_px = int(small.sum())
    report.n_left_px = report.n_void_px - report.n_filled_px
    if report.n_left_px:
        log.warning("%s: %d nodata pixels in %d voids left unfilled (largest %d px)",
                    raster.source or "DEM", report.n_left_px, int((sizes > max_void_px).sum()), report.largest_void_px)
    return replace(raster, data=data.astype(np.float32), voids=report)


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
