"""Where model weights live: the package's weights stay read-only, shipped models go to a
user models dir (``GLACIERBED_MODELS`` or the user data dir) and are found by name; every
loaded model carries the SHA-256 of its weights; every name means one model."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch

from glacierbed.core.atomic import file_sha256
from glacierbed.core.errors import CorruptFileError, DataNotFoundError
from glacierbed.models.inpainters import ClassicalInpainter, inpainter_id
from glacierbed.models.inpainting.network import ModelConfig, NetworkInpainter, save_weights
from glacierbed.pipeline import store
from glacierbed.pipeline.store import (
    INPAINTING_NET_FILE,
    MODELS_ENV,
    load_inpainter,
    models_dir,
    package_weights_dir,
    ship_destination,
    ship_weights,
)

TINY = ModelConfig(width=4, depth=2, dilations=(2,))


@pytest.fixture
def models(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv(MODELS_ENV, str(folder))
    return folder


def _trained(tmp_path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return save_weights(TINY.build(), tmp_path / f"run{seed}" / "weights.pt", {"patch_size": 64, "steps": 3})


def test_models_dir_from_env_or_user_data_dir(tmp_path: Path, monkeypatch) -> None:
    import platformdirs

    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "m"))
    assert models_dir() == tmp_path / "m"
    monkeypatch.delenv(MODELS_ENV)
    assert models_dir() == Path(platformdirs.user_data_dir("glacierbed", appauthor=False)) / "models"
    assert package_weights_dir() not in (models_dir(), *models_dir().parents)


def test_ship_then_load_by_name(tmp_path: Path, models: Path) -> None:
    weights = _trained(tmp_path)
    assert json.loads(weights.with_suffix(".json").read_text())["weights_sha256"] == file_sha256(weights)
    pkg_before = file_sha256(package_weights_dir() / INPAINTING_NET_FILE)
    out = ship_weights(weights, "mini")
    assert out == models / "mini.pt" and out.with_suffix(".json").exists()
    net = load_inpainter("mini")
    assert isinstance(net, NetworkInpainter) and net.name == "mini" and net.patch_size == 64
    assert net.weights_sha256 == file_sha256(weights) == net.record["weights_sha256"]
    assert inpainter_id(net) == net.weights_sha256
    # a second model under another name has another hash; the package's weights are untouched
    other = load_inpainter(ship_weights(_trained(tmp_path, seed=1), "mini2"))
    assert other.weights_sha256 != net.weights_sha256
    assert file_sha256(package_weights_dir() / INPAINTING_NET_FILE) == pkg_before


def test_ship_to_a_given_path(tmp_path: Path, models: Path) -> None:
    weights = _trained(tmp_path)
    out = ship_weights(weights, dest=tmp_path / "elsewhere" / "mine.pt")
    assert out.exists() and not models.exists()
    assert load_inpainter(out).weights_sha256 == file_sha256(weights)
    assert ship_weights(weights, "named", dest=tmp_path / "folder").name == "named.pt"


@pytest.mark.parametrize("name", ["default", "network", "thickness-net", "inpainting-network", "biharmonic",
                                  "../escape", "a/b", "x.pt", ""])
def test_reserved_or_bad_names_refused(name: str, models: Path) -> None:
    with pytest.raises(ValueError):
        ship_destination(name)


def test_package_weights_are_read_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="read-only"):
        ship_destination(dest=package_weights_dir() / INPAINTING_NET_FILE)
    with pytest.raises(ValueError, match="read-only"):
        ship_destination("mine", dest=package_weights_dir())


def test_shipped_network_and_classical_identifiers(models: Path) -> None:
    net = load_inpainter("inpainting-network")
    assert net.name == "inpainting-network" and load_inpainter("network").name == "inpainting-network"  # the alias
    assert net.weights_sha256 == file_sha256(package_weights_dir() / INPAINTING_NET_FILE)
    assert net.record["kind"] == "inpainting_net" and net.record["weights_sha256"] == net.weights_sha256
    bi, ha = load_inpainter("biharmonic"), load_inpainter("harmonic")
    assert bi.weights_sha256 == hashlib.sha256(b"classical:biharmonic").hexdigest()
    assert ClassicalInpainter("biharmonic").weights_sha256 == bi.weights_sha256 != ha.weights_sha256
    assert len({net.weights_sha256, bi.weights_sha256, ha.weights_sha256}) == 3


def test_in_memory_network_has_a_stable_parameter_hash() -> None:
    torch.manual_seed(5)
    a = NetworkInpainter(TINY.build(), {})
    torch.manual_seed(5)
    b = NetworkInpainter(TINY.build(), {})
    torch.manual_seed(6)
    c = NetworkInpainter(TINY.build(), {})
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256


def test_unknown_name_and_stale_record(tmp_path: Path, models: Path, caplog) -> None:
    with pytest.raises(DataNotFoundError, match="no nothere.pt in .*models"):
        load_inpainter("nothere")
    weights = _trained(tmp_path)
    ship_weights(weights, "mini")
    rec = json.loads((models / "mini.json").read_text())
    (models / "mini.json").write_text(json.dumps({**rec, "weights_sha256": "0" * 64}))
    with caplog.at_level(logging.WARNING, logger="glacierbed.models.inpainting.network"):
        load_inpainter("mini")
    assert "describes other weights" in caplog.text


def test_every_name_means_one_model() -> None:
    """One table of names, one of aliases: no alias is a name, every alias points at a name, and
    each shipped model has its own weights file; a name loads the same model every time."""
    assert not set(store.ALIASES) & set(store.MODELS)
    assert set(store.ALIASES.values()) <= set(store.MODELS) and store.DEFAULT == "thickness-net"
    files = [e.weights for e in store.MODELS.values() if e.weights]
    assert len(files) == len(set(files)) and all((package_weights_dir() / f).is_file() for f in files)
    assert not (package_weights_dir() / "default.pt").exists()
    for alias, name in store.ALIASES.items():
        assert store.resolve(alias) == store.resolve(name)
    assert store.resolve(None) == store.resolve("thickness-net")
    assert store.resolve(None).kind == "thickness" and store.resolve("network").kind == "inpainting"
    with pytest.raises(CorruptFileError, match="thickness network, not an inpainter"):
        load_inpainter("default")


def test_each_model_is_loaded_once(tmp_path: Path, models: Path) -> None:
    """The store caches a loaded network by path and content: the same net object comes back,
    a changed file is loaded again."""
    a, b = load_inpainter("inpainting-network"), load_inpainter("network")
    assert a.net is b.net
    p1, p2 = store.load_predictor(None), store.load_predictor("thickness-net")
    assert p1.engine is p2.engine and p1.calibration is not None
    weights = ship_weights(_trained(tmp_path), "mini")
    first = load_inpainter("mini")
    assert load_inpainter(weights).net is first.net
    ship_weights(_trained(tmp_path, seed=1), "mini")  # same path, new content
    assert load_inpainter("mini").net is not first.net
