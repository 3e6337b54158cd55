"""How the default's volumes depend on the DEM's pixel size: each kit region at its own resolution and warped coarser.

Users bring DEMs from 10 m (national lidar) to 250 m (GMTED) or warp with ``--resolution``. The default network was
trained on 25-200 m pixels and ``plan_resolution`` brings every glacier into that range (a DEM coarser than 100 m is
refined to 100 m where the glacier's window fits one patch there, else to 200 m; a tiny glacier gets a finer grid). This measures what that costs: the same outlines estimated on the same DEM
warped to 50-400 m, each glacier's volume against its volume at the DEM's own pixel size. No measurement is used (a
sensitivity, not a score), nothing is fitted or chosen. Regions: the Ötztal (SRTM 3", 75 m in UTM, 20 RGI 5
outlines), New Zealand's Southern Alps (25 m, 9 RGI 6 outlines) and Svalbard (20 m, outlines from the 1990 mask).

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/dem_resolution.py`` (about a minute on 2 cores). Writes
``benchmarks/results/dem_resolution.{md,csv,png}`` and ``dem_resolution_glaciers.csv``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import quiet_per_glacier_logs, run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.resolution import REGIONS, region_volumes, volume_ratios

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "dem_resolution"


def plot(summary: pd.DataFrame, path: Path) -> Path:
    """Each region's volume / its native volume against the pixel size (solid), and each glacier's median (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glacierbed.core.figures import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (region, rows) in enumerate(summary.groupby("region")):
        rows = rows.sort_values("pixel_m")
        ax.plot(rows["pixel_m"], rows["total_ratio"], "o-", color=f"C{k}", label=f"{region}: region's volume")
        ax.plot(rows["pixel_m"], rows["median_ratio"], "x--", color=f"C{k}", lw=0.8, label=f"{region}: glacier median")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.axvline(100.0, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="DEM pixel size (m)", ylabel="volume / volume on the native DEM", ylim=(0.4, 1.3),
           title="The default's volume against the DEM's pixel size")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def report(summary: pd.DataFrame, figure: str | None = None) -> str:
    lines = ["# The default's volume against the DEM's pixel size", "",
             "Each kit region's DEM warped to 50-400 m (bilinear; `--resolution`) and estimated with the default, "
             "every glacier's volume divided by its volume on the DEM's own grid (the `native` row). A sensitivity, "
             "not a score: no measurement is used; nothing is fitted or chosen. `total_ratio`: the region's volume / "
             "its native volume; `median_ratio`, `p10`, `p90`: over glaciers; `area_covered`: the share of the "
             "outlines' area the volume covers; `modes`: the working-grid plans (`native`, `refined`: a DEM coarser "
             "than 100 m brought to 100 m where the glacier's window fits one patch there, else to the model's "
             "200 m, its volume computed on that grid; `tiny`: a glacier of few pixels on a finer grid, "
             "`coarsened`). Before 2026-12-07 nothing was refined below 200 m and a refined glacier's volume was "
             "computed back on the DEM's grid ([coarse_dem_refinement.md](coarse_dem_refinement.md)).", "",
             to_markdown(summary), ""] + ([f"![volume against pixel size]({figure})", ""] if figure else [])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--regions", nargs="+", default=list(REGIONS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    quiet_per_glacier_logs("glacierbed.pipeline.tiled", "glacierbed.pipeline.glacier", level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        glaciers = pd.concat([region_volumes(r, Path(tmp)) for r in args.regions], ignore_index=True)
    summary = volume_ratios(glaciers)
    write_table(glaciers, args.out / f"{NAME}_glaciers.csv")
    write_table(summary, args.out / f"{NAME}.csv")
    plot(summary, args.out / f"{NAME}.png")
    write_text(args.out / f"{NAME}.md", report(summary, f"{NAME}.png"))
    print(to_markdown(summary))


if __name__ == "__main__":
    run_script(main)
