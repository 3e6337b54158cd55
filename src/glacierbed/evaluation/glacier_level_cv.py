"""Glacier-level calibration and learned consensus, scored leave-one-glacier/region-out.

One row per glacier identity of the measured table: the target ``log(measured /
predicted)`` (over its measured cells/points, or its GlaThiDa mean), attributes a user
always has and the log ratios of the independent estimators to the network. Variants of
the selection protocol (``benchmarks/results/selection_protocol_glacier_level.md``) are
fitted without each glacier (or region) and applied to its rows.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from glacierbed.core.metrics import rmse
from glacierbed.evaluation.diagnosis import example_attributes
from glacierbed.posterior.glacier_level import (ATTRIBUTE_FEATURES, MEMBER_FEATURES, GlacierLevelScale,
                                                weighted_global_log_ratio)

BASELINES = ("va_shaped", "glabtop", "oggm")
VARIANTS: dict[str, tuple[str, ...] | None] = {
    "S0 global factor": None,
    "S1 attributes": ATTRIBUTE_FEATURES,
    "S2 attributes + consensus members": ATTRIBUTE_FEATURES + MEMBER_FEATURES,
    "S3 consensus members": MEMBER_FEATURES,
}


def _representative(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that define a glacier's target: its measured cells/points, else its mean."""
    cells = rows[rows["unit"] != "glacier_mean"]
    return cells if len(cells) else rows


#: estimators the measured table holds per cell/point and only per pixel for a glacier mean
PIXEL_MEMBERS = ("h_mc_m", "h_sia_m")


def with_pixel_means(rows: pd.DataFrame, pixels: pd.DataFrame, columns: tuple[str, ...] = PIXEL_MEMBERS
                     ) -> pd.DataFrame:
    """``rows`` with each glacier-mean row's ``columns`` set to the mean over its glacier's pixels
    (a glacier mean has no cell of its own to carry them)."""
    is_mean = rows["unit"] == "glacier_mean"
    if not is_mean.any():
        return rows
    means = pixels.groupby(["example", "rgi_id"])[list(columns)].mean()
    keys = pd.MultiIndex.from_frame(rows.loc[is_mean, ["example", "rgi_id"]])
    out = rows.copy()
    out.loc[is_mean, list(columns)] = means.reindex(keys).to_numpy()
    return out


def _member_means(rep: pd.DataFrame) -> dict[str, float]:
    """Network, VA, mass-conservation and SIA-band means on a glacier's measured rows (glacier-mean rows
    carry their pixels' means: :func:`with_pixel_means`)."""
    return {"mu": float(rep["mu"].mean()), "va": float(rep["base_va_shaped"].mean()),
            "mc": float(rep["h_mc_m"].mean()), "sia": float(rep["h_sia_m"].mean())}


def glacier_table(rows: pd.DataFrame, pixels: pd.DataFrame) -> pd.DataFrame:
    """One row per glacier identity: target, weight, attributes and consensus members."""
    attrs = {e: example_attributes(e).set_index("rgi_id") for e in rows["example"].unique()}
    out = []
    for group, g in with_pixel_means(rows, pixels).groupby("group", sort=True):
        rep = _representative(g)
        example, rgi_id = str(rep["example"].iloc[0]), str(rep["rgi_id"].iloc[0])
        a = attrs[example].loc[rgi_id]
        m = _member_means(rep)
        eps = 1.0
        out.append({
            "group": group, "region": g["region"].iloc[0], "example": example, "rgi_id": rgi_id,
            "log_ratio": float(np.log(rep["obs"].mean() / max(m["mu"], eps))), "weight": 1.0,
            "log10_area_km2": np.log10(a["area_km2"]), "z_range_m": a["z_range_m"], "z_median_m": a["z_median_m"],
            "slope_deg": a["slope_deg"], "abs_latitude_deg": abs(a["latitude_deg"]), "northness": a["northness"],
            "hypsometric_index": a["hypsometric_index"], "log10_pixel_size_m": np.log10(a["pixel_size_m"]),
            "log_ratio_va": np.log(max(m["va"], eps) / max(m["mu"], eps)),
            "log_ratio_mass_conservation": np.log(max(m["mc"], eps) / max(m["mu"], eps)),
            "log_ratio_sia_band": np.log(max(m["sia"], eps) / max(m["mu"], eps))})
    return pd.DataFrame(out)


#: the terrain-only inpainter as a consensus member (S4): log(inpainter mean / network mean)
INPAINTER_MEMBER = "log_ratio_inpainter"


def with_member(table: pd.DataFrame, rows: pd.DataFrame, member_rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """``table`` with ``column`` = log(member mean / network mean) over each glacier's representative
    rows (the same cells/points, or its glacier mean), ``member_rows`` being another model's measured
    table of the same cases; NaN where the member has no such row (the ridge counts it as average)."""
    keys = ["case", "example", "rgi_id", "unit"]
    member = member_rows.groupby(keys)["mu"].mean()
    values = {}
    for group, g in rows.groupby("group", sort=True):
        network = _representative(g).groupby(keys)["mu"].mean()
        both = network.index.intersection(member.index)  # each source (radar, grid, mean) weighs the same
        if len(both):
            values[group] = np.log(max(float(member[both].mean()), 1.0) / max(float(network[both].mean()), 1.0))
    return table.assign(**{column: table["group"].map(values).to_numpy(float)})


def _fit_predict(features: tuple[str, ...] | None) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    """A function (train table, test table) -> predicted log ratio of the test glaciers."""
    def run(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        if features is None:
            return np.full(len(test), weighted_global_log_ratio(train["log_ratio"], train["weight"]))
        model = GlacierLevelScale(features=features).fit(train, train["log_ratio"].to_numpy(),
                                                         train["weight"].to_numpy())
        return model.log_ratio(test)
    return run


def cross_validated_factors(table: pd.DataFrame, features: tuple[str, ...] | None, by: str = "group"
                            ) -> pd.Series:
    """Each glacier's factor from a model fitted without its ``by`` fold (group = LOGO, region = LORO)."""
    fit_predict = _fit_predict(features)
    factors = pd.Series(np.nan, index=table["group"].to_numpy())
    for _, test in table.groupby(by):
        train = table[table[by] != test[by].iloc[0]]
        factors.loc[test["group"].to_numpy()] = np.exp(fit_predict(train, test))
    return factors


def score(rows: pd.DataFrame, factors: pd.Series) -> dict[str, float]:
    """The protocol's metrics for rows whose ``mu`` is multiplied by their glacier's factor."""
    r = rows.assign(mu_cal=rows["mu"] * rows["group"].map(factors))
    grids = r[r["case"] == "glathida-grids"]
    ratios, within = [], []
    for _, g in grids.groupby("group"):
        best = min(rmse(g[f"base_{b}"] - g["obs"]) for b in BASELINES)
        ratios.append(rmse(g["mu_cal"] - g["obs"]) / best)
        within.append(abs((g["mu_cal"] - g["obs"]).mean()) <= 0.2 * g["obs"].mean())
    sg = r[r["case"] == "south-glacier"]
    oe = r[r["case"] == "oetztal-means"]
    alps = r[r["case"] == "alps-means"]
    by_region = pd.Series(ratios, index=[g["region"].iloc[0] for _, g in grids.groupby("group")])
    out = {"grids_median_ratio": float(np.median(ratios)),
           "grids_regions_over_1": int((by_region.groupby(level=0).median() > 1.0).sum()),
           "grids_share_bias_within_20pct": float(np.mean(within)),
           "south_glacier_rmse": rmse(sg["mu_cal"] - sg["obs"]),
           "oetztal_means_rmse": rmse(oe["mu_cal"] - oe["obs"])}
    if len(alps):
        out["alps_means_rmse"] = rmse(alps["mu_cal"] - alps["obs"])
    return out


#: error floor (m) of the gate's target, so glaciers both networks fit to a metre do not dominate it
GATE_FLOOR_M = 5.0


def gate_target(error_a: pd.Series, error_b: pd.Series, group: pd.Series) -> pd.Series:
    """Per glacier identity, ``log((error_b + floor) / (error_a + floor))`` averaged over its rows
    (a grid and a glacier mean of one glacier count once): negative where model ``b`` did better."""
    t = np.log((np.asarray(error_b, float) + GATE_FLOOR_M) / (np.asarray(error_a, float) + GATE_FLOOR_M))
    return pd.Series(t, index=np.asarray(group)).groupby(level=0).mean()


def cross_validated_gate(table: pd.DataFrame, target: pd.Series, by: str = "group",
                         features: tuple[str, ...] = ATTRIBUTE_FEATURES) -> pd.Series:
    """Each glacier's predicted gate target from the ridge of the glacier-level calibration fitted
    without its ``by`` fold; ``< 0`` picks model ``b``. ``table``: :func:`glacier_table`'s attributes."""
    t = table[table["group"].isin(target.index)].assign(log_ratio=lambda d: d["group"].map(target), weight=1.0)
    return np.log(cross_validated_factors(t, features, by))


def identity_weights(rows: pd.DataFrame) -> np.ndarray:
    """Row weights under which every glacier identity (``group``) weighs 1 in total."""
    return 1.0 / rows.groupby("group")["group"].transform("size").to_numpy(float)


def fit_blend(rows: pd.DataFrame, members: tuple[str, ...], target: str = "obs") -> np.ndarray:
    """Non-negative weights of the ``members`` columns that best give ``target`` (no intercept),
    each glacier identity weighing the same (:func:`identity_weights`)."""
    from scipy.optimize import nnls

    sw = np.sqrt(identity_weights(rows))[:, None]
    x = rows[list(members)].to_numpy(float)
    return nnls(x * sw, rows[target].to_numpy(float) * sw[:, 0])[0]


def cross_validated_blend(rows: pd.DataFrame, members: tuple[str, ...], by: str = "group"
                          ) -> tuple[pd.Series, pd.DataFrame]:
    """Each row's blend from weights fitted without its ``by`` fold; and the weights per fold."""
    rows = rows[rows[list(members)].notna().all(axis=1)]
    blend, weights = pd.Series(np.nan, index=rows.index), {}
    for held, test in rows.groupby(by):
        w = fit_blend(rows[rows[by] != held], members)
        blend.loc[test.index] = test[list(members)].to_numpy(float) @ w
        weights[held] = w
    return blend, pd.DataFrame(weights, index=list(members)).T
