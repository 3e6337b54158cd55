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
number, times its weight. L-BFGS-B (scipy, bounds H >= 0) on torch autograd gradients.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from glacierbed.core.config import config_to_yaml, load_config
from glacierbed.data.rasters import Raster, fill_nearest, raster_on_grid, velocity_on_grid
from glacierbed.core.glaciology import (
    RHO_ICE,
    RHO_WATER,
    G,
    calving_front,
    distance_to_margin_m,
    glabtop_tau_pa,
    is_calving,
    margin_pixels,
    mass_conservation_thickness,
    sia_flux_coefficient,
    surface_slope,
    velocity_thickness,
)
from glacierbed.core.threads import torch_threads

log = logging.getLogger(__name__)

SOFT_TERMS = ("data", "mass_conservation", "sia", "smooth", "velocity", "mass_balance")


@dataclass(frozen=True)
class PhysicsConfig:
    """Switches, weights and physical constants of :func:`refine` (defaults: docs/physics.md)."""

    # --- hard constraints ---------------------------------------------------------------
    zero_margin: bool = True  #: H = 0 on the outline margin (divides and calving fronts excepted)
    calving_band_m: float = 50.0  #: calving front: margin pixels within this height above the lowest surface
    # --- data term: the model's thickness --------------------------------------------------
    data: bool = True
    data_weight: float = 1.0
    #: without a model sigma (inpainters): sigma = data_sigma_m + data_sigma_growth x distance to
    #: the margin, the inpainting RMSE on held-out terrain (benchmarks/results/inpainting_uncertainty.md)
    data_sigma_m: float = 10.0
    data_sigma_growth: float = 0.185
    #: + the depth of the fill above the surface where raw thickness < 0 (inpainters)
    data_sigma_negative: bool = True
    # --- mass conservation prior (apparent mass balance from the DEM) ---------------------------
    mass_conservation: bool = True
    mc_weight: float = 1.0
    mc_rel_sigma: float = 0.4  #: relative 1-sigma of H_mc
    mc_sigma_m: float = 10.0  #: + this absolute 1-sigma (m)
    #: also with a model that has its own sigma (the thickness network sees H_mc as an input)
    mc_with_model_sigma: bool = False
    mb_gradient_m_a_per_m: float = 0.0075  #: apparent balance gradient, m ice / yr / m
    # --- mass balance raster: flux divergence ---------------------------------------------------
    mass_balance: bool = True
    mb_weight: float = 1.0
    mb_sigma_m_a: float = 1.0  #: ice equivalent (m/yr)
    mb_water_equivalent: bool = True  #: SMB raster in m w.e./yr (converted with rho_w/rho_i)
    mb_apparent: bool = True  #: SMB raster without dh/dt: remove the glacier mean (steady state)
    # --- shallow-ice approximation: basal shear stress band -----------------------------------
    sia: bool = False
    sia_weight: float = 1.0
    tau_min_pa: float = 50e3
    tau_max_pa: float = 150e3
    tau_sigma_pa: float = 25e3
    #: lower the band for glaciers with a small elevation range dZ: tau_min = min(tau_min_pa,
    #: GlabTop's tau(dZ)) (Haeberli & Hoelzle 1995), so tiny glaciers are not made too thick
    tau_min_from_elevation_range: bool = True
    shape_factor: float = 1.0  #: f in tau = f rho g H sin(alpha); 1 = the slab formula
    slope_smooth_m: float = 250.0
    min_slope_deg: float = 2.5
    # --- smoothness -------------------------------------------------------------------------
    smooth: bool = False
    smooth_weight: float = 1.0
    smooth_sigma: float = 0.5  #: thickness gradient scale (m/m)
    # --- velocity and flow (Glen's law) ------------------------------------------------------
    velocity: bool = True
    velocity_weight: float = 1.0
    velocity_rel_sigma: float = 0.25  #: relative uncertainty of H_u
    sliding_fraction: float = 0.5  #: u_b / u_s
    glen_n: float = 3.0
    glen_a: float = 2.4e-24  #: Pa-3 s-1 (temperate ice, Cuffey & Paterson 2010)
    velocity_min_m_a: float = 5.0  #: slower pixels are noise-dominated: ignored
    # --- optimiser ----------------------------------------------------------------------------
    max_iter: int = 300

    def __post_init__(self) -> None:
        if not 0 <= self.tau_min_pa <= self.tau_max_pa:
            raise ValueError(f"need 0 <= tau_min_pa <= tau_max_pa, got {self.tau_min_pa}, {self.tau_max_pa}")
        if not 0 <= self.sliding_fraction < 1:
            raise ValueError(f"sliding_fraction must be in [0, 1), got {self.sliding_fraction}")
        for name in ("data_sigma_m", "tau_sigma_pa", "smooth_sigma", "velocity_rel_sigma", "mb_sigma_m_a",
                     "mc_sigma_m"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PhysicsConfig":
        """Load from YAML (keys as the fields; missing keys keep their defaults)."""
        return load_config(cls, path)

    def to_yaml(self) -> str:
        return config_to_yaml(self)

    def only(self, *terms: str) -> "PhysicsConfig":
        """A copy with just these soft terms on (:data:`SOFT_TERMS`); hard constraints unchanged."""
        bad = set(terms) - set(SOFT_TERMS)
        if bad:
            raise ValueError(f"unknown terms {sorted(bad)}; choose from {SOFT_TERMS}")
        return replace(self, **{t: t in terms for t in SOFT_TERMS})

    @property
    def glen(self) -> dict[str, float]:
        return dict(glen_a=self.glen_a, n=self.glen_n, shape_factor=self.shape_factor,
                    sliding_fraction=self.sliding_fraction)


@dataclass
class Refinement:
    """Refined thickness/bed on the window grid plus what was done."""

    thickness: np.ndarray  #: m, 0 outside the glacier, NaN where the surface is NaN
    bed: np.ndarray  #: surface - thickness
    terms: list[str]  #: soft terms that were used
    skipped: list[str]  #: requested soft terms skipped for want of input
    loss: dict[str, float] = field(default_factory=dict)  #: final value of each term
    iterations: int = 0
    seconds: float = 0.0


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


@dataclass
class _Problem:
    """Everything the objective needs, on the glacier's bounding box (numpy, float64)."""

    h0: np.ndarray  #: start and data target (m)
    valid: np.ndarray  #: glacier pixels with a surface
    free: np.ndarray  #: pixels optimised (not margin)
    pixel_size_m: float
    sin_a: np.ndarray
    direction: tuple[np.ndarray, np.ndarray]
    sigma: np.ndarray | None = None
    tau_min_pa: float = 0.0
    h_mc: np.ndarray | None = None  #: mass-conservation thickness (m) and its 1-sigma
    mc_sigma: np.ndarray | None = None
    velocity_h: np.ndarray | None = None  #: H_u where the speed is usable, NaN elsewhere
    mb: np.ndarray | None = None  #: balance (m ice/yr) on the interior pixels of the residual
    mb_inner: np.ndarray | None = None
    ubar: tuple[np.ndarray, np.ndarray] | None = None  #: depth-averaged velocity (m/yr), when measured
    flux_k: np.ndarray | None = None  #: SIA flux coefficient (when no velocity)


def _balance(valid: np.ndarray, cfg: PhysicsConfig, smb: np.ndarray | None, dhdt: np.ndarray | None
             ) -> np.ndarray | None:
    """b (m ice/yr) of the flux-divergence term from an SMB raster (- dh/dt), or None."""
    if smb is None:
        return None
    b = np.asarray(smb, np.float64) * (RHO_WATER / RHO_ICE if cfg.mb_water_equivalent else 1.0)
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
    wanted = [t for t in SOFT_TERMS if getattr(cfg, t)]
    balance = _balance(valid, cfg, smb, dhdt) if "mass_balance" in wanted else None
    skipped = [t for t, missing in (("velocity", velocity is None), ("mass_balance", balance is None))
               if t in wanted and missing]
    terms = [t for t in wanted if t not in skipped]
    if {"data", "mass_conservation"} <= set(terms) and sigma is not None and not cfg.mc_with_model_sigma:
        terms.remove("mass_conservation")  # the model already saw H_mc: not counted twice
    free = valid & ~zero
    if not free.any() or not (set(terms) - {"data"}):
        h = project(h0, valid, zero, surf)
        return Refinement(h, surf - h, terms, skipped, seconds=time.perf_counter() - t0)

    sin_a, dirx, diry = surface_slope(surf, pixel_size_m, cfg.slope_smooth_m, cfg.min_slope_deg)
    rows, cols = np.nonzero(own)
    sl = (slice(max(rows.min() - 2, 0), rows.max() + 3), slice(max(cols.min() - 2, 0), cols.max() + 3))
    p = _Problem(h0[sl], valid[sl], free[sl], pixel_size_m, sin_a[sl], (dirx[sl], diry[sl]),
                 tau_min_pa=effective_tau_min(surf, valid, cfg))
    if "data" in terms:
        if sigma is not None:
            p.sigma = np.maximum(np.nan_to_num(sigma[sl], nan=cfg.data_sigma_m), 1.0)
        else:
            s = cfg.data_sigma_m + cfg.data_sigma_growth * distance_to_margin_m(ice, pixel_size_m)
            p.sigma = (s + (np.clip(-np.nan_to_num(raw), 0.0, None) if cfg.data_sigma_negative else 0.0))[sl]
    if "mass_conservation" in terms:
        h_mc = mass_conservation_thickness(fill_nearest(surf), valid.astype(np.int32), pixel_size_m,
                                           gradient_m_a_per_m=cfg.mb_gradient_m_a_per_m, min_slope_deg=cfg.min_slope_deg,
                                           **cfg.glen)[sl]
        p.h_mc, p.mc_sigma = h_mc, cfg.mc_rel_sigma * h_mc + cfg.mc_sigma_m
    if "velocity" in terms:
        speed = np.hypot(*velocity)[sl]
        ok = np.isfinite(speed) & (speed >= cfg.velocity_min_m_a) & p.free
        if ok.any():
            p.velocity_h = np.where(ok, velocity_thickness(np.where(ok, speed, 1.0), p.sin_a, **cfg.glen), np.nan)
        else:
            log.info("velocity: no glacier pixel with speed >= %.1f m/yr; term skipped", cfg.velocity_min_m_a)
            terms.remove("velocity")
            skipped.append("velocity")
    if "mass_balance" in terms:
        inner = _interior(p.valid) & np.isfinite(balance[sl])
        if inner.sum() < 3:
            log.info("mass balance: fewer than 3 interior pixels with a value; term skipped")
            terms.remove("mass_balance")
            skipped.append("mass_balance")
        else:
            p.mb, p.mb_inner = np.nan_to_num(balance[sl]), inner
            if velocity is not None:
                n = cfg.glen_n
                frac = cfg.sliding_fraction + (1 - cfg.sliding_fraction) * (n + 1) / (n + 2)
                p.ubar = tuple(frac * np.nan_to_num(v[sl]) for v in velocity)
            else:
                p.flux_k = sia_flux_coefficient(p.sin_a, **cfg.glen)
    with torch_threads(1, blas=True):  # small arrays: more threads only add contention (10x slower)
        h_opt, loss, n_iter = _optimise(p, cfg, terms)
    h = h0.copy()
    h[sl] = h_opt
    thick = project(h, valid, zero, surf)
    return Refinement(thick, surf - thick, terms, skipped, loss, n_iter, time.perf_counter() - t0)


def _objective(p: _Problem, cfg: PhysicsConfig, terms: list[str]):
    """The soft terms as a torch function of the free pixels' thickness."""
    import torch

    t = lambda a: torch.as_tensor(np.asarray(a, np.float64))  # noqa: E731
    fv = p.free.ravel()
    idx = torch.as_tensor(np.flatnonzero(fv))
    fixed = torch.zeros(p.h0.size, dtype=torch.float64)
    n_own = max(int(p.valid.sum()), 1)
    dx = p.pixel_size_m
    h0, sin_t = t(p.h0.ravel()[fv]), t(p.sin_a.ravel()[fv])
    rho_g_f = cfg.shape_factor * RHO_ICE * G
    sigma = t(p.sigma.ravel()[fv]) if p.sigma is not None else None
    h_mc, mc_sigma = (t(p.h_mc.ravel()[fv]), t(p.mc_sigma.ravel()[fv])) if p.h_mc is not None else (None, None)
    vel_ok = torch.as_tensor(np.isfinite(p.velocity_h).ravel()[fv]) if p.velocity_h is not None else None
    h_u = t(np.nan_to_num(p.velocity_h).ravel()[fv]) if p.velocity_h is not None else None
    pairs = (torch.as_tensor(p.valid[:, 1:] & p.valid[:, :-1]), torch.as_tensor(p.valid[1:, :] & p.valid[:-1, :]))
    if p.mb is not None:
        inner, b = torch.as_tensor(p.mb_inner[1:-1, 1:-1]), t(p.mb[1:-1, 1:-1])
        carry = (t(p.ubar[0]), t(p.ubar[1])) if p.ubar is not None else None
        k, (ex, ey) = (t(p.flux_k), (t(p.direction[0]), t(p.direction[1]))) if p.flux_k is not None else (None, (None, None))

    def objective(hf: "torch.Tensor") -> tuple["torch.Tensor", dict[str, "torch.Tensor"]]:
        parts: dict[str, torch.Tensor] = {}
        grid = fixed.index_put((idx,), hf).reshape(p.h0.shape)
        if "data" in terms:
            parts["data"] = cfg.data_weight * (((hf - h0) / sigma) ** 2).sum() / n_own
        if "mass_conservation" in terms:
            parts["mass_conservation"] = cfg.mc_weight * (((hf - h_mc) / mc_sigma) ** 2).sum() / n_own
        if "sia" in terms:
            tau = rho_g_f * hf * sin_t
            band = torch.relu(p.tau_min_pa - tau) + torch.relu(tau - cfg.tau_max_pa)
            parts["sia"] = cfg.sia_weight * ((band / cfg.tau_sigma_pa) ** 2).sum() / n_own
        if "smooth" in terms:
            gx = (grid[:, 1:] - grid[:, :-1])[pairs[0]] / dx
            gy = (grid[1:, :] - grid[:-1, :])[pairs[1]] / dx
            parts["smooth"] = cfg.smooth_weight * ((gx**2).sum() + (gy**2).sum()) / cfg.smooth_sigma**2 / n_own
        if "velocity" in terms:
            r = (hf[vel_ok] - h_u[vel_ok]) / (cfg.velocity_rel_sigma * h_u[vel_ok])
            parts["velocity"] = cfg.velocity_weight * (r**2).sum() / n_own
        if "mass_balance" in terms:
            if carry is not None:
                qx, qy = grid * carry[0], grid * carry[1]
            else:
                q = k * grid ** (cfg.glen_n + 2)
                qx, qy = q * ex, q * ey
            div = (qx[1:-1, 2:] - qx[1:-1, :-2] + qy[2:, 1:-1] - qy[:-2, 1:-1]) / (2 * dx)
            r = (div[inner] - b[inner]) / cfg.mb_sigma_m_a
            parts["mass_balance"] = cfg.mb_weight * (r**2).sum() / n_own
        return sum(parts.values()), parts

    return objective


def _optimise(p: _Problem, cfg: PhysicsConfig, terms: list[str]) -> tuple[np.ndarray, dict[str, float], int]:
    import torch
    from scipy.optimize import minimize

    objective = _objective(p, cfg, terms)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        hf = torch.from_numpy(x).requires_grad_(True)
        total, _ = objective(hf)
        total.backward()
        return float(total.detach()), hf.grad.numpy().copy()

    fv = p.free.ravel()
    sol = minimize(fun, p.h0.ravel()[fv].astype(np.float64), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * int(fv.sum()), options=dict(maxiter=cfg.max_iter, maxcor=20, ftol=1e-10,
                                                                     gtol=1e-8))
    with torch.no_grad():
        total, parts = objective(torch.from_numpy(sol.x))
    out = p.h0.copy()
    out.ravel()[fv] = sol.x
    return out, {k: float(v) for k, v in parts.items()} | {"total": float(total)}, int(sol.nit)


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


__all__ = ["PhysicsConfig", "Refinement", "SOFT_TERMS", "refine", "effective_tau_min", "refine_window", "project"]
