"""Estimate stage: volume arithmetic on a synthetic valley of known volume, and the region
workflow (outputs, resume, Dask) on the real Ötztal kit with the biharmonic inpainter."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from scipy import integrate
from typer.testing import CliRunner

from glacierbed.cli import app
from glacierbed.data import registry
from glacierbed.data.outlines import rasterize_ids, read_outlines
from glacierbed.data.rasters import Raster, read_dem
from glacierbed.core.errors import DataNotFoundError, EmptySelectionError, MissingCRSError, NoOverlapError
from glacierbed.pipeline.estimate import (
    COLUMNS,
    EstimateConfig,
    estimate,
)
from glacierbed.models.predictors import TilingConfig, inpaint_sized, plan_resolution
from glacierbed.pipeline.outputs import elevation_bands
from glacierbed.core.glaciology import margin_pixels, sea_level_equivalent_mm

OETZ_DEM = "oggm-sample-data/test-workflow/srtm_oetztal.tif"
OETZ_RGI = "oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"
HEF = "RGI50-11.00897"


# --------------------------------------------------------------------------------------
# synthetic parabolic valley: bed z_b = z0 - s*y + k*(x-xc)^2, ice T = max(0, Hc(y) - k*(x-xc)^2)
# --------------------------------------------------------------------------------------
@dataclass
class QuadraticBed:
    """Inpainter that returns the known bed: the synthetic bed is a quadratic surface, so a
    least-squares quadratic fit to the visible pixels is exact (on any grid, flipped or not)."""

    name: str = "exact-quadratic"
    patch_size: int = 256
    resolution_range_m: tuple[float, float] = (10.0, 400.0)
    refine_coarse_dem: bool = False  #: refine glaciers on a coarse DEM for it (as the thickness network asks)

    def inpaint(self, dem: np.ndarray, hole: np.ndarray, pixel_size_m: float) -> np.ndarray:
        r, c = np.mgrid[: dem.shape[0], : dem.shape[1]].astype(np.float64)
        r, c = r * pixel_size_m / 1e3, c * pixel_size_m / 1e3
        design = np.stack([np.ones_like(r), r, c, r * r, c * c, r * c], axis=-1)
        vis = ~hole & np.isfinite(dem)
        coef, *_ = np.linalg.lstsq(design[vis], dem[vis].astype(np.float64), rcond=None)
        return np.where(hole, design @ coef, dem).astype(np.float32)


RES, K, H0, L, XC, YC = 25.0, 4e-4, 100.0, 3000.0, 3000.0, 4000.0
X0, Y1 = 500_000.0, 5_200_000.0  # EPSG:32632 origin, far from the valley itself


def _hc(y: np.ndarray) -> np.ndarray:
    """Centre-line thickness (m) along the valley (y in m, local)."""
    return H0 * np.sqrt(np.clip(1 - ((y - YC) / (L / 2)) ** 2, 0, None))


def _synthetic(tiny: bool = False) -> tuple[Raster, gpd.GeoDataFrame, float]:
    """(DEM, outlines, exact volume in km3) of the valley glacier (+ a tiny dome if asked)."""
    nx, ny = 240, 320
    x = (np.arange(nx) + 0.5) * RES
    y = (np.arange(ny) + 0.5) * RES  # local, downwards = rows
    yy, xx = np.meshgrid(y, x, indexing="ij")
    bed = 3000.0 - 0.1 * yy + K * (xx - XC) ** 2
    ice = np.clip(_hc(yy) - K * (xx - XC) ** 2, 0, None)
    ys = np.linspace(YC - L / 2, YC + L / 2, 801)
    half = np.sqrt(_hc(ys) / K)
    ring = [(XC + h, v) for h, v in zip(half, ys)] + [(XC - h, v) for h, v in zip(half[::-1], ys[::-1])]
    geoms = [shapely.Polygon([(X0 + a, Y1 - b) for a, b in ring])]
    volume = 4.0 / 3.0 / math.sqrt(K) * integrate.quad(lambda v: _hc(np.array(v)) ** 1.5, YC - L / 2, YC + L / 2)[0]
    if tiny:  # a paraboloid ice cap of radius 60 m, 20 m high, on the valley side: V = pi R^2 H / 2
        cx, cy, rad, h = 5400.0, 1500.0, 60.0, 20.0
        ice += np.clip(h * (1 - ((xx - cx) ** 2 + (yy - cy) ** 2) / rad**2), 0, None)
        geoms.append(shapely.Point(X0 + cx, Y1 - cy).buffer(rad, 256))
        volume += math.pi * rad**2 * h / 2
    dem = Raster.from_array(bed + ice, from_origin(X0, Y1, RES, RES), 32632, "synthetic")
    ids = ["SYN-valley", "SYN-tiny"][: len(geoms)]
    g = gpd.GeoDataFrame({"rgi_id": ids, "name": ids, "area_km2": [p.area / 1e6 for p in geoms]},
                         geometry=geoms, crs=32632)
    return dem, g, volume / 1e9


@pytest.mark.parametrize(
    "patch,res_range,mode",
    [(256, (10.0, 400.0), "native"), (128, (10.0, 200.0), "coarsened"), (64, (10.0, 25.0), "tiled")],
)
def test_synthetic_valley_volume_recovered(tmp_path: Path, patch: int, res_range, mode: str) -> None:
    dem, g, v_true = _synthetic()
    # the inpainting pipeline alone (physics=None): an exact bed must give the exact volume
    res = estimate(dem, g, tmp_path, model=QuadraticBed(patch_size=patch, resolution_range_m=res_range), maps=False,
                   config=EstimateConfig(physics=None))
    row = res.glaciers.iloc[0]
    assert row["status"] == "ok" and row["resolution_mode"] == mode and not row["partial"]
    assert row["volume_km3"] == pytest.approx(v_true, rel=0.03)
    assert row["neg_fraction"] < 0.02
    # exact bed: the ensemble agrees (flips and a dilated mask give the same bed)
    assert row["volume_std_km3"] < 0.01 * v_true
    assert row["mean_thickness_m"] == pytest.approx(v_true * 1e9 / (row["area_km2"] * 1e6), rel=0.05)
    assert row["max_thickness_m"] == pytest.approx(H0, rel=0.05)
    if mode == "tiled":
        assert row["n_tiles"] > 1
    # the mosaic holds the same volume as the table
    with rasterio.open(tmp_path / "thickness.tif") as src:
        th = src.read(1, masked=True)
    assert float(th.sum()) * RES * RES / 1e9 == pytest.approx(row["volume_km3"], rel=1e-4)


def test_tiny_glacier_gets_estimate(tmp_path: Path) -> None:
    dem, g, v_true = _synthetic(tiny=True)
    res = estimate(dem, g, tmp_path, model=QuadraticBed(), maps=False, config=EstimateConfig(physics=None))
    tiny = res.glaciers.set_index("rgi_id").loc["SYN-tiny"]
    assert tiny["status"] == "ok" and tiny["resolution_mode"] == "tiny"
    assert tiny["working_resolution_m"] < RES
    cap = math.pi * 60.0**2 * 20.0 / 2 / 1e9
    assert tiny["volume_km3"] == pytest.approx(cap, rel=0.2)  # 0.86 of it: 25 m DEM smooths the dome
    assert res.glaciers["volume_km3"].sum() == pytest.approx(v_true, rel=0.03)
    with rasterio.open(tmp_path / "thickness.tif") as src:  # the mosaic keeps the volume the finer grid gave
        th = src.read(1, masked=True)
    assert float(th.sum()) * RES * RES / 1e9 == pytest.approx(res.glaciers["volume_km3"].sum(), rel=1e-4)


def test_inpaint_sized_tiles_match_single_call() -> None:
    """Coarse pass + fine tiles give the single-call result for an exact inpainter."""
    dem, g, _ = _synthetic()
    hole = rasterize_ids(g, dem) > 0
    one, n1 = inpaint_sized(dem.data, hole, RES, QuadraticBed(patch_size=512), TilingConfig())
    tiled, n2 = inpaint_sized(dem.data, hole, RES, QuadraticBed(patch_size=64), TilingConfig())
    assert n1 == 1 and n2 > 4
    err = np.abs(tiled - one)[hole]  # m, on beds up to 100 m below the surface
    assert err.mean() < 0.5 and err.max() < 1.5  # the coarse guide (125 m blocks) costs < 1.5 m


def test_margin_pixels_keep_divides() -> None:
    ice = np.zeros((5, 8), bool)
    ice[1:4, 1:7] = True
    own = ice.copy()
    own[:, 4:] = False  # glacier A left, a neighbour right: their divide is not a margin
    m = margin_pixels(own, ice)
    assert m[1:4, 1].all() and not m[2, 3] and not m[2, 2]


def test_sea_level_equivalent() -> None:
    # 1 km3 of ice = 0.9/1.028 km3 of sea water spread over 3.625e8 km2
    assert sea_level_equivalent_mm(1000.0) == pytest.approx(1000 * 0.9 / 1.028 / 3.625e8 * 1e6)


# --------------------------------------------------------------------------------------
# real kit: Ötztal, biharmonic
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oetztal_run(data_dir: Path, tmp_path_factory) -> tuple[object, Path]:
    out = tmp_path_factory.mktemp("oetztal")
    res = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, out, model="biharmonic", maps=True)
    return res, out


def test_oetztal_every_glacier(oetztal_run, data_dir: Path) -> None:
    res, out = oetztal_run
    t = pd.read_csv(out / "glaciers.csv")
    assert set(COLUMNS) <= set(t.columns)
    ids = read_outlines(data_dir / OETZ_RGI)["rgi_id"]
    assert sorted(t["rgi_id"]) == sorted(ids)
    assert (t["status"] == "ok").all()
    assert np.isfinite(t["volume_km3"]).all() and (t["volume_km3"] >= 0).all()
    assert (t["volume_km3"] > 0).sum() >= 18
    assert ((t["neg_fraction"] >= 0) & (t["neg_fraction"] <= 1)).all()
    # area from the outlines in the metric CRS matches RGI's attribute
    rgi_area = read_outlines(data_dir / OETZ_RGI).set_index("rgi_id")["area_km2"]
    assert np.allclose(t.set_index("rgi_id")["area_km2"], rgi_area.loc[t["rgi_id"]], rtol=0.05)
    s = json.loads((out / "summary.json").read_text())
    assert s["volume_km3"] == pytest.approx(t["volume_km3"].sum())
    assert s["sea_level_equivalent_mm"] == pytest.approx(sea_level_equivalent_mm(s["volume_km3"]))
    assert s["model"] == "biharmonic" and s["counts_by_status"] == {"ok": 20}
    assert (out / "overview.png").stat().st_size > 10_000
    assert len(list((out / "maps").glob("*.png"))) == 20
    assert len(gpd.read_file(out / "glaciers.gpkg")) == 20


def test_oetztal_rasters(oetztal_run, data_dir: Path) -> None:
    res, out = oetztal_run
    dem = read_dem(data_dir / OETZ_DEM)
    outlines = read_outlines(data_dir / OETZ_RGI)
    rasters = {}
    for name in ("thickness", "bed", "thickness_std"):
        with rasterio.open(out / f"{name}.tif") as src:
            assert src.crs.to_epsg() == 32632 == dem.crs.to_epsg()
            assert src.dtypes[0] == "float32" and src.nodata is not None
            assert src.transform.almost_equals(dem.transform) and src.shape == dem.shape
            rasters[name] = src.read(1, masked=True)
    th = rasters["thickness"]
    assert float(th.min()) >= 0.0
    inside = rasterize_ids(outlines, dem) > 0
    assert not (~th.mask & ~inside).any()  # nodata outside the outlines
    assert (~th.mask)[inside & np.isfinite(dem.data)].all()
    assert float(th.sum()) * dem.pixel_area_m2 / 1e9 == pytest.approx(res.summary["volume_km3"], rel=1e-4)
    bed = rasters["bed"].filled(np.nan)
    ok = ~th.mask
    assert np.allclose(bed[ok], dem.data[ok] - th.filled(0)[ok], atol=0.01)
    assert np.allclose(bed[~inside], dem.data[~inside], equal_nan=True)
    assert float(rasters["thickness_std"].min()) >= 0


def test_elevation_bands_of_a_ramp_add_up_to_the_glacier() -> None:
    """A surface rising 1 m per pixel over 10 x 100 pixels of 25 m, thickness 2x the height above 1,000 m: 30 m bands
    of 30 pixel columns (the last 10), thickness known per band, bed = surface - thickness."""
    surface = np.tile(1000.0 + np.arange(100.0), (10, 1))
    thickness = 2.0 * (surface - 1000.0)
    valid = np.ones_like(surface, bool)
    valid[0, 0] = False  # a pixel without thickness is left out of every band
    bands = elevation_bands(surface, thickness, valid, 625.0, 30.0, thickness_std=0.1 * thickness)
    assert list(bands["band_bottom_m"]) == [990.0, 1020.0, 1050.0, 1080.0]  # bands start at multiples of 30 m
    assert list(bands["n_pixels"]) == [10 * 20 - 1, 300, 300, 10 * 20]
    assert bands["volume_km3"].sum() == pytest.approx(thickness[valid].sum() * 625.0 / 1e9, rel=1e-12)
    assert bands["area_km2"].sum() == pytest.approx(valid.sum() * 625.0 / 1e6, rel=1e-12)
    second = bands.iloc[1]  # surface 1020..1049 m: thickness 40..98 m, mean 69 m
    assert second["mean_thickness_m"] == pytest.approx(69.0) and second["mean_surface_m"] == pytest.approx(1034.5)
    assert second["mean_bed_m"] == pytest.approx(1034.5 - 69.0) and second["mean_thickness_std_m"] == pytest.approx(6.9)


def test_oetztal_elevation_bands(oetztal_run) -> None:
    """elevation_bands.csv: every glacier's 30 m bands, whose volumes and areas add up to glaciers.csv's."""
    _, out = oetztal_run
    bands, glaciers = pd.read_csv(out / "elevation_bands.csv"), pd.read_csv(out / "glaciers.csv").set_index("rgi_id")
    assert set(bands["rgi_id"]) == set(glaciers.index)
    totals = bands.groupby("rgi_id")[["volume_km3", "area_km2"]].sum()
    assert np.allclose(totals["volume_km3"], glaciers.loc[totals.index, "volume_km3"], rtol=1e-9)
    assert np.allclose(totals["area_km2"], glaciers.loc[totals.index, "estimated_area_km2"], rtol=1e-9)
    assert np.allclose(bands["band_top_m"] - bands["band_bottom_m"], 30.0)
    assert ((bands["mean_surface_m"] >= bands["band_bottom_m"]) & (bands["mean_surface_m"] < bands["band_top_m"])).all()
    assert (bands["mean_thickness_m"] >= 0).all() and (bands["mean_bed_m"] <= bands["mean_surface_m"] + 1e-9).all()
    hef = bands[bands["rgi_id"] == HEF]
    assert len(hef) > 20 and hef["band_bottom_m"].is_monotonic_increasing  # ~2,450-3,700 m


def test_resume_recomputes_only_missing(data_dir: Path, tmp_path: Path) -> None:
    three = ["RGI50-11.00897", "RGI50-11.00787", "RGI50-11.00684"]
    first = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path, model="biharmonic", select=three, maps=False)
    results = {i: tmp_path / "glaciers" / i / "estimate.json" for i in three}
    stamps = {i: p.stat().st_mtime_ns for i, p in results.items()}
    results[HEF].unlink()
    second = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path, model="biharmonic", select=three, maps=False)
    assert second.summary["n_resumed"] == 2
    assert results[HEF].exists()
    for i in three[1:]:
        assert results[i].stat().st_mtime_ns == stamps[i]
    a, b = first.glaciers.set_index("rgi_id"), second.glaciers.set_index("rgi_id")
    assert np.array_equal(a.loc[three, "volume_km3"].to_numpy(), b.loc[three, "volume_km3"].to_numpy())
    # another ensemble size changes the config hash: everything is recomputed
    third = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path, model="biharmonic", select=three,
                     maps=False, config=EstimateConfig(ensemble=2))
    assert third.summary["n_resumed"] == 0


def test_dask_two_workers_equals_serial(data_dir: Path, tmp_path: Path) -> None:
    three = ["RGI50-11.00897", "RGI50-11.00746", "RGI50-11.00684"]
    cfg = EstimateConfig(ensemble=2)
    kw = dict(model="biharmonic", select=three, maps=False, config=cfg)
    serial = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path / "serial", **kw)
    dask = estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path / "dask", workers=2, **kw)
    a = serial.glaciers.set_index("rgi_id").loc[three, "volume_km3"].to_numpy()
    b = dask.glaciers.set_index("rgi_id").loc[three, "volume_km3"].to_numpy()
    assert np.allclose(a, b, rtol=1e-6) and (a > 0).all()


def test_partial_outline_outside_dem(data_dir: Path, tmp_path: Path) -> None:
    dem = read_dem(data_dir / OETZ_DEM)
    outlines = read_outlines(data_dir / OETZ_RGI)
    hef = outlines.to_crs(dem.crs).set_index("rgi_id").loc[HEF].geometry
    col = int((~dem.transform @ (hef.centroid.x, hef.centroid.y))[0])
    cut = dem.window(0, 0, dem.shape[0], col)  # the DEM ends at Hintereisferner's centroid
    res = estimate(cut, outlines, tmp_path, model="biharmonic", select=[HEF], maps=False)
    row = res.glaciers.iloc[0]
    assert row["status"] == "ok" and row["partial"]
    assert 0.2 < row["outside_fraction"] < 0.8
    assert row["volume_km3"] > 0
    # the volume is over the covered part: its area, not the outline's, goes with it
    covered = row["estimated_area_km2"]
    assert covered == pytest.approx(row["area_km2"] * (1 - row["outside_fraction"]), rel=0.03)
    assert row["mean_thickness_m"] == pytest.approx(row["volume_km3"] * 1e3 / covered, rel=1e-6)
    assert res.summary["estimated_area_km2"] == pytest.approx(covered)
    assert res.summary["area_km2"] == pytest.approx(row["area_km2"])
    whole = estimate(dem, outlines, tmp_path / "whole", model="biharmonic", select=[HEF], maps=False).glaciers.iloc[0]
    assert not whole["partial"] and whole["estimated_area_km2"] == pytest.approx(whole["area_km2"], rel=0.03)


def test_a_glacier_without_dem_elevations_gets_one_line(data_dir: Path, tmp_path: Path) -> None:
    """RGI60-11.00264 lies inside the rgi11-alps mosaic around RGI60-11.00068 but on none of its tiles' data
    (every pixel of its window is nodata): its status says so in one line, no traceback, for the default model
    (which used to fail inside its feature stack) as for the fill."""
    from glacierbed.evaluation.measured_table import read_case_inputs

    dem, outlines, _ = read_case_inputs("rgi11-alps-RGI60-11.00068")
    for model in (None, "biharmonic"):
        res = estimate(dem, outlines, tmp_path / str(model), model=model, maps=False, select=["RGI60-11.00264"])
        status = pd.read_csv(tmp_path / str(model) / "task_status.csv").set_index("rgi_id").loc["RGI60-11.00264"]
        assert status["status"] == "error", status
        assert status["message"].endswith("RGI60-11.00264: no glacier pixel with a valid DEM elevation")
        assert len(res.glaciers) == 1


def test_clear_errors(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="nope.tif"):
        estimate(tmp_path / "nope.tif", data_dir / OETZ_RGI, tmp_path, model="biharmonic")
    with pytest.raises(NoOverlapError, match="glaciers.gpkg"):
        estimate(data_dir / OETZ_DEM, data_dir / "nz-canterbury-25m/glaciers.gpkg", tmp_path, model="biharmonic")
    with pytest.raises(EmptySelectionError, match="RGI60-99"):
        estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path, model="biharmonic", select=["RGI60-99.00001"])
    # South Glacier's (Yukon) SMB raster given for Hintereisferner: it would be skipped on every glacier in silence
    smb = data_dir / "oggm-sample-data/benchmarks/south_glacier/mb_SouthGlacier.tif"
    with pytest.raises(NoOverlapError, match=r"overlap the SMB raster .*mb_SouthGlacier.tif .*EPSG:32607"):
        estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path, model="biharmonic", select=[HEF], smb=smb)
    no_crs = tmp_path / "smb_without_crs.tif"  # the same values, the CRS dropped
    with rasterio.open(smb) as src:
        profile = {**src.profile, "crs": None}
        with rasterio.open(no_crs, "w", **profile) as dst:
            dst.write(src.read())
    with pytest.raises(MissingCRSError, match="smb_without_crs.tif: raster has no coordinate reference system"):
        estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path, model="biharmonic", select=[HEF], smb=no_crs)
    (tmp_path / "a_file").write_text("")  # --out naming a file, or a folder under one: a line, not a traceback
    for out, message in (("a_file", "a_file: file exists"), ("a_file/sub", "a_file/sub: not a directory")):
        result = CliRunner().invoke(app, ["estimate", "--dem", str(data_dir / OETZ_DEM), "--outlines",
                                          str(data_dir / OETZ_RGI), "--glacier", HEF, "--model", "biharmonic",
                                          "--out", str(tmp_path / out), "--no-maps"])
        assert result.exit_code == 2 and message in result.output, result.output


def test_cli_estimate(data_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from glacierbed.cli import app

    args = ["estimate", "--dem", str(data_dir / OETZ_DEM), "--outlines", str(data_dir / OETZ_RGI),
            "--out", str(tmp_path), "--model", "biharmonic", "--glacier", HEF, "--ensemble", "2", "--no-maps"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "glaciers.csv")
    assert list(t["rgi_id"]) == [HEF] and t["volume_km3"].iloc[0] > 0
    assert not (tmp_path / "overview.png").exists()
    assert "caution" not in r.output  # Hintereisferner (8 km2, 16 degrees) raises no flag: no line
    gepatsch = [*args[:6], str(tmp_path / "gepatsch"), *args[7:9], "--glacier", "RGI50-11.00746", *args[11:]]
    r = CliRunner().invoke(app, gepatsch)  # 16.6 km2: the counts of caution flags printed
    assert r.exit_code == 0 and "caution" in r.output and "large 1" in " ".join(r.output.split()), r.output
    r = CliRunner().invoke(app, [*args[:6], str(tmp_path / "bands10"), *args[7:], "--elevation-band", "10"])
    assert r.exit_code == 0, r.output
    bands = pd.read_csv(tmp_path / "bands10" / "elevation_bands.csv")
    assert np.allclose(bands["band_top_m"] - bands["band_bottom_m"], 10.0)
    assert bands["volume_km3"].sum() == pytest.approx(t["volume_km3"].iloc[0], rel=1e-9)  # bands change no volume
    bad_band = CliRunner().invoke(app, [*args[:6], str(tmp_path / "bands0"), *args[7:], "--elevation-band", "0"])
    assert bad_band.exit_code == 2 and "--elevation-band" in bad_band.output
    with pytest.raises(ValueError, match="elevation_band_m must be a height in metres above 0"):
        EstimateConfig(elevation_band_m=-30.0)
    bad = CliRunner().invoke(app, ["estimate", "--dem", str(tmp_path / "missing.tif"), "--outlines",
                                   str(data_dir / OETZ_RGI), "--out", str(tmp_path), "--model", "biharmonic"])
    assert bad.exit_code == 2 and "missing.tif" in bad.output


def test_cli_options_override_the_config_file(data_dir: Path, tmp_path: Path) -> None:
    """One route: the --config YAML, then the options given explicitly, booleans included."""
    from typer.testing import CliRunner

    from glacierbed.cli import app
    from glacierbed.commands.estimate import estimate_config

    yaml = tmp_path / "estimate.yaml"
    yaml.write_text("calibrate: false\nensemble: 2\nphysics: null\n")
    base = ["estimate", "--dem", str(data_dir / OETZ_DEM), "--outlines", str(data_dir / OETZ_RGI), "--model",
            "biharmonic", "--glacier", HEF, "--no-maps", "--config", str(yaml)]
    configs = {}
    for name, extra in (("file", []), ("options", ["--calibrate", "--ensemble", "1", "--physics"])):
        r = CliRunner().invoke(app, base + ["--out", str(tmp_path / name)] + extra)
        assert r.exit_code == 0, r.output
        configs[name] = json.loads((tmp_path / name / "summary.json").read_text())["config"]
    assert configs["file"]["calibrate"] is False and configs["file"]["ensemble"] == 2
    assert configs["file"]["physics"] is None
    assert configs["options"]["calibrate"] is True and configs["options"]["ensemble"] == 1
    assert configs["options"]["physics"] is not None
    yaml.write_text("calibrate: true\nphysics: {zero_margin: false}\n")
    cfg = estimate_config(yaml, {"calibrate": False, "physics": True})
    assert cfg.calibrate is False and cfg.physics.zero_margin is False  # --physics keeps the file's physics
    assert estimate_config(yaml, {"physics": False}).physics is None
    assert estimate_config(None, {}) == EstimateConfig()


def test_default_draws_the_overview_only(data_dir: Path, tmp_path: Path) -> None:
    """Per-glacier maps cost ~0.2 s each: only when asked (``maps=True`` / ``--maps``)."""
    three = ["RGI50-11.00897", "RGI50-11.00787", "RGI50-11.00929"]
    estimate(data_dir / OETZ_DEM, data_dir / OETZ_RGI, tmp_path, model="biharmonic", select=three,
             config=EstimateConfig(ensemble=1))
    assert (tmp_path / "overview.png").is_file()
    assert not list(tmp_path.glob("maps/*.png"))


def test_oetztal_surface_attributes_match_rgi_and_flag_the_large_glacier(oetztal_run) -> None:
    """glaciers.csv's surface attributes, from the DEM and the outline alone, against RGI's own for the same glaciers
    (another DEM and date, so within tolerances): latitude from the UTM grid (a CRS round trip), median elevation,
    slope; ``caution`` flags Gepatschferner (16.6 km2), the one glacier above 10 km2, as ``large``."""
    _, out = oetztal_run
    t = pd.read_csv(out / "glaciers.csv").set_index("rgi_id")
    assert (t["latitude_deg"] - t["CenLat"]).abs().max() < 0.01
    assert (t["z_median_m"] - t["Zmed"]).abs().median() < 50
    assert (t["slope_deg"] - t["Slope"]).abs().median() < 5
    assert ((t["z_min_m"] <= t["z_median_m"]) & (t["z_median_m"] <= t["z_max_m"])).all()
    assert t["caution"].fillna("").to_dict() == {i: "large" if a > 10 else "" for i, a in t["area_km2"].items()}
    assert json.loads((out / "summary.json").read_text())["counts_by_caution"] == {"large": 1}


def test_tables_keep_rgi_attributes_and_total_by_subregion(oetztal_run) -> None:
    """The outlines' RGI attributes stay in glaciers.csv; totals per RGI subregion add up."""
    res, out = oetztal_run
    t = pd.read_csv(out / "glaciers.csv", dtype={"O1Region": str, "O2Region": str})
    assert {"O1Region", "O2Region", "Zmed", "GLIMSId"} <= set(t.columns)
    assert (t["O1Region"] == "11").all()
    sub = pd.read_csv(out / "totals_by_subregion.csv", dtype={"O1Region": str, "O2Region": str})
    assert sub["n_glaciers"].sum() == 20
    assert sub["volume_km3"].sum() == pytest.approx(t["volume_km3"].sum())
    assert sub["volume_std_km3"].sum() == pytest.approx(t["volume_std_km3"].fillna(0).sum())


def test_cli_estimate_on_a_glacier_mask_raster(data_dir: Path, tmp_path: Path) -> None:
    """The Svalbard example has only a glacier mask raster: its patches are the glaciers, estimated by the default."""
    import rasterio
    from typer.testing import CliRunner

    from glacierbed.cli import app

    ids = ["glacier_mask_1990-0003", "glacier_mask_1990-0010"]
    args = ["estimate", "--example", "svalbard", "--out", str(tmp_path), "--no-maps"]
    r = CliRunner().invoke(app, args + [a for i in ids for a in ("--glacier", i)])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "glaciers.csv").set_index("rgi_id")
    assert sorted(t.index) == ids and (t["status"] == "ok").all()
    # the 20 m mask's own areas, and a plausible Svalbard thickness (tens of metres, not zero, not hundreds)
    assert t["area_km2"].to_list() == pytest.approx(t["n_pixels"].to_numpy() * 400 / 1e6)
    assert ((t["mean_thickness_m"] > 10) & (t["mean_thickness_m"] < 150)).all()
    with rasterio.open(tmp_path / "thickness.tif") as src:
        h = src.read(1, masked=True)
        assert src.crs.to_epsg() == 25833 and h.min() >= 0


def test_measured_region_column(data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``measured_region``: the shipped network was fine-tuned on measured glaciers of RGI regions 01, 03, 04, 05, 11
    and 12, read from RGI 6 and 7 ids; other ids, and a model never fine-tuned on measurements, say nothing. End to
    end, the kit's Karakoram glacier (RGI 14) is marked False in glaciers.csv."""
    from glacierbed.pipeline.estimate import measured_region
    from glacierbed.pipeline.store import load_predictor

    ids = pd.Series(["RGI60-11.00897", "RGI60-14.03439", "RGI2000-v7.0-G-01-00001", "RGI50-03.01632", "glacier-00001"])
    with caplog.at_level("WARNING", logger="glacierbed.pipeline.outputs"):
        assert measured_region(ids, load_predictor(None)).tolist() == [True, False, True, True, None]
    assert "1 of 5 glaciers have no RGI id (e.g. glacier-00001)" in caplog.text and "regions 1, 3, 4, 5, 11, 12" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="glacierbed.pipeline.outputs"):
        assert measured_region(ids, load_predictor("biharmonic")).tolist() == [None] * 5
    assert "no RGI id" not in caplog.text  # never fine-tuned on measurements: nothing to say
    ex = registry.get_example("karakoram-03439")
    res = estimate(ex.dem, ex.outlines, tmp_path, config=EstimateConfig(ensemble=1), maps=False)
    assert res.glaciers["measured_region"].tolist() == [False]
    assert pd.read_csv(tmp_path / "glaciers.csv")["measured_region"].tolist() == [False]
    assert res.summary["n_unmeasured_region"] == 1
    assert res.glaciers["caution"].tolist() == ["unmeasured_region"]  # 8.1 km2, 20 degrees: nothing else
    # the 90 % volume interval: the calibration's glacier-level multiplier times the calibrated 1-sigma
    g = res.glaciers.iloc[0]
    z90 = load_predictor(None).calibration.glacier_z90
    assert g["volume_90_high_km3"] - g["volume_km3"] == pytest.approx(z90 * g["volume_std_km3"])
    assert g["volume_90_low_km3"] == pytest.approx(max(g["volume_km3"] - z90 * g["volume_std_km3"], 0.0))
    assert res.summary["volume_90_km3"] == pytest.approx([g["volume_90_low_km3"], g["volume_90_high_km3"]])


def test_volume_interval_90_without_calibration_is_gaussian_and_never_negative() -> None:
    from glacierbed.pipeline.outputs import volume_interval_90

    table = pd.DataFrame({"volume_km3": [1.0, 0.1, np.nan], "volume_std_km3": [0.1, 0.2, np.nan]})
    iv = volume_interval_90(table, predictor=None, calibrate=True)  # a model without a calibration
    assert iv["volume_90_high_km3"].tolist()[:2] == pytest.approx([1.0 + 0.16448536, 0.1 + 0.32897073])
    assert iv["volume_90_low_km3"].tolist()[:2] == pytest.approx([1.0 - 0.16448536, 0.0])
    assert iv.iloc[2].isna().all()


def test_coarse_dem_warns(data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Above 100 m the default's volumes drift low (benchmarks/dem_resolution.py): the user is told."""
    files = data_dir / "oggm-sample-data/test-files"
    dem, outline = files / "hef_srtm.tif", files / "Hintereisferner_RGI6.shp"
    for res, warned in ((100.0, False), (150.0, True)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="glacierbed.pipeline.outputs"):
            estimate(dem, outline, tmp_path / str(res), model="biharmonic", resolution=res, maps=False)
        assert ("coarser than 100 m" in caplog.text) == warned


def test_an_outline_wholly_covered_by_another_fails_saying_so(data_dir: Path, tmp_path: Path) -> None:
    """Two identical Hintereisferner outlines under two ids: one keeps the pixels, the other fails naming the overlap
    (before: 'no glacier pixel with a valid DEM elevation'), and the command prints why after the totals."""
    files = data_dir / "oggm-sample-data/test-files"
    hef = gpd.read_file(files / "Hintereisferner_RGI6.shp")
    twice = gpd.GeoDataFrame(pd.concat([hef, hef.assign(RGIId="RGI60-11.99999")]), crs=hef.crs)
    twice.to_file(tmp_path / "twice.gpkg")
    result = CliRunner().invoke(app, ["estimate", "--dem", str(files / "hef_srtm.tif"), "--outlines",
                                      str(tmp_path / "twice.gpkg"), "--model", "biharmonic", "--out",
                                      str(tmp_path / "out"), "--no-maps"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "glaciers.csv").set_index("rgi_id")
    assert table.loc["RGI60-11.99999", "status"] == "ok" and table.loc["RGI60-11.00897", "status"] == "error"
    assert "no pixel of its own: overlapping outlines" in table.loc["RGI60-11.00897", "message"]
    assert "failed: RGI60-11.00897: no pixel of its own" in result.output


def test_a_coarse_dem_is_refined_and_the_volume_computed_there(tmp_path: Path) -> None:
    """On a 150 m DEM the valley glacier (3 x 1 km) is worked, and its volume computed, on a 100 m grid: with the exact
    bed its volume is nearer the true one than on the DEM's 150 m grid, where each zero-thickness margin pixel is
    150 m wide (benchmarks/coarse_dem_refinement.py)."""
    dem, g, v_true = _synthetic()
    rows = {}
    for name, refine in (("refined", 100.0), ("not refined", None)):
        res = estimate(dem, g, tmp_path / name, model=QuadraticBed(refine_coarse_dem=True), resolution=150.0,
                       maps=False, config=EstimateConfig(physics=None, refine_coarse_dem_m=refine))
        rows[name] = res.glaciers.iloc[0]
    assert rows["refined"]["resolution_mode"] == "refined"
    assert rows["refined"]["working_resolution_m"] == pytest.approx(100.0)
    assert rows["not refined"]["resolution_mode"] == "native"
    error = {k: abs(r["volume_km3"] / v_true - 1.0) for k, r in rows.items()}
    # zero-thickness margin pixels 100 m wide on a 1 km wide glacier still cost 14 % (16 % at 150 m)
    assert error["refined"] < error["not refined"] - 0.01 and error["refined"] < 0.15, error
    with rasterio.open(tmp_path / "refined" / "thickness.tif") as src:  # the 150 m mosaic keeps the 100 m volume
        th = src.read(1, masked=True)
        assert float(th.sum()) * 150.0**2 / 1e9 == pytest.approx(rows["refined"]["volume_km3"], rel=1e-4)


def test_plan_refines_only_coarse_dems_whose_window_fits_at_the_finer_pixel() -> None:
    """A glacier on a 200 m DEM is refined to 100 m when its window fits one 128 px patch there; a large window
    (an ice cap), a DEM of 100 m or finer, or a model that does not ask keeps today's plan; None turns it off."""
    net = QuadraticBed(patch_size=128, resolution_range_m=(25.0, 200.0), refine_coarse_dem=True)
    plan = lambda px, window_px, refine=100.0, model=net: plan_resolution(px, window_px, 500, 5e6,  # noqa: E731
                                                                          model, refine_coarse_dem_m=refine)
    assert (plan(200.0, 60).mode, plan(200.0, 60).resolution_m, plan(200.0, 60).resampling) == ("refined", 100.0,
                                                                                               "bilinear")
    assert plan(200.0, 60, None).mode == "native"
    assert plan(200.0, 120).mode == "native"  # 24 km: 240 px at 100 m, more than one patch
    assert plan(150.0, 60).resolution_m == 100.0
    assert plan(75.0, 60).mode == "native" and plan(100.0, 60).mode == "native"
    assert plan(200.0, 60, model=QuadraticBed(patch_size=128, resolution_range_m=(25.0, 200.0))).mode == "native"


def test_only_models_that_ask_are_refined(tmp_path: Path) -> None:
    """An inpainter fills the bed from the terrain whatever the pixel count: on a 150 m DEM it stays on the DEM's
    grid unless it asks (the thickness network does)."""
    from glacierbed.models.thickness.runtime import ThicknessNetPredictor

    dem, g, _ = _synthetic()
    res = estimate(dem, g, tmp_path, model=QuadraticBed(), resolution=150.0, maps=False,
                   config=EstimateConfig(physics=None))
    assert res.glaciers.iloc[0]["resolution_mode"] == "native"
    assert ThicknessNetPredictor.refine_coarse_dem


def test_no_measured_case_of_the_kit_is_refined(data_dir: Path, tmp_path: Path) -> None:
    """The refinement of coarse DEMs changes no measured figure of the default: every measured case's DEM is 100 m or
    finer except the 200 m GlaThiDa grids of six ice caps, whose windows do not fit one of the network's 128 px
    patches at 100 m (their plan is unchanged)."""
    measured = [n for n in registry.EXAMPLES if n.startswith(registry.GLATHIDA_EXAMPLE_PREFIX)]
    coarse = []
    for name in [*measured, "south-glacier", "oetztal", "hintereisferner"]:
        if read_dem(registry.get_example(name).dem).res[0] > 100.0:
            coarse.append(name)
    assert len(coarse) == 6
    for name in coarse:  # the default network's plan (an inpainter of larger patches may refine them)
        ex = registry.get_example(name)
        res = estimate(ex.dem, ex.outlines, tmp_path / name, maps=False,
                       config=EstimateConfig(physics=None, calibrate=False, ensemble=1))
        assert (res.glaciers["resolution_mode"] != "refined").all(), name


def test_estimate_compares_rgi6_glaciers_with_the_consensus(tmp_path, data_dir) -> None:
    """--consensus: Hintereisferner (RGI60-11.00897) gets the g2ti consensus volume and its ratio, in glaciers.csv,
    summary.json and on the terminal; a resumed run without the flag drops them and recomputes nothing (the flag is
    not part of a glacier's identity); an RGI 5 id gets none."""
    from glacierbed.pipeline.outputs import consensus_columns

    args = ["estimate", "--example", "hintereisferner", "--out", str(tmp_path / "hef"), "--no-maps"]
    res = CliRunner().invoke(app, [*args, "--consensus"])
    assert res.exit_code == 0, res.output
    assert "consensus (Farinotti et al. 2019) on the 1 glaciers with an RGI 6 id: 0.5779 km³" in res.output
    row = pd.read_csv(tmp_path / "hef" / "glaciers.csv").iloc[0]
    g2ti = pd.read_hdf(data_dir / "oggm-sample-data/g2ti/rgi62_itmix_df.h5")["vol_itmix_m3"]["RGI60-11.00897"] / 1e9
    assert row["consensus_volume_km3"] == pytest.approx(g2ti, rel=1e-6)
    assert row["volume_over_consensus"] == pytest.approx(row["volume_km3"] / g2ti, rel=1e-6)
    summary = json.loads((tmp_path / "hef" / "summary.json").read_text())["consensus"]
    assert summary["n_glaciers"] == 1 and summary["consensus_volume_km3"] == pytest.approx(g2ti, rel=1e-6)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "1 glaciers resumed, 0 recomputed" in again.output, again.output
    assert "consensus_volume_km3" not in pd.read_csv(tmp_path / "hef" / "glaciers.csv")
    table = pd.DataFrame({"rgi_id": ["RGI50-11.00897", "RGI60-11.00897", "RGI60-11.00897"],
                          "partial": [False, True, False], "volume_km3": [0.5, 0.5, np.nan]})
    assert consensus_columns(table)["consensus_volume_km3"].isna().all()  # other id, partial, not estimated


def test_consensus_comparison_without_the_table_warns_and_keeps_the_estimate(monkeypatch, caplog) -> None:
    """No local consensus table and no download: the glacier table stays as it is, with one warning saying why."""
    import glacierbed.data.examples as examples
    from glacierbed.pipeline.outputs import consensus_columns

    def missing():
        raise DataNotFoundError("oggm-sample-data/g2ti/rgi62_itmix_df.h5: not found (offline)")

    monkeypatch.setattr(examples, "consensus_volumes_km3", missing)
    table = pd.DataFrame({"rgi_id": ["RGI60-11.00897"], "partial": [False], "volume_km3": [0.5]})
    with caplog.at_level("WARNING", logger="glacierbed.pipeline.outputs"):
        out = consensus_columns(table)
    assert list(out.columns) == list(table.columns) and "no consensus comparison: oggm-sample-data/g2ti" in caplog.text
