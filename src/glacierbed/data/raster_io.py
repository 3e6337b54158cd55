"""The :class:`Raster`: a georeferenced single-band grid; read, sample, cut windows, write.

A :class:`Raster` is a float32 array with NaN for nodata, plus its affine transform and
CRS, so the grid travels with the pixels (as in geoutils' ``Raster``). Files are read with
rasterio (nodata and SRTM voids become NaN) and written as GeoTIFF atomically.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
import rasterio.warp
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine, from_origin
from scipy import ndimage

from glacierbed.core.atomic import replacing
from glacierbed.core.errors import CorruptFileError, DataNotFoundError, MissingCRSError
from glacierbed.data.crs import crs_problem_cached
from glacierbed.data.units import grid_problem, implied_nodata, in_metres, stored_to_metres

log = logging.getLogger(__name__)

#: nodata value written to float32 GeoTIFFs
NODATA = -9999.0


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
        """Read one band of any GDAL raster; nodata (and non-finite values) become NaN, values in metres
        where the file says they are stored otherwise (:func:`stored_to_metres`)."""
        path = Path(path)
        if not path.exists():
            raise DataNotFoundError(f"{path}: file not found")
        try:
            with rasterio.open(path) as src:
                if (problem := grid_problem(src)) is not None:
                    raise MissingCRSError(f"{path}: {problem}")
                arr = src.read(band, masked=True)
                data = np.ma.filled(arr.astype(np.float32), np.nan)
                void = None if src.nodata is not None else implied_nodata(src, band)  # declared: masked already
                if void is not None:
                    data[np.ma.getdata(arr) == void] = np.nan
                gain, offset, why = stored_to_metres(src, band)
                if why:
                    log.warning("%s: %s", path, why)
                data = in_metres(data, gain, offset)
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
        (geographic, not in metres, or areas distorted by more than 1 %:
        :func:`~glacierbed.data.crs.crs_problem`)."""
        problem = crs_problem_cached(self.crs.to_wkt(), tuple(round(b, 3) for b in self.bounds), ("areal",))
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



def read_window(path: str | os.PathLike, bounds: Sequence[float]) -> Raster:
    """The pixels of a single-band raster file covering ``bounds`` (NaN outside it), read lazily."""
    import rasterio.windows

    with rasterio.open(path) as src:
        win = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        win = win.round_offsets(op="floor").round_lengths(op="ceil")
        data = src.read(1, window=win, boundless=True, fill_value=src.nodata, masked=True)
        gain, offset, _ = stored_to_metres(src)
        return Raster.from_array(in_metres(np.ma.filled(data.astype(np.float32), np.nan), gain, offset),
                                 src.window_transform(win),
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
