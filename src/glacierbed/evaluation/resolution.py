"""How a network's thickness changes with the pixel size it works at. A sensitivity: no measurement is used.

Kit regions: each glacier's volume on the DEM warped coarser against its volume on the DEM's own grid
(``benchmarks/dem_resolution.py``, ``benchmarks/resolution_prior.py``). Simulated test windows (known truth): the
network on each window at its own pixel size, block-averaged to coarser pixels (what a coarse DEM sees,
:mod:`glacierbed.simulation.coarse_views`) and with its DEM blurred (``benchmarks/resolution_prior.py``,
``benchmarks/coarse_views.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from glacierbed.core.errors import OptionError
from glacierbed.data import registry
from glacierbed.models.thickness.features import thickness_features
from glacierbed.models.thickness.training import dem_noise, inventory_labels
from glacierbed.simulation.thickness_area import inner_glaciers
from glacierbed.pipeline.estimate import estimate
from glacierbed.pipeline.glacier import EstimateConfig
from glacierbed.simulation.coarse_views import block_average, coarse_window
from glacierbed.simulation.glacier_set import SimulatedSet

#: kit regions: example name -> its outlines (a mask raster for Svalbard)
REGIONS = ("oetztal", "nz-canterbury", "svalbard")
#: pixel sizes the DEMs are warped to (m); None = the DEM's own grid
RESOLUTIONS: tuple[float | None, ...] = (None, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0)
#: simulated views: block-averaging factors, DEM blurs (px), the coarsest pixel and smallest window kept
FACTORS = (2, 4)
BLURS = (1.0, 2.0)
COARSEST_M, SMALLEST_PX = 200.0, 32


def region_volumes(region: str, work: Path, model: Any = None, config: EstimateConfig | None = None,
                   resolutions: tuple[float | None, ...] = RESOLUTIONS) -> pd.DataFrame:
    """One row per glacier and pixel size of ``region``: volume, area estimated, working resolution, mode
    (``config``: the estimate's, default the shipped one)."""
    ex = registry.get_example(region)
    outlines = ex.outlines if ex.outlines is not None else ex.glacier_mask
    rows = []
    for res in resolutions:
        try:
            result = estimate(ex.dem[0] if len(ex.dem) == 1 else ex.dem, outlines, work / f"{region}-{res}",
                              model=model, resolution=res, config=config, maps=False)
        except OptionError as exc:  # a pixel size refused for this DEM (more than 4x finer than its own): no row
            logging.getLogger(__name__).warning("%s at %s m: %s", region, res, exc)
            continue
        g = result.glaciers
        pixel_m = res if res is not None else float(result.summary["dem_resolution_m"])
        rows.append(g.assign(region=region, pixel_m=pixel_m, native=res is None)[
            ["region", "rgi_id", "pixel_m", "native", "status", "volume_km3", "area_km2", "estimated_area_km2",
             "working_resolution_m", "resolution_mode"]])
    return pd.concat(rows, ignore_index=True)


def volume_ratios(glaciers: pd.DataFrame) -> pd.DataFrame:
    """Per region and pixel size: total volume / native, median and spread of each glacier's ratio, area covered."""
    native = glaciers[glaciers["native"]].set_index(["region", "rgi_id"])["volume_km3"]
    g = glaciers.join(native.rename("native_km3"), on=["region", "rgi_id"])
    g = g[(g["status"] == "ok") & (g["native_km3"] > 0)]
    g = g.assign(ratio=g["volume_km3"] / g["native_km3"])
    out = g.groupby(["region", "pixel_m", "native"]).agg(
        n=("ratio", "size"), volume_km3=("volume_km3", "sum"), native_km3=("native_km3", "sum"),
        median_ratio=("ratio", "median"), p10=("ratio", lambda r: np.percentile(r, 10)),
        p90=("ratio", lambda r: np.percentile(r, 90)), area_covered=("estimated_area_km2", "sum"),
        area=("area_km2", "sum"), modes=("resolution_mode", lambda m: ", ".join(f"{k} {v}" for k, v in
                                                                             m.value_counts().items())))
    out = out.reset_index()
    out["total_ratio"] = out["volume_km3"] / out["native_km3"]
    out["area_covered"] = out["area_covered"] / out["area"]
    return out.drop(columns="area").round(3)


def window_variants(bed: np.ndarray, thickness: np.ndarray, glaciers: np.ndarray, px: float,
                    rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """(surface, inventory labels, true thickness, pixel size) of one simulated window: as it is, block-averaged
    (labels of each block's centre pixel, as a coarse grid samples an outline) and with its DEM blurred."""
    noise = dem_noise(bed.shape, 3.0, rng)
    out = {"own grid": (bed + thickness + noise, inventory_labels(thickness, glaciers, 2.0), thickness, px)}
    for s in BLURS:
        out[f"DEM blurred {s:.0f} px"] = (ndimage.gaussian_filter(bed + thickness + noise, s), *out["own grid"][1:])
    for k in FACTORS:
        if px * k > COARSEST_M or bed.shape[0] // k < SMALLEST_PX:
            continue
        b, h, labels = coarse_window(bed, thickness, glaciers, k)
        out[f"averaged {k}x"] = (b + h + block_average(noise, k), inventory_labels(h, labels, 2.0), h, px * k)
    return out


def simulated_view_rows(path: Path, net: Any, seed: int = 0) -> pd.DataFrame:
    """One row per test window and variant: summed predicted and true thickness, squared error, pixels scored."""
    sims = SimulatedSet.load(path)
    rng = np.random.default_rng(seed)
    rows = []
    for i in np.flatnonzero(sims.split == "test"):
        px = float(sims.res[i])
        variants = window_variants(sims.bed[i].astype(float), sims.thickness[i].astype(float), sims.ids[i], px, rng)
        for name, (surface, ids, truth, p) in variants.items():
            scored = inner_glaciers(ids)
            if scored.sum() < 5:  # a glacier of a few pixels: no volume to compare
                continue
            predicted = net.predict_maps(thickness_features(surface, ids, p), 4)[0].mean(axis=0)[scored]
            rows.append({"window": int(i), "own_pixel_m": px, "variant": name, "pixel_m": p,
                         "predicted": float(predicted.sum()), "true": float(truth[scored].sum()),
                         "squared_error": float(((predicted - truth[scored]) ** 2).sum()), "n": int(scored.sum())})
    return pd.DataFrame(rows)


def summarise_views(rows: pd.DataFrame) -> pd.DataFrame:
    """Per own pixel size and variant, over the windows scored at every variant of that pixel size: volume ratio
    (predicted / true) and RMSE."""
    out = []
    for px, g in rows.groupby("own_pixel_m"):
        n_variants = g["variant"].nunique()
        complete = g.groupby("window")["variant"].nunique()
        g = g[g["window"].isin(complete[complete == n_variants].index)]
        s = g.groupby("variant", sort=False)[["predicted", "true", "squared_error", "n", "pixel_m"]].agg(
            {"predicted": "sum", "true": "sum", "squared_error": "sum", "n": "sum", "pixel_m": "first"})
        out.append(pd.DataFrame({"own_pixel_m": px, "variant": s.index, "pixel_m": s["pixel_m"].to_numpy(),
                                 "windows": g["window"].nunique(),
                                 "volume_ratio": (s["predicted"] / s["true"]).to_numpy(),
                                 "rmse_m": np.sqrt(s["squared_error"] / s["n"]).to_numpy()}))
    return pd.concat(out, ignore_index=True).round(3)


__all__ = ["REGIONS", "RESOLUTIONS", "region_volumes", "simulated_view_rows", "summarise_views", "volume_ratios",
           "window_variants"]
