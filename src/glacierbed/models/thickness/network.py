"""Surface-aware thickness network: sees the whole window, predicts thickness and its uncertainty.

Inputs are :func:`glacierbed.models.thickness.features.thickness_features` (ice surface, masks, distance to
the margin, slopes at three scales, pixel size, the perfect-plasticity and
mass-conservation thicknesses, speed/SMB when given). A small U-Net (plain 3x3
convolutions, GELU, average-pool down, bilinear up, skips) outputs two maps:

* thickness H = 100 m * softplus(y0 + softplus^-1(H_mc / 100 m)): a residual on the
  mass-conservation channel (an untrained network returns it), >= 0 by construction and
  forced to 0 outside the ice and on its margin (divides between glaciers excepted);
* sigma = 100 m * softplus(y1 + softplus^-1(0.3 H_mc / 100 m + 0.1)) + 1 m, the 1-sigma
  uncertainty of H, trained with a Gaussian negative log-likelihood.

:class:`ThicknessNetPredictor` is the estimate stage's interface (:mod:`glacierbed.models.predictors`):
the ensemble members are the eight symmetries of the square (test-time augmentation),
sigma combines the network's sigma with the members' spread.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from glacierbed.core.atomic import file_sha256, write_json
from glacierbed.core.errors import CorruptFileError, DataNotFoundError
from glacierbed.models.thickness.features import MC_CHANNEL, N_FEATURES, THICK_SCALE_M, thickness_features
from glacierbed.data.rasters import fill_nearest
from glacierbed.models.files import load_plain, save_plain, state_copy
from glacierbed.models.predictors import GlacierWindow, Prediction

MIN_SIGMA_M = 1.0


@dataclass(frozen=True)
class ThicknessNetConfig:
    width: int = 16  #: channels at full resolution (x2 per level, capped at 8x)
    depth: int = 4  #: number of downsamplings (window sides must be multiples of 2^depth; inputs are padded)
    n_features: int = N_FEATURES

    def build(self) -> "ThicknessNet":
        return ThicknessNet(self)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GELU(), nn.Conv2d(cout, cout, 3, padding=1), nn.GELU())


def _inv_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


def interior(ice: torch.Tensor) -> torch.Tensor:
    """Ice pixels whose 4 neighbours are ice too (the array edge is a margin), as float."""
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]], dtype=ice.dtype, device=ice.device)
    n = F.conv2d(F.pad(ice, (1, 1, 1, 1)), cross[None, None])
    return (n > 4.5).to(ice.dtype)


class ThicknessNet(nn.Module):
    """U-Net mapping features (B, C, H, W) to (thickness_m, sigma_m), each (B, 1, H, W)."""

    def __init__(self, cfg: ThicknessNetConfig):
        super().__init__()
        self.cfg = cfg
        chans = [cfg.width * min(2**i, 8) for i in range(cfg.depth + 1)]
        self.stem = _block(cfg.n_features, chans[0])
        self.down = nn.ModuleList(_block(chans[i], chans[i + 1]) for i in range(cfg.depth))
        self.up = nn.ModuleList(_block(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(cfg.depth)))
        self.head = nn.Conv2d(chans[0], 2, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def multiple(self) -> int:
        return 2**self.cfg.depth

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        skips, f = [], self.stem(xp)
        for down in self.down:
            skips.append(f)
            f = down(F.avg_pool2d(f, 2))
        for up in self.up:
            s = skips.pop()
            f = up(torch.cat([F.interpolate(f, size=s.shape[-2:], mode="bilinear", align_corners=False), s], dim=1))
        y = self.head(f)[..., :h, :w]
        ice = x[:, 1:2]
        prior = (x[:, MC_CHANNEL:MC_CHANNEL + 1]).clamp(0.02, 8.0)  # thickness units of 100 m
        thick = THICK_SCALE_M * F.softplus(y[:, :1] + _inv_softplus(prior)) * interior(ice)
        sigma = THICK_SCALE_M * F.softplus(y[:, 1:] + _inv_softplus(0.3 * prior + 0.1)) + MIN_SIGMA_M
        return thick, sigma * ice


def gaussian_nll(mean: torch.Tensor, sigma: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (metres) over pixels with ``weight`` > 0."""
    s = sigma.clamp_min(MIN_SIGMA_M)
    nll = torch.log(s) + 0.5 * ((truth - mean) / s) ** 2
    return (nll * weight).sum() / weight.sum().clamp_min(1.0)


# --- weights on disk ---------------------------------------------------------------------
def save_thickness_net(net: ThicknessNet, path: str | Path, record: dict) -> Path:
    """``path`` (state dict) and ``path.json`` (config, data, training record, sha256)."""
    path = save_plain(state_copy(net), path)
    write_json(path.with_suffix(".json"), {"kind": "thickness_net", "net": asdict(net.cfg),
                                           "weights_sha256": file_sha256(path), **record})
    return path


def load_thickness_net(path: str | Path) -> tuple[ThicknessNet, dict]:
    """The network and its record; the weights are read as plain tensors (:mod:`glacierbed.models.files`)."""
    path = Path(path)
    rec_path = path.with_suffix(".json")
    if not path.exists() or not rec_path.exists():
        raise DataNotFoundError(f"{path}: thickness-network weights or their record {rec_path.name} not found")
    state = load_plain(path, "thickness-network weights")
    try:
        record = json.loads(rec_path.read_text())
        net = ThicknessNetConfig(**record["net"]).build()
        net.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CorruptFileError(f"{path}: not a glacierbed thickness network ({type(exc).__name__}: {first})") from None
    record["weights_sha256"] = file_sha256(path)
    return net.eval(), record


def is_thickness_net(path: str | Path) -> bool:
    """Whether ``path`` has a thickness-network record beside it."""
    rec = Path(path).with_suffix(".json")
    try:
        return rec.exists() and json.loads(rec.read_text()).get("kind") == "thickness_net"
    except (OSError, ValueError):
        return False


# --- the predictor ------------------------------------------------------------------------
#: test-time symmetries: (k quarter turns, transpose)
SYMMETRIES = ((0, False), (2, False), (1, False), (3, False), (0, True), (2, True), (1, True), (3, True))


def _sym(a: np.ndarray, k: int, transpose: bool) -> np.ndarray:
    a = np.swapaxes(a, -1, -2) if transpose else a
    return np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1)))


def _unsym(a: np.ndarray, k: int, transpose: bool) -> np.ndarray:
    a = np.rot90(a, -k, axes=(-2, -1))
    return np.ascontiguousarray(np.swapaxes(a, -1, -2) if transpose else a)


class ThicknessNetPredictor:
    """The trained thickness network behind the estimate stage's predictor interface."""

    def __init__(self, net: ThicknessNet, record: dict, name: str = "thickness-net", calibration: object | None = None,
                 calibration_path: str | None = None):
        self.net = net.eval()
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
        net, record = load_thickness_net(path)
        return cls(net, record, name or Path(path).stem)

    @torch.inference_mode()
    def predict_maps(self, features: np.ndarray, ensemble: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """(members (K, ny, nx), sigma (ny, nx)) for one feature stack."""
        outs, sigmas = [], []
        for k, tr in SYMMETRIES[:max(1, min(ensemble, len(SYMMETRIES)))]:
            x = torch.from_numpy(_sym(features, k, tr))[None]
            h, s = self.net(x)
            outs.append(_unsym(h[0, 0].numpy(), k, tr))
            sigmas.append(_unsym(s[0, 0].numpy(), k, tr))
        members = np.stack(outs).astype(np.float64)
        sigma = np.sqrt(np.mean(np.square(sigmas), axis=0) + members.var(axis=0))
        return members, sigma

    def predict(self, window: GlacierWindow, ensemble: int) -> Prediction:
        from scipy import ndimage

        surface = fill_nearest(np.asarray(window.surface, np.float64))
        ids = window.ids if window.ids is not None else ndimage.label(window.ice)[0]
        ids = np.where(window.ice, ids, 0)
        speed = None if window.velocity is None else np.hypot(*window.velocity)
        feats = thickness_features(surface, ids, window.pixel_size_m, speed, window.smb)
        members, sigma = self.predict_maps(feats, ensemble)
        return Prediction(surface[None] - members, sigma_m=sigma, info={"ensemble_kind": "symmetries"})
