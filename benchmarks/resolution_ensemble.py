"""Averaging two working resolutions out of fold: the default's fold networks planned at 128 and 256 px (a diagnostic).

Protocol (written first): ``benchmarks/results/selection_protocol_resolution_ensemble.md``. The pipeline plans a
glacier's working resolution from the network's ``patch_size``; the default's fold networks (each fine-tuned without
its fold's glaciers) are run on their held-out glaciers with their own plan (128 px, cached) and, from copies whose
record says 256 px, with the finer plan. Raw maps (physics on, no calibration), scored on the measured rows; the
average of the two plans is taken per measurement. Evaluation only: nothing is fitted or shipped.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/resolution_ensemble.py`` (after the default recipe's
``measured_finetune.py --nested`` has cached its networks). Writes ``benchmarks/results/resolution_ensemble.{csv,md}``
and ``resolution_ensemble_glaciers.csv``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.measured_finetune import (cross_validate_finetune, default_recipe,
                                                    diagnostic_condition)
from glacierbed.evaluation.recipe_cli import DEFAULT_RECIPE, recipe_arguments
from glacierbed.evaluation.measured_table import BASELINES

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent
KEYS = ["case", "example", "rgi_id", "obs_id"]
PLANS = ("128 px plan", "256 px plan", "average of the two")


def replan(src: Path, dst: Path, folds: int, patch_size: int) -> None:
    """Copies of the fold networks ``src/fold{k}`` in ``dst/fold{k}`` whose record plans ``patch_size`` px windows
    (the weights and their fine-tuning record unchanged, so the copies are reused, not fine-tuned again)."""
    for k in range(folds):
        out = dst / f"fold{k}"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / f"fold{k}" / "weights.pt", out / "weights.pt")
        record = json.loads((src / f"fold{k}" / "weights.json").read_text())
        (out / "weights.json").write_text(json.dumps({**record, "patch_size": patch_size}, indent=1))


def per_glacier(rows: pd.DataFrame) -> pd.DataFrame:
    """Per glacier of the measured rows: RMSE of each plan and of the best baseline, and the ratios."""
    out = []
    for (case, rgi_id), g in rows.groupby(["case", "rgi_id"], sort=True):
        row = {"case": case, "rgi_id": rgi_id, "n": len(g)}
        for plan in PLANS:
            row[plan] = float(np.sqrt(np.mean((g[plan] - g["obs"]) ** 2)))
        row["best_baseline"] = min(float(np.sqrt(np.mean((g[f"base_{b}"] - g["obs"]) ** 2))) for b in BASELINES)
        out.append(row)
    t = pd.DataFrame(out)
    for plan in PLANS[1:]:
        t[f"ratio: {plan}"] = t[plan] / t[PLANS[0]]
    return t


def _own_options(ap: argparse.ArgumentParser) -> None:
    """The script's own options (beside the recipe's and ``--out``)."""
    ap.add_argument("--fine-run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-resolution-256",
                    help="where the 256 px copies run (a separate folder: a copy has the same weights identity)")


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE.parent / DEFAULT_RECIPE,
                            RESULTS, options=_own_options, quiet=("glacierbed.evaluation.measured_table",))
    t0 = time.perf_counter()
    cfg, ms = default_recipe(args)
    coarse, _ = cross_validate_finetune(ms, cfg, Path(cfg.init_weights), args.glacier_run_dir)
    replan(args.glacier_run_dir, args.fine_run_dir, cfg.folds, 256)
    fine, _ = cross_validate_finetune(ms, cfg, Path(cfg.init_weights), args.fine_run_dir,
                                      progress=lambda m: logging.info(m))
    measured = ["south-glacier", "glathida-grids", "oetztal-means"]
    keep = [*KEYS, "obs", *[f"base_{b}" for b in BASELINES]]
    a = coarse.rows[coarse.rows["case"].isin(measured)][[*keep, "mu"]].rename(columns={"mu": PLANS[0]})
    b = fine.rows[fine.rows["case"].isin(measured)][[*KEYS, "mu"]].rename(columns={"mu": PLANS[1]})
    rows = a.merge(b, on=KEYS, how="inner")
    rows[PLANS[2]] = 0.5 * (rows[PLANS[0]] + rows[PLANS[1]])
    rows = rows.dropna(subset=list(PLANS))
    glaciers = per_glacier(rows[rows["case"] != "oetztal-means"])
    grids = glaciers[glaciers["case"] == "glathida-grids"]
    means = rows[rows["case"] == "oetztal-means"]
    summary = []
    for plan in PLANS:
        ratio = grids[f"ratio: {plan}"] if plan != PLANS[0] else pd.Series([1.0])
        summary.append({
            "plan": plan, "grids_median_rmse_m": grids[plan].median(),
            "grids_median_ratio_to_best_baseline": float((grids[plan] / grids["best_baseline"]).median()),
            "grids_median_ratio_to_128": float(ratio.median()),
            "grids_better_than_128": int((ratio < 1 - 1e-9).sum()) if plan != PLANS[0] else np.nan,
            "grids_changed_by_the_plan": int((abs(ratio - 1) > 1e-9).sum()) if plan != PLANS[0] else np.nan,
            "south_glacier_rmse_m": float(glaciers.loc[glaciers["case"] == "south-glacier", plan].iloc[0]),
            "oetztal_means_rmse_m": float(np.sqrt(np.mean((means[plan] - means["obs"]) ** 2)))})
    table = pd.DataFrame(summary)
    write_table(table, args.out / "resolution_ensemble.csv")
    write_table(glaciers, args.out / "resolution_ensemble_glaciers.csv")
    by_row = table.set_index("plan")
    _, condition = diagnostic_condition(by_row.loc[PLANS[2]], by_row.loc[PLANS[0]],
                                        "grids_median_ratio_to_128", "average of the two plans", "the 128 px plan",
                                        "two-plan average")
    lines = [
        "# Averaging two working resolutions out of fold (issue 16; a diagnostic)", "",
        f"Run {dt.date.today()}, {(time.perf_counter() - t0) / 60:.0f} min. Protocol, written first: "
        "[selection_protocol_resolution_ensemble.md](selection_protocol_resolution_ensemble.md). The default "
        f"recipe's {cfg.folds} outer fold networks, each on the glaciers it never saw, through the pipeline (physics on, "
        "no calibration) with the 128 px plan (its own) and the 256 px plan; the average per measurement. "
        f"{len(rows)} measured rows on both plans. Grid ratio to the best baseline: RMSE / the best of VA, GlabTop, "
        "OGGM on the same cells (raw maps, so not the nested headline). Evaluation only: nothing fitted, the default "
        "unchanged.", "",
        to_markdown(table), "",
        "Per glacier: [resolution_ensemble_glaciers.csv](resolution_ensemble_glaciers.csv). A grid glacier whose "
        "window is already at its DEM's pixel size under the 128 px plan gets the same map under the 256 px plan "
        "(the pipeline never works finer than the DEM).", "",
        "## The protocol's condition", "",
        condition, ""]
    write_text(args.out / "resolution_ensemble.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
