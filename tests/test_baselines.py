"""Reference thickness maps: volume-area scaling, GlabTop, inpainting, external products."""

from __future__ import annotations


import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from glacierbed.evaluation import baselines
from glacierbed.core import glaciology
from glacierbed.data.outlines import rasterize_ids, read_outlines
from glacierbed.data.rasters import Raster, read_dem


@pytest.fixture(scope="module")
def south(oggm_dir):
    d = oggm_dir / "benchmarks" / "south_glacier"
    return read_dem(d / "dem_SouthGlacier.tif"), read_outlines(d / "SouthGlacier.shp")


def _volume_km3(h: Raster) -> float:
    return float(np.nansum(h.data) * h.pixel_area_m2 / 1e9)


def test_va_uniform_volume(south):
    dem, outlines = south
    h = baselines.volume_area_thickness(dem, outlines, shaped=False)
    area_km2 = outlines.to_crs(dem.crs).geometry.area.iloc[0] / 1e6
    assert _volume_km3(h) == pytest.approx(0.034 * area_km2**1.375, rel=1e-5)
    inside = rasterize_ids(outlines, dem) > 0
    assert np.ptp(h.data[inside]) < 1e-3  # uniform
    assert (h.data[~inside] == 0).all()


def test_va_shaped_keeps_volume_and_vanishes_at_margin(south):
    dem, outlines = south
    uni = baselines.volume_area_thickness(dem, outlines, shaped=False)
    h = baselines.volume_area_thickness(dem, outlines, shaped=True)
    assert _volume_km3(h) == pytest.approx(_volume_km3(uni), rel=1e-5)
    inside = rasterize_ids(outlines, dem) > 0
    assert (h.data[~inside] == 0).all() and (h.data >= 0).all()
    # margin pixels (4-neighbour of ice-free terrain) are far thinner than the interior
    from scipy import ndimage

    margin = inside & ~ndimage.binary_erosion(inside)
    assert h.data[margin].max() < 0.5 * h.data[inside].mean()
    assert h.data[inside].max() > 1.5 * h.data[inside].mean()


def _plane(slope_deg: float, n: int = 120, res: float = 20.0) -> Raster:
    x = (np.arange(n) + 0.5) * res
    z = 3000.0 - np.tan(np.deg2rad(slope_deg)) * x[None, :] * np.ones((n, 1))
    return Raster.from_array(z, from_origin(0.0, n * res, res, res), "EPSG:32632")


def _box(x0, y0, x1, y1) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"rgi_id": ["box"], "name": [""]}, geometry=[shapely.box(x0, y0, x1, y1)], crs="EPSG:32632")


@pytest.mark.parametrize("slope_deg", [10.0, 25.0])
def test_glabtop_inclined_plane(slope_deg):
    dem = _plane(slope_deg)
    # box edges on pixel edges: pixel centres x = 810 ... 1590 (40 columns), far from the grid edge
    outlines = _box(800.0, 800.0, 1600.0, 1600.0)
    h = baselines.glabtop_thickness(dem, outlines, smooth_m=200.0, min_slope_deg=3.0)
    dz_km = 39 * 20.0 * np.tan(np.deg2rad(slope_deg)) / 1000.0
    tau_bar = 0.005 + 1.598 * dz_km - 0.435 * dz_km**2 if dz_km <= 1.6 else 1.5
    expected = tau_bar * 1e5 / (0.8 * 900.0 * 9.81 * np.sin(np.deg2rad(slope_deg)))
    inside = rasterize_ids(outlines, dem) > 0
    assert inside.sum() == 40 * 40
    np.testing.assert_allclose(h.data[inside], expected, rtol=1e-4)
    assert (h.data[~inside] == 0).all()


def test_glabtop_minimum_slope_and_nodata():
    dem = _plane(0.0)
    dem.data[0, 0] = np.nan
    outlines = _box(800.0, 800.0, 1600.0, 1600.0)
    h = baselines.glabtop_thickness(dem, outlines, min_slope_deg=3.0)
    inside = rasterize_ids(outlines, dem) > 0
    expected = 0.005e5 / (0.8 * 900.0 * 9.81 * np.sin(np.deg2rad(3.0)))  # dZ = 0: tau = 0.005 bar
    np.testing.assert_allclose(h.data[inside], expected, rtol=1e-4)
    assert np.isnan(h.data[0, 0]) and np.isfinite(h.data[1:, 1:]).all()


def test_glabtop_real_glacier(south):
    dem, outlines = south
    h = baselines.glabtop_thickness(dem, outlines)
    inside = rasterize_ids(outlines, dem) > 0
    assert (h.data[inside] > 0).all() and (h.data[~inside] == 0).all()
    # capped by the minimum slope: h <= 1.5 bar / (f rho g sin 3 deg)
    assert h.data.max() <= 1.5e5 / (0.8 * 900 * 9.81 * np.sin(np.deg2rad(3.0))) + 1e-3


def test_consensus_on_dem_grid(oggm_dir):
    tf = oggm_dir / "test-files"
    dem = read_dem(tf / "hef_srtm.tif")
    outlines = read_outlines(tf / "Hintereisferner_RGI6.shp")
    src = Raster.from_file(tf / "consensus_composite" / "RGI60-11.00897_thickness.tif")
    h = baselines.external_thickness(src, dem, outlines)
    assert h.same_grid(dem)
    inside = rasterize_ids(outlines, dem) > 0
    assert (h.data[~inside & np.isfinite(dem.data)] == 0).all()
    # the raster itself, read with rasterio alone (sum x pixel area), is the g2ti consensus volume of
    # RGI60-11.00897 (vol_itmix_m3 in the kit's g2ti table: 0.57785 km3, Farinotti et al. 2019)
    with rasterio.open(tf / "consensus_composite" / "RGI60-11.00897_thickness.tif") as f:
        raw_km3 = float(np.nansum(f.read(1)) * abs(f.res[0] * f.res[1]) / 1e9)
    g2ti = pd.read_hdf(oggm_dir / "g2ti" / "rgi62_itmix_df.h5")
    assert raw_km3 == pytest.approx(g2ti.loc["RGI60-11.00897", "vol_itmix_m3"] / 1e9, rel=1e-6)
    assert raw_km3 == pytest.approx(0.57785, abs=1e-5)
    # resampling 25 m -> 75 m inside the RGI 6 outline: 0.5720 km3 (-1.0 %), the reference of
    # benchmarks/results/validation_hintereisferner.csv
    assert _volume_km3(h) == pytest.approx(raw_km3, rel=0.015)
    assert _volume_km3(h) == pytest.approx(0.5720, abs=0.0005)


def test_va_formula():
    assert baselines.va_volume_km3(1.0) == pytest.approx(0.034)
    assert baselines.va_volume_km3(10.0) == pytest.approx(0.034 * 10**1.375)
    np.testing.assert_allclose(glaciology.glabtop_tau_pa([0.0, 1.0, 2.0]), [0.005e5, 1.168e5, 1.5e5])
