"""The Alps glacier means (GlaThiDa glacier table on rgi11-alps): matching, DEM context, pixel sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def test_surveys_one_per_glacier_outside_the_oetztal_case(data_dir: Path) -> None:
    from glacierbed.evaluation.glathida_means import alps_mean_surveys

    m = alps_mean_surveys()
    assert len(m) >= 60 and not m["rgi_id"].duplicated().any() and not m["name"].duplicated().any()
    assert m["area"].notna().all() and (m["area_rel_diff"].abs() <= 0.5).all()
    # Pasterze: the 1998 AGI survey (82 m), the latest, on its RGI 6 outline
    p = m[m["name"] == "Pasterze Gletscher"]
    assert p["rgi_id"].tolist() == ["RGI60-11.00106"] and float(p["mean_thickness"].iloc[0]) == 82.0
    # Hintereisferner (RGI 11.00897) is an Ötztal glacier: scored there, not here
    assert "RGI60-11.00897" not in set(m["rgi_id"])


def test_a_glacier_sees_its_neighbours_tiles(data_dir: Path) -> None:
    """The example mosaics the glacier's tile with the tiles on its grid that meet its window, so the DEM
    reaches well beyond its own tile's few-cell margin."""
    import rasterio

    from glacierbed.data import registry
    from glacierbed.evaluation.measured_table import read_case_inputs

    name = registry.RGI11_EXAMPLE_PREFIX + "RGI60-11.00106"
    ex = registry.get_example(name)
    assert ex.dem[0].name == "RGI60-11.00106.tif" and len(ex.dem) > 5
    assert ex.glaciers == ("RGI60-11.00106",) and registry.get_example("oetztal").glaciers == ()
    crs = {rasterio.open(p).crs for p in ex.dem}
    assert len(crs) == 1
    with rasterio.open(ex.dem[0]) as own:
        own_area = own.width * own.height
    dem, outlines, _ = read_case_inputs(name)
    assert dem.shape[0] * dem.shape[1] > 2 * own_area
    assert "RGI60-11.00106" in set(outlines["rgi_id"]) and len(outlines) < 200  # not the whole region
    assert registry.example_available(name)
    with pytest.raises(Exception, match="no glacier 'RGI60-11.99999'"):
        registry.get_example(registry.RGI11_EXAMPLE_PREFIX + "RGI60-11.99999")


def test_pixel_sample_keeps_volume_and_mean() -> None:
    from glacierbed.evaluation.glathida_means import ALPS_MAX_PIXELS, pixel_sample as _pixel_sample

    rng = np.random.default_rng(0)
    n = 5 * ALPS_MAX_PIXELS
    mu = rng.gamma(4.0, 10.0, n)
    px = pd.DataFrame({"rgi_id": "X", "mu": mu, "pixel_area_m2": 625.0})
    s = _pixel_sample(px, "RGI60-11.00106")
    assert len(s) == ALPS_MAX_PIXELS
    assert s["pixel_area_m2"].sum() == pytest.approx(px["pixel_area_m2"].sum())  # the glacier's area
    assert s["mu"].mean() == pytest.approx(mu.mean(), abs=4 * mu.std() / np.sqrt(ALPS_MAX_PIXELS))
    assert s.equals(_pixel_sample(px, "RGI60-11.00106"))  # seeded by the glacier
    small = px.iloc[:10]
    assert _pixel_sample(small, "X") is small
