"""Refining coarse DEMs for the network: each glacier's volume on a DEM coarser than 100 m, refined or not.

Since 2026-12-07 a glacier on a DEM coarser than 100 m whose window fits one 128 px patch at 100 m is worked by the
thickness network on a grid refined to 100 m, and its volume is computed there (``EstimateConfig.refine_coarse_dem_m``;
the protocol, written before its variants ran: ``benchmarks/results/coarse_dem_refinement_protocol.md``). No
measurement is used. Two checks:

1. **Self-consistency** on the kit regions (Ötztal, NZ, Svalbard): each region's DEM warped to 150-400 m, its volume
   over its volume on the DEM's own grid, not refined (``refine_coarse_dem_m: null``) and refined (the default).
   Deciding figure (the protocol's): the mean over regions and pixel sizes of |1 - the region's volume ratio|.
2. **Known truth** at 200 m: a random sample of the simulated Alpine region of ``glacierbed region build`` (glaciers
   simulated on the glacier-free 200 m terrain; the network's training terrain, new simulations), not refined and
   refined: thickness RMSE and bias on the glaciers' pixels, volume over the true volume, wall time.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/coarse_dem_refinement.py`` (about 6 minutes on 2 cores; it
builds ``runs/region_truth/region`` first when absent, 1 minute). Writes
``benchmarks/results/coarse_dem_refinement.{md,csv}`` and ``coarse_dem_refinement_truth.csv``; the protocol's variant
run (with the variant "natural", since removed) is ``coarse_dem_refinement_variants.csv``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import quiet_per_glacier_logs, run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.known_truth import region_truth_scores
from glacierbed.evaluation.resolution import REGIONS, region_volumes, volume_ratios
from glacierbed.pipeline.estimate import estimate
from glacierbed.pipeline.glacier import EstimateConfig

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "coarse_dem_refinement"
VARIANTS = {"not refined": EstimateConfig(refine_coarse_dem_m=None), "refined to 100 m (default)": EstimateConfig()}
PIXELS_M = (150.0, 200.0, 300.0, 400.0)


def self_consistency(regions: tuple[str, ...], work: Path) -> pd.DataFrame:
    """Per variant, region and pixel size: the region's volume and each glacier's median over native."""
    parts = []
    for name, cfg in VARIANTS.items():
        g = pd.concat([region_volumes(r, work / name.split()[0], config=cfg, resolutions=(None, *PIXELS_M))
                       for r in regions], ignore_index=True)
        parts.append(volume_ratios(g).assign(variant=name))
    t = pd.concat(parts, ignore_index=True)
    t = t[~t["native"]].drop(columns="native")
    return t.assign(deviation=(1 - t["total_ratio"]).abs().round(3))


def known_truth(region: Path, n: int, work: Path) -> pd.DataFrame:
    """Per variant: the estimate of ``n`` random glaciers of the simulated region against its truth, and time."""
    if not (region / "truth.csv").exists():
        subprocess.run([sys.executable, "-m", "glacierbed.cli", "region", "build", "--out", str(region)], check=True)
    truth = pd.read_csv(region / "truth.csv")
    ids = [str(i) for i in np.random.default_rng(0).permutation(truth["rgi_id"].to_numpy())[:n]]
    rows = []
    for name, cfg in VARIANTS.items():
        out = work / name.split()[0]
        t0 = time.perf_counter()
        result = estimate(region / "dem.tif", region / "outlines.gpkg", out, select=ids, config=cfg)
        modes = result.glaciers["resolution_mode"].value_counts()
        rows.append({"variant": name, "wall_s": round(time.perf_counter() - t0, 1),
                     "modes": ", ".join(f"{k} {v}" for k, v in modes.items()),
                     **region_truth_scores(region, out, ids)})
    return pd.DataFrame(rows).round(3)


def report(consistency: pd.DataFrame, truth: pd.DataFrame, variants: pd.DataFrame) -> str:
    """The results page."""
    mean_dev = consistency.groupby("variant", sort=False)["deviation"].mean()
    decision = variants.groupby("variant", sort=False)["deviation"].mean()
    cols = ["variant", "glaciers", "modes", "rmse_m", "bias_m", "mean_true_m", "mean_est_m", "volume_ratio",
            "glacier_volume_ratio_median", "wall_s"]
    return "\n".join([
        "# Refining coarse DEMs for the network", "",
        "For the thickness network, a glacier on a DEM coarser than 100 m whose window fits one patch at 100 m "
        "is worked, and its volume computed, on a grid refined to 100 m (`EstimateConfig.refine_coarse_dem_m`, "
        "default 100). No measurement is used; protocol: "
        "[coarse_dem_refinement_protocol.md](coarse_dem_refinement_protocol.md).", "",
        "## The protocol's run (decided the variant)", "",
        "Mean over the 3 regions and 4 pixel sizes of |1 - the region's volume / its native volume| "
        "([variants](coarse_dem_refinement_variants.csv); `today` is the committed "
        "[dem_resolution.csv](dem_resolution.csv) before any change, `volume on the working grid only` today's plan "
        "with a refined glacier's volume on its working grid, `cap` the 100 m grid (installed), `natural` the "
        "glacier's own window / 128 px, at most 100 m):", "",
        to_markdown(decision.round(4).reset_index().rename(columns={"deviation": "mean_deviation"})), "",
        "## 1. Self-consistency on the kit regions (this run)", "",
        to_markdown(consistency), "",
        "Mean deviation: " + "; ".join(f"{k} **{v:.3f}**" for k, v in mean_dev.items()) + ".", "",
        "## 2. Known truth: simulated Alpine glaciers at 200 m", "",
        to_markdown(truth[cols]), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", nargs="+", default=list(REGIONS))
    parser.add_argument("--region-truth", type=Path, default=Path("runs/region_truth/region"),
                        help="a simulated region (glacierbed region build); built here when absent")
    parser.add_argument("--sample", type=int, default=1000, help="glaciers of the simulated region scored")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    quiet_per_glacier_logs("glacierbed.pipeline.tiled", "glacierbed.pipeline.glacier", "glacierbed.data.outlines",
                           "glacierbed.evaluation.resolution", level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        consistency = self_consistency(tuple(args.regions), Path(tmp) / "kit")
        truth = known_truth(args.region_truth, args.sample, Path(tmp) / "truth")
    variants = pd.read_csv(args.out / f"{NAME}_variants.csv")
    write_table(consistency, args.out / f"{NAME}.csv")
    write_table(truth, args.out / f"{NAME}_truth.csv")
    text = report(consistency, truth, variants)
    write_text(args.out / f"{NAME}.md", text)
    print(text)


if __name__ == "__main__":
    run_script(main)
