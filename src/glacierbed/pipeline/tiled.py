"""A region on DEM tiles: one spec per glacier with its own grid and tiles; no region-wide DEM.

For a folder of tiles, several DEM files or a VRT (:func:`glacierbed.data.tiles.is_tiled`),
:func:`tiled_specs` gives each glacier of the outlines the working grid of the tile that
covers most of it (:func:`~glacierbed.data.tiles.work_grid`), a window (its bounding box
plus the margin, cut to the extent of the tiles that meet it) and the list of those tiles;
the task reads its window lazily from them (:func:`~glacierbed.data.tiles.read_tiles_window`).
A glacier that no tile covers gets no task but a row with status ``no_dem`` naming it.
"""

from __future__ import annotations

import collections
from typing import Any, Sequence

import geopandas as gpd
import numpy as np
import shapely

from glacierbed.core.atomic import file_sha256
from glacierbed.core.errors import EmptySelectionError, NoOverlapError
from glacierbed.data.outlines import term_type
from glacierbed.data.tiles import INDEX_CRS, WorkGrid, primary_tile, tiles_extent, tiles_meeting, work_grid
from glacierbed.pipeline.glacier import EstimateConfig, GlacierSpec

#: status of a glacier without DEM (no task is run for it)
NO_DEM = "no_dem"


def _spec(g_ll: gpd.GeoDataFrame, g_crs: gpd.GeoDataFrame, i: int, index: gpd.GeoDataFrame, grid: WorkGrid,
          first: int, cfg: EstimateConfig) -> GlacierSpec:
    """The spec of glacier ``i`` on ``grid`` (``g_crs``: the outlines in the grid's CRS)."""
    geom = g_crs.geometry.iloc[i]
    minx, miny, maxx, maxy = geom.bounds
    margin = max(cfg.margin_m, cfg.margin_fraction * max(maxx - minx, maxy - miny))
    box = (minx - margin, miny - margin, maxx + margin, maxy + margin)
    rows = tiles_meeting(index, grid, box)
    rows = [first] + [r for r in rows if r != first]
    ext = tiles_extent(index, rows, grid.crs)
    box = (max(box[0], ext[0]), max(box[1], ext[1]), min(box[2], ext[2]), min(box[3], ext[3]))
    outline_ll = g_ll.geometry.iloc[i]
    covered = shapely.union_all(index.geometry.values[rows]).intersection(outline_ll).area / outline_ll.area
    near = g_crs.iloc[g_crs.sindex.query(shapely.box(*box))][["gid", "rgi_id", "geometry"]]
    return GlacierSpec(gid=int(i) + 1, rgi_id=str(g_ll["rgi_id"].iloc[i]), name=str(g_ll["name"].iloc[i]).strip(),
                       geometry=geom, bounds=box, neighbours=near.sort_values("gid").reset_index(drop=True),
                       outside_fraction=float(np.clip(1.0 - covered, 0.0, 1.0)), term_type=term_type(g_ll, i),
                       grid=grid, tiles=tuple(index["path"].iloc[r] for r in rows))


def tiled_specs(index: gpd.GeoDataFrame, outlines: gpd.GeoDataFrame, cfg: EstimateConfig,
                select: Sequence[str] | None = None) -> tuple[list[GlacierSpec], list[dict[str, Any]]]:
    """Specs of the selected glaciers some tile covers, and rows (``no_dem``) of those none covers."""
    g = outlines.to_crs(INDEX_CRS).reset_index(drop=True).copy()
    g["gid"] = np.arange(1, len(g) + 1)
    sel = np.ones(len(g), bool) if select is None else g["rgi_id"].isin(list(select)).to_numpy()
    if not sel.any():
        raise EmptySelectionError(f"none of the requested glaciers ({', '.join(list(select)[:5])}) "
                                  f"is in the outlines {outlines.attrs.get('source', '')}")
    first = {int(i): primary_tile(index, g.geometry.iloc[i]) for i in np.flatnonzero(sel)}
    grids = {t: work_grid(index.iloc[t], g.geometry.iloc[i]) for i, t in first.items() if t is not None}
    by_crs: dict[str, list[int]] = collections.defaultdict(list)
    for i, t in first.items():
        if t is not None:
            by_crs[grids[t].crs].append(i)
    specs = []
    for crs, members in by_crs.items():
        g_crs = g.to_crs(crs)
        specs += [_spec(g, g_crs, i, index, grids[first[i]], first[i], cfg) for i in members]
    if not specs:
        raise NoOverlapError(f"{outlines.attrs.get('source', 'outlines')}: none of the selected outlines meets "
                             f"any of the {len(index)} DEM tiles")
    specs.sort(key=lambda s: s.gid)
    missing = [no_dem_row(g, i, len(index)) for i, t in first.items() if t is None]
    return specs, missing


def no_dem_row(g: gpd.GeoDataFrame, i: int, n_tiles: int | None = None) -> dict[str, Any]:
    """The table row of glacier ``i`` of the outlines ``g`` that no DEM covers (status ``no_dem``)."""
    rgi_id = str(g["rgi_id"].iloc[i])
    where = f"none of the {n_tiles} DEM tiles" if n_tiles is not None else "the DEM does not"
    return {"rgi_id": rgi_id, "name": str(g["name"].iloc[i]).strip(), "area_km2": float(g["area_km2"].iloc[i]),
            "status": NO_DEM, "outside_fraction": 1.0, "gid": int(i) + 1,
            "message": f"{rgi_id}: no DEM here ({where} cover its outline); not estimated"}


def tiles_sha(specs: Sequence[GlacierSpec]) -> dict[str, str]:
    """sha256 of every tile the specs read (each file hashed once)."""
    paths = sorted({p for s in specs for p in s.tiles})
    return {p: file_sha256(p) for p in paths}


def spec_dem_sha(spec: GlacierSpec, shas: dict[str, str]) -> str:
    """What identifies a glacier's DEM input: its grid and its tiles' sha256, in reading order."""
    g = spec.grid
    return f"{g.crs}|{g.res}|{g.x0}|{g.y0}|" + ",".join(shas[p] for p in spec.tiles)


def mosaic_grid(specs: Sequence[GlacierSpec]) -> tuple[str, float, float, float]:
    """The region mosaic's grid: the CRS most glaciers work in, its commonest pixel size and origin."""
    crs = collections.Counter(s.grid.crs for s in specs).most_common(1)[0][0]
    res = collections.Counter(s.grid.res for s in specs if s.grid.crs == crs).most_common(1)[0][0]
    ref = next(s.grid for s in specs if s.grid.crs == crs and s.grid.res == res)
    return crs, res, ref.x0 % res, ref.y0 % res


__all__ = ["NO_DEM", "mosaic_grid", "no_dem_row", "spec_dem_sha", "tiled_specs", "tiles_sha"]
