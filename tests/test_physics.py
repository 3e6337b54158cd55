"""Physics refinement: hard constraints on real glaciers, SIA and Glen-flow terms on slabs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from glacierbed.core import glaciology as gl
from glacierbed.posterior import physics as ph
from glacierbed.data.outlines import rasterize_ids, read_outlines
from glacierbed.data.rasters import raster_on_grid, read_dem, velocity_on_grid
from glacierbed.core.errors import CorruptFileError
from glacierbed.core.fill import biharmonic_fill

SG = "oggm-sample-data/benchmarks/south_glacier/"


@pytest.fixture(scope="module")
def south(data_dir: Path):
    """South Glacier: DEM, glacier mask, biharmonic bed (the inpainting to refine)."""
    dem = read_dem(data_dir / SG / "dem_SouthGlacier.tif")
    outlines = read_outlines(data_dir / SG / "SouthGlacier.shp")
    own = rasterize_ids(outlines, dem) > 0
    return dem, own, biharmonic_fill(dem.data, own)


def _slab(alpha_deg: float = 10.0, n: int = 40, dx: float = 50.0):
    """An inclined plane surface with a square glacier in the middle (rows go downhill)."""
    r = np.arange(n)[:, None] * np.ones((1, n))
    surface = 3000.0 - np.tan(np.deg2rad(alpha_deg)) * r * dx
    own = np.zeros((n, n), bool)
    own[5:-5, 5:-5] = True
    return surface, own, dx


def _interior(own: np.ndarray, width: int = 6) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_erosion(own, iterations=width)


def test_hard_constraints_on_a_real_glacier(south) -> None:
    dem, own, bed = south
    raw = dem.data - bed
    assert (raw[own] < 0).any()  # the fill does put the bed above the surface somewhere
    # default posterior: the data term and mass conservation with the apparent mass balance
    ref = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig())
    assert ref.terms == ["data", "mass_conservation"] and ref.skipped == ["velocity", "mass_balance"]
    band = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(sia=True))
    for r in (ref, band):
        h = r.thickness
        assert np.all(h[np.isfinite(h)] >= 0)
        assert np.all(h[~own] == 0)
        assert np.all(h[gl.margin_pixels(own, own)] == 0)
        assert np.all(r.bed[own] <= dem.data[own] + 1e-6)
    # the stress band lifts the ice where the fill left (almost) none
    assert band.thickness[own].mean() > np.clip(raw[own], 0, None).mean()


def test_pipeline_real_glacier_constraints(data_dir: Path) -> None:
    """The estimate pipeline with physics (default) on Hintereisferner: hard constraints hold."""
    from glacierbed.evaluation.benchmark import estimate_thickness
    from glacierbed.posterior.physics import PhysicsConfig

    tf = data_dir / "oggm-sample-data/test-files"
    dem = read_dem(tf / "hef_srtm.tif")
    outlines = read_outlines(tf / "Hintereisferner_RGI6.shp")
    plain = estimate_thickness(dem, outlines, "biharmonic", None)
    refined = estimate_thickness(dem, outlines, "biharmonic", PhysicsConfig())
    inside = rasterize_ids(outlines, dem) > 0
    for h in (plain, refined):
        ok = np.isfinite(h.data)
        assert (h.data[ok] >= 0).all() and (h.data[~inside & ok] == 0).all()
    margin = gl.margin_pixels(inside, inside)
    assert (refined.data[margin] == 0).all()
    # an upper basin where the fill sits above the ice: the refinement adds ice
    assert np.nansum(refined.data) > 1.5 * np.nansum(plain.data)


def test_sia_recovers_slab_thickness() -> None:
    surface, own, dx = _slab(alpha_deg=10.0)
    tau = 100e3
    cfg = replace(ph.PhysicsConfig().only("sia"), tau_min_pa=tau, tau_max_pa=tau, tau_min_from_elevation_range=False)
    ref = ph.refine(surface, surface.copy(), own, own, dx, cfg)  # bed = surface: no ice at all to start
    expected = tau / (900 * 9.81 * np.sin(np.deg2rad(10.0)))
    np.testing.assert_allclose(ref.thickness[_interior(own, 1)], expected, rtol=1e-3)
    assert gl.sia_thickness(tau, np.sin(np.deg2rad(10.0)), cfg.shape_factor) == pytest.approx(expected)


def test_no_terms_returns_input_bed(south) -> None:
    dem, own, bed = south
    ref = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig().only())
    inner = own & ~gl.margin_pixels(own, own) & (dem.data - bed >= 0)
    np.testing.assert_allclose(ref.bed[inner], bed[inner], atol=1e-4)
    assert ref.terms == [] and ref.iterations == 0
    # "data" alone has its optimum at the input: also returned unchanged
    ref2 = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig().only("data"))
    np.testing.assert_array_equal(ref2.thickness, ref.thickness)


def test_missing_inputs_are_skipped(south) -> None:
    dem, own, bed = south
    cfg = ph.PhysicsConfig(mass_conservation=False)
    with_all = ph.refine(dem.data, bed, own, own, dem.res[0], replace(cfg, velocity=True, mass_balance=True))
    without = ph.refine(dem.data, bed, own, own, dem.res[0], replace(cfg, velocity=False, mass_balance=False))
    assert with_all.skipped == ["velocity", "mass_balance"] and without.skipped == []
    np.testing.assert_allclose(with_all.thickness, without.thickness, atol=1e-6)


def test_velocity_term_moves_thickness_towards_glen_flow() -> None:
    surface, own, dx = _slab(alpha_deg=5.0)
    cfg = replace(ph.PhysicsConfig().only("data", "velocity"), data_sigma_m=30.0, data_sigma_growth=0.0,
                  slope_smooth_m=dx)
    sin_a = np.sin(np.deg2rad(5.0))
    h_true = 150.0
    glen = dict(glen_a=cfg.glen_a, n=cfg.glen_n, shape_factor=cfg.shape_factor)
    u_s = gl.glen_deformation_speed(np.full(surface.shape, h_true), np.full(surface.shape, sin_a), **glen) / (
        1 - cfg.sliding_fraction)
    assert gl.velocity_thickness(u_s, sin_a, sliding_fraction=cfg.sliding_fraction, **glen) == pytest.approx(h_true)
    vel = (np.zeros_like(surface), u_s)  # down the rows
    inner = _interior(own, 3)
    for h_start in (80.0, 250.0):
        bed = surface - np.where(own, h_start, 0.0)
        ref = ph.refine(surface, bed, own, own, dx, cfg, velocity=vel)
        h = ref.thickness[inner]
        assert "velocity" in ref.terms
        assert np.all(np.abs(h - h_true) < abs(h_start - h_true))  # moved towards the Glen thickness
        # to the inverse-variance mean of the two Gaussian terms (sigma 30 m and 25 % of 150 m)
        w_d, w_u = 1 / 30.0**2, 1 / (0.25 * h_true) ** 2
        np.testing.assert_allclose(h, (w_d * h_start + w_u * h_true) / (w_d + w_u), rtol=1e-3)
        no_vel = ph.refine(surface, bed, own, own, dx, cfg)
        np.testing.assert_allclose(no_vel.thickness[inner], h_start, atol=1e-3)


def test_calving_front_keeps_ice() -> None:
    surface, own, dx = _slab(alpha_deg=3.0)
    bed = surface - np.where(own, 100.0, 0.0)
    cfg = ph.PhysicsConfig(mass_conservation=False, sia=True)  # constraints only: a flat 100 m slab fits the band
    grounded = ph.refine(surface, bed, own, own, dx, cfg)
    calving = ph.refine(surface, bed, own, own, dx, cfg, calving=True)
    front = gl.calving_front(own, own, surface, cfg.calving_band_m)
    assert front.any() and (grounded.thickness[front] == 0).all()
    assert (calving.thickness[front] > 50).all()  # the front (lowest row) keeps its ice
    lateral = gl.margin_pixels(own, own) & ~front
    assert (calving.thickness[lateral] == 0).all()
    assert gl.is_calving(1) and gl.is_calving("2") and not gl.is_calving(0) and not gl.is_calving(None)


def test_mass_balance_term_on_south_glacier(south, data_dir: Path) -> None:
    dem, own, bed = south
    smb = raster_on_grid(data_dir / SG / "mb_SouthGlacier.tif", dem)
    assert np.isfinite(smb[own]).mean() > 0.9
    ref = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(), smb=smb)
    assert "mass_balance" in ref.terms
    h = ref.thickness
    assert np.all(h[np.isfinite(h)] >= 0) and np.all(h[gl.margin_pixels(own, own)] == 0)
    assert 10 < h[own].mean() < 300


def test_real_velocity_points_downhill_on_columbia(data_dir: Path) -> None:
    """ITS_LIVE vx/vy (EPSG:3413) onto the Columbia DEM grid: fast ice flows down the surface."""
    tf = data_dir / "oggm-sample-data/test-files/columbia"
    dem = read_dem(tf / "dem_Columbia.tif")
    own = rasterize_ids(read_outlines(tf / "01_rgi60_Columbia.shp"), dem) > 0
    shop = data_dir / "oggm-sample-data/shop"
    ux, uy = velocity_on_grid(shop / "crop_ALA_G0120_0000_vx.tif", shop / "crop_ALA_G0120_0000_vy.tif", dem)
    speed = np.hypot(ux, uy)
    assert np.isfinite(speed[own]).mean() > 0.3
    _, dirx, diry = gl.surface_slope(dem.data, dem.res[0], 1000.0, 0.5)
    fast = own & np.isfinite(speed) & (speed > 200)
    assert fast.sum() > 100
    cos = (ux[fast] * dirx[fast] + uy[fast] * diry[fast]) / speed[fast]
    assert np.median(cos) > 0.5


def test_config_yaml(tmp_path: Path) -> None:
    path = tmp_path / "physics.yaml"
    path.write_text("tau_min_pa: 30000\ntau_max_pa: 100000\nsmooth: true\nsia: true\n")
    cfg = ph.PhysicsConfig.from_yaml(path)
    assert cfg.tau_min_pa == 30e3 and cfg.smooth and cfg.sia
    assert ph.PhysicsConfig.from_yaml(_write(tmp_path / "rt.yaml", cfg.to_yaml())) == cfg
    with pytest.raises(CorruptFileError, match="unknown PhysicsConfig keys"):
        ph.PhysicsConfig.from_yaml(_write(tmp_path / "bad.yaml", "tau_mni_pa: 1\n"))
    with pytest.raises(ValueError):
        ph.PhysicsConfig(tau_min_pa=2e5, tau_max_pa=1e5)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_mass_conservation_prior_not_counted_twice(south) -> None:
    """A model with its own sigma (the thickness network sees H_mc as an input) gets no second
    mass-conservation prior unless asked; an inpainter's fill does."""
    dem, own, bed = south
    sigma = np.full(dem.shape, 20.0)
    with_sigma = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(), sigma=sigma)
    assert with_sigma.terms == ["data"]
    np.testing.assert_allclose(with_sigma.thickness[own], np.clip(dem.data - bed, 0, None)[own]
                               * ~gl.margin_pixels(own, own)[own], atol=1e-6)
    asked = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(mc_with_model_sigma=True), sigma=sigma)
    assert asked.terms == ["data", "mass_conservation"]
    assert np.abs(asked.thickness - with_sigma.thickness)[own].max() > 1.0
