"""Training set of ice-free mountain terrain patches.

Random ``patch`` x ``patch`` windows are drawn from DEMs at one or more working
resolutions and kept only if they hold no nodata, are high enough (mean or max
elevation above a threshold), their central box holds no glacier pixel, and their
central 32x32 box was mostly not used before. Patches are split 90/10 into train and
validation spatially: a strip covering 10% of each source's width (the same strip at
every resolution) holds the validation patches, and no training patch reaches into it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from glacierbed.core.atomic import read_npz, replacing, write_json
from glacierbed.core.config import YamlConfig, config_to_dict
from glacierbed.data.rasters import Raster
from glacierbed.data.terrain import PatchSource, source_grids
from glacierbed.core.errors import EmptySelectionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetConfig(YamlConfig):
    """What the patch set is drawn from and how it is filtered. The defaults built the shipped
    inpainting network's set (``configs/dataset.yaml`` holds its sources only)."""

    sources: tuple[PatchSource, ...]
    patch: int = 128  #: window side, pixels
    centre_box: int = 96  #: this central box must hold no glacier pixel
    unique_box: int = 32  #: central box used to limit overlap between patches
    max_unique_overlap: float = 0.75  #: a new patch may reuse at most this share of an earlier central box
    min_elevation_m: float = 2000.0  #: keep only mountain terrain ...
    elevation_mode: str = "max"  #: ... judged on the window's "max" or "mean" elevation
    val_fraction: float = 0.1  #: width share of each source held out (a strip) for validation
    tries_per_patch: int = 20  #: candidate windows drawn per wanted patch
    seed: int = 0


@dataclass
class BuildReport:
    kept: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    per_source: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"kept": dict(self.kept), "rejected": dict(self.rejected), "per_source": self.per_source,
                "seconds": round(self.seconds, 1)}


def sample_patches(
    dem: Raster,
    glacier: np.ndarray,
    cfg: DatasetConfig,
    rng: np.random.Generator,
    n_target: int,
    report: BuildReport,
    val_strip: tuple[float, float],
) -> list[dict]:
    """Draw candidate windows and keep those passing every test (rejections by reason)."""
    p, cb, ub = cfg.patch, cfg.centre_box, cfg.unique_box
    ny, nx = dem.shape
    if ny < p or nx < p:
        report.rejected["dem smaller than patch"] += 1
        return []
    used = np.zeros((ny, nx), dtype=bool)
    res = dem.res[0]
    out = []
    for _ in range(n_target * cfg.tries_per_patch):
        if len(out) >= n_target:
            break
        r0, c0 = int(rng.integers(0, ny - p + 1)), int(rng.integers(0, nx - p + 1))
        win = dem.data[r0 : r0 + p, c0 : c0 + p]
        if not np.isfinite(win).all():
            report.rejected["nodata"] += 1
            continue
        elev = win.mean() if cfg.elevation_mode == "mean" else win.max()
        if elev < cfg.min_elevation_m:
            report.rejected["too low"] += 1
            continue
        a = (p - cb) // 2
        if glacier[r0 + a : r0 + a + cb, c0 + a : c0 + a + cb].any():
            report.rejected["glacier in centre box"] += 1
            continue
        u = (p - ub) // 2
        ubox = used[r0 + u : r0 + u + ub, c0 + u : c0 + u + ub]
        if ubox.mean() > cfg.max_unique_overlap:
            report.rejected["centre already used"] += 1
            continue
        # spatial split: a validation strip (x range) per source; validation patches have
        # their centre in it, training patches must not reach into it at all
        x0, y0 = dem.transform @ (c0, r0)
        x1 = x0 + p * res
        val = val_strip[0] <= (x0 + x1) / 2 < val_strip[1]
        if not val and x1 > val_strip[0] and x0 < val_strip[1]:
            report.rejected["training patch touches validation strip"] += 1
            continue
        ubox[...] = True
        out.append(dict(dem=win.astype(np.float32), glacier=glacier[r0 : r0 + p, c0 : c0 + p].copy(),
                        x0=x0, y0=y0, res=res, split="val" if val else "train"))
    return out


def build_dataset(cfg: DatasetConfig, out: str | Path, n_per_source: int = 2000,
                  progress: Callable[[str, int], None] | None = None) -> BuildReport:
    """Build the patch set and write it to one ``.npz`` with metadata and a JSON summary."""
    t0 = time.perf_counter()
    out = Path(out)
    rng = np.random.default_rng(cfg.seed)
    report = BuildReport()
    patches: list[dict] = []
    meta_sources: list[dict] = []
    # one validation strip position per source name, shared by all its resolutions
    strip_pos = {s.name: float(rng.random()) for s in cfg.sources}
    for si, src in enumerate(cfg.sources):
        for res in src.resolutions_m:
            dem, glacier = source_grids(src, res)
            key = f"{src.name}@{res:g}m"
            left, _, right, _ = dem.bounds
            width = (right - left) * cfg.val_fraction
            strip0 = left + strip_pos[src.name] * (right - left - width)
            n_target = src.max_patches or n_per_source
            got = sample_patches(dem, glacier, cfg, rng, n_target, report, (strip0, strip0 + width))
            for g in got:
                g["source"] = len(meta_sources)
            meta_sources.append(dict(name=src.name, key=key, crs=dem.crs.to_wkt(), resolution_m=res,
                                     dem=list(src.dem)))
            n_val = sum(g["split"] == "val" for g in got)
            report.per_source[key] = {"train": len(got) - n_val, "val": n_val}
            report.kept["train"] += len(got) - n_val
            report.kept["val"] += n_val
            patches.extend(got)
            if progress:
                progress(key, len(got))
    if not patches:
        raise EmptySelectionError("no patch passed the filters; lower min_elevation_m or check the sources")
    report.seconds = time.perf_counter() - t0
    dem_arr = np.stack([p["dem"] for p in patches])
    summary = {
        "config": config_to_dict(cfg),
        "report": report.as_dict(),
        "n_patches": len(patches),
        "elevation_m": {"mean": float(dem_arr.mean()), "std": float(dem_arr.std()),
                        "min": float(dem_arr.min()), "max": float(dem_arr.max())},
        "relief_m_mean": float((dem_arr.max(axis=(1, 2)) - dem_arr.min(axis=(1, 2))).mean()),
        "sources": meta_sources,
    }
    with replacing(out, keep_suffix=True) as tmp:  # numpy appends .npz to other names
        np.savez_compressed(
            tmp,
            dem=dem_arr,
            glacier=np.packbits(np.stack([p["glacier"] for p in patches]), axis=-1),
            source=np.array([p["source"] for p in patches], dtype=np.int16),
            x0=np.array([p["x0"] for p in patches]),
            y0=np.array([p["y0"] for p in patches]),
            res=np.array([p["res"] for p in patches], dtype=np.float32),
            split=np.array([p["split"] for p in patches]),
            summary=json.dumps(summary),
        )
    write_json(out.with_suffix(".json"), summary)
    return report


@dataclass
class PatchSet:
    """A built patch set, loaded in memory (``dem`` float32 N x P x P, ``glacier`` bool)."""

    dem: np.ndarray
    glacier: np.ndarray
    res: np.ndarray
    split: np.ndarray
    source: np.ndarray
    summary: dict

    @classmethod
    def load(cls, path: str | Path) -> "PatchSet":
        with read_npz(path, "patch dataset") as z:
            dem = z["dem"]
            glacier = np.unpackbits(z["glacier"], axis=-1, count=dem.shape[-1]).astype(bool)
            return cls(dem, glacier, z["res"], z["split"], z["source"], json.loads(str(z["summary"])))

    def subset(self, split: str) -> "PatchSet":
        k = self.split == split
        return PatchSet(self.dem[k], self.glacier[k], self.res[k], self.split[k], self.source[k], self.summary)

    def __len__(self) -> int:
        return len(self.dem)

