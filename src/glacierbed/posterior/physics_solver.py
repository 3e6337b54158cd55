"""The posterior's objective and its solver (:mod:`glacierbed.posterior.physics` builds the inputs).

:class:`Problem` holds, on the glacier's bounding box, every array a soft term needs;
:func:`build_objective` writes the soft terms as one torch function of the free pixels'
thickness (each a sum of squared normalised residuals over the glacier's pixels, divided by
their number, times its weight); :func:`optimise` minimises it with L-BFGS-B (scipy, bound
H >= 0) on torch autograd gradients, in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from glacierbed.core.glaciology import RHO_ICE, G
from glacierbed.posterior.physics_config import PhysicsConfig

if TYPE_CHECKING:
    import torch


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


def build_objective(p: Problem, cfg: PhysicsConfig, terms: list[str]
                    ) -> Callable[["torch.Tensor"], tuple["torch.Tensor", dict[str, "torch.Tensor"]]]:
    """The soft terms as a torch function of the free pixels' thickness: (total, each term).

    Tensors are made once here, so each L-BFGS-B evaluation only does the arithmetic.
    """
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


def optimise(p: Problem, cfg: PhysicsConfig, terms: list[str]) -> tuple[np.ndarray, dict[str, float], int]:
    """Minimise the objective over the free pixels with L-BFGS-B (bound H >= 0).

    Returns the thickness on the problem's box, each term's final value (plus ``total``) and
    the iteration count.
    """
    import torch
    from scipy.optimize import minimize

    objective = build_objective(p, cfg, terms)

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


__all__ = ["Problem", "build_objective", "optimise"]
