"""Per-glacier error diagnosis: metrics against hand-computed values, one row per glacier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glacierbed.evaluation.diagnosis import dem_year, glacier_errors, one_per_glacier, outside_simulator


def _rows() -> pd.DataFrame:
    cells = pd.DataFrame({"case": "glathida-grids", "example": "g", "unit": "cell", "rgi_id": "A", "group": "A",
                          "region": "11", "obs": [10.0, 20.0, 30.0], "mu": [20.0, 20.0, 50.0]})
    mean = pd.DataFrame({"case": "oetztal-means", "example": "oetztal", "unit": "glacier_mean", "rgi_id": "A5",
                         "group": "A", "region": "11", "obs": [40.0], "mu": [30.0], "survey_year": [2001.0]})
    return pd.concat([cells, mean], ignore_index=True)


def test_glacier_errors_by_hand() -> None:
    e = glacier_errors(_rows()).set_index("unit")
    # cells: errors +10, 0, +20 -> bias 10, RMSE sqrt((100 + 0 + 400) / 3), measured mean 20
    assert e.loc["cell", "bias_m"] == pytest.approx(10.0)
    assert e.loc["cell", "rmse_m"] == pytest.approx(np.sqrt(500 / 3))
    assert e.loc["cell", "rel_bias"] == pytest.approx(0.5)
    assert e.loc["glacier_mean", "bias_m"] == pytest.approx(-10.0)
    assert e.loc["glacier_mean", "rel_bias"] == pytest.approx(-0.25)
    assert e.loc["glacier_mean", "survey_year"] == 2001.0


def test_one_row_per_glacier_prefers_measured_cells() -> None:
    per = one_per_glacier(glacier_errors(_rows()))
    assert len(per) == 1 and per.iloc[0]["unit"] == "cell"


def test_dem_years_and_envelope_flags() -> None:
    assert dem_year("SRTM v4.1 (CGIAR, 3\")") == 2000.0
    assert np.isnan(dem_year("DEM3 (viewfinderpanoramas)"))
    t = pd.DataFrame({"pixel_size_m": [200.0, 25.0], "area_km2": [700.0, 1.0], "latitude_deg": [78.0, 46.8],
                      "slope_deg": [5.0, 20.0], "hypsometric_index": [0.6, 1.2], "obs_mean_m": [600.0, 40.0]})
    f = outside_simulator(t)
    # 128 px x 200 m = 655 km2 window, at most 31 % ice: a 700 km2 ice cap does not fit
    assert f.loc[0].all() and not f.loc[1].any()


def test_ocean_distance_of_a_kit_glacier(data_dir) -> None:
    """South Glacier's centroid, from its outline on its DEM: ~90 km from the Gulf of Alaska; the attribute enters
    the rank correlations and an older table without it is skipped, not an error."""
    from glacierbed.evaluation.diagnosis import attribute_correlations, ocean_distances

    d = ocean_distances("south-glacier")
    assert list(d["rgi_id"]) == ["RGI60-01.16195"] and 60 < d["distance_to_ocean_km"].iloc[0] < 130
    table = pd.DataFrame({"rel_bias": [0.1, 0.2, -0.1, 0.4, 0.0], "rel_rmse": [0.3, 0.4, 0.2, 0.6, 0.1],
                          "distance_to_ocean_km": [10.0, 20.0, 1.0, 40.0, 5.0]})
    corr = attribute_correlations(table).set_index("attribute")
    assert list(corr.index) == ["distance_to_ocean_km"] and corr.loc["distance_to_ocean_km", "spearman_rel_bias"] == pytest.approx(1)
