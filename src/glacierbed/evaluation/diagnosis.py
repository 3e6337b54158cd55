"""Diagnosis of a model's errors on measured glaciers against what a user always has.

Per glacier of the measured table (South Glacier's radar, the GlaThiDa grids' cells, the
Ötztal GlaThiDa means): the raw model's bias, relative bias and RMSE in metres of ice,
beside the glacier's attributes (:mod:`glacierbed.data.attributes`), the years between the
DEM and the survey, and flags for kinds of glaciers the shallow-ice simulator that trained
the network does not make (its envelope: :data:`SIMULATOR_ENVELOPE`). Rank correlations
tell which attributes the error follows.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import numpy as np
import pandas as pd

from glacierbed.core.metrics import rmse
from glacierbed.data.attributes import (ATTRIBUTES, PLATEAU_SLOPE_DEG, distance_to_ocean_km, glacier_attributes,
                                        mask_lonlat)
from glacierbed.posterior.calibration import CELL_UNITS, MEAN_UNIT
from glacierbed.posterior.calibration.distance import DISTANCE_ATTRIBUTES, distance_attributes

#: nominal acquisition year of the DEM sources in the kit (NaN where a source mixes years)
DEM_YEARS = {"SRTM": 2000.0, "GIMP": 2007.0, "DEM3": float("nan")}
#: what the simulated training set spans (its config and recorded parameters,
#: ``configs/simulated.yaml`` and ``benchmarks/results/simulated_set.json``)
SIMULATOR_ENVELOPE = {
    "window_px": 128, "pixel_sizes_m": (25.0, 50.0, 100.0, 200.0),
    "max_ice_fraction_p90": 0.31,       # 90th percentile of the ice fraction of a window
    "glen_a_factor": (1 / 3, 3.0),      # around 2.4e-24 Pa-3 s-1: temperate ice; cold ice (-10 C) is ~1/7
    "sliding_fraction": (0.0, 0.5),
    "ela_bed_quantile": (0.80, 0.97),   # glaciers only on the top 3-20 % of a window's terrain
}


def glacier_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """The raw model's error per glacier and case: n, observed and predicted mean, bias, RMSE (m)."""
    rows = rows[rows["unit"].isin((*CELL_UNITS, MEAN_UNIT))].copy()
    rows["err"] = rows["mu"].astype(float) - rows["obs"].astype(float)
    keys = ["case", "example", "rgi_id", "group", "region", "unit"]
    out = rows.groupby(keys, sort=False).agg(
        n=("err", "size"), obs_mean_m=("obs", "mean"), pred_mean_m=("mu", "mean"), bias_m=("err", "mean"),
        rmse_m=("err", rmse))
    out = out.reset_index()
    if "survey_year" in rows:
        years = rows.groupby(keys, sort=False)["survey_year"].first().reset_index(drop=True)
        out["survey_year"] = years.to_numpy(float)
    out["rel_bias"] = out["bias_m"] / out["obs_mean_m"]
    out["rel_rmse"] = out["rmse_m"] / out["obs_mean_m"]
    return out


def _first_year(text: Any) -> float:
    m = re.search(r"(19|20)\d\d", str(text or ""))
    return float(m.group(0)) if m else float("nan")


def dem_year(dem_source: str) -> float:
    """Nominal year of a DEM source named in a grid's metadata (NaN when unknown)."""
    for key, year in DEM_YEARS.items():
        if key in str(dem_source):
            return year
    return float("nan")


def example_attributes(example: str, ocean: bool = False) -> pd.DataFrame:
    """Attributes of every glacier of a kit example, with the DEM year and survey year known to the kit; with
    ``ocean``, each glacier's ``distance_to_ocean_km`` from its centroid too (a continentality proxy, for the
    diagnosis only: it loads a 1 GB global land mask, :func:`~glacierbed.data.attributes.distance_to_ocean_km`)."""
    from glacierbed.data import registry
    from glacierbed.data.outlines import rasterize_ids
    from glacierbed.evaluation.measured_table import read_case_inputs

    dem, outlines, _ = read_case_inputs(example)
    ids = rasterize_ids(outlines, dem)
    names = {i + 1: str(r) for i, r in enumerate(outlines["rgi_id"])}
    table = glacier_attributes(dem, ids, names)
    table.insert(0, "example", example)
    if ocean:
        where = {name: mask_lonlat(dem, ids == value) for value, name in names.items()}
        table["distance_to_ocean_km"] = [distance_to_ocean_km(*where[r]) for r in table["rgi_id"]]
    meta: dict[str, Any] = {}
    if example.startswith(registry.GLATHIDA_EXAMPLE_PREFIX):
        meta = registry.glathida_grid_meta(example.removeprefix(registry.GLATHIDA_EXAMPLE_PREFIX))
    srtm_examples = ("oetztal", "hintereisferner")
    table["dem_year"] = dem_year(meta.get("dem_source", "")) if meta else (2000.0 if example in srtm_examples
                                                                           else float("nan"))
    table["grid_survey_year"] = _first_year(meta.get("survey_date")) if meta else float("nan")
    return table


def ocean_distances(example: str) -> pd.DataFrame:
    """Per glacier of a kit example: ``example``, ``rgi_id`` and ``distance_to_ocean_km``
    (:func:`example_attributes` with ``ocean``)."""
    return example_attributes(example, ocean=True)[["example", "rgi_id", "distance_to_ocean_km"]]


def calibration_attributes(examples: Iterable[str]) -> pd.DataFrame:
    """Per glacier of the kit ``examples``: ``example``, ``rgi_id`` and the attributes the
    calibration's distance widening uses (:data:`DISTANCE_ATTRIBUTES`, latitude from the DEM's CRS)."""
    table = pd.concat([example_attributes(e) for e in examples], ignore_index=True)
    attrs = pd.DataFrame([distance_attributes(r) for r in table.to_dict("records")], columns=DISTANCE_ATTRIBUTES)
    return pd.concat([table[["example", "rgi_id"]].astype(str), attrs], axis=1)


def with_attributes(df: pd.DataFrame, attrs: pd.DataFrame) -> pd.DataFrame:
    """``df`` (measured rows or pixels) with the ``attr_*`` columns of its glacier (by example, rgi_id)."""
    base = df.drop(columns=[c for c in DISTANCE_ATTRIBUTES if c in df])
    keys = base[["example", "rgi_id"]].astype(str)
    return pd.concat([base.reset_index(drop=True),
                      keys.merge(attrs.drop_duplicates(["example", "rgi_id"]), on=["example", "rgi_id"], how="left")[list(DISTANCE_ATTRIBUTES)]], axis=1)


def outside_simulator(table: pd.DataFrame) -> pd.DataFrame:
    """Flags for glaciers unlike anything the simulator makes (see :data:`SIMULATOR_ENVELOPE`)."""
    env = SIMULATOR_ENVELOPE
    window_km2 = (env["window_px"] * table["pixel_size_m"].clip(upper=max(env["pixel_sizes_m"]))) ** 2 / 1e6
    flags = pd.DataFrame(index=table.index)
    flags["larger_than_window_ice"] = table["area_km2"] > env["max_ice_fraction_p90"] * window_km2
    flags["polar_cold_ice"] = table["latitude_deg"].abs() > 60.0
    flags["plateau_or_ice_cap"] = (table["slope_deg"] < PLATEAU_SLOPE_DEG) | (table["hypsometric_index"] < 0.8)
    flags["thick_over_200m"] = table["obs_mean_m"] > 200.0
    flags["outside_any"] = flags.any(axis=1)
    return flags


def diagnose(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per glacier and case: the raw error, the attributes, the survey gap and the flags."""
    errors = glacier_errors(rows)
    attrs = pd.concat([example_attributes(e, ocean=True) for e in errors["example"].unique()], ignore_index=True)
    table = errors.merge(attrs, on=["example", "rgi_id"], how="left")
    survey = table["survey_year"] if "survey_year" in table else pd.Series(np.nan, index=table.index)
    table["survey_year"] = survey.fillna(table["grid_survey_year"])
    table["years_dem_to_survey"] = table["survey_year"] - table["dem_year"]
    return pd.concat([table.drop(columns=["grid_survey_year"]), outside_simulator(table)], axis=1)


def one_per_glacier(table: pd.DataFrame) -> pd.DataFrame:
    """One row per glacier identity (``group``): measured cells/points before glacier means."""
    order = table["unit"].map({"cell": 0, "point": 1, MEAN_UNIT: 2})
    return table.assign(_o=order).sort_values(["group", "_o"]).drop_duplicates("group").drop(columns="_o")


def attribute_correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of the relative bias and relative RMSE with every attribute."""
    cols = [*ATTRIBUTES, "distance_to_ocean_km", "years_dem_to_survey", "obs_mean_m"]
    out = []
    for col in cols:
        if col not in table:  # a table written before the attribute existed
            continue
        ok = table[col].notna() & table["rel_bias"].notna()
        if ok.sum() < 5:
            continue
        sub = table[ok]
        out.append({"attribute": col, "n_glaciers": int(ok.sum()),
                    "spearman_rel_bias": float(sub[col].corr(sub["rel_bias"], method="spearman")),
                    "spearman_rel_rmse": float(sub[col].corr(sub["rel_rmse"], method="spearman"))})
    return pd.DataFrame(out).sort_values("spearman_rel_bias", key=np.abs, ascending=False)


def kinds_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Median relative bias and RMSE of glaciers inside vs outside each part of the envelope."""
    flags = ["larger_than_window_ice", "polar_cold_ice", "plateau_or_ice_cap", "thick_over_200m", "outside_any"]
    out = []
    for flag in flags:
        for value, sub in table.groupby(table[flag].astype(bool)):
            out.append({"kind": flag, "flagged": bool(value), "n_glaciers": len(sub),
                        "median_rel_bias": float(sub["rel_bias"].median()),
                        "median_abs_rel_bias": float(sub["rel_bias"].abs().median()),
                        "median_rmse_m": float(sub["rmse_m"].median())})
    return pd.DataFrame(out)
