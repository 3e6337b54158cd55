"""Bed, ice thickness and volume of every glacier of a region: the region workflow.

Per glacier: :func:`glacierbed.pipeline.glacier.estimate_glacier` (a
:func:`~glacierbed.pipeline.workflow.glacier_task`: window, working resolution, prediction,
thickness, physics, calibration, result file; see that module).

Region (:func:`estimate`): the DEM is prepared once (metric, voids filled) and written to
``inputs/dem.tif``; glaciers are light specs (outline and neighbours, no pixels) mapped
over by :func:`glacierbed.core.parallel.execute` (serially, or on Dask); each writes
``glaciers/<rgi_id>/thickness.tif`` (a 2-band GeoTIFF) and then ``estimate.json``
atomically, so a killed run resumes: a glacier is skipped only if its record says ``ok``
with the same key and its result file is intact (sha256) and readable; the key hashes the
result format, the config, the model's weights (sha256), the DEM, the physics inputs and
the outlines. Then the mosaics (thickness, bed, thickness_std GeoTIFFs), tables and maps.
A full disk stops the run with one :class:`~glacierbed.core.parallel.DiskFullError`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from glacierbed.core.atomic import file_sha256, replacing, write_json
from glacierbed.core.config import config_to_dict
from glacierbed.core.errors import DataNotFoundError, EmptySelectionError, UnitError
from glacierbed.core.parallel import execute, stop_when_disk_full
from glacierbed.core.threads import torch_threads
from glacierbed.data.attributes import caution
from glacierbed.data.crs import crs_label
from glacierbed.data.outlines import as_outlines, check_overlap, term_type, warn_overlapping
from glacierbed.data.rasters import Raster, as_metric_dem, checked_rasters, physical_range_problem
from glacierbed.data.tiles import build_tile_index, dem_paths, is_tiled
from glacierbed.models.predictors import ThicknessPredictor
from glacierbed.pipeline.glacier import (ROW_ATTRIBUTES, EstimateConfig, GlacierSpec, RegionContext, aux_raster,
                                        estimate_glacier)
from glacierbed.pipeline.outputs import (consensus_columns, measured_region, region_totals, volume_interval_90,
                                         write_band_table, write_mosaics, write_tables, write_tiled_mosaics)
from glacierbed.pipeline.store import load_predictor
from glacierbed.pipeline.tiled import mosaic_grid, no_dem_row, spec_dem_sha, tiled_specs, tiles_sha
from glacierbed.pipeline.workflow import GlacierDir, Status, TaskOutcome, compile_status

log = logging.getLogger(__name__)

#: columns of glaciers.csv, in order
COLUMNS = ["rgi_id", "name", "area_km2", "estimated_area_km2", "volume_km3", "volume_std_km3", "mean_thickness_m",
           "max_thickness_m", "neg_fraction", "status", "resolution_mode", "partial", "working_resolution_m",
           "seconds", "n_pixels", "pixel_area_m2", "resampling", "outside_fraction", "model", "message"]

#: the per-glacier result format; part of every key, so a new format recomputes old results (rows since 2026-12-08
#: carry the surface attributes ``caution`` is made of: results stored before lack them)
RESULT_FORMAT = "thickness.tif:2-band-geotiff:1;row:attributes:1"


@dataclass
class EstimateResult:
    """What :func:`estimate` produced: per-glacier table, totals and output paths."""

    glaciers: pd.DataFrame
    summary: dict[str, Any]
    paths: dict[str, Path]
    out_dir: Path


@dataclass
class Region:
    """A prepared region: the metric DEM (or the tile index), outlines, model, glacier specs and their keys."""

    dem: Raster | None  #: None for tiled DEMs (``tiles`` is their index)
    outlines: gpd.GeoDataFrame
    predictor: ThicknessPredictor
    identity: str  #: the model's identity (+ its calibration's sha256 when applied)
    specs: list[GlacierSpec]
    keys: list[str]
    ctx: RegionContext
    tiles: gpd.GeoDataFrame | None = None  #: tiled DEMs: the tile index (:func:`build_tile_index`)
    missing: list[dict[str, Any]] = field(default_factory=list)  #: rows of glaciers without DEM (``no_dem``)


def glacier_key(spec: GlacierSpec, cfg: EstimateConfig, model_identity: str, dem_sha: str,
                aux_sha: dict[str, str]) -> str:
    """Hash of everything that changes one glacier's result."""
    h = hashlib.sha256(RESULT_FORMAT.encode())
    h.update(json.dumps(cfg.key_dict(), sort_keys=True).encode())
    h.update(model_identity.encode())  # with the calibration's, when it is applied
    h.update(dem_sha.encode())
    if cfg.physics is not None:
        h.update(json.dumps(aux_sha, sort_keys=True).encode())
        if "smb" in aux_sha:  # the network's SMB channel in metres of ice since 2026-12-07: older results recomputed
            h.update(b"smb-channel-ice")
    h.update(f"{spec.gid}:{spec.term_type}:{spec.bounds}".encode())
    for gid, geom in sorted(zip(spec.neighbours["gid"], spec.neighbours.geometry), key=lambda t: t[0]):
        h.update(str(gid).encode())
        h.update(shapely.to_wkb(geom))
    return h.hexdigest()[:20]


#: a DEM pixel size above which volumes drift from those on a finer DEM (``benchmarks/dem_resolution.py``)
COARSE_DEM_M = 100.0


def glacier_specs(dem: Raster, outlines: gpd.GeoDataFrame, cfg: EstimateConfig,
                  select: Sequence[str] | None = None) -> list[GlacierSpec]:
    """One spec per selected glacier covered (at least partly) by the DEM; no pixels read."""
    g = outlines.reset_index(drop=True).copy()
    g["gid"] = np.arange(1, len(g) + 1)
    footprint = shapely.box(*dem.bounds)
    sel = np.ones(len(g), bool) if select is None else g["rgi_id"].isin(list(select)).to_numpy()
    if not sel.any():
        raise EmptySelectionError(f"none of the requested glaciers ({', '.join(list(select)[:5])}) "
                                  f"is in the outlines {outlines.attrs.get('source', '')}")
    left, bottom, right, top = dem.bounds
    specs = []
    for i in np.flatnonzero(sel):
        geom = g.geometry.iloc[i]
        covered = geom.intersection(footprint).area / geom.area if geom.area > 0 else 0.0
        if covered <= 0:
            continue
        minx, miny, maxx, maxy = geom.bounds
        margin = max(cfg.margin_m, cfg.margin_fraction * max(maxx - minx, maxy - miny))
        box = (max(minx - margin, left), max(miny - margin, bottom), min(maxx + margin, right), min(maxy + margin, top))
        near = g.iloc[g.sindex.query(shapely.box(*box))][["gid", "rgi_id", "geometry"]]
        specs.append(GlacierSpec(
            gid=int(i) + 1, rgi_id=str(g["rgi_id"].iloc[i]), name=str(g["name"].iloc[i]).strip(), geometry=geom,
            bounds=box, neighbours=near.sort_values("gid").reset_index(drop=True),
            outside_fraction=float(max(0.0, 1.0 - covered)),
            term_type=term_type(g, i)))
    return specs


def _physics_inputs(cfg: EstimateConfig, velocity: tuple[str | os.PathLike, str | os.PathLike] | None,
                    smb: str | os.PathLike | None) -> dict[str, str]:
    """Checked paths of the physics input rasters (empty without physics)."""
    if velocity is not None and len(velocity) != 2:
        raise DataNotFoundError(f"velocity needs two rasters (vx, vy), got {len(velocity)}")
    named = {**(dict(vx=velocity[0], vy=velocity[1]) if velocity is not None else {}),
             **({"smb": smb} if smb is not None else {})}
    if named and cfg.physics is None:
        log.warning("velocity/SMB rasters given but physics is off: they are not used")
        return {}
    checked = checked_rasters(named)
    for name, path in checked.items():
        problem = physical_range_problem(name, aux_raster(path).data)
        if problem is not None:
            raise UnitError(f"{path}: {problem}")
    return checked


def _check_aux_covers(aux: dict[str, str], outlines: gpd.GeoDataFrame, select: Sequence[str] | None) -> None:
    """Stop with one line when a velocity or SMB raster covers none of the glaciers estimated (it would be skipped
    on every glacier without a word); a partial cover is logged (those glaciers record it in ``physics_skipped``)."""
    if select:
        outlines = outlines[outlines["rgi_id"].isin(select)]
    roles = {"vx": "velocity (vx) raster", "vy": "velocity (vy) raster", "smb": "SMB raster"}
    for name, path in aux.items():  # a raster without CRS already stopped in checked_rasters
        # the glacier tasks' cached reader: in a serial run the tasks reuse this read
        check_overlap(outlines, aux_raster(path), what=roles.get(name, f"{name} raster"))


def prepare_region(dem: Raster | str | os.PathLike | Sequence[str | os.PathLike],
                   outlines: gpd.GeoDataFrame | str | os.PathLike, out: Path, model: Any, cfg: EstimateConfig, *,
                   resolution: float | None = None, select: Sequence[str] | None = None, aux: dict[str, str],
                   in_process: bool = True) -> Region:
    """The metric DEM (written to ``inputs/dem.tif``), outlines, model and one spec + key per glacier.

    ``in_process``: the tasks get the loaded predictor; otherwise its name/path (Dask workers load it).
    """
    dem_r = as_metric_dem(dem, resolution)
    g = check_overlap(as_outlines(outlines), dem_r)
    predictor = load_predictor(model)
    if dem_r.res[0] > COARSE_DEM_M:
        log.warning("the DEM's pixels are %.0f m: on DEMs coarser than %.0f m a glacier that fits one model patch at "
                    "100 m is worked there, yet the default's volumes can come out lower than on a finer DEM "
                    "of the same glaciers "
                    "(0.81-1.02 of them at 150-400 m on the kit's regions, the largest glaciers lowest; "
                    "benchmarks/results/dem_resolution.md): use the finest DEM you have", dem_r.res[0], COARSE_DEM_M)
    specs = glacier_specs(dem_r, g, cfg, select)
    if not specs:
        raise EmptySelectionError(f"no selected glacier of {g.attrs.get('source', 'the outlines')} lies on the DEM")
    on_dem = {s.gid for s in specs}
    sel = set(g["rgi_id"]) if select is None else set(select)
    missing = [no_dem_row(g.reset_index(drop=True), i) for i in range(len(g))
               if i + 1 not in on_dem and g["rgi_id"].iloc[i] in sel]
    dem_path = dem_r.to_file(out / "inputs" / "dem.tif")
    log.info("%d glaciers, DEM %s at %.1f m, model %s, ensemble %d", len(specs), crs_label(dem_r.crs),
             dem_r.res[0], predictor.name, cfg.ensemble)
    cal_path = getattr(predictor, "calibration_path", None) if cfg.calibrate else None
    identity = predictor.identity + (f"+calibration:{file_sha256(cal_path)}" if cal_path else "")
    dem_sha, aux_sha = file_sha256(dem_path), {k: file_sha256(v) for k, v in aux.items()}
    keys = [glacier_key(s, cfg, identity, dem_sha, aux_sha) for s in specs]
    for_workers = str(model) if isinstance(model, (str, os.PathLike)) else None if model is None else predictor
    ctx = RegionContext(dem_path, cfg, predictor if in_process else for_workers, aux)
    return Region(dem_r, g, predictor, identity, specs, keys, ctx, missing=missing)


def prepare_tiled_region(dem: str | os.PathLike | Sequence[str | os.PathLike],
                         outlines: gpd.GeoDataFrame | str | os.PathLike, out: Path, model: Any, cfg: EstimateConfig,
                         *, select: Sequence[str] | None = None, aux: dict[str, str],
                         in_process: bool = True) -> Region:
    """A region on DEM tiles: the tile index (``inputs/tiles.csv``), each glacier's grid, window and
    tiles (:func:`~glacierbed.pipeline.tiled.tiled_specs`), keys hashing its own tiles; no DEM pixel read."""
    index = build_tile_index(dem_paths(dem))
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    with replacing(out / "inputs" / "tiles.csv") as tmp:
        index.drop(columns="geometry").assign(footprint_wkt=index.geometry.to_wkt()).to_csv(tmp, index=False)
    g = as_outlines(outlines)
    predictor = load_predictor(model)
    specs, missing = tiled_specs(index, g, cfg, select)
    log.info("%d glaciers on %d DEM tiles (%d without DEM), model %s, ensemble %d", len(specs), len(index),
             len(missing), predictor.name, cfg.ensemble)
    cal_path = getattr(predictor, "calibration_path", None) if cfg.calibrate else None
    identity = predictor.identity + (f"+calibration:{file_sha256(cal_path)}" if cal_path else "")
    shas, aux_sha = tiles_sha(specs), {k: file_sha256(v) for k, v in aux.items()}
    keys = [glacier_key(s, cfg, identity, spec_dem_sha(s, shas), aux_sha) for s in specs]
    for_workers = str(model) if isinstance(model, (str, os.PathLike)) else None if model is None else predictor
    ctx = RegionContext(None, cfg, predictor if in_process else for_workers, aux)
    return Region(None, g, predictor, identity, specs, keys, ctx, tiles=index, missing=missing)


def estimate(
    dem: Raster | str | os.PathLike | Sequence[str | os.PathLike],
    outlines: gpd.GeoDataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    model: Any = None,
    *,
    resolution: float | None = None,
    config: EstimateConfig | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    select: Sequence[str] | None = None,
    maps: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    velocity: tuple[str | os.PathLike, str | os.PathLike] | None = None,
    smb: str | os.PathLike | None = None,
) -> EstimateResult:
    """Bed, thickness and volume of every glacier in ``outlines`` covered by ``dem``.

    ``dem``: path(s) (mosaicked; geographic or distorted CRSs go to local UTM, see
    :func:`~glacierbed.data.rasters.read_dem`) or a :class:`Raster`. ``model``: a predictor,
    an inpainter, a name ("biharmonic") or weights path; ``None`` = the shipped default.
    ``workers > 1`` runs a local Dask cluster, ``scheduler`` an existing one (workers must see
    ``out_dir``). ``select`` limits to some RGI ids (all outlines are still masked). ``maps``:
    ``None`` = the overview map only (cheap), ``True`` = also one map per glacier, ``False`` = none.
    ``progress(done, total)`` is called as glaciers finish. ``velocity`` (vx, vy rasters,
    m/yr, any CRS) and ``smb`` (m w.e./yr) feed the physics stage (``config.physics``).
    A full disk raises :class:`~glacierbed.core.parallel.DiskFullError` naming ``out_dir``.
    """
    t_start = time.perf_counter()
    cfg = config or EstimateConfig()
    out = Path(out_dir)
    with stop_when_disk_full(out):
        out.mkdir(parents=True, exist_ok=True)
        aux = _physics_inputs(cfg, velocity, smb)
        in_process = workers <= 1 and not scheduler
        if not isinstance(dem, Raster) and is_tiled(dem):
            if resolution is not None:
                log.warning("--resolution is not used with DEM tiles: each glacier works at its tile's resolution")
            region = prepare_tiled_region(dem, outlines, out, model, cfg, select=select, aux=aux,
                                          in_process=in_process)
        else:
            region = prepare_region(dem, outlines, out, model, cfg, resolution=resolution, select=select, aux=aux,
                                    in_process=in_process)
        _check_aux_covers(aux, region.outlines, select)
        warn_overlapping(region.outlines)
        if "smb" in aux and "finetuned_on_measured" in (getattr(region.predictor, "record", None) or {}):
            log.warning("%s was fine-tuned on measured thickness without any SMB raster; given one, it did worse on "
                        "South Glacier (29.5 vs 27.4 m; docs/physics.md)", region.predictor.name)
        # each task carries only its own glacier and key (not a table of all of them); many small
        # windows (tiles) run serially on one torch thread: 4x faster than two on a busy 2-core machine
        with torch_threads(1 if region.dem is None and in_process else None):
            outcomes = execute(functools.partial(_run_spec, ctx=region.ctx, out=out),
                               list(zip(region.specs, region.keys)), workers=workers, scheduler=scheduler,
                               progress=progress, order=_largest_first)
        table = consensus_columns(_table(region.specs, outcomes, region.predictor, cfg.calibrate, region.missing),
                                  cfg.consensus)
        paths, summary = write_region_outputs(region, table, outcomes, out, t_start)
        if maps is not False:
            paths.update(_write_maps(region, table, summary, out, bool(maps)))
    return EstimateResult(glaciers=table, summary=summary, paths=paths, out_dir=out)


def write_region_outputs(region: Region, table: pd.DataFrame, outcomes: list[TaskOutcome], out: Path,
                         t_start: float) -> tuple[dict[str, Path], dict[str, Any]]:
    """Mosaics from the ok glaciers' result files, glaciers.csv/.gpkg, elevation_bands.csv, task_status.csv,
    summary.json."""
    done = [GlacierDir(out, o.rgi_id).get_filepath("thickness") for o in outcomes if o.status is Status.OK]
    if region.dem is None:
        grid = mosaic_grid(region.specs)
        paths = write_tiled_mosaics(done, grid, out)
        dem_info = {"dem_crs": gpd.GeoSeries(crs=grid[0]).crs.to_string(), "dem_resolution_m": float(grid[1]),
                    "dem_source": f"{len(region.tiles)} DEM tiles (inputs/tiles.csv)",
                    "dem_tile_crs_counts": {str(gpd.GeoSeries(crs=c).crs.to_string()): int(n)
                                            for c, n in region.tiles["crs"].value_counts().items()}}
    else:
        paths = write_mosaics(region.dem, done, out)
        dem_info = {"dem_crs": region.dem.crs.to_string(), "dem_resolution_m": float(region.dem.res[0]),
                    "dem_source": region.dem.source}
    paths.update(write_tables(region.outlines, table, out))
    paths.update(write_band_table({o.rgi_id: GlacierDir(out, o.rgi_id).get_filepath("elevation_bands")
                                   for o in outcomes if o.status is Status.OK}, out))
    with replacing(out / "task_status.csv") as tmp:
        compile_status(outcomes).to_csv(tmp, index=False)
    paths["task_status"] = out / "task_status.csv"
    summary = {**region_totals(table), "model": region.predictor.name, "model_identity": region.identity,
               "config": config_to_dict(region.ctx.config), **dem_info,
               "n_resumed": int(sum(o.resumed for o in outcomes)),
               "n_recomputed": int(sum(bool(o.recomputed) for o in outcomes)),
               "seconds": time.perf_counter() - t_start}
    paths["summary"] = write_json(out / "summary.json", summary)
    return paths, summary


def _write_maps(region: Region, table: pd.DataFrame, summary: dict[str, Any], out: Path,
                per_glacier: bool) -> dict[str, Path]:
    """overview.png, and maps/<rgi_id>.png when ``per_glacier``."""
    from glacierbed.pipeline.maps import plot_glacier_maps, plot_region_overview

    title = f"Ice thickness ({region.predictor.name}), {summary['volume_km3']:.3f} km³"
    if region.dem is None:  # tiles: a coarse overview of the mosaic, no per-glacier maps (no region DEM)
        from glacierbed.pipeline.maps import plot_coarse_overview

        if not (out / "thickness.tif").exists():
            return {}
        return {"overview_map": plot_coarse_overview(out / "thickness.tif", region.outlines, out / "overview.png",
                                                     title=title)}
    paths = {"overview_map": plot_region_overview(region.dem, out / "thickness.tif", region.outlines,
                                                  out / "overview.png", title=title)}
    if per_glacier:
        paths["glacier_maps"] = plot_glacier_maps(region.dem, out / "thickness.tif", region.outlines, table,
                                                  out / "maps")
    return paths


def _largest_first(item: tuple[GlacierSpec, str]) -> float:
    """Submission order: largest window first, so long glaciers do not finish last."""
    left, bottom, right, top = item[0].bounds
    return -(right - left) * (top - bottom)


def _table(specs: list[GlacierSpec], outcomes: list[TaskOutcome], predictor: Any, calibrate: bool,
           missing: Sequence[dict[str, Any]] = ()) -> pd.DataFrame:
    """glaciers.csv: one row per glacier with a task, then one per glacier without DEM (``no_dem``); the columns
    :data:`COLUMNS`, then the rest, ``measured_region`` and the 90 % volume interval."""
    rows, model_name = [], predictor.name
    for s, o in zip(specs, outcomes):
        rows.append({"rgi_id": s.rgi_id, "name": s.name, "area_km2": s.geometry.area / 1e6,
                     "volume_km3": np.nan, "volume_std_km3": np.nan, "mean_thickness_m": np.nan,
                     "max_thickness_m": np.nan, "neg_fraction": np.nan, "resolution_mode": "", "partial": False,
                     "working_resolution_m": np.nan, "n_pixels": 0, "pixel_area_m2": np.nan, "resampling": "none",
                     "outside_fraction": s.outside_fraction, **o.record, "status": o.status.value,
                     "seconds": o.seconds, "model": model_name, "message": o.message, "gid": s.gid})
    for m in missing:
        rows.append({"volume_km3": np.nan, "volume_std_km3": np.nan, "resolution_mode": "", "partial": False,
                     "n_pixels": 0, "resampling": "none", "seconds": 0.0, "model": model_name, **m})
    table = pd.DataFrame(rows)
    # the area the volume is integrated over: the outline's part on the DEM (all of it unless ``partial``)
    table["estimated_area_km2"] = (table["n_pixels"].fillna(0) * table["pixel_area_m2"].fillna(0) / 1e6).where(
        table["status"] == Status.OK.value, 0.0)
    table = table.reindex(columns=list(dict.fromkeys([*COLUMNS, *table.columns, *ROW_ATTRIBUTES])))
    table = table.assign(measured_region=measured_region(table["rgi_id"], predictor))
    table = table.assign(caution=caution(table))  # kinds with a known weakness (docs/accuracy.md)
    return table.join(volume_interval_90(table, predictor, calibrate))


def _run_spec(item: tuple[GlacierSpec, str], ctx: RegionContext, out: Path) -> TaskOutcome:
    spec, key = item
    return estimate_glacier(GlacierDir(out, spec.rgi_id), spec, ctx, key=key,
                            fail_fast=ctx.config.fail_fast)


__all__ = ["EstimateConfig", "EstimateResult", "GlacierSpec", "Region", "RegionContext", "estimate_glacier",
           "glacier_specs", "glacier_key", "estimate", "prepare_region", "write_region_outputs", "measured_region",
           "COLUMNS", "RESULT_FORMAT"]
