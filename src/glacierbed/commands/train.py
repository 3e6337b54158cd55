"""``glacierbed train`` and ``glacierbed train-thickness``: train (or resume) a network.

Settings come in one order: the config dataclass's defaults (the shipped run's), then the
YAML file of ``--config`` (any subset of its fields), then the options given here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from glacierbed.commands.common import clean_errors, console, step_progress


@dataclass(frozen=True)
class Trainer:
    """What differs between the two training commands."""

    help: str  #: the command's help
    module: str  #: where the config class and the train function live
    config_cls: str
    train_fn: str
    run_dir: str  #: default run folder
    data: str  #: what the dataset is
    build: str  #: the command that builds it
    row_text: str  #: beside the progress bar: a metrics row's ``str.format`` ...
    val_text: str  #: ... and its validation part, once there is one
    report: Callable[[dict], None]  #: what is printed from the final record

    def load(self) -> tuple[type, Callable[..., dict]]:
        """The config class and train function (imported only when the command runs: torch)."""
        mod = importlib.import_module(self.module)
        return getattr(mod, self.config_cls), getattr(mod, self.train_fn)

    def describe(self, row: dict) -> str:
        """The text beside the progress bar for a metrics row."""
        try:
            return self.row_text.format(**row) + self.val_text.format(**row)
        except KeyError:  # no validation in this row yet
            return self.row_text.format(**row)


def _report_inpainting(record: dict) -> None:
    for kind, m in record["validation"].items():
        console.print(f"{kind} holes: RMSE {m['rmse_m']:.1f} m vs biharmonic {m['rmse_biharmonic_m']:.1f} m "
                      f"(ratio {m['rmse_m'] / m['rmse_biharmonic_m']:.3f})")


def _report_thickness(record: dict) -> None:
    v = record["validation"]
    console.print(f"validation: RMSE {v['rmse_m']:.1f} m, bias {v['bias_m']:+.1f} m, 68 % coverage "
                  f"{v['coverage68']:.2f} ({record['steps']} steps, {record['train_seconds']:.0f} s)")


TRAINERS = {
    "train": Trainer("Train the gated-convolution inpainting network; resumable after interruption.",
                     "glacierbed.models.inpainting.training", "TrainConfig", "train", "runs/default", "patch set",
                     "glacierbed dataset build", "mse {mse:.3f} grad {grad:.3f}",
                     " | val RMSE {val_glacier_rmse_m:.1f} m (biharmonic {val_glacier_rmse_biharmonic_m:.1f})",
                     _report_inpainting),
    "train-thickness": Trainer("Train the surface-aware thickness network on simulated glaciers; resumable after "
                               "interruption.", "glacierbed.models.thickness.training", "ThicknessTrainConfig",
                               "train_thickness", "runs/thickness", "simulated set", "glacierbed simulate build",
                               "loss {loss:.3f} rmse {rmse_m:.1f} m",
                               " | val RMSE {val_rmse_m:.1f} m, coverage68 {val_coverage68:.2f}", _report_thickness),
}


def register(app: typer.Typer) -> None:
    for name, trainer in TRAINERS.items():
        app.command(name, help=trainer.help)(clean_errors(_command(trainer)))


def _command(t: Trainer) -> Callable[..., None]:
    """The typer command of a trainer: config, overrides, progress bar, shipping the weights."""

    def command(
        config: Optional[Path] = typer.Option(None, help=f"Training YAML: any {t.config_cls} fields, over the "
                                              "defaults (the shipped model's run)."),
        run_dir: Path = typer.Option(Path(t.run_dir), help="Checkpoint, metrics.csv, validation.csv, weights."),
        steps: Optional[int] = typer.Option(None, help="Override the number of steps."),
        dataset: Optional[Path] = typer.Option(None, help=f"Override the {t.data} (.npz)."),
        device: Optional[str] = typer.Option(None, help="Where the steps run: 'auto' (a CUDA GPU when torch sees "
                                             "one, else the CPU; the default), 'cpu', 'cuda' or 'cuda:N'. A run "
                                             "resumes on another device."),
        resume: bool = typer.Option(True, help="Continue from run_dir/checkpoint.pt if present."),
        ship: bool = typer.Option(False, help="Install the final weights as a named user model (<models dir>/NAME.pt "
                                  "+ .json; models dir: $GLACIERBED_MODELS or the user data dir), so that "
                                  "`--model NAME` finds them."),
        name: Optional[str] = typer.Option(None, help="Model name for --ship (default: the run dir's name)."),
        ship_to: Optional[Path] = typer.Option(None, help="Install the final weights at this .pt path (or into this "
                                               "folder as NAME.pt) instead of the models dir."),
    ) -> None:
        dest = _destination(ship, name, ship_to, run_dir)  # checked before hours of training, not after
        cls, train = t.load()
        cfg = _config(cls, config, steps=steps, dataset=dataset, device=device)
        from glacierbed.models.runs import resolve_device

        console.print(f"training on {resolve_device(cfg.device)}")  # a wrong device fails here, before any data is read
        if not Path(cfg.dataset).exists():
            from glacierbed.core.errors import DataNotFoundError

            raise DataNotFoundError(f"{cfg.dataset}: {t.data} not found (build it with `{t.build}`)")
        with step_progress(cfg.steps, t.describe) as on_step:
            record = train(cfg, run_dir, resume=resume, on_step=on_step)
        t.report(record)
        _ship(dest, run_dir, ship_to)

    command.__doc__ = t.help
    return command


def _config(cls: type, config: Path | None, **options: Any) -> Any:
    """The dataclass defaults, overridden by the YAML file, overridden by the options given."""
    from glacierbed.core.config import load_config

    return load_config(cls, config, **{k: str(v) if isinstance(v, Path) else v
                                       for k, v in options.items() if v is not None})


def _destination(ship: bool, name: str | None, ship_to: Path | None, run_dir: Path) -> Path | None:
    """Where ``--ship``/``--ship-to`` will install the weights (None: not shipped)."""
    if not ship and ship_to is None:
        return None
    from glacierbed.pipeline.store import ship_destination

    try:
        return ship_destination(name or run_dir.name, ship_to)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}", param_hint="--name/--ship-to") from None


def _ship(dest: Path | None, run_dir: Path, ship_to: Path | None) -> None:
    if dest is None:
        return
    from glacierbed.pipeline.store import ship_weights

    out = ship_weights(run_dir / "weights.pt", dest=dest)
    console.print(f"shipped weights to {out} (use them with --model {out if ship_to is not None else dest.stem})")
