"""``tools/rebuild_lineage.py``: what it rebuilds is what the default's record says its stages were made of."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from glacierbed.core.atomic import file_sha256
from glacierbed.core.config import load_config
from glacierbed.models.thickness.training import ThicknessTrainConfig
from glacierbed.simulation.glacier_set import SimulatedSetConfig

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "rebuild_lineage.py"


def _tool():
    spec = importlib.util.spec_from_file_location("rebuild_lineage", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lineage() -> list[dict]:
    return json.loads((ROOT / "src/glacierbed/weights/thickness_net.json").read_text())["lineage"]


def test_stage1_is_rebuilt_from_the_recorded_sets_and_recipe() -> None:
    """The sets, their order and the recipe stage 1 trained with; its start is stage 0 (not the shipped net)."""
    tool, stage1 = _tool(), _lineage()[1]
    cfg = load_config(ThicknessTrainConfig, ROOT / tool.STAGE1_CONFIG)
    assert [cfg.dataset, *cfg.extra_datasets] == [s["path"] for s in stage1["dataset"]["sets"]] == list(tool.SETS)
    recorded = stage1["config"]
    for key in ("steps", "batch_size", "lr", "seed", "w_mse", "dem_noise_m", "p_speed", "p_smb", "aux_noise"):
        assert getattr(cfg, key) == recorded[key], key
    assert cfg.init_weights == f"{tool.STAGE0}.pt"
    for path, config in tool.SETS.items():  # each set's config is the one its recorded summary was built from
        raw = stage1["dataset"]["sets"][list(tool.SETS).index(path)]["summary"]["config"]
        names = [s["name"] for s in raw["sources"]]
        assert [s.name for s in load_config(SimulatedSetConfig, ROOT / config).sources] == names, path


def test_stage0_comes_back_from_git() -> None:
    """The commit the tool reads stage 0 from holds exactly the network lineage[0] records."""
    tool = _tool()
    blob = subprocess.run(["git", "show", f"{tool.STAGE0_COMMIT}:src/glacierbed/weights/thickness_net.pt"],
                          cwd=ROOT, capture_output=True)
    if blob.returncode:
        pytest.skip("no git history in this checkout")
    assert hashlib.sha256(blob.stdout).hexdigest() == _lineage()[0]["weights_sha256"]


def test_p128_copy_keeps_the_weights_and_changes_only_the_plan(tmp_path: Path, monkeypatch) -> None:
    tool = _tool()
    shipped = ROOT / "src/glacierbed/weights/thickness_net.pt"
    run = tmp_path / "runs/span128/train"
    run.mkdir(parents=True)
    (run / "weights.pt").write_bytes(shipped.read_bytes())
    (run / "weights.json").write_text(json.dumps({"patch_size": 256, "steps": 2000}))
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    tool.p128_copy(json.loads((run / "weights.json").read_text()))
    out = tmp_path / tool.P128
    assert file_sha256(out) == file_sha256(shipped)
    assert json.loads(out.with_suffix(".json").read_text()) == {"patch_size": 128, "steps": 2000}


def test_committed_stage1_twin_is_stage1_but_for_rounding() -> None:
    """The committed rebuild is what its record says, trained on the recorded sets, and validates as stage 1 did
    (to 1e-4 relative): the fold networks started from it are the default's but for float rounding."""
    tool = _tool()
    record = json.loads((ROOT / tool.TWIN).with_suffix(".json").read_text())
    assert file_sha256(ROOT / tool.TWIN) == record["weights_sha256"]
    stage1 = _lineage()[1]
    assert [s["path"] for s in record["dataset"]["sets"]] == [s["path"] for s in stage1["dataset"]["sets"]]
    assert [s["summary"]["counts"] for s in record["dataset"]["sets"]] == \
        [s["summary"]["counts"] for s in stage1["dataset"]["sets"]]
    assert record["dataset"]["init_weights"]["weights_sha256"] == _lineage()[0]["weights_sha256"]
    for key in ("rmse_m", "mae_m", "rmse_50m", "rmse_100m", "rmse_200m"):
        assert record["validation"][key] == pytest.approx(stage1["validation"][key], rel=1e-4), key


def test_retrain_refuses_the_twin_copied_in_place(tmp_path: Path, monkeypatch) -> None:
    """--retrain over a stage 1 that is the committed twin would report the twin as a fresh rebuild: refused."""
    tool = _tool()
    (tmp_path / tool.TWIN.parent).mkdir(parents=True)
    (tmp_path / tool.TWIN).write_bytes(b"weights")
    (tmp_path / tool.STAGE1.parent).mkdir(parents=True)
    (tmp_path / tool.STAGE1).write_bytes(b"weights")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "stage0", lambda lineage: None)
    monkeypatch.setenv("GLACIERBED_DATA", str(tmp_path))
    with pytest.raises(SystemExit, match="committed twin"):
        tool.main(["--retrain"])


def test_the_rebuild_scores_the_design_the_shipped_calibration_records() -> None:
    """Step 5 rescoring the default with other physics than its calibration was fitted on would compare unlike rows:
    the design's three physics files must be those of the shipped calibration's record and of the physics default."""
    from dataclasses import asdict

    from glacierbed.posterior.calibration import SHIPPED_VARIANT
    from glacierbed.posterior.physics_config import PhysicsConfig

    tool = _tool()
    meta = json.loads((ROOT / "src/glacierbed/weights/thickness_net.calibration.json").read_text())
    assert meta["name"] == SHIPPED_VARIANT
    recorded = meta["meta"]["physics"]
    assert asdict(PhysicsConfig.from_yaml(ROOT / tool.FIT_PHYSICS)) == recorded["fit"]
    assert asdict(PhysicsConfig.from_yaml(ROOT / tool.INTERVAL_PHYSICS)) == recorded["interval"]
    assert PhysicsConfig.from_yaml(ROOT / tool.PHYSICS) == PhysicsConfig()  # the scored maps: today's physics
    assert (ROOT / tool.DEFAULT_ROWS).is_file()  # the default's own rows, named as the benchmark names them
