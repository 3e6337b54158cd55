"""DEM tiles on the real kit (rgi11-alps: one small DEM per glacier, UTM zones 30-34 N):
the tile index, lazy windows, and `estimate --dem <folder>` equal to each glacier on its own DEM."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from glacierbed.cli import app
from glacierbed.data.rasters import Raster
from glacierbed.data.tiles import (build_tile_index, dem_paths, is_tiled, primary_tile, read_tiles_window,
                                   work_grid)
from glacierbed.pipeline.estimate import EstimateConfig, estimate

ALPS = "rgi11-alps"
#: Aletsch (50 m), Hintereisferner (zone 32), and glaciers in zones 33, 31 and 34
FIVE = ["RGI60-11.01450", "RGI60-11.00897", "RGI60-11.00001", "RGI60-11.03204", "RGI60-11.03238"]
NO_TILE = "RGI60-11.02822"  # its tile is left out of the folder


@pytest.fixture(scope="module")
def kit(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder of symlinks to the five glaciers' tiles and a GeoPackage of their six outlines."""
    root = tmp_path_factory.mktemp("tiles")
    (root / "dem").mkdir()
    for rid in FIVE:
        (root / "dem" / f"{rid}.tif").symlink_to(data_dir / ALPS / "dem" / f"{rid}.tif")
    g = gpd.read_file(data_dir / ALPS / "outlines.gpkg")
    g[g["RGIId"].isin(FIVE + [NO_TILE])].to_file(root / "outlines.gpkg", layer="outlines")
    return root / "dem", root / "outlines.gpkg"


def test_dem_inputs_and_routes(data_dir: Path, kit: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = kit
    files = dem_paths(folder)
    assert sorted(p.stem for p in files) == sorted(FIVE)
    assert is_tiled(folder) and is_tiled([files[0], files[1]]) and is_tiled(tmp_path / "mosaic.vrt")
    assert not is_tiled(files[0]) and not is_tiled([files[0]])
    assert len(dem_paths([files[0], folder])) == 6


def test_index_picks_each_glaciers_own_tile(data_dir: Path) -> None:
    """On the whole region's folder (neighbouring tiles overlap), each glacier's tile is its own."""
    index = build_tile_index(dem_paths(data_dir / ALPS / "dem"))
    assert len(index) == 3927 and index.crs.to_string() == "EPSG:4326"
    assert {int(rasterio.crs.CRS.from_wkt(c).to_epsg()) for c in index["crs"].unique()} == set(range(32630, 32635))
    g = gpd.read_file(data_dir / ALPS / "outlines.gpkg").set_index("RGIId")
    for rid in FIVE + [NO_TILE]:
        row = primary_tile(index, g.geometry[rid])
        assert Path(index["path"].iloc[row]).stem == rid
        grid = work_grid(index.iloc[row], g.geometry[rid])
        assert grid.crs == index["crs"].iloc[row] and grid.res == (50.0 if rid in ("RGI60-11.01450", NO_TILE) else 25.0)


def test_window_from_a_tile_in_another_zone_is_warped(data_dir: Path) -> None:
    """A zone-33 tile read onto a zone-32 grid: finite where it covers, close to a full reprojection."""
    tile = data_dir / ALPS / "dem" / "RGI60-11.00001.tif"
    src = Raster.from_file(tile)
    ref = src.reproject("EPSG:32632", 25.0)
    c, r = ref.shape[1] // 2, ref.shape[0] // 2
    x0, y1 = ref.transform @ (c - 10, r - 10)
    bounds = (x0, y1 - 500.0, x0 + 500.0, y1)
    win = read_tiles_window([str(tile)], ref.crs.to_wkt(), bounds, 25.0)
    expected = ref.data[r - 10:r + 10, c - 10:c + 10]
    assert win.shape == (20, 20) and win.crs == ref.crs
    both = np.isfinite(win.data) & np.isfinite(expected)
    assert both.sum() > 100 and (np.isfinite(win.data) == np.isfinite(expected)).mean() > 0.9
    diff = np.abs(win.data[both] - expected[both])  # two GDAL warps (approximate transformers, ~0.1 px)
    assert np.median(diff) < 0.5 and diff.max() < 5.0


def _run_cli(args: list[str]) -> None:
    res = CliRunner().invoke(app, ["estimate", *args])
    assert res.exit_code == 0, res.output


def test_folder_of_tiles_equals_each_glacier_on_its_own_dem(data_dir: Path, kit: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    folder, outlines = kit
    out = tmp_path / "tiled"
    _run_cli(["--dem", str(folder), "--outlines", str(outlines), "--out", str(out), "--ensemble", "1"])
    table = pd.read_csv(out / "glaciers.csv").set_index("rgi_id")
    assert (table.loc[FIVE, "status"] == "ok").all(), table[["status", "message"]]
    assert table.loc[NO_TILE, "status"] == "no_dem" and NO_TILE in table.loc[NO_TILE, "message"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_glaciers"] == 5 and summary["n_no_dem"] == 1 and len(summary["dem_tile_crs_counts"]) == 4
    with rasterio.open(out / "thickness.tif") as src:  # one mosaic, in the CRS most glaciers work in
        assert src.crs.to_epsg() == 32632 and src.res == (25.0, 25.0)
    for rid in FIVE:
        alone = estimate(data_dir / ALPS / "dem" / f"{rid}.tif", outlines, tmp_path / rid, select=[rid],
                         maps=False, config=EstimateConfig(ensemble=1)).glaciers.set_index("rgi_id")
        np.testing.assert_allclose(table.loc[rid, ["volume_km3", "volume_std_km3"]].astype(float),
                                   alone.loc[rid, ["volume_km3", "volume_std_km3"]].astype(float), rtol=1e-6)
        with rasterio.open(out / "glaciers" / rid / "thickness.tif") as a, \
                rasterio.open(tmp_path / rid / "glaciers" / rid / "thickness.tif") as b:
            assert a.crs == b.crs and a.transform == b.transform
    # a rerun resumes every glacier
    _run_cli(["--dem", str(folder), "--outlines", str(outlines), "--out", str(out), "--ensemble", "1"])
    status = pd.read_csv(out / "task_status.csv")
    assert len(status) == 5 and status["resumed"].all()
