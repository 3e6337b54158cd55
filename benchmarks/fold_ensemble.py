"""Averaging fine-tuned networks out of fold: the inner fold networks against the single outer one (a diagnostic).

Protocol (written first): ``benchmarks/results/selection_protocol_fold_ensemble.md``. For each outer fold k of the
default recipe's nested scoring, the outer network (fine-tuned without fold k) and the 5 inner networks (each also
without fold k) predict fold k's measured glaciers on the estimate stage's own windows; network maps only (the
estimate stage's 4 symmetries; no physics stage, no calibration), scored on the measured pixels or the measured mean.
Evaluation only, on cached networks; nothing is fitted or shipped.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/fold_ensemble.py`` (after ``measured_finetune.py --nested``
of the default's recipe has cached its networks). Writes ``benchmarks/results/fold_ensemble.{csv,md}`` and
``fold_ensemble_glaciers.csv``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.measured_finetune import (default_recipe, diagnostic_condition,
                                                    glacier_folds, measured_windows)
from glacierbed.evaluation.recipe_cli import DEFAULT_RECIPE, recipe_arguments
from glacierbed.models.thickness.finetune import MeasuredWindow
from glacierbed.models.thickness.runtime import ThicknessNetPredictor

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent
SYMMETRIES = 4  #: the estimate stage's default ensemble of symmetries
ROWS = ("outer network", "inner networks, each alone", "average of the 5 inner", "average of outer + 5 inner")


def glacier_error(w: MeasuredWindow, thickness: np.ndarray) -> tuple[str, float, float]:
    """(kind, RMSE or |mean error|, bias) of a map on a glacier's measurements."""
    measured = np.isfinite(w.truth)
    if measured.any():
        err = thickness[measured] - w.truth[measured]
        return "pixels", float(np.sqrt(np.mean(err ** 2))), float(err.mean())
    err = float(thickness[w.own].mean() - w.mean_m)
    return "mean", abs(err), err


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, argv, HERE.parent / DEFAULT_RECIPE,
                            RESULTS)
    t0 = time.perf_counter()
    cfg, ms = default_recipe(args)
    run = args.glacier_run_dir
    windows = measured_windows(ms, Path(cfg.init_weights), run / "windows")
    folds = glacier_folds(ms, cfg.folds)
    case_of = ms.rows.drop_duplicates("group").set_index("group")["case"].astype(str).to_dict()
    rows = []
    for k in range(cfg.folds):
        held = [w for w in windows if folds.get(w.group) == k]
        outer = ThicknessNetPredictor.load(run / f"fold{k}" / "weights.pt")
        inner = [ThicknessNetPredictor.load(run / f"inner{k}" / f"fold{j}" / "weights.pt")
                 for j in range(cfg.folds - 1)]
        for w in held:
            maps = [p.predict_maps(w.features, SYMMETRIES)[0].mean(axis=0) for p in (outer, *inner)]
            candidates = {ROWS[0]: [maps[0]], ROWS[1]: maps[1:], ROWS[2]: [np.mean(maps[1:], axis=0)],
                          ROWS[3]: [np.mean(maps, axis=0)]}
            for label, members in candidates.items():
                scored = [glacier_error(w, np.maximum(m, 0.0)) for m in members]
                rows.append({"fold": k, "group": w.group, "case": case_of.get(w.group, w.case), "method": label,
                             "kind": scored[0][0], "error_m": float(np.mean([s[1] for s in scored])),
                             "bias_m": float(np.mean([s[2] for s in scored]))})
        logging.info("outer fold %d/%d: %d glaciers", k + 1, cfg.folds, len(held))
    per = pd.DataFrame(rows)
    wide = per.pivot_table(index=["group", "case"], columns="method", values="error_m").reset_index()
    for label in ROWS[1:]:
        wide[f"ratio: {label}"] = wide[label] / wide[ROWS[0]]
    summary = []
    for label in ROWS:
        g = per[per["method"] == label]
        grids = g[g["case"] == "glathida-grids"]
        sg = g[g["case"] == "south-glacier"]["error_m"]
        means = g[g["case"] == "oetztal-means"]["error_m"]
        ratio = wide.loc[wide["case"] == "glathida-grids", f"ratio: {label}"] if label != ROWS[0] else pd.Series([1.0])
        summary.append({"method": label, "grids_median_rmse_m": grids["error_m"].median(),
                        "grids_median_ratio_to_outer": float(ratio.median()),
                        "grids_better_than_outer": int((ratio < 1).sum()) if label != ROWS[0] else np.nan,
                        "south_glacier_rmse_m": float(sg.iloc[0]) if len(sg) else np.nan,
                        "oetztal_means_rmse_m": float(np.sqrt(np.mean(means ** 2))) if len(means) else np.nan})
    table = pd.DataFrame(summary)
    write_table(table, args.out / "fold_ensemble.csv")
    write_table(wide, args.out / "fold_ensemble_glaciers.csv")
    by_row = table.set_index("method")
    _, condition = diagnostic_condition(by_row.loc[ROWS[2]], by_row.loc[ROWS[0]],
                                        "grids_median_ratio_to_outer", "average of the 5 inner networks",
                                        "the outer network", "ensemble of fold networks")
    lines = [
        "# Averaging fine-tuned networks out of fold (issue 16; a diagnostic)", "",
        f"Run {dt.date.today()}, {(time.perf_counter() - t0) / 60:.0f} min. Protocol, written first: "
        "[selection_protocol_fold_ensemble.md](selection_protocol_fold_ensemble.md). The default recipe's cached "
        f"networks; {cfg.folds} outer glacier-wise folds, each glacier predicted only by networks fine-tuned without "
        f"it; network maps only ({SYMMETRIES} symmetries, no physics stage, no calibration) on the estimate stage's "
        "windows. Grids: per-glacier RMSE on the measured cells; South Glacier: its radar pixels; Ötztal: RMSE of "
        "the glacier means. Evaluation only: nothing fitted, the default unchanged.", "",
        to_markdown(table), "",
        "Per glacier: [fold_ensemble_glaciers.csv](fold_ensemble_glaciers.csv). For a glacier mean the rows "
        "'each alone' (the mean of the members' |errors|) and 'average' (the |error| of their mean) agree exactly "
        "when every member errs with the same sign, as the inner networks do on every Ötztal glacier here.", "",
        "## The protocol's condition", "",
        condition, ""]
    write_text(args.out / "fold_ensemble.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
