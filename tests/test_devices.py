"""Where training runs: ``device`` in every training config (a GPU where torch sees one, never required)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from glacierbed.core.errors import GlacierbedError
from glacierbed.models.runs import TrainingRun, device_label, resolve_device, to_device

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answers of a machine without a CUDA GPU")


def _gpus(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_auto_takes_a_gpu_only_when_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpus(monkeypatch, 0)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    _gpus(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_a_named_gpu_that_is_not_there_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpus(monkeypatch, 0)
    with pytest.raises(GlacierbedError, match="sees no CUDA GPU.*'auto' or 'cpu'"):
        resolve_device("cuda")
    _gpus(monkeypatch, 1)
    with pytest.raises(GlacierbedError, match="has 1 CUDA GPU"):
        resolve_device("cuda:1")
    for bad in ("gpu", "cuda:x", "mps"):
        with pytest.raises(GlacierbedError, match="is not known; use 'auto'"):
            resolve_device(bad)


def test_batches_move_and_records_name_the_device() -> None:
    batch = to_device({"x": torch.ones(2, 3), "res": 50.0}, torch.device("cpu"))
    assert batch["x"].device.type == "cpu" and batch["res"] == 50.0  # non-tensors pass through
    assert device_label(torch.device("cpu")) == "cpu"


def test_a_wrong_device_fails_before_the_run_folder_is_made(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from glacierbed.models.thickness.training import ThicknessTrainConfig

    _gpus(monkeypatch, 0)
    with pytest.raises(GlacierbedError, match="no CUDA GPU"):
        TrainingRun(ThicknessTrainConfig(device="cuda"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@no_gpu
def test_train_cli_device_option(tmp_path: Path) -> None:
    from glacierbed.cli import app

    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"dataset": str(tmp_path / "nope.npz")}))
    for command in ("train", "train-thickness"):
        r = CliRunner().invoke(app, [command, "--config", str(tmp_path / "t.yaml"), "--run-dir", str(tmp_path / "r"),
                                     "--device", "cuda"])
        assert r.exit_code == 2 and "no CUDA GPU" in r.output and "Traceback" not in r.output
        assert not (tmp_path / "r").exists()
    # on the CPU the same command gets as far as the (missing) dataset
    r = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "t.yaml"), "--run-dir", str(tmp_path / "r"),
                                 "--device", "cpu"])
    assert r.exit_code == 2 and "nope.npz" in r.output


def test_a_measured_fit_is_the_same_fit_on_any_device(tmp_path: Path) -> None:
    """The device is recorded but is not part of a fine-tuned fold network's identity: a fold
    fine-tuned on a GPU is reused by a CPU-only evaluation (and the other way round)."""
    from glacierbed.models.thickness.features import thickness_features
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, finetune_on_measured
    from glacierbed.pipeline.store import shipped_weights

    yy, xx = np.mgrid[:32, :32]
    own = np.hypot(yy - 16, xx - 16) < 10
    feats = thickness_features(3000.0 - 3.0 * yy + 20.0 * own, own.astype(int), 50.0).astype(np.float32)
    window = MeasuredWindow("A", feats, np.where(own, 40.0, np.nan).astype(np.float32), own)
    init = shipped_weights("thickness_net.pt")
    cpu = MeasuredFinetuneConfig(steps=2, w_sim=0.0, threads=1, device="cpu")
    path, record = finetune_on_measured(cpu, init, [window], tmp_path, tmp_path / "a.pt")
    done = record["finetuned_on_measured"]
    assert done["device"] == "cpu" and "device" not in done["config"]
    stamp = path.stat().st_mtime_ns
    again, _ = finetune_on_measured(MeasuredFinetuneConfig(steps=2, w_sim=0.0, threads=1, device="auto"), init,
                                    [window], tmp_path, tmp_path / "a.pt")
    assert again == path and path.stat().st_mtime_ns == stamp  # reused, not fitted again
