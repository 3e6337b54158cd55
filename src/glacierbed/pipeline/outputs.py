"""Region outputs: mosaics on the DEM grid, the per-glacier tables, the region summary.

Every glacier task writes its thickness and spread on a piece of the DEM grid
(``window.npz`` with the piece's upper-left corner in map coordinates); here they are laid
into full-size GeoTIFFs (thickness, bed = DEM - thickness, thickness_std; float32, CRS,
nodata), the table goes to ``glaciers.csv`` and ``glaciers.gpkg``, and the totals to a
summary. All writes are atomic.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterable

import geopandas as gpd
import numpy as np
import pandas as pd

from glacierbed.core.atomic import replacing, write_bytes
from glacierbed.data.rasters import Raster, sample_layers
from glacierbed.core.glaciology import sea_level_equivalent_mm


def write_glacier_window(path: Path, w0: Raster, own0: np.ndarray, thick_map: np.ndarray, std_map: np.ndarray,
                         fine: Raster | None = None) -> None:
    """A glacier's thickness and spread on its bounding piece of the DEM grid ``w0`` (``window.npz``).

    ``fine``: the finer grid of a tiny glacier the maps are on; they are sampled back to ``w0``.
    """
    if fine is not None:
        if own0.any():
            layers = np.stack([np.nan_to_num(thick_map), np.nan_to_num(std_map)])
            thick0, std0 = sample_layers(fine, layers, w0, own0)
            valid0 = own0 & np.isfinite(w0.data)
            thick0, std0 = np.where(valid0, thick0, np.nan), np.where(valid0, std0, np.nan)
        else:
            thick0 = std0 = np.full(w0.shape, np.nan, np.float32)
    else:
        thick0, std0 = thick_map, std_map
    rows, cols = np.nonzero(own0)
    sl = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)) if rows.size else (slice(0, 0),) * 2
    x0, y0 = w0.transform @ ((cols.min() if rows.size else 0), (rows.min() if rows.size else 0))
    buf = io.BytesIO()
    np.savez_compressed(buf, thickness=thick0[sl].astype(np.float32), thickness_std=std0[sl].astype(np.float32),
                        x0=x0, y0=y0)
    write_bytes(path, buf.getvalue())


def write_mosaics(dem: Raster, windows: Iterable[Path], out: Path) -> dict[str, Path]:
    """thickness.tif, bed.tif and thickness_std.tif on the DEM grid from the glaciers' windows."""
    thick = np.full(dem.shape, np.nan, np.float32)
    std = np.full(dem.shape, np.nan, np.float32)
    inv = ~dem.transform
    for f in windows:
        if not f.exists():
            continue
        with np.load(f) as z:
            a, sd = z["thickness"], z["thickness_std"]
            col0, row0 = (int(round(v)) for v in inv @ (float(z["x0"]), float(z["y0"])))
        sl = (slice(row0, row0 + a.shape[0]), slice(col0, col0 + a.shape[1]))
        m = np.isfinite(a)
        thick[sl][m] = a[m]
        std[sl][m] = sd[m]
    bed = np.where(np.isfinite(thick), dem.data - thick, dem.data)
    return {
        "thickness": dem.with_data(thick).to_file(out / "thickness.tif"),
        "bed": dem.with_data(bed).to_file(out / "bed.tif"),
        "thickness_std": dem.with_data(std).to_file(out / "thickness_std.tif"),
    }


def write_tables(outlines: gpd.GeoDataFrame, table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """glaciers.csv and glaciers.gpkg (the outlines with the table's columns)."""
    with replacing(out / "glaciers.csv") as tmp:
        table.to_csv(tmp, index=False)
    geo = outlines[["rgi_id", "geometry"]].merge(table.drop(columns=["name"]), on="rgi_id", how="inner")
    geo = gpd.GeoDataFrame(geo, geometry="geometry", crs=outlines.crs)
    geo.insert(1, "name", geo["rgi_id"].map(dict(zip(table["rgi_id"], table["name"]))))
    with replacing(out / "glaciers.gpkg", keep_suffix=True) as tmp:  # GDAL wants the .gpkg extension
        geo.to_file(tmp, driver="GPKG", layer="glaciers")
    return {"csv": out / "glaciers.csv", "gpkg": out / "glaciers.gpkg"}


def region_totals(table: pd.DataFrame) -> dict[str, Any]:
    """Totals of a glacier table: area, volume, its uncertainty, sea-level equivalent, counts.

    Glacier volume errors share their causes (the model, the rate factor, the DEM), so the
    region's ``volume_std_km3`` adds them linearly (fully correlated), not in quadrature;
    ``volume_std_independent_km3`` is the quadrature sum, a lower bound.
    """
    volume = float(table["volume_km3"].sum(skipna=True))
    std = table["volume_std_km3"].fillna(0)
    return dict(
        n_glaciers=int(len(table)),
        area_km2=float(table["area_km2"].sum()),
        volume_km3=volume,
        volume_std_km3=float(std.sum()),
        volume_std_independent_km3=float(np.sqrt((std**2).sum())),
        sea_level_equivalent_mm=sea_level_equivalent_mm(volume),
        sle_formula="SLE_mm = V_km3 * 900/1028 / 3.625e8 km2 * 1e6 (ice below sea level not subtracted)",
        counts_by_status={k: int(v) for k, v in table["status"].value_counts().items()},
        counts_by_resolution_mode={k: int(v) for k, v in table["resolution_mode"].value_counts().items() if k},
        n_partial=int(table["partial"].astype(bool).sum()),
        resampling={k: int(v) for k, v in table["resampling"].value_counts().items()},
        working_resolution_m={"min": float(table["working_resolution_m"].min()),
                              "max": float(table["working_resolution_m"].max())},
    )
