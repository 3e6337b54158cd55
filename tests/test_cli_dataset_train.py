"""`glacierbed dataset build|figure` and `glacierbed train` from the command line."""

import json

import yaml
from typer.testing import CliRunner

from glacierbed.cli import app
from glacierbed.dataset import PatchSet


def test_dataset_build_figure_and_train_cli(tmp_path, data_dir):
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
    r = runner.invoke(app, ["train", "--config", str(tmp_path / "t.yaml"), "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "glacier holes: RMSE" in r.output and (tmp_path / "run" / "weights.pt").exists()


def test_train_cli_missing_dataset_is_a_clean_error(tmp_path):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"dataset": str(tmp_path / "nope.npz")}))
    r = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "t.yaml"), "--run-dir", str(tmp_path / "r")])
    assert r.exit_code == 2 and "nope.npz" in r.output and "Traceback" not in r.output
