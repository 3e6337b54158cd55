"""The one config loader: nested dataclasses, tuples from YAML lists, strict keys, clear errors."""

from pathlib import Path

import pytest

from glacierbed.core.config import config_to_yaml, load_config
from glacierbed.models.inpainting.patches import DatasetConfig
from glacierbed.core.errors import CorruptFileError, DataNotFoundError
from glacierbed.models.inpainting.training import TrainConfig


def test_nested_and_tuples_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("steps: 7\nmodel: {width: 8, dilations: [1, 2]}\nimage_steps: [0, 7]\n")
    cfg = load_config(TrainConfig, path)
    assert cfg.steps == 7 and cfg.model.width == 8 and cfg.model.dilations == (1, 2) and cfg.image_steps == (0, 7)
    (tmp_path / "rt.yaml").write_text(config_to_yaml(cfg))
    assert load_config(TrainConfig, tmp_path / "rt.yaml") == cfg


def test_scalar_where_list_allowed_and_overrides() -> None:
    cfg = load_config(DatasetConfig, {"sources": [{"name": "a", "dem": "x.tif"}]}, seed=3)
    assert cfg.sources[0].dem == ("x.tif",) and cfg.seed == 3


def test_errors_name_the_file_and_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {widht: 3}\n")
    with pytest.raises(CorruptFileError, match=r"bad.yaml.*unknown ModelConfig keys \['widht'\]"):
        load_config(TrainConfig, bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [1\n")
    with pytest.raises(CorruptFileError, match="not valid YAML"):
        load_config(TrainConfig, broken)
    with pytest.raises(DataNotFoundError, match="missing.yaml"):
        load_config(TrainConfig, tmp_path / "missing.yaml")
    with pytest.raises(CorruptFileError, match="invalid ModelConfig"):
        load_config(TrainConfig, {"model": {"stem_stride": 3}})
