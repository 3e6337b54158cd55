"""Measured ice thickness: radar/drilling points and GlaThiDa glacier-level surveys.

Two kinds of observations are used to validate thickness maps:

* points (radar tracks, boreholes) read by :func:`read_points` from a shapefile /
  GeoPackage (e.g. the ITMIX South Glacier ``IceThick_SouthGlacier.shp``) or a CSV in
  GlaThiDa point (TTT) format; they are tied to outlines by :func:`match_points_to_glaciers`;
* glacier-level surveys (GlaThiDa ``glacier.csv``: mean/max thickness, area, date) read by
  :func:`read_glathida_glaciers` and tied to outlines by :func:`match_glathida_to_outlines`,
  and their thickness by elevation band (``band.csv``) read by :func:`read_glathida_bands`;
* measured-thickness grids (a GeoTIFF with thickness in observed cells and nodata elsewhere,
  e.g. the ``glathida-grids`` dataset) read by :func:`read_thickness_grid` as cell-centre
  points, so :func:`glacierbed.evaluation.against_measurements.evaluate_points` scores a map on exactly those cells.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS
from shapely.geometry import Point

from glacierbed.data.crs import crs_label
from glacierbed.data.rasters import Raster
from glacierbed.core.errors import CorruptFileError, DataNotFoundError, EmptySelectionError, MissingCRSError

log = logging.getLogger(__name__)

#: accepted column names, first match wins (case-sensitive first, then case-insensitive)
_THICKNESS_COLUMNS = ("thickness_m", "thick", "thickness", "THICKNESS", "ice_thickness", "h")
_BED_COLUMNS = ("z_bed", "bed", "bed_elevation", "zbed")
_SURFACE_COLUMNS = ("z_surface", "z_dem", "elevation", "ELEVATION", "surface", "z_surf")
_LAT_COLUMNS = ("POINT_LAT", "lat", "latitude", "LAT")
_LON_COLUMNS = ("POINT_LON", "lon", "longitude", "LON")
#: GlaThiDa flags missing values with these in older releases
_GLATHIDA_NODATA = (-99.0, -9999.0)

_VECTOR_SUFFIXES = {".shp", ".gpkg", ".geojson", ".json", ".fgb"}


def _find_column(columns: pd.Index, names: tuple[str, ...]) -> str | None:
    for n in names:
        if n in columns:
            return n
    lower = {c.lower(): c for c in columns}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def read_points(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """Read thickness points; return a GeoDataFrame with ``thickness_m`` (+ ``z_bed``,
    ``z_surface`` when the file has them, the other derived from thickness).

    Vector files must carry a CRS; CSV files are GlaThiDa point tables (``POINT_LAT``,
    ``POINT_LON``, ``THICKNESS``, ``ELEVATION``, or lowercase ``lat``/``lon``/``thickness``)
    in WGS 84 degrees. Rows without a thickness value are dropped and counted in
    ``attrs["n_dropped"]`` (with a warning), never silently.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"{path}: thickness observation file not found")
    out = _point_columns(_read_point_file(path), path)
    keep = out["thickness_m"].notna() & out.geometry.notna() & ~out.geometry.is_empty
    n_dropped = int((~keep).sum())
    if n_dropped:
        log.warning("%s: dropping %d of %d points without thickness or position", path, n_dropped, len(out))
    out = out.loc[keep].reset_index(drop=True)
    if len(out) == 0:
        raise EmptySelectionError(f"{path}: no point with a thickness value")
    n_neg = int((out["thickness_m"] < 0).sum())
    if n_neg > len(out) / 2:  # not noise around zero: elevations, depths or a flipped sign
        raise CorruptFileError(f"{path}: {n_neg} of {len(out)} points have negative thickness (median "
                               f"{out['thickness_m'].median():.0f} m): thickness must be ice depth, >= 0")
    if n_neg:
        log.warning("%s: %d points have negative thickness", path, n_neg)
    out.attrs.update(source=str(path), n_dropped=n_dropped)
    return out


def _read_point_file(path: Path) -> gpd.GeoDataFrame:
    """The raw points of a vector file (with a CRS, point geometries) or a lat/lon CSV table."""
    suffix = path.suffix.lower()
    if suffix in _VECTOR_SUFFIXES:
        try:
            gdf = gpd.read_file(path)
        except Exception as exc:  # pyogrio DataSourceError and friends
            raise CorruptFileError(f"{path}: cannot be read as a vector file ({exc})") from exc
        if gdf.crs is None:
            raise MissingCRSError(f"{path}: points have no coordinate reference system (.prj missing?)")
        if len(gdf) and not (gdf.geometry.geom_type == "Point").all():
            raise CorruptFileError(f"{path}: expected point geometries, found "
                                   f"{', '.join(sorted(set(gdf.geometry.geom_type.dropna())))}")
        return gdf
    if suffix in (".csv", ".txt"):
        try:
            df = pd.read_csv(path, low_memory=False)
        except Exception as exc:
            raise CorruptFileError(f"{path}: cannot be read as CSV ({exc})") from exc
        lat, lon = _find_column(df.columns, _LAT_COLUMNS), _find_column(df.columns, _LON_COLUMNS)
        if lat is None or lon is None:
            raise CorruptFileError(f"{path}: missing latitude/longitude columns (expected one of "
                                   f"{'/'.join(_LAT_COLUMNS)} and {'/'.join(_LON_COLUMNS)}); found {list(df.columns)}")
        return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df[lon], df[lat]), crs="EPSG:4326")
    raise CorruptFileError(f"{path}: unsupported point file type {suffix!r} (use .shp, .gpkg, .geojson or .csv)")


def _point_columns(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """``thickness_m``, ``z_bed`` and ``z_surface`` (the missing one derived) from the file's columns;
    GlaThiDa no-data flags become NaN."""
    thick = _find_column(gdf.columns, _THICKNESS_COLUMNS)
    if thick is None:
        raise CorruptFileError(f"{path}: no thickness column (expected one of {', '.join(_THICKNESS_COLUMNS)}); "
                               f"found {[c for c in gdf.columns if c != 'geometry']}")
    out = gpd.GeoDataFrame({"thickness_m": pd.to_numeric(gdf[thick], errors="coerce")}, geometry=gdf.geometry, crs=gdf.crs)
    for name, cands in (("z_bed", _BED_COLUMNS), ("z_surface", _SURFACE_COLUMNS)):
        col = _find_column(gdf.columns, cands)
        if col is not None:
            out[name] = pd.to_numeric(gdf[col], errors="coerce")
    for col in out.columns.drop("geometry"):
        out.loc[out[col].isin(_GLATHIDA_NODATA), col] = np.nan
    if "z_bed" in out and "z_surface" not in out:
        out["z_surface"] = out["z_bed"] + out["thickness_m"]
    elif "z_surface" in out and "z_bed" not in out:
        out["z_bed"] = out["z_surface"] - out["thickness_m"]
    return out


def read_thickness_grid(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """Observed cells of a measured-thickness grid as cell-centre points in the grid's CRS.

    ``path``: a single-band raster of ice thickness (m) with nodata (or NaN) where nothing
    was measured, e.g. ``glathida-grids/<RGI id>/thickness.tif`` (the mean of the GlaThiDa
    points in each cell). Returns a GeoDataFrame with ``thickness_m``, ``x``, ``y`` (cell
    centre), ``row``, ``col`` and point geometries, one row per observed cell (row-major
    order), in the raster's CRS, which must be metric. ``attrs`` holds ``source``,
    ``dx_m``, ``shape`` and ``transform``. Negative values are kept and counted with a
    warning, never silently dropped.
    """
    grid = Raster.from_file(path)  # DataNotFoundError / CorruptFileError / MissingCRSError name the file
    if not grid.crs.is_projected:
        raise MissingCRSError(f"{path}: thickness grid CRS {crs_label(grid.crs)} is not metric (projected)")
    rows, cols = np.nonzero(np.isfinite(grid.data))
    if rows.size == 0:
        raise EmptySelectionError(f"{path}: no observed cell (every cell is nodata)")
    x, y = grid.xy()
    thickness = grid.data[rows, cols].astype(np.float64)
    n_neg = int((thickness < 0).sum())
    if n_neg:
        log.warning("%s: %d observed cells have negative thickness", path, n_neg)
    out = gpd.GeoDataFrame({"thickness_m": thickness, "x": x[cols], "y": y[rows], "row": rows, "col": cols},
                           geometry=gpd.points_from_xy(x[cols], y[rows]), crs=grid.crs)
    out.attrs.update(source=str(path), dx_m=grid.res[0], shape=grid.shape, transform=tuple(grid.transform)[:6])
    return out


#: raster files taken as a measured-thickness grid by :func:`read_observations`
GRID_SUFFIXES = {".tif", ".tiff"}


def read_observations(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """Measured thickness at points, whatever the file holds: a GeoTIFF is a measured-thickness grid
    (:func:`read_thickness_grid`, one point per observed cell), anything else points (:func:`read_points`)."""
    if Path(path).suffix.lower() in GRID_SUFFIXES:
        return read_thickness_grid(path)
    return read_points(path)


def held_out_glathida_ids(data_dir: str | os.PathLike | None = None) -> frozenset[int]:
    """GlaThiDa survey ids kept for blind validation: never fitted, calibrated or selected on.

    Read from ``glathida/HELD_OUT.md`` of the data kit (the one place the list lives: every
    integer of its fenced code block); an empty set where the data dir has no such file (a
    user's own download of GlaThiDa).
    """
    from glacierbed.data.store import data_dir as kit_dir

    root = Path(data_dir) if data_dir is not None else kit_dir()
    path = None if root is None else root / "glathida" / "HELD_OUT.md"
    if path is None or not path.is_file():
        return frozenset()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), flags=re.S)
    ids = frozenset(int(tok) for block in blocks for tok in block.split() if tok.isdigit())
    if not ids:
        raise CorruptFileError(f"{path}: no held-out survey ids found in a fenced code block")
    return ids


def _read_glathida_csv(path: Path, table: str, need: tuple[str, ...], numeric: tuple[str, ...]) -> pd.DataFrame:
    """A GlaThiDa ``table`` CSV with the columns ``need`` (clear errors naming the file), ``numeric`` columns
    as numbers and GlaThiDa's old nodata flags as NaN."""
    if not path.exists():
        raise DataNotFoundError(f"{path}: GlaThiDa {table} table not found")
    try:
        df = pd.read_csv(path, low_memory=False)
    except Exception as exc:
        raise CorruptFileError(f"{path}: cannot be read as CSV ({exc})") from exc
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise CorruptFileError(f"{path}: missing GlaThiDa {table} columns {missing}; found {list(df.columns)}")
    for c in numeric:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce")
            df.loc[df[c].isin(_GLATHIDA_NODATA), c] = np.nan
    return df


def read_glathida_glaciers(path: str | os.PathLike, *, for_fitting: bool = False) -> pd.DataFrame:
    """Read GlaThiDa ``glacier.csv`` and keep the surveys with a mean thickness.

    Columns kept: ``id, name, lat, lon, date, area`` (km2), ``mean_thickness``,
    ``max_thickness`` (m) and ``year`` (from ``date``, NaN when undated) plus the rest.
    ``for_fitting``: drop the held-out surveys (:func:`held_out_glathida_ids`), as every
    reader that learns from the table must.
    """
    path = Path(path)
    df = _read_glathida_csv(path, "glacier", ("id", "lat", "lon", "mean_thickness"),
                            ("area", "mean_thickness", "max_thickness", "lat", "lon"))
    df = df.loc[df["mean_thickness"].notna() & df["lat"].notna() & df["lon"].notna()].copy()
    if "name" not in df:
        df["name"] = ""
    if "area" not in df:
        df["area"] = np.nan
    date = pd.to_datetime(df["date"], errors="coerce") if "date" in df else pd.Series(pd.NaT, index=df.index)
    df["year"] = date.dt.year
    if for_fitting:
        held = df["id"].astype(int).isin(held_out_glathida_ids())
        log.info("%s: %d held-out surveys dropped before fitting", path, int(held.sum()))
        df = df.loc[~held]
    df.attrs["source"] = str(path)
    return df.reset_index(drop=True)


def read_glathida_bands(path: str | os.PathLike, *, for_fitting: bool = False) -> pd.DataFrame:
    """Read GlaThiDa ``band.csv``: mean thickness per surface-elevation band of a survey.

    Columns: ``glacier_id`` (the survey's ``id`` in ``glacier.csv``), ``from_elevation``,
    ``to_elevation`` (m), ``mean_thickness`` (m), ``area`` (km2) and the rest; bands without a
    thickness, a survey id or ``to > from`` are dropped. ``for_fitting``: drop the held-out surveys.
    """
    path = Path(path)
    need = ("glacier_id", "from_elevation", "to_elevation", "mean_thickness")
    df = _read_glathida_csv(path, "band", need, (*need, "area"))
    df = df.loc[df["glacier_id"].notna() & df["mean_thickness"].notna()
                & (df["to_elevation"] > df["from_elevation"])].copy()
    if for_fitting:
        df = df.loc[~df["glacier_id"].astype(int).isin(held_out_glathida_ids())]
    df.attrs["source"] = str(path)
    return df.reset_index(drop=True)


def _metric_crs(gdf: gpd.GeoDataFrame) -> CRS:
    if gdf.crs is not None and gdf.crs.is_projected:
        return gdf.crs
    crs = gdf.estimate_utm_crs()
    return crs


def match_points_to_glaciers(points: gpd.GeoDataFrame, outlines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Copy of ``points`` with ``rgi_id`` of the outline containing each point (None outside)."""
    if outlines.crs is None or points.crs is None:
        raise MissingCRSError("points or outlines have no CRS; cannot match them")
    pts = points.to_crs(outlines.crs)
    joined = gpd.sjoin(pts[["geometry"]], outlines[["rgi_id", "geometry"]], how="left", predicate="within")
    # a point on a shared divide may fall in two outlines: keep the first
    joined = joined[~joined.index.duplicated(keep="first")]
    out = points.copy()
    ids = joined["rgi_id"].reindex(points.index)
    out["rgi_id"] = ids.where(ids.notna(), None).astype(object)
    n_out = int(out["rgi_id"].isna().sum())
    if n_out:
        log.info("%d of %d points fall outside every outline", n_out, len(out))
    return out


def match_glathida_to_outlines(
    table: pd.DataFrame,
    outlines: gpd.GeoDataFrame,
    max_area_rel_diff: float = 0.5,
    max_distance_m: float = 750.0,
) -> pd.DataFrame:
    """Tie GlaThiDa surveys to outlines.

    A survey matches the outline containing its (lat, lon), or else the nearest outline
    within ``max_distance_m`` (GlaThiDa positions are often rounded to 0.01 degree, up to ~700 m off). When
    the survey has an area, |A_survey - A_outline| / A_outline must be at most
    ``max_area_rel_diff`` (glaciers shrink; old surveys differ) or the next candidate is
    tried. Returns one row per matched (survey, rgi_id) with ``distance_m``,
    ``outline_area_km2``, ``area_rel_diff`` and ``latest`` (the most recent survey of each
    glacier; undated surveys count as oldest). Unmatched surveys are listed in
    ``attrs["unmatched"]`` (a DataFrame with a ``reason``) and logged; surveys beyond the
    outlines' extent are only counted (``attrs["n_outside_extent"]``).
    """
    if outlines.crs is None:
        raise MissingCRSError("outlines have no CRS; cannot match GlaThiDa surveys")
    crs = _metric_crs(outlines)
    g = outlines[["rgi_id", "geometry"]].to_crs(crs).reset_index(drop=True)
    g_area = g.geometry.area / 1e6
    pts = gpd.GeoSeries(gpd.points_from_xy(table["lon"], table["lat"]), crs="EPSG:4326").to_crs(crs)
    # surveys far from every outline (e.g. the rest of the world) are not "unmatched"
    minx, miny, maxx, maxy = g.total_bounds
    near = ((pts.x >= minx - max_distance_m) & (pts.x <= maxx + max_distance_m)
            & (pts.y >= miny - max_distance_m) & (pts.y <= maxy + max_distance_m)).to_numpy()
    rows, unmatched = [], []
    for i in np.flatnonzero(near):
        survey = table.iloc[i]
        match, reason = _match_survey(survey, pts.iloc[i], g, g_area, max_area_rel_diff, max_distance_m)
        if match is None:
            unmatched.append({**survey.to_dict(), "reason": reason})
        else:
            rows.append({**survey.to_dict(), **match})
    out = _mark_latest(pd.DataFrame(rows), table.columns)
    unmatched_df = pd.DataFrame(unmatched)
    if len(unmatched_df):
        log.info("%d of %d GlaThiDa surveys matched no outline", len(unmatched_df), len(table))
    out.attrs["unmatched"] = unmatched_df
    out.attrs["n_outside_extent"] = int((~near).sum())
    return out


def _match_survey(survey: pd.Series, p: Point, g: gpd.GeoDataFrame, g_area: pd.Series,
                  max_area_rel_diff: float, max_distance_m: float) -> tuple[dict | None, str]:
    """The nearest outline within ``max_distance_m`` whose area fits the survey's (``rgi_id``,
    ``distance_m``, ``outline_area_km2``, ``area_rel_diff``), or None and why not."""
    cand = g.sindex.query(p.buffer(max_distance_m), predicate="intersects")
    if len(cand) == 0:
        return None, f"no outline within {max_distance_m:.0f} m"
    dist = g.geometry.iloc[cand].distance(p).to_numpy()
    for j in np.argsort(dist, kind="stable"):
        k = cand[j]
        rel = np.nan
        if np.isfinite(survey.get("area", np.nan)):
            rel = abs(survey["area"] - g_area.iloc[k]) / g_area.iloc[k]
            if rel > max_area_rel_diff:
                continue
        return {"rgi_id": g["rgi_id"].iloc[k], "distance_m": float(dist[j]),
                "outline_area_km2": float(g_area.iloc[k]), "area_rel_diff": rel}, ""
    return None, (f"area {survey['area']:.2f} km2 differs by more than "
                  f"{max_area_rel_diff:.0%} from every outline within {max_distance_m:.0f} m")


def _mark_latest(out: pd.DataFrame, table_columns: pd.Index) -> pd.DataFrame:
    """``latest``: the most recent survey of each glacier (by year, undated = oldest, then by id)."""
    if not len(out):
        return pd.DataFrame(columns=[*table_columns, "rgi_id", "distance_m", "outline_area_km2", "area_rel_diff",
                                     "latest"])
    key = out["year"].fillna(-1) if "year" in out else pd.Series(-1, index=out.index)
    out["_key"] = key
    latest_idx = out.sort_values(["_key", "id"]).groupby("rgi_id").tail(1).index
    out["latest"] = out.index.isin(latest_idx)
    return out.drop(columns="_key")
