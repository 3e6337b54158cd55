"""Input channels of the surface-aware thickness network, from what a user has.

Everything is computed from the DEM window (the ice surface on glaciers, terrain around
them), the glacier labels of the window (0 = no ice; neighbours get their own labels), the
pixel size, and optional surface speed / surface mass balance. The same function serves
training (simulated glaciers) and inference (real ones), so the two see identical inputs.

Channels (physical units scaled to order 1):

 0 surface elevation relative to the window's mean ice surface, / 500 m
 1 ice mask (any glacier)
 2 distance to the ice-free margin (km; divides are not margins)
 3 position in the glacier's elevation range, (z - z_min) / (z_max - z_min) (0 off ice)
 4 log10 of the glacier's area (km2) on its pixels (0 off ice)
 5-7 surface slope sin(alpha), smoothed over 100, 300 and 1000 m
 8 log(pixel size / 100 m)
 9 perfect-plasticity thickness tau / (rho g sin alpha), tau = 100 kPa, slope over 300 m (/100 m)
10 mass-conservation thickness (:func:`glacierbed.core.glaciology.mass_conservation_thickness`, /100 m)
11 surface speed (m/yr, /100; 0 when not given) and 12 its flag (1 = given)
13 surface mass balance (m ice/yr; 0 when not given) and 14 its flag

Channels 9 and 10 carry the shallow-ice physics a small CNN cannot compute itself (routing
the balance flux over a whole glacier); the network learns how far to trust them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from glacierbed.core.glaciology import (distance_to_margin_m, mass_conservation_thickness, sia_thickness,
                                   surface_slope)

N_FEATURES = 15
SLOPE_SCALES_M = (100.0, 300.0, 1000.0)
ELEV_SCALE_M = 500.0
THICK_SCALE_M = 100.0
SIA_TAU_PA = 100e3
MIN_SLOPE_DEG = 2.0
MAX_PRIOR_M = 800.0
#: index of the mass-conservation channel (the network's residual base)
MC_CHANNEL = 10


def thickness_features(surface: np.ndarray, ids: np.ndarray, pixel_size_m: float,
                       speed_m_a: np.ndarray | None = None, smb_m_a: np.ndarray | None = None) -> np.ndarray:
    """Feature stack (N_FEATURES, ny, nx), float32, for one window.

    ``surface``: m, finite everywhere (fill NaNs before); ``ids``: glacier labels;
    ``speed_m_a``/``smb_m_a``: optional maps (NaN or infinite = unknown pixels, set to 0).
    """
    surface = np.asarray(surface, np.float64)
    if not np.isfinite(surface).all():
        raise ValueError("surface has NaN pixels: fill them before computing features")
    ids = np.asarray(ids)
    ice = ids > 0
    px = float(pixel_size_m)
    z_ref = float(surface[ice].mean()) if ice.any() else float(surface.mean())
    labels = np.unique(ids[ice])
    rel_pos = np.zeros(surface.shape)
    log_area = np.zeros(surface.shape)
    if labels.size:
        zmin = ndimage.minimum(surface, ids, labels)
        zmax = ndimage.maximum(surface, ids, labels)
        counts = ndimage.sum(np.ones_like(surface), ids, labels)
        lut_min = np.zeros(int(ids.max()) + 1)
        lut_rng = np.ones(int(ids.max()) + 1)
        lut_area = np.zeros(int(ids.max()) + 1)
        lut_min[labels] = zmin
        lut_rng[labels] = np.maximum(np.asarray(zmax) - np.asarray(zmin), 1.0)
        lut_area[labels] = np.log10(np.asarray(counts) * px * px / 1e6)
        rel_pos = np.where(ice, (surface - lut_min[ids]) / lut_rng[ids], 0.0)
        log_area = np.where(ice, lut_area[ids], 0.0)
    slopes = [surface_slope(surface, px, max(s, px), 0.0)[0] for s in SLOPE_SCALES_M]
    sin_sia, _, _ = surface_slope(surface, px, max(300.0, px), MIN_SLOPE_DEG)
    h_sia = np.where(ice, np.minimum(sia_thickness(SIA_TAU_PA, sin_sia), MAX_PRIOR_M), 0.0)
    h_mc = np.minimum(mass_conservation_thickness(surface, ids, px, min_slope_deg=MIN_SLOPE_DEG), MAX_PRIOR_M)
    zeros = np.zeros(surface.shape)
    unknown = dict(nan=0.0, posinf=0.0, neginf=0.0)  # NaN or infinite pixels: not known
    speed = zeros if speed_m_a is None else np.nan_to_num(np.asarray(speed_m_a, float), **unknown) / 100.0
    smb = zeros if smb_m_a is None else np.nan_to_num(np.asarray(smb_m_a, float), **unknown)
    chans = [
        (surface - z_ref) / ELEV_SCALE_M, ice.astype(float), distance_to_margin_m(ice, px) / 1000.0, rel_pos,
        log_area, *slopes, np.full(surface.shape, np.log(px / 100.0)), h_sia / THICK_SCALE_M, h_mc / THICK_SCALE_M,
        speed, np.full(surface.shape, float(speed_m_a is not None)), smb, np.full(surface.shape, float(smb_m_a is not None)),
    ]
    return np.stack(chans).astype(np.float32)
