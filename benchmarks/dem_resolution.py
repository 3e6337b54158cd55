"""How the default's volumes depend on the DEM's pixel size: each kit region at its own resolution and warped coarser.

Users bring DEMs from 10 m (national lidar) to 250 m (GMTED) or warp with ``--resolution``. The default network was
trained on 25-200 m pixels and ``plan_resolution`` brings every glacier into that range (a coarser DEM is refined to
200 m, a tiny glacier gets a finer grid). This measures what that costs: the same outlines estimated on the same DEM
warped to 50-400 m, each glacier's volume against its volume at the DEM's own pixel size. No measurement is used (a
sensitivity, not a score), nothing is fitted or chosen. Regions: the Ötztal (SRTM 3", 75 m in UTM, 20 RGI 5
outlines), New Zealand's Southern Alps (25 m, 9 RGI 6 outlines) and Svalbard (20 m, outlines from the 1990 mask).

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/dem_resolution.py`` (about a minute on 2 cores). Writes
``benchmarks/results/dem_resolution.{md,csv,png}`` and ``dem_resolution_glaciers.csv``. ``--coarsest-working-m 100``: a
diagnostic with the working grid capped at 100 m (coarse DEMs refined to it), results ``dem_resolution_working100*``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import OptionError, quiet_per_glacier_logs, run_script
from glacierbed.data import registry
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.pipeline.estimate import estimate

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "dem_resolution"
#: kit regions: example name -> its outlines (a mask raster for Svalbard)
REGIONS = ("oetztal", "nz-canterbury", "svalbard")
#: pixel sizes the DEMs are warped to (m); None = the DEM's own grid
RESOLUTIONS: tuple[float | None, ...] = (None, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0)


def region_tables(region: str, work: Path, model: Any = None) -> pd.DataFrame:
    """One row per glacier and pixel size of ``region``: volume, area estimated, working resolution, mode."""
    ex = registry.get_example(region)
    outlines = ex.outlines if ex.outlines is not None else ex.glacier_mask
    rows = []
    for res in RESOLUTIONS:
        try:
            result = estimate(ex.dem[0] if len(ex.dem) == 1 else ex.dem, outlines, work / f"{region}-{res}",
                              model=model, resolution=res, maps=False)
        except OptionError as exc:  # a pixel size refused for this DEM (more than 4x finer than its own): no row
            logging.getLogger(NAME).warning("%s at %s m: %s", region, res, exc)
            continue
        g = result.glaciers
        rows.append(g.assign(region=region, pixel_m=res if res is not None else float(result.summary["dem_resolution_m"]),
                             native=res is None)[["region", "rgi_id", "pixel_m", "native", "status", "volume_km3",
                                                  "area_km2", "estimated_area_km2", "working_resolution_m",
                                                  "resolution_mode"]])
    return pd.concat(rows, ignore_index=True)


def summarise(glaciers: pd.DataFrame) -> pd.DataFrame:
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


def report(summary: pd.DataFrame, coarsest_working_m: float | None = None, figure: str | None = None) -> str:
    variant = ("" if coarsest_working_m is None else
               f" (diagnostic: working grid capped at {coarsest_working_m:.0f} m instead of the model's 200 m)")
    lines = [f"# The default's volume against the DEM's pixel size{variant}", "",
             "Each kit region's DEM warped to 50-400 m (bilinear; `--resolution`) and estimated with the default, "
             "every glacier's volume divided by its volume on the DEM's own grid (the `native` row). A sensitivity, "
             "not a score: no measurement is used; nothing is fitted or chosen. `total_ratio`: the region's volume / "
             "its native volume; `median_ratio`, `p10`, `p90`: over glaciers; `area_covered`: the share of the "
             "outlines' area the volume covers; `modes`: the working-grid plans (`native`, `refined`: a coarser DEM "
             "brought to the model's 200 m, `tiny`: a glacier of few pixels on a finer grid, `coarsened`).", "",
             to_markdown(summary), ""] + ([f"![volume against pixel size]({figure})", ""] if figure else [])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--regions", nargs="+", default=list(REGIONS))
    parser.add_argument("--coarsest-working-m", type=float, default=None,
                        help="a diagnostic: the default with its working grid capped at this pixel size (a coarser DEM "
                             "is refined to it) instead of the model's 200 m; results get the suffix _working<m>")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    quiet_per_glacier_logs("glacierbed.pipeline.tiled", "glacierbed.pipeline.glacier", level=logging.ERROR)
    model, name = None, NAME
    if args.coarsest_working_m is not None:
        from glacierbed.pipeline.store import load_predictor

        model, name = load_predictor(None), f"{NAME}_working{args.coarsest_working_m:.0f}"
        model.resolution_range_m = (model.resolution_range_m[0], args.coarsest_working_m)
    with tempfile.TemporaryDirectory() as tmp:
        glaciers = pd.concat([region_tables(r, Path(tmp), model) for r in args.regions], ignore_index=True)
    summary = summarise(glaciers)
    write_table(glaciers, args.out / f"{name}_glaciers.csv")
    write_table(summary, args.out / f"{name}.csv")
    plot(summary, args.out / f"{name}.png")
    write_text(args.out / f"{name}.md", report(summary, args.coarsest_working_m, f"{name}.png"))
    print(to_markdown(summary))


if __name__ == "__main__":
    run_script(main)
