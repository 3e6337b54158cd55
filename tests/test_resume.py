"""Resuming on the real kit: damaged per-glacier results are recomputed, never trusted; a full disk
stops a run with one line; the per-glacier GeoTIFF; the mapper and the resume rule on their own."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from glacierbed.core.parallel import Checkpoint, execute
from glacierbed.pipeline.estimate import EstimateConfig, estimate
from glacierbed.pipeline.workflow import GlacierDir

OETZ_DEM = "oggm-sample-data/test-workflow/srtm_oetztal.tif"
OETZ_RGI = "oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"
HEF = "RGI50-11.00897"
FOUR = [HEF, "RGI50-11.00787", "RGI50-11.00684", "RGI50-11.00746"]
KW = dict(model="biharmonic", select=FOUR, maps=False, config=EstimateConfig(ensemble=2))


@pytest.fixture(scope="module")
def first_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("first")
    res = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, out, **KW)
    assert (res.glaciers["status"] == "ok").all()
    return out, res.glaciers.set_index("rgi_id")


def _thickness_tif(out: Path, rgi_id: str) -> Path:
    return GlacierDir(out, rgi_id).get_filepath("thickness")


def test_damaged_results_are_recomputed(first_run, data_dir: Path, tmp_path: Path) -> None:
    src, volumes = first_run
    out = shutil.copytree(src, tmp_path / "run")
    truncated, garbled, deleted, kept = (_thickness_tif(out, i) for i in FOUR)
    truncated.write_bytes(truncated.read_bytes()[:300])
    raw = bytearray(garbled.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 16] = b"\xff" * 16  # same size, other bytes
    garbled.write_bytes(bytes(raw))
    deleted.unlink()
    stamp = kept.stat().st_mtime_ns

    again = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, out, **KW)
    status = pd.read_csv(out / "task_status.csv", keep_default_na=False).set_index("rgi_id")
    assert not status.loc[FOUR[:3], "resumed"].any() and status.loc[FOUR[3], "resumed"]
    assert (status.loc[FOUR[:3], "status"] == "ok").all()
    for rgi_id, why in zip(FOUR[:3], ("result unreadable", "result unreadable", "result missing")):
        assert status.loc[rgi_id, "recomputed"].startswith(why), status.loc[rgi_id, "recomputed"]
        assert status.loc[rgi_id, "message"].endswith(": recomputed")
    assert status.loc[FOUR[3], "recomputed"] == "" and kept.stat().st_mtime_ns == stamp
    assert again.summary["n_resumed"] == 1 and again.summary["n_recomputed"] == 3
    b = again.glaciers.set_index("rgi_id")
    np.testing.assert_array_equal(b.loc[FOUR, "volume_km3"], volumes.loc[FOUR, "volume_km3"])
    with rasterio.open(src / "thickness.tif") as s1, rasterio.open(out / "thickness.tif") as s2:
        np.testing.assert_array_equal(s1.read(1), s2.read(1))


def test_a_glacier_without_its_elevation_bands_is_recomputed(first_run, data_dir: Path, tmp_path: Path) -> None:
    """The bands are a result file like the thickness: a missing one recomputes its glacier, and the region's
    elevation_bands.csv is whole again."""
    src, volumes = first_run
    out = shutil.copytree(src, tmp_path / "run")
    GlacierDir(out, FOUR[1]).get_filepath("elevation_bands").unlink()
    estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, out, **KW)
    status = pd.read_csv(out / "task_status.csv", keep_default_na=False).set_index("rgi_id")
    assert status.loc[FOUR[1], "recomputed"].startswith("result missing") and status.loc[FOUR[0], "resumed"]
    bands = pd.read_csv(out / "elevation_bands.csv")
    assert set(bands["rgi_id"]) == set(FOUR)
    totals = bands.groupby("rgi_id")["volume_km3"].sum()
    np.testing.assert_allclose(totals.loc[FOUR], volumes.loc[FOUR, "volume_km3"], rtol=1e-9)


def test_damaged_record_is_recomputed(first_run, data_dir: Path, tmp_path: Path) -> None:
    src, volumes = first_run
    out = shutil.copytree(src, tmp_path / "run")
    record = GlacierDir(out, HEF).get_filepath("estimate")
    record.write_text(record.read_text()[:40])  # a truncated estimate.json
    again = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, out, **KW)
    status = pd.read_csv(out / "task_status.csv", keep_default_na=False).set_index("rgi_id")
    assert status.loc[HEF, "recomputed"].startswith("record unreadable") and not status.loc[HEF, "resumed"]
    assert again.summary["n_resumed"] == 3
    assert again.glaciers.set_index("rgi_id").loc[HEF, "volume_km3"] == volumes.loc[HEF, "volume_km3"]
    assert json.loads(record.read_text())["status"] == "ok"


def test_glacier_result_is_a_georeferenced_geotiff(first_run, data_dir: Path) -> None:
    out, volumes = first_run
    gdir = GlacierDir.open(_thickness_tif(out, HEF).parent)  # reopened from its folder alone
    assert gdir.rgi_id == HEF and gdir.record()["volume_km3"] == volumes.loc[HEF, "volume_km3"]
    stored = gdir.read_task("estimate")
    assert stored["status"] == "ok" and set(stored["sha256"]) == {"thickness.tif", "elevation_bands.csv"} and stored["key"]
    with rasterio.open(gdir.get_filepath("thickness")) as src, rasterio.open(out / "inputs" / "dem.tif") as dem:
        assert src.count == 2 and src.descriptions == ("thickness", "thickness_std")
        assert src.crs == dem.crs and src.nodata == -9999 and src.dtypes == ("float32", "float32")
        assert src.tags()["rgi_id"] == HEF
        assert src.transform.a == dem.transform.a and src.transform.e == dem.transform.e
        col, row = ~dem.transform @ (src.transform.c, src.transform.f)  # on the DEM grid
        assert abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6
        thick = src.read(1, masked=True)
        pixel_area = abs(src.transform.a * src.transform.e)
        assert float(thick.sum()) * pixel_area / 1e9 == pytest.approx(volumes.loc[HEF, "volume_km3"], rel=1e-5)


@pytest.mark.parametrize("target", ["glacierbed.pipeline.glacier.write_glacier_result",
                                    "glacierbed.pipeline.estimate.write_tables",
                                    "glacierbed.pipeline.maps.save_figure"])
def test_full_disk_stops_with_one_line(target: str, data_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from glacierbed.cli import app

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    args = ["estimate", "--dem", str(data_dir / OETZ_DEM), "--outlines", str(data_dir / OETZ_RGI), "--out",
            str(tmp_path), "--model", "biharmonic", "--glacier", HEF, "--ensemble", "1", "--no-physics", "--maps"]
    with monkeypatch.context() as m:
        m.setattr(target, full)
        r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if "error:" in line]
    assert len(errors) == 1, r.output
    assert str(tmp_path) in errors[0] and "no space left" in errors[0] and "resumes" in errors[0]
    again = CliRunner().invoke(app, args)  # with space again: the rerun resumes and finishes
    assert again.exit_code == 0, again.output
    done_before = target.endswith(("write_tables", "save_figure"))  # the glacier was written before the failure
    assert json.loads((tmp_path / "summary.json").read_text())["n_resumed"] == int(done_before)


def test_execute_serial_keeps_order_and_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    assert execute(lambda x: x * x, [3, 1, 2], progress=lambda d, t: seen.append((d, t))) == [9, 1, 4]
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert execute(str, []) == []


def test_checkpoint_reuses_only_an_intact_result(tmp_path: Path) -> None:
    result = tmp_path / "r.txt"
    cp = Checkpoint(tmp_path / "r.json", {"result": result}, key="k1")
    assert not cp.check().reusable and cp.check().why_not == ""  # nothing stored yet
    result.write_text("42")
    cp.commit("ok", note="x")
    found = cp.check(lambda files: int(files["result"].read_text()))
    assert found.reusable and found.value == 42 and found.record["note"] == "x"
    assert Checkpoint(cp.record, cp.files, key="k2").check().why_not == "inputs changed (another key)"
    result.write_text("43")
    assert "sha256 differs" in cp.check().why_not
    cp.commit("ok")
    assert "ValueError" in cp.check(lambda files: int("x")).why_not  # a reader that fails: recompute
    cp.commit("error")
    assert cp.check().why_not == "stored status 'error'"


def test_dask_mapping_sends_a_few_items_at_a_time_and_keeps_order() -> None:
    """Items go to the scheduler as others finish (never the whole list as one graph)."""
    from dask.distributed import Client, LocalCluster

    from glacierbed.core.parallel import _as_completed

    reported: list[int] = []
    outstanding: list[int] = []

    class SpyClient:  # the real client; records how many items were unread at each submission
        def __init__(self, client: Client) -> None:
            self.client, self.submitted = client, 0

        def submit(self, *args: object, **kwargs: object) -> object:
            self.submitted += 1
            outstanding.append(self.submitted - len(reported))
            return self.client.submit(*args, **kwargs)

    items = list(range(9))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        out = _as_completed(SpyClient(client), lambda x: x * 10, items, order=lambda x: -x,
                            report=lambda done, total: reported.append(done), in_flight=3)
    assert out == [x * 10 for x in items]  # in the items' order, whatever the submission order
    assert len(outstanding) == len(items) and max(outstanding) <= 3
    assert reported == list(range(1, len(items) + 1))
