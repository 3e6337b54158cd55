"""Training-set builder on the real kit: every filter holds, spatial split, determinism."""

import json

import numpy as np
import pytest

from glacierbed.data.outlines import rasterize_mask, read_outlines
from glacierbed.data.rasters import read_dem
from glacierbed.data.terrain import PatchSource
from glacierbed.models.inpainting.patches import DatasetConfig, PatchSet, build_dataset


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir):
    cfg = DatasetConfig(
        sources=(PatchSource("oetztal", ("oggm-sample-data/test-workflow/srtm_oetztal.tif",),
                             outlines="oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp", resolutions_m=(100.0,)),),
        patch=64, centre_box=48, unique_box=16, min_elevation_m=2600, elevation_mode="mean", seed=7)
    out = tmp_path_factory.mktemp("ds") / "p.npz"
    report = build_dataset(cfg, out, n_per_source=150)
    return cfg, out, report


def test_filters_hold(built, data_dir):
    cfg, out, report = built
    ps = PatchSet.load(out)
    assert len(ps) == report.kept["train"] + report.kept["val"] > 50
    assert np.isfinite(ps.dem).all()
    assert (ps.dem.mean(axis=(1, 2)) >= cfg.min_elevation_m).all()
    a = (cfg.patch - cfg.centre_box) // 2
    assert not ps.glacier[:, a:a + cfg.centre_box, a:a + cfg.centre_box].any()
    # the stored glacier masks are the real outlines: re-rasterize at the stored origin
    dem = read_dem(data_dir / "oggm-sample-data/test-workflow/srtm_oetztal.tif", resolution=100)
    glac = rasterize_mask(read_outlines(data_dir / "oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"), dem,
                          all_touched=True)
    with np.load(out) as z:
        x0, y0 = z["x0"], z["y0"]
    for i in range(0, len(ps), 10):
        col, row = ~dem.transform @ (x0[i], y0[i])
        r, c = int(round(row)), int(round(col))
        assert np.allclose(dem.data[r:r + 64, c:c + 64], ps.dem[i])
        assert np.array_equal(glac[r:r + 64, c:c + 64], ps.glacier[i])
    assert report.rejected["glacier in centre box"] > 0 and report.rejected["too low"] > 0


def test_spatial_split_no_leak(built):
    cfg, out, report = built
    with np.load(out) as z:
        x0, split, res = z["x0"], z["split"], z["res"]
    assert 0 < (split == "val").sum() < (split == "train").sum()
    val_lo, val_hi = x0[split == "val"].min(), x0[split == "val"].max() + 64 * res[0]
    train_x = x0[split == "train"]
    # no training patch overlaps the band spanned by validation patch centres
    centres = x0[split == "val"] + 32 * res[0]
    strip = (centres.min(), centres.max())
    assert not np.any((train_x < strip[1]) & (train_x + 64 * res[0] > strip[0]))
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["n_patches"] == len(x0) and summary["report"]["kept"]["val"] == (split == "val").sum()
    assert val_hi > val_lo


def test_deterministic(built, tmp_path):
    cfg, out, _ = built
    again = tmp_path / "again.npz"
    build_dataset(cfg, again, n_per_source=150)
    a, b = PatchSet.load(out), PatchSet.load(again)
    assert np.array_equal(a.dem, b.dem) and np.array_equal(a.split, b.split)
