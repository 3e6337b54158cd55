"""A batched 2D shallow-ice glacier model on real terrain: steady states and retreat (CPU, torch).

    dH/dt = b(s) - div q,  q = -D grad s,  s = bed + H,
    D = 2A/(n+2) (rho g)^n H^(n+2) |grad s|^(n-1) x sliding_factor(f_b)   (m, yr)

with b the linear mass balance of the current surface and sliding proportional to deformation;
constants and formulas come from :mod:`glacierbed.core.glaciology`. Numerics after Jarosch, Schoof &
Anslow (2013, The Cryosphere 7): explicit flux form on a staggered grid, H at each face from the
MUSCL-superbee reconstruction on the upstream side, so no ice appears or vanishes over bed
steps; the cross slope at a face is a van Leer mean, so a rock wall beside valley ice is not the
ice's slope. Each sample has its own step dt = min(cfl dx^2 / max D, max_dt) and clock. The
outer ring of pixels is a sink held at H = 0: ice flowing into it is counted as lost at the
edge. H < 0 from the flux divergence alone is clipped and counted; ablation melts at most the
ice a cell holds. Coarse levels (bed averaged over 2^k pixels) spin up to steady state first.
The step runs through torch.compile by default. Figures: docs/simulate.md.
"""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F

from glacierbed.core.glaciology import G, GLEN_A, GLEN_N, RHO_ICE, linear_mass_balance, per_year, sliding_factor

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


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

    def __post_init__(self) -> None:
        if (self.scheme not in ("muscl", "upwind", "centred") or self.dtype not in ("float32", "float64")
                or not 0 < self.cfl <= 0.25 or self.glen_n < 1 or self.max_dt_yr <= 0 or self.steady_window_yr <= 0
                or self.coarse_levels < 0 or self.check_every < 1 or (self.threads is not None and self.threads < 1)):
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


@dataclass
class SampleRecord:
    """What happened to one sample (volumes in m3, years on the finest grid unless named)."""

    steady: bool
    years: float  #: finest grid, to steady state (or max_years)
    steps: int  #: finest grid, steady phase and retreat
    spinup_years: float  #: coarse levels, all together
    spinup_steps: int
    retreat_years: float
    steady_volume_m3: float
    volume_m3: float  #: at the end (after retreat)
    ice_fraction: float  #: of the patch with H >= ice_min_m, at the end
    clipped_m3: float  #: removed to keep H >= 0 (finest grid)
    lost_at_edge_m3: float  #: flowed into the edge ring (finest grid)
    edge_share: float  #: share of the accumulation that leaves through the edge at steady state


@dataclass
class SimulationResult:
    """Final thickness/surface (B, ny, nx, float32), the steady state before retreat, records."""

    thickness: np.ndarray
    surface: np.ndarray
    steady_thickness: np.ndarray
    records: list[SampleRecord]

    def table(self) -> pd.DataFrame:
        """The records as a table, one row per sample."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.records])


class _Batch:
    """State of B samples on one grid: thickness, bed, per-sample coefficients (b, 1, 1) and tallies."""

    def __init__(self, bed: torch.Tensor, thick: torch.Tensor, dx: float, params: Sequence[GlacierParams],
                 cfg: SimulationConfig) -> None:
        n = cfg.glen_n
        col = lambda v: torch.tensor(v, dtype=torch.float64).view(-1, 1, 1)
        self.bed, self.H, self.dx, self.cfg = bed, thick, dx, cfg
        self.gamma = col([2 * per_year(p.glen_a) / (n + 2) * (RHO_ICE * G) ** n * sliding_factor(p.sliding_fraction, n)
                          for p in params]).to(bed.dtype)
        self.mb = [col([getattr(p, k) for p in params]) for k in ("ela_m", "grad_abl", "grad_acc", "cap_m_a")]
        b = len(params)
        self.years, self.clipped, self.lost = np.zeros(b), np.zeros(b), np.zeros(b)
        self.steps, self.steady, self.edge_rate = np.zeros(b, int), np.zeros(b, bool), np.full(b, np.nan)

    def volume(self) -> np.ndarray:
        return self.H.sum((1, 2), dtype=torch.float64).numpy() * self.dx**2


def _balance(s: torch.Tensor, mb: list[torch.Tensor]) -> torch.Tensor:
    """Mass balance (m ice/yr) of surfaces s, 0 on the sink ring; numpy, so torch.compile traces it too."""
    b = torch.from_numpy(linear_mass_balance(s.numpy(), *(m.numpy() for m in mb))).to(s.dtype)
    b[:, [0, -1], :] = 0.0
    b[:, :, [0, -1]] = 0.0
    return b


def _face_thickness(H: torch.Tensor, down: torch.Tensor, dim: int, scheme: str) -> torch.Tensor:
    """H at the faces between neighbours along ``dim``, from the upstream side (``down``: flow to +).

    Arithmetic instead of ``torch.where``, which is ~20x slower than a multiply in eager CPU mode.
    """
    m = H.shape[dim]
    lo, hi = H.narrow(dim, 0, m - 1), H.narrow(dim, 1, m - 1)
    if scheme == "centred":
        return 0.5 * (lo + hi)
    if scheme == "muscl":  # superbee-limited slope phi(r) dH+ per cell, r = dH- / dH+, H = 0 outside
        d = hi - lo
        back = torch.cat([H.narrow(dim, 0, 1), d], dim)
        fwd = torch.cat([d, -H.narrow(dim, m - 1, 1)], dim)
        sign, c = torch.sign(fwd), fwd.abs()
        a = sign * back  # |dH-| where both differences agree in sign, <= 0 where not
        slope = sign * torch.maximum(torch.minimum(2 * a, c), torch.minimum(a, 2 * c)).clamp_min(0.0)
        lo = lo + 0.5 * slope.narrow(dim, 0, m - 1)  # left state (from the lower-index cell)
        hi = hi - 0.5 * slope.narrow(dim, 1, m - 1)  # right state
    return torch.lerp(hi, lo, down.to(H.dtype))


def _fluxes(H: torch.Tensor, s: torch.Tensor, gamma: torch.Tensor, dx: torch.Tensor, n: float, scheme: str
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Face fluxes along x (B, ny, nx-1) and y (B, ny-1, nx), in m2/yr, and max D per sample."""
    out = []
    for dim, other in ((-1, -2), (-2, -1)):
        m, k = s.shape[dim], s.shape[other]
        ds = (s.narrow(dim, 1, m - 1) - s.narrow(dim, 0, m - 1)) / dx
        d = torch.diff(s, dim=other, prepend=s.narrow(other, 0, 1), append=s.narrow(other, k - 1, 1)) / dx
        a, b = d.narrow(other, 0, k), d.narrow(other, 1, k)  # one-sided cross slopes of each cell
        g = (a * b.abs() + a.abs() * b) / (a.abs() + b.abs() + 1e-12)  # van Leer mean, 0 at valley floors
        g = 0.5 * (g.narrow(dim, 0, m - 1) + g.narrow(dim, 1, m - 1))
        slope2 = ds * ds + g * g
        h = _face_thickness(H, ds <= 0, dim, scheme)
        if n == 3:  # products: pow is slow on CPU
            h2 = h * h
            D = gamma * (h2 * h2 * h) * slope2
        else:
            D = gamma * h.pow(n + 2) * slope2.pow((n - 1) / 2)
        out += [-D * ds, D.amax((1, 2))]
    return out[0], out[2], torch.maximum(out[1], out[3])


def _step(H: torch.Tensor, bed: torch.Tensor, gamma: torch.Tensor, mb: list[torch.Tensor], t_end: torch.Tensor,
          tally: torch.Tensor, dx: torch.Tensor, cfl: float, max_dt: float, n: float, scheme: str
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One explicit step of all samples: new H and tally + (dt in yr, clipped, lost in m x px, 1 if dt > 0)."""
    s = bed + H
    qx, qy, dmax = _fluxes(H, s, gamma, dx, n, scheme)
    dt = torch.minimum(cfl * dx * dx / dmax.double().clamp_min(1e-30), (t_end - tally[:, 0]).clamp(0.0, max_dt))
    dt_c = dt.to(H.dtype).view(-1, 1, 1)
    zx, zy = torch.zeros_like(H[..., :1]), torch.zeros_like(H[..., :1, :])
    div = torch.cat([qx, zx], -1) - torch.cat([zx, qx], -1) + torch.cat([qy, zy], -2) - torch.cat([zy, qy], -2)
    H1 = H - (dt_c / dx) * div  # div: net outflow per cell
    neg = (-H1).clamp_min(0.0)
    H1 = (H1 + neg + dt_c * _balance(s, mb)).clamp_min(0.0)  # ablation melts at most the ice there
    ring = torch.ones_like(H[:1])
    ring[:, 1:-1, 1:-1] = 0.0  # the sink ring (see module doc)
    lost = (H1 * ring).sum((1, 2), dtype=torch.float64)
    clipped = neg.sum((1, 2), dtype=torch.float64)
    return H1 * (1 - ring), tally + torch.stack([dt, clipped, lost, (dt > 0).double()], 1)


@functools.cache
def _compiled_step() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``_step`` through torch.compile: one fused graph, the numpy mass balance traced into it."""
    return torch.compile(_step, dynamic=True, fullgraph=True)


def _run_block(st: _Batch, work: np.ndarray, t0: np.ndarray, t_end: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """``check_every`` steps of the samples ``work``: their thickness and tally (see ``_step``)."""
    cfg = st.cfg
    idx = torch.from_numpy(work)
    H, bed, gamma, mb = st.H[idx], st.bed[idx], st.gamma[idx], [m[idx] for m in st.mb]
    tally = torch.zeros(len(work), 4, dtype=torch.float64)
    tally[:, 0] = torch.from_numpy(t0)
    args = dict(dx=torch.tensor(st.dx, dtype=torch.float64), cfl=cfg.cfl, max_dt=cfg.max_dt_yr, n=cfg.glen_n,
                scheme=cfg.scheme)
    step = _compiled_step() if cfg.compile else _step
    for _ in range(cfg.check_every):
        try:
            H, tally = step(H, bed, gamma, mb, torch.from_numpy(t_end), tally, **args)
        except Exception as exc:  # e.g. no C++ compiler: the eager step gives the same numbers
            if step is _step:
                raise
            log.warning("torch.compile failed (%s: %s); running eagerly", type(exc).__name__, exc)
            step = _step
            H, tally = step(H, bed, gamma, mb, torch.from_numpy(t_end), tally, **args)
    return H, tally.numpy()


@torch.no_grad()
def _integrate(st: _Batch, years: np.ndarray, until_steady: bool) -> None:
    """Advance sample i by years[i] (until_steady: at most that, stopping at steady state).

    Volume and edge loss are compared over windows of ``steady_window_yr``; the last full
    window gives ``st.edge_rate`` (m3/yr). Finished samples leave the working batch.
    """
    cfg, px = st.cfg, st.dx**2
    t = np.zeros(len(years))
    v_ref, l_ref, t_ref, n_good = st.volume(), st.lost.copy(), np.zeros(len(years)), np.zeros(len(years), int)
    active = np.flatnonzero(years > 0)
    while active.size:
        pad = cfg.compile and active.size == 1  # a second, idle copy: a batch of 1 would compile a graph of its own
        work = np.r_[active, active] if pad else active
        H, tally = _run_block(st, work, t[work], np.r_[years[active], 0.0] if pad else years[active])
        H, tally = H[: active.size], tally[: active.size]
        st.H[torch.from_numpy(active)] = H
        t[active] = ta = tally[:, 0]
        st.clipped[active] += tally[:, 1] * px
        st.lost[active] += tally[:, 2] * px
        st.steps[active] += tally[:, 3].astype(int)
        done = ta >= years[active] * (1 - 1e-12)
        due = ta - t_ref[active] >= cfg.steady_window_yr
        if due.any():
            i = active[due]
            v = H[torch.from_numpy(np.flatnonzero(due))].sum((1, 2), dtype=torch.float64).numpy() * px
            span = t[i] - t_ref[i]
            rate = np.abs(v - v_ref[i]) / (np.maximum(v, px) * span)  # px: 1 m on one pixel, so no ice is steady
            n_good[i] = np.where(rate < cfg.steady_tol_per_yr, n_good[i] + 1, 0)
            st.edge_rate[i] = (st.lost[i] - l_ref[i]) / span
            v_ref[i], l_ref[i], t_ref[i] = v, st.lost[i], t[i]
        if until_steady:
            st.steady[active] |= n_good[active] >= cfg.steady_windows
            done |= st.steady[active]
        active = active[~done]
    st.years += t


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside, the caller's setting restored after.

    One thread by default: with two, one glacier took 33 s instead of 0.9 s on a busy 2-core machine.
    """
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _check_inputs(beds: np.ndarray, pixel_size_m: float | tuple[float, float], n_params: int
                  ) -> tuple[np.ndarray, float]:
    """(B, ny, nx) finite beds and the pixel size, or a ValueError saying what is wrong."""
    beds = np.asarray(beds)
    beds = beds[None] if beds.ndim == 2 else beds
    if beds.ndim != 3 or min(beds.shape[1:]) < 5:
        raise ValueError(f"beds must be (B, ny, nx) or (ny, nx) with ny, nx >= 5, got shape {np.shape(beds)}")
    if not np.isfinite(beds).all():
        raise ValueError(f"beds hold {int((~np.isfinite(beds)).sum())} NaN/inf values; fill voids first")
    dx = np.atleast_1d(np.asarray(pixel_size_m, float))
    if dx.size > 2 or not np.allclose(dx, dx[0]) or not dx[0] > 0:
        raise ValueError(f"pixel_size_m must be one positive size (square pixels), got {pixel_size_m}")
    if n_params != beds.shape[0]:
        raise ValueError(f"{n_params} parameter sets for {beds.shape[0]} beds")
    return beds, float(dx[0])


def run(beds: np.ndarray, thickness: np.ndarray, pixel_size_m: float, params: Sequence[GlacierParams],
        years: float | Sequence[float], cfg: SimulationConfig = SimulationConfig()) -> SimulationResult:
    """Advance given thicknesses by ``years`` (scalar or per sample) on the given grid, no spin-up.

    Ice given on the edge ring is removed in the first step (counted as lost at the edge).
    ``records[i].steady`` is False (not tested); ``years`` and ``steps`` are those of this run.
    """
    beds, dx = _check_inputs(beds, pixel_size_m, len(params))
    thick = np.asarray(thickness)
    thick = thick[None] if thick.ndim == 2 else thick
    if thick.shape != beds.shape or not np.isfinite(thick).all() or (thick < 0).any():
        raise ValueError(f"thickness must be finite, >= 0 and shaped like beds {beds.shape}, got {thick.shape}")
    dtype = getattr(torch, cfg.dtype)
    st = _Batch(torch.tensor(beds, dtype=dtype), torch.tensor(thick, dtype=dtype), dx, params, cfg)
    span = np.broadcast_to(np.asarray(years, float), (len(params),)).copy()
    if not (np.isfinite(span) & (span >= 0)).all():
        raise ValueError(f"years must be finite and >= 0, got {years}")
    with _torch_threads(cfg.threads):
        _integrate(st, span, until_steady=False)
    zeros = np.zeros(len(params))
    return _result(st, _Steady(st), zeros, zeros.astype(int), zeros)


def _coarsen(x: torch.Tensor, f: int) -> torch.Tensor:
    return F.avg_pool2d(x[:, None], f)[:, 0] if f > 1 else x


def _refine(st: _Batch, bed: torch.Tensor) -> torch.Tensor:
    """Thickness on the 2x finer grid of ``bed``: interpolated coarse surface minus the fine bed."""
    s = F.interpolate((st.bed + st.H)[:, None], scale_factor=2, mode="bilinear", align_corners=False)[:, 0]
    ice = F.interpolate((st.H > 0).to(bed.dtype)[:, None], scale_factor=2, mode="nearest")[:, 0]
    H = (s - bed).clamp_min(0.0) * ice
    H[:, [0, -1], :] = 0.0
    H[:, :, [0, -1]] = 0.0
    return H


def simulate_glaciers(beds: np.ndarray, pixel_size_m: float, params: Sequence[GlacierParams],
                      cfg: SimulationConfig = SimulationConfig()) -> SimulationResult:
    """Grow glaciers from bare beds (B, ny, nx) to steady state, then let those with ``retreat_years`` retreat.

    Coarse levels spin up first when ny, nx are divisible by 2^coarse_levels (else fewer levels).
    """
    beds, dx = _check_inputs(beds, pixel_size_m, len(params))
    b, ny, nx = beds.shape
    levels = cfg.coarse_levels
    while levels and (ny % 2**levels or nx % 2**levels or min(ny, nx) // 2**levels < 8):
        levels -= 1
    bed = torch.tensor(beds, dtype=getattr(torch, cfg.dtype))
    max_years = np.full(b, cfg.max_years)
    spin_years, spin_steps = np.zeros(b), np.zeros(b, int)
    bed_k = _coarsen(bed, 2**levels)
    st = _Batch(bed_k, torch.zeros_like(bed_k), dx * 2**levels, params, cfg)
    with _torch_threads(cfg.threads):
        for k in range(levels, -1, -1):
            if k < levels:
                bed_k = _coarsen(bed, 2**k)
                st = _Batch(bed_k, _refine(st, bed_k), dx * 2**k, params, cfg)
            _integrate(st, max_years, until_steady=True)
            if k:
                spin_years += st.years
                spin_steps += st.steps
        steady = _Steady(st)
        retreat = np.array([p.retreat_years for p in params])
        st.mb[0] = st.mb[0] + torch.tensor([p.retreat_dela_m for p in params], dtype=torch.float64).view(-1, 1, 1)
        _integrate(st, retreat, until_steady=False)
    st.years = steady.years
    return _result(st, steady, spin_years, spin_steps, retreat)


class _Steady:
    """Thickness, years and edge share of a batch at the end of its steady-state phase."""

    def __init__(self, st: _Batch) -> None:
        self.H, self.years = st.H.clone(), st.years.copy()
        self.volume = st.volume()
        acc = _balance(st.bed + st.H, st.mb).clamp_min(0.0).sum((1, 2), dtype=torch.float64).numpy()
        self.edge_share = np.nan_to_num(st.edge_rate) / np.maximum(acc * st.dx**2, 1e-9)


def _result(st: _Batch, steady: _Steady, spin_years: np.ndarray, spin_steps: np.ndarray, retreat: np.ndarray
            ) -> SimulationResult:
    H = st.H.numpy().astype(np.float32)
    volume = st.volume()
    ice = (H >= st.cfg.ice_min_m).mean((1, 2))
    records = [SampleRecord(bool(st.steady[i]), float(st.years[i]), int(st.steps[i]), float(spin_years[i]),
                            int(spin_steps[i]), float(retreat[i]), float(steady.volume[i]), float(volume[i]),
                            float(ice[i]), float(st.clipped[i]), float(st.lost[i]), float(steady.edge_share[i]))
               for i in range(len(H))]
    return SimulationResult(H, (st.bed.numpy() + H).astype(np.float32), steady.H.numpy().astype(np.float32), records)
