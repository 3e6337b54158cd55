"""One glacier's bed, thickness and volume, as small chained steps of one task.

:func:`estimate_glacier` (a :func:`~glacierbed.pipeline.workflow.glacier_task`) runs, per glacier:

1. :func:`read_glacier_window`: the DEM window around the glacier, read lazily from the
   prepared DEM file (margin ``max(margin_m, margin_fraction * extent)``), and a working
   grid chosen from the model's ``patch_size`` and ``resolution_range_m`` (coarsened,
   refined for tiny glaciers, or native);
2. :func:`predict_window`: the predictor's bed under every glacier of the window (an ensemble);
3. :func:`thickness_from_bed`: thickness = DEM - bed on this glacier only, on the grid the
   volume is computed on (negatives counted, then clipped; 0 on the ice margin);
4. :func:`apply_physics`: the physics posterior refines the ensemble mean;
5. :func:`apply_calibration`: the model's calibration on measured thickness, or its own
   sigma, or the ensemble spread gives ``thickness_std`` and ``volume_std_km3``;
6. :func:`write_thickness`: the result GeoTIFF; :func:`glacier_record`: its row
   (volume = sum x pixel area).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import geopandas as gpd
import numpy as np

from glacierbed.core.atomic import replacing
from glacierbed.core.config import YamlConfig, config_to_dict
from glacierbed.core.errors import GlacierbedError
from glacierbed.core.glaciology import is_calving, margin_pixels
from glacierbed.data.attributes import attributes_of_mask, mask_latitude
from glacierbed.data.outlines import labels_on_ice, rasterize_gids
from glacierbed.data.rasters import Raster, fill_voids, raster_on_grid, read_window, sample_layers, velocity_on_grid
from glacierbed.data.tiles import WorkGrid, read_tiles_window
from glacierbed.models.predictors import (MEMBERS, GlacierWindow, Plan, Prediction, ThicknessPredictor, TilingConfig,
                                          plan_resolution)
from glacierbed.pipeline.outputs import elevation_bands, read_glacier_result, write_glacier_result
from glacierbed.pipeline.store import load_predictor
from glacierbed.pipeline.workflow import GlacierDir, glacier_task
from glacierbed.posterior.physics import PhysicsConfig, refine_window


@dataclass(frozen=True)
class EstimateConfig(YamlConfig):
    """Everything that changes a glacier's result (hashed for resuming), plus ``fail_fast``."""

    ensemble: int = 4
    margin_m: float = 1000.0
    margin_fraction: float = 0.5
    #: a glacier with fewer DEM pixels than this is "tiny": worked on a finer grid
    tiny_px: int = 30
    #: pixels a tiny glacier should cover on its finer working grid (bounded by the model's range)
    tiny_target_px: int = 200
    #: a DEM coarser than this (m): glaciers whose window fits one patch at this pixel size are worked, and their
    #: volume computed, on a grid refined to it, for models that ask (the thickness network; None: never);
    #: see docs/estimate.md
    refine_coarse_dem_m: float | None = 100.0
    #: windows larger than the model's patch: coarse pass + overlapping tiles (inpainters)
    tiling: TilingConfig = field(default_factory=TilingConfig)
    #: physics-informed refinement (None = the model's thickness only); see docs/physics.md
    physics: PhysicsConfig | None = field(default_factory=PhysicsConfig)
    #: apply the model's calibration on measured thickness when it has one (docs/calibration.md)
    calibrate: bool = True
    #: re-raise the first glacier's error instead of recording it and going on (not hashed)
    fail_fast: bool = False
    #: glaciers.csv compares each RGI 6 glacier's volume with the Farinotti et al. (2019) consensus (not hashed)
    consensus: bool = False
    #: height (m) of the surface-elevation bands of elevation_bands.csv (30 m: Werder et al. 2019, OGGM)
    elevation_band_m: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.ensemble <= len(MEMBERS):
            raise ValueError(f"ensemble must be 1..{len(MEMBERS)}, got {self.ensemble}")
        if not self.elevation_band_m > 0:
            raise ValueError(f"elevation_band_m must be a height in metres above 0, got {self.elevation_band_m}")
        if self.refine_coarse_dem_m is not None and not self.refine_coarse_dem_m > 0:
            raise ValueError(f"refine_coarse_dem_m must be a pixel size in metres above 0 (or null), "
                             f"got {self.refine_coarse_dem_m}")

    def key_dict(self) -> dict[str, Any]:
        return {k: v for k, v in config_to_dict(self).items() if k not in ("fail_fast", "consensus")}


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
    #: tiled DEMs: the glacier's own working grid (CRS, pixel size, origin); None = the region's DEM
    grid: WorkGrid | None = None
    tiles: tuple[str, ...] = ()  #: tiled DEMs: the tiles meeting the window, the one covering most first


@dataclass(frozen=True)
class RegionContext:
    """What every glacier task of a region shares."""

    dem_path: Path | None  #: the prepared metric DEM (GeoTIFF); None for tiled DEMs (each spec has its tiles)
    config: EstimateConfig
    model: Any  #: a predictor (serial), or its name/path (loaded once per Dask worker)
    aux: dict[str, str] = field(default_factory=dict)  #: physics inputs: "vx", "vy", "smb" -> path


@functools.lru_cache(maxsize=8)
def aux_raster(path: str) -> Raster:
    """A physics input raster (velocity, SMB), read once per worker process."""
    return Raster.from_file(path)


@functools.lru_cache(maxsize=4)
def _worker_predictor(spec: str | None) -> ThicknessPredictor:
    """The model, loaded once per worker process."""
    return load_predictor(spec)


def _predictor(ctx: RegionContext) -> ThicknessPredictor:
    return _worker_predictor(ctx.model) if ctx.model is None or isinstance(ctx.model, str) else ctx.model


# --------------------------------------------------------------------------------------
# the steps
# --------------------------------------------------------------------------------------
@dataclass
class Window:
    """A glacier's piece of the DEM grid (``w0``) and the working grid the model sees (``ww``)."""

    w0: Raster
    ids0: np.ndarray  #: glacier ids (gid) on ``w0``
    own0: np.ndarray  #: this glacier's pixels on ``w0``
    plan: Plan
    ww: Raster
    idsw: np.ndarray
    ownw: np.ndarray
    icew: np.ndarray  #: every glacier's pixels on ``ww`` (hidden from inpainters)

    @property
    def fine(self) -> bool:
        """A glacier worked on a grid finer than the DEM's (tiny, or on a coarse DEM): its volume is computed there,
        where its margin pixels are as narrow as the network saw them, not on the DEM's grid."""
        return self.plan.mode in ("tiny", "refined") and self.plan.resampling != "none"


def read_glacier_window(spec: GlacierSpec, ctx: RegionContext, predictor: ThicknessPredictor) -> Window:
    """The DEM window of the glacier, its working grid (``plan_resolution``) and masks on both."""
    cfg = ctx.config
    w0 = read_window(ctx.dem_path, spec.bounds) if spec.grid is None else fill_voids(
        read_tiles_window(spec.tiles, spec.grid.crs, spec.grid.snap(spec.bounds), spec.grid.res))
    ids0 = rasterize_gids(spec.neighbours, w0)
    own0 = ids0 == spec.gid
    plan = plan_resolution(w0.res[0], max(w0.shape), int(own0.sum()), spec.geometry.area, predictor, cfg.tiny_px,
                           cfg.tiny_target_px, cfg.tiling.patch_slack, cfg.refine_coarse_dem_m)
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
    return Window(w0, ids0, own0, plan, ww, idsw, ownw, icew)


def glacier_window(spec: GlacierSpec, ctx: RegionContext, win: Window) -> GlacierWindow:
    """What the predictor sees of the glacier: its working grid, masks and physics inputs."""
    aux = ctx.aux
    velocity = velocity_on_grid(aux_raster(aux["vx"]), aux_raster(aux["vy"]), win.ww) if "vx" in aux else None
    smb = raster_on_grid(aux_raster(aux["smb"]), win.ww) if "smb" in aux else None
    if smb is not None:  # the network's channel is m of ice a-1 (simulated as such), as the physics' term
        smb = smb * ctx.config.physics.smb_to_ice
    return GlacierWindow(win.ww.data, win.ownw, win.icew, win.plan.resolution_m, calving=is_calving(spec.term_type),
                         velocity=velocity, smb=smb, ids=labels_on_ice(win.idsw, win.icew))


def _no_dem_elevation(spec: GlacierSpec) -> GlacierbedError:
    """The one-line error of a glacier with no pixel holding a DEM elevation (checked before the model on
    the working grid, and after it on the volume grid)."""
    return GlacierbedError(f"{spec.rgi_id}: no glacier pixel with a valid DEM elevation")


def _no_pixel_of_its_own(spec: GlacierSpec, grid: Raster) -> GlacierbedError:
    """Why a glacier has no pixel on ``grid``: other outlines overlapping it took them all (each pixel belongs to
    one glacier), or it is smaller than a pixel."""
    alone = rasterize_gids(spec.neighbours[spec.neighbours["gid"] == spec.gid], grid) > 0
    if alone.any():
        return GlacierbedError(f"{spec.rgi_id}: no pixel of its own: overlapping outlines cover it (the smaller, or "
                               f"of equal ones the later, keeps the overlap)")
    return GlacierbedError(f"{spec.rgi_id}: no pixel centre of the {grid.res[0]:.0f} m grid falls inside the outline")


def predict_window(spec: GlacierSpec, ctx: RegionContext, predictor: ThicknessPredictor, win: Window) -> Prediction:
    """The predictor's ensemble of beds (and sigma) on the working grid; a glacier whose pixels all lack
    a DEM elevation (a tile that does not hold it, a void over it) stops here with one line."""
    if not np.isfinite(win.ww.data[win.ownw]).any():
        raise _no_dem_elevation(spec)
    return predictor.predict(glacier_window(spec, ctx, win), ctx.config.ensemble)


@dataclass
class Thickness:
    """The glacier's thickness on the grid its volume is computed on, refined step by step."""

    grid: Raster  #: the DEM grid, or the finer grid of a tiny glacier
    ids: np.ndarray  #: glacier ids on ``grid``
    own: np.ndarray
    ice: np.ndarray
    ok: np.ndarray  #: this glacier's pixels with a valid DEM and bed
    margin: np.ndarray
    mean_raw: np.ndarray  #: DEM - mean bed, unclipped
    neg_fraction: float
    thick: np.ndarray  #: the thickness (m)
    members: np.ndarray  #: (K, ny, nx) the ensemble's thickness
    sigma: np.ndarray | None  #: the model's own 1-sigma, when it gives one
    spread: np.ndarray | None = None  #: thickness_std (m), set by :func:`apply_calibration`
    volume_std: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)  #: recorded with the glacier


def thickness_from_bed(spec: GlacierSpec, win: Window, pred: Prediction) -> Thickness:
    """DEM - bed on this glacier, clipped at 0 and 0 on the margin; on the volume grid."""
    beds, sigma = pred.bed_members, pred.sigma_m
    if win.fine:
        grid, ids, own, ice = win.ww, win.idsw, win.ownw, win.icew
    else:
        grid, ids, own, ice = win.w0, win.ids0, win.own0, win.ids0 > 0
        if win.plan.resampling != "none":
            layers = beds if sigma is None else np.concatenate([beds, sigma[None]])
            layers = sample_layers(win.ww, layers, win.w0, win.own0)
            beds, sigma = (layers, None) if sigma is None else (layers[:-1], layers[-1])
    surf = grid.data
    margin = margin_pixels(own, ice)
    raw = surf[None] - beds  # (K, ny, nx)
    mean_raw = surf - beds.mean(axis=0)
    ok = own & np.isfinite(surf) & np.isfinite(mean_raw)
    if not own.any():
        raise _no_pixel_of_its_own(spec, grid)
    if not ok.any():
        raise _no_dem_elevation(spec)
    members = np.where(ok[None] & ~margin[None], np.clip(raw, 0, None), 0.0)
    thick = np.where(ok & ~margin, np.clip(mean_raw, 0, None), 0.0)
    return Thickness(grid, ids, own, ice, ok, margin, mean_raw, float((mean_raw[ok] < 0).mean()), thick, members,
                     sigma)


def apply_physics(spec: GlacierSpec, ctx: RegionContext, th: Thickness) -> None:
    """Refine the ensemble mean once; members keep their spread around it (shifted by the
    same correction), so thickness_std stays the model's spread. Nothing without physics."""
    if ctx.config.physics is None:
        return
    aux, ok = ctx.aux, th.ok
    ref = refine_window(th.grid, th.grid.data - th.mean_raw, ok, th.ice, ctx.config.physics,
                        term_type=spec.term_type,
                        velocity=(aux_raster(aux["vx"]), aux_raster(aux["vy"])) if "vx" in aux else None,
                        smb=aux_raster(aux["smb"]) if "smb" in aux else None, sigma=th.sigma)
    thick_ref = np.where(ok, np.nan_to_num(ref.thickness), 0.0)
    members = np.where(ok[None], np.clip(th.members + (thick_ref - th.thick)[None], 0, None), 0.0)
    members[:, (thick_ref == 0) & th.margin] = 0.0
    th.members, th.thick = members, thick_ref
    th.extra.update(physics_terms="+".join(ref.terms), physics_skipped="+".join(ref.skipped),
                    physics_seconds=ref.seconds, physics_iterations=ref.iterations)


def apply_calibration(ctx: RegionContext, predictor: ThicknessPredictor, th: Thickness) -> None:
    """``thickness_std`` and ``volume_std_km3``: calibrated (when the model has a calibration and
    ``calibrate`` is on; it also corrects the thickness), the model's sigma, or the members' spread."""
    ok, area_px = th.ok, th.grid.pixel_area_m2
    cal = getattr(predictor, "calibration", None) if ctx.config.calibrate else None
    if cal is not None:
        base_sigma = th.sigma if th.sigma is not None else th.members.std(axis=0)
        # the latitude costs a CRS transform per glacier: only when the interval step uses it
        latitude = mask_latitude(th.grid, ok) if cal.widens_with_distance else float("nan")
        mu_c, s_c = cal.apply_window(th.grid.data, labels_on_ice(th.ids, th.ice), th.grid.res[0], th.thick,
                                     base_sigma, own=ok, latitude_deg=latitude)
        mu_c = np.where(ok & (th.thick > 0), np.nan_to_num(mu_c), 0.0)
        th.members = np.where(ok[None], np.clip(th.members + (mu_c - th.thick)[None], 0, None), 0.0)
        th.thick, th.spread = mu_c, np.where(ok & (mu_c > 0), np.nan_to_num(s_c), 0.0)
        th.volume_std = float(cal.volume_std_km3(th.spread[ok], area_px))
        th.extra["calibrated"] = cal.name
    elif th.sigma is not None:  # the model's own 1-sigma; errors within a glacier add up (fully correlated)
        th.spread = np.where(ok & (th.thick > 0), np.nan_to_num(th.sigma), 0.0)
        th.volume_std = float(th.spread.sum() * area_px / 1e9)
    else:  # inpainters: the ensemble's spread
        th.spread = th.members.std(axis=0)
        th.volume_std = float((th.members.sum(axis=(1, 2)) * area_px / 1e9).std())


def write_thickness(gdir: GlacierDir, win: Window, th: Thickness) -> Path:
    """The glacier's result GeoTIFF (thickness, thickness_std) on its box of the DEM grid."""
    thick_map = np.where(th.ok, th.thick, np.nan).astype(np.float32)
    std_map = np.where(th.ok, th.spread, np.nan).astype(np.float32)
    return write_glacier_result(gdir.get_filepath("thickness"), win.w0, win.own0, thick_map, std_map,
                                fine=win.ww if win.fine else None, tags={"rgi_id": gdir.rgi_id})


def write_bands(gdir: GlacierDir, th: Thickness, band_m: float) -> Path:
    """The glacier's elevation-band table (:func:`~glacierbed.pipeline.outputs.elevation_bands`) on the grid its
    volume is computed on, so the bands' volumes add up to the glacier's."""
    bands = elevation_bands(th.grid.data, th.thick, th.ok, th.grid.pixel_area_m2, band_m, th.spread)
    path = gdir.get_filepath("elevation_bands")
    with replacing(path) as tmp:
        bands.to_csv(tmp, index=False)
    return path


def glacier_record(spec: GlacierSpec, win: Window, th: Thickness, info: Mapping[str, Any]) -> dict[str, Any]:
    """The glacier's row: volume = sum(thickness) x pixel area, its std, statistics, the plan."""
    ok, area_px = th.ok, th.grid.pixel_area_m2
    n_ok, n_own = int(ok.sum()), int(th.own.sum())
    return dict(
        volume_km3=float(th.thick.sum() * area_px / 1e9), volume_std_km3=th.volume_std,
        mean_thickness_m=float(th.thick[ok].mean()), max_thickness_m=float(th.thick[ok].max()),
        neg_fraction=th.neg_fraction, resolution_mode=win.plan.mode,
        partial=bool(spec.outside_fraction > 0.001 or n_ok < n_own), working_resolution_m=float(win.plan.resolution_m),
        n_pixels=n_ok, pixel_area_m2=float(area_px), resampling=win.plan.resampling,
        outside_fraction=1.0 - (1.0 - spec.outside_fraction) * n_ok / max(n_own, 1), **info, **th.extra,
        **surface_attributes(th),
    )


#: the glacier attributes of its row (:mod:`glacierbed.data.attributes`; the outline's area is ``area_km2`` already)
ROW_ATTRIBUTES = ("z_min_m", "z_max_m", "z_median_m", "slope_deg", "aspect_deg", "hypsometric_index", "latitude_deg")


def surface_attributes(th: Thickness) -> dict[str, float]:
    """Elevations, mean slope, aspect, hypsometric index and latitude of the glacier's surface on the pixels its
    volume is computed on: what says which kind of glacier it is (``caution`` in glaciers.csv)."""
    attrs = attributes_of_mask(th.grid.data, th.ok, th.grid.res[0], mask_latitude(th.grid, th.ok))
    return {k: attrs[k] for k in ROW_ATTRIBUTES}


def _read_result(files: Mapping[str, Path]) -> None:
    """Read a stored result back (resume check): it must open as the 2-band GeoTIFF."""
    read_glacier_result(files["thickness"])


@glacier_task("estimate", writes=("thickness", "elevation_bands"), read=_read_result)
def estimate_glacier(gdir: GlacierDir, spec: GlacierSpec, ctx: RegionContext) -> dict[str, Any]:
    """Bed, thickness and volume of one glacier; writes its ``thickness.tif`` and ``elevation_bands.csv``; returns its
    record."""
    predictor = _predictor(ctx)
    win = read_glacier_window(spec, ctx, predictor)
    pred = predict_window(spec, ctx, predictor, win)
    th = thickness_from_bed(spec, win, pred)
    apply_physics(spec, ctx, th)
    apply_calibration(ctx, predictor, th)
    write_thickness(gdir, win, th)
    write_bands(gdir, th, ctx.config.elevation_band_m)
    return glacier_record(spec, win, th, pred.info)


__all__ = ["EstimateConfig", "GlacierSpec", "RegionContext", "Thickness", "Window", "apply_calibration", "aux_raster",
           "apply_physics", "estimate_glacier", "glacier_record", "glacier_window", "predict_window", "ROW_ATTRIBUTES",
           "read_glacier_window", "surface_attributes", "thickness_from_bed", "write_bands", "write_thickness"]
