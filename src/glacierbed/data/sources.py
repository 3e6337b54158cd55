"""Full-size public sources without a fixed checksum: RGI 6.0 regions, Copernicus GLO-30 tiles.

URL patterns, tile naming, and downloads into the cache (``cache_dir()/<subdir>``) with
:func:`pooch.retrieve`. Re-exported by :mod:`glacierbed.data.registry`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Literal, Sequence

import pooch

from glacierbed.core.errors import DataNotFoundError
from glacierbed.data.store import cache_dir

log = logging.getLogger(__name__)

#: RGI 6.0 region file names (same at NSIDC and at the GLIMS mirror)
RGI6_REGIONS: dict[int, str] = {
    1: "Alaska", 2: "WesternCanadaUS", 3: "ArcticCanadaNorth", 4: "ArcticCanadaSouth", 5: "GreenlandPeriphery",
    6: "Iceland", 7: "Svalbard", 8: "Scandinavia", 9: "RussianArctic", 10: "NorthAsia", 11: "CentralEurope",
    12: "CaucasusMiddleEast", 13: "CentralAsia", 14: "SouthAsiaWest", 15: "SouthAsiaEast", 16: "LowLatitudes",
    17: "SouthernAndes", 18: "NewZealand", 19: "AntarcticSubantarctic",
}
#: NSIDC-0770 (needs a free NASA Earthdata login) and the public GLIMS mirror
RGI6_URL_PATTERNS = {
    "nsidc": "https://daacdata.apps.nsidc.org/pub/DATASETS/nsidc0770_rgi_v6/nsidc0770_{region:02d}.rgi60.{name}.zip",
    "glims": "https://www.glims.org/RGI/rgi60_files/{region:02d}_rgi60_{name}.zip",
}
#: Copernicus GLO-30 DEM, AWS open data bucket, one 1x1 degree Cloud-Optimised GeoTIFF per tile
GLO30_URL_PATTERN = "https://copernicus-dem-30m.s3.amazonaws.com/{tile}/{tile}.tif"


def rgi6_region_url(region: int, mirror: Literal["nsidc", "glims"] = "nsidc") -> str:
    """URL of an RGI 6.0 region zip file (RGI Consortium 2017); no fixed checksum."""
    if region not in RGI6_REGIONS:
        raise DataNotFoundError(f"RGI 6.0 region {region}: no such region (1-19)")
    return RGI6_URL_PATTERNS[mirror].format(region=region, name=RGI6_REGIONS[region])


def glo30_tile_names(bounds_lonlat: Sequence[float]) -> list[str]:
    """Copernicus GLO-30 tile names covering a (west, south, east, north) box in degrees.

    Tiles are named by their south-west corner, e.g. ``Copernicus_DSM_COG_10_N46_00_E010_00_DEM``
    covers 46-47 N, 10-11 E. Ocean tiles do not exist in the bucket (download gives 404).
    """
    west, south, east, north = map(float, bounds_lonlat)
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise ValueError(f"bounds {tuple(bounds_lonlat)} are not (west, south, east, north) in degrees")
    lons = range(math.floor(west), max(math.ceil(east), math.floor(west) + 1))
    lats = range(math.floor(south), max(math.ceil(north), math.floor(south) + 1))
    names = []
    for lat in lats:
        for lon in lons:
            lon = min(lon, 179)
            lat_s = f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}_00"
            lon_s = f"{'E' if lon >= 0 else 'W'}{abs(lon):03d}_00"
            names.append(f"Copernicus_DSM_COG_10_{lat_s}_{lon_s}_DEM")
    return list(dict.fromkeys(names))


def glo30_tile_url(tile: str) -> str:
    return GLO30_URL_PATTERN.format(tile=tile)


def fetch_url(url: str, subdir: str) -> Path:
    """Download a full-size source file (no fixed checksum) into ``cache_dir()/subdir``."""
    try:
        return Path(pooch.retrieve(url, known_hash=None, path=cache_dir() / subdir,
                                   downloader=pooch.HTTPDownloader(progressbar=False, timeout=120)))
    except Exception as exc:
        raise DataNotFoundError(f"download from {url} failed: {type(exc).__name__}: {str(exc)[:200]}") from exc


def get_glo30_tiles(bounds_lonlat: Sequence[float]) -> list[Path]:
    """Download (or reuse cached) GLO-30 tiles covering a lon/lat box; ocean tiles skipped."""
    paths = []
    for tile in glo30_tile_names(bounds_lonlat):
        try:
            paths.append(fetch_url(glo30_tile_url(tile), "copernicus-dem-30m"))
        except DataNotFoundError as exc:
            if "404" not in str(exc):
                raise
            log.info("%s: no GLO-30 tile (ocean)", tile)
    if not paths:
        raise DataNotFoundError(f"no Copernicus GLO-30 tile covers {tuple(bounds_lonlat)}")
    return paths


def get_rgi6_region(region: int, mirror: Literal["nsidc", "glims"] = "glims") -> Path:
    """Download (or reuse) an RGI 6.0 region zip; read it with ``read_outlines("zip://...")``."""
    return fetch_url(rgi6_region_url(region, mirror), "rgi60")

