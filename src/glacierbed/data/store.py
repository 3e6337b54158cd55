"""Data store: registered files (sha256 from the packaged ``registry.txt``), the offline
data dir, the download cache and checksums.

:func:`get_file` looks a registered path up in the offline data dir (``GLACIERBED_DATA``),
then in the download cache (``GLACIERBED_CACHE`` or ``pooch.os_cache("glacierbed")``),
then downloads it through the dataset's :func:`pooch.create` instance
(:func:`dataset_pooch`); every copy is checked against its registered sha256
(:func:`verify`). The public entry point is :mod:`glacierbed.data.registry`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Literal

import pooch

from glacierbed.core.errors import ChecksumError, DataNotFoundError

log = logging.getLogger(__name__)

#: commit of https://github.com/OGGM/oggm-sample-data whose files the kit mirrors
OGGM_SAMPLE_COMMIT = "99651428d84b68735c87001da70983fa369abd59"


@dataclass(frozen=True)
class Dataset:
    """A top-level folder of the data dir and where its files come from.

    ``kind``: ``"archive"`` = ``url`` is one archive unpacked into the cache (files below
    ``archive_prefix`` inside it); ``"files"`` = ``url`` + relative path is each file's URL;
    ``"offline"`` = no public direct URL (derived files), only the offline data dir has it.
    """

    name: str
    kind: Literal["archive", "files", "offline"]
    url: str | None
    description: str
    origin: str
    citation: str
    license: str
    archive_prefix: str = ""


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "oggm-sample-data", "archive",
            f"https://github.com/OGGM/oggm-sample-data/archive/{OGGM_SAMPLE_COMMIT}.tar.gz",
            "OGGM sample data: SRTM DEMs, RGI outlines, consensus thickness, South Glacier radar",
            f"github.com/OGGM/oggm-sample-data @ {OGGM_SAMPLE_COMMIT[:10]}",
            "OGGM contributors, oggm-sample-data; South Glacier: Wilson et al. 2013, Flowers et al. 2011; "
            "consensus: Farinotti et al. 2019",
            "BSD-3-Clause",
            archive_prefix=f"oggm-sample-data-{OGGM_SAMPLE_COMMIT}",
        ),
        Dataset(
            "glathida", "files", "https://gitlab.com/wgms/glathida/-/raw/v3.0.1/data/",
            "GlaThiDa glacier-level tables (glacier.csv, band.csv)",
            "gitlab.com/wgms/glathida (WGMS)",
            "GlaThiDa Consortium (2019), Glacier Thickness Database 3.0.1, WGMS, doi:10.5904/wgms-glathida-2019-03; "
            "Welty et al. 2020, ESSD",
            "open access with citation",
        ),
        Dataset(
            "glathida-grids", "offline", None,
            "GlaThiDa thickness observations averaged per cell on the OGGM grids of 23 glaciers "
            "(RGI regions 01, 03, 04, 05, 11, 12), with surface DEM, outline and meta.json",
            "GitHub MatCast/glathida-viz @ eedf3ad675 (tables, converted to GeoTIFF/GeoPackage, georeferenced "
            "on a local TM; see the kit's glathida-grids/README.md)",
            "GlaThiDa Consortium (2019), doi:10.5904/wgms-glathida-2019-03; Welty et al. 2020, ESSD 12, 3039-3055; "
            "Maussion et al. 2019 (OGGM); RGI Consortium 2017; consensus: Farinotti et al. 2019",
            "BSD-3-Clause (tables, M. Castellani 2020); GlaThiDa open access with citation",
        ),
        Dataset(
            "alps-topography-200m", "offline", None,
            "Glacier-free Alpine terrain (topography minus Millan 2022 thickness), EPSG:32632, 200 m",
            "IGM paleo-Alps example data (G. Jouvet et al.)",
            "Jouvet et al., IGM; Millan et al. 2022 (ice thickness removed)",
            "see IGM",
        ),
        Dataset(
            "nz-canterbury-25m", "offline", None,
            "Southern Alps (Canterbury) 25 m DEM clip + 9 RGI 6.0 outlines",
            "example data of the PyPI sdist GlabTop2-py==2.1.1 (clipped, converted)",
            "Frey et al. 2014 (GlabTop2, TC 8, 2313-2333); GlabTop2-py (W. Terink); RGI Consortium 2017",
            "GPL-3.0",
        ),
        Dataset(
            "peru-cordillera-blanca-srtm3", "offline", None,
            "Rio Santa / Cordillera Blanca SRTM 3\" DEM",
            "salem sample data salem-test/grid/riosan_srtm_hgt.nc (georeferenced by hand)",
            "SRTM (Farr et al. 2007); salem (Maussion et al., doi:10.5281/zenodo.596573)",
            "SRTM public domain; file license not stated",
        ),
        Dataset(
            "rgi11-alps", "offline", None,
            "Every glacier of RGI 6.0 region 11: one surface DEM tile per glacier (25/50 m, UTM) + outlines",
            "GitHub JordiBolibar/ALPGM @ 5506117368 (the Farinotti et al. 2019 consensus' surface DEMs, CRS "
            "written from the consensus grids; outlines from the consensus' glacier cells)",
            "Farinotti et al. 2019, Nat. Geosci. 12, 168-173 (doi:10.3929/ethz-b-000315707); RGI Consortium 2017; "
            "Bolibar et al. (ALPGM)",
            "CC-BY-4.0 (consensus data); ALPGM repository GPL-3.0",
        ),
        Dataset(
            "svalbard-longyearbyen", "offline", None,
            "Longyearbyen 1990 DEM (20 m) + 1990 glacier mask raster",
            "xDEM example data (GlacioHack), Norwegian Polar Institute",
            "Norwegian Polar Institute (2014), doi:10.21334/npolar.2014.dce53a47; König, Kohler & Nuth (2013), "
            "doi:10.21334/npolar.2013.89f430f8; xDEM",
            "CC BY 4.0",
        ),
    )
}

#: the registry file shipped in this package (pooch registry-file format: ``<path> <sha256>``
#: per line, path relative to the data dir; computed from the offline kit)
REGISTRY_FILE = "registry.txt"


def registry_file() -> Traversable:
    """The packaged registry file, found through :mod:`importlib.resources` (works from a wheel)."""
    return resources.files("glacierbed.data").joinpath(REGISTRY_FILE)


def _load_registry() -> dict[str, str]:
    """sha256 of every registered file by data-dir path, parsed by :meth:`pooch.Pooch.load_registry`."""
    # this pooch only holds the parsed registry; downloads go through dataset_pooch (one per dataset)
    holder = pooch.create(path=pooch.os_cache("glacierbed"), base_url="")
    with registry_file().open("r", encoding="utf-8") as f:
        holder.load_registry(f)
    return dict(holder.registry)


REGISTRY: dict[str, str] = _load_registry()


# --- where files live ---------------------------------------------------------------
def data_dir() -> Path | None:
    """The offline data dir (``GLACIERBED_DATA``), laid out like the sources; None if unset."""
    value = os.environ.get("GLACIERBED_DATA")
    return Path(value).expanduser().resolve() if value else None


def cache_dir() -> Path:
    """Download cache: ``GLACIERBED_CACHE`` or the OS cache folder (``pooch.os_cache``)."""
    value = os.environ.get("GLACIERBED_CACHE")
    if value:
        return Path(value).expanduser().resolve()
    return Path(pooch.os_cache("glacierbed"))


def dataset_pooch(name: str) -> pooch.Pooch | None:
    """The :func:`pooch.create` instance of a public dataset (None for offline-only ones).

    Its cache folder is ``cache_dir()/<name>``. ``"files"`` datasets register every file
    with its sha256 (pooch checks it on download); ``"archive"`` datasets register the one
    archive (no fixed checksum: the archive is re-packed by the host; its members are
    checked one by one after unpacking, by :func:`verify`). Built per call, so a changed
    ``GLACIERBED_CACHE`` takes effect.
    """
    ds = DATASETS.get(name)
    if ds is None or ds.kind == "offline" or ds.url is None:
        return None
    if ds.kind == "archive":
        base, _, archive = ds.url.rpartition("/")
        return pooch.create(path=cache_dir() / name, base_url=base + "/", registry={archive: None},
                            retry_if_failed=1)
    prefix = name + "/"
    files = {rel[len(prefix):]: f"sha256:{digest}" for rel, digest in REGISTRY.items() if rel.startswith(prefix)}
    return pooch.create(path=cache_dir() / name, base_url=ds.url, registry=files, retry_if_failed=1)


def _normalise(relpath: str | os.PathLike) -> str:
    p = PurePosixPath(Path(relpath).as_posix())
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise DataNotFoundError(f"{relpath}: registry paths are relative to the data dir, without '..'")
    return str(p)


def _cache_path(relpath: str) -> Path | None:
    """Where the cache holds ``relpath`` (archives: inside the unpacked archive)."""
    dataset, _, rest = relpath.partition("/")
    ds = DATASETS.get(dataset)
    if ds is None or ds.kind == "offline":
        return None
    return cache_dir() / dataset / ds.archive_prefix / rest if ds.kind == "archive" else cache_dir() / relpath


def locate(relpath: str | os.PathLike) -> Path | None:
    """The local copy of ``relpath`` (data dir, then cache) without download or checksum."""
    rel = _normalise(relpath)
    dd = data_dir()
    if dd is not None and (dd / rel).is_file():
        return dd / rel
    cached = _cache_path(rel)
    return cached if cached is not None and cached.is_file() else None


@functools.lru_cache(maxsize=512)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of a file; memoised on (path, mtime, size) so repeated checks are free."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, relpath: str) -> Path:
    """Check ``path`` against the sha256 registered for ``relpath`` (unregistered: no check)."""
    expected = REGISTRY.get(relpath)
    if expected is None:
        log.debug("%s: no registered checksum, not verified", path)
        return path
    st = path.stat()
    actual = _sha256(str(path), st.st_mtime_ns, st.st_size)
    if actual != expected:
        raise ChecksumError(f"{path}: sha256 {actual[:12]}... does not match the registered {expected[:12]}... "
                            f"for {relpath} (corrupt or modified copy; delete it or restore the original)")
    return path


def _companions(relpath: str) -> list[str]:
    """Registered sidecar files a shapefile needs (.shx, .dbf, .prj, .cpg)."""
    p = PurePosixPath(relpath)
    if p.suffix.lower() != ".shp":
        return []
    stem = str(p.with_suffix(""))
    return sorted(r for r in REGISTRY if r != relpath and r.startswith(stem + ".") and "/" not in r[len(stem):])


def get_file(relpath: str | os.PathLike) -> Path:
    """Absolute path of a registered file: offline data dir first, else download and cache.

    Files are verified against their registered sha256 (:class:`ChecksumError` on
    mismatch); a shapefile brings its sidecars. Raises :class:`DataNotFoundError` (naming
    the URL tried, or saying there is none) when the file can be found nowhere.
    """
    rel = _normalise(relpath)
    for companion in _companions(rel):
        _get_one(companion)
    return _get_one(rel)


def _get_one(rel: str) -> Path:
    dd = data_dir()
    if dd is not None and (dd / rel).is_file():
        return verify(dd / rel, rel)
    cached = _cache_path(rel)
    if cached is not None and cached.is_file():
        return verify(cached, rel)
    return _download(rel, dd)


def _download(rel: str, dd: Path | None) -> Path:
    """Fetch ``rel`` from its public source into the cache through the dataset's pooch."""
    dataset, _, rest = rel.partition("/")
    ds = DATASETS.get(dataset)
    where = f"offline data dir {dd}" if dd is not None else "no offline data dir (GLACIERBED_DATA unset)"
    if ds is None:
        raise DataNotFoundError(f"{rel}: not found ({where}) and '{dataset}' is not a registered dataset "
                                f"(known: {', '.join(DATASETS)})")
    pup = dataset_pooch(dataset)
    if pup is None:
        raise DataNotFoundError(f"{rel}: not found ({where}); '{dataset}' has no public direct URL "
                                f"(origin: {ds.origin}), so it is offline-only: point GLACIERBED_DATA at a copy "
                                "of the data kit")
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=60)
    try:
        if ds.kind == "archive":
            archive = next(iter(pup.registry))
            log.info("downloading %s (unpacked into %s)", ds.url, pup.abspath)
            pup.fetch(archive, downloader=downloader,
                      processor=pooch.Untar(members=[f"{ds.archive_prefix}/{rest}"], extract_dir="."))
            target = _cache_path(rel)
            if target is None or not target.is_file():
                raise DataNotFoundError(f"{rel}: not in the archive {ds.url} (unpacked into {pup.abspath})")
            return verify(target, rel)
        if rest not in pup.registry:
            raise DataNotFoundError(f"{rel}: not found ({where}) and not a registered file of '{dataset}'")
        log.info("downloading %s", pup.get_url(rest))
        return Path(pup.fetch(rest, downloader=downloader))
    except ValueError as exc:  # pooch: hash of the downloaded file does not match
        raise ChecksumError(f"{rel}: download from {ds.url} does not match the registered sha256 ({exc})") from exc
    except DataNotFoundError:
        raise
    except Exception as exc:  # requests' connection/HTTP errors, unpacking errors
        raise DataNotFoundError(f"{rel}: not found ({where}) and the download from {ds.url} failed: "
                                f"{type(exc).__name__}: {str(exc)[:200]}") from exc

