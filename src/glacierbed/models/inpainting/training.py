"""Training loop: resumable checkpoints, validation, metrics CSV, progress images.

The generator learns a correction to the biharmonic fill of random holes (real glacier
shapes placed in hollows, and boxes) cut into ice-free terrain patches. Loss terms are
in metres: the hole's mean squared error (what RMSE measures), L1, a slope term, and an
optional hinge adversarial term from a spectral-normalised PatchGAN.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from glacierbed.core.atomic import replacing, write_json
from glacierbed.core.config import config_to_dict, config_to_yaml, load_config
from glacierbed.models.inpainting.patches import PatchSet
from glacierbed.core.fill import biharmonic_fill
from glacierbed.models.inpainting.masks import MaskGenerator, OutlineShapes, box_mask
from glacierbed.models.inpainting.network import (
    ELEV_SCALE_M,
    OUT_SCALE_M,
    GatedUNet,
    ModelConfig,
    PatchDiscriminator,
    features,
    n_parameters,
    save_weights,
)
from glacierbed.core.threads import torch_threads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a run (YAML keys of the same names)."""

    dataset: str = "runs/patches128.npz"  #: built with ``glacierbed dataset build``
    outlines: tuple[str, ...] = ()  #: outline files whose shapes make the glacier-shaped holes
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 3000
    batch_size: int = 8
    lr: float = 1e-3
    lr_d: float = 4e-4
    weight_decay: float = 0.0
    w_mse: float = 1.0  #: hole mean squared error, in (OUT_SCALE_M)^2 units
    w_l1: float = 0.1  #: hole L1 in OUT_SCALE_M units
    w_grad: float = 0.5  #: L1 of slope differences (m/m x 10)
    w_adv: float = 0.0  #: adversarial (hinge) weight; 0 = non-adversarial mode
    p_box: float = 0.25  #: share of box holes (rest: glacier shapes)
    val_every: int = 250
    ckpt_every: int = 250
    image_steps: tuple[int, ...] = (0, 500, 2000)
    num_workers: int = 1
    threads: int = 2
    seed: int = 0
    time_limit_s: float | None = None  #: stop (and save) after this wall time

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        return load_config(cls, path)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        return load_config(cls, raw)


def _augment(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, k, axes=(-2, -1))
    return np.ascontiguousarray(a[..., ::-1] if flip else a)


def make_sample(dem: np.ndarray, glacier: np.ndarray, hole: np.ndarray, res: float) -> dict[str, np.ndarray]:
    """One training/validation sample: features, base fill, truth and the loss weights.

    Real glacier pixels of the patch (outside its centre box) are hidden too, as at
    inference, but carry no loss: their elevation is an ice surface, not a bed.
    """
    target = hole & ~glacier
    hole = hole | glacier
    base = biharmonic_fill(dem, hole)
    feats, offset = features(base, hole, res)
    return dict(x=feats, base=((base - offset) / OUT_SCALE_M).astype(np.float32),
                truth=((dem - offset) / OUT_SCALE_M).astype(np.float32), weight=target.astype(np.float32),
                res=np.float32(res))


class RandomHoles(torch.utils.data.IterableDataset):
    """Endless stream of augmented patches with random holes (seeded per worker)."""

    def __init__(self, patches: PatchSet, masks: MaskGenerator, seed: int):
        self.p, self.masks, self.seed = patches, masks, seed

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        rng = np.random.default_rng([self.seed, wid])
        while True:
            i = int(rng.integers(len(self.p)))
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            dem = _augment(self.p.dem[i].astype(np.float64), k, flip)
            gl = _augment(self.p.glacier[i], k, flip)
            yield make_sample(dem, gl, self.masks(dem, rng), float(self.p.res[i]))


def validation_samples(patches: PatchSet, masks: MaskGenerator, kind: str, seed: int) -> list[dict]:
    """Fixed holes for every validation patch (same holes for every method)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(len(patches)):
        dem = patches.dem[i].astype(np.float64)
        hole = box_mask(dem.shape[0], rng) if kind == "box" else masks(dem, rng)
        out.append(make_sample(dem, patches.glacier[i], hole, float(patches.res[i])))
    return out


def _batch(samples: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.stack([s[k] for s in samples])) for k in samples[0]}


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


def _disc_input(elev: torch.Tensor, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    # relative elevation in ELEV_SCALE_M units, mean removed per patch
    e = elev * OUT_SCALE_M / ELEV_SCALE_M
    return e - e.mean(dim=(-2, -1), keepdim=True), b["x"][:, 1:2]


@torch.no_grad()
def evaluate_samples(net: GatedUNet, samples: list[dict], batch_size: int = 32) -> dict[str, float]:
    """Hole RMSE / MAE / bias in metres for the network and the biharmonic base."""
    net.eval()
    se = ae = bias = se_b = ae_b = bias_b = n = 0.0
    for i in range(0, len(samples), batch_size):
        b = _batch(samples[i : i + batch_size])
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
        b = _batch(samples[:4])
        pred = _pred(net, b)[:, 0].numpy() * OUT_SCALE_M
        net.train()
    holes = b["x"][:, 1].numpy() > 0.5
    truth = b["truth"].numpy() * OUT_SCALE_M
    progress_figure(np.where(holes, np.nan, truth), pred, truth, holes, b["res"].numpy(), step, path)


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = True,
          on_step: Callable[[int, dict], None] | None = None) -> dict:
    """Train (or resume) a run in ``run_dir``; returns the final record.

    Torch's thread count is set to ``cfg.threads`` for the run and restored afterwards.
    """
    with torch_threads(cfg.threads):
        return _train(cfg, Path(run_dir), resume, on_step)


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, on_step: Callable[[int, dict], None] | None) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config_to_yaml(cfg))
    torch.manual_seed(cfg.seed)
    patches = PatchSet.load(cfg.dataset)
    train_set, val_set = patches.subset("train"), patches.subset("val")
    shapes = OutlineShapes.from_outlines([_resolve(p) for p in cfg.outlines]) if cfg.outlines else None
    masks = MaskGenerator(shapes, p_box=cfg.p_box)
    val_masks = MaskGenerator(shapes, p_box=0.0)  # validation: glacier shapes only (boxes separately)
    val = {"glacier": validation_samples(val_set, val_masks, "glacier", cfg.seed + 1)}
    if shapes is not None:
        val["box"] = validation_samples(val_set, masks, "box", cfg.seed + 2)

    net = cfg.model.build()
    disc = PatchDiscriminator() if cfg.w_adv > 0 else None
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999)) if disc else None
    step, elapsed = 0, 0.0
    ckpt = run_dir / "checkpoint.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        net.load_state_dict(state["generator"]); opt.load_state_dict(state["opt"])
        if disc is not None and state.get("discriminator"):
            disc.load_state_dict(state["discriminator"]); opt_d.load_state_dict(state["opt_d"])
        step, elapsed = state["step"], state.get("elapsed_s", 0.0)
        log.info("resumed %s at step %d", ckpt, step)
    # rows written after the last checkpoint (a killed run) are redone: drop them
    for path in (run_dir / "metrics.csv", run_dir / "validation.csv"):
        _truncate_csv(path, step)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps + 1, pct_start=0.05,
                                                last_epoch=step - 1 if step else -1)

    loader = torch.utils.data.DataLoader(RandomHoles(train_set, masks, cfg.seed + step), batch_size=cfg.batch_size,
                                         num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0)
    metrics_path = run_dir / "metrics.csv"  # per step; validation rows go to validation.csv
    tb = _tensorboard(run_dir)
    t0 = time.perf_counter() - elapsed
    net.train()
    it = iter(loader)
    record: dict = {}
    while step < cfg.steps:
        if step in cfg.image_steps:
            _save_progress_image(net, val["glacier"], run_dir / f"progress_{step:06d}.png", step)
        b = next(it)
        pred = _pred(net, b)
        terms = losses(pred, b, cfg)
        loss = cfg.w_mse * terms["mse"] + cfg.w_l1 * terms["l1"] + cfg.w_grad * terms["grad"]
        if disc is not None:
            fake = disc(*_disc_input(pred, b))
            terms["adv_g"] = -fake.mean()
            loss = loss + cfg.w_adv * terms["adv_g"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if disc is not None:
            real = disc(*_disc_input(b["truth"][:, None], b))
            fake = disc(*_disc_input(pred.detach(), b))
            d_loss = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
            opt_d.zero_grad(set_to_none=True); d_loss.backward(); opt_d.step()
            terms["adv_d"] = d_loss
        step += 1
        row = {"step": step, "time_s": round(time.perf_counter() - t0, 1), "loss": float(loss.detach()),
               **{k: float(v.detach()) for k, v in terms.items()}}
        _append_csv(metrics_path, row)
        if step % cfg.val_every == 0 or step == cfg.steps:
            vrow = {"step": step, "time_s": row["time_s"]}
            for kind, samples in val.items():
                vrow.update({f"{kind}_{k}": v for k, v in evaluate_samples(net, samples).items()})
            _append_csv(run_dir / "validation.csv", vrow)
            row.update({f"val_{k}": v for k, v in vrow.items() if k not in ("step", "time_s")})
        if tb is not None:
            for k, v in row.items():
                if k not in ("step", "time_s"):
                    tb.add_scalar(k, v, step)
        if on_step:
            on_step(step, row)
        out_of_time = cfg.time_limit_s is not None and time.perf_counter() - t0 > cfg.time_limit_s
        if step % cfg.ckpt_every == 0 or step == cfg.steps or out_of_time:
            _checkpoint(ckpt, net, disc, opt, opt_d, step, time.perf_counter() - t0, cfg)
        if out_of_time:
            log.info("time limit reached at step %d", step)
            break
    stop_reason = "completed" if step >= cfg.steps else "time limit"
    if stop_reason != "completed":
        log.warning("stopped at step %d of %d (%s)", step, cfg.steps, stop_reason)
    if step in cfg.image_steps or step == cfg.steps:
        _save_progress_image(net, val["glacier"], run_dir / f"progress_{step:06d}.png", step)
    if tb is not None:
        tb.close()
    final = {kind: evaluate_samples(net, samples) for kind, samples in val.items()}
    record = {
        "steps": step, "steps_planned": cfg.steps, "stop_reason": stop_reason,
        "train_seconds": round(time.perf_counter() - t0, 1), "parameters": n_parameters(net),
        "patch_size": int(patches.dem.shape[-1]),
        "resolution_range_m": [float(patches.res.min()), float(patches.res.max())],
        "dataset": {"path": str(cfg.dataset), "n_train": len(train_set), "n_val": len(val_set),
                    "sources": [s["key"] for s in patches.summary.get("sources", [])],
                    "sources_without_patches": [s["key"] for i, s in enumerate(patches.summary.get("sources", []))
                                                if not (patches.source == i).any()]},
        "config": config_to_dict(cfg), "validation": final, "adversarial": cfg.w_adv > 0,
        "device": "cpu", "torch": torch.__version__,
    }
    save_weights(net, run_dir / "weights.pt", record)
    write_json(run_dir / "record.json", record)
    return record


def _tensorboard(run_dir: Path):
    """A TensorBoard writer when the ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _resolve(p: str) -> Path:
    from glacierbed.data.terrain import resolve

    return resolve(p)


def _checkpoint(path: Path, net, disc, opt, opt_d, step: int, elapsed: float, cfg: TrainConfig) -> None:
    with replacing(path) as tmp:
        torch.save({"generator": net.state_dict(), "opt": opt.state_dict(),
                    "discriminator": disc.state_dict() if disc else None,
                    "opt_d": opt_d.state_dict() if opt_d else None, "step": step, "elapsed_s": elapsed,
                    "model_config": asdict(cfg.model), "record": {"config": config_to_dict(cfg)}}, tmp)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a metrics CSV; cells beyond the header (files written before the
    header fix) go to columns ``extra_<i>`` rather than being lost."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], []
    header = rows[0]
    width = max(len(r) for r in rows)
    header = header + [f"extra_{i}" for i in range(len(header), width)]
    return header, [dict(zip(header, r)) for r in rows[1:] if r]


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _append_csv(path: Path, row: dict) -> None:
    """Append a row; the header is the union of every row's keys, so the file always reads
    with ``pandas.read_csv``: a row with a new key (e.g. ``adv_g`` after resuming with
    ``w_adv > 0``) rewrites the file (atomically) with the wider header, cells left empty."""
    if not path.exists() or path.stat().st_size == 0:
        _write_csv(path, list(row), [row])
        return
    with path.open(newline="") as f:
        header = next(csv.reader(f), [])
    new_keys = [k for k in row if k not in header]
    if new_keys:
        header, rows = _read_csv(path)
        _write_csv(path, header + [k for k in new_keys if k not in header], [*rows, row])
        return
    with path.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=header, restval="", extrasaction="ignore").writerow(row)


def _truncate_csv(path: Path, last_step: int) -> None:
    """Drop rows with ``step > last_step`` (resuming from a checkpoint at ``last_step``)."""
    if not path.exists():
        return
    header, rows = _read_csv(path)
    keep = [r for r in rows if not _step(r) > last_step]
    if len(keep) != len(rows):
        _write_csv(path, header, keep)


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step", "nan"))
    except ValueError:
        return float("nan")
