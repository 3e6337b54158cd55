"""What every training run shares: its folder, a resumable checkpoint, CSV logs, the step loop.

Both trainers (:mod:`glacierbed.models.inpainting.training`,
:mod:`glacierbed.models.thickness.training`) open a :class:`TrainingRun` in a run folder:
it writes ``config.yaml``, reads ``checkpoint.pt`` when resuming (safely, see
:mod:`glacierbed.models.files`), drops CSV rows written after that checkpoint, and runs the
steps: ``metrics.csv`` every step, ``validation.csv`` every ``val_every`` steps, a checkpoint
every ``ckpt_every`` steps, at the end and at the time limit. Each trainer supplies only its
own step, validation and checkpoint contents.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from glacierbed.core.atomic import replacing
from glacierbed.core.config import config_to_dict, config_to_yaml
from glacierbed.core.errors import CorruptFileError, GlacierbedError
from glacierbed.models.files import load_plain, save_plain

log = logging.getLogger(__name__)

OnStep = Callable[[int, dict], None]


class RunSettings(Protocol):
    """The config fields the loop reads (both trainers' configs have them)."""

    steps: int
    val_every: int
    ckpt_every: int
    seed: int
    time_limit_s: float | None
    device: str


def start_from(net: torch.nn.Module, start: torch.nn.Module, path: str | Path) -> None:
    """Copy the trained network ``start`` (read from ``path``) into ``net`` before fine-tuning;
    both must have the same architecture (their ``.cfg``, or ``.cfg.architecture()`` where a config
    also holds settings that own no weights), else a ``ValueError`` naming the file."""
    def arch(cfg: Any) -> Any:
        return cfg.architecture() if hasattr(cfg, "architecture") else cfg

    if arch(start.cfg) != arch(net.cfg):
        raise ValueError(f"{path}: its network {start.cfg} is not the configured {net.cfg}")
    net.load_state_dict(start.state_dict())


#: what a config's ``device`` may say
DEVICES = "'auto' (a CUDA GPU when torch sees one, else the CPU), 'cpu', 'cuda' or 'cuda:N'"


def resolve_device(name: str) -> torch.device:
    """The torch device a run trains on. ``auto`` takes a CUDA GPU when torch sees one and
    the CPU otherwise, so a config runs unchanged on a laptop, CI and a lent GPU; naming
    ``cuda`` on a machine without one is an error rather than a silent fall-back to the CPU."""
    name = str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise GlacierbedError(f"device {name!r}: torch sees no CUDA GPU on this machine (torch "
                                  f"{torch.__version__}); use device 'auto' or 'cpu'")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise GlacierbedError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return torch.device("cuda", index)
    raise GlacierbedError(f"device {name!r} is not known; use {DEVICES}")


def device_label(device: torch.device) -> str:
    """What a training record says it ran on: ``cpu`` or ``cuda:0 (<GPU name>)``."""
    if device.type != "cuda":
        return device.type
    index = device.index or 0
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Every tensor of a batch on ``device`` (a no-op on the CPU)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def n_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def optimiser_step(net: torch.nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
                   loss: torch.Tensor) -> None:
    """Backpropagate ``loss``, clip the gradient norm at 1, step the optimiser and the schedule."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    sched.step()


class TrainingRun:
    """A run folder and its progress: ``step``, wall time, the checkpoint it resumed from, and
    the ``device`` its steps run on (checkpoints are read onto the CPU, so a run started on a GPU
    resumes on a CPU-only machine and the other way round)."""

    def __init__(self, cfg: RunSettings, run_dir: str | Path, resume: bool = True):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.device = resolve_device(cfg.device)  # before anything is written: a wrong device fails at once
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(config_to_yaml(cfg))
        self.checkpoint_path = self.run_dir / "checkpoint.pt"
        self.state: dict[str, Any] | None = None
        if resume and self.checkpoint_path.exists():
            self.state = load_plain(self.checkpoint_path, "training checkpoint")
            if not isinstance(self.state, dict) or "step" not in self.state:
                raise CorruptFileError(f"{self.checkpoint_path}: not a glacierbed training checkpoint (no step)")
        self.step = int(self.state["step"]) if self.state else 0
        self._t0 = time.perf_counter() - float(self.state.get("elapsed_s", 0.0) if self.state else 0.0)
        for name in ("metrics.csv", "validation.csv"):  # rows of a killed run after its checkpoint are redone
            truncate_csv(self.run_dir / name, self.step)
        torch.manual_seed(cfg.seed)
        self._rng: np.random.Generator | None = None

    def rng(self, seed: int) -> np.random.Generator:
        """The run's draws (batches, augmentation): seeded at the start and saved with every checkpoint, so an
        interrupted run that resumes draws what the uninterrupted one would have (a checkpoint written before the
        draws were saved reseeds with ``seed + step``)."""
        self._rng = np.random.default_rng(seed + self.step)
        saved = (self.state or {}).get("rng")
        if saved is not None:
            self._rng.bit_generator.state = json.loads(saved)
        return self._rng

    @property
    def seconds(self) -> float:
        """Training wall time, earlier sessions of a resumed run included."""
        return time.perf_counter() - self._t0

    def restore(self, **parts: Any) -> None:
        """``part.load_state_dict(checkpoint[key])`` for each ``key=part`` when resuming."""
        if self.state is None:
            return
        for key, part in parts.items():
            if key not in self.state:
                raise CorruptFileError(f"{self.checkpoint_path}: checkpoint lacks {key!r}; start a new run folder")
            part.load_state_dict(self.state[key])
        log.info("resumed %s at step %d", self.checkpoint_path, self.step)

    def scheduler(self, opt: torch.optim.Optimizer, lr: float) -> torch.optim.lr_scheduler.OneCycleLR:
        """One-cycle learning rate over the run, positioned at the current step."""
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=self.cfg.steps + 1, pct_start=0.05,
                                                   last_epoch=self.step - 1 if self.step else -1)

    def loop(self, train_step: Callable[[int], dict[str, float]], validate: Callable[[], dict[str, float]],
             checkpoint: Callable[[], dict[str, Any]], on_step: OnStep | None = None) -> str:
        """Steps until ``cfg.steps`` or the time limit; returns the stop reason.

        ``train_step(step)`` does one optimiser step and returns the row's terms,
        ``validate()`` the validation metrics, ``checkpoint()`` the parts to save (plain data).
        """
        cfg = self.cfg
        while self.step < cfg.steps:
            terms = train_step(self.step)
            self.step += 1
            row = {"step": self.step, "time_s": round(self.seconds, 1), **terms}
            append_csv(self.run_dir / "metrics.csv", row)
            if self.step % cfg.val_every == 0 or self.step == cfg.steps:
                vrow = {"step": self.step, "time_s": row["time_s"], **validate()}
                append_csv(self.run_dir / "validation.csv", vrow)
                row.update({f"val_{k}": v for k, v in vrow.items() if k not in ("step", "time_s")})
            if on_step:
                on_step(self.step, row)
            out_of_time = cfg.time_limit_s is not None and self.seconds > cfg.time_limit_s
            if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps or out_of_time:
                draws = {"rng": json.dumps(self._rng.bit_generator.state)} if self._rng is not None else {}
                save_plain({**checkpoint(), **draws, "step": self.step, "elapsed_s": self.seconds}, self.checkpoint_path)
            if out_of_time:
                log.warning("time limit reached at step %d of %d", self.step, cfg.steps)
                return "time limit"
        return "completed"

    def record(self, stop_reason: str, net: torch.nn.Module, patch_size: int, resolutions_m: np.ndarray,
               dataset: dict[str, Any], validation: dict[str, Any], device: torch.device | None = None
               ) -> dict[str, Any]:
        """The record shipped with the weights (the trainer adds its own keys); ``device`` is
        the one the steps ran on (a checkpoint resumed on another machine records the last)."""
        return {"steps": self.step, "steps_planned": self.cfg.steps, "stop_reason": stop_reason,
                "train_seconds": round(self.seconds, 1), "parameters": n_parameters(net), "patch_size": int(patch_size),
                "resolution_range_m": [float(np.min(resolutions_m)), float(np.max(resolutions_m))],
                "dataset": dataset, "config": config_to_dict(self.cfg), "validation": validation,
                "device": device_label(device or torch.device("cpu")), "torch": torch.__version__}


# --- metrics CSVs ---------------------------------------------------------------------------
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


def append_csv(path: Path, row: dict) -> None:
    """Append a row; the header is the union of every row's keys, so the file always reads
    with ``pandas.read_csv``: a row with a new key rewrites the file (atomically) with the
    wider header, cells left empty."""
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


def truncate_csv(path: Path, last_step: int) -> None:
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
