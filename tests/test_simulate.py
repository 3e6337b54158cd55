"""Tests of glacierbed.simulation.ice_flow: Halfar dome, mass conservation on real terrain, H >= 0,
steady state with a mass balance, batched = per sample, input checks, parameter draws."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.special import beta

from glacierbed.core.config import load_config
from glacierbed.core.glaciology import GLEN_A, G, RHO_ICE, linear_mass_balance, per_year
from glacierbed.simulation.ice_flow import (GlacierParams, ParamRanges, SimulationConfig, draw_params, run,
                                 simulate_glaciers)

NO_BALANCE = GlacierParams(ela_m=0.0, grad_abl=0.0, grad_acc=0.0, cap_m_a=0.0)
F64 = SimulationConfig(dtype="float64", compile=False)  # eager: no compile time in most tests


@pytest.fixture(scope="module")
def ticino(data_dir: Path) -> np.ndarray:
    """The Ticino 200 m topography of the data kit (float64)."""
    from glacierbed.data.rasters import read_dem
    from glacierbed.data.registry import get_file

    return read_dem(get_file("alps-topography-200m/topg-ticino.tif")).data.astype(np.float64)


def halfar(r: np.ndarray, t: float, h0: float, r0: float, t0: float) -> np.ndarray:
    """Halfar (1981) similarity solution for n = 3 on a flat bed without mass balance."""
    x = (t0 / t) ** (1 / 18) * r / r0
    return h0 * (t0 / t) ** (1 / 9) * np.clip(1 - x ** (4 / 3), 0, None) ** (3 / 7)


def test_halfar_dome() -> None:
    """Dome of H0 = 300 m, R0 = 5 km on a 250 m grid from t0 to 4 t0 (~120 yr)."""
    h0, r0, dx, n = 300.0, 5000.0, 250.0, 64
    gamma = 2 * per_year(GLEN_A) / 5 * (RHO_ICE * G) ** 3
    t0 = (7 / 4) ** 3 / (18 * gamma) * r0**4 / h0**7  # Bueler et al. (2005), test B
    y, x = (np.mgrid[:n, :n] - (n - 1) / 2) * dx
    r = np.hypot(x, y)
    h_start = halfar(r, t0, h0, r0, t0)
    res = run(np.zeros((n, n)), h_start, dx, [NO_BALANCE], 3 * t0, F64)
    rec, h = res.records[0], res.thickness[0]
    exact = halfar(r, 4 * t0, h0, r0, t0)
    interior = r < 0.8 * r0 * 4 ** (1 / 18)
    err = np.abs(h - exact)[interior].max() / exact.max()
    assert err < 0.01  # measured 0.2 %; the first-order upwind face thickness gives 1.7 %
    assert np.abs(h - exact).max() / exact.max() < 0.1  # margin included: measured 5.7 %
    v_exact = 2 * np.pi * r0**2 * h0 * 0.75 * beta(1.5, 10 / 7)
    assert rec.volume_m3 == pytest.approx(v_exact, rel=0.01)
    assert rec.volume_m3 == pytest.approx(h_start.sum() * dx**2, rel=1e-12)
    assert rec.clipped_m3 == 0 and rec.lost_at_edge_m3 == 0
    assert rec.years == pytest.approx(3 * t0) and rec.steps > 100


def _blob(shape: tuple[int, int], sigma_px: float = 6.0, h_max: float = 200.0) -> np.ndarray:
    y, x = np.mgrid[: shape[0], : shape[1]]
    h = h_max * np.exp(-((y - shape[0] / 2) ** 2 + (x - shape[1] / 2) ** 2) / (2 * sigma_px**2))
    return np.where(h > 1.0, h, 0.0)


def test_mass_conserved_on_real_terrain(ticino: np.ndarray) -> None:
    """No balance, a blob of ice on 1600 m of relief: the volume stays to round-off, H >= 0 throughout."""
    bed = ticino[300:348, 200:248]
    assert np.ptp(bed) > 1000
    h = _blob(bed.shape)
    for _ in range(4):  # 4 x 25 years, checking H >= 0 in between
        v0 = h.sum() * 200.0**2
        res = run(bed, h, 200.0, [NO_BALANCE], 25.0, F64)
        rec = res.records[0]
        assert res.thickness.min() >= 0.0
        assert rec.clipped_m3 == 0.0 and rec.lost_at_edge_m3 == 0.0
        assert abs(rec.volume_m3 - v0) / v0 < 1e-10  # the result is float32: compare per run
        h = res.thickness[0].astype(np.float64)
    assert np.abs(h - _blob(bed.shape)).max() > 100  # the ice did move


def test_centred_scheme_gains_mass_where_muscl_does_not(ticino: np.ndarray) -> None:
    """The reason for the limiter: the centred face thickness needs clipping over bed steps."""
    bed, h = ticino[300:348, 200:248], _blob((48, 48))
    out = run(bed, h, 200.0, [NO_BALANCE], 100.0, dataclasses.replace(F64, scheme="centred")).records[0]
    assert out.clipped_m3 / (h.sum() * 200.0**2) > 0.01  # measured +4 %
    assert out.volume_m3 > h.sum() * 200.0**2 * 1.01


def test_steady_state_with_mass_balance(ticino: np.ndarray) -> None:
    bed = ticino[100:164, 100:164]
    ela = float(np.quantile(bed, 0.85))
    p = GlacierParams(ela_m=ela, grad_abl=0.008, grad_acc=0.004, cap_m_a=2.0)
    cfg = dataclasses.replace(F64, coarse_levels=1)
    res = simulate_glaciers(bed, 200.0, [p], cfg)
    rec, h, s = res.records[0], res.thickness[0], res.surface[0]
    assert rec.steady and rec.spinup_years > 0 and rec.clipped_m3 == 0.0
    assert h.min() >= 0.0 and h.dtype == np.float32 and np.allclose(s, bed + h, atol=1e-3)
    np.testing.assert_array_equal(res.steady_thickness, res.thickness)  # no retreat asked
    assert 0.05 < rec.ice_fraction < 0.5
    ice = h[1:-1, 1:-1] > 0
    above = s[1:-1, 1:-1] > ela
    assert (ice & above).sum() > (ice & ~above).sum() > 0  # accumulation and ablation zones
    assert s[1:-1, 1:-1][ice].min() > ela - 1500.0  # no ice far down the valley
    assert not (h[bed < ela - 1500.0] > 0).any()
    # glacier-wide balance: its accumulation leaves through melt or the edge. Melt of ice that
    # flows into ice-free margin cells is between none and their full balance:
    b = linear_mass_balance(s, ela, p.grad_abl, p.grad_acc, p.cap_m_a)[1:-1, 1:-1] * 200.0**2
    acc = b[b > 0].sum()
    edge = rec.edge_share * acc
    margin = ndimage.binary_dilation(h > 0)[1:-1, 1:-1]
    assert b[ice].sum() - edge > -0.02 * acc
    assert b[margin].sum() - edge < 0.02 * acc
    assert rec.edge_share < 0.3
    # and the volume stays: 20 more years change it by < 1 %
    more = run(bed, h, 200.0, [p], 20.0, cfg).records[0]
    assert abs(more.volume_m3 / rec.volume_m3 - 1) < 0.01


def test_batch_equals_single(ticino: np.ndarray) -> None:
    """Two samples (own bed, A, sliding, balance, retreat) together = each alone; float64."""
    beds = np.stack([ticino[100:132, 100:132], ticino[300:332, 200:232]])
    ps = [GlacierParams(ela_m=float(np.quantile(beds[0], 0.8)), grad_abl=0.01, grad_acc=0.003, cap_m_a=1.5,
                        glen_a=GLEN_A * 2, sliding_fraction=0.3, retreat_dela_m=100.0, retreat_years=30.0),
          GlacierParams(ela_m=float(np.quantile(beds[1], 0.85)), grad_abl=0.006, grad_acc=0.004, cap_m_a=2.5,
                        glen_a=GLEN_A / 2)]
    cfg = dataclasses.replace(F64, coarse_levels=1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        both = simulate_glaciers(beds, 200.0, ps, cfg)
        assert torch.get_num_threads() == 2  # cfg.threads = 1 inside, the caller's setting after
    finally:
        torch.set_num_threads(threads)
    for i in range(2):
        alone = simulate_glaciers(beds[i], 200.0, [ps[i]], cfg)
        np.testing.assert_allclose(both.thickness[i], alone.thickness[0], atol=1e-4)
        a, b = dataclasses.asdict(both.records[i]), dataclasses.asdict(alone.records[0])
        assert a["steps"] == b["steps"] and a["steady"] == b["steady"]
        assert a["volume_m3"] == pytest.approx(b["volume_m3"], rel=1e-9)
    r0 = both.records[0]
    assert r0.retreat_years == 30.0 and r0.volume_m3 < r0.steady_volume_m3  # ELA up: it shrinks
    assert both.records[1].retreat_years == 0.0
    np.testing.assert_array_equal(both.thickness[1], both.steady_thickness[1])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, from inside torch.compile
def test_compiled_equals_eager(ticino: np.ndarray) -> None:
    """The default float32 torch.compile path (mass balance traced from numpy) = the eager step."""
    bed = ticino[100:164, 100:164]
    p = GlacierParams(ela_m=float(np.quantile(bed, 0.85)), retreat_dela_m=50.0, retreat_years=10.0)
    cfg = SimulationConfig(coarse_levels=1)
    assert cfg.compile and cfg.dtype == "float32"
    compiled = simulate_glaciers(bed, 200.0, [p], cfg)
    eager = simulate_glaciers(bed, 200.0, [p], dataclasses.replace(cfg, compile=False))
    assert compiled.records[0].steady and compiled.records[0].volume_m3 > 0
    np.testing.assert_allclose(compiled.thickness, eager.thickness, atol=0.01)
    assert compiled.records[0].steps == pytest.approx(eager.records[0].steps, rel=0.01)


def test_bad_input() -> None:
    bed = np.zeros((16, 16))
    p = GlacierParams(ela_m=0.0)
    with pytest.raises(ValueError, match="NaN"):
        simulate_glaciers(np.where(np.eye(16) > 0, np.nan, bed), 100.0, [p])
    with pytest.raises(ValueError, match="square pixels"):
        simulate_glaciers(bed, (100.0, 50.0), [p])
    with pytest.raises(ValueError, match="shape"):
        simulate_glaciers(np.zeros((2, 2, 16, 16)), 100.0, [p])
    with pytest.raises(ValueError, match="parameter sets"):
        simulate_glaciers(bed, 100.0, [p, p])
    with pytest.raises(ValueError, match="shaped like"):
        run(bed, np.zeros((8, 8)), 100.0, [p], 1.0)
    with pytest.raises(ValueError, match="sliding_fraction"):
        GlacierParams(ela_m=0.0, sliding_fraction=1.2)
    with pytest.raises(ValueError):
        SimulationConfig(cfl=0.5)
    cfg = load_config(SimulationConfig, {"cfl": 0.15, "dtype": "float64"})
    assert cfg.cfl == 0.15 and cfg.dtype == "float64"


def test_draw_params(ticino: np.ndarray) -> None:
    bed = ticino[100:228, 100:228]
    ranges = ParamRanges()
    draws = [draw_params(np.random.default_rng(i), bed, ranges) for i in range(200)]
    again = draw_params(np.random.default_rng(0), bed, ranges)
    assert again == draws[0]
    a = np.array([d.glen_a for d in draws]) / GLEN_A
    assert 1 / 3 <= a.min() < 0.5 and 2 < a.max() <= 3
    assert all(0 <= d.sliding_fraction <= 0.5 and 0.004 <= d.grad_abl <= 0.012 for d in draws)
    assert all(0 < d.grad_acc < d.grad_abl and 0.5 <= d.cap_m_a <= 2.5 for d in draws)
    q = np.array([(bed < d.ela_m).mean() for d in draws])
    assert ranges.ela_quantile[0] - 0.01 <= q.min() and q.max() <= ranges.ela_quantile[1] + 0.01
    retreat = np.array([d.retreat_years > 0 for d in draws])
    assert 0.3 < retreat.mean() < 0.7
    assert all(20 <= d.retreat_years <= 80 and 0 <= d.retreat_dela_m <= 200 for d in draws if d.retreat_years)


def test_local_time_steps_reach_the_same_steady_state(ticino: np.ndarray) -> None:
    """Pseudo-time (every cell its own step) finds the true-time steady state: same volume within
    2 %, and both balanced."""
    from glacierbed.simulation.sia_numerics import Batch, relative_imbalance

    bed = ticino[100:164, 100:164]
    p = GlacierParams(ela_m=float(np.quantile(bed, 0.85)), grad_abl=0.008, grad_acc=0.004, cap_m_a=2.0)
    true_time = dataclasses.replace(F64, coarse_levels=1, steady_tol_per_yr=2e-5)
    pseudo = dataclasses.replace(true_time, local_dt=True, steady_imbalance=0.02, max_dt_yr=1.0, max_years=2000)
    a, b = (simulate_glaciers(bed, 200.0, [p], c) for c in (true_time, pseudo))
    assert a.records[0].steady and b.records[0].steady
    assert abs(b.records[0].volume_m3 / a.records[0].volume_m3 - 1) < 0.02
    assert b.thickness.min() >= 0
    imbalance = [relative_imbalance(Batch(torch.tensor(bed[None]), torch.tensor(r.thickness.astype(np.float64)),
                                          200.0, [p], F64), np.array([0]))[0] for r in (a, b)]
    assert imbalance[0] < 0.02 and imbalance[1] < 0.02  # both balanced: mean |dH/dt| < 2 % of mean |b|
    # the pseudo-time state is steady in true time too: 20 years change its volume by < 1 %
    more = run(bed, b.thickness[0].astype(np.float64), 200.0, [p], 20.0, true_time).records[0]
    assert abs(more.volume_m3 / b.records[0].volume_m3 - 1) < 0.01


def test_minimum_step_caps_the_number_of_steps(ticino: np.ndarray) -> None:
    """min_dt_yr: a history of T years takes at most T / min_dt steps, and conserves mass."""
    bed = ticino[100:132, 100:132]
    h0 = _blob(bed.shape, 5.0, 400.0)
    soft = dataclasses.replace(NO_BALANCE, glen_a=GLEN_A * 10, sliding_fraction=0.8)
    free = run(bed, h0, 200.0, [soft], 2.0, F64).records[0]
    capped = run(bed, h0, 200.0, [soft], 2.0, dataclasses.replace(F64, min_dt_yr=0.01)).records[0]
    assert capped.steps <= 2.0 / 0.01 + 1 < free.steps
    v0 = h0.sum() * 200.0**2
    assert free.clipped_m3 < 1e-4 * v0
    assert capped.clipped_m3 < 1e-2 * v0  # the cap's cost: a little ice made by clipping H < 0, counted
    for r in (free, capped):
        assert abs(r.volume_m3 + r.lost_at_edge_m3 - r.clipped_m3 - v0) < 1e-6 * v0


def test_spanning_ranges_cover_cold_to_temperate_and_advance(ticino: np.ndarray) -> None:
    """The shipped spanning config draws A over two orders of magnitude, sliding to 90 %,
    polar to maritime gradients, and advances as well as retreats."""
    from glacierbed.simulation.glacier_set import SimulatedSetConfig

    cfg = SimulatedSetConfig.from_yaml(Path(__file__).parents[1] / "src/glacierbed/configs/simulated_spanning_256.yaml")
    assert cfg.patch == 256 and cfg.simulation.local_dt and cfg.simulation.min_dt_yr > 0
    assert [s.name for s in cfg.sources if s.validation] == ["alps-jura"] and cfg.val_fraction == 0
    bed = ticino[100:356, 100:356]
    draws = [draw_params(np.random.default_rng(i), bed, cfg.ranges) for i in range(400)]
    a = np.array([d.glen_a for d in draws]) / GLEN_A
    assert a.max() / a.min() > 50 and 0.1 <= a.min() and a.max() <= 10
    assert max(d.sliding_fraction for d in draws) > 0.8
    grads = np.array([d.grad_abl for d in draws])
    assert grads.min() < 0.003 and grads.max() > 0.014
    dela = np.array([d.retreat_dela_m for d in draws if d.retreat_years > 0])
    assert (dela < 0).any() and (dela > 0).any()
