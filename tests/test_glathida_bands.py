"""GlaThiDa thickness by elevation band: reader, band means and profile errors against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glacierbed.evaluation.glathida_bands import band_errors, band_means


def test_band_means_average_the_glaciers_pixels_in_each_band() -> None:
    z = np.array([[100.0, 110.0, 120.0], [130.0, 140.0, np.nan]])
    h = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    own = np.array([[True, True, True], [True, False, True]])
    # [100, 120): 10, 20 -> 15; [120, 150): 30, 40 (50 is not the glacier's, the NaN elevation is dropped) -> 35;
    # [150, 200): no pixel -> NaN
    got = band_means(h, z, own, np.array([100.0, 120.0, 150.0]), np.array([120.0, 150.0, 200.0]), min_pixels=1)
    np.testing.assert_allclose(got, [15.0, 35.0, np.nan])
    # a band with fewer pixels than asked is not scored
    assert np.isnan(band_means(h, z, own, np.array([100.0]), np.array([120.0]), min_pixels=3)[0])


def test_band_errors_split_the_profile_error_into_bias_and_shape() -> None:
    measured = np.array([10.0, 20.0, 30.0, np.nan])
    shifted = measured + 5.0  # right shape, wrong volume
    e = band_errors(shifted, measured)
    assert e["n_bands"] == 3 and e["rmse_m"] == pytest.approx(5.0) and e["bias_m"] == pytest.approx(5.0)
    assert e["shape_rmse_m"] == pytest.approx(0.0, abs=1e-12)
    flat = np.full(4, 20.0)  # right volume, no shape: errors +10, 0, -10
    e = band_errors(flat, measured)
    assert e["bias_m"] == pytest.approx(0.0) and e["shape_rmse_m"] == pytest.approx(np.sqrt(200.0 / 3.0))
    assert band_errors(np.full(2, np.nan), np.ones(2))["n_bands"] == 0


def test_band_reader_drops_held_out_surveys_and_empty_bands(tmp_path: Path) -> None:
    from glacierbed.core.errors import CorruptFileError
    from glacierbed.data.observations import held_out_glathida_ids, read_glathida_bands

    held = sorted(held_out_glathida_ids())[0]
    table = pd.DataFrame({"glacier_id": [97, 97, 97, held, None], "from_elevation": [2250, 2270, 2290, 3000, 10],
                          "to_elevation": [2270, 2290, 2290, 3020, 20], "mean_thickness": [43, -99, 30, 50, 5]})
    table.to_csv(tmp_path / "band.csv", index=False)
    every = read_glathida_bands(tmp_path / "band.csv")
    assert list(every["glacier_id"]) == [97, held]  # GlaThiDa's -99, an empty band and a row without an id dropped
    assert list(read_glathida_bands(tmp_path / "band.csv", for_fitting=True)["glacier_id"]) == [97]
    table.drop(columns="to_elevation").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(CorruptFileError, match="bad.csv.*to_elevation"):
        read_glathida_bands(tmp_path / "bad.csv")


def test_the_kits_band_surveys_land_on_rgi11_glaciers(data_dir: Path) -> None:
    """On the kit: the band surveys matched through the alps-means match are 2006-2013 surveys of 16
    glaciers, none held out, and every band lies in its glacier's elevation range of the survey."""
    from glacierbed.data.observations import held_out_glathida_ids
    from glacierbed.evaluation.glathida_bands import alps_band_surveys

    bands = alps_band_surveys()
    assert bands["rgi_id"].nunique() == 16
    assert not set(bands["glacier_id"].astype(int)) & held_out_glathida_ids()
    assert bands["year"].between(2006, 2013).all()
    assert (bands["mean_thickness"] >= 0).all() and (bands["to_elevation"] > bands["from_elevation"]).all()
    assert {"RGI60-11.02773", "RGI60-11.03249"} <= set(bands["rgi_id"])  # Findelengletscher, Höllentalferner
