"""DEMs whose CRS is projected but not a local metric grid (Web Mercator, feet, far from
the projection's origin) are worked on in local UTM, not taken as is."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from pyproj import CRS, Transformer
from rasterio.transform import from_origin

from glacierbed.data import registry as reg
from glacierbed.data.outlines import check_overlap, rasterize_mask, read_outlines
from glacierbed.data.rasters import Raster, crs_problem, local_metric_crs, read_dem, utm_crs_for
from glacierbed.core.errors import MissingCRSError

OETZTAL = "oggm-sample-data/test-workflow/srtm_oetztal.tif"
OUTLINES = "oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"
FEET_TM = "+proj=tmerc +lat_0=46.8 +lon_0=10.8 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=us-ft +no_defs"


@pytest.fixture(scope="module")
def oetztal(data_dir: Path) -> tuple[Raster, gpd.GeoDataFrame]:
    return Raster.from_file(reg.get_file(OETZTAL)), read_outlines(reg.get_file(OUTLINES))


def _glacier_km2(outlines: gpd.GeoDataFrame, dem: Raster) -> float:
    return float(rasterize_mask(outlines, dem).sum()) * dem.pixel_area_m2 / 1e6


def test_web_mercator_dem_is_read_in_utm_with_true_areas(oetztal, tmp_path: Path, caplog) -> None:
    raw, outlines = oetztal
    rgi_km2 = float(outlines["area_km2"].sum())  # 87.7 km² for the 20 glaciers
    assert len(outlines) == 20 and rgi_km2 == pytest.approx(88, abs=1)
    wm = raw.reproject("EPSG:3857")
    # the silent error: Web Mercator pixels taken as squares of their nominal size
    nominal = rasterize_mask(outlines, wm).sum() * wm.res[0] * wm.res[1] / 1e6
    assert nominal > 180
    path = wm.to_file(tmp_path / "oetztal_3857.tif")
    with caplog.at_level(logging.WARNING, logger="glacierbed.data.rasters"):
        dem = read_dem(path)
    assert dem.crs.to_epsg() == 32632  # UTM 32N, the zone of Ötztal
    assert "Pseudo-Mercator" in caplog.text and "areal scale 2.1" in caplog.text
    assert _glacier_km2(outlines, dem) == pytest.approx(rgi_km2, rel=0.03)
    assert 60 < dem.res[0] < 100  # about the SRTM's own ground resolution, not 110 m


def test_feet_based_crs_is_reprojected_to_metres(oetztal, tmp_path: Path, caplog) -> None:
    raw, outlines = oetztal
    ft = raw.reproject(FEET_TM)  # undistorted here (scale 1), but in US survey feet
    assert crs_problem(ft.crs, ft.bounds) is not None and "foot" in crs_problem(ft.crs, ft.bounds)
    with caplog.at_level(logging.WARNING, logger="glacierbed.data.rasters"):
        dem = read_dem(ft.to_file(tmp_path / "oetztal_ftus.tif"))
    assert "not metres" in caplog.text
    assert dem.crs.to_epsg() == 32632
    assert _glacier_km2(outlines, dem) == pytest.approx(float(outlines["area_km2"].sum()), rel=0.03)


def test_state_plane_in_feet_goes_to_local_utm() -> None:
    crs = CRS.from_epsg(2229)  # NAD83 / California zone 5 (ftUS)
    # a 10 km square around Los Angeles, in the state plane's own feet
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(-118.2, 34.2)
    half = 5000 / 0.3048006
    r = Raster.from_array(np.zeros((10, 10)), from_origin(x - half, y + half, half / 5, half / 5), crs)
    assert "US survey foot" in crs_problem(crs, r.bounds)
    assert local_metric_crs(r).to_epsg() == 32611  # UTM 11N
    with pytest.raises(MissingCRSError, match="not metres"):
        _ = r.pixel_area_m2


@pytest.mark.parametrize("rel", ["nz-canterbury-25m/dem.tif",  # NZTM (EPSG:2193)
                                 "oggm-sample-data/realisation/RGI50-11.01270/dem.tif",  # local TM
                                 "alps-topography-200m/topg-lyon.tif",  # UTM 32N, 4° west of its meridian
                                 "svalbard-longyearbyen/dem_1990.tif"])  # ETRS89 / UTM 33N at 78° N
def test_local_metric_grids_are_kept(data_dir: Path, rel: str) -> None:
    r = Raster.from_file(reg.get_file(rel))
    assert crs_problem(r.crs, r.bounds) is None
    assert local_metric_crs(r) == r.crs
    assert r.pixel_area_m2 == pytest.approx(r.res[0] * r.res[1])


def test_distorted_grid_has_no_pixel_area_and_overlap_uses_utm(oetztal) -> None:
    raw, outlines = oetztal
    wm = raw.reproject("EPSG:3857", resolution=200.0)
    with pytest.raises(MissingCRSError, match="Pseudo-Mercator.*areal scale"):
        _ = wm.pixel_area_m2
    assert local_metric_crs(wm).to_epsg() == 32632
    g = check_overlap(outlines, wm)  # fractions computed in UTM, all inside
    assert g["inside_dem"].all()


def test_explicitly_requested_distorted_crs_is_kept_but_logged(oetztal, caplog) -> None:
    raw, _ = oetztal
    with caplog.at_level(logging.WARNING, logger="glacierbed.data.rasters"):
        dem = read_dem(raw.source, crs="EPSG:3857", resolution=300.0)
    assert dem.crs.to_epsg() == 3857 and "requested CRS" in caplog.text


@pytest.mark.parametrize("lon,lat", [(10.8, 46.8), (-118.2, 34.2), (171.0, -43.3), (15.6, 78.2), (-77.5, -9.4)])
def test_utm_choice_matches_geopandas(lon: float, lat: float) -> None:
    pts = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs="EPSG:4326")
    assert utm_crs_for(lon, lat) == pts.estimate_utm_crs()


def test_beyond_utm_band_uses_local_equal_area() -> None:
    crs = utm_crs_for(-40.0, 85.5)  # north Greenland, north of 84° N
    assert crs.is_projected and crs.coordinate_operation.method_name == "Lambert Azimuthal Equal Area"
    assert crs_problem(crs, (-50_000, -50_000, 50_000, 50_000)) is None


def test_estimate_on_web_mercator_dem_matches_geographic(oetztal, tmp_path: Path) -> None:
    """End to end: the estimation stage gets the fix through ``local_metric_crs``."""
    from glacierbed.pipeline.estimate import estimate

    raw, _ = oetztal
    hef = ["RGI50-11.00897"]  # Hintereisferner, 8 km²
    outlines = reg.get_file(OUTLINES)
    ref = estimate(raw.source, outlines, tmp_path / "geo", model="biharmonic", select=hef, maps=False)
    wm = raw.reproject("EPSG:3857")
    for dem in (wm.to_file(tmp_path / "wm.tif"), wm):  # a file and an in-memory Raster
        res = estimate(dem, outlines, tmp_path / f"wm_{type(dem).__name__}", model="biharmonic", select=hef,
                       maps=False)
        assert res.summary["area_km2"] == pytest.approx(ref.summary["area_km2"], rel=0.01)
        assert res.summary["volume_km3"] == pytest.approx(ref.summary["volume_km3"], rel=0.05)
        assert 0.05 < ref.summary["volume_km3"] < 1.2  # Hintereisferner: consensus 0.572 km³


def test_dem_too_large_for_one_utm_zone_goes_to_local_equal_area(caplog) -> None:
    # 2000 km x 1000 km in UTM 32N around 47° N: areas 2 % off at its western edge
    r = Raster.from_array(np.zeros((100, 100)), from_origin(-500_000, 5_700_000, 20_000, 10_000), 32632)
    with pytest.raises(MissingCRSError, match="areal scale"):
        _ = r.pixel_area_m2
    with caplog.at_level(logging.WARNING, logger="glacierbed.data.rasters"):
        crs = local_metric_crs(r)
    assert crs.coordinate_operation.method_name == "Lambert Azimuthal Equal Area"
    assert "too large for one UTM zone" in caplog.text
    warped = r.reproject(crs, resolution=20_000.0)
    assert warped.pixel_area_m2 == 20_000.0**2  # areas true to 1 % everywhere on it


def test_crs_labels_are_short_for_logs_and_figure_titles(data_dir: Path) -> None:
    """An EPSG CRS is its code; a local Transverse Mercator without one (Chhota Shigri's DEM) its PROJ string,
    not a page of WKT (which once stretched the overview figure to 4,210 px wide)."""
    from glacierbed.data.crs import crs_label

    assert crs_label(CRS.from_epsg(32632)) == "EPSG:32632" and crs_label("EPSG:4326") == "EPSG:4326"
    local = read_dem(data_dir / "oggm-sample-data/test-files/dem_chhota_shigri.tif").crs
    label = crs_label(local)
    assert label.startswith("+proj=tmerc") and "+units=m" in label and len(label) < 120
    assert CRS.from_proj4(label).equals(CRS.from_user_input(local), ignore_axis_order=True)
