"""Per-glacier result files and the region outputs: mosaics, tables, the region summary.

Every glacier task writes its thickness and spread as a small GeoTIFF
(``glaciers/<rgi_id>/thickness.tif``: 2 float32 bands ``thickness`` and ``thickness_std``
on the glacier's bounding box of the DEM grid, with CRS, transform and nodata, tagged with
the glacier's id; :func:`write_glacier_result`). Here they are read back and laid, by their
transform, into full-size GeoTIFFs (thickness, bed = DEM - thickness, thickness_std;
float32, CRS, nodata); the table goes to ``glaciers.csv`` and ``glaciers.gpkg``, each glacier's
surface-elevation bands (:func:`elevation_bands`) to ``elevation_bands.csv``, and the totals to a summary. All writes
are atomic.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.enums
import rasterio.transform
import rasterio.windows

from glacierbed.core.atomic import replacing
from glacierbed.core.errors import CorruptFileError
from glacierbed.core.glaciology import sea_level_equivalent_mm
from glacierbed.data.attributes import CAUTION_FLAGS
from glacierbed.data.rasters import NODATA, Raster, sample_layers
from glacierbed.posterior.calibration.features import GAUSS_Z90

log = logging.getLogger(__name__)

#: the bands of a glacier's result file, in order
RESULT_BANDS = ("thickness", "thickness_std")


def _on_dem_grid(w0: Raster, own0: np.ndarray, maps: np.ndarray, fine: Raster | None) -> np.ndarray:
    """The (2, ny, nx) maps on the DEM grid ``w0``: sampled back from the finer grid ``fine``, each band scaled so
    that its sum over the glacier times the pixel area is the one on ``fine`` (for the thickness, the volume of
    ``glaciers.csv``, computed there): a coarse pixel stands for its whole area, not for its centre point."""
    if fine is None:
        return maps
    if not own0.any():
        return np.full((len(maps), *w0.shape), np.nan, np.float32)
    back = sample_layers(fine, np.nan_to_num(maps), w0, own0)
    back = np.where((own0 & np.isfinite(w0.data))[None], back, np.nan)
    on_fine = np.nansum(maps, axis=(1, 2)) * fine.pixel_area_m2
    on_dem = np.nansum(back, axis=(1, 2)) * w0.pixel_area_m2
    scale = np.divide(on_fine, on_dem, out=np.ones_like(on_fine), where=on_dem > 0)
    return (back * scale[:, None, None]).astype(np.float32)


def write_glacier_result(path: Path, w0: Raster, own0: np.ndarray, thick_map: np.ndarray, std_map: np.ndarray,
                         fine: Raster | None = None, tags: Mapping[str, str] | None = None) -> Path:
    """A glacier's thickness and spread as a 2-band GeoTIFF on its bounding box of the DEM grid ``w0``.

    ``fine``: the finer grid of a tiny or refined glacier the maps are on; they are sampled back to ``w0`` keeping
    the glacier's volume (:func:`_on_dem_grid`).
    NaN is written as nodata (-9999); ``tags`` (e.g. the glacier's id) go into the file.
    """
    maps = _on_dem_grid(w0, own0, np.stack([thick_map, std_map]), fine)
    rows, cols = np.nonzero(own0)
    win = (rasterio.windows.Window(cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)
           if rows.size else rasterio.windows.Window(0, 0, 1, 1))  # a glacier under one DEM pixel: one nodata pixel
    box = maps[(slice(None), *win.toslices())]
    data = np.where(np.isfinite(box), box, NODATA).astype(np.float32)
    profile = dict(driver="GTiff", height=data.shape[1], width=data.shape[2], count=len(RESULT_BANDS),
                   dtype="float32", crs=w0.crs.to_wkt(), transform=rasterio.windows.transform(win, w0.transform),
                   nodata=NODATA, compress="deflate")
    with replacing(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        for i, band in enumerate(RESULT_BANDS, start=1):
            dst.set_band_description(i, band)
            dst.update_tags(i, units="m")
        dst.update_tags(**dict(tags or {}))
    return Path(path)


def read_glacier_result(path: Path) -> tuple[np.ma.MaskedArray, rasterio.Affine, Any]:
    """(bands ``thickness``, ``thickness_std`` masked where nodata, transform, CRS) of a result file."""
    with rasterio.open(path) as src:
        if src.count != len(RESULT_BANDS) or src.descriptions != RESULT_BANDS:
            raise CorruptFileError(f"{path}: expected bands {RESULT_BANDS}, found {src.descriptions}")
        return src.read(masked=True), src.transform, src.crs


def _window_on(dem: Raster, transform: rasterio.Affine, shape: tuple[int, int], path: Path) -> tuple[slice, slice]:
    """Where a result with ``transform`` and ``shape`` lies on the DEM grid (it must be on it)."""
    if not np.allclose((transform.a, transform.e), (dem.transform.a, dem.transform.e), rtol=1e-9):
        raise CorruptFileError(f"{path}: pixel size {transform.a, transform.e} is not the DEM's")
    col, row = ~dem.transform @ (transform.c, transform.f)
    if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
        raise CorruptFileError(f"{path}: not aligned with the DEM grid (offset {col:.3f}, {row:.3f} px)")
    win = rasterio.windows.Window(round(col), round(row), shape[1], shape[0])
    return win.toslices()


def write_mosaics(dem: Raster, results: Iterable[Path], out: Path) -> dict[str, Path]:
    """thickness.tif, bed.tif and thickness_std.tif on the DEM grid from the glaciers' result files."""
    mosaic = np.full((len(RESULT_BANDS), *dem.shape), np.nan, np.float32)
    for f in results:
        if not f.exists():
            continue
        bands, transform, crs = read_glacier_result(f)
        if crs != dem.crs:
            raise CorruptFileError(f"{f}: CRS {crs} is not the DEM's ({dem.crs})")
        rows, cols = _window_on(dem, transform, bands.shape[1:], f)
        valid = ~np.ma.getmaskarray(bands[0])
        for i in range(len(RESULT_BANDS)):
            mosaic[i, rows, cols][valid] = bands[i].data[valid]
    thick, std = mosaic
    bed = np.where(np.isfinite(thick), dem.data - thick, dem.data)
    return {
        "thickness": dem.with_data(thick).to_file(out / "thickness.tif"),
        "bed": dem.with_data(bed).to_file(out / "bed.tif"),
        "thickness_std": dem.with_data(std).to_file(out / "thickness_std.tif"),
    }


def _result_bounds(paths: Iterable[Path], crs: Any) -> list[tuple[Path, tuple[float, float, float, float]]]:
    """Each existing result file with its bounds in ``crs``."""
    import rasterio.warp

    found = []
    for f in paths:
        if f.exists():
            with rasterio.open(f) as src:
                b = tuple(src.bounds) if src.crs == crs else rasterio.warp.transform_bounds(src.crs, crs, *src.bounds)
            found.append((f, b))
    return found


def _paste(dsts: list[Any], f: Path, grid: tuple[Any, float, float, float]) -> None:
    """Lay one glacier's result onto the open mosaics ``dsts`` (nearest neighbour when it is on another grid)."""
    import rasterio.warp

    crs, res, x0, y0 = grid
    bands, transform, src_crs = read_glacier_result(f)
    left, bottom, right, top = rasterio.transform.array_bounds(bands.shape[1], bands.shape[2], transform)
    if src_crs != crs:
        left, bottom, right, top = rasterio.warp.transform_bounds(src_crs, crs, left, bottom, right, top)
    win = rasterio.windows.from_bounds(left, bottom, right, top, transform=dsts[0].transform)
    win = win.round_offsets(op="floor").round_lengths(op="ceil").intersection(
        rasterio.windows.Window(0, 0, dsts[0].width, dsts[0].height))
    dst_t = dsts[0].window_transform(win)
    for band, dst in zip(bands, dsts):
        part = np.full((int(win.height), int(win.width)), np.nan, np.float32)
        rasterio.warp.reproject(band.filled(np.nan).astype(np.float32), part, src_transform=transform,
                                src_crs=src_crs, src_nodata=np.nan, dst_transform=dst_t, dst_crs=crs,
                                dst_nodata=np.nan, resampling=rasterio.enums.Resampling.nearest)
        old = dst.read(1, window=win)
        dst.write(np.where(np.isfinite(part), part, old).astype(np.float32), 1, window=win)


def write_tiled_mosaics(results: Iterable[Path], grid: tuple[str, float, float, float], out: Path
                        ) -> dict[str, Path]:
    """thickness.tif and thickness_std.tif on one grid (``grid``: CRS WKT, pixel size, origin x0, y0) from
    per-glacier results in any CRS, written window by window into tiled, sparse GeoTIFFs (never
    a region-wide array); results on other grids are warped by nearest neighbour."""
    from pyproj import CRS

    crs = CRS.from_wkt(grid[0])
    res, x0, y0 = grid[1:]
    found = _result_bounds(results, crs)
    if not found:
        return {}
    b = np.array([fb for _, fb in found])
    left, top = x0 + np.floor((b[:, 0].min() - x0) / res) * res, y0 + np.ceil((b[:, 3].max() - y0) / res) * res
    width, height = int(np.ceil((b[:, 2].max() - left) / res)), int(np.ceil((top - b[:, 1].min()) / res))
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="float32", crs=crs.to_wkt(),
                   transform=rasterio.transform.from_origin(left, top, res, res), nodata=np.nan, tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate", sparse_ok=True, bigtiff="IF_SAFER")
    names = ("thickness", "thickness_std")
    found.sort(key=lambda fb: (-round(fb[1][3] / (512 * res)), fb[1][0]))  # block row by block row
    with rasterio.Env(GDAL_CACHEMAX=256), replacing(out / "thickness.tif") as t1, \
            replacing(out / "thickness_std.tif") as t2:
        with rasterio.open(t1, "w+", **profile) as d1, rasterio.open(t2, "w+", **profile) as d2:
            for f, _ in found:
                _paste([d1, d2], f, (crs, res, x0, y0))
    return {n: out / f"{n}.tif" for n in names}


def with_outline_attributes(outlines: gpd.GeoDataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The glacier table with the outline file's own attributes (RGI's O1Region, Zmed, ...) kept.

    A column the table already has (``name``, ``area_km2``, ...; compared case-insensitively, as
    GeoPackage field names are) keeps the table's value.
    """
    taken = {c.lower() for c in table.columns} | {outlines.geometry.name.lower()}
    keep = [c for c in outlines.columns if c.lower() not in taken]
    attrs = pd.DataFrame(outlines[["rgi_id", *keep]]).drop_duplicates("rgi_id")
    return table.merge(attrs, on="rgi_id", how="left")


def _subregion_columns(table: pd.DataFrame) -> list[str]:
    """RGI region/subregion columns (RGI 6 ``O1Region``/``O2Region``, RGI 7 ``o1region``/``o2region``)."""
    by_lower = {c.lower(): c for c in table.columns}
    return [by_lower[c] for c in ("o1region", "o2region") if c in by_lower]


def subregion_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Area, volume and its correlated 1-sigma per RGI subregion (empty without RGI columns)."""
    cols = _subregion_columns(table)
    if not cols:
        return pd.DataFrame()
    covered = table[table["status"] != "no_dem"]
    return (covered.groupby(cols, dropna=False)
            .agg(n_glaciers=("rgi_id", "size"), area_km2=("area_km2", "sum"),
                 estimated_area_km2=("estimated_area_km2", "sum"), volume_km3=("volume_km3", "sum"),
                 volume_std_km3=("volume_std_km3", lambda s: float(s.fillna(0).sum())))
            .reset_index())


def write_tables(outlines: gpd.GeoDataFrame, table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """glaciers.csv and glaciers.gpkg (the table with the outlines' attributes), and
    totals_by_subregion.csv when the outlines carry RGI region columns."""
    table = with_outline_attributes(outlines, table)
    with replacing(out / "glaciers.csv") as tmp:
        table.to_csv(tmp, index=False)
    geo = outlines[["rgi_id", "geometry"]].merge(table.drop(columns=["name"]), on="rgi_id", how="inner")
    geo = gpd.GeoDataFrame(geo, geometry="geometry", crs=outlines.crs)
    geo.insert(1, "name", geo["rgi_id"].map(dict(zip(table["rgi_id"], table["name"]))))
    with replacing(out / "glaciers.gpkg", keep_suffix=True) as tmp:  # GDAL wants the .gpkg extension
        geo.to_file(tmp, driver="GPKG", layer="glaciers")
    paths = {"csv": out / "glaciers.csv", "gpkg": out / "glaciers.gpkg"}
    totals = subregion_totals(table)
    if len(totals):
        with replacing(out / "totals_by_subregion.csv") as tmp:
            totals.to_csv(tmp, index=False)
        paths["subregion_totals"] = out / "totals_by_subregion.csv"
    return paths


#: columns of a glacier's elevation-band table (``glaciers/<rgi_id>/elevation_bands.csv``)
BAND_COLUMNS = ["band_bottom_m", "band_top_m", "n_pixels", "area_km2", "volume_km3", "mean_thickness_m",
                "mean_surface_m", "mean_bed_m", "mean_thickness_std_m"]


def elevation_bands(surface: np.ndarray, thickness: np.ndarray, valid: np.ndarray, pixel_area_m2: float,
                    band_m: float, thickness_std: np.ndarray | None = None) -> pd.DataFrame:
    """A glacier's area, volume and mean thickness, surface and bed per surface-elevation band of ``band_m`` (bands
    start at multiples of it; empty ones left out). The binned geometry that elevation-band flowline and mass-balance
    models start from (Huss & Farinotti 2012: 10 m; Werder et al. 2019 and OGGM's elevation-band flowlines: 30 m);
    the bands' volumes add up to the glacier's. ``valid``: the glacier's pixels with a thickness."""
    z, h = surface[valid].astype(np.float64), thickness[valid].astype(np.float64)
    std = np.full(z.shape, np.nan) if thickness_std is None else thickness_std[valid].astype(np.float64)
    bottom = np.floor(z / band_m) * band_m
    df = pd.DataFrame({"band_bottom_m": bottom, "z": z, "h": h, "std": std})
    g = df.groupby("band_bottom_m", sort=True)
    n = g.size()
    out = pd.DataFrame({"band_bottom_m": n.index.to_numpy(float), "band_top_m": n.index.to_numpy(float) + band_m,
                        "n_pixels": n.to_numpy(int), "area_km2": n.to_numpy(float) * pixel_area_m2 / 1e6,
                        "volume_km3": g["h"].sum().to_numpy() * pixel_area_m2 / 1e9,
                        "mean_thickness_m": g["h"].mean().to_numpy(), "mean_surface_m": g["z"].mean().to_numpy(),
                        "mean_bed_m": (g["z"].mean() - g["h"].mean()).to_numpy(),
                        "mean_thickness_std_m": g["std"].mean().to_numpy()})
    return out[BAND_COLUMNS]


def write_band_table(band_files: Mapping[str, Path], out: Path) -> dict[str, Path]:
    """``elevation_bands.csv``: every glacier's bands (``band_files``: rgi_id -> its glacier's band CSV), one row per
    glacier and band, the glacier's id first."""
    parts = [pd.read_csv(f).assign(rgi_id=rgi_id) for rgi_id, f in band_files.items()]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=BAND_COLUMNS + ["rgi_id"])
    with replacing(out / "elevation_bands.csv") as tmp:
        table[["rgi_id"] + BAND_COLUMNS].to_csv(tmp, index=False)
    return {"elevation_bands": out / "elevation_bands.csv"}


def volume_interval_90(table: pd.DataFrame, predictor: Any, calibrate: bool) -> pd.DataFrame:
    """Each glacier's 90 % volume interval, ``volume_km3`` ∓ z90 × ``volume_std_km3`` (lower end clipped at 0): z90 is
    the calibration's glacier-level multiplier when the volumes were calibrated, else the normal 1.645."""
    cal = getattr(predictor, "calibration", None) if calibrate else None
    z90 = cal.glacier_z90 if cal is not None else GAUSS_Z90
    half = z90 * table["volume_std_km3"]
    return pd.DataFrame({"volume_90_low_km3": (table["volume_km3"] - half).clip(lower=0.0),
                         "volume_90_high_km3": table["volume_km3"] + half}, index=table.index)


def caution_counts(flags: pd.Series) -> dict[str, int]:
    """How many glaciers raise each flag of a ``caution`` column (``;``-joined flags), in the flags' order."""
    split = flags.fillna("").astype(str).str.split(";").explode()
    counts = split[split != ""].value_counts()
    return {f: int(counts[f]) for f in CAUTION_FLAGS if f in counts}


def measured_region(ids: pd.Series, predictor: Any) -> pd.Series:
    """Per glacier: whether the network was fine-tuned on measured glaciers of its RGI region (read from its RGI id);
    None where the model was not fine-tuned on measurements or the id names no RGI region. Leave one region out the
    default does worse than within its measured regions (README, *Region shift*), so False marks the less tested."""
    from glacierbed.data.region_inputs import rgi_region_number

    fitted = (getattr(predictor, "record", None) or {}).get("finetuned_on_measured") or {}
    if not fitted.get("groups"):
        return pd.Series([None] * len(ids), index=ids.index, dtype=object)
    seen = {rgi_region_number(g) for g in fitted["groups"]}
    out = pd.Series([None if r is None else r in seen for r in map(rgi_region_number, ids)], index=ids.index,
                    dtype=object)
    if unseen := int(out.eq(False).sum()):
        log.info("%d of %d glaciers lie in RGI regions the model saw no measured glacier of (measured_region; its "
                 "measured scores say least about them: docs/estimate.md)", unseen, len(out))
    if unknown := int(out.isna().sum()):
        log.warning("%d of %d glaciers have no RGI id (e.g. %s), so whether the model saw measured glaciers of their "
                    "region is unknown (measured_region empty): it was fine-tuned in RGI regions %s; elsewhere read "
                    "their volume_std_km3 as a lower bound (docs/estimate.md)", unknown, len(out),
                    ids[out.isna()].iloc[0], ", ".join(str(r) for r in sorted(r for r in seen if r is not None)))
    return out


def consensus_columns(table: pd.DataFrame, enabled: bool = True) -> pd.DataFrame:
    """``table`` with, when ``enabled``, each glacier's Farinotti et al. (2019) consensus volume
    (``consensus_volume_km3``, the g2ti table the data layer holds, keyed by RGI 6 id) and ``volume_over_consensus``:
    NaN for a glacier with another id, one estimated on part of its outline (``partial``) or not estimated. The
    consensus was computed on the RGI 6 outline, so an edited outline compares less well."""
    if not enabled:
        return table
    from glacierbed.core.errors import GlacierbedError
    from glacierbed.data.registry import consensus_volume_of

    try:
        consensus = consensus_volume_of(table["rgi_id"])
    except GlacierbedError as exc:  # no local table and no download: the estimate stands, without the comparison
        log.warning("no consensus comparison: %s", exc)
        return table
    consensus = np.where(~table["partial"].astype(bool) & table["volume_km3"].notna(), consensus, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = table["volume_km3"].to_numpy(float) / consensus
    return table.assign(consensus_volume_km3=consensus, volume_over_consensus=np.where(consensus > 0, ratio, np.nan))


def consensus_totals(table: pd.DataFrame) -> dict[str, Any]:
    """The region's comparison with the consensus (empty without :func:`consensus_columns`): how many glaciers
    have one, their volume and the consensus', and the median glacier ratio."""
    if "consensus_volume_km3" not in table:
        return {}
    has = table["consensus_volume_km3"].notna()
    return {"consensus": {"n_glaciers": int(has.sum()),
                          "volume_km3": float(table.loc[has, "volume_km3"].sum()),
                          "consensus_volume_km3": float(table.loc[has, "consensus_volume_km3"].sum()),
                          "median_volume_over_consensus": float(table.loc[has, "volume_over_consensus"].median())
                          if has.any() else float("nan"),
                          "source": "Farinotti et al. (2019) consensus, g2ti vol_itmix_m3 (RGI 6 ids)"}}


def region_totals(table: pd.DataFrame) -> dict[str, Any]:
    """Totals of a glacier table: area, volume, its uncertainty, sea-level equivalent, counts.

    ``area_km2`` is the outlines' area (glaciers with a DEM), ``estimated_area_km2`` the part of it
    the volume covers: smaller where outlines reach beyond the DEM (``partial``) or a glacier failed.

    Glacier volume errors share their causes (the model, the rate factor, the DEM), so the
    region's ``volume_std_km3`` adds them linearly (fully correlated), not in quadrature;
    ``volume_std_independent_km3`` is the quadrature sum, a lower bound. ``n_unmeasured_region``: glaciers
    estimated in RGI regions the model saw no measured glacier of (``measured_region`` False), whose volume
    intervals were too narrow when scored leave one region out (docs/estimate.md); ``counts_by_caution``: glaciers
    per flag of ``caution`` (docs/accuracy.md).
    """
    volume = float(table["volume_km3"].sum(skipna=True))
    std = table["volume_std_km3"].fillna(0)
    no_dem = table["status"] == "no_dem"  # outlines that no DEM covers: counted, not in the totals
    return dict(
        n_glaciers=int((~no_dem).sum()),
        n_no_dem=int(no_dem.sum()),
        area_km2=float(table.loc[~no_dem, "area_km2"].sum()),
        estimated_area_km2=float(table["estimated_area_km2"].sum()),
        volume_km3=volume,
        volume_std_km3=float(std.sum()),
        volume_std_independent_km3=float(np.sqrt((std**2).sum())),
        # glacier errors added linearly (as the 1-sigma): the region's 90 % interval is the sum of the glaciers'
        volume_90_km3=[float(table[c].sum()) if c in table else float("nan")
                       for c in ("volume_90_low_km3", "volume_90_high_km3")],
        sea_level_equivalent_mm=sea_level_equivalent_mm(volume),
        sle_formula="SLE_mm = V_km3 * 900/1028 / 3.625e8 km2 * 1e6 (ice below sea level not subtracted)",
        counts_by_status={k: int(v) for k, v in table["status"].value_counts().items()},
        counts_by_resolution_mode={k: int(v) for k, v in table["resolution_mode"].value_counts().items() if k},
        n_partial=int(table["partial"].astype(bool).sum()),
        n_unmeasured_region=int((table.get("measured_region", pd.Series(dtype=object)).eq(False) & ~no_dem).sum()),
        counts_by_caution=caution_counts(table.get("caution", pd.Series(dtype=str))[~no_dem]),
        resampling={k: int(v) for k, v in table["resampling"].value_counts().items()},
        working_resolution_m={"min": float(table["working_resolution_m"].min()),
                              "max": float(table["working_resolution_m"].max())},
        **consensus_totals(table),
    )
