"""Glacier-balanced sample weights, weighted quantiles and coverage, and splits by whole groups."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd


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
