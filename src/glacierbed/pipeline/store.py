"""The model store: what a model name means, where weights live, and loading each model once.

Every name means one model (:data:`MODELS`); :data:`ALIASES` is the only other spelling:

=======================  =================================  =======================================
name (alias)             model                              weights in ``glacierbed/weights``
=======================  =================================  =======================================
``thickness-net``        surface-aware thickness network    ``thickness_net.pt`` + ``.json``
(``default``, ``None``)  (the default)                      (+ ``thickness_net.calibration.json``)
``inpainting-network``   terrain-only gated-conv inpainter  ``inpainting_net.pt`` + ``.json``
(``network``)
``biharmonic``,          classical fills from the terrain   none
``harmonic``             around the glaciers
=======================  =================================  =======================================

Any other name is a user model, ``<models_dir()>/<name>.pt`` + ``.json`` (``glacierbed train
--ship NAME`` installs it there); an existing file path loads that file: a thickness network
when its ``.json`` record says ``kind: thickness_net``, else inpainting weights or a training
checkpoint. Names are resolved only by :func:`resolve`.

Every weights file is read as plain tensors (:mod:`glacierbed.models.files`: a file that would
run code is refused) and once per process: loaded networks are cached by path and SHA-256.
A model's calibration on measured thickness (``<weights stem>.calibration.json`` beside its
weights; for a classical fill ``<name>.calibration.json`` in the package's weights folder) is
given to the predictor when it is built, after checking that it was fitted for this model.
Errors say what failed and what to use instead.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from glacierbed.core.atomic import file_sha256, replacing, write_json
from glacierbed.core.errors import CorruptFileError, DataNotFoundError, GlacierbedError
from glacierbed.models.inpainters import CLASSICAL, ClassicalInpainter, Inpainter
from glacierbed.models.predictors import InpaintingPredictor, ThicknessPredictor, identity_of


@dataclass(frozen=True)
class Entry:
    """A shipped model: its kind ("thickness", "inpainting", "classical") and weights file."""

    kind: str
    weights: str | None = None


MODELS: dict[str, Entry] = {
    "thickness-net": Entry("thickness", "thickness_net.pt"),
    "inpainting-network": Entry("inpainting", "inpainting_net.pt"),
    **{name: Entry("classical") for name in CLASSICAL},
}
#: the one alias table: other spellings of a name in :data:`MODELS`
ALIASES: dict[str, str] = {"default": "thickness-net", "network": "inpainting-network"}
#: what ``None``/"default" means: the thickness network, which beat the old default
#: (terrain-only inpainter + stress band) on every measured case (benchmarks/results/validation.md)
DEFAULT = ALIASES["default"]
THICKNESS_NET_FILE = str(MODELS["thickness-net"].weights)
INPAINTING_NET_FILE = str(MODELS["inpainting-network"].weights)
#: names a user model cannot take
RESERVED_NAMES = (*MODELS, *ALIASES)
#: environment variable naming the folder of user models (default: the user data dir)
MODELS_ENV = "GLACIERBED_MODELS"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# --- where models live ------------------------------------------------------------------------
def package_weights_dir() -> Path:
    """The package's own weights folder: read-only."""
    return Path(str(resources.files("glacierbed") / "weights"))


def shipped_weights(file_name: str) -> Path:
    return package_weights_dir() / file_name


def models_dir() -> Path:
    """Where named user models live: ``$GLACIERBED_MODELS``, else
    ``platformdirs.user_data_dir("glacierbed")/models`` (e.g. ``~/.local/share/glacierbed/models``)."""
    value = os.environ.get(MODELS_ENV)
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("glacierbed", appauthor=False)) / "models"


def calibration_file(weights: Path) -> Path:
    """Where a model's calibration lives: ``<weights stem>.calibration.json`` beside its weights."""
    return weights.with_name(f"{weights.stem}.calibration.json")


def check_model_name(name: str) -> str:
    """A name a user model can be saved and found under (``--ship NAME``, ``--model NAME``)."""
    if not _NAME_RE.match(name) or name.endswith((".pt", ".json")):
        raise ValueError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (no path, no suffix)")
    if name in RESERVED_NAMES:
        raise ValueError(f"model name {name!r} is reserved ({', '.join(RESERVED_NAMES)}); choose another")
    return name


# --- names ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolved:
    """What a name or path means: the model's name, kind and weights file (None: classical)."""

    name: str
    kind: str
    path: Path | None


def resolve(model: str | os.PathLike | None = None) -> Resolved:
    """The one place a model name (or alias, or path) is resolved; ``None`` is :data:`DEFAULT`."""
    text = DEFAULT if model is None else str(model)
    name = ALIASES.get(text, text)
    if name in MODELS:
        entry = MODELS[name]
        return Resolved(name, entry.kind, shipped_weights(entry.weights) if entry.weights else None)
    path = Path(text).expanduser()
    if not path.is_file() and _NAME_RE.match(text) and not text.endswith((".pt", ".json")):
        path = models_dir() / f"{text}.pt"
        if not path.is_file():
            known = sorted(p.stem for p in models_dir().glob("*.pt")) if models_dir().is_dir() else []
            raise DataNotFoundError(f"model {text!r}: no {text}.pt in {models_dir()} (set {MODELS_ENV} to change it) "
                                    f"and not a shipped model ({', '.join(RESERVED_NAMES)}); user models there: "
                                    f"{', '.join(known) or 'none'} (ship one with `glacierbed train --ship NAME`)")
        return Resolved(text, _kind(path), path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: model weights not found (train one with `glacierbed train`)")
    return Resolved(path.stem, _kind(path), path)


def _kind(path: Path) -> str:
    from glacierbed.models.thickness.records import is_thickness_net

    return "thickness" if is_thickness_net(path) else "inpainting"


# --- loading ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _load_file(path: str, sha256: str, kind: str) -> Any:
    """The network in ``path``, loaded once per (path, content): ``sha256`` is part of the key."""
    if kind == "thickness":  # its ONNX export in onnxruntime when current, else torch
        from glacierbed.models.thickness.runtime import load_engine

        return load_engine(path, sha256)
    from glacierbed.models.inpainting.network import NetworkInpainter

    return NetworkInpainter.load(path)


def _loaded(r: Resolved) -> Any:
    path = Path(r.path).resolve()  # type: ignore[arg-type]
    return _load_file(str(path), file_sha256(path), r.kind)


def load_inpainter(model: str | os.PathLike) -> Inpainter:
    """The inpainter a name or path means: a classical fill or an inpainting network
    (the shipped ``inpainting-network``, a user model, a weights or checkpoint file)."""
    return _inpainter(resolve(model))


def _inpainter(r: Resolved) -> Inpainter:
    if r.kind == "classical":
        return ClassicalInpainter(name=r.name)
    if r.kind == "thickness":
        raise CorruptFileError(f"model {r.name!r} ({r.path}) is a thickness network, not an inpainter; "
                               f"use load_predictor for it")
    return _loaded(r).named(r.name)


def load_predictor(model: Any = None) -> ThicknessPredictor:
    """A predictor object, or load one by name or weights path (None = :data:`DEFAULT`), with
    its calibration given when one was shipped."""
    if isinstance(model, ThicknessPredictor):
        return model
    if model is not None and not isinstance(model, (str, os.PathLike)):
        return InpaintingPredictor(model)  # an Inpainter object
    try:
        r = resolve(model)
        if r.kind == "thickness":
            from glacierbed.models.thickness.runtime import ThicknessNetPredictor

            engine, record = _loaded(r)
            cal, cal_path = _calibration(r, str(record["weights_sha256"]))
            return ThicknessNetPredictor(engine, record, r.name, calibration=cal, calibration_path=cal_path)
        inpainter = _inpainter(r)
        cal, cal_path = _calibration(r, identity_of(inpainter))
        return InpaintingPredictor(inpainter, calibration=cal, calibration_path=cal_path)
    except DataNotFoundError as exc:
        if model is None:
            raise DataNotFoundError(f"{exc}; the shipped default model is not available: "
                                    f"use --model biharmonic (or model='biharmonic') for the classical fill") from None
        raise
    except GlacierbedError:
        raise
    except (ImportError, OSError) as exc:
        what = "the shipped default model" if model is None else str(model)
        raise DataNotFoundError(f"model {what}: cannot be loaded ({exc}); "
                                f"use --model biharmonic for the classical fill") from exc


def _calibration(r: Resolved, identity: str) -> tuple[Any, str | None]:
    """(calibration, its path) for a model, or (None, None); refused unless it records that it was
    fitted on this model's maps (:meth:`~glacierbed.posterior.calibration.Calibration.check_model_identity`)."""
    from glacierbed.posterior.calibration import Calibration

    path = calibration_file(r.path if r.path is not None else shipped_weights(f"{r.name}.pt"))
    if not path.exists():
        return None, None
    cal = Calibration.load(path)
    cal.check_model_identity(identity)  # one-line CorruptFileError naming the file and both identities
    return cal, str(path)


# --- installing user models -------------------------------------------------------------------
def ship_destination(name: str | None = None, dest: str | Path | None = None) -> Path:
    """Where :func:`ship_weights` installs a model: ``dest`` (a ``.pt`` path, or a folder
    to hold ``<name>.pt``), else ``<models_dir()>/<name>.pt``. Raises ``ValueError`` for a
    bad name or a destination inside the installed package (its weights are read-only)."""
    if dest is None:
        if name is None:
            raise ValueError("give a model name or a destination path to ship weights")
        out = models_dir() / f"{check_model_name(name)}.pt"
    else:
        out = Path(dest).expanduser()
        if out.is_dir() or out.suffix != ".pt":
            if name is None:
                raise ValueError(f"{out}: a folder; give a model name too (or a .pt path)")
            out = out / f"{check_model_name(name)}.pt"
    pkg = package_weights_dir().resolve()
    if out.resolve().parent == pkg or pkg in out.resolve().parents:
        raise ValueError(f"{out}: inside the installed package; the shipped weights are read-only "
                         f"(ship to {models_dir()} or another folder)")
    return out


def ship_weights(weights: str | Path, name: str | None = None, dest: str | Path | None = None) -> Path:
    """Install trained weights (``*.pt`` + its ``*.json`` record) where ``--model`` finds them.

    Destination: see :func:`ship_destination`. The package's own weights folder is never
    written. The record gets ``weights_sha256`` and ``shipped_from``; a thickness network is
    also exported to ONNX beside it, so estimate runs it without torch. Returns the ``.pt`` path.
    """
    src = Path(weights)
    rec_src = src.with_suffix(".json")
    for p in (src, rec_src):
        if not p.is_file():
            raise DataNotFoundError(f"{p}: not found (nothing to ship; train first)")
    out = ship_destination(name, dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(rec_src.read_text())
    record["weights_sha256"] = file_sha256(src)
    record["shipped_from"] = str(src.resolve())
    with replacing(out) as tmp:
        shutil.copyfile(src, tmp)
    write_json(out.with_suffix(".json"), record)
    if record.get("kind") == "thickness_net":
        from glacierbed.models.thickness.network import export_onnx

        export_onnx(out)
    return out
