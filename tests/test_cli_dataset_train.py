"""`glacierbed dataset build|figure` and `glacierbed train` from the command line."""

import json

import yaml
from typer.testing import CliRunner

from glacierbed.cli import app
from glacierbed.models.inpainting.patches import PatchSet
from glacierbed.core.atomic import file_sha256
from glacierbed.pipeline.store import INPAINTING_NET_FILE, load_inpainter, package_weights_dir


def test_dataset_build_figure_and_train_cli(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("GLACIERBED_MODELS", str(tmp_path / "models"))
    pkg_default = file_sha256(package_weights_dir() / INPAINTING_NET_FILE)
    cfg = {"patch": 64, "centre_box": 40, "unique_box": 16, "min_elevation_m": 2500, "seed": 1,
           "sources": [{"name": "oetztal", "dem": "oggm-sample-data/test-workflow/srtm_oetztal.tif",
                        "outlines": "oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp", "resolutions_m": [100]}]}
    (tmp_path / "ds.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "p.npz"
    runner = CliRunner()
    r = runner.invoke(app, ["dataset", "build", "--config", str(tmp_path / "ds.yaml"), "--out", str(out),
                            "--n-per-source", "40"])
    assert r.exit_code == 0, r.output
    ps = PatchSet.load(out)
    summary = json.loads(out.with_suffix(".json").read_text())
    assert len(ps) == summary["n_patches"] > 10 and ps.dem.shape[1:] == (64, 64)
    r = runner.invoke(app, ["dataset", "figure", str(out), "--out", str(tmp_path / "f.png"), "--n", "4"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "f.png").stat().st_size > 10_000
    train_cfg = {"dataset": str(out), "outlines": ["oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"],
                 "model": {"width": 4, "depth": 2, "dilations": [2]}, "steps": 2, "batch_size": 2,
                 "val_every": 2, "ckpt_every": 2, "image_steps": [], "num_workers": 0, "threads": 1}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(train_cfg))
    r = runner.invoke(app, ["train", "--config", str(tmp_path / "t.yaml"), "--run-dir", str(tmp_path / "run"),
                            "--ship", "--name", "mini"])
    assert r.exit_code == 0, r.output
    assert "glacier holes: RMSE" in r.output and (tmp_path / "run" / "weights.pt").exists()
    # --ship installs into the user models dir, found by name; the package's weights are untouched
    assert (tmp_path / "models" / "mini.pt").exists() and (tmp_path / "models" / "mini.json").exists()
    net = load_inpainter("mini")
    assert net.weights_sha256 == file_sha256(tmp_path / "run" / "weights.pt")
    assert file_sha256(package_weights_dir() / INPAINTING_NET_FILE) == pkg_default


def test_train_cli_refuses_a_reserved_ship_name_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("GLACIERBED_MODELS", str(tmp_path / "models"))
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"dataset": str(tmp_path / "nope.npz")}))
    r = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "t.yaml"), "--run-dir", str(tmp_path / "default"),
                                 "--ship"])
    assert r.exit_code == 2 and "reserved" in r.output and "nope.npz" not in r.output
    assert not (tmp_path / "default").exists()


def test_train_cli_missing_dataset_is_a_clean_error(tmp_path):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"dataset": str(tmp_path / "nope.npz")}))
    r = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "t.yaml"), "--run-dir", str(tmp_path / "r")])
    assert r.exit_code == 2 and "nope.npz" in r.output and "Traceback" not in r.output
