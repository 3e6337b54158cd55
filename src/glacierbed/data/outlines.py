"""Glacier outlines: read RGI 5/6/7 shapefiles, GeoPackage, GeoJSON or a glacier mask raster; repair; rasterize."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from pyproj import CRS

from glacierbed.data.crs import crs_label, degrees_problem
from glacierbed.data.rasters import Raster, local_metric_crs
from glacierbed.core.errors import (
    CorruptFileError,
    DataNotFoundError,
    DuplicateIdError,
    EmptySelectionError,
    MissingCRSError,
    NoOverlapError,
)

log = logging.getLogger(__name__)

#: column names used by RGI 5/6 (``RGIId``, ``Area``) and RGI 7 (``rgi_id``, ``area_km2``)
_ID_COLUMNS = ("RGIId", "rgi_id", "RGIID", "GLIMSId", "glims_id", "id")
_AREA_COLUMNS = ("Area", "area_km2", "AREA", "area")
_NAME_COLUMNS = ("Name", "glac_name", "NAME", "name")
#: the terminus type (RGI 6 ``TermType``, RGI 7 ``term_type``)
_TERM_COLUMNS = ("TermType", "TERMTYPE", "term_type")
#: file suffixes read as a glacier mask raster instead of vector outlines
MASK_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")
#: mask components smaller than this are dropped (the RGI's smallest glacier)
MIN_MASK_GLACIER_KM2 = 0.01


def read_outlines(path: str | os.PathLike, crs: CRS | str | int | None = None) -> gpd.GeoDataFrame:
    """Read glacier outlines and normalise them.

    Returns a GeoDataFrame with columns ``rgi_id``, ``name``, ``area_km2`` (the file's
    attribute, NaN if absent), the original attributes, and valid (multi)polygons,
    reprojected to ``crs`` if given. Invalid geometries are repaired with
    ``shapely.make_valid``; empty ones are dropped with a warning.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"{path}: outline file not found")
    if path.suffix.lower() in MASK_SUFFIXES:
        gdf = outlines_from_mask(path)
        return gdf if crs is None else gdf.to_crs(CRS.from_user_input(crs))
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise CorruptFileError(f"{path}: cannot be read as a vector file ({exc})") from exc
    if gdf.crs is None:
        raise MissingCRSError(f"{path}: outlines have no coordinate reference system (.prj missing?)")
    if len(gdf) == 0:
        raise EmptySelectionError(f"{path}: no outlines in file")
    if (problem := degrees_problem(gdf.crs, gdf.total_bounds)) is not None:
        raise MissingCRSError(f"{path}: {problem}")
    gdf = _polygons_only(gdf.copy(), path)
    gdf["rgi_id"] = _glacier_ids(gdf, path)
    gdf["name"] = _first_column(gdf, _NAME_COLUMNS, default="").fillna("").astype(str).map(_clean_name)
    gdf["area_km2"] = pd.to_numeric(_first_column(gdf, _AREA_COLUMNS, default=np.nan), errors="coerce")
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        log.warning("%s: repairing %d invalid geometries (%s)", path, int(invalid.sum()),
                    ", ".join(gdf.loc[invalid, "rgi_id"].head(5)))
        gdf.loc[invalid, "geometry"] = gdf.loc[invalid, "geometry"].apply(_polygonal_make_valid)
    empty = gdf.geometry.is_empty | gdf.geometry.isna()
    if empty.any():
        log.warning("%s: dropping %d empty geometries", path, int(empty.sum()))
        gdf = gdf.loc[~empty]
    if len(gdf) == 0:
        raise EmptySelectionError(f"{path}: no valid outline left after repair")
    if crs is not None:
        gdf = gdf.to_crs(CRS.from_user_input(crs))
    gdf.attrs["source"] = str(path)
    return gdf.reset_index(drop=True)


def outlines_from_mask(path: str | os.PathLike, min_area_km2: float = MIN_MASK_GLACIER_KM2) -> gpd.GeoDataFrame:
    """Outlines polygonised from a glacier mask raster, in its CRS, with :func:`read_outlines`' columns.

    A mask of 0 / 1 (nodata = unknown = not glacier): each connected patch of glacier cells
    (8-connected) is one glacier, named ``<file stem>-<n>`` from the largest down; a raster of
    integer glacier ids (more than one positive value): each id is one glacier. Patches under
    ``min_area_km2`` are dropped (with a warning naming how many). A mask has no ice divides:
    a connected ice field is one glacier; give vector outlines for glacier-by-glacier results.
    """
    from scipy import ndimage

    path = Path(path)
    mask = Raster.from_file(path)
    values = np.nan_to_num(mask.data, nan=0.0)
    if np.any((values != np.round(values)) | (values < 0)):
        raise CorruptFileError(f"{path}: not a glacier mask (needs 0 / 1 or integer glacier ids, "
                               f"found values from {np.nanmin(mask.data):g} to {np.nanmax(mask.data):g})")
    positive = np.unique(values[values > 0])
    if positive.size == 0:
        raise EmptySelectionError(f"{path}: the glacier mask has no glacier cell")
    if positive.size == 1:
        labels, _ = ndimage.label(values > 0, structure=np.ones((3, 3), bool))
    else:
        labels = values.astype(np.int64)
    parts = [(shapely.geometry.shape(geom), int(v)) for geom, v in
             rasterio.features.shapes(labels.astype(np.int32), mask=labels > 0, transform=mask.transform)]
    gdf = gpd.GeoDataFrame({"label": [v for _, v in parts]}, geometry=[g for g, _ in parts], crs=mask.crs)
    gdf = gdf.dissolve(by="label", as_index=False)
    gdf["area_km2"] = gdf.to_crs(local_metric_crs(mask)).area.to_numpy() / 1e6
    small = gdf["area_km2"] < min_area_km2
    if small.any():
        log.warning("%s: dropping %d glacier patches under %g km² (%.3f km² in all)", path, int(small.sum()),
                    min_area_km2, float(gdf.loc[small, "area_km2"].sum()))
        gdf = gdf.loc[~small]
    if len(gdf) == 0:
        raise EmptySelectionError(f"{path}: no glacier patch of {min_area_km2:g} km² or more in the mask")
    gdf = gdf.sort_values("area_km2", ascending=False).reset_index(drop=True)
    gdf["rgi_id"] = ([f"{path.stem}-{i + 1:04d}" for i in range(len(gdf))] if positive.size == 1
                     else [f"{path.stem}-{v}" for v in gdf["label"]])
    gdf["name"] = ""
    gdf.attrs["source"] = str(path)
    return gdf.rename(columns={"label": "mask_label"})[["rgi_id", "name", "area_km2", "mask_label", "geometry"]]


def _glacier_ids(gdf: gpd.GeoDataFrame, source: str | os.PathLike, columns: tuple[str, ...] = _ID_COLUMNS
                 ) -> pd.Series:
    """The outlines' ids (RGI / GLIMS / ``id`` column; ``glacier-NNNNN`` by row where there is none or a row has
    none). Every glacier's outputs live in a folder named by its id, so a repeated id stops with one line: two
    glaciers would overwrite each other's results."""
    generated = pd.Series([f"glacier-{i:05d}" for i in range(len(gdf))], index=gdf.index)
    ids = _first_column(gdf, columns, default=generated)
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        log.warning("%s: %d outlines have no id: named by their row (%s)", source, int(missing.sum()),
                    ", ".join(generated[missing].head(3)))
    ids = ids.where(~missing, generated).astype(str).str.strip()
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        raise DuplicateIdError(f"{source}: {len(repeated)} outlines share {repeated.nunique()} id(s) "
                               f"({', '.join(sorted(set(repeated))[:5])}); each glacier's results are named by its "
                               "id: give every outline its own")
    return ids


def _first_column(gdf: gpd.GeoDataFrame, names: tuple[str, ...], default) -> pd.Series:
    for n in names:
        if n in gdf.columns:
            return gdf[n]
    return pd.Series(default, index=gdf.index)


def _clean_name(name: str) -> str:
    """Strip padding and the stray byte RGI 5 shapefiles leave after it (``'Hintereisferner   À'``)."""
    return re.sub(r"(^|\s+)[^\x00-\x7f]$", "", name.strip()).strip()


def _polygonal_make_valid(geom):
    fixed = shapely.make_valid(geom)
    if fixed.geom_type == "GeometryCollection":
        polys = [g for g in fixed.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        fixed = shapely.unary_union(polys) if polys else shapely.Polygon()
    return fixed


def check_overlap(outlines: gpd.GeoDataFrame, dem: Raster, min_fraction: float = 0.999,
                  what: str = "DEM") -> gpd.GeoDataFrame:
    """Outlines in the DEM's CRS; raise if none overlap it, warn/flag partial coverage.

    Adds a boolean column ``inside_dem`` (the outline lies within the DEM footprint up to
    ``min_fraction`` of its area). ``what``: the raster's role in the messages (e.g. "SMB raster").
    """
    src = outlines.attrs.get("source", "outlines")
    g = outlines.to_crs(dem.crs)
    # areas in a metric CRS: fractions in degrees² would be skewed (and warn) for lon/lat DEMs
    metric = local_metric_crs(dem)
    left, bottom, right, top = dem.bounds
    box = shapely.segmentize(shapely.box(left, bottom, right, top), min(right - left, top - bottom) / 20)
    footprint = gpd.GeoSeries([box], crs=dem.crs).to_crs(metric).iloc[0]
    gm = g.geometry.to_crs(metric)
    frac = (gm.intersection(footprint).area / gm.area).fillna(0.0)
    if (frac <= 0).all():
        raise NoOverlapError(f"{src}: none of the {len(g)} outlines overlap the {what} {dem.source or ''} "
                             f"({what} bounds {tuple(round(b) for b in dem.bounds)} in {crs_label(dem.crs)})")
    g = g.copy()
    g["inside_dem"] = frac >= min_fraction
    partly = g.loc[(frac > 0) & ~g["inside_dem"], "rgi_id"].tolist()
    if partly:
        log.warning("%s: %d outlines only partly covered by the %s: %s", src, len(partly), what,
                    ", ".join(partly[:10]))
    off = int((frac <= 0).sum())
    if off:
        log.info("%s: %d of %d outlines lie entirely off the %s (%s)", src, off, len(g), what,
                 "no estimate for them" if what == "DEM" else "not used for them")
    return g


def rasterize_ids(outlines: gpd.GeoDataFrame, grid: Raster, all_touched: bool = False) -> np.ndarray:
    """Per-glacier id raster (int32): 0 = no glacier, i+1 = ``outlines.iloc[i]``.

    Pixel centres decide membership (``all_touched=False``), so neighbouring glaciers that
    share a divide are kept apart; where two outlines overlap the smaller one wins (a tributary drawn inside its
    trunk keeps its pixels; of two identical outlines the later one wins).
    """
    g = outlines.to_crs(grid.crs)
    order = np.argsort(-g.geometry.area.to_numpy())  # larger first, smaller burnt on top
    shapes = [(g.geometry.iloc[i], int(i) + 1) for i in order if not g.geometry.iloc[i].is_empty]
    if not shapes:
        return np.zeros(grid.shape, dtype=np.int32)
    return rasterio.features.rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0,
                                       all_touched=all_touched, dtype="int32")


def rasterize_mask(outlines: gpd.GeoDataFrame, grid: Raster, all_touched: bool = False) -> np.ndarray:
    """All-glaciers boolean mask on ``grid``."""
    return rasterize_ids(outlines, grid, all_touched) > 0


def rasterize_gids(outlines: gpd.GeoDataFrame, grid: Raster, all_touched: bool = False) -> np.ndarray:
    """The outlines' own ids (column ``gid``, > 0) on ``grid``, 0 = no glacier."""
    local = rasterize_ids(outlines, grid, all_touched=all_touched)
    lut = np.concatenate([[0], outlines["gid"].to_numpy(dtype=np.int64)])
    return lut[local]


def _polygons_only(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """The (multi)polygon rows; other geometries (points, lines: centrelines, labels) are dropped with a
    warning, or refused when nothing else is left; a geometry collection keeps its polygons."""
    collections = gdf.geometry.geom_type == "GeometryCollection"
    if collections.any():
        gdf.loc[collections, "geometry"] = gdf.loc[collections, "geometry"].apply(_polygonal_make_valid)
    kinds = gdf.geometry.geom_type
    polygonal = kinds.isin(["Polygon", "MultiPolygon"]) | gdf.geometry.isna()
    if polygonal.all():
        return gdf
    others = ", ".join(f"{n} {k}" for k, n in kinds[~polygonal].value_counts().items())
    if not polygonal.any():
        raise CorruptFileError(f"{path}: no polygons ({others}): glacier outlines must be polygons")
    log.warning("%s: dropping %s that are not polygons", path, others)
    return gdf.loc[polygonal]


def overlapping_outlines(outlines: gpd.GeoDataFrame, min_fraction: float = 0.01) -> pd.DataFrame:
    """Pairs of outlines whose overlap exceeds ``min_fraction`` of the smaller one's area (``rgi_id_a``,
    ``rgi_id_b``, ``fraction``), largest first. RGI outlines only share boundaries; an overlap is two versions of a
    glacier mixed, or a duplicate, and each pixel can belong to one glacier only."""
    geoms = outlines.geometry.to_numpy()
    a, b = outlines.sindex.query(geoms, predicate="intersects")
    a, b = a[a < b], b[a < b]
    shared = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    fraction = shared / np.maximum(np.minimum(shapely.area(geoms[a]), shapely.area(geoms[b])), 1e-30)
    ids = outlines["rgi_id"].to_numpy()
    keep = fraction > min_fraction
    pairs = pd.DataFrame({"rgi_id_a": ids[a[keep]], "rgi_id_b": ids[b[keep]], "fraction": fraction[keep]})
    return pairs.sort_values("fraction", ascending=False, ignore_index=True)


def warn_overlapping(outlines: gpd.GeoDataFrame) -> None:
    """Say which outlines overlap (:func:`overlapping_outlines`; each pixel goes to one glacier, the smaller
    outline's), so that a glacier left without pixels, or with less volume than its area suggests, is no mystery."""
    pairs = overlapping_outlines(outlines)
    if len(pairs):
        shown = ", ".join(f"{a} / {b} ({f:.0%})" for a, b, f in pairs.head(3).itertuples(index=False))
        log.warning("%s: %d pairs of outlines overlap by more than 1 %% of the smaller one (%s%s); the overlap goes to "
                    "the smaller glacier, and an outline wholly inside an equal one gets no pixel",
                    outlines.attrs.get("source", "outlines"), len(pairs), shown, ", ..." if len(pairs) > 3 else "")


def term_type(outlines: gpd.GeoDataFrame, i: int) -> int | None:
    """The RGI terminus type of the ``i``-th outline (1 marine, 2 lake: the front is no zero margin), or
    ``None`` when the file has no such column or the value is missing or not a number."""
    col = next((c for c in _TERM_COLUMNS if c in outlines.columns), None)
    value = pd.to_numeric(pd.Series([outlines[col].iloc[i]]), errors="coerce").iloc[0] if col else np.nan
    return None if pd.isna(value) else int(value)


def as_outlines(outlines: "gpd.GeoDataFrame | str | os.PathLike") -> gpd.GeoDataFrame:
    """Outlines from a file (:func:`read_outlines`) or a GeoDataFrame given the columns
    ``rgi_id``, ``name`` and ``area_km2`` that a file would get."""
    if not isinstance(outlines, gpd.GeoDataFrame):
        return read_outlines(outlines)
    if len(outlines) == 0:
        raise EmptySelectionError("the outline GeoDataFrame is empty")
    g = outlines.copy()
    g["rgi_id"] = _glacier_ids(g, "the outline GeoDataFrame", columns=("rgi_id",))
    for col, default in (("name", ""), ("area_km2", np.nan)):
        if col not in g.columns:
            g[col] = default
    return g


def labels_on_ice(ids: np.ndarray, ice: np.ndarray) -> np.ndarray:
    """Glacier labels on every ``ice`` pixel: ice pixels without a label take the nearest one
    (e.g. pixels hidden as ice on a coarsened grid that no outline centre covers)."""
    from scipy import ndimage

    out = np.where(ice, ids, 0)
    missing = ice & (ids <= 0)
    if missing.any() and (ids > 0).any():
        idx = ndimage.distance_transform_edt(ids <= 0, return_distances=False, return_indices=True)
        out[missing] = ids[tuple(idx)][missing]
    return out
