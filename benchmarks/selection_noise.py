"""How much of each candidate's grid figure is the draw of glaciers: bootstrap intervals over the 23 grid glaciers.

Selection is fitting too, and the kit's headline (median over the GlaThiDa grid glaciers of each glacier's RMSE / its
best baseline) rests on 23 glaciers. This reads the per-glacier tables that ``benchmarks/measured_finetune.py`` wrote
for every measured fine-tuning scored so far (``*_glaciers.csv``; the grid cells, baselines and glaciers are the same in
each, so rows pair by RGI id) and reports, per run and variant, the median with its 90 % bootstrap interval and the
paired gap to the default's nested glacier-wise row with its interval (glaciers resampled together). Evaluation only:
nothing is chosen from it.

Run: ``python benchmarks/selection_noise.py`` → ``benchmarks/results/selection_noise.{csv,md}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.core.metrics import paired_bootstrap_gap
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import gap_text, ratio_gaps
from glacierbed.evaluation.measured_finetune import NESTED_LABEL
from glacierbed.evaluation.recipe_cli import default_results_name
from glacierbed.posterior.calibration import BOOSTED_DESIGN

RESULTS = Path(__file__).resolve().parent / "results"
#: the default's nested runs (plastic margins, candidate 29's calibration), glacier-wise and region-wise
DEFAULT = default_results_name(BOOSTED_DESIGN)
DEFAULT_LORO = default_results_name(BOOSTED_DESIGN, by="region")


def per_glacier_ratios(results: Path = RESULTS) -> pd.DataFrame:
    """Every measured fine-tuning run's per-glacier ratios: columns run, variant, rgi_id, region, ratio."""
    parts = []
    for path in sorted(results.glob("measured_finetune*_glaciers.csv")):
        table = pd.read_csv(path, dtype={"rgi_id": str, "region": str})
        parts.append(table[["variant", "rgi_id", "region", "ratio_to_best_baseline"]].rename(
            columns={"ratio_to_best_baseline": "ratio"}).assign(run=path.name.removesuffix("_glaciers.csv")))
    if not parts:
        raise SystemExit(f"{results}: no measured_finetune*_glaciers.csv; run benchmarks/measured_finetune.py first")
    return pd.concat(parts, ignore_index=True)


def _nested(ratios: pd.DataFrame, run: str) -> pd.Series:
    """The per-glacier ratios of ``run``'s nested row."""
    rows = ratios[(ratios["run"] == run) & ratios["variant"].str.endswith(NESTED_LABEL)]
    if rows.empty:
        raise SystemExit(f"{run}_glaciers.csv: no nested row to compare with")
    return rows.set_index("rgi_id")["ratio"]


def noise_rows(ratios: pd.DataFrame, default_run: str = DEFAULT, default_loro_run: str = DEFAULT_LORO) -> pd.DataFrame:
    """Per (run, variant): n glaciers, median and its 90 % interval, paired gap to the default's nested row of the same
    split (region-wise runs, ``_loro``, against its region-wise row) and its interval (a gap whose interval holds 0 is
    not resolved by these glaciers)."""
    references = {False: _nested(ratios, default_run), True: _nested(ratios, default_loro_run)}
    rows = []
    for (run, variant), group in ratios.groupby(["run", "variant"], sort=False):
        reference = references["_loro" in run]
        rows.append({"run": run, "split": "region-wise" if "_loro" in run else "glacier-wise", "variant": variant,
                     "n_glaciers": int(group["ratio"].notna().sum()),
                     **ratio_gaps(group.set_index("rgi_id")["ratio"], reference)})
    # a reference row repeated by several runs (the same network, calibration and maps) is listed once
    table = pd.DataFrame(rows)
    same = ["split", "variant", "median", "mean_log", "median_gap", "mean_log_gap"]
    table["runs_with_this_row"] = table.groupby(same, dropna=False)["run"].transform("size")
    return table.drop_duplicates(subset=same).reset_index(drop=True)


#: the reference rows of the default's runs: the previous default (stage 0), calibrated on the same split's maps
PREVIOUS = "shipped, calibrated (residual+scale+interval)"


def region_gaps(ratios: pd.DataFrame, runs: dict[str, str] | None = None, other: str = PREVIOUS) -> pd.DataFrame:
    """Per split and grid region (and the Alps apart from the rest, ``not 11``): the mean log ratio gap of ``other``
    (a row of the default's run) to the default's nested row with its 90 % paired bootstrap interval, and the count
    of glaciers where ``other`` is better: where a gap between the two comes from."""
    runs = runs or {"glacier-wise": DEFAULT, "region-wise": DEFAULT_LORO}
    rows = []
    for split, run in runs.items():
        of_run = ratios[ratios["run"] == run]
        wide = of_run.pivot_table(index=["rgi_id", "region"], columns="variant", values="ratio")
        pair = wide[[other, [v for v in wide.columns if v.endswith(NESTED_LABEL)][0]]]
        regions = pair.index.get_level_values("region")
        for region, part in [("all", pair), ("not 11", pair[regions != "11"]), *pair.groupby(level="region")]:
            a, b = part.iloc[:, 0].to_numpy(), part.iloc[:, 1].to_numpy()
            gap, low, high = paired_bootstrap_gap(a, b, statistic="mean_log") if len(part) > 1 else (
                float(np.log(a / b).mean()), np.nan, np.nan)  # one glacier: no interval
            rows.append({"split": split, "region": region, "n_glaciers": len(part), "mean_log_gap": gap,
                         "low_90": low, "high_90": high,
                         "glaciers_better": int((part.iloc[:, 0] < part.iloc[:, 1]).sum())})
    return pd.DataFrame(rows)


def oetztal_gaps(run: str = DEFAULT, results: Path = RESULTS) -> pd.DataFrame:
    """Per variant of ``run`` (its ``_oetztal.csv``: the 19 Ötztal glacier means one by one): the RMSE with its 90 %
    bootstrap interval and the paired RMSE gap to the nested row (glaciers resampled together). Empty when the run
    predates that file."""
    path = results / f"{run}_oetztal.csv"
    if not path.is_file():
        return pd.DataFrame()
    table = pd.read_csv(path, dtype={"rgi_id": str})
    errors = table.assign(error=table["mu_cal"] - table["obs"]).pivot_table(index="rgi_id", columns="variant",
                                                                             values="error")
    nested = [v for v in errors.columns if v.endswith(NESTED_LABEL)][0]
    rows = []
    for variant in errors.columns:
        pair = errors[list(dict.fromkeys([variant, nested]))].dropna()  # the nested row once against itself
        rmse, low, high = paired_bootstrap_gap(pair[variant].to_numpy(), statistic="rms")
        gap, gap_low, gap_high = paired_bootstrap_gap(pair[variant].to_numpy(), pair[nested].to_numpy(),
                                                      statistic="rms")
        rows.append({"variant": variant, "n_glaciers": len(pair), "rmse_m": rmse, "low_90": low, "high_90": high,
                     "gap_to_default_m": gap, "gap_low_90": gap_low, "gap_high_90": gap_high})
    return pd.DataFrame(rows)


def resolved_summary(table: pd.DataFrame, statistic: str) -> str:
    """One sentence per statistic: the calibrated rows whose gap to the default is resolved, with their intervals
    (uncalibrated ``raw`` rows counted apart)."""
    raw = table["variant"].str.endswith(", raw")
    calibrated, uncalibrated = table[~raw], table[raw]
    resolved = calibrated[calibrated[f"{statistic}_gap_resolved"]]
    raw_resolved = uncalibrated[uncalibrated[f"{statistic}_gap_resolved"]]
    def named(r: pd.Series) -> str:
        more = "" if r["runs_with_this_row"] == 1 else f" (and {r['runs_with_this_row'] - 1} more)"
        return f"`{r['run']}`{more} / {r['variant']} {gap_text(r, statistic)}"

    listed = "; ".join(named(r) for _, r in resolved.iterrows())
    return (f"**{statistic}**: {len(resolved)} of the {len(calibrated) - 2} other distinct calibrated rows resolved "
            "from the "
            f"default (interval excludes 0){': ' + listed if listed else ''}; uncalibrated rows: {len(raw_resolved)} "
            f"of {len(uncalibrated)} resolved, {int((raw_resolved[f'{statistic}_gap'] > 0).sum())} of them worse.")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    ratios = per_glacier_ratios(args.results)
    table = noise_rows(ratios)
    write_table(table, args.out / "selection_noise.csv")
    widths = {s: (table[f"{s}_gap_high_90"] - table[f"{s}_gap_low_90"])[table[f"{s}_gap"] != 0].median()
              for s in ("median", "mean_log")}
    lines = ["# Selection noise: the grid figure's bootstrap intervals over 23 glaciers (evaluation only)", "",
             f"{len(table)} (run, variant) rows of {table['run'].nunique()} measured fine-tuning runs. Per row, two "
             "statistics of the per-glacier RMSE / best baseline with 90 % bootstrap intervals (10,000 resamples of "
             "the glaciers): the **median** (the headline) and the **mean log ratio** (log of the geometric mean; it "
             "uses every glacier, so it resolves smaller gaps: exp(gap) − 1 is the typical glacier's relative "
             "change); and each one's paired gap (glaciers resampled together) to the default's nested row of the "
             f"same split ([{DEFAULT}.md]({DEFAULT}.md), region-wise [{DEFAULT_LORO}.md]({DEFAULT_LORO}.md)); "
             "negative: better than the default. Median width of the gaps' intervals: "
             f"{widths['median']:.3f} (median), {widths['mean_log']:.3f} (mean log ratio).", "",
             f"- {resolved_summary(table, 'median')}", f"- {resolved_summary(table, 'mean_log')}", "",
             "## Where the previous default's gap comes from", "",
             "Per grid region, the mean log ratio gap of the previous default (stage 0, calibrated on the same "
             "split's plastic-margin maps) to the default (negative: the previous default better), and on how many "
             "glaciers it is better, with the gap's 90 % paired bootstrap interval (`not 11`: every region but the Alps). "
             "Region-wise, the Alps fold's networks were fine-tuned on the 12 glaciers of "
             "the other regions only (the shipped one on 41).", "",
             to_markdown(region_gaps(ratios).round(3)), "",
             "## The Ötztal means (the bar that separates the previous default from the default)", "",
             f"Per variant of [{DEFAULT}.md]({DEFAULT}.md): RMSE over the 19 Ötztal glacier means with its 90 % "
             "bootstrap interval, and the paired RMSE gap to the default (m).", "",
             to_markdown(oetztal_gaps(DEFAULT, args.results).round(2)), "",
             "## Every row", "", to_markdown(table.round(3)), ""]
    write_text(args.out / "selection_noise.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
