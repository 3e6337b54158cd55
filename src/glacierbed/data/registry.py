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
``meta.json``. Full-size sources (RGI 6.0 regions, Copernicus GLO-30 tiles) have URL
patterns but no fixed checksum.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, Sequence

from glacierbed.core.errors import ChecksumError, CorruptFileError, DataNotFoundError, EmptySelectionError

if TYPE_CHECKING:
    import pandas as pd
    import pooch

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
#: computed from the offline kit (terrain files: its SHA256SUMS-terrain.txt; glathida-grids:
#: every file of the kit's folder, the kit being that dataset's only source)
_SHA256SUMS = """\
22777c54fc9719b2459f6d6aff4d2fd456f5fd7ab22abfd01a8adf9476db236a  alps-topography-200m/topg-jura.tif
3f3ef42974caa52c0dfee54710de06d14521c2c38e88c40edf4d33d0421d4d15  alps-topography-200m/topg-linth.tif
714ded9758f0441888440eadba030478a6f2905298b7875a41e7a02344f5d227  alps-topography-200m/topg-lyon.tif
cb2312879b426a1c871f37b926dc458841d409ac64a29507040d8df3ba848470  alps-topography-200m/topg-rhine.tif
41ec5b13511df72152117840064b5f5f44a44702d81730bad48f4393b1f7b170  alps-topography-200m/topg-ticino.tif
4e7019213243b929f4afec02e7a06c30be96f7e462899f900b245c3862fcc491  glathida-grids/README.md
225f5ea08c76fb816f1cf68a7042bc6ecfdef5636c4782c53e8062a58066e611  glathida-grids/RGI60-01.16195/meta.json
d38d243d6615d52f9af9f39f3bc10233841eef51356647ef5c640e78deb620cf  glathida-grids/RGI60-01.16195/outline.gpkg
1d9befe43bd0ee15acdabd06c25a87a74e0e2ba1574d95124aae234a038094a0  glathida-grids/RGI60-01.16195/surface.tif
1ceb17d02c6603ef343e8a1c96a5a9726f9b800ea8fa6288522293b6338be090  glathida-grids/RGI60-01.16195/thickness.tif
1dfa9d6bfb8ef70e0b620cebb2a31b5e349df277cfec87d17c364f0f214ebefe  glathida-grids/RGI60-01.16835/meta.json
258f2004287a1f67bae0d3619ad0d6b4eb195f7d58a859a90811bb851392312e  glathida-grids/RGI60-01.16835/outline.gpkg
d0ba3c1ad5fb93f480c8e1901c4967c97a19eeacedd0290695ff6f203709bace  glathida-grids/RGI60-01.16835/surface.tif
ec7b26368cde55917f92fee0669ba2b71040157b5e16725e42d38c7628b16668  glathida-grids/RGI60-01.16835/thickness.tif
09e4a0b27e184a6593ba0d332fe0c785a93c52ce19f2377237f1281ab939de65  glathida-grids/RGI60-03.01632/meta.json
abfe9adf560c9547bb7102e74949eaae636feebf5caa7ffdc262de5ec71d4d85  glathida-grids/RGI60-03.01632/outline.gpkg
3d52284b0b5cdafeee02f542df6e5948420ca94bb650c971e85d88330b278567  glathida-grids/RGI60-03.01632/surface.tif
d554281be4f9301f8626cf3ead7bbed45063673e99ca60c9a9147f9dd4c01129  glathida-grids/RGI60-03.01632/thickness.tif
e9a27da6aa0e3a51f7aaa8d923155a022c1d42c6e929208efe04f5e26f6b2c0e  glathida-grids/RGI60-03.04487/meta.json
e166bd5c6a1d6ede4aa0ea11eee6038c40c98e836e034e39b533cbfbc51e5c71  glathida-grids/RGI60-03.04487/outline.gpkg
5691344c63ad576cd5933931f0d66db2afd5e7a37f8e5e65408cb84718985dc1  glathida-grids/RGI60-03.04487/surface.tif
8c6a3d52f6c41dcbe823b92867a61217ef8869f8d302aafd2c0d737589196499  glathida-grids/RGI60-03.04487/thickness.tif
8614eef6720895c2a78e52048e5be9371e6080145bf5bc5b8132be3e4f85a280  glathida-grids/RGI60-03.04538/meta.json
faaeed1063936873c4ad49000c639c9f7df69eabfc66e6e33b84eae9a0dbacfc  glathida-grids/RGI60-03.04538/outline.gpkg
0a2cdd6a1002e2f74d452b8438c61e2af438a94ce52b058a7e8cb1992c6dc902  glathida-grids/RGI60-03.04538/surface.tif
0d0be420f5a5865310cbfa48bdf4e66fbd8816206306d6bb51b7ddda018f59b6  glathida-grids/RGI60-03.04538/thickness.tif
327db4425ecbac33d6fbf8010c452dfc9c8a13d35523363aa289be7272ac3259  glathida-grids/RGI60-04.06981/meta.json
6ac508d6a1b74a9e6c712237fdb29a66d406154dd66719a1a90103e06942109a  glathida-grids/RGI60-04.06981/outline.gpkg
1912fd32442fca8619e29b0c069f3145cc79dea2b26c790011a4935b37e5cf30  glathida-grids/RGI60-04.06981/surface.tif
b69588cf24893462abb91899b7f99067a65c42fb62090114d22753ba63805e76  glathida-grids/RGI60-04.06981/thickness.tif
a95eec22bc414a8e08596fc6a5b682b7cfaec824ec43450ac3de4f08c5ad5cac  glathida-grids/RGI60-04.07131/meta.json
f91dc7bbc66ce476e934d6dba197f1aefc1c412c491c28372f8e1b962cdfa6c5  glathida-grids/RGI60-04.07131/outline.gpkg
193cf08a1cd39c5d11117f9eeab3291f1b5443f0b070f9c21b16c408e40901ea  glathida-grids/RGI60-04.07131/surface.tif
7bd053f680615d9c3817a1e3c8aa66e9ffdfbdb85ae1b9829cf29e8786db0057  glathida-grids/RGI60-04.07131/thickness.tif
e7d99f85acf2d6fdef804eebda016dd59ac70df0130f5151b2d462c62d0c193c  glathida-grids/RGI60-05.00524/meta.json
3a66b6cfaa7f085bb771da23cbbbb11ac9db9779412e3f76cdaffb7dd2fced16  glathida-grids/RGI60-05.00524/outline.gpkg
2530a8ea19491d2531e6d202b2b7b481d8832b1fcd623920f3e5b1ee899a4417  glathida-grids/RGI60-05.00524/surface.tif
10e733fc55347a4e6b57e549f35008caab2979b6cfb68839e8e43504b9760789  glathida-grids/RGI60-05.00524/thickness.tif
b75e8e654a7fb75b561fdbd84e1a4671b226b263a68c5971073300e3d7e73a3c  glathida-grids/RGI60-05.07772/meta.json
3b3f6581d532eb001898a82d76e5c959b8e871a8f48e17b0c4e071a7e7f9b7a2  glathida-grids/RGI60-05.07772/outline.gpkg
88dfb55caaf8bb9ee7efd809d1717b9a87b6d6be17fe9a9210d8e7bcf8500d4c  glathida-grids/RGI60-05.07772/surface.tif
682bb0287942ca44479e08f3d9e0f8ad8f793c510772dbb3b691245f831e2625  glathida-grids/RGI60-05.07772/thickness.tif
835fb071ae7d020793a0e56070cd8be0fd784c0fb360f076c2118d8a333fa544  glathida-grids/RGI60-11.00590/meta.json
f687333eb4f73bcc9173b2c57033296ab2343ff9ecd3eb5edbb790a0e39935cc  glathida-grids/RGI60-11.00590/outline.gpkg
fbff9b25828ff335589e3a5947f2c72987218151f2698b00afe42cddf1543d00  glathida-grids/RGI60-11.00590/surface.tif
1c15a5e49be685fab4478d89d89bc28d55641f3b57dba158a9a6d2113d8e9cb8  glathida-grids/RGI60-11.00590/thickness.tif
237974db0b7e4836201725c9e07c6baca2f689be4adccb66ebc31c39cb30783e  glathida-grids/RGI60-11.00603/meta.json
08292b7a18d8a5fd2c5ba145483a8be8aabe221f97e9451292f9efde7994268a  glathida-grids/RGI60-11.00603/outline.gpkg
0300359ca6822a501f00b21861eb4d7f84b1cf17e1135bf27d51e34ca20c936d  glathida-grids/RGI60-11.00603/surface.tif
739d6049dba0e39b83026376bfd49056b86ea4e61385b9f1ce71fd78db5280ea  glathida-grids/RGI60-11.00603/thickness.tif
15c477c5dd79a184f68e67c55bbe36faa3cf29b8393b76c653880ab5e4fd1dba  glathida-grids/RGI60-11.00746/meta.json
05d8a3addb66aef6725c8f250d2a7149105a9ca75f5af17659e3f503ea082d0d  glathida-grids/RGI60-11.00746/outline.gpkg
672d942a9b5e94d26e41f1eb45220cc60d3e4f209a3fbdb0d2d9eeaa2255586e  glathida-grids/RGI60-11.00746/surface.tif
635a3864fccb719c857aa42381923d35483e2c7486ef39fda0b4daa8f1bb4680  glathida-grids/RGI60-11.00746/thickness.tif
9890abc9130f95b06f91bb79a710befe6e83acebef2a57ff41768d599a8b5553  glathida-grids/RGI60-11.00846/meta.json
a4e77db6bff0cc4b4dd90457959317cf633145b08d288c852af50eed69347d0a  glathida-grids/RGI60-11.00846/outline.gpkg
b40275c5490e771cd0ef4b1d85ca051ea4007d998ebf9001a8b0fab2b4fd38b0  glathida-grids/RGI60-11.00846/surface.tif
66763b30210eddbb48253569a84b386093f0787bc00cf3b812fff313ab7c3e9c  glathida-grids/RGI60-11.00846/thickness.tif
67f967c57d468e816afa2db3f458ddacbbcd58f78519039fc2b6b2e40f4ee03e  glathida-grids/RGI60-11.00950/meta.json
aaa273374ad7b7b77cd9b0d7d6062e5c82bf12f8aae4fd9cb75f04b2f3b49cb0  glathida-grids/RGI60-11.00950/outline.gpkg
7ebb59e2a7b59afc29ca953c2aa11db2308933cc4deb89fb14cc3400aebd45f6  glathida-grids/RGI60-11.00950/surface.tif
d3b27c6c67f33fd52fbdda0cd6155be53eedc64fb4d65729c196cbc92ed59dfd  glathida-grids/RGI60-11.00950/thickness.tif
a75b97d6cde7c1695e82394f17d5046b8136ba6d08959ac4004ba2ffd1dd0cc6  glathida-grids/RGI60-11.01296/meta.json
531c4b810934d3c8d0b7a84ab38f6129d9564b049790b4b5c1c9a8186c079f4a  glathida-grids/RGI60-11.01296/outline.gpkg
98e6b3b17f15c5a702afa7e6aa6c710e161c38df4554a9a19a0702928f30d065  glathida-grids/RGI60-11.01296/surface.tif
4ce2f57feea77c3fb881cc0c3b3ce9b227e3fe2294083ebd5ccda3e31c8f2dd8  glathida-grids/RGI60-11.01296/thickness.tif
a1d2a382f0d0641f5789077ac59138f5f1d66b12ce5d1a17fe4149054ac946ae  glathida-grids/RGI60-11.01473/meta.json
74f8dc7c32d7cf1041dcb49955a09ce74b67ba72d6591a3910cb6476419d48ef  glathida-grids/RGI60-11.01473/outline.gpkg
5aba500a6a44614eed4b2712eb3942b33fab30056b4fa684f32b0138cb743602  glathida-grids/RGI60-11.01473/surface.tif
1b787e333d45e78e884f8116284b26ed5f2bcca8bf379cbdd4fffce483a85da6  glathida-grids/RGI60-11.01473/thickness.tif
230055b1028ffc23321a67e625c5a85f7cd26fe15c69a2bba6cac1c424e8815b  glathida-grids/RGI60-11.01813/meta.json
086cd8acf8c743abf3b06c51996093eee7ddb03a715c29d0700a00fb08fd495d  glathida-grids/RGI60-11.01813/outline.gpkg
3ee7dd53d23ed9c1603969740e5f1be7b77fb396bb501c44f16eb1dd58aae2c0  glathida-grids/RGI60-11.01813/surface.tif
6026eb119811c3952c8bc24ce86328001b9b4ec8a4d83f662d946214d42d9a0b  glathida-grids/RGI60-11.01813/thickness.tif
152228389a5bdb48da30da389af34cb38c0525a895609ff602a51c8ec03c3e7d  glathida-grids/RGI60-11.01962/meta.json
3314d440e907fedf313ad370a0e01742a42a500085c9502ef6016366f20e8058  glathida-grids/RGI60-11.01962/outline.gpkg
214f3a05869d237122682991bc863e87595ea49748542a49dbbfaebb303edb44  glathida-grids/RGI60-11.01962/surface.tif
ad96c94533c153114a8b0b3305e91d3cdc5db5be40ce4e9a0b005a2930dff6f2  glathida-grids/RGI60-11.01962/thickness.tif
4f0726bfd063e2c8a58e2708cce33b0071234438070f3e76587a99fe4a32cfec  glathida-grids/RGI60-11.02249/meta.json
4faf35a15ac5cded3ff9894b5eeb7fa9cd515dbd45778ad6971890d3f7ff706b  glathida-grids/RGI60-11.02249/outline.gpkg
8209a18c8a01264bb16cb0ad669261bca9d51d460fa7bdb9f7284739775008e7  glathida-grids/RGI60-11.02249/surface.tif
5b15dbcbf9ed5c172ccf4faea9ff41c4a2653f8f943d2a6a4e15046a66389879  glathida-grids/RGI60-11.02249/thickness.tif
c743451a963c61caec8167ebcbe734bf5f7a7f7750dda5b8fca766ba27196bca  glathida-grids/RGI60-11.02600/meta.json
414db332856805dc79d51a0936543e91e93011a0bfd4fd69397a8c5209192586  glathida-grids/RGI60-11.02600/outline.gpkg
fd268d47c9792e68dc04048d98636f968cb3ad94336a7000d7754b126b546ffb  glathida-grids/RGI60-11.02600/surface.tif
a78a616f5b16f0ead0d9ece1e72a5770b81f2a53b0986d02c001cab893e3c67f  glathida-grids/RGI60-11.02600/thickness.tif
46c603308f8de5165fac901b95210c27c99642af4055813f8ba99c7fad70524e  glathida-grids/RGI60-11.02773/meta.json
e5429f8a797233d36d72c48931c8352794d0c369c8d800b6101c0d3ac87a577f  glathida-grids/RGI60-11.02773/outline.gpkg
fdeef982894deb886bfd5f7d27658f4e72d5d4961a56e80cfad27f4991770538  glathida-grids/RGI60-11.02773/surface.tif
ca86f979e1c0e284d3b234e29fc95c1be40f64dbef1aae2589f1cb6325d6565b  glathida-grids/RGI60-11.02773/thickness.tif
74a11fcac228a9df716ec9d8fe84bf41cab5931ecdf4343115d1c96bb390115b  glathida-grids/RGI60-12.00960/meta.json
ebd0514ac8bbf2aea01c6936a9b3285601ca9864b6d9906d44de7b53cf46eeb2  glathida-grids/RGI60-12.00960/outline.gpkg
e6cd308d3b83e46eed3868a92e0dd2d377e31de48af69d0ac799a26bf5019eb3  glathida-grids/RGI60-12.00960/surface.tif
b73e0879739e8f88270bfa455f5d92a4269fc6e6f8525f6478f32807758c366e  glathida-grids/RGI60-12.00960/thickness.tif
93000a2a6f61d5b469420ec864e16eec362dd1862798f32dda99b9d3fb7f63e5  glathida-grids/RGI60-12.01132/meta.json
08d6ed30e13e50092346e9c7958d04b22c483489e859f8ef729a4ec4c517453c  glathida-grids/RGI60-12.01132/outline.gpkg
8a71ea0f0e3fa8088a4fb62d63392203d5bf3dee47ba2d0ad26763cd61db225e  glathida-grids/RGI60-12.01132/surface.tif
2ed63f00d84a439d57ac5d6547b537a2c9faf00263752daeb373d272ef090926  glathida-grids/RGI60-12.01132/thickness.tif
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


def dataset_pooch(name: str) -> "pooch.Pooch | None":
    """The :func:`pooch.create` instance of a public dataset (None for offline-only ones).

    Its cache folder is ``cache_dir()/<name>``. ``"files"`` datasets register every file
    with its sha256 (pooch checks it on download); ``"archive"`` datasets register the one
    archive (no fixed checksum: the archive is re-packed by the host; its members are
    checked one by one after unpacking, by :func:`verify`). Built per call, so a changed
    ``GLACIERBED_CACHE`` takes effect.
    """
    import pooch

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
    import pooch

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
    #: other files by role, e.g. ``(("meta", "glathida-grids/<id>/meta.json"),)``
    extras: tuple[tuple[str, str], ...] = ()

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
        *(_glathida_grid_example(rgi_id) for rgi_id in GLATHIDA_GRID_IDS),
    )
}


def get_example(name: str) -> ResolvedExample:
    """Resolve a named example to absolute paths (verified, downloaded if needed)."""
    if name not in EXAMPLES:
        raise DataNotFoundError(f"unknown example '{name}'; known examples: {', '.join(EXAMPLES)}")
    e = EXAMPLES[name]
    opt = lambda rel: get_file(rel) if rel else None  # noqa: E731
    return ResolvedExample(e.name, [get_file(p) for p in e.dem], opt(e.outlines), opt(e.glacier_mask),
                           opt(e.observations), opt(e.consensus), e.description,
                           {role: get_file(rel) for role, rel in e.extras})


def example_available(name: str) -> bool:
    """Whether every file of an example is present locally (data dir or cache), unchecked."""
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
