"""Bed, ice thickness and volume of every glacier: one per-glacier task, a region workflow.

Per glacier (:func:`run_glacier`): a DEM window around the glacier with surrounding terrain
(margin ``max(margin_m, margin_fraction * extent)``), every glacier in the window masked
(neighbours too), the hole inpainted (bed), thickness = DEM - bed on this glacier's pixels
only, negatives counted then clipped, 0 forced on the ice margin, volume = sum x pixel area.
The working resolution is chosen per glacier from the inpainter's ``patch_size`` and
``resolution_range_m`` (coarsen, refine for tiny glaciers, or coarse pass + overlapping fine
tiles for the largest) and recorded. An ensemble (flips, mask dilation) gives the spread.

Region (:func:`estimate`): glaciers are independent tasks, run serially in-process or on
Dask; each writes ``glaciers/<rgi_id>/{window.npz,result.json}`` atomically, so a killed run
resumes (a glacier with an ok ``result.json`` of the same config hash is skipped). Then the
mosaics (thickness, bed, thickness_std GeoTIFFs on the DEM grid), tables and maps.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage

from glacierbed.atomic import replacing, write_bytes, write_json
from glacierbed.data.outlines import check_overlap, read_outlines, rasterize_ids
from glacierbed.data.rasters import Raster, local_metric_crs, read_dem
from glacierbed.errors import DataNotFoundError, EmptySelectionError, GlacierbedError
from glacierbed.inpainters import Inpainter, load_inpainter
from glacierbed.glaciology import margin_pixels, sea_level_equivalent_mm
from glacierbed.physics import PhysicsConfig, refine_window

log = logging.getLogger(__name__)

#: ensemble members in order: (flipped axes, mask dilation in pixels)
MEMBERS: tuple[tuple[tuple[int, ...], int], ...] = (
    ((), 0), ((0,), 0), ((1,), 0), ((), 1), ((0, 1), 0), ((), 2), ((0,), 1), ((1,), 1),
)

#: columns of glaciers.csv, in order
COLUMNS = ["rgi_id", "name", "area_km2", "volume_km3", "volume_std_km3", "mean_thickness_m",
           "max_thickness_m", "neg_fraction", "status", "working_resolution_m", "seconds",
           "n_pixels", "pixel_area_m2", "resampling", "n_tiles", "outside_fraction", "model"]


@dataclass(frozen=True)
class EstimateConfig:
    """Everything that changes a glacier's result (hashed for resuming)."""

    ensemble: int = 4
    margin_m: float = 1000.0
    margin_fraction: float = 0.5
    #: a glacier with fewer DEM pixels than this is "tiny": worked on a finer grid
    tiny_px: int = 30
    #: pixels a tiny glacier should cover on its finer working grid (bounded by the model's range)
    tiny_target_px: int = 200
    #: a window may exceed ``patch_size`` by this factor before it is coarsened or tiled
    patch_slack: float = 1.15
    #: overlap of fine tiles (fraction of the patch) and width of the coarse-guide band (px)
    tile_overlap: float = 0.25
    tile_band_px: int = 4
    #: physics-informed refinement of the ensemble-mean bed (None = inpainting only);
    #: on by default: it lowers the error on South Glacier and the Ötztal (docs/physics.md)
    physics: PhysicsConfig | None = field(default_factory=PhysicsConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.ensemble <= len(MEMBERS):
            raise ValueError(f"ensemble must be 1..{len(MEMBERS)}, got {self.ensemble}")


@dataclass
class EstimateResult:
    """What :func:`estimate` produced: per-glacier table, totals and output paths."""

    glaciers: pd.DataFrame
    summary: dict[str, Any]
    paths: dict[str, Path]
    out_dir: Path


@dataclass
class GlacierTask:
    """One glacier's inputs, small enough to ship to a Dask worker."""

    index: int  # row in the outlines (id value index + 1 in the id rasters)
    rgi_id: str
    name: str
    geometry: Any  # shapely (multi)polygon in the DEM CRS
    window: Raster  # DEM window on the DEM grid
    row0: int  # window offset in the full DEM
    col0: int
    neighbours: gpd.GeoDataFrame  # outlines meeting the window, column ``gid`` = index + 1
    outside_fraction: float  # share of the outline outside the DEM footprint
    config: EstimateConfig
    model_name: str
    config_hash: str
    out_dir: Path
    term_type: Any = None  # RGI TermType (1/2: calving front not forced to zero thickness)
    #: optional physics inputs by name ("vx", "vy", "smb"): file paths
    aux: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def safe_id(rgi_id: str) -> str:
    """A file-system-safe folder name for a glacier id."""
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in rgi_id) or "glacier"


# --------------------------------------------------------------------------------------
# inpainting at the right size: one call, or coarse pass + overlapping fine tiles
# --------------------------------------------------------------------------------------
def _block_reduce(a: np.ndarray, f: int, how: str) -> np.ndarray:
    ny, nx = a.shape
    py, px = (-ny) % f, (-nx) % f
    if how == "any":
        p = np.pad(a, ((0, py), (0, px)), constant_values=False)
        return p.reshape(p.shape[0] // f, f, p.shape[1] // f, f).any(axis=(1, 3))
    p = np.pad(a.astype(np.float64), ((0, py), (0, px)), constant_values=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks -> NaN
        return np.nanmean(p.reshape(p.shape[0] // f, f, p.shape[1] // f, f), axis=(1, 3))


def _upsample(coarse: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a block-reduced array back onto the fine grid."""
    rows = (np.arange(shape[0]) + 0.5) / f - 0.5
    cols = (np.arange(shape[1]) + 0.5) / f - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(coarse, [rr, cc], order=1, mode="nearest")


def _tile_starts(n: int, size: int, stride: int) -> list[int]:
    if n <= size:
        return [0]
    starts = list(range(0, n - size, stride))
    return starts + [n - size]


def inpaint_sized(dem: np.ndarray, hole: np.ndarray, pixel_size_m: float, inpainter: Inpainter,
                  cfg: EstimateConfig) -> tuple[np.ndarray, int]:
    """Inpaint ``hole`` with windows of at most ~``patch_size`` pixels; returns (bed, n_tiles).

    Larger arrays get a coarse pass (block means, whole array in one patch) whose bed
    guides overlapping fine tiles: in each tile, hole pixels within ``tile_band_px`` of an
    inner tile edge take the coarse bed as known values, so every fine hole is closed;
    tiles are blended with linear ramps across the overlaps.
    """
    patch = int(inpainter.patch_size)
    if max(dem.shape) <= patch * cfg.patch_slack:
        return inpainter.inpaint(dem, hole, pixel_size_m).astype(np.float32), 1
    f = int(math.ceil(max(dem.shape) / patch))
    coarse_dem = _block_reduce(dem, f, "mean")
    coarse_hole = _block_reduce(hole, f, "any") | ~np.isfinite(coarse_dem)
    coarse_dem = np.where(np.isfinite(coarse_dem), coarse_dem, np.nanmean(coarse_dem)).astype(np.float32)
    coarse_bed, _ = inpaint_sized(coarse_dem, coarse_hole, pixel_size_m * f, inpainter, cfg)
    guide = _upsample(coarse_bed.astype(np.float64), f, dem.shape)

    overlap = max(int(patch * cfg.tile_overlap), 2 * cfg.tile_band_px + 2)
    band = cfg.tile_band_px
    ny, nx = dem.shape
    acc = np.zeros(dem.shape, np.float64)
    wsum = np.zeros(dem.shape, np.float64)
    n_tiles = 0
    for r0 in _tile_starts(ny, patch, patch - overlap):
        for c0 in _tile_starts(nx, patch, patch - overlap):
            sl = (slice(r0, min(r0 + patch, ny)), slice(c0, min(c0 + patch, nx)))
            d, h = dem[sl].copy(), hole[sl].copy()
            th, tw = d.shape
            # distance (px) from each inner tile edge; window edges are not inner edges
            dr = np.full(th, np.inf)
            dc = np.full(tw, np.inf)
            if r0 > 0:
                dr = np.minimum(dr, np.arange(th))
            if r0 + th < ny:
                dr = np.minimum(dr, np.arange(th)[::-1])
            if c0 > 0:
                dc = np.minimum(dc, np.arange(tw))
            if c0 + tw < nx:
                dc = np.minimum(dc, np.arange(tw)[::-1])
            dist = np.minimum(dr[:, None], dc[None, :])
            in_band = (dist < band) & h
            d[in_band] = guide[sl][in_band]
            h &= ~in_band
            bed = inpainter.inpaint(d.astype(np.float32), h, pixel_size_m).astype(np.float64)
            w = np.clip((dist - band + 1) / max(overlap - band, 1), 1e-3, 1.0)
            acc[sl] += w * bed
            wsum[sl] += w
            n_tiles += 1
    out = np.where(hole, acc / wsum, dem)
    return out.astype(np.float32), n_tiles


# --------------------------------------------------------------------------------------
# one glacier
# --------------------------------------------------------------------------------------
@dataclass
class _Plan:
    resolution_m: float
    mode: str  # "ok", "ok:coarsened", "ok:refined", "ok:tiny", "ok:tiled"
    resampling: str  # "none", "average", "bilinear"


def plan_resolution(dem_res_m: float, window_px: int, glacier_px: int, glacier_area_m2: float,
                    inpainter: Inpainter, cfg: EstimateConfig) -> _Plan:
    """Choose the working resolution of one glacier (see module docstring)."""
    patch = int(inpainter.patch_size)
    rmin, rmax = (float(v) for v in inpainter.resolution_range_m)
    extent_m = window_px * dem_res_m
    if glacier_px < cfg.tiny_px:
        # finer grid so the outline covers ~tiny_target_px pixels, the window still fits one patch
        r = max(math.sqrt(glacier_area_m2 / cfg.tiny_target_px), rmin, extent_m / patch)
        if r < dem_res_m * 0.99:
            return _Plan(r, "ok:tiny", "bilinear")
        return _Plan(dem_res_m, "ok:tiny", "none")
    r = min(max(dem_res_m, rmin), rmax)  # into the inpainter's range first
    if extent_m / r > patch * cfg.patch_slack:
        r = min(max(r, extent_m / patch), rmax)
    if extent_m / r > patch * cfg.patch_slack:
        mode = "ok:tiled"
    elif r > dem_res_m * 1.01:
        mode = "ok:coarsened"
    elif r < dem_res_m * 0.99:
        mode = "ok:refined"
    else:
        return _Plan(dem_res_m, "ok", "none")
    if abs(r - dem_res_m) <= 0.01 * dem_res_m:
        return _Plan(dem_res_m, mode, "none")
    return _Plan(r, mode, "average" if r > dem_res_m else "bilinear")


def _id_grid(neighbours: gpd.GeoDataFrame, grid: Raster, all_touched: bool = False) -> np.ndarray:
    """Glacier ids (``gid``) of the outlines on ``grid``, 0 = no glacier."""
    local = rasterize_ids(neighbours, grid, all_touched=all_touched)
    lut = np.concatenate([[0], neighbours["gid"].to_numpy(dtype=np.int64)])
    return lut[local]


def _nearest_fill(a: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(a)
    if not bad.any():
        return a
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return a[tuple(idx)]


def _ensemble_beds(dem: np.ndarray, ice: np.ndarray, pixel_size_m: float, inpainter: Inpainter,
                   cfg: EstimateConfig) -> tuple[np.ndarray, int]:
    """Beds of the ensemble members (K, ny, nx): flips of window and mask, mask dilation."""
    hole0 = ice | ~np.isfinite(dem)
    dem_f = _nearest_fill(dem).astype(np.float32)
    beds, n_tiles = [], 1
    for axes, dil in MEMBERS[: cfg.ensemble]:
        hole = ndimage.binary_dilation(hole0, iterations=dil) if dil else hole0
        d, h = (np.flip(dem_f, axes).copy(), np.flip(hole, axes).copy()) if axes else (dem_f, hole)
        bed, n_tiles = inpaint_sized(d, h, pixel_size_m, inpainter, cfg)
        beds.append(np.flip(bed, axes) if axes else bed)
    return np.stack(beds), n_tiles


def _sample_on(src: Raster, stack: np.ndarray, dst: Raster, where: np.ndarray) -> np.ndarray:
    """Bilinear values of each layer of ``stack`` (on ``src``'s grid) at ``dst`` pixels ``where``."""
    x, y = dst.xy()
    rr, cc = np.nonzero(where)
    out = np.full((stack.shape[0],) + dst.shape, np.nan, np.float32)
    for k in range(stack.shape[0]):
        out[k][rr, cc] = src.with_data(stack[k]).sample(x[cc], y[rr])
    return out


def run_glacier(task: GlacierTask, inpainter: Inpainter) -> dict[str, Any]:
    """Bed, thickness and volume of one glacier; writes ``window.npz`` then ``result.json``.

    Returns the glacier's record (one row of glaciers.csv). Errors are caught and recorded
    with the glacier id in ``status`` ("error: ..."), so a region run goes on.
    """
    t0 = time.perf_counter()
    gdir = task.out_dir / "glaciers" / safe_id(task.rgi_id)
    rec: dict[str, Any] = dict(
        rgi_id=task.rgi_id, name=task.name, area_km2=task.geometry.area / 1e6, volume_km3=np.nan,
        volume_std_km3=np.nan, mean_thickness_m=np.nan, max_thickness_m=np.nan, neg_fraction=np.nan,
        status="", working_resolution_m=np.nan, seconds=np.nan, n_pixels=0, pixel_area_m2=np.nan,
        resampling="none", n_tiles=0, outside_fraction=task.outside_fraction, model=task.model_name,
        config_hash=task.config_hash, index=task.index,
    )
    try:
        rec.update(_estimate_one(task, inpainter, gdir))
    except GlacierbedError as exc:
        rec["status"] = f"error: {exc}"
        log.error("%s: %s", task.rgi_id, exc)
    except Exception as exc:  # noqa: BLE001 - one glacier's failure must not stop a region
        rec["status"] = f"error: {type(exc).__name__}: {exc}"
        log.exception("%s: failed", task.rgi_id)
    rec["seconds"] = time.perf_counter() - t0
    write_json(gdir / "result.json", rec)
    return rec


def _estimate_one(task: GlacierTask, inpainter: Inpainter, gdir: Path) -> dict[str, Any]:
    cfg, w0 = task.config, task.window
    r0 = w0.res[0]
    ids0 = _id_grid(task.neighbours, w0)
    own0 = ids0 == task.index + 1
    plan = plan_resolution(r0, max(w0.shape), int(own0.sum()), task.geometry.area, inpainter, cfg)
    if plan.resampling == "none":
        ww, idsw = w0, ids0
    else:
        ww = w0.reproject(resolution=plan.resolution_m, resampling=plan.resampling)
        idsw = _id_grid(task.neighbours, ww)
    ownw = idsw == task.index + 1
    if not ownw.any():  # smaller than a pixel even here: take every touched pixel
        ownw = _id_grid(task.neighbours[task.neighbours["gid"] == task.index + 1], ww, all_touched=True) > 0
    icew = (idsw > 0) | ownw
    if plan.resampling == "average":
        # a coarse pixel partly covered by ice holds averaged ice surface: hide it too
        icew |= _id_grid(task.neighbours, ww, all_touched=True) > 0
    beds, n_tiles = _ensemble_beds(ww.data, icew, plan.resolution_m, inpainter, cfg)

    # the grid volumes are computed on: the DEM grid, or the finer grid of a tiny glacier
    if plan.mode == "ok:tiny" and plan.resampling != "none":
        vgrid, own, ice = ww, ownw, icew
    else:
        vgrid, own, ice = w0, own0, ids0 > 0
        if plan.resampling != "none":
            beds = _sample_on(ww, beds, w0, own0)
    surf = vgrid.data
    valid = own & np.isfinite(surf)
    margin = margin_pixels(own, ice)
    raw = surf[None] - beds  # (K, ny, nx)
    mean_raw = surf - beds.mean(axis=0)
    ok = valid & np.isfinite(mean_raw)
    neg_fraction = float((mean_raw[ok] < 0).mean()) if ok.any() else np.nan
    members = np.where(ok[None] & ~margin[None], np.clip(raw, 0, None), 0.0)
    thick = np.where(ok & ~margin, np.clip(mean_raw, 0, None), 0.0)
    extra: dict[str, Any] = {}
    if cfg.physics is not None:
        # refine the ensemble mean once; members keep their spread around it (shifted by the
        # same correction), so thickness_std stays the inpainting's spread
        ref = refine_window(vgrid, surf - mean_raw, ok, ice, cfg.physics, term_type=task.term_type,
                            velocity=(_aux_raster(task.aux["vx"]), _aux_raster(task.aux["vy"]))
                            if "vx" in task.aux else None,
                            smb=_aux_raster(task.aux["smb"]) if "smb" in task.aux else None)
        thick_ref = np.where(ok, np.nan_to_num(ref.thickness), 0.0)
        members = np.where(ok[None], np.clip(members + (thick_ref - thick)[None], 0, None), 0.0)
        members[:, (thick_ref == 0) & margin] = 0.0
        thick = thick_ref
        extra = dict(physics_terms="+".join(ref.terms), physics_skipped="+".join(ref.skipped),
                     physics_seconds=ref.seconds, physics_iterations=ref.iterations)
    area_px = vgrid.pixel_area_m2
    volumes = members.sum(axis=(1, 2)) * area_px / 1e9
    volume = float(thick.sum() * area_px / 1e9)
    n_ok = int(ok.sum())
    if n_ok == 0:
        raise GlacierbedError(f"{task.rgi_id}: no glacier pixel with a valid DEM elevation")
    thick_map = np.where(ok, thick, np.nan).astype(np.float32)
    std_map = np.where(ok, members.std(axis=0), np.nan).astype(np.float32)

    # DEM-grid maps for the mosaics (a tiny glacier's fine grid is sampled back)
    if vgrid is not w0:
        if own0.any():
            thick0, std0 = _sample_on(ww, np.stack([np.nan_to_num(thick_map), np.nan_to_num(std_map)]), w0, own0)
            thick0 = np.where(own0 & np.isfinite(w0.data), thick0, np.nan)
            std0 = np.where(own0 & np.isfinite(w0.data), std0, np.nan)
        else:
            thick0 = std0 = np.full(w0.shape, np.nan, np.float32)
        own_out = own0
    else:
        thick0, std0, own_out = thick_map, std_map, own0
    rows, cols = np.nonzero(own_out)
    if rows.size:
        sl = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        off = (task.row0 + rows.min(), task.col0 + cols.min())
    else:
        sl, off = (slice(0, 0), slice(0, 0)), (task.row0, task.col0)
    buf = io.BytesIO()
    np.savez_compressed(buf, thickness=thick0[sl].astype(np.float32), thickness_std=std0[sl].astype(np.float32),
                        row0=off[0], col0=off[1])
    write_bytes(gdir / "window.npz", buf.getvalue())

    status = plan.mode
    if task.outside_fraction > 0.001 or n_ok < int(own.sum()):
        frac = 1.0 - (1.0 - task.outside_fraction) * n_ok / max(int(own.sum()), 1)
        status = f"partial: {frac:.0%} outside DEM"
    return dict(
        volume_km3=volume, volume_std_km3=float(volumes.std()), mean_thickness_m=float(thick[ok].mean()),
        max_thickness_m=float(thick[ok].max()), neg_fraction=neg_fraction, status=status,
        working_resolution_m=float(plan.resolution_m), n_pixels=n_ok, pixel_area_m2=float(area_px),
        resampling=plan.resampling, n_tiles=int(n_tiles), **extra,
    )


# --------------------------------------------------------------------------------------
# region
# --------------------------------------------------------------------------------------
def _model_label(inpainter: Inpainter) -> str:
    return str(getattr(inpainter, "name", type(inpainter).__name__))


def resolve_model(model: Inpainter | str | os.PathLike | None) -> Inpainter:
    """An inpainter object, or load one; the default network gives a clear error if absent."""
    if model is not None and not isinstance(model, (str, os.PathLike)):
        return model
    try:
        return load_inpainter(model)
    except DataNotFoundError as exc:
        if model is None:
            raise DataNotFoundError(f"{exc}; the shipped network is not available: "
                                    f"use --model biharmonic (or model='biharmonic') for the classical fill") from None
        raise
    except GlacierbedError:
        raise
    except (ImportError, FileNotFoundError, OSError) as exc:
        what = "the shipped network" if model is None else str(model)
        raise DataNotFoundError(f"model {what}: cannot be loaded ({exc}); "
                                f"use --model biharmonic for the classical fill") from exc


@functools.lru_cache(maxsize=8)
def _aux_raster(path: str) -> Raster:
    """A physics input raster (velocity, SMB), read once per worker process."""
    return Raster.from_file(path)


@functools.lru_cache(maxsize=4)
def _worker_inpainter(spec: str | None) -> Inpainter:
    """The model, loaded once per worker process."""
    return resolve_model(spec)


def _run_task_remote(task: GlacierTask, model: Inpainter | str | None) -> dict[str, Any]:
    inpainter = _worker_inpainter(model) if model is None or isinstance(model, str) else model
    return run_glacier(task, inpainter)


def _task_hash(cfg: EstimateConfig, model_name: str, window: Raster, neighbours: gpd.GeoDataFrame, index: int,
               aux: dict[str, str] | None = None, term_type: Any = None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    if cfg.physics is not None:  # physics inputs change the result: name, size and date of each
        for k, v in sorted((aux or {}).items()):
            st = Path(v).stat()
            h.update(f"{k}={Path(v).resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
        h.update(f"term_type={term_type}".encode())
    h.update(model_name.encode())
    h.update(str(index).encode())
    h.update(window.crs.to_wkt().encode())
    h.update(np.asarray(window.transform, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(window.data).tobytes())
    for gid, geom in sorted(zip(neighbours["gid"], neighbours.geometry), key=lambda t: t[0]):
        h.update(str(gid).encode())
        h.update(shapely.to_wkb(geom))
    return h.hexdigest()[:16]


def build_tasks(dem: Raster, outlines: gpd.GeoDataFrame, cfg: EstimateConfig, model_name: str,
                out_dir: Path, select: Sequence[str] | None = None, aux: dict[str, str] | None = None
                ) -> list[GlacierTask]:
    """One task per selected glacier covered (at least partly) by the DEM."""
    aux = dict(aux or {})
    term_col = next((c for c in ("TermType", "TERMTYPE", "term_type") if c in outlines.columns), None)
    g = outlines.reset_index(drop=True).copy()
    g["gid"] = np.arange(1, len(g) + 1)
    footprint = shapely.box(*dem.bounds)
    sel = np.ones(len(g), bool) if select is None else g["rgi_id"].isin(list(select)).to_numpy()
    if not sel.any():
        raise EmptySelectionError(f"none of the requested glaciers ({', '.join(list(select)[:5])}) "
                                  f"is in the outlines {outlines.attrs.get('source', '')}")
    tasks = []
    sindex = g.sindex
    inv = ~dem.transform
    for i in np.flatnonzero(sel):
        geom = g.geometry.iloc[i]
        covered = geom.intersection(footprint).area / geom.area if geom.area > 0 else 0.0
        if covered <= 0:
            continue
        minx, miny, maxx, maxy = geom.bounds
        margin = max(cfg.margin_m, cfg.margin_fraction * max(maxx - minx, maxy - miny))
        box = (minx - margin, miny - margin, maxx + margin, maxy + margin)
        c_a, r_a = inv @ (box[0], box[3])
        c_b, r_b = inv @ (box[2], box[1])
        r0, r1 = sorted((int(math.floor(r_a)), int(math.ceil(r_b))))
        c0, c1 = sorted((int(math.floor(c_a)), int(math.ceil(c_b))))
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, dem.shape[0]), min(c1, dem.shape[1])
        window = dem.window(r0, c0, r1 - r0, c1 - c0)
        near = g.iloc[sindex.query(shapely.box(*window.bounds))]
        near = near[["gid", "rgi_id", "geometry"]].sort_values("gid").reset_index(drop=True)
        term = g[term_col].iloc[i] if term_col else None
        term = None if term is None or pd.isna(term) else int(term)
        tasks.append(GlacierTask(
            index=int(i), rgi_id=str(g["rgi_id"].iloc[i]), name=str(g["name"].iloc[i]).strip(), geometry=geom,
            window=window, row0=r0, col0=c0, neighbours=near, outside_fraction=float(max(0.0, 1.0 - covered)),
            config=cfg, model_name=model_name,
            config_hash=_task_hash(cfg, model_name, window, near, int(i), aux, term),
            out_dir=out_dir, term_type=term, aux=aux,
        ))
    return tasks


def _load_done(task: GlacierTask) -> dict[str, Any] | None:
    """The stored record if this glacier finished ok with the same config hash."""
    path = task.out_dir / "glaciers" / safe_id(task.rgi_id) / "result.json"
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if rec.get("config_hash") != task.config_hash or str(rec.get("status", "")).startswith("error"):
        return None
    if not (path.parent / "window.npz").exists():
        return None
    return rec


def _prepare_dem(dem: Raster | str | os.PathLike | Sequence[str | os.PathLike], resolution: float | None) -> Raster:
    if isinstance(dem, Raster):
        crs = local_metric_crs(dem)
        if crs != dem.crs or (resolution is not None and not np.isclose(resolution, dem.res[0])):
            dem = dem.reproject(crs, resolution)
        return dem
    return read_dem(dem, resolution=resolution)


def _prepare_outlines(outlines: gpd.GeoDataFrame | str | os.PathLike) -> gpd.GeoDataFrame:
    if isinstance(outlines, gpd.GeoDataFrame):
        g = outlines.copy()
        for col, default in (("rgi_id", None), ("name", ""), ("area_km2", np.nan)):
            if col not in g.columns:
                g[col] = [f"glacier-{i:05d}" for i in range(len(g))] if default is None else default
        if len(g) == 0:
            raise EmptySelectionError("the outline GeoDataFrame is empty")
        return g
    return read_outlines(outlines)


def estimate(
    dem: Raster | str | os.PathLike | Sequence[str | os.PathLike],
    outlines: gpd.GeoDataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    model: Inpainter | str | os.PathLike | None = None,
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

    ``dem``: path(s) (mosaicked; geographic DEMs go to local UTM, see :func:`read_dem`) or a
    :class:`Raster`. ``model``: an :class:`Inpainter`, a name ("biharmonic") or weights path;
    ``None`` = the shipped network. ``workers > 1`` runs a local Dask cluster, ``scheduler``
    an existing one (workers must see ``out_dir``). ``select`` limits to some RGI ids (all
    outlines are still masked). ``maps``: ``None`` = overview + per-glacier maps when at most
    ``max_glacier_maps`` glaciers. ``progress(done, total)`` is called as glaciers finish.
    ``velocity`` (vx, vy rasters, m/yr, any CRS) and ``smb`` (m w.e./yr) feed the physics
    refinement (``config.physics``, see :mod:`glacierbed.physics`); ignored without it.
    """
    t_start = time.perf_counter()
    cfg = config or EstimateConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dem_r = _prepare_dem(dem, resolution)
    g = check_overlap(_prepare_outlines(outlines), dem_r)
    inpainter = resolve_model(model)
    model_name = _model_label(inpainter)
    aux = _physics_inputs(cfg, velocity, smb)
    tasks = build_tasks(dem_r, g, cfg, model_name, out, select, aux)
    if not tasks:
        raise EmptySelectionError(f"no selected glacier of {g.attrs.get('source', 'the outlines')} lies on the DEM")
    log.info("%d glaciers, DEM %s at %.1f m, model %s, ensemble %d", len(tasks), dem_r.crs.to_string(),
             dem_r.res[0], model_name, cfg.ensemble)

    records: dict[str, dict[str, Any]] = {}
    todo = []
    for t in tasks:
        rec = _load_done(t)
        if rec is None:
            todo.append(t)
        else:
            records[t.rgi_id] = rec
    if records:
        log.info("resuming: %d of %d glaciers already done", len(records), len(tasks))
    total = len(tasks)
    if progress:
        progress(len(records), total)

    def _done(rec: dict[str, Any]) -> None:
        records[rec["rgi_id"]] = rec
        if progress:
            progress(len(records), total)

    if todo and (scheduler or workers > 1):
        spec = str(model) if isinstance(model, (str, os.PathLike)) else (None if model is None else inpainter)
        _run_dask(todo, spec, workers, scheduler, _done)
    else:
        for t in todo:
            _done(run_glacier(t, inpainter))

    table = pd.DataFrame([records[t.rgi_id] for t in tasks])
    table = table[COLUMNS + [c for c in table.columns if c not in COLUMNS]]
    paths = _assemble(dem_r, g, tasks, table, out)
    summary = _summary(table, model_name, cfg, dem_r, time.perf_counter() - t_start, len(records) - len(todo))
    paths["summary"] = write_json(out / "summary.json", summary)
    if maps is not False:
        from glacierbed.plots import plot_glacier_maps, plot_region_overview

        paths["overview_map"] = plot_region_overview(dem_r, out / "thickness.tif", g, out / "overview.png",
                                                     title=f"Ice thickness ({model_name}), {summary['volume_km3']:.3f} km³")
        if maps or len(tasks) <= max_glacier_maps:
            paths["glacier_maps"] = plot_glacier_maps(dem_r, out / "thickness.tif", g, table, out / "maps")
    return EstimateResult(glaciers=table, summary=summary, paths=paths, out_dir=out)


def _physics_inputs(cfg: EstimateConfig, velocity: tuple[str | os.PathLike, str | os.PathLike] | None,
                    smb: str | os.PathLike | None) -> dict[str, str]:
    """Checked paths of the physics input rasters (empty without physics)."""
    named = {}
    if velocity is not None:
        if len(velocity) != 2:
            raise DataNotFoundError(f"velocity needs two rasters (vx, vy), got {len(velocity)}")
        named.update(vx=velocity[0], vy=velocity[1])
    if smb is not None:
        named["smb"] = smb
    if named and cfg.physics is None:
        log.warning("velocity/SMB rasters given but physics is off: they are not used")
        return {}
    out = {}
    for k, v in named.items():
        path = Path(v)
        if not path.exists():
            raise DataNotFoundError(f"{path}: {k} raster not found")
        Raster.from_file(path)  # fails early with a clear message if unreadable
        out[k] = str(path.resolve())
    return out


def _run_dask(todo: list[GlacierTask], model: Inpainter | str | None, workers: int, scheduler: str | None,
              done: Callable[[dict[str, Any]], None]) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        model_f = client.scatter(model, broadcast=True) if not isinstance(model, (str, type(None))) else model
        # biggest windows first so the long ones do not finish last
        order = sorted(todo, key=lambda t: -t.window.data.size)
        futures = client.map(_run_task_remote, order, model=model_f, pure=False)
        for fut in as_completed(futures):
            done(fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _assemble(dem: Raster, outlines: gpd.GeoDataFrame, tasks: list[GlacierTask], table: pd.DataFrame,
              out: Path) -> dict[str, Path]:
    """Mosaics on the DEM grid and the per-glacier tables."""
    thick = np.full(dem.shape, np.nan, np.float32)
    std = np.full(dem.shape, np.nan, np.float32)
    for t in tasks:
        f = out / "glaciers" / safe_id(t.rgi_id) / "window.npz"
        if not f.exists():
            continue
        with np.load(f) as z:
            a, s = z["thickness"], z["thickness_std"]
            r0, c0 = int(z["row0"]), int(z["col0"])
        sl = (slice(r0, r0 + a.shape[0]), slice(c0, c0 + a.shape[1]))
        m = np.isfinite(a)
        thick[sl][m] = a[m]
        std[sl][m] = s[m]
    bed = np.where(np.isfinite(thick), dem.data - thick, dem.data)
    paths = {
        "thickness": dem.with_data(thick).to_file(out / "thickness.tif"),
        "bed": dem.with_data(bed).to_file(out / "bed.tif"),
        "thickness_std": dem.with_data(std).to_file(out / "thickness_std.tif"),
    }
    with replacing(out / "glaciers.csv") as tmp:
        table.to_csv(tmp, index=False)
    paths["csv"] = out / "glaciers.csv"
    geo = outlines[["rgi_id", "geometry"]].merge(table.drop(columns=["name"]), on="rgi_id", how="inner")
    geo = gpd.GeoDataFrame(geo, geometry="geometry", crs=outlines.crs)
    geo.insert(1, "name", geo["rgi_id"].map(dict(zip(table["rgi_id"], table["name"]))))
    with replacing(out / "glaciers.gpkg", keep_suffix=True) as tmp:  # GDAL wants the .gpkg extension
        geo.to_file(tmp, driver="GPKG", layer="glaciers")
    paths["gpkg"] = out / "glaciers.gpkg"
    return paths


def _summary(table: pd.DataFrame, model_name: str, cfg: EstimateConfig, dem: Raster, seconds: float,
             n_resumed: int) -> dict[str, Any]:
    volume = float(table["volume_km3"].sum(skipna=True))
    status_kind = table["status"].str.split(":").str[0]
    return dict(
        n_glaciers=int(len(table)),
        area_km2=float(table["area_km2"].sum()),
        volume_km3=volume,
        volume_std_km3=float(np.sqrt((table["volume_std_km3"].fillna(0) ** 2).sum())),
        sea_level_equivalent_mm=sea_level_equivalent_mm(volume),
        sle_formula="SLE_mm = V_km3 * 900/1028 / 3.625e8 km2 * 1e6 (ice below sea level not subtracted)",
        counts_by_status={k: int(v) for k, v in table["status"].value_counts().items()},
        counts_by_kind={k: int(v) for k, v in status_kind.value_counts().items()},
        model=model_name,
        config=asdict(cfg),
        dem_crs=dem.crs.to_string(),
        dem_resolution_m=float(dem.res[0]),
        dem_source=dem.source,
        resampling={k: int(v) for k, v in table["resampling"].value_counts().items()},
        working_resolution_m={"min": float(table["working_resolution_m"].min()),
                              "max": float(table["working_resolution_m"].max())},
        n_resumed=int(n_resumed),
        seconds=seconds,
    )
