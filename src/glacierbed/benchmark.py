"""Every method on the same cells: baselines, peers and glacierbed's pipeline on named cases.

* :func:`run_methods`: volume-area scaling, GlabTop, the inpainters (with and without
  physics) through the real estimate pipeline, OGGM when installed;
* :func:`run_case`: those methods on a named example (``south-glacier``, ``oetztal``,
  ``hintereisferner``), evaluated the same way; used by ``glacierbed benchmark`` and
  ``benchmarks/validation.py``;
* :func:`write_table`: CSV or Markdown, written atomically.
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

from glacierbed import baselines
from glacierbed.atomic import replacing, write_text
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import Raster
from glacierbed.errors import EmptySelectionError, MissingCRSError
from glacierbed.evaluate import POOLED, evaluate_glacier_means, evaluate_points, glacier_volumes
from glacierbed.metrics import error_metrics, relative_error, share_nonpositive
from glacierbed.plots import plot_error_map, plot_glacier_means, plot_profiles, plot_scatter

log = logging.getLogger(__name__)

CASES = ("south-glacier", "oetztal", "hintereisferner")


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
    from glacierbed.predictors import load_predictor
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
            inpainters.append((net_name, load_predictor(model)))
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
    """A pipe table (pandas + tabulate); NaN as empty cells."""
    return df.to_markdown(index=False, floatfmt=floatfmt, missingval="")
