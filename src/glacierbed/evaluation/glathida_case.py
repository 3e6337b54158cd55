"""The ``glathida-grids`` benchmark case: every method on 23 glaciers, scored on their measured cells.

:func:`run_glathida_grids` runs :func:`glacierbed.evaluation.methods.run_methods` on each
glacier's own surface DEM and outline, adds the Farinotti et al. (2019) consensus as a
constant map (:func:`consensus_constant_map`), scores every map on exactly the GlaThiDa
cells, and rates each method against the best of :data:`GLATHIDA_BASELINES` on the same
glacier. Used by ``glacierbed benchmark glathida-grids`` and ``benchmarks/glathida_grids.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from glacierbed.core.metrics import error_metrics
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import Raster
from glacierbed.evaluation import baselines
from glacierbed.evaluation.against_measurements import POOLED, evaluate_points, glacier_volumes
from glacierbed.evaluation.methods import CALIBRATED_ROW, CaseResult, MethodResult, run_methods

log = logging.getLogger(__name__)

GLATHIDA_CASE = "glathida-grids"
#: methods of the glathida-grids case: baselines, the OGGM peer, the consensus as a constant
#: map, the old default pipeline and the thickness network (without and with physics)
GLATHIDA_METHODS = ("va_shaped", "glabtop", "mass_conservation", "oggm", "consensus_mean", "biharmonic + physics",
                    "old default (network + SIA band)", "thickness-net", "thickness-net + physics", CALIBRATED_ROW)
#: what each glacier's ratio is taken against: the best (lowest RMSE) of these, same run (the
#: issue's peers: volume-area scaling, GlabTop, OGGM)
GLATHIDA_BASELINES = ("va_shaped", "glabtop", "oggm")


def consensus_constant_map(dem: Raster, outlines: gpd.GeoDataFrame, mean_thickness_m: float) -> Raster:
    """A constant thickness inside the outlines (e.g. the consensus mean of a glacier), 0 outside.

    The Farinotti et al. (2019) consensus is known here only as one volume per glacier, so
    it is scored as the map that puts its mean thickness on every glacier cell.
    """
    ids = rasterize_ids(outlines, dem)
    return baselines.finish_thickness(dem, ids, np.full(dem.shape, mean_thickness_m, np.float32))


def run_glathida_grids(model: object = None, glaciers: Sequence[str] | None = None, with_oggm: bool = True,
                       methods: Sequence[str] = GLATHIDA_METHODS, grids_dir: str | Path | None = None) -> CaseResult:
    """Every method on the 23 GlaThiDa thickness grids (or on the grid folders of ``grids_dir``, read in place:
    :func:`~glacierbed.data.examples.grid_folders`), scored on exactly the measured cells.

    Per glacier (``glaciers``: RGI ids or example names; default all), on its own surface DEM
    and outline: each method's map is compared with the observed cells
    (:func:`~glacierbed.data.observations.read_thickness_grid` +
    :func:`~glacierbed.evaluation.against_measurements.evaluate_points`). ``metrics``: one row per glacier and
    method with status, seconds, n, RMSE, MAE, bias, r, volume and
    ``rmse_ratio_to_best_baseline`` (RMSE over the lowest RMSE among
    :data:`GLATHIDA_BASELINES` on that glacier, same run; ``best_baseline`` names it).
    ``details``: ``pooled`` (all measured cells of all glaciers per method), ``regions``
    (per RGI region: median RMSE and median ratio per method), ``summary`` (per method:
    median RMSE and ratio over glaciers, glaciers won) and ``cells`` (every scored cell).
    ``model``: the network for "network + physics" (None = shipped; loaded once).
    """
    from glacierbed.data import registry

    meta = registry.glathida_grids(glaciers) if grids_dir is None else registry.grid_folders(grids_dir, glaciers)
    net = _load_network(model, methods)
    rows, cells = [], []
    for g in meta.itertuples(index=False):
        g_rows, g_cells = _score_glacier(g, net, methods, with_oggm)
        rows += g_rows
        cells += g_cells
        log.info("%s: RMSE %s", g.rgi_id, ", ".join(f"{r['method']} {r.get('rmse', np.nan):.0f} m" for r in g_rows))
    metrics = _ratio_to_best(pd.DataFrame(rows), GLATHIDA_BASELINES)
    res = CaseResult(GLATHIDA_CASE, metrics)
    res.details.update(_summaries(metrics, pd.concat(cells, ignore_index=True) if cells else pd.DataFrame()))
    return res


def _load_network(model: object, methods: Sequence[str]) -> object:
    """The thickness network, loaded once for all glaciers when a method needs it; else ``model``
    as given (a failure is reported per row by :func:`run_methods`, which tries again)."""
    from glacierbed.pipeline.store import load_predictor

    if not any(m.startswith("thickness-net") for m in methods):
        return model
    try:
        return load_predictor("thickness-net" if model is None else model)
    except Exception as exc:
        log.warning("model %s not available: %s", model or "thickness-net", exc)
        return model


def _consensus_result(dem: Raster, outlines: gpd.GeoDataFrame, g: Any) -> MethodResult:
    """The consensus mean thickness as a constant map, or why this glacier has none."""
    if not np.isfinite(g.consensus_mean_thickness_m):
        return MethodResult("consensus_mean", None, f"no consensus: {g.consensus_note}", 0.0)
    return MethodResult("consensus_mean", consensus_constant_map(dem, outlines, g.consensus_mean_thickness_m),
                        "constant map: consensus mean thickness (Farinotti et al. 2019 volume / mask area)", 0.0)


def _score_glacier(g: Any, net: object, methods: Sequence[str], with_oggm: bool
                   ) -> tuple[list[dict[str, Any]], list[pd.DataFrame]]:
    """One glacier (a row of :func:`~glacierbed.data.registry.glathida_grids`): a metrics row per
    method and the scored cells of each method that gave a map."""
    from glacierbed.data import registry
    from glacierbed.data.observations import read_thickness_grid
    from glacierbed.data.outlines import check_overlap, read_outlines
    from glacierbed.data.rasters import read_dem

    ex = registry.get_example(g.example) if g.example else g  # a registered grid, or a folder's paths
    dem = read_dem(ex.dem)
    outlines = check_overlap(read_outlines(ex.outlines), dem)
    observed = read_thickness_grid(ex.observations)
    results = run_methods(dem, outlines, net, with_oggm=with_oggm, only=methods, measured=True)
    if "consensus_mean" in methods:
        results["consensus_mean"] = _consensus_result(dem, outlines, g)
    rows, cells = [], []
    for name in methods:
        r = results.get(name)
        if r is None:
            continue
        row = {"rgi_id": g.rgi_id, "name": g.name, "region": g.region, "dx_m": g.dx_m,
               "location_tier": g.location_tier, "method": name, "status": r.status, "seconds": r.seconds}
        if r.thickness is not None:
            table, per_cell = evaluate_points(r.thickness, observed, outlines)
            pooled = table[table["rgi_id"] == POOLED].iloc[0]
            row.update({k: pooled[k] for k in ("n", "rmse", "mae", "bias", "r", "mean_obs", "mean_pred",
                                               "n_points", "n_no_prediction")},
                       volume_km3=float(glacier_volumes(r.thickness, outlines)["volume_km3"].sum()))
            cells.append(per_cell.assign(rgi_id=g.rgi_id, region=g.region, method=name,
                                         row=observed["row"].to_numpy(), col=observed["col"].to_numpy()))
        rows.append(row)
    return rows, cells


def _summaries(metrics: pd.DataFrame, cells: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The case's details: every scored cell, cells pooled per method, medians per region and per method."""
    pooled = pd.DataFrame([
        {"method": m, "n_glaciers": int(metrics.loc[metrics["method"] == m, "rmse"].notna().sum()),
         **error_metrics(c.loc[c["status"] == "used", "pred"], c.loc[c["status"] == "used", "obs"])}
        for m, c in cells.groupby("method", sort=False)]) if len(cells) else pd.DataFrame()
    medians = dict(n_glaciers=("rmse", "count"), median_rmse=("rmse", "median"), median_bias=("bias", "median"),
                   median_ratio=("rmse_ratio_to_best_baseline", "median"))
    regions = metrics.groupby(["region", "method"], sort=True).agg(**medians).reset_index()
    summary = (metrics.groupby("method", sort=False)
               .agg(**medians, wins=("rank", lambda r: int((r == 1).sum())), seconds=("seconds", "sum"))
               .reset_index())
    return {"cells": cells, "pooled": pooled, "regions": regions, "summary": summary}


def _ratio_to_best(metrics: pd.DataFrame, baselines_: Sequence[str]) -> pd.DataFrame:
    """Per glacier: RMSE over the best baseline's (lowest RMSE among ``baselines_``), which
    one that is, and each method's RMSE rank among all methods (1 = best)."""
    m = metrics.copy()
    if "rmse" not in m:
        m["rmse"] = np.nan
    base = m[m["method"].isin(baselines_) & m["rmse"].notna()]
    best = base.loc[base.groupby("rgi_id")["rmse"].idxmin(), ["rgi_id", "method", "rmse"]]
    best = best.rename(columns={"method": "best_baseline", "rmse": "best_baseline_rmse"})
    m = m.merge(best, on="rgi_id", how="left")
    m["rmse_ratio_to_best_baseline"] = m["rmse"] / m["best_baseline_rmse"]
    m["rank"] = m.groupby("rgi_id")["rmse"].rank(method="min")
    return m.drop(columns="best_baseline_rmse")


__all__ = ["GLATHIDA_BASELINES", "GLATHIDA_CASE", "GLATHIDA_METHODS", "consensus_constant_map", "run_glathida_grids"]
