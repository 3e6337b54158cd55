"""Glacier-level calibration and consensus members: fitting, leakage and the member table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glacierbed.evaluation.glacier_level_cv import (GATE_FLOOR_M, INPAINTER_MEMBER, cross_validated_factors,
                                                    cross_validated_blend, cross_validated_gate, fit_blend,
                                                    gate_target, identity_weights, with_member,
                                                    with_pixel_means)
from glacierbed.posterior.glacier_level import GlacierLevelScale, weighted_global_log_ratio


def test_global_log_ratio_is_the_weighted_mean_by_hand() -> None:
    assert weighted_global_log_ratio([0.0, 1.0, 2.0], [1.0, 1.0, 2.0]) == pytest.approx((0 + 1 + 4) / 4)


def test_ridge_recovers_a_linear_glacier_level_relation() -> None:
    """log(measured / predicted) = 0.3 * member + 0.1 on 40 glaciers: recovered on new glaciers."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"m": rng.normal(0, 1, 40)})
    y = 0.3 * table["m"].to_numpy() + 0.1
    model = GlacierLevelScale(features=("m",), alphas=(0.01, 0.1)).fit(table, y, np.ones(40))
    new = pd.DataFrame({"m": [-1.0, 0.0, 2.0, np.nan]})
    got = model.log_ratio(new)
    assert got[:3] == pytest.approx([-0.2, 0.1, 0.7], abs=0.02)
    assert got[3] == pytest.approx(0.3 * table["m"].mean() + 0.1, abs=0.02)  # a missing member counts as average


def test_leave_one_glacier_out_factors_never_see_their_glacier() -> None:
    """S0 by hand: each glacier's factor is exp(mean log ratio of the others)."""
    table = pd.DataFrame({"group": list("ABCD"), "log_ratio": [0.0, 0.2, 0.4, 2.0], "weight": 1.0})
    factors = cross_validated_factors(table, None, by="group")
    for g, others in {"A": [0.2, 0.4, 2.0], "D": [0.0, 0.2, 0.4]}.items():
        assert factors[g] == pytest.approx(np.exp(np.mean(others)))


def test_member_log_ratio_on_the_same_rows_by_hand() -> None:
    """A: radar points and grid cells (each source weighs the same), B: a glacier mean, C: no member row."""
    rows = pd.DataFrame({
        "group": ["A"] * 5 + ["B", "C"], "case": ["sg"] * 3 + ["grid"] * 2 + ["means", "means"],
        "example": ["sg"] * 3 + ["g"] * 2 + ["m", "m"], "rgi_id": ["a"] * 5 + ["b", "c"],
        "unit": ["point"] * 3 + ["cell"] * 2 + ["glacier_mean"] * 2,
        "mu": [100.0, 100.0, 100.0, 60.0, 60.0, 40.0, 30.0]})
    member = rows[rows["group"] != "C"].assign(mu=[50.0, 50.0, 50.0, 90.0, 90.0, 80.0])
    table = pd.DataFrame({"group": ["A", "B", "C"]})
    out = with_member(table, rows, member, INPAINTER_MEMBER).set_index("group")[INPAINTER_MEMBER]
    assert out["A"] == pytest.approx(np.log(((50 + 90) / 2) / ((100 + 60) / 2)))
    assert out["B"] == pytest.approx(np.log(2.0))
    assert np.isnan(out["C"])


def test_gate_target_by_hand_one_value_per_glacier() -> None:
    """Two rows of glacier g (a grid and a mean) average; negative where model b erred less."""
    t = gate_target(pd.Series([10.0, 0.0, 20.0]), pd.Series([5.0, 10.0, 2.0]), pd.Series(["g", "g", "h"]))
    f = GATE_FLOOR_M
    assert t["g"] == pytest.approx(np.mean([np.log((5 + f) / (10 + f)), np.log((10 + f) / f)]))
    assert t["h"] == pytest.approx(np.log((2 + f) / (20 + f))) and t["h"] < 0


def test_gate_learned_without_the_glacier_picks_by_an_attribute() -> None:
    """Model b is better on the high-latitude glaciers: each held-out glacier gets the right sign,
    and a glacier whose own target contradicts the others is not fitted to itself."""
    lat = np.array([40, 42, 44, 46, 48, 50, 70, 72, 74, 76, 78, 80], float)
    table = pd.DataFrame({"group": [f"g{i}" for i in range(12)], "region": "r", "abs_latitude_deg": lat})
    target = pd.Series(np.where(lat > 60, -0.5, 0.5), index=table["group"])
    pred = cross_validated_gate(table, target, features=("abs_latitude_deg",))
    assert (np.sign(pred[target.index]) == np.sign(target)).all()
    flipped = target.copy()
    flipped["g0"] = -5.0  # a low-latitude glacier that b fits far better: the others still say a
    assert cross_validated_gate(table, flipped, features=("abs_latitude_deg",))["g0"] > 0


def test_identity_weights_give_every_glacier_one_in_total() -> None:
    rows = pd.DataFrame({"group": ["a", "a", "a", "b"]})
    assert identity_weights(rows) == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])


def test_blend_recovers_non_negative_weights_and_clips_a_useless_member() -> None:
    """obs = 0.7 net + 0.3 va exactly; a member anti-correlated with obs gets weight 0."""
    rng = np.random.default_rng(1)
    net, va = rng.uniform(20, 200, 60), rng.uniform(20, 200, 60)
    rows = pd.DataFrame({"group": np.repeat([f"g{i}" for i in range(6)], 10), "net": net, "va": va,
                         "bad": 300 - net, "obs": 0.7 * net + 0.3 * va})
    assert fit_blend(rows, ("net", "va", "bad")) == pytest.approx([0.7, 0.3, 0.0], abs=1e-6)
    blend, weights = cross_validated_blend(rows, ("net", "va", "bad"))
    assert blend.to_numpy() == pytest.approx(rows["obs"].to_numpy(), rel=1e-6)
    assert list(weights.index) == [f"g{i}" for i in range(6)]


def test_glacier_mean_rows_take_their_glaciers_pixel_means() -> None:
    """A glacier-mean row gets its own glacier's pixel means; cells keep theirs; an unknown glacier NaN."""
    rows = pd.DataFrame({"unit": ["cell", "glacier_mean", "glacier_mean"], "example": ["g", "m", "m"],
                         "rgi_id": ["a", "b", "z"], "h_mc_m": [7.0, np.nan, np.nan], "h_sia_m": [1.0, 2.0, 3.0]})
    pixels = pd.DataFrame({"example": ["m", "m", "m", "g"], "rgi_id": ["b", "b", "c", "a"],
                           "h_mc_m": [10.0, 20.0, 99.0, 50.0], "h_sia_m": [4.0, 6.0, 99.0, 50.0]})
    out = with_pixel_means(rows, pixels)
    assert out["h_mc_m"].tolist()[:2] == [7.0, 15.0] and np.isnan(out["h_mc_m"].iloc[2])
    assert out["h_sia_m"].tolist()[:2] == [1.0, 5.0]
    assert rows["h_mc_m"].isna().sum() == 2  # the caller's table is not changed
