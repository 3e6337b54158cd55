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


# --- defaults live in the dataclasses only ----------------------------------------------------
CONFIGS = Path(__file__).resolve().parents[1] / "src" / "glacierbed" / "configs"
WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "glacierbed" / "weights"


@pytest.mark.parametrize("record, cls_path", [
    ("inpainting_net.json", "glacierbed.models.inpainting.training:TrainConfig"),
    ("thickness_net.json", "glacierbed.models.thickness.training:ThicknessTrainConfig"),
])
def test_training_defaults_are_the_shipped_runs(record: str, cls_path: str) -> None:
    """``TrainConfig()`` (API) and ``glacierbed train`` (CLI, no --config) train what the shipped
    weights were trained with from scratch: every field's default is the value in the weights'
    record (for a network fine-tuned in stages, in the first stage of its ``lineage``)."""
    import importlib
    import json

    from glacierbed.core.config import config_to_dict

    module, name = cls_path.split(":")
    cls = getattr(importlib.import_module(module), name)
    rec = json.loads((WEIGHTS / record).read_text())
    shipped = rec["lineage"][0]["config"] if "lineage" in rec else rec["config"]
    defaults = config_to_dict(cls())
    # fields added after the shipped run are absent from its record; their default must be
    # "as before" (None: e.g. init_weights, no start network = trained from scratch; device
    # "auto": the CPU where torch sees no GPU, which is where the record says the run was)
    later = set(defaults) - set(shipped)
    as_before = {"device": "auto"}
    assert all(defaults[k] == as_before.get(k) for k in later), {k: defaults[k] for k in later}
    # the same inside the network's settings: interior_mask True is what every shipped network has
    if isinstance(defaults.get("net"), dict) and isinstance(shipped.get("net"), dict):
        later_net = set(defaults["net"]) - set(shipped["net"])
        assert all(defaults["net"].pop(k) == {"interior_mask": True}.get(k) for k in later_net), later_net
    first = rec["lineage"][0] if "lineage" in rec else rec
    assert first.get("device", rec["device"]) == "cpu"
    assert {k: v for k, v in defaults.items() if k not in later} == {k: shipped[k] for k in defaults if k not in later}
    # what the record has beyond the fields: only the removed adversarial options, switched off
    assert {k: shipped[k] for k in set(shipped) - set(defaults)} in ({}, {"lr_d": 0.0004, "w_adv": 0.0})


def _yaml_classes() -> dict[str, type]:
    from glacierbed.models.inpainting.patches import DatasetConfig as Patches
    from glacierbed.simulation.glacier_set import SimulatedSetConfig

    return {"dataset.yaml": Patches, "simulated.yaml": SimulatedSetConfig,
            "simulated_spanning_256.yaml": SimulatedSetConfig, "simulated_spanning_128.yaml": SimulatedSetConfig,
            "simulated_spanning_128_extra.yaml": SimulatedSetConfig}


def _restated(raw: dict, cls: type) -> list[str]:
    """Keys of ``raw`` whose value equals ``cls``'s default (inside nested config dataclasses too)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        value = raw[f.name]
        if dataclasses.is_dataclass(hints[f.name]) and isinstance(value, dict):
            out += [f"{f.name}.{k}" for k in _restated(value, hints[f.name])]
        elif f.default is not dataclasses.MISSING and _as_yaml(f.default) == value:
            out.append(f.name)
    return out


def _as_yaml(v: object) -> object:
    """A default as YAML holds it (tuples as lists)."""
    return [_as_yaml(x) for x in v] if isinstance(v, tuple) else v


def test_no_yaml_restates_a_default() -> None:
    import yaml

    yamls = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    classes = _yaml_classes()
    assert set(yamls) <= set(classes), f"configs without a known dataclass: {set(yamls) - set(classes)}"
    for name in yamls:
        raw = yaml.safe_load((CONFIGS / name).read_text())
        assert not _restated(raw, classes[name]), f"{name} restates defaults: {_restated(raw, classes[name])}"
        load_config(classes[name], CONFIGS / name)  # and it still loads


def test_one_override_route(tmp_path: Path) -> None:
    """Dataclass defaults < the YAML file < the command-line options."""
    from glacierbed.commands.train import _config

    path = tmp_path / "t.yaml"
    path.write_text("steps: 7\nlr: 0.01\n")
    assert _config(TrainConfig, None) == TrainConfig()
    cfg = _config(TrainConfig, path, steps=None, dataset=None)
    assert (cfg.steps, cfg.lr, cfg.batch_size) == (7, 0.01, TrainConfig().batch_size)
    cfg = _config(TrainConfig, path, steps=3, dataset=tmp_path / "p.npz")
    assert (cfg.steps, cfg.lr, cfg.dataset) == (3, 0.01, str(tmp_path / "p.npz"))


def test_config_changes_names_only_the_fields_off_their_defaults() -> None:
    from glacierbed.core.config import config_changes
    from glacierbed.posterior.physics_config import PhysicsConfig

    assert config_changes(PhysicsConfig()) == {}
    assert config_changes(PhysicsConfig(margin_profile="zero", sia=True)) == {"margin_profile": "zero", "sia": True}
    assert config_changes(PhysicsConfig(margin_profile="plastic", sia=True)) == {"sia": True}  # the default profile


def _benchmark_config_classes() -> dict[str, type]:
    """The dataclass each benchmark config is read with, by the start of its file name."""
    from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
    from glacierbed.models.thickness.training import ThicknessTrainConfig
    from glacierbed.posterior.physics_config import PhysicsConfig
    from glacierbed.simulation.glacier_set import SimulatedSetConfig
    from glacierbed.simulation.synthetic_region import RegionConfig

    return {"thickness_": ThicknessTrainConfig, "measured_finetune": MeasuredFinetuneConfig,
            "physics_": PhysicsConfig, "inpainting_": TrainConfig, "dataset_": DatasetConfig,
            "simulated_": SimulatedSetConfig, "region_": RegionConfig}


def test_benchmark_configs_load_and_name_their_start() -> None:
    """Every benchmark config still loads, and none starts a network from the shipped weights: those change
    whenever a default is installed, so such a config would silently change meaning (it did twice)."""
    classes = _benchmark_config_classes()
    paths = sorted((Path(__file__).parents[1] / "benchmarks" / "configs").glob("*.yaml"))
    assert paths
    for path in paths:
        cls = next((c for prefix, c in classes.items() if path.name.startswith(prefix)), None)
        assert cls is not None, f"{path.name}: no known config class"
        cfg = load_config(cls, path)
        start = str(getattr(cfg, "init_weights", None) or "")
        assert not start.startswith("src/glacierbed/weights/"), f"{path.name} starts from the shipped {start}"


@pytest.mark.parametrize("text, message", [
    ("ensemble: four\n", "(ensemble): expected a whole number, got 'four'"),
    ("ensemble: true\n", "(ensemble): expected a whole number, got True"),
    ("physics:\n  velocity: maybe\n", "(velocity): expected true or false, got 'maybe'"),
    ("margin_m: fifty\n", "(margin_m): expected a number, got 'fifty'"),
])
def test_values_of_the_wrong_type_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    from glacierbed.pipeline.glacier import EstimateConfig

    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(CorruptFileError, match=f"c.yaml.*{message.replace('(', '[(]').replace(')', '[)]')}"):
        load_config(EstimateConfig, tmp_path / "c.yaml")
    cfg = load_config(EstimateConfig, {"margin_m": 50, "physics": {"velocity": False}})  # an int for a float: fine
    assert cfg.margin_m == 50.0 and isinstance(cfg.margin_m, float) and cfg.physics.velocity is False


def test_a_refinement_pixel_size_must_be_positive(tmp_path: Path) -> None:
    from glacierbed.pipeline.glacier import EstimateConfig

    (tmp_path / "c.yaml").write_text("refine_coarse_dem_m: -100\n")
    with pytest.raises(CorruptFileError, match="c.yaml.*refine_coarse_dem_m must be a pixel size in metres above 0"):
        load_config(EstimateConfig, tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_text("refine_coarse_dem_m: null\n")
    assert load_config(EstimateConfig, tmp_path / "c.yaml").refine_coarse_dem_m is None
