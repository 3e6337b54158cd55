"""Intervals widened with the distance from the fitted glaciers, and per-glacier coverage helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glacierbed.evaluation.cross_validation import CrossValidation, coverage_spread, per_glacier_coverage
from glacierbed.posterior.calibration import Calibration, IntervalCalibrator, calibration_features, table_features
from glacierbed.posterior.calibration.distance import (DISTANCE_ATTRIBUTES, AttributeDistance, distance_attributes,
                                                       window_attributes)
from glacierbed.posterior.calibration.widening import DistanceWidening, glacier_coverage, widening_factor


def _glacier_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    centre = np.array([0.5, 900.0, 2800.0, 18.0, 46.0, 0.3, 0.0, 1.7])
    spread = np.array([0.5, 300.0, 300.0, 5.0, 1.0, 0.3, 0.3, 0.1])
    return centre + spread * rng.standard_normal((n, len(DISTANCE_ATTRIBUTES)))


def _rows(rng: np.random.Generator, n_glaciers: int = 16, n_far: int = 4, n_cells: int = 150) -> pd.DataFrame:
    """Cells of glaciers close together in attributes (10 % errors) and a few far away (50 % errors)."""
    vecs = _glacier_vectors(rng, n_glaciers + n_far)
    vecs[n_glaciers:, 1:5] += np.array([1500.0, 1500.0, -12.0, 30.0])  # ice caps far north
    parts = []
    for g, vec in enumerate(vecs):
        mu = rng.uniform(20, 200, n_cells)
        noise = 0.5 if g >= n_glaciers else 0.1
        feats = {"h_mc_m": mu, "slope_300m": rng.uniform(0.05, 0.35, n_cells),
                 "dist_margin_m": rng.uniform(20, 800, n_cells), "rel_elevation": rng.uniform(0, 1, n_cells),
                 "log10_area_km2": np.full(n_cells, vec[0]), "elev_range_m": np.full(n_cells, vec[1]),
                 "pixel_size_m": np.full(n_cells, 10 ** vec[7])}
        parts.append(pd.DataFrame({"case": "synthetic", "unit": "cell", "group": f"G{g:02d}", "region": "00",
                                   "example": f"ex{g}", "rgi_id": f"G{g:02d}",
                                   "obs": mu * (1 + noise * rng.standard_normal(n_cells)), "mu": mu,
                                   "sigma": 0.1 * mu, **feats,
                                   **{a: np.full(n_cells, v) for a, v in zip(DISTANCE_ATTRIBUTES, vec)}}))
    return pd.concat(parts, ignore_index=True)


def test_distance_is_zero_at_a_fitted_glacier_and_grows():
    vecs = _glacier_vectors(np.random.default_rng(0), 12)
    dist = AttributeDistance(k=3).fit(vecs)
    assert np.allclose(dist.distance(vecs), 0.0)
    direction = dist.scale * np.eye(len(DISTANCE_ATTRIBUTES))[1]  # one std of elevation range
    d = dist.distance(np.stack([vecs[0] + t * direction for t in (0.0, 0.5, 2.0, 8.0)]))
    assert d[0] == 0.0 and np.all(np.diff(d) > 0)
    # a NaN attribute (latitude unknown) is left out, not a NaN distance
    probe = vecs[0] + 3 * direction
    probe[4] = np.nan
    assert np.isfinite(dist.distance(probe[None]))[0]


def test_widening_factor_is_one_at_fitted_attributes_and_grows_with_distance():
    d = np.array([0.0, 0.5, 1.0, 3.0])
    mu, s = np.full(4, 100.0), np.full(4, 20.0)
    for form, gamma in (("linear", 0.7), ("quadrature", 0.3)):
        f = widening_factor(form, gamma, d, mu, s)
        assert f[0] == 1.0 and np.all(np.diff(f) > 0), form
    assert widening_factor("linear", 0.7, d, mu, s)[2] == pytest.approx(1.7)
    assert widening_factor("quadrature", 0.3, d, mu, s)[2] == pytest.approx(np.sqrt(1 + (0.3 * 100 / 20) ** 2))
    vecs = _glacier_vectors(np.random.default_rng(1), 8)
    wid = DistanceWidening("linear", 0.7, AttributeDistance().fit(vecs))
    feats = {a: np.array([vecs[2, i], vecs[2, i] + 5 * wid.distance.scale[i]]) for i, a in enumerate(DISTANCE_ATTRIBUTES)}
    out = wid.widen(np.array([10.0, 10.0]), np.array([50.0, 50.0]), feats)
    assert out[0] == 10.0 and out[1] > 10.0


def test_widened_interval_fits_round_trips_and_applies_on_a_window(tmp_path):
    rows = _rows(np.random.default_rng(2))
    cal = Calibration([IntervalCalibrator(widening="linear", max_iter=30)]).fit(rows)
    iv = cal.interval
    assert cal.name == "interval@linear" and iv.spread is not None and iv.spread.gamma > 0
    assert Calibration.variant("residual+scale+interval@quadrature").interval.widening == "quadrature"
    cal.model_identity = "a" * 64
    back = Calibration.load(cal.save(tmp_path / "cal.json"))
    feats = table_features(rows)
    a = cal.apply(rows["mu"].to_numpy(float), rows["sigma"].to_numpy(float), feats)
    b = back.apply(rows["mu"].to_numpy(float), rows["sigma"].to_numpy(float), feats)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-5)  # stored trees: float32 ONNX graphs
    assert back.interval.spread.gamma == iv.spread.gamma
    assert back.name == "interval@linear" and back.z90 == cal.z90
    # on a window: the glacier's attributes come from the surface; far from the fitted ones -> wider
    yy, xx = np.mgrid[0:40, 0:50]
    surface = 3000.0 - 10.0 * yy + 2.0 * xx
    ids = np.zeros((40, 50), int)
    ids[8:32, 10:40] = 1
    wa = window_attributes(surface, ids, 50.0, ids > 0, 46.0)
    assert np.isfinite(wa["attr_z_median_m"][ids > 0]).all() and np.isnan(wa["attr_z_median_m"][ids == 0]).all()
    mu, sigma = np.where(ids > 0, 80.0, 0.0), np.where(ids > 0, 8.0, 0.0)
    m, s = back.apply_window(surface, ids, 50.0, mu, sigma, latitude_deg=46.0)
    plain = IntervalCalibrator(**{**vars(back.interval), "spread": None})
    on = ids > 0
    feats_w = {k: v[on] for k, v in calibration_features(surface, ids, 50.0, mu, sigma).items()}
    assert np.isfinite(s[on]).all() and np.all(s[on] >= plain.sigma(mu[on], sigma[on], feats_w) - 1e-9)


def test_distance_attributes_from_a_glacier_row():
    a = distance_attributes({"area_km2": 10.0, "z_range_m": 800.0, "z_median_m": 3000.0, "slope_deg": 20.0,
                             "latitude_deg": -45.0, "northness": -0.5, "hypsometric_index": 1.0, "pixel_size_m": 100.0})
    assert a["attr_log10_area_km2"] == pytest.approx(1.0) and a["attr_abs_latitude_deg"] == 45.0
    assert a["attr_log_hypsometric_index"] == 0.0 and a["attr_log10_pixel_size_m"] == pytest.approx(2.0)


def test_per_glacier_coverage_on_hand_computed_values():
    # glacier A: errors 1, 2, 3, 4 with sigma 2.5, z90 1.5 -> 68 %: 2 of 4; 90 % (3.75): 3 of 4
    # glacier B: errors 0.5, 5 with sigma 1, z90 1.5 -> 68 %: 1 of 2; 90 %: 1 of 2; mean row ignored
    rows = pd.DataFrame({"case": ["c"] * 6 + ["m"], "unit": ["cell"] * 6 + ["glacier_mean"],
                         "rgi_id": ["A"] * 4 + ["B"] * 2 + ["C"], "group": ["A"] * 4 + ["B"] * 2 + ["C"],
                         "region": "00", "obs": [0.0] * 7, "mu_cal": [1, 2, 3, 4, 0.5, 5, 9.0],
                         "sigma_cal": [2.5] * 4 + [1.0, 1.0, 1.0], "z90": 1.5})
    pg = per_glacier_coverage(CrossValidation("v", "group", rows, pd.DataFrame()))
    assert list(pg["rgi_id"]) == ["A", "B"]
    assert pg["coverage68"].tolist() == [0.5, 0.5] and pg["coverage90"].tolist() == [0.75, 0.5]
    s = coverage_spread(pg)
    assert s["coverage90_median"] == pytest.approx(0.625) and s["coverage90_worst"] == 0.5
    assert s["coverage90_p10"] == pytest.approx(0.525) and s["n_glaciers"] == 2
    assert glacier_coverage(np.array([0.5, 2.0, 0.1, 0.2]), 1.0, np.array([1, 1, 2, 2])).tolist() == [0.5, 1.0]
