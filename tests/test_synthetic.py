"""Synthetic glaciers: plastic thickness on known terrain, and the surface-aware network."""

import numpy as np
import pytest

from glacierbed.data import registry
from glacierbed.data.outlines import check_overlap, rasterize_ids, read_outlines
from glacierbed.data.rasters import read_dem
from glacierbed.model import ModelConfig, NetworkInpainter
from glacierbed.glaciology import G, RHO_ICE, margin_pixels
from glacierbed.synthetic import synthetic_glacier_surface, synthetic_thickness


def _plane(deg: float, n: int = 128, px: float = 50.0, radius_px: float = 45) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:n, :n]
    bed = 3000.0 - yy * px * np.tan(np.deg2rad(deg))
    disc = (yy - n / 2) ** 2 + (xx - n / 2) ** 2 < radius_px**2
    return bed, disc


@pytest.mark.parametrize("deg", [8.0, 12.0])
def test_inclined_plane_interior_is_plastic_thickness(deg):
    bed, disc = _plane(deg, n=200, radius_px=85)  # a 8.5 km wide glacier on 50 m pixels
    tau, f = 100e3, 0.8
    h = synthetic_thickness(bed, disc, 50.0, tau, shape_factor=f)
    expected = tau / (RHO_ICE * G * f * np.sin(np.deg2rad(deg)))
    interior = h[90:111, 90:111]  # > 3.7 km from the margin, > 30 H from it
    assert np.all(np.abs(interior / expected - 1) < 0.03)


def test_thickness_positive_zero_at_margin_and_outside():
    bed, disc = _plane(10.0)
    h = synthetic_thickness(bed, disc, 50.0, 80e3)
    assert h.min() >= 0 and np.all(h[~disc] == 0)
    assert np.all(h[margin_pixels(disc, disc)] == 0)
    # Nye's plastic margin profile bounds the thickness near the outline
    assert h[disc].max() <= 500.0 and h[disc].mean() > 20.0


def test_deterministic_with_rng():
    bed, disc = _plane(10.0)
    a = synthetic_glacier_surface(bed, disc, 50.0, np.random.default_rng(7))
    b = synthetic_glacier_surface(bed, disc, 50.0, np.random.default_rng(7))
    c = synthetic_glacier_surface(bed, disc, 50.0, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[~disc], bed[~disc])


def test_real_terrain_ice_body_is_plausible(data_dir):
    """Synthetic ice inside Hintereisferner's outline, on the real DEM taken as a bed:
    positive, 0 on the outline, mean thickness of the order of valley glaciers (the
    consensus mean of the real glacier is 72 m)."""
    ex = registry.get_example("hintereisferner")
    dem = read_dem(ex.dem)
    outlines = check_overlap(read_outlines(ex.outlines), dem)
    own = rasterize_ids(outlines, dem) == 1
    z = np.where(np.isfinite(dem.data), dem.data, np.nanmean(dem.data)).astype(np.float64)
    surf = synthetic_glacier_surface(z, own, dem.res[0], np.random.default_rng(0))
    h = surf - z
    assert h.min() >= 0 and np.all(h[margin_pixels(own, own)] == 0)
    assert 25.0 < h[own].mean() < 200.0


def test_surface_model_bed_never_above_surface(data_dir):
    """An untrained surface model: bed <= the surface inside the hole, visible pixels kept,
    both heads; the border-only default stays a 6-input model."""
    ex = registry.get_example("hintereisferner")
    dem = read_dem(ex.dem)
    z = dem.data[:96, :96].astype(np.float64)
    hole = np.zeros(z.shape, bool)
    hole[30:70, 20:60] = True
    for head in ("softplus", "softplus_sia", "clip"):
        cfg = ModelConfig(width=4, depth=2, dilations=(2,), surface=True, head=head)
        assert cfg.n_inputs == 8
        out = NetworkInpainter(cfg.build(), {"patch_size": 96}).inpaint(z, hole, dem.res[0])
        ok = hole & np.isfinite(z)
        assert ok.sum() > 1000 and np.all(out[ok] <= z[ok] + 1e-3)
        assert np.array_equal(out[~hole], z[~hole].astype(np.float32), equal_nan=True)  # NaN off the DEM kept
    assert ModelConfig().n_inputs == 6
