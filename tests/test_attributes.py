"""Glacier attributes from a DEM and an outline: hand-computed values on analytic surfaces
and on a real kit glacier (Hintereisferner: RGI 6 attributes for comparison)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glacierbed.data.attributes import attributes_of_mask, caution, glacier_attributes, kind_flags


def test_tilted_plane_facing_north() -> None:
    """A plane rising southwards by 0.2 m/m faces north: slope atan(0.2), aspect 0, HI 1."""
    rows, cols = np.indices((60, 40)).astype(float)
    surface = 2000.0 + 0.2 * 50.0 * rows  # rows grow southwards, 50 m pixels
    mask = np.zeros_like(surface, bool)
    mask[5:55, 5:35] = True
    a = attributes_of_mask(surface, mask, 50.0, latitude_deg=46.8)
    assert a["slope_deg"] == pytest.approx(np.degrees(np.arctan(0.2)), abs=1e-9)
    assert a["aspect_deg"] == pytest.approx(0.0, abs=1e-6) or a["aspect_deg"] == pytest.approx(360.0, abs=1e-6)
    assert a["northness"] == pytest.approx(1.0)
    assert a["area_km2"] == pytest.approx(50 * 30 * 50.0 ** 2 / 1e6)
    assert a["z_range_m"] == pytest.approx(0.2 * 50.0 * 49)
    assert a["hypsometric_index"] == pytest.approx(1.0, rel=0.05)
    assert a["latitude_deg"] == 46.8


def test_east_facing_and_top_heavy() -> None:
    """Falling eastwards: aspect 90; a surface flat on top and steep below is top-heavy (HI < 1)."""
    rows, cols = np.indices((40, 40)).astype(float)
    east = 3000.0 - 10.0 * cols
    a = attributes_of_mask(east, np.ones_like(east, bool), 25.0)
    assert a["aspect_deg"] == pytest.approx(90.0, abs=1e-6)
    plateau = np.where(cols < 30, 3000.0 - 0.5 * cols, 3000.0 - 15.0 - 40.0 * (cols - 30))
    b = attributes_of_mask(plateau, np.ones_like(plateau, bool), 25.0)
    assert b["hypsometric_index"] < 0.1


def test_hintereisferner_against_rgi(data_dir) -> None:
    """Hintereisferner on its SRTM DEM: area, elevations and latitude within RGI 6's values."""
    from glacierbed.data import registry
    from glacierbed.data.outlines import rasterize_ids, read_outlines
    from glacierbed.data.rasters import read_dem

    ex = registry.get_example("hintereisferner")
    dem = read_dem(ex.dem)
    outlines = read_outlines(ex.outlines).reset_index(drop=True)
    ids = rasterize_ids(outlines, dem)
    table = glacier_attributes(dem, ids, {i + 1: r for i, r in enumerate(outlines["rgi_id"])})
    row = table.iloc[0]
    # RGI60-11.00897: Area 8.036 km2, Zmin 2430, Zmax 3674, Zmed 3051, Aspect 71, Slope 16.2, CenLat 46.8003
    assert row["area_km2"] == pytest.approx(8.036, rel=0.05)
    assert row["z_median_m"] == pytest.approx(3052, abs=40)
    assert row["z_max_m"] == pytest.approx(3684, abs=80)
    assert row["latitude_deg"] == pytest.approx(46.80, abs=0.01)
    assert row["slope_deg"] == pytest.approx(16.2, abs=4.0)
    assert 30.0 < row["aspect_deg"] < 110.0  # RGI: 71 degrees (north-east to east)


def test_distance_to_ocean_on_known_places() -> None:
    """The continentality proxy on places whose distance to the sea is known to ~20 %: Amsterdam on the coast, the
    Ötztal ~190 km from the Adriatic, South Glacier ~90 km from the Gulf of Alaska, Urumqi the most continental
    city (> 2,000 km); a point at sea is 0, no position is NaN, and the dateline is crossed."""
    from glacierbed.data.attributes import distance_to_ocean_km

    assert distance_to_ocean_km(4.90, 52.37) < 20
    assert 150 < distance_to_ocean_km(10.77, 46.80) < 250
    assert 60 < distance_to_ocean_km(-139.1, 60.8) < 130
    assert distance_to_ocean_km(86.81, 43.11) > 2000
    assert distance_to_ocean_km(-30.0, 40.0) == 0.0 and np.isnan(distance_to_ocean_km(float("nan"), 46.0))
    assert distance_to_ocean_km(179.95, 66.0) == pytest.approx(distance_to_ocean_km(-179.95, 66.0), abs=30)


def test_caution_flags_follow_their_thresholds() -> None:
    """``caution``: a flag per kind the default is known to err on, by hand: an ice cap (slope 6 degrees), a
    glacier of 12 km2, one of an unmeasured region, one with all three, one with none and one without pixels
    (NaN attributes raise nothing)."""
    from glacierbed.pipeline.outputs import caution_counts

    table = pd.DataFrame({"slope_deg": [6.0, 15.0, 15.0, 9.9, 10.0, np.nan],
                          "area_km2": [5.0, 12.0, 2.0, 400.0, 10.0, np.nan],
                          "measured_region": [True, None, False, False, True, None]})
    assert kind_flags(table)["plateau_or_ice_cap"].tolist() == [True, False, False, True, False, False]
    flags = caution(table)
    assert flags.tolist() == ["plateau_or_ice_cap", "large", "unmeasured_region",
                              "plateau_or_ice_cap;large;unmeasured_region", "", ""]
    assert caution_counts(flags) == {"plateau_or_ice_cap": 2, "large": 2, "unmeasured_region": 2}
    assert caution(table.drop(columns="measured_region")).tolist()[2] == ""  # no column: nothing said
