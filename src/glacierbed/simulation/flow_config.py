"""Settings of the shallow-ice simulator (:mod:`glacierbed.simulation.ice_flow`): numerics and physics.

:class:`SimulationConfig` holds the numerical settings of one batched run,
:class:`GlacierParams` the physics of one sample (rate factor, sliding, linear mass balance,
retreat); :func:`draw_params` draws those from :class:`ParamRanges` for one patch of terrain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from glacierbed.core.glaciology import GLEN_A, GLEN_N, sliding_factor


@dataclass(frozen=True)
class SimulationConfig:
    """Numerical settings of one batched run (load with ``glacierbed.core.config.load_config``)."""

    glen_n: float = GLEN_N
    scheme: Literal["muscl", "upwind", "centred"] = "muscl"  #: face thickness: MUSCL-superbee, 1st-order upwind, mean
    cfl: float = 0.2  #: dt <= cfl dx^2 / max D (explicit 2D diffusion is stable below 0.25)
    max_dt_yr: float = 1.0
    steady_tol_per_yr: float = 2e-4  #: steady when |dV/dt| / V stays below this ...
    steady_window_yr: float = 20.0  #: ... over windows this long ...
    steady_windows: int = 2  #: ... this many windows in a row
    max_years: float = 3000.0  #: per grid level
    coarse_levels: int = 2  #: spin-up on grids 2^k coarser, k = coarse_levels .. 1
    ice_min_m: float = 1.0  #: thickness counted as ice in records
    check_every: int = 10  #: steps between bookkeeping (clocks, steady test)
    compile: bool = True  #: torch.compile the step (~4x faster; ~10-20 s to compile once per process)
    threads: int | None = 1  #: torch threads during a call (restored after); None: the caller's setting
    dtype: Literal["float32", "float64"] = "float32"
    #: steady states in pseudo-time: every cell its own stable step (same steady state, far fewer
    #: steps where thick, soft or sliding ice on steep beds forces a tiny global step)
    local_dt: bool = False
    steady_imbalance: float = 0.02  #: with local_dt, also mean |dH/dt| / mean |b| over ice below this
    min_dt_yr: float = 0.0  #: transient phases: D capped so no step is shorter (0: no cap)

    def __post_init__(self) -> None:
        if (self.scheme not in ("muscl", "upwind", "centred") or self.dtype not in ("float32", "float64")
                or not 0 < self.cfl <= 0.25 or self.glen_n < 1 or self.max_dt_yr <= 0 or self.steady_window_yr <= 0
                or self.coarse_levels < 0 or self.min_dt_yr < 0 or self.steady_imbalance <= 0 or self.check_every < 1
                or (self.threads is not None and self.threads < 1)):
            raise ValueError(f"invalid SimulationConfig (scheme muscl/upwind/centred, dtype float32/float64, "
                             f"0 < cfl <= 0.25, positive sizes): {self}")


@dataclass(frozen=True)
class GlacierParams:
    """Per-sample physics: rate factor, sliding, linear mass balance, optional retreat."""

    ela_m: float
    grad_abl: float = 0.007  #: m ice/yr per m, below the ELA
    grad_acc: float = 0.0035  #: m ice/yr per m, above the ELA
    cap_m_a: float = 2.0  #: largest balance (m ice/yr)
    glen_a: float = GLEN_A  #: Pa-n s-1
    sliding_fraction: float = 0.0  #: u_b / u_s
    retreat_dela_m: float = 0.0  #: ELA rise after steady state ...
    retreat_years: float = 0.0  #: ... for this long

    def __post_init__(self) -> None:
        if not np.isfinite(self.ela_m) or self.glen_a <= 0 or self.grad_abl < 0 or self.grad_acc < 0:
            raise ValueError(f"invalid GlacierParams {self}")
        sliding_factor(self.sliding_fraction)  # range check
        if self.retreat_years < 0:
            raise ValueError(f"retreat_years must be >= 0, got {self.retreat_years}")


@dataclass(frozen=True)
class ParamRanges:
    """Ranges :func:`draw_params` draws from (log-uniform A, uniform otherwise)."""

    glen_a_factor: float = 3.0  #: A = GLEN_A x/÷ up to this
    sliding: tuple[float, float] = (0.0, 0.5)
    grad_abl: tuple[float, float] = (0.004, 0.012)
    acc_ratio: tuple[float, float] = (0.3, 0.8)  #: grad_acc / grad_abl
    cap_m_a: tuple[float, float] = (0.5, 2.5)
    ela_quantile: tuple[float, float] = (0.78, 0.965)  #: of the bed elevation; gives 5-40 % ice (docs/simulate.md)
    retreat_probability: float = 0.5
    retreat_dela_m: tuple[float, float] = (0.0, 200.0)
    retreat_years: tuple[float, float] = (20.0, 80.0)


def draw_params(rng: np.random.Generator, bed: np.ndarray, ranges: ParamRanges = ParamRanges()) -> GlacierParams:
    """Random :class:`GlacierParams` for one patch; the ELA is an upper quantile of its bed."""
    z = np.asarray(bed, float)
    z = z[np.isfinite(z)]
    if z.size == 0:
        raise ValueError("bed holds no finite elevation")
    u = lambda r: float(rng.uniform(*r))
    grad_abl = u(ranges.grad_abl)
    retreat = rng.random() < ranges.retreat_probability
    return GlacierParams(
        ela_m=float(np.quantile(z, u(ranges.ela_quantile))),
        grad_abl=grad_abl, grad_acc=grad_abl * u(ranges.acc_ratio), cap_m_a=u(ranges.cap_m_a),
        glen_a=GLEN_A * float(ranges.glen_a_factor ** rng.uniform(-1.0, 1.0)),
        sliding_fraction=u(ranges.sliding),
        retreat_dela_m=u(ranges.retreat_dela_m) if retreat else 0.0,
        retreat_years=u(ranges.retreat_years) if retreat else 0.0,
    )


__all__ = ["GlacierParams", "ParamRanges", "SimulationConfig", "draw_params"]
