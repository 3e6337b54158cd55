"""Glacier-level calibration and learned consensus: the four variants of the selection protocol.

Real data kit (``GLACIERBED_DATA``). The measured table of the shipped network (raw,
physics on; :func:`glacierbed.evaluation.measured_table.collect`), one row per glacier
identity (:func:`glacierbed.evaluation.glacier_level_cv.glacier_table`), and the variants
S0–S3 of ``benchmarks/results/selection_protocol_glacier_level.md`` scored
leave-one-glacier-out (the ridge penalty nested inside) and leave-one-region-out, with the
raw network and the baselines on the same rows.

Run: ``python benchmarks/glacier_level.py [--run-dir DIR] [--with-alps-means] [--with-inpainter]``. Writes
``benchmarks/results/glacier_level.csv`` and ``glacier_level.md`` (``glacier_level_alps.*`` with the
GlaThiDa means of the Alps added to the table: ``selection_protocol_glacier_level_alps.md``;
``glacier_level_inpainter.*``: S0 against S4, the terrain-only inpainter as a fourth consensus member,
``selection_protocol_glacier_level_inpainter.md``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.glacier_level_cv import (INPAINTER_MEMBER, VARIANTS, cross_validated_factors, glacier_table,
                                                    score, with_member)
from glacierbed.evaluation.measured_table import collect
from glacierbed.posterior.glacier_level import MEMBER_FEATURES
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).resolve().parent / "results"
CASES = ("south-glacier", "glathida-grids", "oetztal-means")


def decide(df: pd.DataFrame) -> str:
    """The protocol's rule: the best LOGO grid ratio ships if it beats S0 and costs <= 5 % elsewhere."""
    logo = df[df["split"] == "LOGO"].set_index("variant")
    ref = logo.loc["S0 global factor"]
    best = logo["grids_median_ratio"].idxmin()
    row = logo.loc[best]
    ok = (best != "S0 global factor"
          and row["south_glacier_rmse"] <= 1.05 * ref["south_glacier_rmse"]
          and row["oetztal_means_rmse"] <= 1.05 * ref["oetztal_means_rmse"])
    if ok:
        return f"`{best}` wins ({row['grids_median_ratio']:.3f} vs S0 {ref['grids_median_ratio']:.3f}) and ships."
    return (f"No variant beats S0 under the rule (best LOGO grid ratio: `{best}` {row['grids_median_ratio']:.3f}; "
            f"S0 {ref['grids_median_ratio']:.3f}); the calibration keeps its global glacier-wise factor. "
            f"{len(logo)} variants tried.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-calibration")
    ap.add_argument("--with-alps-means", action="store_true",
                    help="add the GlaThiDa means of the Alps (opt-in case alps-means); writes glacier_level_alps.*")
    ap.add_argument("--with-inpainter", action="store_true",
                    help="S0 against S4 (S3's members + the terrain-only inpainter, selection_protocol_glacier_level_"
                         "inpainter.md); writes glacier_level_inpainter.*")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cases = CASES + ("alps-means",) if args.with_alps_means else CASES
    stem = "glacier_level_inpainter" if args.with_inpainter else (
        "glacier_level_alps" if args.with_alps_means else "glacier_level")
    ms = collect(args.run_dir, None, True, cases=cases)
    table = glacier_table(ms.rows, ms.pixels)
    variants = VARIANTS
    if args.with_inpainter:
        inpainter = collect(args.run_dir, "inpainting-network", True, cases=cases)
        table = with_member(table, ms.rows, inpainter.rows, INPAINTER_MEMBER)
        variants = {"S0 global factor": VARIANTS["S0 global factor"],
                    "S4 consensus members + inpainter": MEMBER_FEATURES + (INPAINTER_MEMBER,)}
    ones = pd.Series(1.0, index=table["group"].to_numpy())
    results = [{"variant": "raw network", "split": "-", **score(ms.rows, ones)}]
    for name, features in variants.items():
        for split, by in (("LOGO", "group"), ("LORO", "region")):
            factors = cross_validated_factors(table, features, by)
            results.append({"variant": name, "split": split, **score(ms.rows, factors)})
    df = pd.DataFrame(results)
    decision = decide(df)
    write_table(df, RESULTS / f"{stem}.csv", ".6g")
    write_table(table, RESULTS / f"{stem}_table.csv", ".6g")
    text = "\n".join([
        "# Glacier-level calibration and learned consensus (selection protocol "
        + ("S4: the terrain-only inpainter as a member ([protocol](selection_protocol_glacier_level_inpainter.md))"
           if args.with_inpainter else "S0–S3") + ")"
        + (" with the Alps glacier means ([protocol](selection_protocol_glacier_level_alps.md))"
           if args.with_alps_means else ""), "",
        f"Model `{ms.info['model']}` raw with physics; {len(table)} glacier identities. Each variant "
        "replaces the calibration's global glacier-wise factor; scores after that step alone (the "
        "shape residual and intervals unchanged). Grid ratio: median over the 23 grid glaciers of "
        "RMSE / that glacier's best baseline (VA, GlabTop, OGGM) on the same cells.", "",
        to_markdown(df, ".3g"), "", "## Decision (the protocol's rule)", "", decision, ""])
    write_text(RESULTS / f"{stem}.md", text)
    print(to_markdown(df, ".3g"))
    print(decision)


if __name__ == "__main__":
    run_script(main)
