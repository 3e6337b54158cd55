"""``glacierbed estimate``: bed, thickness and volume of every glacier on a DEM."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from glacierbed.commands.common import clean_errors, console, count_progress


def _example_inputs(name: str) -> tuple[list[Path], Path]:
    """DEM path(s) and outline path of a named example from the data registry."""
    from glacierbed.data.registry import get_example

    ex = get_example(name)

    def pick(*keys: str):
        for k in keys:
            v = ex.get(k) if isinstance(ex, dict) else getattr(ex, k, None)
            if v is not None:
                return v
        return None

    dem, outlines = pick("dem", "dems", "dem_paths"), pick("outlines", "outline", "outlines_path")
    if dem is None or outlines is None:
        from glacierbed.core.errors import DataNotFoundError

        raise DataNotFoundError(f"example {name!r}: has no DEM and outlines to estimate on")
    dems = [Path(p) for p in dem] if isinstance(dem, (list, tuple)) else [Path(dem)]
    return dems, Path(outlines)


def register(app: typer.Typer) -> None:
    @app.command("estimate")
    @clean_errors
    def estimate_cmd(
        dem: Optional[list[Path]] = typer.Option(None, "--dem", help="DEM file(s); several are mosaicked. "
                                                 "Geographic DEMs are warped to the local UTM zone."),
        outlines: Optional[Path] = typer.Option(None, "--outlines", help="Glacier outlines (RGI shapefile, GeoPackage, ...)."),
        out: Path = typer.Option(..., "--out", help="Output folder (re-running it resumes)."),
        model: Optional[str] = typer.Option(None, "--model", help="Model: default = the shipped default (see README); "
                                            "'thickness-net', 'network' (terrain-only inpainter), 'biharmonic', "
                                            "'harmonic', or a weights file."),
        resolution: Optional[float] = typer.Option(None, "--resolution", help="DEM resolution (m) to warp to."),
        workers: int = typer.Option(1, "--workers", min=1, help="Local Dask worker processes (1 = serial, in-process)."),
        scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of an existing Dask scheduler."),
        example: Optional[str] = typer.Option(None, "--example", help="Named example (DEM + outlines), e.g. oetztal."),
        glacier: Optional[list[str]] = typer.Option(None, "--glacier", help="Only these RGI ids (repeatable)."),
        ensemble: Optional[int] = typer.Option(None, "--ensemble", min=1, max=8,
                                               help="Ensemble members (flips, mask dilation); default 4."),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML of EstimateConfig fields (margins, "
                                              "tiling, physics, calibrate, ...); the options here override it."),
        calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate",
                                       help="Apply the model's shipped calibration on measured thickness."),
        maps: Optional[bool] = typer.Option(None, "--maps/--no-maps",
                                            help="PNG maps (default: overview; per-glacier maps if <= 50 glaciers)."),
        physics: bool = typer.Option(True, "--physics/--no-physics",
                                     help="Physics posterior: the model's thickness with a mass-conservation "
                                          "prior under H >= 0 and a zero margin (velocity and SMB when given); "
                                          "see docs/physics.md."),
        physics_config: Optional[Path] = typer.Option(None, "--physics-config",
                                                      help="YAML with PhysicsConfig fields to change."),
        velocity: Optional[tuple[Path, Path]] = typer.Option(None, "--velocity", metavar="VX VY",
                                                             help="Surface velocity rasters vx vy (m/yr, any CRS)."),
        smb: Optional[Path] = typer.Option(None, "--smb", help="Surface mass-balance raster (m w.e./yr)."),
    ) -> None:
        """Bed, ice thickness and volume of every glacier: GeoTIFFs, glaciers.csv/.gpkg, summary.json, maps."""
        from glacierbed.core.errors import DataNotFoundError
        from glacierbed.pipeline.estimate import EstimateConfig, estimate

        if example:
            ex_dems, ex_outlines = _example_inputs(example)
            dem = dem or ex_dems
            outlines = outlines or ex_outlines
        if not dem:
            raise DataNotFoundError("no DEM given: use --dem PATH (or --example NAME)")
        if outlines is None:
            raise DataNotFoundError("no outlines given: use --outlines PATH (or --example NAME)")
        from glacierbed.posterior.physics import PhysicsConfig
        from glacierbed.pipeline.store import load_predictor

        from glacierbed.core.config import load_config

        overrides: dict = {"calibrate": calibrate} if not calibrate else {}
        if ensemble is not None:
            overrides["ensemble"] = ensemble
        if not physics:
            overrides["physics"] = None
        elif physics_config:
            overrides["physics"] = PhysicsConfig.from_yaml(physics_config)
        cfg = load_config(EstimateConfig, config, **overrides)

        # fail early (before the progress bar) if the model is missing; Dask workers load it by name
        predictor = load_predictor(model)
        model_arg = predictor if workers == 1 and not scheduler else model
        with count_progress("glaciers") as progress:
            res = estimate(dem, outlines, out, model=model_arg, resolution=resolution, workers=workers,
                           scheduler=scheduler, select=glacier or None, maps=maps,
                           config=cfg, progress=progress,
                           velocity=tuple(velocity) if velocity else None, smb=smb)
        s = res.summary
        console.print(f"{s['n_glaciers']} glaciers, {s['area_km2']:.2f} km², volume {s['volume_km3']:.4f} "
                      f"± {s['volume_std_km3']:.4f} km³ ({s['sea_level_equivalent_mm']:.4f} mm SLE), "
                      f"model {s['model']}; status {s['counts_by_status']}")
        console.print(f"outputs in {res.out_dir}")
