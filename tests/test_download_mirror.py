"""RGI ids -> outlines + Copernicus tiles -> estimate, against a local mirror of the public sources.

A tmp folder laid out like the public sources (an RGI 6.0 region zip and the RGI 6.0 regions
zip as at glims.org, an RGI 7.0 region zip as at NSIDC, GLO-30 COG tiles as in the AWS bucket),
built from the kit's Ötztal outlines and SRTM DEM, is served by ``http.server`` on 127.0.0.1;
``GLACIERBED_RGI_URL`` / ``GLACIERBED_DEM_URL`` point at it. No internet.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.warp import Resampling, reproject

from glacierbed.core.errors import DataNotFoundError
from glacierbed.data import sources
from glacierbed.data.region_inputs import fetch_region_inputs
from glacierbed.pipeline.estimate import estimate
from glacierbed.pipeline.glacier import EstimateConfig

OETZ_RGI = "oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"
OETZ_DEM = "oggm-sample-data/test-workflow/srtm_oetztal.tif"
HEF, EAST = "RGI60-11.00897", "RGI60-11.00929"  # EAST crosses 11 E: needs both tiles
TILE = "Copernicus_DSM_COG_10_N46_00_{}_00_DEM"
W10, E11 = TILE.format("E010"), TILE.format("E011")


class Handler(SimpleHTTPRequestHandler):
    """Static files; records every request; 404 for ``missing``; half a body for ``truncate``."""

    requests: list[str] = []
    missing: set[str] = set()
    truncate: set[str] = set()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.requests.append(self.path)
        if self.path in self.missing:
            self.send_error(404, "File not found")
        elif self.path in self.truncate:
            self.truncate.discard(self.path)
            body = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


def _zip_shapefile(gdf: gpd.GeoDataFrame, zip_path: Path, stem: str) -> None:
    folder = zip_path.parent.parent / "build" / stem
    folder.mkdir(parents=True)
    gdf.to_file(folder / f"{stem}.shp", engine="pyogrio")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f.name)
        z.writestr(f"{stem}_hypso.csv", "RGIId,Area\n")  # like the real zip: not a shapefile


def _copernicus_tile(src_path: Path, out: Path, lat: int, lon: int, n: int = 1200) -> None:
    """A 1x1 degree COG in EPSG:4326 (3"), resampled from the kit's SRTM DEM, nodata outside it."""
    dst = np.full((n, n), -9999.0, np.float32)
    transform = from_origin(lon, lat + 1, 1 / n, 1 / n)
    with rasterio.open(src_path) as src:
        reproject(rasterio.band(src, 1), dst, dst_transform=transform, dst_crs="EPSG:4326", dst_nodata=-9999.0,
                  src_nodata=-32768, resampling=Resampling.bilinear)
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out, "w", driver="COG", width=n, height=n, count=1, dtype="float32", crs="EPSG:4326",
                       transform=transform, nodata=-9999.0, compress="deflate") as ds:
        ds.write(dst, 1)


def _build_mirror(root: Path, data_dir: Path) -> None:
    g = gpd.read_file(data_dir / OETZ_RGI)
    g = g[~g["RGIId"].str.contains("_d")].copy()
    g["RGIId"] = g["RGIId"].str.replace("RGI50-", "RGI60-")
    _zip_shapefile(g, root / "rgi" / "11_rgi60_CentralEurope.zip", "11_rgi60_CentralEurope")
    g7 = g[["RGIId", "Area", "geometry"]].rename(columns={"RGIId": "rgi_id", "Area": "area_km2"})
    g7["rgi_id"] = [f"RGI2000-v7.0-G-11-{i:05d}" for i in range(1, len(g7) + 1)]
    _zip_shapefile(g7, root / "rgi" / "RGI2000-v7.0-G-11_central_europe.zip", "RGI2000-v7.0-G-11_central_europe")
    regions = gpd.GeoDataFrame({"FULL_NAME": ["Central Europe", "Caucasus and Middle East"], "RGI_CODE": [11, 12]},
                               geometry=[shapely.box(-6, 40, 20, 50), shapely.box(32, 30, 55, 45)], crs=4326)
    _zip_shapefile(regions, root / "rgi" / "00_rgi60_regions.zip", "00_rgi60_O1Regions")
    for tile, lon in ((W10, 10), (E11, 11)):
        _copernicus_tile(data_dir / OETZ_DEM, root / "dem" / tile / f"{tile}.tif", 46, lon)


@pytest.fixture(scope="module")
def mirror(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder): the mirror on a free port of 127.0.0.1, shut down at the end."""
    root = tmp_path_factory.mktemp("mirror")
    _build_mirror(root, data_dir)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture()
def served(mirror: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the sources at the mirror, a fresh cache; reset the request log. Returns the served folder."""
    url, root = mirror
    monkeypatch.setenv("GLACIERBED_RGI_URL", f"{url}/rgi")
    monkeypatch.setenv("GLACIERBED_DEM_URL", f"{url}/dem")
    monkeypatch.setenv("GLACIERBED_CACHE", str(tmp_path / "cache"))
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    Handler.requests.clear()
    Handler.missing.clear()
    Handler.truncate.clear()
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _estimate(out: Path, *extra: str):
    from typer.testing import CliRunner

    from glacierbed.cli import app

    return CliRunner().invoke(app, ["estimate", "--rgi-ids", f"{HEF},{EAST}", "--out", str(out), "--model",
                                    "biharmonic", "--ensemble", "1", "--no-maps", *extra])


def test_estimate_from_rgi_ids_downloads_caches_and_checks(served: Path, tmp_path: Path, data_dir: Path) -> None:
    r = _estimate(tmp_path / "run1")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert summary["n_glaciers"] == 2 and summary["counts_by_status"] == {"ok": 2}
    # same glaciers on the kit's own DEM and outlines: volumes within 5 % (tiles resampled from it)
    kit = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path / "kit", model="biharmonic", maps=False,
                   select=[i.replace("RGI60", "RGI50") for i in (HEF, EAST)], config=EstimateConfig(ensemble=1))
    got = pd.read_csv(tmp_path / "run1" / "glaciers.csv").set_index("rgi_id")["volume_km3"]
    ref = pd.read_csv(kit.out_dir / "glaciers.csv").set_index("rgi_id")["volume_km3"]
    assert np.allclose(got.sort_index().to_numpy(), ref.sort_index().to_numpy(), rtol=0.05)
    assert sorted(Handler.requests) == sorted(["/rgi/11_rgi60_CentralEurope.zip", f"/dem/{W10}/{W10}.tif",
                                               f"/dem/{E11}/{E11}.tif"])
    cache = tmp_path / "cache"
    dem_record = sources.recorded_sha256("copernicus-dem-30m")
    assert dem_record == {f"{t}.tif": _sha(served / "dem" / t / f"{t}.tif") for t in (W10, E11)}
    assert sources.recorded_sha256("rgi60") == {"11_rgi60_CentralEurope.zip":
                                                _sha(served / "rgi" / "11_rgi60_CentralEurope.zip")}
    # second run: everything from the cache, not one request
    Handler.requests.clear()
    r = _estimate(tmp_path / "run2")
    assert r.exit_code == 0, r.output
    assert Handler.requests == []
    # a corrupted cached tile is detected and downloaded again (only that one)
    tile = cache / "copernicus-dem-30m" / f"{W10}.tif"
    raw = bytearray(tile.read_bytes())
    raw[5000:5016] = bytes(b ^ 0xFF for b in raw[5000:5016])
    tile.write_bytes(bytes(raw))
    r = _estimate(tmp_path / "run3")
    assert r.exit_code == 0, r.output
    assert Handler.requests == [f"/dem/{W10}/{W10}.tif"]
    assert _sha(tile) == dem_record[f"{W10}.tif"]


def test_missing_tile_is_a_one_line_error(served: Path, tmp_path: Path) -> None:
    Handler.missing.add(f"/dem/{E11}/{E11}.tif")
    r = _estimate(tmp_path / "run")
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert E11 in r.output and "not on the server" in r.output and "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "cache" / "copernicus-dem-30m" / f"{E11}.tif").exists()


def test_bbox_regions_margin_tiles_rgi7_and_interrupted_download(served: Path, tmp_path: Path) -> None:
    # a box: region 11 from the regions file; HEF and its neighbours; only the western tile
    got = fetch_region_inputs(tmp_path / "bbox.gpkg", bbox=(10.72, 46.78, 10.80, 46.82))
    assert got.regions == [11] and HEF in got.rgi_ids and got.tiles == [W10]
    written = gpd.read_file(got.outlines)
    assert set(got.rgi_ids) <= set(written["RGIId"]) and len(written) >= len(got.rgi_ids)
    # a tile only the margin reaches may be absent (ocean): skipped; the glacier's own tile is fetched
    Handler.missing.add(f"/dem/{E11}/{E11}.tif")
    got = fetch_region_inputs(tmp_path / "margin.gpkg", ids=["RGI60-11.00945"])
    assert got.tiles == [W10, E11] and [p.name for p in got.dem] == [f"{W10}.tif"]
    # RGI 7.0: ids name the version; an interrupted download leaves nothing and the next call restarts
    rgi7 = "/rgi/RGI2000-v7.0-G-11_central_europe.zip"
    Handler.truncate.add(rgi7)
    with pytest.raises(DataNotFoundError, match="download failed"):
        fetch_region_inputs(tmp_path / "rgi7.gpkg", ids=["RGI2000-v7.0-G-11-00001"])
    assert not (tmp_path / "cache" / "rgi70" / "RGI2000-v7.0-G-11_central_europe.zip").exists()
    got = fetch_region_inputs(tmp_path / "rgi7.gpkg", ids=["RGI2000-v7.0-G-11-00001"])
    assert got.rgi_ids == ["RGI2000-v7.0-G-11-00001"] and Handler.requests.count(rgi7) == 2


def test_public_url_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GLACIERBED_RGI_URL", "GLACIERBED_DEM_URL"):
        monkeypatch.delenv(var, raising=False)
    assert sources.dem_tile_url(W10) == f"https://copernicus-dem-30m.s3.amazonaws.com/{W10}/{W10}.tif"
    g90 = "Copernicus_DSM_COG_30_S10_00_W078_00_DEM"
    assert sources.tile_names((-77.5, -9.5, -77.2, -9.2), "glo90") == [g90]
    assert sources.dem_tile_url(g90, "glo90") == f"https://copernicus-dem-90m.s3.amazonaws.com/{g90}/{g90}.tif"
    assert sources.rgi_url(sources.rgi_file_name(11)) == "https://www.glims.org/RGI/rgi60_files/11_rgi60_CentralEurope.zip"
    assert sources.rgi_url(sources.rgi_file_name(11, 7), 7) == (
        "https://daacdata.apps.nsidc.org/pub/DATASETS/nsidc0770_rgi_v7/regional_files/RGI2000-v7.0-G/"
        "RGI2000-v7.0-G-11_central_europe.zip")
    with pytest.raises(DataNotFoundError, match="not an RGI id"):
        fetch_region_inputs("x.gpkg", ids=["Hintereisferner"])
