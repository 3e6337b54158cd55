"""A region of simulated glaciers with a known bed: glacier-free terrain glaciated block by block.

Ground truth at region scale. The tiles (by default the five glacier-free Alpine tiles at
200 m of the data kit) are mosaicked on one grid (:func:`glacierbed.data.rasters.read_dem`)
and each tile is cut into non-overlapping square blocks anchored at its own corner (a block
overlapping one of an earlier tile, holding nodata or with less than ``min_relief_m`` of
relief is skipped). Every block is glaciated by the shallow-ice model in batches
(:func:`glacierbed.simulation.glacier_set.simulate_batches`: parameters drawn per block with the ELA
an upper quantile of its bed, steady state, then a retreat for about half of them; the ice
split into drainage basins of its surface, :func:`~glacierbed.simulation.glacier_set.glacier_labels`),
serially or on a local Dask cluster (:func:`glacierbed.core.parallel.execute`). The model holds a block's outer ring of pixels free of
ice, so no glacier crosses a block edge; the blocks' ice is laid back into the mosaic.

Each glacier of at least ``min_basin_km2`` becomes one outline; smaller ice bodies and ice
thinner than ``ice_min_m`` outside any glacier are removed, so the true thickness is > 0
exactly inside the outlines. Written like a real region, atomically:

* ``dem.tif``: the ice surface, bed + thickness (float32, the tiles' CRS, nodata -9999);
* ``outlines.gpkg``: one (multi)polygon per glacier along pixel edges, RGI-like ids
  ``SIM-<tile>-00001``, columns ``rgi_id``, ``name``, ``area_km2``;
* the truth: ``bed.tif``, ``thickness.tif`` (same grid), ``truth.csv`` (per glacier: area,
  volume, mean/max thickness, block, whether it reaches the block edge, the block's
  parameters) and ``region.json`` (parameters, counts, size distribution, seconds).

Finished batches are kept in ``blocks.parts/`` (``<key>.npz`` and its record ``<key>.json``;
the key hashes their beds, seed and settings), so an interrupted build resumes and a
repeated one only reassembles the mosaic; a truncated or garbled batch file fails its
sha256 and is simulated again (:class:`glacierbed.core.parallel.Checkpoint`).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import rasterio.warp
import shapely
from scipy import ndimage
from shapely.geometry import shape

from glacierbed.core.atomic import replacing, write_json
from glacierbed.core.config import YamlConfig, config_to_dict
from glacierbed.data import registry
from glacierbed.data.rasters import Raster, read_dem
from glacierbed.core.errors import DataNotFoundError, EmptySelectionError
from glacierbed.core.parallel import stop_when_disk_full
from glacierbed.simulation.ice_flow import ParamRanges, SimulationConfig
from glacierbed.simulation.glacier_set import SimulatedSetConfig, simulate_batches

log = logging.getLogger(__name__)

#: the glacier-free Alpine tiles of the data kit (``alps-topography-200m/topg-<name>.tif``)
ALPS_TILES = ("jura", "linth", "lyon", "rhine", "ticino")

#: size classes (km2) of the region record, as in inventory statistics
SIZE_CLASSES_KM2 = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0, np.inf)


@dataclass(frozen=True)
class RegionConfig(YamlConfig):
    """How a simulated region is made (recorded in ``region.json``; YAML via :meth:`from_yaml`)."""

    pixel_size_m: float = 200.0
    block: int = 128  #: block side, pixels; each block is one simulated window
    min_relief_m: float = 1000.0  #: flatter blocks are skipped (the ELA is a quantile of each block's bed)
    batch: int = 8  #: blocks simulated together
    min_basin_km2: float = 0.1  #: smaller drainage basins join a neighbour; smaller ice bodies are removed
    ice_min_m: float = 0.5  #: thinner ice belongs to no glacier (and is removed)
    #: ELA quantile 0.87-0.97 of each block's bed: about 5-20 % of a block is ice (docs/simulate.md)
    ranges: ParamRanges = field(default_factory=lambda: ParamRanges(ela_quantile=(0.87, 0.97)))
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [f"{k} = {getattr(self, k)} (needs {need})" for k, ok, need in (
            ("pixel_size_m", self.pixel_size_m > 0, "> 0"), ("block", self.block >= 16, ">= 16"),
            ("batch", self.batch >= 1, ">= 1"), ("min_basin_km2", self.min_basin_km2 >= 0, ">= 0"),
            ("ice_min_m", self.ice_min_m >= 0, ">= 0"), ("min_relief_m", self.min_relief_m >= 0, ">= 0")) if not ok]
        if bad:
            raise ValueError(f"invalid RegionConfig: {'; '.join(bad)}")

    def simulated_set(self) -> SimulatedSetConfig:
        """The batch settings of :mod:`glacierbed.simulation.glacier_set` (every simulated block is kept)."""
        return SimulatedSetConfig(sources=(), patch=self.block, min_relief_m=self.min_relief_m, min_ice_fraction=0.0,
                                  max_ice_fraction=1.0, batch=self.batch, min_basin_km2=self.min_basin_km2,
                                  ice_min_m=self.ice_min_m, ranges=self.ranges, simulation=self.simulation,
                                  seed=self.seed)


@dataclass(frozen=True)
class Tile:
    """A terrain tile to glaciate: its short name (used in the glacier ids) and file."""

    name: str
    path: Path


@dataclass
class RegionResult:
    """What :func:`build_region` wrote: paths by name (dem, bed, thickness, outlines, truth, record)."""

    paths: dict[str, Path]
    summary: dict[str, Any]
    out_dir: Path


def resolve_tiles(tiles: Sequence[str | os.PathLike | Tile]) -> list[Tile]:
    """Tiles by Alpine tile name (``rhine``, resolved through the data registry) or DEM path."""
    out: list[Tile] = []
    for t in tiles:
        if isinstance(t, Tile):
            out.append(t)
        elif str(t) in ALPS_TILES:
            out.append(Tile(str(t), registry.get_file(f"alps-topography-200m/topg-{t}.tif")))
        elif Path(t).is_file():
            out.append(Tile(Path(t).stem.removeprefix("topg-"), Path(t)))
        else:
            raise DataNotFoundError(f"tile {str(t)!r}: neither an Alpine tile ({', '.join(ALPS_TILES)}) "
                                    f"nor an existing DEM file")
    names = [t.name for t in out]
    if not out:
        raise EmptySelectionError("no tile given")
    if len(set(names)) < len(names):
        raise ValueError(f"tile names must be unique (they go into the glacier ids), got {names}")
    return out


def _tile_blocks(dem: Raster, tile: Tile, block: int) -> list[tuple[int, int]]:
    """(row0, col0) on the mosaic of the blocks that fit inside one tile, anchored at its corner."""
    with rasterio.open(tile.path) as src:
        left, bottom, right, top = rasterio.warp.transform_bounds(src.crs, dem.crs, *src.bounds)
    inv = ~dem.transform
    c0, r0 = (int(np.ceil(v - 1e-6)) for v in inv @ (left, top))
    c1, r1 = (int(np.floor(v + 1e-6)) for v in inv @ (right, bottom))
    r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, dem.shape[0]), min(c1, dem.shape[1])
    return [(r, c) for r in range(r0, r1 - block + 1, block) for c in range(c0, c1 - block + 1, block)]


def select_blocks(dem: Raster, tiles: Sequence[Tile], cfg: RegionConfig) -> tuple[list[tuple[str, int, int]], Counter]:
    """Blocks to glaciate as (tile, row0, col0), and why the others were skipped."""
    b = cfg.block
    taken = np.zeros(dem.shape, bool)
    chosen, skipped = [], Counter()
    for tile in tiles:
        for r, c in _tile_blocks(dem, tile, b):
            win = dem.data[r:r + b, c:c + b]
            if taken[r:r + b, c:c + b].any():
                skipped["overlaps a block of an earlier tile"] += 1
            elif not np.isfinite(win).all():
                skipped["nodata"] += 1
            elif float(win.max() - win.min()) < cfg.min_relief_m:
                skipped[f"relief below {cfg.min_relief_m:g} m"] += 1
            else:
                taken[r:r + b, c:c + b] = True
                chosen.append((tile.name, r, c))
    return chosen, skipped


def block_glaciers(thickness: np.ndarray, ids: np.ndarray, pixel_size_m: float, min_km2: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A block's glaciers numbered 1..n (glaciers under ``min_km2`` dropped) and its thickness,
    0 outside them (thin ice outside any glacier and the dropped ice bodies removed)."""
    sizes = np.bincount(ids.ravel().astype(np.int64))
    keep = sizes * pixel_size_m**2 >= min_km2 * 1e6
    keep[0] = False
    lut = np.zeros(sizes.size, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    labels = lut[ids]
    return labels, np.where(labels > 0, thickness, 0.0).astype(np.float32)


def label_polygons(labels: np.ndarray, transform: rasterio.Affine) -> dict[int, Any]:
    """One shapely (multi)polygon per label > 0 along pixel edges, so pixel centres inside
    it are exactly that label's pixels (4-connected pieces joined)."""
    pieces: dict[int, list] = {}
    for geom, value in rasterio.features.shapes(labels, mask=labels > 0, connectivity=4, transform=transform):
        pieces.setdefault(int(value), []).append(shape(geom))
    return {k: v[0] if len(v) == 1 else shapely.union_all(v) for k, v in pieces.items()}


def _size_distribution(area_km2: np.ndarray) -> dict[str, Any]:
    q = {f"p{int(p * 100):02d}": float(np.quantile(area_km2, p)) for p in (0.1, 0.25, 0.5, 0.75, 0.9)}
    classes = []
    for lo, hi in zip(SIZE_CLASSES_KM2[:-1], SIZE_CLASSES_KM2[1:]):
        m = (area_km2 >= lo) & (area_km2 < hi)
        classes.append({"from_km2": lo, "to_km2": None if np.isinf(hi) else hi, "n": int(m.sum()),
                        "area_km2": float(area_km2[m].sum())})
    return {"mean_km2": float(area_km2.mean()), **q, "max_km2": float(area_km2.max()), "classes": classes}


def _batches(dem: Raster, blocks: list[tuple[str, int, int]], cfg: RegionConfig) -> list[tuple]:
    """The simulation jobs (beds, pixel size, seed, label, splits) of the blocks, ``batch`` at a time."""
    b, rng = cfg.block, np.random.default_rng(cfg.seed)
    jobs = []
    for i in range(0, len(blocks), cfg.batch):
        chunk = blocks[i:i + cfg.batch]
        beds = np.stack([dem.data[r:r + b, c:c + b] for _, r, c in chunk])
        jobs.append((beds, float(dem.res[0]), int(rng.integers(2**31)), ";".join(f"{t}:{r}:{c}" for t, r, c in chunk),
                     ""))
    return jobs


def _truth_rows(tile: str, r: int, c: int, labels: np.ndarray, hb: np.ndarray, px: float, b: int, p: dict,
                first: int) -> list[dict[str, Any]]:
    """One truth row per glacier of a block (numbered from ``first`` in its tile)."""
    edge = np.unique(np.concatenate([labels[1], labels[-2], labels[:, 1], labels[:, -2]]))
    n = int(labels.max())
    n_px = np.bincount(labels.ravel(), minlength=n + 1)
    vol = np.bincount(labels.ravel(), weights=hb.ravel().astype(np.float64), minlength=n + 1)
    h_max = ndimage.maximum(hb, labels, np.arange(n + 1)) if n else []
    return [dict(rgi_id=f"SIM-{tile}-{first + k - 1:05d}", tile=tile, block_row=r // b, block_col=c // b,
                 area_km2=n_px[k] * px**2 / 1e6, volume_km3=vol[k] * px**2 / 1e9, mean_thickness_m=vol[k] / n_px[k],
                 max_thickness_m=float(h_max[k]), reaches_block_edge=bool(k in edge), n_pixels=int(n_px[k]),
                 ela_m=p["ela_m"], glen_a=p["glen_a"], sliding_fraction=p["sliding_fraction"],
                 retreat_years=p["retreat_years"], steady=p["steady"]) for k in range(1, n + 1)]


def _assemble(dem: Raster, blocks: list[tuple[str, int, int]], results: list[dict], cfg: RegionConfig
              ) -> tuple[np.ndarray, pd.DataFrame, list, Counter]:
    """The blocks' ice laid into the mosaic: thickness, truth table, outlines, glaciers per tile."""
    b, px = cfg.block, float(dem.res[0])
    thick = np.where(np.isfinite(dem.data), 0.0, np.nan).astype(np.float32)
    rows, geoms = [], []
    per_tile: Counter = Counter()
    for (tile, r, c), h, ids, p in zip(blocks, (h for res in results for h in res["thickness"]),
                                       (g for res in results for g in res["ids"]),
                                       (p for res in results for p in res["params"])):
        labels, hb = block_glaciers(h, ids, px, cfg.min_basin_km2)
        thick[r:r + b, c:c + b] = hb
        polys = label_polygons(labels, dem.transform @ rasterio.Affine.translation(c, r))
        rows += _truth_rows(tile, r, c, labels, hb, px, b, p, per_tile[tile] + 1)
        geoms += [polys[k] for k in range(1, int(labels.max()) + 1)]
        per_tile[tile] += int(labels.max())
    if not rows:
        raise EmptySelectionError(f"the {len(blocks)} simulated blocks hold no glacier of at least "
                                  f"{cfg.min_basin_km2} km2; lower ranges.ela_quantile or min_basin_km2")
    return thick, pd.DataFrame(rows), geoms, +per_tile


def _summary(cfg: RegionConfig, tiles: list[Tile], dem: Raster, truth: pd.DataFrame, per_tile: Counter,
             n_blocks: int, skipped: Counter, results: list[dict]) -> dict[str, Any]:
    """The region record (``region.json``) without its timings."""
    px, b = float(dem.res[0]), cfg.block
    params = [p for res in results for p in res["params"]]
    return {
        "config": config_to_dict(cfg), "tiles": [{"name": t.name, "path": str(t.path)} for t in tiles],
        "crs": dem.crs.to_string(), "pixel_size_m": px, "shape": list(dem.shape), "bounds": list(dem.bounds),
        "terrain_km2": float(np.isfinite(dem.data).sum() * px**2 / 1e6),
        "blocks": {"simulated": n_blocks, "skipped": dict(skipped), "batches": len(results),
                   "batches_resumed": int(sum(r["resumed"] for r in results))},
        "n_glaciers": len(truth), "glaciers_per_tile": dict(per_tile),
        "glacier_area_km2": float(truth["area_km2"].sum()), "volume_km3": float(truth["volume_km3"].sum()),
        "ice_fraction_of_blocks": float(truth["area_km2"].sum() / (n_blocks * b * b * px**2 / 1e6)),
        "n_reaching_block_edge": int(truth["reaches_block_edge"].sum()),
        "steady_share": float(np.mean([p["steady"] for p in params])),
        "edge_share_median": float(np.nanmedian([p["edge_share"] for p in params])),
        "size_distribution": _size_distribution(truth["area_km2"].to_numpy()),
        "mean_thickness_m": float(truth["volume_km3"].sum() * 1e3 / truth["area_km2"].sum()),
    }


def build_region(tiles: Sequence[str | os.PathLike | Tile], out_dir: str | os.PathLike, config: RegionConfig | None = None,
                 *, workers: int = 1, progress: Callable[[int, int], None] | None = None,
                 **overrides: Any) -> RegionResult:
    """Glaciate ``tiles`` block by block and write a region with a known bed into ``out_dir``.

    ``config`` (default :class:`RegionConfig`) with ``overrides`` of its fields (e.g.
    ``block=64, seed=1``); ``workers > 1`` simulates the batches on a local Dask cluster;
    ``progress(done, total)`` as batches finish. See the module doc for what is written.
    A full disk raises :class:`~glacierbed.core.parallel.DiskFullError` naming ``out_dir``.
    """
    t0 = time.perf_counter()
    cfg = replace(config or RegionConfig(), **overrides)
    out = Path(out_dir)
    tile_list = resolve_tiles(tiles)
    dem = read_dem([t.path for t in tile_list], resolution=cfg.pixel_size_m)
    blocks, skipped = select_blocks(dem, tile_list, cfg)
    if not blocks:
        raise EmptySelectionError(f"no block of {cfg.block} px in tiles {[t.name for t in tile_list]} can be "
                                  f"glaciated; skipped: {dict(skipped) or 'every tile is smaller than a block'}")
    jobs = _batches(dem, blocks, cfg)
    log.info("%d blocks in %d batches, skipped %s", len(blocks), len(jobs), dict(skipped))
    with stop_when_disk_full(out):
        t_sim = time.perf_counter()
        results = simulate_batches(jobs, cfg.simulated_set(), out / "blocks.parts", workers, progress)
        sim_seconds = time.perf_counter() - t_sim
        thick, truth, geoms, per_tile = _assemble(dem, blocks, results, cfg)
        paths = _write(out, dem, thick, truth, geoms)
        summary = {**_summary(cfg, tile_list, dem, truth, per_tile, len(blocks), skipped, results),
                   "seconds_simulation": round(sim_seconds, 1), "seconds": round(time.perf_counter() - t0, 1)}
        paths["record"] = write_json(out / "region.json", summary)
    log.info("%d glaciers, %.0f km2 of ice, %.1f km3 in %.0f s (%d of %d batches resumed)", len(truth),
             summary["glacier_area_km2"], summary["volume_km3"], summary["seconds"],
             summary["blocks"]["batches_resumed"], len(jobs))
    return RegionResult(paths, summary, out)


def _write(out: Path, dem: Raster, thick: np.ndarray, truth: pd.DataFrame, geoms: list) -> dict[str, Path]:
    """The rasters (dem = bed + thickness, float32), outlines and the truth table, atomically."""
    import geopandas as gpd

    paths = {"bed": dem.to_file(out / "bed.tif"), "thickness": dem.with_data(thick).to_file(out / "thickness.tif"),
             "dem": dem.with_data(dem.data + thick).to_file(out / "dem.tif")}
    names = [f"simulated glacier ({t}, block {r},{c})" for t, r, c in
             zip(truth["tile"], truth["block_row"], truth["block_col"])]
    g = gpd.GeoDataFrame({"rgi_id": truth["rgi_id"], "name": names, "area_km2": truth["area_km2"]},
                         geometry=geoms, crs=dem.crs)
    with replacing(out / "outlines.gpkg", keep_suffix=True) as tmp:  # GDAL wants the .gpkg extension
        g.to_file(tmp, driver="GPKG", layer="outlines")
    with replacing(out / "truth.csv") as tmp:
        truth.to_csv(tmp, index=False)
    return {**paths, "outlines": out / "outlines.gpkg", "truth": out / "truth.csv"}


__all__ = ["ALPS_TILES", "RegionConfig", "RegionResult", "Tile", "block_glaciers", "build_region",
           "label_polygons", "resolve_tiles", "select_blocks"]
