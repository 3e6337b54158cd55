"""Classical fills: exact on planes, equal to scikit-image's biharmonic, good on real terrain."""

import numpy as np
import pytest
from skimage.restoration import inpaint_biharmonic

from glacierbed.data.rasters import read_dem
from glacierbed.core.fill import biharmonic_fill, harmonic_fill


def test_plane_is_reproduced_exactly():
    yy, xx = np.mgrid[:40, :50]
    plane = 3.0 * xx - 2.0 * yy + 2500.0
    hole = np.zeros(plane.shape, bool)
    hole[8:30, 10:35] = True
    for fill in (harmonic_fill, biharmonic_fill):
        assert np.abs(fill(plane, hole) - plane).max() < 1e-6


def test_biharmonic_matches_scikit_image(oggm_dir):
    dem = read_dem(oggm_dir / "test-workflow/srtm_oetztal.tif", resolution=100).data
    win = dem[100:164, 100:164].astype(np.float64)
    hole = np.zeros(win.shape, bool)
    hole[20:45, 15:50] = True
    ours = biharmonic_fill(win, hole)
    ref = inpaint_biharmonic(win, hole)
    assert np.abs(ours - ref).max() < 1e-6
    assert np.array_equal(ours[~hole], win[~hole])  # visible pixels untouched


def test_nan_pixels_are_filled_and_all_hidden_raises():
    a = np.arange(100, dtype=float).reshape(10, 10)
    a[4, 4] = np.nan
    out = harmonic_fill(a, np.zeros_like(a, bool))
    assert np.isfinite(out).all() and abs(out[4, 4] - 44.0) < 1e-9  # linear field: exact
    with pytest.raises(ValueError):
        harmonic_fill(a, np.ones_like(a, bool))
