"""Rasters on the real kit: reprojection, mosaics, nodata, voids, atomic writes, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from glacierbed.data import registry as reg
from glacierbed.data.rasters import Raster, mosaic, read_dem
from glacierbed.core.errors import CorruptFileError, DataNotFoundError, MissingCRSError, OptionError, VoidError

OETZTAL = "oggm-sample-data/test-workflow/srtm_oetztal.tif"
ALPINE = "oggm-sample-data/realisation/RGI50-11.01270/dem.tif"  # 46 m local TM, float32, no voids


@pytest.fixture(scope="module")
def oetztal_raw(data_dir: Path) -> Raster:
    return Raster.from_file(reg.get_file(OETZTAL))


def test_reprojection_keeps_elevations(oetztal_raw: Raster) -> None:
    dem = read_dem(oetztal_raw.source, resolution=90.0)
    assert dem.crs.to_epsg() == 32632 and dem.res == (90.0, 90.0)
    rng = np.random.default_rng(42)
    left, bottom, right, top = oetztal_raw.bounds
    mx, my = 0.05 * (right - left), 0.05 * (top - bottom)
    lon = rng.uniform(left + mx, right - mx, 400)
    lat = rng.uniform(bottom + my, top - my, 400)
    x, y = Transformer.from_crs("EPSG:4326", dem.crs, always_xy=True).transform(lon, lat)
    z_geo, z_utm = oetztal_raw.sample(lon, lat), dem.sample(x, y)
    ok = np.isfinite(z_geo) & np.isfinite(z_utm)
    assert ok.sum() > 390
    diff = z_utm[ok] - z_geo[ok]
    assert np.median(np.abs(diff)) < 6.0  # measured 2.4 m: two bilinear interpolations, steep terrain
    assert abs(np.mean(diff)) < 2.0  # measured 0.05 m: no half-pixel shift of the grid
    assert np.nanmin(dem.data) > 300 and np.nanmax(dem.data) < 3800  # the kit's 387-3727 m range


def test_mosaic_of_overlapping_halves_equals_original(oetztal_raw: Raster, tmp_path: Path) -> None:
    ny, nx = oetztal_raw.shape
    west = oetztal_raw.window(0, 0, ny, nx // 2 + 40)
    east = oetztal_raw.window(0, nx // 2 - 40, ny, nx - (nx // 2 - 40))
    merged = mosaic([west, east])
    assert merged.shape == oetztal_raw.shape and merged.transform.almost_equals(oetztal_raw.transform)
    np.testing.assert_array_equal(merged.data, oetztal_raw.data)
    paths = [west.to_file(tmp_path / "west.tif"), east.to_file(tmp_path / "east.tif")]
    from_files = read_dem(paths, crs="EPSG:4326")  # same CRS: mosaicked, not warped
    np.testing.assert_array_equal(from_files.data, oetztal_raw.data)


@pytest.mark.parametrize("declare_nodata", [True, False])
def test_int16_srtm_voids_read_as_nan(data_dir: Path, tmp_path: Path, declare_nodata: bool) -> None:
    src_path = reg.get_file(OETZTAL)
    with rasterio.open(src_path) as src:
        arr, profile = src.read(1), src.profile
    assert arr.dtype == np.int16
    arr[100:103, 200:204] = -32768
    profile.update(nodata=-32768 if declare_nodata else None)
    path = tmp_path / "srtm_int16.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
    r = Raster.from_file(path)
    assert r.data.dtype == np.float32
    assert np.isnan(r.data).sum() == 12 and np.isnan(r.data[100:103, 200:204]).all()
    np.testing.assert_array_equal(r.data[50], arr[50].astype(np.float32))


def test_void_fill_small_filled_big_reported(data_dir: Path, tmp_path: Path) -> None:
    truth = Raster.from_file(reg.get_file(ALPINE))
    assert not np.isnan(truth.data).any()
    data = truth.data.copy()
    small = (slice(150, 155), slice(150, 155))  # 25 px < max_void_px
    big = (slice(60, 80), slice(220, 240))  # 400 px
    data[small] = np.nan
    data[big] = np.nan
    path = truth.with_data(data).to_file(tmp_path / "holes.tif")
    dem = read_dem(path)
    assert dem.voids.n_voids == 2 and dem.voids.largest_void_px == 400
    assert dem.voids.n_filled_px == 25 and dem.voids.n_left_px == 400
    assert np.isnan(dem.data[big]).all() and np.isfinite(dem.data[small]).all()
    err = np.abs(dem.data[small] - truth.data[small])
    relief = np.ptp(truth.data[145:160, 145:160])
    assert err.max() < 50.0 and err.max() < 0.5 * relief  # within tens of metres of the real surface
    with pytest.raises(VoidError, match="holes.tif"):
        read_dem(path, max_void_fraction=0.001)  # 400 px = 0.35 % of the grid
    assert read_dem(path, max_void_fraction=0.01).voids.n_left_px == 400


def test_atomic_write_round_trip(oetztal_raw: Raster, tmp_path: Path) -> None:
    dem = read_dem(oetztal_raw.source, resolution=100.0)
    dem.data[:5, :5] = np.nan
    out = dem.to_file(tmp_path / "sub" / "dem.tif")
    assert not list(tmp_path.rglob("*.tmp"))
    back = Raster.from_file(out)
    assert back.crs == dem.crs and back.transform == dem.transform
    np.testing.assert_array_equal(np.isnan(back.data), np.isnan(dem.data))
    np.testing.assert_array_equal(back.data[~np.isnan(back.data)], dem.data[~np.isnan(dem.data)])
    with rasterio.open(out) as src:
        assert src.nodata == -9999.0 and src.crs.to_epsg() == 32632


def test_missing_corrupt_and_crs_less_files(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="nothere.tif"):
        read_dem(tmp_path / "nothere.tif")
    bad = tmp_path / "garbage.tif"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CorruptFileError, match="garbage.tif"):
        read_dem(bad)
    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32") as dst:
        dst.write(np.ones((8, 8), np.float32), 1)
    with pytest.raises(MissingCRSError, match="nocrs.tif"):
        read_dem(nocrs)


@pytest.mark.parametrize("resolution, message", [(2.0, "38x finer than the DEM's own 75 m"), (-10.0, "above 0"),
                                                 (5000.0, "at most 1,000 m")])
def test_resolutions_that_cannot_work_are_refused(data_dir: Path, resolution: float, message: str) -> None:
    hef = reg.get_file("oggm-sample-data/test-files/hef_srtm.tif")  # SRTM 3": 75 m in UTM 32N
    with pytest.raises(OptionError, match=message):
        read_dem(hef, resolution=resolution)  # 2 m: a 15 GB warp of a 90 m DEM before this check
    assert read_dem(hef, resolution=20.0).res == (20.0, 20.0)  # 3.75x finer: allowed
