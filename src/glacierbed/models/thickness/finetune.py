"""Fine-tuning the thickness network on measured thickness (issue 16, item 3).

The network learned glaciers from a simulator; real glaciers differ, and the kit holds
measured thickness on a few dozen of them. :func:`finetune_on_measured` continues training
from trained weights on :class:`MeasuredWindow` samples — the very feature stack the estimate
stage gives the network for a glacier, with its measured pixels (radar points, grid cells:
a masked loss) and/or a measured glacier mean thickness (glacier-level supervision) — while
a batch of simulated windows each step keeps what the network knew. Every glacier weighs
the same, however many measurements it has. Glaciers of ``side_cases`` (e.g. many glaciers
with a mean only) form a second pool drawn beside the first, so they add supervision without
crowding the measured pixels out of the steps.

The samples are made by :mod:`glacierbed.evaluation.measured_finetune`, which also scores
the result on glaciers left out of the fit; nothing here knows where measurements come from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from glacierbed.core.config import YamlConfig, config_to_dict
from glacierbed.core.glaciology import check_margin_profile
from glacierbed.core.threads import torch_threads
from glacierbed.data.region_inputs import rgi_region_number
from glacierbed.models.runs import device_label, resolve_device, to_device
from glacierbed.models.thickness.network import (ThicknessNet, gaussian_nll, interior, load_thickness_net,
                                                 plastic_margin_torch, save_thickness_net)
from glacierbed.models.thickness.training import ThicknessTrainConfig, _augment, _losses, prepare

log = logging.getLogger(__name__)


#: options added after fold networks were first cached, and their "off" values (left out of a fit's identity)
LATER_OPTIONS_OFF = {"relative_floor_m": 0.0, "margin_profile": "zero", "interpolate": 1.0, "train_glaciers": 0,
                     "balance": "window", "trainable": "all"}
#: how a step draws its measured window: uniformly over the windows, or over the RGI regions first
BALANCES = ("window", "region")
#: which weights a fine-tuning fits (:func:`trainable_parameters`); the others stay as the start has them
TRAINABLE = ("all", "last", "head")


@dataclass(frozen=True)
class MeasuredFinetuneConfig(YamlConfig):
    """Settings of a fine-tuning run on measured thickness (YAML keys of the same names)."""

    sim_dataset: str = "runs/simulated.npz"  #: simulated set drawn beside the measurements (train split)
    init_weights: str = ""  #: the network fine-tuned (a .pt path); empty: the shipped thickness network
    steps: int = 300
    lr: float = 1e-4  #: constant (AdamW)
    sim_batch: int = 4  #: simulated windows per step
    w_sim: float = 1.0  #: weight of the simulated loss beside the measured one
    w_mse: float = 0.5  #: weight of the squared error (in (100 m)^2) beside the NLL, as in training
    w_mean: float = 1.0  #: weight of a glacier-mean term (squared error in (100 m)^2)
    #: cases whose glaciers form a second pool, ``side_batch`` of them drawn every step beside the
    #: measured glacier (glacier-mean supervision that should not crowd out the measured pixels)
    side_cases: tuple[str, ...] = ()
    side_batch: int = 1
    #: > 0: each glacier's squared-error and glacier-mean terms in units of its own measured mean
    #: thickness (floored at this many metres) instead of 100 m, so a 300 m ice cap's errors do not
    #: outweigh a 40 m valley glacier's (the headline metric is relative, per glacier); 0: off
    relative_floor_m: float = 0.0
    #: what the loss sees on the glacier's margin pixels: ``zero`` (the network's output, 0 there) or
    #: ``plastic`` (:func:`~glacierbed.models.thickness.network.plastic_margin_torch`, what the physics stage's
    #: ``margin_profile: plastic`` gives), so measured margin cells and glacier means are fitted as they are scored
    margin_profile: str = "zero"
    #: < 1: the fine-tuned weights moved back toward the start, theta = a theta_fine-tuned + (1 - a) theta_start
    #: (weight-space interpolation, WiSE-FT: keeps more of what the start knew where the measured glaciers say
    #: nothing, e.g. an unseen region); 1: the fine-tuned weights as they are
    interpolate: float = 1.0
    #: > 0: each fold of an evaluation fine-tunes on this many of its training glaciers, drawn at random (seeded by
    #: the fold; ``glacierbed.evaluation.measured_finetune``): how the gain grows with measured glaciers; 0: all
    train_glaciers: int = 0
    #: ``window``: each step's measured window drawn uniformly (the Alps, two thirds of the kit's glaciers, dominate);
    #: ``region``: an RGI region drawn uniformly first, then a window of it
    balance: str = "window"
    #: ``all``: every weight is fitted; ``last``: the last (full-resolution) decoder block and the head only; ``head``:
    #: the final 1x1 convolution only (a per-pixel recombination of the last features, the same for every glacier)
    trainable: str = "all"
    folds: int = 6  #: glacier-wise folds of the evaluation
    threads: int = 2
    seed: int = 0
    #: where the steps run (``glacierbed.models.runs.DEVICES``); not part of a fit's identity, so
    #: fold networks fine-tuned on a GPU are reused on a CPU and the other way round
    device: str = "auto"

    def __post_init__(self) -> None:
        check_margin_profile(self.margin_profile)
        if not 0.0 <= self.interpolate <= 1.0:
            raise ValueError(f"interpolate must lie in [0, 1] (1: the fine-tuned weights), got {self.interpolate}")
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {', '.join(BALANCES)}, got {self.balance!r}")
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {', '.join(TRAINABLE)}, got {self.trainable!r}")


def trainable_parameters(net: ThicknessNet, trainable: str) -> list[torch.nn.Parameter]:
    """The weights a fine-tuning fits (``trainable``: one of :data:`TRAINABLE`); every other weight of ``net`` is
    frozen (``requires_grad`` off), so the backward pass stops where the fitted layers begin."""
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {', '.join(TRAINABLE)}, got {trainable!r}")
    fitted = {"all": [net], "last": [net.up[-1], net.head], "head": [net.head]}[trainable]
    keep = {id(p) for module in fitted for p in module.parameters()}
    for p in net.parameters():
        p.requires_grad_(id(p) in keep)
    return [p for p in net.parameters() if p.requires_grad]


@dataclass
class MeasuredWindow:
    """One measured glacier as the network sees it in the estimate stage."""

    group: str  #: the glacier identity (radar, grid and mean of one glacier share it)
    features: np.ndarray  #: (F, ny, nx) the network's input stack
    truth: np.ndarray  #: (ny, nx) measured thickness (m), NaN where not measured
    own: np.ndarray  #: (ny, nx) bool, this glacier
    mean_m: float = float("nan")  #: measured mean thickness over ``own`` (m), NaN when none
    case: str = ""  #: the measured case it comes from (``MeasuredFinetuneConfig.side_cases`` picks on it)

    @property
    def n_measured(self) -> int:
        return int(np.isfinite(self.truth).sum())


def rgi_region(group: str) -> str:
    """The RGI region of a glacier identity (``RGI60-11.00897``, ``RGI2000-v7.0-G-11-00001`` -> ``11``); the identity
    itself when it is no RGI id."""
    region = rgi_region_number(group)
    return group if region is None else f"{region:02d}"


def draw_window(windows: Sequence[MeasuredWindow], rng: np.random.Generator, balance: str = "window"
                ) -> MeasuredWindow:
    """One measured window for a step: uniformly over ``windows`` (``window``, one draw from ``rng``), or an RGI region
    uniformly first and a window of it (``region``, two draws)."""
    if balance == "window":
        return windows[int(rng.integers(len(windows)))]
    regions = sorted({rgi_region(w.group) for w in windows})
    region = regions[int(rng.integers(len(regions)))]
    of_region = [w for w in windows if rgi_region(w.group) == region]
    return of_region[int(rng.integers(len(of_region)))]


def _window_loss(net: ThicknessNet, w: MeasuredWindow, rng: np.random.Generator, cfg: MeasuredFinetuneConfig
                 ) -> torch.Tensor:
    """Masked NLL + squared error on the measured pixels, plus the glacier-mean term; one
    random symmetry of the square. Errors in units of 100 m, or of the glacier's own measured
    mean thickness (``cfg.relative_floor_m``)."""
    measured = np.isfinite(w.truth)
    unit = 100.0
    if cfg.relative_floor_m > 0:
        own_mean = float(np.mean(w.truth[measured])) if measured.any() else w.mean_m
        unit = max(own_mean, cfg.relative_floor_m) if np.isfinite(own_mean) else unit
    device = next(net.parameters()).device
    b = to_device(_augment({"x": w.features[None], "truth": np.nan_to_num(w.truth)[None], "weight": measured[None],
                            "own": w.own[None]}, rng), device)
    h, s = net(b["x"])
    if cfg.margin_profile == "plastic":
        own = b["own"][:, None].to(h.dtype)
        h = plastic_margin_torch(h, own * (1.0 - interior(b["x"][:, 1:2])), own)
    loss = torch.zeros((), device=device)
    if measured.any():
        weight, truth = b["weight"][:, None], b["truth"][:, None]
        loss = loss + gaussian_nll(h, s, truth, weight) + cfg.w_mse * (
            ((h - truth) / unit) ** 2 * weight).sum() / weight.sum()
    if np.isfinite(w.mean_m):
        own = b["own"][:, None]
        mean = (h * own).sum() / own.sum().clamp_min(1.0)
        loss = loss + cfg.w_mean * ((mean - w.mean_m) / unit) ** 2
    return loss


def finetune_on_measured(cfg: MeasuredFinetuneConfig, init_weights: str | Path, windows: Sequence[MeasuredWindow],
                         run_dir: str | Path, out: str | Path,
                         progress: Callable[[int, int], None] | None = None) -> tuple[Path, dict]:
    """Fine-tune the network in ``init_weights`` on ``windows`` (+ simulated batches); save it
    to ``out`` with a record naming the glaciers fitted on. ``run_dir`` caches the simulated
    features. Returns (weights path, record)."""
    side = [w for w in windows if w.case in cfg.side_cases]
    main = [w for w in windows if w.case not in cfg.side_cases]
    if not main:
        raise ValueError("no measured glacier to fine-tune on" + (
            f" outside the side cases {list(cfg.side_cases)}" if side else ""))
    what = _fit_identity(cfg, init_weights, windows)
    if cfg.interpolate != 1.0:
        return _interpolated(cfg, init_weights, windows, run_dir, Path(out), what, progress)
    done = _finished(out, what)
    if done is not None:
        log.info("%s: already fine-tuned on these glaciers with these settings: reused", out)
        return Path(out), done
    device = resolve_device(cfg.device)
    net, init_record = load_thickness_net(init_weights)
    net.to(device)
    sim = prepare(ThicknessTrainConfig(dataset=cfg.sim_dataset), Path(run_dir))["train"] if cfg.w_sim > 0 else None
    rng = np.random.default_rng(cfg.seed)
    fitted = trainable_parameters(net, cfg.trainable)
    opt = torch.optim.AdamW(fitted, lr=cfg.lr, weight_decay=1e-4)
    losses = []
    with torch_threads(cfg.threads):
        net.train()
        for step in range(cfg.steps):
            loss = _window_loss(net, draw_window(main, rng, cfg.balance), rng, cfg)
            for i in (rng.integers(0, len(side), cfg.side_batch) if side else ()):
                loss = loss + _window_loss(net, side[int(i)], rng, cfg)
            if sim is not None:
                idx = rng.integers(0, len(sim["x"]), cfg.sim_batch)
                batch = _augment({k: sim[k][idx] for k in ("x", "truth", "weight")}, rng)
                nll, mse = _losses(net, to_device(batch, device))
                loss = loss + cfg.w_sim * (nll + cfg.w_mse * mse)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(fitted, 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, cfg.steps)
        net.eval()
    net.cpu()  # the saved weights (and their ONNX export) are CPU tensors
    keep = {k: v for k, v in init_record.items() if k not in ("onnx", "weights_sha256", "kind", "net")}
    record = {**keep, "finetuned_on_measured": {
        **what, "init_weights": str(init_weights), "device": device_label(device),
        "loss_first_last_50": [float(np.mean(losses[:50])), float(np.mean(losses[-50:]))] if losses else None,
        "fitted_parameters": sum(p.numel() for p in fitted)}}
    path = save_thickness_net(net, out, record)
    return path, record


def _fit_identity(cfg: MeasuredFinetuneConfig, init_weights: str | Path, windows: Sequence[MeasuredWindow]) -> dict:
    """What makes a fine-tune this one (the record's ``finetuned_on_measured`` part a cached network must match):
    settings (options still off left out), start, glaciers and their measurement counts."""
    from glacierbed.core.atomic import file_sha256

    config = config_to_dict(cfg)
    config.pop("device")
    for option, off in LATER_OPTIONS_OFF.items():  # absent when off: networks fine-tuned before stay reusable
        if config[option] == off:
            config.pop(option)
    return {"config": config, "init_weights_sha256": file_sha256(init_weights),
            "groups": sorted({w.group for w in windows}), "n_windows": len(windows),
            "n_measured_pixels": int(sum(w.n_measured for w in windows)),
            "n_glacier_means": int(sum(np.isfinite(w.mean_m) for w in windows)),
            "n_side_windows": sum(w.case in cfg.side_cases for w in windows)}


def _interpolated(cfg: MeasuredFinetuneConfig, init_weights: str | Path, windows: Sequence[MeasuredWindow],
                  run_dir: str | Path, out: Path, what: dict, progress: Callable[[int, int], None] | None
                  ) -> tuple[Path, dict]:
    """``cfg.interpolate`` < 1: the full fine-tune (``<out stem>-finetuned.pt``, reused when cached) interpolated
    with its start into ``out``; the record keeps the measured glaciers (it has seen them) and the full fit's path."""
    from dataclasses import replace

    done = _finished(out, what)
    if done is not None:
        log.info("%s: already interpolated from this fine-tune: reused", out)
        return out, done
    full, record = finetune_on_measured(replace(cfg, interpolate=1.0), init_weights, windows, run_dir,
                                        out.with_name(f"{out.stem}-finetuned.pt"), progress)
    net = interpolate_weights(init_weights, full, cfg.interpolate)
    keep = {k: v for k, v in record.items() if k not in ("onnx", "weights_sha256", "kind", "net")}
    record = {**keep, "finetuned_on_measured": {**record["finetuned_on_measured"], **what,
                                                "interpolated_from": str(full)}}
    return save_thickness_net(net, out, record), record


def interpolate_weights(start: str | Path, finetuned: str | Path, alpha: float) -> ThicknessNet:
    """The network with weights ``alpha`` x ``finetuned``'s + (1 - ``alpha``) x ``start``'s (floating-point tensors;
    counters taken from ``finetuned``). Both must be the same architecture (a network fine-tuned from the other)."""
    from glacierbed.core.errors import GlacierbedError

    net, _ = load_thickness_net(finetuned)
    origin, _ = load_thickness_net(start)
    if net.cfg != origin.cfg:
        raise GlacierbedError(f"{finetuned}: not the architecture of {start}, so their weights cannot be interpolated")
    base = origin.state_dict()
    mixed = {k: torch.lerp(base[k], v, alpha) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    net.load_state_dict(mixed)
    return net.eval()


def _finished(out: str | Path, what: dict) -> dict | None:
    """The record of ``out`` when it was fine-tuned exactly as ``what`` says and its weights are intact
    (an interrupted evaluation resumes fold by fold); else None."""
    from glacierbed.core.atomic import file_sha256
    from glacierbed.core.errors import GlacierbedError
    from glacierbed.models.thickness.records import read_record

    try:
        record = read_record(out)
    except GlacierbedError:
        return None
    done = record.get("finetuned_on_measured", {})
    same = all(done.get(k) == v for k, v in what.items())
    return record if same and record.get("weights_sha256") == file_sha256(out) else None


__all__ = ["MeasuredFinetuneConfig", "MeasuredWindow", "finetune_on_measured", "interpolate_weights",
           "trainable_parameters"]
