"""The volume interval of glaciers in regions without measurements: the glacier level fitted on every glacier unit

Protocol (written before any code or run): ``benchmarks/results/selection_protocol_unmeasured_region_volume_interval.md``
(candidate 36). Both arms are scored nested leave one region out with the shipped design (the default's 6 region-wise
fold networks; each outer fold's calibration fitted on inner glacier-wise out-of-fold maps of the other regions, as
``benchmarks/unseen_region_calibration.py``'s arm A): ``A`` the shipped variant (glacier level fitted on the Ötztal
means), ``B`` the glacier level fitted on every glacier unit (``interval:all``), which glaciers whose RGI region has no
measured glacier (``measured_region`` False) would get. Pixel intervals must be identical (checked). The rule:
:func:`decision`.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/unmeasured_region_volume_interval.py`` (about 2 min once the
networks are cached; about 50 min on 2 cores when not). Writes
``benchmarks/results/unmeasured_region_volume_interval.{md,csv}`` and ``_units.csv`` (one row per glacier unit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import load_script, to_markdown, write_table
from glacierbed.evaluation.measured_finetune import nested_by_split
from glacierbed.evaluation.recipe_cli import DEFAULT_RECIPE, recipe_arguments
from glacierbed.posterior.calibration import MEAN_UNIT

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NAME = "unmeasured_region_volume_interval"
ARMS = {"A": "residual+scale+interval", "B": "residual+scale+interval:all"}
#: the rule's margin: one glacier of 41, in coverage
MARGIN = 0.025


def decision(table: pd.DataFrame) -> tuple[bool, list[str]]:
    """The protocol's rule: B's worst gap over all glaciers at least :data:`MARGIN` below A's, and the grid
    glaciers' worst gap not larger. (met, report lines)"""
    worst_gap = load_script(HERE / "glacier_intervals.py").worst_gap
    gap = {arm: {case: worst_gap(table, arm, case) for case in ("all glaciers", "glathida-grids")} for arm in ARMS}
    met = (gap["B"]["all glaciers"] <= gap["A"]["all glaciers"] - MARGIN
           and gap["B"]["glathida-grids"] <= gap["A"]["glathida-grids"])
    lines = [f"- worst |glacier-level coverage − nominal| over 68 / 90 %, all glaciers: A {gap['A']['all glaciers']:.3f}, "
             f"B {gap['B']['all glaciers']:.3f} (B must be ≤ A − {MARGIN}); grid glaciers: A "
             f"{gap['A']['glathida-grids']:.3f}, B {gap['B']['glathida-grids']:.3f} (B must be ≤ A)",
             "- **" + ("met: candidate 36 ships (glaciers with `measured_region` False get B's glacier level)" if met
                       else "not met: nothing ships") + "**"]
    return met, lines


def run_arms(args) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coverage rows (:func:`glacier_intervals.rows_of`) and glacier units of both arms; stops if their pixel
    sigmas differ (only the glacier level may)."""
    rows_of = load_script(HERE / "glacier_intervals.py").rows_of
    nested = argparse.Namespace(**{**vars(args), "splits": ["region-wise"], "inner_by": "group"})
    cvs = nested_by_split(nested, list(ARMS.values()), logging.getLogger(NAME).info)["region-wise"]
    rows, units, sigma = [], [], {}
    for arm, variant in ARMS.items():
        r, u = rows_of(cvs[variant], arm, "region-wise")
        rows += r
        units.append(u)
        cells = (cvs[variant].rows["unit"] != MEAN_UNIT).to_numpy()
        sigma[arm] = cvs[variant].rows["sigma_cal"].to_numpy(float)[cells]
    if not np.allclose(sigma["A"], sigma["B"], equal_nan=True):
        raise SystemExit("the arms' pixel sigmas differ: only the glacier level should")
    return pd.DataFrame(rows), pd.concat(units, ignore_index=True)


def price(units: pd.DataFrame) -> pd.DataFrame:
    """Median glacier-level 1-sigma of the units (m and relative to their measured mean), per arm and case."""
    u = units.assign(relative_sigma=units["sigma_m"] / units["obs_mean_m"])
    return (u.groupby(["variant", "case"]).agg(n_units=("sigma_m", "size"), median_sigma_m=("sigma_m", "median"),
                                               median_relative_sigma=("relative_sigma", "median")).reset_index())


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE.parent / DEFAULT_RECIPE,
                            RESULTS)
    t0 = time.perf_counter()
    table, units = run_arms(args)
    met, lines = decision(table)
    write_table(table, args.out / f"{NAME}.csv")
    write_table(units, args.out / f"{NAME}_units.csv")
    text = [f"# {__doc__.splitlines()[0]}", "",
            f"Run {dt.date.today()}, {(time.perf_counter() - t0) / 60:.0f} min on this machine (2 cores). Protocol, "
            "written first: [selection_protocol_unmeasured_region_volume_interval.md]"
            "(selection_protocol_unmeasured_region_volume_interval.md) (candidate 36). Nested leave one region out, "
            "the shipped design (inner glacier-wise folds). A: `" + ARMS["A"] + "` (as shipped); B: `" + ARMS["B"]
            + "` (the glacier level fitted on every glacier unit). `glacier`: each glacier unit's mean-thickness "
            "error (over its measured cells, or its glacier mean) against its glacier-level 1-sigma and 90 % "
            "multiplier, each glacier once; `pixel`: per measured cell or point (identical in both arms, checked); "
            "`volume`: Hintereisferner against the consensus.", "",
            to_markdown(table), "",
            "The price: median glacier-level 1-sigma of the units (m, and over their measured mean):", "",
            to_markdown(price(units)), "",
            "## Decision (the protocol's rule)", "", *lines, ""]
    write_text(args.out / f"{NAME}.md", "\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    run_script(main)
