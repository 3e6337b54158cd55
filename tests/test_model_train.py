"""Network and training loop: residual on the fill, loss decreases, checkpoints resume."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glacierbed.data.terrain import PatchSource
from glacierbed.models.inpainting.patches import DatasetConfig, PatchSet, build_dataset
from glacierbed.core.errors import CorruptFileError
from glacierbed.core.fill import biharmonic_fill
from glacierbed.models.inpainting.network import ModelConfig, NetworkInpainter, prepare_inputs
from glacierbed.models.inpainting.training import TrainConfig, _batch, _pred, losses, make_sample, train

TINY = {"width": 4, "depth": 2, "dilations": [2]}
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


@pytest.fixture(scope="module")
def patches(tmp_path_factory, data_dir):
    cfg = DatasetConfig(
        sources=(PatchSource("oetztal", ("oggm-sample-data/test-workflow/srtm_oetztal.tif",),
                             outlines="oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp", resolutions_m=(100.0,)),),
        patch=64, centre_box=40, unique_box=16, min_elevation_m=2500, seed=3)
    out = tmp_path_factory.mktemp("ds") / "p.npz"
    build_dataset(cfg, out, n_per_source=60)
    return out


def test_untrained_network_equals_biharmonic_and_keeps_visible(patches):
    ps = PatchSet.load(patches)
    dem = ps.dem[0].astype(np.float64)
    hole = np.zeros(dem.shape, bool)
    hole[20:44, 16:40] = True
    inp = NetworkInpainter(ModelConfig(**{**TINY, "dilations": (2,)}).build(), {"patch_size": 64})
    out = inp.inpaint(dem, hole, 100.0)
    assert np.array_equal(out[~hole], dem[~hole].astype(np.float32))
    assert np.allclose(out[hole], biharmonic_fill(dem, hole)[hole], atol=1e-2)  # zero-initialised head
    feats, base, offset = prepare_inputs(dem, hole, 100.0)
    assert feats.shape == (6, 64, 64) and abs(offset - dem[~hole].mean()) < 1e-6


def test_fourier_relief_model_starts_at_the_fill_and_scales_with_relief(patches, tmp_path):
    """The FFC + relief-normalised variant: zero-initialised (= the fill), 7 inputs, its
    correction in metres scales with the window's relief, and its weights reload."""
    from glacierbed.models.inpainting.network import save_weights

    ps = PatchSet.load(patches)
    dem = ps.dem[0].astype(np.float64)
    hole = np.zeros(dem.shape, bool)
    hole[20:44, 16:40] = True
    cfg = ModelConfig(**{**TINY, "dilations": (2,)}, ffc_blocks=1, relief_norm=True)
    net = cfg.build()
    out = NetworkInpainter(net, {"patch_size": 64}).inpaint(dem, hole, 100.0)
    assert np.allclose(out[hole], biharmonic_fill(dem, hole)[hole], atol=1e-2)
    feats, _, _ = prepare_inputs(dem, hole, 100.0, relief_norm=True)
    assert feats.shape == (7, 64, 64)
    torch.manual_seed(0)
    torch.nn.init.normal_(net.head.weight, std=0.1)
    with torch.no_grad():
        net.stem.conv.weight[:, 6] = 0  # the relief channel then acts only as the output scale
    y1 = NetworkInpainter(net, {}).correction(feats)
    f3, _, _ = prepare_inputs(3 * dem, hole, 100.0, relief_norm=True)  # 3x relief: same elevation channel
    assert np.allclose(f3[0], feats[0], atol=1e-4) and np.allclose(f3[6], feats[6] + np.log(3), atol=1e-5)
    f2 = feats.copy()
    f2[6] += np.log(3)  # only the relief channel changes: the correction in metres scales with it
    assert np.abs(y1).max() > 0
    assert np.allclose(NetworkInpainter(net, {}).correction(f2), 3 * y1, rtol=1e-3, atol=1e-3)
    path = save_weights(net, tmp_path / "w.pt", {"patch_size": 64})
    back = NetworkInpainter.load(path)
    assert back.net.cfg == cfg and np.allclose(back.correction(feats), y1, atol=1e-5)


def test_loss_decreases_on_real_terrain(patches):
    torch.manual_seed(0)
    ps = PatchSet.load(patches)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(8):
        hole = np.zeros((64, 64), bool)
        r, c = rng.integers(10, 30, 2)
        hole[r:r + 24, c:c + 24] = True
        samples.append(make_sample(ps.dem[i].astype(np.float64), ps.glacier[i], hole, float(ps.res[i])))
    b = _batch(samples)
    cfg = TrainConfig()
    net = ModelConfig(width=8, depth=2, dilations=(2,)).build()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        terms = losses(_pred(net, b), b, cfg)
        if first is None:
            first = float(terms["mse"].detach())
        opt.zero_grad(); terms["mse"].backward(); opt.step()
    assert float(terms["mse"].detach()) < 0.7 * first


def test_checkpoint_resume_and_weights_round_trip(patches, tmp_path, data_dir):
    base = dict(dataset=str(patches), outlines=["oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"],
                model=TINY, batch_size=2, val_every=2, ckpt_every=2, image_steps=[0], num_workers=0, threads=1)
    run = tmp_path / "run"
    n0 = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(TrainConfig.from_dict({**base, "steps": 4}), run)
        assert torch.get_num_threads() == 2  # threads=1 for the run only, restored after
    finally:
        torch.set_num_threads(n0)
    assert (run / "checkpoint.pt").exists() and (run / "progress_000000.png").exists()
    state = torch.load(run / "checkpoint.pt", weights_only=True)  # plain data only
    assert state["step"] == 4 and state["model_config"]["dilations"] == [2]
    record = train(TrainConfig.from_dict({**base, "steps": 6}), run)  # resumes at step 4
    steps = list(pd.read_csv(run / "metrics.csv")["step"])
    assert steps == [1, 2, 3, 4, 5, 6] and record["steps"] == 6
    assert record["steps_planned"] == 6 and record["stop_reason"] == "completed"
    assert record["dataset"]["sources_without_patches"] == []
    val_steps = list(pd.read_csv(run / "validation.csv")["step"])
    assert val_steps == [2, 4, 6]
    assert record["validation"]["glacier"]["rmse_biharmonic_m"] > 0
    a = NetworkInpainter.load(run / "weights.pt")
    b = NetworkInpainter.load(run / "checkpoint.pt")
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(pa, pb)
    assert a.record["parameters"] == sum(p.numel() for p in a.net.parameters())


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_training_resumes_to_the_same_weights(patches, tmp_path, data_dir, workers, kill_and_resume):
    """Killed after a checkpoint and resumed, an inpainter run ends with the uninterrupted run's weights, also
    with DataLoader workers: its batches are drawn by batch number, not reseeded at the resumed step."""
    cfg = TrainConfig.from_dict(dict(dataset=str(patches), outlines=["oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"],
                                     model=TINY, batch_size=2, steps=6, val_every=3, ckpt_every=2, image_steps=[],
                                     num_workers=workers, threads=1))
    train(cfg, tmp_path / "straight")
    kill_and_resume(train, cfg, tmp_path / "killed")
    straight, resumed = (NetworkInpainter.load(tmp_path / d / "weights.pt") for d in ("straight", "killed"))
    for pa, pb in zip(straight.net.parameters(), resumed.net.parameters()):
        assert torch.equal(pa, pb)
    losses_straight = pd.read_csv(tmp_path / "straight" / "metrics.csv")["loss"]
    assert list(pd.read_csv(tmp_path / "killed" / "metrics.csv")["loss"]) == list(losses_straight)


def test_training_starts_from_init_weights_and_records_them(patches, tmp_path, data_dir):
    """``init_weights``: the run starts from a trained network (its validation at step 0 equals
    that network's), the record names its SHA-256, and another architecture is refused."""
    from glacierbed.models.inpainting.training import _holes, evaluate_samples

    base = dict(dataset=str(patches), outlines=["oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"],
                model=TINY, batch_size=2, val_every=100, ckpt_every=100, image_steps=[], num_workers=0, threads=1)
    train(TrainConfig.from_dict({**base, "steps": 6, "lr": 0.01}), tmp_path / "first")
    start = NetworkInpainter.load(tmp_path / "first" / "weights.pt")
    cfg = TrainConfig.from_dict({**base, "steps": 1, "lr": 1e-12, "init_weights": str(tmp_path / "first" / "weights.pt")})
    record = train(cfg, tmp_path / "second")
    assert record["dataset"]["init_weights"]["weights_sha256"] == start.weights_sha256
    second = NetworkInpainter.load(tmp_path / "second" / "weights.pt")
    _, val = _holes(cfg, PatchSet.load(patches).subset("val"))
    ours, theirs = (evaluate_samples(n.net, val["glacier"]) for n in (second, start))
    assert ours["rmse_m"] == pytest.approx(theirs["rmse_m"], rel=1e-4)  # an lr of 1e-12 moves nothing
    assert ours["rmse_m"] != pytest.approx(ours["rmse_biharmonic_m"], rel=1e-4)  # and it is not the untrained fill
    other = TrainConfig.from_dict({**base, "steps": 1, "model": {**TINY, "width": 8},
                                   "init_weights": str(tmp_path / "first" / "weights.pt")})
    with pytest.raises(ValueError, match="not the configured"):
        train(other, tmp_path / "third")


def test_unknown_config_key_is_rejected():
    with pytest.raises(CorruptFileError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({"stepz": 3})


def test_metrics_csv_stays_readable_when_columns_change(tmp_path):
    from glacierbed.models.runs import append_csv, truncate_csv

    path = tmp_path / "metrics.csv"
    for step in (1, 2):
        append_csv(path, {"step": step, "loss": 1.0 / step})
    append_csv(path, {"step": 3, "loss": 0.3, "adv_g": -0.1})  # e.g. a run resumed with a new loss term
    append_csv(path, {"step": 4, "loss": 0.2})  # a key missing: empty cell
    df = pd.read_csv(path)
    assert list(df.columns) == ["step", "loss", "adv_g"] and df["step"].tolist() == [1, 2, 3, 4]
    assert df["adv_g"].isna().tolist() == [True, True, False, True]
    truncate_csv(path, 2)  # resuming from a checkpoint at step 2 drops later rows
    assert pd.read_csv(path)["step"].tolist() == [1, 2]
    assert not list(tmp_path.glob("*.tmp"))


def test_committed_training_metrics_read_with_pandas():
    df = pd.read_csv(RESULTS / "training_default_metrics.csv")
    assert list(df.columns) == ["step", "time_s", "loss", "mse", "l1", "grad"]
    assert df["step"].tolist() == list(range(1, 12001))
    val = pd.read_csv(RESULTS / "training_default_validation.csv")
    assert val["step"].tolist() == list(range(500, 12001, 500)) and (val["glacier_rmse_m"] > 0).all()
    assert list(val.columns) == list(pd.read_csv(RESULTS / "training_gan_validation.csv").columns)


def test_removed_gan_run_record_states_its_planned_steps():
    """The adversarial trainer was removed (docs/model.md); its one run's record stays honest."""
    rec = json.loads((RESULTS / "training_gan_record.json").read_text())
    assert rec["steps"] == 457 < rec["steps_planned"] == rec["config"]["steps"] == 1600
    assert rec["stop_reason"] == "time limit"


def test_torch_threads_sets_keeps_and_restores():
    """The one torch-thread context (trainers, simulator, physics): ``None`` keeps the caller's
    count, nested blocks restore the enclosing one, an error restores too."""
    from glacierbed.core.threads import torch_threads

    n0 = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch_threads(None):
            assert torch.get_num_threads() == 2
            with torch_threads(1):
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with torch_threads(1, blas=True):
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(n0)
