"""Training the surface-aware thickness network on simulated glaciers.

Samples come from a simulated-glacier set (:mod:`glacierbed.simulation.glacier_set`): real ice-free
terrain (the bed) with glaciers grown on it by the shallow-ice model, outlines drawn from
the simulated extent. What the network sees is made to look like a user's data:

* the surface is bed + ice plus DEM noise (white and smooth parts, up to ``dem_noise_m``);
* outlines are the simulated extent above a thickness threshold drawn per sample in
  ``outline_threshold_m`` (inventories miss the thinnest ice), labelled per glacier;
  glaciers cut by the window's edge are seen but carry no loss;
* speed and SMB maps are given in a share ``p_speed`` / ``p_smb`` of the samples (with
  relative noise), the flags saying when.

Features are computed once per sample and cached; training draws batches with the eight
symmetries of the square. The loss is the Gaussian negative log-likelihood of the
thickness (the network's sigma) plus ``w_mse`` x the squared error, over ice pixels.
Runs are resumable (checkpoint with network, optimiser, step), validate every
``val_every`` steps on the held-out split (RMSE per pixel size, bias, 68 % coverage), write
``metrics.csv``/``validation.csv`` and ship ``weights.pt`` + ``weights.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy import ndimage

from glacierbed.core.atomic import replacing, write_json
from glacierbed.core.config import YamlConfig, config_to_dict
from glacierbed.core.threads import torch_threads
from glacierbed.models.runs import OnStep, TrainingRun, optimiser_step, start_from, to_device
from glacierbed.models.thickness.features import N_FEATURES, thickness_features
from glacierbed.simulation.thickness_area import inner_glaciers
from glacierbed.models.thickness.network import (ThicknessNet, ThicknessNetConfig, gaussian_nll, load_thickness_net,
                                                 save_thickness_net)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThicknessTrainConfig(YamlConfig):
    """Every setting of a thickness-network run (YAML keys of the same names). The defaults are
    the shipped ``thickness-net`` run (its record: ``weights/thickness_net.json``, ``config``):
    10,000 steps, about 35 minutes on 2 CPU cores."""

    dataset: str = "runs/simulated.npz"  #: built with ``glacierbed simulate build``
    #: further simulated sets (any window size, e.g. the 256 px spanning set); each batch comes
    #: from one set, drawn in proportion to its training windows
    extra_datasets: tuple[str, ...] = ()
    init_weights: str | None = None  #: start from this trained network (fine-tuning) instead of scratch
    net: ThicknessNetConfig = field(default_factory=ThicknessNetConfig)
    steps: int = 10000
    batch_size: int = 8
    lr: float = 2e-3  #: one-cycle peak learning rate
    w_mse: float = 0.5  #: weight of the squared error (in (100 m)^2) beside the NLL
    dem_noise_m: float = 8.0  #: max std of the DEM noise added to the surface (m)
    outline_threshold_m: tuple[float, float] = (1.0, 10.0)  #: ice thinner than this is not in the outline
    p_speed: float = 0.3  #: share of samples that get a surface-speed map
    p_smb: float = 0.3  #: share of samples that get an SMB map
    aux_noise: float = 0.2  #: relative noise of speed and SMB maps
    val_every: int = 250
    ckpt_every: int = 250
    threads: int = 2  #: torch threads for the run (restored after)
    seed: int = 0
    time_limit_s: float | None = 3300.0  #: stop (and ship what there is) after this wall time
    device: str = "auto"  #: where the steps run: one of ``glacierbed.models.runs.DEVICES``


# --- samples ------------------------------------------------------------------------------
def inventory_labels(thickness: np.ndarray, glacier_ids: np.ndarray, threshold_m: float) -> np.ndarray:
    """Glacier labels as an inventory would draw them: the simulated glaciers' pixels with
    more than ``threshold_m`` of ice (label 0 elsewhere)."""
    return np.where(thickness > threshold_m, glacier_ids, 0).astype(np.int32)


def dem_noise(shape: tuple[int, int], std_m: float, rng: np.random.Generator) -> np.ndarray:
    """Half white, half smooth (2-pixel Gaussian) noise of total std ``std_m``."""
    white = rng.normal(0.0, 1.0, shape)
    smooth = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape), 2.0)
    smooth /= max(float(smooth.std()), 1e-9)
    return std_m * (white + smooth) / np.sqrt(2.0)


def make_sample(bed: np.ndarray, thickness: np.ndarray, glacier_ids: np.ndarray, pixel_size_m: float,
                speed: np.ndarray | None, smb: np.ndarray | None, cfg: ThicknessTrainConfig,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Features (float16), truth thickness and loss weight of one simulated patch."""
    ids = inventory_labels(thickness, glacier_ids, float(rng.uniform(*cfg.outline_threshold_m)))
    surface = bed + thickness + dem_noise(bed.shape, float(rng.uniform(0.0, cfg.dem_noise_m)), rng)
    noisy = lambda a: a * (1.0 + cfg.aux_noise * rng.normal(0.0, 1.0, a.shape))  # noqa: E731
    sp = noisy(speed) if speed is not None and rng.random() < cfg.p_speed else None
    mb = noisy(smb) if smb is not None and rng.random() < cfg.p_smb else None
    feats = thickness_features(surface, ids, pixel_size_m, sp, mb)
    # glaciers cut by the window edge (the simulation's sink) are inputs but carry no loss
    weight = inner_glaciers(ids)
    return {"x": feats.astype(np.float16), "truth": np.where(ids > 0, thickness, 0.0).astype(np.float32),
            "weight": weight.astype(np.float32)}


def prepare(cfg: ThicknessTrainConfig, cache_dir: Path, progress: Callable[[int, int], None] | None = None,
            dataset: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Features of every simulated patch of ``dataset`` (default ``cfg.dataset``), per split;
    cached in ``cache_dir`` by a config hash."""
    from glacierbed.simulation.glacier_set import SimulatedSet

    dataset = cfg.dataset if dataset is None else dataset
    sims = SimulatedSet.load(dataset)
    settings = {k: v for k, v in config_to_dict(cfg).items()
                if k in ("dem_noise_m", "outline_threshold_m", "p_speed", "p_smb", "aux_noise", "seed")}
    key = hashlib.sha256(json.dumps({**settings, "dataset": str(dataset)}, sort_keys=True).encode()).hexdigest()[:12]
    cache = cache_dir / f"samples-{key}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            return {s: {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(s + "/")}
                    for s in {k.split("/")[0] for k in z.files}}
    rng = np.random.default_rng(cfg.seed)
    out: dict[str, dict[str, list]] = {}
    for i in range(len(sims)):
        s = make_sample(sims.bed[i], sims.thickness[i], sims.ids[i], float(sims.res[i]), sims.speed[i], sims.smb[i],
                        cfg, rng)
        d = out.setdefault(str(sims.split[i]), {"x": [], "truth": [], "weight": [], "res": []})
        for k in ("x", "truth", "weight"):
            d[k].append(s[k])
        d["res"].append(float(sims.res[i]))
        if progress:
            progress(i + 1, len(sims))
    arrays = {s: {k: np.stack(v) if k != "res" else np.asarray(v, np.float32) for k, v in d.items()}
              for s, d in out.items()}
    with replacing(cache, keep_suffix=True) as tmp:
        np.savez(tmp, **{f"{s}/{k}": v for s, d in arrays.items() for k, v in d.items()})
    return arrays


def _augment(batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    k, tr = int(rng.integers(4)), bool(rng.integers(2))
    out = {}
    for name, a in batch.items():
        if a.ndim >= 3:
            a = np.swapaxes(a, -1, -2) if tr else a
            a = np.rot90(a, k, axes=(-2, -1))
        out[name] = torch.from_numpy(np.ascontiguousarray(a).astype(np.float32))
    return out


@torch.no_grad()
def evaluate(net: torch.nn.Module, data: dict[str, np.ndarray] | list[dict[str, np.ndarray]], batch_size: int = 16
             ) -> dict[str, float]:
    """RMSE, bias, MAE (m) over ice pixels, 68 % interval coverage, per pixel size and pooled
    (``data``: one set of samples or several, e.g. of different window sizes)."""
    net.eval()
    sums: dict[float, np.ndarray] = {}  # accumulated on the CPU; the network runs where its weights are
    for data in data if isinstance(data, list) else [data]:
        _accumulate(net, data, batch_size, sums)
    net.train()
    return _finish_evaluation(sums)


def _accumulate(net: torch.nn.Module, data: dict[str, np.ndarray], batch_size: int, sums: dict[float, np.ndarray]
                ) -> None:
    """Add one set's error sums (n, sum e^2, sum e, sum |e|, covered) per pixel size to ``sums``."""
    for i in range(0, len(data["x"]), batch_size):
        x = torch.from_numpy(data["x"][i:i + batch_size].astype(np.float32))
        h, s = net(x.to(next(net.parameters()).device))
        h, s = h[:, 0].cpu().numpy(), s[:, 0].cpu().numpy()
        t, w = data["truth"][i:i + batch_size], data["weight"][i:i + batch_size] > 0
        for j, res in enumerate(data["res"][i:i + batch_size]):
            e = (h[j] - t[j])[w[j]]
            cov = (np.abs(e) <= s[j][w[j]]).sum()
            acc = sums.setdefault(float(res), np.zeros(5))
            acc += [e.size, (e**2).sum(), e.sum(), np.abs(e).sum(), cov]


def _finish_evaluation(sums: dict[float, np.ndarray]) -> dict[str, float]:
    out: dict[str, float] = {}
    total = np.zeros(5)
    for res, acc in sorted(sums.items()):
        total += acc
        # NaN where no glacier of that pixel size is scored (all cut by the window's edge)
        out[f"rmse_{res:g}m"] = float(np.sqrt(acc[1] / acc[0])) if acc[0] else float("nan")
    n = max(total[0], 1)
    out.update(rmse_m=float(np.sqrt(total[1] / n)), bias_m=float(total[2] / n), mae_m=float(total[3] / n),
               coverage68=float(total[4] / n), n_pixels=int(total[0]))
    return out


def train_thickness(cfg: ThicknessTrainConfig, run_dir: str | Path, resume: bool = True,
                    on_step: OnStep | None = None) -> dict:
    """Train (or resume) a run in ``run_dir``; returns the record shipped with the weights.

    Torch's thread count is set to ``cfg.threads`` for the run and restored afterwards.
    """
    with torch_threads(cfg.threads):
        return _train(cfg, TrainingRun(cfg, run_dir, resume), on_step)


def _train(cfg: ThicknessTrainConfig, run: TrainingRun, on_step: OnStep | None) -> dict:
    sets = [prepare(cfg, run.run_dir, dataset=d) for d in (cfg.dataset, *cfg.extra_datasets)]
    train_sets = [d["train"] for d in sets if "train" in d]
    val_sets = [d["val"] for d in sets if "val" in d] or train_sets
    share = np.array([len(t["x"]) for t in train_sets], float)
    share /= share.sum()
    net = cfg.net.build()
    if net.cfg.n_features != N_FEATURES:
        raise ValueError(f"network expects {net.cfg.n_features} features, glacierbed.models.thickness.features "
                         f"makes {N_FEATURES}")
    init = None
    if cfg.init_weights:
        start, init = load_thickness_net(cfg.init_weights)
        start_from(net, start, cfg.init_weights)
    net.to(run.device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    run.restore(net=net, opt=opt)
    sched = run.scheduler(opt, cfg.lr)
    rng = run.rng(cfg.seed)

    def train_step(step: int) -> dict[str, float]:
        train_set = train_sets[int(rng.choice(len(train_sets), p=share))]
        idx = rng.integers(0, len(train_set["x"]), cfg.batch_size)
        batch = _augment({k: train_set[k][idx] for k in ("x", "truth", "weight")}, rng)
        nll, mse = _losses(net, to_device(batch, run.device))
        loss = nll + cfg.w_mse * mse
        optimiser_step(net, opt, sched, loss)
        return {"loss": float(loss.detach()), "nll": float(nll.detach()), "rmse_m": float(mse.detach().sqrt() * 100.0),
                "lr": float(sched.get_last_lr()[0])}

    net.train()
    stop_reason = run.loop(train_step, lambda: _validate(net, val_sets),
                           lambda: {"net": net.state_dict(), "opt": opt.state_dict()}, on_step)
    from glacierbed.simulation.glacier_set import SimulatedSet

    all_sims = [SimulatedSet.load(d) for d in (cfg.dataset, *cfg.extra_datasets)]
    datasets = [{"path": str(d), **{f"n_{k}": int(len(v["x"])) for k, v in data.items()}, "summary": sims.summary}
                for d, data, sims in zip((cfg.dataset, *cfg.extra_datasets), sets, all_sims)]
    dataset = datasets[0] if len(datasets) == 1 else {"sets": datasets}
    if init is not None:
        dataset["init_weights"] = {"path": str(cfg.init_weights), "weights_sha256": init.get("weights_sha256")}
    record = run.record(stop_reason, net, max(s.bed.shape[-1] for s in all_sims),
                        np.concatenate([s.res for s in all_sims]), dataset, evaluate(net, val_sets), run.device)
    net.cpu()  # the shipped weights (and their ONNX export) are CPU tensors
    save_thickness_net(net, run.run_dir / "weights.pt", record)
    write_json(run.run_dir / "record.json", record)
    return record


def _losses(net: ThicknessNet, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian NLL (m) and squared error (in (100 m)^2) over the loss-weighted ice pixels."""
    h, s = net(b["x"])
    w, truth = b["weight"][:, None], b["truth"][:, None]
    return gaussian_nll(h, s, truth, w), (((h - truth) / 100.0) ** 2 * w).sum() / w.sum().clamp_min(1.0)


def _validate(net: ThicknessNet, val_sets: list[dict[str, np.ndarray]]) -> dict[str, float]:
    out = evaluate(net, val_sets)
    log.info("val RMSE %.1f m, bias %+.1f m, coverage68 %.2f", out["rmse_m"], out["bias_m"], out["coverage68"])
    return out
