"""Physics-informed refinement of an inpainted bed, one glacier window at a time.

The inpainting sees only the terrain around a glacier, never its ice surface, so in
upper basins it often puts the bed above the surface. :func:`refine` corrects the
thickness H = surface - bed with what the surface says about the ice below it:

* **hard constraints** (closed-form projection after the optimisation): H >= 0 (so the
  bed is never above the surface), H = 0 on the outline margin except on divides shared
  with a neighbouring glacier and, for marine/lake-terminating glaciers (RGI ``TermType``
  1/2), on the calving front (the margin pixels within ``calving_band_m`` of the lowest
  surface); H = 0 outside the glacier;
* **data** term: the inpainted H (clipped at 0) with an uncertainty that grows with the
  distance d to the ice margin, ``sigma = data_sigma_m + data_sigma_growth * d``: near the
  margin the fill is constrained by the terrain next to it, deep inside it is a guess;
  where the fill lies above the surface (raw H < 0) its error is at least that depth, so
  ``-raw`` is added to sigma (``data_sigma_negative``);
* **SIA** band: basal shear stress tau = f rho g H sin(alpha), alpha the surface slope
  smoothed over ``slope_smooth_m`` and bounded below by ``min_slope_deg``, penalised when
  outside ``[tau_min_pa, tau_max_pa]`` (shallow-ice approximation; Cuffey & Paterson 2010);
* **smoothness**: the thickness gradient (m/m), scale ``smooth_sigma``;
* **velocity** (when vx/vy are given): with Glen's law, the deformation part of the
  surface speed, (1 - ``sliding_fraction``) u_s = 2A/(n+1) tau^n H, gives in closed form
  H_u = ((1-f_b) u_s (n+1) / (2A (f rho g sin alpha)^n))^(1/(n+1)); the penalty is
  ((H - H_u) / (velocity_rel_sigma H_u))^2;
* **mass balance** (when an SMB raster is given): mass conservation div(H u_mean) =
  b - dh/dt, with u_mean from the velocity (direction and speed) when given, else from
  the SIA along the smoothed surface gradient. Without dh/dt the balance is made
  "apparent" (its glacier mean removed: steady state, as OGGM does).

Every soft term is a sum over the glacier's pixels of squared residuals divided by the
number of glacier pixels, times its weight. The thickness on the free pixels is
optimised with L-BFGS-B (scipy, bounds H >= 0) on torch autograd gradients (float64).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glacierbed.data.rasters import Raster, resample_to_grid
from glacierbed.config import config_to_yaml, load_config
from glacierbed.errors import NoOverlapError
from glacierbed.glaciology import (G, RHO_ICE, RHO_WATER, calving_front, distance_to_margin_m, glabtop_tau_pa,
                                   is_calving, margin_pixels, sia_flux_coefficient, surface_slope,
                                   velocity_thickness)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PhysicsConfig:
    """Switches, weights and physical constants of :func:`refine` (defaults: docs/physics.md)."""

    # --- hard constraints ---------------------------------------------------------------
    #: H = 0 on the outline margin (divides and calving fronts excepted)
    zero_margin: bool = True
    #: calving front: margin pixels within this height (m) above the lowest surface pixel
    calving_band_m: float = 50.0
    # --- data term: the inpainted thickness --------------------------------------------------
    data: bool = True
    data_weight: float = 1.0
    data_sigma_m: float = 10.0  # uncertainty at the margin (m)
    #: + this x distance to the margin (m/m): the inpainting RMSE measured on held-out
    #: ice-free terrain grows as 0.185 x distance (benchmarks/results/inpainting_uncertainty.md)
    data_sigma_growth: float = 0.185
    #: + the depth of the fill above the surface where raw thickness < 0 (the fill's error is at least that)
    data_sigma_negative: bool = True
    # --- shallow-ice approximation: basal shear stress band -----------------------------------
    sia: bool = True
    sia_weight: float = 1.0
    tau_min_pa: float = 50e3
    tau_max_pa: float = 150e3
    tau_sigma_pa: float = 25e3
    #: lower the band for glaciers with a small elevation range dZ: tau_min = min(tau_min_pa,
    #: GlabTop's tau(dZ)) (Haeberli & Hoelzle 1995), so tiny glaciers are not made too thick
    tau_min_from_elevation_range: bool = True
    shape_factor: float = 1.0  # f in tau = f rho g H sin(alpha); 1 = the slab formula
    slope_smooth_m: float = 250.0
    min_slope_deg: float = 2.5
    # --- smoothness -------------------------------------------------------------------------
    smooth: bool = False
    smooth_weight: float = 1.0
    smooth_sigma: float = 0.5  # thickness gradient scale (m/m)
    # --- velocity (Glen's flow law) ---------------------------------------------------------
    velocity: bool = True
    velocity_weight: float = 1.0
    velocity_rel_sigma: float = 0.25  # relative uncertainty of H_u
    sliding_fraction: float = 0.5  # u_b / u_s
    glen_n: float = 3.0
    glen_a: float = 2.4e-24  # Pa-3 s-1 (temperate ice, Cuffey & Paterson 2010)
    velocity_min_m_a: float = 5.0  # slower pixels are noise-dominated: ignored
    # --- mass conservation --------------------------------------------------------------------
    mass_balance: bool = True
    mb_weight: float = 1.0
    mb_sigma_m_a: float = 1.0  # ice equivalent (m/yr)
    mb_water_equivalent: bool = True  # SMB raster in m w.e./yr (converted with rho_w/rho_i)
    mb_apparent: bool = True  # without dh/dt: remove the glacier-mean SMB (steady state)
    # --- optimiser ----------------------------------------------------------------------------
    max_iter: int = 300

    def __post_init__(self) -> None:
        if not 0 <= self.tau_min_pa <= self.tau_max_pa:
            raise ValueError(f"need 0 <= tau_min_pa <= tau_max_pa, got {self.tau_min_pa}, {self.tau_max_pa}")
        if not 0 <= self.sliding_fraction < 1:
            raise ValueError(f"sliding_fraction must be in [0, 1), got {self.sliding_fraction}")
        for name in ("data_sigma_m", "tau_sigma_pa", "smooth_sigma", "velocity_rel_sigma", "mb_sigma_m_a"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PhysicsConfig":
        """Load from YAML (keys as the fields; missing keys keep their defaults)."""
        return load_config(cls, path)

    def to_yaml(self) -> str:
        return config_to_yaml(self)

    def only(self, *terms: str) -> "PhysicsConfig":
        """A copy with just these soft terms on (``data``, ``sia``, ``smooth``, ``velocity``,
        ``mass_balance``); hard constraints unchanged."""
        soft = ("data", "sia", "smooth", "velocity", "mass_balance")
        bad = set(terms) - set(soft)
        if bad:
            raise ValueError(f"unknown terms {sorted(bad)}; choose from {soft}")
        from dataclasses import replace

        return replace(self, **{t: t in terms for t in soft})


@dataclass
class Refinement:
    """Refined thickness/bed on the window grid plus what was done."""

    thickness: np.ndarray  # m, 0 outside the glacier, NaN where the surface is NaN
    bed: np.ndarray  # surface - thickness
    terms: list[str]  # soft terms that were used
    skipped: list[str]  # requested soft terms skipped for want of input
    loss: dict[str, float] = field(default_factory=dict)  # final value of each term
    iterations: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------------------
# auxiliary rasters onto a window
# --------------------------------------------------------------------------------------
def raster_on_grid(src: Raster | str | Path, grid: Raster) -> np.ndarray:
    """A scalar raster (SMB, dh/dt) bilinearly on ``grid``'s pixels (NaN where it has none)."""
    src = src if isinstance(src, Raster) else Raster.from_file(src)
    return resample_to_grid(src, grid).data.astype(np.float64)


def velocity_on_grid(vx: Raster | str | Path, vy: Raster | str | Path, grid: Raster
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Surface velocity (m/yr) on ``grid`` as array-axis components (x = columns, y = rows).

    The vectors are given in their own CRS (e.g. ITS_LIVE, EPSG:3413): each window pixel
    centre is mapped there, vx/vy sampled bilinearly, and the vector carried back by
    mapping a short step along it, so the direction is right on the window's projection.
    """
    from pyproj import Transformer

    vx = vx if isinstance(vx, Raster) else Raster.from_file(vx)
    vy = vy if isinstance(vy, Raster) else Raster.from_file(vy)
    if not vx.same_grid(vy):
        raise NoOverlapError(f"{vx.source} and {vy.source}: vx and vy are not on the same grid")
    xs, ys = grid.xy()
    xx, yy = np.meshgrid(xs, ys)
    fwd = Transformer.from_crs(grid.crs, vx.crs, always_xy=True)
    back = Transformer.from_crs(vx.crs, grid.crs, always_xy=True)
    sx, sy = fwd.transform(xx.ravel(), yy.ravel())
    ux, uy = vx.sample(np.asarray(sx), np.asarray(sy)), vy.sample(np.asarray(sx), np.asarray(sy))
    speed = np.hypot(ux, uy)
    step = 10.0  # m, along the vector in the source CRS
    with np.errstate(invalid="ignore", divide="ignore"):
        ex, ey = back.transform(sx + step * ux / speed, sy + step * uy / speed)
    dx, dy = (np.asarray(ex) - xx.ravel()), (np.asarray(ey) - yy.ravel())
    norm = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        gx = speed * dx / norm
        gy = speed * dy / norm
    # array axes: columns increase with x if transform.a > 0; rows increase with y if transform.e > 0
    gx = gx * np.sign(grid.transform.a)
    gy = gy * np.sign(grid.transform.e)
    return gx.reshape(grid.shape), gy.reshape(grid.shape)


# --------------------------------------------------------------------------------------
# the refinement
# --------------------------------------------------------------------------------------
def effective_tau_min(surface: np.ndarray, own: np.ndarray, cfg: PhysicsConfig) -> float:
    """Lower end (Pa) of the stress band: ``tau_min_pa``, or GlabTop's tau(dZ) when smaller."""
    if not cfg.tau_min_from_elevation_range:
        return cfg.tau_min_pa
    z = surface[own & np.isfinite(surface)]
    if z.size == 0:
        return cfg.tau_min_pa
    return float(min(cfg.tau_min_pa, max(float(glabtop_tau_pa((z.max() - z.min()) / 1000.0)), 0.0)))


def project(thickness: np.ndarray, own: np.ndarray, zero: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Hard constraints: H >= 0, H = 0 on ``zero`` pixels and outside ``own``, NaN off the DEM."""
    h = np.where(own & ~zero, np.clip(np.nan_to_num(thickness, nan=0.0), 0.0, None), 0.0)
    return np.where(np.isfinite(surface), h, np.nan)


def refine(surface: np.ndarray, bed: np.ndarray, own: np.ndarray, ice: np.ndarray, pixel_size_m: float,
           cfg: PhysicsConfig, *, calving: bool = False, velocity: tuple[np.ndarray, np.ndarray] | None = None,
           smb: np.ndarray | None = None, dhdt: np.ndarray | None = None, sigma: np.ndarray | None = None
           ) -> Refinement:
    """Refine the thickness ``surface - bed`` of one glacier (``own``) on a window grid.

    ``ice``: every glacier in the window (divides with neighbours are not margins);
    ``calving``: water-terminating (see :func:`is_calving`); ``velocity``: (ux, uy) in
    m/yr on the grid, array axes (:func:`velocity_on_grid`); ``smb``/``dhdt``: m/yr on
    the grid; ``sigma``: the model's own 1-sigma thickness uncertainty (m) for the data term
    (default: ``data_sigma_m + data_sigma_growth * distance``, the inpainting's error model).
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

    wanted = [t for t in ("data", "sia", "smooth", "velocity", "mass_balance") if getattr(cfg, t)]
    skipped = []
    if "velocity" in wanted and velocity is None:
        skipped.append("velocity")
    if "mass_balance" in wanted and smb is None:
        skipped.append("mass_balance")
    terms = [t for t in wanted if t not in skipped]
    free = valid & ~zero
    if not free.any() or not (set(terms) - {"data"}):
        return Refinement(project(h0, valid, zero, surf), surf - project(h0, valid, zero, surf), terms, skipped,
                          seconds=time.perf_counter() - t0)

    # crop to the glacier plus a pad (slopes are computed on the whole window first)
    sin_a, dirx, diry = surface_slope(np.where(np.isfinite(surf), surf, np.nan), pixel_size_m,
                                      cfg.slope_smooth_m, cfg.min_slope_deg)
    rows, cols = np.nonzero(own)
    pad = 2
    sl = (slice(max(rows.min() - pad, 0), rows.max() + pad + 1), slice(max(cols.min() - pad, 0), cols.max() + pad + 1))
    tau_min = effective_tau_min(surf, valid, cfg)
    h_opt, loss, n_iter = _optimise(
        tau_min, h0[sl], raw[sl], valid[sl], free[sl], ice[sl], pixel_size_m, cfg, terms, sin_a[sl], dirx[sl], diry[sl],
        None if velocity is None else (velocity[0][sl], velocity[1][sl]),
        None if smb is None else smb[sl], None if dhdt is None else dhdt[sl], None if sigma is None else sigma[sl])
    h = h0.copy()
    h[sl] = h_opt
    thick = project(h, valid, zero, surf)
    return Refinement(thick, surf - thick, terms, skipped, loss, n_iter, time.perf_counter() - t0)


def _optimise(tau_min: float, h0: np.ndarray, raw: np.ndarray, valid: np.ndarray, free: np.ndarray, ice: np.ndarray, dx: float, cfg: PhysicsConfig,
              terms: list[str], sin_a: np.ndarray, dirx: np.ndarray, diry: np.ndarray,
              velocity: tuple[np.ndarray, np.ndarray] | None, smb: np.ndarray | None, dhdt: np.ndarray | None,
              model_sigma: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, float], int]:
    import torch

    T = lambda a: torch.as_tensor(np.asarray(a, np.float64))  # noqa: E731
    n_own = max(int(valid.sum()), 1)
    idx = torch.as_tensor(np.flatnonzero(free))
    fixed = torch.zeros(h0.size, dtype=torch.float64)  # margin and outside pixels: H = 0
    fv = free.ravel()
    h0t = T(h0.ravel()[fv])
    rho_g_f = cfg.shape_factor * RHO_ICE * G
    sin_t = T(sin_a.ravel()[fv])
    res: dict[str, Any] = {}

    if "data" in terms and model_sigma is not None:
        res["sigma"] = T(np.maximum(np.nan_to_num(model_sigma, nan=cfg.data_sigma_m), 1.0).ravel()[fv])
    elif "data" in terms:
        sigma = cfg.data_sigma_m + cfg.data_sigma_growth * distance_to_margin_m(ice, dx)
        if cfg.data_sigma_negative:
            sigma = sigma + np.clip(-np.nan_to_num(raw), 0.0, None)
        res["sigma"] = T(sigma.ravel()[fv])
    if "smooth" in terms:
        # neighbour pairs inside the glacier (incl. its fixed margin pixels)
        res["pair_r"] = [torch.as_tensor(valid[:, 1:] & valid[:, :-1]), torch.as_tensor(valid[1:, :] & valid[:-1, :])]
    if "velocity" in terms:
        ux, uy = velocity
        speed = np.hypot(ux, uy).ravel()[fv]
        ok = np.isfinite(speed) & (speed >= cfg.velocity_min_m_a)
        if ok.any():
            h_u = velocity_thickness(np.where(ok, speed, 1.0), sin_a.ravel()[fv], glen_a=cfg.glen_a, n=cfg.glen_n,
                                         shape_factor=cfg.shape_factor, sliding_fraction=cfg.sliding_fraction)
            res["vel_ok"] = torch.as_tensor(ok)
            res["h_u"] = T(h_u)
        else:
            log.info("velocity: no glacier pixel with speed >= %.1f m/yr; term skipped", cfg.velocity_min_m_a)
            terms = [t for t in terms if t != "velocity"]
    if "mass_balance" in terms:
        b = np.asarray(smb, np.float64) * (RHO_WATER / RHO_ICE if cfg.mb_water_equivalent else 1.0)
        if dhdt is not None:
            b = b - dhdt
        # residual only where every 4-neighbour is glacier too (central differences)
        inner = valid.copy()
        inner[1:, :] &= valid[:-1, :]
        inner[:-1, :] &= valid[1:, :]
        inner[:, 1:] &= valid[:, :-1]
        inner[:, :-1] &= valid[:, 1:]
        inner[[0, -1], :] = False
        inner[:, [0, -1]] = False
        inner &= np.isfinite(b)
        if cfg.mb_apparent and dhdt is None and inner.any():
            b = b - np.nanmean(b[valid & np.isfinite(b)])
        if inner.sum() < 3:
            log.info("mass balance: fewer than 3 interior pixels with a value; term skipped")
            terms = [t for t in terms if t != "mass_balance"]
        else:
            res["mb_inner"] = torch.as_tensor(inner)
            res["mb_b"] = T(np.nan_to_num(b))
            if velocity is not None:
                ux, uy = (np.nan_to_num(v) for v in velocity)
                frac = cfg.sliding_fraction + (1 - cfg.sliding_fraction) * (cfg.glen_n + 1) / (cfg.glen_n + 2)
                res["ubar"] = (T(frac * ux), T(frac * uy))  # depth-averaged velocity, linear in H
            else:
                # depth-averaged SIA flux q = k H^(n+2), sliding proportional to deformation
                k = sia_flux_coefficient(sin_a, glen_a=cfg.glen_a, n=cfg.glen_n, shape_factor=cfg.shape_factor,
                                         sliding_fraction=cfg.sliding_fraction)
                res["k_flux"] = T(k)
                res["dir"] = (T(dirx), T(diry))

    shape = h0.shape

    def full_h(hf: "torch.Tensor") -> "torch.Tensor":
        return fixed.index_put((idx,), hf).reshape(shape)

    def objective(hf: "torch.Tensor") -> tuple["torch.Tensor", dict[str, "torch.Tensor"]]:
        parts: dict[str, torch.Tensor] = {}
        if "data" in terms:
            parts["data"] = cfg.data_weight * (((hf - h0t) / res["sigma"]) ** 2).sum() / n_own
        if "sia" in terms:
            tau = rho_g_f * hf * sin_t
            band = torch.relu(tau_min - tau) + torch.relu(tau - cfg.tau_max_pa)
            parts["sia"] = cfg.sia_weight * ((band / cfg.tau_sigma_pa) ** 2).sum() / n_own
        hgrid = None
        if "smooth" in terms or "mass_balance" in terms:
            hgrid = full_h(hf)
        if "smooth" in terms:
            pr, pc = res["pair_r"]
            gx = (hgrid[:, 1:] - hgrid[:, :-1])[pr] / dx
            gy = (hgrid[1:, :] - hgrid[:-1, :])[pc] / dx
            parts["smooth"] = cfg.smooth_weight * ((gx**2).sum() + (gy**2).sum()) / cfg.smooth_sigma**2 / n_own
        if "velocity" in terms:
            ok = res["vel_ok"]
            r = (hf[ok] - res["h_u"][ok]) / (cfg.velocity_rel_sigma * res["h_u"][ok])
            parts["velocity"] = cfg.velocity_weight * (r**2).sum() / n_own
        if "mass_balance" in terms:
            if "ubar" in res:
                qx, qy = hgrid * res["ubar"][0], hgrid * res["ubar"][1]
            else:
                q = res["k_flux"] * hgrid ** (cfg.glen_n + 2)
                qx, qy = q * res["dir"][0], q * res["dir"][1]
            div = (qx[1:-1, 2:] - qx[1:-1, :-2] + qy[2:, 1:-1] - qy[:-2, 1:-1]) / (2 * dx)
            inner = res["mb_inner"][1:-1, 1:-1]
            r = (div[inner] - res["mb_b"][1:-1, 1:-1][inner]) / cfg.mb_sigma_m_a
            parts["mass_balance"] = cfg.mb_weight * (r**2).sum() / n_own
        return sum(parts.values()), parts

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        hf = torch.from_numpy(x).requires_grad_(True)
        total, _ = objective(hf)
        total.backward()
        return float(total.detach()), hf.grad.numpy().copy()

    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small arrays: BLAS/OpenMP threads only add contention (10x slower)
    try:
        with threadpool_limits(1):
            sol = minimize(fun, h0.ravel()[fv].astype(np.float64), jac=True, method="L-BFGS-B",
                           bounds=[(0.0, None)] * int(fv.sum()),
                           options=dict(maxiter=cfg.max_iter, maxcor=20, ftol=1e-10, gtol=1e-8))
        with torch.no_grad():
            total, parts = objective(torch.from_numpy(sol.x))
    finally:
        torch.set_num_threads(n_threads)
    n_iter = int(sol.nit)
    out = h0.copy()
    out.ravel()[fv] = sol.x
    loss = {k: float(v) for k, v in parts.items()} | {"total": float(total)}
    return out, loss, n_iter


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
    dhdt_g = raster_on_grid(dhdt, surface) if dhdt is not None and smb_g is not None else None
    if dhdt_g is not None:
        dhdt_g = np.nan_to_num(dhdt_g)
    return refine(surface.data, bed, own, ice, surface.res[0], cfg, calving=is_calving(term_type), velocity=vel,
                  smb=smb_g, dhdt=dhdt_g, sigma=sigma)


__all__ = ["PhysicsConfig", "Refinement", "refine", "effective_tau_min", "refine_window", "project",
           "velocity_on_grid", "raster_on_grid"]
