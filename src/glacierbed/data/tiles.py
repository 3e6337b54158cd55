"""DEM tiles: a light index of many DEM files (any CRSs) and lazy per-glacier windows.

``--dem`` may be a folder of tiles, several files or a GDAL VRT. Nothing region-wide is
read: :func:`build_tile_index` opens each tile's header only and keeps its path, CRS,
resolution, native bounds and its footprint in EPSG:4326 (a GeoDataFrame with a spatial
index). :func:`work_grid` picks a glacier's working grid (the CRS and pixel size of the
tile covering most of it, when that CRS is a local metric grid, else the glacier's UTM
zone), and :func:`read_tiles_window` reads one window on that grid from only the tiles that
meet it: the tile on the same grid by a rasterio window (its pixels unchanged), the others
through a :class:`rasterio.vrt.WarpedVRT` onto the window's grid (bilinear); the first
valid value wins.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.warp
import rasterio.windows
import shapely
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import from_origin
from rasterio.vrt import WarpedVRT

from glacierbed.core.errors import CorruptFileError, DataNotFoundError, MissingCRSError
from glacierbed.data.crs import crs_problem, utm_crs_for
from glacierbed.data.raster_io import Raster
from glacierbed.data.units import (check_dem_header, check_elevations, grid_problem, implied_nodata, in_metres,
                                   stored_to_metres)

log = logging.getLogger(__name__)

#: file name endings taken from a folder of tiles
TILE_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".hgt", ".asc")
#: CRS of the index footprints
INDEX_CRS = "EPSG:4326"


def dem_paths(dem: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The DEM files given as a file, a folder of tiles or a list of both."""
    items = [dem] if isinstance(dem, (str, os.PathLike)) else list(dem)
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in TILE_SUFFIXES)
            if not found:
                raise DataNotFoundError(f"{item}: no DEM tiles ({', '.join(TILE_SUFFIXES)}) in this folder")
            paths.extend(found)
        elif not item.exists():
            raise DataNotFoundError(f"{item}: file not found")
        else:
            paths.append(item)
    if not paths:
        raise DataNotFoundError("no DEM file given")
    return paths


def is_tiled(dem: object) -> bool:
    """Whether ``dem`` goes the tiled route: a folder, several files or a VRT (not one DEM file)."""
    if isinstance(dem, (str, os.PathLike)):
        return Path(dem).is_dir() or Path(dem).suffix.lower() == ".vrt"
    if isinstance(dem, (list, tuple)):
        return len(dem) > 1 or (len(dem) == 1 and is_tiled(dem[0]))
    return False


def _tile_row(path: Path) -> dict:
    """One tile's header: CRS, pixel size, native bounds (no pixels read)."""
    try:
        with rasterio.open(path) as src:
            if (problem := grid_problem(src)) is not None:
                raise MissingCRSError(f"{path}: {problem}")
            check_dem_header(src, path)
            why = stored_to_metres(src)[2]
            if why:
                log.warning("%s: %s", path, why)
            return dict(path=str(path.resolve()), crs=src.crs.to_wkt(), res=float(abs(src.transform.a)),
                        res_y=float(abs(src.transform.e)), left=src.bounds.left, bottom=src.bounds.bottom,
                        right=src.bounds.right, top=src.bounds.top, width=src.width, height=src.height)
    except RasterioIOError as exc:
        raise CorruptFileError(f"{path}: cannot be read as a raster ({exc})") from exc


def build_tile_index(paths: Sequence[str | os.PathLike]) -> gpd.GeoDataFrame:
    """One row per tile: ``path, crs`` (WKT), ``res``, native ``left..top``, ``width, height``
    and its footprint in EPSG:4326 (``geometry``, the densified native box)."""
    rows = [_tile_row(Path(p)) for p in paths]
    index = gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries([None] * len(rows)), crs=INDEX_CRS)
    for wkt, idx in index.groupby("crs").groups.items():
        sub = index.loc[idx]
        boxes = shapely.segmentize(shapely.box(sub["left"], sub["bottom"], sub["right"], sub["top"]),
                                   np.maximum(sub["right"] - sub["left"], sub["top"] - sub["bottom"]) / 8)
        index.loc[idx, "geometry"] = gpd.GeoSeries(boxes, index=idx, crs=CRS.from_wkt(wkt)).to_crs(INDEX_CRS)
    return index


@dataclass(frozen=True)
class WorkGrid:
    """A glacier's working grid: CRS (WKT), pixel size and the grid origin (x0, y0) it snaps to."""

    crs: str
    res: float
    x0: float
    y0: float

    def snap(self, bounds: Sequence[float]) -> tuple[float, float, float, float]:
        """``bounds`` on whole pixels of this grid, by the rule of a rasterio window read
        (:func:`~glacierbed.data.raster_io.read_window`: offsets floored, lengths ceiled)."""
        r = self.res
        left = self.x0 + np.floor((bounds[0] - self.x0) / r) * r
        top = self.y0 - np.floor((self.y0 - bounds[3]) / r) * r
        width, height = np.ceil((bounds[2] - bounds[0]) / r), np.ceil((bounds[3] - bounds[1]) / r)
        return float(left), float(top - height * r), float(left + width * r), float(top)


def primary_tile(index: gpd.GeoDataFrame, outline_ll: shapely.Geometry) -> int | None:
    """Row of the tile covering most of an outline (EPSG:4326), or None when none meets it."""
    hits = index.sindex.query(outline_ll, predicate="intersects")
    if len(hits) == 0:
        return None
    shares = shapely.area(shapely.intersection(index.geometry.values[hits], outline_ll))
    return int(hits[int(np.argmax(shares))])


def work_grid(tile: "gpd.GeoSeries | dict", outline_ll: shapely.Geometry) -> WorkGrid:
    """The glacier's grid: its primary tile's (when that CRS is a local metric grid there),
    else the UTM zone of the glacier at about the tile's pixel size."""
    crs = CRS.from_wkt(tile["crs"])
    bounds = (tile["left"], tile["bottom"], tile["right"], tile["top"])
    if crs_problem(crs, bounds) is None and np.isclose(tile["res"], tile["res_y"]):
        return WorkGrid(tile["crs"], float(tile["res"]), float(tile["left"]), float(tile["top"]))
    c = outline_ll.centroid
    dst = utm_crs_for(c.x, c.y)
    _, w, h = rasterio.warp.calculate_default_transform(crs, dst, int(tile["width"]), int(tile["height"]), *bounds)
    b = rasterio.warp.transform_bounds(crs, dst, *bounds, densify_pts=21)
    res = float(max((b[2] - b[0]) / w, (b[3] - b[1]) / h))
    return WorkGrid(dst.to_wkt(), res, 0.0, 0.0)


def tiles_meeting(index: gpd.GeoDataFrame, grid: WorkGrid, box: Sequence[float]) -> list[int]:
    """Rows of the tiles meeting ``box`` (in the grid's CRS)."""
    ll = shapely.box(*rasterio.warp.transform_bounds(CRS.from_wkt(grid.crs), INDEX_CRS, *box, densify_pts=21))
    return [int(i) for i in index.sindex.query(ll, predicate="intersects")]


def tiles_extent(index: gpd.GeoDataFrame, rows: Sequence[int], crs_wkt: str) -> tuple[float, float, float, float]:
    """Bounding box, in ``crs_wkt``, of the tiles ``rows``."""
    crs = CRS.from_wkt(crs_wkt)
    boxes = []
    for i in rows:
        t = index.iloc[i]
        b = (t["left"], t["bottom"], t["right"], t["top"])
        boxes.append(b if CRS.from_wkt(t["crs"]) == crs else
                     rasterio.warp.transform_bounds(CRS.from_wkt(t["crs"]), crs, *b, densify_pts=21))
    a = np.asarray(boxes)
    return float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 2].max()), float(a[:, 3].max())


def _on_grid(src: rasterio.DatasetReader, crs: CRS, transform: rasterio.Affine) -> bool:
    """Whether ``src`` is on the grid ``transform`` (same CRS and pixel size, whole-pixel offset)."""
    if CRS.from_wkt(src.crs.to_wkt()) != crs or not np.allclose(
            (src.transform.a, src.transform.e), (transform.a, transform.e), rtol=1e-9):
        return False
    col, row = ~src.transform @ (transform.c, transform.f)
    return abs(col - round(col)) < 1e-3 and abs(row - round(row)) < 1e-3


def _warped(path: str, crs: CRS, transform: rasterio.Affine, shape: tuple[int, int]) -> np.ndarray:
    """One tile's pixels on the window's grid (NaN where it has none)."""
    with rasterio.open(path) as src, WarpedVRT(src, crs=crs, transform=transform, width=shape[1], height=shape[0],
                                              resampling=Resampling.bilinear, src_nodata=implied_nodata(src),
                                              nodata=np.nan, dtype="float32") as vrt:
        return vrt.read(1).astype(np.float32)


def _on_grid_read(src: rasterio.DatasetReader, transform: rasterio.Affine, shape: tuple[int, int]) -> np.ndarray:
    """A tile's pixels on a window of its own grid (boundless; NaN outside it or on nodata)."""
    col, row = ~src.transform @ (transform.c, transform.f)
    win = rasterio.windows.Window(int(round(col)), int(round(row)), shape[1], shape[0])
    nodata = implied_nodata(src)
    data = src.read(1, window=win, boundless=True, fill_value=nodata, masked=True)
    out = np.ma.filled(data.astype(np.float32), np.nan)
    out[~np.isfinite(out)] = np.nan
    if nodata is not None:  # int16 tiles with no declared nodata: SRTM's -32768 voids
        out[np.ma.getdata(data) == nodata] = np.nan
    return out


def read_tiles_window(paths: Sequence[str], crs_wkt: str, bounds: Sequence[float], res: float) -> Raster:
    """The window ``bounds`` (on whole pixels of size ``res`` in ``crs_wkt``) from the tiles ``paths``.

    A tile on the window's grid is read by a window (pixels unchanged); others are warped
    (bilinear) by a WarpedVRT. Earlier tiles win where tiles overlap; NaN where none has data.
    """
    left, bottom, right, top = bounds
    shape = (max(1, int(round((top - bottom) / res))), max(1, int(round((right - left) / res))))
    crs, transform = CRS.from_wkt(crs_wkt), from_origin(left, top, res, res)
    out = np.full(shape, np.nan, np.float32)
    for path in paths:
        with rasterio.open(path) as src:
            part = _on_grid_read(src, transform, shape) if _on_grid(src, crs, transform) else None
            gain, offset, _ = stored_to_metres(src)
        part = in_metres(_warped(path, crs, transform, shape) if part is None else part, gain, offset)
        fill = ~np.isfinite(out) & np.isfinite(part)
        out[fill] = part[fill]
        if np.isfinite(out).all():
            break
    more = f" (+{len(paths) - 1} tiles)" if len(paths) > 1 else ""
    window = Raster(out, transform, crs, f"{Path(paths[0]).name}{more}" if paths else "no tile")
    check_elevations(window, ", ".join(map(str, paths)))
    return window


__all__ = ["TILE_SUFFIXES", "WorkGrid", "build_tile_index", "dem_paths", "is_tiled", "primary_tile",
           "read_tiles_window", "tiles_extent", "tiles_meeting", "work_grid"]
