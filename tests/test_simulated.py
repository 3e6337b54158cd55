"""The simulated-glacier training set: inventories drawn from simulated ice, windows, a tiny real build."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from glacierbed.core.errors import CorruptFileError
from glacierbed.simulation.ice_flow import GLEN_A, GlacierParams, SimulationConfig
from glacierbed.simulation.thickness_area import inner_glaciers
from glacierbed.simulation.glacier_set import (SimSource, SimulatedSet, SimulatedSetConfig, build_simulated_set, draw_windows,
                                  glacier_labels, surface_speed)


def _two_valleys(n: int = 80, px: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """An ice field over a pass: a valley (low along the middle column) falling north and south
    from a divide across the middle row; surface and thickness."""
    r, c = np.mgrid[:n, :n].astype(float)
    surface = 3000.0 - 4.0 * np.abs(r - n / 2) * px / 50.0 + 0.05 * (c - n / 2) ** 2
    thickness = np.where((np.abs(c - n / 2) < 20) & (np.abs(r - n / 2) < 35), 80.0, 0.0)
    return surface, thickness


def test_labels_split_an_ice_field_at_its_divide() -> None:
    surface, h = _two_valleys()
    lab = glacier_labels(surface, h, 50.0, 0.5, 20)
    assert lab.max() == 2
    north, south = lab[5:35][h[5:35] > 0], lab[46:75][h[46:75] > 0]
    assert len(np.unique(north)) == 1 and len(np.unique(south)) == 1 and north[0] != south[0]
    assert (lab[h <= 0.5] == 0).all() and (lab[h > 0.5] > 0).all()


def test_small_basins_join_a_neighbour() -> None:
    surface, h = _two_valleys()
    assert glacier_labels(surface, h, 50.0, 0.5, 10_000).max() == 1  # no basin that large: one ice body


def test_surface_speed_is_glen_flow() -> None:
    n, px, alpha = 40, 50.0, np.deg2rad(5.0)
    r = np.arange(n)[:, None] * np.ones((1, n))
    surface = 3000.0 - np.tan(alpha) * r * px
    h = np.full((n, n), 100.0)
    p = GlacierParams(ela_m=0.0, glen_a=GLEN_A, sliding_fraction=0.5)
    u = surface_speed(surface, h, px, p, 2 * px)[n // 2, n // 2]
    a_yr = GLEN_A * 365.25 * 86400
    expected = 2 * a_yr / 4 * (900 * 9.81 * np.sin(alpha) * 100.0) ** 3 * 100.0 / 0.5
    assert u == pytest.approx(expected, rel=0.02)


def test_draw_windows_filters_and_splits() -> None:
    rng = np.random.default_rng(0)
    bed = np.add.outer(np.linspace(0, 2000, 300), np.zeros(300))
    glacier = np.zeros(bed.shape, bool)
    glacier[:, 150:] = True  # real glaciers: the right half is excluded
    cfg = SimulatedSetConfig(sources=(), patch=64)
    rejected: Counter = Counter()
    wins = draw_windows(bed, glacier, cfg, 20, rng, (20, 100), rejected)
    assert wins and rejected["real glaciers in window"] > 0
    for r0, c0, split in wins:
        assert c0 + 64 <= 150 + 64 * cfg.max_glacier_fraction + 1
        if split == "val":
            assert 20 <= c0 and c0 + 64 <= 100  # wholly inside the strip
        else:
            assert c0 + 64 <= 20 or c0 >= 100  # training windows never touch the validation strip


def test_tiny_real_build(tmp_path: Path) -> None:
    """Two windows of real Alpine terrain at 200 m glaciated and written; the file reads back."""
    src = SimSource(name="ticino", dem=("alps-topography-200m/topg-ticino.tif",), resolutions_m=(200.0,),
                    n_per_resolution=2, test=True)
    cfg = SimulatedSetConfig(sources=(src,), patch=64, batch=2, min_ice_fraction=0.0, max_ice_fraction=1.0,
                             simulation=SimulationConfig(max_years=400.0, compile=False))
    summary = build_simulated_set(cfg, tmp_path / "sim.npz")
    sims = SimulatedSet.load(tmp_path / "sim.npz")
    n = len(sims)
    assert n == summary["n"] >= 1 and n + sum(summary["dropped_simulations"].values()) == 2
    assert set(sims.split) == {"test"}
    assert sims.bed.shape == sims.thickness.shape == sims.ids.shape == (n, 64, 64)
    assert (sims.thickness >= 0).all() and np.isfinite(sims.smb).all()
    ice = sims.thickness > cfg.ice_min_m
    assert ((sims.ids > 0) == ice).all()
    assert len(sims.params) == n and {"glen_a", "ela_m", "steady"} <= set(sims.params[0])
    # the summary's thickness-for-area check counts each glacier inside a window once
    inside = sum(len(np.unique(i[inner_glaciers(i)])) for i in sims.ids)
    assert sum(r["glaciers"] for r in summary["thickness_for_area"]) == inside
    # an interrupted or repeated build reuses the finished batches (resume): same windows, nothing recomputed
    parts = sorted((tmp_path / "sim.parts").glob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in parts]
    again = build_simulated_set(cfg, tmp_path / "sim.npz", progress=lambda done, total: None)
    assert parts and [p.stat().st_mtime_ns for p in parts] == stamps
    np.testing.assert_array_equal(SimulatedSet.load(tmp_path / "sim.npz").thickness, sims.thickness)
    assert again["n"] == summary["n"]
    # a truncated batch file fails its checksum and is simulated again, to the same ice
    parts[0].write_bytes(parts[0].read_bytes()[:100])
    build_simulated_set(cfg, tmp_path / "sim.npz")
    assert parts[0].stat().st_mtime_ns != stamps[0] and parts[0].with_suffix(".json").exists()
    np.testing.assert_array_equal(SimulatedSet.load(tmp_path / "sim.npz").thickness, sims.thickness)
    # the set truncated, a text file, an archive of something else: one line naming the file, not a traceback
    (tmp_path / "cut.npz").write_bytes((tmp_path / "sim.npz").read_bytes()[:3000])
    (tmp_path / "text.npz").write_text("not an archive")
    np.savez(tmp_path / "other.npz", dem=np.zeros(3))
    for name, message in (("cut", "cannot be read as a simulated glacier set"), ("text", "not a NumPy .npz archive"),
                          ("other", "not a simulated glacier set: bed is not a file")):
        with pytest.raises(CorruptFileError, match=f"{name}.npz: .*{message}"):
            SimulatedSet.load(tmp_path / f"{name}.npz")


def test_validation_and_training_windows_are_disjoint_at_every_resolution(data_dir: Path) -> None:
    """Ötztal ice-free terrain at 50 and 100 m: the strip is the same ground at both, so no
    training window of either resolution overlaps a validation window of either (issue 16)."""
    from glacierbed.data.terrain import source_grids
    from glacierbed.simulation.glacier_set import validation_columns

    src = SimSource(name="oetztal", dem=("oggm-sample-data/test-workflow/srtm_oetztal.tif",),
                    outlines="oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp", resolutions_m=(50.0, 100.0))
    cfg = SimulatedSetConfig(sources=(src,), patch=64, min_relief_m=0.0)
    boxes: dict[str, list[tuple[float, float]]] = {"train": [], "val": []}
    for res in src.resolutions_m:
        dem, glacier = source_grids(src, res)
        cols = validation_columns(dem.bounds, res, 0.4, cfg, max(src.resolutions_m))
        wins = draw_windows(dem.data, glacier, cfg, 60, np.random.default_rng(1), cols, Counter())
        left = dem.bounds[0]
        for _, c0, split in wins:
            boxes[split].append((left + c0 * res, left + (c0 + cfg.patch) * res))
    assert len(boxes["train"]) > 20 and len(boxes["val"]) >= 2
    overlaps = [(t, v) for t in boxes["train"] for v in boxes["val"] if t[0] < v[1] - 1e-6 and v[0] < t[1] - 1e-6]
    assert not overlaps, f"{len(overlaps)} training/validation window pairs overlap on the ground"


def test_validation_quota_and_whole_source_splits(tmp_path: Path) -> None:
    """A strip wide against its DEM takes at most val_fraction of the windows; a whole source
    can be validation, and a built set can be regrouped by source."""
    from glacierbed.simulation.glacier_set import SimulatedSet

    rng = np.random.default_rng(1)
    bed = np.add.outer(np.linspace(0, 2000, 200), np.zeros(200))
    cfg = SimulatedSetConfig(sources=(), patch=64, val_fraction=0.1)
    rejected: Counter = Counter()
    wins = draw_windows(bed, np.zeros(bed.shape, bool), cfg, 30, rng, (0, 110), rejected)  # strip: over half the DEM
    n_val = sum(s == "val" for _, _, s in wins)
    assert 1 <= n_val <= 3 and rejected["validation quota full"] > 0 and len(wins) - n_val > 0
    n = 4
    sims = SimulatedSet(*(np.zeros((n, 8, 8), np.float32) for _ in range(5)), res=np.full(n, 200.0),
                        split=np.array(["train", "val", "train", "test"]),
                        source=np.array(["a@200m", "a@200m", "b@200m", "c@200m"]), params=[{}] * n, summary={})
    regrouped = sims.with_source_splits({"a": "train", "b": "val"})
    assert list(regrouped.split) == ["train", "train", "val", "test"]
    back = SimulatedSet.load(regrouped.save(tmp_path / "s.npz"))
    assert list(back.split) == ["train", "train", "val", "test"] and back.summary["splits_by_source"] == {"a": "train",
                                                                                                      "b": "val"}
    with pytest.raises(ValueError):
        sims.with_source_splits({"a": "holdout"})


def test_coarse_view_keeps_the_volume_and_samples_labels_at_block_centres(tmp_path: Path) -> None:
    """A coarse view of a window is what a k-times coarser DEM sees: the same ice volume (thickness averaged over
    blocks, pixels k^2 larger), the outline sampled at block centres, windows beyond the coarsest pixel dropped."""
    from glacierbed.simulation.coarse_views import block_average, coarse_view

    rng = np.random.default_rng(0)
    n = 3
    thickness = rng.uniform(0.0, 300.0, (n, 8, 8)).astype(np.float32)
    ids = np.zeros((n, 8, 8), np.int16)
    ids[:, 1, 1], ids[:, 2, 5] = 7, 9  # at k=2 block (r, c) is sampled at (2r + 1, 2c + 1): (1, 1) is, (2, 5) not
    ids[:, 3, 5] = 4
    sims = SimulatedSet(rng.uniform(2000, 3000, (n, 8, 8)).astype(np.float32), thickness, ids,
                        np.ones((n, 8, 8), np.float32), np.zeros((n, 8, 8), np.float32),
                        res=np.array([25.0, 50.0, 150.0]), split=np.array(["train", "val", "test"]),
                        source=np.array(["a", "b", "c"]), params=[{"i": 0}, {"i": 1}, {"i": 2}], summary={})
    view = coarse_view(sims, 2)
    assert list(view.res) == [50.0, 100.0] and list(view.split) == ["train", "val"]  # 150 m x 2 > 200 m: dropped
    assert view.bed.shape == (2, 4, 4) and [p["i"] for p in view.params] == [0, 1]
    for w in range(2):  # volume: sum(h) px^2 on both grids
        assert float(view.thickness[w].sum()) * view.res[w] ** 2 == pytest.approx(
            float(thickness[w].sum()) * sims.res[w] ** 2, rel=1e-5)
    assert view.ids[0, 0, 0] == 7 and view.ids[0, 1, 2] == 4 and view.ids[0, 0, 2] == 0
    assert block_average(np.arange(16.0).reshape(4, 4), 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert coarse_view(sims, 4, coarsest_m=200.0).res.tolist() == [100.0, 200.0]
    back = SimulatedSet.load(view.save(tmp_path / "v.npz"))
    assert back.summary["coarse_view"] == {"factor": 2, "coarsest_m": 200.0}
    with pytest.raises(ValueError, match="stays within"):
        coarse_view(sims, 16)


def test_simulate_build_cli_prints_the_thickness_for_area_check(tmp_path: Path, data_dir: Path) -> None:
    """`glacierbed simulate build` on two 64 px windows of real Alpine terrain: the windows are written and the
    summary's thickness-for-area check is printed (one line, per size class)."""
    import json

    import yaml
    from typer.testing import CliRunner

    from glacierbed.cli import app

    cfg = {"patch": 64, "batch": 2, "min_ice_fraction": 0.0, "max_ice_fraction": 1.0,
           "simulation": {"max_years": 400.0, "compile": False},
           "sources": [{"name": "ticino", "dem": "alps-topography-200m/topg-ticino.tif", "resolutions_m": [200],
                        "n_per_resolution": 2, "test": True}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["simulate", "build", "--config", str(tmp_path / "s.yaml"),
                                 "--out", str(tmp_path / "s.npz")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert "median mean thickness over volume-area scaling" in " ".join(r.output.split())
    for row in summary["thickness_for_area"]:
        assert row["glaciers"] >= 1 and row["median_over_va"] > 0
