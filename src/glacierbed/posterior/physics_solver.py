"""The posterior's objective and its solver (:mod:`glacierbed.posterior.physics` builds the inputs).

:class:`Problem` holds, on the glacier's bounding box, every array a soft term needs;
:func:`build_objective` writes the soft terms as one function of the free pixels' thickness
(each a sum of squared normalised residuals over the glacier's pixels, divided by their
number, times its weight) returning the value and its exact gradient (each term is a
least-squares residual of a pointwise or finite-difference map, so the gradient is its
Jacobian-transpose times the residual: numpy, no autodiff framework, checked against finite
differences in ``tests/test_physics.py``); :func:`optimise` minimises it with L-BFGS-B
(scipy, bound H >= 0), in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from glacierbed.core.glaciology import RHO_ICE, G
from glacierbed.posterior.physics_config import PhysicsConfig


@dataclass
class Problem:
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


#: the objective: free pixels' thickness -> (total, gradient, each term's value)
Objective = Callable[[np.ndarray], tuple[float, np.ndarray, dict[str, float]]]


def _least_squares(r: np.ndarray, scale: np.ndarray | float, weight: float) -> tuple[float, np.ndarray]:
    """``weight * sum(r**2)`` for a residual ``r = (y - target) / scale``, and its gradient with respect to ``y``."""
    return weight * float(np.sum(r**2)), 2.0 * weight * r / scale


def _pair_differences(grid: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], dx: float, weight: float
                      ) -> tuple[float, np.ndarray]:
    """``weight * sum of squared slopes`` between neighbouring valid pixels, and its gradient on the grid."""
    out, total = np.zeros_like(grid), 0.0
    for axis, mask in enumerate(pairs):
        lo, hi = (np.s_[:, :-1], np.s_[:, 1:]) if axis == 0 else (np.s_[:-1, :], np.s_[1:, :])
        g = np.where(mask, (grid[hi] - grid[lo]) / dx, 0.0)
        total += weight * float(np.sum(g**2))
        out[hi] += 2.0 * weight * g / dx
        out[lo] -= 2.0 * weight * g / dx
    return total, out


def _divergence(qx: np.ndarray, qy: np.ndarray, dx: float) -> np.ndarray:
    """Central-difference flux divergence on the interior pixels."""
    return (qx[1:-1, 2:] - qx[1:-1, :-2] + qy[2:, 1:-1] - qy[:-2, 1:-1]) / (2 * dx)


def _divergence_adjoint(g: np.ndarray, shape: tuple[int, int], dx: float) -> tuple[np.ndarray, np.ndarray]:
    """The transpose of :func:`_divergence` applied to ``g`` (interior): gradients on qx and qy."""
    gqx, gqy = np.zeros(shape), np.zeros(shape)
    gqx[1:-1, 2:] += g / (2 * dx)
    gqx[1:-1, :-2] -= g / (2 * dx)
    gqy[2:, 1:-1] += g / (2 * dx)
    gqy[:-2, 1:-1] -= g / (2 * dx)
    return gqx, gqy


def _mass_balance(p: Problem, cfg: PhysicsConfig, grid: np.ndarray) -> tuple[float, np.ndarray]:
    """The flux-divergence misfit to the balance on the interior, and its gradient on the grid."""
    if p.ubar is not None:  # measured depth-averaged velocity carries the ice: q = H * ubar
        dqx, dqy = p.ubar
        qx, qy = grid * dqx, grid * dqy
    else:  # SIA flux along the surface slope: q = k * H^(n+2) * direction
        q = p.flux_k * grid ** (cfg.glen_n + 2)
        dq = p.flux_k * (cfg.glen_n + 2) * grid ** (cfg.glen_n + 1)
        (qx, qy), (dqx, dqy) = (q * d for d in p.direction), (dq * d for d in p.direction)
    inner = p.mb_inner[1:-1, 1:-1]
    r = np.where(inner, (_divergence(qx, qy, p.pixel_size_m) - p.mb[1:-1, 1:-1]) / cfg.mb_sigma_m_a, 0.0)
    value, g = _least_squares(r, cfg.mb_sigma_m_a, cfg.mb_weight)
    gqx, gqy = _divergence_adjoint(g, grid.shape, p.pixel_size_m)
    return value, gqx * dqx + gqy * dqy


def build_objective(p: Problem, cfg: PhysicsConfig, terms: list[str]) -> Objective:
    """The soft terms as a function of the free pixels' thickness: (total, gradient, each term)."""
    fv = p.free.ravel()
    idx = np.flatnonzero(fv)
    n_own = max(int(p.valid.sum()), 1)
    h0, sin_t = p.h0.ravel()[fv], p.sin_a.ravel()[fv]
    rho_g_f = cfg.shape_factor * RHO_ICE * G
    pairs = (p.valid[:, 1:] & p.valid[:, :-1], p.valid[1:, :] & p.valid[:-1, :])
    if "velocity" in terms:
        vel_ok = np.isfinite(p.velocity_h).ravel()[fv]
        h_u = np.nan_to_num(p.velocity_h).ravel()[fv][vel_ok]

    def objective(hf: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
        parts: dict[str, float] = {}
        grad, grid_grad = np.zeros_like(hf), np.zeros(p.h0.shape)
        grid = np.zeros(p.h0.size)
        grid[idx] = hf
        grid = grid.reshape(p.h0.shape)
        if "data" in terms:
            sigma = p.sigma.ravel()[fv]
            parts["data"], g = _least_squares((hf - h0) / sigma, sigma, cfg.data_weight)
            grad += g
        if "mass_conservation" in terms:
            h_mc, mc_sigma = p.h_mc.ravel()[fv], p.mc_sigma.ravel()[fv]
            parts["mass_conservation"], g = _least_squares((hf - h_mc) / mc_sigma, mc_sigma, cfg.mc_weight)
            grad += g
        if "sia" in terms:  # basal shear stress outside [tau_min, tau_max]
            tau = rho_g_f * hf * sin_t
            band = np.maximum(p.tau_min_pa - tau, 0.0) + np.maximum(tau - cfg.tau_max_pa, 0.0)
            parts["sia"], g = _least_squares(band / cfg.tau_sigma_pa, cfg.tau_sigma_pa, cfg.sia_weight)
            grad += g * (np.where(tau > cfg.tau_max_pa, 1.0, 0.0) - np.where(tau < p.tau_min_pa, 1.0, 0.0)) * rho_g_f * sin_t
        if "smooth" in terms:
            parts["smooth"], g = _pair_differences(grid, pairs, p.pixel_size_m, cfg.smooth_weight / cfg.smooth_sigma**2)
            grid_grad += g
        if "velocity" in terms:
            scale = cfg.velocity_rel_sigma * h_u
            parts["velocity"], g = _least_squares((hf[vel_ok] - h_u) / scale, scale, cfg.velocity_weight)
            grad[vel_ok] += g
        if "mass_balance" in terms:
            parts["mass_balance"], g = _mass_balance(p, cfg, grid)
            grid_grad += g
        grad += grid_grad.ravel()[idx]
        parts = {k: v / n_own for k, v in parts.items()}
        return sum(parts.values()), grad / n_own, parts

    return objective


def optimise(p: Problem, cfg: PhysicsConfig, terms: list[str]) -> tuple[np.ndarray, dict[str, float], int]:
    """Minimise the objective over the free pixels with L-BFGS-B (bound H >= 0).

    Returns the thickness on the problem's box, each term's final value (plus ``total``) and
    the iteration count.
    """
    from scipy.optimize import minimize

    objective = build_objective(p, cfg, terms)
    fv = p.free.ravel()
    sol = minimize(lambda x: objective(x)[:2], p.h0.ravel()[fv].astype(np.float64), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * int(fv.sum()), options=dict(maxiter=cfg.max_iter, maxcor=20, ftol=1e-10,
                                                                     gtol=1e-8))
    total, _, parts = objective(sol.x)
    out = p.h0.copy()
    out.ravel()[fv] = sol.x
    return out, parts | {"total": float(total)}, int(sol.nit)


__all__ = ["Objective", "Problem", "build_objective", "optimise"]
