"""``tools/install_default.py``: a decided network with its calibration becomes a default whose record
names every training stage, exported to ONNX, loadable as ``estimate`` loads it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from glacierbed.pipeline import store

TOOL = Path(__file__).resolve().parents[1] / "tools" / "install_default.py"


def _tool():
    spec = importlib.util.spec_from_file_location("install_default", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def decided(tmp_path: Path) -> tuple[Path, list[Path]]:
    """The shipped network as if just decided: weights, record without lineage, calibration; its two
    earlier stages as records of their own."""
    weights = store.shipped_weights(store.THICKNESS_NET_FILE)
    record = json.loads(weights.with_suffix(".json").read_text())
    out = tmp_path / "run" / "final.pt"
    out.parent.mkdir()
    shutil.copyfile(weights, out)
    shutil.copyfile(store.calibration_file(weights), out.with_name("final.calibration.json"))
    lineage = record.pop("lineage")
    out.with_suffix(".json").write_text(json.dumps({k: v for k, v in record.items() if k != "onnx"}))
    stages = []
    for i, st in enumerate(lineage[:-1]):
        stages.append(tmp_path / f"stage{i}.json")
        stages[-1].write_text(json.dumps(st))
    return out, stages


def test_install_writes_lineage_onnx_and_calibration(decided, tmp_path: Path) -> None:
    weights, stages = decided
    dest = tmp_path / "package"
    dest.mkdir()
    out = _tool().install(weights, stages, "test install", dest)
    record = json.loads(out.with_suffix(".json").read_text())
    assert [st["stage"] for st in record["lineage"]] == [
        "trained from scratch", "fine-tuned from stage 0", "fine-tuned on measured thickness from stage 1"]
    assert record["lineage"][-1]["weights_sha256"] == record["weights_sha256"] and record["note"] == "test install"
    assert record["onnx"]["max_abs_difference_m"] < 1e-2 and (dest / "thickness_net.onnx").is_file()
    assert (dest / "thickness_net.calibration.json").read_bytes() == weights.with_name(
        "final.calibration.json").read_bytes()


def test_install_refuses_a_calibration_of_other_weights_and_a_first_stage_not_from_scratch(decided, tmp_path) -> None:
    from glacierbed.core.errors import CorruptFileError

    weights, stages = decided
    tool = _tool()
    with pytest.raises(SystemExit, match="first stage must be trained from scratch"):
        tool.install(weights, stages[1:], "x", tmp_path)
    cal = json.loads(weights.with_name("final.calibration.json").read_text())
    cal["model_identity"] = "0" * 64
    weights.with_name("final.calibration.json").write_text(json.dumps(cal))
    with pytest.raises(CorruptFileError, match="calibration fitted for model 0000"):
        tool.install(weights, stages, "x", tmp_path)
