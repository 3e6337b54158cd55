"""Calibration steps on the thickness: one glacier-wise factor, and a boosted residual on per-pixel features."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from glacierbed.core.errors import EmptySelectionError
from glacierbed.posterior.calibration.features import (CELL_UNITS, GLACIER_KEY, RESIDUAL_FEATURES, feature_matrix,
                                                       keep_glacier_means, rows_arrays)
from glacierbed.posterior.calibration.stats import glacier_weights, weighted_quantile
from glacierbed.posterior.calibration.trees import BoostedTrees, BoostingSettings


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
class ResidualBooster(BoostingSettings):
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
    the same factor as the thickness. The trees: :class:`BoostedTrees` (scikit-learn).
    """

    features: tuple[str, ...] = RESIDUAL_FEATURES
    h0_m: float = 10.0
    max_iter: int = 200
    max_log_ratio: float = 2.5
    #: "log_ratio": the target as is; "shape": minus its (weighted) mean per glacier and case,
    #: so the trees learn the pattern within a glacier and a scale step sets the level
    target: str = "shape"
    trees: BoostedTrees | None = None
    kind: str = "residual"

    needs_features = True

    def fit(self, rows: pd.DataFrame) -> "ResidualBooster":
        r = rows[rows["unit"].isin(CELL_UNITS)] if "unit" in rows else rows
        mu, _, feats = rows_arrays(r)
        obs = r["obs"].to_numpy(float)
        x = feature_matrix(self.features, feats, mu)
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
        self.trees = self.fit_trees(x[ok], y, w)
        return self

    def log_ratio(self, mu: np.ndarray, features: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.trees is None:
            raise RuntimeError("ResidualBooster is not fitted")
        mu = np.asarray(mu, float)
        x = feature_matrix(self.features, features, mu)
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
                "hyperparameters": self.hyperparameters(), "trees": self.trees.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ResidualBooster":
        features = tuple(d["features"])
        return cls(features=features, h0_m=float(d["h0_m"]), max_log_ratio=float(d["max_log_ratio"]),
                   target=str(d.get("target", "shape")), trees=BoostedTrees.from_dict(d["trees"], len(features)),
                   **d.get("hyperparameters", {}))
