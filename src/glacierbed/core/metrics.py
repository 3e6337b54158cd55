"""Error metrics: pure functions on paired predictions and observations (metres of ice).

Used by the evaluation, the figures and the calibration; nothing here reads files.
"""

from __future__ import annotations

import numpy as np


def rmse(errors: np.ndarray) -> float:
    """Root mean square of ``errors`` (NaN propagates: filter first where pairs may be missing)."""
    return float(np.sqrt(np.mean(np.square(np.asarray(errors, float)))))


def error_metrics(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, mean bias (pred - obs), median error, Pearson r, means, relative error
    of the mean, over pairs where both are finite (``n`` says how many)."""
    pred, obs = np.asarray(pred, float), np.asarray(obs, float)
    ok = np.isfinite(pred) & np.isfinite(obs)
    p, o = pred[ok], obs[ok]
    n = int(ok.sum())
    if n == 0:
        return dict(n=0, rmse=np.nan, mae=np.nan, bias=np.nan, median_error=np.nan, r=np.nan,
                    mean_obs=np.nan, mean_pred=np.nan, rel_error_mean=np.nan)
    e = p - o
    r = float(np.corrcoef(p, o)[0, 1]) if n > 1 and p.std() > 0 and o.std() > 0 else np.nan
    return dict(n=n, rmse=rmse(e), mae=float(np.mean(np.abs(e))), bias=float(e.mean()),
                median_error=float(np.median(e)), r=r, mean_obs=float(o.mean()), mean_pred=float(p.mean()),
                rel_error_mean=relative_error(p.mean(), o.mean()))


def relative_error(pred: float, obs: float) -> float:
    """(pred - obs) / obs, e.g. of a mean thickness or a volume; NaN when obs is 0."""
    return float((pred - obs) / obs) if obs != 0 and np.isfinite(obs) else np.nan


def share_nonpositive(thickness: np.ndarray, inside: np.ndarray) -> float:
    """Share of pixels inside the outlines with thickness <= 0 (NaN pixels not counted)."""
    vals = thickness[inside & np.isfinite(thickness)]
    return float(np.mean(vals <= 0)) if vals.size else np.nan


def geometric_mean(values: np.ndarray) -> float:
    """exp(mean(log(values))) of positive values, NaN left out (e.g. per-glacier ratios: every glacier counts, none
    dominates)."""
    return float(np.exp(np.nanmean(np.log(np.asarray(values, float)))))


#: statistics of :func:`paired_bootstrap_gap`: a per-unit summary of each variant
BOOTSTRAP_STATISTICS = {"median": np.median, "mean_log": lambda x, axis=None: np.mean(np.log(x), axis=axis),
                        "rms": lambda x, axis=None: np.sqrt(np.mean(np.square(x), axis=axis))}


def paired_bootstrap_gap(candidate: np.ndarray, reference: np.ndarray | None = None, statistic: str = "median",
                         n_resamples: int = 10_000, level: float = 0.9, seed: int = 0) -> tuple[float, float, float]:
    """statistic(candidate) - statistic(reference) over the same units (e.g. glaciers' RMSE / best baseline) and its
    paired bootstrap percentile interval at ``level``: units are resampled together, so how much of a gap between two
    variants is the draw of units. ``statistic``: ``median`` (the headline's), ``mean_log`` (the mean log ratio,
    i.e. the log of the geometric mean: it uses every unit, so it resolves smaller gaps; positive values only), or
    ``rms`` (of errors: an RMSE over units, e.g. glacier means).
    ``reference`` None: the statistic of ``candidate`` itself and its interval. Returns (gap or value, low, high)."""
    if statistic not in BOOTSTRAP_STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r} ({', '.join(BOOTSTRAP_STATISTICS)})")
    stat = BOOTSTRAP_STATISTICS[statistic]
    a = np.asarray(candidate, float)
    b = None if reference is None else np.asarray(reference, float)
    if a.ndim != 1 or len(a) < 2 or not np.isfinite(a).all() or (b is not None and (
            b.shape != a.shape or not np.isfinite(b).all())):
        raise ValueError("paired_bootstrap_gap needs finite 1-D arrays of the same units (at least 2)")
    if statistic == "mean_log" and ((a <= 0).any() or (b is not None and (b <= 0).any())):
        raise ValueError("paired_bootstrap_gap: mean_log needs positive values (ratios)")
    idx = np.random.default_rng(seed).integers(0, len(a), (n_resamples, len(a)))
    boot = stat(a[idx], axis=1) - (0.0 if b is None else stat(b[idx], axis=1))
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(stat(a) - (0.0 if b is None else stat(b))), float(low), float(high)


def pooled_rmse_ratio(sse: np.ndarray, sse_reference: np.ndarray, n_resamples: int = 10_000, level: float = 0.9,
                      seed: int = 0) -> tuple[float, float, float]:
    """RMSE of a method over RMSE of a reference on the same pixels, pooled over units (e.g. simulated windows:
    ``sqrt(sum(sse) / sum(sse_reference))``, each unit's sums of squared errors on its pixels), and its bootstrap
    percentile interval at ``level`` over units resampled together: how much of the ratio is the draw of units.
    Returns (ratio, low, high)."""
    a, b = np.asarray(sse, float), np.asarray(sse_reference, float)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()) \
            or (a < 0).any() or (b < 0).any() or b.sum() <= 0:
        raise ValueError("pooled_rmse_ratio needs two finite, non-negative 1-D arrays of the same units (at least 2) "
                         "and a reference with some error")
    idx = np.random.default_rng(seed).integers(0, len(a), (n_resamples, len(a)))
    ref = b[idx].sum(axis=1)
    boot = np.sqrt(a[idx].sum(axis=1) / np.where(ref > 0, ref, np.nan))
    low, high = np.nanquantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(np.sqrt(a.sum() / b.sum())), float(low), float(high)
