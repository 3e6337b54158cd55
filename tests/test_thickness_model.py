"""The surface-aware thickness network: features, physical output, likelihood, training, the predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glacierbed.models.thickness.features import MC_CHANNEL, N_FEATURES, thickness_features
from glacierbed.core.glaciology import margin_pixels, mass_conservation_thickness
from glacierbed.models.thickness.network import (ThicknessNetConfig, TorchEngine, export_onnx, gaussian_nll, interior,
                                                 load_thickness_net, save_thickness_net)
from glacierbed.models.thickness.runtime import OnnxEngine, ThicknessNetPredictor, load_engine


def _valley(n: int = 64, px: float = 50.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tilted parabolic valley with a glacier in it: (bed, thickness, ids), analytic."""
    r, c = np.mgrid[:n, :n].astype(float)
    bed = 3000.0 - 8.0 * r + 0.3 * (c - n / 2) ** 2
    h = np.clip(60.0 - 0.6 * (c - n / 2) ** 2, 0, None) * (r > 5) * (r < n - 6)
    return bed, h, (h > 1).astype(np.int32)


def test_features_shapes_and_channels() -> None:
    bed, h, ids = _valley()
    f = thickness_features(bed + h, ids, 50.0)
    assert f.shape == (N_FEATURES, 64, 64) and f.dtype == np.float32 and np.isfinite(f).all()
    assert ((f[1] > 0.5) == (ids > 0)).all()  # ice mask
    np.testing.assert_allclose(f[MC_CHANNEL] * 100, np.minimum(mass_conservation_thickness(bed + h, ids, 50.0,
                                                                                           min_slope_deg=2.0), 800),
                               rtol=1e-5, atol=1e-3)
    assert f[11:].max() == 0  # no speed, no SMB: zeros and flags off
    g = thickness_features(bed + h, ids, 50.0, speed_m_a=np.full(bed.shape, 50.0), smb_m_a=np.ones(bed.shape))
    assert (g[12] == 1).all() and (g[14] == 1).all() and g[11].max() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="NaN"):
        thickness_features(np.where(ids > 0, np.nan, bed), ids, 50.0)


def test_untrained_network_returns_the_mass_conservation_prior_and_physics() -> None:
    bed, h, ids = _valley()
    f = thickness_features(bed + h, ids, 50.0)
    net = ThicknessNetConfig(width=8, depth=2).build()
    thick, sigma = (t[0, 0].detach().numpy() for t in net(torch.from_numpy(f)[None]))
    inner = (ids > 0) & ~margin_pixels(ids > 0, ids > 0)
    prior = np.clip(f[MC_CHANNEL] * 100, 2.0, 800.0)
    np.testing.assert_allclose(thick[inner], prior[inner], rtol=1e-4)  # zero-initialised head: the prior
    assert (thick >= 0).all() and (thick[ids == 0] == 0).all() and (thick[margin_pixels(ids > 0, ids > 0)] == 0).all()
    assert (sigma[ids > 0] >= 1.0).all() and (sigma[ids == 0] == 0).all()


def test_a_network_without_the_interior_mask_predicts_its_margin_pixels(tmp_path: Path) -> None:
    """``interior_mask: false``: the same weights give the prior on the margin pixels too (still 0 off the ice); a
    network with the mask may start from one without it (same weights), and the setting survives saving."""
    from glacierbed.models.runs import start_from
    from glacierbed.models.thickness.network import load_thickness_net, save_thickness_net

    bed, h, ids = _valley()
    f = torch.from_numpy(thickness_features(bed + h, ids, 50.0))[None]
    masked = ThicknessNetConfig(width=8, depth=2).build()
    free = ThicknessNetConfig(width=8, depth=2, interior_mask=False).build()
    start_from(free, masked, "masked.pt")
    a, b = (n(f)[0][0, 0].detach().numpy() for n in (masked, free))
    margin = margin_pixels(ids > 0, ids > 0)
    assert (a[margin] == 0).all() and (b[margin] > 0).all() and (b[ids == 0] == 0).all()
    np.testing.assert_array_equal(a[~margin], b[~margin])
    with pytest.raises(ValueError, match="not the configured"):
        start_from(ThicknessNetConfig(width=4, depth=2).build(), masked, "masked.pt")
    save_thickness_net(free, tmp_path / "free.pt", {"steps": 0})
    again, _ = load_thickness_net(tmp_path / "free.pt")
    assert again.cfg.interior_mask is False


def test_interior_matches_margin_pixels() -> None:
    ice = np.zeros((12, 12), bool)
    ice[2:9, 3:12] = True  # touches the right edge: the array edge is a margin
    got = interior(torch.from_numpy(ice.astype(np.float32))[None, None])[0, 0].numpy() > 0.5
    assert (got == (ice & ~margin_pixels(ice, ice))).all()


def test_gaussian_nll_by_hand() -> None:
    mean, sigma, truth = torch.tensor([10.0, 20.0]), torch.tensor([2.0, 5.0]), torch.tensor([12.0, 20.0])
    w = torch.tensor([1.0, 1.0])
    expected = (np.log(2.0) + 0.5 * 1.0 + np.log(5.0)) / 2
    assert float(gaussian_nll(mean, sigma, truth, w)) == pytest.approx(expected)


def test_predictor_symmetries_and_weights_round_trip(tmp_path: Path) -> None:
    net = ThicknessNetConfig(width=8, depth=2).build()
    path = save_thickness_net(net, tmp_path / "tn.pt", {"patch_size": 64, "resolution_range_m": [25, 200]})
    rec = json.loads(path.with_suffix(".json").read_text())
    assert rec["kind"] == "thickness_net" and len(rec["weights_sha256"]) == 64
    loaded, record = load_thickness_net(path)
    for a, b in zip(net.parameters(), loaded.parameters()):
        assert torch.equal(a, b)
    pred = ThicknessNetPredictor(TorchEngine(loaded), record)
    bed, h, ids = _valley()
    members, sigma = pred.predict_maps(thickness_features(bed + h, ids, 50.0), 8)
    assert members.shape == (8, 64, 64) and (sigma >= 0).all()
    # the untrained network is the (rotation-equivariant) prior: the 8 symmetries agree
    assert np.abs(members - members[0]).max() < 1e-3 * max(members.max(), 1.0)


def test_onnx_export_runs_without_torch_and_matches(tmp_path: Path) -> None:
    """The exported network gives torch's maps on windows of any size, and is used only while it
    matches the weights it was exported from."""
    torch.manual_seed(0)
    net = ThicknessNetConfig(width=8, depth=2).build()
    with torch.no_grad():
        for p in net.head.parameters():  # a network whose output is not just its prior
            p.normal_(0, 0.3)
    path = save_thickness_net(net, tmp_path / "tn.pt", {"patch_size": 64})
    assert isinstance(load_engine(path)[0], TorchEngine)  # no export yet
    export_onnx(path)
    engine, record = load_engine(path)
    assert isinstance(engine, OnnxEngine) and record["weights_sha256"] == record["onnx"]["weights_sha256"]
    bed, h, ids = _valley(70)
    for window in (np.s_[:, :, :], np.s_[:, 3:58, 5:70]):  # a multiple of 4 and not
        feats = thickness_features(bed + h, ids, 50.0)[window]
        got = ThicknessNetPredictor(engine, record).predict_maps(feats, 8)
        want = ThicknessNetPredictor(TorchEngine(net), record).predict_maps(feats, 8)
        assert np.abs(want[0]).max() > 10 and np.abs(got[0] - want[0]).max() < 1e-3 and np.abs(got[1] - want[1]).max() < 1e-3
    # changed weights: the stale export is not used (and their identity changes)
    save_thickness_net(ThicknessNetConfig(width=8, depth=2).build(), path, {"patch_size": 64, "onnx": record["onnx"]})
    engine2, record2 = load_engine(path)
    assert isinstance(engine2, TorchEngine) and record2["weights_sha256"] != record["weights_sha256"]


def _valley_set(path: Path, size: int = 64, px: float = 50.0, n: int = 6) -> Path:
    """A simulated-set file of ``n`` analytic valley glaciers (4 train, 2 val) of ``size`` px."""
    bed, h, ids = _valley(size, px)
    arrays = dict(bed=np.stack([bed] * n).astype(np.float32),
                  thickness=np.stack([h * (1 + 0.1 * k) for k in range(n)]).astype(np.float32),
                  ids=np.stack([ids] * n).astype(np.int16), speed=np.zeros((n, size, size), np.float16),
                  smb=np.zeros((n, size, size), np.float32), res=np.full(n, px, np.float32),
                  split=np.array(["train"] * 4 + ["val"] * (n - 4)), source=np.array([f"valley@{px:g}m"] * n),
                  params=json.dumps([{}] * n), summary=json.dumps({"n": n}))
    np.savez(path, **arrays)
    return path


def test_training_resumes_and_ships(tmp_path: Path) -> None:
    """A few steps on tiny analytic glaciers, then resume: the loop, checkpoint and record work."""
    from glacierbed.simulation.glacier_set import SimulatedSet
    from glacierbed.models.thickness.training import ThicknessTrainConfig, train_thickness

    n = 6
    _valley_set(tmp_path / "sims.npz")
    assert len(SimulatedSet.load(tmp_path / "sims.npz")) == n
    cfg = ThicknessTrainConfig(dataset=str(tmp_path / "sims.npz"), net=ThicknessNetConfig(width=8, depth=2), steps=3,
                               batch_size=2, val_every=2, ckpt_every=1, threads=1)
    run = tmp_path / "run"
    train_thickness(cfg, run)
    record = train_thickness(ThicknessTrainConfig(**{**cfg.__dict__, "steps": 5}), run)  # resumes at step 3
    assert record["steps"] == 5 and record["dataset"]["n_train"] == 4 and record["dataset"]["n_val"] == 2
    import pandas as pd

    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["step"]) == [1, 2, 3, 4, 5]
    assert np.isfinite(record["validation"]["rmse_m"]) and 0 <= record["validation"]["coverage68"] <= 1
    pred = ThicknessNetPredictor.load(run / "weights.pt")
    assert pred.identity == record.get("weights_sha256", pred.identity)


def test_interrupted_training_resumes_to_the_same_weights(tmp_path: Path, kill_and_resume) -> None:
    """Killed after a checkpoint and resumed, a run ends with the weights of the uninterrupted one: its batch
    and augmentation draws continue from the checkpoint instead of being reseeded."""
    from glacierbed.core.atomic import file_sha256
    from glacierbed.models.thickness.training import ThicknessTrainConfig, train_thickness

    _valley_set(tmp_path / "sims.npz")
    cfg = ThicknessTrainConfig(dataset=str(tmp_path / "sims.npz"), net=ThicknessNetConfig(width=8, depth=2), steps=6,
                               batch_size=2, val_every=3, ckpt_every=2, threads=1)
    train_thickness(cfg, tmp_path / "straight")
    kill_and_resume(train_thickness, cfg, tmp_path / "killed")
    assert file_sha256(tmp_path / "killed" / "weights.pt") == file_sha256(tmp_path / "straight" / "weights.pt")


def test_fine_tuning_on_two_window_sizes(tmp_path: Path) -> None:
    """Start from trained weights and train on two sets of different window sizes: the record
    names both sets and the start, and validation pools the pixels of both."""
    from glacierbed.models.thickness.network import load_thickness_net
    from glacierbed.core.atomic import file_sha256
    from glacierbed.models.thickness.training import ThicknessTrainConfig, evaluate, prepare, train_thickness

    small, large = _valley_set(tmp_path / "s64.npz"), _valley_set(tmp_path / "s96.npz", 96, 100.0)
    net_cfg = ThicknessNetConfig(width=8, depth=2)
    base = ThicknessTrainConfig(dataset=str(small), net=net_cfg, steps=2, batch_size=2, val_every=2, threads=1)
    train_thickness(base, tmp_path / "a")
    tuned_cfg = ThicknessTrainConfig(**{**base.__dict__, "extra_datasets": (str(large),), "lr": 1e-12,
                                        "init_weights": str(tmp_path / "a" / "weights.pt")})
    tuned = train_thickness(tuned_cfg, tmp_path / "b")
    sets = tuned["dataset"]["sets"]
    assert [s["path"] for s in sets] == [str(small), str(large)] and [s["n_val"] for s in sets] == [2, 2]
    assert tuned["dataset"]["init_weights"]["weights_sha256"] == file_sha256(tmp_path / "a" / "weights.pt")
    assert tuned["patch_size"] == 96
    # a learning rate of ~0 leaves the start's weights: the fine-tuned network starts where the first ended
    a, _ = load_thickness_net(tmp_path / "a" / "weights.pt")
    b, _ = load_thickness_net(tmp_path / "b" / "weights.pt")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), atol=1e-6, err_msg=k)
    vals = [prepare(tuned_cfg, tmp_path / "b", dataset=d)["val"] for d in (str(small), str(large))]
    pooled, one, two = evaluate(b, vals), evaluate(b, vals[0]), evaluate(b, vals[1])
    assert pooled["n_pixels"] == one["n_pixels"] + two["n_pixels"] > 0
    assert set(pooled) >= {"rmse_50m", "rmse_100m"}


def test_estimate_with_the_thickness_network(tmp_path: Path, data_dir: Path) -> None:
    """The real pipeline with a thickness network (untrained here) on Hintereisferner: physical output."""
    from glacierbed.pipeline.estimate import EstimateConfig, estimate

    net = ThicknessNetConfig(width=8, depth=2).build()
    path = save_thickness_net(net, tmp_path / "tn.pt", {"patch_size": 128, "resolution_range_m": [25, 200]})
    tf = data_dir / "oggm-sample-data/test-files"
    res = estimate(tf / "hef_srtm.tif", tf / "Hintereisferner_RGI6.shp", tmp_path / "out", model=str(path),
                   maps=False, config=EstimateConfig(ensemble=2))
    row = res.glaciers.iloc[0]
    assert row["status"] == "ok" and row["model"] == "tn"
    assert 0.1 < row["volume_km3"] < 2.0 and row["volume_std_km3"] > 0  # consensus: 0.572 km3
    assert res.summary["model_identity"] == json.loads(path.with_suffix(".json").read_text())["weights_sha256"]


def test_shipped_calibration_is_applied_by_estimate(tmp_path: Path, data_dir: Path) -> None:
    """A calibration beside the weights (here a plain factor 2) scales the estimate and keys resuming."""
    from glacierbed.core.errors import CorruptFileError
    from glacierbed.posterior.calibration import Calibration, ThicknessScale
    from glacierbed.pipeline.store import calibration_file, load_predictor
    from glacierbed.pipeline.estimate import EstimateConfig, estimate

    net = ThicknessNetConfig(width=8, depth=2).build()
    path = save_thickness_net(net, tmp_path / "tn.pt", {"patch_size": 128, "resolution_range_m": [25, 200]})
    tf = data_dir / "oggm-sample-data/test-files"
    args = (tf / "hef_srtm.tif", tf / "Hintereisferner_RGI6.shp")
    cfg = EstimateConfig(ensemble=1, physics=None)
    plain = estimate(*args, tmp_path / "plain", model=str(path), maps=False, config=cfg).glaciers.iloc[0]
    identity = load_predictor(str(path)).identity
    Calibration([ThicknessScale(factor=2.0)], model_identity="0" * 64).save(calibration_file(path))
    with pytest.raises(CorruptFileError, match=r"tn.calibration.json: calibration fitted for model 0{64}"):
        load_predictor(str(path))  # fitted for another model: refused when the predictor is built
    Calibration([ThicknessScale(factor=2.0)], model_identity=identity).save(calibration_file(path))
    assert load_predictor(str(path)).calibration is not None
    cal = estimate(*args, tmp_path / "plain", model=str(path), maps=False, config=cfg)  # same folder: not resumed
    row = cal.glaciers.iloc[0]
    assert cal.summary["n_resumed"] == 0 and row["calibrated"] == "scale"
    assert row["volume_km3"] == pytest.approx(2 * plain["volume_km3"], rel=1e-4)
    off = estimate(*args, tmp_path / "off", model=str(path), maps=False, config=EstimateConfig(ensemble=1, physics=None,
                                                                                                calibrate=False))
    assert off.glaciers.iloc[0]["volume_km3"] == pytest.approx(plain["volume_km3"], rel=1e-6)
