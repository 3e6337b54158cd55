"""Glaciology, the ground floor: constants, shallow-ice relations, slopes, margins, mass balance.

Every stage that needs ice physics (the simulator, the physics refinement, the baselines,
the networks' input channels) imports it from here, so no formula is written twice. The
functions work on plain arrays (a grid is ``pixel_size_m`` square pixels, rows and
columns as array axes); nothing here knows about files or CRSs.

Relations (Cuffey & Paterson 2010, ch. 8):

* basal shear stress of a slab, tau = f rho g H sin(alpha), and its inverse, the
  perfect-plasticity thickness H = tau / (f rho g sin(alpha)) (Nye 1952; GlabTop);
* Glen's law with exponent n and rate factor A: surface deformation speed
  u_s = 2A/(n+1) tau^n H, depth-averaged 2A/(n+2) tau^n H;
* shallow-ice flux q = -D grad(s), D = 2A/(n+2) (rho g)^n H^(n+2) |grad s|^(n-1); sliding
  proportional to the deformation (``sliding_fraction`` = u_b / u_s) multiplies D by
  1 + f_b/(1-f_b) (n+2)/(n+1);
* linear mass balance b = min(gamma (z - ELA), b_max), gradients above and below the ELA.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

# --- constants --------------------------------------------------------------------------
RHO_ICE = 900.0  #: kg m-3
RHO_WATER = 1000.0  #: kg m-3
RHO_SEAWATER = 1028.0  #: kg m-3
G = 9.81  #: m s-2
SECONDS_PER_YEAR = 365.25 * 86400.0
GLEN_N = 3.0
GLEN_A = 2.4e-24  #: Pa-3 s-1, temperate ice (Cuffey & Paterson 2010)
OCEAN_AREA_KM2 = 3.625e8
#: RGI TermType codes of glaciers ending in water (RGI 6: 1 marine-terminating, 2 lake-terminating)
CALVING_TERM_TYPES = (1, 2)
#: volume-area scaling V = c A^gamma, V in km3, A in km2 (Bahr et al. 1997; Chen & Ohmura 1990)
VA_C_KM3 = 0.034
VA_GAMMA = 1.375


def per_year(rate_factor_pa_s: float) -> float:
    """Glen's A from Pa-n s-1 to Pa-n yr-1 (speeds in m/yr)."""
    return rate_factor_pa_s * SECONDS_PER_YEAR


def va_volume_km3(area_km2: Any, c: float = VA_C_KM3, gamma: float = VA_GAMMA) -> np.ndarray:
    """Volume-area scaling: V (km3) = c A^gamma with A in km2."""
    return c * np.asarray(area_km2, dtype=float) ** gamma


def va_mean_thickness_m(area_km2: Any, c: float = VA_C_KM3, gamma: float = VA_GAMMA) -> np.ndarray:
    """Mean thickness (m) of volume-area scaling, V / A = c A^(gamma - 1) km."""
    return 1e3 * c * np.asarray(area_km2, dtype=float) ** (gamma - 1.0)


def sea_level_equivalent_mm(volume_km3: float) -> float:
    """SLE (mm) = V_ice rho_ice / rho_seawater / A_ocean; ice below sea level not subtracted."""
    return volume_km3 * RHO_ICE / RHO_SEAWATER / OCEAN_AREA_KM2 * 1e6


# --- shallow-ice relations ------------------------------------------------------------------
def basal_stress_pa(thickness_m: Any, sin_alpha: Any, shape_factor: float = 1.0) -> np.ndarray:
    """tau = f rho g H sin(alpha) (Pa)."""
    return shape_factor * RHO_ICE * G * np.asarray(thickness_m) * np.asarray(sin_alpha)


def sia_thickness(tau_pa: Any, sin_alpha: Any, shape_factor: float = 1.0) -> np.ndarray:
    """Thickness (m) of a slab with basal shear stress tau: tau / (f rho g sin alpha)."""
    return np.asarray(tau_pa) / (shape_factor * RHO_ICE * G * np.asarray(sin_alpha))


def glabtop_tau_pa(dz_km: Any) -> np.ndarray:
    """Basal shear stress (Pa) from a glacier's elevation range dZ (km).

    Haeberli & Hoelzle (1995), as used by Linsbauer et al. (2012):
    tau = 0.005 + 1.598 dZ - 0.435 dZ^2 (bar) for dZ <= 1.6 km, else 1.5 bar.
    """
    dz = np.asarray(dz_km, dtype=float)
    return np.where(dz <= 1.6, 0.005 + 1.598 * dz - 0.435 * dz**2, 1.5) * 1e5


def sliding_factor(sliding_fraction: float, n: float = GLEN_N) -> float:
    """Flux multiplier of sliding proportional to deformation: 1 + f_b/(1-f_b) (n+2)/(n+1).

    ``sliding_fraction`` = u_b / u_s at the surface (0 = no sliding, 0.5 = half the speed).
    """
    if not 0 <= sliding_fraction < 1:
        raise ValueError(f"sliding_fraction must be in [0, 1), got {sliding_fraction}")
    return 1.0 + sliding_fraction / (1.0 - sliding_fraction) * (n + 2) / (n + 1)


def glen_deformation_speed(thickness_m: Any, sin_alpha: Any, *, glen_a: float = GLEN_A, n: float = GLEN_N,
                           shape_factor: float = 1.0, depth_averaged: bool = False) -> np.ndarray:
    """Deformation speed (m/yr) of Glen flow: 2A/(n+1) tau^n H at the surface (n+2 averaged)."""
    tau = basal_stress_pa(thickness_m, sin_alpha, shape_factor)
    return 2 * per_year(glen_a) / (n + (2 if depth_averaged else 1)) * tau**n * np.asarray(thickness_m)


def velocity_thickness(surface_speed_m_a: Any, sin_alpha: Any, *, glen_a: float = GLEN_A, n: float = GLEN_N,
                       shape_factor: float = 1.0, sliding_fraction: float = 0.0) -> np.ndarray:
    """H_u: the thickness whose Glen deformation gives (1 - sliding) x the surface speed."""
    u_d = (1.0 - sliding_fraction) * np.asarray(surface_speed_m_a, float)
    k = 2 * per_year(glen_a) / (n + 1) * (shape_factor * RHO_ICE * G * np.asarray(sin_alpha)) ** n
    return (u_d / k) ** (1.0 / (n + 1))


def sia_flux_coefficient(sin_alpha: Any, *, glen_a: float = GLEN_A, n: float = GLEN_N, shape_factor: float = 1.0,
                         sliding_fraction: float = 0.0) -> np.ndarray:
    """k in the depth-integrated SIA flux q = k H^(n+2) (m2/yr per unit width, H in m)."""
    k = 2 * per_year(glen_a) / (n + 2) * (shape_factor * RHO_ICE * G * np.asarray(sin_alpha)) ** n
    return k * sliding_factor(sliding_fraction, n)


def flux_thickness(flux_m2_a: Any, sin_alpha: Any, **kwargs: Any) -> np.ndarray:
    """Thickness (m) that carries the flux q (m2/yr per unit width): (q / k)^(1/(n+2))."""
    n = kwargs.get("n", GLEN_N)
    k = sia_flux_coefficient(sin_alpha, **kwargs)
    return (np.clip(np.asarray(flux_m2_a, float), 0.0, None) / k) ** (1.0 / (n + 2))


# --- surfaces and slopes --------------------------------------------------------------------
def smoothed_surface(z: np.ndarray, pixel_size_m: float, smooth_m: float) -> np.ndarray:
    """``z`` averaged over a ~``smooth_m`` wide square window (float64).

    NaN pixels are ignored in the average (normalised convolution), so voids do not spread;
    the array edge is not padded with zeros.
    """
    size = max(1, int(round(smooth_m / pixel_size_m)))
    size += (size + 1) % 2  # odd
    valid = np.isfinite(z)
    zz = np.where(valid, z, 0.0).astype(np.float64)
    num = ndimage.uniform_filter(zz, size, mode="constant")
    den = ndimage.uniform_filter(valid.astype(np.float64), size, mode="constant")
    return np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)


def surface_slope(surface: np.ndarray, pixel_size_m: float, smooth_m: float, min_slope_deg: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sin alpha, flow direction x, flow direction y) of the surface smoothed over ``smooth_m``.

    alpha is bounded below by ``min_slope_deg``; the direction is a unit vector down the
    smoothed surface gradient in array axes (x = columns, y = rows, both increasing with
    the index; 0 where the surface is flat).
    """
    zs = smoothed_surface(surface, pixel_size_m, smooth_m)
    gr, gc = np.gradient(zs, pixel_size_m, pixel_size_m)
    mag = np.hypot(gr, gc)
    alpha = np.maximum(np.arctan(np.nan_to_num(mag)), np.deg2rad(min_slope_deg))
    with np.errstate(invalid="ignore", divide="ignore"):
        dx, dy = np.where(mag > 0, -gc / mag, 0.0), np.where(mag > 0, -gr / mag, 0.0)
    return np.sin(alpha), np.nan_to_num(dx), np.nan_to_num(dy)


def slope_rad(surface: np.ndarray, pixel_size_m: float, smooth_m: float) -> np.ndarray:
    """Slope angle (radians) of the surface smoothed over ``smooth_m`` (no lower bound)."""
    sin_a, _, _ = surface_slope(surface, pixel_size_m, smooth_m, 0.0)
    return np.arcsin(sin_a)


# --- margins and divides --------------------------------------------------------------------
_FOUR = ndimage.generate_binary_structure(2, 1)


def margin_pixels(own: np.ndarray, ice: np.ndarray) -> np.ndarray:
    """Pixels of ``own`` with a 4-neighbour outside all ice (``ice``) or outside the array.

    Divides shared with a neighbouring glacier are not margins: the ice goes on there.
    """
    inner = ndimage.binary_erosion(np.pad(ice, 1, constant_values=False), structure=_FOUR)[1:-1, 1:-1]
    return own & ~inner


#: Nye's perfectly plastic margin profile H ∝ √d, sampled at pixel centres: a margin pixel's centre lies
#: half a pixel from the outline, its inner neighbours' one and a half (:func:`distance_to_margin_m`)
PLASTIC_MARGIN_FACTOR = float(np.sqrt(0.5 / 1.5))
#: what a margin pixel may hold: 0, or :func:`plastic_margin` (``PhysicsConfig.margin_profile`` and the
#: fine-tuning loss's ``MeasuredFinetuneConfig.margin_profile``)
MARGIN_PROFILES = ("zero", "plastic")


def check_margin_profile(profile: str) -> None:
    """Refuse a margin profile other than :data:`MARGIN_PROFILES` (the settings that name one check it once)."""
    if profile not in MARGIN_PROFILES:
        raise ValueError(f"margin_profile must be one of {MARGIN_PROFILES}, got {profile!r}")


def plastic_margin(thickness: np.ndarray, margin: np.ndarray, own: np.ndarray) -> np.ndarray:
    """``thickness`` with each ``margin`` pixel set to :data:`PLASTIC_MARGIN_FACTOR` × the mean thickness
    of its non-margin 4-neighbours on the glacier ``own`` (its 8-neighbours where it has no such
    4-neighbour, 0 where it has neither: a one-pixel-wide strip of ice).

    "Zero at the margin" holds on the outline; a margin pixel's centre is inside it, so pinning
    the whole pixel to 0 removes ice, more so at coarse pixels and on small glaciers.
    """
    inner = own & ~margin
    h = np.where(inner, np.nan_to_num(thickness, nan=0.0), 0.0)
    out = np.array(thickness, dtype=np.float64, copy=True)
    todo = margin & own
    for structure in (_FOUR, np.ones((3, 3), bool)):
        kernel = structure.astype(np.float64)
        kernel[1, 1] = 0.0
        total = ndimage.convolve(h, kernel, mode="constant")
        count = ndimage.convolve(inner.astype(np.float64), kernel, mode="constant")
        here = todo & (count > 0)
        out[here] = PLASTIC_MARGIN_FACTOR * total[here] / count[here]
        todo &= ~here
    out[todo] = 0.0
    return out


def divide_pixels(own: np.ndarray, ice: np.ndarray) -> np.ndarray:
    """Pixels of ``own`` next to ice of another glacier (4-neighbours): shared divides."""
    other = ice & ~own
    return own & ndimage.binary_dilation(other, structure=_FOUR)


def distance_to_margin_m(ice: np.ndarray, pixel_size_m: float) -> np.ndarray:
    """Distance (m) from each ice pixel centre to the ice-free margin (0 outside ice).

    Distance transform of the all-ice mask minus half a pixel (the outline runs between
    pixel centres); the array edge counts as a margin; divides are not margins.
    """
    d = ndimage.distance_transform_edt(np.pad(ice, 1, constant_values=False), sampling=pixel_size_m)[1:-1, 1:-1]
    return np.where(ice, np.maximum(d - 0.5 * pixel_size_m, 0.0), 0.0)


def calving_front(own: np.ndarray, ice: np.ndarray, surface: np.ndarray, band_m: float) -> np.ndarray:
    """Margin pixels of a water-terminating glacier within ``band_m`` of its lowest surface."""
    margin = margin_pixels(own, ice)
    z = np.where(own & np.isfinite(surface), surface, np.nan)
    if not np.isfinite(z).any():
        return np.zeros_like(own)
    return margin & (np.nan_to_num(z, nan=np.inf) <= np.nanmin(z) + band_m)


def is_calving(term_type: Any) -> bool:
    """RGI TermType 1 (marine) or 2 (lake): the front is not a zero-thickness margin."""
    try:
        return int(term_type) in CALVING_TERM_TYPES
    except (TypeError, ValueError):
        return False


# --- mass balance ---------------------------------------------------------------------------
def linear_mass_balance(z: Any, ela_m: Any, gradient_abl: float, gradient_acc: float | None = None,
                        max_balance_m_a: float = np.inf) -> np.ndarray:
    """b (m ice/yr) = gradient (z - ELA), with its own gradient above the ELA, capped at ``max_balance_m_a``."""
    dz = np.asarray(z, float) - np.asarray(ela_m, float)
    g_acc = gradient_abl if gradient_acc is None else gradient_acc
    return np.minimum(np.where(dz > 0, g_acc * dz, gradient_abl * dz), max_balance_m_a)


def balanced_ela(z: np.ndarray, gradient: float = 1.0) -> float:
    """ELA (m) that makes a linear balance integrate to zero over the pixels ``z``: their mean.

    With one gradient the glacier-wide balance sum(gradient (z - ELA)) is zero exactly when
    ELA is the mean surface elevation (OGGM's ``apparent_mb_from_linear_mb`` does this with
    its own gradient); ``gradient`` does not change it and is accepted for clarity.
    """
    z = np.asarray(z, float)
    z = z[np.isfinite(z)]
    if z.size == 0:
        raise ValueError("no finite elevation to balance")
    return float(z.mean())


def apparent_mass_balance(surface: np.ndarray, glacier: np.ndarray, gradient_m_a_per_m: float = 0.0075
                          ) -> np.ndarray:
    """Apparent (steady-state) mass balance on ``glacier``: linear in z, zero glacier-wide (m ice/yr)."""
    ela = balanced_ela(surface[glacier])
    return np.where(glacier, linear_mass_balance(surface, ela, gradient_m_a_per_m), 0.0)


# --- mass conservation: balance flux routed down the ice surface ------------------------------
_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def balance_flux(surface: np.ndarray, ice: np.ndarray, balance_m_a: np.ndarray, pixel_size_m: float,
                 exponent: float = 1.1) -> np.ndarray:
    """Ice flux (m3/yr) through each ice pixel: its balance plus all routed from upstream.

    Multiple-flow-direction routing (Freeman 1991; Quinn et al. 1991): each ice pixel passes
    its accumulated flux to its lower ice neighbours (8-connected) in proportion to
    (drop / distance)^``exponent`` times the contour length (dx for the 4 edge neighbours,
    dx/sqrt(2) for the diagonals). Ice flows down the surface, so the routing graph is
    acyclic and the fluxes solve one sparse triangular system. A pixel with no lower ice
    neighbour (a terminus or a pit) keeps what it receives. Outside ``ice``: 0.
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    ice = np.asarray(ice, bool) & np.isfinite(surface)
    ny, nx = ice.shape
    index = np.full(ice.shape, -1, np.int64)
    n = int(ice.sum())
    if n == 0:
        return np.zeros(ice.shape)
    index[ice] = np.arange(n)
    z = np.where(ice, surface, np.nan)
    zp = np.pad(z, 1, constant_values=np.nan)
    ip = np.pad(index, 1, constant_values=-1)
    weights, targets = [], []
    for dr, dc in _NEIGHBOURS:
        dist = pixel_size_m * (np.sqrt(2.0) if dr and dc else 1.0)
        contour = pixel_size_m * (1 / np.sqrt(2.0) if dr and dc else 1.0)
        zn = zp[1 + dr:1 + dr + ny, 1 + dc:1 + dc + nx]
        drop = np.where(ice & np.isfinite(zn), z - zn, 0.0)
        weights.append(np.where(drop > 0, (np.clip(drop, 0.0, None) / dist) ** exponent * contour, 0.0))
        targets.append(ip[1 + dr:1 + dr + ny, 1 + dc:1 + dc + nx])
    w = np.stack(weights)
    total = w.sum(axis=0)
    frac = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    rows, cols, vals = [], [], []
    for k in range(len(_NEIGHBOURS)):
        m = ice & (frac[k] > 0)
        rows.append(targets[k][m])  # receiver
        cols.append(index[m])  # donor
        vals.append(frac[k][m])
    routing = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    source = np.nan_to_num(np.asarray(balance_m_a, float)[ice]) * pixel_size_m**2
    q = spla.spsolve((sp.identity(n, format="csr") - routing).tocsc(), source)
    out = np.zeros(ice.shape)
    out[ice] = q
    return out


def mass_conservation_thickness(surface: np.ndarray, ids: np.ndarray, pixel_size_m: float, *,
                                gradient_m_a_per_m: float = 0.0075, smooth_m: float | None = None,
                                min_slope_deg: float = 2.0, glen_a: float = GLEN_A, n: float = GLEN_N,
                                sliding_fraction: float = 0.0, shape_factor: float = 1.0) -> np.ndarray:
    """Thickness (m) that carries each glacier's balance flux with Glen's law (steady state).

    ``ids``: glacier labels (0 = no ice); each glacier gets an apparent mass balance linear in
    elevation and zero over the glacier (ELA at its mean surface elevation), routed down the
    surface smoothed over ``smooth_m`` (default 4 pixels, >= 200 m) by :func:`balance_flux`;
    the flux per unit width (flux / pixel size) gives H = (q / k)^(1/(n+2)) with the local
    slope (:func:`flux_thickness`). A 2-D, per-pixel form of the flux inversions of Farinotti
    et al. (2009) and OGGM, without flowlines; it is 0 where the routed flux is <= 0.
    """
    ids = np.asarray(ids)
    ice = ids > 0
    smooth_m = smooth_m or max(4 * pixel_size_m, 200.0)
    zs = smoothed_surface(np.where(np.isfinite(surface), surface, np.nan), pixel_size_m, smooth_m)
    balance = np.zeros(ids.shape)
    for gid in np.unique(ids[ice]):
        own = ids == gid
        balance[own] = apparent_mass_balance(surface, own & np.isfinite(surface), gradient_m_a_per_m)[own]
    flux = balance_flux(zs, ice, balance, pixel_size_m)
    sin_a, _, _ = surface_slope(surface, pixel_size_m, smooth_m, min_slope_deg)
    h = flux_thickness(flux / pixel_size_m, sin_a, glen_a=glen_a, n=n, shape_factor=shape_factor,
                       sliding_fraction=sliding_fraction)
    return np.where(ice, np.nan_to_num(h), 0.0)
