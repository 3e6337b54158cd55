"""The glacier-level (volume) interval fitted on every measured glacier vs on the Ötztal means only.

Protocol (written before scoring): ``benchmarks/results/selection_protocol_glacier_intervals.md``.
Both calibration variants are fitted on the same inner out-of-fold maps of the default's recipe and
scored nested (network and calibration both fitted without the glaciers scored), glacier-wise and
region-wise, on the cached fold networks of ``benchmarks/measured_finetune.py``'s runs (made here if
absent: about an hour each on 2 cores). Scored: the glacier-level coverage
(:func:`~glacierbed.evaluation.cross_validation.glacier_level_coverage`: the error of each glacier's mean
thickness over its measured cells, or of its glacier mean, against its glacier-level 1-sigma and 90 %
multiplier), the pixel coverage per case, the Hintereisferner volume interval.

Run: ``python benchmarks/glacier_intervals.py`` writes ``benchmarks/results/glacier_intervals.{md,csv}`` and
``glacier_intervals_units.csv`` (one row per glacier unit); also the shipped pixel intervals' coverage glacier by
glacier (median, 10th percentile, worst).
"""

from __future__ import annotations

import datetime as dt
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
from glacierbed.evaluation.recipe_cli import recipe_arguments
from glacierbed.posterior.calibration import MEAN_UNIT, SHIPPED_VARIANT

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VARIANTS = {"V0": SHIPPED_VARIANT, "V1": SHIPPED_VARIANT + ":all"}  #: the shipped design, and its glacier level on all
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


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE / "configs" / "measured_finetune_from_spanning_all_p128.yaml",
                            RESULTS, verbose=False)
    t0 = time.perf_counter()
    rows, units, spread = [], [], []
    for split, cvs in nested_by_split(args, list(VARIANTS.values()), progress=lambda m: print(m, flush=True)).items():
        pixels = {}
        for name, variant in VARIANTS.items():
            r, u = rows_of(cvs[variant], name, split)
            rows += r
            units.append(u)
            pixels[name] = cvs[variant].rows["sigma_cal"].to_numpy(float)
        # the shipped pixel intervals glacier by glacier (the same for V1): median, 10th percentile, worst
        spread.append({"split": split, **coverage_spread(per_glacier_coverage(cvs[VARIANTS["V0"]]))})
        cells = (cvs[VARIANTS["V0"]].rows["unit"] != MEAN_UNIT).to_numpy()
        if not np.allclose(pixels["V0"][cells], pixels["V1"][cells], equal_nan=True):
            raise SystemExit(f"{split}: the variants' pixel sigmas differ: only the glacier level should")
    table = pd.DataFrame(rows)
    units_df = pd.concat(units, ignore_index=True)
    gaps = {name: worst_gap(table, name) for name in VARIANTS}
    glacier_wise = table[(table["split"] == "glacier-wise") & (table["level"] == "glacier")
                         & (table["case"] == "oetztal-means")].set_index("variant")
    oetztal_ok = {name: bool(all(abs(glacier_wise.loc[name, c] - n) <= 0.10 for c, n in NOMINAL.items()))
                  for name in VARIANTS}
    ships = gaps["V1"] < gaps["V0"] and oetztal_ok["V1"]
    seconds = time.perf_counter() - t0
    out: Path = args.out
    write_table(table, out / "glacier_intervals.csv")
    write_table(units_df, out / "glacier_intervals_units.csv")
    # the price of a wider interval: the units' glacier-level 1-sigma relative to their measured mean
    width = (units_df.assign(relative_sigma=units_df["sigma_m"] / units_df["obs_mean_m"])
             .groupby(["variant", "split"]).agg(median_sigma_m=("sigma_m", "median"),
                                                 median_relative_sigma=("relative_sigma", "median")).reset_index())
    lines = [
        "# The glacier-level (volume) interval: fitted on every measured glacier or on the Ötztal means",
        "",
        f"Run {dt.date.today()}, {seconds / 60:.0f} min. Protocol (written before scoring): "
        "[selection_protocol_glacier_intervals.md](selection_protocol_glacier_intervals.md); 2 variants, 1 new. "
        f"V0 `{VARIANTS['V0']}` (today's), V1 `{VARIANTS['V1']}`. Nested: the default's recipe, network and "
        "calibration fitted without the glaciers scored (glacier-wise 6 × 5 folds; region-wise 6 × 5). "
        "`glacier`: each glacier unit's mean-thickness error (over its measured cells, or its glacier mean) "
        "against its glacier-level 1-sigma and 90 % multiplier, each glacier once; `pixel`: per measured cell or "
        "point (identical for V0 and V1, checked); `volume`: Hintereisferner against the consensus.",
        "",
        to_markdown(table), "",
        "The price of a wider interval: median glacier-level 1-sigma of the units (m, and over their measured mean):", "",
        to_markdown(width), "",
        "The shipped pixel intervals glacier by glacier (South Glacier's radar and each grid; share of a glacier's "
        "measurements inside its 68 % / 90 % interval; median, 10th percentile and worst over glaciers):", "",
        to_markdown(pd.DataFrame(spread)), "",
        "## Decision (the protocol's rule)", "",
        f"- Worst |glacier-level coverage − nominal| over 68/90 % and both splits: V0 {gaps['V0']:.3f}, "
        f"V1 {gaps['V1']:.3f}; glacier-wise Ötztal means within ±10 points: V0 {oetztal_ok['V0']}, "
        f"V1 {oetztal_ok['V1']}.",
        "- " + ("**V1 replaces V0** in the shipped calibration." if ships else
                "V1 does not pass the rule: the shipped calibration is unchanged."), ""]
    write_text(out / "glacier_intervals.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
