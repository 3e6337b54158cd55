"""Training the inpainting network: random holes in ice-free terrain, resumable runs.

The generator learns a correction to the biharmonic fill of random holes (real glacier
shapes placed in hollows, and boxes) cut into ice-free terrain patches. Loss terms are
in metres: the hole's mean squared error (what RMSE measures), L1 and a slope term. The
run folder, checkpoint, CSV logs and step loop are :class:`glacierbed.models.runs.TrainingRun`.
(An adversarial PatchGAN term was removed: its only run stopped at 457 of 1,600 steps and was
never measured; docs/model.md.)
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from glacierbed.core.atomic import write_json
from glacierbed.core.config import YamlConfig, config_to_dict, load_config
from glacierbed.core.errors import CorruptFileError
from glacierbed.core.fill import biharmonic_fill
from glacierbed.core.threads import torch_threads
from glacierbed.models.inpainting.masks import MaskGenerator, OutlineShapes, box_mask
from glacierbed.models.inpainting.network import (OUT_SCALE_M, GatedUNet, ModelConfig, NetworkInpainter, features,
                                                  save_weights)
from glacierbed.models.inpainting.patches import PatchSet
from glacierbed.models.runs import OnStep, TrainingRun, optimiser_step, start_from, to_device

log = logging.getLogger(__name__)

#: the outlines whose glacier shapes make the training holes (data-dir relative)
OUTLINES = (
    "oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp",
    "nz-canterbury-25m/glaciers.gpkg",
    "oggm-sample-data/test-files/Hintereisferner_RGI6.shp",
    "oggm-sample-data/benchmarks/south_glacier/SouthGlacier.shp",
    "oggm-sample-data/test-files/RGI60-14.03439/RGI60-14.03439.shp",
    "oggm-sample-data/test-files/rgi_RGI50-01.10299.shp",
    "oggm-sample-data/test-files/RGI50-05.08389.shp",
    "oggm-sample-data/realisation/RGI50-11.01270/outlines.shp",
)


@dataclass(frozen=True)
class TrainConfig(YamlConfig):
    """Every hyper-parameter of a run (YAML keys of the same names). The defaults are the
    shipped ``inpainting_net`` run (its record: ``weights/inpainting_net.json``, ``config``):
    12,000 steps, 37 minutes on 2 CPU cores (one torch thread, one loader process)."""

    dataset: str = "runs/patches128.npz"  #: built with ``glacierbed dataset build``
    outlines: tuple[str, ...] = OUTLINES  #: outline files whose shapes make the glacier-shaped holes
    #: depth 2 + relief normalisation + 2 FFC blocks: the first network (depth 3, fixed scale) never learnt (docs/model.md)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(depth=2, ffc_blocks=2, relief_norm=True))
    init_weights: str | None = None  #: start from this trained network (e.g. the 128 px one for 256 px windows)
    steps: int = 12000
    batch_size: int = 8
    lr: float = 2e-3  #: one-cycle peak learning rate
    weight_decay: float = 0.0
    w_mse: float = 1.0  #: hole mean squared error, in (OUT_SCALE_M)^2 units
    w_l1: float = 0.1  #: hole L1 in OUT_SCALE_M units
    w_grad: float = 0.0  #: L1 of slope differences (m/m x 10); it dominated the first network's loss
    p_box: float = 0.25  #: share of box holes (rest: glacier shapes)
    val_every: int = 500
    ckpt_every: int = 500
    image_steps: tuple[int, ...] = (0, 12000)  #: steps with a progress image
    num_workers: int = 1  #: data-loader processes drawing the random holes
    threads: int = 1  #: torch threads for the run (restored after); the loader process takes the other core
    seed: int = 0
    time_limit_s: float | None = 3400.0  #: stop (and save) after this wall time
    device: str = "auto"  #: where the steps run: one of ``glacierbed.models.runs.DEVICES``

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        return load_config(cls, raw)


def _augment(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, k, axes=(-2, -1))
    return np.ascontiguousarray(a[..., ::-1] if flip else a)


def make_sample(dem: np.ndarray, glacier: np.ndarray, hole: np.ndarray, res: float,
                relief_norm: bool = False) -> dict[str, np.ndarray]:
    """One training/validation sample: features, base fill, truth and the loss weights.

    Real glacier pixels of the patch (outside its centre box) are hidden too, as at
    inference, but carry no loss: their elevation is an ice surface, not a bed.
    """
    target = hole & ~glacier
    hole = hole | glacier
    base = biharmonic_fill(dem, hole)
    feats, offset = features(base, hole, res, relief_norm)
    return dict(x=feats, base=((base - offset) / OUT_SCALE_M).astype(np.float32),
                truth=((dem - offset) / OUT_SCALE_M).astype(np.float32), weight=target.astype(np.float32),
                res=np.float32(res))


class RandomHoles(torch.utils.data.IterableDataset):
    """Endless stream of augmented patches with random holes, batch by batch from ``first_batch`` on.

    Batch ``g`` is drawn from its own generator (``seed``, ``g``), and worker ``w`` of ``W`` makes batches
    ``first_batch + w``, ``+ W``, ... which the DataLoader hands out in turn: the stream depends only on the batch
    number, so a run resumed at step ``s`` (``first_batch = s``) trains on the batches the uninterrupted run would
    have, with any number of workers."""

    def __init__(self, patches: PatchSet, masks: MaskGenerator, seed: int, batch_size: int, first_batch: int = 0,
                 relief_norm: bool = False):
        self.p, self.masks, self.seed, self.relief_norm = patches, masks, seed, relief_norm
        self.batch_size, self.first_batch = batch_size, first_batch

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        wid, n_workers = (info.id, info.num_workers) if info else (0, 1)
        batch = self.first_batch + wid
        while True:
            rng = np.random.default_rng([self.seed, batch])
            for _ in range(self.batch_size):
                i = int(rng.integers(len(self.p)))
                k, flip = int(rng.integers(4)), bool(rng.integers(2))
                dem = _augment(self.p.dem[i].astype(np.float64), k, flip)
                gl = _augment(self.p.glacier[i], k, flip)
                yield make_sample(dem, gl, self.masks(dem, rng), float(self.p.res[i]), self.relief_norm)
            batch += n_workers


def validation_samples(patches: PatchSet, masks: MaskGenerator, kind: str, seed: int,
                       relief_norm: bool = False) -> list[dict]:
    """Fixed holes for every validation patch (same holes for every method)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(len(patches)):
        dem = patches.dem[i].astype(np.float64)
        hole = box_mask(dem.shape[0], rng) if kind == "box" else masks(dem, rng)
        out.append(make_sample(dem, patches.glacier[i], hole, float(patches.res[i]), relief_norm))
    return out


def _batch(samples: list[dict], device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Stacked samples as tensors on ``device`` (default: the CPU)."""
    b = {k: torch.as_tensor(np.stack([s[k] for s in samples])) for k in samples[0]}
    return b if device is None else to_device(b, device)


def _pred(net: GatedUNet, b: dict[str, torch.Tensor]) -> torch.Tensor:
    hole = b["x"][:, 1:2]
    return b["base"][:, None] + hole * net(b["x"])


def losses(pred: torch.Tensor, b: dict[str, torch.Tensor], cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Reconstruction terms (in OUT_SCALE_M units) over the loss-weighted hole pixels."""
    w = b["weight"][:, None]
    n = w.sum().clamp_min(1.0)
    err = pred - b["truth"][:, None]
    out = {"mse": (w * err**2).sum() / n, "l1": (w * err.abs()).sum() / n}
    # slope term: differences of neighbouring pixels, per metre
    res = b["res"][:, None, None, None]
    gx = (err[..., :, 1:] - err[..., :, :-1]) * OUT_SCALE_M / res
    gy = (err[..., 1:, :] - err[..., :-1, :]) * OUT_SCALE_M / res
    wx, wy = w[..., :, 1:] * w[..., :, :-1], w[..., 1:, :] * w[..., :-1, :]
    out["grad"] = 10 * ((wx * gx.abs()).sum() / wx.sum().clamp_min(1) + (wy * gy.abs()).sum() / wy.sum().clamp_min(1)) / 2
    return out


@torch.no_grad()
def evaluate_samples(net: GatedUNet, samples: list[dict], batch_size: int = 32) -> dict[str, float]:
    """Hole RMSE / MAE / bias in metres for the network and the biharmonic base."""
    net.eval()
    device = next(net.parameters()).device
    se = ae = bias = se_b = ae_b = bias_b = n = 0.0
    for i in range(0, len(samples), batch_size):
        b = _batch(samples[i : i + batch_size], device)
        w = b["weight"][:, None]
        err = (_pred(net, b) - b["truth"][:, None]) * OUT_SCALE_M
        err_b = (b["base"] - b["truth"])[:, None] * OUT_SCALE_M
        se += float((w * err**2).sum()); ae += float((w * err.abs()).sum()); bias += float((w * err).sum())
        se_b += float((w * err_b**2).sum()); ae_b += float((w * err_b.abs()).sum()); bias_b += float((w * err_b).sum())
        n += float(w.sum())
    net.train()
    return {"rmse_m": (se / n) ** 0.5, "mae_m": ae / n, "bias_m": bias / n,
            "rmse_biharmonic_m": (se_b / n) ** 0.5, "mae_biharmonic_m": ae_b / n, "bias_biharmonic_m": bias_b / n}


def _save_progress_image(net: GatedUNet, samples: list[dict], path: Path, step: int) -> None:
    from glacierbed.models.inpainting.figures import progress_figure

    with torch.no_grad():
        net.eval()
        b = _batch(samples[:4], next(net.parameters()).device)
        pred = _pred(net, b)[:, 0].cpu().numpy() * OUT_SCALE_M
        net.train()
        b = {k: v.cpu() for k, v in b.items()}
    holes = b["x"][:, 1].numpy() > 0.5
    truth = b["truth"].numpy() * OUT_SCALE_M
    progress_figure(np.where(holes, np.nan, truth), pred, truth, holes, b["res"].numpy(), step, path)


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = True, on_step: OnStep | None = None) -> dict:
    """Train (or resume) a run in ``run_dir``; returns the final record.

    Torch's thread count is set to ``cfg.threads`` for the run and restored afterwards.
    """
    with torch_threads(cfg.threads):
        return _train(cfg, TrainingRun(cfg, run_dir, resume), on_step)


def _train(cfg: TrainConfig, run: TrainingRun, on_step: OnStep | None) -> dict:
    if run.state is not None and run.state.get("discriminator") is not None:
        raise CorruptFileError(f"{run.checkpoint_path}: written by the adversarial trainer, which was removed; "
                               f"start a new run folder")
    patches = PatchSet.load(cfg.dataset)
    train_set, val_set = patches.subset("train"), patches.subset("val")
    masks, val = _holes(cfg, val_set)
    net = cfg.model.build()
    start = _start_weights(cfg, net)
    net.to(run.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    run.restore(generator=net, opt=opt)
    sched = run.scheduler(opt, cfg.lr)
    holes = RandomHoles(train_set, masks, cfg.seed, cfg.batch_size, run.step, cfg.model.relief_norm)
    loader = torch.utils.data.DataLoader(holes, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                                         persistent_workers=cfg.num_workers > 0)
    batches = iter(loader)

    def image(step: int) -> None:
        _save_progress_image(net, val["glacier"], run.run_dir / f"progress_{step:06d}.png", step)

    def train_step(step: int) -> dict[str, float]:
        if step in cfg.image_steps:
            image(step)
        b = to_device(next(batches), run.device)
        terms = losses(_pred(net, b), b, cfg)
        loss = cfg.w_mse * terms["mse"] + cfg.w_l1 * terms["l1"] + cfg.w_grad * terms["grad"]
        optimiser_step(net, opt, sched, loss)
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    def validate() -> dict[str, float]:
        return {f"{kind}_{k}": v for kind, samples in val.items() for k, v in evaluate_samples(net, samples).items()}

    def checkpoint() -> dict:
        return {"generator": net.state_dict(), "opt": opt.state_dict(), "model_config": config_to_dict(cfg.model),
                "record": {"config": config_to_dict(cfg)}}

    net.train()
    with _tensorboard(run.run_dir, on_step) as hook:
        stop_reason = run.loop(train_step, validate, checkpoint, hook)
    if run.step in cfg.image_steps or run.step == cfg.steps:
        image(run.step)
    if (run.run_dir / "validation.csv").exists():
        from glacierbed.models.inpainting.figures import validation_curve_figure

        validation_curve_figure(run.run_dir / "validation.csv", run.run_dir / "validation.png")
    sources = patches.summary.get("sources", [])
    dataset = {"path": str(cfg.dataset), "n_train": len(train_set), "n_val": len(val_set),
               "sources": [s["key"] for s in sources],
               "sources_without_patches": [s["key"] for i, s in enumerate(sources) if not (patches.source == i).any()]}
    if start is not None:
        dataset["init_weights"] = start
    final = {kind: evaluate_samples(net, samples) for kind, samples in val.items()}
    record = run.record(stop_reason, net, patches.dem.shape[-1], patches.res, dataset, final, run.device)
    net.cpu()  # the shipped weights are CPU tensors
    save_weights(net, run.run_dir / "weights.pt", record)
    write_json(run.run_dir / "record.json", record)
    return record


def _start_weights(cfg: TrainConfig, net: GatedUNet) -> dict | None:
    """Load ``cfg.init_weights`` into ``net`` (same architecture required); its path and
    SHA-256 for the record, or None when training from scratch."""
    if not cfg.init_weights:
        return None
    start = NetworkInpainter.load(cfg.init_weights)
    start_from(net, start.net, cfg.init_weights)
    return {"path": str(cfg.init_weights), "weights_sha256": start.weights_sha256}


def _holes(cfg: TrainConfig, val_set: PatchSet) -> tuple[MaskGenerator, dict[str, list[dict]]]:
    """The training hole generator and the fixed validation holes: glacier shapes, and boxes
    when outlines are given (the same holes for every method and every run)."""
    shapes = OutlineShapes.from_outlines([_resolve(p) for p in cfg.outlines]) if cfg.outlines else None
    masks = MaskGenerator(shapes, p_box=cfg.p_box)
    norm = cfg.model.relief_norm
    val = {"glacier": validation_samples(val_set, MaskGenerator(shapes, p_box=0.0), "glacier", cfg.seed + 1, norm)}
    if shapes is not None:
        val["box"] = validation_samples(val_set, masks, "box", cfg.seed + 2, norm)
    return masks, val


@contextmanager
def _tensorboard(run_dir: Path, on_step: OnStep | None) -> Iterator[OnStep | None]:
    """``on_step`` that also writes TensorBoard scalars when the ``tensorboard`` package is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        yield on_step
        return
    tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def hook(step: int, row: dict) -> None:
        for k, v in row.items():
            if k not in ("step", "time_s"):
                tb.add_scalar(k, v, step)
        if on_step:
            on_step(step, row)

    try:
        yield hook
    finally:
        tb.close()


def _resolve(p: str) -> Path:
    from glacierbed.data.terrain import resolve

    return resolve(p)
