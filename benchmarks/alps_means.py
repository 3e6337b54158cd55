"""The GlaThiDa glacier means of the Alps: a validation case and, by the declared rule, calibration data.

Protocol (written before collecting): ``benchmarks/results/selection_protocol_alps_means.md``.
:func:`glacierbed.evaluation.measured_table.collect` with ``cases=["alps-means"]`` runs the pipeline
on every glacier of RGI 6.0 region 11 with a GlaThiDa mean thickness (held-out surveys dropped;
the Ötztal case's glaciers left out), each on its rgi11-alps tile and the neighbouring tiles,
and samples VA, GlabTop and OGGM on the same glacier. Scored, on the same rows:

* ``raw``: the network with its physics stage, no calibration;
* ``V0``: the shipped calibration's variant fitted on today's table (South Glacier, grids, Ötztal
  means) leave-one-glacier-out; on the Alps means: fitted on today's table alone (never on them);
* ``V1``: the same variant fitted on today's table + the Alps means, leave-one-glacier-out.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/alps_means.py [--run-dir DIR]`` (the
calibration benchmark's cache; ~5 min when today's table is cached). Writes
``benchmarks/results/alps_means.{csv,md,png}`` and ``alps_means_glaciers.csv``.
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
from glacierbed.core.metrics import error_metrics
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import CrossValidation, acceptance_summary, cross_validate, cross_validate_on
from glacierbed.evaluation.diagnosis import calibration_attributes, with_attributes
from glacierbed.evaluation.measured_table import BASELINES, CASES, MeasuredSet, collect
from glacierbed.core.errors import quiet_per_glacier_logs, run_script
from glacierbed.posterior.calibration import BOOSTED_DESIGN

RESULTS = Path(__file__).resolve().parent / "results"
SHIP = BOOSTED_DESIGN  #: the shipped design when this decision was taken (its committed results)
CASE = "alps-means"


def with_glacier_attributes(ms: MeasuredSet) -> MeasuredSet:
    """``ms`` with the attributes the calibration's interval widening reads (as benchmarks/calibration.py)."""
    examples = sorted(set(ms.rows["example"].astype(str)) | set(ms.pixels["example"].astype(str)))
    attrs = calibration_attributes(examples)
    return MeasuredSet(with_attributes(ms.rows, attrs), with_attributes(ms.pixels, attrs), dict(ms.info))


def combine(today: MeasuredSet, alps: MeasuredSet) -> MeasuredSet:
    """Both tables in one, ``part`` = ``alps`` on the Alps means, ``today`` elsewhere."""
    return MeasuredSet(pd.concat([today.rows.assign(part="today"), alps.rows.assign(part="alps")], ignore_index=True),
                       pd.concat([today.pixels.assign(part="today"), alps.pixels.assign(part="alps")],
                                 ignore_index=True), dict(today.info))


def v0(both: MeasuredSet) -> CrossValidation:
    """Today's table LOGO; the Alps means predicted by the fit on today's table (never fitted on them)."""
    return cross_validate_on(both, SHIP, CASES)


#: the protocol's numbers, in this order
COLUMNS = ("grids_median_ratio", "grids_share_bias_within_20pct", "south_glacier_rmse_m", "oetztal_means_rmse_m",
           "hef_volume_rel_error", "alps_means_n", "alps_means_rmse_m", "alps_means_bias_m", "alps_means_mae_m",
           "alps_means_coverage68", "alps_means_coverage90")


def summary(cv: CrossValidation, label: str) -> dict:
    """The protocol's numbers for one variant."""
    full = acceptance_summary(cv)
    return {"variant": label, **{k: full[k] for k in COLUMNS}}


def per_glacier(cvs: dict[str, CrossValidation]) -> pd.DataFrame:
    """One row per Alps glacier: measured mean, each variant's and each baseline's, with errors."""
    first = next(iter(cvs.values())).rows
    a = first[first["case"] == CASE]
    out = a[["rgi_id", "survey_name", "survey_year", "obs", "n_pixels", "pixel_area_m2",
             *[f"base_{b}" for b in BASELINES]]].rename(columns={"obs": "obs_mean_m"}).copy()
    out["area_km2"] = out["n_pixels"] * out["pixel_area_m2"] / 1e6
    out = out.drop(columns=["n_pixels", "pixel_area_m2"]).set_index("rgi_id")
    for label, cv in cvs.items():
        r = cv.rows[cv.rows["case"] == CASE].set_index("rgi_id")
        out[f"{label}_m"] = r["mu_cal"]
        if label != "raw":
            out[f"{label}_sigma_m"] = r["sigma_cal"]
    base_err = pd.DataFrame({b: (out[f"base_{b}"] - out["obs_mean_m"]).abs() for b in BASELINES})
    out["best_baseline"] = base_err.idxmin(axis=1)
    out["best_baseline_abs_error_m"] = base_err.min(axis=1)
    for label in cvs:
        out[f"{label}_abs_error_m"] = (out[f"{label}_m"] - out["obs_mean_m"]).abs()
    return out.reset_index()


def plot(glaciers: pd.DataFrame, path: Path) -> Path:
    """Measured vs estimated mean thickness of the Alps glaciers: the shipped calibration (V0, never fitted on
    them), the raw network and GlabTop."""
    from matplotlib.figure import Figure

    from glacierbed.core.figures import save_figure

    fig = Figure(figsize=(5.4, 5.0))
    ax = fig.subplots()
    top = float(np.nanmax(glaciers[["obs_mean_m", "raw_m", "V0_m", "base_glabtop"]].to_numpy())) * 1.05
    ax.scatter(glaciers["obs_mean_m"], glaciers["base_glabtop"], s=14, marker="x", c="0.5", label="GlabTop")
    ax.scatter(glaciers["obs_mean_m"], glaciers["raw_m"], s=16, facecolors="none", edgecolors="C1", label="network, raw")
    ax.errorbar(glaciers["obs_mean_m"], glaciers["V0_m"], yerr=glaciers["V0_sigma_m"], fmt="o", ms=4, c="C0",
                elinewidth=0.6, label="network + shipped calibration (V0, 1σ)")
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.set(xlim=(0, top), ylim=(0, top), aspect="equal", xlabel="GlaThiDa mean thickness (m)",
           ylabel="estimated mean thickness (m)",
           title=f"{len(glaciers)} Alpine glaciers (RGI 11, rgi11-alps DEMs)")
    ax.legend(fontsize=7, loc="upper left")
    return save_figure(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-calibration")
    ap.add_argument("--model", default=None,
                    help="the network scored (default: the shipped default; the committed results are the previous "
                         "default's, runs/previous_default/thickness-net.pt: today's default was fine-tuned on "
                         "today's table and is refused in-sample)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_per_glacier_logs("glacierbed.evaluation.measured_table", level=logging.ERROR)
    t0 = time.perf_counter()
    today = collect(args.run_dir, args.model, True)
    alps = collect(args.run_dir, args.model, True, cases=[CASE])
    both = with_glacier_attributes(combine(today, alps))
    n_groups_shared = len(set(alps.rows["group"]) & set(today.rows["group"]))
    cvs = {"raw": cross_validate(both, "none"), "V0": v0(both), "V1": cross_validate(both, SHIP, by="group")}
    seconds = time.perf_counter() - t0
    table = pd.DataFrame([summary(cv, label) for label, cv in cvs.items()])
    a = cvs["raw"].rows[cvs["raw"].rows["case"] == CASE]
    base_metrics = {b: error_metrics(a[f"base_{b}"], a["obs"]) for b in BASELINES}
    baselines = pd.DataFrame([{"variant": f"baseline {b}", "alps_means_n": len(a), "alps_means_rmse_m": m["rmse"],
                               "alps_means_bias_m": m["bias"], "alps_means_mae_m": m["mae"]}
                              for b, m in base_metrics.items()])
    glaciers = per_glacier(cvs)
    out: Path = args.out
    write_table(pd.concat([table, baselines], ignore_index=True), out / "alps_means.csv")
    write_table(glaciers, out / "alps_means_glaciers.csv")
    plot(glaciers, out / "alps_means.png")
    r0, r1 = table.set_index("variant").loc["V0"], table.set_index("variant").loc["V1"]
    checks = {"(a) grids ratio V1 <= V0": r1["grids_median_ratio"] <= r0["grids_median_ratio"],
              "(b) South Glacier <= 29 m and Ötztal means <= 11.4 m": (r1["south_glacier_rmse_m"] <= 29.0
                                                                       and r1["oetztal_means_rmse_m"] <= 11.4),
              "(c) Alps means RMSE V1 < V0": r1["alps_means_rmse_m"] < r0["alps_means_rmse_m"]}
    ship = all(checks.values())
    closer = {lab: float((glaciers[f"{lab}_abs_error_m"] < glaciers["best_baseline_abs_error_m"]).mean())
              for lab in cvs}
    # the headline form: median over glaciers of |error| / that glacier's best baseline |error| (floored at 1 m)
    ratio = {lab: float((glaciers[f"{lab}_abs_error_m"] / glaciers["best_baseline_abs_error_m"].clip(lower=1.0)
                         ).median()) for lab in cvs}
    within = {lab: float(((glaciers[f"{lab}_m"] - glaciers["obs_mean_m"]).abs() <= 0.2 * glaciers["obs_mean_m"]
                          ).mean()) for lab in cvs}
    lines = [
        "# GlaThiDa glacier means of the Alps (issue 16, item 3)", "",
        f"Run {dt.date.today()}, {seconds / 60:.0f} min. Protocol, written before collecting: "
        "[selection_protocol_alps_means.md](selection_protocol_alps_means.md); one new variant (V1). "
        f"{len(a)} glaciers of RGI 6.0 region 11 with a GlaThiDa mean thickness (held-out surveys dropped; surveys "
        "with an area only; the Ötztal case's glaciers left out), each estimated on its rgi11-alps DEM tile and the "
        f"neighbouring tiles on the same grid; {n_groups_shared} of them are also GlaThiDa-grid glaciers (same glacier "
        "identity: they leave the fits together, V0's fit on today's table included). Network: "
        f"{'the shipped default' if args.model is None else f'`{args.model}`'} with its physics stage. Baselines on "
        "the same glaciers, same DEM.", "",
        to_markdown(pd.concat([table, baselines], ignore_index=True), ".3g"), "",
        "Share of Alps glaciers where the estimate is closer to the measured mean than the best of VA, GlabTop and "
        "OGGM on that glacier: " + ", ".join(f"{k} {v:.0%}" for k, v in closer.items()) + ". Median over the "
        "glaciers of |error| / that glacier's best baseline |error| (floored at 1 m): "
        + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items()) + ". Share with |error| ≤ 20 % of the measured "
        "mean: " + ", ".join(f"{k} {v:.0%}" for k, v in within.items()) + ".", "",
        "## Decision (the protocol's rule)", "",
        *[f"- {k}: {'met' if v else 'missed'}" for k, v in checks.items()], "",
        ("**V1 meets the rule**: the shipped calibration is refitted on today's table + the Alps means "
         "(`benchmarks/calibration.py --cases ... alps-means --save ...`)." if ship else
         "**V1 does not meet the rule**: the shipped calibration keeps today's table; the Alps means stay a "
         "validation case."), "",
        "![Alps glacier means](alps_means.png)", "",
        "Per glacier: [alps_means_glaciers.csv](alps_means_glaciers.csv).", ""]
    write_text(out / "alps_means.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
