"""Does training on coarse views of simulated glaciers remove the network's thinning on coarse DEMs? A diagnostic.

Protocol, written before training or scoring: ``benchmarks/results/coarse_views_protocol.md``. Three networks from the
default lineage's spanning stage (S, ``runs/span128/p128/weights.pt``): the control C fine-tuned on the spanning
windows on this machine (``benchmarks/configs/thickness_coarse_views_control.yaml``), and T on the same plus their
coarse views 2x and 4x (``thickness_coarse_views_treatment.yaml``; :mod:`glacierbed.simulation.coarse_views`). Each
scored raw (no physics, no calibration; no measurement) on (1) the simulated test ranges seen at their own pixel size,
block-averaged and blurred (:func:`glacierbed.evaluation.resolution.simulated_view_rows`) and (2) the kit DEMs warped
to 100 / 200 m (each region's volume over native). The reading of the protocol is applied at the end. Nothing ships.

Build first: ``python benchmarks/coarse_views.py --build-views`` (``runs/coarse/sim128_x{2,4}.npz``: the coarse views
of ``runs/span/sim128.npz``), then ``glacierbed train-thickness --config benchmarks/configs/thickness_coarse_views_{control,treatment}.yaml --run-dir
runs/coarse/{control,treatment}`` (about 3 and 2 minutes on 2 cores). Run:
``GLACIERBED_DATA=../shared/data python benchmarks/coarse_views.py`` (about 4 minutes). Writes
``benchmarks/results/coarse_views.{md,csv}``.
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
from glacierbed.evaluation.resolution import (REGIONS, region_volumes, simulated_view_rows, summarise_views,
                                              volume_ratios)
from glacierbed.models.thickness.runtime import ThicknessNetPredictor
from glacierbed.pipeline.glacier import EstimateConfig
from glacierbed.simulation.coarse_views import coarse_view
from glacierbed.simulation.glacier_set import SimulatedSet

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "coarse_views"
NETWORKS = {"S": Path("runs/span128/p128/weights.pt"), "C": Path("runs/coarse/control/weights.pt"),
            "T": Path("runs/coarse/treatment/weights.pt")}
#: raw, on the working grids this diagnostic ran with (before coarse DEMs were refined; same at 100 and 200 m)
RAW = EstimateConfig(physics=None, calibrate=False, refine_coarse_dem_m=None)
#: protocol: own pixel sizes need this many windows for (a); own-grid RMSE may grow this much for (b)
MIN_WINDOWS, RMSE_TOLERANCE = 20, 1.03
#: the training windows and where their coarse views go
SPANNING, VIEWS = Path("runs/span/sim128.npz"), Path("runs/coarse")


def build_views() -> list[Path]:
    """The coarse views 2x and 4x of the spanning windows (the treatment's extra training sets)."""
    sims = SimulatedSet.load(SPANNING)
    return [coarse_view(sims, k).save(VIEWS / f"sim128_x{k}.npz") for k in (2, 4)]


def score(weights: Path, simulated: Path, regions: tuple[str, ...], work: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(simulated views summary, region volume ratios at 100 / 200 m) of one network, raw."""
    views = summarise_views(simulated_view_rows(simulated, ThicknessNetPredictor.load(weights)))
    tables = [region_volumes(r, work, model=str(weights), config=RAW, resolutions=(None, 100.0, 200.0))
              for r in regions]
    ratios = volume_ratios(pd.concat(tables, ignore_index=True))
    return views, ratios[~ratios["native"]][["region", "pixel_m", "n", "total_ratio", "median_ratio"]]


def reading(views: pd.DataFrame, regions: pd.DataFrame) -> tuple[bool, list[str]]:
    """The protocol's three conditions, T against C, each with its figures."""
    v = views.set_index(["network", "own_pixel_m", "variant"])
    lines, ok = [], []
    enough = views[(views["network"] == "C") & (views["variant"] == "own grid") & (views["windows"] >= MIN_WINDOWS)]
    for px in enough["own_pixel_m"]:
        for variant in ("averaged 2x", "averaged 4x"):
            if ("C", px, variant) not in v.index:
                continue
            c, t = v.loc[("C", px, variant), "volume_ratio"], v.loc[("T", px, variant), "volume_ratio"]
            ok.append(abs(1 - t) < abs(1 - c))
            verdict = "closer" if ok[-1] else "not closer"
            lines.append(f"(a) {px:.0f} m {variant}: volume ratio C {c:.3f}, T {t:.3f}: {verdict} to 1")
    for px in sorted(views["own_pixel_m"].unique()):
        c, t = v.loc[("C", px, "own grid"), "rmse_m"], v.loc[("T", px, "own grid"), "rmse_m"]
        ok.append(t <= RMSE_TOLERANCE * c)
        lines.append(f"(b) {px:.0f} m own grid: RMSE C {c:.2f} m, T {t:.2f} m: {'within' if ok[-1] else 'beyond'} 3 %")
    r = regions[regions["pixel_m"] == 200.0].set_index(["network", "region"])["total_ratio"]
    closer = [abs(1 - r[("T", reg)]) < abs(1 - r[("C", reg)]) for reg in regions["region"].unique()]
    ok.append(sum(closer) >= 2)
    lines.append("(c) 200 m / native raw volume: " + ", ".join(
        f"{reg} C {r[('C', reg)]:.3f}, T {r[('T', reg)]:.3f}" for reg in regions["region"].unique())
        + f": closer in {sum(closer)} of {len(closer)}")
    return all(ok), lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulated", type=Path, default=Path("runs/simtest128.npz"))
    parser.add_argument("--regions", nargs="+", default=list(REGIONS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--build-views", action="store_true", help="write the coarse views for training, then stop")
    args = parser.parse_args()
    if args.build_views:
        print("wrote", ", ".join(map(str, build_views())))
        return
    logging.basicConfig(level=logging.WARNING)
    quiet_per_glacier_logs("glacierbed.pipeline.tiled", "glacierbed.pipeline.glacier", "glacierbed.data.outlines",
                           level=logging.ERROR)
    views, regions = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, weights in NETWORKS.items():
            v, r = score(weights, args.simulated, tuple(args.regions), Path(tmp) / name)
            views.append(v.assign(network=name))
            regions.append(r.assign(network=name))
    views_t, regions_t = pd.concat(views, ignore_index=True), pd.concat(regions, ignore_index=True)
    helps, lines = reading(views_t, regions_t)
    write_table(pd.concat([views_t.assign(part="simulated"), regions_t.assign(part="regions")], ignore_index=True),
                args.out / f"{NAME}.csv")
    text = "\n".join([
        "# Coarse views of simulated glaciers: does training on them remove the thinning on coarse DEMs?", "",
        "Protocol written first: [coarse_views_protocol.md](coarse_views_protocol.md). Networks: S the default "
        "lineage's spanning stage, C fine-tuned on the spanning windows, T the same plus their coarse views; all raw. "
        "No measurement is used; nothing ships.", "",
        "## Simulated test ranges: own grid, block-averaged, DEM blurred", "",
        to_markdown(views_t.pivot_table(index=["own_pixel_m", "variant"], columns="network",
                                        values=["volume_ratio", "rmse_m"], sort=False).round(3).reset_index()), "",
        "## Kit DEMs warped coarser: raw region volume over native", "",
        to_markdown(regions_t.pivot_table(index=["region", "pixel_m"], columns="network",
                                          values="total_ratio").round(3).reset_index()), "",
        "## Reading (fixed in the protocol)", "", *[f"- {x}" for x in lines], "",
        f"**Coarse views {'help' if helps else 'are not shown to help'}** by the protocol's reading.", ""])
    write_text(args.out / f"{NAME}.md", text)
    print(text)


if __name__ == "__main__":
    run_script(main)
