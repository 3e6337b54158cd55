"""Benchmark scripts' summaries and oracle bounds (inpainting, window consistency, error budget), checked
against hand-computed values."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    """A benchmark script of ``benchmarks/`` loaded as a module (they are not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_network_summary_ranks_only_groups_with_enough_patches():
    bench = _script("inpainting")
    rows = [("a@50m", "glacier", 40, 0.70), ("a@50m", "box", 40, 0.90), ("b@30m", "glacier", 12, 1.10),
            ("b@30m", "box", 12, 0.80), ("c@100m", "glacier", 3, 0.10),  # too few patches: not ranked
            ("peru@90m (unseen range)", "glacier", 20, 1.02), ("peru@90m (unseen range)", "box", 20, 0.95)]
    df = pd.DataFrame([dict(set=s, holes=h, n_patches=n, method="network", ratio_to_best_classical=r)
                       for s, h, n, r in rows]
                      + [dict(set="a@50m", holes="glacier", n_patches=40, method="biharmonic",
                              ratio_to_best_classical=1.0)])
    summary = bench.network_summary(df).loc["network"]
    ranked = [0.70, 0.90, 1.10, 0.80, 1.02, 0.95]  # median of six = mean of 0.90 and 0.95
    assert summary["median ratio"] == round(sorted(ranked)[2] / 2 + sorted(ranked)[3] / 2, 3) == 0.925
    assert summary["worst ratio"] == 1.10
    assert summary["groups ≤ 0.8×"] == "2 of 6"
    assert summary["unseen glacier"] == 1.02 and summary["unseen box"] == 0.95


def test_oracle_bounds_remove_smooth_error_and_keep_fine_structure():
    """A fill error of +30 m everywhere plus a ±10 m checkerboard: the constant-shift oracle
    leaves exactly the checkerboard (10 m RMSE); a smooth-part oracle at a scale of many pixels
    leaves about the same."""
    bound = _script("inpainting_bound")
    n = 64
    inside = np.zeros((n, n), bool)
    inside[16:48, 16:48] = True
    checker = np.where((np.add.outer(np.arange(n), np.arange(n)) % 2) == 0, 10.0, -10.0)
    truth = np.zeros((n, n))
    base = (30.0 + checker) / bound.OUT_SCALE_M  # fill - truth, in the network's output units
    sample = {"base": base, "truth": truth, "weight": inside.astype(np.float32), "res": np.float32(100.0)}
    out = bound.oracle_errors(sample)
    rmse = {k: np.sqrt(sse / m) for k, (sse, m) in out.items()}
    assert rmse["fill"] == pytest.approx(np.sqrt(30.0**2 + 10.0**2))
    assert rmse["constant shift"] == pytest.approx(10.0)
    assert rmse["L = 1000 m"] == pytest.approx(10.0, abs=0.2)  # σ = 10 px: the checkerboard averages out
    smooth = bound.smooth_inside(np.full((n, n), 7.0), inside, 3.0)
    assert np.allclose(smooth[inside], 7.0)  # normalised: a constant stays itself up to the hole's edge


def test_window_consistency_pairs_one_glacier_across_cases(tmp_path):
    """Two cases map RGI50-/RGI60-11.00897 at 100 m and 110 m mean thickness: one pair, +10 %;
    an RGI 11 tile case (same source) is left out; the working resolution comes from summary.json."""
    import json

    import rasterio
    from rasterio.transform import from_origin

    wc = _script("window_consistency")
    for case, glacier, value, res in (("hintereisferner", "RGI60-11.00897", 100.0, 50.0),
                                      ("oetztal", "RGI50-11.00897", 110.0, 75.0),
                                      ("rgi11-alps-RGI60-11.00897", "RGI60-11.00897", 500.0, 25.0)):
        est = tmp_path / case / "estimate"
        folder = est / "glaciers" / glacier
        folder.mkdir(parents=True)
        (est / "summary.json").write_text(json.dumps({"working_resolution_m": {"min": res, "max": res}}))
        h = np.full((4, 5), value, np.float32)
        h[0, 0] = np.nan  # off-glacier pixels are NaN in the maps
        with rasterio.open(folder / "thickness.tif", "w", driver="GTiff", width=5, height=4, count=1,
                           dtype="float32", crs="EPSG:32632", transform=from_origin(0, 0, 20, 20), nodata=np.nan) as dst:
            dst.write(h, 1)
    means = wc.glacier_means(tmp_path)
    assert sorted(means.case) == ["hintereisferner", "oetztal"]
    assert means.area_km2.tolist() == [pytest.approx(19 * 400 / 1e6)] * 2
    pair = wc.pairs(means).iloc[0]
    assert (pair.case_a, pair.case_b, pair.px_a, pair.px_b) == ("hintereisferner", "oetztal", "50", "75")
    assert pair.rel_diff == pytest.approx(0.1) and pair.area_ratio == pytest.approx(1.0)


def test_error_budget_oracles_by_hand():
    budget = _script("error_budget")
    e = budget.oracle_errors(np.array([10.0, 20.0, 30.0, np.nan]), np.array([12.0, 18.0, 36.0, 50.0]))
    # errors -2, 2, -6 (the NaN pair left out): RMSE sqrt(44/3), bias -2, sd sqrt(32/3)
    assert e["rmse"] == pytest.approx(np.sqrt(44 / 3))
    assert e["bias"] == pytest.approx(-2.0)
    assert e["unbiased"] == pytest.approx(np.sqrt(32 / 3))
    # least-squares factor 1560 / 1400; residuals -6/7, 30/7, -18/7
    assert e["factor"] == pytest.approx(1560 / 1400)
    assert e["rescaled"] == pytest.approx(np.sqrt((36 + 900 + 324) / 49 / 3))
    # a map right up to a factor: the rescaling oracle removes all of its error, the shift oracle does not
    f = budget.oracle_errors(np.array([10.0, 20.0, 40.0]), np.array([15.0, 30.0, 60.0]))
    assert f["rescaled"] == pytest.approx(0.0, abs=1e-12) and f["unbiased"] > 5


def test_error_budget_summary_medians_by_hand():
    budget = _script("error_budget")
    # two glaciers; the best baseline is the smaller of the baselines' RMSEs on each
    t = pd.DataFrame({"split": ["s", "s"], "default_rmse": [10.0, 30.0], "default_unbiased": [6.0, 12.0],
                      "default_rescaled": [8.0, 24.0], "default_bias": [8.0, 18.0],
                      "va_shaped_rmse": [20.0, 40.0], "glabtop_rmse": [25.0, 30.0], "oggm_rmse": [40.0, 50.0],
                      "va_shaped_unbiased": [10.0, 30.0], "glabtop_unbiased": [5.0, 20.0], "oggm_unbiased": [30.0, 40.0],
                      "va_shaped_rescaled": [20.0, 40.0], "glabtop_rescaled": [20.0, 30.0],
                      "oggm_rescaled": [40.0, 50.0]})
    row = budget.summary(t).iloc[0]
    assert row["headline"] == pytest.approx(np.median([10 / 20, 30 / 30]))
    assert row["default_unbiased_vs_baselines"] == pytest.approx(np.median([6 / 20, 12 / 30]))
    assert row["unbiased_vs_unbiased_baselines"] == pytest.approx(np.median([6 / 5, 12 / 20]))
    assert row["rescaled_vs_rescaled_baselines"] == pytest.approx(np.median([8 / 20, 24 / 30]))
    assert row["median_bias_share_of_mse"] == pytest.approx(np.median([0.64, 0.36]))
    assert row["glaciers_at_0.75"] == 1 and row["glaciers_at_0.75_unbiased"] == 2


def test_the_rule_compares_with_the_nested_row_of_the_named_results(tmp_path: Path) -> None:
    """``measured_finetune.py --compare-with``: the candidate must beat the named run's nested glacier-wise
    row (today's default), not the reference network's row; a file without exactly one such row is refused."""
    mf = _script("measured_finetune")
    rows = pd.DataFrame({
        "variant": ["shipped, calibrated (residual+scale+interval)", "measured-finetune, raw",
                    "measured-finetune + calibration (nested)"],
        "split": ["LOGO", "6 glacier-wise folds", "6 glacier-wise folds, 5 inner"],
        "grids_median_ratio": [0.909, 0.936, 0.848], "south_glacier_rmse_m": [26.6, 30.8, 27.5],
        "oetztal_means_rmse_m": [10.9, 9.9, 9.85]})
    rows.to_csv(tmp_path / "default.csv", index=False)
    today = mf.rule_baseline(tmp_path / "default.csv")
    assert today["grids_median_ratio"] == 0.848
    candidate = pd.Series({"grids_median_ratio": 0.86, "south_glacier_rmse_m": 27.0, "oetztal_means_rmse_m": 9.8})
    assert mf.meets_rule(candidate, rows.iloc[0])  # beats the old reference ...
    assert not mf.meets_rule(candidate, today)  # ... but not today's default
    better = pd.Series({"grids_median_ratio": 0.80, "south_glacier_rmse_m": 27.0, "oetztal_means_rmse_m": 10.4})
    assert mf.meets_rule(better, today)  # the earlier protocols' Ötztal bound, 11.4 m ...
    assert not mf.meets_rule(better, today, oetztal_max_m=10.0)  # ... the 25th's keeps the 10 m bar
    assert mf.rule_failures(better, today, oetztal_max_m=10.0) == ["Ötztal means 10.400 m > 10 m"]
    # candidate 27's row: every bound but South Glacier met, which is missed by 5 cm and named with its value
    c27 = pd.Series({"grids_median_ratio": 0.7984, "south_glacier_rmse_m": 29.0492, "oetztal_means_rmse_m": 9.95})
    assert mf.rule_failures(c27, today, oetztal_max_m=10.0) == ["South Glacier 29.049 m > 29 m"]
    assert mf.rule_failures(candidate, today) == ["grids 0.8600 not below 0.8480"]
    rows.iloc[:2].to_csv(tmp_path / "no_nested.csv", index=False)
    with pytest.raises(SystemExit, match="one nested glacier-wise row"):
        mf.rule_baseline(tmp_path / "no_nested.csv")
    with pytest.raises(SystemExit, match="no such results file"):
        mf.rule_baseline(tmp_path / "missing.csv")


def test_folds_never_start_from_a_network_fine_tuned_on_the_measured_glaciers(tmp_path: Path) -> None:
    """``measured_finetune.py``: a config without ``init_weights`` starts from the shipped network, which is now
    fine-tuned on every measured glacier; that start is refused (each fold would hold out nothing), a named start
    that never saw them is kept."""
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
    from glacierbed.pipeline.store import shipped_weights

    mf = _script("measured_finetune")
    with pytest.raises(SystemExit, match="fine-tuned on 41 measured glaciers"):
        mf.start_weights(MeasuredFinetuneConfig(), tmp_path / "c.yaml")
    shipped = shipped_weights("thickness_net.pt")
    record = json.loads(shipped.with_suffix(".json").read_text())
    record.pop("finetuned_on_measured")
    (tmp_path / "start.pt").write_bytes(shipped.read_bytes())
    (tmp_path / "start.json").write_text(json.dumps(record))
    assert mf.start_weights(MeasuredFinetuneConfig(init_weights=str(tmp_path / "start.pt")), tmp_path / "c.yaml") \
        == tmp_path / "start.pt"


def test_band_profiles_score_each_glacier_against_its_best_baseline() -> None:
    """``band_profiles.per_glacier``: bands every method has; ratio = the default's RMSE over the best
    baseline's on that glacier; a glacier with one band has no shape and is left out."""
    bp = _script("band_profiles")
    prof = pd.DataFrame({
        "rgi_id": ["A", "A", "A", "B"], "name": ["a", "a", "a", "b"], "mean_thickness": [10.0, 20.0, 30.0, 5.0],
        "default": [12.0, 22.0, 32.0, 5.0], "previous_default": [20.0, 20.0, 20.0, 5.0], "va_shaped": [14.0, 24.0, 34.0, 5.0],
        "glabtop": [20.0, 20.0, 20.0, 5.0], "oggm": [11.0, 21.0, np.nan, 5.0]})
    t = bp.per_glacier(prof)
    assert list(t["rgi_id"]) == ["A"]  # B has one band
    a = t.iloc[0]
    assert a["n_bands"] == 2  # OGGM lacks the third band
    assert a["default_rmse_m"] == pytest.approx(2.0) and a["default_shape_rmse_m"] == pytest.approx(0.0)
    assert a["oggm_rmse_m"] == pytest.approx(1.0) and a["default_rmse_ratio"] == pytest.approx(2.0)
    # shapes: the default's and OGGM's are exact (0 m), GlabTop's flat profile is not
    assert a["glabtop_shape_rmse_m"] == pytest.approx(5.0)
    assert a["previous_default_rmse_ratio"] == pytest.approx(np.sqrt(50.0))


def test_fold_ensemble_scores_pixels_or_the_glacier_mean() -> None:
    """``fold_ensemble.glacier_error``: RMSE and bias on the measured pixels when there are any, else the
    error of the mean over the glacier's own pixels."""
    from glacierbed.models.thickness.finetune import MeasuredWindow

    fe = _script("fold_ensemble")
    own = np.array([[True, True], [True, False]])
    truth = np.array([[10.0, np.nan], [30.0, np.nan]], np.float32)
    w = MeasuredWindow("A", np.zeros((15, 2, 2), np.float32), truth, own)
    kind, rmse, bias = fe.glacier_error(w, np.array([[13.0, 99.0], [26.0, 0.0]]))
    assert kind == "pixels" and rmse == pytest.approx(np.sqrt((9 + 16) / 2)) and bias == pytest.approx(-0.5)
    m = MeasuredWindow("B", np.zeros((15, 2, 2), np.float32), np.full((2, 2), np.nan, np.float32), own, 20.0)
    kind, err, bias = fe.glacier_error(m, np.array([[10.0, 20.0], [36.0, 500.0]]))
    assert kind == "mean" and err == pytest.approx(2.0) and bias == pytest.approx(2.0)


def test_resolution_ensemble_replans_copies_and_scores_each_plan(tmp_path: Path) -> None:
    """``resolution_ensemble.replan`` copies a fold network with only its planned patch size changed (the
    fine-tuning record kept, so the copy is reused, not refitted); ``per_glacier`` scores each plan."""
    import json

    re_ = _script("resolution_ensemble")
    src = tmp_path / "src" / "fold0"
    src.mkdir(parents=True)
    (src / "weights.pt").write_bytes(b"weights")
    (src / "weights.json").write_text(json.dumps({"patch_size": 128, "finetuned_on_measured": {"groups": ["A"]}}))
    re_.replan(tmp_path / "src", tmp_path / "dst", 1, 256)
    copy = json.loads((tmp_path / "dst" / "fold0" / "weights.json").read_text())
    assert copy == {"patch_size": 256, "finetuned_on_measured": {"groups": ["A"]}}
    assert (tmp_path / "dst" / "fold0" / "weights.pt").read_bytes() == b"weights"
    rows = pd.DataFrame({"case": "glathida-grids", "rgi_id": "A", "obs": [10.0, 20.0],
                         "128 px plan": [12.0, 22.0], "256 px plan": [8.0, 18.0], "average of the two": [10.0, 20.0],
                         **{f"base_{b}": [14.0, 24.0] for b in ("va_shaped", "glabtop", "oggm")}})
    t = re_.per_glacier(rows).iloc[0]
    assert t["128 px plan"] == pytest.approx(2.0) and t["average of the two"] == pytest.approx(0.0)
    assert t["best_baseline"] == pytest.approx(4.0) and t["ratio: 256 px plan"] == pytest.approx(1.0)


def test_margin_rings_peel_and_the_margin_rule_is_the_declared_one():
    """``rings``: a 7x7 glacier peels into rings of 24, 16 and 8 pixels; ``decision``: recommended only when the
    grids' ratio falls by ≥ 0.005 and South Glacier and the Ötztal means lose ≤ 0.5 m (protocol)."""
    bench = _script("margin_profile")
    own = np.zeros((9, 9), bool)
    own[1:8, 1:8] = True
    r1, r2, r3 = bench.rings(own)
    assert (r1.sum(), r2.sum(), r3.sum()) == (24, 16, 8) and not (r1 & r2).any() and r3[4, 4] == 0 and r3[3, 3]

    def table(grids, sg, oz):
        rows = []
        for m, g, s, o in (("zero", 0.90, 26.0, 10.0), ("plastic", grids, sg, oz)):
            rows += [dict(margin=m, variant=bench.VARIANT, split="LOGO", case="glathida-grids",
                          median_ratio_to_best_baseline=g, rmse=30.0),
                     dict(margin=m, variant=bench.VARIANT, split="LOGO", case="south-glacier",
                          median_ratio_to_best_baseline=np.nan, rmse=s),
                     dict(margin=m, variant=bench.VARIANT, split="LOGO", case="oetztal-means",
                          median_ratio_to_best_baseline=np.nan, rmse=o)]
        return pd.DataFrame(rows)

    assert bench.decision(table(0.895, 26.5, 10.5))[0]  # 0.005 lower, both losses exactly 0.5 m
    assert not bench.decision(table(0.896, 26.0, 10.0))[0]  # too small a gain
    assert not bench.decision(table(0.80, 26.6, 10.0))[0]  # South Glacier worse by 0.6 m
    assert not bench.decision(table(0.80, 26.0, 10.51))[0]
    # the same rule between two other labelled variants (the no-mask diagnostic uses it)
    labelled = table(0.895, 26.5, 10.5).replace({"margin": {"zero": "N0", "plastic": "N1"}})
    ok, d = bench.decision(labelled, base="N0", new="N1")
    assert ok and d["grids"] == {"N0": 0.90, "N1": 0.895} and d["sg"]["N1"] == 26.5


def test_margin_network_reads_the_pooled_network_physics_rows(tmp_path):
    """``simulated_table`` takes, per variant file, the network + physics rows of the pooled test source only."""
    bench = _script("margin_network")
    rows = [dict(split="test", source="all", pixel_m=25.0, method="network_physics", rmse_m=8.0,
                 ratio_to_biharmonic_clipped=0.2),
            dict(split="test", source="all", pixel_m=25.0, method="network", rmse_m=9.0, ratio_to_biharmonic_clipped=0.3),
            dict(split="test", source="nz", pixel_m=25.0, method="network_physics", rmse_m=7.0,
                 ratio_to_biharmonic_clipped=0.1)]
    stem = bench.SIMULATED["N0 + plastic"]
    pd.DataFrame(rows).to_csv(tmp_path / f"{stem}.csv", index=False)
    got = bench.simulated_table(tmp_path)
    assert got.to_dict("records") == [dict(variant="N0 + plastic", pixel_m=25.0, rmse_m=8.0, ratio_to_clipped_fill=0.2)]


def test_fit_physics_config_needs_the_nested_calibration(capsys) -> None:
    """``--fit-physics-config`` names the maps the nested calibration is fitted on: without ``--nested`` there is
    none, and the script stops with a clear message before any work."""
    mf = _script("measured_finetune")
    with pytest.raises(SystemExit) as stop:
        mf.main(["--fit-physics-config", str(BENCHMARKS / "configs/physics_margin_zero.yaml")])
    assert stop.value.code == 2 and "use it with --nested" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--interval-physics-config", "physics_margin_plastic.yaml"], "use it with --nested"),
    (["--refit-interval", "cal.json", "--interval-physics-config", "physics_margin_plastic.yaml"],
     "--refit-interval needs --fit-physics-config"),
    (["--refit-interval", "cal.json", "--by", "region", "--fit-physics-config", "physics_margin_zero.yaml",
      "--interval-physics-config", "physics_margin_plastic.yaml"], "use it without --by region"),
])
def test_interval_physics_options_stop_before_any_work(capsys, argv, message) -> None:
    """The interval's maps only mean something to a nested calibration or to a refit of a calibration's interval
    (which also needs the maps its other steps were fitted on): otherwise a one-line stop before any work."""
    mf = _script("measured_finetune")
    argv = [str(BENCHMARKS / "configs" / a) if a.endswith(".yaml") else a for a in argv]
    with pytest.raises(SystemExit) as stop:
        mf.main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_coverage_rule_on_hand_computed_deviations() -> None:
    """``--rule coverage``: |coverage - nominal| in points per case and level; met when the worst falls and the
    mean does not rise (candidate 29's protocol)."""
    mf = _script("measured_finetune")

    def cases(sg68: float, ot68: float) -> pd.DataFrame:
        return pd.DataFrame({"variant": ["x (nested)"] * 3, "split": ["6 glacier-wise folds, 5 inner"] * 3,
                             "case": ["south-glacier", "glathida-grids", "oetztal-means"],
                             "coverage68": [sg68, 0.645, ot68], "coverage90": [0.947, 0.807, 0.842]})
    before, after = mf.coverage_deviations(cases(0.840, 0.474)), mf.coverage_deviations(cases(0.851, 0.737))
    assert before["oetztal-means 68"] == pytest.approx(20.6) and before.max() == pytest.approx(20.6)
    assert after.max() == pytest.approx(17.1) and after.idxmax() == "south-glacier 68"
    assert mf.coverage_rule_failures(after, before) == []
    worse = mf.coverage_deviations(cases(0.99, 0.737))  # South Glacier 31 points over: the worst rises
    assert "worst coverage deviation 31.0" in mf.coverage_rule_failures(worse, before)[0]


def test_unseen_region_rule_on_hand_values() -> None:
    """Candidate 35's rule: C ships when its worst coverage deviation falls, its mean does not rise and no thickness
    bar worsens beyond the declared slack; a South Glacier 3 % worse, or a Hintereisferner 3 points worse, stops it."""
    bench = _script("unseen_region_calibration")
    a, c = bench.ARMS

    def results(c68: tuple[float, float, float], sg_c: float = 27.0, hef_c: float = -0.08) -> dict:
        cover = {a: (0.80, 0.55, 0.89), c: c68}
        cases = pd.DataFrame([{"arm": arm, "case": case, "coverage68": cover[arm][i],
                               "coverage90": [0.93, 0.72, 1.0][i]}
                              for arm in (a, c) for i, case in enumerate(bench.load_script(
                                  BENCHMARKS / "measured_finetune.py").COVERAGE_CASES)])
        summary = pd.DataFrame([{"arm": a, "south_glacier_rmse_m": 27.0, "oetztal_means_rmse_m": 10.0,
                                 "hef_volume_rel_error": -0.08},
                                {"arm": c, "south_glacier_rmse_m": sg_c, "oetztal_means_rmse_m": 10.0,
                                 "hef_volume_rel_error": hef_c}])
        ratios = np.linspace(0.6, 1.4, 23)
        glaciers = pd.DataFrame([{"arm": arm, "rgi_id": f"g{i}", "ratio_to_best_baseline": r}
                                 for arm in (a, c) for i, r in enumerate(ratios)])
        return {"": summary, "_cases": cases, "_glaciers": glaciers}

    # A's deviations: 12, 13, 21 at 68 %; 3, 18, 10 at 90 %: worst 21 (Ötztal 68)
    met, lines = bench.decision(results((0.75, 0.60, 0.80)))
    assert met and "A 21.0 / 12.8" in lines[0]
    assert not bench.decision(results((0.75, 0.60, 0.80), sg_c=27.0 * 1.03))[0]
    assert not bench.decision(results((0.75, 0.60, 0.80), hef_c=-0.11))[0]
    assert not bench.decision(results((0.95, 0.60, 0.80)))[0]  # South Glacier 68 % 27 points over: worst rises


def test_unmeasured_region_volume_interval_rule_on_hand_values() -> None:
    """Candidate 36's rule: B ships when its worst glacier-level gap over all glaciers falls by at least 2.5 points
    and the grid glaciers' does not rise; 2.4 points (the run's result) is not enough."""
    bench = _script("unmeasured_region_volume_interval")

    def table(b_all: tuple[float, float], b_grids: tuple[float, float]) -> pd.DataFrame:
        cover = {"A": {"all glaciers": (0.634, 0.732), "glathida-grids": (0.435, 0.522)},
                 "B": {"all glaciers": b_all, "glathida-grids": b_grids}}
        return pd.DataFrame([{"variant": arm, "split": "region-wise", "level": "glacier", "case": case,
                              "coverage68": c[0], "coverage90": c[1]}
                             for arm, cases in cover.items() for case, c in cases.items()])

    # A's worst gaps: all glaciers |0.732 - 0.90| = 0.168; grids |0.522 - 0.90| = 0.378
    worst_gap = _script("glacier_intervals").worst_gap  # the metric both glacier-level protocols use
    assert worst_gap(table((0.66, 0.756), (0.48, 0.565)), "A", "all glaciers") == pytest.approx(0.168)
    assert worst_gap(table((0.66, 0.756), (0.48, 0.565)), "A", "glathida-grids") == pytest.approx(0.378)
    assert not bench.decision(table((0.659, 0.756), (0.478, 0.565)))[0]  # 0.144: 2.4 points, short of 2.5
    assert bench.decision(table((0.68, 0.76), (0.48, 0.565)))[0]  # 0.140: 2.8 points
    assert not bench.decision(table((0.68, 0.76), (0.40, 0.50)))[0]  # the grids' gap rises to 0.40
    assert not bench.decision(table((0.96, 0.99), (0.48, 0.565)))[0]  # too wide: |0.96 - 0.68| = 0.28


def test_glacier_intervals_decision_needs_both_splits_and_a_smaller_gap() -> None:
    """The glacier-interval protocols' rule on hand-made coverage: the candidate ships only with a smaller worst gap
    over both splits and the Ötztal means within ±10 points glacier-wise; with one split scored it decides nothing."""
    bench = _script("glacier_intervals")

    def table(v2_all_90: float, v2_oetztal_68: float, splits=("glacier-wise", "region-wise")) -> pd.DataFrame:
        rows = []
        for split in splits:
            for variant, (all90, oe68) in {"V0": (0.756, 0.684), "V2": (v2_all_90, v2_oetztal_68)}.items():
                rows += [{"variant": variant, "split": split, "level": "glacier", "case": "all glaciers",
                          "coverage68": 0.60, "coverage90": all90},
                         {"variant": variant, "split": split, "level": "glacier", "case": "oetztal-means",
                          "coverage68": oe68, "coverage90": 0.95}]
        return pd.DataFrame(rows)

    assert "V2 replaces V0" in bench.decision(table(0.83, 0.70), "V2")[-1]  # worst gap 0.144 -> 0.080
    assert "does not pass" in bench.decision(table(0.83, 0.80), "V2")[-1]  # Ötztal 68 % 12 points over
    assert "does not pass" in bench.decision(table(0.70, 0.70), "V2")[-1]  # its 90 % gap 0.20 > 0.144
    assert "Not decided" in bench.decision(table(0.83, 0.70, splits=("region-wise",)), "V2")[0]


def test_consensus_alps_means_on_hand_values(data_dir) -> None:
    """The consensus' mean thickness of a glacier is its g2ti volume over its rgi11-alps outline's area (read here
    straight from the kit's files), and the scores are estimate − measured: a method at 1.5× every measured mean has
    bias = half the mean measured thickness, median ratio 1.5 and none within 20 %."""
    import geopandas as gpd

    bench = _script("consensus_alps_means")
    ids = ["RGI60-11.00897", "RGI60-11.00746"]
    table = pd.DataFrame({"rgi_id": ids, "obs_mean_m": [60.0, 100.0], "survey_year": [2001.0, 2010.0]})
    table = bench.with_consensus(table)
    g2ti = pd.read_hdf(data_dir / "oggm-sample-data/g2ti/rgi62_itmix_df.h5")["vol_itmix_m3"]
    area = gpd.read_file(data_dir / "rgi11-alps/outlines.gpkg").set_index("RGIId")["area_km2"]
    expected = [g2ti[i] / (area[i] * 1e6) for i in ids]
    np.testing.assert_allclose(table["consensus_m"], expected, rtol=1e-9)
    assert 50 < table["consensus_m"].iloc[0] < 100  # Hintereisferner: 0.578 km3 over ~8 km2
    for col in bench.METHODS:
        if col != "consensus_m":
            table[col] = 1.5 * table["obs_mean_m"]
    scored = bench.scores(table).set_index("method")
    row = scored.loc[bench.METHODS["default_calibrated_m"]]
    assert row["bias_m"] == pytest.approx(40.0) and row["median_ratio_to_measured"] == pytest.approx(1.5)
    assert row["share_within_20pct"] == 0.0 and row["n"] == 2
    epochs = bench.by_epoch(table)
    assert set(epochs.groupby("surveys")["n"].max()) == {1}
    with pytest.raises(SystemExit, match="no outline for RGI60-11.99999"):
        bench.with_consensus(pd.DataFrame({"rgi_id": ["RGI60-11.99999"], "obs_mean_m": [10.0]}))


def test_unseen_alps_means_scores_by_hand() -> None:
    """Errors +5, -10, +20 m on 50 / 40 / 100 m glaciers; 1-sigma 6, 8, 10 m with 90 % multipliers 1.645, 1.645, 2:
    68 % holds the first only, 90 % the first two (10 <= 13.16) and the third (20 <= 20)."""
    bench = _script("unseen_alps_means")
    table = pd.DataFrame({"obs_mean_m": [50.0, 40.0, 100.0], "m": [55.0, 30.0, 120.0], "s": [6.0, 8.0, 10.0],
                          "z": [1.645, 1.645, 2.0], "best_baseline_abs_error_m": [10.0, 5.0, 40.0]})
    out = bench.scores(table, "m", "s", "z")
    assert out["coverage68"] == pytest.approx(1 / 3) and out["coverage90"] == pytest.approx(1.0)
    assert out["bias_m"] == pytest.approx(5.0) and out["median_ratio_to_best_baseline"] == pytest.approx(0.5)
    assert out["share_within_20pct"] == pytest.approx(2 / 3)  # 5 <= 10, 10 > 8, 20 <= 20
    assert "coverage68" not in bench.scores(table, "m")


def test_bias_bar_reach_by_hand(data_dir) -> None:
    """The campaign is the six South Tyrol 2013 grid glaciers of the kit; per method, shares within 20 % over all,
    the campaign and the others, by hand on four glaciers."""
    bench = _script("bias_bar")
    assert bench.campaign_glaciers() == {"RGI60-11.00590", "RGI60-11.00603", "RGI60-11.00846", "RGI60-11.00950",
                                         "RGI60-11.01473", "RGI60-11.01813"}
    rel = pd.DataFrame({"m": [0.1, -0.3, 1.5, 0.19], "mean_obs_m": [50.0, 60.0, 12.0, 20.0]}, index=["a", "b", "c", "d"])
    row = bench.reach(rel, {"c", "d"}).iloc[0]
    assert row["share_within_20pct"] == 0.5 and row["campaign_within"] == 1 and row["campaign_n"] == 2
    assert row["others_share_within_20pct"] == 0.5 and row["campaign_median_rel_bias"] == pytest.approx(0.845)
    assert row["others_median_rel_bias"] == pytest.approx(-0.1)


def test_caution_evidence_by_hand_and_on_the_committed_rows(tmp_path) -> None:
    """Per flag, by hand on four glaciers (groups overlap; an empty group leaves no row); run on copies of the
    committed tables, the 'all' rows are the headline figures they regroup: 0.800 glacier-wise, 1.01 leave one region
    out, and the Oetztal means' RMSE over both groups is the default's 9.93 m."""
    bench = _script("caution_evidence")
    rows = pd.DataFrame({"rgi_id": list("abcd"), "split": "glacier-wise",
                         "ratio_to_best_baseline": [0.5, 1.0, 0.8, 2.0],
                         "rmse": [100.0, 80.0, 20.0, 30.0], "rel_bias": [-0.1, 0.3, 0.25, 0.0]})
    flags = bench.flagged(pd.DataFrame({"rgi_id": list("abcd"), "slope_deg": [5.0, 8.0, 20.0, 30.0],
                                        "area_km2": [300.0, 2.0, 12.0, 1.0]}))
    out = bench.summarise(rows, flags).set_index("group")
    assert list(out.index) == ["plateau_or_ice_cap", "large", "no flag", "all"]
    assert out.loc["plateau_or_ice_cap", "median_ratio_to_best_baseline"] == pytest.approx(0.75)
    assert out.loc["large", "n_glaciers"] == 2 and out.loc["large", "median_rmse_m"] == pytest.approx(60.0)
    assert out.loc["no flag", "share_bias_within_20pct"] == 1.0
    assert out.loc["all", "median_rel_bias"] == pytest.approx(0.125)
    for name in ("diagnosis.csv", "bias_bar_glaciers.csv", "unseen_region_calibration_glaciers.csv",
                 f"{bench.DEFAULT}_glaciers.csv", f"{bench.DEFAULT}_oetztal.csv"):
        shutil.copy(bench.RESULTS / name, tmp_path / name)
    bench.main(["--results", str(tmp_path)])
    committed = pd.read_csv(tmp_path / "caution_evidence.csv").set_index(["split", "group"])
    oetz = pd.read_csv(tmp_path / "caution_evidence_oetztal.csv").set_index("group")
    assert np.sqrt((oetz["rmse_m"] ** 2 * oetz["n_glaciers"]).sum() / 19) == pytest.approx(9.93, abs=0.005)
    assert committed.loc[("glacier-wise", "all"), "median_ratio_to_best_baseline"] == pytest.approx(0.800, abs=5e-4)
    assert committed.loc[("region-wise", "all"), "median_ratio_to_best_baseline"] == pytest.approx(1.01, abs=5e-3)
    assert committed.loc[("glacier-wise", "all"), "n_glaciers"] == 23


def test_glathida_grids_script_on_a_folder_needs_its_own_out(tmp_path, capsys) -> None:
    """--grids-dir without --out stops with the reason (the committed results are the kit's 23 grids); every RGI 6
    region has a name for the per-region tables."""
    bench = _script("glathida_grids")
    with pytest.raises(SystemExit) as stop:
        bench.main(["--grids-dir", str(tmp_path)])
    assert stop.value.code == 2 and "--grids-dir needs --out" in capsys.readouterr().err
    assert sorted(bench.REGION_NAMES) == [f"{r:02d}" for r in range(1, 20)]


def test_recipe_arguments(tmp_path) -> None:
    """One parser for the recipe benchmarks: the recipe's options with the given config, the script's own, --out."""
    from glacierbed.evaluation.recipe_cli import recipe_arguments

    config = tmp_path / "recipe.yaml"
    args = recipe_arguments("Title line\n\nmore", [], config, tmp_path / "results", verbose=False)
    assert args.config == config and args.out == tmp_path / "results"
    assert args.splits == ["glacier-wise", "region-wise"] and args.glacier_run_dir.name.startswith("glacierbed-")
    own = recipe_arguments("T", ["--report-only", "--out", str(tmp_path)], config, tmp_path / "results",
                           options=lambda ap: ap.add_argument("--report-only", action="store_true"), verbose=False)
    assert own.report_only and own.out == tmp_path
    with pytest.raises(SystemExit):
        recipe_arguments("T", ["--no-such-option"], config, tmp_path, verbose=False)


def test_interpolation_rule_is_the_declared_one():
    """Candidate 30's rule on hand values: the region-wise ratio must drop by 0.03, the glacier-wise bars hold."""
    bench = _script("interpolation_decision")

    def rows(region, glacier, oetztal=9.9, hef=-0.07, sg=27.4, worst=17.1):
        common = dict(oetztal_means_rmse_m=oetztal, hef_volume_rel_error=hef, south_glacier_rmse_m=sg)
        return {"glacier-wise": pd.Series(dict(grids_median_ratio=glacier, **common)),
                "region-wise": pd.Series(dict(grids_median_ratio=region, **common)),
                "coverage": pd.Series({"a": 3.0, "b": worst})}

    default = rows(0.989, 0.800)
    assert bench.rule_failures(rows(0.959, 0.810), default) == []  # both bounds are inclusive
    assert bench.rule_failures(rows(0.960, 0.800), default) == ["region-wise grids 0.960 > 0.959"]
    assert bench.rule_failures(rows(0.90, 0.811), default) == ["glacier-wise grids 0.811 > 0.810"]
    failures = bench.rule_failures(rows(0.90, 0.80, oetztal=10.2, hef=-0.12, sg=29.5, worst=18.0), default)
    assert [f.split()[0] for f in failures] == ["Ötztal", "Hintereisferner", "South", "worst"]


def test_selection_noise_pairs_each_run_with_the_default_of_its_split():
    """A variant 0.2 worse on every glacier is resolved at +0.2; the default against itself is a zero gap, not
    resolved; a region-wise run is compared with the region-wise default, not the glacier-wise one."""
    bench = _script("selection_noise")
    glaciers = [f"RGI60-11.{i:05d}" for i in range(12)]
    base = np.linspace(0.6, 1.2, len(glaciers))

    def run(name, variant, ratios):
        return pd.DataFrame({"run": name, "variant": variant, "rgi_id": glaciers, "ratio": ratios})

    ratios = pd.concat([run("d", "x (nested)", base), run("d_loro", "x (nested)", base + 0.5),
                        run("c", "y (nested)", base + 0.2), run("c_loro", "y (nested)", base + 0.5),
                        run("c2", "y (nested)", base + 0.2)])  # the same row in another run: listed once
    table = bench.noise_rows(ratios, "d", "d_loro").set_index("run")
    assert "c2" not in table.index and table.loc["c", "runs_with_this_row"] == 2
    assert table.loc["c", "median_gap"] == pytest.approx(0.2) and table.loc["c", "median_gap_resolved"]
    assert table.loc["c", "median_gap_low_90"] == pytest.approx(0.2)
    assert table.loc["c", "median_gap_high_90"] == pytest.approx(0.2)
    assert table.loc["c", "mean_log_gap"] == pytest.approx(np.mean(np.log(base + 0.2) - np.log(base)))
    assert table.loc["c", "mean_log_gap_resolved"]
    assert table.loc["d", "median_gap"] == 0.0 and not table.loc["d", "median_gap_resolved"]
    assert table.loc["c_loro", "median_gap"] == pytest.approx(0.0)  # paired with d_loro, not with d
    assert table.loc["c_loro", "split"] == "region-wise"
    assert table.loc["d", "median"] == pytest.approx(np.median(base))
    assert table.loc["d", "mean_log"] == pytest.approx(np.mean(np.log(base)))


def test_region_gaps_by_hand():
    """The previous default 10 % better on region A's two glaciers and equal on B's: mean log gaps log(1/1.1), 0
    and over all three 2/3 of log(1/1.1)."""
    bench = _script("selection_noise")
    ids, regions = ["g1", "g2", "g3"], ["A", "A", "B"]
    nested = pd.DataFrame({"run": "d", "variant": "x (nested)", "rgi_id": ids, "region": regions,
                           "ratio": [1.1, 0.55, 0.8]})
    previous = nested.assign(variant=bench.PREVIOUS, ratio=[1.0, 0.5, 0.8])
    gaps = bench.region_gaps(pd.concat([nested, previous]), {"glacier-wise": "d"}).set_index("region")
    assert gaps.loc["A", "mean_log_gap"] == pytest.approx(np.log(1 / 1.1))
    assert gaps.loc["B", "mean_log_gap"] == pytest.approx(0.0) and gaps.loc["B", "glaciers_better"] == 0
    assert gaps.loc["all", "mean_log_gap"] == pytest.approx(2 / 3 * np.log(1 / 1.1))
    assert gaps.loc["all", "glaciers_better"] == 2
    assert gaps.loc["not 11", "mean_log_gap"] == pytest.approx(2 / 3 * np.log(1 / 1.1))  # no Alps here: all three
    assert gaps.loc["A", "low_90"] <= gaps.loc["A", "mean_log_gap"] <= gaps.loc["A", "high_90"] < 0


def test_oetztal_gaps_by_hand(tmp_path):
    """Errors ±3 m for the default and ±4 m for the other row: RMSEs 3 and 4 m, a paired gap of exactly 1 m; a run
    without the file gives an empty table."""
    bench = _script("selection_noise")
    ids = [f"RGI50-11.{i:05d}" for i in range(6)]
    signs = np.array([1, -1, 1, -1, 1, -1])
    rows = [pd.DataFrame({"rgi_id": ids, "obs": 50.0, "mu_cal": 50.0 + e * signs, "sigma_cal": 5.0,
                          "variant": v, "split": "LOGO"}) for v, e in (("x (nested)", 3.0), ("previous", 4.0))]
    pd.concat(rows).to_csv(tmp_path / "run_oetztal.csv", index=False)
    gaps = bench.oetztal_gaps("run", tmp_path).set_index("variant")
    assert gaps.loc["x (nested)", "rmse_m"] == pytest.approx(3.0) and gaps.loc["previous", "rmse_m"] == pytest.approx(4.0)
    assert gaps.loc["previous", "gap_to_default_m"] == pytest.approx(1.0)
    assert gaps.loc["previous", "gap_low_90"] == pytest.approx(1.0) and gaps.loc["previous", "gap_high_90"] == pytest.approx(1.0)
    assert bench.oetztal_gaps("absent", tmp_path).empty


def test_paired_lines_compare_with_the_reference_runs_nested_row(tmp_path):
    """Every grid glacier 10 % worse than the reference run's nested row: both gaps resolved (mean log exactly
    log 1.1); equal ratios: within the draw of glaciers; a missing glaciers table says so."""
    bench = _script("measured_finetune")
    ids = [f"RGI60-11.{i:05d}" for i in range(8)]
    base = np.linspace(0.6, 1.3, len(ids))
    pd.DataFrame({"rgi_id": ids, "variant": "x + calibration (nested)", "ratio_to_best_baseline": base}).to_csv(
        tmp_path / "ref_glaciers.csv", index=False)
    worse = pd.DataFrame({"rgi_id": ids, "variant": "cand", "ratio_to_best_baseline": 1.1 * base})
    line = bench.paired_lines(worse, "cand", tmp_path / "ref.csv")[0]
    assert f"mean log ratio gap {np.log(1.1):+.3f}" in line and "within" not in line
    same = worse.assign(ratio_to_best_baseline=base)
    assert "median gap +0.000 (+0.000 to +0.000), within the draw" in bench.paired_lines(same, "cand", tmp_path / "ref.csv")[0]
    assert "missing" in bench.paired_lines(worse, "cand", tmp_path / "other.csv")[0]


def test_rgi11_models_compares_runs_with_g2ti_and_with_the_first(tmp_path, data_dir):
    """Two hand-made run folders over three real RGI 11 glaciers: totals, ratios to g2ti's volumes of the same
    glaciers, and the second run's per-glacier ratio to the first (exactly 0.5); a malformed LABEL=VALUE stops."""
    import json

    bench = _script("rgi11_models")
    region = bench._rgi11_region()
    ids = ["RGI60-11.00897", "RGI60-11.00787", "RGI60-11.00746"]
    g2ti = pd.read_hdf(data_dir / "oggm-sample-data/g2ti/rgi62_itmix_df.h5")["vol_itmix_m3"].reindex(ids) / 1e9
    for name, factor in (("a", 1.0), ("b", 0.5)):
        folder = tmp_path / name
        folder.mkdir()
        vol = g2ti.to_numpy() * 1.2 * factor
        pd.DataFrame({"rgi_id": ids, "volume_km3": vol, "status": "ok"}).to_csv(folder / "glaciers.csv", index=False)
        (folder / "summary.json").write_text(json.dumps({"volume_km3": float(vol.sum()), "volume_std_km3": 0.1}))
    row_a, first = bench.run_summary("a", tmp_path / "a", None, region)
    row_b, _ = bench.run_summary("b", tmp_path / "b", first, region)
    assert row_a["total_ratio_to_g2ti"] == pytest.approx(1.2) and row_a["per_glacier_ratio_median"] == pytest.approx(1.2)
    assert row_b["per_glacier_vs_first_median"] == pytest.approx(0.5) and "per_glacier_vs_first_median" not in row_a
    with pytest.raises(SystemExit, match="LABEL=VALUE"):
        bench.labelled(["nolabel"], "--run")


def test_recipe_diagnostic_rule_and_settings_by_hand():
    """The declared rule per variant (region-balanced's and the partial fine-tunes' protocols): leave one region out
    resolved better, glacier-wise not resolved worse, South Glacier and Ötztal at most 2 % worse; and the variant's
    settings named as they differ from the default's recipe."""
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig

    bench = _script("recipe_diagnostic")
    table = pd.DataFrame([
        {"recipe": "default", "split": "glacier-wise", "south_glacier_rmse_m": 30.0, "oetztal_means_rmse_m": 10.0},
        {"recipe": "v", "split": "glacier-wise", "south_glacier_rmse_m": 30.6, "oetztal_means_rmse_m": 10.2}])
    better = {"mean_log_gap": -0.05, "mean_log_gap_resolved": True}
    tie = {"mean_log_gap": 0.04, "mean_log_gap_resolved": False}
    assert bench.rule({"leave one region out": better, "glacier-wise": tie}, table, "v")[0]  # 2 % bounds inclusive
    assert not bench.rule({"leave one region out": tie, "glacier-wise": tie}, table, "v")[0]
    worse = {"mean_log_gap": 0.04, "mean_log_gap_resolved": True}
    met, lines = bench.rule({"leave one region out": better, "glacier-wise": worse}, table, "v")
    assert not met and "**no**" in lines[1] and lines[0].endswith("yes")
    table.loc[1, "south_glacier_rmse_m"] = 30.7
    assert not bench.rule({"leave one region out": better, "glacier-wise": tie}, table, "v")[0]
    default = MeasuredFinetuneConfig(sim_dataset="a.npz")
    assert bench.changed_settings(MeasuredFinetuneConfig(sim_dataset="a.npz", trainable="head"), default) == \
        "`trainable: head`"
    assert bench.changed_settings(default, default) == "nothing"


def test_recipe_diagnostic_regions_and_gaps_from_the_per_glacier_table():
    """The report is rebuilt from the per-glacier CSV: a region's mean log ratio by hand (ratios 0.5 and 2 average to
    0), and the not-fine-tuned start (split ``both``) paired with the default of each split."""
    bench = _script("recipe_diagnostic")
    rows = []
    for recipe, split, ratios in [("default", "glacier-wise", [0.5, 2.0, 0.9]),
                                  ("default", "leave one region out", [1.0, 1.0, 1.0]),
                                  (bench.NOT_FINETUNED, "both", [1.0, 1.0, 1.0])]:
        rows += [{"recipe": recipe, "split": split, "rgi_id": g, "region": r, "ratio_to_best_baseline": v}
                 for g, r, v in zip(["a", "b", "c"], ["11", "11", "03"], ratios)]
    per = pd.DataFrame(rows)
    regions = bench.region_table(per).set_index(["recipe", "split"])
    assert regions.loc[("default", "glacier-wise"), "11 (n=2)"] == pytest.approx(0.0)
    assert regions.loc[("default", "glacier-wise"), "03 (n=1)"] == pytest.approx(np.log(0.9))
    gaps = bench.paired_gaps(per)
    assert set(gaps) == {(bench.NOT_FINETUNED, "glacier-wise"), (bench.NOT_FINETUNED, "leave one region out")}
    assert gaps[(bench.NOT_FINETUNED, "leave one region out")]["mean_log_gap"] == pytest.approx(0.0)
    assert gaps[(bench.NOT_FINETUNED, "glacier-wise")]["mean_log_gap"] == pytest.approx(-np.log(0.9) / 3)


def test_dem_resolution_ratios_by_hand():
    """Each glacier against its own volume on the native grid; the region's total against its native total."""
    from glacierbed.evaluation.resolution import volume_ratios

    rows = [("a", "g1", 25.0, True, 1.0), ("a", "g2", 25.0, True, 3.0),
            ("a", "g1", 200.0, False, 1.2), ("a", "g2", 200.0, False, 1.5)]
    g = pd.DataFrame([dict(region=r, rgi_id=i, pixel_m=p, native=n, status="ok", volume_km3=v, area_km2=1.0,
                           estimated_area_km2=1.0, working_resolution_m=p, resolution_mode="native")
                      for r, i, p, n, v in rows])
    coarse = volume_ratios(g).set_index("pixel_m").loc[200.0]
    assert coarse["total_ratio"] == round(2.7 / 4.0, 3)  # 0.675: the big glacier dominates
    assert coarse["median_ratio"] == round((1.2 + 0.5) / 2, 3)  # 0.85: ratios 1.2 and 0.5
    assert coarse["n"] == 2 and coarse["area_covered"] == 1.0


def test_elevation_bands_sum_whole_bands_and_find_the_half_elevations_by_hand() -> None:
    """Two glaciers' 30 m bands summed into 150 m bands (five whole ones each): areas and volumes add, shares grow to
    1, and the half elevation is interpolated within the band that crosses it."""
    eb = _script("elevation_bands")
    bands = pd.DataFrame({"rgi_id": ["a", "a", "b", "b"], "band_bottom_m": [2970.0, 3000.0, 3000.0, 3120.0],
                          "band_top_m": [3000.0, 3030.0, 3030.0, 3150.0], "area_km2": [1.0, 1.0, 1.0, 1.0],
                          "volume_km3": [0.3, 0.1, 0.1, 0.1]})
    table = eb.region_bands(bands, 150.0)
    assert list(table["band_bottom_m"]) == [2850.0, 3000.0] and list(table["area_km2"]) == [1.0, 3.0]
    assert table["volume_km3"].tolist() == pytest.approx([0.3, 0.3]) and table["mean_thickness_m"].iloc[0] == 300.0
    assert table["area_share_below"].iloc[-1] == 1.0 and table["volume_share_below"].iloc[-1] == pytest.approx(1.0)
    # half the area: 0.25 of it below 3,000 m, the upper band holds 0.75 -> 1/3 of the way up it
    assert eb.half_elevation(table, "area_share_below") == pytest.approx(3050.0)
    assert eb.half_elevation(table, "volume_share_below") == pytest.approx(3000.0)  # exactly at the band's bottom
    glaciers = pd.DataFrame({"rgi_id": ["a", "b"], "status": ["ok", "ok"], "volume_km3": [0.4, 0.2],
                             "estimated_area_km2": [2.0, 2.0]})
    checks = eb.band_consistency(bands, glaciers)
    assert checks["glaciers_with_bands"] == 2 and checks["max_rel_gap_volume"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(SystemExit, match="not a multiple"):
        eb.region_bands(bands, 100.0)
