"""Data registry: named files with public sources and sha256, an offline mirror, a cache.

Every file glacierbed reads by name (``get_file("oggm-sample-data/test-files/hef_srtm.tif")``)
is looked up, in order, in

1. the offline data dir ``GLACIERBED_DATA`` (a folder laid out like the sources, e.g. the
   project's ``../shared/data`` kit), verified against its registered sha256;
2. the download cache (``GLACIERBED_CACHE`` or ``pooch.os_cache("glacierbed")``), filled
   from the file's public source with :mod:`pooch` and verified the same way.

Named examples (:data:`EXAMPLES`) bundle a DEM, outlines and optional observations into
one name, resolved to absolute paths by :func:`get_example`. Full-size sources (RGI 6.0
regions, Copernicus GLO-30 tiles) have URL patterns but no fixed checksum.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal, Sequence

from glacierbed.errors import ChecksumError, DataNotFoundError

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
            "glathida", "files", "https://gitlab.com/wgms/glathida/-/raw/v3.1.0/data/",
            "GlaThiDa glacier-level tables (glacier.csv, band.csv)",
            "gitlab.com/wgms/glathida (WGMS)",
            "GlaThiDa Consortium (2019), Glacier Thickness Database 3.0.1, WGMS, doi:10.5904/wgms-glathida-2019-03; "
            "Welty et al. 2020, ESSD",
            "open access with citation",
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
            "svalbard-longyearbyen", "offline", None,
            "Longyearbyen 1990 DEM (20 m) + 1990 glacier mask raster",
            "xDEM example data (GlacioHack), Norwegian Polar Institute",
            "Norwegian Polar Institute (2014), doi:10.21334/npolar.2014.dce53a47; König, Kohler & Nuth (2013), "
            "doi:10.21334/npolar.2013.89f430f8; xDEM",
            "CC BY 4.0",
        ),
    )
}

#: sha256 of every registered file, by path relative to the data dir (``sha256sum`` format);
#: computed from the offline kit (terrain files: its SHA256SUMS-terrain.txt)
_SHA256SUMS = """\
22777c54fc9719b2459f6d6aff4d2fd456f5fd7ab22abfd01a8adf9476db236a  alps-topography-200m/topg-jura.tif
3f3ef42974caa52c0dfee54710de06d14521c2c38e88c40edf4d33d0421d4d15  alps-topography-200m/topg-linth.tif
714ded9758f0441888440eadba030478a6f2905298b7875a41e7a02344f5d227  alps-topography-200m/topg-lyon.tif
cb2312879b426a1c871f37b926dc458841d409ac64a29507040d8df3ba848470  alps-topography-200m/topg-rhine.tif
41ec5b13511df72152117840064b5f5f44a44702d81730bad48f4393b1f7b170  alps-topography-200m/topg-ticino.tif
db014d9ec7bac03357348a54299e1b6d86202f138dab0a64114625fbc1a22cb2  glathida/band.csv
0a8126eb4629ff0f0e8625b79ce86859f3d2525fd5d416f5c0d900af7ebb4dfd  glathida/glacier.csv
4f226ae40d6a236fda66a453c99a3cc9ce3d6f9e4d965c6aefda992d22a6824e  nz-canterbury-25m/dem.tif
7ca8cedbc05bca92bc67e80cd0d93c86577c26075060aeba2d7e2e64a4338574  nz-canterbury-25m/glaciers.gpkg
45de3bb9420ea3d36c6960cf43a8af8c9bb6160aef2fa230b3495cebb41824cf  oggm-sample-data/benchmarks/south_glacier/CITATION.txt
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/benchmarks/south_glacier/IceThick_SouthGlacier.cpg
285cc961d5d86cf44832b4e94e77b3602b6e4b5424d4f7b151c3b16ef0966d36  oggm-sample-data/benchmarks/south_glacier/IceThick_SouthGlacier.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/benchmarks/south_glacier/IceThick_SouthGlacier.prj
3a82b98913d8642548267caf1530090ef6ff2de10390d6176379e0dfcde5902e  oggm-sample-data/benchmarks/south_glacier/IceThick_SouthGlacier.shp
91bbcae44f00cdbc2bc79b5bcea836eea523dc10ccd2a005f3663c9077f59e2a  oggm-sample-data/benchmarks/south_glacier/IceThick_SouthGlacier.shx
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/benchmarks/south_glacier/SouthGlacier.cpg
bbc900a0299be681599a79eea5e29df5ad6d3a6468192f55328c3e4aae8b3e36  oggm-sample-data/benchmarks/south_glacier/SouthGlacier.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/benchmarks/south_glacier/SouthGlacier.prj
44d41438458d589337ae7e643b69f2ddbafcafb3ff4ac4cbbd13870582ea463c  oggm-sample-data/benchmarks/south_glacier/SouthGlacier.shp
b93592ab4b5be669e8c0dd925dbb5096601e4d5704b28d9008d1627c186e1bac  oggm-sample-data/benchmarks/south_glacier/SouthGlacier.shx
477feb67e62b7b2bbdaa49787e2ade3834d113d51a1f05c9c14d1a9f2b64de58  oggm-sample-data/benchmarks/south_glacier/cru_ts4.01.1901.2016.SouthGlacier.pre.dat.nc
a3d632e9c6f53347dc65b35e5e36f9b92b0fb81ba39becefbdaf9125d5e71c06  oggm-sample-data/benchmarks/south_glacier/cru_ts4.01.1901.2016.SouthGlacier.tmp.dat.nc
ebde795f56f88a55b080b4bde1f439ef37e88f325151e5ea7d9f906f1315e549  oggm-sample-data/benchmarks/south_glacier/dem_SouthGlacier.tif
981d7ebba62af804d4fe2b07ce99fa2743aa9c5b544b388d6b8688b91afeb2c4  oggm-sample-data/benchmarks/south_glacier/mb_SouthGlacier.tif
96bee69ea6513f9625898d13f16f862dced16b513bc83e7d142f2d4036afe88e  oggm-sample-data/g2ti/rgi62_itmix_df.h5
408b37b2535a540b2a55816d225a35e36d7365dee39824001b6249370d547db3  oggm-sample-data/glathida/rgi_glathida_links.csv
d2cc7aa1c55f5824f785583b85c29f8d27ea555cd48ba45964f8ec866891328d  oggm-sample-data/glathida/rgi_glathida_links_2014_RGIV5.csv
015f914bf025f50c2a1e8fe230183c4d3d6aaee36a3d6bd2e57d3e08e1c1f689  oggm-sample-data/realisation/RGI50-11.01270/dem.tif
0b3606a434a55e41603899cdb1d91f98e4cf560354b6becef8a9edb0a7affd97  oggm-sample-data/realisation/RGI50-11.01270/glacier_grid.json
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/realisation/RGI50-11.01270/outlines.cpg
eac998d92a9088427b16f51514024f3955eb4ab44200109320f4c0dce67bc865  oggm-sample-data/realisation/RGI50-11.01270/outlines.dbf
ba82aaa8ef9625711c5d7cec899c4becf148331818ce3e547506ef74493f0406  oggm-sample-data/realisation/RGI50-11.01270/outlines.prj
5545f0f2c71a78ccf4da58f67ff187461221b120acb37b1614f549157e9ccd17  oggm-sample-data/realisation/RGI50-11.01270/outlines.shp
ca6aa79ceabd7a5ab030e3bb2c02dd6564fbed6630c3c9454103ecdcc902f530  oggm-sample-data/realisation/RGI50-11.01270/outlines.shx
c86fe99f2ea99c54cc6dc60872cf227ce339189f144d2a997e268163e4ce38d8  oggm-sample-data/rgi_meta/rgi62_areas.csv
8db86b89e6a28a1167aa12da264728aeedb411a63b397ee5a60aee63432e866e  oggm-sample-data/rgi_meta/rgi6_ids_conn_lvl2.csv
799543659f800dd70066b89158da21bcbd1e467ff5723f12776d50f86c255f46  oggm-sample-data/rgi_meta/rgi_regions.csv
ee12156c77b0e981be678043ded9b847bc00fd30131f2a3d5131e44d5aad1092  oggm-sample-data/rgi_meta/rgi_subregions_V5.csv
a2ef288b33e2c78616182d082875de2dc03f586bf6ff5aa42f67a1a6455d22eb  oggm-sample-data/rgi_meta/rgi_subregions_V6.csv
08d16013e4a25c01eae8ca4a866361bdcbd3ce13790132f54047054312e5f131  oggm-sample-data/shop/crop_ALA_G0120_0000_vx.tif
ed75af5d776777fd7562d89d4a6e42d0542ec3470f949b88f895ea646166f22e  oggm-sample-data/shop/crop_ALA_G0120_0000_vy.tif
0ff951420486323bc0d852d5ea4d22c8d98fa5bb1957c0ccec4a79a19957531a  oggm-sample-data/test-files/Hintereisferner_RGI6.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-files/Hintereisferner_RGI6.prj
1de411dcdeedce3219242306fc29bfa1d7fa08883e4ff6779baf798ec50d1657  oggm-sample-data/test-files/Hintereisferner_RGI6.qpj
6c5a04757f74ed04e3b231eb0ed81a8bdcd48cf845242a4f514e80b1fa1b000c  oggm-sample-data/test-files/Hintereisferner_RGI6.shp
912929999ee905f49b8db313059f7d5e938f5f48a6f27f965dc5ffbec754fccc  oggm-sample-data/test-files/Hintereisferner_RGI6.shx
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/test-files/RGI50-05.08389.cpg
52458745a35b432a2f87fee0182280e6ee195a5ef88bce356a51a7858181fd3f  oggm-sample-data/test-files/RGI50-05.08389.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-files/RGI50-05.08389.prj
3716e7497fe9c49d3820aec5c362fa8fbc9788adaa8f52aabe694a5209dfbc3b  oggm-sample-data/test-files/RGI50-05.08389.shp
00ddb81292c9e228ca0dc8644d0fa3799dc579d45eba1ab3e7a0f63872198f91  oggm-sample-data/test-files/RGI50-05.08389.shx
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/test-files/RGI50-14.15990.cpg
c9433007cf9460a291cf76b7b5f8449f86d88840ba5c93f9ca5b58e3382da8d6  oggm-sample-data/test-files/RGI50-14.15990.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-files/RGI50-14.15990.prj
c41beb31547b4c1b94f8535bc963be25db917073f06bc5dad612b89af53cb49c  oggm-sample-data/test-files/RGI50-14.15990.shp
b6be93518c084828551cc9f08046e841b39901b5d167d92478bdac89c9cc156b  oggm-sample-data/test-files/RGI50-14.15990.shx
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/test-files/RGI60-14.03439/RGI60-14.03439.cpg
7a72cb342fbf985a20371a732bfcd4ef4974bbe03975c433b03de9d3a03b4343  oggm-sample-data/test-files/RGI60-14.03439/RGI60-14.03439.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-files/RGI60-14.03439/RGI60-14.03439.prj
68d1ea18bf1e0692e7e9ea8dcd9c4f6f2ad8ed64df2f702557fea38b3ec62c9d  oggm-sample-data/test-files/RGI60-14.03439/RGI60-14.03439.shp
9e173c1e96ab35b312d3f1f14c4850cab41900a4a329f82254254cecbb3800c4  oggm-sample-data/test-files/RGI60-14.03439/RGI60-14.03439.shx
0e0e712bd5b7b06ad587d2d3ee90fb0366ba71a460712cd671910d014b080478  oggm-sample-data/test-files/RGI60-14.03439/RGI60-14.03439.tif
0a2abab9b4ecb75b15abd094ee6b89a5e262d3bf10d28be557bd944a712e15e9  oggm-sample-data/test-files/baltoro_srtm_clip.tif
de95f8bef5255760934a7e929f9c8f6136279adcbc554da395d7dcacfe66e3a2  oggm-sample-data/test-files/baltoro_wgs84.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-files/baltoro_wgs84.prj
ab77d2e89742b547e6096d9c57dbc02fe25691f1e7befbea904eba404e9ebf7b  oggm-sample-data/test-files/baltoro_wgs84.shp
b0bbfc1bebaab843d8177ae855b6af3e240049373fb1de2342761bf21a85c062  oggm-sample-data/test-files/baltoro_wgs84.shx
27a6708b75fd328c17d80e7ed4d025a2d917bbcf375b21a89a70c92679745f3a  oggm-sample-data/test-files/columbia/01_rgi60_Columbia.dbf
a02a27b1d1982c8516d83398e85a3c8b1aef1713c13ef4d84d7bde17430c07c4  oggm-sample-data/test-files/columbia/01_rgi60_Columbia.prj
f436761594addeff680471a6e91ea9beb3eb51a4e383588d6ba58a92ca770a48  oggm-sample-data/test-files/columbia/01_rgi60_Columbia.shp
dd221b883ad725ab83777d913ada80d39e7e7e8b33ceb01df82a0e5532410c6f  oggm-sample-data/test-files/columbia/01_rgi60_Columbia.shx
f5efa50123426ddd1e3beec98d3d245c793dc3c548b283dbc23945e89e7075cb  oggm-sample-data/test-files/columbia/dem_Columbia.tif
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/test-files/columbia_rgi/RGI60-01.10689.cpg
8343186d6f91e30abd38b2164d4062f265a8c5bd493d651ab4aa7d4a7d75dfc9  oggm-sample-data/test-files/columbia_rgi/RGI60-01.10689.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-files/columbia_rgi/RGI60-01.10689.prj
3e6466eb48c81aea0a8c9234ca62fc230941900e229bb510fda2766ed492d985  oggm-sample-data/test-files/columbia_rgi/RGI60-01.10689.shp
f801f5b4e4d348c49bb05b7fe5285d66c3dc7ea40bc622a08a7a3c34a5446077  oggm-sample-data/test-files/columbia_rgi/RGI60-01.10689.shx
92debf889c7a7c54e0206f9feb679850d7f9760d13abb0d3cccf35e5da9eb7d5  oggm-sample-data/test-files/consensus_composite/RGI60-11.00897_thickness.tif
044254b3ce766a640d8dd44366f580f4443c0bb043c287517182fc5f52b02d6c  oggm-sample-data/test-files/dem_RGI50-01.10299.tif
be5ba93622789c5504f63f276afae776898cbaef9b6d377a869ebd20b932efc1  oggm-sample-data/test-files/dem_RGI50-05.08389.tif
c97bf1b899d2aaf0cb813e6736b721bf18ea02c1368ef502e39989ddf6d95749  oggm-sample-data/test-files/dem_chhota_shigri.tif
079f80987a4f309a2210e86399ad05c994d2bd9b2eec8acb0f66f06f5b746bf0  oggm-sample-data/test-files/hef_srtm.tif
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/test-files/rgi_RGI50-01.10299.cpg
723c1315bd3d421674c4637fd7da1fced7a939ca5b0237bd7b15e4ac730059fb  oggm-sample-data/test-files/rgi_RGI50-01.10299.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-files/rgi_RGI50-01.10299.prj
f63f6a0e20fd1e80907952f0af4c3ab32c9887111e3c0bf138a418834fe205f3  oggm-sample-data/test-files/rgi_RGI50-01.10299.shp
d17585f0b5f9ccbcf0453d796bb7cfe79c5deb93ead7f67959a2607195c2b06f  oggm-sample-data/test-files/rgi_RGI50-01.10299.shx
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/test-workflow/intersect/rgi_intersect_oetztal.cpg
c686837beb24f5c7e273ff82dd9974429847a0d8dc2f345310969a316580eb31  oggm-sample-data/test-workflow/intersect/rgi_intersect_oetztal.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-workflow/intersect/rgi_intersect_oetztal.prj
67d9dcfd3de5fd50f0079f946193e8fb8135aa061f5187f12ab257440702e793  oggm-sample-data/test-workflow/intersect/rgi_intersect_oetztal.shp
6efb6f8f6599635d76327fe47d377b2611d531be59c4ea05ca368d53f96f80e5  oggm-sample-data/test-workflow/intersect/rgi_intersect_oetztal.shx
09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2  oggm-sample-data/test-workflow/rgi/rgi_oetztal.cpg
4b9f469a751f4e26c364b3be215364113192fe88c40aac6e9b76bff5ec814891  oggm-sample-data/test-workflow/rgi/rgi_oetztal.dbf
98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb  oggm-sample-data/test-workflow/rgi/rgi_oetztal.prj
342f6efdeaf50bf2b9ed97636e91b71bfd77e77b2e6b834a33072e56eef75e5e  oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp
aed6d125e71e9a238c20107eb1f7c5b767d55c7769973c38a800573297b3892c  oggm-sample-data/test-workflow/rgi/rgi_oetztal.shx
d32e857294a63489fe34b832c3dd8b1bbbad94ad5f6b8a656b0b86085d2c1f0a  oggm-sample-data/test-workflow/srtm_oetztal.tif
49be6b008ffef7cd02e25f09b117662874954377f89d6db01a76ab88f4b8d019  peru-cordillera-blanca-srtm3/dem.tif
7af73f6e29dac62ba58fffc7b9c8b391cb1588a60aed4ed478ba87dcda8fbef7  svalbard-longyearbyen/dem_1990.tif
9eb8221fdeff01cf5b80c71db0325505c455093f6e46ace80510d69f4ebaab4d  svalbard-longyearbyen/glacier_mask_1990.tif
"""

REGISTRY: dict[str, str] = {
    path: digest for digest, path in (line.split(maxsplit=1) for line in _SHA256SUMS.splitlines() if line.strip())
}


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
    import pooch

    return Path(pooch.os_cache("glacierbed"))


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
    if ds.kind == "archive":
        return cache_dir() / dataset / ds.archive_prefix / rest
    return cache_dir() / relpath


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
    """Fetch ``rel`` from its public source into the cache with pooch."""
    import pooch

    dataset, _, rest = rel.partition("/")
    ds = DATASETS.get(dataset)
    where = f"offline data dir {dd}" if dd is not None else "no offline data dir (GLACIERBED_DATA unset)"
    if ds is None:
        raise DataNotFoundError(f"{rel}: not found ({where}) and '{dataset}' is not a registered dataset "
                                f"(known: {', '.join(DATASETS)})")
    if ds.kind == "offline" or ds.url is None:
        raise DataNotFoundError(f"{rel}: not found ({where}); '{dataset}' has no public direct URL "
                                f"(origin: {ds.origin}), so it is offline-only: point GLACIERBED_DATA at a copy "
                                "of the data kit")
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=60)
    try:
        if ds.kind == "archive":
            log.info("downloading %s (unpacked into %s)", ds.url, cache_dir() / dataset)
            pooch.retrieve(ds.url, known_hash=None, fname=f"{dataset}-{Path(ds.url).name}", path=cache_dir(),
                           processor=pooch.Untar(extract_dir=dataset), downloader=downloader)
            target = _cache_path(rel)
            if target is None or not target.is_file():
                raise DataNotFoundError(f"{rel}: not in the archive {ds.url} (unpacked into {cache_dir() / dataset})")
            return verify(target, rel)
        url = ds.url + rest
        digest = REGISTRY.get(rel)
        log.info("downloading %s", url)
        path = pooch.retrieve(url, known_hash=f"sha256:{digest}" if digest else None, fname=rest,
                              path=cache_dir() / dataset, downloader=downloader)
        return Path(path)
    except ValueError as exc:  # pooch: hash of the downloaded file does not match
        raise ChecksumError(f"{rel}: download from {ds.url} does not match the registered sha256 ({exc})") from exc
    except DataNotFoundError:
        raise
    except Exception as exc:  # requests' connection/HTTP errors, unpacking errors
        raise DataNotFoundError(f"{rel}: not found ({where}) and the download from {ds.url} failed: "
                                f"{type(exc).__name__}: {str(exc)[:200]}") from exc


# --- full public sources (no fixed checksum) ---------------------------------------------
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
    import pooch

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


# --- named examples -------------------------------------------------------------------------
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

    @property
    def files(self) -> list[str]:
        extra = (self.outlines, self.glacier_mask, self.observations, self.consensus)
        return [*self.dem, *(f for f in extra if f)]


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
                description="ITMIX South Glacier (Yukon), 20 m DEM, 9,619 radar thickness points"),
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
                description="Longyearbyen 1990 DEM, 20 m, glacier mask raster (no outlines)"),
        Example("cordillera-blanca", ("peru-cordillera-blanca-srtm3/dem.tif",), None,
                description="Cordillera Blanca SRTM 3\" DEM, no outlines (use RGI 6.0 region 16)"),
        Example("alps-200m", tuple(f"alps-topography-200m/topg-{t}.tif"
                                   for t in ("jura", "linth", "lyon", "rhine", "ticino")), None,
                description="Glacier-free Alpine terrain, five 200 m tiles (training terrain, no glaciers)"),
    )
}


def get_example(name: str) -> ResolvedExample:
    """Resolve a named example to absolute paths (verified, downloaded if needed)."""
    if name not in EXAMPLES:
        raise DataNotFoundError(f"unknown example '{name}'; known examples: {', '.join(EXAMPLES)}")
    e = EXAMPLES[name]
    opt = lambda rel: get_file(rel) if rel else None  # noqa: E731
    return ResolvedExample(e.name, [get_file(p) for p in e.dem], opt(e.outlines), opt(e.glacier_mask),
                           opt(e.observations), opt(e.consensus), e.description)


def example_available(name: str) -> bool:
    """Whether every file of an example is present locally (data dir or cache), unchecked."""
    return all(locate(f) is not None for f in EXAMPLES[name].files)
