"""Named models: what ``--model NAME`` (or ``model=...``) means, resolved once.

* ``None`` / ``"default"``: the shipped default predictor (see :data:`DEFAULT`);
* ``"biharmonic"``, ``"harmonic"``: classical terrain-only inpainting;
* ``"inpainting-network"`` (alias ``"network"``): the shipped terrain-only gated-conv inpainter;
* ``"thickness-net"``: the shipped surface-aware thickness network;
* a user model's name (``glacierbed train --ship NAME``, found by
  :func:`glacierbed.models.inpainting.network.find_weights`) or a path to weights: a thickness network when a
  ``kind: thickness_net`` record sits beside it, else an inpainting network or checkpoint.

A model's calibration on measured thickness (:mod:`glacierbed.posterior.calibration`), when one was
shipped with it (``<weights stem>.calibration.json`` beside the weights; for the classical
fills ``<name>.calibration.json`` in the package's weights folder), is attached to the
predictor as ``predictor.calibration`` and applied by the estimate stage.

Errors say what failed and what to use instead.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from glacierbed.core.errors import DataNotFoundError, GlacierbedError
from glacierbed.models.inpainters import CLASSICAL, load_inpainter
from glacierbed.models.predictors import InpaintingPredictor, ThicknessPredictor

#: the name ``None``/"default" resolves to: the thickness network, which beat the old default
#: (terrain-only inpainter + stress band) on every measured case (benchmarks/results/validation.md)
DEFAULT = "thickness-net"
THICKNESS_NET_FILE = "thickness_net.pt"


def shipped_weights(file_name: str) -> Path:
    return Path(str(resources.files("glacierbed") / "weights" / file_name))


def calibration_file(weights: Path) -> Path:
    """Where a model's calibration lives: ``<weights stem>.calibration.json`` beside its weights."""
    return weights.with_name(f"{weights.stem}.calibration.json")


def _with_calibration(predictor: ThicknessPredictor, weights: Path) -> ThicknessPredictor:
    from glacierbed.posterior.calibration import Calibration

    path = calibration_file(weights)
    predictor.calibration = Calibration.load(path) if path.exists() else None  # type: ignore[attr-defined]
    predictor.calibration_path = str(path) if path.exists() else None  # type: ignore[attr-defined]
    return predictor


def load_predictor(model: Any = None) -> ThicknessPredictor:
    """A predictor object, or load one by name or weights path (None = :data:`DEFAULT`), with
    its calibration attached when one was shipped."""
    if isinstance(model, (str, os.PathLike)) or model is None:
        predictor, weights = _load(model)
        return _with_calibration(predictor, weights)
    if isinstance(model, ThicknessPredictor):
        return model
    return InpaintingPredictor(model)  # an Inpainter object


def _load(model: str | os.PathLike | None) -> tuple[ThicknessPredictor, Path]:
    """The predictor for a name or path, and the weights file its calibration sits beside."""
    name = DEFAULT if model is None or str(model) == "default" else str(model)
    try:
        if name in CLASSICAL:
            return InpaintingPredictor(load_inpainter(name)), shipped_weights(f"{name}.pt")
        if name in ("network", "inpainting-network"):
            return InpaintingPredictor(load_inpainter("default")), shipped_weights("default.pt")
        if name == "thickness-net":
            path, label = shipped_weights(THICKNESS_NET_FILE), "thickness-net"
        else:
            from glacierbed.models.inpainting.network import find_weights  # torch only when a network is asked for

            path, label = find_weights(name)
        if _is_thickness_net(path):
            from glacierbed.models.thickness.network import ThicknessNetPredictor

            return ThicknessNetPredictor.load(path, label), path
        return InpaintingPredictor(load_inpainter(path)), path
    except DataNotFoundError as exc:
        if model is None:
            raise DataNotFoundError(f"{exc}; the shipped default model is not available: "
                                    f"use --model biharmonic (or model='biharmonic') for the classical fill") from None
        raise
    except GlacierbedError:
        raise
    except (ImportError, FileNotFoundError, OSError) as exc:
        what = "the shipped default model" if model is None else str(model)
        raise DataNotFoundError(f"model {what}: cannot be loaded ({exc}); "
                                f"use --model biharmonic for the classical fill") from exc


def _is_thickness_net(path: str | Path) -> bool:
    from glacierbed.models.thickness.network import is_thickness_net

    return is_thickness_net(path)
