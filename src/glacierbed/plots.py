"""Figures only: thickness maps, training patches and progress, evaluation scatter/error maps/profiles.

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
from glacierbed.errors import EmptySelectionError
from glacierbed.metrics import error_metrics

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


# --- evaluation figures (owner: evaluate/benchmark stages) ----------------------------------
def plot_scatter(per_point: dict[str, pd.DataFrame], path: Path, title: str = "") -> Path:
    """Predicted vs observed thickness, one panel per method (used points only)."""
    n = len(per_point)
    fig = Figure(figsize=(3.6 * n, 3.6))
    axes = fig.subplots(1, n, squeeze=False)
    vmax = max(float(np.nanmax(df[["obs", "pred"]].to_numpy())) for df in per_point.values()) * 1.05
    for ax, (name, df) in zip(axes[0], per_point.items()):
        d = df[df["status"] == "used"]
        m = error_metrics(d["pred"], d["obs"])
        ax.scatter(d["obs"], d["pred"], s=2, alpha=0.3, lw=0)
        ax.plot([0, vmax], [0, vmax], "k--", lw=0.8)
        ax.set(xlim=(0, vmax), ylim=(0, vmax), xlabel="observed thickness (m)", aspect="equal",
               title=f"{name}\nRMSE {m['rmse']:.1f} m, bias {m['bias']:+.1f} m")
    axes[0][0].set_ylabel("predicted thickness (m)")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi=120)


def plot_error_map(dem: Raster, per_point: pd.DataFrame, path: Path, outlines: gpd.GeoDataFrame | None = None,
                   title: str = "") -> Path:
    """Point errors (pred - obs, m) coloured over the DEM's hillshade."""
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    left, bottom, right, top = dem.bounds
    shade = hillshade(dem.data, dem.res[0])
    ax.imshow(shade, cmap="gray", extent=(left, right, bottom, top), origin="upper")
    if outlines is not None:
        outlines.to_crs(dem.crs).boundary.plot(ax=ax, color="k", lw=0.8)
    d = per_point[per_point["status"] == "used"]
    lim = float(np.nanpercentile(np.abs(d["error"]), 98)) if len(d) else 1.0
    sc = ax.scatter(d["x"], d["y"], c=d["error"], s=3, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(sc, ax=ax, shrink=0.7, label="predicted - observed (m)")
    ax.set(title=title, xlabel="x (m)", ylabel="y (m)")
    return _save(fig, path, dpi=120)


def along_track(per_point: pd.DataFrame, max_gap_m: float = 60.0) -> pd.DataFrame:
    """Order radar points along their tracks, whatever the file order.

    Points closer than ``max_gap_m`` are linked by a minimum spanning tree; each connected
    part is a ``track``. Its longest path (tree diameter) is the main profile:
    ``distance_m`` is the distance along the tree from one end of that path and
    ``on_profile`` marks the points on it (side branches, e.g. crossing lines, are off it).
    """
    from scipy.sparse.csgraph import connected_components, dijkstra, minimum_spanning_tree
    from scipy.spatial import cKDTree

    xy = per_point[["x", "y"]].to_numpy(float)
    tree = cKDTree(xy)
    mst = minimum_spanning_tree(tree.sparse_distance_matrix(tree, max_gap_m, output_type="coo_matrix").tocsr())
    n, lab = connected_components(mst, directed=False)
    dist = np.zeros(len(xy))
    on = np.zeros(len(xy), bool)
    for c in range(n):
        members = np.flatnonzero(lab == c)
        if len(members) < 3:
            on[members] = len(members) == 1
            continue
        d0 = dijkstra(mst, directed=False, indices=members[0])
        end_a = members[np.argmax(d0[members])]
        da, pred = dijkstra(mst, directed=False, indices=end_a, return_predecessors=True)
        end_b = members[np.argmax(da[members])]
        dist[members] = da[members]
        node = end_b
        while node >= 0:
            on[node] = True
            node = pred[node]
    out = per_point.copy()
    out["track"], out["distance_m"], out["on_profile"] = lab, dist, on
    return out


def plot_profiles(per_point: dict[str, pd.DataFrame], path: Path, n_tracks: int = 3, title: str = "") -> Path:
    """Observed and predicted thickness along the main profile of the ``n_tracks`` longest tracks."""
    first = along_track(next(iter(per_point.values())))
    main = first[first["on_profile"]]
    lengths = main.groupby("track")["distance_m"].max().sort_values(ascending=False)
    lengths = lengths[lengths > 0]
    if lengths.empty:
        raise EmptySelectionError("no radar track of two or more points to plot")
    tracks = lengths.index[:n_tracks]
    fig = Figure(figsize=(8, 2.6 * len(tracks)))
    axes = fig.subplots(len(tracks), 1, squeeze=False)
    for ax, t in zip(axes[:, 0], tracks):
        sel = main.index[main["track"] == t]
        sel = sel[np.argsort(main.loc[sel, "distance_m"].to_numpy())]
        d = main.loc[sel, "distance_m"].to_numpy()
        ax.plot(d, main.loc[sel, "obs"], "k.", ms=2, label="observed")
        for name, df in per_point.items():
            ax.plot(d, df.loc[sel, "pred"], lw=1, label=name)
        ax.set(ylabel="thickness (m)", title=f"track {t} ({lengths[t]:.0f} m)")
        ax.invert_yaxis()
    axes[-1, 0].set_xlabel("distance along track (m)")
    axes[0, 0].legend(fontsize=7, ncol=3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path, dpi=120)


def plot_glacier_means(tables: dict[str, pd.DataFrame], path: Path, title: str = "") -> Path:
    """Predicted vs GlaThiDa mean thickness per glacier, one marker set per method."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    vmax = 1.05 * max(float(np.nanmax(t[["obs_mean_m", "pred_mean_m"]].to_numpy())) for t in tables.values())
    for name, t in tables.items():
        ax.plot(t["obs_mean_m"], t["pred_mean_m"], "o", ms=4, label=name)
    ax.plot([0, vmax], [0, vmax], "k--", lw=0.8)
    ax.set(xlim=(0, vmax), ylim=(0, vmax), aspect="equal", xlabel="GlaThiDa mean thickness (m)",
           ylabel="predicted mean thickness (m)", title=title)
    ax.legend(fontsize=7)
    return _save(fig, path, dpi=120)


# --- simulated glaciers (owner: simulated stage) -------------------------------------------
def simulated_examples_figure(sims, path: str | os.PathLike, n: int = 6, seed: int = 0) -> Path:
    """Rows of simulated windows: ice surface, bed, glacier outlines (labels) and thickness.

    ``sims``: a :class:`glacierbed.simulated.SimulatedSet`; windows drawn at random, one per
    source where possible, titled with source, pixel size, A factor, sliding and retreat.
    """
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(sims.source):
        by_source.setdefault(str(s), []).append(i)
    keys = list(by_source)
    rng.shuffle(keys)
    idx = [int(rng.choice(by_source[k])) for k in keys[:n]]
    fig = Figure(figsize=(13, 3.0 * len(idx)))
    axes = fig.subplots(len(idx), 4, squeeze=False)
    for row, i in zip(axes, idx):
        res, h, bed, ids = float(sims.res[i]), sims.thickness[i], sims.bed[i], sims.ids[i]
        p = sims.params[i]
        surf = bed + h
        lo, hi = float(np.nanmin(surf)), float(np.nanmax(surf))
        _shaded(row[0], surf, res, vmin=lo, vmax=hi)
        _shaded(row[1], bed, res, vmin=lo, vmax=hi)
        row[2].imshow(hillshade(surf, res), cmap="gray")
        row[2].imshow(np.ma.masked_equal(ids % 20, 0) if ids.max() else np.ma.masked_all(ids.shape), cmap="tab20",
                      alpha=0.6, interpolation="nearest")
        im = row[3].imshow(np.ma.masked_less_equal(h, 0.5), cmap="viridis")
        fig.colorbar(im, ax=row[3], shrink=0.8, label="thickness (m)")
        retreat = f", retreat +{p['retreat_dela_m']:.0f} m / {p['retreat_years']:.0f} yr" if p["retreat_years"] else ""
        row[0].set_ylabel(f"{sims.source[i]} ({sims.split[i]})", fontsize=8)
        row[0].set_title(f"ice surface, {res:g} m", fontsize=9)
        row[1].set_title("bed (real terrain)", fontsize=9)
        row[2].set_title(f"{int(ids.max())} glaciers (outlines)", fontsize=9)
        row[3].set_title(f"A x{p['glen_a'] / 2.4e-24:.2f}, sliding {p['sliding_fraction']:.2f}{retreat}", fontsize=8)
        for ax in row:
            ax.set_xticks([]); ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, Path(path), dpi=90)
