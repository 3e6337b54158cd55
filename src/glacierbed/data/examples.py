"""Named examples: a DEM, outlines and optional observations under one name, as registry paths.

:data:`EXAMPLES` lists them, :func:`get_example` resolves one to absolute local paths
(verified, downloaded if needed), :func:`glathida_grids` lists the 23 GlaThiDa
thickness-grid examples with their ``meta.json`` and :func:`consensus_volumes_km3` reads the
consensus volumes. Re-exported by :mod:`glacierbed.data.registry`.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from glacierbed.core.errors import CorruptFileError, DataNotFoundError, EmptySelectionError
from glacierbed.data.store import REGISTRY, get_file, locate

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from glacierbed.data.rasters import Raster

_O = "oggm-sample-data/"
_TF = _O + "test-files/"


@dataclass(frozen=True)
class Example:
    """A named study case: DEM tile(s), outlines and optional extras, as registry paths."""

    name: str
    dem: tuple[str, ...]
    outlines: str | None
    glacier_mask: str | None = None
    observations: str | None = None
    consensus: str | None = None
    description: str = ""
    #: other files by role, e.g. ``(("meta", "glathida-grids/<id>/meta.json"),)``
    extras: tuple[tuple[str, str], ...] = ()
    #: the glaciers scored when the outline file holds more (a region's file); empty = every outline
    glaciers: tuple[str, ...] = ()

    @property
    def files(self) -> list[str]:
        extra = (self.outlines, self.glacier_mask, self.observations, self.consensus)
        return [*self.dem, *(f for f in extra if f), *(rel for _, rel in self.extras)]


@dataclass(frozen=True)
class ResolvedExample:
    """An :class:`Example` with absolute local paths."""

    name: str
    dem: list[Path]
    outlines: Path | None
    glacier_mask: Path | None
    observations: Path | None
    consensus: Path | None
    description: str = ""
    extras: dict[str, Path] = field(default_factory=dict)
    glaciers: tuple[str, ...] = ()

    @property
    def estimate_outlines(self) -> Path | None:
        """What ``estimate`` reads as outlines: the outline file, else the glacier mask raster (each patch a glacier)."""
        return self.outlines if self.outlines is not None else self.glacier_mask


_GG = "glathida-grids/"
#: the glaciers of the ``glathida-grids`` dataset (RGI 6.0 ids), from its registered files
GLATHIDA_GRID_IDS: tuple[str, ...] = tuple(sorted(
    PurePosixPath(rel).parent.name for rel in REGISTRY if rel.startswith(_GG) and rel.endswith("/meta.json")))
GLATHIDA_EXAMPLE_PREFIX = "glathida-"


def _glathida_grid_example(rgi_id: str) -> Example:
    """Example ``glathida-<rgi_id>``: OGGM surface DEM, mask outline, measured-thickness grid."""
    d = _GG + rgi_id + "/"
    return Example(GLATHIDA_EXAMPLE_PREFIX + rgi_id, (d + "surface.tif",), d + "outline.gpkg",
                   observations=d + "thickness.tif", extras=(("meta", d + "meta.json"),),
                   description=f"GlaThiDa thickness grid {rgi_id} (RGI region {rgi_id[6:8]}), OGGM grid, local TM")


EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in (
        Example("oetztal", (_O + "test-workflow/srtm_oetztal.tif",), _O + "test-workflow/rgi/rgi_oetztal.shp",
                description="Ötztal Alps, 20 RGI 5.0 glaciers on SRTM 3\" (EPSG:4326); GlaThiDa mean thickness "
                            "for ~30 glaciers in glathida/glacier.csv"),
        Example("hintereisferner", (_TF + "hef_srtm.tif",), _TF + "Hintereisferner_RGI6.shp",
                consensus=_TF + "consensus_composite/RGI60-11.00897_thickness.tif",
                description="Hintereisferner RGI60-11.00897, SRTM 3\" + Farinotti 2019 consensus (25 m)"),
        Example("south-glacier", (_O + "benchmarks/south_glacier/dem_SouthGlacier.tif",),
                _O + "benchmarks/south_glacier/SouthGlacier.shp",
                observations=_O + "benchmarks/south_glacier/IceThick_SouthGlacier.shp",
                description="ITMIX South Glacier (Yukon), 20 m DEM, 9,619 radar thickness points",
                extras=(("smb", _O + "benchmarks/south_glacier/mb_SouthGlacier.tif"),)),
        Example("baltoro", (_TF + "baltoro_srtm_clip.tif",), _TF + "baltoro_wgs84.shp",
                description="Baltoro (Karakoram, RGI 14), SRTM 3\""),
        Example("columbia", (_TF + "columbia/dem_Columbia.tif",), _TF + "columbia/01_rgi60_Columbia.shp",
                description="Columbia Glacier RGI60-01.10689 (Alaska, tidewater), 100 m local TM"),
        Example("chhota-shigri", (_TF + "dem_chhota_shigri.tif",), _TF + "RGI50-14.15990.shp",
                description="Chhota Shigri RGI50-14.15990 (Himalaya, RGI 14), 94 m local TM"),
        Example("alaska-10299", (_TF + "dem_RGI50-01.10299.tif",), _TF + "rgi_RGI50-01.10299.shp",
                description="Coxe Glacier RGI50-01.10299 (Alaska), 100 m local TM"),
        Example("greenland-08389", (_TF + "dem_RGI50-05.08389.tif",), _TF + "RGI50-05.08389.shp",
                description="Greenland periphery glacier RGI50-05.08389, 100 m local TM"),
        Example("karakoram-03439", (_TF + "RGI60-14.03439/RGI60-14.03439.tif",),
                _TF + "RGI60-14.03439/RGI60-14.03439.shp",
                description="Karakoram glacier RGI60-14.03439, SRTM 3\""),
        Example("alpine-01270", (_O + "realisation/RGI50-11.01270/dem.tif",),
                _O + "realisation/RGI50-11.01270/outlines.shp",
                description="Oberer Grindelwaldgletscher RGI50-11.01270, 46 m local TM"),
        Example("nz-canterbury", ("nz-canterbury-25m/dem.tif",), "nz-canterbury-25m/glaciers.gpkg",
                description="Southern Alps (Canterbury), 9 RGI 6.0 glaciers on a 25 m NZTM DEM"),
        Example("svalbard", ("svalbard-longyearbyen/dem_1990.tif",), None,
                glacier_mask="svalbard-longyearbyen/glacier_mask_1990.tif",
                description="Longyearbyen 1990 DEM, 20 m, glacier mask raster (no outlines: each mask patch is a glacier)"),
        Example("cordillera-blanca", ("peru-cordillera-blanca-srtm3/dem.tif",), None,
                description="Cordillera Blanca SRTM 3\" DEM, no outlines (use RGI 6.0 region 16)"),
        Example("alps-200m", tuple(f"alps-topography-200m/topg-{t}.tif"
                                   for t in ("jura", "linth", "lyon", "rhine", "ticino")), None,
                description="Glacier-free Alpine terrain, five 200 m tiles (training terrain, no glaciers)"),
        *(_glathida_grid_example(rgi_id) for rgi_id in GLATHIDA_GRID_IDS),
    )
}


_R11 = "rgi11-alps/"
RGI11_EXAMPLE_PREFIX = "rgi11-alps-"


@functools.lru_cache(maxsize=1)
def _rgi11_footprints() -> "gpd.GeoDataFrame":
    """The rgi11-alps outlines (EPSG:4326): ``rgi_id`` and geometry, with a spatial index."""
    import geopandas as gpd

    g = gpd.read_file(get_file(_R11 + "outlines.gpkg"), layer="outlines", columns=["RGIId"])
    return g.rename(columns={"RGIId": "rgi_id"})


def rgi11_alps_example(rgi_id: str, margin_m: float = 1000.0, margin_fraction: float = 0.5) -> Example:
    """Example ``rgi11-alps-<rgi_id>`` of one RGI 6.0 region-11 glacier: its own DEM tile and the tiles on
    the same grid that meet its window (bounding box + ``max(margin_m, margin_fraction * extent)``), the
    terrain a region run gives it (a tile alone has a margin of a few cells only); all region-11 outlines."""
    import rasterio
    import shapely

    from glacierbed.data.region_inputs import margin_boxes

    g = _rgi11_footprints()
    own = g.index[g["rgi_id"] == rgi_id]
    if not len(own):
        raise DataNotFoundError(f"{_R11}outlines.gpkg: no glacier '{rgi_id}' (RGI 6.0 region 11 ids: "
                                f"{g['rgi_id'].iloc[0]}, ...)")
    box = margin_boxes(np.asarray([g.geometry[own[0]].bounds]), margin_m, margin_fraction)[0]
    near = g.iloc[g.sindex.query(shapely.box(*box), predicate="intersects")]["rgi_id"]
    tiles = [f"{_R11}dem/{rgi_id}.tif"]
    with rasterio.open(get_file(tiles[0])) as src:
        grid = (src.crs, src.res)
    for other in sorted(set(near) - {rgi_id}):
        rel = f"{_R11}dem/{other}.tif"
        with rasterio.open(get_file(rel)) as src:
            if (src.crs, src.res) == grid:
                tiles.append(rel)
    return Example(RGI11_EXAMPLE_PREFIX + rgi_id, tuple(tiles), _R11 + "outlines.gpkg",
                   description=f"{rgi_id} (RGI 6.0 region 11) on its DEM tile + {len(tiles) - 1} neighbouring tiles",
                   glaciers=(rgi_id,))


def get_example(name: str) -> ResolvedExample:
    """Resolve a named example to absolute paths (verified, downloaded if needed); ``rgi11-alps-<RGI id>``
    names one glacier of the rgi11-alps dataset (:func:`rgi11_alps_example`)."""
    if name.startswith(RGI11_EXAMPLE_PREFIX):
        e = rgi11_alps_example(name.removeprefix(RGI11_EXAMPLE_PREFIX))
    elif name not in EXAMPLES:
        raise DataNotFoundError(f"unknown example '{name}'; known examples: {', '.join(EXAMPLES)}")
    else:
        e = EXAMPLES[name]
    opt = lambda rel: get_file(rel) if rel else None  # noqa: E731
    return ResolvedExample(e.name, [get_file(p) for p in e.dem], opt(e.outlines), opt(e.glacier_mask),
                           opt(e.observations), opt(e.consensus), e.description,
                           {role: get_file(rel) for role, rel in e.extras}, e.glaciers)


def example_available(name: str) -> bool:
    """Whether every file of an example is present locally (data dir or cache), unchecked."""
    if name.startswith(RGI11_EXAMPLE_PREFIX):  # its own tile and the outlines (neighbours are optional context)
        rgi_id = name.removeprefix(RGI11_EXAMPLE_PREFIX)
        return all(locate(f) is not None for f in (_R11 + "outlines.gpkg", f"{_R11}dem/{rgi_id}.tif"))
    return all(locate(f) is not None for f in EXAMPLES[name].files)


#: ``meta.json`` keys listed by :func:`glathida_grids` (renamed where the name says more)
_GLATHIDA_META = {"RGIId": "rgi_id", "name": "name", "rgi_region": "region", "dx_m": "dx_m", "rows": "rows",
                  "cols": "cols", "glacier_cells": "glacier_cells", "glacier_area_km2": "glacier_area_km2",
                  "n_obs_cells": "n_obs_cells", "mean_obs_thickness_m": "mean_obs_thickness_m",
                  "consensus_mean_thickness_m": "consensus_mean_thickness_m",
                  "consensus_volume_km3": "consensus_volume_km3", "consensus_note": "consensus_note",
                  "location_tier": "location_tier", "survey_date": "survey_date",
                  "glathida_glacier_id": "glathida_glacier_id", "dem_source": "dem_source"}


def glathida_grid_meta(rgi_id: str) -> dict[str, object]:
    """The ``meta.json`` of one glathida-grids glacier, as a dict (verified like every file)."""
    rel = f"{_GG}{rgi_id}/meta.json"
    if rel not in REGISTRY:
        raise DataNotFoundError(f"{rel}: '{rgi_id}' is not one of the {len(GLATHIDA_GRID_IDS)} glathida-grids "
                                f"glaciers ({', '.join(GLATHIDA_GRID_IDS[:3])}, ...)")
    path = get_file(rel)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: not valid JSON ({exc})") from exc


def glathida_grids(select: "Sequence[str] | None" = None) -> "pd.DataFrame":
    """The 23 GlaThiDa thickness-grid examples with their ``meta.json``, one row each
    (``select``: only these, by RGI id or example name; an unknown one is an error).

    Columns: ``example`` (name for :func:`get_example`), ``rgi_id``, ``name``, ``region``
    (RGI 6 region, "01".."12"), ``dx_m``, grid size, glacier cells/area, ``n_obs_cells``,
    ``mean_obs_thickness_m``, the consensus volume and mean thickness (NaN where the
    consensus has none, see ``consensus_note``), ``location_tier`` (A-D: how well the grid
    is placed on Earth), ``survey_date``, GlaThiDa id and assumed DEM source.
    """
    import pandas as pd

    rows = []
    for rgi_id in GLATHIDA_GRID_IDS:
        meta = glathida_grid_meta(rgi_id)
        rows.append({"example": GLATHIDA_EXAMPLE_PREFIX + rgi_id,
                     **{new: meta.get(old) for old, new in _GLATHIDA_META.items()}})
    df = pd.DataFrame(rows)
    for col in ("consensus_mean_thickness_m", "consensus_volume_km3"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["glathida_glacier_id"] = df["glathida_glacier_id"].astype("Int64")
    if select is None:
        return df
    want = {g.removeprefix(GLATHIDA_EXAMPLE_PREFIX) for g in select}
    unknown = want - set(df["rgi_id"])
    if unknown:
        raise EmptySelectionError(f"not glathida-grids glaciers: {', '.join(sorted(unknown))}")
    return df[df["rgi_id"].isin(want)]


#: the files of one measured-thickness grid folder (the ``glathida-grids`` layout; ``meta.json`` optional)
GRID_FOLDER_FILES = ("surface.tif", "thickness.tif", "outline.gpkg")


def grid_folders(root: str | Path, select: "Sequence[str] | None" = None) -> "pd.DataFrame":
    """Measured-thickness grids in the ``glathida-grids`` layout from any folder, read in place (e.g. glaciers
    nobody on the team has seen, kept out of the kit's registry): one row per sub-folder with
    :data:`GRID_FOLDER_FILES`, the columns of :func:`glathida_grids` (from its ``meta.json``; without one, the RGI id
    is the folder's name and the consensus unknown) and the paths ``dem``, ``outlines``, ``observations``.
    ``select``: only these folders (RGI ids); an unknown one, or a folder missing a file, is an error naming it."""
    import pandas as pd
    import rasterio

    from glacierbed.data.region_inputs import rgi_region_number

    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(f"{root}: no such folder of thickness grids")
    folders = sorted(d for d in root.iterdir() if d.is_dir() and (d / "thickness.tif").exists())
    if select is not None:
        known = {d.name: d for d in folders}
        if unknown := sorted(set(select) - set(known)):
            raise EmptySelectionError(f"{root}: no grid folder {', '.join(unknown)} (has {len(known)})")
        folders = [known[g] for g in select]
    if not folders:
        raise EmptySelectionError(f"{root}: no sub-folder holds a thickness.tif "
                                  f"(expected {', '.join(GRID_FOLDER_FILES)})")
    rows = []
    for d in folders:
        if missing := [f for f in GRID_FOLDER_FILES if not (d / f).exists()]:
            raise DataNotFoundError(f"{d}: missing {', '.join(missing)} "
                                    f"(a grid folder holds {', '.join(GRID_FOLDER_FILES)})")
        try:
            meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptFileError(f"{d / 'meta.json'}: not valid JSON ({exc})") from exc
        row = {"example": None, **{new: meta.get(old) for old, new in _GLATHIDA_META.items()}}
        row["rgi_id"] = row["rgi_id"] or d.name
        if row["region"] is None and (region := rgi_region_number(row["rgi_id"])) is not None:
            row["region"] = f"{region:02d}"
        row["consensus_note"] = row["consensus_note"] or (None if meta else "no meta.json")
        if row["dx_m"] is None:
            with rasterio.open(d / "surface.tif") as src:
                row["dx_m"] = float(src.res[0])
        rows.append(row | {"dem": d / "surface.tif", "outlines": d / "outline.gpkg",
                           "observations": d / "thickness.tif"})
    df = pd.DataFrame(rows)
    for col in ("consensus_mean_thickness_m", "consensus_volume_km3", "dx_m", "mean_obs_thickness_m"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return _with_consensus(df)


def _with_consensus(grids: "pd.DataFrame") -> "pd.DataFrame":
    """Grid folders without a consensus in their ``meta.json``: the consensus volume of their RGI 6 id (when the
    g2ti table is local, never downloaded here) over their outline's area, as the kit's grids have it."""
    import geopandas as gpd

    missing = grids["consensus_mean_thickness_m"].isna()
    if not missing.any() or locate(CONSENSUS_VOLUMES_FILE) is None:
        return grids
    volumes = consensus_volume_of(grids["rgi_id"])
    out = grids.copy()
    for i in out.index[missing & np.isfinite(volumes)]:
        volume = float(volumes[out.index.get_loc(i)])
        area_m2 = float(gpd.read_file(out.at[i, "outlines"]).area.sum())
        out.loc[i, ["consensus_volume_km3", "consensus_mean_thickness_m", "consensus_note"]] = [
            volume, volume * 1e9 / area_m2, "from the g2ti table over the outline's area (no consensus in meta.json)"]
    return out


#: the kit's Farinotti et al. (2019) consensus-type volumes: g2ti/ITMIX, one row per RGI 6 glacier
CONSENSUS_VOLUMES_FILE = _O + "g2ti/rgi62_itmix_df.h5"


def consensus_volumes_km3() -> "pd.Series":
    """The consensus-type volume (km³) of every RGI 6 glacier, by RGI 6 id (``vol_itmix_m3`` of
    :data:`CONSENSUS_VOLUMES_FILE`, Farinotti et al. 2019): the product users compare glacierbed with."""
    import pandas as pd

    path = get_file(CONSENSUS_VOLUMES_FILE)
    try:
        table = pd.read_hdf(path)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # PyTables' HDF5ExtError is a RuntimeError
        raise CorruptFileError(f"{path}: not the g2ti volume table ({type(exc).__name__})") from exc
    if "vol_itmix_m3" not in table:
        raise CorruptFileError(f"{path}: no vol_itmix_m3 column (has {', '.join(map(str, table.columns))})")
    return (table["vol_itmix_m3"] / 1e9).rename("consensus_volume_km3")


#: an RGI 6 glacier id of any 6.x release (RGI60-11.00897, RGI62-...): what the consensus table is keyed by (as RGI60)
RGI6_ID = re.compile(r"^RGI6\d-\d{2}\.\d{5}$")


def consensus_volume_of(rgi_ids: "Iterable[str]", volumes: "pd.Series | None" = None) -> np.ndarray:
    """The consensus volume (km³) of each glacier id: an RGI 6 id looked up in ``volumes`` (default
    :func:`consensus_volumes_km3`), NaN for any other id and for an id the table lacks."""
    import pandas as pd

    ids = pd.Series([str(r) for r in rgi_ids], dtype=object)
    table = consensus_volumes_km3() if volumes is None else volumes
    found = table.reindex(ids.str.replace(r"^RGI6\d", "RGI60", regex=True)).to_numpy(float)
    return np.where(ids.str.match(RGI6_ID).to_numpy(bool), found, np.nan)


def read_case_inputs(example: str) -> tuple["Raster", "gpd.GeoDataFrame", Example]:
    """A kit example's DEM (metric), its outlines that overlap it, and the resolved example."""
    import shapely

    from glacierbed.data import registry
    from glacierbed.data.outlines import check_overlap, read_outlines
    from glacierbed.data.rasters import read_dem

    ex = registry.get_example(example)
    dem = read_dem(ex.dem)
    outlines = read_outlines(ex.outlines)
    outlines = outlines[outlines.to_crs(dem.crs).intersects(shapely.box(*dem.bounds)).to_numpy()]
    return dem, check_overlap(outlines, dem).reset_index(drop=True), ex
