"""``glacierbed dataset build|figure``: the ice-free terrain patch set.

The config's order: :class:`~glacierbed.models.inpainting.patches.DatasetConfig` defaults, then
the YAML (``configs/dataset.yaml``: the sources), then the options given here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from glacierbed.commands.common import clean_errors, console

if TYPE_CHECKING:
    from glacierbed.models.inpainting.patches import BuildReport

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "dataset.yaml"
FIGURE_OUTLINES = ["oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp", "nz-canterbury-25m/glaciers.gpkg"]


def register(app: typer.Typer) -> None:
    ds = typer.Typer(help="Build and inspect the training set of ice-free terrain patches.", no_args_is_help=True)
    app.add_typer(ds, name="dataset")
    ds.command("build")(clean_errors(build))
    ds.command("figure")(clean_errors(figure))


def build(
    out: Path = typer.Option(Path("runs/patches128.npz"), help="Output .npz (a .json summary is written beside it)."),
    config: Path = typer.Option(DEFAULT_CONFIG, help="Dataset YAML (sources; any other DatasetConfig field)."),
    n_per_source: int = typer.Option(3000, help="Patches wanted per source and resolution."),
    patch: Optional[int] = typer.Option(None, help="Window side in pixels (overrides the config)."),
    min_elevation: Optional[float] = typer.Option(None, help="Elevation threshold in metres."),
    mode: Optional[str] = typer.Option(None, help="'max' or 'mean' elevation for the threshold."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
) -> None:
    """Sample windows from the configured DEMs, filter, split 90/10 spatially, write one file."""
    from rich.progress import Progress

    from glacierbed.core.config import load_config
    from glacierbed.models.inpainting.patches import DatasetConfig, build_dataset

    options = dict(patch=patch, min_elevation_m=min_elevation, elevation_mode=mode, seed=seed)
    cfg = load_config(DatasetConfig, config, **{k: v for k, v in options.items() if v is not None})
    n_tasks = sum(len(s.resolutions_m) for s in cfg.sources)
    with Progress(console=console) as progress:
        task = progress.add_task("sampling patches", total=n_tasks)
        report = build_dataset(cfg, out, n_per_source,
                               progress=lambda key, n: progress.update(task, advance=1, description=f"{key}: {n}"))
    _print_report(out, report)


def _print_report(out: Path, report: "BuildReport") -> None:
    """Patches kept per source and split, and rejected candidates by reason."""
    from rich.table import Table

    table = Table(title=f"{out} ({report.seconds:.0f} s)")
    for col, justify in (("source@resolution", "left"), ("train", "right"), ("val", "right")):
        table.add_column(col, justify=justify)
    for key, c in report.per_source.items():
        table.add_row(key, str(c["train"]), str(c["val"]))
    table.add_row("[bold]total", str(report.kept["train"]), str(report.kept["val"]))
    console.print(table)
    rej = Table(title="rejected candidates")
    rej.add_column("reason")
    rej.add_column("count", justify="right")
    for reason, n in report.rejected.most_common():
        rej.add_row(reason, str(n))
    console.print(rej)


def figure(
    dataset: Path = typer.Argument(..., help="Patch set (.npz) from `dataset build`."),
    out: Path = typer.Option(Path("patches.png"), help="PNG to write."),
    n: int = typer.Option(12, help="Number of patches."),
    outlines: list[str] = typer.Option(FIGURE_OUTLINES, help="Outline files for glacier-shaped holes "
                                       "(data-dir relative or absolute)."),
    seed: int = typer.Option(0),
) -> None:
    """A grid of sample patches with training holes (hillshade + elevation colours)."""
    import numpy as np

    from glacierbed.data.terrain import resolve
    from glacierbed.models.inpainting.figures import patch_grid_figure
    from glacierbed.models.inpainting.masks import MaskGenerator, OutlineShapes
    from glacierbed.models.inpainting.patches import PatchSet

    ps = PatchSet.load(dataset)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ps), size=min(n, len(ps)), replace=False))
    gen = MaskGenerator(OutlineShapes.from_outlines([resolve(p) for p in outlines]))
    holes = np.stack([gen(ps.dem[i], rng) | ps.glacier[i] for i in idx])
    keys = [s["key"] for s in ps.summary["sources"]]
    titles = [f"{keys[ps.source[i]]} {ps.split[i]}" for i in idx]
    patch_grid_figure(ps.dem[idx], holes, ps.res[idx], out, titles)
    console.print(f"wrote {out}")
