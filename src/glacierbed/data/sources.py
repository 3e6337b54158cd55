"""Full-size public sources: RGI 6.0 / 7.0 region files and Copernicus GLO-30 / GLO-90 DEM tiles.

URL patterns, tile naming, and downloads into the cache (``cache_dir()/<subdir>``) with
:func:`pooch.retrieve` (to a temporary file, renamed when complete, so an interrupted
download leaves nothing half-written). None of these sources publishes a checksum per file,
so the sha256 of a file's first download is recorded in ``<subdir>/sha256.txt`` in the cache
and every later use is checked against it (a corrupt copy is downloaded again; a sha256
registered in the packaged ``registry.txt`` as ``<subdir>/<file>`` takes precedence).
Base URLs can be redirected to a mirror with ``GLACIERBED_RGI_URL`` / ``GLACIERBED_DEM_URL``.
Re-exported by :mod:`glacierbed.data.registry`.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Iterator, Literal, Sequence

import pooch

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import ChecksumError, DataNotFoundError
from glacierbed.data.store import REGISTRY, cache_dir

log = logging.getLogger(__name__)

#: RGI 6.0 region file names (same at NSIDC and at the GLIMS mirror)
RGI6_REGIONS: dict[int, str] = {
    1: "Alaska", 2: "WesternCanadaUS", 3: "ArcticCanadaNorth", 4: "ArcticCanadaSouth", 5: "GreenlandPeriphery",
    6: "Iceland", 7: "Svalbard", 8: "Scandinavia", 9: "RussianArctic", 10: "NorthAsia", 11: "CentralEurope",
    12: "CaucasusMiddleEast", 13: "CentralAsia", 14: "SouthAsiaWest", 15: "SouthAsiaEast", 16: "LowLatitudes",
    17: "SouthernAndes", 18: "NewZealand", 19: "AntarcticSubantarctic",
}
#: RGI 7.0 region file suffixes (``RGI2000-v7.0-G-11_central_europe.zip``)
RGI7_REGIONS: dict[int, str] = {
    1: "alaska", 2: "western_canada_usa", 3: "arctic_canada_north", 4: "arctic_canada_south",
    5: "greenland_periphery", 6: "iceland", 7: "svalbard_jan_mayen", 8: "scandinavia", 9: "russian_arctic",
    10: "north_asia", 11: "central_europe", 12: "caucasus_middle_east", 13: "central_asia",
    14: "south_asia_west", 15: "south_asia_east", 16: "low_latitudes", 17: "southern_andes",
    18: "new_zealand", 19: "subantarctic_antarctic_islands",
}
#: NSIDC-0770 (needs a free NASA Earthdata login) and the public GLIMS mirror
RGI6_URL_PATTERNS = {
    "nsidc": "https://daacdata.apps.nsidc.org/pub/DATASETS/nsidc0770_rgi_v6/nsidc0770_{region:02d}.rgi60.{name}.zip",
    "glims": "https://www.glims.org/RGI/rgi60_files/{region:02d}_rgi60_{name}.zip",
}
#: base URL of the RGI region files downloaded by default (no login needed for RGI 6.0 at GLIMS;
#: RGI 7.0 glacier product at NSIDC-0770 v7, which needs an Earthdata login in ``~/.netrc``)
RGI_BASE_URLS = {
    6: "https://www.glims.org/RGI/rgi60_files",
    7: "https://daacdata.apps.nsidc.org/pub/DATASETS/nsidc0770_rgi_v7/regional_files/RGI2000-v7.0-G",
}
#: the RGI 6.0 first-order region polygons (``00_rgi60_O1Regions.shp``), beside the region files
RGI6_REGIONS_FILE = "00_rgi60_regions.zip"
#: Copernicus DEM on AWS open data: one 1x1 degree Cloud-Optimised GeoTIFF per tile
DEM_SOURCES = {
    "glo30": ("https://copernicus-dem-30m.s3.amazonaws.com", "10"),  # 1 arc-second
    "glo90": ("https://copernicus-dem-90m.s3.amazonaws.com", "30"),  # 3 arc-seconds
}
GLO30_URL_PATTERN = "https://copernicus-dem-30m.s3.amazonaws.com/{tile}/{tile}.tif"
DemSource = Literal["glo30", "glo90"]
#: file (in each cache folder) where the sha256 of first downloads is recorded, ``<name> <sha256>``
RECORD_FILE = "sha256.txt"


def rgi6_region_url(region: int, mirror: Literal["nsidc", "glims"] = "nsidc") -> str:
    """URL of an RGI 6.0 region zip file (RGI Consortium 2017); no fixed checksum."""
    if region not in RGI6_REGIONS:
        raise DataNotFoundError(f"RGI 6.0 region {region}: no such region (1-19)")
    return RGI6_URL_PATTERNS[mirror].format(region=region, name=RGI6_REGIONS[region])


def rgi_file_name(region: int, version: int = 6) -> str:
    """File name of an RGI region zip: ``11_rgi60_CentralEurope.zip`` or ``RGI2000-v7.0-G-11_central_europe.zip``."""
    names = {6: RGI6_REGIONS, 7: RGI7_REGIONS}.get(version)
    if names is None:
        raise DataNotFoundError(f"RGI version {version}: only 6 and 7 are supported")
    if region not in names:
        raise DataNotFoundError(f"RGI region {region}: no such region (1-19)")
    return f"{region:02d}_rgi60_{names[region]}.zip" if version == 6 else f"RGI2000-v7.0-G-{region:02d}_{names[region]}.zip"


def rgi_url(fname: str, version: int = 6) -> str:
    """URL of an RGI file: ``GLACIERBED_RGI_URL`` (a mirror) or the public base, + ``/fname``."""
    return f"{os.environ.get('GLACIERBED_RGI_URL') or RGI_BASE_URLS[version]}".rstrip("/") + "/" + fname


def tile_corners(bounds_lonlat: Sequence[float]) -> Iterator[tuple[int, int]]:
    """South-west corners (lat, lon) of the 1x1 degree tiles covering a (west, south, east, north) box."""
    west, south, east, north = map(float, bounds_lonlat)
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise ValueError(f"bounds {tuple(bounds_lonlat)} are not (west, south, east, north) in degrees")
    for lat in range(math.floor(south), max(math.ceil(north), math.floor(south) + 1)):
        for lon in range(math.floor(west), max(math.ceil(east), math.floor(west) + 1)):
            yield min(lat, 89), min(lon, 179)


def copernicus_tile_name(lat: int, lon: int, source: DemSource = "glo30") -> str:
    """Name of the tile whose south-west corner is (lat, lon): ``Copernicus_DSM_COG_10_N46_00_E010_00_DEM``."""
    lat_s = f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}_00"
    lon_s = f"{'E' if lon >= 0 else 'W'}{abs(lon):03d}_00"
    return f"Copernicus_DSM_COG_{DEM_SOURCES[source][1]}_{lat_s}_{lon_s}_DEM"


def tile_names(bounds_lonlat: Sequence[float], source: DemSource = "glo30") -> list[str]:
    """Copernicus tile names (``source`` glo30 or glo90) covering a (west, south, east, north) box."""
    return list(dict.fromkeys(copernicus_tile_name(lat, lon, source) for lat, lon in tile_corners(bounds_lonlat)))


def glo30_tile_names(bounds_lonlat: Sequence[float]) -> list[str]:
    """Copernicus GLO-30 tile names covering a (west, south, east, north) box in degrees.

    Tiles are named by their south-west corner, e.g. ``Copernicus_DSM_COG_10_N46_00_E010_00_DEM``
    covers 46-47 N, 10-11 E. Ocean tiles do not exist in the bucket (download gives 404).
    """
    return tile_names(bounds_lonlat, "glo30")


def dem_tile_url(tile: str, source: DemSource = "glo30") -> str:
    """``<base>/<tile>/<tile>.tif``; base = ``GLACIERBED_DEM_URL`` (a mirror) or the AWS bucket."""
    base = os.environ.get("GLACIERBED_DEM_URL") or DEM_SOURCES[source][0]
    return f"{base.rstrip('/')}/{tile}/{tile}.tif"


def glo30_tile_url(tile: str) -> str:
    return dem_tile_url(tile, "glo30")


def recorded_sha256(subdir: str) -> dict[str, str]:
    """The sha256 recorded at the first download of each file of ``cache_dir()/subdir``."""
    record = cache_dir() / subdir / RECORD_FILE
    if not record.is_file():
        return {}
    rows = (line.split() for line in record.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {row[0]: row[1] for row in rows if len(row) == 2}


def _record_sha256(subdir: str, fname: str, digest: str) -> None:
    known = recorded_sha256(subdir) | {fname: digest}
    write_text(cache_dir() / subdir / RECORD_FILE,
               "# sha256 of the first download of each file (glacierbed); later uses are checked against it\n"
               + "".join(f"{name} {sha}\n" for name, sha in sorted(known.items())))


def fetch_url(url: str, subdir: str, processor: pooch.processors.ExtractorProcessor | None = None,
              what: str | None = None) -> Path:
    """Download a full-size source file into ``cache_dir()/subdir``, or reuse the checked cached copy.

    The expected sha256 is the registered one (``registry.txt``: ``<subdir>/<file>``), else
    the one recorded at the first download (recorded now if there is none). A cached copy
    that does not match is downloaded again; a new download that does not match raises
    :class:`ChecksumError`. HTTP 404 raises :class:`DataNotFoundError` naming ``what``.
    """
    fname = url.rsplit("/", 1)[-1]
    known = REGISTRY.get(f"{subdir}/{fname}") or recorded_sha256(subdir).get(fname)
    target = cache_dir() / subdir / fname
    if known and target.is_file():
        if pooch.file_hash(str(target)) == known:  # checked cached copy: no request
            if processor is not None:
                processor(str(target), "fetch", None)
            return target
        log.warning("%s: cached copy does not match its sha256 %s..., downloading it again", target, known[:12])
    log.info("downloading %s", url)
    quiet = pooch.get_logger()  # keeps pooch's "use this known_hash" advice off the console
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        out = pooch.retrieve(url, known_hash=known, fname=fname, path=cache_dir() / subdir, processor=processor,
                             downloader=pooch.HTTPDownloader(progressbar=False, timeout=120))
    except ValueError as exc:  # pooch: the new download does not match the known hash
        raise ChecksumError(f"{fname}: the download from {url} does not match the sha256 {known} recorded at "
                            f"its first download (the source changed?); delete {target} to accept it") from exc
    except Exception as exc:  # requests' connection/HTTP errors
        status = getattr(getattr(exc, "response", None), "status_code", None)
        head = f"{what or fname}: not on the server" if status == 404 else f"{what or fname}: download failed"
        raise DataNotFoundError(f"{head} ({url}: {type(exc).__name__}: {str(exc)[:160]})") from exc
    finally:
        quiet.setLevel(level)
    if known is None:
        _record_sha256(subdir, fname, pooch.file_hash(str(target)))
    return Path(out) if processor is None else target


def get_dem_tile(tile: str, source: DemSource = "glo30") -> Path:
    """Download (or reuse the checked cached copy of) one Copernicus DEM tile."""
    return fetch_url(dem_tile_url(tile, source), f"copernicus-dem-{source[3:]}m", what=f"DEM tile {tile}")


def get_dem_tile_if_any(tile: str, source: DemSource = "glo30") -> Path | None:
    """:func:`get_dem_tile`, or None when the source has no such tile (ocean tiles are not
    published); any other failure still raises."""
    try:
        return get_dem_tile(tile, source)
    except DataNotFoundError as exc:
        if "not on the server" not in str(exc):
            raise
        log.info("%s: not on the server (ocean?): skipped", tile)
        return None


def get_glo30_tiles(bounds_lonlat: Sequence[float]) -> list[Path]:
    """Download (or reuse cached) GLO-30 tiles covering a lon/lat box; ocean tiles skipped."""
    paths = [p for tile in glo30_tile_names(bounds_lonlat) if (p := get_dem_tile_if_any(tile, "glo30"))]
    if not paths:
        raise DataNotFoundError(f"no Copernicus GLO-30 tile covers {tuple(bounds_lonlat)}")
    return paths


def get_rgi_region(region: int, version: int = 6) -> Path:
    """The shapefile of an RGI region (6.0 or 7.0), downloaded and unpacked (``pooch.Unzip``) once."""
    fname = rgi_file_name(region, version)
    return _unzipped_shapefile(rgi_url(fname, version), f"rgi{version}0", f"RGI {version}.0 region file {fname}")


def get_rgi6_regions_file() -> Path:
    """The RGI 6.0 first-order region polygons (``00_rgi60_O1Regions.shp``) from the RGI 6.0 base URL."""
    return _unzipped_shapefile(rgi_url(RGI6_REGIONS_FILE, 6), "rgi60", f"RGI 6.0 regions file {RGI6_REGIONS_FILE}",
                               stem="O1Regions")


def _unzipped_shapefile(url: str, subdir: str, what: str, stem: str = "") -> Path:
    """Download a zip (checked like :func:`fetch_url`), unpack it once, return its (first) shapefile."""
    fetch_url(url, subdir, processor=pooch.Unzip(), what=what)
    folder = cache_dir() / subdir / (url.rsplit("/", 1)[-1] + ".unzip")
    shapefiles = sorted(p for p in folder.rglob("*.shp") if stem in p.name)
    if not shapefiles:
        raise DataNotFoundError(f"{what}: no shapefile{f' *{stem}*' if stem else ''} in {url}")
    return shapefiles[0]


def get_rgi6_region(region: int, mirror: Literal["nsidc", "glims"] = "glims") -> Path:
    """Download (or reuse) an RGI 6.0 region zip; read it with ``read_outlines("zip://...")``."""
    return fetch_url(rgi6_region_url(region, mirror), "rgi60", what=f"RGI 6.0 region {region}")
