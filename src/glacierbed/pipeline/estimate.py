"""Bed, ice thickness and volume of every glacier: one per-glacier task, a region workflow.

Per glacier (:func:`estimate_glacier`, a :func:`~glacierbed.pipeline.workflow.glacier_task`): the DEM
window around the glacier is read lazily from the prepared DEM file (margin
``max(margin_m, margin_fraction * extent)``), a working resolution is chosen from the
model's ``patch_size`` and ``resolution_range_m`` (coarsened, refined for tiny glaciers, or
native) and recorded, the predictor gives the bed under every glacier of the window (an
ensemble), thickness = DEM - bed on this glacier only (negatives counted, then clipped, 0 on
the ice margin), the physics stage refines it, volume = sum x pixel area.

Region (:func:`estimate`): the DEM is prepared once (metric, voids filled) and written to
``inputs/dem.tif``; glaciers are light specs (outline and neighbours, no pixels) mapped
over serially or on Dask; each writes ``glaciers/<rgi_id>/{window.npz,estimate.json}``
atomically, so a killed run resumes (a glacier done ``ok`` with the same key is skipped;
the key hashes the config, the model's weights (sha256), the DEM, the physics inputs and
the outlines). Then the mosaics (thickness, bed, thickness_std GeoTIFFs), tables and maps.
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
from glacierbed.pipeline.store import load_predictor
from glacierbed.core.config import config_to_dict, load_config
from glacierbed.data.outlines import as_outlines, check_overlap, labels_on_ice, rasterize_gids
from glacierbed.data.rasters import (Raster, as_metric_dem, checked_rasters, raster_on_grid, read_window,
                                     sample_layers, velocity_on_grid)
from glacierbed.core.errors import DataNotFoundError, EmptySelectionError, GlacierbedError
from glacierbed.core.glaciology import is_calving, margin_pixels
from glacierbed.pipeline.outputs import region_totals, write_glacier_window, write_mosaics, write_tables
from glacierbed.posterior.physics import PhysicsConfig, refine_window
from glacierbed.models.predictors import MEMBERS, GlacierWindow, ThicknessPredictor, TilingConfig, plan_resolution
from glacierbed.pipeline.workflow import GlacierDir, TaskOutcome, compile_status, glacier_task, map_tasks

log = logging.getLogger(__name__)

#: columns of glaciers.csv, in order
COLUMNS = ["rgi_id", "name", "area_km2", "volume_km3", "volume_std_km3", "mean_thickness_m",
           "max_thickness_m", "neg_fraction", "status", "resolution_mode", "partial", "working_resolution_m",
           "seconds", "n_pixels", "pixel_area_m2", "resampling", "outside_fraction", "model", "message"]


@dataclass(frozen=True)
class EstimateConfig:
    """Everything that changes a glacier's result (hashed for resuming), plus ``fail_fast``."""

    ensemble: int = 4
    margin_m: float = 1000.0
    margin_fraction: float = 0.5
    #: a glacier with fewer DEM pixels than this is "tiny": worked on a finer grid
    tiny_px: int = 30
    #: pixels a tiny glacier should cover on its finer working grid (bounded by the model's range)
    tiny_target_px: int = 200
    #: windows larger than the model's patch: coarse pass + overlapping tiles (inpainters)
    tiling: TilingConfig = field(default_factory=TilingConfig)
    #: physics-informed refinement (None = the model's thickness only); see docs/physics.md
    physics: PhysicsConfig | None = field(default_factory=PhysicsConfig)
    #: apply the model's calibration on measured thickness when it has one (docs/calibration.md)
    calibrate: bool = True
    #: re-raise the first glacier's error instead of recording it and going on (not hashed)
    fail_fast: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.ensemble <= len(MEMBERS):
            raise ValueError(f"ensemble must be 1..{len(MEMBERS)}, got {self.ensemble}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "EstimateConfig":
        return load_config(cls, path)

    def key_dict(self) -> dict[str, Any]:
        return {k: v for k, v in config_to_dict(self).items() if k != "fail_fast"}


@dataclass
class EstimateResult:
    """What :func:`estimate` produced: per-glacier table, totals and output paths."""

    glaciers: pd.DataFrame
    summary: dict[str, Any]
    paths: dict[str, Path]
    out_dir: Path


@dataclass
class GlacierSpec:
    """One glacier, without pixels: small enough to ship to a Dask worker."""

    gid: int  #: 1-based id of the glacier among the outlines (its value in the id rasters)
    rgi_id: str
    name: str
    geometry: Any  #: shapely (multi)polygon in the DEM CRS
    bounds: tuple[float, float, float, float]  #: window (left, bottom, right, top) in the DEM CRS
    neighbours: gpd.GeoDataFrame  #: outlines meeting the window (``gid``, ``geometry``)
    outside_fraction: float  #: share of the outline outside the DEM footprint
    term_type: int | None = None  #: RGI TermType (1/2: the calving front is not a zero margin)


@dataclass(frozen=True)
class RegionContext:
    """What every glacier task of a region shares."""

    dem_path: Path  #: the prepared metric DEM (GeoTIFF)
    config: EstimateConfig
    model: Any  #: a predictor (serial), or its name/path (loaded once per Dask worker)
    aux: dict[str, str] = field(default_factory=dict)  #: physics inputs: "vx", "vy", "smb" -> path


# --------------------------------------------------------------------------------------
# one glacier
# --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _aux_raster(path: str) -> Raster:
    """A physics input raster (velocity, SMB), read once per worker process."""
    return Raster.from_file(path)


@functools.lru_cache(maxsize=4)
def _worker_predictor(spec: str | None) -> ThicknessPredictor:
    """The model, loaded once per worker process."""
    return load_predictor(spec)


def _predictor(ctx: RegionContext) -> ThicknessPredictor:
    return _worker_predictor(ctx.model) if ctx.model is None or isinstance(ctx.model, str) else ctx.model


@glacier_task("estimate", writes=("window",))
def estimate_glacier(gdir: GlacierDir, spec: GlacierSpec, ctx: RegionContext) -> dict[str, Any]:
    """Bed, thickness and volume of one glacier; writes ``window.npz``; returns its record."""
    cfg, predictor = ctx.config, _predictor(ctx)
    w0 = read_window(ctx.dem_path, spec.bounds)
    dem_px = w0.res[0]
    ids0 = rasterize_gids(spec.neighbours, w0)
    own0 = ids0 == spec.gid
    plan = plan_resolution(dem_px, max(w0.shape), int(own0.sum()), spec.geometry.area, predictor, cfg.tiny_px,
                           cfg.tiny_target_px, cfg.tiling.patch_slack)
    if plan.resampling == "none":
        ww, idsw = w0, ids0
    else:
        ww = w0.reproject(resolution=plan.resolution_m, resampling=plan.resampling)
        idsw = rasterize_gids(spec.neighbours, ww)
    ownw = idsw == spec.gid
    if not ownw.any():  # smaller than a pixel even here: take every touched pixel
        ownw = rasterize_gids(spec.neighbours[spec.neighbours["gid"] == spec.gid], ww, all_touched=True) > 0
    icew = (idsw > 0) | ownw
    if plan.resampling == "average":
        # a coarse pixel partly covered by ice holds averaged ice surface: hide it too
        icew |= rasterize_gids(spec.neighbours, ww, all_touched=True) > 0
    aux = ctx.aux
    velocity_w = velocity_on_grid(_aux_raster(aux["vx"]), _aux_raster(aux["vy"]), ww) if "vx" in aux else None
    smb_w = raster_on_grid(_aux_raster(aux["smb"]), ww) if "smb" in aux else None
    pred = predictor.predict(GlacierWindow(ww.data, ownw, icew, plan.resolution_m, calving=is_calving(spec.term_type),
                                           velocity=velocity_w, smb=smb_w, ids=labels_on_ice(idsw, icew)),
                             cfg.ensemble)
    beds, sigma = pred.bed_members, pred.sigma_m

    # the grid volumes are computed on: the DEM grid, or the finer grid of a tiny glacier
    if plan.mode == "tiny" and plan.resampling != "none":
        vgrid, own, ice = ww, ownw, icew
    else:
        vgrid, own, ice = w0, own0, ids0 > 0
        if plan.resampling != "none":
            layers = beds if sigma is None else np.concatenate([beds, sigma[None]])
            layers = sample_layers(ww, layers, w0, own0)
            beds, sigma = (layers, None) if sigma is None else (layers[:-1], layers[-1])
    surf = vgrid.data
    margin = margin_pixels(own, ice)
    raw = surf[None] - beds  # (K, ny, nx)
    mean_raw = surf - beds.mean(axis=0)
    ok = own & np.isfinite(surf) & np.isfinite(mean_raw)
    n_ok = int(ok.sum())
    if n_ok == 0:
        raise GlacierbedError(f"{spec.rgi_id}: no glacier pixel with a valid DEM elevation")
    neg_fraction = float((mean_raw[ok] < 0).mean())
    members = np.where(ok[None] & ~margin[None], np.clip(raw, 0, None), 0.0)
    thick = np.where(ok & ~margin, np.clip(mean_raw, 0, None), 0.0)
    extra: dict[str, Any] = {}
    if cfg.physics is not None:
        # refine the ensemble mean once; members keep their spread around it (shifted by the
        # same correction), so thickness_std stays the model's spread
        ref = refine_window(vgrid, surf - mean_raw, ok, ice, cfg.physics, term_type=spec.term_type,
                            velocity=(_aux_raster(aux["vx"]), _aux_raster(aux["vy"])) if "vx" in aux else None,
                            smb=_aux_raster(aux["smb"]) if "smb" in aux else None, sigma=sigma)
        thick_ref = np.where(ok, np.nan_to_num(ref.thickness), 0.0)
        members = np.where(ok[None], np.clip(members + (thick_ref - thick)[None], 0, None), 0.0)
        members[:, (thick_ref == 0) & margin] = 0.0
        thick = thick_ref
        extra = dict(physics_terms="+".join(ref.terms), physics_skipped="+".join(ref.skipped),
                     physics_seconds=ref.seconds, physics_iterations=ref.iterations)
    area_px = vgrid.pixel_area_m2
    cal = getattr(predictor, "calibration", None) if cfg.calibrate else None
    if cal is not None:  # measured-thickness calibration: thickness and a calibrated 1-sigma
        base_sigma = sigma if sigma is not None else members.std(axis=0)
        ids_v = labels_on_ice(ids0 if vgrid is w0 else idsw, ice)
        mu_c, s_c = cal.apply_window(surf, ids_v, vgrid.res[0], thick, base_sigma, own=ok)
        mu_c = np.where(ok & (thick > 0), np.nan_to_num(mu_c), 0.0)
        members = np.where(ok[None], np.clip(members + (mu_c - thick)[None], 0, None), 0.0)
        thick, spread = mu_c, np.where(ok & (mu_c > 0), np.nan_to_num(s_c), 0.0)
        volume_std = float(cal.volume_std_km3(spread[ok], area_px))
        extra["calibrated"] = cal.name
    elif sigma is not None:  # the model's own 1-sigma; errors within a glacier add up (fully correlated)
        spread = np.where(ok & (thick > 0), np.nan_to_num(sigma), 0.0)
        volume_std = float(spread.sum() * area_px / 1e9)
    else:  # inpainters: the ensemble's spread
        spread = members.std(axis=0)
        volume_std = float((members.sum(axis=(1, 2)) * area_px / 1e9).std())
    thick_map = np.where(ok, thick, np.nan).astype(np.float32)
    std_map = np.where(ok, spread, np.nan).astype(np.float32)
    write_glacier_window(gdir.get_filepath("window"), w0, own0, thick_map, std_map,
                         fine=None if vgrid is w0 else ww)
    partial = spec.outside_fraction > 0.001 or n_ok < int(own.sum())
    return dict(
        volume_km3=float(thick.sum() * area_px / 1e9), volume_std_km3=volume_std,
        mean_thickness_m=float(thick[ok].mean()), max_thickness_m=float(thick[ok].max()), neg_fraction=neg_fraction,
        resolution_mode=plan.mode, partial=bool(partial), working_resolution_m=float(plan.resolution_m),
        n_pixels=n_ok, pixel_area_m2=float(area_px), resampling=plan.resampling,
        outside_fraction=1.0 - (1.0 - spec.outside_fraction) * n_ok / max(int(own.sum()), 1), **pred.info, **extra,
    )


# --------------------------------------------------------------------------------------
# region
# --------------------------------------------------------------------------------------
def glacier_key(spec: GlacierSpec, cfg: EstimateConfig, model_identity: str, dem_sha: str,
                aux_sha: dict[str, str]) -> str:
    """Hash of everything that changes one glacier's result."""
    h = hashlib.sha256()
    h.update(json.dumps(cfg.key_dict(), sort_keys=True).encode())
    h.update(model_identity.encode())  # with the calibration's, when it is applied
    h.update(dem_sha.encode())
    if cfg.physics is not None:
        h.update(json.dumps(aux_sha, sort_keys=True).encode())
    h.update(f"{spec.gid}:{spec.term_type}:{spec.bounds}".encode())
    for gid, geom in sorted(zip(spec.neighbours["gid"], spec.neighbours.geometry), key=lambda t: t[0]):
        h.update(str(gid).encode())
        h.update(shapely.to_wkb(geom))
    return h.hexdigest()[:20]


def glacier_specs(dem: Raster, outlines: gpd.GeoDataFrame, cfg: EstimateConfig,
                  select: Sequence[str] | None = None) -> list[GlacierSpec]:
    """One spec per selected glacier covered (at least partly) by the DEM; no pixels read."""
    term_col = next((c for c in ("TermType", "TERMTYPE", "term_type") if c in outlines.columns), None)
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
        term = g[term_col].iloc[i] if term_col else None
        specs.append(GlacierSpec(
            gid=int(i) + 1, rgi_id=str(g["rgi_id"].iloc[i]), name=str(g["name"].iloc[i]).strip(), geometry=geom,
            bounds=box, neighbours=near.sort_values("gid").reset_index(drop=True),
            outside_fraction=float(max(0.0, 1.0 - covered)),
            term_type=None if term is None or pd.isna(term) else int(term)))
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
    return checked_rasters(named)


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
    max_glacier_maps: int = 50,
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
    ``None`` = overview + per-glacier maps when at most ``max_glacier_maps`` glaciers.
    ``progress(done, total)`` is called as glaciers finish. ``velocity`` (vx, vy rasters,
    m/yr, any CRS) and ``smb`` (m w.e./yr) feed the physics stage (``config.physics``).
    """
    t_start = time.perf_counter()
    cfg = config or EstimateConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dem_r = as_metric_dem(dem, resolution)
    g = check_overlap(as_outlines(outlines), dem_r)
    predictor = load_predictor(model)
    aux = _physics_inputs(cfg, velocity, smb)
    specs = glacier_specs(dem_r, g, cfg, select)
    if not specs:
        raise EmptySelectionError(f"no selected glacier of {g.attrs.get('source', 'the outlines')} lies on the DEM")
    dem_path = dem_r.to_file(out / "inputs" / "dem.tif")
    dem_sha = file_sha256(dem_path)
    aux_sha = {k: file_sha256(v) for k, v in aux.items()}
    log.info("%d glaciers, DEM %s at %.1f m, model %s, ensemble %d", len(specs), dem_r.crs.to_string(),
             dem_r.res[0], predictor.name, cfg.ensemble)
    # serial: the loaded predictor; Dask: its name/path, loaded once per worker
    spec_for_workers = (str(model) if isinstance(model, (str, os.PathLike)) else None if model is None else predictor)
    ctx = RegionContext(dem_path, cfg, predictor if workers <= 1 and not scheduler else spec_for_workers, aux)
    cal_path = getattr(predictor, "calibration_path", None) if cfg.calibrate else None
    identity = predictor.identity + (f"+calibration:{file_sha256(cal_path)}" if cal_path else "")
    # each task carries only its own glacier and key (not a table of all of them)
    items = [(s, glacier_key(s, cfg, identity, dem_sha, aux_sha)) for s in specs]
    task = functools.partial(_run_spec, ctx=ctx, out=out)
    outcomes = map_tasks(task, items, workers=workers, scheduler=scheduler, progress=progress,
                         order=lambda it: -(it[0].bounds[2] - it[0].bounds[0]) * (it[0].bounds[3] - it[0].bounds[1]))
    table = _table(specs, outcomes, predictor.name)
    paths = write_mosaics(dem_r, [GlacierDir(out, s.rgi_id).get_filepath("window") for s in specs], out)
    paths.update(write_tables(g, table, out))
    with replacing(out / "task_status.csv") as tmp:
        compile_status(outcomes).to_csv(tmp, index=False)
    paths["task_status"] = out / "task_status.csv"
    n_resumed = sum(o.resumed for o in outcomes)
    summary = {**region_totals(table), "model": predictor.name, "model_identity": identity,
               "config": config_to_dict(cfg), "dem_crs": dem_r.crs.to_string(), "dem_resolution_m": float(dem_r.res[0]),
               "dem_source": dem_r.source, "n_resumed": int(n_resumed), "seconds": time.perf_counter() - t_start}
    paths["summary"] = write_json(out / "summary.json", summary)
    if maps is not False:
        from glacierbed.pipeline.maps import plot_glacier_maps, plot_region_overview

        paths["overview_map"] = plot_region_overview(dem_r, out / "thickness.tif", g, out / "overview.png",
                                                     title=f"Ice thickness ({predictor.name}), "
                                                           f"{summary['volume_km3']:.3f} km³")
        if maps or len(specs) <= max_glacier_maps:
            paths["glacier_maps"] = plot_glacier_maps(dem_r, out / "thickness.tif", g, table, out / "maps")
    return EstimateResult(glaciers=table, summary=summary, paths=paths, out_dir=out)


def _table(specs: list[GlacierSpec], outcomes: list[TaskOutcome], model_name: str) -> pd.DataFrame:
    rows = []
    for s, o in zip(specs, outcomes):
        rows.append({"rgi_id": s.rgi_id, "name": s.name, "area_km2": s.geometry.area / 1e6,
                     "volume_km3": np.nan, "volume_std_km3": np.nan, "mean_thickness_m": np.nan,
                     "max_thickness_m": np.nan, "neg_fraction": np.nan, "resolution_mode": "", "partial": False,
                     "working_resolution_m": np.nan, "n_pixels": 0, "pixel_area_m2": np.nan, "resampling": "none",
                     "outside_fraction": s.outside_fraction, **o.record, "status": o.status.value,
                     "seconds": o.seconds, "model": model_name, "message": o.message, "gid": s.gid})
    table = pd.DataFrame(rows)
    return table[COLUMNS + [c for c in table.columns if c not in COLUMNS]]


def _run_spec(item: tuple[GlacierSpec, str], ctx: RegionContext, out: Path) -> TaskOutcome:
    spec, key = item
    return estimate_glacier(GlacierDir(out, spec.rgi_id), spec, ctx, key=key,
                            fail_fast=ctx.config.fail_fast)


__all__ = ["EstimateConfig", "EstimateResult", "GlacierSpec", "RegionContext", "estimate_glacier", "glacier_specs",
           "glacier_key", "estimate", "COLUMNS"]
