"""Every method on the same cells: baselines, peers and glacierbed's pipeline on named cases.

* :func:`run_methods`: volume-area scaling, GlabTop, the inpainters (with and without
  physics) through the real estimate pipeline, OGGM (:mod:`glacierbed.evaluation.oggm_peer`) when
  installed;
* :func:`run_case`: those methods on a named example (``south-glacier``, ``oetztal``,
  ``hintereisferner``), evaluated the same way, or on the ``glathida-grids`` case
  (:func:`run_glathida_grids`: 23 glaciers scored on their measured cells); used by
  ``glacierbed benchmark``, ``benchmarks/validation.py`` and ``benchmarks/glathida_grids.py``;
* :func:`write_table`: CSV or Markdown, written atomically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from glacierbed.evaluation import baselines
from glacierbed.core.atomic import replacing, write_text
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import Raster
from glacierbed.core.errors import EmptySelectionError, MissingCRSError
from glacierbed.evaluation.against_measurements import POOLED, evaluate_glacier_means, evaluate_points, glacier_volumes
from glacierbed.core.metrics import error_metrics, relative_error, share_nonpositive
from glacierbed.evaluation.oggm_peer import oggm_thickness_map
from glacierbed.evaluation.figures import plot_error_map, plot_glacier_means, plot_profiles, plot_scatter

log = logging.getLogger(__name__)

GLATHIDA_CASE = "glathida-grids"
CASES = ("south-glacier", "oetztal", "hintereisferner", GLATHIDA_CASE)


@dataclass
class MethodResult:
    """One method's thickness map on a case (or why there is none) and its run time."""

    name: str
    thickness: Raster | None
    status: str
    seconds: float
    details: dict[str, object] = field(default_factory=dict)


def estimate_thickness(dem: Raster, outlines: gpd.GeoDataFrame, model: object, physics: object = None,
                       **kwargs) -> Raster:
    """Thickness of every glacier through the real pipeline (:func:`glacierbed.pipeline.estimate.estimate`:
    per-glacier windows, tiling, ensemble, optional physics), as a map on ``dem``'s grid:
    0 outside the outlines, NaN where the DEM has no data (like the baselines).

    ``model``: as for :func:`glacierbed.pipeline.estimate.estimate`; ``physics``: a
    :class:`~glacierbed.posterior.physics.PhysicsConfig` or None; ``kwargs`` go to ``estimate``
    (e.g. ``velocity``, ``smb``). Runs in a temporary folder, without maps.
    """
    return estimate_with_table(dem, outlines, model, physics, **kwargs)[0]


def estimate_with_table(dem: Raster, outlines: gpd.GeoDataFrame, model: object, physics: object = None,
                        calibrate: bool = False, **kwargs) -> tuple[Raster, pd.DataFrame]:
    """:func:`estimate_thickness` plus the per-glacier table (glaciers.csv: neg_fraction, physics_*).

    ``calibrate``: apply the model's shipped calibration. Off by default: a calibration was
    fitted on the kit's measured glaciers, so scoring it on them here would be in-sample;
    calibrated scores come from :mod:`glacierbed.evaluation.measured_table` (leave one glacier out).
    """
    import tempfile

    from glacierbed.pipeline.estimate import EstimateConfig, estimate

    with tempfile.TemporaryDirectory(prefix="glacierbed-eval-") as tmp:
        res = estimate(dem, outlines, tmp, model=model, config=EstimateConfig(physics=physics, calibrate=calibrate),
                       maps=False, **kwargs)
        thick = Raster.from_file(res.paths["thickness"])
    if not thick.same_grid(dem):
        raise MissingCRSError(f"estimate wrote its thickness on another grid than the DEM {dem.source}")
    data = np.where(np.isfinite(thick.data), thick.data, 0.0)
    data[~np.isfinite(dem.data)] = np.nan
    out = dem.with_data(data)
    out.source = f"estimate({res.summary.get('model', model)})"
    return out, res.glaciers


def pipeline_rows(model: object = None) -> list[tuple[str, object, object]]:
    """(label, model, physics) of every pipeline row: the terrain-only inpainters, the old
    default (inpainting network + the 50-150 kPa stress band, as shipped before the thickness
    network), and the thickness network ``model`` (default: the shipped one) without and
    with the physics posterior."""
    from glacierbed.posterior.physics import PhysicsConfig

    old = PhysicsConfig(mass_conservation=False, sia=True)  # data term + stress band: the former default
    net = "thickness-net" if model is None else model
    return [("biharmonic", "biharmonic", None), ("biharmonic + physics", "biharmonic", PhysicsConfig()),
            ("old default (network + SIA band)", "network", old),
            ("thickness-net", net, None), ("thickness-net + physics", net, PhysicsConfig())]


def run_methods(dem: Raster, outlines: gpd.GeoDataFrame, model: object = None,
                with_oggm: bool = True, with_physics: bool = True,
                only: Collection[str] | None = None) -> dict[str, MethodResult]:
    """Every baseline, peer and pipeline row on one DEM + outlines, the same cells for all.

    Baselines: volume-area scaling (uniform, shaped), GlabTop, mass conservation only (the
    apparent balance flux routed down the surface with Glen's law), the SIA stress band only
    (the physics stage without a data term, from the biharmonic fill), and OGGM
    (:func:`glacierbed.evaluation.oggm_peer.oggm_thickness_map`; its status names every glacier it
    failed on). Pipeline rows (:func:`pipeline_rows`) run the real estimate pipeline
    without calibration. ``model``: the thickness network to evaluate (default: shipped);
    a model that fails to load is reported as "model not available". ``with_physics=False``
    drops the rows with physics; ``only``: compute just these labels.
    """
    from glacierbed.pipeline.store import load_predictor
    from glacierbed.posterior.physics import PhysicsConfig

    wanted = (lambda label: True) if only is None else (lambda label: label in only)  # noqa: E731
    methods: dict[str, Callable[[], Raster]] = {
        "va_uniform": lambda: baselines.volume_area_thickness(dem, outlines, shaped=False),
        "va_shaped": lambda: baselines.volume_area_thickness(dem, outlines, shaped=True),
        "glabtop": lambda: baselines.glabtop_thickness(dem, outlines),
        "mass_conservation": lambda: baselines.mass_conservation_map(dem, outlines),
        "sia_band_only": lambda: estimate_thickness(dem, outlines, "biharmonic", PhysicsConfig().only("sia")),
    }
    out: dict[str, MethodResult] = {}
    for name, fn in methods.items():
        if not wanted(name) or (name == "sia_band_only" and not with_physics):
            continue
        t0 = time.perf_counter()
        out[name] = MethodResult(name, fn(), "ok", time.perf_counter() - t0)
    loaded: dict[str, object] = {}
    for label, spec, physics in pipeline_rows(model):
        if not wanted(label) or (physics is not None and not with_physics):
            continue
        key = spec if isinstance(spec, (str, Path)) else id(spec)
        try:
            if key not in loaded:
                loaded[key] = load_predictor(spec) if isinstance(spec, (str, Path)) else spec
        except Exception as exc:  # no weights yet, missing module, bad checkpoint: report
            log.warning("model %s not available: %s", spec, exc)
            out[label] = MethodResult(label, None, f"model not available: {type(exc).__name__}: {exc}", 0.0)
            continue
        t0 = time.perf_counter()
        h = estimate_thickness(dem, outlines, loaded[key], physics)
        out[label] = MethodResult(label, h, "ok", time.perf_counter() - t0)
    if with_oggm and wanted("oggm"):
        peer = oggm_thickness_map(dem, outlines)
        out["oggm"] = MethodResult("oggm", peer.thickness, peer.status, peer.seconds,
                                   {"volume_km3": peer.volume_km3, **peer.details})
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
      RMSE against it, and GlaThiDa's 2001 mean thickness;
    * ``glathida-grids``: :func:`run_glathida_grids` (23 glaciers, measured cells).

    Figures go to ``out_dir`` when given. OGGM's per-glacier statuses are in
    ``details["oggm_glaciers"]``.
    """
    from glacierbed.data import registry
    from glacierbed.data.observations import match_glathida_to_outlines, read_glathida_glaciers, read_points
    from glacierbed.data.outlines import check_overlap, read_outlines
    from glacierbed.data.rasters import read_dem

    if case not in CASES:
        raise EmptySelectionError(f"unknown benchmark case {case!r}; choose one of {', '.join(CASES)}")
    if case == GLATHIDA_CASE:
        return run_glathida_grids(model=model, with_oggm=with_oggm)
    ex = registry.get_example(case)
    dem = read_dem(ex.dem)
    outlines = check_overlap(read_outlines(ex.outlines), dem)
    results = run_methods(dem, outlines, model, with_oggm=with_oggm)
    ok = {k: r for k, r in results.items() if r.thickness is not None}
    timing = _methods_table(results)
    res = CaseResult(case, pd.DataFrame())
    if "oggm" in results and results["oggm"].details.get("per_glacier"):
        res.details["oggm_glaciers"] = pd.DataFrame(results["oggm"].details["per_glacier"])
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


#: methods of the glathida-grids case: baselines, the OGGM peer, the consensus as a constant
#: map, the old default pipeline and the thickness network (without and with physics)
GLATHIDA_METHODS = ("va_shaped", "glabtop", "mass_conservation", "oggm", "consensus_mean", "biharmonic + physics",
                    "old default (network + SIA band)", "thickness-net", "thickness-net + physics")
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
                       methods: Sequence[str] = GLATHIDA_METHODS) -> CaseResult:
    """Every method on the 23 GlaThiDa thickness grids, scored on exactly the measured cells.

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
    from glacierbed.pipeline.store import load_predictor
    from glacierbed.data import registry
    from glacierbed.data.observations import read_thickness_grid
    from glacierbed.data.outlines import check_overlap, read_outlines
    from glacierbed.data.rasters import read_dem

    meta = registry.glathida_grids(glaciers)
    net: object = model
    if any(m.startswith("thickness-net") for m in methods):
        try:  # load once for all 23 glaciers
            net = load_predictor("thickness-net" if model is None else model)
        except Exception as exc:  # reported per row by run_methods, which tries again
            log.warning("model %s not available: %s", model or "thickness-net", exc)
    rows, cells = [], []
    for g in meta.itertuples(index=False):
        ex = registry.get_example(g.example)
        dem = read_dem(ex.dem)
        outlines = check_overlap(read_outlines(ex.outlines), dem)
        observed = read_thickness_grid(ex.observations)
        results = run_methods(dem, outlines, net, with_oggm=with_oggm, only=methods)
        if "consensus_mean" in methods:
            if np.isfinite(g.consensus_mean_thickness_m):
                results["consensus_mean"] = MethodResult(
                    "consensus_mean", consensus_constant_map(dem, outlines, g.consensus_mean_thickness_m),
                    "constant map: consensus mean thickness (Farinotti et al. 2019 volume / mask area)", 0.0)
            else:
                results["consensus_mean"] = MethodResult("consensus_mean", None,
                                                         f"no consensus: {g.consensus_note}", 0.0)
        for name in methods:
            r = results.get(name)
            if r is None:
                continue
            row = {"rgi_id": g.rgi_id, "name": g.name, "region": g.region, "dx_m": g.dx_m,
                   "location_tier": g.location_tier, "method": name, "status": r.status, "seconds": r.seconds}
            if r.thickness is not None:
                table, per_cell = evaluate_points(r.thickness, observed, outlines)
                pooled = table[table["rgi_id"] == POOLED].iloc[0]
                vol = glacier_volumes(r.thickness, outlines)
                row.update({k: pooled[k] for k in ("n", "rmse", "mae", "bias", "r", "mean_obs", "mean_pred",
                                                   "n_points", "n_no_prediction")},
                           volume_km3=float(vol["volume_km3"].sum()))
                cells.append(per_cell.assign(rgi_id=g.rgi_id, region=g.region, method=name,
                                             row=observed["row"].to_numpy(), col=observed["col"].to_numpy()))
            rows.append(row)
        log.info("%s: RMSE %s", g.rgi_id, ", ".join(f"{r['method']} {r.get('rmse', np.nan):.0f} m"
                                                     for r in rows if r["rgi_id"] == g.rgi_id))
    metrics = _ratio_to_best(pd.DataFrame(rows), GLATHIDA_BASELINES)
    res = CaseResult(GLATHIDA_CASE, metrics)
    all_cells = pd.concat(cells, ignore_index=True) if cells else pd.DataFrame()
    res.details["cells"] = all_cells
    res.details["pooled"] = pd.DataFrame([
        {"method": m, "n_glaciers": int(metrics.loc[metrics["method"] == m, "rmse"].notna().sum()),
         **error_metrics(c.loc[c["status"] == "used", "pred"], c.loc[c["status"] == "used", "obs"])}
        for m, c in all_cells.groupby("method", sort=False)]) if len(all_cells) else pd.DataFrame()
    res.details["regions"] = (metrics.groupby(["region", "method"], sort=True)
                              .agg(n_glaciers=("rmse", "count"), median_rmse=("rmse", "median"),
                                   median_bias=("bias", "median"),
                                   median_ratio=("rmse_ratio_to_best_baseline", "median"))
                              .reset_index())
    res.details["summary"] = (metrics.groupby("method", sort=False)
                              .agg(n_glaciers=("rmse", "count"), median_rmse=("rmse", "median"),
                                   median_bias=("bias", "median"),
                                   median_ratio=("rmse_ratio_to_best_baseline", "median"),
                                   wins=("rank", lambda r: int((r == 1).sum())), seconds=("seconds", "sum"))
                              .reset_index())
    return res


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


def write_table(df: pd.DataFrame, path: Path, floatfmt: str = ".3g") -> Path:
    """Atomic CSV, or Markdown (pipe table) when ``path`` ends with .md."""
    if path.suffix == ".md":
        return write_text(path, to_markdown(df, floatfmt) + "\n")
    with replacing(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A pipe table (pandas + tabulate); NaN as empty cells."""
    return df.to_markdown(index=False, floatfmt=floatfmt, missingval="")
