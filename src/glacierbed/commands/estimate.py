"""``glacierbed estimate``: bed, thickness and volume of every glacier on a DEM.

Settings come from one route: ``--config`` (a YAML of ``EstimateConfig`` fields) first, then
the options given explicitly on the command line on top of it, booleans included
(``--calibrate`` overrides ``calibrate: false``, ``--physics`` a ``physics: null``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from glacierbed.commands.common import clean_errors, console, count_progress, explicit_options, fail

_O = typer.Option
OPTIONS: dict[str, Any] = dict(
    dem=_O(None, "--dem", help="DEM: one file, a folder of tiles, a GDAL VRT, or repeat --dem for several files; "
                               "tiles may be in different CRSs and each glacier reads only its own window from them. "
                               "Geographic DEMs are warped to the local UTM zone."),
    outlines=_O(None, "--outlines", help="Glacier outlines (RGI shapefile, GeoPackage, ...)."),
    out=_O(..., "--out", help="Output folder (re-running it resumes)."),
    model=_O(None, "--model", help="Model: default = the shipped default (see README); 'thickness-net', 'network' "
                                   "(terrain-only inpainter), 'biharmonic', 'harmonic', or a weights file."),
    resolution=_O(None, "--resolution", help="DEM resolution (m) to warp to."),
    workers=_O(1, "--workers", min=1, help="Local Dask worker processes (1 = serial, in-process)."),
    scheduler=_O(None, "--scheduler", help="Address of an existing Dask scheduler."),
    example=_O(None, "--example", help="Named example (DEM + outlines), e.g. oetztal."),
    glacier=_O(None, "--glacier", help="Only these RGI ids (repeatable)."),
    ensemble=_O(4, "--ensemble", min=1, max=8, help="Ensemble members (flips, mask dilation)."),
    config=_O(None, "--config", help="YAML of EstimateConfig fields (margins, tiling, physics, calibrate, ...); "
                                     "the options given here override it."),
    calibrate=_O(True, "--calibrate/--no-calibrate", help="Apply the model's shipped calibration on measured "
                                                          "thickness."),
    maps=_O(None, "--maps/--no-maps", help="PNG maps: --maps adds one map per glacier to the overview (the default); --no-maps draws none."),
    physics=_O(True, "--physics/--no-physics", help="Physics posterior: the model's thickness with a "
               "mass-conservation prior under H >= 0, no ice outside the outline and Nye's plastic "
               "profile on margin pixels (velocity and SMB when given); --no-physics leaves margin pixels at 0; "
               "see docs/physics.md."),
    physics_config=_O(None, "--physics-config", help="YAML with PhysicsConfig fields to change."),
    velocity=_O(None, "--velocity", metavar="VX VY", help="Surface velocity rasters vx vy (m/yr, any CRS)."),
    smb=_O(None, "--smb", help="Surface mass-balance raster (m w.e./yr); with the default network it made South "
                                "Glacier worse (docs/physics.md)."),
    rgi_region=_O(None, "--rgi-region", min=1, max=19, help="Download the outlines of this RGI region and the "
                  "DEM tiles they need (instead of --dem/--outlines); see docs/data.md."),
    rgi_ids=_O(None, "--rgi-ids", help="Download these RGI glaciers (repeatable or comma-separated, e.g. "
               "RGI60-11.00897) and the DEM tiles they need."),
    bbox=_O(None, "--bbox", metavar="W S E N", help="Download the RGI glaciers meeting this lon/lat box "
            "(degrees) and the DEM tiles they need."),
    rgi_version=_O(6, "--rgi-version", min=6, max=7, help="RGI version for --rgi-region/--bbox (6 or 7)."),
    dem_source=_O("glo30", "--dem-source", help="DEM downloaded for the RGI options: glo30 (Copernicus "
                  "GLO-30) or glo90."),
    elevation_band_m=_O(30.0, "--elevation-band", min=0.001, help="Height (m) of the surface-elevation bands of "
                        "elevation_bands.csv (area, volume, mean thickness and bed per band; 30 m as OGGM's "
                        "elevation-band flowlines, 10 m as Huss & Farinotti 2012)."),
    consensus=_O(False, "--consensus", help="Compare each RGI 6 glacier's volume with the Farinotti et al. (2019) "
                 "consensus (glaciers.csv: consensus_volume_km3, volume_over_consensus; the table comes with the "
                 "OGGM sample data, downloaded once if the data dir lacks it)."),
)


def _example_inputs(name: str) -> tuple[list[Path], Path]:
    """DEM path(s) and outline path (or glacier mask raster) of a named example from the data registry."""
    from glacierbed.core.errors import DataNotFoundError
    from glacierbed.data.registry import get_example

    ex = get_example(name)

    def pick(*keys: str) -> Any:
        for k in keys:
            v = ex.get(k) if isinstance(ex, dict) else getattr(ex, k, None)
            if v is not None:
                return v
        return None

    dem, outlines = pick("dem", "dems", "dem_paths"), pick("estimate_outlines", "outlines", "outline", "outlines_path")
    if dem is None or outlines is None:
        raise DataNotFoundError(f"example {name!r}: has no DEM and outlines to estimate on")
    dems = [Path(p) for p in dem] if isinstance(dem, (list, tuple)) else [Path(dem)]
    return dems, Path(outlines)


def _inputs(dem: list[Path] | None, outlines: Path | None, example: str | None) -> tuple[list[Path], Path]:
    """DEM(s) and outlines: the options, else the example's."""
    from glacierbed.core.errors import DataNotFoundError

    if example:
        ex_dems, ex_outlines = _example_inputs(example)
        dem, outlines = dem or ex_dems, outlines or ex_outlines
    if not dem:
        raise DataNotFoundError("no DEM given: use --dem PATH (or --example NAME)")
    if outlines is None:
        raise DataNotFoundError("no outlines given: use --outlines PATH (or --example NAME)")
    return list(dem), outlines


def _rgi_inputs(out: Path, cfg: Any, region: int | None, ids: list[str] | None,
                bbox: tuple[float, float, float, float] | None, version: int,
                dem_source: str) -> tuple[list[Path], Path, list[str]] | None:
    """DEM tiles, outlines file and selected ids downloaded for --rgi-region/--rgi-ids/--bbox (None: not asked)."""
    if region is None and not ids and bbox is None:
        return None
    from glacierbed.data.region_inputs import fetch_region_inputs

    got = fetch_region_inputs(out / "inputs" / "rgi_outlines.gpkg", region=region, bbox=bbox, version=version,
                              ids=[i for item in ids or () for i in item.replace(",", " ").split()],
                              dem_source=dem_source, margin_m=cfg.margin_m, margin_fraction=cfg.margin_fraction)
    return got.dem, got.outlines, got.rgi_ids


def estimate_config(config: Path | None, given: dict[str, Any], physics_config: Path | None = None) -> Any:
    """The ``EstimateConfig``: the YAML ``config`` (or the defaults), then the ``given`` options.

    ``given``: the explicitly given options among ``ensemble``, ``calibrate``, ``consensus``, ``elevation_band_m``
    and ``physics``
    (a bool: ``False`` turns the physics off, ``True`` turns it on where the YAML had it off).
    ``physics_config``: PhysicsConfig fields to change (then the physics is on).
    """
    from dataclasses import replace

    from glacierbed.core.config import load_config
    from glacierbed.pipeline.estimate import EstimateConfig
    from glacierbed.posterior.physics import PhysicsConfig

    cfg = load_config(EstimateConfig, config)
    fields = {k: v for k, v in given.items() if k in ("ensemble", "calibrate", "consensus", "elevation_band_m")}
    if physics_config is not None and given.get("physics", True):
        fields["physics"] = PhysicsConfig.from_yaml(physics_config)
    elif "physics" in given:
        fields["physics"] = (cfg.physics or PhysicsConfig()) if given["physics"] else None
    return replace(cfg, **fields)


def _print_summary(res: Any) -> None:
    """The totals, then what a user should look at: failed glaciers (the first three and why), area not covered,
    glaciers of regions the model saw no measurement of, what was resumed."""
    s = res.summary
    console.print(f"{s['n_glaciers']} glaciers, {s['area_km2']:.2f} km², volume {s['volume_km3']:.4f} "
                  f"± {s['volume_std_km3']:.4f} km³ (1σ; 90 %: {s['volume_90_km3'][0]:.4f}–"
                  f"{s['volume_90_km3'][1]:.4f} km³; {s['sea_level_equivalent_mm']:.4f} mm SLE), model {s['model']}; "
                  f"status {s['counts_by_status']}")
    if s["estimated_area_km2"] < 0.99 * s["area_km2"]:
        n_failed = s["counts_by_status"].get("error", 0)
        why = (f"{s['n_partial']} glaciers reach beyond the DEM (estimated on the part it covers) and {n_failed} failed"
               if s["n_partial"] or n_failed else "the pixels are too coarse for the outlines (working_resolution_m)")
        console.print(f"[yellow]the volume covers {s['estimated_area_km2']:.2f} km² of those {s['area_km2']:.2f} km²: "
                      f"{why} (glaciers.csv: estimated_area_km2)[/yellow]")
    if s.get("n_unmeasured_region"):
        console.print(f"[yellow]{s['n_unmeasured_region']} of {s['n_glaciers']} glaciers lie in RGI regions the model "
                      "saw no measured glacier of (glaciers.csv: measured_region False): scored leave one region out, "
                      "such glaciers' volume intervals were too narrow, so read their volume_std_km3 as a lower "
                      "bound (docs/estimate.md)[/yellow]")
    if flags := s.get("counts_by_caution"):
        console.print("glaciers of kinds with a known weakness (glaciers.csv: caution; what each means and what was "
                      "measured with the default model: docs/accuracy.md): "
                      + ", ".join(f"{k} {v}" for k, v in flags.items()))
    if c := s.get("consensus"):
        console.print(f"consensus (Farinotti et al. 2019) on the {c['n_glaciers']} glaciers with an RGI 6 id: "
                      f"{c['consensus_volume_km3']:.4f} km³ against {c['volume_km3']:.4f} km³ here (median glacier "
                      f"ratio {c['median_volume_over_consensus']:.2f}; glaciers.csv: volume_over_consensus)")
    if s.get("n_resumed") or s.get("n_recomputed"):
        console.print(f"{s['n_resumed']} glaciers resumed, {s['n_recomputed']} recomputed "
                      f"(why: task_status.csv)")
    failed = res.glaciers[res.glaciers["status"] == "error"]
    for row in failed.head(3).itertuples():
        message = str(row.message).removeprefix(f"{row.rgi_id}: ")
        console.print(f"[yellow]failed: {row.rgi_id}: {message}[/yellow]", soft_wrap=True)
    if len(failed) > 3:
        console.print(f"[yellow]... and {len(failed) - 3} more failed (glaciers.csv: status, message)[/yellow]")


@clean_errors
def estimate_cmd(
    ctx: typer.Context,
    dem: Optional[list[Path]] = OPTIONS["dem"], outlines: Optional[Path] = OPTIONS["outlines"],
    out: Path = OPTIONS["out"], model: Optional[str] = OPTIONS["model"],
    resolution: Optional[float] = OPTIONS["resolution"], workers: int = OPTIONS["workers"],
    scheduler: Optional[str] = OPTIONS["scheduler"], example: Optional[str] = OPTIONS["example"],
    glacier: Optional[list[str]] = OPTIONS["glacier"], ensemble: int = OPTIONS["ensemble"],
    config: Optional[Path] = OPTIONS["config"], calibrate: bool = OPTIONS["calibrate"],
    maps: Optional[bool] = OPTIONS["maps"], physics: bool = OPTIONS["physics"],
    physics_config: Optional[Path] = OPTIONS["physics_config"],
    velocity: Optional[tuple[Path, Path]] = OPTIONS["velocity"], smb: Optional[Path] = OPTIONS["smb"],
    rgi_region: Optional[int] = OPTIONS["rgi_region"], rgi_ids: Optional[list[str]] = OPTIONS["rgi_ids"],
    bbox: Optional[tuple[float, float, float, float]] = OPTIONS["bbox"], rgi_version: int = OPTIONS["rgi_version"],
    dem_source: str = OPTIONS["dem_source"], consensus: bool = OPTIONS["consensus"],
    elevation_band_m: float = OPTIONS["elevation_band_m"],
) -> None:
    """Bed, ice thickness and volume of every glacier: GeoTIFFs, glaciers.csv/.gpkg, summary.json, maps."""
    from glacierbed.pipeline.estimate import estimate
    from glacierbed.pipeline.store import load_predictor

    cfg = estimate_config(config, explicit_options(ctx, ensemble=ensemble, calibrate=calibrate, physics=physics,
                                                   consensus=consensus, elevation_band_m=elevation_band_m),
                          physics_config)
    if (rgi_region is not None or rgi_ids or bbox is not None) and (dem or outlines or example):
        fail("--rgi-region/--rgi-ids/--bbox download the DEM and outlines: do not also give --dem/--outlines/--example")
    fetched = _rgi_inputs(out, cfg, rgi_region, rgi_ids, bbox, rgi_version, dem_source)
    if fetched is None:
        dems, outline_path = _inputs(dem, outlines, example)
    else:
        dems, outline_path, chosen = fetched
        glacier = glacier or chosen
    # fail early (before the progress bar) if the model is missing; Dask workers load it by name
    predictor = load_predictor(model)
    with count_progress("glaciers") as progress:
        res = estimate(dems, outline_path, out, model=predictor if workers == 1 and not scheduler else model,
                       resolution=resolution, workers=workers, scheduler=scheduler, select=glacier or None,
                       maps=maps, config=cfg, progress=progress,
                       velocity=tuple(velocity) if velocity else None, smb=smb)
    _print_summary(res)
    console.print(f"outputs in {res.out_dir}")


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_cmd)
