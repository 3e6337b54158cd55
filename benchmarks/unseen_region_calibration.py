"""Leave one region out: the shipped calibration design against one fitted on region-wise out-of-fold maps

Protocol (written before any code or run): ``benchmarks/results/selection_protocol_unseen_region_calibration.md``
(candidate 35). Both arms score the default's recipe nested on its 6 region-wise fold networks (a glacier is predicted
only by a network fine-tuned without its RGI region) with the shipped calibration variant fitted, as the shipped one
is, on inner out-of-fold maps of the other regions (residual and scale steps on zero-margin maps, the interval on
plastic-margin ones):

- ``A``, as shipped: inner **glacier-wise** folds (5), the design of the shipped calibration, which a glacier of an
  RGI region without measured glaciers (``measured_region`` False) gets today;
- ``C``, candidate 35: inner **region-wise** folds (5), a calibration for glaciers of unmeasured regions.

The protocol's rule decides (interval coverage, with no loss of thickness); both arms are reported either way.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/unseen_region_calibration.py`` (the region-wise fold networks
and arm A's 30 inner networks are made when absent: about 50 min on 2 cores; 1.5 min once cached; arm C's rows are
read from the committed 2026-12-06 run of the same networks, as the protocol's amendment says, unless
``--recompute-candidate``: about as long again; ``--report-only`` rewrites the Markdown from the CSVs). Writes
``benchmarks/results/unseen_region_calibration.{md,csv}``, ``_cases.csv`` (per case and arm: RMSE, bias, coverage),
``_glaciers.csv`` (per grid glacier), ``_volume.csv`` (glacier-level, i.e. volume, interval coverage) and
``_spread.csv`` (pixel coverage glacier by glacier: median, 10th percentile, worst).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_json, write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import load_script, to_markdown, write_table
from glacierbed.evaluation.cross_validation import (acceptance_summary, coverage_spread, gap_text,
                                                    glacier_level_coverage, glacier_level_summary,
                                                    glathida_per_glacier, per_glacier_coverage, ratio_gaps, score)
from glacierbed.evaluation.measured_finetune import nested_by_split
from glacierbed.evaluation.recipe_cli import DEFAULT_RECIPE, default_results_name, recipe_arguments
from glacierbed.posterior.calibration import BOOSTED_DESIGN

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NAME = "unseen_region_calibration"
SHIP = BOOSTED_DESIGN  #: the shipped design when this decision was taken (its committed results)
#: arm: the inner folds' key
ARMS = {"A: as shipped (inner glacier-wise)": "group", "C: candidate 35 (inner region-wise)": "region"}
REFERENCE, CANDIDATE = ARMS
#: the committed run of arm C (2026-12-06, the same outer networks and calibration fitting; the protocol's amendment)
COMMITTED_CANDIDATE = default_results_name(SHIP, by="region")


def nested_arms(args, arms: dict[str, str]) -> dict[str, object]:
    """The nested leave-one-region-out CrossValidation of each of ``arms`` (:func:`nested_by_split`'s region-wise
    split with the arm's inner folds)."""
    return {arm: nested_by_split(argparse.Namespace(**{**vars(args), "splits": ["region-wise"], "inner_by": inner}),
                                 [SHIP], logging.getLogger(NAME).info)["region-wise"][SHIP]
            for arm, inner in arms.items()}


def committed_candidate(results: Path = RESULTS) -> dict[str, pd.DataFrame]:
    """Arm C's tables from the nested rows of :data:`COMMITTED_CANDIDATE`'s results, in :func:`tables`' layout
    (no glacier-level coverage: that run did not write it)."""
    from glacierbed.core.metrics import geometric_mean
    from glacierbed.evaluation.measured_finetune import nested_variant_rows

    def nested(suffix: str) -> pd.DataFrame:
        table = pd.read_csv(results / f"{COMMITTED_CANDIDATE}{suffix}.csv", dtype={"rgi_id": str, "region": str})
        return nested_variant_rows(table).drop(columns=["variant", "split"], errors="ignore").assign(arm=CANDIDATE)

    cases, glaciers = nested("_cases"), nested("_glaciers")
    deviations = load_script(HERE / "measured_finetune.py").scored_deviations(cases)
    summary = nested("").assign(grids_geomean_ratio=geometric_mean(glaciers["ratio_to_best_baseline"]),
                                worst_coverage_deviation=deviations.max(),
                                mean_coverage_deviation=deviations.mean())
    return {"": summary, "_cases": cases, "_glaciers": glaciers, "_volume": pd.DataFrame(columns=["arm"]),
            "_spread": pd.DataFrame(columns=["arm"])}


def tables(arms: dict) -> dict[str, pd.DataFrame]:
    """The run's tables: acceptance figures, per case, per grid glacier and glacier-level coverage, per arm."""
    bench = load_script(HERE / "measured_finetune.py")
    summary, cases, glaciers, volume, spread = [], [], [], [], []
    for arm, cv in arms.items():
        scored = score(cv)
        deviations = bench.scored_deviations(scored)
        summary.append({"arm": arm, **acceptance_summary(cv), "worst_coverage_deviation": deviations.max(),
                        "mean_coverage_deviation": deviations.mean()})
        cases.append(scored.assign(arm=arm))
        glaciers.append(glathida_per_glacier(cv).assign(arm=arm))
        volume.append(glacier_level_summary(glacier_level_coverage(cv)).assign(arm=arm))
        spread.append({"arm": arm, **coverage_spread(per_glacier_coverage(cv))})
    return {"": pd.DataFrame(summary), "_cases": pd.concat(cases, ignore_index=True),
            "_glaciers": pd.concat(glaciers, ignore_index=True), "_volume": pd.concat(volume, ignore_index=True),
            "_spread": pd.DataFrame(spread)}


def decision(results: dict[str, pd.DataFrame]) -> tuple[bool, list[str]]:
    """The protocol's rule: C's coverage deviations against A's (candidate 29's rule), and no loss of thickness
    (grids' paired mean log gap not resolved above 0; South Glacier and Ötztal RMSE at most 2 % above A's;
    Hintereisferner's |volume error| at most 2 points above A's). (met, report lines)"""
    bench = load_script(HERE / "measured_finetune.py")
    cases = results["_cases"]
    dev = {arm: bench.scored_deviations(cases[cases["arm"] == arm]) for arm in ARMS}
    per = results["_glaciers"].pivot_table(index="rgi_id", columns="arm", values="ratio_to_best_baseline")
    gaps = ratio_gaps(per[CANDIDATE], per[REFERENCE])
    s = results[""].set_index("arm")
    a, c = s.loc[REFERENCE], s.loc[CANDIDATE]
    failures = bench.coverage_rule_failures(dev[CANDIDATE], dev[REFERENCE])
    if gaps["mean_log_gap_resolved"] and gaps["mean_log_gap"] > 0:
        failures.append(f"grids mean log gap {gap_text(gaps, 'mean_log')} resolved above 0")
    for col, what in (("south_glacier_rmse_m", "South Glacier"), ("oetztal_means_rmse_m", "Ötztal means")):
        if not c[col] <= 1.02 * a[col]:
            failures.append(f"{what} {c[col]:.2f} m > 1.02 × {a[col]:.2f} m")
    if not abs(c["hef_volume_rel_error"]) <= abs(a["hef_volume_rel_error"]) + 0.02:
        failures.append(f"Hintereisferner {c['hef_volume_rel_error']:+.1%} vs {a['hef_volume_rel_error']:+.1%}")
    lines = [f"- coverage deviation (points), worst / mean: A {dev[REFERENCE].max():.1f} / {dev[REFERENCE].mean():.1f} "
             f"({dev[REFERENCE].idxmax()}), C {dev[CANDIDATE].max():.1f} / {dev[CANDIDATE].mean():.1f} "
             f"({dev[CANDIDATE].idxmax()})",
             f"- grids, paired mean log gap C − A: {gap_text(gaps, 'mean_log')}; median gap "
             f"{gap_text(gaps, 'median')}",
             "- **" + ("met: candidate 35 is to ship (a calibration for glaciers of unmeasured regions)" if not failures
                       else "not met: " + "; ".join(failures) + ". Nothing ships; the README's leave-one-region-out "
                            "row becomes arm A, the shipped design") + "**"]
    return not failures, lines


def previous_default_gaps(glaciers: pd.DataFrame, results: Path = RESULTS) -> list[str]:
    """Reported, not deciding: the previous default (stage 0, never fine-tuned on measurements; plastic margins, its
    calibration refitted leave one region out, the committed run's ``shipped, calibrated`` rows) against each arm,
    paired over the grid glaciers (the README's region-wise comparison of the two defaults)."""
    table = pd.read_csv(results / f"{COMMITTED_CANDIDATE}_glaciers.csv", dtype={"rgi_id": str})
    previous = table[table["variant"].str.startswith("shipped, calibrated")].set_index("rgi_id")
    out = []
    for arm in ARMS:
        of_arm = glaciers[glaciers["arm"] == arm].set_index("rgi_id")["ratio_to_best_baseline"]
        gaps = ratio_gaps(previous["ratio_to_best_baseline"], of_arm)
        out.append(f"- previous default − {arm}: mean log {gap_text(gaps, 'mean_log')}, median "
                   f"{gap_text(gaps, 'median')}")
    return out


def report(results: dict[str, pd.DataFrame], run: dict) -> list[str]:
    """The Markdown report."""
    _, lines = decision(results)
    cover = results["_cases"][["arm", "case", "n", "rmse", "bias", "coverage68", "coverage90"]]
    return [f"# {__doc__.splitlines()[0]}", "",
            f"Run {run['date']}, {run['minutes']:.0f} min on this machine (2 cores). Protocol, written first: "
            "[selection_protocol_unseen_region_calibration.md](selection_protocol_unseen_region_calibration.md). "
            "The default's recipe, nested leave one region out (6 region folds, the default physics: plastic "
            "margins). A: the calibration fitted on inner glacier-wise out-of-fold maps of the other regions (the "
            "shipped design, what a glacier of an unmeasured region gets); C: on inner region-wise ones "
            "(candidate 35)." + (f" {run['note']}" if run.get("note") else ""), "",
            "## Acceptance figures (leave one region out)", "", to_markdown(results[""]), "",
            "## Per case: RMSE (m), bias (m), pixel (grids glacier-balanced) and Ötztal-mean coverage", "",
            to_markdown(cover), "",
            "## Glacier-level (volume) interval coverage", "", to_markdown(results["_volume"]), "",
            "Arm C's, from the committed run it is read from, is in [glacier_intervals.md](glacier_intervals.md) "
            "(region-wise, `V0`).", "",
            "## Pixel coverage glacier by glacier (South Glacier's radar and the 23 grids; median, 10th percentile, "
            "worst)", "", to_markdown(results["_spread"]), "",
            "Arm C's: [glacier_intervals.md](glacier_intervals.md) (region-wise).", "",
            "## Decision (the protocol's rule)", "", *lines, "",
            "## The previous default against each arm (reported, not deciding)", "",
            "Stage 0, never fine-tuned on measurements, plastic margins, its calibration refitted leave one region out "
            f"(the `shipped, calibrated` rows of [{COMMITTED_CANDIDATE}.md]({COMMITTED_CANDIDATE}.md)); paired over "
            "the 23 grid glaciers, 90 % bootstrap; below 0: the previous default is better.", "",
            *previous_default_gaps(results["_glaciers"]), "",
            f"Per grid glacier: [{NAME}_glaciers.csv]({NAME}_glaciers.csv)."]


def _own_options(ap: argparse.ArgumentParser) -> None:
    """The script's own options (beside the recipe's and ``--out``)."""
    ap.add_argument("--report-only", action="store_true", help="rewrite the Markdown from an earlier run's CSVs")
    ap.add_argument("--recompute-candidate", action="store_true",
                    help="score arm C in this run too (another hour) instead of reading its committed 2026-12-06 rows")


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE.parent / DEFAULT_RECIPE,
                            RESULTS, options=_own_options)
    if not args.report_only:
        t0 = time.perf_counter()
        computed = ARMS if args.recompute_candidate else {REFERENCE: ARMS[REFERENCE]}
        made = tables(nested_arms(args, computed))
        read = {} if args.recompute_candidate else committed_candidate()
        for suffix, table in made.items():
            write_table(pd.concat([table, read[suffix]], ignore_index=True) if read else table,
                        args.out / f"{NAME}{suffix}.csv")
        write_json(args.out / f"{NAME}_run.json", {"date": dt.date.today().isoformat(),
                                                    "minutes": (time.perf_counter() - t0) / 60})
    results = {suffix: pd.read_csv(args.out / f"{NAME}{suffix}.csv", dtype={"rgi_id": str, "region": str})
               for suffix in ("", "_cases", "_glaciers", "_volume", "_spread")}
    lines = report(results, json.loads((args.out / f"{NAME}_run.json").read_text()))
    write_text(args.out / f"{NAME}.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
