"""``glacierbed train``: train (or resume) the inpainting network."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from glacierbed.commands.common import clean_errors, console, step_progress

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "train_default.yaml"


def register(app: typer.Typer) -> None:
    register_thickness(app)

    @app.command("train")
    @clean_errors
    def train_cmd(
        config: Path = typer.Option(DEFAULT_CONFIG, help="Training YAML (every hyper-parameter)."),
        run_dir: Path = typer.Option(Path("runs/default"), help="Checkpoints, metrics.csv, progress images."),
        steps: Optional[int] = typer.Option(None, help="Override the number of steps."),
        dataset: Optional[Path] = typer.Option(None, help="Override the patch set (.npz)."),
        resume: bool = typer.Option(True, help="Continue from run_dir/checkpoint.pt if present."),
        ship: bool = typer.Option(False, help="Install the final weights as a named user model "
                                  "(<models dir>/NAME.pt + .json; models dir: $GLACIERBED_MODELS or the user "
                                  "data dir), so that `--model NAME` finds them."),
        name: Optional[str] = typer.Option(None, help="Model name for --ship (default: the run dir's name)."),
        ship_to: Optional[Path] = typer.Option(None, help="Install the final weights at this .pt path "
                                               "(or into this folder as NAME.pt) instead of the models dir."),
    ) -> None:
        """Train the gated-convolution inpainting network; resumable after interruption."""
        from dataclasses import replace

        from glacierbed.models.inpainting.network import ship_destination, ship_weights

        ship_name = dest = None
        if ship or ship_to is not None:  # check where it goes before hours of training, not after
            ship_name = name or run_dir.name
            try:
                dest = ship_destination(ship_name, ship_to)
            except ValueError as exc:
                raise typer.BadParameter(f"{exc}", param_hint="--name/--ship-to") from None

        from glacierbed.models.inpainting.training import TrainConfig, train

        cfg = TrainConfig.from_yaml(config)
        if steps is not None:
            cfg = replace(cfg, steps=steps)
        if dataset is not None:
            cfg = replace(cfg, dataset=str(dataset))
        if not Path(cfg.dataset).exists():
            from glacierbed.core.errors import DataNotFoundError

            raise DataNotFoundError(f"{cfg.dataset}: patch set not found (build it with `glacierbed dataset build`)")
        def describe(row: dict) -> str:
            info = f"mse {row['mse']:.3f} grad {row['grad']:.3f}"
            if "val_glacier_rmse_m" in row:
                info += f" | val RMSE {row['val_glacier_rmse_m']:.1f} m (biharmonic {row['val_glacier_rmse_biharmonic_m']:.1f})"
            return info

        with step_progress(cfg.steps, describe) as on_step:
            record = train(cfg, run_dir, resume=resume, on_step=on_step)
        for kind, m in record["validation"].items():
            console.print(f"{kind} holes: RMSE {m['rmse_m']:.1f} m vs biharmonic {m['rmse_biharmonic_m']:.1f} m "
                          f"(ratio {m['rmse_m'] / m['rmse_biharmonic_m']:.3f})")
        if dest is not None:
            dest = ship_weights(run_dir / "weights.pt", ship_name, dest)
            how = f"--model {dest}" if ship_to is not None else f"--model {ship_name}"
            console.print(f"shipped weights to {dest} (use them with {how})")


THICKNESS_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "train_thickness.yaml"


def register_thickness(app: typer.Typer) -> None:
    @app.command("train-thickness")
    @clean_errors
    def train_thickness_cmd(
        config: Path = typer.Option(THICKNESS_CONFIG, help="Training YAML (ThicknessTrainConfig fields)."),
        run_dir: Path = typer.Option(Path("runs/thickness"), help="Checkpoint, metrics.csv, validation.csv, weights."),
        steps: Optional[int] = typer.Option(None, help="Override the number of steps."),
        dataset: Optional[Path] = typer.Option(None, help="Override the simulated set (.npz)."),
        resume: bool = typer.Option(True, help="Continue from run_dir/checkpoint.pt if present."),
        ship: bool = typer.Option(False, help="Install the final weights as a named user model (see `train --ship`)."),
        name: Optional[str] = typer.Option(None, help="Model name for --ship (default: the run dir's name)."),
        ship_to: Optional[Path] = typer.Option(None, help="Install the final weights at this .pt path instead."),
    ) -> None:
        """Train the surface-aware thickness network on simulated glaciers; resumable after interruption."""
        from dataclasses import replace

        from glacierbed.core.errors import DataNotFoundError
        from glacierbed.models.inpainting.network import ship_destination, ship_weights
        from glacierbed.models.thickness.training import ThicknessTrainConfig, train_thickness

        dest = None
        if ship or ship_to is not None:
            try:
                dest = ship_destination(name or run_dir.name, ship_to)
            except ValueError as exc:
                raise typer.BadParameter(f"{exc}", param_hint="--name/--ship-to") from None
        cfg = ThicknessTrainConfig.from_yaml(config)
        cfg = replace(cfg, **{k: v for k, v in dict(steps=steps, dataset=str(dataset) if dataset else None).items()
                              if v is not None})
        if not Path(cfg.dataset).exists():
            raise DataNotFoundError(f"{cfg.dataset}: simulated set not found (build it with `glacierbed simulate build`)")
        def describe(row: dict) -> str:
            info = f"loss {row['loss']:.3f} rmse {row['rmse_m']:.1f} m"
            if "val_rmse_m" in row:
                info += f" | val RMSE {row['val_rmse_m']:.1f} m, coverage68 {row['val_coverage68']:.2f}"
            return info

        with step_progress(cfg.steps, describe) as on_step:
            record = train_thickness(cfg, run_dir, resume=resume, on_step=on_step)
        v = record["validation"]
        console.print(f"validation: RMSE {v['rmse_m']:.1f} m, bias {v['bias_m']:+.1f} m, 68 % coverage "
                      f"{v['coverage68']:.2f} ({record['steps']} steps, {record['train_seconds']:.0f} s)")
        if dest is not None:
            console.print(f"shipped to {ship_weights(run_dir / 'weights.pt', dest=dest)}")
