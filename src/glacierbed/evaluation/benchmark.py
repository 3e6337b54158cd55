"""Every method on the same cells: baselines, peers and glacierbed's pipeline on named cases.

* :func:`run_case`: every method of :func:`~glacierbed.evaluation.methods.run_methods` on a
  named example (``south-glacier``, ``oetztal``, ``hintereisferner``), evaluated the same way,
  or the ``glathida-grids`` case (:func:`~glacierbed.evaluation.glathida_case.run_glathida_grids`:
  23 glaciers scored on their measured cells); used by ``glacierbed benchmark``,
  ``benchmarks/validation.py`` and ``benchmarks/glathida_grids.py``.

The methods themselves (:func:`run_methods`, :func:`estimate_thickness`, ...) are in
:mod:`glacierbed.evaluation.methods` and the grids case in
:mod:`glacierbed.evaluation.glathida_case`; both are re-exported here, where callers import them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from glacierbed.core.errors import EmptySelectionError
from glacierbed.core.metrics import error_metrics, relative_error, share_nonpositive
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import Raster
from glacierbed.evaluation import baselines
from glacierbed.evaluation.against_measurements import POOLED, evaluate_glacier_means, evaluate_points, glacier_volumes
from glacierbed.evaluation.figures import plot_error_map, plot_glacier_means, plot_profiles, plot_scatter
from glacierbed.evaluation.glathida_case import (
    GLATHIDA_BASELINES,
    GLATHIDA_CASE,
    GLATHIDA_METHODS,
    consensus_constant_map,
    run_glathida_grids,
)
from glacierbed.evaluation.methods import (
    CALIBRATED_ROW,
    CaseResult,
    MethodResult,
    checklist,
    estimate_thickness,
    estimate_with_table,
    load_script,
    methods_table,
    pipeline_rows,
    rewrite_report,
    run_methods,
    to_markdown,
    write_table,
)
from glacierbed.pipeline.workflow import safe_id

CASES = ("south-glacier", "oetztal", "hintereisferner", GLATHIDA_CASE)


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
    from glacierbed.data.outlines import check_overlap, read_outlines
    from glacierbed.data.rasters import read_dem

    if case not in CASES:
        raise EmptySelectionError(f"unknown benchmark case {case!r}; choose one of {', '.join(CASES)}")
    if case == GLATHIDA_CASE:
        return run_glathida_grids(model=model, with_oggm=with_oggm)
    ex = registry.get_example(case)
    dem = read_dem(ex.dem)
    outlines = check_overlap(read_outlines(ex.outlines), dem)
    results = run_methods(dem, outlines, model, with_oggm=with_oggm, measured=True)
    ok = {k: r for k, r in results.items() if r.thickness is not None}
    timing = methods_table(results)
    res = CaseResult(case, pd.DataFrame())
    if "oggm" in results and results["oggm"].details.get("per_glacier"):
        res.details["oggm_glaciers"] = pd.DataFrame(results["oggm"].details["per_glacier"])
    if case == "south-glacier":
        rows = _score_points(res, ex, dem, outlines, ok, out_dir)
    else:
        if case == "hintereisferner" and ex.consensus is not None:
            consensus = baselines.external_thickness(ex.consensus, dem, outlines)
            ok = {"consensus": MethodResult("consensus", consensus, "ok", 0.0), **ok}
            timing = pd.concat([pd.DataFrame([{"method": "consensus", "status": "reference (Farinotti et al. 2019)",
                                               "seconds": 0.0}]), timing], ignore_index=True)
        rows = _score_glacier_means(res, dem, outlines, ok, out_dir)
    metrics = pd.DataFrame(rows)
    metrics = timing.assign(case=case).merge(metrics, on=["case", "method"], how="left") if len(metrics) else timing.assign(case=case)
    first = ["case", "method", "status", "seconds"]
    res.metrics = metrics[[*first, *[c for c in metrics.columns if c not in first]]]
    return res


def _score_points(res: CaseResult, ex: Any, dem: Raster, outlines: gpd.GeoDataFrame,
                  ok: dict[str, MethodResult], out_dir: Path | None) -> list[dict[str, Any]]:
    """South Glacier: each map against the radar points (pooled metrics row per method);
    per-point tables into ``res.details``, scatter/profile/error-map figures into ``out_dir``."""
    from glacierbed.data.observations import read_points

    case = res.case
    points = read_points(ex.observations)
    per_point, rows = {}, []
    for name, r in ok.items():
        table, pp = evaluate_points(r.thickness, points, outlines)
        per_point[name] = pp
        rows.append({"case": case, "method": name, **table[table["rgi_id"] == POOLED].iloc[0].to_dict()})
        res.details[f"points_{name}"] = pp
    if out_dir is not None and per_point:
        # file-name part: safe_id with runs of "_" collapsed ("biharmonic + physics" -> "biharmonic_physics")
        part = {n: "_".join(filter(None, safe_id(n).split("_"))) for n in per_point}
        res.figures += [plot_scatter(per_point, out_dir / f"{case}_scatter.png", "South Glacier radar points"),
                        plot_profiles(per_point, out_dir / f"{case}_profiles.png"),
                        *[plot_error_map(dem, pp, out_dir / f"{case}_errormap_{part[n]}.png", outlines,
                                         f"{n}: predicted - observed") for n, pp in per_point.items()]]
    return rows


def _score_glacier_means(res: CaseResult, dem: Raster, outlines: gpd.GeoDataFrame, ok: dict[str, MethodResult],
                         out_dir: Path | None) -> list[dict[str, Any]]:
    """Ötztal / Hintereisferner: each map's volume and its glacier means against GlaThiDa's, and
    (when ``ok`` has the ``consensus`` map) its volume and pixels against the consensus."""
    from glacierbed.data import registry
    from glacierbed.data.observations import match_glathida_to_outlines, read_glathida_glaciers

    case = res.case
    matches = match_glathida_to_outlines(read_glathida_glaciers(registry.get_file("glathida/glacier.csv")), outlines)
    inside = rasterize_ids(outlines, dem) > 0
    consensus = ok["consensus"].thickness if "consensus" in ok else None
    cvol = float(glacier_volumes(consensus, outlines)["volume_km3"].sum()) if consensus is not None else np.nan
    tables, rows = {}, []
    for name, r in ok.items():
        vols = glacier_volumes(r.thickness, outlines)
        tables[name], pooled = evaluate_glacier_means(r.thickness, outlines, matches)
        row = {"case": case, "method": name, **{f"glathida_{k}": v for k, v in pooled.items()},
               "n_glaciers": len(outlines), "volume_km3": float(vols["volume_km3"].sum()),
               "mean_thickness_m": float(np.nansum(vols["mean_thickness_m"] * vols["grid_area_km2"])
                                         / vols["grid_area_km2"].sum()),
               "share_nonpositive": share_nonpositive(r.thickness.data, inside)}
        if consensus is not None:
            pix = error_metrics(r.thickness.data[inside], consensus.data[inside])
            row.update(consensus_volume_km3=cvol, rel_error_volume_vs_consensus=relative_error(row["volume_km3"], cvol),
                       rmse_vs_consensus_m=pix["rmse"], bias_vs_consensus_m=pix["bias"], r_vs_consensus=pix["r"])
        rows.append(row)
        res.details[f"glaciers_{name}"] = tables[name].assign(method=name)
        res.details[f"volumes_{name}"] = vols.assign(method=name)
    res.details["glathida_matches"] = matches
    if len(matches.attrs.get("unmatched", [])):
        res.details["glathida_unmatched"] = matches.attrs["unmatched"]
    if out_dir is not None and tables and len(next(iter(tables.values()))):
        res.figures.append(plot_glacier_means(tables, out_dir / f"{case}_glacier_means.png",
                                              f"{case}: mean thickness per glacier"))
    return rows


__all__ = ["CALIBRATED_ROW", "CASES", "CaseResult", "GLATHIDA_BASELINES", "GLATHIDA_CASE", "GLATHIDA_METHODS",
           "MethodResult", "consensus_constant_map", "estimate_thickness", "estimate_with_table", "pipeline_rows",
           "run_case", "checklist", "load_script", "run_glathida_grids", "run_methods", "to_markdown", "write_table",
           "rewrite_report"]
