"""GlaThiDa thickness grids: 23 real glaciers registered, read, and scored on their measured cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio

from glacierbed.evaluation.benchmark import GLATHIDA_BASELINES, consensus_constant_map, run_glathida_grids
from glacierbed.data import registry
from glacierbed.data.observations import match_points_to_glaciers, read_thickness_grid
from glacierbed.data.outlines import rasterize_ids, read_outlines
from glacierbed.data.rasters import read_dem
from glacierbed.core.errors import DataNotFoundError, EmptySelectionError, MissingCRSError
from glacierbed.evaluation.against_measurements import POOLED, evaluate_points, glacier_volumes
from glacierbed.evaluation.oggm_peer import oggm_version


@pytest.fixture(scope="module")
def grids(data_dir) -> pd.DataFrame:
    return registry.glathida_grids()


def test_listing_matches_kit(grids, data_dir):
    assert len(grids) == 23 == len(registry.GLATHIDA_GRID_IDS)
    assert set(grids["region"]) == {"01", "03", "04", "05", "11", "12"}
    assert (grids["example"] == "glathida-" + grids["rgi_id"]).all()
    assert all(name in registry.EXAMPLES for name in grids["example"])
    assert set(grids["location_tier"]) == {"A", "B", "C", "D"}
    assert grids["n_obs_cells"].between(221, 1049).all() and grids["dx_m"].between(19, 200).all()
    # only the glacier attached to the Greenland ice sheet has no consensus estimate
    assert grids.loc[grids["consensus_mean_thickness_m"].isna(), "rgi_id"].tolist() == ["RGI60-05.07772"]
    # the others' consensus volumes are the g2ti table's (Farinotti et al. 2019, vol_itmix_m3), and
    # the mean thickness is that volume over the glacier cells
    has = grids.dropna(subset=["consensus_volume_km3"]).set_index("rgi_id")
    np.testing.assert_allclose(has["consensus_volume_km3"], registry.consensus_volumes_km3().loc[has.index], rtol=1e-4)
    np.testing.assert_allclose(has["consensus_mean_thickness_m"], has["consensus_volume_km3"] * 1e9
                               / (has["glacier_cells"] * has["dx_m"] ** 2), rtol=1e-3)
    on_disk = sorted(p.name for p in (data_dir / "glathida-grids").glob("RGI60-*"))
    assert on_disk == list(grids["rgi_id"])


@pytest.mark.parametrize("rgi_id", registry.GLATHIDA_GRID_IDS)
def test_grid_loads_and_cells_are_observations(rgi_id: str, grids: pd.DataFrame):
    meta = grids.set_index("rgi_id").loc[rgi_id]
    ex = registry.get_example(f"glathida-{rgi_id}")
    assert ex.extras["meta"].name == "meta.json"
    dem, outlines = read_dem(ex.dem), read_outlines(ex.outlines)
    cells = read_thickness_grid(ex.observations)
    assert len(cells) == meta["n_obs_cells"]
    assert cells.crs.is_projected and dem.crs.is_projected and cells.crs.axis_info[0].unit_name == "metre"
    assert dem.shape == (meta["rows"], meta["cols"]) and dem.res == (meta["dx_m"], meta["dx_m"])
    assert cells.attrs["shape"] == dem.shape and cells.attrs["dx_m"] == meta["dx_m"]
    assert outlines["rgi_id"].tolist() == [rgi_id]
    # every observed cell is inside the outline, and on a glacier cell of the DEM grid
    assert match_points_to_glaciers(cells, outlines)["rgi_id"].eq(rgi_id).all()
    ids = rasterize_ids(outlines, dem)
    assert (ids[cells["row"], cells["col"]] == 1).all()
    assert int((ids > 0).sum()) == meta["glacier_cells"]
    assert cells["thickness_m"].min() >= 0
    assert cells["thickness_m"].mean() == pytest.approx(meta["mean_obs_thickness_m"], abs=0.01)


def test_scoring_uses_exactly_the_observed_cells(data_dir):
    ex = registry.get_example("glathida-RGI60-11.00746")
    dem, outlines, cells = read_dem(ex.dem), read_outlines(ex.outlines), read_thickness_grid(ex.observations)
    with rasterio.open(ex.observations) as src:  # the measured grid itself, 0 on unmeasured ice
        truth = dem.with_data(np.nan_to_num(src.read(1), nan=0.0))
    table, per_cell = evaluate_points(truth, cells, outlines)
    pooled = table[table["rgi_id"] == POOLED].iloc[0]
    assert pooled["n"] == len(cells) == 269 and pooled["rmse"] == 0 and pooled["n_outside_outlines"] == 0
    # the consensus as a constant map: the error is that constant minus each observation
    consensus = registry.glathida_grid_meta("RGI60-11.00746")["consensus_mean_thickness_m"]
    h = consensus_constant_map(dem, outlines, consensus)
    table, _ = evaluate_points(h, cells, outlines)
    assert table["bias"].iloc[0] == pytest.approx(consensus - cells["thickness_m"].mean(), abs=1e-3)
    # and its volume is the glacier's consensus volume in the kit's g2ti table (Farinotti et al.
    # 2019 vol_itmix_m3 of Gepatschferner: 1.817 km3), not a number derived from the map itself
    g2ti_km3 = registry.consensus_volumes_km3().loc["RGI60-11.00746"]
    assert g2ti_km3 == pytest.approx(1.817, abs=5e-4)
    assert glacier_volumes(h, outlines)["volume_km3"].sum() == pytest.approx(g2ti_km3, rel=2e-4)


def test_consensus_volumes_bad_file(tmp_path, monkeypatch):
    """A consensus table that is not the g2ti HDF5, or lacks its volume column, stops with one line naming the file."""
    from glacierbed.core.errors import CorruptFileError
    from glacierbed.data import examples

    not_hdf = tmp_path / "rgi62_itmix_df.h5"
    not_hdf.write_text("not an HDF5 file")
    monkeypatch.setattr(examples, "get_file", lambda rel: not_hdf)
    with pytest.raises(CorruptFileError, match="rgi62_itmix_df.h5: not the g2ti volume table"):
        examples.consensus_volumes_km3()
    other = tmp_path / "other.h5"
    pd.DataFrame({"area_km2": [1.0]}, index=["RGI60-11.00001"]).to_hdf(other, key="df")
    monkeypatch.setattr(examples, "get_file", lambda rel: other)
    with pytest.raises(CorruptFileError, match="other.h5: no vol_itmix_m3 column"):
        examples.consensus_volumes_km3()


def test_read_thickness_grid_errors(tmp_path, data_dir):
    ex = registry.get_example("glathida-RGI60-11.01962")
    with rasterio.open(ex.observations) as src:
        profile, data = src.profile, src.read(1)
    empty = tmp_path / "empty.tif"
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.full_like(data, np.nan), 1)
    with pytest.raises(EmptySelectionError, match="empty.tif"):
        read_thickness_grid(empty)
    lonlat = tmp_path / "lonlat.tif"
    with rasterio.open(lonlat, "w", **{**profile, "crs": "EPSG:4326",
                                       "transform": rasterio.transform.from_origin(10, 47, 0.001, 0.001)}) as dst:
        dst.write(data, 1)
    with pytest.raises(MissingCRSError, match="lonlat.tif.*not metric"):
        read_thickness_grid(lonlat)


def test_case_on_one_glacier(data_dir):
    methods = ["va_shaped", "glabtop", "consensus_mean"] + (["oggm"] if oggm_version() else [])
    res = run_glathida_grids(glaciers=["RGI60-11.01962"], methods=methods)
    m = res.metrics.set_index("method")
    assert list(m.index) == methods and (m["n"] == 226).all()
    assert m["status"].str.startswith(("ok", "constant map")).all()
    # the ratio is taken over the baselines only; the consensus is a peer, not a baseline
    base = m.loc[[x for x in methods if x in GLATHIDA_BASELINES]]
    assert base["rmse_ratio_to_best_baseline"].min() == 1 and (base["rmse_ratio_to_best_baseline"] >= 1).all()
    assert m.loc[m["best_baseline"].iloc[0], "rmse"] == base["rmse"].min()
    ratio = m.loc["consensus_mean", "rmse"] / base["rmse"].min()
    assert m.loc["consensus_mean", "rmse_ratio_to_best_baseline"] == pytest.approx(ratio)
    assert set(res.details["regions"]["region"]) == {"11"}
    pooled = res.details["pooled"].set_index("method")
    assert pooled.loc["va_shaped", "rmse"] == pytest.approx(m.loc["va_shaped", "rmse"])
    with pytest.raises(EmptySelectionError, match="RGI60-99.00001"):
        run_glathida_grids(glaciers=["RGI60-99.00001"])


def test_grid_folders_are_read_in_place_and_scored_like_the_registered_ones(tmp_path, data_dir):
    """A folder of grids in the kit's layout (here two kit glaciers, linked): read in place with their meta.json;
    the baselines score exactly as on the registered grids; the default's rows, calibrated one included, are not
    scored because its network was fine-tuned on these two glaciers (by RGI id, wherever the files lie)."""
    from glacierbed.evaluation.benchmark import CALIBRATED_ROW

    for rgi_id in ("RGI60-11.01962", "RGI60-11.02600"):
        (tmp_path / "grids" / rgi_id).mkdir(parents=True)
        for f in ("surface.tif", "thickness.tif", "outline.gpkg", "meta.json"):
            (tmp_path / "grids" / rgi_id / f).symlink_to(data_dir / "glathida-grids" / rgi_id / f)
    folders = registry.grid_folders(tmp_path / "grids")
    assert list(folders["rgi_id"]) == ["RGI60-11.01962", "RGI60-11.02600"] and set(folders["region"]) == {"11"}
    assert folders["example"].isna().all() and folders["n_obs_cells"].tolist() == [226, 262]
    methods = ["va_shaped", "glabtop", "thickness-net + physics", CALIBRATED_ROW]
    here = run_glathida_grids(methods=methods, grids_dir=tmp_path / "grids").metrics.set_index(["rgi_id", "method"])
    kit = run_glathida_grids(methods=methods[:2], glaciers=list(folders["rgi_id"])).metrics
    for row in kit.itertuples():
        assert here.loc[(row.rgi_id, row.method), "rmse"] == pytest.approx(row.rmse, rel=1e-9)
    for rgi_id in folders["rgi_id"]:
        for method in methods[2:]:
            assert here.loc[(rgi_id, method), "status"].startswith("not scored: model thickness-net"), method
    for rgi_id in folders["rgi_id"]:  # without meta.json: the consensus from the g2ti table over the outline's area
        (tmp_path / "grids" / rgi_id / "meta.json").unlink()
    bare = registry.grid_folders(tmp_path / "grids").set_index("rgi_id")
    kit_meta = registry.glathida_grids(list(folders["rgi_id"])).set_index("rgi_id")
    np.testing.assert_allclose(bare["consensus_mean_thickness_m"], kit_meta["consensus_mean_thickness_m"], rtol=1e-3)
    assert (bare["dx_m"] == kit_meta["dx_m"]).all() and (bare["region"] == "11").all()
    (tmp_path / "grids" / "RGI60-11.02600" / "outline.gpkg").unlink()
    with pytest.raises(DataNotFoundError, match=r"RGI60-11.02600: missing outline.gpkg"):
        registry.grid_folders(tmp_path / "grids")
    with pytest.raises(EmptySelectionError, match="no grid folder RGI60-13.00001"):
        registry.grid_folders(tmp_path / "grids", ["RGI60-13.00001"])


def test_the_calibrated_row_is_what_glacierbed_estimate_gives_on_a_glacier_never_fitted(tmp_path, data_dir):
    """On a real glacier the default was never fine-tuned nor calibrated on, the benchmark's calibrated row is
    scored and holds the volume `glacierbed estimate` reports (network, physics and the shipped calibration)."""
    from typer.testing import CliRunner

    from glacierbed.cli import app
    from glacierbed.data.examples import read_case_inputs
    from glacierbed.evaluation.benchmark import CALIBRATED_ROW, run_methods

    dem, outlines, _ = read_case_inputs("rgi11-alps-RGI60-11.00068")
    outlines = outlines[outlines["rgi_id"] == "RGI60-11.00068"]
    maps = run_methods(dem, outlines, with_oggm=False, only=["thickness-net + physics", CALIBRATED_ROW],
                       measured=True)
    assert maps[CALIBRATED_ROW].status == "ok" and maps["thickness-net + physics"].status == "ok"
    calibrated = glacier_volumes(maps[CALIBRATED_ROW].thickness, outlines)["volume_km3"].sum()
    raw = glacier_volumes(maps["thickness-net + physics"].thickness, outlines)["volume_km3"].sum()
    assert calibrated != pytest.approx(raw, rel=1e-3)  # the calibration changes the volume
    outlines.to_file(tmp_path / "one.gpkg")
    res = CliRunner().invoke(app, ["estimate", "--dem", str(dem.to_file(tmp_path / "dem.tif")),
                                   "--outlines", str(tmp_path / "one.gpkg"),
                                   "--out", str(tmp_path / "est")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "est" / "glaciers.csv")
    assert table["volume_km3"].sum() == pytest.approx(calibrated, rel=1e-3)


def test_a_calibration_fitted_on_a_glacier_is_not_scored_on_it() -> None:
    """The calibrated row's own guard (a network never fine-tuned, e.g. the previous default, can still carry a
    calibration fitted on the kit's glaciers): refused on a glacier in its fit (RGI 5 ids compared as RGI 6), scored on
    others, refused everywhere when the glaciers are unnamed, and refused without a calibration."""
    from types import SimpleNamespace

    from glacierbed.evaluation.methods import _calibration_unscorable

    cal = SimpleNamespace(trained_on={"glaciers": ["RGI60-11.00897", "RGI60-01.16195"]})
    pred = SimpleNamespace(name="stage0", calibration=cal, calibration_path="x.calibration.json")
    assert "fitted on the measured thickness of 1 glacier(s) here (RGI60-11.00897)" in \
        _calibration_unscorable(pred, {"RGI60-11.00897", "RGI60-13.00001"})
    assert _calibration_unscorable(pred, {"RGI60-13.00001"}) == ""
    assert "2 glacier(s)" in _calibration_unscorable(pred, None)
    assert _calibration_unscorable(SimpleNamespace(calibration_path=None), set()).startswith("no calibration")
