"""A glacier-level correction of the model's mean thickness, learned from measured glaciers.

The errors that remain after the network are mostly a glacier's *mean* thickness (its
volume), and their sign changes with the kind of glacier, so one global factor cannot fix
them. :class:`GlacierLevelScale` predicts each glacier's ``log(measured / predicted)``
from glacier-level features — attributes a user always has
(:mod:`glacierbed.data.attributes`) and, for a learned consensus, the log ratio of
independent estimators (volume–area scaling, mass conservation, the SIA stress band) to
the network — with a weighted ridge regression whose penalty is chosen by an inner
leave-one-glacier-out loop. Its parameters are plain numbers (JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

#: features of the attribute-only model (S1 of the selection protocol)
ATTRIBUTE_FEATURES = ("log10_area_km2", "z_range_m", "z_median_m", "slope_deg", "abs_latitude_deg", "northness",
                      "hypsometric_index", "log10_pixel_size_m")
#: members of the learned consensus: log(member mean / network mean)
MEMBER_FEATURES = ("log_ratio_va", "log_ratio_mass_conservation", "log_ratio_sia_band")
ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0)


def _ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Weighted ridge (intercept unpenalised) on standardised ``x``: coefficients and intercept."""
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha).fit(x, y, sample_weight=w)
    return np.asarray(model.coef_, float), float(model.intercept_)


def _weighted_sse(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> float:
    """Leave-one-glacier-out squared error of a ridge with penalty ``alpha`` (one row = one glacier)."""
    err = 0.0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        coef, icpt = _ridge(x[keep], y[keep], w[keep], alpha)
        err += w[i] * float(x[i] @ coef + icpt - y[i]) ** 2
    return err


@dataclass
class GlacierLevelScale:
    """``log(measured / predicted)`` per glacier from glacier-level features (weighted ridge)."""

    features: tuple[str, ...] = ATTRIBUTE_FEATURES
    alphas: tuple[float, ...] = ALPHAS
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    coef: list[float] = field(default_factory=list)
    intercept: float = 0.0
    alpha: float = float("nan")
    n_glaciers: int = 0

    def _standardised(self, table: pd.DataFrame) -> np.ndarray:
        x = table[list(self.features)].to_numpy(float)
        x = np.where(np.isfinite(x), x, np.asarray(self.mean))  # a missing feature counts as average
        return (x - np.asarray(self.mean)) / np.asarray(self.std)

    def fit(self, table: pd.DataFrame, log_ratio: np.ndarray, weight: np.ndarray) -> "GlacierLevelScale":
        """Fit on one row per glacier; the penalty by inner leave-one-glacier-out (nested in any outer fold)."""
        x = table[list(self.features)].to_numpy(float)
        self.mean = np.nanmean(x, axis=0).tolist()
        self.std = [s if s > 0 else 1.0 for s in np.nanstd(x, axis=0).tolist()]
        xs = self._standardised(table)
        y, w = np.asarray(log_ratio, float), np.asarray(weight, float)
        scores = {a: _weighted_sse(xs, y, w, a) for a in self.alphas} if len(y) > 3 else {max(self.alphas): 0.0}
        self.alpha = float(min(scores, key=scores.get))
        coef, self.intercept = _ridge(xs, y, w, self.alpha)
        self.coef, self.n_glaciers = coef.tolist(), int(len(y))
        return self

    def log_ratio(self, table: pd.DataFrame) -> np.ndarray:
        """Predicted ``log(measured / predicted)`` for each row (glacier) of ``table``."""
        return self._standardised(table) @ np.asarray(self.coef) + self.intercept

    def factor(self, table: pd.DataFrame) -> np.ndarray:
        """The multiplicative correction of each glacier's thickness."""
        return np.exp(self.log_ratio(table))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "glacier_level", "features": list(self.features), "alphas": list(self.alphas),
                "mean": self.mean, "std": self.std, "coef": self.coef, "intercept": self.intercept,
                "alpha": self.alpha, "n_glaciers": self.n_glaciers}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GlacierLevelScale":
        return cls(features=tuple(d["features"]), alphas=tuple(d["alphas"]), mean=list(d["mean"]),
                   std=list(d["std"]), coef=list(d["coef"]), intercept=float(d["intercept"]),
                   alpha=float(d["alpha"]), n_glaciers=int(d["n_glaciers"]))


def weighted_global_log_ratio(log_ratio: Sequence[float], weight: Sequence[float]) -> float:
    """The reference S0: one weighted mean log ratio for every glacier."""
    return float(np.average(np.asarray(log_ratio, float), weights=np.asarray(weight, float)))
