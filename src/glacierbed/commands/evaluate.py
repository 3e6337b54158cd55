"""``glacierbed evaluate`` (a thickness map vs measurements) and ``glacierbed benchmark``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from glacierbed.commands.common import clean_errors, console, print_metrics


def _is_glacier_table(path: Path) -> bool:
    """A CSV with a ``mean_thickness`` column is a GlaThiDa glacier table, not points."""
    if path.suffix.lower() != ".csv":
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    return "mean_thickness" in [c.strip().strip('"') for c in header.split(",")]


def _estimated_ids(thickness: Path) -> list[str]:
    """The glaciers of a map written by ``glacierbed estimate`` without ``--outlines``: its ``glaciers.csv``
    (a region's mosaic) or its ``rgi_id`` tag (one glacier's map); [] for any other map."""
    import rasterio

    table = thickness.with_name("glaciers.csv")
    if table.exists():
        return pd.read_csv(table, usecols=lambda c: c == "rgi_id").get("rgi_id", pd.Series(dtype=str)).tolist()
    with rasterio.open(thickness) as src:
        tag = src.tags().get("rgi_id")
    return [tag] if tag else []


@clean_errors
def evaluate_cmd(
    thickness: Path = typer.Option(..., "--thickness", help="Thickness GeoTIFF (m), e.g. from `glacierbed estimate`."),
    obs: Path = typer.Option(..., "--obs", help="Points (.shp/.gpkg/.csv GlaThiDa TTT), a measured-thickness grid "
                             "(.tif, nodata where nothing was measured) or GlaThiDa glacier.csv."),
    outlines: Optional[Path] = typer.Option(None, "--outlines", help="Glacier outlines (per-glacier scores)."),
    dem: Optional[Path] = typer.Option(None, "--dem", help="DEM for the error-map hillshade (default: the thickness map)."),
    out: Path = typer.Option(Path("evaluation"), "--out", help="Output folder."),
) -> None:
    """Score a thickness map against measured thickness: metrics CSV + Markdown + figures."""
    from glacierbed.data.observations import (GRID_SUFFIXES, match_glathida_to_outlines, read_glathida_glaciers,
                                              read_observations)
    from glacierbed.data.outlines import read_outlines
    from glacierbed.data.rasters import Raster, read_dem
    from glacierbed.evaluation import against_measurements as ev
    from glacierbed.evaluation import figures as plots
    from glacierbed.evaluation.benchmark import write_table
    from glacierbed.core.errors import EmptySelectionError

    h = Raster.from_file(thickness)
    ev.check_thickness_map(h)
    gl = read_outlines(outlines) if outlines is not None else None
    out.mkdir(parents=True, exist_ok=True)
    if _is_glacier_table(obs):
        if gl is None:
            raise EmptySelectionError(f"{obs}: glacier-level observations need --outlines to match them to glaciers")
        matches = match_glathida_to_outlines(read_glathida_glaciers(obs), gl)
        table, pooled = ev.evaluate_glacier_means(h, gl, matches)
        metrics = pd.DataFrame([{"rgi_id": ev.POOLED, **pooled}])
        write_table(table, out / "glaciers.csv")
        if len(table):
            plots.plot_glacier_means({thickness.stem: table}, out / "glacier_means.png")
    else:
        points = read_observations(obs)
        metrics, per_point = ev.evaluate_points(h, points, gl)
        write_table(per_point, out / "points.csv")
        shade = read_dem(dem, crs=h.crs) if dem is not None else h
        plots.plot_scatter({thickness.stem: per_point}, out / "scatter.png")
        plots.plot_error_map(shade, per_point, out / "error_map.png", gl, f"{thickness.name}: predicted - observed")
        if obs.suffix.lower() not in GRID_SUFFIXES:  # a grid's cells are no track to draw along
            try:
                plots.plot_profiles({thickness.stem: per_point}, out / "profiles.png")
            except EmptySelectionError:
                pass
    ids = gl["rgi_id"] if gl is not None else _estimated_ids(thickness)
    if len(ids):  # a map from `glacierbed estimate` whose network was fine-tuned on these measurements
        from glacierbed.evaluation.glacier_identity import canonical_rgi6
        from glacierbed.evaluation.in_sample import estimate_in_sample

        model, seen = estimate_in_sample(thickness, ids)
        if seen and "rgi_id" in metrics:
            metrics["in_sample"] = [canonical_rgi6(str(r)) in seen or r == ev.POOLED for r in metrics["rgi_id"]]
            console.print(f"[yellow]warning: {model} was fine-tuned or calibrated on the measured thickness of "
                          f"{', '.join(seen)}: "
                          "these scores are in-sample, not a validation (in_sample column)[/yellow]", soft_wrap=True)
    write_table(metrics, out / "metrics.csv")
    write_table(metrics, out / "metrics.md")
    print_metrics(metrics)
    console.print(f"written to {out}/")


@clean_errors
def benchmark_cmd(
    case: str = typer.Argument(..., help="south-glacier, oetztal, hintereisferner or glathida-grids."),
    model: Optional[str] = typer.Option(None, "--model", help="Model: the shipped default, a name (see "
                                                               "`glacierbed estimate --help`) or a weights path."),
    out: Path = typer.Option(Path("benchmark"), "--out", help="Output folder."),
) -> None:
    """Every baseline (VA scaling, GlabTop, biharmonic, OGGM if installed) and the models on one case,
    scored on the same observations."""
    from glacierbed.evaluation.benchmark import run_case, write_table

    with console.status(f"running {case} ..."):
        res = run_case(case, model=model, out_dir=out)
    write_table(res.metrics, out / f"{case}_metrics.csv")
    write_table(res.metrics, out / f"{case}_metrics.md")
    print_metrics(res.metrics)
    console.print(f"written to {out}/ ({len(res.figures)} figures)")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
    app.command("benchmark")(benchmark_cmd)
