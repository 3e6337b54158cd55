"""How thick simulated glaciers are for their area: the glaciers inside a window and their volume-area check.

A simulated window's glaciers that reach its two outer rows or columns are cut by the window's edge (the
simulation's sink): they are inputs for training but not whole glaciers, so they are neither trained on nor
counted here (:func:`inner_glaciers`). For the others, :func:`glacier_sizes` gives each one's area and mean
thickness, and :func:`thickness_for_area` compares them by size class with volume-area scaling
(:func:`glacierbed.core.glaciology.va_mean_thickness_m`), the check that tells whether a simulator makes glaciers
as thick for their area as real ones (``benchmarks/simulated_thickness_area.py`` puts measured glaciers beside it).
Every ``glacierbed simulate build`` records it in its summary (``thickness_for_area``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glacierbed.core.glaciology import va_mean_thickness_m

#: size classes (km2) of the check
SIZE_CLASSES_KM2 = (0.0, 1.0, 10.0, 50.0, np.inf)


def inner_glaciers(ids: np.ndarray) -> np.ndarray:
    """Pixels of the glaciers that do not reach the window's two outer rows or columns: a glacier cut by the
    window's edge (the simulation's sink) is an input but is not scored or trained on."""
    edge = np.unique(np.concatenate([ids[:2].ravel(), ids[-2:].ravel(), ids[:, :2].ravel(), ids[:, -2:].ravel()]))
    return (ids > 0) & ~np.isin(ids, edge[edge > 0])


def glacier_sizes(thickness: np.ndarray, ids: np.ndarray, pixel_size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Area (km2) and mean thickness (m) of each glacier inside one window (:func:`inner_glaciers`)."""
    ids = np.asarray(ids).astype(np.int64)
    inner = inner_glaciers(ids)
    labels, index = np.unique(ids[inner], return_inverse=True)
    if labels.size == 0:
        return np.zeros(0), np.zeros(0)
    n = np.bincount(index, minlength=labels.size)
    total = np.bincount(index, weights=np.asarray(thickness, float)[inner], minlength=labels.size)
    return n * pixel_size_m**2 / 1e6, total / n


def thickness_for_area(area_km2: np.ndarray, mean_thickness_m: np.ndarray,
                       classes_km2: tuple[float, ...] = SIZE_CLASSES_KM2) -> pd.DataFrame:
    """Per size class (``(lo, hi]`` km2, empty ones left out): glaciers, the class's mean thickness (its volume over
    its area) and median glacier mean thickness, the median (10th, 90th percentile) over glaciers of the mean thickness
    over volume-area scaling's, and the class's volume over the scaling's."""
    a, h = np.asarray(area_km2, float), np.asarray(mean_thickness_m, float)
    ratio = h / va_mean_thickness_m(a)
    rows = []
    for lo, hi in zip(classes_km2[:-1], classes_km2[1:]):
        m = (a > lo) & (a <= hi)
        if not m.any():
            continue
        rows.append({"area_km2": str(pd.Interval(float(lo), float(hi), closed="right")), "glaciers": int(m.sum()),
                     "mean_thickness_m": float((h[m] * a[m]).sum() / a[m].sum()),
                     "median_thickness_m": float(np.median(h[m])), "median_over_va": float(np.median(ratio[m])),
                     "p10_over_va": float(np.quantile(ratio[m], 0.1)), "p90_over_va": float(np.quantile(ratio[m], 0.9)),
                     "volume_over_va": float((h[m] * a[m]).sum() / (va_mean_thickness_m(a[m]) * a[m]).sum())})
    return pd.DataFrame(rows)
