"""Why a coarse DEM gives less ice: the network's thickness depends on the pixel size it works at.

``benchmarks/dem_resolution.py`` found the default's volume falling as the DEM gets coarser (Ötztal 0.89x at 200 m).
This finds where, with no measurement used and nothing fitted or chosen:

1. **Known truth** (simulated test ranges, ``runs/simtest128.npz`` from
   ``benchmarks/configs/simulated_test_ranges_128.yaml``): the shipped network (raw, 4 symmetries) on each test
   window at its own pixel size, the same window block-averaged 2x and 4x (bed and thickness averaged, as a coarse
   DEM sees a real glacier; at most 200 m, at least 32 px), and the same window with its DEM blurred on its own grid
   (Gaussian, 1 and 2 px: a DEM smoother than its pixels). Score: the volume ratio (predicted / true) and RMSE over
   the glaciers wholly inside the window, pooled over the windows scored at every variant.
2. **Real DEMs by stage** (kit regions, as ``dem_resolution``): each glacier's volume at 100 and 200 m over its
   volume on the DEM's own grid, for the raw network (no physics, no calibration), network + physics, and the default,
   on the working grids of before 2026-12-07 (nothing refined), and for today's default, which refines DEMs coarser
   than 100 m (``benchmarks/coarse_dem_refinement.py``).
3. **The inputs** (Ötztal, the whole region on one grid): the mass-conservation and perfect-plasticity channels'
   volume at 200 m over native, the raw network with its pixel-size channel told the native pixel size, and the raw
   network on the 200 m DEM refined back to the native pixel size (features recomputed there).
4. **The window's size in pixels** (kit regions, native DEM): the planner coarsens a glacier until its window fits
   about one 128 px patch (``TilingConfig.patch_slack`` 1.15); with 4.0 it keeps the DEM's pixels in windows of up
   to 512 px. Each changed glacier's raw volume, slack 4 over 1.15.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/resolution_prior.py`` (about 3 minutes on 2 cores). Writes
``benchmarks/results/resolution_prior.{md,csv}`` and ``resolution_prior_{simulated,stages,slack}.csv``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import quiet_per_glacier_logs, run_script
from glacierbed.data import registry
from glacierbed.data.outlines import read_outlines, rasterize_ids
from glacierbed.data.warping import read_dem
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.resolution import (REGIONS, region_volumes, simulated_view_rows, summarise_views,
                                              volume_ratios)
from glacierbed.models.predictors import TilingConfig
from glacierbed.models.thickness.features import MC_CHANNEL, THICK_SCALE_M, thickness_features
from glacierbed.pipeline.glacier import EstimateConfig
from glacierbed.pipeline.store import load_predictor

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "resolution_prior"
#: the figure's marker and name of each kit region
MARKERS = {"oetztal": ("o", "Ötztal"), "nz-canterbury": ("s", "NZ"), "svalbard": ("^", "Svalbard")}
#: the perfect-plasticity channel and the pixel-size channel of the feature stack
SIA_CHANNEL, PIXEL_CHANNEL = 9, 8
#: part 2: the stages, as estimate configurations
#: (the first three on the working grid of before 2026-12-07, nothing refined: the cause; the last the default)
UNREFINED = dict(refine_coarse_dem_m=None)
STAGES = {"raw network": EstimateConfig(physics=None, calibrate=False, **UNREFINED),
          "network + physics": EstimateConfig(calibrate=False, **UNREFINED),
          "default, not refined": EstimateConfig(**UNREFINED),
          "default (coarse DEMs refined to 100 m)": EstimateConfig()}


def stage_tables(regions: tuple[str, ...], work: Path) -> pd.DataFrame:
    """``dem_resolution``'s per-glacier table at the native grid, 100 and 200 m, for every stage."""
    tables = []
    for stage, cfg in STAGES.items():
        for region in regions:
            t = region_volumes(region, work / stage.replace(" ", "_"), config=cfg,
                                             resolutions=(None, 100.0, 200.0))
            tables.append(t.assign(stage=stage))
    return pd.concat(tables, ignore_index=True)


def summarise_stages(glaciers: pd.DataFrame) -> pd.DataFrame:
    """Per stage, region and pixel size: the region's volume and each glacier's median over native."""
    parts = [volume_ratios(g.drop(columns="stage")).assign(stage=stage)
             for stage, g in glaciers.groupby("stage", sort=False)]
    out = pd.concat(parts, ignore_index=True)
    return out[~out["native"]][["stage", "region", "pixel_m", "n", "total_ratio", "median_ratio", "p10", "p90"]]


def _region_features(dem, outlines) -> tuple[np.ndarray, np.ndarray, float]:
    """(feature stack, ice mask, pixel size) of a whole kit region on ``dem``'s grid."""
    ids = rasterize_ids(read_outlines(outlines, dem.crs), dem)
    px = float(dem.res[0])
    surface = np.where(np.isfinite(dem.data), dem.data, np.nanmean(dem.data)).astype(float)
    return thickness_features(surface, ids, px), ids > 0, px


def _raw_km3(net, feats: np.ndarray, ice: np.ndarray, px: float) -> float:
    """The raw network's volume (km3, 4 symmetries) over ``ice``."""
    return float(net.predict_maps(feats, 4)[0].mean(axis=0)[ice].sum() * px * px / 1e9)


def input_channels(net, region: str = "oetztal", coarse_m: float = 200.0) -> pd.DataFrame:
    """The whole region on one grid, native and ``coarse_m``: volumes of the mass-conservation and plasticity
    channels and of the raw network, and the raw network at ``coarse_m`` with its pixel-size channel told the
    native pixel size, and on the ``coarse_m`` DEM refined back to the native pixel size; each over its native
    volume (the raw network's for the last two)."""
    ex = registry.get_example(region)
    volumes: dict[str, list[float]] = {}
    native_px: float | None = None
    for res in (None, coarse_m):
        dem = read_dem(ex.dem[0], resolution=res)
        feats, ice, px = _region_features(dem, ex.outlines)
        native_px = native_px or px
        told = feats.copy()
        told[PIXEL_CHANNEL] = np.log(native_px / 100.0)
        for name, v in {"mass-conservation channel": feats[MC_CHANNEL][ice].sum() * THICK_SCALE_M * px * px / 1e9,
                        "plasticity channel": feats[SIA_CHANNEL][ice].sum() * THICK_SCALE_M * px * px / 1e9,
                        "raw network": _raw_km3(net, feats, ice, px),
                        "raw network, pixel-size channel told native": _raw_km3(net, told, ice, px) if res
                        else np.nan}.items():
            volumes.setdefault(name, []).append(float(v))
    # the coarse DEM (the loop's last) refined (bilinear) back to the native pixel size, features recomputed there
    feats, ice, px = _region_features(dem.reproject(resolution=native_px, resampling="bilinear"), ex.outlines)
    volumes["raw network, coarse DEM refined to the native pixel"] = [np.nan, _raw_km3(net, feats, ice, px)]
    rows = pd.DataFrame([(k, *v) for k, v in volumes.items()], columns=["quantity", "native_km3", "coarse_km3"])
    of_raw = rows["quantity"].str.startswith("raw network, ")
    rows.loc[of_raw, "native_km3"] = rows.loc[rows["quantity"] == "raw network", "native_km3"].iloc[0]
    return rows.assign(region=region, coarse_m=coarse_m, ratio=rows["coarse_km3"] / rows["native_km3"]).round(4)


def slack_table(regions: tuple[str, ...], work: Path) -> pd.DataFrame:
    """Raw volume of every glacier whose working grid changes when windows may be 4x the patch, over today's."""
    rows = []
    raw = lambda slack: EstimateConfig(physics=None, calibrate=False, tiling=TilingConfig(patch_slack=slack),  # noqa
                                       **UNREFINED)
    for region in regions:
        a, b = (region_volumes(region, work / f"slack{s}", resolutions=(None,), config=raw(s)).set_index("rgi_id")
                for s in (1.15, 4.0))
        changed = (a["working_resolution_m"] - b["working_resolution_m"]).abs() > 0.01 * a["working_resolution_m"]
        rows.append(pd.DataFrame({"region": region, "area_km2": a["area_km2"],
                                  "working_m_today": a["working_resolution_m"],
                                  "working_m_slack4": b["working_resolution_m"],
                                  "raw_volume_ratio": b["volume_km3"] / a["volume_km3"]})[changed].reset_index())
    return pd.concat(rows, ignore_index=True).round(3)


def plot(simulated: pd.DataFrame, stages: pd.DataFrame, path: Path) -> Path:
    """Left: simulated volume ratio against the pixel size, each own pixel size and its block averages joined.
    Right: each stage's region volume over native against the DEM's pixel size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glacierbed.core.figures import save_figure

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for k, (px, g) in enumerate(simulated.groupby("own_pixel_m")):
        line = g[~g["variant"].str.startswith("DEM blurred")].sort_values("pixel_m")
        left.plot(line["pixel_m"], line["volume_ratio"], "o-", color=f"C{k}",
                  label=f"simulated at {px:.0f} m ({int(line['windows'].iloc[0])} windows)")
    left.axhline(1.0, color="k", lw=0.6)
    left.set(xscale="log", xlabel="working pixel size (m)", ylabel="predicted / true volume",
             title="Known truth: block-averaged simulated glaciers")
    left.set_xticks([25, 50, 100, 200], labels=["25", "50", "100", "200"])
    left.minorticks_off()
    left.legend(fontsize=7)
    for k, (stage, g) in enumerate(stages.groupby("stage", sort=False)):
        for region, r in g.groupby("region"):
            right.plot(r["pixel_m"], r["total_ratio"], MARKERS[region][0] + "-", color=f"C{k}", lw=0.8,
                       label=stage if region == "oetztal" else None)
    right.axhline(1.0, color="k", lw=0.6)
    right.set(xlabel="DEM pixel size (m)", ylabel="region's volume / native",
              title="Kit regions (" + ", ".join(f"{m} {name}" for m, name in MARKERS.values()) + ")")
    right.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def report(simulated: pd.DataFrame, stages: pd.DataFrame, channels: pd.DataFrame, slack: pd.DataFrame,
           figure: str) -> str:
    """The results page."""
    return "\n".join([
        "# Why a coarse DEM gives less ice: the network's thickness depends on its working pixel size", "",
        "No measurement is used; nothing is fitted or chosen (`benchmarks/resolution_prior.py`).", "",
        "## 1. Known truth: simulated test windows, block-averaged and blurred", "",
        "The shipped network, raw (4 symmetries), on the simulated test ranges' windows at their own pixel size, "
        "block-averaged 2x / 4x (at most 200 m, at least 32 px) and with the DEM blurred on its own grid. "
        "`volume_ratio`: predicted / true over the glaciers wholly inside the window, pooled over the windows "
        "scored at every variant of that pixel size.", "",
        to_markdown(simulated), "",
        "## 2. Kit DEMs warped coarser, by stage", "",
        "Each glacier's volume at 100 / 200 m over its volume on the DEM's own grid (as "
        "[dem_resolution](dem_resolution.md)): the raw network, network + physics and the default on the working "
        "grids of before 2026-12-07 (nothing refined), and today's default, which refines DEMs coarser than 100 m "
        "([coarse_dem_refinement](coarse_dem_refinement.md)).", "",
        to_markdown(stages), "",
        f"![known truth and kit regions]({figure})", "",
        "## 3. The inputs (the whole region on one grid)", "",
        to_markdown(channels), "",
        "## 4. Windows larger than the 128 px patch (native DEM, raw network)", "",
        "Glaciers whose working grid changes when the planner lets a window reach 4x the patch "
        "(`tiling.patch_slack` 4.0 instead of 1.15): their raw volume, slack 4 over today's.", "",
        to_markdown(slack), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulated", type=Path, default=Path("runs/simtest128.npz"),
                        help="simulated test windows (benchmarks/configs/simulated_test_ranges_128.yaml)")
    parser.add_argument("--regions", nargs="+", default=list(REGIONS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    quiet_per_glacier_logs("glacierbed.pipeline.tiled", "glacierbed.pipeline.glacier", "glacierbed.data.outlines",
                           level=logging.ERROR)
    net = load_predictor(None)
    sim_rows = simulated_view_rows(args.simulated, net)
    simulated = summarise_views(sim_rows)
    with tempfile.TemporaryDirectory() as tmp:
        stage_glaciers = stage_tables(tuple(args.regions), Path(tmp))
        slack = slack_table(tuple(args.regions), Path(tmp))
    stages = summarise_stages(stage_glaciers)
    channels = input_channels(net)
    write_table(sim_rows, args.out / f"{NAME}_simulated.csv")
    write_table(stage_glaciers, args.out / f"{NAME}_stages.csv")
    write_table(slack, args.out / f"{NAME}_slack.csv")
    write_table(pd.concat([simulated.assign(part="simulated"), stages.assign(part="stages"),
                           channels.assign(part="channels")], ignore_index=True), args.out / f"{NAME}.csv")
    plot(simulated, stages, args.out / f"{NAME}.png")
    text = report(simulated, stages, channels, slack, f"{NAME}.png")
    write_text(args.out / f"{NAME}.md", text)
    print(text)


if __name__ == "__main__":
    run_script(main)
