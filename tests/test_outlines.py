"""Outlines on the real kit: rasterized areas, divides, repair, formats and errors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio.transform
import shapely
from scipy import ndimage

from glacierbed.data import registry as reg
from glacierbed.data.outlines import (check_overlap, overlapping_outlines, rasterize_ids, rasterize_mask, read_outlines,
                                      term_type, warn_overlapping)
from glacierbed.data.raster_io import Raster
from glacierbed.data.rasters import read_dem
from glacierbed.core.errors import CorruptFileError, EmptySelectionError, MissingCRSError, NoOverlapError

HEF = "oggm-sample-data/test-files/Hintereisferner_RGI6.shp"


@pytest.fixture(scope="module")
def oetztal(data_dir: Path):
    ex = reg.get_example("oetztal")
    return read_outlines(ex.outlines), read_dem(ex.dem, resolution=50.0)


def test_rasterized_areas_match_rgi(oetztal) -> None:
    outlines, dem = oetztal
    assert len(outlines) == 20 and outlines["rgi_id"].str.startswith("RGI50-11.").all()
    ids = rasterize_ids(outlines, dem)
    area_km2 = np.bincount(ids.ravel(), minlength=len(outlines) + 1)[1:] * dem.pixel_area_m2 / 1e6
    rel = (area_km2 - outlines["area_km2"].to_numpy()) / outlines["area_km2"].to_numpy()
    assert np.abs(rel).max() < 0.03  # every glacier (0.34-16.6 km²) within 3 % at 50 m
    assert abs(area_km2.sum() / outlines["area_km2"].sum() - 1) < 0.005
    assert rasterize_mask(outlines, dem).sum() == (ids > 0).sum()


def test_touching_glaciers_stay_apart(oetztal) -> None:
    outlines, dem = oetztal
    ids = rasterize_ids(outlines, dem)
    assert set(np.unique(ids)) == set(range(len(outlines) + 1))  # each glacier keeps its own id
    g = outlines.to_crs(dem.crs).geometry
    # pairs sharing a divide longer than 500 m (10 pixels): width-2 m overlap of 1 m buffers
    divide_m = {(i, j): g.iloc[i].buffer(1.0).intersection(g.iloc[j].buffer(1.0)).area / 2.0
                for i in range(len(g)) for j in range(i + 1, len(g))}
    pairs = [p for p, length in divide_m.items() if length > 500.0]
    assert len(pairs) >= 5  # the Ötztal set shares many divides
    for i, j in pairs:
        grown = ndimage.binary_dilation(ids == i + 1)
        shared = grown & (ids == j + 1)  # j's pixels right next to i's: a divide, not a merge
        assert shared.any(), (outlines.rgi_id[i], outlines.rgi_id[j])


def test_invalid_bowtie_is_repaired(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[10.0, 46.0], [10.02, 46.02], [10.02, 46.0], [10.0, 46.02], [10.0, 46.0]]]}
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"RGIId": "RGI60-11.99999", "Area": 1.0}, "geometry": bowtie}]}
    path = tmp_path / "bowtie.geojson"
    path.write_text(json.dumps(fc))
    assert not shapely.from_geojson(json.dumps(bowtie)).is_valid
    with caplog.at_level(logging.WARNING):
        g = read_outlines(path)
    assert "repairing 1 invalid" in caplog.text
    geom = g.geometry.iloc[0]
    assert geom.is_valid and geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    assert geom.area == pytest.approx(0.5 * 0.02 * 0.02, rel=1e-6)  # two triangles, half the box


def test_rgi7_columns_and_formats(data_dir: Path, tmp_path: Path) -> None:
    rgi6 = read_outlines(reg.get_file(HEF))
    assert rgi6.rgi_id[0] == "RGI60-11.00897" and rgi6.name[0] == "Hintereisferner"
    raw = gpd.read_file(reg.get_file(HEF))
    rgi7 = raw[["geometry"]].assign(rgi_id=raw["RGIId"], area_km2=raw["Area"], glac_name="Hintereisferner")
    for ext in ("geojson", "gpkg"):
        rgi7.to_file(tmp_path / f"hef.{ext}")
        g = read_outlines(tmp_path / f"hef.{ext}")
        assert g.rgi_id[0] == "RGI60-11.00897" and g.name[0] == "Hintereisferner"
        assert g.area_km2[0] == pytest.approx(rgi6.area_km2[0])
        assert g.to_crs(32632).area[0] / 1e6 == pytest.approx(rgi6.area_km2[0], rel=0.01)


def test_geopackage_kit_outlines(data_dir: Path) -> None:
    ex = reg.get_example("nz-canterbury")
    g = read_outlines(ex.outlines)
    assert g.crs.to_epsg() == 2193 and len(g) == 9 and g.rgi_id.str.startswith("RGI60-18.").all()
    assert g.area.sum() / 1e6 == pytest.approx(25.98, abs=0.01)  # NZTM area, kit README
    assert g.area_km2.sum() == pytest.approx(25.98, rel=0.01)  # RGI's own Area attribute
    assert np.allclose(g.area / 1e6, g.area_km2, rtol=0.05)
    checked = check_overlap(g, read_dem(ex.dem))
    assert checked.inside_dem.all()


def test_missing_prj(data_dir: Path, tmp_path: Path) -> None:
    src = reg.get_file(HEF)
    for ext in (".shp", ".shx", ".dbf"):
        shutil.copyfile(src.with_suffix(ext), tmp_path / f"hef{ext}")
    with pytest.raises(MissingCRSError, match="hef.shp"):
        read_outlines(tmp_path / "hef.shp")


def test_outlines_far_from_dem(oetztal, data_dir: Path) -> None:
    _, dem = oetztal
    nz = read_outlines(reg.get_example("nz-canterbury").outlines)
    with pytest.raises(NoOverlapError, match="glaciers.gpkg"):
        check_overlap(nz, dem)


def test_partly_covered_glacier_flagged(oetztal, caplog) -> None:
    """Cut glaciers are warned about by name; glaciers entirely off the DEM are counted, not called
    "partly covered"."""
    import logging

    outlines, dem = oetztal
    g = outlines.to_crs(dem.crs)
    target = int(np.argmax(g.area))  # cut the largest glacier (Gepatschferner) in half
    x_cut = g.geometry.iloc[target].centroid.x
    col = int((x_cut - dem.transform.c) / dem.transform.a)
    east = dem.window(0, col, dem.shape[0], dem.shape[1] - col)
    with caplog.at_level(logging.INFO, logger="glacierbed.data.outlines"):
        checked = check_overlap(outlines, east)
    assert not checked.inside_dem.iloc[target]
    fully_east = g.geometry.bounds["minx"] > east.bounds[0]
    assert checked.inside_dem[fully_east].all()
    fully_west = g.geometry.bounds["maxx"] < east.bounds[0]
    assert fully_west.any()
    partly = next(r.getMessage() for r in caplog.records if "partly covered" in r.getMessage())
    assert g["rgi_id"].iloc[target] in partly
    assert not any(rid in partly for rid in g.loc[fully_west, "rgi_id"])
    assert any(f"{int(fully_west.sum())} of {len(g)} outlines lie entirely off the DEM" in r.getMessage()
               for r in caplog.records)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(EmptySelectionError, match="empty.geojson"):
        read_outlines(path)


SVALBARD_MASK = "svalbard-longyearbyen/glacier_mask_1990.tif"


def test_glacier_mask_raster_becomes_outlines(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The kit's Svalbard 1990 mask (1 = glacier, 255 = unknown): one outline per 8-connected patch,
    in the raster's CRS, that rasterises back onto the mask cell for cell."""
    import rasterio

    from glacierbed.data.rasters import Raster

    path = data_dir / SVALBARD_MASK
    with caplog.at_level(logging.WARNING):
        gdf = read_outlines(path)
    with rasterio.open(path) as src:
        mask, crs = src.read(1), src.crs
    assert gdf.crs == crs and gdf.crs.to_epsg() == 25833
    glacier = mask == 1
    labels, n = ndimage.label(glacier, structure=np.ones((3, 3), bool))
    sizes = ndimage.sum(glacier, labels, range(1, n + 1)) * 400.0 / 1e6  # 20 m cells, km²
    kept = sizes >= 0.01
    assert len(gdf) == int(kept.sum()) and gdf["rgi_id"].is_unique
    assert "dropping 1 glacier patches" in caplog.text  # the one sub-0.01 km² speck, named
    assert gdf["area_km2"].sum() == pytest.approx(sizes[kept].sum(), rel=1e-9)  # 70.43 km²
    assert list(gdf["area_km2"]) == sorted(gdf["area_km2"], reverse=True)
    grid = Raster.from_file(path)
    back = rasterize_mask(gdf, grid)
    assert np.array_equal(back, np.isin(labels, np.flatnonzero(kept) + 1))


def test_glacier_id_raster_and_bad_masks(tmp_path: Path) -> None:
    """A raster of glacier ids keeps touching glaciers apart; a DEM or an empty mask is refused by name."""
    import rasterio
    from rasterio.transform import from_origin

    def write(name: str, data: np.ndarray) -> Path:
        path = tmp_path / name
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                           dtype=data.dtype, crs="EPSG:32632", transform=from_origin(600000, 5200000, 50, 50)) as dst:
            dst.write(data, 1)
        return path

    ids = np.zeros((20, 20), np.uint16)
    ids[2:10, 2:10], ids[2:10, 10:18] = 7, 9  # two glaciers sharing a divide
    gdf = read_outlines(write("ids.tif", ids))
    assert sorted(gdf["rgi_id"]) == ["ids-7", "ids-9"]
    assert gdf["area_km2"].to_list() == pytest.approx([0.16, 0.16])
    with pytest.raises(CorruptFileError, match="dem.tif: not a glacier mask"):
        read_outlines(write("dem.tif", np.full((20, 20), 2500.5, np.float32)))
    with pytest.raises(EmptySelectionError, match="empty.tif"):
        read_outlines(write("empty.tif", np.zeros((20, 20), np.uint8)))


def test_repeated_and_missing_ids(data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Each glacier's results are named by its id: two Ötztal outlines given one RGI id stop with one line naming the
    file and the id (they overwrote each other's results before); an outline without an id is named by its row."""
    from glacierbed.core.errors import DuplicateIdError
    from glacierbed.data.outlines import as_outlines

    rgi = gpd.read_file(data_dir / "oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp")[["RGIId", "geometry"]].iloc[:3]
    twice = rgi.assign(RGIId=[rgi["RGIId"].iloc[0]] * 2 + [rgi["RGIId"].iloc[2]])
    twice.to_file(tmp_path / "twice.gpkg")
    with pytest.raises(DuplicateIdError, match=rf"twice.gpkg: 2 outlines share 1 id\(s\) \({rgi['RGIId'].iloc[0]}\)"):
        read_outlines(tmp_path / "twice.gpkg")
    with pytest.raises(DuplicateIdError, match="the outline GeoDataFrame"):
        as_outlines(twice.rename(columns={"RGIId": "rgi_id"}))
    rgi.assign(RGIId=[rgi["RGIId"].iloc[0], None, rgi["RGIId"].iloc[2]]).to_file(tmp_path / "noid.gpkg")
    with caplog.at_level(logging.WARNING):
        ids = read_outlines(tmp_path / "noid.gpkg")["rgi_id"].tolist()
    assert ids == [rgi["RGIId"].iloc[0], "glacier-00001", rgi["RGIId"].iloc[2]]
    assert "1 outlines have no id" in caplog.text


def test_terminus_type_from_rgi6_and_rgi7_columns(data_dir: Path) -> None:
    columbia = read_outlines(reg.get_file("oggm-sample-data/test-files/columbia_rgi/RGI60-01.10689.shp"))
    assert term_type(columbia, 0) == 1  # Columbia Glacier: marine-terminating (RGI 6 TermType)
    rgi7 = columbia.rename(columns={"TermType": "term_type"})
    assert term_type(rgi7, 0) == 1
    for value in (None, "not assigned", np.nan):  # missing or not a number: unknown, not an error
        rgi7["term_type"] = [value]
        assert term_type(rgi7, 0) is None
    assert term_type(columbia.drop(columns="TermType"), 0) is None


def test_outlines_that_are_not_polygons(data_dir: Path, tmp_path: Path, caplog) -> None:
    hef = gpd.read_file(reg.get_file("oggm-sample-data/test-files/Hintereisferner_RGI6.shp"))
    hef.assign(geometry=hef.geometry.boundary).to_file(tmp_path / "lines.gpkg")  # margins or centrelines
    with pytest.raises(CorruptFileError, match=r"lines.gpkg: no polygons \(1 MultiLineString\)"):
        read_outlines(tmp_path / "lines.gpkg")
    label = hef.to_crs(32632).geometry.centroid.to_crs(hef.crs).iloc[0]
    collection = shapely.GeometryCollection([hef.geometry.iloc[0], label])
    mixed = gpd.GeoDataFrame({"RGIId": ["RGI60-11.00897", "label"]}, geometry=[collection, label], crs=hef.crs)
    mixed.to_file(tmp_path / "mixed.geojson", driver="GeoJSON")
    with caplog.at_level(logging.WARNING):
        kept = read_outlines(tmp_path / "mixed.geojson")
    assert "dropping 1 Point" in caplog.text and list(kept["rgi_id"]) == ["RGI60-11.00897"]
    assert kept.geometry.iloc[0].geom_type in ("Polygon", "MultiPolygon")
    assert kept.to_crs(32632).area.iloc[0] == pytest.approx(hef.to_crs(32632).area.iloc[0], rel=1e-9)


def test_outlines_in_metres_labelled_as_degrees(data_dir: Path, tmp_path: Path) -> None:
    """The kit's New Zealand outlines came with a .prj claiming WGS 84 over NZTM metres (its README): named, not
    'none overlap the DEM'."""
    nz = gpd.read_file(data_dir / "nz-canterbury-25m" / "glaciers.gpkg")
    nz[["RGIId", "geometry"]].set_crs(4326, allow_override=True).to_file(tmp_path / "wrong_prj.shp")
    with pytest.raises(MissingCRSError, match=r"wrong_prj.shp: coordinates \(1421705, .* cannot be degrees"):
        read_outlines(tmp_path / "wrong_prj.shp")
    assert len(read_outlines(data_dir / "nz-canterbury-25m" / "glaciers.gpkg")) == 9


def test_overlapping_outlines_are_found_and_the_smaller_keeps_the_pixels(data_dir: Path, tmp_path: Path,
                                                                         caplog) -> None:
    """The kit's RGI 11 outlines (made from the consensus' cells) hold RGI60-11.03642 wholly inside 03643: named,
    and rasterized so that the tributary keeps its pixels (no ice counted twice)."""
    alps = read_outlines(data_dir / "rgi11-alps" / "outlines.gpkg")
    pairs = overlapping_outlines(alps).set_index(["rgi_id_a", "rgi_id_b"])
    assert pairs.loc[("RGI60-11.03642", "RGI60-11.03643"), "fraction"] == pytest.approx(1.0, abs=1e-6)
    assert len(overlapping_outlines(read_outlines(reg.get_file("oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp")))) == 0  # RGI 5 Ötztal: none
    two = alps[alps["rgi_id"].isin(["RGI60-11.03642", "RGI60-11.03643"])].to_crs(32632)
    grid = Raster.from_array(np.zeros((400, 400)), rasterio.transform.from_origin(*two.total_bounds[[0, 3]], 50, 50),
                             32632)
    ids = rasterize_ids(two, grid)
    small = 1 + int(np.argmin(two.geometry.area.to_numpy()))
    assert (ids == small).sum() * 2500 / 1e6 == pytest.approx(two.geometry.area.min() / 1e6, rel=0.05)
    with caplog.at_level(logging.WARNING):
        warn_overlapping(two)
    assert "1 pairs of outlines overlap" in caplog.text and "RGI60-11.03642 / RGI60-11.03643 (100%)" in caplog.text
