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

:class:`glacierbed.models.thickness.runtime.ThicknessNetPredictor` is the estimate stage's
interface; it runs the network from its ONNX export (:func:`export_onnx`) without torch, or
here (:class:`TorchEngine`) when there is no current export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from glacierbed.core.atomic import file_sha256, write_bytes, write_json
from glacierbed.core.glaciology import PLASTIC_MARGIN_FACTOR
from glacierbed.core.errors import CorruptFileError
from glacierbed.models.thickness.features import MC_CHANNEL, N_FEATURES, THICK_SCALE_M
from glacierbed.models.files import load_plain, save_plain, state_copy
from glacierbed.models.thickness.records import read_record

MIN_SIGMA_M = 1.0


@dataclass(frozen=True)
class ThicknessNetConfig:
    width: int = 16  #: channels at full resolution (x2 per level, capped at 8x)
    depth: int = 4  #: number of downsamplings (window sides must be multiples of 2^depth; inputs are padded)
    n_features: int = N_FEATURES
    #: thickness x the interior of the ice mask (0 on margin pixels, every shipped network); False: x the ice mask,
    #: so the network predicts its margin pixels itself (benchmarks/results/selection_protocol_margin_network.md)
    interior_mask: bool = True

    def build(self) -> "ThicknessNet":
        return ThicknessNet(self)

    def architecture(self) -> tuple[int, int, int]:
        """What the weights' shapes depend on (a network may start from one with another ``interior_mask``)."""
        return self.width, self.depth, self.n_features


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GELU(), nn.Conv2d(cout, cout, 3, padding=1), nn.GELU())


def _inv_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


def interior(ice: torch.Tensor) -> torch.Tensor:
    """Ice pixels whose 4 neighbours are ice too (the array edge is a margin), as float."""
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]], dtype=ice.dtype, device=ice.device)
    n = F.conv2d(F.pad(ice, (1, 1, 1, 1)), cross[None, None])
    return (n > 4.5).to(ice.dtype)


def plastic_margin_torch(thickness: torch.Tensor, margin: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """:func:`glacierbed.core.glaciology.plastic_margin` on (B, 1, H, W) float masks, differentiable: each
    ``margin`` pixel of ``own`` gets the plastic factor × the mean of its non-margin 4-neighbours on ``own``
    (8-neighbours where none, 0 where neither), so a loss can see the margins the posterior will give."""
    inner = own * (1.0 - margin)
    h = thickness * inner
    out, todo = thickness, (margin * own) > 0.5
    for kernel in ([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]],  # 4-neighbours, then 8
                   [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]):
        k = torch.tensor(kernel, dtype=h.dtype, device=h.device)[None, None]
        total = F.conv2d(F.pad(h, (1, 1, 1, 1)), k)
        count = F.conv2d(F.pad(inner, (1, 1, 1, 1)), k)
        here = todo & (count > 0.5)
        out = torch.where(here, PLASTIC_MARGIN_FACTOR * total / count.clamp_min(1.0), out)
        todo = todo & ~here
    return torch.where(todo, torch.zeros_like(out), out)


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
        return self.from_padded(F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x, x)

    def from_padded(self, xp: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network on ``x`` given also padded (edge-replicated at the bottom and right) to
        a multiple of :attr:`multiple`; the part exported to ONNX (:func:`export_onnx`)."""
        h, w = x.shape[-2:]
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
        thick = THICK_SCALE_M * F.softplus(y[:, :1] + _inv_softplus(prior)) * (
            interior(ice) if self.cfg.interior_mask else ice)
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
    record = read_record(path)
    state = load_plain(path, "thickness-network weights")
    try:
        net = ThicknessNetConfig(**record["net"]).build()
        net.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CorruptFileError(f"{path}: not a glacierbed thickness network ({type(exc).__name__}: {first})") from None
    record["weights_sha256"] = file_sha256(path)
    return net.eval(), record


# --- inference engines ---------------------------------------------------------------------
class TorchEngine:
    """The network in torch: features (C, H, W) -> (thickness, sigma) maps (the fallback of
    :func:`glacierbed.models.thickness.runtime.load_engine` when no current ONNX export exists)."""

    def __init__(self, net: ThicknessNet):
        self.net = net.eval()

    @torch.inference_mode()
    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, s = self.net(torch.from_numpy(np.ascontiguousarray(features, np.float32))[None])
        return h[0, 0].numpy(), s[0, 0].numpy()


class _Exported(nn.Module):
    def __init__(self, net: ThicknessNet):
        super().__init__()
        self.net = net

    def forward(self, xp: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.from_padded(xp, x)


def export_onnx(path: str | Path) -> Path:
    """Write ``path``'s network as ONNX beside it (``*.onnx``: inputs ``xp`` (padded) and ``x``,
    any window size) and record it in the weights' record (``onnx``: file, sha256, the weights'
    sha256 it was exported from), so the estimate stage can run it with onnxruntime, without torch.
    Checked against torch on a test window before it is recorded."""
    import warnings

    import onnxruntime as ort

    path = Path(path)
    net, record = load_thickness_net(path)
    onnx_path = path.with_suffix(".onnx")
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, net.cfg.n_features, 60, 75)).astype(np.float32))
    x[:, 1] = (x[:, 1] > 0).float()
    m = net.multiple
    xp = F.pad(x, (0, (-75) % m, 0, (-60) % m), mode="replicate")
    dims = {"xp": {2: torch.export.Dim("hp"), 3: torch.export.Dim("wp")},
            "x": {2: torch.export.Dim("h"), 3: torch.export.Dim("w")}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_Exported(net).eval(), (xp, x), dynamo=True, input_names=["xp", "x"],
                                    output_names=["thickness", "sigma"], dynamic_shapes=dims, verbose=False)
        data = program.model_proto.SerializeToString()
        want = net(x)
    got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"xp": xp.numpy(), "x": x.numpy()})
    worst = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    # float32 rounding grows with the output: the random test window gives up to ~900 m, where
    # 1 mm is 1e-6 of it; allow 1 mm plus 10 ppm of the largest output
    allowed = 1e-3 + 1e-5 * max(float(w.abs().max()) for w in want)
    if worst > allowed:  # metres
        raise RuntimeError(f"{onnx_path}: the ONNX export differs from torch by {worst:.3g} m on a test window "
                           f"(allowed {allowed:.3g} m)")
    write_bytes(onnx_path, data)
    record["onnx"] = {"file": onnx_path.name, "sha256": file_sha256(onnx_path), "weights_sha256": record["weights_sha256"],
                      "max_abs_difference_m": worst, "torch": torch.__version__}
    write_json(path.with_suffix(".json"), record)
    return onnx_path
