"""OGGM as a peer: its own tasks, run offline on Hintereisferner, give a physical thickness map."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest
from shapely import affinity

from glacierbed.data import registry
from glacierbed.data.outlines import rasterize_ids, read_outlines
from glacierbed.data.rasters import read_dem
from glacierbed.evaluation.oggm_peer import (
    PeerResult,
    oggm_thickness,
    oggm_thickness_map,
    oggm_version,
)

# like pytest.importorskip("oggm"), but through glacierbed's import: a plain `import oggm`
# imports salem, whose map module downloads sample data at import time (fails offline)
if oggm_version() is None:
    pytest.skip("oggm is not installed (pip install 'glacierbed[oggm]')", allow_module_level=True)

#: Farinotti et al. (2019) consensus volume of Hintereisferner, RGI60-11.00897 (km3)
HEF_CONSENSUS_KM3 = 0.572
#: OGGM 1.6.3's volume of it on the DEM grid, as recorded (benchmarks/results/validation_hintereisferner.csv)
HEF_OGGM_KM3 = 0.641


@pytest.fixture(scope="module")
def hef(data_dir):
    ex = registry.get_example("hintereisferner")
    return read_dem(ex.dem), read_outlines(ex.outlines)


@pytest.fixture(scope="module")
def hef_oggm(hef) -> PeerResult:
    """One offline OGGM run: downloads would go to a closed local proxy port and fail."""
    dem, outline = hef
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            mp.setenv(var, "http://127.0.0.1:9")
        for var in ("NO_PROXY", "no_proxy"):
            mp.delenv(var, raising=False)
        return oggm_thickness(dem, outline)


def test_hintereisferner_is_physical(hef, hef_oggm):
    dem, outline = hef
    assert hef_oggm.status == "ok", hef_oggm.status
    h = hef_oggm.thickness
    assert h is not None and h.same_grid(dem)
    inside = rasterize_ids(outline, dem) > 0
    valid = np.isfinite(dem.data)
    assert np.isfinite(h.data[inside]).mean() > 0.99  # a value on (nearly) every glacier pixel
    assert (h.data[valid] >= 0).all()
    assert (h.data[~inside & valid] == 0).all()  # no ice outside the outline
    assert (h.data[inside] > 0).mean() > 0.9 and np.nanmax(h.data) < 500
    # OGGM's own volume and the volume on our grid: within 5 % of the recorded OGGM 1.6.3 run
    # (0.641 km3 on the grid, benchmarks/results/validation_hintereisferner.csv: +12 % on the
    # consensus), and within 10 % of each other
    for vol in (hef_oggm.volume_km3, hef_oggm.details["volume_on_grid_km3"]):
        assert vol == pytest.approx(HEF_OGGM_KM3, rel=0.05)
        assert HEF_CONSENSUS_KM3 / 2 < vol < HEF_CONSENSUS_KM3 * 2
    assert hef_oggm.details["volume_on_grid_km3"] == pytest.approx(hef_oggm.volume_km3, rel=0.1)
    # OGGM's grid rule dx = 14 sqrt(A) + 10 (8 km2 -> 50 m) and its default Glen A
    assert hef_oggm.details["dx_m"] == 50 and hef_oggm.details["glen_a"] == 2.4e-24
    assert dem.data[inside].min() < hef_oggm.details["ela_m"] < dem.data[inside].max()
    assert oggm_version() == hef_oggm.details["oggm_version"]


def test_failure_is_reported_not_raised(hef):
    dem, outline = hef
    geom = outline.to_crs("EPSG:4326").geometry.iloc[0]
    both = gpd.GeoDataFrame({"rgi_id": [outline["rgi_id"].iloc[0], "RGI60-11.99999"]},
                            geometry=[geom, affinity.translate(geom, xoff=0.8)],  # ~60 km east: off the DEM
                            crs="EPSG:4326")
    root = logging.getLogger()
    handlers = root.handlers[:]
    res = oggm_thickness_map(dem, both)
    assert root.handlers == handlers  # OGGM's logging setup did not replace ours
    assert res.status.startswith("ok (1 of 2 glaciers; failed: RGI60-11.99999: "), res.status
    glaciers = res.details["per_glacier"]
    assert [g["status"] == "ok" for g in glaciers] == [True, False]
    assert glaciers[1]["status"].startswith("failed: ") and len(glaciers[1]["status"]) > len("failed: ") + 10
    inside = rasterize_ids(outline, dem) > 0
    assert np.isfinite(res.thickness.data[inside]).mean() > 0.99
    assert res.volume_km3 == pytest.approx(glaciers[0]["volume_km3"])
