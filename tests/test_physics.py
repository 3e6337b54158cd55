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
    ref = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(margin_profile="zero"))
    assert ref.terms == ["data", "mass_conservation"] and ref.skipped == ["velocity", "mass_balance"]
    band = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(margin_profile="zero", sia=True))
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
    refined = estimate_thickness(dem, outlines, "biharmonic", PhysicsConfig(margin_profile="zero"))
    inside = rasterize_ids(outlines, dem) > 0
    for h in (plain, refined):
        ok = np.isfinite(h.data)
        assert (h.data[ok] >= 0).all() and (h.data[~inside & ok] == 0).all()
    margin = gl.margin_pixels(inside, inside)
    assert (refined.data[margin] == 0).all()
    # an upper basin where the fill sits above the ice: the refinement adds ice
    assert np.nansum(refined.data) > 1.5 * np.nansum(plain.data)
    # the plastic margin profile through the whole pipeline, with the default network: margin pixels hold
    # sqrt(1/3) of their inner neighbours instead of 0, nothing else changes
    zero = estimate_thickness(dem, outlines, None, PhysicsConfig(margin_profile="zero"))
    plastic = estimate_thickness(dem, outlines, None, PhysicsConfig(margin_profile="plastic"))
    assert (zero.data[margin] == 0).all() and (plastic.data[margin] > 0).mean() > 0.9
    assert np.allclose(plastic.data[inside & ~margin], zero.data[inside & ~margin])
    assert np.allclose(plastic.data[margin], gl.plastic_margin(zero.data, margin, inside)[margin], atol=1e-4)


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
    cfg = ph.PhysicsConfig(margin_profile="zero", mass_conservation=False, sia=True)  # constraints only: a flat 100 m slab fits the band
    grounded = ph.refine(surface, bed, own, own, dx, cfg)
    calving = ph.refine(surface, bed, own, own, dx, cfg, calving=True)
    front = gl.calving_front(own, own, surface, cfg.calving_band_m)
    assert front.any() and (grounded.thickness[front] == 0).all()
    assert (calving.thickness[front] > 50).all()  # the front (lowest row) keeps its ice
    lateral = gl.margin_pixels(own, own) & ~front
    assert (calving.thickness[lateral] == 0).all()
    assert gl.is_calving(1) and gl.is_calving("2") and not gl.is_calving(0) and not gl.is_calving(None)


def test_mass_balance_term_on_south_glacier(south, data_dir: Path) -> None:
    """The kit's SMB raster thins South Glacier by the amount physics_ablation.md records."""
    dem, own, bed = south
    smb = raster_on_grid(data_dir / SG / "mb_SouthGlacier.tif", dem)
    assert np.isfinite(smb[own]).mean() > 0.9
    ref = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(margin_profile="zero"), smb=smb)
    assert "mass_balance" in ref.terms
    h = ref.thickness
    assert np.all(h[np.isfinite(h)] >= 0) and np.all(h[gl.margin_pixels(own, own)] == 0)
    without = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(margin_profile="zero"))
    assert h[own].mean() < without.thickness[own].mean()  # the balance flux asks for less ice here
    # the same through the pipeline, as benchmarks/physics_ablation.py ran it (biharmonic, the then default
    # physics, zero margins): physics_ablation.csv records 0.23328 km3 without the SMB and 0.20483 km3 with it
    from glacierbed.data import registry
    from glacierbed.data.outlines import check_overlap
    from glacierbed.evaluation.benchmark import estimate_with_table

    ex = registry.get_example("south-glacier")
    outlines = check_overlap(read_outlines(ex.outlines), dem)
    vol = {use: estimate_with_table(dem, outlines, "biharmonic", ph.PhysicsConfig(margin_profile="zero"),
                                    smb=data_dir / SG / "mb_SouthGlacier.tif" if use else None)[1]["volume_km3"].sum()
           for use in (False, True)}
    assert vol[False] == pytest.approx(0.23328, rel=0.01) and vol[True] == pytest.approx(0.20483, rel=0.01)
    assert vol[True] / vol[False] == pytest.approx(0.20483 / 0.23328, rel=0.01)  # -12 %


def test_mass_balance_term_gives_the_balance_flux_profile() -> None:
    """Analytic steady state on a 5 degree slab: a balance linear in elevation (b = g (z - z_mean),
    accumulation above, ablation below) must be carried by the SIA flux q = k H^5 down the slab,
    so q(y) = g tan(alpha) (L y / 2 - y^2 / 2) from the top edge and H = (q / k)^(1/5): thickest at
    mid-glacier, thinning to both ends. With a weak data term (sigma 1 km) the term alone sets H."""
    alpha, grad = 5.0, 0.0075
    surface, own, dx = _slab(alpha_deg=alpha)  # glacier rows 5..34: L = 30 dx
    cfg = replace(ph.PhysicsConfig().only("data", "mass_balance"), data_sigma_m=1000.0, data_sigma_growth=0.0,
                  slope_smooth_m=dx)
    b_ice = grad * (surface - surface[own].mean())
    smb_we = b_ice * gl.RHO_ICE / gl.RHO_WATER + 0.4  # in m w.e.; the offset is removed (apparent balance)
    bed = surface - np.where(own, 100.0, 0.0)
    ref = ph.refine(surface, bed, own, own, dx, cfg, smb=smb_we)
    assert ref.terms == ["data", "mass_balance"] and ref.loss["mass_balance"] < 1e-3
    k = gl.sia_flux_coefficient(np.array([np.sin(np.deg2rad(alpha))]), **cfg.glen)[0]
    y = (np.arange(5, 35) - 4.5) * dx  # pixel centres from the glacier's upper edge
    q = grad * np.tan(np.deg2rad(alpha)) * (30 * dx * y / 2 - y**2 / 2)
    expected = (q / k) ** (1 / 5)  # 90 m at mid-glacier
    h = ref.thickness[5:35, 8:32]  # columns away from the lateral margins
    # measured: 1 % low at mid-glacier, 4.7 % next to the H = 0 rows (central differences)
    assert h[15].max() == pytest.approx(expected[15], rel=0.02) and h.argmax() // h.shape[1] in (14, 15)
    np.testing.assert_allclose(h[3:-3], np.broadcast_to(expected[3:-3, None], h[3:-3].shape), rtol=0.03)
    np.testing.assert_allclose(h[1:-1], np.broadcast_to(expected[1:-1, None], h[1:-1].shape), rtol=0.06)
    no_mb = ph.refine(surface, bed, own, own, dx, replace(cfg, mass_balance=False), smb=smb_we)
    np.testing.assert_allclose(no_mb.thickness[6:34, 8:32], 100.0, atol=1e-6)  # the term made the change


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
    with_sigma = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(margin_profile="zero"), sigma=sigma)
    assert with_sigma.terms == ["data"]
    np.testing.assert_allclose(with_sigma.thickness[own], np.clip(dem.data - bed, 0, None)[own]
                               * ~gl.margin_pixels(own, own)[own], atol=1e-6)
    asked = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(margin_profile="zero", mc_with_model_sigma=True), sigma=sigma)
    assert asked.terms == ["data", "mass_conservation"]
    assert np.abs(asked.thickness - with_sigma.thickness)[own].max() > 1.0


@pytest.mark.parametrize("measured_velocity", [True, False])
def test_objective_gradient_matches_finite_differences(measured_velocity: bool) -> None:
    """Every soft term's analytic gradient (numpy, no autodiff) equals the objective's central differences."""
    from scipy.optimize import approx_fprime

    from glacierbed.posterior.physics_solver import Problem, build_objective

    rng = np.random.default_rng(3)
    ny, nx = 14, 18
    yy, xx = np.mgrid[:ny, :nx]
    valid = (yy - 7) ** 2 / 30 + (xx - 9) ** 2 / 50 < 1
    free = valid & np.roll(valid, 1, 0) & np.roll(valid, -1, 0)
    inner = free & np.roll(valid, 1, 1) & np.roll(valid, -1, 1)
    h0 = np.where(valid, 80 + 20 * rng.normal(size=(ny, nx)), 0).clip(0)
    p = Problem(h0=h0, valid=valid, free=free, pixel_size_m=50.0, sin_a=0.1 + 0.1 * rng.random((ny, nx)),
                direction=(np.full((ny, nx), 0.6), np.full((ny, nx), 0.8)), sigma=np.full((ny, nx), 20.0),
                tau_min_pa=5e4, h_mc=1.1 * h0 + 5, mc_sigma=np.full((ny, nx), 30.0),
                velocity_h=np.where(rng.random((ny, nx)) < 0.5, 60.0, np.nan), mb=rng.normal(size=(ny, nx)),
                mb_inner=inner, ubar=(10 * rng.normal(size=(ny, nx)), 10 * rng.normal(size=(ny, nx)))
                if measured_velocity else None, flux_k=None if measured_velocity else np.full((ny, nx), 1e-9))
    terms = list(ph.SOFT_TERMS)
    objective = build_objective(p, ph.PhysicsConfig(), terms)
    x = (h0.ravel()[free.ravel()] * (1 + 0.4 * rng.normal(size=int(free.sum())))).clip(1)
    total, grad, parts = objective(x)
    assert set(parts) == set(terms) and all(v > 0 for v in parts.values()) and total == pytest.approx(sum(parts.values()))
    numeric = approx_fprime(x, lambda h: objective(h)[0], 1e-4)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6 * np.abs(numeric).max())


def test_plastic_margin_recovers_nyes_profile_at_pixel_centres() -> None:
    """Nye's perfectly plastic margin H = sqrt(2 tau d / (rho g)): with the outline half a pixel outside
    the margin pixels' centres, √(1/3) × their inner neighbours is the exact profile there, and the
    corner pixels (no inner 4-neighbour) take their diagonal one; a one-pixel strip has no inner ice."""
    dx, tau = 50.0, 1e5
    n = 12
    own = np.zeros((n, n), bool)
    own[:, 3:] = True  # a straight margin on the left (the other edges are divides with ice off the array)
    col = np.arange(n)[None, :] * np.ones((n, 1))
    d = (col - 3 + 0.5) * dx  # the outline runs half a pixel left of column 3's centres
    exact = np.where(own, np.sqrt(2 * tau * np.clip(d, 0, None) / (gl.RHO_ICE * gl.G)), 0.0)
    margin = np.zeros_like(own)
    margin[:, 3] = True
    filled = gl.plastic_margin(np.where(margin, 0.0, exact), margin, own)
    assert np.allclose(filled[margin], exact[margin], rtol=1e-12)
    assert np.array_equal(filled[~margin], exact[~margin])
    # a square: edge pixels take √(1/3) of their inner neighbour, corners their diagonal one
    sq = np.zeros((5, 5), bool)
    sq[1:4, 1:4] = True
    m = gl.margin_pixels(sq, sq)
    out = gl.plastic_margin(np.where(sq & ~m, 30.0, 0.0), m, sq)
    assert np.allclose(out[m], 30.0 * gl.PLASTIC_MARGIN_FACTOR) and out[2, 2] == 30.0 and (out[~sq] == 0).all()
    strip = np.zeros((5, 5), bool)
    strip[2, :] = True
    assert (gl.plastic_margin(np.full((5, 5), 9.0), gl.margin_pixels(strip, strip), strip)[strip] == 0).all()


def test_plastic_margin_profile_in_the_posterior(south) -> None:
    """``margin_profile: plastic`` keeps every hard constraint but zero-on-the-pixel: margin pixels hold
    √(1/3) × their inner neighbours, nothing outside the outline, H ≥ 0; only margin pixels change."""
    dem, own, bed = south
    zero = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(margin_profile="zero"))
    plastic = ph.refine(dem.data, bed, own, own, dem.res[0], ph.PhysicsConfig(margin_profile="plastic"))
    margin = gl.margin_pixels(own, own)
    h0, h1 = zero.thickness, plastic.thickness
    assert np.array_equal(h1[~margin], h0[~margin], equal_nan=True)
    assert (h1[margin] >= 0).all() and (h1[~own] == 0).all() and (h1[margin] > 0).mean() > 0.9
    assert np.allclose(h1, gl.plastic_margin(h0, margin, own), equal_nan=True)
    assert np.nansum(h1) > np.nansum(h0)
    with pytest.raises(ValueError, match="margin_profile must be one of"):
        ph.PhysicsConfig(margin_profile="linear")


def test_network_sees_the_smb_raster_in_metres_of_ice(data_dir: Path, tmp_path: Path) -> None:
    """``--smb`` is read in m w.e. a-1 (``mb_water_equivalent``); the thickness network's SMB channel was simulated in
    m of ice a-1, so the window it sees holds South Glacier's raster times rho_w / rho_i on its working grid (the
    physics converts its own copy the same way); with ``mb_water_equivalent: false`` the raster is taken as ice."""
    from glacierbed.core.glaciology import RHO_ICE, RHO_WATER
    from glacierbed.data.examples import read_case_inputs
    from glacierbed.pipeline.estimate import EstimateConfig, prepare_region
    from glacierbed.pipeline.glacier import glacier_window, read_glacier_window

    smb = str(data_dir / SG / "mb_SouthGlacier.tif")
    dem, outlines, _ = read_case_inputs("south-glacier")
    seen = {}
    for we in (True, False):
        cfg = EstimateConfig(physics=ph.PhysicsConfig(mb_water_equivalent=we))
        region = prepare_region(dem, outlines, tmp_path / str(we), "biharmonic", cfg, aux={"smb": smb})
        (spec,) = region.specs
        win = read_glacier_window(spec, region.ctx, region.predictor)
        seen[we] = glacier_window(spec, region.ctx, win).smb
        raw = raster_on_grid(smb, win.ww)
    on = np.isfinite(raw)
    assert on.sum() > 1000 and 0.5 < np.nanmax(np.abs(raw)) < 20  # the real raster, metres a-1
    np.testing.assert_allclose(seen[True][on], raw[on] * RHO_WATER / RHO_ICE)
    np.testing.assert_allclose(seen[False][on], raw[on])


def test_smb_with_the_fine_tuned_default_warns(data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    """The shipped network was fine-tuned on measured thickness without SMB rasters and did worse on South Glacier
    with one: given ``smb``, the estimate says so; a classical fill given the same raster does not warn."""
    import logging

    from glacierbed.data.examples import read_case_inputs
    from glacierbed.pipeline.estimate import EstimateConfig, estimate

    dem, outlines, _ = read_case_inputs("south-glacier")
    smb = data_dir / SG / "mb_SouthGlacier.tif"
    for model, warns in ((None, True), ("biharmonic", False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="glacierbed.pipeline.estimate"):
            res = estimate(dem, outlines, tmp_path / str(model), model=model, config=EstimateConfig(ensemble=1),
                           maps=False, smb=smb)
        assert res.glaciers["status"].eq("ok").all()
        assert ("without any SMB raster" in caplog.text) is warns
