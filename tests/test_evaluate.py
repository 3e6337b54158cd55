"""Evaluation metrics, point/glacier scoring, figures and the evaluate/benchmark commands."""

from __future__ import annotations

import numpy as np
import geopandas as gpd
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from glacierbed.evaluation import baselines
from glacierbed.evaluation import against_measurements as ev
from glacierbed.core import metrics
from glacierbed.evaluation import figures as plots
from glacierbed.cli import app
from glacierbed.data.observations import match_glathida_to_outlines, read_glathida_glaciers, read_points
from glacierbed.data.outlines import rasterize_ids, read_outlines
from glacierbed.data.rasters import read_dem


def test_error_metrics_by_hand():
    m = metrics.error_metrics(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), np.array([1.0, 1.0, 1.0, 1.0, 5.0]))
    assert m["n"] == 4
    assert m["rmse"] == pytest.approx(np.sqrt((0 + 1 + 4 + 9) / 4))
    assert m["mae"] == pytest.approx(1.5) and m["bias"] == pytest.approx(1.5)
    assert m["median_error"] == pytest.approx(1.5)
    assert np.isnan(m["r"])  # constant observations: no correlation defined
    assert m["rel_error_mean"] == pytest.approx((2.5 - 1.0) / 1.0)
    m = metrics.error_metrics(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    assert m["r"] == pytest.approx(-1.0) and m["bias"] == 0.0 and m["rmse"] == pytest.approx(np.sqrt(8 / 3))
    assert metrics.error_metrics(np.array([np.nan]), np.array([1.0]))["n"] == 0


def test_pooled_rmse_ratio_by_hand():
    """sqrt(sum sse / sum reference sse); a method with a fixed share of the reference's error on every unit has a
    zero-width interval; one unit that holds all the error makes the interval wide; bad input refused."""
    ref = np.array([100.0, 400.0, 25.0, 900.0])
    ratio, low, high = metrics.pooled_rmse_ratio(0.04 * ref, ref)  # 0.2 the RMSE on every unit
    assert ratio == pytest.approx(0.2) and low == pytest.approx(0.2) and high == pytest.approx(0.2)
    sse = np.array([0.0, 0.0, 0.0, 0.16 * 1425.0])  # the same pooled 0.4, all of it in one window
    ratio, low, high = metrics.pooled_rmse_ratio(sse, ref)
    assert ratio == pytest.approx(0.4) and low < 0.2 and high > 0.45
    with pytest.raises(ValueError, match="same units"):
        metrics.pooled_rmse_ratio(ref[:3], ref)
    with pytest.raises(ValueError, match="non-negative"):
        metrics.pooled_rmse_ratio(-ref, ref)


def test_paired_bootstrap_gap_by_hand():
    """Gap of the medians; a constant shift of every unit has a zero-width interval at the shift; a gap made by
    one glacier of five is not told apart from zero; unpaired or non-finite input refused."""
    ref = np.array([0.7, 0.8, 0.9, 1.0, 1.1])
    diff, low, high = metrics.paired_bootstrap_gap(ref + 0.05, ref)
    assert diff == pytest.approx(0.05) and low == pytest.approx(0.05) and high == pytest.approx(0.05)
    one = ref.copy()
    one[2] = 0.95  # the median glacier alone moves
    diff, low, high = metrics.paired_bootstrap_gap(one, ref)
    assert diff == pytest.approx(0.05) and low <= 0.0 < diff <= high
    median, low, high = metrics.paired_bootstrap_gap(ref)  # no reference: the median and its interval
    assert median == pytest.approx(0.9) and 0.7 <= low < 0.9 < high <= 1.1
    with pytest.raises(ValueError, match="same units"):
        metrics.paired_bootstrap_gap(ref, ref[:4])
    with pytest.raises(ValueError, match="finite"):
        metrics.paired_bootstrap_gap(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    # mean log ratio: every glacier 10 % worse is log(1.1) with a zero-width interval; one glacier's change of 0.05
    # moves it by log(0.95 / 0.9) / 5 however the others lie
    gap, low, high = metrics.paired_bootstrap_gap(1.1 * ref, ref, statistic="mean_log")
    assert gap == pytest.approx(np.log(1.1)) and low == pytest.approx(np.log(1.1)) and high == pytest.approx(np.log(1.1))
    gap, low, high = metrics.paired_bootstrap_gap(one, ref, statistic="mean_log")
    assert gap == pytest.approx(np.log(0.95 / 0.9) / 5) and low <= gap <= high
    with pytest.raises(ValueError, match="positive"):
        metrics.paired_bootstrap_gap(ref - 0.8, ref, statistic="mean_log")
    gap, low, high = metrics.paired_bootstrap_gap(np.array([3.0, -4.0]), np.array([1.0, 1.0]), statistic="rms")
    assert gap == pytest.approx(np.sqrt(12.5) - 1.0) and low <= gap <= high  # RMSE of the errors, paired
    with pytest.raises(ValueError, match="unknown statistic"):
        metrics.paired_bootstrap_gap(ref, ref, statistic="mode")


def test_share_nonpositive_and_relative_error():
    h = np.array([[0.0, -1.0, 5.0], [np.nan, 2.0, 0.0]])
    inside = np.array([[True, True, True], [True, True, False]])
    assert metrics.share_nonpositive(h, inside) == pytest.approx(2 / 4)
    assert metrics.relative_error(110.0, 100.0) == pytest.approx(0.1)
    assert np.isnan(metrics.relative_error(1.0, 0.0))


@pytest.fixture(scope="module")
def south(oggm_dir):
    d = oggm_dir / "benchmarks" / "south_glacier"
    return read_dem(d / "dem_SouthGlacier.tif"), read_outlines(d / "SouthGlacier.shp"), read_points(d / "IceThick_SouthGlacier.shp")


def test_evaluate_points_accounts_for_every_point(south):
    dem, outlines, points = south
    h = baselines.volume_area_thickness(dem, outlines, shaped=False)
    h.data[:, : h.shape[1] // 2] = np.nan  # half the map without prediction
    table, pp = ev.evaluate_points(h, points, outlines)
    pooled = table[table["rgi_id"] == ev.POOLED].iloc[0]
    assert pooled["n_points"] == len(points)
    assert pooled["n_used"] + pooled["n_outside_outlines"] + pooled["n_no_prediction"] == len(points)
    assert pooled["n_no_prediction"] > 0 and pooled["n_outside_outlines"] > 0
    used = pp[pp["status"] == "used"]
    assert pooled["n"] == len(used)
    assert pooled["bias"] == pytest.approx(used["pred"].mean() - used["obs"].mean())
    assert np.isfinite(used["pred"]).all() and pp.loc[pp["status"] == "no_prediction", "pred"].isna().all()
    # uniform map: predictions are the VA mean thickness, less only where bilinear
    # sampling near the margin mixes in the 0 outside
    mean_h = h.data[rasterize_ids(outlines, h) > 0]
    mean_h = float(mean_h[np.isfinite(mean_h)][0])
    assert used["pred"].median() == pytest.approx(mean_h, rel=1e-5)
    assert (used["pred"] <= mean_h + 1e-3).all() and (used["pred"] >= 0).all()


def test_shaped_va_beats_uniform_on_radar(south):
    """Thicker in the middle than at the margin is closer to the radar than a constant."""
    dem, outlines, points = south
    uni = ev.evaluate_points(baselines.volume_area_thickness(dem, outlines, shaped=False), points, outlines)[0]
    sha = ev.evaluate_points(baselines.volume_area_thickness(dem, outlines, shaped=True), points, outlines)[0]
    assert sha.loc[0, "r"] > uni.loc[0, "r"] and sha.loc[0, "rmse"] < uni.loc[0, "rmse"]


def test_glacier_means_oetztal(oggm_dir, data_dir):
    dem = read_dem(oggm_dir / "test-workflow" / "srtm_oetztal.tif")
    outlines = read_outlines(oggm_dir / "test-workflow" / "rgi" / "rgi_oetztal.shp")
    matches = match_glathida_to_outlines(read_glathida_glaciers(data_dir / "glathida" / "glacier.csv"), outlines)
    h = baselines.volume_area_thickness(dem, outlines, shaped=False)
    table, pooled = ev.evaluate_glacier_means(h, outlines, matches)
    assert len(table) == matches["rgi_id"].nunique() == pooled["n"]
    # uniform VA: mean thickness = V / grid area, glacier by glacier
    vol = baselines.va_volume_km3(baselines.outline_areas_km2(outlines, dem.crs))
    by_id = dict(zip(outlines["rgi_id"], vol))
    expected = table["rgi_id"].map(by_id) * 1e3 / table["grid_area_km2"]
    np.testing.assert_allclose(table["pred_mean_m"], expected, rtol=1e-4)
    assert pooled["rmse"] == pytest.approx(np.sqrt(np.mean(table["error_m"] ** 2)))
    vols = ev.glacier_volumes(h, outlines)
    assert (vols["share_nonpositive"].dropna() == 0).all()


def test_along_track_orders_shuffled_lines():
    rng = np.random.default_rng(0)
    x = np.r_[np.arange(0, 1000, 10.0), np.full(50, 5000.0)]
    y = np.r_[np.zeros(100), np.arange(0, 500, 10.0)]
    perm = rng.permutation(len(x))
    df = pd.DataFrame({"x": x[perm], "y": y[perm], "obs": 1.0, "pred": 1.0})
    out = plots.along_track(df)
    assert out["track"].nunique() == 2
    assert out.groupby("track")["distance_m"].max().sort_values().tolist() == pytest.approx([490.0, 990.0])
    line = out[out["x"] < 2000].sort_values("x")
    d = line["distance_m"].to_numpy()
    assert np.all(np.diff(d) > 0) or np.all(np.diff(d) < 0)
    assert out["on_profile"].all()


def test_evaluate_command(tmp_path, south, oggm_dir):
    dem, outlines, _ = south
    d = oggm_dir / "benchmarks" / "south_glacier"
    tif = baselines.glabtop_thickness(dem, outlines).to_file(tmp_path / "h.tif")
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--thickness", str(tif), "--obs", str(d / "IceThick_SouthGlacier.shp"),
                              "--outlines", str(d / "SouthGlacier.shp"), "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    metrics = pd.read_csv(tmp_path / "ev" / "metrics.csv")
    assert metrics.loc[metrics["rgi_id"] == ev.POOLED, "n_points"].iloc[0] == 9619
    for f in ("metrics.md", "scatter.png", "error_map.png", "profiles.png", "points.csv"):
        assert (tmp_path / "ev" / f).stat().st_size > 0
    res = runner.invoke(app, ["evaluate", "--thickness", str(tif), "--obs", str(tmp_path / "missing.shp")])
    assert res.exit_code == 2 and "missing.shp" in res.output


def test_evaluate_warns_when_the_estimating_network_was_fine_tuned_on_the_measurements(tmp_path, oggm_dir):
    """A map written by `glacierbed estimate` with the default network (fine-tuned on South Glacier's radar) is flagged
    in-sample; the same command on a classical method's map is not."""
    from glacierbed.pipeline.estimate import estimate

    d = oggm_dir / "benchmarks" / "south_glacier"
    args = ["--obs", str(d / "IceThick_SouthGlacier.shp"), "--outlines", str(d / "SouthGlacier.shp")]
    for model, flagged in ((None, True), ("biharmonic", False)):
        est = estimate(d / "dem_SouthGlacier.tif", d / "SouthGlacier.shp", tmp_path / f"est-{model}", model=model,
                       maps=False)
        res = CliRunner().invoke(app, ["evaluate", "--thickness", str(est.paths["thickness"]), *args,
                                       "--out", str(tmp_path / f"ev-{model}")])
        assert res.exit_code == 0, res.output
        metrics = pd.read_csv(tmp_path / f"ev-{model}" / "metrics.csv")
        assert ("in-sample" in res.output) == flagged and ("in_sample" in metrics) == flagged
        if flagged:
            assert metrics["in_sample"].all() and "RGI60-01.16195" in res.output
        # without --outlines: the glaciers come from the estimate's glaciers.csv (mosaic) or the map's rgi_id tag
        for tif in (est.paths["thickness"], tmp_path / f"est-{model}" / "glaciers" / "RGI60-01.16195" / "thickness.tif"):
            res = CliRunner().invoke(app, ["evaluate", "--thickness", str(tif), *args[:2],
                                           "--out", str(tmp_path / f"ev-{model}-bare")])
            assert res.exit_code == 0 and ("in-sample" in res.output) == flagged, res.output


def test_evaluate_refuses_points_whose_thickness_is_negative(tmp_path, south, oggm_dir):
    """Mostly negative values are a sign convention or elevations, not ice depth: one line, not a 159 m RMSE."""
    dem, outlines, _ = south
    d = oggm_dir / "benchmarks" / "south_glacier"
    points = gpd.read_file(d / "IceThick_SouthGlacier.shp")
    points.assign(thick=-points["thick"]).to_file(tmp_path / "negative.gpkg")
    tif = baselines.glabtop_thickness(dem, outlines).to_file(tmp_path / "h.tif")
    res = CliRunner().invoke(app, ["evaluate", "--thickness", str(tif), "--obs", str(tmp_path / "negative.gpkg"),
                                   "--out", str(tmp_path / "ev")])
    assert res.exit_code == 2 and "negative.gpkg: 9583 of 9619 points have negative thickness" in res.output


def test_benchmark_command_hintereisferner(tmp_path, oggm_dir):
    res = CliRunner().invoke(app, ["benchmark", "hintereisferner", "--model", "biharmonic", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    m = pd.read_csv(tmp_path / "hintereisferner_metrics.csv").set_index("method")
    assert {"va_uniform", "va_shaped", "glabtop", "biharmonic", "consensus"} <= set(m.index)
    # the reference volume, against the kit's consensus raster read independently (rasterio: sum x
    # pixel area = 0.5779 km3, g2ti's vol_itmix_m3); on the 75 m DEM grid inside the RGI 6 outline
    # it is 0.5720 km3 (benchmarks/results/validation_hintereisferner.csv), 1.0 % less
    with rasterio.open(oggm_dir / "test-files" / "consensus_composite" / "RGI60-11.00897_thickness.tif") as src:
        raw_km3 = float(np.nansum(src.read(1)) * abs(src.res[0] * src.res[1]) / 1e9)
    assert raw_km3 == pytest.approx(0.5779, abs=1e-4)
    cvol = m["consensus_volume_km3"].dropna().unique()
    assert len(cvol) == 1 and cvol[0] == pytest.approx(raw_km3, rel=0.015) and cvol[0] == pytest.approx(0.5720, abs=5e-4)
    assert m.loc["consensus", "volume_km3"] == pytest.approx(cvol[0], rel=1e-9)
    # VA's error against it: V = 0.034 A^1.375 of the outline's area (0.5966 km3 recorded, +4.3 %)
    area_km2 = read_outlines(oggm_dir / "test-files" / "Hintereisferner_RGI6.shp").to_crs(32632).area.iloc[0] / 1e6
    va_km3 = 0.034 * area_km2**1.375
    assert m.loc["va_uniform", "volume_km3"] == pytest.approx(va_km3, rel=1e-3)
    assert m.loc["va_uniform", "rel_error_volume_vs_consensus"] == pytest.approx(va_km3 / 0.5720 - 1, abs=2e-3)
    assert (m.loc[["va_uniform", "va_shaped", "glabtop"], "share_nonpositive"] == 0).all()
    res = CliRunner().invoke(app, ["benchmark", "atlantis", "--out", str(tmp_path)])
    assert res.exit_code == 2


def test_checklist_marks_failed_checks_in_bold() -> None:
    from glacierbed.evaluation.benchmark import checklist

    assert checklist({"grids lower": True, "SG <= 29 m": False}) == ["- grids lower: yes", "- SG <= 29 m: **no**"]


def test_metrics_print_as_a_short_table_with_long_statuses_as_notes(capsys, monkeypatch) -> None:
    """The terminal table: chosen columns only, 9,609 not 9.61e+03, NaN as a dash, a long status cut to its first
    clause with the full text once below (the files keep everything)."""
    from rich.console import Console

    from glacierbed.commands import common

    monkeypatch.setattr(common, "console", Console(stderr=True, width=100, force_terminal=False))
    why = "not scored: model x was fine-tuned on these glaciers; score it out of fold"
    df = pd.DataFrame([{"method": "va", "status": "ok", "n": 9609.0, "rmse": 37.69, "extra": 1.0},
                       {"method": "net", "status": why, "n": float("nan"), "rmse": float("nan"), "extra": 2.0},
                       {"method": "net + physics", "status": why, "n": float("nan"), "rmse": float("nan"), "extra": 3.0}])
    common.print_metrics(df)
    err = capsys.readouterr().err
    assert "9,609" in err and "37.7" in err and "extra" not in err and "–" in err
    assert err.count("not scored [1]") == 2 and err.count(why) == 1


def test_geometric_mean_and_gap_text_by_hand():
    """The geometric mean of ratios 1 and 4 is 2 (a NaN ratio left out); a gap is written with its interval as every
    report writes it."""
    from glacierbed.core.metrics import geometric_mean
    from glacierbed.evaluation.cross_validation import gap_text

    assert geometric_mean(np.array([1.0, 4.0, np.nan])) == pytest.approx(2.0)
    g = {"mean_log_gap": 0.0541, "mean_log_gap_low_90": 0.0062, "mean_log_gap_high_90": 0.1039}
    assert gap_text(g, "mean_log") == "+0.054 (+0.006 to +0.104)"
    assert gap_text(g, "mean_log", ", 90 %") == "+0.054 (+0.006 to +0.104, 90 %)"


def test_evaluate_command_on_a_measured_thickness_grid(tmp_path, data_dir):
    """A GlaThiDa grid as --obs: every observed cell scored once, on exactly its cell (the map shares the grid),
    so the CLI's RMSE and bias are those computed by hand from the two rasters; no along-track profile is drawn."""
    g = data_dir / "glathida-grids" / "RGI60-11.01962"
    dem, outlines = read_dem(g / "surface.tif"), read_outlines(g / "outline.gpkg")
    tif = baselines.glabtop_thickness(dem, outlines).to_file(tmp_path / "h.tif")
    res = CliRunner().invoke(app, ["evaluate", "--thickness", str(tif), "--obs", str(g / "thickness.tif"),
                                   "--outlines", str(g / "outline.gpkg"), "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    with rasterio.open(g / "thickness.tif") as o, rasterio.open(tif) as h:
        obs, pred = o.read(1, masked=True).filled(np.nan), h.read(1, masked=True).filled(np.nan)
        assert h.shape == o.shape and h.transform.almost_equals(o.transform)
    ok = np.isfinite(obs) & np.isfinite(pred)
    pooled = pd.read_csv(tmp_path / "ev" / "metrics.csv").set_index("rgi_id").loc[ev.POOLED]
    assert pooled["n_points"] == np.isfinite(obs).sum() == 226 and pooled["n"] == ok.sum()
    assert pooled["rmse"] == pytest.approx(np.sqrt(np.mean((pred - obs)[ok] ** 2)), rel=1e-6)
    assert pooled["bias"] == pytest.approx(np.mean((pred - obs)[ok]), rel=1e-6)
    assert (tmp_path / "ev" / "error_map.png").stat().st_size > 0 and not (tmp_path / "ev" / "profiles.png").exists()


def test_evaluate_refuses_a_thickness_grid_in_degrees(tmp_path, data_dir):
    g = data_dir / "glathida-grids" / "RGI60-11.01962"
    dem, outlines = read_dem(g / "surface.tif"), read_outlines(g / "outline.gpkg")
    tif = baselines.glabtop_thickness(dem, outlines).to_file(tmp_path / "h.tif")
    with rasterio.open(g / "thickness.tif") as src:
        profile = src.profile | {"crs": "EPSG:4326", "transform": rasterio.Affine(1e-3, 0, 7.0, 0, -1e-3, 46.0)}
        data = src.read(1)
    with rasterio.open(tmp_path / "degrees.tif", "w", **profile) as dst:
        dst.write(data, 1)
    res = CliRunner().invoke(app, ["evaluate", "--thickness", str(tif), "--obs", str(tmp_path / "degrees.tif"),
                                   "--out", str(tmp_path / "ev")])
    assert res.exit_code == 2 and "degrees.tif: thickness grid CRS" in res.output and "not metric" in res.output


def test_evaluate_refuses_a_dem_given_as_the_thickness_map(tmp_path, oggm_dir):
    d = oggm_dir / "benchmarks" / "south_glacier"
    res = CliRunner().invoke(app, ["evaluate", "--thickness", str(d / "dem_SouthGlacier.tif"),
                                   "--obs", str(d / "IceThick_SouthGlacier.shp"), "--out", str(tmp_path / "ev")])
    assert res.exit_code == 2 and "dem_SouthGlacier.tif: median value 2," in res.output, res.output


def test_a_map_calibrated_on_the_glaciers_scored_is_in_sample(tmp_path, monkeypatch) -> None:
    """A network never fine-tuned whose map was calibrated by a calibration fitted on the glacier scored: in-sample;
    the same map uncalibrated is not."""
    import json
    from types import SimpleNamespace

    import glacierbed.pipeline.store as store
    from glacierbed.evaluation.in_sample import estimate_in_sample

    cal = SimpleNamespace(trained_on={"glaciers": ["RGI60-11.00897"]})
    monkeypatch.setattr(store, "load_predictor", lambda name: SimpleNamespace(name="stage0", identity="abc", record={},
                                                                              calibration=cal))
    ids = ["RGI50-11.00897", "RGI60-11.00001"]
    (tmp_path / "summary.json").write_text(json.dumps({"model": "stage0", "model_identity": "abc+calibration:f00"}))
    assert estimate_in_sample(tmp_path / "thickness.tif", ids) == ("stage0", ["RGI60-11.00897"])
    (tmp_path / "summary.json").write_text(json.dumps({"model": "stage0", "model_identity": "abc"}))
    assert estimate_in_sample(tmp_path / "thickness.tif", ids) == ("stage0", [])
