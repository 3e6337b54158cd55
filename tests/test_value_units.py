"""Raster values in other units than expected: DEMs in feet, decimetres or a height system in US feet (the real
Hintereisferner SRTM), converted where the file says so and refused where they cannot be metres; an SMB raster in
mm w.e. (South Glacier's own) refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import CRS
from typer.testing import CliRunner

from glacierbed.cli import app
from glacierbed.core.errors import UnitError
from glacierbed.data import registry as reg
from glacierbed.data.raster_io import Raster
from glacierbed.data.units import elevation_problem, physical_range_problem, stored_to_metres
from glacierbed.data.tiles import read_tiles_window
from glacierbed.data.warping import read_dem
from glacierbed.pipeline.estimate import EstimateConfig, estimate

HEF_DEM = "oggm-sample-data/test-files/hef_srtm.tif"
HEF_OUTLINE = "oggm-sample-data/test-files/Hintereisferner_RGI6.shp"
FOOT = 0.3048
US_FOOT = 1200 / 3937


@pytest.fixture(scope="module")
def hef(data_dir: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(reg.get_file(HEF_DEM)) as src:
        return src.read(1).astype(np.float64), src.profile


def _write(path: Path, hef: tuple[np.ndarray, dict], values: np.ndarray, dtype: str = "float32",
           units: str | None = None, scale: float | None = None, crs: str | None = None) -> Path:
    profile = dict(hef[1], dtype=dtype, nodata=None)
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(dtype), 1)
        if units is not None:
            dst.units = (units,)
        if scale is not None:
            dst.scales = (scale,)
    return path


@pytest.mark.parametrize("units, per_unit", [("ft", FOOT), ("US survey foot", US_FOOT), ("km", 1000.0)])
def test_tagged_units_are_read_as_metres(hef, tmp_path: Path, units: str, per_unit: float) -> None:
    metres, _ = hef
    path = _write(tmp_path / "dem.tif", hef, metres / per_unit, units=units)
    np.testing.assert_allclose(Raster.from_file(path).data, metres, rtol=1e-6)


def test_decimetres_with_a_gdal_scale_are_read_as_metres(hef, tmp_path: Path) -> None:
    metres, _ = hef
    path = _write(tmp_path / "dm.tif", hef, np.round(metres * 10), dtype="int32", scale=0.1)
    with rasterio.open(path) as src:
        gain, offset, why = stored_to_metres(src)
    assert (gain, offset) == (pytest.approx(0.1), 0.0) and "scale 0.1" in why
    np.testing.assert_allclose(Raster.from_file(path).data, metres, atol=0.051)


def test_compound_crs_with_heights_in_us_feet(hef, tmp_path: Path) -> None:
    metres, _ = hef
    crs = CRS("EPSG:4326+6360").to_wkt()  # WGS 84 + NAVD88 height (ftUS): its vertical axis says feet
    path = _write(tmp_path / "ftus.tif", hef, metres / US_FOOT, crs=crs)
    np.testing.assert_allclose(Raster.from_file(path).data, metres, rtol=1e-6)


def test_other_tags_and_metres_are_left_alone(hef, tmp_path: Path) -> None:
    metres, _ = hef
    for units in ("m", "metre", "m/yr", ""):
        with rasterio.open(_write(tmp_path / "m.tif", hef, metres, units=units)) as src:
            assert stored_to_metres(src) == (1.0, 0.0, "")


def test_elevations_above_any_on_earth_are_refused(hef, tmp_path: Path) -> None:
    metres, _ = hef
    assert elevation_problem(metres) is None and elevation_problem(np.array([np.nan])) is None
    feet = _write(tmp_path / "untagged_feet.tif", hef, metres / FOOT)  # 2,400-3,700 m = 7,900-12,200 ft
    with pytest.raises(UnitError, match="untagged_feet.tif: elevations reach 12,"):
        read_dem(feet)
    outlines = reg.get_file(HEF_OUTLINE)
    result = CliRunner().invoke(app, ["estimate", "--dem", str(feet), "--outlines", str(outlines),
                                      "--out", str(tmp_path / "out"), "--no-maps"])
    assert result.exit_code == 2 and "above any on Earth" in result.output
    with pytest.raises(UnitError, match="untagged_feet.tif"):
        grid = Raster.from_file(feet)
        read_tiles_window([str(feet)], grid.crs.to_wkt(), grid.bounds, grid.res[0])


def test_estimate_on_a_dem_in_feet_equals_the_metre_dem(hef, tmp_path: Path) -> None:
    metres, _ = hef
    outlines = reg.get_file(HEF_OUTLINE)
    feet = _write(tmp_path / "feet.tif", hef, metres / FOOT, units="ft")
    config = EstimateConfig(ensemble=1)
    for route in ("file", "tiles"):  # one DEM file; a folder of tiles (each glacier's window read lazily)
        volumes = []
        for name, dem in (("m", Path(reg.get_file(HEF_DEM))), ("ft", feet)):
            if route == "tiles":
                (tmp_path / route / name).mkdir(parents=True)
                (tmp_path / route / name / dem.name).symlink_to(dem)
                dem = tmp_path / route / name
            table = estimate(dem, outlines, tmp_path / f"out_{route}_{name}", maps=False, config=config).glaciers
            volumes.append(float(table["volume_km3"].iloc[0]))
        assert volumes[0] == pytest.approx(0.5, abs=0.2)  # Hintereisferner: consensus 0.572 km³
        assert volumes[1] == pytest.approx(volumes[0], rel=1e-4)


def test_undeclared_nodata_is_refused_or_read_as_voids(hef, tmp_path: Path) -> None:
    metres, _ = hef
    holed = metres.copy()
    holed[100:110, 200:230] = -9999.0  # a float DEM whose nodata was never declared
    path = _write(tmp_path / "undeclared.tif", hef, holed)
    with pytest.raises(UnitError, match="undeclared.tif: elevations reach down to -9,999 m"):
        read_dem(path)
    holed[100:110, 200:230] = -32768  # SRTM's void value in an int16 tile that declares no nodata: voids
    tile = _write(tmp_path / "srtm_void.tif", hef, holed, dtype="int16")
    grid = Raster.from_file(tile)
    assert np.isnan(grid.data[100:110, 200:230]).all() and np.isfinite(grid.data).sum() == metres.size - 300
    window = read_tiles_window([str(tile)], grid.crs.to_wkt(), grid.bounds, grid.res[0])
    np.testing.assert_array_equal(window.data, grid.data)


def test_smb_in_millimetres_is_refused(data_dir: Path, tmp_path: Path) -> None:
    folder = Path(reg.get_file("oggm-sample-data/benchmarks/south_glacier/dem_SouthGlacier.tif")).parent
    smb = Raster.from_file(folder / "mb_SouthGlacier.tif")  # m w.e./yr, -3.6 to +1.0
    assert physical_range_problem("smb", smb.data) is None
    mm = smb.with_data(smb.data * 1000).to_file(tmp_path / "mb_mm.tif")
    with pytest.raises(UnitError, match="mb_mm.tif: smb values reach 3,60"):
        estimate(folder / "dem_SouthGlacier.tif", folder / "SouthGlacier.shp", tmp_path / "out", smb=mm, maps=False,
                 config=EstimateConfig(ensemble=1))
    assert "cm/yr" in physical_range_problem("vx", np.array([0.0, 25000.0]))


def test_an_image_is_not_a_dem_and_extra_bands_are_named(hef, tmp_path: Path, caplog) -> None:
    metres, profile = hef
    shade = _write(tmp_path / "hillshade.tif", hef, np.clip((metres - 2000) / 10, 0, 255), dtype="uint8")
    with pytest.raises(UnitError, match="hillshade.tif: uint8 pixels cannot hold elevations"):
        read_dem(shade)
    with pytest.raises(UnitError, match="hillshade.tif: uint8"):
        estimate(tmp_path, reg.get_file(HEF_OUTLINE), tmp_path / "out", maps=False)  # a folder of tiles
    with rasterio.open(tmp_path / "two.tif", "w", **dict(profile, count=2, dtype="float32")) as dst:
        dst.write(np.stack([metres, metres * 0]).astype("float32"))
    (tmp_path / "hillshade.tif").unlink()
    with caplog.at_level("WARNING"):
        np.testing.assert_allclose(read_dem(tmp_path / "two.tif").data, read_dem(reg.get_file(HEF_DEM)).data)
    assert "2 bands; band 1 is read as the DEM" in caplog.text


def test_a_dem_in_metres_labelled_as_degrees_is_named(data_dir: Path, tmp_path: Path) -> None:
    with rasterio.open(data_dir / "nz-canterbury-25m" / "dem.tif") as src:  # NZTM metres
        profile, values = dict(src.profile, crs="EPSG:4326"), src.read(1)
    with rasterio.open(tmp_path / "labelled_wgs84.tif", "w", **profile) as dst:
        dst.write(values, 1)
    outlines = data_dir / "nz-canterbury-25m" / "glaciers.gpkg"
    for dem in (tmp_path / "labelled_wgs84.tif", tmp_path):  # one file (a PROJ traceback before), a folder of tiles
        result = CliRunner().invoke(app, ["estimate", "--dem", str(dem), "--outlines", str(outlines),
                                          "--out", str(tmp_path / "out"), "--no-maps"])
        assert result.exit_code == 2 and "cannot be degrees" in result.output, result.output


def test_a_rotated_grid_is_named(data_dir: Path, tmp_path: Path) -> None:
    """A geotransform with rotation terms ended in an IndexError traceback."""
    folder = Path(reg.get_file("oggm-sample-data/benchmarks/south_glacier/dem_SouthGlacier.tif")).parent
    with rasterio.open(folder / "dem_SouthGlacier.tif") as src:
        profile, values = dict(src.profile), src.read(1)
    profile["transform"] = profile["transform"] * rasterio.Affine.rotation(20)
    with rasterio.open(tmp_path / "rotated.tif", "w", **profile) as dst:
        dst.write(values, 1)
    result = CliRunner().invoke(app, ["estimate", "--dem", str(tmp_path / "rotated.tif"), "--outlines",
                                      str(folder / "SouthGlacier.shp"), "--out", str(tmp_path / "out"), "--no-maps"])
    assert result.exit_code == 2 and "rotated.tif: its grid is rotated" in result.output, result.output
