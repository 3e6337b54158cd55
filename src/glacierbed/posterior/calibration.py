"""Calibration of thickness maps on measured ice thickness: fitted on tables, applied per pixel.

A model's thickness map (mean ``mu``, 1-sigma ``sigma`` = ``thickness_std``) is corrected
by estimators fitted on measured thickness (radar points, GlaThiDa cells, glacier means;
:mod:`glacierbed.evaluation.measured_table` builds that table by running the real pipeline):

* :class:`ThicknessScale`: one global factor on thickness (equivalently ``A s**-(n+2)``
  on Glen's rate factor), fitted glacier-wise: the weighted median over glaciers of the
  log ratio of measured to predicted mean thickness, every glacier weighing the same
  whatever its number of measured cells;
* :class:`ResidualBooster`: a gradient-boosted residual on physical per-pixel features
  (after IceBoost, Maffezzoli et al. 2025: shallow trees on surface slope at several
  scales, distance to the margin, elevation within the glacier, area, a mass-conservation
  thickness, ...), fitted on ``log((obs + h0) / (mu + h0))`` (by default minus its mean
  per glacier: the shape within a glacier, the level being the scale's) with
  glacier-balanced sample weights and strong regularisation; the trees are stored as
  plain arrays, so applying needs numpy only (fitting needs scikit-learn);
* :class:`IntervalCalibrator`: a calibrated 1-sigma (boosted on the same kind of
  features, or ``sqrt((a sigma)^2 + (b mu')^2 + c^2)``) fitted on out-of-fold residuals
  (never on residuals of a model that saw the same glacier), so that ``|obs - mu'| <=
  sigma'`` holds for 68 % of the measurements (glacier-balanced) and ``<= z90 * sigma'``
  for 90 %; at glacier level, the error of a glacier's mean thickness is compared with the
  pixel sigmas combined with a fitted within-glacier correlation (:func:`glacier_volume_std`).

:class:`Calibration` composes them (default variant ``residual+scale+interval``), fits with
inner group-wise cross-fitting where a step needs out-of-fold inputs, and saves to / loads
from JSON with a record of the data it saw. :func:`calibration_features` computes the
feature arrays from a DEM window, so the estimate stage applies a calibration on the same
features it was fitted on. :func:`group_splits` gives leave-one-group-out splits (by
glacier identity or region, never by cell).

Volumes: pixel errors within a glacier are correlated (:func:`glacier_volume_std`,
fully correlated by default: sigma_V = sum sigma_i A_i), and glacier errors within a
region too (:func:`regional_volume_std`: linear sum by default), never added in quadrature
unless a measured correlation says so.

Imports only modules upstream of the estimate stage. See docs/calibration.md.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage, optimize

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import CorruptFileError, DataNotFoundError, EmptySelectionError
from glacierbed.data.rasters import fill_nearest
from glacierbed.models.thickness.features import thickness_features

log = logging.getLogger(__name__)

#: what a saved calibration file says it is
FILE_KIND = "glacierbed-calibration"
FILE_VERSION = 1
#: version of :func:`calibration_features` (a saved calibration records it; applying checks it)
FEATURES_VERSION = 1
#: per-pixel features, in the order of :func:`calibration_features`' output
FEATURE_NAMES: tuple[str, ...] = (
    "mu_m",  # the model's thickness (after the previous calibration steps)
    "sigma_m",  # the model's 1-sigma (thickness_std)
    "h_mc_m",  # mass-conservation thickness (glaciology.mass_conservation_thickness), m
    "h_sia_m",  # perfect-plasticity thickness tau / (rho g sin alpha), tau = 100 kPa, m
    "slope_100m", "slope_300m", "slope_1000m",  # sin(surface slope) smoothed over these widths
    "dist_margin_m",  # distance to the ice-free margin (divides are not margins)
    "rel_elevation",  # (z - z_min) / (z_max - z_min) within the glacier
    "log10_area_km2",  # the glacier's area on the grid
    "elev_range_m",  # z_max - z_min of the glacier
    "pixel_size_m",
)
#: not a feature: the glacier label of each pixel or row (0 = no glacier), so a step can act per glacier
GLACIER_KEY = "glacier"
#: features the residual model uses by default (pixel size is left out: in the kit it mostly
#: says "Arctic ice cap grid", a data-set artefact, not physics)
RESIDUAL_FEATURES: tuple[str, ...] = (
    "mu_m", "h_mc_m", "h_sia_m", "slope_100m", "slope_300m", "slope_1000m", "dist_margin_m",
    "rel_elevation", "log10_area_km2", "elev_range_m",
)
#: measurement units of a table row: a radar point or a grid cell (has per-pixel features)
#: or a glacier's mean thickness (one row per glacier, no features)
CELL_UNITS = ("point", "cell")
MEAN_UNIT = "glacier_mean"
#: interval levels every calibration reports
LEVELS = (0.68, 0.90)
_GAUSS_Z90 = 1.6448536269514722


# --------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------
def calibration_features(surface: np.ndarray, ids: np.ndarray, pixel_size_m: float, mu: np.ndarray,
                         sigma: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel features (:data:`FEATURE_NAMES`) of one window, float64 arrays.

    ``surface``: the DEM (m; NaN voids are filled with the nearest value for the features);
    ``ids``: glacier labels (0 = no ice; every glacier of the window, neighbours included,
    so divides are not margins); ``mu``/``sigma``: the model's thickness and 1-sigma (m).
    Built on :func:`glacierbed.models.thickness.features.thickness_features` (the thickness network's inputs).
    """
    surface = np.asarray(surface, np.float64)
    ids = np.asarray(ids)
    if not np.isfinite(surface).any():
        raise EmptySelectionError("surface window has no finite elevation")
    z = fill_nearest(surface)
    stack = thickness_features(z, ids, pixel_size_m).astype(np.float64)
    ice = ids > 0
    elev_range = np.zeros(z.shape)
    labels = np.unique(ids[ice])
    if labels.size:
        zmin = np.asarray(ndimage.minimum(z, ids, labels))
        zmax = np.asarray(ndimage.maximum(z, ids, labels))
        lut = np.zeros(int(ids.max()) + 1)
        lut[labels] = zmax - zmin
        elev_range = np.where(ice, lut[np.where(ice, ids, 0)], 0.0)
    thick_scale = 100.0  # features.THICK_SCALE_M
    return {
        "mu_m": np.asarray(mu, np.float64), "sigma_m": np.asarray(sigma, np.float64),
        "h_mc_m": stack[10] * thick_scale, "h_sia_m": stack[9] * thick_scale,
        "slope_100m": stack[5], "slope_300m": stack[6], "slope_1000m": stack[7],
        "dist_margin_m": stack[2] * 1000.0, "rel_elevation": stack[3], "log10_area_km2": stack[4],
        "elev_range_m": elev_range, "pixel_size_m": np.full(z.shape, float(pixel_size_m)),
        GLACIER_KEY: ids.astype(np.float64),
    }


# --------------------------------------------------------------------------------------
# weights, quantiles, splits
# --------------------------------------------------------------------------------------
def glacier_weights(rows: pd.DataFrame) -> np.ndarray:
    """Sample weights: each glacier (``group``) weighs 1, split equally between the cases
    that measured it (e.g. South Glacier's radar points and its GlaThiDa grid), then equally
    between that case's rows. Sums to the number of groups."""
    if len(rows) == 0:
        return np.zeros(0)
    g = rows["group"].astype(str).to_numpy()
    c = rows["case"].astype(str).to_numpy() if "case" in rows else np.full(len(rows), "")
    key = pd.Series(g) + "\x00" + pd.Series(c)
    n_rows = key.map(key.value_counts()).to_numpy(float)
    cases_per_group = pd.DataFrame({"g": g, "c": c}).drop_duplicates().groupby("g").size()
    n_cases = pd.Series(g).map(cases_per_group).to_numpy(float)
    return 1.0 / (n_rows * n_cases)


def weighted_quantile(values: np.ndarray, q: float, weights: np.ndarray | None = None) -> float:
    """Quantile ``q`` of ``values`` with sample weights (inverse of the weighted CDF, midpoint rule)."""
    v = np.asarray(values, float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, float)
    ok = np.isfinite(v) & np.isfinite(w) & (w > 0)
    v, w = v[ok], w[ok]
    if v.size == 0:
        return float("nan")
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return float(np.interp(q, cdf, v))


def weighted_coverage(abs_err: np.ndarray, half_width: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted share of |error| <= half width (NaN pairs ignored)."""
    e, h = np.asarray(abs_err, float), np.asarray(half_width, float)
    w = np.ones_like(e) if weights is None else np.asarray(weights, float)
    ok = np.isfinite(e) & np.isfinite(h) & (w > 0)
    if not ok.any():
        return float("nan")
    return float(np.sum(w[ok] * (e[ok] <= h[ok])) / np.sum(w[ok]))


def group_splits(labels: Sequence[Any] | np.ndarray | pd.Series) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """Leave-one-group-out: ``(held_out, train_index, test_index)`` per distinct label.

    ``labels``: per-row glacier identity (leave-one-glacier-out) or RGI region
    (leave-one-region-out). Never a split by row: all rows of a label are on one side.
    """
    lab = pd.Series(np.asarray(labels, dtype=object)).astype(str).to_numpy()
    for held in sorted(set(lab)):
        test = np.flatnonzero(lab == held)
        train = np.flatnonzero(lab != held)
        yield held, train, test


def group_kfold(labels: Sequence[Any] | np.ndarray, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` folds of whole groups (seeded shuffle of the distinct labels, dealt round robin)."""
    lab = pd.Series(np.asarray(labels, dtype=object)).astype(str).to_numpy()
    uniq = np.array(sorted(set(lab)))
    rng = np.random.default_rng(seed)
    uniq = uniq[rng.permutation(uniq.size)]
    k = max(2, min(k, uniq.size))
    folds = []
    for i in range(k):
        held = set(uniq[i::k])
        test = np.flatnonzero(np.isin(lab, list(held)))
        folds.append((np.setdiff1d(np.arange(lab.size), test), test))
    return folds


# --------------------------------------------------------------------------------------
# volumes
# --------------------------------------------------------------------------------------
def _correlated_sum(sigmas: np.ndarray, correlation: float) -> float:
    """sqrt((1-rho) sum s^2 + rho (sum s)^2): rho = 1 linear sum, rho = 0 quadrature."""
    s = np.asarray(sigmas, float)
    s = s[np.isfinite(s)]
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [0, 1], got {correlation}")
    return float(math.sqrt(max((1.0 - correlation) * np.sum(s**2) + correlation * np.sum(s) ** 2, 0.0)))


def glacier_volume_std(sigma_m: np.ndarray, pixel_area_m2: float | np.ndarray, correlation: float = 1.0) -> float:
    """1-sigma of a glacier's volume (km3) from its pixels' 1-sigma thickness (m).

    Pixel errors of one glacier are correlated (a bed too deep here is too deep next door):
    ``correlation`` = 1 (default) gives ``sum(sigma_i * A_i)``, 0 the quadrature sum; in
    between, ``sqrt((1-rho) sum (sigma_i A_i)^2 + rho (sum sigma_i A_i)^2)``. NaN pixels are
    ignored. A calibration's ``glacier_correlation`` is a measured value.
    """
    s = np.asarray(sigma_m, float) * np.asarray(pixel_area_m2, float)
    return _correlated_sum(s.ravel(), correlation) / 1e9


def regional_volume_std(glacier_std_km3: Sequence[float] | np.ndarray, correlation: float = 1.0) -> float:
    """1-sigma of a regional volume (km3) from its glaciers' 1-sigma volumes (km3).

    A calibrated model errs the same way on neighbouring glaciers, so glacier errors are
    added linearly (``correlation`` = 1, the default), not in quadrature (0).
    """
    return _correlated_sum(np.asarray(glacier_std_km3, float), correlation)


# --------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------
def _rows_arrays(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    mu = rows["mu"].to_numpy(float)
    sigma = rows["sigma"].to_numpy(float) if "sigma" in rows else np.full(len(rows), np.nan)
    return mu, sigma, table_features(rows)


def table_features(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The features of table rows (or pixels), with the glacier of each (1, 2, ... by
    ``example`` and ``rgi_id``) under :data:`GLACIER_KEY` when the table names it."""
    feats = {n: rows[n].to_numpy(float) for n in FEATURE_NAMES if n in rows}
    if {"example", "rgi_id"} <= set(rows.columns):
        feats[GLACIER_KEY] = pd.MultiIndex.from_arrays([rows["example"].astype(str),
                                                        rows["rgi_id"].astype(str)]).factorize()[0] + 1.0
    return feats


def keep_glacier_means(new: np.ndarray, old: np.ndarray, glacier: np.ndarray) -> np.ndarray:
    """Per glacier (label > 0), the factor that gives ``new`` the mean of ``old`` on its pixels."""
    new, old = np.asarray(new, float), np.asarray(old, float)
    g = np.asarray(glacier).reshape(new.shape)
    on = (g > 0) & np.isfinite(new) & np.isfinite(old)
    factor = np.ones(new.shape)
    if on.any():
        sums = pd.DataFrame({"g": g[on], "new": new[on], "old": np.clip(old[on], 0, None)}).groupby("g").transform("sum")
        factor[on] = np.where(sums["new"] > 0, sums["old"] / sums["new"], 1.0)
    return factor


@dataclass
class ThicknessScale:
    """``mu' = s mu``, ``sigma' = s sigma``; ``s`` fitted glacier-wise.

    Per glacier (``group``) and case, the ratio of the mean measured thickness to the mean
    predicted one on the same cells (a glacier-mean row is its own ratio); ``s`` is the
    weighted median of the log ratios, each glacier weighing 1 (split between the cases
    that measured it), so neither a glacier with many cells nor one odd glacier decides
    it. (A least-squares factor through the origin would shrink towards 0 wherever the
    prediction is noisy, even when it is biased low.) Under Glen's law (H ~ A^(-1/(n+2))
    for a given flux) the factor is equivalent to a rate factor ``A * s**-(n+2)``.
    """

    factor: float = 1.0
    max_factor: float = 10.0
    n_glaciers: int = 0
    kind: str = "scale"
    needs_features = False

    def fit(self, rows: pd.DataFrame) -> "ThicknessScale":
        r = rows[np.isfinite(rows["obs"].to_numpy(float)) & np.isfinite(rows["mu"].to_numpy(float))]
        if len(r) == 0:
            raise EmptySelectionError("no finite (obs, mu) row to fit a thickness scale")
        per = (r.assign(_g=r["group"].astype(str), _c=r["case"].astype(str))
               .groupby(["_g", "_c"], sort=True).agg(obs=("obs", "mean"), mu=("mu", "mean")).reset_index())
        per = per[(per["obs"] > 0) & (per["mu"] > 0)]
        if len(per) == 0:
            raise EmptySelectionError("no glacier with positive measured and predicted mean thickness")
        w = 1.0 / per["_g"].map(per["_g"].value_counts()).to_numpy(float)
        logr = np.log(per["obs"].to_numpy(float) / per["mu"].to_numpy(float))
        lim = math.log(self.max_factor)
        self.factor = float(math.exp(np.clip(weighted_quantile(logr, 0.5, w), -lim, lim)))
        self.n_glaciers = int(per["_g"].nunique())
        return self

    def apply(self, mu: np.ndarray, sigma: np.ndarray, features: Mapping[str, np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(mu, float) * self.factor, np.asarray(sigma, float) * self.factor

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "factor": self.factor, "max_factor": self.max_factor,
                "n_glaciers": self.n_glaciers}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ThicknessScale":
        return cls(factor=float(d["factor"]), max_factor=float(d.get("max_factor", 10.0)),
                   n_glaciers=int(d.get("n_glaciers", 0)))


@dataclass
class _Trees:
    """A boosted ensemble of binary regression trees as flat arrays (numpy-only prediction)."""

    baseline: float
    feature: list[np.ndarray]
    threshold: list[np.ndarray]
    left: list[np.ndarray]
    right: list[np.ndarray]
    missing_left: list[np.ndarray]
    leaf: list[np.ndarray]
    value: list[np.ndarray]

    @classmethod
    def from_sklearn(cls, est: Any) -> "_Trees":
        out = cls(float(np.ravel(est._baseline_prediction)[0]), [], [], [], [], [], [], [])
        for iteration in est._predictors:
            nodes = iteration[0].nodes
            if np.any(nodes["is_categorical"]):
                raise ValueError("categorical splits are not supported")
            out.feature.append(nodes["feature_idx"].astype(np.int64))
            out.threshold.append(nodes["num_threshold"].astype(np.float64))
            out.left.append(nodes["left"].astype(np.int64))
            out.right.append(nodes["right"].astype(np.int64))
            out.missing_left.append(nodes["missing_go_to_left"].astype(bool))
            out.leaf.append(nodes["is_leaf"].astype(bool))
            out.value.append(nodes["value"].astype(np.float64))
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Sum of the trees' leaf values plus the baseline; ``x``: (n, n_features), NaN allowed."""
        n = x.shape[0]
        out = np.full(n, self.baseline)
        rows = np.arange(n)
        for f, t, lft, rgt, ml, lf, v in zip(self.feature, self.threshold, self.left, self.right,
                                            self.missing_left, self.leaf, self.value):
            node = np.zeros(n, np.int64)
            for _ in range(64):
                active = ~lf[node]
                if not active.any():
                    break
                xv = x[rows, f[node]]
                go_left = np.where(np.isnan(xv), ml[node], xv <= t[node])
                node = np.where(active, np.where(go_left, lft[node], rgt[node]), node)
            out += v[node]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "trees": [
            {"feature": f.tolist(), "threshold": t.tolist(), "left": lft.tolist(), "right": rgt.tolist(),
             "missing_left": ml.astype(int).tolist(), "leaf": lf.astype(int).tolist(), "value": v.tolist()}
            for f, t, lft, rgt, ml, lf, v in zip(self.feature, self.threshold, self.left, self.right,
                                                self.missing_left, self.leaf, self.value)]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "_Trees":
        trees = d["trees"]
        return cls(float(d["baseline"]),
                   [np.asarray(t["feature"], np.int64) for t in trees],
                   [np.asarray(t["threshold"], np.float64) for t in trees],
                   [np.asarray(t["left"], np.int64) for t in trees],
                   [np.asarray(t["right"], np.int64) for t in trees],
                   [np.asarray(t["missing_left"], bool) for t in trees],
                   [np.asarray(t["leaf"], bool) for t in trees],
                   [np.asarray(t["value"], np.float64) for t in trees])


def _fit_trees(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, max_iter: int, learning_rate: float, max_depth: int,
               max_leaf_nodes: int, min_samples_leaf: int, l2_regularization: float, seed: int) -> _Trees:
    """Gradient-boosted regression trees (scikit-learn's histogram GBM, squared loss) as :class:`_Trees`."""
    try:
        from sklearn.ensemble import HistGradientBoostingRegressor
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise ImportError("fitting a boosted calibration step needs scikit-learn (pip install scikit-learn)") from exc
    from threadpoolctl import threadpool_limits

    est = HistGradientBoostingRegressor(
        loss="squared_error", learning_rate=learning_rate, max_iter=max_iter, max_depth=max_depth,
        max_leaf_nodes=max_leaf_nodes, min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
        early_stopping=False, random_state=seed)
    with threadpool_limits(limits=1):  # OpenMP threads spin badly on shared cores
        est.fit(x, y, sample_weight=w / w.mean())
    return _Trees.from_sklearn(est)


def _feature_matrix(names: Sequence[str], features: Mapping[str, np.ndarray], mu: np.ndarray) -> np.ndarray:
    cols = []
    for name in names:
        if name == "mu_m":
            cols.append(np.asarray(mu, float).ravel())
        elif name in features:
            cols.append(np.asarray(features[name], float).ravel())
        else:
            raise EmptySelectionError(f"feature {name!r} missing (have {', '.join(features)})")
    return np.stack(cols, axis=1)


@dataclass
class ResidualBooster:
    """``mu' = (mu + h0) exp(f(x)) - h0`` (>= 0) with ``f`` gradient-boosted on per-pixel features.

    Target ``log((obs + h0) / (mu + h0))`` (a multiplicative correction, the same on thin
    Alpine and thick Arctic ice); with ``target="shape"`` (default) minus its mean per
    glacier and case, so the trees learn where a glacier is thicker or thinner than the
    model says and a later :class:`ThicknessScale` sets the level from every glacier
    (glacier-mean surveys included). Squared loss, glacier-balanced weights
    (:func:`glacier_weights`), shallow trees (``max_depth``), few leaves, a large
    ``min_samples_leaf``, L2 on leaf values and a small learning rate: in the spirit of
    IceBoost (Maffezzoli et al. 2025), here as a correction of a physical model rather than
    a thickness model of its own. ``f`` is clipped to ±``max_log_ratio``; the margin stays
    at 0 where the input is 0 (``dist_margin_m`` of half a pixel). ``sigma`` is scaled by
    the same factor as the thickness. Needs scikit-learn to fit, numpy to apply.
    """

    features: tuple[str, ...] = RESIDUAL_FEATURES
    h0_m: float = 10.0
    max_iter: int = 200
    learning_rate: float = 0.05
    max_depth: int = 3
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 200
    l2_regularization: float = 1.0
    max_log_ratio: float = 2.5
    #: "log_ratio": the target as is; "shape": minus its (weighted) mean per glacier and case,
    #: so the trees learn the pattern within a glacier and a scale step sets the level
    target: str = "shape"
    seed: int = 0
    trees: _Trees | None = None
    kind: str = "residual"

    needs_features = True

    def _matrix(self, features: Mapping[str, np.ndarray], mu: np.ndarray) -> np.ndarray:
        return _feature_matrix(self.features, features, mu)

    def fit(self, rows: pd.DataFrame) -> "ResidualBooster":
        r = rows[rows["unit"].isin(CELL_UNITS)] if "unit" in rows else rows
        mu, _, feats = _rows_arrays(r)
        obs = r["obs"].to_numpy(float)
        x = self._matrix(feats, mu)
        ok = np.isfinite(obs) & np.isfinite(mu) & np.all(np.isfinite(x), axis=1)
        if ok.sum() < 2 * self.min_samples_leaf:
            raise EmptySelectionError(f"{int(ok.sum())} usable rows: too few to fit a residual model")
        y = np.log((np.clip(obs[ok], 0, None) + self.h0_m) / (np.clip(mu[ok], 0, None) + self.h0_m))
        w = glacier_weights(r[ok])
        if self.target == "shape":
            key = (r["group"].astype(str) + "\x00" + r["case"].astype(str)).to_numpy()[ok]
            y = y - pd.Series(y).groupby(key).transform("mean").to_numpy()
        elif self.target != "log_ratio":
            raise ValueError(f"unknown residual target {self.target!r} (log_ratio, shape)")
        self.trees = _fit_trees(x[ok], y, w, max_iter=self.max_iter, learning_rate=self.learning_rate,
                                max_depth=self.max_depth, max_leaf_nodes=self.max_leaf_nodes,
                                min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
                                seed=self.seed)
        return self

    def log_ratio(self, mu: np.ndarray, features: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.trees is None:
            raise RuntimeError("ResidualBooster is not fitted")
        mu = np.asarray(mu, float)
        x = self._matrix(features, mu)
        f = np.clip(self.trees.predict(x), -self.max_log_ratio, self.max_log_ratio)
        return f.reshape(mu.shape)

    def apply(self, mu: np.ndarray, sigma: np.ndarray, features: Mapping[str, np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
        mu = np.asarray(mu, float)
        sigma = np.asarray(sigma, float)
        f = self.log_ratio(mu, features)
        base = np.clip(mu, 0, None) + self.h0_m
        new = np.clip(base * np.exp(f) - self.h0_m, 0, None)
        if "dist_margin_m" in features and "pixel_size_m" in features:
            d = np.asarray(features["dist_margin_m"], float)
            # margin pixels sit half a pixel from the outline (glaciology.distance_to_margin_m);
            # the tolerance survives features stored with 7 significant digits
            half = 0.5 * np.asarray(features["pixel_size_m"], float)
            margin = (d <= half * (1 + 1e-3) + 1e-3) & (mu <= 0)
            new = np.where(margin, 0.0, new)
        new = np.where(np.isfinite(mu), new, np.nan)
        factor = np.exp(f)
        if self.target == "shape" and GLACIER_KEY in features:
            # trained on the pattern within each glacier (its target minus its glacier mean), so
            # applied as a pattern: ice moves within each glacier, whose mean stays the model's
            # (the scale step sets the level); nothing is extrapolated to glaciers unlike the
            # measured ones (without this Columbia, 935 km2, lost most of its ice)
            keep = keep_glacier_means(new, mu, features[GLACIER_KEY])
            new, factor = new * keep, factor * keep
        return new, sigma * factor

    def to_dict(self) -> dict[str, Any]:
        if self.trees is None:
            raise RuntimeError("ResidualBooster is not fitted")
        return {"kind": self.kind, "features": list(self.features), "h0_m": self.h0_m,
                "max_log_ratio": self.max_log_ratio, "target": self.target,
                "hyperparameters": {"max_iter": self.max_iter, "learning_rate": self.learning_rate,
                                    "max_depth": self.max_depth, "max_leaf_nodes": self.max_leaf_nodes,
                                    "min_samples_leaf": self.min_samples_leaf,
                                    "l2_regularization": self.l2_regularization, "seed": self.seed},
                "trees": self.trees.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ResidualBooster":
        hp = d.get("hyperparameters", {})
        return cls(features=tuple(d["features"]), h0_m=float(d["h0_m"]), max_log_ratio=float(d["max_log_ratio"]),
                   target=str(d.get("target", "shape")), trees=_Trees.from_dict(d["trees"]), **hp)


def _sigma_model(params: np.ndarray, sigma: np.ndarray, mu: np.ndarray) -> np.ndarray:
    a, b, c = params
    return np.sqrt((a * np.nan_to_num(sigma)) ** 2 + (b * np.clip(mu, 0, None)) ** 2 + c**2)


#: features of the boosted interval model (mu_m = the calibrated thickness)
SIGMA_FEATURES: tuple[str, ...] = ("mu_m", "sigma_m", "h_mc_m", "slope_300m", "dist_margin_m", "rel_elevation",
                                   "log10_area_km2", "elev_range_m", "pixel_size_m")


@dataclass
class IntervalCalibrator:
    """Calibrated 1-sigma of the thickness: 68 % of |obs - mu| below it, 90 % below ``z90`` times it.

    Fitted on out-of-fold residuals r = obs - mu (:class:`Calibration` cross-fits the
    previous steps, so no residual comes from a model that saw its glacier), every glacier
    weighing the same (:func:`glacier_weights`). The shape of sigma:

    * ``method="boosted"`` (default): ``sigma' = k exp(g(x))``, ``g`` shallow boosted trees
      fitted to ``log(|r| + 1 m)`` on :data:`SIGMA_FEATURES` (thickness, the model's own
      spread, slope, distance to the margin, glacier size, pixel size: the network's error
      grows with it, 14 m at 50 m to 26 m at 200 m on simulated glaciers), so thick ice caps and small
      Alpine glaciers get the uncertainty their kind of glacier has;
    * ``method="parametric"``: ``sigma' = k sqrt((a sigma)^2 + (b mu)^2 + c^2)``,
      ``a, b, c >= 0`` by a weighted Gaussian likelihood.

    ``k`` makes the weighted 68 % quantile of ``|r| / sigma'`` equal 1; ``z90`` is its 90 %
    quantile (1.645 for Gaussian errors, larger for heavy tails). At glacier level, the error
    of a glacier's mean thickness over its measured cells is compared with
    :meth:`glacier_std` of those cells: ``glacier_correlation`` (within-glacier correlation of
    pixel errors) is the smallest value in [0, 1] reaching 68 % coverage over glaciers; where
    even full correlation is not enough, ``glacier_factor`` > 1 widens it; the 90 % glacier
    interval is ``glacier_z90`` times the 1-sigma.
    """

    method: str = "boosted"
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    features: tuple[str, ...] = SIGMA_FEATURES
    max_iter: int = 100
    learning_rate: float = 0.05
    max_depth: int = 3
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 200
    l2_regularization: float = 1.0
    seed: int = 0
    k: float = 1.0
    trees: _Trees | None = None
    z90: float = _GAUSS_Z90
    glacier_correlation: float = 1.0
    glacier_factor: float = 1.0
    glacier_z90: float = _GAUSS_Z90
    #: which glacier errors calibrate the glacier level: "means" (whole-glacier mean
    #: thickness, what a volume's sigma is about), "all" (also the mean over each glacier's
    #: measured cells), "auto" (means when there are ``min_mean_units`` of them, else all)
    glacier_units: str = "auto"
    min_mean_units: int = 8
    n_fit: int = 0
    n_glacier_units: int = 0
    kind: str = "interval"

    @property
    def needs_features(self) -> bool:
        return self.method == "boosted"

    def _raw_sigma(self, mu: np.ndarray, sigma: np.ndarray, features: Mapping[str, np.ndarray]) -> np.ndarray:
        mu = np.asarray(mu, float)
        if self.method == "parametric":
            return _sigma_model(np.array([self.a, self.b, self.c]), np.asarray(sigma, float), mu)
        if self.trees is None:
            raise RuntimeError("IntervalCalibrator is not fitted")
        feats = {**features, "sigma_m": np.asarray(sigma, float)}
        return np.exp(self.trees.predict(_feature_matrix(self.features, feats, mu))).reshape(mu.shape)

    def fit(self, rows: pd.DataFrame, pixels: pd.DataFrame | None = None) -> "IntervalCalibrator":
        """``rows``/``pixels``: out-of-fold predictions; ``pixels`` (those of the glacier-mean
        rows) let glacier means take part in the glacier-level calibration."""
        all_rows = rows
        r = rows[rows["unit"].isin(CELL_UNITS)] if "unit" in rows else rows
        mu, sigma, feats = _rows_arrays(r)
        obs = r["obs"].to_numpy(float)
        ok = np.isfinite(obs) & np.isfinite(mu)
        if self.method == "boosted":
            x = _feature_matrix(self.features, {**feats, "sigma_m": sigma}, mu)
            ok &= np.all(np.isfinite(x), axis=1)
        r, obs, mu, sigma = r[ok], obs[ok], mu[ok], sigma[ok]
        feats = {k_: v[ok] for k_, v in feats.items()}
        if len(r) < 10:
            raise EmptySelectionError(f"{len(r)} rows: too few to calibrate intervals")
        w = glacier_weights(r)
        w = w / w.sum()
        res = obs - mu
        if self.method == "boosted":
            if len(r) < 2 * self.min_samples_leaf:
                raise EmptySelectionError(f"{len(r)} rows: too few to fit a boosted interval model")
            self.trees = _fit_trees(x[ok], np.log(np.abs(res) + 1.0), w, max_iter=self.max_iter,
                                    learning_rate=self.learning_rate, max_depth=self.max_depth,
                                    max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                                    l2_regularization=self.l2_regularization, seed=self.seed)
        elif self.method == "parametric":
            scale0 = max(float(np.sqrt(np.sum(w * res**2))), 1.0)

            def nll(logp: np.ndarray) -> float:
                s_ = np.maximum(_sigma_model(np.exp(logp), sigma, mu), 1e-3)
                return float(np.sum(w * (np.log(s_) + 0.5 * (res / s_) ** 2)))

            starts = [np.log([1.0, 0.3, 0.5 * scale0]), np.log([0.1, 0.1, scale0]),
                      np.log([1.0, 0.05, 0.2 * scale0])]
            best = min((optimize.minimize(nll, s0, method="Nelder-Mead",
                                          options={"xatol": 1e-4, "fatol": 1e-8, "maxiter": 2000})
                        for s0 in starts), key=lambda o: o.fun)
            self.a, self.b, self.c = (float(v) for v in np.exp(best.x))
        else:
            raise ValueError(f"unknown interval method {self.method!r} (boosted, parametric)")
        self.k = 1.0
        z = np.abs(res) / np.maximum(self._raw_sigma(mu, sigma, feats), 1e-6)
        k68, k90 = weighted_quantile(z, LEVELS[0], w), weighted_quantile(z, LEVELS[1], w)
        self.k = float(k68)
        self.z90 = float(k90 / k68) if k68 > 0 else _GAUSS_Z90
        self.n_fit = int(len(r))
        self._fit_glacier_level(r, res, self.sigma(mu, sigma, feats), all_rows, pixels)
        return self

    def sigma(self, mu: np.ndarray, sigma: np.ndarray, features: Mapping[str, np.ndarray] | None = None
              ) -> np.ndarray:
        """The calibrated 1-sigma (m)."""
        return self.k * self._raw_sigma(mu, sigma, features or {})

    def glacier_std(self, sigma_m: np.ndarray) -> float:
        """1-sigma of a glacier's mean thickness (m) from its pixels' calibrated sigma."""
        s = np.asarray(sigma_m, float)
        s = s[np.isfinite(s)]
        if s.size == 0:
            return float("nan")
        return self.glacier_factor * _correlated_sum(s, self.glacier_correlation) / s.size

    def _fit_glacier_level(self, r: pd.DataFrame, res: np.ndarray, sig: np.ndarray, rows: pd.DataFrame,
                           pixels: pd.DataFrame | None) -> None:
        """Glacier units: each (glacier, case) of cells, and each glacier-mean row with pixels."""
        key = (r["group"].astype(str) + "\x00" + r["case"].astype(str)).to_numpy()
        errs, sums, sqs, groups = [], [], [], []
        for k in np.unique(key):
            m = key == k
            n = int(m.sum())
            errs.append(abs(float(res[m].mean())))
            sums.append(float(sig[m].sum()) / n)
            sqs.append(float(np.sqrt(np.sum(sig[m] ** 2))) / n)
            groups.append(k.split("\x00")[0])
        means = rows[rows["unit"] == MEAN_UNIT] if "unit" in rows else rows.iloc[0:0]
        if pixels is not None and len(pixels) and len(means):
            for row in means.itertuples(index=False):
                px = pixels[(pixels["example"].astype(str) == str(row.example))
                            & (pixels["rgi_id"].astype(str) == str(row.rgi_id))]
                pm, ps, pf = _rows_arrays(px)
                ok = np.isfinite(pm)
                if not ok.any() or not np.isfinite(row.obs):
                    continue
                sp = self.sigma(pm[ok], ps[ok], {k_: v[ok] for k_, v in pf.items()})
                n = int(ok.sum())
                errs.append(abs(float(row.obs) - float(pm[ok].mean())))
                sums.append(float(np.sum(sp)) / n)
                sqs.append(float(np.sqrt(np.sum(sp**2))) / n)
                groups.append(str(row.group))
        n_cell_units = len(np.unique(key))
        if self.glacier_units == "means" or (self.glacier_units == "auto"
                                             and len(errs) - n_cell_units >= self.min_mean_units):
            errs, sums, sqs, groups = (v[n_cell_units:] for v in (errs, sums, sqs, groups))
        elif self.glacier_units not in ("auto", "all"):
            raise ValueError(f"unknown glacier_units {self.glacier_units!r} (auto, all, means)")
        e, s1, s0 = np.array(errs), np.array(sums), np.array(sqs)
        # each glacier once (the same glacier measured twice, e.g. radar + grid, counts half each)
        g = pd.Series(groups)
        wg = 1.0 / g.map(g.value_counts()).to_numpy(float)
        self.n_glacier_units = int(e.size)
        if e.size < 3:
            return

        def std(rho: float) -> np.ndarray:
            return np.sqrt((1 - rho) * s0**2 + rho * s1**2)

        def cov(rho: float) -> float:
            return weighted_coverage(e, std(rho), wg)

        if cov(1.0) < LEVELS[0]:
            rho, factor = 1.0, weighted_quantile(e / std(1.0), LEVELS[0], wg)
        elif cov(0.0) >= LEVELS[0]:
            rho, factor = 0.0, 1.0
        else:
            lo, hi = 0.0, 1.0
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if cov(mid) < LEVELS[0] else (lo, mid)
            rho, factor = hi, 1.0
        self.glacier_correlation, self.glacier_factor = float(rho), float(factor)
        z = e / (factor * std(rho))
        k68, k90 = weighted_quantile(z, LEVELS[0], wg), weighted_quantile(z, LEVELS[1], wg)
        self.glacier_z90 = float(max(k90 / max(k68, 1e-9), 1.0))

    def apply(self, mu: np.ndarray, sigma: np.ndarray, features: Mapping[str, np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
        mu = np.asarray(mu, float)
        return mu, np.where(np.isfinite(mu), self.sigma(mu, sigma, features), np.nan)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "method": self.method, "k": self.k, "z90": self.z90,
                             "glacier_correlation": self.glacier_correlation, "glacier_factor": self.glacier_factor,
                             "glacier_z90": self.glacier_z90, "n_fit": self.n_fit,
                             "glacier_units": self.glacier_units, "min_mean_units": self.min_mean_units,
                             "n_glacier_units": self.n_glacier_units}
        if self.method == "parametric":
            d.update(a=self.a, b=self.b, c_m=self.c)
        else:
            if self.trees is None:
                raise RuntimeError("IntervalCalibrator is not fitted")
            d.update(features=list(self.features), trees=self.trees.to_dict(),
                     hyperparameters={"max_iter": self.max_iter, "learning_rate": self.learning_rate,
                                      "max_depth": self.max_depth, "max_leaf_nodes": self.max_leaf_nodes,
                                      "min_samples_leaf": self.min_samples_leaf,
                                      "l2_regularization": self.l2_regularization, "seed": self.seed})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "IntervalCalibrator":
        common = dict(method=str(d.get("method", "parametric")), k=float(d.get("k", 1.0)), z90=float(d["z90"]),
                      glacier_correlation=float(d["glacier_correlation"]),
                      glacier_factor=float(d["glacier_factor"]), glacier_z90=float(d["glacier_z90"]),
                      n_fit=int(d.get("n_fit", 0)), n_glacier_units=int(d.get("n_glacier_units", 0)),
                      glacier_units=str(d.get("glacier_units", "auto")), min_mean_units=int(d.get("min_mean_units", 8)))
        if common["method"] == "parametric":
            return cls(a=float(d["a"]), b=float(d["b"]), c=float(d["c_m"]), **common)
        return cls(features=tuple(d["features"]), trees=_Trees.from_dict(d["trees"]),
                   **d.get("hyperparameters", {}), **common)


STEP_TYPES = {"scale": ThicknessScale, "residual": ResidualBooster, "interval": IntervalCalibrator}


def make_step(kind: str, **kwargs: Any) -> Any:
    """A calibration step by name (``scale``, ``residual``, ``interval``); unknown names raise."""
    if kind not in STEP_TYPES:
        raise ValueError(f"unknown calibration step {kind!r}; choose from {', '.join(STEP_TYPES)}")
    return STEP_TYPES[kind](**kwargs)


# --------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------
def data_record(rows: pd.DataFrame) -> dict[str, Any]:
    """What a fit saw: cases with their row counts, glacier groups, regions."""
    rec: dict[str, Any] = {"n_rows": int(len(rows))}
    if "case" in rows:
        rec["cases"] = {str(k): int(v) for k, v in rows["case"].value_counts().sort_index().items()}
    if "group" in rows:
        rec["glaciers"] = sorted(map(str, rows["group"].unique()))
        rec["n_glaciers"] = len(rec["glaciers"])
    if "region" in rows:
        rec["regions"] = sorted(map(str, rows["region"].unique()))
    return rec


@dataclass
class Calibration:
    """Steps applied in order (default ``residual+scale+interval``) to a thickness map.

    ``fit(rows, pixels)`` fits each step on the output of the previous ones; a step that must see
    out-of-sample inputs (the interval) gets them by group-wise cross-fitting of the
    previous steps (``inner_folds`` folds of whole glaciers). ``apply`` works on arrays of
    any shape (a window, or table rows). An empty calibration is the identity.
    """

    steps: list[Any] = field(default_factory=list)
    inner_folds: int = 5
    seed: int = 0
    trained_on: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def variant(cls, name: str, **kwargs: Any) -> "Calibration":
        """By name: ``none``, ``scale``, ``residual+scale``, ``scale+interval``, ``residual+scale+interval``
        (any ``+``-joined sequence of ``scale``, ``residual``, ``interval``), default settings."""
        if name == "none":
            return cls([], **kwargs)
        return cls([make_step(k) for k in name.split("+")], **kwargs)

    @property
    def name(self) -> str:
        return "+".join(s.kind for s in self.steps) or "none"

    def fit(self, rows: pd.DataFrame, pixels: pd.DataFrame | None = None) -> "Calibration":
        """Fit the steps in order on ``rows`` (see :func:`apply_to_rows` for ``pixels``)."""
        need = {"obs", "mu", "sigma", "group", "case"} - set(rows.columns)
        if need:
            raise EmptySelectionError(f"calibration table lacks columns {sorted(need)}")
        rows = (rows if "unit" in rows else rows.assign(unit="cell")).reset_index(drop=True)
        done: list[Any] = []
        for step in self.steps:
            if step.kind == "interval":
                step.fit(*self._out_of_fold(done, rows, pixels))
            else:
                step.fit(apply_to_rows(done, rows, pixels))
            done.append(step)
        self.trained_on = data_record(rows)
        return self

    def _out_of_fold(self, steps: Sequence[Any], rows: pd.DataFrame, pixels: pd.DataFrame | None
                     ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Rows (and the pixels of glacier-mean rows) with mu/sigma from ``steps`` refitted
        without each row's glacier (group k-fold)."""
        if not steps:
            return apply_to_rows([], rows, pixels, return_pixels=True) if pixels is not None else (rows, None)
        out = rows.copy()
        px_parts = []
        for train, test in group_kfold(rows["group"].to_numpy(), self.inner_folds, self.seed):
            inner = Calibration([_unfitted_copy(s) for s in steps], self.inner_folds, self.seed)
            inner.fit(rows.iloc[train], pixels)
            fitted, px = apply_to_rows(inner.steps, rows.iloc[test], pixels, return_pixels=True)
            out.loc[out.index[test], "mu"] = fitted["mu"].to_numpy()
            out.loc[out.index[test], "sigma"] = fitted["sigma"].to_numpy()
            px_parts.append(px)
        px_all = pd.concat([p for p in px_parts if len(p)], ignore_index=True) if any(len(p) for p in px_parts) \
            else None
        return out, px_all

    def apply(self, mu: np.ndarray, sigma: np.ndarray, features: Mapping[str, np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated (thickness, 1-sigma) on arrays of any shape; ``features`` as from
        :func:`calibration_features` (only needed by a residual step)."""
        mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
        feats = dict(features or {})
        for step in self.steps:
            feats["mu_m"], feats["sigma_m"] = mu, sigma
            mu, sigma = step.apply(mu, sigma, feats)
        return mu, sigma

    def apply_window(self, surface: np.ndarray, ids: np.ndarray, pixel_size_m: float, mu: np.ndarray,
                     sigma: np.ndarray, own: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`apply` on a DEM window: features from the window, result on ``own`` (else NaN)."""
        feats = calibration_features(surface, ids, pixel_size_m, np.nan_to_num(mu), np.nan_to_num(sigma))
        m, s = self.apply(np.nan_to_num(mu), np.nan_to_num(sigma), feats)
        where = (np.asarray(ids) > 0) if own is None else np.asarray(own, bool)
        return np.where(where, m, np.nan), np.where(where, s, np.nan)

    @property
    def interval(self) -> IntervalCalibrator | None:
        return next((s for s in self.steps if s.kind == "interval"), None)

    @property
    def z90(self) -> float:
        """Multiplier of the 1-sigma for the 90 % interval (1.645 without an interval step)."""
        iv = self.interval
        return iv.z90 if iv is not None else _GAUSS_Z90

    @property
    def glacier_correlation(self) -> float:
        iv = self.interval
        return iv.glacier_correlation if iv is not None else 1.0

    def glacier_mean_std(self, sigma_m: np.ndarray) -> float:
        """1-sigma of a glacier's mean thickness (m) from its pixels' calibrated sigma
        (fully correlated pixel errors without an interval step)."""
        iv = self.interval
        if iv is not None:
            return iv.glacier_std(sigma_m)
        s = np.asarray(sigma_m, float)
        s = s[np.isfinite(s)]
        return float(s.mean()) if s.size else float("nan")

    @property
    def glacier_z90(self) -> float:
        """Multiplier of a glacier's 1-sigma (mean thickness, volume) for its 90 % interval."""
        iv = self.interval
        return iv.glacier_z90 if iv is not None else _GAUSS_Z90

    def volume_std_km3(self, sigma_m: np.ndarray, pixel_area_m2: float) -> float:
        """1-sigma of a glacier's volume (km3): :func:`glacier_volume_std` with the fitted
        correlation (and glacier factor); fully correlated without an interval step."""
        iv = self.interval
        if iv is None:
            return glacier_volume_std(sigma_m, pixel_area_m2, 1.0)
        return iv.glacier_factor * glacier_volume_std(sigma_m, pixel_area_m2, iv.glacier_correlation)

    # --- files ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": FILE_KIND, "version": FILE_VERSION, "features_version": FEATURES_VERSION,
                "feature_names": list(FEATURE_NAMES), "name": self.name, "inner_folds": self.inner_folds,
                "seed": self.seed, "steps": [s.to_dict() for s in self.steps], "trained_on": self.trained_on,
                "meta": self.meta}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Calibration":
        if d.get("kind") != FILE_KIND:
            raise CorruptFileError(f"not a glacierbed calibration (kind={d.get('kind')!r})")
        if int(d.get("features_version", -1)) != FEATURES_VERSION:
            raise CorruptFileError(f"calibration built on features v{d.get('features_version')}, "
                                   f"this glacierbed computes v{FEATURES_VERSION}: refit it")
        steps = [STEP_TYPES[s["kind"]].from_dict(s) for s in d["steps"]]
        return cls(steps, int(d.get("inner_folds", 5)), int(d.get("seed", 0)), dict(d.get("trained_on", {})),
                   dict(d.get("meta", {})))

    def save(self, path: str | Path) -> Path:
        """Atomic JSON write (compact: the trees are long lists of numbers)."""
        return write_text(path, json.dumps(_json_clean(self.to_dict()), separators=(",", ":"), allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        path = Path(path)
        if not path.exists():
            raise DataNotFoundError(f"{path}: calibration file not found")
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptFileError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(d)


def _json_clean(obj: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, Mapping):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


#: fields of the steps that a fit sets (an unfitted copy keeps every other field)
_FITTED = frozenset({"factor", "n_glaciers", "trees", "a", "b", "c", "k", "z90", "glacier_correlation",
                     "glacier_factor", "glacier_z90", "n_fit", "n_glacier_units"})


def _unfitted_copy(step: Any) -> Any:
    """The same step with its settings but nothing fitted."""
    return type(step)(**{f.name: getattr(step, f.name) for f in fields(step) if f.init and f.name not in _FITTED})


def _apply_arrays(steps: Sequence[Any], mu: np.ndarray, sigma: np.ndarray, feats: dict[str, np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray]:
    for step in steps:
        feats["mu_m"], feats["sigma_m"] = mu, sigma
        mu, sigma = step.apply(mu, sigma, feats)
    return mu, sigma


def apply_to_rows(steps: Sequence[Any], rows: pd.DataFrame, pixels: pd.DataFrame | None = None,
                  return_pixels: bool = False) -> Any:
    """Copy of ``rows`` with ``mu``/``sigma`` passed through ``steps``.

    Point and cell rows carry their own features. A glacier-mean row (unit
    ``glacier_mean``) is the mean of its glacier's pixels: with ``pixels`` (rows with
    ``example``, ``rgi_id``, ``mu``, ``sigma`` and the features of every pixel of the
    glacier), the steps are applied to those pixels and averaged; without them, steps that
    act on features (the residual) leave the row NaN. ``return_pixels``: also return the
    transformed pixels of the glacier-mean rows, ``(rows, pixels)``.
    """
    out = rows.copy()
    px_out = pixels.iloc[0:0].copy() if pixels is not None else pd.DataFrame()
    if not steps or len(out) == 0:
        if return_pixels and pixels is not None and len(out) and "unit" in out:
            px_out = _pixels_of(out[out["unit"] == MEAN_UNIT], pixels)
        return (out, px_out) if return_pixels else out
    mu, sigma, feats = _rows_arrays(out)
    unit = out["unit"].to_numpy(object) if "unit" in out else np.full(len(out), "cell", object)
    cell = np.isin(unit, CELL_UNITS)
    new_mu, new_sigma = np.full(len(out), np.nan), np.full(len(out), np.nan)
    if cell.any():
        new_mu[cell], new_sigma[cell] = _apply_arrays(steps, mu[cell], sigma[cell],
                                                      {k: v[cell] for k, v in feats.items()})
    mean = unit == MEAN_UNIT
    if mean.any():
        if pixels is not None and len(pixels):
            keys = pd.MultiIndex.from_arrays([out["example"].astype(str), out["rgi_id"].astype(str)])
            px = _pixels_of(out[mean], pixels)
            pm, ps, pf = _rows_arrays(px)
            pm, ps = _apply_arrays(steps, pm, ps, pf)
            px_out = px.assign(mu=pm, sigma=ps)
            agg = (pd.DataFrame({"example": px["example"].astype(str).to_numpy(),
                                 "rgi_id": px["rgi_id"].astype(str).to_numpy(), "mu": pm, "sigma": ps})
                   .groupby(["example", "rgi_id"]).mean())
            found = agg.reindex(keys[mean])
            new_mu[mean], new_sigma[mean] = found["mu"].to_numpy(float), found["sigma"].to_numpy(float)
        elif not any(getattr(s, "needs_features", False) for s in steps):
            new_mu[mean], new_sigma[mean] = _apply_arrays(steps, mu[mean], sigma[mean], {})
    out["mu"], out["sigma"] = new_mu, new_sigma
    return (out, px_out) if return_pixels else out


def _pixels_of(rows: pd.DataFrame, pixels: pd.DataFrame) -> pd.DataFrame:
    """The pixels of the glaciers (example, rgi_id) of ``rows``."""
    keys = pd.MultiIndex.from_arrays([rows["example"].astype(str), rows["rgi_id"].astype(str)])
    pkeys = pd.MultiIndex.from_arrays([pixels["example"].astype(str), pixels["rgi_id"].astype(str)])
    return pixels[pkeys.isin(keys)]


__all__ = ["FEATURE_NAMES", "RESIDUAL_FEATURES", "CELL_UNITS", "MEAN_UNIT", "LEVELS", "calibration_features",
           "glacier_weights", "weighted_quantile", "weighted_coverage", "group_splits", "group_kfold",
           "glacier_volume_std", "regional_volume_std", "ThicknessScale", "ResidualBooster", "IntervalCalibrator",
           "Calibration", "make_step", "apply_to_rows", "data_record"]
