"""A training set of glaciers simulated by the ice-flow model on real ice-free terrain.

Windows of real DEMs (the bed) at 25-200 m are glaciated by :mod:`glacierbed.simulation.ice_flow`
(shallow ice, MUSCL-superbee, mass balance from an ELA, steady state, optional retreat)
with parameters drawn per window (:func:`glacierbed.simulation.ice_flow.draw_params`: A x/÷ 3,
sliding 0-50 %, balance gradients and cap, ELA so that ~5-40 % is ice, retreat or not).
What an inventory would draw is kept with each sample: the glaciers (the simulated ice
split into drainage basins, so neighbours share divides), their surface speed and mass
balance, and the parameters.

Splits: windows of a *test* source (a mountain range never used in training) are all
"test"; each training source holds out a strip of 10 % of its width as "val" (no "train"
window reaches into it), as the terrain patch builder does. Windows are drawn at random
with at most ``max_glacier_fraction`` of real glacier pixels (their surface is not a
bed) and at least ``min_relief_m`` of relief; simulations whose ice covers less than
``min_ice_fraction`` or more than ``max_ice_fraction`` of the window are dropped (those
still changing after ``simulation.max_years`` are kept, flagged ``steady: false``).
Batches of windows run as tasks (:func:`glacierbed.core.parallel.execute`: on a local Dask
cluster with ``workers`` > 1, else serially); each finished batch is stored with its key and
checksum and reused by the resume rule of :class:`glacierbed.core.parallel.Checkpoint`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.segmentation import watershed

from glacierbed.core.atomic import read_npz, replacing, write_json
from glacierbed.core.config import YamlConfig, config_to_dict
from glacierbed.core.parallel import OK, Checkpoint, execute
from glacierbed.data.terrain import PatchSource, source_grids
from glacierbed.core.glaciology import glen_deformation_speed, linear_mass_balance, smoothed_surface, surface_slope
from glacierbed.simulation.ice_flow import GlacierParams, ParamRanges, SimulationConfig, draw_params, simulate_glaciers
from glacierbed.simulation.thickness_area import glacier_sizes, thickness_for_area

log = logging.getLogger(__name__)

_EIGHT = np.ones((3, 3), bool)
MAX_SPEED_M_A = 20000.0  #: stored speeds are capped here (float16 overflows at 65,504)


@dataclass(frozen=True)
class SimSource(PatchSource):
    """A DEM to glaciate; ``test``: a held-out mountain range (every window is "test")."""

    test: bool = False
    n_per_resolution: int = 100
    #: every window of this source is "val" (a whole range held out, no strip): for sources
    #: only a few windows wide, where a strip would take most windows
    validation: bool = False


@dataclass(frozen=True)
class SimulatedSetConfig(YamlConfig):
    sources: tuple[SimSource, ...]
    patch: int = 128
    max_glacier_fraction: float = 0.02  #: real glacier pixels allowed in a window
    min_relief_m: float = 400.0
    min_ice_fraction: float = 0.03
    max_ice_fraction: float = 0.5
    val_fraction: float = 0.1  #: width of each training source's validation strip; 0: no strips
    batch: int = 8  #: windows simulated together (same pixel size)
    min_basin_km2: float = 0.5  #: drainage basins smaller than this join a neighbour
    ice_min_m: float = 0.5  #: thickness counted as simulated ice (inventories threshold it again)
    ranges: ParamRanges = field(default_factory=ParamRanges)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    seed: int = 0


# --- inventory from a simulated ice field --------------------------------------------------
def glacier_labels(surface: np.ndarray, thickness: np.ndarray, pixel_size_m: float, ice_min_m: float = 0.5,
                   min_basin_px: int = 20) -> np.ndarray:
    """Glaciers of a simulated ice field: ice split into drainage basins of its surface.

    Each ice pixel drains down the steepest descent of the (lightly smoothed) surface to
    an outlet; basins of at least ``min_basin_px`` pixels are glaciers and the pixels of
    smaller ones join the glacier they flood into (watershed from the outlets), so
    neighbouring glaciers meet at ice divides, as in an inventory.
    """
    ice = thickness > ice_min_m
    if not ice.any():
        return np.zeros(ice.shape, np.int32)
    z = np.where(ice, smoothed_surface(surface, pixel_size_m, 2 * pixel_size_m), np.inf)
    ny, nx = z.shape
    idx = np.arange(z.size).reshape(z.shape)
    zp = np.pad(z, 1, constant_values=np.inf)
    ip = np.pad(idx, 1, constant_values=-1)
    best, target = z.copy(), idx.copy()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            zn = zp[1 + dr:1 + dr + ny, 1 + dc:1 + dc + nx]
            lower = zn < best
            best, target = np.where(lower, zn, best), np.where(lower, ip[1 + dr:1 + dr + ny, 1 + dc:1 + dc + nx], target)
    ptr = np.where(ice, target, idx).ravel()
    for _ in range(int(np.ceil(np.log2(z.size))) + 1):  # pointer jumping to each pixel's outlet
        ptr = ptr[ptr]
    outlets, basin = np.unique(ptr.reshape(z.shape)[ice], return_inverse=True)
    sizes = np.bincount(basin)
    markers = np.zeros(z.shape, np.int32)
    big = np.flatnonzero(sizes >= min_basin_px)
    if big.size == 0:
        return ndimage.label(ice, structure=_EIGHT)[0].astype(np.int32)
    markers.ravel()[outlets[big]] = np.arange(1, big.size + 1)
    labels = watershed(np.where(ice, z, 0.0), markers, mask=ice, connectivity=2)
    # ice bodies with no large basin (small cirque glaciers) are glaciers of their own
    rest = ice & (labels == 0)
    if rest.any():
        extra, n = ndimage.label(rest, structure=_EIGHT)
        labels = np.where(rest, extra + labels.max(), labels)
    return labels.astype(np.int32)


def surface_speed(surface: np.ndarray, thickness: np.ndarray, pixel_size_m: float, params: GlacierParams,
                  smooth_m: float) -> np.ndarray:
    """Surface speed (m/yr) of the shallow-ice flow: deformation / (1 - sliding fraction)."""
    sin_a, _, _ = surface_slope(surface, pixel_size_m, smooth_m, 0.0)
    u = glen_deformation_speed(thickness, sin_a, glen_a=params.glen_a) / (1.0 - params.sliding_fraction)
    return np.where(thickness > 0, u, 0.0)


# --- the set on disk -------------------------------------------------------------------------
@dataclass
class SimulatedSet:
    """Simulated glaciers, in memory (arrays N x P x P)."""

    bed: np.ndarray
    thickness: np.ndarray
    ids: np.ndarray
    speed: np.ndarray
    smb: np.ndarray
    res: np.ndarray
    split: np.ndarray
    source: np.ndarray
    params: list[dict]
    summary: dict

    @classmethod
    def load(cls, path: str | Path) -> "SimulatedSet":
        with read_npz(path, "simulated glacier set") as z:
            return cls(z["bed"], z["thickness"], z["ids"], z["speed"].astype(np.float32), z["smb"], z["res"],
                       z["split"], z["source"], json.loads(str(z["params"])), json.loads(str(z["summary"])))

    def __len__(self) -> int:
        return len(self.bed)

    def with_source_splits(self, roles: Mapping[str, str]) -> "SimulatedSet":
        """The set with every window of a source (name before "@") put in the split ``roles``
        gives it ("train", "val" or "test"); sources not named keep their splits. Holding out
        whole ranges keeps validation disjoint from training without strips. Recorded in the
        summary's ``splits_by_source``."""
        if not set(roles.values()) <= {"train", "val", "test"}:
            raise ValueError(f"roles must be train/val/test, got {roles}")
        names = np.array([str(s).split("@")[0] for s in self.source])
        split = np.array([roles.get(n, str(sp)) for n, sp in zip(names, self.split)])
        return SimulatedSet(self.bed, self.thickness, self.ids, self.speed, self.smb, self.res, split, self.source,
                            self.params, {**self.summary, "splits_by_source": dict(roles)})

    def save(self, path: str | Path) -> Path:
        """Write the set (.npz, atomic) in the format :meth:`load` reads."""
        path = Path(path)
        with replacing(path, keep_suffix=True) as tmp:
            np.savez_compressed(tmp, bed=self.bed, thickness=self.thickness, ids=self.ids,
                                speed=self.speed.astype(np.float16), smb=self.smb, res=self.res, split=self.split,
                                source=self.source, params=json.dumps(self.params), summary=json.dumps(self.summary))
        return path

    def subset(self, split: str) -> "SimulatedSet":
        k = self.split == split
        return SimulatedSet(self.bed[k], self.thickness[k], self.ids[k], self.speed[k], self.smb[k], self.res[k],
                            self.split[k], self.source[k], [p for p, m in zip(self.params, k) if m], self.summary)


# --- building it ---------------------------------------------------------------------------
def draw_windows(bed: np.ndarray, glacier: np.ndarray, cfg: SimulatedSetConfig, n: int, rng: np.random.Generator,
                 val_cols: tuple[int, int] | None, rejected: Counter) -> list[tuple[int, int, str]]:
    """(row0, col0, split) of up to ``n`` windows passing the filters; centres reused at most once.

    ``val_cols``: the validation strip (first, end column): a window wholly inside it is
    "val" (at most ``val_fraction`` of ``n``), one wholly outside "train", one across its
    edge is rejected, so no training window shares a pixel with a validation window."""
    p = cfg.patch
    ny, nx = bed.shape
    if ny < p or nx < p:
        rejected["DEM smaller than a window"] += 1
        return []
    used = np.zeros((ny // 8 + 1, nx // 8 + 1), np.int8)
    out = []
    val_quota = int(np.ceil(cfg.val_fraction * n))
    for _ in range(30 * n):
        if len(out) >= n:
            break
        r0, c0 = int(rng.integers(0, ny - p + 1)), int(rng.integers(0, nx - p + 1))
        win = bed[r0:r0 + p, c0:c0 + p]
        cell = used[(r0 + p // 2) // 8, (c0 + p // 2) // 8]
        if not np.isfinite(win).all():
            rejected["nodata"] += 1
        elif glacier[r0:r0 + p, c0:c0 + p].mean() > cfg.max_glacier_fraction:
            rejected["real glaciers in window"] += 1
        elif float(win.max() - win.min()) < cfg.min_relief_m:
            rejected["relief too small"] += 1
        elif cell >= 2:
            rejected["centre used twice"] += 1
        else:
            split = "train"
            if val_cols is not None:
                inside = val_cols[0] <= c0 and c0 + p <= val_cols[1]
                touches = c0 + p > val_cols[0] and c0 < val_cols[1]
                if touches and not inside:
                    rejected["window straddles the validation strip"] += 1
                    continue
                if inside and sum(s == "val" for _, _, s in out) >= val_quota:
                    rejected["validation quota full"] += 1  # a strip wide against its DEM would take most windows
                    continue
                split = "val" if inside else "train"
            used[(r0 + p // 2) // 8, (c0 + p // 2) // 8] += 1
            out.append((r0, c0, split))
    return out


def simulate_batch(beds: np.ndarray, pixel_size_m: float, seed: int, cfg: SimulatedSetConfig) -> dict:
    """Glaciate a batch of bed windows (one pixel size): thickness, labels, speed, SMB, params."""
    rng = np.random.default_rng(seed)
    params = [draw_params(rng, b, cfg.ranges) for b in beds]
    res = simulate_glaciers(beds.astype(np.float64), pixel_size_m, params, cfg.simulation)
    out: dict[str, list] = {k: [] for k in ("thickness", "ids", "speed", "smb", "params", "keep", "why")}
    for i, p in enumerate(params):
        h = np.where(res.thickness[i] > 0, res.thickness[i], 0.0)
        s = beds[i] + h
        frac = float((h > cfg.ice_min_m).mean())
        why = "too little ice" if frac < cfg.min_ice_fraction else "too much ice" if frac > cfg.max_ice_fraction else ""
        out["keep"].append(not why)
        out["why"].append(why)
        out["thickness"].append(h.astype(np.float32))
        min_px = max(int(cfg.min_basin_km2 * 1e6 / pixel_size_m**2), 4)
        out["ids"].append(glacier_labels(s, h, pixel_size_m, cfg.ice_min_m, min_px).astype(np.int16))
        # stored as float16: faster than MAX_SPEED_M_A (soft, sliding ice on steep beds) is capped, not inf
        speed = np.minimum(surface_speed(s, h, pixel_size_m, p, 2 * pixel_size_m), MAX_SPEED_M_A)
        out["speed"].append(speed.astype(np.float16))
        ela = p.ela_m + (p.retreat_dela_m if p.retreat_years > 0 else 0.0)
        smb = linear_mass_balance(s, ela, p.grad_abl, p.grad_acc, p.cap_m_a)
        out["smb"].append(np.where(h > 0, smb, 0.0).astype(np.float32))
        out["params"].append({**asdict(p), **asdict(res.records[i])})
    return out


def validation_columns(bounds: tuple[float, float, float, float], res: float, strip_at: float,
                       cfg: "SimulatedSetConfig", coarsest_m: float) -> tuple[int, int]:
    """The source's validation strip as columns of its grid at ``res``.

    The strip is fixed on the ground (``val_fraction`` of the source's width, at least 1.5
    windows of its coarsest resolution, placed at ``strip_at`` in [0, 1]), so validation and
    training windows are disjoint at every resolution, not only within one.
    """
    left, _, right, _ = bounds
    width_m = min(max(cfg.val_fraction * (right - left), 1.5 * cfg.patch * coarsest_m), right - left)
    x0 = left + strip_at * (right - left - width_m)
    return int(np.floor((x0 - left) / res)), int(np.ceil((x0 + width_m - left) / res))


def build_simulated_set(cfg: SimulatedSetConfig, out: str | Path, workers: int = 1,
                        progress: Callable[[int, int], None] | None = None) -> dict:
    """Draw windows from every source, simulate them in batches (Dask with ``workers`` > 1),
    write ``out`` (.npz) and ``out.json`` (summary: counts per source/resolution/split,
    rejections, ice fractions, seconds). Returns the summary.

    Each finished batch is kept in ``<out>.parts/`` (atomic, keyed by its windows, seed and
    the config), so an interrupted build resumes where it stopped."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    jobs: list[tuple[np.ndarray, float, int, str, str]] = []
    rejected: Counter = Counter()
    for src in cfg.sources:
        strip_at = float(rng.random())  # one strip per source, the same ground at every resolution
        for res in src.resolutions_m:
            dem, glacier = source_grids(src, res)
            strips = not (src.test or src.validation) and cfg.val_fraction > 0
            val = validation_columns(dem.bounds, res, strip_at, cfg, max(src.resolutions_m)) if strips else None
            wins = draw_windows(dem.data, glacier, cfg, src.n_per_resolution, rng, val, rejected)
            for i in range(0, len(wins), cfg.batch):
                chunk = wins[i:i + cfg.batch]
                beds = np.stack([dem.data[r:r + cfg.patch, c:c + cfg.patch] for r, c, _ in chunk])
                splits = ["test" if src.test else "val" if src.validation else s for _, _, s in chunk]
                jobs.append((beds, float(res), int(rng.integers(2**31)), f"{src.name}@{res:g}m", ",".join(splits)))
    out = Path(out)
    results = simulate_batches(jobs, cfg, out.with_name(out.stem + ".parts"), workers, progress)
    arrays: dict[str, list] = {k: [] for k in ("bed", "thickness", "ids", "speed", "smb", "res", "split", "source")}
    params: list[dict] = []
    dropped: Counter = Counter()
    for (beds, res, _, key, splits), r in zip(jobs, results):
        for i, split in enumerate(splits.split(",")):
            if not r["keep"][i]:
                dropped[r["why"][i]] += 1
                continue
            for k in ("thickness", "ids", "speed", "smb"):
                arrays[k].append(r[k][i])
            arrays["bed"].append(beds[i].astype(np.float32))
            arrays["res"].append(res)
            arrays["split"].append(split)
            arrays["source"].append(key)
            params.append(r["params"][i])
    if not params:
        raise ValueError("no simulated window passed the filters; check the sources and ranges")
    counts = Counter(zip(arrays["source"], arrays["split"]))
    ice = np.array([p["ice_fraction"] for p in params])
    summary = {"config": config_to_dict(cfg), "n": len(params), "seconds": round(time.perf_counter() - t0, 1),
               "counts": [{"source": s, "split": sp, "n": n} for (s, sp), n in sorted(counts.items())],
               "rejected_windows": dict(rejected), "dropped_simulations": dict(dropped),
               "ice_fraction": {"p10": float(np.quantile(ice, 0.1)), "median": float(np.median(ice)),
                                "p90": float(np.quantile(ice, 0.9))},
               "steady_share": float(np.mean([p["steady"] for p in params])),
               "thickness_for_area": set_thickness_for_area(arrays).round(3).to_dict("records")}
    SimulatedSet(**{k: np.stack(v) if k in ("bed", "thickness", "ids", "speed", "smb") else np.asarray(v)
                    for k, v in arrays.items()}, params=params, summary=summary).save(out)
    write_json(out.with_suffix(".json"), summary)
    return summary


def set_thickness_for_area(arrays: Mapping[str, Sequence]) -> pd.DataFrame:
    """:func:`~glacierbed.simulation.thickness_area.thickness_for_area` of every glacier inside a window of a set."""
    sizes = [glacier_sizes(t, i, r) for t, i, r in zip(arrays["thickness"], arrays["ids"], arrays["res"])]
    return thickness_for_area(np.concatenate([a for a, _ in sizes]), np.concatenate([h for _, h in sizes]))


def job_key(job: tuple, cfg: SimulatedSetConfig) -> str:
    """Content-addressed key of a batch: its beds, pixel size, seed, labels and the config."""
    beds, res, seed, key, splits = job
    h = hashlib.sha256(beds.tobytes())
    h.update(json.dumps([res, seed, key, splits, config_to_dict(cfg)], sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


#: environment of the Dask workers that simulate: without ``MALLOC_TRIM_THRESHOLD_`` (Dask sets it
#: to 64 KiB, which turns off glibc's adaptive mmap threshold, so every large temporary of the
#: simulation step is mmapped and page-faulted anew: a batch ran ~4x slower in a worker)
SIMULATION_WORKER_ENV: dict[str, str | None] = {"MALLOC_TRIM_THRESHOLD_": None}

_BATCH_ARRAYS = ("thickness", "ids", "speed", "smb")


def _read_batch(files: Mapping[str, Path]) -> dict:
    with np.load(files["result"], allow_pickle=False) as z:
        return {**{k: list(z[k]) for k in _BATCH_ARRAYS}, "keep": list(z["keep"]),
                "why": [str(w) for w in z["why"]], "params": json.loads(str(z["params"]))}


def run_batch(job: tuple, cfg: SimulatedSetConfig, parts: Path, threads: int | None = None) -> dict:
    """:func:`simulate_batch` of ``job`` (beds, pixel size, seed, label, splits), or its stored result.

    The result is kept in ``parts/<key>.npz`` with its record ``<key>.json`` (key, sha256), and
    reused by the resume rule of :class:`~glacierbed.core.parallel.Checkpoint` (a truncated or
    garbled part is simulated again). ``threads``: torch threads (a Dask worker uses one per
    core). The result's ``resumed`` says whether it was reused.
    """
    key = job_key(job, cfg)
    cp = Checkpoint(parts / f"{key}.json", {"result": parts / f"{key}.npz"}, key)
    found = cp.check(_read_batch)
    if found.reusable:
        return {**found.value, "resumed": True}
    if found.why_not:
        log.warning("batch %s: %s: simulated again", job[3], found.why_not)
    if threads is not None:  # the worker process's torch pool (serially: the caller's, untouched)
        import torch

        torch.set_num_threads(threads)
    r = simulate_batch(job[0], job[1], job[2], cfg)
    with replacing(cp.files["result"], keep_suffix=True) as tmp:
        np.savez(tmp, **{k: np.stack(r[k]) for k in _BATCH_ARRAYS}, keep=np.asarray(r["keep"]),
                 why=np.asarray(r["why"]), params=json.dumps(r["params"]))
    cp.commit(OK, label=job[3])
    return {**r, "resumed": False}


def simulate_batches(jobs: list[tuple], cfg: SimulatedSetConfig, parts: Path, workers: int = 1,
                     progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Every batch by :func:`run_batch`, serially or on a local Dask cluster
    (:func:`~glacierbed.core.parallel.execute`; largest pixel sizes first: they take longest)."""
    task = functools.partial(run_batch, cfg=cfg, parts=parts, threads=1 if workers > 1 else None)
    return execute(task, jobs, workers=workers, progress=progress, order=lambda job: -job[1],
                   worker_env=SIMULATION_WORKER_ENV)
