"""Settings and result of the physics posterior (:mod:`glacierbed.posterior.physics`).

:class:`PhysicsConfig` holds the switches, weights and constants of every term;
:class:`Refinement` is what :func:`~glacierbed.posterior.physics.refine` returns. Kept apart
from the solver so the objective (:mod:`glacierbed.posterior.physics_solver`) and the driver
can both import them without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from glacierbed.core.config import YamlConfig, config_to_yaml
from glacierbed.core.glaciology import RHO_ICE, RHO_WATER, check_margin_profile

#: the soft terms of the posterior, in the order they are evaluated and listed
SOFT_TERMS = ("data", "mass_conservation", "sia", "smooth", "velocity", "mass_balance")


@dataclass(frozen=True)
class PhysicsConfig(YamlConfig):
    """Switches, weights and physical constants of :func:`~glacierbed.posterior.physics.refine`
    (defaults and their sources: docs/physics.md)."""

    # --- hard constraints ---------------------------------------------------------------
    zero_margin: bool = True  #: H = 0 on the outline margin (divides and calving fronts excepted)
    #: with ``zero_margin``, what a margin pixel holds after the solve: ``plastic`` (the default since candidate 28,
    #: 2026-12-06: √(1/3) × its inner neighbours' thickness: zero on the outline itself, Nye's profile H ∝ √d at the
    #: pixel's centre half a pixel inside; ``core.glaciology.plastic_margin``) or ``zero`` (the whole pixel, as before)
    margin_profile: str = "plastic"
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
        check_margin_profile(self.margin_profile)
        if not 0 <= self.tau_min_pa <= self.tau_max_pa:
            raise ValueError(f"need 0 <= tau_min_pa <= tau_max_pa, got {self.tau_min_pa}, {self.tau_max_pa}")
        if not 0 <= self.sliding_fraction < 1:
            raise ValueError(f"sliding_fraction must be in [0, 1), got {self.sliding_fraction}")
        for name in ("data_sigma_m", "tau_sigma_pa", "smooth_sigma", "velocity_rel_sigma", "mb_sigma_m_a",
                     "mc_sigma_m"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")

    def to_yaml(self) -> str:
        """Every field as YAML, so a run's physics settings can be saved and reloaded."""
        return config_to_yaml(self)

    def only(self, *terms: str) -> "PhysicsConfig":
        """A copy with just these soft terms on (:data:`SOFT_TERMS`); hard constraints unchanged."""
        bad = set(terms) - set(SOFT_TERMS)
        if bad:
            raise ValueError(f"unknown terms {sorted(bad)}; choose from {SOFT_TERMS}")
        return replace(self, **{t: t in terms for t in SOFT_TERMS})

    @property
    def smb_to_ice(self) -> float:
        """Factor from the SMB raster's unit to metres of ice (rho_w / rho_i for a w.e. raster, else 1)."""
        return RHO_WATER / RHO_ICE if self.mb_water_equivalent else 1.0

    @property
    def glen(self) -> dict[str, float]:
        """Glen's-law keywords (A, n, shape factor, sliding) of the glaciology functions."""
        return dict(glen_a=self.glen_a, n=self.glen_n, shape_factor=self.shape_factor,
                    sliding_fraction=self.sliding_fraction)


def as_physics_config(physics: "bool | PhysicsConfig | None") -> PhysicsConfig | None:
    """The settings a physics switch means: True the defaults, False/None off, a PhysicsConfig itself."""
    return PhysicsConfig() if physics is True else (physics or None)


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


__all__ = ["PhysicsConfig", "Refinement", "SOFT_TERMS", "as_physics_config"]
