"""Calibration on measured thickness: estimators on synthetic tables, splits without leakage,
glacier identity, volume uncertainty, save/load (crafted files refused, never run), the model
a calibration is for, and the measured table of the real kit."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from glacierbed.core.errors import CorruptFileError, GlacierbedError
from glacierbed.evaluation.cross_validation import cross_validate
from glacierbed.evaluation.glacier_identity import canonical_rgi6, glacier_groups, region_of
from glacierbed.evaluation.measured_table import BASELINES, MeasuredSet
from glacierbed.posterior.calibration import (FEATURE_NAMES, GLACIER_KEY, SHIPPED_VARIANT, BoostedTrees, Calibration,
                                              IntervalCalibrator, ResidualBooster, ThicknessScale, apply_to_rows,
                                              calibration_features, glacier_volume_std, glacier_weights, group_kfold,
                                              group_splits, regional_volume_std, table_features, weighted_coverage,
                                              weighted_quantile)


# --------------------------------------------------------------------------------------
# synthetic tables
# --------------------------------------------------------------------------------------
def synthetic_rows(rng: np.random.Generator, n_glaciers: int = 12, n_cells: int = 150, factor: float = 1.0,
                   rel_noise: float = 0.0, abs_noise: float = 0.0) -> pd.DataFrame:
    """Cells of ``n_glaciers`` glaciers: obs = factor * mu * (1 + rel_noise e1) + abs_noise e2,
    with every feature of :data:`FEATURE_NAMES` filled (physically plausible ranges)."""
    parts = []
    for g in range(n_glaciers):
        n = n_cells + g * 10  # unequal sizes: weights must balance glaciers
        mu = rng.uniform(10, 40 + 30 * g, n)
        feats = {
            "h_mc_m": mu * rng.uniform(0.8, 1.2, n), "h_sia_m": mu * rng.uniform(0.7, 1.3, n),
            "slope_100m": rng.uniform(0.05, 0.4, n), "slope_300m": rng.uniform(0.05, 0.35, n),
            "slope_1000m": rng.uniform(0.05, 0.3, n), "dist_margin_m": rng.uniform(20, 800, n),
            "rel_elevation": rng.uniform(0, 1, n), "log10_area_km2": np.full(n, rng.uniform(-0.5, 2)),
            "elev_range_m": np.full(n, rng.uniform(300, 1500)), "pixel_size_m": np.full(n, 30.0),
        }
        obs = factor * mu * (1 + rel_noise * rng.standard_normal(n)) + abs_noise * rng.standard_normal(n)
        parts.append(pd.DataFrame({"case": "synthetic", "unit": "cell", "group": f"G{g:02d}", "region": f"{g % 3:02d}",
                                   "example": f"ex{g}", "rgi_id": f"G{g:02d}", "obs": np.clip(obs, 0, None),
                                   "mu": mu, "sigma": 0.1 * mu, "mu_m": mu, "sigma_m": 0.1 * mu, **feats}))
    return pd.concat(parts, ignore_index=True)


def test_glacier_weights_balance_glaciers_and_cases():
    rows = pd.DataFrame({"group": ["A"] * 10 + ["A"] * 2 + ["B"] * 5, "case": ["radar"] * 10 + ["grid"] * 2 + ["grid"] * 5})
    w = glacier_weights(rows)
    assert w[:10].sum() == pytest.approx(0.5) and w[10:12].sum() == pytest.approx(0.5)
    assert w[12:].sum() == pytest.approx(1.0)


def test_weighted_quantile_and_coverage():
    v = np.arange(1, 101, dtype=float)
    assert weighted_quantile(v, 0.5) == pytest.approx(50.5, abs=0.6)
    # weights: the upper half counts 3x -> the median moves up
    w = np.where(v > 50, 3.0, 1.0)
    assert weighted_quantile(v, 0.5, w) > 60
    assert weighted_coverage(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 0.5


def test_scale_recovers_known_factor():
    rng = np.random.default_rng(0)
    exact = synthetic_rows(rng, factor=1.7)
    assert ThicknessScale().fit(exact).factor == pytest.approx(1.7, rel=1e-9)
    noisy = synthetic_rows(rng, factor=0.6, rel_noise=0.3, abs_noise=2.0)
    assert ThicknessScale().fit(noisy).factor == pytest.approx(0.6, rel=0.05)
    # one glacier with 100x more cells and another factor does not decide it
    big = synthetic_rows(np.random.default_rng(1), n_glaciers=1, n_cells=20000, factor=3.0).assign(group="BIG")
    assert ThicknessScale().fit(pd.concat([exact, big])).factor == pytest.approx(1.7, rel=1e-9)
    mu, sigma = ThicknessScale(factor=2.0).apply(np.array([1.0, 5.0]), np.array([0.5, 1.0]), {})
    assert mu.tolist() == [2.0, 10.0] and sigma.tolist() == [1.0, 2.0]


def test_group_splits_never_put_a_glacier_on_both_sides():
    labels = np.array(["b", "a", "c", "a", "b", "b", "c"])
    seen = []
    for held, train, test in group_splits(labels):
        assert set(labels[test]) == {held}
        assert held not in set(labels[train])
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
        seen.append(held)
    assert seen == ["a", "b", "c"]
    folds = group_kfold(labels, 2, seed=3)
    for train, test in folds:
        assert not set(labels[train]) & set(labels[test])
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(len(labels)))


class _Spy(Calibration):
    """A calibration that records which glaciers each fit saw."""

    seen: list[set[str]] = []

    def fit(self, rows, pixels=None):
        _Spy.seen.append(set(rows["group"].astype(str)))
        return super().fit(rows, pixels)


def test_cross_validation_never_fits_on_the_held_out_glacier():
    rows = synthetic_rows(np.random.default_rng(2), n_glaciers=5, n_cells=60, factor=1.3)
    # one glacier measured twice (radar + grid, like South Glacier): it leaves as a whole
    twin = rows[rows["group"] == "G01"].assign(case="radar", unit="point")
    rows = pd.concat([rows, twin], ignore_index=True)
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    _Spy.seen = []
    cv = cross_validate(ms, lambda: _Spy([ThicknessScale()]), by="group")
    assert len(_Spy.seen) == 5
    for held, seen in zip(sorted(rows["group"].unique()), _Spy.seen):
        assert held not in seen and len(seen) == 4
    assert (cv.rows["fold"] == cv.rows["group"]).all()
    assert len(cv.rows) == len(rows) and cv.rows["mu_cal"].notna().all()
    # by region: a region's glaciers all leave together
    _Spy.seen = []
    cv = cross_validate(ms, lambda: _Spy([ThicknessScale()]), by="region")
    for held, seen in zip(sorted(rows["region"].unique()), _Spy.seen):
        assert not seen & set(rows.loc[rows["region"] == held, "group"])


def test_a_calibration_fitted_elsewhere_predicts_every_row():
    """``predict_with``: a scale-only calibration fitted on other glaciers (factor 1.7 exactly) gives
    every row of a new table 1.7 x its mu and sigma, with its z90, and refits nothing."""
    from glacierbed.evaluation.cross_validation import predict_with

    cal = Calibration([ThicknessScale()]).fit(synthetic_rows(np.random.default_rng(3), factor=1.7))
    new = synthetic_rows(np.random.default_rng(4), n_glaciers=3, factor=0.5)
    pixels = pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"])
    cv = predict_with(cal, MeasuredSet(new, pixels))
    np.testing.assert_allclose(cv.rows["mu_cal"], 1.7 * new["mu"], rtol=1e-9)
    np.testing.assert_allclose(cv.rows["sigma_cal"], 1.7 * new["sigma"], rtol=1e-9)
    assert (cv.rows["z90"] == cal.z90).all() and cal.steps[0].factor == pytest.approx(1.7, rel=1e-9)


def test_cross_validation_can_hold_out_one_label_only():
    """``only``: the named labels are held out (and fitted without); the rest are fitted on only."""
    rows = synthetic_rows(np.random.default_rng(4), n_glaciers=5, n_cells=40, factor=1.3)
    rows["nest"] = np.where(rows["group"].isin(["G00", "G01"]), "held", "fit")
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma",
                                                 "nest"]))
    _Spy.seen = []
    cv = cross_validate(ms, lambda: _Spy([ThicknessScale()]), by="nest", only=["held"])
    assert len(_Spy.seen) == 1 and not _Spy.seen[0] & {"G00", "G01"} and len(_Spy.seen[0]) == 3
    assert set(cv.rows["group"]) == {"G00", "G01"} and cv.rows["mu_cal"].notna().all()


def test_holding_out_a_label_without_pixels_predicts_no_glacier():
    """A nested outer fold whose held-out glaciers have no pixels (leave-one-region-out: the Alps
    alone hold Hintereisferner's) gets no glacier rows; it once got the fitted side's pixels
    uncalibrated, and Hintereisferner's volume was summed over every fold (+425 %)."""
    rows = synthetic_rows(np.random.default_rng(5), n_glaciers=5, n_cells=40, factor=1.3)
    rows["nest"] = np.where(rows["group"].isin(["G00", "G01"]), "held", "fit")
    pixels = rows[rows["group"] == "G03"].assign(pixel_area_m2=900.0)
    cv = cross_validate(MeasuredSet(rows, pixels), "scale", by="nest", only=["held"])
    assert len(cv.glaciers) == 0 and set(cv.rows["group"]) == {"G00", "G01"}
    held_px = cross_validate(MeasuredSet(rows, pixels.assign(nest="held")), "scale", by="nest", only=["held"])
    assert list(held_px.glaciers["rgi_id"]) == ["G03"]
    assert held_px.glaciers["volume_km3"].iloc[0] == pytest.approx(
        held_px.fits["held"]["steps"][0]["factor"] * (pixels["mu"] * 900.0).sum() / 1e9, rel=1e-9)


def test_a_new_case_is_predicted_by_the_fit_on_the_others_never_fitted_on():
    """``cross_validate_on``: leave-one-glacier-out on the fit cases; the other case's rows by one fit
    on all fit-case rows (as the shipped calibration meets the Alps means)."""
    from glacierbed.evaluation.cross_validation import cross_validate_on

    rows = synthetic_rows(np.random.default_rng(7), n_glaciers=6, n_cells=30, factor=1.3)
    rows.loc[rows["group"].isin(["G04", "G05"]), "case"] = "new"
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    _Spy.seen = []
    cv = cross_validate_on(ms, lambda: _Spy([ThicknessScale()]), ["synthetic"])
    assert all(not seen & {"G04", "G05"} for seen in _Spy.seen)
    assert len(_Spy.seen) == 5 and _Spy.seen[-1] == {"G00", "G01", "G02", "G03"}  # 4 LOGO fits + the one fit
    assert len(cv.rows) == len(rows) and cv.rows["mu_cal"].notna().all()
    assert np.median(cv.rows["mu_cal"] / cv.rows["mu"]) == pytest.approx(1.3, rel=0.05)


def test_a_new_case_row_of_a_fitted_glacier_is_predicted_without_that_glacier():
    """A glacier of the new case that the fit cases also hold (an Alps mean of a GlaThiDa grid glacier)
    is predicted by a fit without its own rows; the reference once saw them (audit, stop 30)."""
    from glacierbed.evaluation.cross_validation import cross_validate_on

    rows = synthetic_rows(np.random.default_rng(7), n_glaciers=6, n_cells=30, factor=1.3)
    rows.loc[rows["group"].isin(["G04", "G05"]), "case"] = "new"
    extra = rows[rows["group"] == "G03"].head(5).assign(case="new")  # G03 measured in both cases
    ms = MeasuredSet(pd.concat([rows, extra], ignore_index=True),
                     pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    _Spy.seen = []
    cv = cross_validate_on(ms, lambda: _Spy([ThicknessScale()]), ["synthetic"])
    # 4 LOGO fits, the fit on all for G04/G05, the fit without G03 for G03's new rows
    assert _Spy.seen[4:] == [{"G00", "G01", "G02", "G03"}, {"G00", "G01", "G02"}]
    new = cv.rows[cv.rows["case"] == "new"]
    assert len(new) == int((rows["case"] == "new").sum()) + 5 and new["mu_cal"].notna().all()
    assert set(new.loc[new["group"] == "G03", "fold"]) == {"other"}


def test_holding_out_a_label_without_rows_predicts_no_row():
    """``only`` a label with pixels but no measured row: no row comes back (they once were the fitted
    side's rows, uncalibrated), its glacier is predicted."""
    rows = synthetic_rows(np.random.default_rng(5), n_glaciers=4, n_cells=40, factor=1.3).assign(nest="fit")
    pixels = rows[rows["group"] == "G03"].assign(pixel_area_m2=900.0, nest="held")
    cv = cross_validate(MeasuredSet(rows, pixels), "scale", by="nest", only=["held"])
    assert len(cv.rows) == 0 and {"mu_cal", "sigma_cal", "z90"} <= set(cv.rows.columns)
    assert list(cv.glaciers["rgi_id"]) == ["G03"]


def test_acceptance_summary_share_of_glaciers_with_small_bias_by_hand():
    """Two grid glaciers: one 10 % too thick (within 20 %), one 50 % too thick: share 0.5."""
    from glacierbed.evaluation.cross_validation import CrossValidation, acceptance_summary

    obs = np.array([100.0, 100.0, 40.0, 40.0])
    rows = pd.DataFrame({"case": "glathida-grids", "unit": "cell", "rgi_id": ["A", "A", "B", "B"],
                         "group": ["A", "A", "B", "B"], "region": ["01", "01", "02", "02"], "obs": obs,
                         "mu_cal": [110.0, 110.0, 60.0, 60.0], "sigma_cal": 10.0, "z90": 1.645,
                         **{f"base_{b}": obs + 30.0 for b in BASELINES}})
    s = acceptance_summary(CrossValidation("x", "group", rows, pd.DataFrame()))
    assert s["grids_share_bias_within_20pct"] == pytest.approx(0.5)
    assert s["grids_median_ratio"] == pytest.approx(np.median([10 / 30, 20 / 30]))
    assert s["grids_geomean_ratio"] == pytest.approx(np.sqrt(10 / 30 * 20 / 30))
    assert np.isnan(s["south_glacier_rmse_m"]) and "alps_means_rmse_m" not in s


def test_identity_rgi5_to_rgi6_and_location():
    assert canonical_rgi6("RGI50-11.00719_d01") == "RGI60-11.00719"
    assert canonical_rgi6("RGI60-01.16195") == "RGI60-01.16195"
    assert region_of("RGI50-11.00897") == "11" and region_of("glacier-00001") == ""
    assert region_of("RGI2000-v7.0-G-01-00001") == "01" and region_of("RGI60-11.00897_d01") == "11"  # RGI 7; divides
    sq = shapely.box(10.0, 46.0, 10.02, 46.02)
    entries = pd.DataFrame([
        {"example": "south-glacier", "rgi_id": "RGI60-01.16195", "geometry": None, "located": True},
        {"example": "glathida-RGI60-01.16195", "rgi_id": "RGI60-01.16195", "geometry": None, "located": False},
        {"example": "oetztal", "rgi_id": "RGI50-11.00719_d01", "geometry": None, "located": True},
        {"example": "oetztal", "rgi_id": "RGI50-11.00719_d02", "geometry": None, "located": True},
        # same glacier under two unrelated ids, both placed on Earth reliably: merged by location
        {"example": "a", "rgi_id": "X-1", "geometry": sq, "located": True},
        {"example": "b", "rgi_id": "Y-1", "geometry": shapely.affinity.translate(sq, 0.001, 0), "located": True},
        # a neighbour sharing a sliver: kept apart; an approximate position: never merged by location
        {"example": "c", "rgi_id": "Z-1", "geometry": shapely.affinity.translate(sq, 0.0199, 0), "located": True},
        {"example": "d", "rgi_id": "W-1", "geometry": sq, "located": False},
    ])
    mapping, report = glacier_groups(entries)
    assert mapping[("south-glacier", "RGI60-01.16195")] == mapping[("glathida-RGI60-01.16195", "RGI60-01.16195")]
    assert mapping[("oetztal", "RGI50-11.00719_d01")] == mapping[("oetztal", "RGI50-11.00719_d02")] == "RGI60-11.00719"
    assert mapping[("a", "X-1")] == mapping[("b", "Y-1")]
    assert mapping[("c", "Z-1")] != mapping[("a", "X-1")] and mapping[("d", "W-1")] == "W-1"
    assert "neighbours (kept apart)" in set(report["relation"])


def test_interval_calibration_gives_requested_coverage():
    rng = np.random.default_rng(4)
    train = synthetic_rows(rng, n_glaciers=20, n_cells=200, rel_noise=0.25, abs_noise=3.0)
    test = synthetic_rows(np.random.default_rng(5), n_glaciers=20, n_cells=200, rel_noise=0.25, abs_noise=3.0)
    for method in ("parametric", "boosted"):
        iv = IntervalCalibrator(method=method).fit(train)
        feats = {n: test[n].to_numpy(float) for n in FEATURE_NAMES}
        mu, sigma = iv.apply(test["mu"].to_numpy(float), test["sigma"].to_numpy(float), feats)
        err = np.abs(test["obs"].to_numpy(float) - mu)
        assert np.mean(err <= sigma) == pytest.approx(0.68, abs=0.03), method
        assert np.mean(err <= iv.z90 * sigma) == pytest.approx(0.90, abs=0.03), method
        # heteroscedastic: thick ice gets the wider interval
        assert np.corrcoef(mu, sigma)[0, 1] > 0.8


def test_glacier_level_coverage_on_hand_computed_values():
    """Glacier units scored against the glacier-level sigma of the fit that predicted them: cells with
    full correlation (sigma = mean of the cells' sigma), none (sqrt of the sum of squares / n, times the
    factor), a glacier-mean row with its own sigma; a glacier measured twice weighs half per unit."""
    from glacierbed.evaluation.cross_validation import CrossValidation, glacier_level_coverage, glacier_level_summary

    def cells(group, case, mu, obs, sigma):
        return pd.DataFrame({"group": group, "case": case, "region": "01", "unit": "cell", "fold": group,
                             "mu_cal": mu, "obs": obs, "sigma_cal": sigma, "z90": np.nan})

    rows = pd.concat([
        cells("G1", "grid", [10.0, 20, 30, 40], [5.0, 15, 25, 35], 4.0),  # error 5, sigma 4, 90 %: 8
        cells("G1", "radar", [10.0, 10], [10.0, 10], 4.0),                # error 0
        cells("G2", "grid", [10.0] * 4, [7.0] * 4, 4.0),                  # error 3, sigma 2 * sqrt(64) / 4 = 4
        pd.DataFrame({"group": ["G3"], "case": ["means"], "region": ["11"], "unit": ["glacier_mean"], "fold": ["G3"],
                      "mu_cal": [50.0], "obs": [30.0], "sigma_cal": [10.0], "z90": [1.5]}),  # error 20 > 15
    ], ignore_index=True)
    interval = {"kind": "interval", "glacier_correlation": 1.0, "glacier_factor": 1.0, "glacier_z90": 2.0}
    fits = {"G1": {"steps": [interval]},
            "G2": {"steps": [{**interval, "glacier_correlation": 0.0, "glacier_factor": 2.0, "glacier_z90": 1.5}]},
            "G3": {"steps": [interval]}}
    units = glacier_level_coverage(CrossValidation("v", "group", rows, pd.DataFrame(), fits)).set_index(["group", "case"])
    assert units.loc[("G1", "grid"), "sigma_m"] == pytest.approx(4.0)
    assert units.loc[("G2", "grid"), "sigma_m"] == pytest.approx(4.0)
    assert units.loc[("G1", "grid"), "error_m"] == pytest.approx(5.0)
    assert list(units["covered68"]) == [False, True, True, False] and list(units["covered90"]) == [True, True, True, False]
    summary = glacier_level_summary(units.reset_index()).set_index("case")
    assert summary.loc["all glaciers", "coverage68"] == pytest.approx((0.5 * 0 + 0.5 * 1 + 1 + 0) / 3)
    assert summary.loc["all glaciers", "coverage90"] == pytest.approx((0.5 + 0.5 + 1 + 0) / 3)
    assert summary.loc["all glaciers", "n_glaciers"] == 3 and summary.loc["grid", "coverage68"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no interval step"):
        glacier_level_coverage(CrossValidation("v", "group", rows, pd.DataFrame(), {}))


def test_interval_glacier_units_by_variant_name():
    """``interval:all``: the glacier level fitted on every glacier unit; ``interval~parametric``: the sigma's form;
    the names round-trip."""
    cal = Calibration.variant("residual+scale+interval:all")
    assert cal.steps[2].glacier_units == "all" and cal.name == "residual+scale+interval:all"
    assert Calibration.variant("interval@linear:means").steps[0].label == "interval@linear:means"
    parametric = Calibration.variant("residual+scale+interval~parametric:all")  # the sigma's form, then the units
    assert parametric.steps[2].method == "parametric" and parametric.name == "residual+scale+interval~parametric:all"
    with pytest.raises(ValueError, match="only an interval step"):
        Calibration.variant("scale~parametric+interval")
    iv = IntervalCalibrator(glacier_units="all").fit(synthetic_rows(np.random.default_rng(2), n_glaciers=12,
                                                                     rel_noise=0.2))
    assert iv.n_glacier_units == 12 and 0.0 <= iv.glacier_correlation <= 1.0
    with pytest.raises(ValueError, match="only an interval step"):
        Calibration.variant("scale:all+interval")
    with pytest.raises(ValueError, match="glacier_units"):
        IntervalCalibrator(glacier_units="some").fit(synthetic_rows(np.random.default_rng(2), rel_noise=0.2))


def test_glacier_tail_gauss_fixes_only_the_90_multiplier():
    """``interval^gauss``: the glacier level's 90 % multiplier is the normal 1.645 instead of the units' quantile ratio;
    its 68 % part (correlation, factor) and the pixel interval are the fitted design's; the label round-trips and an
    unknown tail is refused where it is named."""
    rows = synthetic_rows(np.random.default_rng(5), n_glaciers=12, rel_noise=0.3)
    fitted = IntervalCalibrator(method="parametric", glacier_units="all").fit(rows)
    gauss = IntervalCalibrator(method="parametric", glacier_units="all", glacier_tail="gauss").fit(rows)
    assert gauss.glacier_z90 == pytest.approx(1.6448536)
    assert fitted.glacier_z90 != pytest.approx(1.6448536)  # the ratio of two quantiles of 12 glaciers
    assert (gauss.glacier_correlation, gauss.glacier_factor, gauss.k, gauss.z90) == (
        fitted.glacier_correlation, fitted.glacier_factor, fitted.k, fitted.z90)
    assert IntervalCalibrator.from_dict(gauss.to_dict()).glacier_tail == "gauss"
    name = "residual+scale+interval~parametric^gauss:all"
    assert Calibration.variant(name).name == name and Calibration.variant(name).steps[2].glacier_tail == "gauss"
    with pytest.raises(ValueError, match="glacier_tail"):
        Calibration.variant("interval^gauss@linear")  # the widening comes before the tail
    with pytest.raises(ValueError, match="only an interval step"):
        Calibration.variant("scale^gauss+interval")


def test_volume_std_on_hand_computed_values():
    sigma, area = np.array([1.0, 2.0, 3.0]), 100.0
    assert glacier_volume_std(sigma, area) == pytest.approx(600.0 / 1e9)  # fully correlated: sum
    assert glacier_volume_std(sigma, area, 0.0) == pytest.approx(np.sqrt(14.0) * 100 / 1e9)  # quadrature
    assert glacier_volume_std(sigma, area, 0.5) == pytest.approx(5.0 * 100 / 1e9)  # sqrt(0.5*14 + 0.5*36)
    assert glacier_volume_std(np.array([1.0, np.nan]), area) == pytest.approx(100.0 / 1e9)
    assert regional_volume_std([1.0, 2.0, 2.0]) == pytest.approx(5.0)  # linear, correlated
    assert regional_volume_std([1.0, 2.0, 2.0], correlation=0.0) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        regional_volume_std([1.0], correlation=1.5)
    # no interval step: fully correlated
    assert Calibration().volume_std_km3(sigma, area) == pytest.approx(600.0 / 1e9)


def test_trees_are_sklearn_and_round_trip_through_onnx():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(6)
    x = rng.normal(size=(3000, 4))
    x[::17, 2] = np.nan
    y = x[:, 0] - 0.5 * np.nan_to_num(x[:, 2]) + 0.1 * rng.normal(size=3000)
    hp = dict(max_iter=30, learning_rate=0.1, max_depth=3, max_leaf_nodes=8, min_samples_leaf=20,
              l2_regularization=1.0, seed=0)
    trees = BoostedTrees.fit(x, y, np.ones(len(y)), **hp)
    est = HistGradientBoostingRegressor(max_iter=30, learning_rate=0.1, max_depth=3, max_leaf_nodes=8,
                                        min_samples_leaf=20, l2_regularization=1.0, early_stopping=False,
                                        random_state=0).fit(x, y, sample_weight=np.ones(len(y)))
    assert np.array_equal(trees.predict(x), est.predict(x))  # the library's own model and prediction
    d = json.loads(json.dumps(trees.to_dict()))
    back = BoostedTrees.from_dict(d, 4)
    assert back.model is None  # applied by onnxruntime, not scikit-learn
    # float32 trees: equal to float32 rounding, except where a feature is within float32 precision of a split
    diff = np.abs(back.predict(x) - trees.predict(x))
    assert np.quantile(diff, 0.999) < 1e-5 and back.predict(x[:0]).shape == (0,)
    assert np.isnan(x[:, 2]).any() and np.abs(back.predict(x[::17]) - est.predict(x[::17])).max() < 1e-5  # NaN routes kept
    with pytest.raises(CorruptFileError, match="on 5 features"):
        BoostedTrees.from_dict(d, 5)


def _fitted_calibration(rng: np.random.Generator) -> tuple[Calibration, pd.DataFrame]:
    rows = synthetic_rows(rng, n_glaciers=10, n_cells=120, factor=1.4, rel_noise=0.2)
    rows["obs"] *= 1 + 0.3 * (rows["rel_elevation"] - 0.5)  # a shape for the residual to learn
    cal = Calibration.variant("residual+scale+interval", inner_folds=3).fit(rows)
    cal.model_identity = "a" * 64
    return cal, rows


def test_calibration_round_trip(tmp_path):
    cal, rows = _fitted_calibration(np.random.default_rng(6))
    assert [s.kind for s in cal.steps] == ["residual", "scale", "interval"]
    assert cal.trained_on["n_glaciers"] == 10 and cal.trained_on["cases"] == {"synthetic": len(rows)}
    path = cal.save(tmp_path / "cal.json")
    back = Calibration.load(path)
    feats = table_features(rows)  # the features and each row's glacier
    a = cal.apply(rows["mu"].to_numpy(float), rows["sigma"].to_numpy(float), feats)
    b = back.apply(rows["mu"].to_numpy(float), rows["sigma"].to_numpy(float), feats)
    # stored trees are float32 ONNX graphs: the same to float32 rounding
    np.testing.assert_allclose(b[0], a[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-5, atol=1e-4)
    assert back.z90 == cal.z90 and back.glacier_correlation == cal.glacier_correlation
    assert back.trained_on == cal.trained_on and back.model_identity == cal.model_identity
    assert back.source == str(path)
    # saving a loaded calibration writes the same steps (a refit of one step keeps the others byte for byte)
    assert [s.to_dict() for s in back.steps] == [s.to_dict() for s in cal.steps]
    # table rows and arrays agree
    t = apply_to_rows(cal.steps, rows)
    assert np.allclose(t["mu"], a[0]) and np.allclose(t["sigma"], a[1])
    # the residual only moves ice within each glacier: its mean is the model's (x the scale step)
    res = cal.steps[0].apply(rows["mu"].to_numpy(float), rows["sigma"].to_numpy(float), feats)[0]
    by = rows.assign(new=res).groupby(["example", "rgi_id"])
    np.testing.assert_allclose(by["new"].mean(), by["mu"].apply(lambda m: m.clip(lower=0).mean()), rtol=1e-9)
    assert not np.allclose(res, rows["mu"])  # but it does reshape
    # a calibration for another model is refused, naming the file and both identities
    back.check_model_identity("a" * 64)
    with pytest.raises(CorruptFileError) as err:
        back.check_model_identity("b" * 64)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "a" * 64 in msg and "b" * 64 in msg
    with pytest.raises(CorruptFileError, match="unrecorded"):
        Calibration.variant("scale").check_model_identity("b" * 64)


def test_crafted_calibration_files_are_refused(tmp_path):
    cal, _ = _fitted_calibration(np.random.default_rng(8))
    good = cal.to_dict()
    other = BoostedTrees.fit(np.random.default_rng(0).normal(size=(500, 3)), np.arange(500.0), np.ones(500),
                             max_iter=5, learning_rate=0.1, max_depth=2, max_leaf_nodes=4, min_samples_leaf=20,
                             l2_regularization=1.0, seed=0)
    payloads = {
        "garbage": "not base64 at all!",
        "not_onnx": base64.b64encode(b"PK\x03\x04 garbage").decode(),
        "wrong_features": other.to_dict()["data"],
    }
    for what, data in payloads.items():
        d = json.loads(json.dumps(good))
        d["steps"][0]["trees"]["data"] = data
        path = tmp_path / f"{what}.json"
        path.write_text(json.dumps(d))
        with pytest.raises(GlacierbedError) as err:
            Calibration.load(path)
        assert isinstance(err.value, CorruptFileError), what
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value), (what, str(err.value))
    # the untouched payload loads; an old (v2 skops, v1 tree arrays) file or another kind of file is refused
    (tmp_path / "ok.json").write_text(json.dumps(good))
    Calibration.load(tmp_path / "ok.json")
    for version in (1, 2):
        (tmp_path / "old.json").write_text(json.dumps({**good, "version": version}))
        with pytest.raises(CorruptFileError, match="refit"):
            Calibration.load(tmp_path / "old.json")
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(CorruptFileError):
        Calibration.load(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text('[1, 2]')
    with pytest.raises(CorruptFileError):
        Calibration.load(tmp_path / "list.json")


def test_shipped_calibration_is_for_the_shipped_weights():
    import glacierbed

    weights = Path(glacierbed.__file__).parent / "weights" / "thickness_net.pt"
    record = json.loads(weights.with_suffix(".json").read_text())
    cal = Calibration.load(weights.with_name("thickness_net.calibration.json"))
    assert cal.name == SHIPPED_VARIANT
    cal.check_model_identity(record["weights_sha256"])


def test_residual_keeps_margin_at_zero_and_apply_window():
    rows = synthetic_rows(np.random.default_rng(7), n_glaciers=6, n_cells=150, factor=1.5)
    cal = Calibration([ResidualBooster(target="log_ratio", max_iter=20), ThicknessScale()]).fit(rows)
    # a window: a tilted plane with one glacier
    yy, xx = np.mgrid[0:40, 0:50]
    surface = 3000.0 - 10.0 * yy + 2.0 * xx
    ids = np.zeros((40, 50), int)
    ids[8:32, 10:40] = 1
    mu = np.where(ids > 0, 50.0, 0.0)
    mu[8, 10:40] = 0.0  # the margin row of the model's map
    sigma = np.where(ids > 0, 5.0, 0.0)
    feats = calibration_features(surface, ids, 30.0, mu, sigma)
    assert set(feats) == {*FEATURE_NAMES, GLACIER_KEY} and all(np.isfinite(v).all() for v in feats.values())
    assert (feats[GLACIER_KEY] == ids).all()
    m, _ = cal.apply_window(surface, ids, 30.0, mu, sigma)
    assert np.isnan(m[ids == 0]).all() and np.isfinite(m[ids > 0]).all() and (m[ids > 0] >= 0).all()
    assert (m[8, 11:39] == 0).all()  # margin stays 0
    assert m[20, 25] > 50.0  # the scale (~1.5) lifts the interior


def test_measured_table_on_two_real_grids(data_dir, tmp_path):
    """Two small GlaThiDa grids, biharmonic without physics: one row per observed cell, finite predictions."""
    from glacierbed.data import registry
    from glacierbed.data.observations import match_points_to_glaciers, read_thickness_grid
    from glacierbed.data.outlines import read_outlines
    from glacierbed.evaluation.measured_table import collect

    ids = ["RGI60-11.01962", "RGI60-11.02600"]
    ms = collect(tmp_path, "biharmonic", physics=False, cases=("glathida-grids",), glaciers=ids, ensemble=2,
                 baselines=False)
    for rid in ids:
        ex = registry.get_example(f"glathida-{rid}")
        cells = read_thickness_grid(ex.observations)
        inside = match_points_to_glaciers(cells, read_outlines(ex.outlines))["rgi_id"].notna().to_numpy()
        got = ms.rows[ms.rows["rgi_id"] == rid]
        assert len(got) == inside.sum() > 200
        assert np.allclose(np.sort(got["obs"]), np.sort(cells["thickness_m"].to_numpy()[inside]))
        assert got["group"].eq(rid).all() and got["region"].eq("11").all()
    cols = ["obs", "mu", "sigma", *FEATURE_NAMES]
    assert np.isfinite(ms.rows[cols].to_numpy(float)).all()
    assert (ms.rows["mu"] >= 0).all() and ms.rows["mu"].mean() > 0
    assert ms.info["model"] == "biharmonic" and not ms.info["physics"]
    # a rerun resumes from the cached table, and gets exactly what the first run used: fits on a fresh and on a
    # cached table must not differ (boosted-tree bins flip on a 1e-10 rounding)
    again = collect(tmp_path, "biharmonic", physics=False, cases=("glathida-grids",), glaciers=ids, ensemble=2,
                    baselines=False)
    pd.testing.assert_frame_equal(again.rows, ms.rows, check_exact=True)


def test_south_glacier_radar_and_its_grid_are_one_glacier(data_dir):
    """The real outlines: South Glacier's radar case and GlaThiDa grid RGI60-01.16195 share a group;
    Gepatschferner's grid and its Ötztal outline too (tier-A position)."""
    from glacierbed.evaluation.glacier_identity import identity_entries

    entries = identity_entries([("south-glacier", "south-glacier"), ("glathida-grids", "glathida-RGI60-01.16195"),
                                 ("glathida-grids", "glathida-RGI60-11.00746"), ("oetztal-means", "oetztal")])
    mapping, report = glacier_groups(entries)
    assert mapping[("south-glacier", "RGI60-01.16195")] == mapping[("glathida-RGI60-01.16195", "RGI60-01.16195")]
    assert mapping[("glathida-RGI60-11.00746", "RGI60-11.00746")] == mapping[("oetztal", "RGI50-11.00746")]
    sg = report[report["a"].str.contains("01.16195") & report["b"].str.contains("01.16195")]
    assert len(sg) == 1 and sg["overlap_of_smaller"].iloc[0] > 0.8


def test_interval_fitted_on_other_maps_keeps_the_scale_and_covers_those_maps():
    """``interval_rows``: the interval describes the errors of other maps of the same glaciers (e.g. another
    margin profile) while the scale stays the one fitted on ``rows``; with ``rows`` themselves nothing changes."""
    rng = np.random.default_rng(11)
    rows = synthetic_rows(rng, n_glaciers=15, n_cells=120, factor=1.5, rel_noise=0.1, abs_noise=2.0)
    plain = Calibration.variant("scale+interval").fit(rows)
    same = Calibration.variant("scale+interval").fit(rows, interval_rows=rows)
    assert [s.to_dict() for s in same.steps] == [s.to_dict() for s in plain.steps]
    other = rows.assign(mu=rows["mu"] * 1.3 + 5.0 * rng.standard_normal(len(rows)))  # thicker, noisier maps
    both = Calibration.variant("scale+interval").fit(rows, interval_rows=other)
    assert both.steps[0].factor == plain.steps[0].factor
    w = glacier_weights(other)
    cover = {}
    for name, cal in (("plain", plain), ("both", both)):
        pred = apply_to_rows(cal.steps, other)
        cover[name] = weighted_coverage(np.abs(other["obs"].to_numpy() - pred["mu"].to_numpy()),
                                        pred["sigma"].to_numpy(), w)
    assert cover["both"] == pytest.approx(0.68, abs=0.05)
    assert cover["plain"] < 0.5  # the zero-map interval is too narrow for the other maps' errors
    with pytest.raises(GlacierbedError, match="interval rows hold glaciers"):
        Calibration.variant("scale+interval").fit(rows, interval_rows=other.assign(group="NEW"))


def test_cross_validation_never_fits_the_interval_on_the_held_out_glaciers_other_maps():
    """``interval_on``'s rows of the held-out glacier never reach its fit: poisoning them changes nothing."""
    rng = np.random.default_rng(12)
    rows = synthetic_rows(rng, n_glaciers=8, n_cells=80, factor=1.2, rel_noise=0.1, abs_noise=2.0)
    no_pixels = pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"])
    ms = MeasuredSet(rows, no_pixels)
    other = rows.assign(mu=rows["mu"] * 1.2)
    poisoned = other.assign(mu=np.where(other["group"] == "G03", other["mu"] * 50.0, other["mu"]))
    clean = cross_validate(ms, "scale+interval", only=["G03"], interval_on=MeasuredSet(other, no_pixels))
    dirty = cross_validate(ms, "scale+interval", only=["G03"], interval_on=MeasuredSet(poisoned, no_pixels))
    assert np.array_equal(clean.rows["sigma_cal"].to_numpy(), dirty.rows["sigma_cal"].to_numpy())
    # and the other maps do reach the fit: poisoning a fitted glacier moves the held-out interval
    moved = cross_validate(ms, "scale+interval", only=["G03"], interval_on=MeasuredSet(
        other.assign(mu=np.where(other["group"] == "G05", other["mu"] * 50.0, other["mu"])), no_pixels))
    assert not np.array_equal(clean.rows["sigma_cal"].to_numpy(), moved.rows["sigma_cal"].to_numpy())


def test_refitting_the_interval_alone_keeps_the_other_steps_and_equals_a_full_fit():
    rng = np.random.default_rng(13)
    rows = synthetic_rows(rng, n_glaciers=12, n_cells=100, factor=0.8, rel_noise=0.15, abs_noise=2.0)
    other = rows.assign(mu=rows["mu"] * 1.25)
    full = Calibration.variant("residual+scale+interval").fit(rows, interval_rows=other)
    shipped = Calibration.variant("residual+scale+interval").fit(rows)
    residual, scale = shipped.steps[0].to_dict(), shipped.steps[1].to_dict()
    shipped.refit_interval(rows, interval_rows=other)
    assert shipped.steps[0].to_dict() == residual and shipped.steps[1].to_dict() == scale
    assert [s.to_dict() for s in shipped.steps] == [s.to_dict() for s in full.steps]
    with pytest.raises(GlacierbedError, match="no interval step"):
        Calibration.variant("scale").fit(rows).refit_interval(rows)


def test_measured_table_gives_south_glacier_its_smb_raster(tmp_path, data_dir):
    """``collect(smb=True)``: South Glacier's estimate gets the kit's mass-balance raster (its physics term moves the
    biharmonic fill's thickness at the radar points), in a folder of its own beside the run without, which the
    SMB-free table keeps reusing; the radar rows themselves are the same points."""
    from glacierbed.data import registry
    from glacierbed.evaluation.measured_table import collect

    assert registry.get_example("south-glacier").extras["smb"].name == "mb_SouthGlacier.tif"
    kw = dict(physics=True, cases=("south-glacier",), ensemble=1, baselines=False)
    plain = collect(tmp_path, "biharmonic", **kw)
    with_smb = collect(tmp_path, "biharmonic", smb=True, **kw)
    assert with_smb.info["smb"] and not plain.info["smb"]
    pd.testing.assert_frame_equal(plain.rows[["x", "y", "obs"]], with_smb.rows[["x", "y", "obs"]])
    moved = np.abs(with_smb.rows["mu"].to_numpy() - plain.rows["mu"].to_numpy())
    assert np.median(moved) > 1.0  # metres of ice: the SMB's flux divergence reshapes the bed
    assert (with_smb.rows["mu"] >= 0).all()
    folders = {p.name for p in Path(plain.info["run_dir"]).iterdir()}
    assert {"south-glacier", "south-glacier-smb"} <= folders
    again = collect(tmp_path, "biharmonic", **kw)  # the SMB-free table is still the cached one
    pd.testing.assert_frame_equal(again.rows, plain.rows, check_exact=True)
