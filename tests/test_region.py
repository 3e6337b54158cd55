"""A region of simulated glaciers: rasters on one grid, dem = bed + ice, outlines = the glaciers' pixels, resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from typer.testing import CliRunner

from glacierbed.core.config import config_to_yaml
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import NODATA, Raster
from glacierbed.core.errors import DataNotFoundError, EmptySelectionError
from glacierbed.simulation.synthetic_region import RegionConfig, block_glaciers, build_region, label_polygons
from glacierbed.simulation.ice_flow import SimulationConfig

#: a short simulation on 48 px blocks: ~10 s for the four blocks without torch.compile
TINY = RegionConfig(block=48, batch=4, min_relief_m=300.0,
                    simulation=SimulationConfig(max_years=300.0, compile=False, coarse_levels=1))


@pytest.fixture(scope="module")
def crop(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 96 x 100 px crop of the Ticino tile, its top-left corner nodata (a lost block, not a void)."""
    with rasterio.open(data_dir / "alps-topography-200m" / "topg-ticino.tif") as src:
        win = rasterio.windows.Window(150, 200, 100, 96)
        data = src.read(1, window=win).astype(np.float32)
        r = Raster.from_array(data, src.window_transform(win), src.crs.to_wkt())
    r.data[:6, :6] = np.nan
    return r.to_file(tmp_path_factory.mktemp("crop") / "topg-crop.tif")


@pytest.fixture(scope="module")
def region(crop: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("region")
    return out, build_region([crop], out, TINY).summary


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), dict(crs=src.crs, transform=src.transform, nodata=src.nodata, dtype=src.dtypes[0],
                                 shape=src.shape)


def test_rasters_share_one_grid_and_dem_is_bed_plus_ice(region: tuple[Path, dict]) -> None:
    out, summary = region
    (dem, g_dem), (bed, g_bed), (thick, g_thick) = (_read(out / f"{n}.tif") for n in ("dem", "bed", "thickness"))
    assert g_dem == g_bed == g_thick
    assert g_dem["crs"].to_epsg() == 32632 and g_dem["nodata"] == NODATA and g_dem["dtype"] == "float32"
    assert g_dem["shape"] == (96, 100)
    valid = bed != NODATA
    assert ((dem != NODATA) == valid).all() and ((thick != NODATA) == valid).all() and (~valid).sum() == 36
    np.testing.assert_array_equal(dem[valid], bed[valid] + thick[valid])  # float32, exactly
    assert (thick[valid] >= 0).all() and (thick[valid] > 0).any()
    assert summary["blocks"]["simulated"] == 3 and summary["blocks"]["skipped"] == {"nodata": 1}


def test_outlines_cover_exactly_the_ice(region: tuple[Path, dict]) -> None:
    out, summary = region
    g = gpd.read_file(out / "outlines.gpkg")
    truth = pd.read_csv(out / "truth.csv")
    thick = Raster.from_file(out / "thickness.tif")
    assert list(g.columns[:3]) == ["rgi_id", "name", "area_km2"] and g["rgi_id"].is_unique
    assert all(re.fullmatch(r"SIM-crop-\d{5}", i) for i in g["rgi_id"])
    assert len(g) == len(truth) == summary["n_glaciers"] >= 3 and (g["rgi_id"] == truth["rgi_id"]).all()
    ids = rasterize_ids(g, thick)  # pixel centres, as estimate does
    ice = np.nan_to_num(thick.data) > 0
    assert ((ids > 0) == ice).all()  # 0 outside the outlines, > 0 inside
    px_area = 200.0**2
    n_px = np.bincount(ids.ravel(), minlength=len(g) + 1)[1:]
    np.testing.assert_array_equal(n_px, np.round(g["area_km2"] * 1e6 / px_area))  # no overlaps, no gaps
    np.testing.assert_allclose(g.geometry.area / 1e6, g["area_km2"], rtol=1e-9)
    vol = np.bincount(ids.ravel(), weights=np.nan_to_num(thick.data).ravel(), minlength=len(g) + 1)[1:]
    np.testing.assert_allclose(vol * px_area / 1e9, truth["volume_km3"], rtol=1e-5)
    assert (g["area_km2"] >= TINY.min_basin_km2).all()
    assert summary["glacier_area_km2"] == pytest.approx(g["area_km2"].sum())


def test_build_resumes_from_the_cli(region: tuple[Path, dict], crop: Path) -> None:
    """A second build (here through ``glacierbed region build`` and a YAML config) reuses every batch."""
    from glacierbed.cli import app

    out, summary = region
    parts = sorted((out / "blocks.parts").glob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in parts]
    before = Raster.from_file(out / "thickness.tif").data
    (out / "region.yaml").write_text(config_to_yaml(TINY))
    r = CliRunner().invoke(app, ["region", "build", "--out", str(out), "--tile", str(crop), "--config",
                                 str(out / "region.yaml")])
    assert r.exit_code == 0, r.output
    again = json.loads((out / "region.json").read_text())
    assert parts and [p.stat().st_mtime_ns for p in parts] == stamps
    assert again["blocks"]["batches_resumed"] == again["blocks"]["batches"] == summary["blocks"]["batches"]
    assert again["n_glaciers"] == summary["n_glaciers"]
    np.testing.assert_array_equal(Raster.from_file(out / "thickness.tif").data, before)


def test_block_glaciers_drop_small_ice_and_renumber() -> None:
    ids = np.zeros((10, 10), np.int16)
    ids[1:4, 1:4] = 2  # 9 px
    ids[6, 6] = 5  # 1 px: below the minimum
    ids[6:9, 1:3] = 7  # 6 px
    h = np.where(ids > 0, 50.0, 0.3).astype(np.float32)  # thin ice outside the glaciers
    labels, thick = block_glaciers(h, ids, 100.0, 0.05)  # 0.05 km2 = 5 px
    assert sorted(np.unique(labels)) == [0, 1, 2] and (labels[1:4, 1:4] == 1).all() and (labels[6:9, 1:3] == 2).all()
    assert (thick[labels == 0] == 0).all() and (thick[labels > 0] == 50.0).all()


def test_label_polygons_rasterize_back_to_the_labels() -> None:
    labels = np.zeros((8, 8), np.int32)
    labels[1, 1] = labels[2, 2] = 1  # touching only at a corner: one glacier, two pieces
    labels[4:7, 3:7] = 2
    grid = Raster.from_array(np.zeros((8, 8)), from_origin(1000.0, 5000.0, 100.0, 100.0), "EPSG:32632")
    polys = label_polygons(labels, grid.transform)
    assert polys[1].geom_type == "MultiPolygon" and polys[1].area == pytest.approx(2e4)
    g = gpd.GeoDataFrame({"rgi_id": ["a", "b"]}, geometry=[polys[1], polys[2]], crs="EPSG:32632")
    np.testing.assert_array_equal(rasterize_ids(g, grid), labels)


def test_bad_input_says_what_is_wrong(crop: Path, tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="neither an Alpine tile"):
        build_region(["atlantis"], tmp_path)
    with pytest.raises(ValueError, match="block = 8"):
        build_region([crop], tmp_path, TINY, block=8)
    with pytest.raises(EmptySelectionError, match="relief below"):
        build_region([crop], tmp_path, TINY, min_relief_m=1e5)
