"""Data registry on the real kit: examples resolve, checksums hold, errors are clear."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import shutil
import tarfile
import threading
from pathlib import Path
from typing import Iterator

import pytest
import rasterio
from typer.testing import CliRunner

from glacierbed.cli import app
from glacierbed.data import registry as reg
from glacierbed.core.errors import ChecksumError, DataNotFoundError


@pytest.fixture
def empty_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty offline data dir and cache; network calls go to a closed local proxy port."""
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("GLACIERBED_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GLACIERBED_CACHE", str(tmp_path / "cache"))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.mark.parametrize("name", list(reg.EXAMPLES))
def test_examples_resolve_to_kit_files(name: str, data_dir: Path) -> None:
    ex = reg.get_example(name)
    paths = [*ex.dem, *(p for p in (ex.outlines, ex.glacier_mask, ex.observations, ex.consensus) if p)]
    assert paths and all(p.is_file() and p.is_relative_to(data_dir) for p in paths)
    for dem in ex.dem:  # every DEM opens, georeferenced
        with rasterio.open(dem) as src:
            assert src.crs is not None and src.width > 10 and src.height > 10
    if ex.outlines is not None and ex.outlines.suffix == ".shp":
        for ext in (".shx", ".dbf", ".prj"):
            assert ex.outlines.with_suffix(ext).is_file()
    assert reg.example_available(name)


def test_every_registered_kit_file_matches_its_sha256(data_dir: Path) -> None:
    assert len(reg.REGISTRY) >= 100
    for rel in reg.REGISTRY:
        assert reg.verify(data_dir / rel, rel) == data_dir / rel


def test_terrain_checksums_agree_with_kit_list(data_dir: Path) -> None:
    lines = (data_dir / "SHA256SUMS-terrain.txt").read_text().split("\n")
    listed = dict(reversed(line.split()) for line in lines if line.strip())
    assert listed and all(reg.REGISTRY[p] == h for p, h in listed.items())


def test_registry_file_is_packaged_and_parsed_by_pooch() -> None:
    """The sha256 list ships as ``glacierbed/data/registry.txt`` (pooch's registry-file format)."""
    from importlib import resources

    res = resources.files("glacierbed.data").joinpath("registry.txt")
    assert res.is_file() and reg.registry_file().read_text() == res.read_text()
    lines = [line.split() for line in res.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert all(len(parts) == 2 and len(parts[1]) == 64 for parts in lines)
    assert dict(lines) == reg.REGISTRY and len(reg.REGISTRY) == len(lines) == 194 + 3928
    known = {  # as listed before the registry moved out of the module
        "oggm-sample-data/test-files/hef_srtm.tif": "079f80987a4f309a2210e86399ad05c994d2bd9b2eec8acb0f66f06f5b746bf0",
        "glathida/glacier.csv": "0a8126eb4629ff0f0e8625b79ce86859f3d2525fd5d416f5c0d900af7ebb4dfd",
        "glathida-grids/RGI60-12.01132/thickness.tif":
            "2ed63f00d84a439d57ac5d6547b537a2c9faf00263752daeb373d272ef090926",
        "svalbard-longyearbyen/glacier_mask_1990.tif":
            "9eb8221fdeff01cf5b80c71db0325505c455093f6e46ace80510d69f4ebaab4d",
    }
    assert all(reg.REGISTRY[rel] == digest for rel, digest in known.items())
    assert sum(rel.startswith("glathida-grids/") for rel in reg.REGISTRY) == 1 + 4 * 23
    assert sum(rel.startswith("rgi11-alps/dem/") for rel in reg.REGISTRY) == 3927


def test_corrupted_copy_raises_checksum_error(data_dir: Path, empty_env: Path) -> None:
    rel = "oggm-sample-data/test-files/hef_srtm.tif"
    copy = empty_env / "data" / rel
    copy.parent.mkdir(parents=True)
    shutil.copyfile(data_dir / rel, copy)
    assert reg.get_file(rel) == copy  # intact copy passes
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="hef_srtm.tif"):
        reg.get_file(rel)


def test_missing_file_with_failed_download_names_url(empty_env: Path) -> None:
    with pytest.raises(DataNotFoundError, match="github.com/OGGM/oggm-sample-data/archive"):
        reg.get_file("oggm-sample-data/test-files/hef_srtm.tif")
    with pytest.raises(DataNotFoundError, match="gitlab.com/wgms/glathida"):
        reg.get_file("glathida/glacier.csv")


def test_offline_only_dataset_says_so(empty_env: Path) -> None:
    with pytest.raises(DataNotFoundError, match="offline-only"):
        reg.get_file("svalbard-longyearbyen/dem_1990.tif")
    with pytest.raises(DataNotFoundError, match="glathida-grids.*offline-only"):
        reg.get_example("glathida-RGI60-11.00746")
    assert reg.dataset_pooch("glathida-grids") is None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # no request lines on stderr
        pass


@pytest.fixture
def local_source(empty_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (bypassing the closed proxy): a stand-in public source."""
    www = empty_env / "www"
    www.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1")
    yield www, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_files_dataset_downloads_through_its_pooch(data_dir: Path, local_source: tuple[Path, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    www, url = local_source
    (www / "data").mkdir()
    shutil.copyfile(data_dir / "glathida" / "glacier.csv", www / "data" / "glacier.csv")
    (www / "data" / "band.csv").write_text("id\n1\n")  # a source that changed: wrong sha256
    monkeypatch.setitem(reg.DATASETS, "glathida", dataclasses.replace(reg.DATASETS["glathida"], url=url + "data/"))
    pup = reg.dataset_pooch("glathida")
    assert pup.abspath == reg.cache_dir() / "glathida"
    assert pup.registry == {"glacier.csv": "sha256:" + reg.REGISTRY["glathida/glacier.csv"],
                            "band.csv": "sha256:" + reg.REGISTRY["glathida/band.csv"]}
    path = reg.get_file("glathida/glacier.csv")
    assert path == reg.cache_dir() / "glathida" / "glacier.csv" == reg.locate("glathida/glacier.csv")
    assert path.read_bytes() == (data_dir / "glathida" / "glacier.csv").read_bytes()
    (www / "data" / "glacier.csv").unlink()  # cached now: no second download
    assert reg.get_file("glathida/glacier.csv") == path
    with pytest.raises(ChecksumError, match="band.csv"):
        reg.get_file("glathida/band.csv")
    assert reg.locate("glathida/band.csv") is None  # the bad download is not kept


def test_archive_dataset_unpacks_requested_members(data_dir: Path, local_source: tuple[Path, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    www, url = local_source
    ds = reg.DATASETS["oggm-sample-data"]
    rels = ["test-files/hef_srtm.tif", "rgi_meta/rgi_regions.csv"]
    with tarfile.open(www / "sample.tar.gz", "w:gz") as tar:
        for rel in rels:
            tar.add(data_dir / "oggm-sample-data" / rel, arcname=f"{ds.archive_prefix}/{rel}")
    monkeypatch.setitem(reg.DATASETS, ds.name, dataclasses.replace(ds, url=url + "sample.tar.gz"))
    assert list(reg.dataset_pooch(ds.name).registry) == ["sample.tar.gz"]
    unpacked = reg.cache_dir() / ds.name / ds.archive_prefix
    path = reg.get_file(f"{ds.name}/{rels[0]}")
    assert path == unpacked / rels[0] and not (unpacked / rels[1]).exists()  # only what was asked for
    (www / "sample.tar.gz").unlink()  # the second member comes from the cached archive
    assert reg.get_file(f"{ds.name}/{rels[1]}") == unpacked / rels[1]
    with pytest.raises(DataNotFoundError, match="not in the archive"):
        reg.get_file(f"{ds.name}/test-files/baltoro_srtm_clip.tif")


def test_bad_names(data_dir: Path) -> None:
    with pytest.raises(DataNotFoundError, match="oetztal.*hintereisferner"):
        reg.get_example("no-such-glacier")
    with pytest.raises(DataNotFoundError, match="relative"):
        reg.get_file("../secret.tif")
    with pytest.raises(DataNotFoundError, match="not a registered dataset"):
        reg.get_file("nowhere/dem.tif")


def test_glo30_tile_names_cover_kit_dems(data_dir: Path) -> None:
    assert reg.glo30_tile_names((10.7, 46.7, 11.1, 47.0)) == [
        "Copernicus_DSM_COG_10_N46_00_E010_00_DEM", "Copernicus_DSM_COG_10_N46_00_E011_00_DEM"]
    with rasterio.open(reg.get_file("peru-cordillera-blanca-srtm3/dem.tif")) as src:  # 77.75-77.25 W, 9.64-9.15 S
        tiles = reg.glo30_tile_names(tuple(src.bounds))
    assert tiles == ["Copernicus_DSM_COG_10_S10_00_W078_00_DEM"]
    assert reg.glo30_tile_url(tiles[0]).endswith(f"copernicus-dem-30m.s3.amazonaws.com/{tiles[0]}/{tiles[0]}.tif")
    with pytest.raises(ValueError):
        reg.glo30_tile_names((11, 46, 10, 47))


def test_rgi6_region_url() -> None:
    assert reg.rgi6_region_url(11).endswith("nsidc0770_11.rgi60.CentralEurope.zip")
    assert reg.rgi6_region_url(18, "glims").endswith("18_rgi60_NewZealand.zip")
    with pytest.raises(DataNotFoundError):
        reg.rgi6_region_url(20)


def test_cli_list_and_fetch(data_dir: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["data", "list"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "south-glacier" in res.output and "oggm-sample-data" in res.output
    sg_row = next(line for line in res.output.splitlines() if "south-glacier" in line)
    assert "observations, smb" in sg_row  # its mass-balance raster, for --smb
    res = runner.invoke(app, ["data", "fetch", "south-glacier"], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "mb_SouthGlacier.tif" in res.output
    res = runner.invoke(app, ["data", "fetch", "hintereisferner"], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "RGI60-11.00897_thickness.tif" in res.output
    res = runner.invoke(app, ["data", "fetch", "no-such-glacier"])
    assert res.exit_code == 2


def test_cli_list_keeps_every_example_name_whole_when_piped(data_dir: Path) -> None:
    """A name is what the user types next (`data fetch NAME`, `estimate --example NAME`): rich cut it to
    "greenland-08" at its default 80 columns of piped output."""
    res = CliRunner().invoke(app, ["data", "list"], env={"COLUMNS": ""})
    assert res.exit_code == 0, res.output
    first_cells = {line.split("│")[1].strip() for line in res.output.splitlines() if line.startswith("│")}
    assert set(reg.EXAMPLES) <= first_cells, sorted(set(reg.EXAMPLES) - first_cells)
