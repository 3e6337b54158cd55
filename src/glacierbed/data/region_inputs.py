"""Inputs of a run from RGI ids, an RGI region or a lon/lat box: outlines and the DEM tiles they need.

:func:`fetch_region_inputs` downloads (or reuses from the cache, checked by sha256, see
:mod:`glacierbed.data.sources`) the RGI region file(s), selects the glaciers, writes them
with their neighbours to a GeoPackage, and downloads exactly the Copernicus tiles the
selected glaciers and their margins cover. A tile a selected glacier lies on must exist
(else :class:`DataNotFoundError` naming it); a tile only the margin reaches may be absent
(ocean tiles are not in the bucket) and is then skipped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from glacierbed.core.atomic import replacing
from glacierbed.core.errors import DataNotFoundError, EmptySelectionError
from glacierbed.data.outlines import read_outlines
from glacierbed.data.sources import (DEM_SOURCES, DemSource, copernicus_tile_name, get_dem_tile, get_dem_tile_if_any,
                                     get_rgi6_regions_file, get_rgi_region, tile_corners)

log = logging.getLogger(__name__)

#: RGI 5/6 ids (``RGI60-11.00897``) and RGI 7 ids (``RGI2000-v7.0-G-11-00001``)
_RGI_ID = re.compile(r"^RGI(?:(?P<v6>[56])0-(?P<r6>\d{2})\.\d{5}|2000-v7\.0-[GC]-(?P<r7>\d{2})-\d{5})")
_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class RegionInputs:
    """What :func:`fetch_region_inputs` resolved: DEM tile paths, the outlines file, the selection."""

    dem: list[Path]
    outlines: Path
    rgi_ids: list[str]
    tiles: list[str]
    regions: list[int]


def rgi_region_number(rgi_id: str) -> int | None:
    """First-order RGI region of an RGI 5/6/7 id (``RGI60-11.00897``, ``RGI2000-v7.0-G-11-00001`` -> 11); None when
    it is no RGI id."""
    m = _RGI_ID.match(str(rgi_id).strip())
    return None if m is None else int(m["r6"] or m["r7"])


def parse_rgi_id(rgi_id: str) -> tuple[int, int]:
    """(RGI version, first-order region) of an RGI id; RGI 5 ids count as 6 (same numbering)."""
    m = _RGI_ID.match(rgi_id.strip())
    if m is None:
        raise DataNotFoundError(f"{rgi_id!r} is not an RGI id (like RGI60-11.00897 or RGI2000-v7.0-G-11-00001)")
    return (6, int(m["r6"])) if m["v6"] else (7, int(m["r7"]))


def regions_in_bbox(bbox: Sequence[float]) -> list[int]:
    """First-order RGI regions whose polygon (RGI 6.0 regions file) meets a (west, south, east, north) box."""
    path = get_rgi6_regions_file()
    regions = gpd.read_file(path, bbox=tuple(bbox))
    col = next((c for c in ("RGI_CODE", "o1region") if c in regions.columns), None)
    if col is None and not regions.empty:
        raise DataNotFoundError(f"{path}: no RGI_CODE column, cannot tell the regions of bbox {tuple(bbox)}")
    found = sorted({int(v) for v in regions.loc[regions.intersects(shapely.box(*bbox)), col]}) if col else []
    if not found:
        raise EmptySelectionError(f"bbox {tuple(bbox)}: in no RGI region")
    return found


def _regions(region: int | None, ids: Sequence[str], bbox: Sequence[float] | None, version: int) -> tuple[list[int], int]:
    """Regions to read and the RGI version (from the ids when given)."""
    if ids:
        parsed = {parse_rgi_id(i) for i in ids}
        versions = {v for v, _ in parsed}
        if len(versions) > 1:
            raise DataNotFoundError("RGI ids of versions 6 and 7 mixed: use one version")
        return sorted({r for _, r in parsed}), versions.pop()
    if region is not None:
        return [int(region)], version
    if bbox is not None:
        return regions_in_bbox(bbox), version
    raise DataNotFoundError("no glaciers asked for: give an RGI region, RGI ids or a bbox")


def margin_boxes(bounds: np.ndarray, margin_m: float, margin_fraction: float) -> np.ndarray:
    """Lon/lat boxes (n, 4) around glacier bounds widened by ``max(margin_m, margin_fraction * extent)``."""
    w, s, e, n = (bounds[:, i] for i in range(4))
    mx = _M_PER_DEG * np.cos(np.radians((s + n) / 2)).clip(0.01)
    extent = np.maximum((e - w) * mx, (n - s) * _M_PER_DEG)
    m = np.maximum(margin_m, margin_fraction * extent)
    return np.column_stack([(w - m / mx).clip(-180), (s - m / _M_PER_DEG).clip(-90),
                            (e + m / mx).clip(max=180), (n + m / _M_PER_DEG).clip(max=90)])


def select_glaciers(regions: Sequence[int], version: int = 6, ids: Sequence[str] = (),
                    bbox: Sequence[float] | None = None, margin_m: float = 1000.0,
                    margin_fraction: float = 0.5) -> gpd.GeoDataFrame:
    """The asked-for glaciers (column ``selected``) and their neighbours within the margins, EPSG:4326.

    From the RGI region files of ``regions``: the glaciers ``ids`` (all when none), those
    meeting ``bbox`` when given; neighbours are kept so the estimate masks their ice too.
    """
    parts = [read_outlines(get_rgi_region(r, version), crs=4326) for r in regions]
    g = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    sel = np.ones(len(g), bool)
    if ids:
        missing = sorted(set(ids) - set(g["rgi_id"]))
        if missing:
            raise EmptySelectionError(f"RGI ids not in the RGI {version}.0 file(s) of region(s) "
                                      f"{', '.join(map(str, regions))}: {', '.join(missing[:5])}")
        sel = g["rgi_id"].isin(list(ids)).to_numpy()
    if bbox is not None:
        sel &= g.intersects(shapely.box(*bbox)).to_numpy()
    if not sel.any():
        raise EmptySelectionError(f"no glacier of RGI {version}.0 region(s) {', '.join(map(str, regions))} "
                                  f"in the bbox {tuple(bbox or ())}")
    boxes = margin_boxes(g.geometry.bounds.to_numpy()[sel], margin_m, margin_fraction)
    near = np.zeros(len(g), bool)
    near[g.sindex.query(shapely.box(*boxes.T), predicate="intersects")[1]] = True
    g["selected"] = sel
    return g.loc[near | sel].reset_index(drop=True)


def needed_tiles(glaciers: gpd.GeoDataFrame, source: DemSource = "glo30", margin_m: float = 1000.0,
                 margin_fraction: float = 0.5) -> tuple[list[str], list[str]]:
    """(tiles the selected glaciers lie on, tiles only their margins reach), by name."""
    sel = glaciers[glaciers["selected"]]
    bounds = sel.geometry.bounds.to_numpy()
    required = [copernicus_tile_name(lat, lon, source) for lat, lon in _corners(bounds)
                if len(sel.sindex.query(shapely.box(lon, lat, lon + 1, lat + 1), predicate="intersects"))]
    margins = _corners(margin_boxes(bounds, margin_m, margin_fraction))
    optional = [t for t in (copernicus_tile_name(lat, lon, source) for lat, lon in margins) if t not in required]
    return required, optional


def _corners(boxes: np.ndarray) -> list[tuple[int, int]]:
    """South-west corners (lat, lon) of every 1x1 degree tile any (west, south, east, north) box reaches."""
    return list(dict.fromkeys(c for box in boxes for c in tile_corners(box)))


def fetch_dem_tiles(required: Sequence[str], optional: Sequence[str], source: DemSource = "glo30") -> list[Path]:
    """Download the tiles: every required one (a missing one raises), the optional ones that exist."""
    paths = [get_dem_tile(t, source) for t in required]
    return paths + [p for tile in optional if (p := get_dem_tile_if_any(tile, source))]


def write_outlines(glaciers: gpd.GeoDataFrame, dest: Path) -> Path:
    """Write the glaciers to a GeoPackage (written to a temporary name, then renamed)."""
    # GeoPackage field names are case-insensitive: drop read_outlines' ``name`` beside RGI 6's ``Name``
    clash = [c for c in ("rgi_id", "name", "area_km2") if any(o != c and o.lower() == c for o in glaciers.columns)]
    keep = [c for c in glaciers.columns if c != "selected" and c not in clash]
    with replacing(dest, keep_suffix=True) as tmp:
        gpd.GeoDataFrame(glaciers[keep], crs=glaciers.crs).to_file(tmp, driver="GPKG", layer="outlines")
    return Path(dest)


def fetch_region_inputs(dest: str | Path, *, region: int | None = None, ids: Sequence[str] = (),
                        bbox: Sequence[float] | None = None, version: int = 6, dem_source: DemSource = "glo30",
                        margin_m: float = 1000.0, margin_fraction: float = 0.5) -> RegionInputs:
    """Outlines (written to ``dest``, a GeoPackage) and DEM tiles for a region, RGI ids or a box.

    The region(s) come from the ids, else ``region``, else the RGI regions file (bbox);
    ``margin_m``/``margin_fraction``: the terrain kept around each glacier (as in the
    estimate's ``EstimateConfig``), which decides the tiles beyond the glaciers themselves.
    """
    if dem_source not in DEM_SOURCES:
        raise DataNotFoundError(f"DEM source {dem_source!r}: use one of {', '.join(DEM_SOURCES)}")
    if bbox is not None:
        w, s, e, n = map(float, bbox)
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise DataNotFoundError(f"bbox {tuple(bbox)}: not WEST SOUTH EAST NORTH in degrees")
    regions, version = _regions(region, ids, bbox, version)
    glaciers = select_glaciers(regions, version, ids, bbox, margin_m, margin_fraction)
    required, optional = needed_tiles(glaciers, dem_source, margin_m, margin_fraction)
    log.info("%d glaciers selected, %d DEM tiles (+%d for margins)", int(glaciers["selected"].sum()),
             len(required), len(optional))
    paths = fetch_dem_tiles(required, optional, dem_source)
    outlines = write_outlines(glaciers, Path(dest))
    chosen = glaciers.loc[glaciers["selected"], "rgi_id"].tolist()
    return RegionInputs(paths, outlines, chosen, required + optional, regions)
