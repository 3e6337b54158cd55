"""The thickness network at inference: its record, its engines, and the estimate stage's predictor.

Torch-free: the shipped network runs from its ONNX export (``thickness_net.onnx``, written by
:func:`glacierbed.models.thickness.network.export_onnx`) in onnxruntime, so estimating ice
does not import torch (1.4 s and 180 MiB; ``benchmarks/results/whole_process_speed.md``).
The export is used only when the weights' record vouches for it: the ONNX file's sha256 and
the sha256 of the weights it was exported from must both match; otherwise (a user's freshly
trained model, say) the network runs in torch. Either way the model's identity is the
sha256 of its ``.pt`` weights, so calibrations, caches and resumed runs do not depend on the engine.

:class:`ThicknessNetPredictor`: the ensemble members are the eight symmetries of the square
(test-time augmentation); sigma combines the network's sigma with the members' spread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from glacierbed.core.atomic import file_sha256
from glacierbed.core.errors import CorruptFileError
from glacierbed.data.rasters import fill_nearest
from glacierbed.models.predictors import GlacierWindow, Prediction
from glacierbed.models.thickness.features import thickness_features
from glacierbed.models.thickness.records import read_record

log = logging.getLogger(__name__)

#: features (C, H, W) -> (thickness, sigma) maps, in metres
Engine = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: test-time symmetries: (k quarter turns, transpose)
SYMMETRIES = ((0, False), (2, False), (1, False), (3, False), (0, True), (2, True), (1, True), (3, True))


def current_onnx(path: Path, record: dict, weights_sha256: str) -> Path | None:
    """The ONNX export beside ``path`` when the record vouches for it and it matches these weights."""
    info = record.get("onnx")
    if not isinstance(info, dict):
        return None
    onnx_path = path.with_name(str(info.get("file", "")))
    if not onnx_path.is_file() or onnx_path.suffix != ".onnx":
        return None
    if info.get("weights_sha256") != weights_sha256 or info.get("sha256") != file_sha256(onnx_path):
        log.warning("%s: ONNX export %s is not of these weights (or was changed); running the network in torch",
                    path, onnx_path.name)
        return None
    return onnx_path


class OnnxEngine:
    """The exported network in onnxruntime: pads the features (edge values, bottom and right)
    to the network's multiple as the torch model does, and returns its two maps."""

    def __init__(self, path: Path, multiple: int, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types
            raise CorruptFileError(f"{path}: not a readable ONNX network ({type(exc).__name__})") from None
        self.multiple = multiple

    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(features, np.float32)[None]
        h, w = x.shape[-2:]
        xp = np.pad(x, ((0, 0), (0, 0), (0, (-h) % self.multiple), (0, (-w) % self.multiple)), mode="edge")
        thick, sigma = self.session.run(None, {"xp": xp, "x": x})
        return thick[0, 0], sigma[0, 0]


def load_engine(path: str | Path, weights_sha256: str | None = None) -> tuple[Engine, dict]:
    """(engine, record) of the network in ``path``: its current ONNX export in onnxruntime, or
    the weights in torch. ``record["weights_sha256"]`` is the ``.pt`` file's sha256 either way
    (``weights_sha256``: already computed by the caller)."""
    path = Path(path)
    record = read_record(path)
    sha = weights_sha256 or file_sha256(path)
    onnx_path = current_onnx(path, record, sha)
    if onnx_path is None:
        from glacierbed.models.thickness.network import TorchEngine, load_thickness_net  # torch only here

        net, record = load_thickness_net(path)
        return TorchEngine(net), record
    try:
        multiple = 2 ** int(record["net"]["depth"])
    except (KeyError, TypeError, ValueError):
        raise CorruptFileError(f"{path}: the record has no network depth") from None
    return OnnxEngine(onnx_path, multiple), {**record, "weights_sha256": sha, "engine": "onnxruntime"}


def _sym(a: np.ndarray, k: int, transpose: bool) -> np.ndarray:
    a = np.swapaxes(a, -1, -2) if transpose else a
    return np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1)))


def _unsym(a: np.ndarray, k: int, transpose: bool) -> np.ndarray:
    a = np.rot90(a, -k, axes=(-2, -1))
    return np.ascontiguousarray(np.swapaxes(a, -1, -2) if transpose else a)


class ThicknessNetPredictor:
    """The trained thickness network behind the estimate stage's predictor interface."""

    #: glaciers on a DEM coarser than ``EstimateConfig.refine_coarse_dem_m`` are refined for it: its thickness
    #: depends on how many pixels a glacier spans (``benchmarks/results/resolution_prior.md``)
    refine_coarse_dem = True

    def __init__(self, engine: Engine, record: dict, name: str = "thickness-net", calibration: Any = None,
                 calibration_path: str | None = None):
        self.engine = engine
        self.record = record
        self.name = name
        self.identity = str(record.get("weights_sha256", ""))
        self.patch_size = int(record.get("patch_size", 128))
        self.resolution_range_m = tuple(float(v) for v in record.get("resolution_range_m", (25.0, 200.0)))
        #: the model's calibration on measured thickness (:mod:`glacierbed.posterior.calibration`) and
        #: its file, given by :func:`glacierbed.pipeline.store.load_predictor`; applied by estimate
        self.calibration = calibration
        self.calibration_path = calibration_path

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> "ThicknessNetPredictor":
        """The network in ``path`` without a calibration (the model store gives one)."""
        engine, record = load_engine(path)
        return cls(engine, record, name or Path(path).stem)

    def predict_maps(self, features: np.ndarray, ensemble: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """(members (K, ny, nx), sigma (ny, nx)) for one feature stack."""
        outs, sigmas = [], []
        for k, tr in SYMMETRIES[:max(1, min(ensemble, len(SYMMETRIES)))]:
            h, s = self.engine(_sym(features, k, tr))
            outs.append(_unsym(h, k, tr))
            sigmas.append(_unsym(s, k, tr))
        members = np.stack(outs).astype(np.float64)
        sigma = np.sqrt(np.mean(np.square(sigmas), axis=0) + members.var(axis=0))
        return members, sigma

    @staticmethod
    def window_features(window: GlacierWindow) -> tuple[np.ndarray, np.ndarray]:
        """(gap-filled surface, the network's feature stack) of a glacier window."""
        from scipy import ndimage

        surface = fill_nearest(np.asarray(window.surface, np.float64))
        ids = window.ids if window.ids is not None else ndimage.label(window.ice)[0]
        ids = np.where(window.ice, ids, 0)
        speed = None if window.velocity is None else np.hypot(*window.velocity)
        return surface, thickness_features(surface, ids, window.pixel_size_m, speed, window.smb)

    def predict(self, window: GlacierWindow, ensemble: int) -> Prediction:
        surface, feats = self.window_features(window)
        members, sigma = self.predict_maps(feats, ensemble)
        return Prediction(surface[None] - members, sigma_m=sigma, info={"ensemble_kind": "symmetries"})
