"""Physics as a posterior: the model's thickness and its uncertainty, combined with ice physics.

For one glacier window, :func:`refine` finds the thickness H that minimises a sum of soft
terms under hard constraints:

* **hard constraints** (bounds and a closed-form projection): H >= 0 (the bed is never above
  the surface), H = 0 on the outline margin except on divides shared with a neighbouring
  glacier and, for marine/lake-terminating glaciers (RGI ``TermType`` 1/2), on the calving
  front (margin pixels within ``calving_band_m`` of the lowest surface); H = 0 outside;
* **data**: ((H - H_model) / sigma)^2 with the model's own sigma when it gives one (the
  thickness network), else the inpainting's error model ``data_sigma_m + data_sigma_growth
  * d`` (d the distance to the margin; plus the depth of a fill lying above the surface);
* **mass conservation** (a prior): ((H - H_mc) / (``mc_rel_sigma`` H_mc + ``mc_sigma_m``))^2,
  H_mc the thickness that carries the glacier's balance flux with Glen's law
  (:func:`glacierbed.core.glaciology.mass_conservation_thickness`): the *apparent* mass balance
  from the DEM, linear in elevation with ``mb_gradient_m_a_per_m`` and zero over the
  glacier (steady state, as in OGGM and Farinotti et al. 2009), routed down the ice surface;
  not with a model that has its own sigma (it sees H_mc already) unless ``mc_with_model_sigma``;
* **mass balance** (when an SMB raster is given): (div(q(H)) - b) / ``mb_sigma_m_a``, q the
  depth-integrated shallow-ice flux k H^(n+2) along the smoothed surface gradient (or H
  times the measured depth-averaged velocity), b the SMB (minus dh/dt, or its glacier mean
  removed: apparent);
* **SIA stress band**: tau = f rho g H sin(alpha) outside [``tau_min_pa``, ``tau_max_pa``]
  (slope smoothed over ``slope_smooth_m``, >= ``min_slope_deg``), penalised with
  ``tau_sigma_pa``; a weak prior, off by default (it only pushed a too-thin inpainted bed to
  the band's lower edge);
* **smoothness** of H (m/m) and **velocity** (Glen's law: H_u from the surface speed).

Each soft term is a sum of squared residuals over the glacier's pixels divided by their
number, times its weight. L-BFGS-B (scipy, bounds H >= 0) on the exact gradients of
:mod:`glacierbed.posterior.physics_solver`.

This module builds the inputs of each term and applies the constraints; the settings are in
:mod:`glacierbed.posterior.physics_config`, the objective and solver in
:mod:`glacierbed.posterior.physics_solver`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from glacierbed.core.glaciology import (
    calving_front,
    distance_to_margin_m,
    glabtop_tau_pa,
    is_calving,
    margin_pixels,
    mass_conservation_thickness,
    plastic_margin,
    sia_flux_coefficient,
    surface_slope,
    velocity_thickness,
)
from glacierbed.core.threads import blas_threads
from glacierbed.data.rasters import Raster, fill_nearest, raster_on_grid, velocity_on_grid
from glacierbed.posterior.physics_config import SOFT_TERMS, PhysicsConfig, Refinement
from glacierbed.posterior.physics_solver import Problem, optimise

log = logging.getLogger(__name__)


def effective_tau_min(surface: np.ndarray, own: np.ndarray, cfg: PhysicsConfig) -> float:
    """Lower end (Pa) of the stress band: ``tau_min_pa``, or GlabTop's tau(dZ) when smaller."""
    z = surface[own & np.isfinite(surface)]
    if not cfg.tau_min_from_elevation_range or z.size == 0:
        return cfg.tau_min_pa
    return float(min(cfg.tau_min_pa, max(float(glabtop_tau_pa((z.max() - z.min()) / 1000.0)), 0.0)))


def project(thickness: np.ndarray, own: np.ndarray, zero: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Hard constraints: H >= 0, H = 0 on ``zero`` pixels and outside ``own``, NaN off the DEM."""
    h = np.where(own & ~zero, np.clip(np.nan_to_num(thickness, nan=0.0), 0.0, None), 0.0)
    return np.where(np.isfinite(surface), h, np.nan)


def _balance(valid: np.ndarray, cfg: PhysicsConfig, smb: np.ndarray | None, dhdt: np.ndarray | None
             ) -> np.ndarray | None:
    """b (m ice/yr) of the flux-divergence term from an SMB raster (- dh/dt), or None."""
    if smb is None:
        return None
    b = np.asarray(smb, np.float64) * cfg.smb_to_ice
    if dhdt is not None:
        return b - dhdt
    ok = valid & np.isfinite(b)
    return b - np.nanmean(b[ok]) if cfg.mb_apparent and ok.any() else b


def _interior(valid: np.ndarray) -> np.ndarray:
    """Pixels whose 4 neighbours are valid too (central differences), array edge excluded."""
    inner = valid.copy()
    inner[1:, :] &= valid[:-1, :]
    inner[:-1, :] &= valid[1:, :]
    inner[:, 1:] &= valid[:, :-1]
    inner[:, :-1] &= valid[:, 1:]
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    return inner


def _terms(cfg: PhysicsConfig, *, has_velocity: bool, has_balance: bool, has_sigma: bool
           ) -> tuple[list[str], list[str]]:
    """(soft terms to use, requested terms skipped for want of input), in :data:`SOFT_TERMS` order."""
    wanted = [t for t in SOFT_TERMS if getattr(cfg, t)]
    skipped = [t for t, missing in (("velocity", not has_velocity), ("mass_balance", not has_balance))
               if t in wanted and missing]
    terms = [t for t in wanted if t not in skipped]
    if {"data", "mass_conservation"} <= set(terms) and has_sigma and not cfg.mc_with_model_sigma:
        terms.remove("mass_conservation")  # the model already saw H_mc: not counted twice
    return terms, skipped


def _data_sigma(raw: np.ndarray, ice: np.ndarray, sigma: np.ndarray | None, pixel_size_m: float,
                cfg: PhysicsConfig) -> np.ndarray:
    """1-sigma (m) of the data term: the model's own (floor 1 m), else the inpainting error model."""
    if sigma is not None:
        return np.maximum(np.nan_to_num(sigma, nan=cfg.data_sigma_m), 1.0)
    s = cfg.data_sigma_m + cfg.data_sigma_growth * distance_to_margin_m(ice, pixel_size_m)
    return s + (np.clip(-np.nan_to_num(raw), 0.0, None) if cfg.data_sigma_negative else 0.0)


def _drop(term: str, terms: list[str], skipped: list[str], why: str) -> None:
    """Move a term that found no usable pixel from ``terms`` to ``skipped``, and say why."""
    log.info("%s; term skipped", why)
    terms.remove(term)
    skipped.append(term)


def _add_velocity(p: Problem, velocity: tuple[np.ndarray, np.ndarray], cfg: PhysicsConfig,
                  terms: list[str], skipped: list[str]) -> None:
    """H_u (Glen's law from the surface speed) where the speed is usable, else drop the term."""
    speed = np.hypot(*velocity)
    ok = np.isfinite(speed) & (speed >= cfg.velocity_min_m_a) & p.free
    if not ok.any():
        _drop("velocity", terms, skipped, f"velocity: no glacier pixel with speed >= {cfg.velocity_min_m_a:.1f} m/yr")
        return
    p.velocity_h = np.where(ok, velocity_thickness(np.where(ok, speed, 1.0), p.sin_a, **cfg.glen), np.nan)


def _add_mass_balance(p: Problem, balance: np.ndarray, velocity: tuple[np.ndarray, np.ndarray] | None,
                      cfg: PhysicsConfig, terms: list[str], skipped: list[str]) -> None:
    """b on the interior pixels and the flux law: H times the depth-averaged velocity when measured,
    else the SIA flux coefficient; drops the term on fewer than 3 interior pixels."""
    inner = _interior(p.valid) & np.isfinite(balance)
    if inner.sum() < 3:
        _drop("mass_balance", terms, skipped, "mass balance: fewer than 3 interior pixels with a value")
        return
    p.mb, p.mb_inner = np.nan_to_num(balance), inner
    if velocity is not None:
        n = cfg.glen_n
        frac = cfg.sliding_fraction + (1 - cfg.sliding_fraction) * (n + 1) / (n + 2)
        p.ubar = tuple(frac * np.nan_to_num(v) for v in velocity)
    else:
        p.flux_k = sia_flux_coefficient(p.sin_a, **cfg.glen)


def _problem(surf: np.ndarray, raw: np.ndarray, own: np.ndarray, ice: np.ndarray, free: np.ndarray,
             pixel_size_m: float, cfg: PhysicsConfig, terms: list[str], skipped: list[str], *,
             velocity: tuple[np.ndarray, np.ndarray] | None, balance: np.ndarray | None,
             sigma: np.ndarray | None) -> tuple[Problem, tuple[slice, slice]]:
    """The optimiser's inputs on the glacier's bounding box (2 pixels of margin), and that box."""
    valid = own & np.isfinite(raw)
    sin_a, dirx, diry = surface_slope(surf, pixel_size_m, cfg.slope_smooth_m, cfg.min_slope_deg)
    rows, cols = np.nonzero(own)
    sl = (slice(max(rows.min() - 2, 0), rows.max() + 3), slice(max(cols.min() - 2, 0), cols.max() + 3))
    h0 = np.clip(np.nan_to_num(raw, nan=0.0), 0.0, None)
    p = Problem(h0[sl], valid[sl], free[sl], pixel_size_m, sin_a[sl], (dirx[sl], diry[sl]),
                tau_min_pa=effective_tau_min(surf, valid, cfg))
    if "data" in terms:
        p.sigma = _data_sigma(raw, ice, sigma, pixel_size_m, cfg)[sl]
    if "mass_conservation" in terms:
        h_mc = mass_conservation_thickness(fill_nearest(surf), valid.astype(np.int32), pixel_size_m,
                                           gradient_m_a_per_m=cfg.mb_gradient_m_a_per_m,
                                           min_slope_deg=cfg.min_slope_deg, **cfg.glen)[sl]
        p.h_mc, p.mc_sigma = h_mc, cfg.mc_rel_sigma * h_mc + cfg.mc_sigma_m
    vel = tuple(v[sl] for v in velocity) if velocity is not None else None
    if "velocity" in terms:
        _add_velocity(p, vel, cfg, terms, skipped)
    if "mass_balance" in terms:
        _add_mass_balance(p, balance[sl], vel, cfg, terms, skipped)
    return p, sl


def refine(surface: np.ndarray, bed: np.ndarray, own: np.ndarray, ice: np.ndarray, pixel_size_m: float,
           cfg: PhysicsConfig, *, calving: bool = False, velocity: tuple[np.ndarray, np.ndarray] | None = None,
           smb: np.ndarray | None = None, dhdt: np.ndarray | None = None, sigma: np.ndarray | None = None
           ) -> Refinement:
    """The posterior thickness of one glacier (``own``) on a window grid, from ``surface - bed``.

    ``ice``: every glacier in the window (divides with neighbours are not margins);
    ``calving``: water-terminating; ``velocity``: (ux, uy) m/yr in array axes;
    ``smb``/``dhdt``: m/yr on the grid; ``sigma``: the model's 1-sigma thickness (m).
    Absent inputs skip their terms (listed in ``skipped``).
    """
    t0 = time.perf_counter()
    own = own.astype(bool)
    ice = ice.astype(bool) | own
    surf = np.asarray(surface, np.float64)
    raw = surf - np.asarray(bed, np.float64)
    valid = own & np.isfinite(raw)
    front = calving_front(own, ice, surf, cfg.calving_band_m) if calving else np.zeros_like(own)
    zero = (margin_pixels(own, ice) & ~front) if cfg.zero_margin else np.zeros_like(own)
    h0 = np.clip(np.nan_to_num(raw, nan=0.0), 0.0, None)
    balance = _balance(valid, cfg, smb, dhdt) if cfg.mass_balance else None
    terms, skipped = _terms(cfg, has_velocity=velocity is not None, has_balance=balance is not None,
                            has_sigma=sigma is not None)
    free = valid & ~zero
    if not free.any() or not (set(terms) - {"data"}):
        h = _margin_profile(project(h0, valid, zero, surf), zero & valid, valid, cfg)
        return Refinement(h, surf - h, terms, skipped, seconds=time.perf_counter() - t0)
    p, sl = _problem(surf, raw, own, ice, free, pixel_size_m, cfg, terms, skipped, velocity=velocity,
                     balance=balance, sigma=sigma)
    with blas_threads(1):  # small arrays: more threads only add contention (10x slower)
        h_opt, loss, n_iter = optimise(p, cfg, terms)
    h = h0.copy()
    h[sl] = h_opt
    thick = _margin_profile(project(h, valid, zero, surf), zero & valid, valid, cfg)
    return Refinement(thick, surf - thick, terms, skipped, loss, n_iter, time.perf_counter() - t0)


def _margin_profile(thick: np.ndarray, margin: np.ndarray, valid: np.ndarray, cfg: PhysicsConfig) -> np.ndarray:
    """The pinned margin pixels as ``cfg.margin_profile`` says (``zero``: as projected; off-DEM NaN stays NaN,
    since ``margin`` holds valid pixels only)."""
    if cfg.margin_profile != "plastic" or not margin.any():
        return thick
    return plastic_margin(thick, margin, valid)



def refine_window(surface: Raster, bed: np.ndarray, own: np.ndarray, ice: np.ndarray, cfg: PhysicsConfig, *,
                  term_type: Any = None, velocity: tuple[Raster | str | Path, Raster | str | Path] | None = None,
                  smb: Raster | str | Path | None = None, dhdt: Raster | str | Path | None = None,
                  sigma: np.ndarray | None = None) -> Refinement:
    """:func:`refine` on a georeferenced window: auxiliary rasters are brought onto its grid."""
    vel = velocity_on_grid(velocity[0], velocity[1], surface) if velocity is not None and cfg.velocity else None
    if vel is not None and not np.isfinite(np.hypot(*vel)[own]).any():
        log.info("velocity rasters do not cover this glacier; velocity term skipped")
        vel = None
    smb_g = raster_on_grid(smb, surface) if smb is not None and cfg.mass_balance else None
    if smb_g is not None and not np.isfinite(smb_g[own]).any():
        log.info("SMB raster does not cover this glacier; mass-balance term skipped")
        smb_g = None
    dhdt_g = np.nan_to_num(raster_on_grid(dhdt, surface)) if dhdt is not None and smb_g is not None else None
    return refine(surface.data, bed, own, ice, surface.res[0], cfg, calving=is_calving(term_type), velocity=vel,
                  smb=smb_g, dhdt=dhdt_g, sigma=sigma)


#: PhysicsConfig, Refinement and SOFT_TERMS live in physics_config; imported from here as before
__all__ = ["PhysicsConfig", "Refinement", "SOFT_TERMS", "refine", "effective_tau_min", "refine_window", "project"]
