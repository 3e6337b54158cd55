"""The interval step: a calibrated 1-sigma of the thickness, per pixel and per glacier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import optimize

from glacierbed.core.errors import EmptySelectionError
from glacierbed.posterior.calibration.features import (CELL_UNITS, GAUSS_Z90, LEVELS, MEAN_UNIT, SIGMA_FEATURES,
                                                       feature_matrix, rows_arrays)
from glacierbed.posterior.calibration.distance import AttributeDistance, attribute_matrix
from glacierbed.posterior.calibration.stats import glacier_weights, group_kfold, weighted_coverage, weighted_quantile
from glacierbed.posterior.calibration.trees import BoostedTrees, BoostingSettings
from glacierbed.posterior.calibration.volumes import correlated_sum
from glacierbed.posterior.calibration.widening import DistanceWidening, fit_gamma

#: the glacier level's 90 % multiplier: fitted on the glacier units, or the normal distribution's
GLACIER_TAILS = ("fitted", "gauss")


def _sigma_model(params: np.ndarray, sigma: np.ndarray, mu: np.ndarray) -> np.ndarray:
    a, b, c = params
    return np.sqrt((a * np.nan_to_num(sigma)) ** 2 + (b * np.clip(mu, 0, None)) ** 2 + c**2)


def _fit_parametric(res: np.ndarray, sigma: np.ndarray, mu: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """``a, b, c >= 0`` of :func:`_sigma_model` by a weighted Gaussian likelihood (best of three starts)."""
    scale0 = max(float(np.sqrt(np.sum(w * res**2))), 1.0)

    def nll(logp: np.ndarray) -> float:
        s_ = np.maximum(_sigma_model(np.exp(logp), sigma, mu), 1e-3)
        return float(np.sum(w * (np.log(s_) + 0.5 * (res / s_) ** 2)))

    starts = [np.log([1.0, 0.3, 0.5 * scale0]), np.log([0.1, 0.1, scale0]), np.log([1.0, 0.05, 0.2 * scale0])]
    best = min((optimize.minimize(nll, s0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8,
                                                                           "maxiter": 2000})
                for s0 in starts), key=lambda o: o.fun)
    a, b, c = (float(v) for v in np.exp(best.x))
    return a, b, c


@dataclass
class IntervalCalibrator(BoostingSettings):
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
    interval is ``glacier_z90`` times the 1-sigma: fitted (``glacier_tail="fitted"``, the ratio of the units'
    90 % to 68 % quantiles) or the normal distribution's 1.645 (``"gauss"``: a few glacier units cannot estimate a
    tail; 19 Ötztal means gave 1.14, lighter than Gaussian).

    ``widening`` (``"none"``, ``"linear"``, ``"quadrature"``): sigma' also grows with the
    glacier's distance from the fitted glaciers in glacier attributes
    (:mod:`~glacierbed.posterior.calibration.widening`); then ``k``, ``z90`` and the
    widening's gamma are fitted on out-of-fold sigma trees (``widening_folds`` folds of
    glaciers), and applying needs the glacier attributes among the features.
    """

    method: str = "boosted"
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    features: tuple[str, ...] = SIGMA_FEATURES
    k: float = 1.0
    trees: BoostedTrees | None = None
    z90: float = GAUSS_Z90
    glacier_correlation: float = 1.0
    glacier_factor: float = 1.0
    glacier_z90: float = GAUSS_Z90
    #: the glacier level's 90 % multiplier: "fitted" on the glacier units, or "gauss" (1.645)
    glacier_tail: str = "fitted"
    #: which glacier errors calibrate the glacier level: "means" (whole-glacier mean
    #: thickness, what a volume's sigma is about), "all" (also the mean over each glacier's
    #: measured cells), "auto" (means when there are ``min_mean_units`` of them, else all)
    glacier_units: str = "auto"
    min_mean_units: int = 8
    n_fit: int = 0
    n_glacier_units: int = 0
    widening: str = "none"
    widening_folds: int = 5
    spread: DistanceWidening | None = None
    kind: str = "interval"

    def __post_init__(self) -> None:
        if self.glacier_tail not in GLACIER_TAILS:
            raise ValueError(f"unknown glacier_tail {self.glacier_tail!r} (choose from {', '.join(GLACIER_TAILS)})")

    @property
    def label(self) -> str:
        """The step's name in a variant: ``interval``, ``interval~<method>``, ``interval@<widening>``,
        ``interval^<glacier_tail>``, ``interval:<glacier_units>``."""
        return (self.kind + ("" if self.method == "boosted" else f"~{self.method}")
                + ("" if self.widening == "none" else f"@{self.widening}")
                + ("" if self.glacier_tail == "fitted" else f"^{self.glacier_tail}")
                + ("" if self.glacier_units == "auto" else f":{self.glacier_units}"))

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
        return np.exp(self.trees.predict(feature_matrix(self.features, feats, mu))).reshape(mu.shape)

    def fit(self, rows: pd.DataFrame, pixels: pd.DataFrame | None = None) -> "IntervalCalibrator":
        """``rows``/``pixels``: out-of-fold predictions; ``pixels`` (those of the glacier-mean
        rows) let glacier means take part in the glacier-level calibration."""
        all_rows = rows
        r = rows[rows["unit"].isin(CELL_UNITS)] if "unit" in rows else rows
        mu, sigma, feats = rows_arrays(r)
        obs = r["obs"].to_numpy(float)
        ok = np.isfinite(obs) & np.isfinite(mu)
        if self.method == "boosted":
            x = feature_matrix(self.features, {**feats, "sigma_m": sigma}, mu)
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
            x = x[ok]
            self.trees = self.fit_trees(x, np.log(np.abs(res) + 1.0), w)
        elif self.method == "parametric":
            self.a, self.b, self.c = _fit_parametric(res, sigma, mu, w)
        else:
            raise ValueError(f"unknown interval method {self.method!r} (boosted, parametric)")
        self.k = 1.0
        z = np.abs(res) / np.maximum(self._raw_sigma(mu, sigma, feats), 1e-6)
        k68, k90 = weighted_quantile(z, LEVELS[0], w), weighted_quantile(z, LEVELS[1], w)
        self.k = float(k68)
        self.z90 = float(k90 / k68) if k68 > 0 else GAUSS_Z90
        self.n_fit = int(len(r))
        self.spread = None
        if self.widening != "none":
            self._fit_widening(x, res, w, r["group"].astype(str).to_numpy(), feats, mu)
        self._fit_glacier_level(*self._glacier_units(r, res, self.sigma(mu, sigma, feats), all_rows, pixels))
        return self

    def sigma(self, mu: np.ndarray, sigma: np.ndarray, features: Mapping[str, np.ndarray] | None = None
              ) -> np.ndarray:
        """The calibrated 1-sigma (m), widened with the distance from the fitted glaciers when fitted so."""
        s = self.k * self._raw_sigma(mu, sigma, features or {})
        return s if self.spread is None else self.spread.widen(s, mu, features or {})

    def _fit_widening(self, x: np.ndarray, res: np.ndarray, w: np.ndarray, groups: np.ndarray,
                      feats: Mapping[str, np.ndarray], mu: np.ndarray) -> None:
        """:attr:`spread`, ``k`` and ``z90`` from sigma trees refitted without each fold of glaciers
        (:func:`~glacierbed.posterior.calibration.widening.fit_gamma`)."""
        if self.method != "boosted":
            raise ValueError("the distance widening needs method='boosted'")
        attrs = attribute_matrix(feats, len(res))
        per_glacier = pd.DataFrame(attrs).groupby(groups).mean()
        dist = AttributeDistance().fit(per_glacier.to_numpy())
        row_of = {g: i for i, g in enumerate(per_glacier.index)}
        raw, d = np.full(len(res), np.nan), np.full(len(res), np.nan)
        for train, test in group_kfold(groups, self.widening_folds, self.seed):
            trees = self.fit_trees(x[train], np.log(np.abs(res[train]) + 1.0), w[train])
            raw[test] = np.exp(trees.predict(x[test]))
            d[test] = dist.distance(attrs[test], to=dist.vectors[[row_of[g] for g in np.unique(groups[train])]])
        gamma, self.k, self.z90 = fit_gamma(self.widening, np.abs(res), raw, d, mu, w, groups)
        self.spread = DistanceWidening(self.widening, gamma, dist)

    def glacier_std(self, sigma_m: np.ndarray) -> float:
        """1-sigma of a glacier's mean thickness (m) from its pixels' calibrated sigma."""
        s = np.asarray(sigma_m, float)
        s = s[np.isfinite(s)]
        if s.size == 0:
            return float("nan")
        return self.glacier_factor * correlated_sum(s, self.glacier_correlation) / s.size

    def _glacier_units(self, r: pd.DataFrame, res: np.ndarray, sig: np.ndarray, rows: pd.DataFrame,
                       pixels: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Per glacier unit (each (glacier, case) of cells, and each glacier-mean row with
        pixels, as ``glacier_units`` selects): |error of the mean|, the mean's 1-sigma with
        fully correlated and with independent pixel errors, and the glacier group."""
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
                pm, ps, pf = rows_arrays(px)
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
        return np.array(errs), np.array(sums), np.array(sqs), list(groups)

    def _fit_glacier_level(self, e: np.ndarray, s1: np.ndarray, s0: np.ndarray, groups: list[str]) -> None:
        """``glacier_correlation``, ``glacier_factor`` and ``glacier_z90`` from the glacier units'
        errors ``e`` and 1-sigmas with correlated (``s1``) and independent (``s0``) pixel errors."""
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
        if self.glacier_tail == "gauss":
            self.glacier_z90 = GAUSS_Z90
            return
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
                             "glacier_z90": self.glacier_z90, "glacier_tail": self.glacier_tail,
                             "n_fit": self.n_fit,
                             "glacier_units": self.glacier_units, "min_mean_units": self.min_mean_units,
                             "n_glacier_units": self.n_glacier_units, "widening": self.widening,
                             "widening_folds": self.widening_folds}
        if self.spread is not None:
            d["spread"] = self.spread.to_dict()
        if self.method == "parametric":
            d.update(a=self.a, b=self.b, c_m=self.c)
        else:
            if self.trees is None:
                raise RuntimeError("IntervalCalibrator is not fitted")
            d.update(features=list(self.features), trees=self.trees.to_dict(),
                     hyperparameters=self.hyperparameters())
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "IntervalCalibrator":
        common = dict(method=str(d.get("method", "parametric")), k=float(d.get("k", 1.0)), z90=float(d["z90"]),
                      glacier_correlation=float(d["glacier_correlation"]),
                      glacier_factor=float(d["glacier_factor"]), glacier_z90=float(d["glacier_z90"]),
                      glacier_tail=str(d.get("glacier_tail", "fitted")),
                      n_fit=int(d.get("n_fit", 0)), n_glacier_units=int(d.get("n_glacier_units", 0)),
                      glacier_units=str(d.get("glacier_units", "auto")), min_mean_units=int(d.get("min_mean_units", 8)),
                      widening=str(d.get("widening", "none")), widening_folds=int(d.get("widening_folds", 5)),
                      spread=DistanceWidening.from_dict(d["spread"]) if d.get("spread") else None)
        if common["method"] == "parametric":
            return cls(a=float(d["a"]), b=float(d["b"]), c=float(d["c_m"]), **common)
        features = tuple(d["features"])
        return cls(features=features, trees=BoostedTrees.from_dict(d["trees"], len(features)),
                   **d.get("hyperparameters", {}), **common)
