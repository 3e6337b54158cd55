"""How the measured fine-tuning's out-of-fold gain grows with the number of measured glaciers (evaluation only).

The default's recipe (``configs/measured_finetune_from_spanning_all_p128.yaml``, the shipped physics) on its 6
glacier-wise folds, each fold network fine-tuned on a random subset of N of its training glaciers
(``MeasuredFinetuneConfig.train_glaciers``; one draw per fold, seeded by it), scored raw on the glaciers the fold
holds out, beside the default's own raw rows (all training glaciers; glacier-wise and leave one region out) from
their cached fold networks. On the 12 Alps grid glaciers it compares N = 12 glacier-wise with leave-one-region-out,
whose Alps fold also fine-tunes on 12 glaciers, none from the Alps: region shift against sample size. Nothing is
fitted on the scores or selected (protocol: ``results/selection_protocol_measured_glacier_count.md``).

Run: ``python benchmarks/measured_glacier_count.py`` writes ``benchmarks/results/measured_glacier_count.{md,csv}``
and ``_glaciers.csv`` (about 25 min on 2 cores: 12 fine-tunes; the default's fold networks are read from cache).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.core.metrics import geometric_mean
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import gap_text, ratio_gaps
from glacierbed.evaluation.measured_finetune import (default_recipe, raw_out_of_fold,
                                                    with_folds_by)
from glacierbed.evaluation.recipe_cli import DEFAULT_RECIPE, recipe_arguments

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the subset sizes the protocol declared
COUNTS = (12, 24)


def alps_lines(per_glacier: pd.DataFrame) -> list[str]:
    """The 12 Alps grid glaciers: N = 12 glacier-wise against leave-one-region-out and against all glaciers."""
    alps = per_glacier[per_glacier["region"].astype(str) == "11"]
    ratio = alps.pivot(index="rgi_id", columns="run", values="ratio_to_best_baseline")
    lines = []
    for other in ("leave one region out", "all, glacier-wise"):
        g = ratio_gaps(ratio["N = 12, glacier-wise"], ratio[other])
        lines.append(f"- N = 12 glacier-wise against {other} on the {len(ratio)} Alps grid glaciers: geometric mean "
                     f"ratio {geometric_mean(ratio['N = 12, glacier-wise']):.3f} vs "
                     f"{geometric_mean(ratio[other]):.3f}; paired mean log gap "
                     f"{gap_text(g, 'mean_log', ', 90 %')}"
                     + ("" if g["mean_log_gap_resolved"] else ": within the draw of glaciers") + ".")
    return lines


def _own_options(ap: argparse.ArgumentParser) -> None:
    """The script's own options (beside the recipe's and ``--out``)."""
    ap.add_argument("--count-run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-finetune-count",
                    help="fold networks fine-tuned on N glaciers go to <dir>/n<N> (resumes)")


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE.parent / DEFAULT_RECIPE,
                            RESULTS, options=_own_options)
    t0 = time.perf_counter()
    cfg, ms = default_recipe(args)
    runs = {f"N = {n}, glacier-wise": (replace(cfg, train_glaciers=n), args.count_run_dir / f"n{n}", "group")
            for n in COUNTS}
    runs["all, glacier-wise"] = (cfg, args.glacier_run_dir, "group")
    runs["leave one region out"] = (with_folds_by(cfg, ms, "region"), args.region_run_dir, "region")
    per, rows = [], []
    for label, (c, run_dir, by) in runs.items():
        pg, figures = raw_out_of_fold(ms, c, run_dir, by)
        per.append(pg.assign(run=label))
        rows.append({"run": label, "train_glaciers": c.train_glaciers or "all", **figures})
    table, per_glacier = pd.DataFrame(rows), pd.concat(per, ignore_index=True)
    out: Path = args.out
    write_table(table, out / "measured_glacier_count.csv")
    write_table(per_glacier, out / "measured_glacier_count_glaciers.csv")
    lines = [
        "# The measured fine-tuning's out-of-fold figures against the number of measured glaciers",
        "",
        f"Run {dt.date.today()}, {(time.perf_counter() - t0) / 60:.0f} min on this machine; evaluation only, "
        "nothing fitted on these scores or selected ([protocol](selection_protocol_measured_glacier_count.md), "
        "committed before the run). The default's recipe and its 6 glacier-wise folds; each fold network "
        "fine-tuned on a random subset of N of the fold's training glacier identities (one draw per fold) or on all "
        "of them (the default's cached fold networks); `leave one region out`: the default's region-wise fold "
        "networks (the Alps fold fine-tuned on the 12 glaciers of the other regions). Scored **raw** (no "
        "calibration), shipped physics (plastic margins). Grid ratio: per glacier RMSE / that glacier's best "
        "baseline (VA, GlabTop, OGGM), median and geometric mean over the 23 grid glaciers. `fitted`: the measured "
        "windows each fold fine-tuned on. Per glacier: "
        "[measured_glacier_count_glaciers.csv](measured_glacier_count_glaciers.csv).",
        "",
        to_markdown(table.round(3)),
        "",
        "Region shift against sample size (raw, paired over the same glaciers):",
        "",
        *alps_lines(per_glacier),
        ""]
    for n in COUNTS:
        g = ratio_gaps(per_glacier[per_glacier["run"] == f"N = {n}, glacier-wise"].set_index("rgi_id")[
            "ratio_to_best_baseline"], per_glacier[per_glacier["run"] == "all, glacier-wise"].set_index("rgi_id")[
            "ratio_to_best_baseline"])
        lines.append(f"- All 23 grid glaciers, N = {n} against all: paired mean log gap {gap_text(g, 'mean_log')}, "
                     f"median gap {gap_text(g, 'median')}.")
    write_text(out / "measured_glacier_count.md", "\n".join(lines + [""]))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
