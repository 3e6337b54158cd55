"""OGGM as a peer method: its own inversion tasks, run offline on our DEM and outline.

:func:`oggm_thickness` runs the Open Global Glacier Model (Maussion et al. 2019, v1.6) on
one glacier from the same DEM and outline every other method gets, with no climate data
and no download:

1. ``define_glacier_region(source="USER")``: OGGM's local grid (transverse Mercator at the
   glacier, ``dx = 14 sqrt(A) + 10`` m clipped to 10-200 m, ``border`` cells of terrain),
   the user DEM warped onto it;
2. ``simple_glacier_masks``, ``elevation_band_flowline``,
   ``fixed_dx_elevation_band_flowline``: one elevation-band flowline (Huss & Farinotti 2012);
3. ``apparent_mb_from_linear_mb``: a linear mass balance (3 mm w.e. m-1) whose ELA makes
   it balanced over the glacier;
4. ``prepare_for_inversion``, ``mass_conservation_inversion`` with OGGM's default
   ``inversion_glen_a`` = 2.4e-24 Pa-3 s-1 and no sliding;
5. ``distribute_thickness_per_altitude``: the flowline thickness spread over the map
   (distance to border ^ 0.25 weighting), then warped back onto the DEM grid.

:func:`oggm_thickness_map` does this for every outline of a case and sums the disjoint
glaciers. Failures never raise: ``status`` says why (``"not installed"``,
``"failed: <error>"``).

Offline: ``cfg.initialize_minimal`` (no sample-data download), ``has_internet = False``
(any download attempt fails with OGGM's NoInternetException, reported in the status), the
RGI region tables OGGM reads for a glacier directory come from the registry
(``oggm-sample-data/rgi_meta``), and salem's map module (which downloads sample shapefiles
when imported) is not loaded.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Iterator

import geopandas as gpd
import numpy as np
from threadpoolctl import threadpool_limits

from glacierbed.evaluation.baselines import finish_thickness, outline_areas_km2
from glacierbed.data.outlines import rasterize_ids
from glacierbed.data.rasters import Raster, resample_to_grid
from glacierbed.core.errors import MissingCRSError

log = logging.getLogger(__name__)

#: OGGM tasks run by :func:`oggm_thickness`, in order (for tables and docs)
OGGM_TASKS = (
    "define_glacier_region(source='USER')",
    "simple_glacier_masks",
    "elevation_band_flowline",
    "fixed_dx_elevation_band_flowline",
    "apparent_mb_from_linear_mb",
    "prepare_for_inversion",
    "mass_conservation_inversion",
    "distribute_thickness_per_altitude",
)
#: OGGM's default linear mass-balance gradient of ``apparent_mb_from_linear_mb`` (mm w.e. m-1)
MB_GRADIENT = 3.0
#: grid border (cells of terrain around the glacier); OGGM's minimum for inversion-only runs
BORDER = 10
#: RGI meta tables OGGM reads when it opens a glacier directory, served from the registry
_RGI_META = {name: f"oggm-sample-data/rgi_meta/{name}"
             for name in ("rgi_regions.csv", "rgi_subregions_V5.csv", "rgi_subregions_V6.csv")}


@dataclass
class PeerResult:
    """Outcome of a peer model on one glacier (or a set of glaciers).

    ``thickness``: map on the DEM grid (m; 0 outside the outline, NaN where no
    prediction) or None; ``status``: "ok", "not installed" or "failed: <reason>";
    ``volume_km3``: the model's own volume (NaN if none); ``details``: diagnostics.
    """

    thickness: Raster | None
    status: str
    seconds: float
    volume_km3: float = np.nan
    details: dict[str, object] = field(default_factory=dict)


def oggm_version() -> str | None:
    """The installed OGGM version, or None when it cannot be imported."""
    try:
        oggm = _import_oggm()
    except Exception:  # ImportError, or a dependency failing at import (logged)
        log.debug("oggm cannot be imported", exc_info=True)
        return None
    return str(oggm.__version__)


class _SkipSalemGraphics(importlib.abc.MetaPathFinder):
    """Makes ``import salem.graphics`` fail as "needs matplotlib" so salem skips it.

    salem's map module downloads salem-sample-data from GitHub when it is imported (for
    country borders of its plots); OGGM's tasks never use it. salem's ``__init__`` treats
    an ImportError mentioning matplotlib as "no plotting" and goes on.
    """

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "salem.graphics":
            raise ImportError("salem.graphics skipped by glacierbed (its import downloads sample data; "
                              "not needed without matplotlib maps)")
        return None


def _import_oggm() -> ModuleType:
    """Import oggm (and salem without its downloading map module)."""
    if "salem" not in sys.modules:
        finder = _SkipSalemGraphics()
        sys.meta_path.insert(0, finder)
        try:
            import salem  # noqa: F401
        finally:
            sys.meta_path.remove(finder)
    import oggm

    return oggm


@contextlib.contextmanager
def _offline_oggm(working_dir: Path) -> Iterator[ModuleType]:
    """OGGM configured for one offline run in ``working_dir``; yields ``oggm``.

    Sets OGGM's global parameters to its defaults (``initialize_minimal``) plus ours,
    forbids downloads, serves the RGI meta tables from the registry and limits BLAS to one
    thread; afterwards puts back OGGM's previous configuration (``pack_config`` /
    ``unpack_config``) and the root logger's handlers, which OGGM's logging setup replaces.
    """
    oggm = _import_oggm()
    from oggm import cfg
    from oggm.utils import _funcs

    from glacierbed.data.registry import get_file

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    demo_file = _funcs.get_demo_file

    def rgi_meta_file(fname: str) -> str:
        if fname not in _RGI_META:
            raise FileNotFoundError(f"OGGM asked for its sample file {fname!r}; glacierbed runs OGGM offline "
                                    f"and serves only {', '.join(_RGI_META)}")
        return str(get_file(_RGI_META[fname]))

    saved = cfg.pack_config()
    # one BLAS thread: OGGM works on small arrays (scipy's griddata/Delaunay makes many tiny
    # LAPACK calls), and multi-threaded OpenBLAS on a busy machine made one glacier take
    # 0.4-30 s instead of 0.4 s
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # OGGM 1.6 calls APIs that shapely/rasterio/pandas deprecate: thousands per glacier, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            cfg.initialize_minimal(logging_level="CRITICAL")
            cfg.PARAMS["has_internet"] = False
            cfg.PARAMS["use_multiprocessing"] = False
            cfg.PARAMS["use_intersects"] = False
            cfg.PARAMS["border"] = BORDER
            cfg.PARAMS["continue_on_error"] = False
            cfg.PARAMS["keep_multipolygon_outlines"] = False
            cfg.PATHS["working_dir"] = str(working_dir)
            _funcs.get_demo_file = rgi_meta_file
            yield oggm
        finally:
            _funcs.get_demo_file = demo_file
            cfg.unpack_config(saved)
            for h in root.handlers[:]:
                root.removeHandler(h)
            for h in handlers:
                root.addHandler(h)
            root.setLevel(level)


_RGI_ID = re.compile(r"RGI\d\d-(\d\d)\.(\d{5})")


def _entity(outline: gpd.GeoDataFrame, dem: Raster, index: int = 0) -> gpd.GeoDataFrame:
    """One outline as an RGI 6 entity in lon/lat, the way OGGM's GlacierDirectory reads it.

    The id keeps region and number of an RGI 5/6/7-style ``rgi_id`` (as ``RGI60-RR.NNNNN``,
    OGGM's folder name; any other id becomes region 00); area and centre are geometric.
    """
    row = outline.iloc[[index]]
    m = _RGI_ID.match(str(row["rgi_id"].iloc[0]) if "rgi_id" in row else "")
    region, number = (m.group(1), m.group(2)) if m else ("00", f"{index + 1:05d}")
    entity = gpd.GeoDataFrame(geometry=row.geometry.to_crs("EPSG:4326").to_numpy(), crs="EPSG:4326")
    centre = entity.geometry.iloc[0].representative_point()
    attrs = {"RGIId": f"RGI60-{region}.{number}", "GLIMSId": "", "CenLon": centre.x, "CenLat": centre.y,
             "Area": float(outline_areas_km2(row, dem.crs)[0]), "O1Region": region, "O2Region": "0",
             "Name": str(row["name"].iloc[0]) if "name" in row else "", "BgnDate": "20009999",
             "Form": 0, "TermType": 0, "Status": 0, "Connect": 0}
    for col in ("Form", "TermType", "Status"):  # RGI 6 attributes, when the outline has them
        if col in row and str(row[col].iloc[0]).isdigit():
            attrs[col] = int(row[col].iloc[0])
    for k, v in attrs.items():
        entity[k] = v
    return entity


def oggm_thickness(dem: Raster, outline: gpd.GeoDataFrame, index: int = 0,
                   working_dir: str | os.PathLike | None = None) -> PeerResult:
    """OGGM's elevation-band mass-conservation inversion of one glacier, on ``dem``'s grid.

    ``outline``: outlines in any CRS; ``outline.iloc[index]`` is inverted. ``dem``: a
    metric :class:`Raster` covering the glacier plus a margin. Returns a
    :class:`PeerResult` whose map is 0 outside that outline and NaN where the DEM has no
    data; ``volume_km3`` is OGGM's own inversion volume, ``details`` has OGGM's grid
    ``dx_m``, the balanced ``ela_m``, the number of flowline points and the volume on
    ``dem``'s grid. Never raises for a failing glacier: the status says why.

    A multi-part outline is reduced by OGGM to its largest part (``multipolygon_to_polygon``);
    the other parts get no OGGM ice (0 m) and their area is ``details["parts_dropped_km2"]``.
    """
    t0 = time.perf_counter()
    try:
        _import_oggm()
    except ImportError as exc:
        return PeerResult(None, "not installed", 0.0, details={"error": str(exc)})
    except Exception as exc:  # e.g. a dependency that downloads at import time, offline
        return PeerResult(None, f"failed: importing oggm: {type(exc).__name__}: {exc}"[:300], 0.0)
    if not dem.crs.is_projected:
        raise MissingCRSError(f"{dem.source or 'DEM'}: OGGM peer needs a metric (projected) DEM grid")
    try:
        with tempfile.TemporaryDirectory(prefix="glacierbed-oggm-", dir=working_dir) as tmp, \
                _offline_oggm(Path(tmp)) as oggm:
            import xarray as xr
            from oggm import cfg, tasks

            cfg.PATHS["dem_file"] = str(dem.to_file(Path(tmp) / "user_dem.tif"))
            gdir = oggm.GlacierDirectory(_entity(outline, dem, index).iloc[0], base_dir=tmp)
            tasks.define_glacier_region(gdir, source="USER")
            tasks.simple_glacier_masks(gdir)
            tasks.elevation_band_flowline(gdir)
            tasks.fixed_dx_elevation_band_flowline(gdir)
            tasks.apparent_mb_from_linear_mb(gdir, mb_gradient=MB_GRADIENT)
            tasks.prepare_for_inversion(gdir)
            tasks.mass_conservation_inversion(gdir)  # glen_a, fs: OGGM's defaults
            tasks.distribute_thickness_per_altitude(gdir)
            volume_m3 = float(tasks.get_inversion_volume(gdir))
            with xr.open_dataset(gdir.get_filepath("gridded_data")) as ds:
                h = ds["distributed_thickness"].to_numpy().astype(np.float32)
            grid = Raster.from_file(gdir.get_filepath("dem"))
            fls = gdir.read_pickle("inversion_flowlines")
            details = {"dx_m": float(gdir.grid.dx), "ela_m": float(gdir.read_pickle("linear_mb_params")["ela_h"]),
                       "n_flowline_points": int(sum(len(fl.surface_h) for fl in fls)),
                       "glen_a": float(cfg.PARAMS["inversion_glen_a"]), "oggm_version": oggm.__version__}
        # outside OGGM's mask the thickness is NaN: 0 there, so the warp tapers to the margin
        on_dem = resample_to_grid(grid.with_data(np.nan_to_num(h, nan=0.0)), dem)
        ids = rasterize_ids(outline.iloc[[index]], dem)
        out = finish_thickness(dem, ids, on_dem.data)
        out.source = "oggm"
        details["volume_on_grid_km3"] = float(np.nansum(out.data) * dem.pixel_area_m2 / 1e9)
        details["parts_dropped_km2"] = _parts_dropped_km2(outline.iloc[[index]], dem)
        return PeerResult(out, "ok", time.perf_counter() - t0, volume_m3 / 1e9, details)
    except Exception as exc:  # OGGM's errors (geometry, DEM, flowline), reported per glacier
        msg = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        log.warning("OGGM failed on %s: %s", _glacier_id(outline, index), msg)
        return PeerResult(None, f"failed: {msg}", time.perf_counter() - t0)


def _parts_dropped_km2(outline: gpd.GeoDataFrame, dem: Raster) -> float:
    """Area of all but the largest part of a (multi)polygon outline (km2), in the DEM's CRS."""
    geom = outline.to_crs(dem.crs).geometry.iloc[0]
    areas = sorted((p.area for p in getattr(geom, "geoms", [geom])), reverse=True)
    return float(sum(areas[1:]) / 1e6)


def _glacier_id(outline: gpd.GeoDataFrame, index: int) -> str:
    return str(outline["rgi_id"].iloc[index]) if "rgi_id" in outline else f"outline {index}"


def oggm_thickness_map(dem: Raster, outlines: gpd.GeoDataFrame,
                       working_dir: str | os.PathLike | None = None) -> PeerResult:
    """OGGM on every outline, one glacier at a time, as one map on ``dem``'s grid.

    Glaciers are disjoint, so their maps add up. A glacier OGGM fails on stays NaN
    (no prediction) and is named in the status, e.g. ``"ok (19 of 20 glaciers; failed:
    RGI50-11.00719: ...)"``; ``details["per_glacier"]`` holds each glacier's status,
    seconds and volume.
    """
    t0 = time.perf_counter()
    results = [oggm_thickness(dem, outlines, i, working_dir) for i in range(len(outlines))]
    per_glacier = [{"rgi_id": _glacier_id(outlines, i), "status": r.status, "seconds": r.seconds,
                    "volume_km3": r.volume_km3, **{k: v for k, v in r.details.items() if k != "error"}}
                   for i, r in enumerate(results)]
    ok = [r for r in results if r.thickness is not None]
    seconds = time.perf_counter() - t0
    if not ok:
        status = results[0].status if len({r.status for r in results}) == 1 else \
            "failed: " + "; ".join(f"{g['rgi_id']}: {g['status']}" for g in per_glacier)[:500]
        return PeerResult(None, status, seconds, details={"per_glacier": per_glacier})
    data = np.sum([np.nan_to_num(r.thickness.data, nan=0.0) for r in ok], axis=0)
    failed = [i for i, r in enumerate(results) if r.thickness is None]
    if failed:
        ids = rasterize_ids(outlines, dem)
        data[np.isin(ids, np.array(failed) + 1)] = np.nan
    data[~np.isfinite(dem.data)] = np.nan
    status = "ok"
    if failed:
        status = (f"ok ({len(ok)} of {len(results)} glaciers; failed: "
                  + "; ".join(f"{per_glacier[i]['rgi_id']}: {results[i].status.removeprefix('failed: ')}"
                              for i in failed))[:500] + ")"
    out = dem.with_data(data)
    out.source = "oggm"
    return PeerResult(out, status, seconds, float(sum(r.volume_km3 for r in ok)),
                      {"per_glacier": per_glacier, "n_failed": len(failed)})
