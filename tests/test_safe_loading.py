"""No file glacierbed reads can run code: torch files are read as plain tensors only.

A crafted torch file whose pickle would call ``os.system`` is refused, with a one-line error
naming the file, wherever glacierbed reads torch files: ``--model PATH`` (inpainting weights,
a thickness network with its record, a training checkpoint) and a trainer resuming from
``checkpoint.pt``. The shipped weights still load and give the outputs they gave before.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from glacierbed.cli import app
from glacierbed.core.errors import CorruptFileError
from glacierbed.pipeline import store

HEF = ("oggm-sample-data/test-files/hef_srtm.tif", "oggm-sample-data/test-files/Hintereisferner_RGI6.shp")


class _RunsCode:
    """Pickles as a call of ``os.system(command)``: what loading the file would execute."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file a crafted torch file would create if it ran; it must never exist."""
    path = tmp_path / f"pwned_{os.urandom(6).hex()}"
    yield path
    assert not path.exists(), "a crafted torch file ran code"


def _crafted(path: Path, marker: Path, **plain: object) -> Path:
    """A torch file holding ``plain`` entries and one object whose unpickling runs ``touch marker``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**plain, "payload": _RunsCode(f"touch {shlex.quote(str(marker))}")}, path)
    return path


def _one_line_naming(exc: BaseException, path: Path) -> None:
    msg = str(exc)
    assert "\n" not in msg and str(path) in msg and "refused" in msg, msg


def test_estimate_refuses_crafted_weights(tmp_path: Path, data_dir: Path, marker: Path) -> None:
    evil = _crafted(tmp_path / "evil.pt", marker)
    r = CliRunner().invoke(app, ["estimate", "--dem", str(data_dir / HEF[0]), "--outlines", str(data_dir / HEF[1]),
                                 "--out", str(tmp_path / "out"), "--model", str(evil), "--no-maps"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert str(evil) in r.output.replace("\n", "") and "refused" in r.output  # rich may wrap the line
    with pytest.raises(CorruptFileError) as exc:
        store.load_predictor(str(evil))
    _one_line_naming(exc.value, evil)


def test_store_refuses_a_crafted_thickness_network_and_checkpoint(tmp_path: Path, marker: Path) -> None:
    evil = _crafted(tmp_path / "tn.pt", marker)
    evil.with_suffix(".json").write_text(json.dumps({"kind": "thickness_net", "net": {"width": 8, "depth": 2}}))
    with pytest.raises(CorruptFileError) as exc:
        store.load_predictor(str(evil))
    _one_line_naming(exc.value, evil)
    ckpt = _crafted(tmp_path / "run" / "checkpoint.pt", marker, generator={}, model_config={}, step=3)
    with pytest.raises(CorruptFileError) as exc:
        store.load_inpainter(ckpt)
    _one_line_naming(exc.value, ckpt)


def test_not_a_torch_file_is_a_clean_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(CorruptFileError, match="junk.pt: not a readable") as exc:
        store.load_inpainter(junk)
    assert "\n" not in str(exc.value)


def test_inpainting_trainer_refuses_a_crafted_checkpoint(tmp_path: Path, marker: Path) -> None:
    ckpt = _crafted(tmp_path / "run" / "checkpoint.pt", marker, step=2, elapsed_s=1.0)
    (tmp_path / "p.npz").write_bytes(b"")  # never read: the checkpoint is refused first
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"dataset": str(tmp_path / "p.npz")}))
    r = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "t.yaml"), "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert str(ckpt) in r.output.replace("\n", "") and "refused" in r.output


def test_thickness_trainer_refuses_a_crafted_checkpoint(tmp_path: Path, marker: Path) -> None:
    from glacierbed.models.thickness.training import ThicknessTrainConfig, train_thickness

    ckpt = _crafted(tmp_path / "run" / "checkpoint.pt", marker, step=2, elapsed_s=1.0)
    with pytest.raises(CorruptFileError) as exc:
        train_thickness(ThicknessTrainConfig(dataset=str(tmp_path / "never-read.npz")), tmp_path / "run")
    _one_line_naming(exc.value, ckpt)


def test_checkpoint_of_the_removed_adversarial_trainer_is_refused(tmp_path: Path) -> None:
    from glacierbed.models.inpainting.training import TrainConfig, train

    torch.save({"generator": {}, "opt": {}, "discriminator": {"w": torch.zeros(1)}, "step": 2}, tmp_path / "checkpoint.pt")
    with pytest.raises(CorruptFileError, match="adversarial trainer, which was removed"):
        train(TrainConfig(dataset=str(tmp_path / "never-read.npz")), tmp_path)


# --- the shipped weights, read safely, give the outputs they gave before ----------------------
def _valley(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    r, c = np.mgrid[:n, :n].astype(float)
    bed = 3000.0 - 8.0 * r + 0.3 * (c - n / 2) ** 2
    h = np.clip(60.0 - 0.6 * (c - n / 2) ** 2, 0, None) * (r > 5) * (r < n - 6)
    return bed, h


def test_shipped_thickness_network_loads_and_predicts_as_before() -> None:
    from glacierbed.models.thickness.features import thickness_features

    bed, h = _valley()
    pred = store.load_predictor("thickness-net")
    members, sigma = pred.predict_maps(thickness_features(bed + h, (h > 1).astype(np.int32), 50.0), 2)
    # measured with the shipped weights (52e266c26e22) loaded by torch.load(weights_only=False) into
    # the torch engine (98656.249, 23679.665, 66.8446)
    assert float(members.sum()) == pytest.approx(98656.24919509888, rel=1e-5)
    assert float(sigma.sum()) == pytest.approx(23679.665071240615, rel=1e-5)
    assert float(members[:, 32, 32].mean()) == pytest.approx(66.8445816040039, rel=1e-5)


def test_shipped_inpainting_network_loads_and_inpaints_as_before() -> None:
    bed, _ = _valley()
    hole = np.zeros(bed.shape, bool)
    hole[20:44, 16:40] = True
    net = store.load_inpainter("inpainting-network")
    out = net.inpaint(bed, hole, 100.0)
    # the weights shipped in December 2026 (12,000 steps, relief-normalised, FFC; docs/model.md)
    assert net.weights_sha256 == "1570fd82f15857395bc110f43f8ada6d3e39c2e7e85c0ae792795c3b1a24762a"
    assert float(out.astype(np.float64).sum()) == pytest.approx(11674667.485839844, rel=1e-6)
    assert float(out[32, 28]) == pytest.approx(2748.8427734375, rel=1e-5)
    assert np.abs(out - bed)[~hole].max() < 1e-3  # visible terrain kept
