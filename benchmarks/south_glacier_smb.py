"""The default on South Glacier with and without the kit's surface mass-balance raster (evaluation only).

A user who has a surface mass-balance raster passes it with ``--smb``: the thickness network sees it as an input
channel and the physics posterior adds its flux-divergence term. The kit has one, South Glacier's
(``mb_SouthGlacier.tif``). This benchmark scores the default's nested glacier-wise maps of South Glacier (the
cached fold networks of ``benchmarks/measured_finetune.py``; the outer fold network fine-tuned without South
Glacier; the calibration of that fold fitted on inner out-of-fold maps made without any SMB raster, as the shipped
one was) twice: as the acceptance table scores it, and with the raster given to the scored map. Nothing is fitted
or selected (protocol: ``results/selection_protocol_south_glacier_smb.md``).

Run: ``python benchmarks/south_glacier_smb.py`` writes ``benchmarks/results/south_glacier_smb.{md,csv}`` (a few
minutes on the cached fold networks).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.core.metrics import error_metrics
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import CrossValidation, score
from glacierbed.evaluation.measured_finetune import nested_by_split
from glacierbed.evaluation.recipe_cli import DEFAULT_RECIPE, recipe_arguments
from glacierbed.evaluation.measured_table import BASELINES
from glacierbed.posterior.calibration import SHIPPED_VARIANT

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the shipped calibration's variant (the default's nested rows)
VARIANT = SHIPPED_VARIANT  #: the default's design (the committed results before 2026-12-07: BOOSTED_DESIGN)
CASE = "south-glacier"


def radar_row(cv: CrossValidation, split: str, smb: bool) -> dict:
    """South Glacier's radar scored on one nested table: raw (the fold network's map) and calibrated."""
    rows = cv.rows[cv.rows["case"] == CASE]
    raw = error_metrics(rows["mu"], rows["obs"])
    cal = score(CrossValidation(cv.variant, cv.by, rows, cv.glaciers.iloc[0:0], {})).iloc[0]
    return {"split": split, "smb_raster": smb, "n": int(raw["n"]), "raw_rmse_m": raw["rmse"], "raw_bias_m": raw["bias"],
            "rmse_m": cal["rmse"], "bias_m": cal["bias"], "coverage68": cal["coverage68"],
            "coverage90": cal["coverage90"], "mean_thickness_m": float(rows["mu_cal"].mean()),
            "measured_mean_m": float(rows["obs"].mean()),
            **{f"rmse_{b}_m": cal[f"rmse_{b}"] for b in BASELINES if f"rmse_{b}" in cal}}


def _own_options(ap: argparse.ArgumentParser) -> None:
    """The script's own options (beside the recipe's and ``--out``)."""
    ap.set_defaults(splits=["glacier-wise"])


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE.parent / DEFAULT_RECIPE,
                            RESULTS, options=_own_options, verbose=False)
    t0 = time.perf_counter()
    rows = []
    for smb in (False, True):
        args.smb = smb
        cvs = nested_by_split(args, [VARIANT], progress=lambda m: print(m, flush=True))
        rows += [radar_row(cv[VARIANT], split, smb) for split, cv in cvs.items()]
    table = pd.DataFrame(rows)
    out: Path = args.out
    write_table(table, out / "south_glacier_smb.csv")
    lines = [
        "# The default on South Glacier with its surface mass-balance raster",
        "",
        f"Run {dt.date.today()}, {(time.perf_counter() - t0) / 60:.0f} min, on the cached fold networks; nothing "
        "fitted or selected ([protocol](selection_protocol_south_glacier_smb.md), committed before the run). "
        f"The default's nested out-of-fold map of South Glacier (`{VARIANT}`; the fold network fine-tuned without "
        "it, the calibration fitted on inner out-of-fold maps made without any SMB raster), scored on the 9,609 "
        "radar points inside the outline, without and with `mb_SouthGlacier.tif` given to the scored map "
        "(`--smb`: an input channel of the network and the physics' flux-divergence term). `raw`: the fold "
        "network's map before calibration. Baselines (VA, GlabTop, OGGM) get no SMB. RMSE, bias and mean "
        "thickness at the radar points in m; coverage: the share of points whose error lies inside the 68 / 90 % "
        "interval.",
        "",
        to_markdown(table.round(3)),
        ""]
    write_text(out / "south_glacier_smb.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
