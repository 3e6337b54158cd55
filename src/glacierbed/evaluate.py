"""Validation of thickness maps against measurements and other products.

* metrics: pure functions on paired predictions/observations (:func:`error_metrics`);
* :func:`evaluate_points`: a thickness raster against radar/drilling points, per glacier
  and pooled, every point accounted for (used / outside outlines / no prediction);
* :func:`evaluate_glacier_means`: mean thickness per glacier against GlaThiDa surveys;
* :func:`glacier_volumes`: volume, mean thickness and share of non-positive pixels;
* figures (matplotlib Agg, PNG): scatter, error map over hillshade, along-track profile;
* :func:`run_case`: every baseline plus the inpainter on a named example
  (``south-glacier``, ``oetztal``, ``hintereisferner``), used by ``glacierbed benchmark``
  and ``benchmarks/validation.py``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import ndimage

from glacierbed.atomic import replacing, write_text
from glacierbed import baselines
from glacierbed.data.observations import match_points_to_glaciers
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import Raster
from glacierbed.errors import EmptySelectionError, MissingCRSError

log = logging.getLogger(__name__)

POOLED = "ALL"
CASES = ("south-glacier", "oetztal", "hintereisferner")


# --- metrics ----------------------------------------------------------------------------
def error_metrics(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, mean bias (pred - obs), median error, Pearson r, means, relative error
    of the mean, over pairs where both are finite (``n`` says how many)."""
    pred, obs = np.asarray(pred, float), np.asarray(obs, float)
    ok = np.isfinite(pred) & np.isfinite(obs)
    p, o = pred[ok], obs[ok]
    n = int(ok.sum())
    if n == 0:
        return dict(n=0, rmse=np.nan, mae=np.nan, bias=np.nan, median_error=np.nan, r=np.nan,
                    mean_obs=np.nan, mean_pred=np.nan, rel_error_mean=np.nan)
    e = p - o
    r = float(np.corrcoef(p, o)[0, 1]) if n > 1 and p.std() > 0 and o.std() > 0 else np.nan
    return dict(n=n, rmse=float(np.sqrt(np.mean(e**2))), mae=float(np.mean(np.abs(e))), bias=float(e.mean()),
                median_error=float(np.median(e)), r=r, mean_obs=float(o.mean()), mean_pred=float(p.mean()),
                rel_error_mean=relative_error(p.mean(), o.mean()))


def relative_error(pred: float, obs: float) -> float:
    """(pred - obs) / obs, e.g. of a mean thickness or a volume; NaN when obs is 0."""
    return float((pred - obs) / obs) if obs != 0 and np.isfinite(obs) else np.nan


def share_nonpositive(thickness: np.ndarray, inside: np.ndarray) -> float:
    """Share of pixels inside the outlines with thickness <= 0 (NaN pixels not counted)."""
    vals = thickness[inside & np.isfinite(thickness)]
    return float(np.mean(vals <= 0)) if vals.size else np.nan


# --- points -----------------------------------------------------------------------------
def evaluate_points(thickness: Raster, points: gpd.GeoDataFrame, outlines: gpd.GeoDataFrame | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare a thickness raster with point observations.

    Returns ``(table, per_point)``. ``per_point`` has x, y (raster CRS), ``obs``, ``pred``
    (bilinear), ``error`` and ``status``: "used", "outside_outlines" (only with outlines;
    such points are not scored since the map is 0 there by construction) or
    "no_prediction" (raster NaN or outside the raster). ``table`` has one row per glacier
    and a pooled row (``rgi_id == "ALL"``) with :func:`error_metrics` and the counts
    ``n_points``, ``n_used``, ``n_outside_outlines``, ``n_no_prediction``.
    """
    if points.crs is None:
        raise MissingCRSError("observation points have no CRS")
    if len(points) == 0:
        raise EmptySelectionError("no observation points to evaluate")
    pts = points.to_crs(thickness.crs)
    x, y = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    df = pd.DataFrame({"x": x, "y": y, "obs": pts["thickness_m"].to_numpy(float), "pred": thickness.sample(x, y)})
    df["error"] = df["pred"] - df["obs"]
    if outlines is not None:
        df["rgi_id"] = match_points_to_glaciers(points, outlines)["rgi_id"].to_numpy()
        outside = df["rgi_id"].isna().to_numpy()
    else:
        df["rgi_id"] = None
        outside = np.zeros(len(df), bool)
    df["status"] = np.where(outside, "outside_outlines", np.where(np.isfinite(df["pred"]), "used", "no_prediction"))
    rows = []
    groups = [(POOLED, df)]
    if outlines is not None:
        groups += [(gid, g) for gid, g in df[~outside].groupby("rgi_id")]
    for gid, g in groups:
        used = g["status"] == "used"
        rows.append({"rgi_id": gid, **error_metrics(g.loc[used, "pred"], g.loc[used, "obs"]),
                     "n_points": len(g), "n_used": int(used.sum()),
                     "n_outside_outlines": int((g["status"] == "outside_outlines").sum()),
                     "n_no_prediction": int((g["status"] == "no_prediction").sum())})
    table = pd.DataFrame(rows)
    n_skip = len(df) - int((df["status"] == "used").sum())
    if n_skip:
        log.info("%d of %d points not scored (%d outside outlines, %d without prediction)", n_skip, len(df),
                 int((df["status"] == "outside_outlines").sum()), int((df["status"] == "no_prediction").sum()))
    return table, df


# --- glaciers ---------------------------------------------------------------------------
def glacier_volumes(thickness: Raster, outlines: gpd.GeoDataFrame) -> pd.DataFrame:
    """Per glacier: grid area, volume (km3), mean thickness (m), share of pixels <= 0 and
    the number of glacier pixels without a value (NaN; they add nothing to the volume)."""
    ids = rasterize_ids(outlines, thickness)
    labels = np.arange(1, len(outlines) + 1)
    h = thickness.data.astype(np.float64)
    finite = np.isfinite(h)
    px = thickness.pixel_area_m2
    n_px = ndimage.sum(np.ones_like(h), ids, labels)
    n_nan = ndimage.sum(~finite, ids, labels)
    vol = ndimage.sum(np.where(finite, h, 0.0), ids, labels) * px / 1e9
    nonpos = ndimage.sum(finite & (h <= 0), ids, labels)
    n_val = n_px - n_nan
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_h = np.where(n_val > 0, ndimage.sum(np.where(finite, h, 0.0), ids, labels) / n_val, np.nan)
        share = np.where(n_val > 0, nonpos / n_val, np.nan)
    return pd.DataFrame({"rgi_id": outlines["rgi_id"].to_numpy(), "name": outlines["name"].to_numpy(),
                         "grid_area_km2": n_px * px / 1e6, "volume_km3": vol, "mean_thickness_m": mean_h,
                         "share_nonpositive": share, "n_nan_px": n_nan.astype(int)})


def evaluate_glacier_means(thickness: Raster, outlines: gpd.GeoDataFrame, glathida_matches: pd.DataFrame,
                           latest_only: bool = True) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predicted vs GlaThiDa mean thickness per matched glacier (latest survey by default).

    Returns the per-glacier table (``obs_mean_m``, ``pred_mean_m``, ``error_m``,
    ``rel_error``, volumes) and pooled :func:`error_metrics` over glaciers.
    """
    m = glathida_matches
    if latest_only and "latest" in m:
        m = m[m["latest"].astype(bool)]
    vols = glacier_volumes(thickness, outlines).set_index("rgi_id")
    known = m["rgi_id"].isin(vols.index)
    if (~known).any():
        log.warning("%d GlaThiDa matches refer to outlines not given: %s", int((~known).sum()),
                    ", ".join(m.loc[~known, "rgi_id"].astype(str)))
    m = m[known]
    v = vols.loc[m["rgi_id"]]
    table = pd.DataFrame({"rgi_id": m["rgi_id"].to_numpy(), "name": v["name"].to_numpy(),
                          "survey_id": m["id"].to_numpy(), "survey_name": m["name"].to_numpy(),
                          "survey_year": m["year"].to_numpy() if "year" in m else np.nan,
                          "obs_mean_m": m["mean_thickness"].to_numpy(float),
                          "pred_mean_m": v["mean_thickness_m"].to_numpy(),
                          "grid_area_km2": v["grid_area_km2"].to_numpy(), "pred_volume_km3": v["volume_km3"].to_numpy()})
    table["error_m"] = table["pred_mean_m"] - table["obs_mean_m"]
    table["rel_error"] = table["error_m"] / table["obs_mean_m"]
    table["obs_volume_km3"] = table["obs_mean_m"] * table["grid_area_km2"] / 1e3
    return table, error_metrics(table["pred_mean_m"], table["obs_mean_m"])


# --- figures ----------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from glacierbed.plots import _save as save_png

    save_png(fig, path, dpi=120)
    _pyplot().close(fig)
    return path


def plot_scatter(per_point: dict[str, pd.DataFrame], path: Path, title: str = "") -> Path:
    """Predicted vs observed thickness, one panel per method (used points only)."""
    plt = _pyplot()
    n = len(per_point)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.6), squeeze=False)
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
    return _save(fig, path)


def plot_error_map(dem: Raster, per_point: pd.DataFrame, path: Path, outlines: gpd.GeoDataFrame | None = None,
                   title: str = "") -> Path:
    """Point errors (pred - obs, m) coloured over the DEM's hillshade."""
    from glacierbed.plots import hillshade

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
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
    return _save(fig, path)


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
    plt = _pyplot()
    first = along_track(next(iter(per_point.values())))
    main = first[first["on_profile"]]
    lengths = main.groupby("track")["distance_m"].max().sort_values(ascending=False)
    lengths = lengths[lengths > 0]
    if lengths.empty:
        raise EmptySelectionError("no radar track of two or more points to plot")
    tracks = lengths.index[:n_tracks]
    fig, axes = plt.subplots(len(tracks), 1, figsize=(8, 2.6 * len(tracks)), squeeze=False)
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
    return _save(fig, path)


def plot_glacier_means(tables: dict[str, pd.DataFrame], path: Path, title: str = "") -> Path:
    """Predicted vs GlaThiDa mean thickness per glacier, one marker set per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    vmax = 1.05 * max(float(np.nanmax(t[["obs_mean_m", "pred_mean_m"]].to_numpy())) for t in tables.values())
    for name, t in tables.items():
        ax.plot(t["obs_mean_m"], t["pred_mean_m"], "o", ms=4, label=name)
    ax.plot([0, vmax], [0, vmax], "k--", lw=0.8)
    ax.set(xlim=(0, vmax), ylim=(0, vmax), aspect="equal", xlabel="GlaThiDa mean thickness (m)",
           ylabel="predicted mean thickness (m)", title=title)
    ax.legend(fontsize=7)
    return _save(fig, path)


# --- methods and benchmark cases ---------------------------------------------------------------
@dataclass
class MethodResult:
    """One method's thickness map on a case (or why there is none) and its run time."""

    name: str
    thickness: Raster | None
    status: str
    seconds: float


def estimate_thickness(dem: Raster, outlines: gpd.GeoDataFrame, model: object, physics: object = None,
                       **kwargs) -> Raster:
    """Thickness of every glacier through the real pipeline (:func:`glacierbed.estimate.estimate`:
    per-glacier windows, tiling, ensemble, optional physics), as a map on ``dem``'s grid:
    0 outside the outlines, NaN where the DEM has no data (like the baselines).

    ``model``: as for :func:`glacierbed.estimate.estimate`; ``physics``: a
    :class:`~glacierbed.physics.PhysicsConfig` or None; ``kwargs`` go to ``estimate``
    (e.g. ``velocity``, ``smb``). Runs in a temporary folder, without maps.
    """
    return estimate_with_table(dem, outlines, model, physics, **kwargs)[0]


def estimate_with_table(dem: Raster, outlines: gpd.GeoDataFrame, model: object, physics: object = None,
                        **kwargs) -> tuple[Raster, pd.DataFrame]:
    """:func:`estimate_thickness` plus the per-glacier table (glaciers.csv: neg_fraction, physics_*)."""
    import tempfile

    from glacierbed.estimate import EstimateConfig, estimate

    with tempfile.TemporaryDirectory(prefix="glacierbed-eval-") as tmp:
        res = estimate(dem, outlines, tmp, model=model, config=EstimateConfig(physics=physics), maps=False, **kwargs)
        thick = Raster.from_file(res.paths["thickness"])
    if not thick.same_grid(dem):
        raise MissingCRSError(f"estimate wrote its thickness on another grid than the DEM {dem.source}")
    data = np.where(np.isfinite(thick.data), thick.data, 0.0)
    data[~np.isfinite(dem.data)] = np.nan
    out = dem.with_data(data)
    out.source = f"estimate({res.summary.get('model', model)})"
    return out, res.glaciers


def run_methods(dem: Raster, outlines: gpd.GeoDataFrame, model: str | None = None,
                with_oggm: bool = True, with_physics: bool = True) -> dict[str, MethodResult]:
    """Every baseline plus the inpainters on one DEM + outlines.

    Inpainter rows ("biharmonic", "network", and "+ physics" variants) run the real
    estimation pipeline (:func:`estimate_thickness`). ``model`` names the network
    (None = the shipped one, see :func:`glacierbed.inpainters.load_inpainter`); a network
    that fails to load is reported as "model not available".
    """
    from glacierbed.estimate import resolve_model
    from glacierbed.physics import PhysicsConfig

    methods: dict[str, Callable[[], Raster]] = {
        "va_uniform": lambda: baselines.volume_area_thickness(dem, outlines, shaped=False),
        "va_shaped": lambda: baselines.volume_area_thickness(dem, outlines, shaped=True),
        "glabtop": lambda: baselines.glabtop_thickness(dem, outlines),
    }
    out: dict[str, MethodResult] = {}
    for name, fn in methods.items():
        t0 = time.perf_counter()
        out[name] = MethodResult(name, fn(), "ok", time.perf_counter() - t0)
    inpainters: list[tuple[str, object]] = [("biharmonic", "biharmonic")]
    if model is None or str(model) not in ("biharmonic",):
        net_name = "network" if model is None else f"network:{Path(str(model)).name}"
        try:
            inpainters.append((net_name, resolve_model(model)))
        except Exception as exc:  # no weights yet, missing module, bad checkpoint: report
            log.warning("inpainter %s not available: %s", model or "(shipped network)", exc)
            status = f"model not available: {type(exc).__name__}: {exc}"
            for n in (net_name, f"{net_name} + physics") if with_physics else (net_name,):
                out[n] = MethodResult(n, None, status, 0.0)
    for name, inp in inpainters:
        for physics in (None, PhysicsConfig()) if with_physics else (None,):
            label = name if physics is None else f"{name} + physics"
            t0 = time.perf_counter()
            h = estimate_thickness(dem, outlines, inp, physics)
            out[label] = MethodResult(label, h, "ok", time.perf_counter() - t0)
    if with_oggm:
        t0 = time.perf_counter()
        res = [baselines.oggm_thickness(dem, outlines.iloc[[i]]) for i in range(len(outlines))]
        if all(r.thickness is not None for r in res):
            data = np.nansum([r.thickness.data for r in res], axis=0)  # disjoint glaciers: sum
            out["oggm"] = MethodResult("oggm", dem.with_data(data), "ok", time.perf_counter() - t0)
        else:
            out["oggm"] = MethodResult("oggm", None, res[0].status if res else "no outline", 0.0)
    return out


@dataclass
class CaseResult:
    """Tables (and figure paths) of one benchmark case."""

    case: str
    metrics: pd.DataFrame
    details: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)


def _safe(name: str) -> str:
    """A method name as a file-name part ("network + physics" -> "network_physics")."""
    return "_".join("".join(c if c.isalnum() or c in "-." else " " for c in name).split())


def _methods_table(results: dict[str, MethodResult]) -> pd.DataFrame:
    return pd.DataFrame([{"method": r.name, "status": r.status, "seconds": r.seconds} for r in results.values()])


def run_case(case: str, model: str | None = None, out_dir: Path | None = None, with_oggm: bool = True) -> CaseResult:
    """Compute every method on a named case and evaluate them the same way.

    * ``south-glacier``: the 9,619 radar points (per-point RMSE/MAE/bias);
    * ``oetztal``: GlaThiDa mean thickness of each matched glacier (latest survey);
    * ``hintereisferner``: volume/mean thickness vs the Farinotti 2019 consensus, pixel
      RMSE against it, and GlaThiDa's 2001 mean thickness.

    Figures go to ``out_dir`` when given.
    """
    from glacierbed.data import registry
    from glacierbed.data.observations import match_glathida_to_outlines, read_glathida_glaciers, read_points
    from glacierbed.data.outlines import check_overlap, read_outlines
    from glacierbed.data.rasters import read_dem

    if case not in CASES:
        raise EmptySelectionError(f"unknown benchmark case {case!r}; choose one of {', '.join(CASES)}")
    ex = registry.get_example(case)
    dem = read_dem(ex.dem)
    outlines = check_overlap(read_outlines(ex.outlines), dem)
    results = run_methods(dem, outlines, model, with_oggm=with_oggm)
    ok = {k: r for k, r in results.items() if r.thickness is not None}
    timing = _methods_table(results)
    res = CaseResult(case, pd.DataFrame())
    rows = []
    if case == "south-glacier":
        points = read_points(ex.observations)
        per_point = {}
        for name, r in ok.items():
            table, pp = evaluate_points(r.thickness, points, outlines)
            per_point[name] = pp
            pooled = table[table["rgi_id"] == POOLED].iloc[0].to_dict()
            rows.append({"case": case, "method": name, **pooled})
            res.details[f"points_{name}"] = pp
        if out_dir is not None and per_point:
            res.figures += [plot_scatter(per_point, out_dir / f"{case}_scatter.png", "South Glacier radar points"),
                            plot_profiles(per_point, out_dir / f"{case}_profiles.png"),
                            *[plot_error_map(dem, pp, out_dir / f"{case}_errormap_{_safe(n)}.png", outlines,
                                             f"{n}: predicted - observed") for n, pp in per_point.items()]]
    else:
        glathida = read_glathida_glaciers(registry.get_file("glathida/glacier.csv"))
        matches = match_glathida_to_outlines(glathida, outlines)
        tables = {}
        consensus = None
        if case == "hintereisferner" and ex.consensus is not None:
            consensus = baselines.external_thickness(ex.consensus, dem, outlines)
            ok = {"consensus": MethodResult("consensus", consensus, "ok", 0.0), **ok}
            timing = pd.concat([pd.DataFrame([{"method": "consensus", "status": "reference (Farinotti et al. 2019)",
                                               "seconds": 0.0}]), timing], ignore_index=True)
        for name, r in ok.items():
            vols = glacier_volumes(r.thickness, outlines)
            table, pooled = evaluate_glacier_means(r.thickness, outlines, matches)
            tables[name] = table
            row = {"case": case, "method": name, **{f"glathida_{k}": v for k, v in pooled.items()},
                   "n_glaciers": len(outlines), "volume_km3": float(vols["volume_km3"].sum()),
                   "mean_thickness_m": float(np.nansum(vols["mean_thickness_m"] * vols["grid_area_km2"])
                                             / vols["grid_area_km2"].sum()),
                   "share_nonpositive": share_nonpositive(r.thickness.data, rasterize_ids(outlines, dem) > 0)}
            if consensus is not None:
                inside = rasterize_ids(outlines, dem) > 0
                pix = error_metrics(r.thickness.data[inside], consensus.data[inside])
                cvol = float(glacier_volumes(consensus, outlines)["volume_km3"].sum())
                row.update(consensus_volume_km3=cvol, rel_error_volume_vs_consensus=relative_error(row["volume_km3"], cvol),
                           rmse_vs_consensus_m=pix["rmse"], bias_vs_consensus_m=pix["bias"], r_vs_consensus=pix["r"])
            rows.append(row)
            res.details[f"glaciers_{name}"] = table.assign(method=name)
            res.details[f"volumes_{name}"] = vols.assign(method=name)
        res.details["glathida_matches"] = matches
        if len(matches.attrs.get("unmatched", [])):
            res.details["glathida_unmatched"] = matches.attrs["unmatched"]
        if out_dir is not None and tables and len(next(iter(tables.values()))):
            res.figures.append(plot_glacier_means(tables, out_dir / f"{case}_glacier_means.png",
                                                  f"{case}: mean thickness per glacier"))
    metrics = pd.DataFrame(rows)
    metrics = timing.assign(case=case).merge(metrics, on=["case", "method"], how="left") if len(metrics) else timing.assign(case=case)
    res.metrics = metrics[["case", "method", "status", "seconds", *[c for c in metrics.columns
                                                                    if c not in ("case", "method", "status", "seconds")]]]
    return res


def write_table(df: pd.DataFrame, path: Path, floatfmt: str = ".3g") -> Path:
    """Atomic CSV, or Markdown (pipe table) when ``path`` ends with .md."""
    if path.suffix == ".md":
        return write_text(path, to_markdown(df, floatfmt) + "\n")
    with replacing(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A pipe table without the optional ``tabulate`` dependency."""
    def fmt(v) -> str:
        if isinstance(v, (float, np.floating)):
            if not np.isfinite(v):
                return ""
            if float(v).is_integer() and abs(v) < 1e9:
                return str(int(v))
            return format(float(v), floatfmt)
        return "" if v is None else str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])
