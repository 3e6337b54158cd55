"""Inpainting network: a gated-convolution U-Net that corrects the biharmonic fill.

Design (measured against the classical fill, see ``benchmarks/inpainting.py``):
- the hole is first filled biharmonically; the network predicts a *correction* in
  metres, zero-initialised, so an untrained model equals the classical fill;
- inputs are relative elevations in metres (minus the mean of visible pixels, divided by
  a fixed scale: absolute relief is kept), the hole mask, the distance to the hole's
  margin in metres, slope components of the fill (m/m) and log pixel size, so one model
  serves 25-200 m grids;
- gated convolutions (Yu et al. 2019, DeepFill v2) learn which pixels to trust; dilated
  convolutions in the bottleneck widen the context; a spectral-normalised PatchGAN
  (hinge loss) is optional (``adv_weight`` > 0).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import ndimage

from glacierbed.core.atomic import file_sha256, replacing, write_json
from glacierbed.core.errors import DataNotFoundError
from glacierbed.core.fill import biharmonic_fill

log = logging.getLogger(__name__)

ELEV_SCALE_M = 500.0  #: input elevations are divided by this (fixed: keeps absolute relief)
OUT_SCALE_M = 100.0  #: the network's output unit for the correction
N_INPUTS = 6


@dataclass(frozen=True)
class ModelConfig:
    width: int = 32  #: channels at full resolution (x2, x3, x4 deeper)
    depth: int = 3  #: number of downsamplings
    dilations: tuple[int, ...] = (2, 4, 8)
    stem_stride: int = 2  #: 2 = work at half resolution (the correction is smooth), 1 = full

    def __post_init__(self) -> None:
        if self.stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {self.stem_stride}")

    @property
    def n_inputs(self) -> int:
        return N_INPUTS

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
        self.bottleneck = nn.Sequential(*[GatedConv(chans[-1], chans[-1], dilation=d) for d in cfg.dilations])
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
        return y


class PatchDiscriminator(nn.Module):
    """Spectral-normalised PatchGAN on (relative elevation, hole) pairs."""

    def __init__(self, width: int = 32, n_layers: int = 4):
        super().__init__()
        sn = nn.utils.spectral_norm
        layers, cin = [], 2
        for i in range(n_layers):
            cout = width * min(2**i, 4)
            layers += [sn(nn.Conv2d(cin, cout, 5, 2, 2)), nn.LeakyReLU(0.2)]
            cin = cout
        layers.append(sn(nn.Conv2d(cin, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, elev_rel: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([elev_rel, hole], dim=1))


# --- feature preparation (numpy, shared by training and inference) -------------------


def prepare_inputs(dem: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Network inputs for one window: ``(features[C, H, W], base_fill_m, offset_m)``.

    ``base_fill_m`` is the biharmonic fill of the hole (NaNs count as hole), the base the
    network corrects; ``offset_m`` is the mean of visible pixels subtracted from the inputs.
    """
    hole = hole | ~np.isfinite(dem)
    base = biharmonic_fill(dem, hole)
    feats, offset = features(base, hole, pixel_size_m)
    return feats, base, offset


def features(base: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> tuple[np.ndarray, float]:
    """Feature stack from an already filled window (training precomputes the fill)."""
    offset = float(base[~hole].mean())
    rel = (base - offset) / ELEV_SCALE_M
    gy, gx = np.gradient(base, pixel_size_m)
    dist = ndimage.distance_transform_edt(hole) * pixel_size_m / 1000.0
    chans = [rel, hole.astype(np.float64), dist, gx, -gy, np.full(base.shape, np.log(pixel_size_m / 100.0))]
    return np.stack(chans).astype(np.float32), offset


# --- the inpainter used by estimate -------------------------------------------------


#: environment variable naming the folder of user models (default: the user data dir)
MODELS_ENV = "GLACIERBED_MODELS"
#: names that mean the weights shipped inside the package (read-only)
DEFAULT_NAMES = ("default", "network")
#: names that cannot be given to a user model (the shipped models, classical fills, and the
#: names ``glacierbed.pipeline.store.load_predictor`` intercepts)
RESERVED_NAMES = (*DEFAULT_NAMES, "biharmonic", "harmonic", "inpainting-network", "thickness-net")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def models_dir() -> Path:
    """Where named user models live: ``$GLACIERBED_MODELS``, else
    ``platformdirs.user_data_dir("glacierbed")/models`` (e.g. ``~/.local/share/glacierbed/models``)."""
    value = os.environ.get(MODELS_ENV)
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("glacierbed", appauthor=False)) / "models"


def package_weights_dir() -> Path:
    """The package's own weights folder (``default.pt`` + ``default.json``): read-only."""
    return Path(str(resources.files("glacierbed") / "weights"))


def state_sha256(net: nn.Module) -> str:
    """A stable hash of a network's parameters and buffers (for models not read from a file)."""
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def check_model_name(name: str) -> str:
    """A name a user model can be saved and found under (``--ship NAME``, ``--model NAME``)."""
    if not _NAME_RE.match(name) or name.endswith((".pt", ".json")):
        raise ValueError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (no path, no suffix)")
    if name in RESERVED_NAMES:
        raise ValueError(f"model name {name!r} is reserved ({', '.join(RESERVED_NAMES)}); choose another")
    return name


def find_weights(spec: str | Path | None = None) -> tuple[Path, str]:
    """Weights file and model name for ``spec``.

    ``None``/"default"/"network": the weights shipped in the package. An existing file
    path: that file (``*.pt`` weights or a training ``checkpoint.pt``). A bare name: the
    user model ``<models_dir()>/<name>.pt`` (see :func:`models_dir`), else a weights file of
    that name shipped in the package.
    """
    if spec is None or str(spec) in DEFAULT_NAMES:
        return package_weights_dir() / "default.pt", "default"
    path = Path(spec)
    if path.is_file():
        return path, path.stem
    text = str(spec)
    if _NAME_RE.match(text) and not text.endswith((".pt", ".json")):
        for folder in (models_dir(), package_weights_dir()):
            cand = folder / f"{text}.pt"
            if cand.is_file():
                return cand, text
        known = sorted(p.stem for p in models_dir().glob("*.pt")) if models_dir().is_dir() else []
        raise DataNotFoundError(f"model {text!r}: no {text}.pt in {models_dir()} (set {MODELS_ENV} to change it) "
                                f"nor in the package; user models there: {', '.join(known) or 'none'} "
                                f"(ship one with `glacierbed train --ship NAME`)")
    raise DataNotFoundError(f"{path}: model weights not found (train one with `glacierbed train`)")


class NetworkInpainter:
    """The trained network behind the :class:`glacierbed.models.inpainters.Inpainter` interface.

    ``weights_sha256`` identifies the weights: the SHA-256 of the file they were loaded
    from (also in ``record["weights_sha256"]``), or of the parameters for a network built
    in memory. Key caches and resumed results on it, not on ``name``.
    """

    def __init__(self, net: GatedUNet, record: dict, name: str = "network", weights_sha256: str | None = None):
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

    @classmethod
    def load(cls, path: str | Path | None = None) -> "NetworkInpainter":
        """Load weights (``*.pt`` with a ``*.json`` record beside it, or a training
        checkpoint) by path or name (see :func:`find_weights`); ``None`` or "default"
        loads the weights shipped in the package."""
        path, name = find_weights(path)
        if not path.exists():
            raise DataNotFoundError(f"{path}: model weights not found (train one with `glacierbed train`)")
        sha = file_sha256(path)
        state = torch.load(path, map_location="cpu", weights_only=False)
        if "generator" in state:  # a training checkpoint
            record = {"model": state["model_config"], **state.get("record", {})}
            weights = state["generator"]
        else:
            weights = state
            rec_path = path.with_suffix(".json")
            if not rec_path.exists():
                raise DataNotFoundError(f"{rec_path}: the record (model config) of {path.name} is missing")
            record = json.loads(rec_path.read_text())
            if record.get("weights_sha256") not in (None, sha):
                log.warning("%s: the record %s describes other weights (sha256 %s..., file %s...)",
                            path, rec_path.name, str(record["weights_sha256"])[:12], sha[:12])
        mcfg = ModelConfig(**{**record["model"], "dilations": tuple(record["model"]["dilations"])})
        net = mcfg.build()
        net.load_state_dict(weights)
        record = {**record, "weights_sha256": sha, "weights_path": str(path)}
        log.info("model %s: %s (sha256 %s)", name, path, sha[:12])
        return cls(net, record, name, weights_sha256=sha)

    @torch.inference_mode()
    def inpaint(self, dem: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> np.ndarray:
        dem = np.asarray(dem, dtype=np.float64)
        outside = ~np.isfinite(dem)
        feats, base, _ = prepare_inputs(dem, hole, pixel_size_m)
        bed = base + self.correction(feats)
        out = np.where(hole & ~outside, bed, dem)
        return out.astype(np.float32)

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
    path = Path(path)
    with replacing(path) as tmp:
        torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, tmp)
    rec = {"model": asdict(net.cfg), **record, "weights_sha256": file_sha256(path)}
    write_json(path.with_suffix(".json"), rec)
    return path


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

    Destination: see :func:`ship_destination` (by default ``<models_dir()>/<name>.pt``,
    ``$GLACIERBED_MODELS`` or the user data dir). The package's own weights folder is never
    written. The record gets ``weights_sha256`` and ``shipped_from``. Returns the ``.pt`` path.
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
    return out


def n_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
