"""Synthetic glaciers on known terrain: a plausible ice surface inside a glacier-shaped hole.

Training a network that sees the ice surface needs (surface, bed) pairs, and measured beds
are few. Here the bed is known (ice-free terrain) and an ice body is put on it with the
perfect-plasticity / shallow-ice rule (Nye 1952; Cuffey & Paterson 2010, ch. 8):

    H = tau / (f rho g sin(alpha_s)),

alpha_s the slope of the *surface* (not the bed) smoothed over a few ice thicknesses and
bounded below by ``min_slope_deg``; tau is drawn per glacier (``tau_range_pa``), f is the
valley shape factor. The surface depends on H, so H is the fixed point of damped
iterations. Near the margin H follows Nye's plastic profile on a flat bed,
H = sqrt(2 tau d / (rho g)) with d the distance to the margin, so it tapers to 0 there.
The result is a smooth, positive ice body whose surface is what a glaciologist's DEM
shows; it is SIA-like by construction (so tests on it favour SIA-like methods).

The slope is averaged over ``smooth_thicknesses`` = 10 ice thicknesses (Paterson 1994: the
SIA slope should be averaged over ~10-20 H). Averaging over only ~4 H makes the fixed point
unstable on an inclined plane (a surface wave steepens where H grows and the next
iterate overshoots; measured: +-50 % oscillations after 20 iterations at 10 deg).
"""

from __future__ import annotations

import numpy as np

from glacierbed.glaciology import G, RHO_ICE, distance_to_margin_m, margin_pixels, sia_thickness, surface_slope


def synthetic_thickness(bed: np.ndarray, glacier: np.ndarray, pixel_size_m: float, tau_pa: float, *,
                        shape_factor: float = 0.8, min_slope_deg: float = 2.5, smooth_thicknesses: float = 10.0,
                        n_iter: int = 20, damping: float = 0.5, max_thickness_m: float = 500.0) -> np.ndarray:
    """Ice thickness (m, >= 0, 0 outside ``glacier`` and on its margin) for a given tau (Pa)."""
    bed = np.asarray(bed, np.float64)
    glacier = np.asarray(glacier, bool)
    h = np.zeros(bed.shape)
    if not glacier.any():
        return h
    # Nye's plastic margin profile: H^2 = 2 tau d / (rho g); 0 on the outline pixels (as the
    # physics stage's hard constraint), d counted from them
    taper = np.sqrt(2.0 * tau_pa * np.maximum(distance_to_margin_m(glacier, pixel_size_m) - 0.5 * pixel_size_m, 0.0)
                    / (RHO_ICE * G))
    cap = np.where(glacier & ~margin_pixels(glacier, glacier), np.minimum(taper, max_thickness_m), 0.0)
    for _ in range(n_iter):
        mean_h = float(h[glacier].mean())
        smooth_m = max(smooth_thicknesses * mean_h, 2.0 * pixel_size_m)
        sin_a, _, _ = surface_slope(bed + h, pixel_size_m, smooth_m, min_slope_deg)
        target = np.minimum(sia_thickness(tau_pa, sin_a, shape_factor), cap)
        h = (1.0 - damping) * h + damping * target if mean_h > 0 else target
    return np.where(glacier, np.clip(h, 0.0, max_thickness_m), 0.0)


def synthetic_glacier_surface(bed: np.ndarray, glacier: np.ndarray, pixel_size_m: float, rng: np.random.Generator,
                              tau_range_pa: tuple[float, float] = (50e3, 150e3), **kwargs) -> np.ndarray:
    """Ice surface (m) = bed + a synthetic ice body inside ``glacier``; bed elsewhere.

    tau is drawn uniformly in ``tau_range_pa`` from ``rng`` (one value per glacier);
    ``kwargs`` go to :func:`synthetic_thickness`.
    """
    tau = float(rng.uniform(*tau_range_pa))
    return np.asarray(bed, np.float64) + synthetic_thickness(bed, glacier, pixel_size_m, tau, **kwargs)
