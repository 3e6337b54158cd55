"""Thickness observations: radar points and GlaThiDa surveys, read and tied to outlines."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from glacierbed.data.observations import (
    match_glathida_to_outlines,
    match_points_to_glaciers,
    read_glathida_glaciers,
    read_points,
)
from glacierbed.data.outlines import read_outlines
from glacierbed.core.errors import CorruptFileError, DataNotFoundError, MissingCRSError


@pytest.fixture(scope="module")
def south(oggm_dir):
    d = oggm_dir / "benchmarks" / "south_glacier"
    return d / "IceThick_SouthGlacier.shp", d / "SouthGlacier.shp"


@pytest.fixture(scope="module")
def south_points(south):
    return read_points(south[0])


def test_south_glacier_points(south, south_points):
    raw = gpd.read_file(south[0])
    assert len(south_points) == len(raw) == 9619
    np.testing.assert_allclose(south_points["thickness_m"], raw["thick"])
    # the file's bed and surface agree with its thickness (to the DBF's rounding) for nearly all points
    diff = np.abs(south_points["z_surface"] - south_points["z_bed"] - south_points["thickness_m"])
    assert (diff < 0.02).mean() > 0.99
    assert south_points.crs is not None and south_points.attrs["n_dropped"] == 0


def test_south_glacier_points_inside_outline(south, south_points):
    outlines = read_outlines(south[1])
    matched = match_points_to_glaciers(south_points, outlines)
    inside = matched["rgi_id"].notna().mean()
    assert inside > 0.998  # radar tracks end at the margin: a handful fall just outside
    assert set(matched["rgi_id"].dropna()) == {outlines["rgi_id"].iloc[0]}


def test_glathida_point_csv(tmp_path, south_points):
    sub = south_points.iloc[::50]
    df = pd.DataFrame({"POINT_LAT": sub.geometry.y, "POINT_LON": sub.geometry.x,
                       "THICKNESS": sub["thickness_m"], "ELEVATION": sub["z_surface"]})
    df.loc[df.index[0], "THICKNESS"] = np.nan  # counted, not silently dropped
    path = tmp_path / "TTT.csv"
    df.to_csv(path, index=False)
    pts = read_points(path)
    assert len(pts) == len(sub) - 1 and pts.attrs["n_dropped"] == 1
    np.testing.assert_allclose(pts["z_bed"], pts["z_surface"] - pts["thickness_m"])
    np.testing.assert_allclose(pts.geometry.x, sub.geometry.x.iloc[1:])
    # lowercase GlaThiDa 3.1 style
    df.rename(columns={"POINT_LAT": "lat", "POINT_LON": "lon", "THICKNESS": "thickness"}).to_csv(path, index=False)
    assert len(read_points(path)) == len(sub) - 1


def test_read_points_errors(tmp_path, south_points):
    with pytest.raises(DataNotFoundError, match="nope.shp"):
        read_points(tmp_path / "nope.shp")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"lat": [60.8], "lon": [-139.1], "depth": [3.0]}).to_csv(bad, index=False)
    with pytest.raises(CorruptFileError, match="no thickness column"):
        read_points(bad)
    pd.DataFrame({"y": [60.8], "thickness": [3.0]}).to_csv(bad, index=False)
    with pytest.raises(CorruptFileError, match="latitude/longitude"):
        read_points(bad)
    nocrs = tmp_path / "nocrs.gpkg"
    gpd.GeoDataFrame({"thick": [1.0]}, geometry=south_points.geometry.iloc[:1].to_numpy(), crs=None).to_file(nocrs)
    with pytest.raises(MissingCRSError, match="nocrs.gpkg"):
        read_points(nocrs)


@pytest.fixture(scope="module")
def glathida(data_dir):
    return read_glathida_glaciers(data_dir / "glathida" / "glacier.csv")


def test_read_glathida(data_dir, glathida):
    raw = pd.read_csv(data_dir / "glathida" / "glacier.csv")
    assert len(glathida) == raw["mean_thickness"].notna().sum()
    assert glathida["mean_thickness"].notna().all()
    with pytest.raises(DataNotFoundError):
        read_glathida_glaciers(data_dir / "glathida" / "missing.csv")


def test_glathida_matches_oetztal(oggm_dir, glathida):
    outlines = read_outlines(oggm_dir / "test-workflow" / "rgi" / "rgi_oetztal.shp")
    m = match_glathida_to_outlines(glathida, outlines, max_area_rel_diff=0.5)
    n_glaciers = m["rgi_id"].nunique()
    assert 10 <= n_glaciers <= 20
    assert m.groupby("rgi_id")["latest"].sum().eq(1).all()  # exactly one latest survey per glacier
    assert (m["area_rel_diff"].dropna() <= 0.5).all()
    assert (m["distance_m"] <= 750).all()
    hef = m[(m["rgi_id"] == "RGI50-11.00897") & m["latest"]].iloc[0]
    assert hef["year"] == 2001 and hef["mean_thickness"] == 67
    assert m.loc[m["rgi_id"] == "RGI50-11.00897", "year"].max() == hef["year"]
    # surveys near the outlines that matched none are reported with a reason
    unmatched = m.attrs["unmatched"]
    assert len(unmatched) > 0 and unmatched["reason"].str.len().gt(0).all()
    assert m.attrs["n_outside_extent"] + len(unmatched) + len(m) == len(glathida)
