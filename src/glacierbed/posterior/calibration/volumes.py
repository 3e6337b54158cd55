"""Error propagation to volumes: pixel errors within a glacier, and glacier errors within a
region, are correlated; they are added in quadrature only where a measured correlation says so."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def correlated_sum(sigmas: np.ndarray, correlation: float) -> float:
    """sqrt((1-rho) sum s^2 + rho (sum s)^2): rho = 1 linear sum, rho = 0 quadrature (NaN ignored)."""
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
    return correlated_sum(s.ravel(), correlation) / 1e9


def regional_volume_std(glacier_std_km3: Sequence[float] | np.ndarray, correlation: float = 1.0) -> float:
    """1-sigma of a regional volume (km3) from its glaciers' 1-sigma volumes (km3).

    A calibrated model errs the same way on neighbouring glaciers, so glacier errors are
    added linearly (``correlation`` = 1, the default), not in quadrature (0).
    """
    return correlated_sum(np.asarray(glacier_std_km3, float), correlation)
