"""Evaluation figures: scatter, error map, along-track profiles, glacier means."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from glacierbed.core.errors import EmptySelectionError
from glacierbed.core.figures import hillshade, save_figure
from glacierbed.core.metrics import error_metrics
from glacierbed.data.rasters import Raster

log = logging.getLogger(__name__)



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
    return save_figure(fig, path, dpi=120)


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
    return save_figure(fig, path, dpi=120)


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
    return save_figure(fig, path, dpi=120)


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
    return save_figure(fig, path, dpi=120)
