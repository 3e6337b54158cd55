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

import json
import logging
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import ndimage

from glacierbed.atomic import replacing, write_json
from glacierbed.errors import DataNotFoundError
from glacierbed.fill import biharmonic_fill

log = logging.getLogger(__name__)

ELEV_SCALE_M = 500.0  #: input elevations are divided by this (fixed: keeps absolute relief)
OUT_SCALE_M = 100.0  #: the network's output unit for the correction
N_INPUTS = 6
N_SURFACE_INPUTS = 2  #: surface models: relative ice surface, SIA thickness of that surface
HEADS = ("softplus", "softplus_sia", "clip")
MIN_THICKNESS_M = 1.0  #: floor of the fill thickness the softplus head starts from
SIA_TAU_PA = 100e3  #: basal shear stress of the SIA thickness input (mid of 50-150 kPa)
SIA_SLOPE_SMOOTH_M = 250.0  #: slope smoothing of the SIA input (as the physics stage)
SIA_MIN_SLOPE_DEG = 2.5


@dataclass(frozen=True)
class ModelConfig:
    width: int = 32  #: channels at full resolution (x2, x3, x4 deeper)
    depth: int = 3  #: number of downsamplings
    dilations: tuple[int, ...] = (2, 4, 8)
    stem_stride: int = 2  #: 2 = work at half resolution (the correction is smooth), 1 = full
    #: surface-aware: sees the ice surface inside the hole (2 more inputs) and predicts a bed
    #: at or below it (docs/surface_model.md); False = the border-only 6-input model
    surface: bool = False
    #: surface models only: "softplus" (thickness = softplus, residual on the clipped fill),
    #: "softplus_sia" (same, residual on the SIA thickness input) or "clip" (bed = min(fill +
    #: correction, surface))
    head: str = "softplus"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"unknown model head {self.head!r}; choose one of {', '.join(HEADS)}")

    @property
    def n_inputs(self) -> int:
        return N_INPUTS + (N_SURFACE_INPUTS if self.surface else 0)

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


def prepare_inputs(dem: np.ndarray, hole: np.ndarray, pixel_size_m: float, surface: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Network inputs for one window: ``(features[C, H, W], base_fill_m, offset_m)``.

    ``base_fill_m`` is the biharmonic fill of the hole (NaNs count as hole), the base the
    network corrects; ``offset_m`` is the mean of visible pixels subtracted from the inputs.
    ``surface``: the DEM values inside the hole are the ice surface (NaN pixels have none:
    the fill stands in for it there) and become the extra inputs of a surface model.
    """
    finite = np.isfinite(dem)
    hole = hole | ~finite
    base = biharmonic_fill(dem, hole)
    surf = np.where(finite, dem, base) if surface else None
    feats, offset = features(base, hole, pixel_size_m, surf)
    return feats, base, offset


def features(base: np.ndarray, hole: np.ndarray, pixel_size_m: float, surface: np.ndarray | None = None
             ) -> tuple[np.ndarray, float]:
    """Feature stack from an already filled window (training precomputes the fill).

    With ``surface`` (ice surface in the hole, terrain elsewhere) two channels follow the
    six: the surface relative to the same offset, in the elevation channel's units, and
    the SIA thickness of that surface, tau / (f rho g sin alpha) with tau = 100 kPa, in
    OUT_SCALE_M units (0 outside the hole).
    """
    offset = float(base[~hole].mean())
    rel = (base - offset) / ELEV_SCALE_M
    gy, gx = np.gradient(base, pixel_size_m)
    dist = ndimage.distance_transform_edt(hole) * pixel_size_m / 1000.0
    chans = [rel, hole.astype(np.float64), dist, gx, -gy, np.full(base.shape, np.log(pixel_size_m / 100.0))]
    if surface is not None:
        chans += [(surface - offset) / ELEV_SCALE_M, np.where(hole, sia_input(surface, pixel_size_m), 0.0) / OUT_SCALE_M]
    return np.stack(chans).astype(np.float32), offset


def sia_input(surface: np.ndarray, pixel_size_m: float) -> np.ndarray:
    """SIA thickness (m) of a surface with the physics stage's slope and constants."""
    from glacierbed.glaciology import sia_thickness, surface_slope

    sin_a, _, _ = surface_slope(surface, pixel_size_m, SIA_SLOPE_SMOOTH_M, SIA_MIN_SLOPE_DEG)
    return sia_thickness(SIA_TAU_PA, sin_a)


def surface_head(y: torch.Tensor, base: torch.Tensor, surface: torch.Tensor, hole: torch.Tensor, head: str,
                 sia: torch.Tensor | None = None) -> torch.Tensor:
    """Bed (OUT_SCALE_M units) of a surface model, never above ``surface`` in the hole.

    ``y``: the raw network output; ``base``: the fill; ``sia``: the SIA thickness input
    (OUT_SCALE_M units). "softplus": thickness = softplus(y + softplus^-1(h0)) with h0 =
    max(surface - base, MIN_THICKNESS_M) (an untrained model gives the fill clipped at the
    surface); "softplus_sia": the same with h0 = max(sia, MIN_THICKNESS_M) (untrained = the
    SIA formula); "clip": bed = min(base + y, surface).
    """
    if head == "clip":
        bed = torch.minimum(base + y, surface)
    else:
        h0 = (sia if head == "softplus_sia" else surface - base).clamp_min(MIN_THICKNESS_M / OUT_SCALE_M)
        h = F.softplus(y + h0 + torch.log(-torch.expm1(-h0)))  # softplus^-1(h0) = h0 + log(1 - e^-h0)
        bed = surface - h
    return torch.where(hole > 0.5, bed, base)


# --- the inpainter used by estimate -------------------------------------------------


class NetworkInpainter:
    """The trained network behind the :class:`glacierbed.inpainters.Inpainter` interface."""

    def __init__(self, net: GatedUNet, record: dict, name: str = "network"):
        self.net = net.eval()
        self.record = record
        self.name = name
        self.patch_size = int(record.get("patch_size", 128))
        self.resolution_range_m = tuple(record.get("resolution_range_m", (25.0, 200.0)))

    @classmethod
    def load(cls, path: str | Path | None = None) -> "NetworkInpainter":
        """Load weights (``*.pt`` with a ``*.json`` record beside it, or a training
        checkpoint); ``None`` or "default" loads the weights shipped in the package."""
        if path is None or str(path) in ("default", "network"):
            path = Path(str(resources.files("glacierbed") / "weights" / "default.pt"))
            name = "default"
        else:
            name = Path(path).stem
        path = Path(path)
        if not path.exists():
            raise DataNotFoundError(f"{path}: model weights not found (train one with `glacierbed train`)")
        state = torch.load(path, map_location="cpu", weights_only=False)
        if "generator" in state:  # a training checkpoint
            record = {"model": state["model_config"], **state.get("record", {})}
            weights = state["generator"]
        else:
            weights = state
            record = json.loads(path.with_suffix(".json").read_text())
        mcfg = ModelConfig(**{**record["model"], "dilations": tuple(record["model"]["dilations"])})
        net = mcfg.build()
        net.load_state_dict(weights)
        return cls(net, record, name)

    @torch.inference_mode()
    def inpaint(self, dem: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> np.ndarray:
        dem = np.asarray(dem, dtype=np.float64)
        outside = ~np.isfinite(dem)
        cfg = self.net.cfg
        feats, base, offset = prepare_inputs(dem, hole, pixel_size_m, surface=cfg.surface)
        if cfg.surface:
            t = lambda a: torch.from_numpy(np.asarray(a, np.float32))[None, None]  # noqa: E731
            y = t(self.correction(feats) / OUT_SCALE_M)
            surf = np.where(outside, base, dem)
            bed = surface_head(y, t((base - offset) / OUT_SCALE_M), t((surf - offset) / OUT_SCALE_M),
                               t(feats[1]), cfg.head, t(feats[N_INPUTS + 1]))[0, 0].numpy().astype(np.float64) * OUT_SCALE_M + offset
        else:
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
    """Write ``path`` (state dict, small) and ``path.json`` (data, config, metrics)."""
    path = Path(path)
    with replacing(path) as tmp:
        torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, tmp)
    rec = {"model": asdict(net.cfg), **record}
    write_json(path.with_suffix(".json"), rec)
    return path


def n_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
