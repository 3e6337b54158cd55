"""The thickness network fine-tuned on measured thickness, against the shipped network, out of fold.

Protocol (written before scoring): ``benchmarks/results/selection_protocol_measured_finetune.md``.
The measured table of the shipped network (``benchmarks/calibration.py``'s cache) gives the
rows; :func:`glacierbed.evaluation.measured_finetune.cross_validate_finetune` fine-tunes the
shipped weights once per glacier-wise fold (settings: ``benchmarks/configs/measured_finetune.yaml``)
and runs the pipeline with each fold's network on the glaciers it never saw. Scored beside the
shipped network raw and with its calibration refitted leave-one-glacier-out, on the same rows.

Run: ``python benchmarks/measured_finetune.py [--config YAML] [--run-dir DIR] [--nested] [--final PATH]``. Writes
``benchmarks/results/measured_finetune.{csv,md}`` and ``measured_finetune_glaciers.csv``, ``measured_finetune.png``.
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
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import cross_validate, glathida_per_glacier, score
from glacierbed.evaluation.measured_finetune import cross_validate_finetune, finetune_all, nested_calibration
from glacierbed.evaluation.measured_table import collect
from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
from glacierbed.pipeline.store import shipped_weights

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent
SHIP = "residual+scale+interval"
SHIPPED_CALIBRATED = "shipped, calibrated (residual+scale+interval)"
FINETUNED = "measured-finetune, raw"
NESTED = "measured-finetune + calibration (nested)"


def summary(cv, label: str, split: str) -> dict:
    """The acceptance metrics of one out-of-fold table (grids per glacier, SG, Ötztal, HEF)."""
    s = score(cv).set_index("case")
    pg = glathida_per_glacier(cv)
    grids = cv.rows[cv.rows["case"] == "glathida-grids"]
    measured_mean = grids.groupby("rgi_id")["obs"].mean()
    rel_bias = (pg.set_index("rgi_id")["bias"] / measured_mean).abs()
    get = (lambda case, col: float(s.loc[case, col]) if case in s.index and col in s.columns else np.nan)
    return {"variant": label, "split": split,
            "grids_median_ratio": get("glathida-grids", "median_ratio_to_best_baseline"),
            "grids_median_rmse_m": get("glathida-grids", "rmse"),
            "grids_regions_over_1": get("glathida-grids", "regions_worse_than_best_baseline"),
            "grids_share_bias_within_20pct": float((rel_bias <= 0.2).mean()),
            "south_glacier_rmse_m": get("south-glacier", "rmse"),
            "oetztal_means_rmse_m": get("oetztal-means", "rmse"),
            "hef_volume_rel_error": get("hintereisferner", "rel_error_volume")}


def plot_ratios(per_glacier: pd.DataFrame, path: Path) -> Path:
    """Per grid glacier: RMSE / its best baseline, shipped calibrated vs fine-tuned (out of fold)."""
    from matplotlib.figure import Figure

    from glacierbed.core.figures import save_figure

    wide = per_glacier.pivot_table(index=["rgi_id", "region"], columns="variant",
                                   values="ratio_to_best_baseline").reset_index()
    x, y = wide[SHIPPED_CALIBRATED], wide[FINETUNED]
    fig = Figure(figsize=(5.2, 4.8))
    ax = fig.subplots()
    for region, g in wide.groupby("region"):
        ax.scatter(g[SHIPPED_CALIBRATED], g[FINETUNED], s=28, label=f"RGI {region}")
    top = float(max(x.max(), y.max())) * 1.05
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.axhline(1, color="0.6", lw=0.6)
    ax.axvline(1, color="0.6", lw=0.6)
    ax.set(xlim=(0, top), ylim=(0, top), aspect="equal",
           xlabel="shipped, calibrated (LOGO): RMSE / best baseline",
           ylabel="fine-tuned on measurements (out of fold)",
           title=f"GlaThiDa grids: {int((y < x).sum())} of {len(wide)} glaciers better fine-tuned")
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=HERE / "configs" / "measured_finetune.yaml")
    ap.add_argument("--run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-finetune")
    ap.add_argument("--table-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-calibration",
                    help="the shipped network's measured table (benchmarks/calibration.py's cache)")
    ap.add_argument("--nested", action="store_true",
                    help="also the fine-tuned network with a calibration on top, both fitted without each "
                         "outer fold (inner folds; about 6x the fine-tunes)")
    ap.add_argument("--final", type=Path, default=None,
                    help="also fine-tune on every measured glacier and write those weights here (the network that "
                         "would ship; check it on simulated test ranges with benchmarks/simulated_glaciers.py)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("glacierbed.pipeline.estimate", "glacierbed.pipeline.workflow", "glacierbed.posterior.physics",
                  "pyogrio", "glacierbed.evaluation.oggm_peer", "glacierbed.data.rasters",
                  "glacierbed.data.observations", "glacierbed.data.outlines"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = MeasuredFinetuneConfig.from_yaml(args.config)
    init = shipped_weights("thickness_net.pt")
    t0 = time.perf_counter()
    ms = collect(args.table_dir, None, True)
    oof, folds = cross_validate_finetune(ms, cfg, init, args.run_dir, progress=lambda m: logging.info(m))
    cvs = {("shipped, raw", "-"): cross_validate(ms, "none"),
           (SHIPPED_CALIBRATED, "LOGO"): cross_validate(ms, SHIP, by="group"),
           (FINETUNED, f"{cfg.folds} glacier-wise folds"): cross_validate(oof, "none")}
    if args.nested:
        cvs[(NESTED, f"{cfg.folds} glacier-wise folds, {cfg.folds - 1} inner")] = nested_calibration(
            ms, cfg, init, args.run_dir, SHIP, progress=lambda m: logging.info(m))
    if args.final is not None:
        final, record = finetune_all(ms, cfg, init, args.run_dir, args.final)
        logging.info("fine-tuned on all %d measured glaciers: %s", record["finetuned_on_measured"]["n_windows"], final)
    seconds = time.perf_counter() - t0
    table = pd.DataFrame([summary(cv, label, split) for (label, split), cv in cvs.items()])
    per_glacier = pd.concat([glathida_per_glacier(cv).assign(variant=label) for (label, _), cv in cvs.items()])
    out: Path = args.out
    write_table(table, out / "measured_finetune.csv")
    write_table(per_glacier, out / "measured_finetune_glaciers.csv")
    plot_ratios(per_glacier, out / "measured_finetune.png")
    ship = table.iloc[1]
    decisions = []
    for _, ft in table.iloc[2:].iterrows():
        wins = (ft["grids_median_ratio"] < ship["grids_median_ratio"] and ft["south_glacier_rmse_m"] <= 29.0
                and ft["oetztal_means_rmse_m"] <= 11.4)
        decisions.append(f"- `{ft['variant']}`: " + (
            "meets the rule's measured-data part (lower grid ratio, South Glacier <= 29 m, Ötztal <= 11.4 m); "
            "the simulated test ranges decide next." if wins else
            "does not beat the shipped, calibrated network by the rule: the default is unchanged."))
    protocols = "[selection_protocol_measured_finetune.md](selection_protocol_measured_finetune.md)" + (
        ", [selection_protocol_measured_finetune_nested.md](selection_protocol_measured_finetune_nested.md)"
        if args.nested else "")
    lines = [
        "# The thickness network fine-tuned on measured thickness (issue 16, item 3)", "",
        f"Run {dt.date.today()}, {seconds / 60:.0f} min on this machine. Protocols, written before scoring: "
        f"{protocols}. {len(table) - 2} new variant(s) in this run. Fine-tuning: {cfg.steps} steps from the "
        f"shipped weights, lr {cfg.lr:g}, one measured glacier + {cfg.sim_batch} simulated windows per step; "
        f"{cfg.folds} glacier-wise folds (a glacier is predicted only by a network fine-tuned without it); physics "
        "stage on. `raw`: no calibration on the fine-tuned network; `nested`: the shipped calibration's variant "
        "fitted on inner out-of-fold maps of the other glaciers (networks fine-tuned without the outer fold too). "
        "Grid ratio: median over the grid glaciers of RMSE / that glacier's best baseline (VA, GlabTop, OGGM) on "
        "the same cells.", "",
        to_markdown(table), "",
        "## Decision (the protocol's rule)", "", *decisions,
        "", "![per glacier](measured_finetune.png)", "",
        "## Folds", "", to_markdown(folds.drop(columns=["weights"])), ""]
    write_text(out / "measured_finetune.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
