"""Inpainting network: a gated-convolution U-Net that corrects the biharmonic fill.

Design (measured against the classical fill, see ``benchmarks/inpainting.py``):
- the hole is first filled biharmonically; the network predicts a *correction* in
  metres, zero-initialised, so an untrained model equals the classical fill;
- inputs are relative elevations in metres (minus the mean of visible pixels, divided by
  a fixed scale: absolute relief is kept), the hole mask, the distance to the hole's
  margin in metres, slope components of the fill (m/m) and log pixel size, so one model
  serves 25-200 m grids;
- gated convolutions (Yu et al. 2019, DeepFill v2) learn which pixels to trust; dilated
  convolutions in the bottleneck widen the context; optional Fast Fourier Convolution
  residual blocks (``ffc_blocks``, LaMa, Suvorov et al. 2022) give a global receptive field;
- ``relief_norm``: elevations standardised by the visible pixels' relief (std) per window,
  an extra channel log(relief / 100 m), and the output scaled by that relief (the fill's
  error grows with relief). Off by default: the shipped weights use the fixed 500 m scale.

Weights are a plain state dict (``*.pt``) with a JSON record beside it (``kind:
inpainting_net``, the model config, training data and metrics, ``weights_sha256``); they
are read only as plain tensors (:mod:`glacierbed.models.files`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import ndimage

from glacierbed.core.atomic import file_sha256, write_json
from glacierbed.core.config import config_to_dict
from glacierbed.core.errors import CorruptFileError, DataNotFoundError
from glacierbed.core.fill import biharmonic_fill
from glacierbed.models.files import load_plain, save_plain, state_copy

log = logging.getLogger(__name__)

ELEV_SCALE_M = 500.0  #: input elevations are divided by this (fixed: keeps absolute relief)
OUT_SCALE_M = 100.0  #: the network's output unit for the correction
N_INPUTS = 6  #: channels of the legacy features (``relief_norm`` adds log relief)
RELIEF_REF_M = 100.0  #: the relief channel is log(relief / RELIEF_REF_M)
MIN_RELIEF_M = 5.0  #: floor of the per-window relief (flat windows)
KIND = "inpainting_net"  #: the ``kind`` of an inpainting network's record


@dataclass(frozen=True)
class ModelConfig:
    width: int = 16  #: channels at full resolution (x2, x3, x4 deeper), gated
    depth: int = 3  #: number of downsamplings
    dilations: tuple[int, ...] = (2, 4, 8)
    stem_stride: int = 2  #: 2 = work at half resolution (the correction is smooth), 1 = full
    ffc_blocks: int = 0  #: LaMa Fast Fourier Convolution residual blocks after the bottleneck
    relief_norm: bool = False  #: per-window relief standardisation of inputs and output

    def __post_init__(self) -> None:
        if self.stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {self.stem_stride}")

    @property
    def n_inputs(self) -> int:
        return N_INPUTS + int(self.relief_norm)

    def build(self) -> "GatedUNet":
        return GatedUNet(self)


class GatedConv(nn.Module):
    """Gated convolution: features * sigmoid(gate) (DeepFill v2, Yu et al. 2019)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1):
        super().__init__()
        pad = dilation * (k - 1) // 2
        self.conv = nn.Conv2d(cin, 2 * cout, k, stride, pad, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.conv(x).chunk(2, dim=1)
        return F.elu(f) * torch.sigmoid(g)


class FourierUnit(nn.Module):
    """Global mixing in the frequency domain: 1x1 convolution of the real 2-D FFT."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * c, 2 * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        f = torch.fft.rfft2(x, norm="ortho")
        f = F.relu(self.conv(torch.cat([f.real, f.imag], dim=1)))
        re, im = f.chunk(2, dim=1)
        return torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho")


class FFCBlock(nn.Module):
    """Residual Fast Fourier Convolution block (LaMa): a local gated 3x3 branch plus a
    spectral (global) branch, added to the input."""

    def __init__(self, c: int):
        super().__init__()
        half = max(c // 2, 1)
        self.local = GatedConv(c, c)
        self.reduce = nn.Conv2d(c, half, 1)
        self.fourier = FourierUnit(half)
        self.expand = nn.Conv2d(half, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.relu(self.reduce(x))
        g = self.expand(g + self.fourier(g))
        return x + 0.5 * (self.local(x) + F.elu(g))


class GatedUNet(nn.Module):
    """Encoder-decoder of gated convolutions with skips and a dilated bottleneck."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        chans = [w * (i + 1) for i in range(cfg.depth + 1)]
        self.stem = GatedConv(cfg.n_inputs, chans[0], k=5, stride=cfg.stem_stride)
        self.down = nn.ModuleList(
            nn.Sequential(GatedConv(chans[i], chans[i + 1], stride=2), GatedConv(chans[i + 1], chans[i + 1]))
            for i in range(cfg.depth)
        )
        self.bottleneck = nn.Sequential(*[GatedConv(chans[-1], chans[-1], dilation=d) for d in cfg.dilations],
                                        *[FFCBlock(chans[-1]) for _ in range(cfg.ffc_blocks)])
        self.up = nn.ModuleList(
            GatedConv(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(cfg.depth))
        )
        self.head = nn.Conv2d(chans[0], 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def multiple(self) -> int:
        return self.cfg.stem_stride * 2 ** self.cfg.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = self.stem(x)
        for down in self.down:
            skips.append(h)
            h = down(h)
        h = self.bottleneck(h)
        for up in self.up:
            s = skips.pop()
            h = F.interpolate(h, size=s.shape[-2:], mode="bilinear", align_corners=False)
            h = up(torch.cat([h, s], dim=1))
        y = self.head(h)
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.cfg.relief_norm:  # output in relief units -> OUT_SCALE_M units
            y = y * torch.exp(x[:, N_INPUTS : N_INPUTS + 1]) * (RELIEF_REF_M / OUT_SCALE_M)
        return y


# --- feature preparation (numpy, shared by training and inference) -------------------


def prepare_inputs(dem: np.ndarray, hole: np.ndarray, pixel_size_m: float,
                   relief_norm: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Network inputs for one window: ``(features[C, H, W], base_fill_m, offset_m)``.

    ``base_fill_m`` is the biharmonic fill of the hole (NaNs count as hole), the base the
    network corrects; ``offset_m`` is the mean of visible pixels subtracted from the inputs.
    """
    hole = hole | ~np.isfinite(dem)
    base = biharmonic_fill(dem, hole)
    feats, offset = features(base, hole, pixel_size_m, relief_norm)
    return feats, base, offset


def features(base: np.ndarray, hole: np.ndarray, pixel_size_m: float,
             relief_norm: bool = False) -> tuple[np.ndarray, float]:
    """Feature stack from an already filled window (training precomputes the fill).

    ``relief_norm``: elevation in units of the visible pixels' std (floored at
    ``MIN_RELIEF_M``) and a last channel log(std / ``RELIEF_REF_M``)."""
    visible = base[~hole]
    offset = float(visible.mean())
    relief = max(float(visible.std()), MIN_RELIEF_M) if relief_norm else ELEV_SCALE_M
    rel = (base - offset) / relief
    gy, gx = np.gradient(base, pixel_size_m)
    dist = ndimage.distance_transform_edt(hole) * pixel_size_m / 1000.0
    chans = [rel, hole.astype(np.float64), dist, gx, -gy, np.full(base.shape, np.log(pixel_size_m / 100.0))]
    if relief_norm:
        chans.append(np.full(base.shape, np.log(relief / RELIEF_REF_M)))
    return np.stack(chans).astype(np.float32), offset


# --- the inpainter used by estimate -------------------------------------------------
def state_sha256(net: nn.Module) -> str:
    """A stable hash of a network's parameters and buffers (for models not read from a file)."""
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _record_beside(path: Path, sha: str) -> dict:
    """The JSON record (model config, training) beside a weights file; a stale hash is logged."""
    rec_path = path.with_suffix(".json")
    if not rec_path.exists():
        raise DataNotFoundError(f"{rec_path}: the record (model config) of {path.name} is missing")
    try:
        record = json.loads(rec_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{rec_path}: not valid JSON ({exc})") from None
    if record.get("weights_sha256") not in (None, sha):
        log.warning("%s: the record %s describes other weights (sha256 %s..., file %s...)",
                    path, rec_path.name, str(record["weights_sha256"])[:12], sha[:12])
    return record


class NetworkInpainter:
    """The trained network behind the :class:`glacierbed.models.inpainters.Inpainter` interface.

    ``weights_sha256`` identifies the weights: the SHA-256 of the file they were loaded
    from (also in ``record["weights_sha256"]``), or of the parameters for a network built
    in memory. Key caches and resumed results on it, not on ``name``.
    """

    def __init__(self, net: GatedUNet, record: dict, name: str = "unnamed-network", weights_sha256: str | None = None):
        self.net = net.eval()
        self.record = record
        self.name = name
        self.patch_size = int(record.get("patch_size", 128))
        self.resolution_range_m = tuple(record.get("resolution_range_m", (25.0, 200.0)))
        self._sha256 = weights_sha256

    @property
    def weights_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = state_sha256(self.net)
        return self._sha256

    def named(self, name: str) -> "NetworkInpainter":
        """The same loaded network under another name (the model store names what it loads)."""
        return self if name == self.name else NetworkInpainter(self.net, self.record, name, self._sha256)

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> "NetworkInpainter":
        """Weights (``*.pt`` with its ``*.json`` record beside it) or a training checkpoint,
        read as plain tensors (:func:`glacierbed.models.files.load_plain`). Names are
        resolved by :func:`glacierbed.pipeline.store.resolve`, not here."""
        path = Path(path)
        state = load_plain(path, "inpainting-network weights")
        sha = file_sha256(path)
        if isinstance(state, dict) and "generator" in state:  # a training checkpoint
            record, weights = {"model": state.get("model_config"), **state.get("record", {})}, state["generator"]
        else:
            weights, record = state, _record_beside(path, sha)
        try:
            mcfg = ModelConfig(**{**record["model"], "dilations": tuple(record["model"]["dilations"])})
            net = mcfg.build()
            net.load_state_dict(weights)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CorruptFileError(f"{path}: not glacierbed inpainting-network weights ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        record = {**record, "weights_sha256": sha, "weights_path": str(path)}
        name = name or path.stem
        log.info("model %s: %s (sha256 %s)", name, path, sha[:12])
        return cls(net, record, name, weights_sha256=sha)

    @torch.inference_mode()
    def inpaint(self, dem: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> np.ndarray:
        dem = np.asarray(dem, dtype=np.float64)
        outside = ~np.isfinite(dem)
        feats, base, _ = prepare_inputs(dem, hole, pixel_size_m, self.net.cfg.relief_norm)
        bed = base + self.correction(feats)
        out = np.where(hole & ~outside, bed, dem)
        return out.astype(np.float32)

    @torch.inference_mode()
    def correction(self, feats: np.ndarray) -> np.ndarray:
        """Raw output in metres for a features array [C, H, W] (padded to the net's
        stride), 0 outside the hole: the correction to the fill of a border-only model."""
        c, h, w = feats.shape
        m = self.net.multiple
        ph, pw = (-h) % m, (-w) % m
        x = torch.from_numpy(feats)[None]
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = self.net(x)[0, 0, :h, :w].numpy() * OUT_SCALE_M
        return y * feats[1]  # only inside the hole


def save_weights(net: GatedUNet, path: str | Path, record: dict) -> Path:
    """Write ``path`` (state dict, small) and ``path.json`` (data, config, metrics and the
    weights' ``weights_sha256``)."""
    path = save_plain(state_copy(net), path)
    rec = {"kind": KIND, "model": config_to_dict(net.cfg), **record, "weights_sha256": file_sha256(path)}
    write_json(path.with_suffix(".json"), rec)
    return path
