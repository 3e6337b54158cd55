"""Data registry: named files with public sources and sha256, an offline mirror, a cache.

Every file glacierbed reads by name (``get_file("oggm-sample-data/test-files/hef_srtm.tif")``)
is looked up, in order, in

1. the offline data dir ``GLACIERBED_DATA`` (a folder laid out like the sources, e.g. the
   project's ``../shared/data`` kit), verified against its registered sha256;
2. the download cache (``GLACIERBED_CACHE`` or ``pooch.os_cache("glacierbed")``), one
   folder per dataset, managed by a :func:`pooch.create` instance per public dataset
   (:func:`dataset_pooch`) that downloads from the dataset's public source and checks the
   same sha256.

Datasets without a public direct URL (``kind="offline"``, e.g. ``glathida-grids``) come
only from the data dir. Named examples (:data:`EXAMPLES`) bundle a DEM, outlines and
optional observations into one name, resolved to absolute paths by :func:`get_example`;
:func:`glathida_grids` lists the 23 GlaThiDa thickness-grid examples with their
``meta.json``. Full-size sources (RGI 6.0/7.0 regions, Copernicus GLO-30/GLO-90 tiles) have
URL patterns and no published checksum: the sha256 of the first download is recorded in the
cache and later uses are checked against it.

This module is the public face; the code lives in :mod:`glacierbed.data.store` (datasets,
the sha256 registry read from the packaged ``registry.txt``, lookup, cache, checksums),
:mod:`glacierbed.data.examples` (named examples, GlaThiDa grids) and
:mod:`glacierbed.data.sources` (RGI and Copernicus DEM URLs and downloads).
"""

from __future__ import annotations

from glacierbed.data.examples import (CONSENSUS_VOLUMES_FILE, EXAMPLES, GLATHIDA_EXAMPLE_PREFIX, GLATHIDA_GRID_IDS,
                                      GRID_FOLDER_FILES, RGI11_EXAMPLE_PREFIX, Example, ResolvedExample,
                                      consensus_volume_of, consensus_volumes_km3, example_available, get_example,
                                      glathida_grid_meta, glathida_grids, grid_folders, rgi11_alps_example)
from glacierbed.data.sources import (DEM_SOURCES, GLO30_URL_PATTERN, RGI6_REGIONS, RGI6_URL_PATTERNS, RGI7_REGIONS,
                                     dem_tile_url, fetch_url, get_dem_tile, get_glo30_tiles, get_rgi6_region,
                                     get_rgi_region, glo30_tile_names, glo30_tile_url, recorded_sha256,
                                     rgi6_region_url, rgi_file_name, rgi_url, tile_names)
from glacierbed.data.store import (DATASETS, OGGM_SAMPLE_COMMIT, REGISTRY, REGISTRY_FILE, Dataset, cache_dir,
                                   data_dir, dataset_pooch, get_file, locate, registry_file, verify)
from glacierbed.data.store import _sha256  # noqa: F401 - benchmarks/data_read_dem.py times the raw checksum

__all__ = [
    "DATASETS", "Dataset", "OGGM_SAMPLE_COMMIT", "REGISTRY", "REGISTRY_FILE", "registry_file",
    "data_dir", "cache_dir", "dataset_pooch", "locate", "verify", "get_file",
    "EXAMPLES", "Example", "ResolvedExample", "get_example", "example_available",
    "GLATHIDA_GRID_IDS", "GLATHIDA_EXAMPLE_PREFIX", "glathida_grid_meta", "glathida_grids", "GRID_FOLDER_FILES",
    "grid_folders",
    "RGI11_EXAMPLE_PREFIX", "rgi11_alps_example", "CONSENSUS_VOLUMES_FILE", "consensus_volumes_km3",
    "consensus_volume_of",
    "RGI6_REGIONS", "RGI6_URL_PATTERNS", "GLO30_URL_PATTERN", "rgi6_region_url", "glo30_tile_names",
    "glo30_tile_url", "fetch_url", "get_glo30_tiles", "get_rgi6_region",
    "RGI7_REGIONS", "DEM_SOURCES", "rgi_file_name", "rgi_url", "tile_names", "dem_tile_url", "get_dem_tile",
    "get_rgi_region", "recorded_sha256",
]
