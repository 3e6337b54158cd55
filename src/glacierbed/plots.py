"""Figures only: map views of estimated ice thickness (hillshade, outlines, colours).

Uses :class:`matplotlib.figure.Figure` directly (no pyplot state), so it is safe in worker
processes and tests; PNGs are written atomically.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.colors import LightSource
from matplotlib.figure import Figure

from glacierbed.atomic import write_bytes
from glacierbed.data.rasters import Raster

log = logging.getLogger(__name__)

# --- estimate maps (owner: estimate stage) ---------------------------------------------


def _save(fig: Figure, path: Path, dpi: int = 110) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())


def hillshade(dem: np.ndarray, res_m: float) -> np.ndarray:
    """Hillshade in [0, 1] (light from the north-west, 45 degrees), NaN kept as NaN."""
    filled = np.where(np.isfinite(dem), dem, np.nanmean(dem))
    hs = LightSource(azdeg=315, altdeg=45).hillshade(filled, vert_exag=1.0, dx=res_m, dy=res_m)
    return np.where(np.isfinite(dem), hs, np.nan)


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
    ax.set_title(f"{title}\n{dem.crs.to_string()}", fontsize=9)
    return _save(fig, Path(path))


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
        _save(fig, folder / f"{row['rgi_id']}.png", dpi=90)
    return folder


# --- training-stage figures ---------------------------------------------------------------


def _shaded(ax, elev: np.ndarray, res: float, hole: np.ndarray | None = None, vmin=None, vmax=None) -> None:
    """Hillshade blended with elevation colours; the hole outlined in white."""
    import matplotlib

    vmin = np.nanmin(elev) if vmin is None else vmin
    vmax = np.nanmax(elev) if vmax is None else vmax
    rgb = LightSource(azdeg=315, altdeg=45).shade(elev, cmap=matplotlib.colormaps["terrain"], vert_exag=1.0,
                                                  dx=res, dy=res, blend_mode="soft", vmin=vmin, vmax=vmax)
    ax.imshow(rgb)
    if hole is not None and hole.any():
        ax.contour(hole.astype(float), levels=[0.5], colors="white", linewidths=0.8)
    ax.set_xticks([]); ax.set_yticks([])


def patch_grid_figure(dems: np.ndarray, holes: np.ndarray, res: np.ndarray, path: str | os.PathLike,
                      titles: list[str] | None = None, ncols: int = 4) -> Path:
    """Grid of sample patches (hillshade + elevation colours) with their holes outlined."""
    n = len(dems)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3 * ncols, 3 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.axis("off")
            continue
        _shaded(ax, dems[i], float(res[i]), holes[i])
        ax.set_title(titles[i] if titles else f"{res[i]:g} m, {dems[i].min():.0f}-{dems[i].max():.0f} m", fontsize=8)
    fig.tight_layout()
    return _save(fig, Path(path), dpi=90)


def progress_figure(masked_m: np.ndarray, pred_m: np.ndarray, truth_m: np.ndarray, holes: np.ndarray,
                    res: np.ndarray, step: int, path: str | os.PathLike) -> Path:
    """Masked input / reconstruction / truth / error for a few validation patches
    ("training iteration N" images)."""
    n = len(pred_m)
    fig = Figure(figsize=(12, 3 * n))
    axes = fig.subplots(n, 4, squeeze=False)
    im = None
    for i in range(n):
        vmin, vmax = truth_m[i].min(), truth_m[i].max()
        axes[i, 0].imshow(masked_m[i], cmap="terrain", vmin=vmin, vmax=vmax)
        axes[i, 0].set_xticks([]); axes[i, 0].set_yticks([])
        _shaded(axes[i, 1], pred_m[i], float(res[i]), holes[i], vmin, vmax)
        _shaded(axes[i, 2], truth_m[i], float(res[i]), holes[i], vmin, vmax)
        err = np.where(holes[i], pred_m[i] - truth_m[i], np.nan)
        im = axes[i, 3].imshow(err, cmap="RdBu_r", vmin=-100, vmax=100)
        axes[i, 3].set_xticks([]); axes[i, 3].set_yticks([])
        axes[i, 3].set_title(f"error, RMSE {np.sqrt(np.nanmean(err ** 2)):.1f} m", fontsize=8)
    for ax, t in zip(axes[0], ("masked input", "reconstruction", "truth")):
        ax.set_title(t, fontsize=8)
    fig.colorbar(im, ax=axes[:, 3].tolist(), shrink=0.6, label="m")
    fig.suptitle(f"training iteration {step}")
    return _save(fig, Path(path), dpi=90)
