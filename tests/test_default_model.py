"""The shipped default model end to end, as a user runs it: ``glacierbed estimate --example oetztal``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from glacierbed.evaluation import baselines
from glacierbed.pipeline import store as catalogue
from glacierbed.data.outlines import rasterize_ids, read_outlines
from glacierbed.data.rasters import Raster

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_default_records_every_training_stage_and_an_out_of_fold_calibration() -> None:
    """The default was fine-tuned in stages: its record's lineage starts from scratch and ends with
    these weights; its calibration is for these weights and was fitted on the fold networks'
    out-of-fold maps (a calibration fitted on the network's own maps of glaciers it saw would be
    too optimistic), on the same glaciers the network was fine-tuned on."""
    from glacierbed.models.thickness.records import measured_groups
    from glacierbed.posterior.calibration import Calibration

    weights = catalogue.shipped_weights(catalogue.THICKNESS_NET_FILE)
    record = json.loads(weights.with_suffix(".json").read_text())
    lineage = record["lineage"]
    assert lineage[0]["config"]["init_weights"] is None and lineage[-1]["weights_sha256"] == record["weights_sha256"]
    assert len({st["weights_sha256"] for st in lineage}) == len(lineage)  # every stage changed the weights
    cal = Calibration.load(catalogue.calibration_file(weights))
    cal.check_model_identity(record["weights_sha256"])
    assert "out-of-fold" in cal.meta["fitted_on"]
    assert set(cal.trained_on["glaciers"]) == set(measured_groups(record)) and len(cal.trained_on["glaciers"]) == 41


def test_measured_scores_of_the_default_are_refused_as_in_sample(data_dir: Path, tmp_path: Path) -> None:
    """The default saw every measured glacier of the kit: scoring it there is refused before
    anything runs, naming what to run instead; a network never fine-tuned on them is scored."""
    from glacierbed.core.errors import InSampleError
    from glacierbed.evaluation.measured_table import collect

    with pytest.raises(InSampleError,
                       match=r"fine-tuned on the measured thickness of 1 glacier\(s\) here \(RGI60-01.16195\).*out of fold"):
        collect(tmp_path, None, cases=("south-glacier",))
    assert not list(tmp_path.rglob("*.csv"))  # refused before any glacier ran


def test_benchmark_cases_score_the_baselines_and_not_the_default_network(data_dir: Path) -> None:
    """``glacierbed benchmark`` on a measured case with the default: every classical row is scored, the
    network's rows are not run and say why (in-sample)."""
    from glacierbed.evaluation.benchmark import run_case

    m = run_case("hintereisferner", with_oggm=False).metrics.set_index("method")
    assert (m.loc[["va_shaped", "glabtop", "biharmonic"], "status"] == "ok").all()
    assert m.loc[["va_shaped", "glabtop"], "volume_km3"].gt(0).all()
    for row in ("thickness-net", "thickness-net + physics"):
        assert m.loc[row, "status"].startswith("not scored: model thickness-net (52e266c26e22) was fine-tuned")
        assert not np.isfinite(m.loc[row, "volume_km3"])


def test_the_calibration_benchmark_refuses_the_default_in_one_line(data_dir: Path) -> None:
    """``benchmarks/calibration.py`` on the default (fine-tuned on its glaciers) stops with exit code 2 and
    one line naming the problem and what to run instead, not a traceback."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration.py"
    r = subprocess.run([sys.executable, str(script), "--no-loro", "--out", "/nonexistent"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model thickness-net (52e266c26e22) was fine-tuned on the measured thickness of 41")
    assert "out of fold" in last
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def oetztal_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from glacierbed.cli import app

    out = tmp_path_factory.mktemp("oetztal-default")
    r = CliRunner().invoke(app, ["estimate", "--example", "oetztal", "--out", str(out), "--no-maps"])
    assert r.exit_code == 0, r.output
    return out


def test_default_is_the_shipped_thickness_network() -> None:
    assert catalogue.DEFAULT == "thickness-net"
    weights = catalogue.shipped_weights(catalogue.THICKNESS_NET_FILE)
    record = json.loads(weights.with_suffix(".json").read_text())
    pred = catalogue.load_predictor(None)
    assert pred.identity == record["weights_sha256"] and weights.stat().st_size < 10e6  # weights <= 10 MB
    assert pred.calibration is not None  # fitted on the kit's measured glaciers (docs/calibration.md)


def test_every_glacier_has_a_physical_volume(oetztal_run: Path) -> None:
    table = pd.read_csv(oetztal_run / "glaciers.csv")
    summary = json.loads((oetztal_run / "summary.json").read_text())
    assert len(table) == 20 and (table["status"] == "ok").all()
    assert np.isfinite(table["volume_km3"]).all() and (table["volume_km3"] > 0).all()
    assert (table["volume_std_km3"] > 0).all() and (table["max_thickness_m"] < 1000).all()
    assert summary["model"] == catalogue.DEFAULT


def test_thickness_map_is_non_negative_and_zero_outside(oetztal_run: Path) -> None:
    thick = Raster.from_file(oetztal_run / "thickness.tif")
    ids = rasterize_ids(read_outlines(oetztal_run / "glaciers.gpkg"), thick)
    h = thick.data
    assert np.nanmin(h) >= 0
    assert np.all(np.isnan(h[ids == 0]) | (h[ids == 0] == 0))  # no ice outside the outlines
    with rasterio.open(oetztal_run / "thickness.tif") as src:
        assert src.crs is not None and src.nodata is not None


def test_total_matches_the_recorded_run_and_its_ratio_to_volume_area_scaling(oetztal_run: Path) -> None:
    """The Ötztal total within 5 % of the shipped default's recorded run
    (benchmarks/results/estimate_all_kit.csv: 5.54 km3 for the 20 glaciers with plastic margins, the physics default
    since 2026-12-06 (5.12 km3 with zero margins), 0.90x volume-area scaling's 6.16 km3), and so is its ratio to
    volume-area scaling on this run's own grid."""
    from glacierbed.evaluation.against_measurements import glacier_volumes

    recorded = pd.read_csv(RESULTS / "estimate_all_kit.csv").query("example == 'oetztal'")
    assert len(recorded) == 20 and recorded["volume_km3"].sum() == pytest.approx(5.54, abs=0.005)
    dem = Raster.from_file(oetztal_run / "inputs" / "dem.tif")
    outlines = read_outlines(oetztal_run / "glaciers.gpkg")
    va = glacier_volumes(baselines.volume_area_thickness(dem, outlines), outlines)["volume_km3"].sum()
    total = pd.read_csv(oetztal_run / "glaciers.csv")["volume_km3"].sum()
    assert total == pytest.approx(recorded["volume_km3"].sum(), rel=0.05)
    assert total / va == pytest.approx(recorded["volume_km3"].sum() / recorded["va_volume_km3"].sum(), rel=0.05)


def test_calibration_was_applied(oetztal_run: Path, data_dir: Path, tmp_path: Path) -> None:
    """The shipped run against the same glaciers with ``calibrate=False``: every glacier's volume
    is the calibration's fitted scale factor (0.952, thickness_net.calibration.json) times the
    uncalibrated one (its residual step only reshapes within a glacier), and the 1-sigma map is
    the calibrated sigma, not the network's own."""
    from glacierbed.data import registry
    from glacierbed.pipeline.estimate import EstimateConfig, estimate

    pred = catalogue.load_predictor(None)
    steps = json.loads(Path(pred.calibration_path).read_text())["steps"]
    factor = next(s["factor"] for s in steps if s["kind"] == "scale")
    assert factor == pytest.approx(0.952, abs=0.001)
    calibrated = pd.read_csv(oetztal_run / "glaciers.csv").set_index("rgi_id")
    assert (calibrated["calibrated"] == pred.calibration.name).all()
    small = ["RGI50-11.00684", "RGI50-11.00674", "RGI50-11.00663"]  # the three smallest: a quick rerun
    ex = registry.get_example("oetztal")
    raw = estimate(ex.dem, ex.outlines, tmp_path, config=EstimateConfig(calibrate=False), maps=False, select=small)
    plain = raw.glaciers.set_index("rgi_id")
    assert "calibrated" not in plain or plain["calibrated"].isna().all()
    np.testing.assert_allclose(calibrated.loc[small, "volume_km3"] / plain.loc[small, "volume_km3"], factor, rtol=1e-4)
    assert not np.allclose(calibrated.loc[small, "volume_std_km3"], plain.loc[small, "volume_std_km3"], rtol=0.01)
    std_cal, std_raw = Raster.from_file(oetztal_run / "thickness_std.tif"), Raster.from_file(raw.paths["thickness_std"])
    ids = rasterize_ids(read_outlines(oetztal_run / "glaciers.gpkg").set_index("rgi_id").loc[small].reset_index(),
                        std_cal)
    both = (ids > 0) & np.isfinite(std_cal.data) & np.isfinite(std_raw.data)
    assert both.sum() > 100 and np.abs(std_cal.data[both] - std_raw.data[both]).mean() > 1.0  # m


def test_shipped_network_beats_the_clipped_fill_on_unseen_simulated_glaciers(tmp_path: Path) -> None:
    """Glaciers simulated on New Zealand terrain (a range never used in training) at 100 m: the
    shipped network's thickness error is at most 0.6x that of the biharmonic fill clipped at the
    surface (issue 11's target; benchmarks/results/simulated_glaciers.md measures 0.11x)."""
    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.core.fill import biharmonic_fill
    from glacierbed.simulation.ice_flow import SimulationConfig
    from glacierbed.simulation.glacier_set import SimSource, SimulatedSet, SimulatedSetConfig, build_simulated_set

    src = SimSource(name="nz", dem=("nz-canterbury-25m/dem.tif",), outlines="nz-canterbury-25m/glaciers.gpkg",
                    resolutions_m=(100.0,), n_per_resolution=3, test=True)
    cfg = SimulatedSetConfig(sources=(src,), patch=64, batch=3, seed=1,
                             simulation=SimulationConfig(max_years=600.0, compile=False))
    build_simulated_set(cfg, tmp_path / "sim.npz")
    sims = SimulatedSet.load(tmp_path / "sim.npz")
    assert len(sims) >= 1
    net = catalogue.load_predictor("thickness-net")
    err_net, err_fill = [], []
    for i in range(len(sims)):
        ids = sims.ids[i].astype(np.int32)
        ice = ids > 0
        surface = sims.bed[i].astype(np.float64) + sims.thickness[i]
        members, _ = net.predict_maps(thickness_features(surface, ids, float(sims.res[i])), 8)
        fill = np.minimum(biharmonic_fill(surface, ice), surface)
        truth = sims.thickness[i][ice]
        err_net.append(members.mean(axis=0)[ice] - truth)
        err_fill.append((surface - fill)[ice] - truth)
    rmse = [float(np.sqrt(np.mean(np.concatenate(e) ** 2))) for e in (err_net, err_fill)]
    assert sum(e.size for e in err_net) > 200 and rmse[0] <= 0.6 * rmse[1], rmse
