"""The thickness network fine-tuned on measured thickness, against the shipped network, out of fold.

Protocols (written before scoring): ``benchmarks/results/selection_protocol_measured_finetune{,_nested}.md``
(``--config benchmarks/configs/measured_finetune.yaml``) and ``selection_protocol_measured_finetune_alps.md``
(``--config benchmarks/configs/measured_finetune_alps.yaml``: the Alps glacier means fitted on too; with
``--calibrate-on all`` the nested calibration is fitted on them as well:
``selection_protocol_measured_finetune_alps_calibrated_with_alps.md``).
The measured table of the shipped network (``benchmarks/calibration.py``'s cache) gives the
rows; :func:`glacierbed.evaluation.measured_finetune.cross_validate_finetune` fine-tunes the
shipped weights once per glacier-wise fold (settings: ``benchmarks/configs/measured_finetune.yaml``)
and runs the pipeline with each fold's network on the glaciers it never saw. Scored beside the
shipped network raw and with its calibration refitted leave-one-glacier-out, on the same rows.

Run: ``python benchmarks/measured_finetune.py [--config YAML] [--run-dir DIR] [--nested] [--calibrate-on all]``
writes ``benchmarks/results/<config name>.{csv,md,png}`` and ``<config name>_glaciers.csv``. With
``--final PATH`` it scores nothing: it writes the network fine-tuned on every measured glacier to
PATH and its calibration, fitted on the folds' out-of-fold maps, to ``<PATH stem>.calibration.json``
(the pair ``tools/install_default.py`` installs as the package default). ``--reference``: the
network whose measured table gives the rows (default: the shipped one, refused once it is itself
fine-tuned on measured glaciers: then the network it started from). ``--compare-with RESULTS.csv``: the
decision lines compare with that run's nested row (today's default's recipe) instead of the reference's.
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
from glacierbed.evaluation.cross_validation import (acceptance_summary, cross_validate, cross_validate_on,
                                                    gap_text, glathida_per_glacier, glathida_regions, ratio_gaps, score)
from glacierbed.evaluation.measured_finetune import (NESTED_LABEL, cross_validate_finetune, finetune_all,
                                                    fitted_physics_record, nested_calibration, nested_variant_rows,
                                                    only_cases, out_of_fold_calibration, with_folds_by)
from glacierbed.evaluation.measured_table import CASES, MeasuredSet, collect
from glacierbed.evaluation.recipe_cli import results_name
from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig
from glacierbed.core.config import config_changes
from glacierbed.posterior.calibration import BOOSTED_DESIGN, SHIPPED_VARIANT
from glacierbed.posterior.physics_config import PhysicsConfig
from glacierbed.pipeline.store import shipped_weights
from glacierbed.core.errors import quiet_per_glacier_logs, run_script

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent
SHIP = SHIPPED_VARIANT  #: the shipped calibration's variant (boosted interval up to candidate 36, then parametric)
SHIPPED_CALIBRATED = f"shipped, calibrated ({SHIP})"


def summary(cv, label: str, split: str) -> dict:
    """The acceptance metrics of one out-of-fold table (grids per glacier, SG, Ötztal, HEF, Alps means)."""
    return {"variant": label, "split": split, **acceptance_summary(cv)}


def plot_ratios(per_glacier: pd.DataFrame, variant: str, path: Path) -> Path:
    """Per grid glacier: RMSE / its best baseline, shipped calibrated vs ``variant`` (out of fold)."""
    from matplotlib.figure import Figure

    from glacierbed.core.figures import save_figure

    wide = per_glacier.pivot_table(index=["rgi_id", "region"], columns="variant",
                                   values="ratio_to_best_baseline").reset_index()
    x, y = wide[SHIPPED_CALIBRATED], wide[variant]
    fig = Figure(figsize=(5.2, 4.8))
    ax = fig.subplots()
    for region, g in wide.groupby("region"):
        ax.scatter(g[SHIPPED_CALIBRATED], g[variant], s=28, label=f"RGI {region}")
    top = float(max(x.max(), y.max())) * 1.05
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.axhline(1, color="0.6", lw=0.6)
    ax.axvline(1, color="0.6", lw=0.6)
    ax.set(xlim=(0, top), ylim=(0, top), aspect="equal",
           xlabel="shipped, calibrated (LOGO): RMSE / best baseline",
           ylabel=f"{variant} (out of fold)",
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
                    help="instead of scoring: fine-tune on every measured glacier, write those weights here (the "
                         "network that would ship; check it on simulated test ranges with "
                         "benchmarks/simulated_glaciers.py) and its calibration fitted on the folds' out-of-fold "
                         "maps beside it (<stem>.calibration.json)")
    ap.add_argument("--calibrate-on", choices=["today", "all"], default="today",
                    help="cases the nested calibration is fitted on: today's (South Glacier, grids, Ötztal, "
                         "Hintereisferner) or all, the config's side cases included")
    ap.add_argument("--reference", default=None,
                    help="the network whose measured table gives the rows and the 'shipped' rows (default: the "
                         "shipped default; one fine-tuned on measured glaciers is refused, so since the default is, "
                         "name the network it was fine-tuned from, stage 0 of its record's lineage)")
    ap.add_argument("--by", choices=["group", "region"], default="group",
                    help="folds: glacier-wise (the config's count) or leave-one-region-out (folds = regions; results "
                         "named <config>_loro; the previous network's calibration refitted leave-one-region-out)")
    ap.add_argument("--compare-with", type=Path, default=None,
                    help="a results CSV of this script (e.g. benchmarks/results/measured_finetune_from_spanning_all_"
                         "p128.csv, today's default's recipe): the rule compares with its nested row instead of this "
                         "run's 'shipped, calibrated' row (the reference network's)")
    ap.add_argument("--physics-config", type=Path, default=None,
                    help="YAML of PhysicsConfig fields for every map scored or calibrated on (e.g. "
                         "benchmarks/configs/physics_margin_plastic.yaml); the fold networks are the same and reused; "
                         "results named <config>_<yaml stem>")
    ap.add_argument("--fit-physics-config", type=Path, default=None,
                    help="YAML of PhysicsConfig fields for the inner maps the nested calibration is fitted on, when "
                         "they differ from --physics-config's scored maps (e.g. physics_margin_zero.yaml: the "
                         "calibration as the default fits it, applied to plastic margins); results named "
                         "<...>_fit_<yaml stem>")
    ap.add_argument("--interval-physics-config", type=Path, default=None,
                    help="YAML of PhysicsConfig fields for the inner maps the nested calibration's interval step "
                         "alone is fitted on (the steps before it stay fitted on --fit-physics-config's maps and are "
                         "applied to these); results named <...>_interval_<yaml stem>")
    ap.add_argument("--oetztal-max", type=float, default=11.4,
                    help="the rule's bound on the Ötztal means' RMSE, metres (11.4 in the protocols up to the 24th "
                         "candidate; 10.0, the issue's bar the default meets, from the 25th)")
    ap.add_argument("--refit-interval", type=Path, default=None,
                    help="a calibration JSON (the shipped one): refit its interval step alone on the fold networks' "
                         "out-of-fold maps made with --interval-physics-config (its other steps kept as fitted; their "
                         "out-of-fold refits on --fit-physics-config's maps) and rewrite it; scores nothing")
    ap.add_argument("--calibration", default=SHIP,
                    help=f"the calibration variant of the nested row (default the shipped {SHIP!r}; "
                         f"{BOOSTED_DESIGN!r}, the design up to candidate 36, names results as then; any other "
                         f"<...>_cal_<form>)")
    ap.add_argument("--rule", choices=["thickness", "coverage"], default="thickness",
                    help="the decision: 'thickness' (grids, South Glacier, Ötztal bounds; candidates up to 28) or "
                         "'coverage' (interval coverage closer to nominal than --compare-with's run, thickness "
                         "columns equal: candidate 29)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    physics = PhysicsConfig.from_yaml(args.physics_config) if args.physics_config else True
    fit_physics = PhysicsConfig.from_yaml(args.fit_physics_config) if args.fit_physics_config else None
    interval_physics = (PhysicsConfig.from_yaml(args.interval_physics_config) if args.interval_physics_config
                        else None)
    if args.refit_interval is not None and (fit_physics is None or interval_physics is None):
        ap.error("--refit-interval needs --fit-physics-config (the maps its other steps were fitted on) and "
                 "--interval-physics-config (the maps its interval describes)")
    if fit_physics is not None and not (args.nested or args.refit_interval):
        ap.error("--fit-physics-config is the nested calibration's: use it with --nested")
    if interval_physics is not None and not (args.nested or args.refit_interval):
        ap.error("--interval-physics-config is the nested calibration's: use it with --nested")
    if args.refit_interval is not None and args.by == "region":
        ap.error("--refit-interval refits on glacier-wise out-of-fold maps: use it without --by region")
    if args.final is not None and args.by == "region":
        ap.error("--final fits the calibration on glacier-wise out-of-fold maps: use it without --by region")
    baseline = None if args.compare_with is None else rule_baseline(args.compare_with)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_per_glacier_logs()
    cfg = MeasuredFinetuneConfig.from_yaml(args.config)
    init = start_weights(cfg, args.config)
    t0 = time.perf_counter()
    ms = collect(args.table_dir, args.reference, physics)
    if cfg.side_cases:  # glacier means fitted on beside today's cases (never calibrated on)
        side = collect(args.table_dir, args.reference, physics, cases=list(cfg.side_cases))
        ms = MeasuredSet(pd.concat([ms.rows, side.rows], ignore_index=True),
                         pd.concat([ms.pixels, side.pixels], ignore_index=True), dict(ms.info))
    cfg = with_folds_by(cfg, ms, args.by)
    if args.refit_interval is not None:
        refit_interval(ms, cfg, init, args, fit_physics, interval_physics)
        return
    oof, folds = cross_validate_finetune(ms, cfg, init, args.run_dir, physics, progress=lambda m: logging.info(m),
                                         by=args.by)
    tag = "measured-finetune" + "".join(f" with {c}" for c in cfg.side_cases)
    if args.final is not None:  # the network to ship and its calibration; the scores stay the scoring run's
        write_final(ms, oof, cfg, init, args, tag)
        return
    calibrated_with_side = bool(cfg.side_cases) and args.calibrate_on == "all"
    kind, split_name = ("region", "LORO") if args.by == "region" else ("glacier-wise", "LOGO")
    cvs = {("shipped, raw", "-"): cross_validate(ms, "none"),
           (SHIPPED_CALIBRATED, split_name): cross_validate_on(ms, SHIP, CASES, by=args.by),
           (f"{tag}, raw", f"{cfg.folds} {kind} folds"): cross_validate(oof, "none")}
    if args.nested:
        fitted_on = " with them" if calibrated_with_side else ""
        split = f"{cfg.folds} {kind} folds, {cfg.folds - 1} inner"
        cvs[(f"{tag} + calibration{fitted_on} {NESTED_LABEL}", split)] = nested_calibration(
            ms, cfg, init, args.run_dir, args.calibration, physics, progress=lambda m: logging.info(m),
            calibrate_on=CASES if args.calibrate_on == "today" else None, by=args.by, fit_physics=fit_physics,
            interval_physics=interval_physics)
    seconds = time.perf_counter() - t0
    table = pd.DataFrame([summary(cv, label, split) for (label, split), cv in cvs.items()])
    per_glacier = pd.concat([glathida_per_glacier(cv).assign(variant=label) for (label, _), cv in cvs.items()])
    out: Path = args.out
    # measured_finetune, measured_finetune_alps, ..._calibrated_with_alps: one set of results per protocol
    name = results_name(args.config, args.calibration, args.physics_config, args.fit_physics_config,
                        args.interval_physics_config, args.by, cfg.side_cases if calibrated_with_side else ())
    write_table(table, out / f"{name}.csv")
    write_table(per_glacier, out / f"{name}_glaciers.csv")
    cases = pd.concat([score(cv).assign(variant=label, split=split) for (label, split), cv in cvs.items()])
    write_table(cases[["variant", "split", *[c for c in cases.columns if c not in ("variant", "split")]]],
                out / f"{name}_cases.csv")
    # the Ötztal glacier means one by one (their RMSE's bootstrap interval: benchmarks/selection_noise.py)
    write_table(pd.concat([cv.rows.loc[cv.rows["case"] == "oetztal-means", ["rgi_id", "obs", "mu_cal", "sigma_cal"]]
                           .assign(variant=label, split=split) for (label, split), cv in cvs.items()]),
                out / f"{name}_oetztal.csv")
    regions = pd.concat([glathida_regions(glathida_per_glacier(cv)).assign(variant=label)
                         for (label, _), cv in cvs.items()])
    write_table(regions, out / f"{name}_regions.csv")
    plot_ratios(per_glacier, table["variant"].iloc[-1], out / f"{name}.png")
    ship = table.iloc[1] if baseline is None else baseline
    beaten = "the shipped, calibrated network" if baseline is None else (
        f"`{baseline['variant']}` of [{args.compare_with.name}]({args.compare_with.name}) "
        f"(grids {baseline['grids_median_ratio']:.3f})")
    # the candidate a protocol declares: the nested row when scored (the raw row is the same networks uncalibrated)
    candidates = table.iloc[-1:]
    decisions = ["- Evaluation only (leave-one-region-out): no decision is taken from this run."] if args.by == "region" \
        else coverage_decision(cases, candidates, baseline, args.compare_with) if args.rule == "coverage" \
        else [f"- `{ft['variant']}`: " + (
        f"beats {beaten} by the rule's measured-data part; the simulated test ranges decide next."
        if meets_rule(ft, ship, args.oetztal_max) else
        f"does not beat {beaten} by the rule ({'; '.join(rule_failures(ft, ship, args.oetztal_max))}): "
        "the default is unchanged.")
        for _, ft in candidates.iterrows()]
    if args.compare_with is not None and args.by != "region":
        decisions += paired_lines(per_glacier, candidates["variant"].iloc[-1], args.compare_with)
    # the run's own protocol; a region-wise run's is its glacier-wise one's; else the config's (one per candidate)
    names = [name, name.replace("_loro", "", 1), args.config.stem]
    found = [f"selection_protocol_{n}.md" for n in names if (RESULTS / f"selection_protocol_{n}.md").exists()]
    protocols = found[:1] or [f"selection_protocol_{name}.md"]
    if args.nested and (RESULTS / f"selection_protocol_{name}_nested.md").exists():
        protocols.append(f"selection_protocol_{name}_nested.md")
    n_side = "one glacier" if cfg.side_batch == 1 else f"{cfg.side_batch} glaciers"
    side = f" + {n_side} of {', '.join(cfg.side_cases)} (glacier-mean term only)" if cfg.side_cases else ""
    calibrated_on = f" on {', '.join(CASES)} only" if cfg.side_cases and not calibrated_with_side else ""
    start = f"`{cfg.init_weights}`" if cfg.init_weights else "the shipped weights"
    lines = [
        "# The thickness network fine-tuned on measured thickness (issue 16, item 3)", "",
        f"Run {dt.date.today()}, {seconds / 60:.0f} min on this machine. Protocol(s), written before scoring: "
        + ", ".join(f"[{p}]({p})" for p in protocols) + f". {len(candidates)} new variant(s) in this run. "
        f"Fine-tuning: {cfg.steps} steps from {start}, lr {cfg.lr:g}, one measured glacier{side} + "
        f"{cfg.sim_batch} simulated windows per step"
        + (f", each fine-tuned network then interpolated with its start at α = {cfg.interpolate:g} (weights "
           f"α θ_fine-tuned + (1 − α) θ_start)" if cfg.interpolate != 1.0 else "")
        + f"; {cfg.folds} {kind} folds (a glacier is predicted only by a network fine-tuned without its "
        f"{'region' if args.by == 'region' else 'fold'}); physics stage on"
        + (f" with {config_changes(physics)}" if isinstance(physics, PhysicsConfig) and config_changes(physics) else "")
        + (f", the nested calibration fitted on inner maps with {config_changes(fit_physics) or 'the default physics'}"
           if fit_physics is not None else "")
        + (f", its interval step fitted on inner maps with {config_changes(interval_physics) or 'the default physics'}"
           if interval_physics is not None else "") + ". `raw`: no calibration on the fine-tuned network; "
        "`nested`: the shipped calibration's variant fitted on inner out-of-fold maps of the other glaciers "
        f"(networks fine-tuned without the outer fold too){calibrated_on}. "
        f"`shipped, calibrated`: refitted leave-one-{'region' if args.by == 'region' else 'glacier'}-out on "
        + ", ".join(CASES) + (
            "; the Alps means predicted by the fit on those (never fitted on)" if cfg.side_cases else "") + ". "
        "Grid ratio: median over the grid glaciers of RMSE / that glacier's best baseline (VA, GlabTop, OGGM) on "
        "the same cells.", "",
        to_markdown(table), "",
        "Per case (RMSE, bias, 68 % / 90 % interval coverage; baselines on the same rows): "
        f"[{name}_cases.csv]({name}_cases.csv); per grid region: [{name}_regions.csv]({name}_regions.csv).", "",
        "## Decision (the protocol's rule)", "", *decisions,
        "", f"![per glacier]({name}.png)", "",
        "## Folds", "", to_markdown(folds.drop(columns=["weights"])), ""]
    write_text(out / f"{name}.md", "\n".join(lines))
    print("\n".join(lines))


def write_final(ms: MeasuredSet, oof: MeasuredSet, cfg: MeasuredFinetuneConfig, init: Path,
                args: argparse.Namespace, tag: str) -> None:
    """``--final``: the network fine-tuned on every measured glacier (``args.final``) and, beside it
    (``<stem>.calibration.json``), the shipped calibration's variant fitted on the fold networks'
    out-of-fold maps ``oof``, recorded with the nested scores of the scoring run (``<config>.csv``)."""
    from glacierbed.core.atomic import file_sha256

    final, record = finetune_all(ms, cfg, init, args.run_dir, args.final)
    logging.info("fine-tuned on all %d measured glaciers: %s", record["finetuned_on_measured"]["n_windows"], final)
    calibrate_on = CASES if args.calibrate_on == "today" else None
    cal = out_of_fold_calibration(oof, SHIP, calibrate_on)
    cal.model_identity = file_sha256(final)
    scores = args.out / f"{args.config.stem}.csv"
    nested = pd.read_csv(scores) if scores.exists() else pd.DataFrame(columns=["variant"])
    nested = nested_variant_rows(nested)
    cal.meta = {"model": tag, "physics": True if args.physics_config is None else
                PhysicsConfig.from_yaml(args.physics_config).to_yaml(), "ensemble": 4,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "fitted_by": f"benchmarks/measured_finetune.py --config {args.config.name} --final",
                "fitted_on": f"out-of-fold maps of {cfg.folds} glacier-wise fold networks (each glacier predicted "
                             "by a network fine-tuned without it)",
                "nested_scores": nested.to_dict("records"),
                "hintereisferner": "consensus volume is a check only, never fitted on"}
    out = cal.save(Path(args.final).with_name(f"{Path(args.final).stem}.calibration.json"))
    logging.info("calibration fitted on %d out-of-fold rows: %s", cal.trained_on.get("n_rows", 0), out)


def refit_interval(ms: MeasuredSet, cfg: MeasuredFinetuneConfig, init: Path, args: argparse.Namespace,
                   fit_physics: PhysicsConfig, interval_physics: PhysicsConfig) -> None:
    """``--refit-interval``: the calibration's interval step refitted on the fold networks' out-of-fold maps made
    with ``interval_physics`` (its other steps, as fitted, refitted out of fold on ``fit_physics``' maps for the
    interval's inputs), as candidate 29's nested run scored it; the file rewritten with its meta updated."""
    from glacierbed.posterior.calibration import Calibration

    calibrate_on = CASES if args.calibrate_on == "today" else None
    fitted, _ = cross_validate_finetune(ms, cfg, init, args.run_dir, fit_physics, by=args.by)
    described, _ = cross_validate_finetune(ms, cfg, init, args.run_dir, interval_physics, by=args.by)
    fitted, described = only_cases(fitted, calibrate_on), only_cases(described, calibrate_on)
    cal = Calibration.load(args.refit_interval)
    # the interval step in the variant's form (candidate 37's parametric sigma by default)
    cal.steps[-1] = Calibration.variant(args.calibration).steps[-1]
    cal.refit_interval(fitted.rows, fitted.pixels, described.rows, described.pixels)
    cal.meta = {**cal.meta, "physics": fitted_physics_record(fit_physics, interval_physics),
                "interval_refit": {
                    "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "by": f"benchmarks/measured_finetune.py --config {args.config.name} --refit-interval "
                          f"--fit-physics-config {args.fit_physics_config.name} --interval-physics-config "
                          f"{args.interval_physics_config.name} --calibration {args.calibration}",
                    "on": f"out-of-fold maps of {cfg.folds} glacier-wise fold networks of {args.run_dir.name}"}}
    out = cal.save(args.refit_interval)
    logging.info("interval refitted on %d out-of-fold rows: %s", cal.trained_on.get("interval_n_rows", 0), out)


def start_weights(cfg: MeasuredFinetuneConfig, config: Path) -> Path:
    """The network the folds start from: the config's ``init_weights`` or the shipped one; refused when it was
    itself fine-tuned on measured glaciers (every held-out glacier would have been seen by the start)."""
    from glacierbed.models.thickness.records import measured_groups, read_record

    init = Path(cfg.init_weights) if cfg.init_weights else shipped_weights("thickness_net.pt")
    if not init.is_file():
        raise SystemExit(f"{config}: init_weights {init} is not a file")
    seen = measured_groups(read_record(init))
    if seen:
        raise SystemExit(f"{config}: the start {init} was fine-tuned on {len(seen)} measured glaciers, so no fold "
                         "would hold them out; name a start that never saw them in init_weights (e.g. stage 0 of the "
                         "default's lineage, benchmarks/configs/measured_finetune_from_stage0.yaml)")
    return init


def coverage_decision(cases: pd.DataFrame, candidates: pd.DataFrame, baseline: pd.Series | None,
                      compare_with: Path | None) -> list[str]:
    """The decision lines of ``--rule coverage``: deviations of this run's nested row and of ``compare_with``'s
    (its ``_cases.csv``), and whether the thickness columns are unchanged."""
    if baseline is None or compare_with is None:
        raise SystemExit("--rule coverage compares with a run: give --compare-with")
    ref_cases = compare_with.with_name(f"{compare_with.stem}_cases.csv")
    if not ref_cases.is_file():
        raise SystemExit(f"--compare-with {compare_with}: its cases table {ref_cases} is missing")
    mine, ref = coverage_deviations(cases), coverage_deviations(pd.read_csv(ref_cases))
    ft = candidates.iloc[-1]
    thickness = ["grids_median_ratio", "south_glacier_rmse_m", "oetztal_means_rmse_m"]
    same = all(np.isclose(ft[c], baseline[c], rtol=0, atol=1e-9) for c in thickness)
    failures = coverage_rule_failures(mine, ref) + ([] if same else ["thickness columns differ from the reference"])
    table = pd.DataFrame({"this run": mine, compare_with.stem: ref}).round(1)
    return ["Coverage deviation from nominal, points (nested row):", "", to_markdown(table.reset_index(
        names="case level")), "", f"- `{ft['variant']}`: " + (
        "meets the coverage rule: its interval is installed (`--refit-interval`)." if not failures else
        f"does not meet the coverage rule ({'; '.join(failures)}): the default is unchanged.")]


def paired_lines(per_glacier: pd.DataFrame, variant: str, compare_with: Path) -> list[str]:
    """A reported line: the candidate's per-glacier grid ratios against ``compare_with``'s nested row (its
    ``_glaciers.csv``), paired bootstrap gaps of the median and the mean log ratio (:func:`ratio_gaps`)."""
    ref_path = compare_with.with_name(f"{compare_with.stem}_glaciers.csv")
    if not ref_path.is_file():
        return [f"- No paired intervals: {ref_path.name} is missing."]
    ref = pd.read_csv(ref_path, dtype={"rgi_id": str})
    ref = nested_variant_rows(ref)
    mine = per_glacier[per_glacier["variant"] == variant]
    g = ratio_gaps(mine.set_index("rgi_id")["ratio_to_best_baseline"],
                   ref.set_index("rgi_id")["ratio_to_best_baseline"])
    return ["- Reported, not deciding: paired over the grid glaciers against that run's nested row (90 % bootstrap), "
            + "; ".join(f"{label} gap {gap_text(g, k)}"
                        + ("" if g[f"{k}_gap_resolved"] else ", within the draw of glaciers")
                        for k, label in (("median", "median"), ("mean_log", "mean log ratio"))) + "."]


def nested_glacier_wise(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a table of this script (results or cases) that belong to the nested glacier-wise variant."""
    nested = nested_variant_rows(table)
    return nested[nested["split"].astype(str).str.contains("glacier-wise")]


def rule_baseline(path: Path) -> pd.Series:
    """The nested glacier-wise row of a results CSV of this script: the row a candidate must beat."""
    if not path.is_file():
        raise SystemExit(f"--compare-with {path}: no such results file")
    rows = pd.read_csv(path)
    nested = nested_glacier_wise(rows) if "variant" in rows else rows.iloc[:0]
    if len(nested) != 1:
        raise SystemExit(f"--compare-with {path}: expected one nested glacier-wise row, found {len(nested)}")
    return nested.iloc[0]


def rule_failures(ft: pd.Series, ship: pd.Series, oetztal_max_m: float = 11.4) -> list[str]:
    """The protocols' measured-data part, each bound the candidate ``ft`` misses with its value: a lower grid ratio
    than ``ship``, South Glacier <= 29 m, Ötztal means <= ``oetztal_max_m`` and, where scored, Alps means no worse
    than ``ship``. Empty when the rule is met."""
    failures = []
    if not ft["grids_median_ratio"] < ship["grids_median_ratio"]:
        failures.append(f"grids {ft['grids_median_ratio']:.4f} not below {ship['grids_median_ratio']:.4f}")
    if not ft["south_glacier_rmse_m"] <= 29.0:
        failures.append(f"South Glacier {ft['south_glacier_rmse_m']:.3f} m > 29 m")
    if not ft["oetztal_means_rmse_m"] <= oetztal_max_m:
        failures.append(f"Ötztal means {ft['oetztal_means_rmse_m']:.3f} m > {oetztal_max_m:g} m")
    reference = ship.get("alps_means_rmse_m", np.nan)
    if np.isfinite(reference) and not ft["alps_means_rmse_m"] <= reference:
        failures.append(f"Alps means {ft['alps_means_rmse_m']:.2f} m > {reference:.2f} m")
    return failures


#: the (case, level) pairs of the coverage rule (candidate 29's protocol)
COVERAGE_CASES = ("south-glacier", "glathida-grids", "oetztal-means")


def coverage_deviations(cases: pd.DataFrame) -> pd.Series:
    """:func:`scored_deviations` of the nested glacier-wise row of the cases table of this script."""
    return scored_deviations(nested_glacier_wise(cases))


def scored_deviations(scored: pd.DataFrame) -> pd.Series:
    """|coverage - nominal| in points per (case, level) of :data:`COVERAGE_CASES`, from one row per case
    (``case``, ``coverage68``, ``coverage90``: :func:`~glacierbed.evaluation.cross_validation.score`'s table; grids
    glacier-balanced)."""
    by_case = scored.set_index("case")
    return pd.Series({f"{case} {level}": abs(100.0 * by_case.loc[case, f"coverage{level}"] - level)
                      for case in COVERAGE_CASES for level in (68, 90)})


def coverage_rule_failures(candidate: pd.Series, reference: pd.Series) -> list[str]:
    """Candidate 29's rule: the worst deviation (:func:`coverage_deviations`) lower than the reference's and
    their mean not higher. Empty when met."""
    failures = []
    if not candidate.max() < reference.max():
        failures.append(f"worst coverage deviation {candidate.max():.1f} not below {reference.max():.1f} points "
                        f"({candidate.idxmax()})")
    if not candidate.mean() <= reference.mean():
        failures.append(f"mean deviation {candidate.mean():.1f} above {reference.mean():.1f} points")
    return failures


def meets_rule(ft: pd.Series, ship: pd.Series, oetztal_max_m: float = 11.4) -> bool:
    """Whether ``ft`` meets the protocols' measured-data part (:func:`rule_failures` is empty)."""
    return not rule_failures(ft, ship, oetztal_max_m)


if __name__ == "__main__":
    run_script(main)
