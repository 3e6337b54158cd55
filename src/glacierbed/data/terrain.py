"""Terrain sources: DEMs (or sets of tiles) with the glaciers on them, on a working grid.

Shared by the inpainting patches and the simulated-glacier set, which both sample windows of
real terrain and must avoid today's glaciers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glacierbed.data.outlines import rasterize_mask, read_outlines
from glacierbed.data.rasters import Raster, read_dem


@dataclass(frozen=True)
class PatchSource:
    """One DEM (or set of tiles) with the glaciers to avoid.

    Paths are absolute or relative to the data dir (``GLACIERBED_DATA``); ``outlines`` is a
    vector file, ``glacier_mask`` a raster (1 = glacier) for sources without outlines.
    """

    name: str
    dem: tuple[str, ...]
    outlines: str | None = None
    glacier_mask: str | None = None
    resolutions_m: tuple[float, ...] = (100.0,)
    max_patches: int | None = None


def resolve(path: str) -> Path:
    """Absolute path as given, or a data-dir relative path through the registry."""
    p = Path(path)
    if p.is_absolute():
        return p
    from glacierbed.data.registry import get_file

    return get_file(path)


def source_grids(src: PatchSource, resolution: float) -> tuple[Raster, np.ndarray]:
    """A source's DEM at ``resolution`` and its glacier mask (outlines and/or mask raster)."""
    dem = read_dem([resolve(p) for p in src.dem], resolution=resolution)
    glacier = np.zeros(dem.shape, dtype=bool)
    if src.outlines:
        glacier |= rasterize_mask(read_outlines(resolve(src.outlines)), dem, all_touched=True)
    if src.glacier_mask:
        m = Raster.from_file(resolve(src.glacier_mask)).reproject(dem.crs, resolution, "max", bounds=dem.bounds)
        m = m.window(*_offset(m, dem), *dem.shape, fill=0)
        glacier |= np.nan_to_num(m.data, nan=0) >= 0.5
    return dem, glacier


def _offset(src: Raster, dst: Raster) -> tuple[int, int]:
    """Row/col of ``dst``'s origin in ``src``'s grid (same CRS and resolution)."""
    col, row = ~src.transform @ (dst.transform.c, dst.transform.f)
    return int(round(row)), int(round(col))
