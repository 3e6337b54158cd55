"""The glacier-level (volume) interval: the shipped design against one candidate for its glacier level.

Candidates (each with its protocol, written before scoring): ``all`` (V1, the glacier level fitted on every measured
glacier instead of the Ötztal means: ``benchmarks/results/selection_protocol_glacier_intervals.md``) and ``gauss``
(V2, its 90 % multiplier fixed at the normal 1.645 instead of fitted: ``selection_protocol_glacier_interval_tail.md``).
Both calibration variants are fitted on the same inner out-of-fold maps of the default's recipe and
scored nested (network and calibration both fitted without the glaciers scored), glacier-wise and
region-wise, on the cached fold networks of ``benchmarks/measured_finetune.py``'s runs (made here if
absent: about an hour each on 2 cores). Scored: the glacier-level coverage
(:func:`~glacierbed.evaluation.cross_validation.glacier_level_coverage`: the error of each glacier's mean
thickness over its measured cells, or of its glacier mean, against its glacier-level 1-sigma and 90 %
multiplier), the pixel coverage per case, the Hintereisferner volume interval.

Run: ``python benchmarks/glacier_intervals.py [--candidate all|gauss]`` writes ``glacier_intervals.{md,csv}`` and
``glacier_intervals_units.csv`` (one row per glacier unit) into ``--out`` (default ``benchmarks/results``); also the
shipped pixel intervals' coverage glacier by glacier (median, 10th percentile, worst). The decision needs both splits.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import (coverage_spread, glacier_level_coverage, glacier_level_summary,
                                                    per_glacier_coverage, score)
from glacierbed.evaluation.measured_finetune import nested_by_split
from glacierbed.evaluation.recipe_cli import DEFAULT_RECIPE, recipe_arguments
from glacierbed.posterior.calibration import MEAN_UNIT, SHIPPED_VARIANT

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the candidates for the glacier level: name -> (its label, the design it is scored against, its variant, its
#: protocol, what it changes); the shipped design is each one's reference after it was installed (V2 since stop 45)
CANDIDATES = {
    "all": ("V1", SHIPPED_VARIANT, SHIPPED_VARIANT + ":all", "selection_protocol_glacier_intervals.md",
            "fitted on every measured glacier or on the Ötztal means"),
    "gauss": ("V2", "residual+scale+interval~parametric", "residual+scale+interval~parametric^gauss",
              "selection_protocol_glacier_interval_tail.md", "its 90 % multiplier fixed at the normal 1.645 or fitted"),
}
NOMINAL = {"coverage68": 0.68, "coverage90": 0.90}


def rows_of(cv, variant: str, split: str) -> tuple[list[dict], pd.DataFrame]:
    """Coverage rows (glacier level per case and over all glaciers; pixels per case) and the glacier units."""
    units = glacier_level_coverage(cv)
    pixel_cases = score(cv).set_index("case")
    out = []
    for rec in glacier_level_summary(units).to_dict("records"):
        out.append({"variant": variant, "split": split, "level": "glacier", **rec})
    for case, r in pixel_cases.iterrows():
        if case == "hintereisferner":
            out.append({"variant": variant, "split": split, "level": "volume", "case": case, "n_glaciers": 1,
                        "coverage68": r["coverage68"], "coverage90": r["coverage90"],
                        "volume_km3": r["volume_km3"], "volume_std_km3": r["volume_std_km3"]})
        elif case != "oetztal-means":  # its rows are glacier means: scored at glacier level above
            out.append({"variant": variant, "split": split, "level": "pixel", "case": case,
                        "coverage68": r["coverage68"], "coverage90": r["coverage90"]})
    return out, units.assign(variant=variant, split=split)


def worst_gap(table: pd.DataFrame, variant: str, case: str = "all glaciers") -> float:
    """The protocol's metric: worst |coverage - nominal| over 68 / 90 % of the glacier-level coverage of ``variant``
    on ``case`` (all glaciers; ``benchmarks/unmeasured_region_volume_interval.py`` also asks the grids')."""
    t = table[(table["variant"] == variant) & (table["level"] == "glacier") & (table["case"] == case)]
    return float(max((t[c] - n).abs().max() for c, n in NOMINAL.items()))


def score_splits(args, variants: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Coverage rows, glacier units and the shipped pixel intervals' spread over glaciers, for each split scored;
    refuses variants whose pixel sigmas differ (only the glacier level may)."""
    rows, units, spread = [], [], []
    for split, cvs in nested_by_split(args, list(variants.values()), progress=lambda m: print(m, flush=True)).items():
        pixels = {}
        for name, variant in variants.items():
            r, u = rows_of(cvs[variant], name, split)
            rows += r
            units.append(u)
            pixels[name] = cvs[variant].rows["sigma_cal"].to_numpy(float)
        # the shipped pixel intervals glacier by glacier (the same for the candidate): median, 10th percentile, worst
        spread.append({"split": split, **coverage_spread(per_glacier_coverage(cvs[variants["V0"]]))})
        cells = (cvs[variants["V0"]].rows["unit"] != MEAN_UNIT).to_numpy()
        for name in set(variants) - {"V0"}:
            if not np.allclose(pixels["V0"][cells], pixels[name][cells], equal_nan=True):
                raise SystemExit(f"{split}: {name}'s pixel sigmas differ from V0's: only the glacier level should")
    return pd.DataFrame(rows), pd.concat(units, ignore_index=True), pd.DataFrame(spread)


def decision(table: pd.DataFrame, candidate: str) -> list[str]:
    """The protocols' rule: the candidate's worst glacier-level gap smaller than V0's and, glacier-wise, its Ötztal
    means within ±10 points of both levels; both splits needed."""
    splits = set(table["split"])
    if splits != {"glacier-wise", "region-wise"}:
        return [f"- Not decided: the rule needs both splits (scored: {', '.join(sorted(splits))})."]
    gaps = {name: worst_gap(table, name) for name in ("V0", candidate)}
    glacier_wise = table[(table["split"] == "glacier-wise") & (table["level"] == "glacier")
                         & (table["case"] == "oetztal-means")].set_index("variant")
    oetztal_ok = {name: bool(all(abs(glacier_wise.loc[name, c] - n) <= 0.10 for c, n in NOMINAL.items()))
                  for name in gaps}
    ships = gaps[candidate] < gaps["V0"] and oetztal_ok[candidate]
    return [f"- Worst |glacier-level coverage − nominal| over 68/90 % and both splits: V0 {gaps['V0']:.3f}, "
            f"{candidate} {gaps[candidate]:.3f}; glacier-wise Ötztal means within ±10 points: V0 {oetztal_ok['V0']}, "
            f"{candidate} {oetztal_ok[candidate]}.",
            "- " + (f"**{candidate} replaces V0** in the shipped calibration." if ships else
                    f"{candidate} does not pass the rule: the shipped calibration is unchanged.")]


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE.parent / DEFAULT_RECIPE,
                            RESULTS, verbose=False, options=lambda ap: ap.add_argument(
                                "--candidate", choices=sorted(CANDIDATES), default="all",
                                help="the glacier level scored against the shipped design (each has its protocol)"))
    label, reference, variant, protocol, change = CANDIDATES[args.candidate]
    variants = {"V0": reference, label: variant}
    t0 = time.perf_counter()
    table, units_df, spread = score_splits(args, variants)
    seconds = time.perf_counter() - t0
    out: Path = args.out
    write_table(table, out / "glacier_intervals.csv")
    write_table(units_df, out / "glacier_intervals_units.csv")
    # the price of a wider interval: the units' glacier-level 1-sigma and 90 % half-width over their measured mean
    width = (units_df.assign(relative_sigma=units_df["sigma_m"] / units_df["obs_mean_m"],
                             relative_half90=units_df["sigma_m"] * units_df["z90"] / units_df["obs_mean_m"])
             .groupby(["variant", "split"]).agg(median_sigma_m=("sigma_m", "median"),
                                                 median_relative_sigma=("relative_sigma", "median"),
                                                 median_relative_half90=("relative_half90", "median")).reset_index())
    link = os.path.relpath(RESULTS / protocol, out)
    lines = [
        f"# The glacier-level (volume) interval: {change}", "",
        f"Run {dt.date.today()}, {seconds / 60:.0f} min. Protocol (written before scoring): [{protocol}]({link}); "
        f"2 variants, 1 new. V0 `{reference}` (the reference), {label} `{variant}`. Nested: the default's recipe, "
        "network and calibration fitted without the glaciers scored (glacier-wise 6 × 5 folds; region-wise 6 × 5). "
        "`glacier`: each glacier unit's mean-thickness error (over its measured cells, or its glacier mean) "
        "against its glacier-level 1-sigma and 90 % multiplier, each glacier once; `pixel`: per measured cell or "
        f"point (identical for V0 and {label}, checked); `volume`: Hintereisferner against the consensus.",
        "", to_markdown(table), "",
        "The price of a wider interval: median glacier-level 1-sigma of the units (m, and over their measured mean) "
        "and the median 90 % half-width over the measured mean:", "",
        to_markdown(width), "",
        "The shipped pixel intervals glacier by glacier (South Glacier's radar and each grid; share of a glacier's "
        "measurements inside its 68 % / 90 % interval; median, 10th percentile and worst over glaciers):", "",
        to_markdown(spread), "",
        "## Decision (the protocol's rule)", "", *decision(table, label), ""]
    write_text(out / "glacier_intervals.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
