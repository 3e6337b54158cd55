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

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.core.metrics import paired_median_difference
from glacierbed.evaluation.benchmark import to_markdown, write_table

RESULTS = Path(__file__).resolve().parent / "results"
#: the default's nested runs (plastic margins, candidate 29's calibration), glacier-wise and region-wise
DEFAULT = "measured_finetune_from_spanning_all_p128_physics_margin_plastic_fit_physics_margin_zero_interval_" \
          "physics_margin_plastic"
DEFAULT_LORO = DEFAULT.replace("_p128_", "_p128_loro_", 1)
NESTED = "(nested)"


def per_glacier_ratios(results: Path = RESULTS) -> pd.DataFrame:
    """Every measured fine-tuning run's per-glacier ratios: columns run, variant, rgi_id, ratio."""
    parts = []
    for path in sorted(results.glob("measured_finetune*_glaciers.csv")):
        table = pd.read_csv(path, dtype={"rgi_id": str})
        parts.append(table[["variant", "rgi_id", "ratio_to_best_baseline"]].rename(
            columns={"ratio_to_best_baseline": "ratio"}).assign(run=path.name.removesuffix("_glaciers.csv")))
    if not parts:
        raise SystemExit(f"{results}: no measured_finetune*_glaciers.csv; run benchmarks/measured_finetune.py first")
    return pd.concat(parts, ignore_index=True)


def _nested(ratios: pd.DataFrame, run: str) -> pd.Series:
    """The per-glacier ratios of ``run``'s nested row."""
    rows = ratios[(ratios["run"] == run) & ratios["variant"].str.endswith(NESTED)]
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
        values = group.set_index("rgi_id")["ratio"].dropna()
        median, low, high = paired_median_difference(values.to_numpy())
        joined = pd.concat([values, reference], axis=1, join="inner").dropna()
        gap, gap_low, gap_high = paired_median_difference(joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy())
        rows.append({"run": run, "split": "region-wise" if "_loro" in run else "glacier-wise", "variant": variant, "n_glaciers": len(values), "median": median, "low_90": low,
                     "high_90": high, "gap_to_default": gap, "gap_low_90": gap_low, "gap_high_90": gap_high,
                     "gap_resolved": bool(gap_low > 0 or gap_high < 0)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    table = noise_rows(per_glacier_ratios(args.results))
    write_table(table, args.out / "selection_noise.csv")
    calibrated = table[~table["variant"].str.endswith(", raw")]
    raw = table[table["variant"].str.endswith(", raw")]
    raw_resolved = raw[raw["gap_resolved"]]
    resolved = calibrated[calibrated["gap_resolved"]]
    widths = (table["high_90"] - table["low_90"]).describe()
    lines = ["# Selection noise: the grid figure's bootstrap intervals over 23 glaciers (evaluation only)", "",
             f"{len(table)} (run, variant) rows of {table['run'].nunique()} measured fine-tuning runs; each row's "
             "median of per-glacier RMSE / best baseline with its 90 % bootstrap interval (10,000 resamples of the "
             f"glaciers), and its paired gap to the default's nested row of the same split ([{DEFAULT}.md]({DEFAULT}.md), "
             f"region-wise [{DEFAULT_LORO}.md]({DEFAULT_LORO}.md)). "
             f"Median interval width {widths['50%']:.3f} (from {widths['min']:.3f} to {widths['max']:.3f}). Of the "
             f"{len(calibrated) - 2} other calibrated rows (uncalibrated `raw` rows left out here: "
             f"{len(raw_resolved)} of {len(raw)} resolved, {int((raw_resolved['gap_to_default'] > 0).sum())} of them "
             f"worse), {len(resolved)} differ from the default by more "
             "than the draw of glaciers (interval excludes 0)"
             + (": " + "; ".join(f"`{r.run}` / {r.variant} {r.gap_to_default:+.3f} ({r.gap_low_90:+.3f} to "
                                 f"{r.gap_high_90:+.3f})" for r in resolved.itertuples()) if len(resolved) else "")
             + ".", "",
             to_markdown(table.round(3)), ""]
    write_text(args.out / "selection_noise.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
