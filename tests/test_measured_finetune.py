"""Fine-tuning the thickness network on measured thickness (issue 16, item 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from glacierbed.evaluation.measured_finetune import _binned, glacier_folds, measured_windows
from glacierbed.evaluation.measured_table import MeasuredSet


class _Grid:
    shape = (4, 5)
    transform = Affine(10.0, 0.0, 1000.0, 0.0, -10.0, 2000.0)


def test_measurements_are_averaged_per_pixel_and_outside_ones_dropped() -> None:
    rows = pd.DataFrame({"x": [1001.0, 1009.0, 1025.0, 2000.0], "y": [1999.0, 1991.0, 1975.0, 1975.0],
                         "obs": [10.0, 20.0, 7.0, 99.0]})
    truth = _binned(_Grid(), rows)
    assert truth[0, 0] == pytest.approx(15.0)  # two points in the top-left pixel
    assert truth[2, 2] == pytest.approx(7.0)
    assert np.isfinite(truth).sum() == 2  # the point at x = 2000 lies east of the grid


def test_folds_hold_every_glacier_once_and_spread_regions() -> None:
    groups = [f"RGI60-{r}.{i:05d}" for r in ("01", "03", "11") for i in range(5)]
    rows = pd.DataFrame({"group": groups, "region": [g[6:8] for g in groups]})
    pixels = pd.DataFrame({"group": groups[:3] + ["RGI60-11.99999"]})
    folds = glacier_folds(MeasuredSet(rows, pixels), 4)
    assert set(folds) == set(groups) | {"RGI60-11.99999"}
    sizes = np.bincount([folds[g] for g in groups], minlength=4)
    assert sizes.max() - sizes.min() <= 1
    for k in range(4):  # no fold is one region
        assert len({g[6:8] for g in groups if folds[g] == k}) >= 2


def test_region_folds_hold_out_one_whole_region_each() -> None:
    """Leave-one-region-out: fold k is exactly the glaciers of the k-th region (pixel-only glaciers by their
    region too); a fold count other than the number of regions is refused, naming the regions."""
    groups = [f"RGI60-{r}.{i:05d}" for r in ("01", "03", "11") for i in range(5)]
    rows = pd.DataFrame({"group": groups, "region": [g[6:8] for g in groups]})
    pixels = pd.DataFrame({"group": ["RGI60-11.99999"], "region": ["11"]})
    folds = glacier_folds(MeasuredSet(rows, pixels), 3, by="region")
    assert {k: sorted(g for g, f in folds.items() if f == k) for k in range(3)} == {
        0: groups[:5], 1: groups[5:10], 2: groups[10:] + ["RGI60-11.99999"]}
    with pytest.raises(ValueError, match="folds = 3 \\(regions 01, 03, 11\\)"):
        glacier_folds(MeasuredSet(rows, pixels), 6, by="region")
    from glacierbed.evaluation.measured_finetune import with_folds_by
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig

    cfg = MeasuredFinetuneConfig(folds=6)
    assert with_folds_by(cfg, MeasuredSet(rows, pixels), "region").folds == 3
    assert with_folds_by(cfg, MeasuredSet(rows, pixels), "group") is cfg


def test_a_grid_glaciers_window_carries_its_measured_cells(data_dir: Path, tmp_path: Path) -> None:
    """The window is the estimate stage's own (the shipped network's feature stack), and every
    measured cell of the real grid lands on one of its pixels with its value."""
    from glacierbed.data import registry
    from glacierbed.data.observations import read_thickness_grid
    from glacierbed.models.thickness.features import N_FEATURES

    example = "glathida-RGI60-11.00746"
    obs = read_thickness_grid(registry.get_example(example).observations)
    rows = pd.DataFrame({"case": "glathida-grids", "example": example, "unit": "cell", "rgi_id": "RGI60-11.00746",
                         "group": "RGI60-11.00746", "x": obs.geometry.x, "y": obs.geometry.y,
                         "obs": obs["thickness_m"]})
    (w,) = measured_windows(MeasuredSet(rows, pd.DataFrame()), None, tmp_path)
    assert w.features.shape == (N_FEATURES, *w.own.shape)
    assert w.n_measured == len(rows)  # the grid's cells are the working grid's pixels here
    assert np.nansum(w.truth) == pytest.approx(rows["obs"].sum(), rel=1e-5)
    assert w.own[np.isfinite(w.truth)].mean() > 0.9  # measurements lie on the glacier
    assert np.isnan(w.mean_m)


def test_fine_tuning_moves_the_network_toward_the_measurements(tmp_path: Path) -> None:
    """A dome glacier whose measured thickness is twice the network's: after fine-tuning (no
    simulated batches) the network is closer on those pixels, and the record names the glacier."""
    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, finetune_on_measured
    from glacierbed.models.thickness.runtime import ThicknessNetPredictor
    from glacierbed.pipeline.store import shipped_weights

    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 32) / 20.0
    own = r < 1
    surface = 3000.0 + 150.0 * np.sqrt(np.clip(1 - r ** 2, 0, None)) - 2.0 * yy
    feats = thickness_features(surface, own.astype(int), 50.0, None, None).astype(np.float32)
    before = ThicknessNetPredictor.load(shipped_weights("thickness_net.pt"))
    h0 = before.engine(feats)[0]
    measured = own & (r < 0.7) & ((yy + xx) % 5 == 0)
    truth = np.where(measured, 2.0 * h0 + 20.0, np.nan).astype(np.float32)
    cfg = MeasuredFinetuneConfig(steps=40, lr=1e-3, w_sim=0.0, threads=1)
    path, record = finetune_on_measured(cfg, shipped_weights("thickness_net.pt"),
                                        [MeasuredWindow("RGI60-11.00001", feats, truth, own)], tmp_path,
                                        tmp_path / "ft.pt")
    h1 = ThicknessNetPredictor.load(path).engine(feats)[0]
    err0 = np.sqrt(np.mean((h0[measured] - truth[measured]) ** 2))
    err1 = np.sqrt(np.mean((h1[measured] - truth[measured]) ** 2))
    assert err1 < 0.7 * err0
    assert record["finetuned_on_measured"]["groups"] == ["RGI60-11.00001"]
    assert "onnx" not in record  # the shipped export is not of these weights
    # an interrupted evaluation resumes: the same fit is reused, another one is not
    stamp = path.stat().st_mtime_ns
    again, record2 = finetune_on_measured(cfg, shipped_weights("thickness_net.pt"),
                                          [MeasuredWindow("RGI60-11.00001", feats, truth, own)], tmp_path,
                                          tmp_path / "ft.pt")
    assert again == path and path.stat().st_mtime_ns == stamp
    assert record2["finetuned_on_measured"]["loss_first_last_50"] == record["finetuned_on_measured"][
        "loss_first_last_50"]
    from glacierbed.models.thickness.finetune import _finished

    changed = {**record["finetuned_on_measured"], "groups": ["RGI60-11.00002"]}
    assert _finished(path, changed) is None


def test_nested_calibration_never_sees_the_outer_fold(monkeypatch, tmp_path: Path) -> None:
    """Neither the inner fine-tunes nor the calibration of an outer fold are fitted on its glaciers
    (the fine-tunes are replaced by a spy that returns the table unchanged; the calibration is real)."""
    from test_calibration import synthetic_rows

    from glacierbed.evaluation import measured_finetune as mf
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
    from glacierbed.posterior.calibration import Calibration

    rows = synthetic_rows(np.random.default_rng(5), n_glaciers=6, n_cells=30, factor=1.2)
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    finetuned_on, calibrated_on = [], []

    def spy_finetune(table, cfg, init, run_dir, physics=True, progress=None, windows=None, by="group", smb=False):
        folds = mf.glacier_folds(table, cfg.folds, by)
        for k in range(cfg.folds):
            finetuned_on.append((Path(run_dir).name, {g for g, f in folds.items() if f != k}))
        return table, pd.DataFrame()

    real_fit = Calibration.fit

    def spy_fit(self, fit_rows, pixels=None):
        calibrated_on.append(set(fit_rows["group"]))
        return real_fit(self, fit_rows, pixels)

    monkeypatch.setattr(mf, "measured_windows", lambda *a, **k: [])
    monkeypatch.setattr(mf, "cross_validate_finetune", spy_finetune)
    monkeypatch.setattr(Calibration, "fit", spy_fit)
    cfg = MeasuredFinetuneConfig(folds=3)
    cv = mf.nested_calibration(ms, cfg, "unused.pt", tmp_path, "scale")
    folds = mf.glacier_folds(ms, 3)
    for k in range(3):
        held = {g for g, f in folds.items() if f == k}
        assert all(not seen & held for name, seen in finetuned_on if name == f"inner{k}")
        assert not calibrated_on[k] & held and calibrated_on[k]
    assert len(cv.rows) == len(rows) and cv.rows["mu_cal"].notna().all()
    # the scale learned on the other glaciers (obs = 1.2 mu) carries over to the held-out ones
    assert np.median(cv.rows["mu_cal"] / cv.rows["mu"]) == pytest.approx(1.2, rel=0.05)


def test_region_wise_outer_folds_with_glacier_wise_inner_ones(monkeypatch, tmp_path: Path) -> None:
    """``inner_by``: leave one region out with the calibration fitted on glacier-wise inner maps (the shipped design on
    a region it never saw): the inner fine-tunes are glacier-wise, in their own folders, over the other regions only;
    by default the inner folds follow the outer key."""
    from test_calibration import synthetic_rows

    from glacierbed.evaluation import measured_finetune as mf
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig

    rows = synthetic_rows(np.random.default_rng(7), n_glaciers=12, n_cells=30, factor=1.2)  # regions 00, 01, 02
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    region_of = dict(zip(rows["group"], rows["region"]))
    calls = []

    def spy_finetune(table, cfg, init, run_dir, physics=True, progress=None, windows=None, by="group", smb=False):
        calls.append((Path(run_dir).name, by, cfg.folds, {region_of[g] for g in table.rows["group"]}))
        return table, pd.DataFrame()

    monkeypatch.setattr(mf, "measured_windows", lambda *a, **k: [])
    monkeypatch.setattr(mf, "cross_validate_finetune", spy_finetune)
    cfg = MeasuredFinetuneConfig(folds=3)
    cv = mf.nested_calibrations(ms, cfg, "unused.pt", tmp_path, ["scale"], by="region", inner_by="group")["scale"]
    regions = ["00", "01", "02"]
    assert calls[0] == (tmp_path.name, "region", 3, set(regions))  # the outer folds
    assert calls[1:] == [(f"inner{k}-by-group", "group", 2, set(regions) - {regions[k]}) for k in range(3)]
    assert len(cv.rows) == len(rows) and cv.rows["mu_cal"].notna().all()
    calls.clear()
    mf.nested_calibration(ms, cfg, "unused.pt", tmp_path, "scale", by="region")
    assert [c[:2] for c in calls[1:]] == [(f"inner{k}", "region") for k in range(3)]


def test_nested_calibrations_fit_several_variants_on_the_same_inner_maps(monkeypatch, tmp_path: Path) -> None:
    """Several calibration variants nested on one set of inner maps: each variant's outer predictions are
    those of :func:`nested_calibration` run for it alone, and the fits of every outer fold are kept (the
    glacier-level coverage reads its interval's correlation from them)."""
    from test_calibration import synthetic_rows

    from glacierbed.evaluation import measured_finetune as mf
    from glacierbed.evaluation.cross_validation import glacier_level_coverage
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig

    rows = synthetic_rows(np.random.default_rng(6), n_glaciers=6, n_cells=120, factor=1.2, rel_noise=0.3)
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    monkeypatch.setattr(mf, "measured_windows", lambda *a, **k: [])
    monkeypatch.setattr(mf, "cross_validate_finetune", lambda table, *a, **k: (table, pd.DataFrame()))
    cfg = MeasuredFinetuneConfig(folds=3)
    both = mf.nested_calibrations(ms, cfg, "unused.pt", tmp_path, ["scale", "scale+interval:all"])
    alone = mf.nested_calibration(ms, cfg, "unused.pt", tmp_path, "scale")
    np.testing.assert_allclose(both["scale"].rows["mu_cal"], alone.rows["mu_cal"])
    assert set(both["scale+interval:all"].fits) == {"0", "1", "2"}
    units = glacier_level_coverage(both["scale+interval:all"])
    assert sorted(units["group"]) == sorted(rows["group"].unique()) and (units["sigma_m"] > 0).all()


def test_the_final_network_is_fine_tuned_on_the_measured_glaciers_only(monkeypatch, tmp_path: Path) -> None:
    """``finetune_all`` passes every window of a measured glacier of the table and no other."""
    from glacierbed.evaluation import measured_finetune as mf
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow

    rows = pd.DataFrame({"group": ["A", "A", "B"], "case": "glathida-grids"})
    ms = MeasuredSet(rows, pd.DataFrame(columns=["group"]))
    blank = np.zeros((1, 2, 2), np.float32)
    windows = [MeasuredWindow(g, blank, blank[0], blank[0] > 0) for g in ("A", "B", "C")]
    seen = []
    monkeypatch.setattr(mf, "finetune_on_measured",
                        lambda cfg, init, ws, run_dir, out: (seen.extend(w.group for w in ws), (Path(out), {}))[1])
    path, _ = mf.finetune_all(ms, MeasuredFinetuneConfig(), "unused.pt", tmp_path, tmp_path / "w.pt", windows)
    assert sorted(seen) == ["A", "B"] and path == tmp_path / "w.pt"


def test_side_pool_glaciers_pull_their_mean_and_need_a_measured_glacier_beside(tmp_path: Path) -> None:
    """A glacier of a side case (glacier mean only) is drawn every step beside the measured one:
    after fine-tuning, the network's mean over it is closer to its measured mean; with side
    glaciers alone there is nothing to fine-tune on (clear error)."""
    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, finetune_on_measured
    from glacierbed.models.thickness.runtime import ThicknessNetPredictor
    from glacierbed.pipeline.store import shipped_weights

    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 32) / 20.0
    own = r < 1
    surface = 3000.0 + 150.0 * np.sqrt(np.clip(1 - r ** 2, 0, None)) - 2.0 * yy
    feats = thickness_features(surface, own.astype(int), 50.0, None, None).astype(np.float32)
    side_feats = thickness_features(surface.T + 300.0, own.T.astype(int), 50.0, None, None).astype(np.float32)
    init = shipped_weights("thickness_net.pt")
    before = ThicknessNetPredictor.load(init)
    h0, hs0 = before.engine(feats)[0], before.engine(side_feats)[0]
    measured = own & ((yy + xx) % 5 == 0)
    main = MeasuredWindow("A", feats, np.where(measured, h0, np.nan).astype(np.float32), own, case="glathida-grids")
    target = 2.0 * float(hs0[own.T].mean())
    side = MeasuredWindow("B", side_feats, np.full(own.shape, np.nan, np.float32), own.T.copy(), target, "alps-means")
    cfg = MeasuredFinetuneConfig(steps=40, lr=1e-3, w_sim=0.0, w_mean=50.0, threads=1, side_cases=("alps-means",))
    path, record = finetune_on_measured(cfg, init, [main, side], tmp_path, tmp_path / "ft.pt")
    hs1 = ThicknessNetPredictor.load(path).engine(side_feats)[0]
    assert abs(float(hs1[own.T].mean()) - target) < 0.7 * abs(float(hs0[own.T].mean()) - target)
    assert record["finetuned_on_measured"]["n_side_windows"] == 1
    assert record["finetuned_on_measured"]["groups"] == ["A", "B"]
    with pytest.raises(ValueError, match="outside the side cases"):
        finetune_on_measured(cfg, init, [side], tmp_path, tmp_path / "none.pt")


def test_nested_calibration_fits_only_the_cases_it_is_told(monkeypatch, tmp_path: Path) -> None:
    """``calibrate_on``: rows of other cases are predicted (scored) but never fitted on."""
    from test_calibration import synthetic_rows

    from glacierbed.evaluation import measured_finetune as mf
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
    from glacierbed.posterior.calibration import Calibration

    rows = synthetic_rows(np.random.default_rng(6), n_glaciers=8, n_cells=30, factor=1.2)
    rows.loc[rows["group"].isin(["G01", "G04", "G07"]), "case"] = "side"
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    fitted_cases = []
    real_fit = Calibration.fit

    def spy_fit(self, fit_rows, pixels=None):
        fitted_cases.append(set(fit_rows["case"]))
        return real_fit(self, fit_rows, pixels)

    monkeypatch.setattr(mf, "measured_windows", lambda *a, **k: [])
    monkeypatch.setattr(mf, "cross_validate_finetune", lambda table, *a, **k: (table, pd.DataFrame()))
    monkeypatch.setattr(Calibration, "fit", spy_fit)
    cv = mf.nested_calibration(ms, MeasuredFinetuneConfig(folds=2), "unused.pt", tmp_path, "scale",
                               calibrate_on=["synthetic"])
    assert fitted_cases and all(c == {"synthetic"} for c in fitted_cases)
    assert set(cv.rows["case"]) == {"synthetic", "side"} and cv.rows["mu_cal"].notna().all()


@pytest.mark.parametrize("scale", [2.0, 0.1])
def test_relative_loss_measures_errors_in_the_glaciers_own_thickness(scale: float) -> None:
    """With ``relative_floor_m`` the squared-error and glacier-mean terms are in units of the glacier's
    measured mean thickness (floored) instead of 100 m: a 200 m glacier's terms shrink by (100/200)^2,
    a 10 m one's grow by (100/30)^2 with a 30 m floor; the NLL is unchanged."""
    import torch

    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, _window_loss
    from glacierbed.models.thickness.network import load_thickness_net
    from glacierbed.pipeline.store import shipped_weights

    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 32) / 20.0
    own = r < 1
    surface = 3000.0 + 150.0 * np.sqrt(np.clip(1 - r ** 2, 0, None)) - 2.0 * yy
    feats = thickness_features(surface, own.astype(int), 50.0, None, None).astype(np.float32)
    truth = np.where(own & ((yy + xx) % 3 == 0), 100.0 * scale, np.nan).astype(np.float32)
    window = MeasuredWindow("A", feats, truth, own, mean_m=100.0 * scale)
    net, _ = load_thickness_net(shipped_weights("thickness_net.pt"))
    net.eval()

    def loss(**kw) -> float:
        with torch.no_grad():
            return float(_window_loss(net, window, np.random.default_rng(3), MeasuredFinetuneConfig(**kw)))

    nll_only = loss(w_mse=0.0, w_mean=0.0)
    absolute = loss(w_mse=1.0, w_mean=1.0) - nll_only
    relative = loss(w_mse=1.0, w_mean=1.0, relative_floor_m=30.0) - nll_only
    unit = max(100.0 * scale, 30.0)
    assert absolute > 0
    assert relative == pytest.approx(absolute * (100.0 / unit) ** 2, rel=1e-4)
    assert loss(w_mse=0.0, w_mean=0.0, relative_floor_m=30.0) == pytest.approx(nll_only, rel=1e-6)


def test_networks_fine_tuned_before_the_relative_option_stay_reusable(tmp_path: Path) -> None:
    """The option is left out of a fit's record when off, so cached fold networks still match; on, it is recorded."""
    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, finetune_on_measured
    from glacierbed.pipeline.store import shipped_weights

    yy, xx = np.mgrid[:32, :32]
    own = np.hypot(yy - 16, xx - 16) < 10
    feats = thickness_features(3000.0 - 3.0 * yy + 20.0 * own, own.astype(int), 50.0).astype(np.float32)
    window = MeasuredWindow("A", feats, np.where(own, 40.0, np.nan).astype(np.float32), own)
    off = MeasuredFinetuneConfig(steps=1, w_sim=0.0, threads=1)
    _, record = finetune_on_measured(off, shipped_weights("thickness_net.pt"), [window], tmp_path, tmp_path / "a.pt")
    assert "relative_floor_m" not in record["finetuned_on_measured"]["config"]
    on = MeasuredFinetuneConfig(steps=1, w_sim=0.0, threads=1, relative_floor_m=30.0)
    _, record = finetune_on_measured(on, shipped_weights("thickness_net.pt"), [window], tmp_path, tmp_path / "b.pt")
    assert record["finetuned_on_measured"]["config"]["relative_floor_m"] == 30.0
    assert "margin_profile" not in record["finetuned_on_measured"]["config"]
    plastic = MeasuredFinetuneConfig(steps=1, w_sim=0.0, threads=1, margin_profile="plastic")
    _, record = finetune_on_measured(plastic, shipped_weights("thickness_net.pt"), [window], tmp_path, tmp_path / "c.pt")
    assert record["finetuned_on_measured"]["config"]["margin_profile"] == "plastic"
    with pytest.raises(ValueError, match="margin_profile must be one of"):
        MeasuredFinetuneConfig(margin_profile="linear")


def test_the_loss_sees_the_plastic_margin_the_posterior_gives() -> None:
    """``margin_profile: plastic``: the network's margin pixels (0 out of the network) get the posterior's
    plastic profile inside the loss, identical to :func:`glacierbed.core.glaciology.plastic_margin`, and
    differentiably, so measured margin cells and glacier means pull the interior next to them."""
    import torch

    from glacierbed.core.glaciology import plastic_margin
    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, _window_loss
    from glacierbed.models.thickness.network import interior, load_thickness_net, plastic_margin_torch
    from glacierbed.pipeline.store import shipped_weights

    rng = np.random.default_rng(0)
    own = np.zeros((24, 24), bool)
    own[4:18, 5:20] = True
    own[18:21, 12] = True  # a one-pixel-wide tongue: margin pixels with no inner 4-neighbour
    own[9, 5:8] = False
    h = np.where(own, rng.uniform(20.0, 120.0, own.shape), 0.0)
    margin = own & ~interior(torch.tensor(own, dtype=torch.float64)[None, None]).numpy()[0, 0].astype(bool)
    expected = plastic_margin(np.where(margin, 0.0, h), margin, own)
    leaf = torch.tensor(np.where(margin, 0.0, h), requires_grad=True)
    got = plastic_margin_torch(leaf[None, None], torch.tensor(margin, dtype=torch.float64)[None, None],
                               torch.tensor(own, dtype=torch.float64)[None, None])
    np.testing.assert_allclose(got.detach().numpy()[0, 0], expected, rtol=1e-12)
    assert (expected[margin] > 0).mean() > 0.9 and np.all(expected[~own] == 0)
    got[0, 0][margin].sum().backward()  # a margin pixel's value comes from its inner neighbours
    grad = leaf.grad.numpy()
    assert (grad[own & ~margin] > 0).sum() > 0 and np.all(grad[margin] == 0) and np.all(grad[~own] == 0)

    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 32) / 20.0
    disc = r < 1
    surface = 3000.0 + 150.0 * np.sqrt(np.clip(1 - r ** 2, 0, None)) - 2.0 * yy
    feats = thickness_features(surface, disc.astype(int), 50.0, None, None).astype(np.float32)
    ring = disc & (r > 0.93)  # cells only on and next to the margin
    window = MeasuredWindow("A", feats, np.where(ring, 30.0, np.nan).astype(np.float32), disc, mean_m=80.0)
    net, _ = load_thickness_net(shipped_weights("thickness_net.pt"))
    net.eval()
    with torch.no_grad():
        zero, plastic = (float(_window_loss(net, window, np.random.default_rng(3), MeasuredFinetuneConfig(
            margin_profile=m))) for m in ("zero", "plastic"))
    assert zero != pytest.approx(plastic, rel=1e-3)  # the margin cells are no longer fitted as 0


def test_the_averaging_diagnostics_condition_is_the_declared_rule() -> None:
    """≤ 0.97 on the grids with South Glacier and the Ötztal means at most 2 % worse, both bounds inclusive."""
    from glacierbed.evaluation.measured_finetune import diagnostic_condition

    ref = {"south_glacier_rmse_m": 30.0, "oetztal_means_rmse_m": 10.0}
    ok = {"ratio": 0.97, "south_glacier_rmse_m": 30.6, "oetztal_means_rmse_m": 10.2}
    met, line = diagnostic_condition(ok, ref, "ratio", "average", "the single network", "ensemble")
    assert met and line.endswith("**met: ensemble is worth declaring as a variant**.")
    for bad in ({**ok, "ratio": 0.971}, {**ok, "south_glacier_rmse_m": 30.7}, {**ok, "oetztal_means_rmse_m": 10.3}):
        met, line = diagnostic_condition(bad, ref, "ratio", "average", "the single network", "ensemble")
        assert not met and "not met: no ensemble follows" in line


def test_the_physics_settings_reach_every_fold_map(monkeypatch, tmp_path: Path) -> None:
    """A PhysicsConfig given to the nested scoring (e.g. plastic margins) makes every outer and inner fold's maps,
    so a variant of the posterior is scored on the same cached fold networks, nested."""
    from test_calibration import synthetic_rows

    from glacierbed.evaluation import measured_finetune as mf
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
    from glacierbed.posterior.physics_config import PhysicsConfig

    rows = synthetic_rows(np.random.default_rng(5), n_glaciers=6, n_cells=30, factor=1.2)
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    seen = []

    def spy_finetune(table, cfg, init, run_dir, physics=True, progress=None, windows=None, by="group", smb=False):
        seen.append((Path(run_dir).name, physics, smb))
        return table, pd.DataFrame()

    monkeypatch.setattr(mf, "measured_windows", lambda *a, **k: [])
    monkeypatch.setattr(mf, "cross_validate_finetune", spy_finetune)
    plastic = PhysicsConfig(margin_profile="plastic")
    mf.nested_calibration(ms, MeasuredFinetuneConfig(folds=3), "unused.pt", tmp_path, "scale", plastic)
    assert len(seen) == 4 and all(p == plastic and not smb for _, p, smb in seen)  # the outer folds and 3 inner ones
    # SMB rasters reach the scored (outer) maps only; the calibration's inner maps are made without, as shipped
    seen.clear()
    mf.nested_calibrations(ms, MeasuredFinetuneConfig(folds=3), "unused.pt", tmp_path, ["scale"], plastic, smb=True)
    assert [(name, smb) for name, _, smb in seen] == [(tmp_path.name, True), *((f"inner{k}", False) for k in range(3))]


def test_a_calibration_fitted_on_other_maps_than_it_scores(monkeypatch, tmp_path: Path) -> None:
    """``fit_physics``: the inner maps the nested calibration is fitted on are made with it, the scored outer maps
    with ``physics``; the scale learned on the inner maps is the one applied to the outer ones."""
    from test_calibration import synthetic_rows

    from glacierbed.evaluation import measured_finetune as mf
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
    from glacierbed.posterior.physics_config import PhysicsConfig

    rows = synthetic_rows(np.random.default_rng(5), n_glaciers=6, n_cells=30, factor=1.2)  # obs = 1.2 mu
    ms = MeasuredSet(rows, pd.DataFrame(columns=["case", "example", "rgi_id", "group", "region", "mu", "sigma"]))
    zero, plastic = PhysicsConfig(), PhysicsConfig(margin_profile="plastic")
    seen = []

    def spy_finetune(table, cfg, init, run_dir, physics=True, progress=None, windows=None, by="group", smb=False):
        seen.append((Path(run_dir).name, physics))
        if physics == zero:  # the fit maps: twice as thick, so the scale learned on them is 0.6, not 1.2
            table = MeasuredSet(table.rows.assign(mu=2 * table.rows["mu"]), table.pixels, dict(table.info))
        return table, pd.DataFrame()

    monkeypatch.setattr(mf, "measured_windows", lambda *a, **k: [])
    monkeypatch.setattr(mf, "cross_validate_finetune", spy_finetune)
    cv = mf.nested_calibration(ms, MeasuredFinetuneConfig(folds=3), "unused.pt", tmp_path, "scale", plastic,
                               fit_physics=zero)
    assert [p for name, p in seen] == [plastic, zero, zero, zero]  # outer, then the 3 inner runs
    assert np.median(cv.rows["mu_cal"] / cv.rows["mu"]) == pytest.approx(0.6, rel=0.05)


def test_the_shipped_calibration_records_the_physics_of_its_maps():
    """The shipped calibration's steps were fitted on zero-margin maps and its interval on maps with the default
    physics (candidate 29); a calibration without that record is refused, never guessed."""
    from glacierbed.evaluation.measured_finetune import calibration_physics, fitted_physics_record
    from glacierbed.pipeline.store import shipped_weights
    from glacierbed.posterior.calibration import Calibration
    from glacierbed.posterior.physics_config import PhysicsConfig

    fit, interval = calibration_physics(Calibration.load(shipped_weights("thickness_net.calibration.json")))
    assert fit.margin_profile == "zero" and interval == PhysicsConfig()
    plastic, zero = PhysicsConfig(margin_profile="plastic"), PhysicsConfig(margin_profile="zero")
    again = calibration_physics(Calibration(meta={"physics": fitted_physics_record(zero, plastic)}))
    assert again == (zero, plastic)
    from glacierbed.core.errors import GlacierbedError

    with pytest.raises(GlacierbedError, match="does not record the physics"):
        calibration_physics(Calibration(meta={"physics": True}))


def test_interpolated_fine_tune_lies_between_its_start_and_the_full_fit(tmp_path: Path) -> None:
    """interpolate = 0.5: every weight is the mean of the start's and the full fine-tune's (which is kept beside
    and reused); the record still names the measured glaciers (the network has seen them); out of [0, 1] refused."""
    import torch

    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, finetune_on_measured
    from glacierbed.models.thickness.network import load_thickness_net
    from glacierbed.pipeline.store import shipped_weights

    yy, xx = np.mgrid[:32, :32]
    own = np.hypot(yy - 16, xx - 16) < 10
    feats = thickness_features(3000.0 - 3.0 * yy + 20.0 * own, own.astype(int), 50.0).astype(np.float32)
    window = MeasuredWindow("A", feats, np.where(own, 90.0, np.nan).astype(np.float32), own)
    start = shipped_weights("thickness_net.pt")
    half = MeasuredFinetuneConfig(steps=3, lr=1e-2, w_sim=0.0, threads=1, interpolate=0.5)
    path, record = finetune_on_measured(half, start, [window], tmp_path, tmp_path / "w.pt")
    full = tmp_path / "w-finetuned.pt"
    assert path == tmp_path / "w.pt" and full.is_file()
    mixed, s, f = (load_thickness_net(p)[0].state_dict() for p in (path, start, full))
    moved = [k for k in mixed if mixed[k].is_floating_point() and not torch.equal(s[k], f[k])]
    assert moved  # the fine-tune changed weights, and the interpolation sits halfway on each
    for k in moved:
        torch.testing.assert_close(mixed[k], 0.5 * (s[k] + f[k]), rtol=1e-5, atol=1e-6)
    assert record["finetuned_on_measured"]["groups"] == ["A"]
    assert record["finetuned_on_measured"]["config"]["interpolate"] == 0.5
    stamps = path.stat().st_mtime_ns, full.stat().st_mtime_ns
    finetune_on_measured(half, start, [window], tmp_path, tmp_path / "w.pt")
    assert (path.stat().st_mtime_ns, full.stat().st_mtime_ns) == stamps  # resumed, nothing refitted
    # the full fit is the plain fine-tune's: the same settings without interpolation reuse it
    plain = MeasuredFinetuneConfig(steps=3, lr=1e-2, w_sim=0.0, threads=1)
    finetune_on_measured(plain, start, [window], tmp_path, full)
    assert full.stat().st_mtime_ns == stamps[1]
    with pytest.raises(ValueError, match="interpolate must lie in"):
        MeasuredFinetuneConfig(interpolate=1.5)
    from glacierbed.core.errors import GlacierbedError
    from glacierbed.models.thickness.finetune import interpolate_weights
    from glacierbed.models.thickness.network import ThicknessNetConfig, save_thickness_net

    narrow = save_thickness_net(ThicknessNetConfig(width=8).build(), tmp_path / "narrow.pt", {})
    with pytest.raises(GlacierbedError, match="not the architecture"):
        interpolate_weights(start, narrow, 0.5)


def test_fewer_glaciers_keeps_whole_glaciers_and_its_draw() -> None:
    """``train_glaciers``: n of the glacier identities, all windows of a glacier together (its radar and grid
    are one glacier), the same draw for the same seed; 0 or n >= the glaciers there are: all of them. Off (0), the
    option is absent from a fit's identity, so the fold networks cached before it stay reusable."""
    from glacierbed.evaluation.measured_finetune import fewer_glaciers
    from glacierbed.models.thickness.finetune import (LATER_OPTIONS_OFF, MeasuredFinetuneConfig, MeasuredWindow,
                                                      _fit_identity)

    blank = np.zeros((1, 2, 2), np.float32)
    windows = [MeasuredWindow(g, blank, np.full((2, 2), np.nan), np.ones((2, 2), bool), case=c)
               for g, c in [("A", "south-glacier"), ("A", "glathida-grids"), ("B", "glathida-grids"),
                            ("C", "oetztal-means"), ("D", "oetztal-means"), ("E", "glathida-grids")]]
    assert fewer_glaciers(windows, 0, 1) == windows and fewer_glaciers(windows, 5, 1) == windows
    for seed in range(10):
        two = fewer_glaciers(windows, 2, seed)
        groups = {w.group for w in two}
        assert len(groups) == 2 and two == [w for w in windows if w.group in groups]  # whole glaciers, in order
        assert fewer_glaciers(windows, 2, seed) == two
    assert len({frozenset(w.group for w in fewer_glaciers(windows, 2, s)) for s in range(10)}) > 1
    assert LATER_OPTIONS_OFF["train_glaciers"] == 0
    assert "train_glaciers" not in _fit_identity(MeasuredFinetuneConfig(), __file__, windows)["config"]
    assert _fit_identity(MeasuredFinetuneConfig(train_glaciers=12), __file__, windows)["config"]["train_glaciers"] == 12


def test_region_balanced_draw() -> None:
    """``balance: window`` draws exactly as before (one integer per step: cached fold networks stay what they were);
    ``region`` gives each RGI region an equal share of the steps however many glaciers it has (8 Alpine windows, one
    Arctic, one Caucasus: a third each, instead of 80 % Alpine)."""
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, draw_window, rgi_region

    assert rgi_region("RGI60-11.00897") == "11" and rgi_region("RGI60-03.01632") == "03"
    assert rgi_region("glacier-00001") == "glacier-00001"
    blank = np.zeros((1, 2, 2), np.float32)
    groups = [f"RGI60-11.{i:05d}" for i in range(8)] + ["RGI60-03.01632", "RGI60-12.00960"]
    windows = [MeasuredWindow(g, blank, np.full((2, 2), np.nan), np.ones((2, 2), bool)) for g in groups]
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert all(draw_window(windows, a) is windows[int(b.integers(len(windows)))] for _ in range(50))
    rng = np.random.default_rng(0)
    drawn = pd.Series([rgi_region(draw_window(windows, rng, "region").group) for _ in range(6000)])
    share = drawn.value_counts(normalize=True)
    assert set(share.index) == {"11", "03", "12"} and np.allclose(share.to_numpy(), 1 / 3, atol=0.03)
    with pytest.raises(ValueError, match="balance must be one of window, region"):
        MeasuredFinetuneConfig(balance="glacier")


@pytest.mark.parametrize("trainable, modules", [("head", ["head"]), ("last", ["up.3", "head"])])
def test_a_partial_fine_tune_moves_only_the_layers_it_names(tmp_path: Path, trainable: str, modules: list) -> None:
    """``trainable: head`` / ``last``: the fitted weights move, every other weight is bit-identical to the start's; the
    record counts the fitted weights (34 for the head: 16 features -> thickness and sigma); ``all`` (the default) is
    absent from a fit's identity, so fold networks cached before the option stay reusable; 0 steps give the start."""
    import torch

    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.models.thickness.finetune import (LATER_OPTIONS_OFF, MeasuredFinetuneConfig, MeasuredWindow,
                                                      _fit_identity, finetune_on_measured)
    from glacierbed.models.thickness.network import load_thickness_net
    from glacierbed.pipeline.store import shipped_weights

    yy, xx = np.mgrid[:32, :32]
    own = np.hypot(yy - 16, xx - 16) < 10
    feats = thickness_features(3000.0 - 3.0 * yy + 20.0 * own, own.astype(int), 50.0).astype(np.float32)
    window = MeasuredWindow("A", feats, np.where(own, 90.0, np.nan).astype(np.float32), own)
    start = shipped_weights("thickness_net.pt")
    cfg = MeasuredFinetuneConfig(steps=3, lr=1e-2, w_sim=0.0, threads=1, trainable=trainable)
    path, record = finetune_on_measured(cfg, start, [window], tmp_path, tmp_path / "w.pt")
    after, before = (load_thickness_net(p)[0].state_dict() for p in (path, start))
    fitted = [k for k in after if any(k.startswith(m + ".") for m in modules)]
    assert fitted and all(not torch.equal(after[k], before[k]) for k in fitted if k.endswith("weight"))
    assert all(torch.equal(after[k], before[k]) for k in after if k not in fitted)
    n = sum(after[k].numel() for k in fitted)
    assert record["finetuned_on_measured"]["fitted_parameters"] == n and (trainable != "head" or n == 34)
    assert record["finetuned_on_measured"]["config"]["trainable"] == trainable
    assert LATER_OPTIONS_OFF["trainable"] == "all"
    assert "trainable" not in _fit_identity(MeasuredFinetuneConfig(), start, [window])["config"]
    none, rec0 = finetune_on_measured(MeasuredFinetuneConfig(steps=0, w_sim=0.0, threads=1), start, [window],
                                      tmp_path, tmp_path / "zero.pt")
    zero = load_thickness_net(none)[0].state_dict()
    assert all(torch.equal(zero[k], before[k]) for k in zero) and rec0["finetuned_on_measured"][
        "loss_first_last_50"] is None
    with pytest.raises(ValueError, match="trainable must be one of"):
        MeasuredFinetuneConfig(trainable="encoder")


def test_results_are_named_by_what_changes_their_scores() -> None:
    """One naming of a run's results files: the benchmark writes them, the lineage rebuild finds them by it."""
    from glacierbed.evaluation.recipe_cli import results_name
    from glacierbed.posterior.calibration import BOOSTED_DESIGN

    config = Path("benchmarks/configs/measured_finetune_from_spanning_all_p128.yaml")
    assert results_name(config, BOOSTED_DESIGN) == "measured_finetune_from_spanning_all_p128"
    assert results_name(config, "residual+scale+interval~parametric^gauss", "c/physics_margin_plastic.yaml",
                        "c/physics_margin_zero.yaml", "c/physics_margin_plastic.yaml") == (
        "measured_finetune_from_spanning_all_p128_physics_margin_plastic_fit_physics_margin_zero"
        "_interval_physics_margin_plastic_cal_parametric-gauss")
    assert results_name(Path("measured_finetune.yaml"), "scale", by="region",
                        calibrated_with=("alps-means",)) == "measured_finetune_calibrated_with_alps_loro_cal_scale"
