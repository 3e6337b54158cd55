"""Variants of the default's measured fine-tuning against it, raw, glacier-wise and leave one region out.

Each variant is a config: the default's recipe (``configs/measured_finetune_from_spanning_all_p128.yaml``) with a few
settings changed (listed in the report). Every recipe's fold networks (the default's reused from its cache) on the 6
glacier-wise and the 6 region-wise folds are scored raw (no calibration; shipped physics), and each variant's paired
mean log ratio over the 23 grid glaciers against the default of the same split decides, by the rule of its protocol
(written first), whether it is worth a nested candidate; nothing ships from a diagnostic. ``--not-finetuned`` adds
the start of every fine-tuning (stage 1, fine-tuned for 0 steps) as a reference row: its maps are the same in both
splits, so it is scored once.

Runs so far (each writes ``benchmarks/results/<name>.{md,csv}``, ``<name>_glaciers.csv`` and ``<name>_run.json``; ~10
min per variant; ``--report-only`` rewrites the Markdown from those files without scoring; the first two runs' region
tables were added afterwards, by ``--report-only``):

    python benchmarks/recipe_diagnostic.py --name region_balanced \\
        --protocol selection_protocol_region_balanced_finetune.md \\
        --variant region-balanced=benchmarks/configs/measured_finetune_from_spanning_all_p128_region_balanced.yaml
    python benchmarks/recipe_diagnostic.py --name partial_finetune --protocol selection_protocol_partial_finetune.md \\
        --variant head=benchmarks/configs/measured_finetune_from_spanning_all_p128_head.yaml \\
        --variant last=benchmarks/configs/measured_finetune_from_spanning_all_p128_last.yaml --not-finetuned
    python benchmarks/recipe_diagnostic.py --name partial_finetune_head_lr \\
        --protocol selection_protocol_partial_finetune_head_lr.md --not-finetuned \\
        --variant head-lr1e-3=benchmarks/configs/measured_finetune_from_spanning_all_p128_head_lr1e-3.yaml
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_json, write_text
from glacierbed.core.config import config_to_dict
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import gap_text, ratio_gaps
from glacierbed.evaluation.measured_finetune import (default_recipe, raw_out_of_fold,
                                                    with_folds_by)
from glacierbed.evaluation.recipe_cli import DEFAULT_RECIPE, recipe_arguments
from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SPLITS = {"glacier-wise": "group", "leave one region out": "region"}
NOT_FINETUNED = "stage 1, not fine-tuned"


def rule(gaps: dict[str, dict], table: pd.DataFrame, variant: str) -> tuple[bool, list[str]]:
    """The protocols' rule for ``variant``: leave one region out its mean log gap to the default resolved below 0,
    glacier-wise not resolved above 0, South Glacier and the Ötztal means (raw, glacier-wise) at most 2 % worse.
    (met, report lines)"""
    loro, gw = gaps["leave one region out"], gaps["glacier-wise"]
    t = table.set_index(["recipe", "split"])
    new, old = t.loc[(variant, "glacier-wise")], t.loc[("default", "glacier-wise")]
    checks = {
        "leave one region out: mean log gap resolved below 0": loro["mean_log_gap_resolved"] and loro["mean_log_gap"] < 0,
        "glacier-wise: mean log gap not resolved above 0": not (gw["mean_log_gap_resolved"] and gw["mean_log_gap"] > 0),
        "South Glacier (raw, glacier-wise) at most 2 % worse":
            new["south_glacier_rmse_m"] <= 1.02 * old["south_glacier_rmse_m"],
        "Ötztal means (raw, glacier-wise) at most 2 % worse":
            new["oetztal_means_rmse_m"] <= 1.02 * old["oetztal_means_rmse_m"]}
    lines = [f"- {variant}: {what}: {'yes' if ok else '**no**'}" for what, ok in checks.items()]
    return all(checks.values()), lines


def changed_settings(variant: MeasuredFinetuneConfig, default: MeasuredFinetuneConfig) -> str:
    """``balance: region`` and the like: the settings in which ``variant`` differs from the default's recipe."""
    new, old = config_to_dict(variant), config_to_dict(default)
    return ", ".join(f"`{k}: {v}`" for k, v in new.items() if old.get(k) != v) or "nothing"


def score(ms, recipes: dict[str, tuple[MeasuredFinetuneConfig, Path]], split: str, by: str
          ) -> tuple[list[dict], list[pd.DataFrame]]:
    """Raw out-of-fold scores of ``recipes`` ({name: (config, run folder)}) in one split (``by``: its fold key):
    table rows and per-glacier tables (the report's gaps and regions are computed from the latter)."""
    rows, per = [], []
    for recipe, (cfg, run_dir) in recipes.items():
        pg, figures = raw_out_of_fold(ms, with_folds_by(cfg, ms, by), run_dir, by)
        per.append(pg.assign(recipe=recipe, split=split))
        rows.append({"recipe": recipe, "split": split, **figures})
    return rows, per


def _own_options(ap: argparse.ArgumentParser) -> None:
    """The script's own options (beside the recipe's and ``--out``)."""
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=CONFIG",
                    help="a variant recipe (repeatable); its fold networks go to <variant-run-dir>/<NAME>/<split>")
    ap.add_argument("--not-finetuned", action="store_true", help=f"add the reference row '{NOT_FINETUNED}'")
    ap.add_argument("--variant-run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-finetune-variants")
    ap.add_argument("--name", required=True, help="results file stem")
    ap.add_argument("--protocol", required=True, help="the protocol's file name in benchmarks/results")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite <name>.md from the CSVs of an earlier run (no scoring)")


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE.parent / DEFAULT_RECIPE,
                            RESULTS, options=_own_options)
    cfg = MeasuredFinetuneConfig.from_yaml(args.config)
    variants = {name: MeasuredFinetuneConfig.from_yaml(path) for name, path in
                (v.split("=", 1) for v in args.variant)}
    if not args.report_only:
        run_all(args, variants)
    table = pd.read_csv(args.out / f"{args.name}.csv")
    per = pd.read_csv(args.out / f"{args.name}_glaciers.csv", dtype={"rgi_id": str, "region": str})
    run = json.loads((args.out / f"{args.name}_run.json").read_text())
    lines = report(args, cfg, variants, table, per, run)
    write_text(args.out / f"{args.name}.md", "\n".join(lines))
    print("\n".join(lines))


def run_all(args, variants: dict[str, MeasuredFinetuneConfig]) -> None:
    """Score the default's recipe, the variants (and the not-fine-tuned start) and write ``<name>.csv``,
    ``<name>_glaciers.csv`` and ``<name>_run.json`` (date and minutes)."""
    t0 = time.perf_counter()
    cfg, ms = default_recipe(args)
    rows, per = [], []
    for split, by in SPLITS.items():
        recipes = {"default": (cfg, args.glacier_run_dir if by == "group" else args.region_run_dir),
                   **{name: (c, args.variant_run_dir / name / by) for name, c in variants.items()}}
        r, p = score(ms, recipes, split, by)
        rows, per = rows + r, per + p
    if args.not_finetuned:  # the same maps in both splits: scored glacier-wise, compared in both
        r, p = score(ms, {NOT_FINETUNED: (replace(cfg, steps=0), args.variant_run_dir / "not-finetuned")},
                     "both", "group")
        rows, per = rows + r, per + p
    write_table(pd.DataFrame(rows), args.out / f"{args.name}.csv")
    write_table(pd.concat(per, ignore_index=True), args.out / f"{args.name}_glaciers.csv")
    write_json(args.out / f"{args.name}_run.json", {"date": str(dt.date.today()),
                                                     "minutes": round((time.perf_counter() - t0) / 60)})


def paired_gaps(per: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """Every recipe but the default against the default of each split (:func:`ratio_gaps`); the not-fine-tuned
    start (split ``both``) against each."""
    ratios = {(r, s): g.set_index("rgi_id")["ratio_to_best_baseline"] for (r, s), g in per.groupby(["recipe", "split"])}
    return {(name, split): ratio_gaps(ratios[(name, split if (name, split) in ratios else "both")],
                                      ratios[("default", split)])
            for name in dict.fromkeys(per["recipe"]) if name != "default" for split in SPLITS}


def region_table(per: pd.DataFrame) -> pd.DataFrame:
    """Per recipe and split, each grid region's mean log ratio to the best baseline (log of the geometric mean over
    its glaciers; negative: better than the best baseline), and the glacier count per region."""
    logs = per.assign(log_ratio=np.log(per["ratio_to_best_baseline"]))
    table = logs.pivot_table(index=["recipe", "split"], columns="region", values="log_ratio", aggfunc="mean", sort=False)
    counts = per[(per["recipe"] == per["recipe"].iloc[0]) & (per["split"] == per["split"].iloc[0])]
    table.columns = [f"{c} (n={int((counts['region'] == c).sum())})" for c in table.columns]
    return table.reset_index()


def report(args, cfg: MeasuredFinetuneConfig, variants: dict[str, MeasuredFinetuneConfig], table: pd.DataFrame,
           per: pd.DataFrame, run: dict) -> list[str]:
    """The Markdown report: the table, each recipe's paired gaps to the default, region by region, the rule per
    variant."""
    gaps = paired_gaps(per)
    lines = [
        f"# Measured fine-tuning variants, raw, against the default's recipe ({args.name})",
        "",
        f"Run {run['date']}, {run['minutes']} min on this machine. [Protocol]({args.protocol}), committed before "
        "any code or run: a raw diagnostic; nothing ships from it. The default's recipe and each variant on the 6 "
        "glacier-wise and the 6 leave-one-region-out folds, scored raw (no calibration; shipped physics, plastic "
        "margins). Grid ratio: per glacier RMSE / its best baseline (VA, GlabTop, OGGM), median and geometric mean over "
        f"the 23 grid glaciers. Per glacier: [{args.name}_glaciers.csv]({args.name}_glaciers.csv). Variants (the "
        "default's recipe with): " + "; ".join(f"**{n}** {changed_settings(c, cfg)}" for n, c in variants.items())
        + (f". `{NOT_FINETUNED}`: the start of every fine-tuning, scored once (the same maps in both splits)"
           if args.not_finetuned else "") + ".",
        "",
        to_markdown(table.round(3)),
        "",
        *[f"- {name}, {split}: paired mean log gap ({name} − default) {gap_text(g, 'mean_log', ', 90 %')}, median gap "
          f"{gap_text(g, 'median')}" for (name, split), g in gaps.items()],
        "",
        "## Region by region",
        "",
        "Per RGI region of the grid glaciers, the mean log ratio to the best baseline (the log of the geometric mean "
        "over its glaciers; negative: better than the best baseline; a difference of 0.1 between two rows is a "
        "typical glacier 10 % apart). Leave one region out, a region's glaciers are scored by networks fine-tuned "
        "without any glacier of that region.",
        "",
        to_markdown(region_table(per).round(3)),
        "",
        "## Rule",
        ""]
    passed = []
    for name in variants:
        met, rule_lines = rule({split: gaps[(name, split)] for split in SPLITS}, table, name)
        lines += rule_lines
        passed += [name] if met else []
    best = min(passed, key=lambda n: gaps[(n, "leave one region out")]["mean_log_gap"]) if passed else None
    lines += ["", f"**{best} is worth declaring as a nested candidate (both splits).**" if best else
              "**No variant is worth a nested candidate: nothing follows.**", ""]
    return lines


if __name__ == "__main__":
    run_script(main)
