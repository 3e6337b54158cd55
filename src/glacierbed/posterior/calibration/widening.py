"""Intervals that widen with a glacier's distance from the glaciers the calibration was fitted on.

The interval step's 1-sigma ``s`` (:class:`~glacierbed.posterior.calibration.interval.IntervalCalibrator`)
is widened by the distance ``d`` (:class:`~glacierbed.posterior.calibration.distance.AttributeDistance`)
of the pixel's glacier to the fitted glaciers:

* ``form="linear"``: ``s (1 + gamma d)``;
* ``form="quadrature"``: ``sqrt(s^2 + (gamma d mu)^2)``, an extra error proportional to the
  thickness and the distance.

Both are ``s`` at a fitted glacier's own attributes (``d = 0``). ``gamma`` (and the step's
``k`` and ``z90``) are fitted on out-of-fold values: the sigma trees refitted without each of
a few folds of glaciers, the held-out glaciers' distance measured to the other folds'
glaciers (:func:`fit_gamma`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from glacierbed.posterior.calibration.distance import AttributeDistance, attribute_matrix
from glacierbed.posterior.calibration.features import LEVELS
from glacierbed.posterior.calibration.stats import weighted_quantile

#: widening forms and the gamma grid searched for each
GAMMA_GRIDS = {"linear": np.linspace(0.0, 4.0, 41), "quadrature": np.linspace(0.0, 1.0, 41)}


def widening_factor(form: str, gamma: float, d: np.ndarray, mu: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Factor on the 1-sigma ``s`` (1 where ``d`` is 0 or NaN)."""
    d = np.nan_to_num(np.asarray(d, float))
    if form == "linear":
        return 1.0 + gamma * d
    if form == "quadrature":
        ratio = np.clip(np.asarray(mu, float), 0, None) / np.maximum(np.asarray(s, float), 1e-6)
        return np.sqrt(1.0 + (gamma * d * np.nan_to_num(ratio)) ** 2)
    raise ValueError(f"unknown widening form {form!r} ({', '.join(GAMMA_GRIDS)})")


def glacier_coverage(z: np.ndarray, half: float, glacier: np.ndarray) -> np.ndarray:
    """Per glacier (labels ``glacier``), the share of its ``z`` at or below ``half``."""
    return pd.Series(np.asarray(z, float) <= half).groupby(np.asarray(glacier)).mean().to_numpy(float)


def fit_gamma(form: str, abs_r: np.ndarray, raw: np.ndarray, d: np.ndarray, mu: np.ndarray, w: np.ndarray,
              glacier: np.ndarray) -> tuple[float, float, float]:
    """``(gamma, k, z90)`` from out-of-fold errors ``|r|``, the sigma trees' ``raw = exp(g(x))``
    (fitted without the row's glacier) and the glacier's distance ``d``.

    For each gamma of :data:`GAMMA_GRIDS`, ``k`` is the ``w``-weighted 68 % quantile of
    ``|r| / (raw factor)`` (iterated where the factor depends on ``k``) and ``z90`` its 90/68
    quantile ratio; gamma minimises the mean over glaciers of ``(coverage68 - 0.68)^2 +
    (coverage90 - 0.90)^2`` (the smallest gamma on ties).
    """
    best: tuple[float, float, float, float] | None = None
    for gamma in GAMMA_GRIDS[form]:
        k = weighted_quantile(abs_r / raw, LEVELS[0], w)
        for _ in range(1 if form == "linear" else 4):
            z = abs_r / (raw * widening_factor(form, float(gamma), d, mu, k * raw))
            k = weighted_quantile(z, LEVELS[0], w)
        k90 = weighted_quantile(z, LEVELS[1], w)
        c68, c90 = glacier_coverage(z, k, glacier), glacier_coverage(z, k90, glacier)
        loss = float(np.mean((c68 - LEVELS[0]) ** 2 + (c90 - LEVELS[1]) ** 2))
        if best is None or loss < best[0] - 1e-12:
            best = (loss, float(gamma), float(k), float(k90 / k) if k > 0 else float("nan"))
    assert best is not None
    return best[1], best[2], best[3]


@dataclass
class DistanceWidening:
    """A fitted widening: the form, ``gamma`` and the fitted glaciers' attributes."""

    form: str = "linear"
    gamma: float = 0.0
    distance: AttributeDistance = field(default_factory=AttributeDistance)

    def widen(self, s: np.ndarray, mu: np.ndarray, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """The widened 1-sigma; the glacier attributes come from ``features``
        (:func:`~glacierbed.posterior.calibration.distance.window_attributes` or table columns)."""
        s = np.asarray(s, float)
        if self.gamma == 0.0:
            return s
        d = self.distance.distance(attribute_matrix(features, s.size)).reshape(s.shape)
        return s * widening_factor(self.form, self.gamma, d, mu, s)

    def to_dict(self) -> dict[str, Any]:
        return {"form": self.form, "gamma": self.gamma, "distance": self.distance.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DistanceWidening":
        return cls(str(d["form"]), float(d["gamma"]), AttributeDistance.from_dict(d["distance"]))
