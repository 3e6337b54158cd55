"""A region-balanced measured fine-tuning against the default's, raw, glacier-wise and leave one region out.

The default's recipe draws each step's measured window uniformly, so the Alps (two thirds of the kit's measured
glaciers) dominate what it learns, and leave one region out it gains nothing over the grids' best baseline
(``measured_glacier_count.md``). ``configs/measured_finetune_from_spanning_all_p128_region_balanced.yaml`` draws an
RGI region first (``MeasuredFinetuneConfig.balance: region``). Both recipes' fold networks (the default's from its
cache) on the 6 glacier-wise and the 6 region-wise folds, scored raw (no calibration; shipped physics). The
protocol's rule (``results/selection_protocol_region_balanced_finetune.md``) decides on the paired mean log ratio
over the 23 grid glaciers whether region balancing is worth declaring as a nested candidate; nothing ships from it.

Run: ``python benchmarks/region_balanced.py`` writes ``benchmarks/results/region_balanced.{md,csv}`` and
``_glaciers.csv`` (about 25 min on 2 cores: 12 fine-tunes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import quiet_per_glacier_logs, run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import gap_text, ratio_gaps
from glacierbed.evaluation.measured_finetune import (default_recipe, default_recipe_options, raw_out_of_fold,
                                                    with_folds_by)
from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BALANCED = HERE / "configs" / "measured_finetune_from_spanning_all_p128_region_balanced.yaml"
SPLITS = {"glacier-wise": "group", "leave one region out": "region"}


def rule(gaps: dict[str, dict], table: pd.DataFrame) -> tuple[bool, list[str]]:
    """The protocol's rule: leave one region out the balanced recipe's mean log gap resolved below 0, glacier-wise not
    resolved above 0, South Glacier and the Ötztal means (raw, glacier-wise) at most 2 % worse. (met, report lines)"""
    loro, gw = gaps["leave one region out"], gaps["glacier-wise"]
    t = table.set_index(["recipe", "split"])
    new, old = t.loc[("region-balanced", "glacier-wise")], t.loc[("default", "glacier-wise")]
    checks = {
        "leave one region out: mean log gap resolved below 0": loro["mean_log_gap_resolved"] and loro["mean_log_gap"] < 0,
        "glacier-wise: mean log gap not resolved above 0": not (gw["mean_log_gap_resolved"] and gw["mean_log_gap"] > 0),
        "South Glacier (raw, glacier-wise) at most 2 % worse":
            new["south_glacier_rmse_m"] <= 1.02 * old["south_glacier_rmse_m"],
        "Ötztal means (raw, glacier-wise) at most 2 % worse":
            new["oetztal_means_rmse_m"] <= 1.02 * old["oetztal_means_rmse_m"]}
    lines = [f"- {what}: {'yes' if ok else '**no**'}" for what, ok in checks.items()]
    return all(checks.values()), lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_recipe_options(ap, HERE / "configs" / "measured_finetune_from_spanning_all_p128.yaml")
    ap.add_argument("--balanced-run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-finetune-balanced",
                    help="the balanced recipe's fold networks go to <dir>/<split> (resumes)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_per_glacier_logs()
    t0 = time.perf_counter()
    cfg, ms = default_recipe(args)
    balanced = MeasuredFinetuneConfig.from_yaml(BALANCED)
    rows, per, gaps = [], [], {}
    for split, by in SPLITS.items():
        runs = {"default": (cfg, args.glacier_run_dir if by == "group" else args.region_run_dir),
                "region-balanced": (balanced, args.balanced_run_dir / by)}
        ratios = {}
        for recipe, (c, run_dir) in runs.items():
            pg, figures = raw_out_of_fold(ms, with_folds_by(c, ms, by), run_dir, by)
            per.append(pg.assign(recipe=recipe, split=split))
            rows.append({"recipe": recipe, "split": split, **figures})
            ratios[recipe] = pg.set_index("rgi_id")["ratio_to_best_baseline"]
        gaps[split] = ratio_gaps(ratios["region-balanced"], ratios["default"])
    table = pd.DataFrame(rows)
    met, lines_rule = rule(gaps, table)
    out: Path = args.out
    write_table(table, out / "region_balanced.csv")
    write_table(pd.concat(per, ignore_index=True), out / "region_balanced_glaciers.csv")
    gap_lines = [f"- {split}: paired mean log gap (region-balanced − default) {gap_text(g, 'mean_log', ', 90 %')}, "
                 f"median gap {gap_text(g, 'median')}" for split, g in gaps.items()]
    lines = [
        "# A region-balanced measured fine-tuning, raw, against the default's recipe",
        "",
        f"Run {dt.date.today()}, {(time.perf_counter() - t0) / 60:.0f} min on this machine. "
        "[Protocol](selection_protocol_region_balanced_finetune.md), committed before any code or run: a raw "
        "diagnostic; nothing ships from it. The default's recipe (its cached fold networks) and the same recipe with "
        "each step's measured window drawn by RGI region first (`balance: region`), on the 6 glacier-wise and the 6 "
        "leave-one-region-out folds, scored raw (no calibration; shipped physics, plastic margins). Grid ratio: per "
        "glacier RMSE / its best baseline (VA, GlabTop, OGGM), median and geometric mean over the 23 grid glaciers. "
        "Per glacier: [region_balanced_glaciers.csv](region_balanced_glaciers.csv).",
        "",
        to_markdown(table.round(3)),
        "",
        *gap_lines,
        "",
        "## Rule",
        "",
        *lines_rule,
        "",
        "**Region balancing is " + ("worth declaring as a nested candidate (both splits) in a session with the time "
                                     "for it.**" if met else "not worth a nested candidate: nothing follows.**"),
        ""]
    write_text(out / "region_balanced.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
