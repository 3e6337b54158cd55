"""Large glaciers whose window exceeds the network's patch: how much of their ice the default finds (known truth).

The thickness network works a glacier where its window fits one 128 px patch, coarsening up to its coarsest pixel
(200 m); a larger window is worked at 200 m in one call (``resolution_mode`` "tiled"). This benchmark builds a
simulated region of large glaciers and ice caps with a known bed (``glacierbed region build`` with
``benchmarks/configs/region_large_glaciers.yaml``: the five glacier-free Alpine tiles at 200 m in 256 px blocks, the
spanning 256 px set's ranges) and scores two plans (protocol, written first:
``benchmarks/results/large_glaciers_protocol.md``):

- ``V0 today``: the shipped default with its plan;
- ``V1 one patch``: the same model with its coarsest working pixel lifted to 1000 m, so every window is block-averaged
  until it fits one patch (on a 200 m DEM only the glaciers V0 plans "tiled" change).

Each at two stages: network + physics without calibration (decides) and the default with its calibration. No
measurement is used. Deciding figure: over the glaciers V0 plans "tiled", ``|r_tiled - r_rest|``, their total volume
ratio (estimate / truth) against that of every other glacier of the region. Diagnostics added after the result
(nothing chosen): the default's network without physics, and its lineage's stage 1 (before the measured
fine-tuning; when ``runs/span128/p128/weights.pt`` exists); and how thick the simulated glaciers are for their area
(true volume over volume-area scaling).

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/large_glaciers.py [--workers 2]`` (the region's build takes
about 1.5 min on 2 workers and resumes; each of the 6 estimates of its 2,722 glaciers about 3-4 min on 2 cores;
finished estimates resume). Writes ``benchmarks/results/large_glaciers.{md,csv}`` and ``large_glaciers_glaciers.csv``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import quiet_per_glacier_logs, run_script
from glacierbed.simulation.thickness_area import thickness_for_area
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.known_truth import region_truth_scores
from glacierbed.pipeline.estimate import estimate
from glacierbed.pipeline.glacier import EstimateConfig
from glacierbed.pipeline.store import load_predictor
from glacierbed.posterior.calibration.features import GAUSS_Z90

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = ROOT / "benchmarks" / "configs" / "region_large_glaciers.yaml"
NAME = "large_glaciers"
STAGE1 = ROOT / "runs" / "span128" / "p128" / "weights.pt"
LIFTED_MAX_M = 1000.0  #: V1's coarsest working pixel
STAGES = {"network + physics": EstimateConfig(calibrate=False), "default (calibrated)": EstimateConfig()}
SIZE_CLASSES_KM2 = (0.0, 1.0, 10.0, 50.0, 100.0, np.inf)


def build_region(out: Path, seed: int, workers: int) -> Path:
    """The simulated region (resumes; an existing one is only reassembled)."""
    subprocess.run([sys.executable, "-m", "glacierbed.cli", "region", "build", "--out", str(out), "--config",
                    str(CONFIG), "--seed", str(seed), "--workers", str(workers)], check=True)
    return out


def predictor(variant: str):
    """The shipped default's predictor, with its coarsest working pixel lifted for ``V1``."""
    p = load_predictor(None)
    if variant.startswith("V1"):
        p.resolution_range_m = (p.resolution_range_m[0], LIFTED_MAX_M)
    return p


def _scored(region: Path, out: Path, model: Any, cfg: EstimateConfig, **labels: str) -> pd.DataFrame:
    """One estimate of the region, per glacier against the truth, with the 90 % multiplier of its volume 1-sigma
    (``z90``: the model's calibration's glacier level when calibrated; else the network's sigma read as Gaussian)."""
    res = estimate(region / "dem.tif", region / "outlines.gpkg", out, model=model, config=cfg, maps=False)
    g = res.glaciers[["rgi_id", "volume_km3", "volume_std_km3", "resolution_mode", "working_resolution_m"]]
    t = pd.read_csv(region / "truth.csv")[["rgi_id", "area_km2", "volume_km3"]]
    calibration = load_predictor(model).calibration if cfg.calibrate else None
    z90 = calibration.glacier_z90 if calibration is not None else GAUSS_Z90
    return t.merge(g, on="rgi_id", suffixes=("_true", "_est")).assign(**labels, out=str(out), z90=float(z90))


def run_variants(region: Path, work: Path) -> pd.DataFrame:
    """Per glacier, variant and stage: true and estimated volume and its 1-sigma, working pixel and mode."""
    return pd.concat([_scored(region, work / f"{variant.split()[0]}-{stage.split()[0]}", predictor(variant), cfg,
                              variant=variant, stage=stage)
                      for variant in ("V0 today", "V1 one patch") for stage, cfg in STAGES.items()], ignore_index=True)


def run_diagnostics(region: Path, work: Path) -> pd.DataFrame:
    """Reported after the decision, nothing chosen: the default's lineage before its measured fine-tuning (stage 1,
    ``runs/span128/p128/weights.pt`` from ``tools/rebuild_lineage.py``) and the default's network without physics,
    both with today's plan and no calibration."""
    rows = [_scored(region, work / "raw-default", None, EstimateConfig(calibrate=False, physics=None),
                    variant="V0 today", stage="raw network (no physics)")]
    if STAGE1.exists():
        rows.append(_scored(region, work / "stage1-network", str(STAGE1), STAGES["network + physics"],
                            variant="V0, stage 1 (before measured fine-tuning)", stage="network + physics"))
    return pd.concat(rows, ignore_index=True)


def truth_against_scaling(region: Path) -> pd.DataFrame:
    """How thick the simulated glaciers are for their area: true volume over volume-area scaling, by size class."""
    t = pd.read_csv(region / "truth.csv")
    c = thickness_for_area(t["area_km2"], 1e3 * t["volume_km3"] / t["area_km2"], SIZE_CLASSES_KM2)
    c = c.rename(columns={"volume_over_va": "truth_over_va", "median_over_va": "glacier_over_va_median"})
    return c[["area_km2", "glaciers", "mean_thickness_m", "truth_over_va", "glacier_over_va_median"]].round(2)


def _ratio(g: pd.DataFrame) -> float:
    return float(g["volume_km3_est"].sum() / g["volume_km3_true"].sum())


def _interval_coverage(g: pd.DataFrame, z90: float) -> dict[str, float]:
    """The volume interval (``volume_std_km3``: calibrated, or the network's own sigma summed over the glacier): its
    median width relative to the volume, and how often it holds the true volume at 68 % and, times ``z90``, 90 %."""
    err = (g["volume_km3_est"] - g["volume_km3_true"]).abs()
    return dict(volume_std_rel=(g["volume_std_km3"] / g["volume_km3_est"]).median(),
                covered_68=(err <= g["volume_std_km3"]).mean(), covered_90=(err <= z90 * g["volume_std_km3"]).mean())


def summarise(per_glacier: pd.DataFrame, region: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(decision table: tiled vs the rest per variant and stage, with pixel scores; table by size class)."""
    v0 = per_glacier[(per_glacier["variant"] == "V0 today") & (per_glacier["stage"] == "network + physics")]
    tiled = set(v0.loc[v0["resolution_mode"] == "tiled", "rgi_id"])
    rows, classes = [], []
    for (variant, stage), g in per_glacier.groupby(["variant", "stage"], sort=False):
        is_tiled = g["rgi_id"].isin(tiled)
        r_tiled, r_rest = _ratio(g[is_tiled]), _ratio(g[~is_tiled])
        pix = region_truth_scores(region, Path(g["out"].iloc[0]), sorted(tiled))
        ratio = g["volume_km3_est"] / g["volume_km3_true"]
        rows.append(dict(variant=variant, stage=stage, tiled_glaciers=int(is_tiled.sum()),
                         tiled_true_km3=g.loc[is_tiled, "volume_km3_true"].sum(), r_tiled=r_tiled, r_rest=r_rest,
                         deviation=abs(r_tiled - r_rest), tiled_rmse_m=pix["rmse_m"], tiled_bias_m=pix["bias_m"],
                         tiled_mean_true_m=pix["mean_true_m"], tiled_glacier_ratio_median=ratio[is_tiled].median(),
                         tiled_working_m_median=g.loc[is_tiled, "working_resolution_m"].median(),
                         region_ratio=_ratio(g)))
        classes.append(by_size(g, tiled).assign(variant=variant, stage=stage))
    classes = pd.concat(classes, ignore_index=True)
    return pd.DataFrame(rows).round(3), classes[["variant", "stage", *classes.columns[:-2]]].round(3)


def by_size(g: pd.DataFrame, tiled: set[str]) -> pd.DataFrame:
    """One run's glaciers by size class: how many (and how many ``tiled``), true volume, volume ratio, and the volume
    interval (with the run's own ``z90``, :func:`_scored`)."""
    z90 = float(g["z90"].iloc[0])
    return pd.DataFrame([dict(area_km2=str(cls), glaciers=len(c), tiled=int(c["rgi_id"].isin(tiled).sum()),
                              true_km3=c["volume_km3_true"].sum(), volume_ratio=_ratio(c),
                              glacier_ratio_median=(c["volume_km3_est"] / c["volume_km3_true"]).median(),
                              **_interval_coverage(c, z90))
                         for cls, c in g.groupby(pd.cut(g["area_km2"], SIZE_CLASSES_KM2), observed=True)])


def alpine_region(region: Path, work: Path) -> pd.DataFrame:
    """The default (calibrated) on the simulated Alpine region of ``benchmarks/region_scale.py`` (128 px blocks,
    glaciers up to 90 km²), by size class and by working mode; reported after the decision."""
    g = _scored(region, work / "alpine-default", None, STAGES["default (calibrated)"], variant="V0 today",
                stage="default (calibrated)")
    modes = [by_size(m, set()).assign(resolution_mode=mode) for mode, m in g.groupby("resolution_mode")]
    scaling = truth_against_scaling(region).set_index("area_km2")["truth_over_va"]
    out = pd.concat([by_size(g, set()).assign(resolution_mode="all"), *modes], ignore_index=True)
    out = out.assign(truth_over_va=out["area_km2"].map(scaling).where(out["resolution_mode"] == "all"))
    out = out.drop(columns="tiled")
    return out[["resolution_mode", *out.columns.drop("resolution_mode")]].round(3)


def wide(per_glacier: pd.DataFrame) -> pd.DataFrame:
    """One row per glacier: its area, true volume, today's mode, and each run's volume (km3, 4 significant digits)."""
    key = per_glacier["variant"] + " | " + per_glacier["stage"]
    v = per_glacier.assign(run=key).pivot(index="rgi_id", columns="run", values="volume_km3_est")
    first = per_glacier[key == key.iloc[0]].set_index("rgi_id")[["area_km2", "volume_km3_true", "resolution_mode"]]
    first = first.assign(volume_km3_true=first["volume_km3_true"].map(lambda x: float(f"{x:.4g}")))
    return first.join(v.map(lambda x: float(f"{x:.4g}"))).reset_index()


def decision(table: pd.DataFrame) -> str:
    """The protocol's reading."""
    t = table[table["stage"] == "network + physics"].set_index("variant")
    v0, v1 = t.loc["V0 today"], t.loc["V1 one patch"]
    gain = v0["deviation"] - v1["deviation"]
    rmse_ok = v1["tiled_rmse_m"] <= 1.05 * v0["tiled_rmse_m"]
    verdict = "**recommended** (a measured candidate next)" if gain >= 0.05 and rmse_ok else "**not recommended**"
    return (f"Deviation of the tiled glaciers' volume ratio from the rest's (network + physics): V0 "
            f"{v0['deviation']:.3f}, V1 {v1['deviation']:.3f} (gain {gain:+.3f}, needs ≥ 0.05); RMSE over their pixels "
            f"V0 {v0['tiled_rmse_m']:.1f} m, V1 {v1['tiled_rmse_m']:.1f} m (needs ≤ {1.05 * v0['tiled_rmse_m']:.1f}). "
            f"V1: {verdict}.")


def report(region: Path, table: pd.DataFrame, classes: pd.DataFrame, scaling: pd.DataFrame,
           alpine: pd.DataFrame | None) -> str:
    """The results page."""
    import json

    rec = json.loads((region / "region.json").read_text())
    return "\n".join([
        "# Large glaciers whose window exceeds the network's patch (known truth)", "",
        "No measurement is used (`benchmarks/large_glaciers.py`; protocol written first: "
        "[large_glaciers_protocol.md](large_glaciers_protocol.md)). Region: "
        f"{rec['n_glaciers']} simulated glaciers in {rec['blocks']['simulated']} blocks of 256 px at 200 m on the "
        f"glacier-free Alpine tiles, {rec['glacier_area_km2']:.0f} km² of ice, {rec['volume_km3']:.0f} km³, largest "
        f"{rec['size_distribution']['max_km2']:.0f} km² (`benchmarks/configs/region_large_glaciers.yaml`; the "
        "terrain of the simulated training sets, new simulations). `tiled`: the glaciers today's plan works at 200 m "
        "over a window larger than one 128 px patch; `V1` coarsens them until it fits one patch.", "",
        "## Decision", "", decision(table), "",
        "Rows `V0 today` and `V1 one patch` at stages `network + physics` (deciding) and `default (calibrated)` are "
        "the protocol's; `raw network (no physics)` and `stage 1 (before measured fine-tuning)` are diagnostics added "
        "after its result (nothing chosen on them).", "",
        to_markdown(table), "",
        "## By glacier size", "", to_markdown(classes), "",
        "## How thick the simulated glaciers are for their area", "",
        "True volume over volume-area scaling (V = 0.034 A^1.375, km³ and km²) by size class, summed over the class "
        "and its median over glaciers. For comparison, the "
        "kit's measured glaciers of 200-800 km² (six ice caps, GlaThiDa grids) have a mean of their measured cells "
        "0.76-1.55x that scaling's thickness, those of 1-20 km² a median 0.80x (0.26-2.5x, 32 glaciers; "
        "[diagnosis.csv](diagnosis.csv)).", "",
        to_markdown(scaling), "",
        *([] if alpine is None else [
            "## The same on the Alpine region (128 px blocks; the default only)", "",
            "The simulated region of [region_scale](region_scale.md) (4,357 glaciers, up to 90 km²), all estimated "
            "by the default with its calibration; by size class (`all`) and by the working mode of the plan. "
            "Reported after the decision; nothing chosen on it.", "", to_markdown(alpine), ""])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", type=Path, default=Path("runs/large_glaciers/region_s0"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="Dask workers of the region's build")
    parser.add_argument("--work", type=Path, default=Path("runs/large_glaciers/estimates"))
    parser.add_argument("--alpine-region", type=Path, default=Path("runs/region_truth/region"),
                        help="the simulated Alpine region of benchmarks/region_scale.py (skipped when absent)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    quiet_per_glacier_logs("glacierbed.pipeline.tiled", "glacierbed.pipeline.glacier", "glacierbed.data.outlines",
                           level=logging.ERROR)
    region = build_region(args.region, args.seed, args.workers)
    per_glacier = pd.concat([run_variants(region, args.work), run_diagnostics(region, args.work)],
                            ignore_index=True)
    table, classes = summarise(per_glacier, region)
    write_table(wide(per_glacier), args.out / f"{NAME}_glaciers.csv")
    write_table(table, args.out / f"{NAME}.csv")
    alpine = alpine_region(args.alpine_region, args.work) if (args.alpine_region / "truth.csv").exists() else None
    text = report(region, table, classes, truth_against_scaling(region), alpine)
    write_text(args.out / f"{NAME}.md", text)
    print(text)


if __name__ == "__main__":
    run_script(main)
