"""Hole generators: reproducible, sized as documented, glacier shapes with real areas."""

import numpy as np

from glacierbed.models.inpainting.masks import MaskGenerator, OutlineShapes, box_mask, valley_centre


def test_box_mask_size_and_seed():
    sizes = []
    for seed in range(50):
        m = box_mask(256, np.random.default_rng(seed))
        rows, cols = np.nonzero(m)
        h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert m.sum() == h * w  # a filled rectangle
        sizes += [h, w]
    assert 96 <= min(sizes) and max(sizes) <= 160  # 128 +- 32 px for 256 px patches
    assert np.array_equal(box_mask(128, np.random.default_rng(3)), box_mask(128, np.random.default_rng(3)))


def test_outline_shapes_from_real_rgi(oggm_dir):
    shapes = OutlineShapes.from_outlines([oggm_dir / "test-workflow/rgi/rgi_oetztal.shp"])
    assert len(shapes.shapes) == 20
    # centred at the origin, in metres: Hintereisferner-size areas survive
    areas = sorted(s.area / 1e6 for s in shapes.shapes)
    assert 0.3 < areas[0] and 15 < areas[-1] < 18
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = shapes.sample(128, rng, extent_frac=(0.3, 0.6))
        rows, cols = np.nonzero(m)
        extent = max(np.ptp(rows), np.ptp(cols)) + 1
        assert 0.25 * 128 <= extent <= 0.65 * 128


def test_valley_centre_prefers_hollows():
    yy, xx = np.mgrid[:64, :64]
    dem = 2000 + 5.0 * np.abs(xx - 40)  # a V valley along column 40
    rng = np.random.default_rng(0)
    cols = [valley_centre(dem, rng, margin=8, sigma_px=6)[1] for _ in range(40)]
    assert abs(np.median(cols) - 40) <= 3


def test_mask_generator_mixes_boxes_and_shapes(oggm_dir):
    gen = MaskGenerator(OutlineShapes.from_outlines([oggm_dir / "test-workflow/rgi/rgi_oetztal.shp"]), p_box=0.5)
    dem = np.random.default_rng(1).normal(2500, 50, (64, 64))
    rng = np.random.default_rng(2)
    masks = [gen(dem, rng) for _ in range(30)]
    rect = [m.sum() == (np.ptp(np.nonzero(m)[0]) + 1) * (np.ptp(np.nonzero(m)[1]) + 1) for m in masks]
    assert 3 < sum(rect) < 27 and all(m.any() for m in masks)
