"""Thickness maps of an estimate: the region overview and one map per glacier."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from glacierbed.core.figures import hillshade, save_figure
from glacierbed.data.crs import crs_label
from glacierbed.data.rasters import Raster


def _thickness_map(ax, dem: Raster, thickness: np.ndarray, outlines: gpd.GeoDataFrame, vmax: float | None):
    left, bottom, right, top = dem.bounds
    extent = (left / 1e3, right / 1e3, bottom / 1e3, top / 1e3)
    ax.imshow(hillshade(dem.data, dem.res[0]), cmap="gray", extent=extent, interpolation="nearest")
    th = np.ma.masked_invalid(np.where(thickness > 0, thickness, np.nan))
    vmax = vmax or (float(np.nanpercentile(th.compressed(), 99)) if th.count() else 1.0)
    im = ax.imshow(th, cmap="viridis", vmin=0, vmax=max(vmax, 1.0), extent=extent, interpolation="nearest", alpha=0.85)
    g = outlines.to_crs(dem.crs)
    for geom in g.geometry:
        for poly in getattr(geom, "geoms", [geom]):
            x, y = poly.exterior.xy
            ax.plot(np.asarray(x) / 1e3, np.asarray(y) / 1e3, color="k", lw=0.6)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("easting (km)")
    ax.set_ylabel("northing (km)")
    ax.set_aspect("equal")
    return im


def plot_region_overview(dem: Raster, thickness: Raster | str | os.PathLike, outlines: gpd.GeoDataFrame,
                         path: str | os.PathLike, title: str = "Ice thickness") -> Path:
    """One map of the whole DEM: hillshade, all outlines, thickness colours."""
    th = thickness if isinstance(thickness, Raster) else Raster.from_file(thickness)
    fig = Figure(figsize=(8, 7))
    ax = fig.add_subplot()
    im = _thickness_map(ax, dem, th.data, outlines, None)
    fig.colorbar(im, ax=ax, shrink=0.8, label="ice thickness (m)")
    ax.set_title(f"{title}\n{crs_label(dem.crs)}", fontsize=9)
    return save_figure(fig, Path(path))


def plot_glacier_maps(dem: Raster, thickness: Raster | str | os.PathLike, outlines: gpd.GeoDataFrame,
                      table: pd.DataFrame, folder: str | os.PathLike, pad_px: int = 15) -> Path:
    """One PNG per glacier (``<folder>/<rgi_id>.png``): a crop around its outline."""
    th = thickness if isinstance(thickness, Raster) else Raster.from_file(thickness)
    folder = Path(folder)
    g = outlines.to_crs(dem.crs).set_index("rgi_id", drop=False)
    inv = ~dem.transform
    for _, row in table.iterrows():
        if row["rgi_id"] not in g.index or not np.isfinite(row["volume_km3"]):
            continue
        geom = g.loc[[row["rgi_id"]]]
        minx, miny, maxx, maxy = geom.total_bounds
        ca, ra = inv @ (minx, maxy)
        cb, rb = inv @ (maxx, miny)
        r0, c0 = max(int(np.floor(min(ra, rb))) - pad_px, 0), max(int(np.floor(min(ca, cb))) - pad_px, 0)
        r1 = min(int(np.ceil(max(ra, rb))) + pad_px, dem.shape[0])
        c1 = min(int(np.ceil(max(ca, cb))) + pad_px, dem.shape[1])
        win = dem.window(r0, c0, max(r1 - r0, 1), max(c1 - c0, 1))
        twin = th.window(r0, c0, win.shape[0], win.shape[1])
        fig = Figure(figsize=(6, 5))
        ax = fig.add_subplot()
        im = _thickness_map(ax, win, twin.data, geom, None)
        fig.colorbar(im, ax=ax, shrink=0.8, label="ice thickness (m)")
        name = f" {row['name']}" if isinstance(row["name"], str) and row["name"] else ""
        ax.set_title(f"{row['rgi_id']}{name}: {row['volume_km3']:.4f} km³, mean {row['mean_thickness_m']:.0f} m "
                     f"({row['status']})", fontsize=8)
        save_figure(fig, folder / f"{row['rgi_id']}.png", dpi=90)
    return folder


def plot_coarse_overview(thickness: str | os.PathLike, outlines: gpd.GeoDataFrame, path: str | os.PathLike,
                         title: str = "Ice thickness", max_px: int = 1500) -> Path:
    """The overview of a large (tiled) mosaic: its maximum over coarse cells of at most ``max_px`` a side,
    warped in chunks by GDAL (bounded memory), outlines' outlines in grey; no hillshade."""
    import rasterio
    import rasterio.warp
    from rasterio.enums import Resampling

    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(thickness) as src:  # GDAL's default cache: 5 % of RAM
        step = max(1, int(np.ceil(max(src.width, src.height) / max_px)))
        shape = (max(1, src.height // step), max(1, src.width // step))
        transform = src.transform @ src.transform.scale(src.width / shape[1], src.height / shape[0])
        coarse = np.full(shape, np.nan, np.float32)
        rasterio.warp.reproject(rasterio.band(src, 1), coarse, dst_transform=transform, dst_crs=src.crs,
                                dst_nodata=np.nan, resampling=Resampling.max, warp_mem_limit=64)
        crs, (left, bottom, right, top) = src.crs, src.bounds
    fig = Figure(figsize=(9, 5))
    ax = fig.add_subplot()
    outlines.to_crs(crs).geometry.affine_transform([1e-3, 0, 0, 1e-3, 0, 0]).boundary.plot(ax=ax, color="0.6", lw=0.3)
    th = np.ma.masked_invalid(np.where(coarse > 0, coarse, np.nan))
    vmax = float(np.nanpercentile(th.compressed(), 99)) if th.count() else 1.0
    im = ax.imshow(th, cmap="viridis", vmin=0, vmax=max(vmax, 1.0), extent=(left / 1e3, right / 1e3, bottom / 1e3,
                                                                            top / 1e3), interpolation="nearest", zorder=3)
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"ice thickness (m), maximum over {step * src.res[0] / 1e3:.1f} km cells")
    ax.set_xlabel("easting (km)")
    ax.set_ylabel("northing (km)")
    ax.set_aspect("equal")
    ax.set_title(f"{title}\n{crs_label(crs)}", fontsize=9)
    return save_figure(fig, Path(path))
