"""The thickness network fine-tuned on the kit's measured thickness, scored on glaciers left out.

:func:`measured_windows` turns the measured table (:func:`glacierbed.evaluation.measured_table.collect`:
South Glacier radar, the GlaThiDa grids' cells, the Ötztal glacier means and, when collected,
the Alps glacier means; held-out surveys already left out) into :class:`~glacierbed.models.thickness.finetune.MeasuredWindow` samples:
the estimate stage's own window and feature stack of each measured glacier
(:func:`glacierbed.pipeline.glacier.read_glacier_window`), its measurements binned to the
working grid's pixels (mean per pixel) and its glacier mean. :func:`glacier_folds` deals the
glacier identities to folds; :func:`cross_validate_finetune` fine-tunes once per fold without
that fold's glaciers and runs the real pipeline with each fold's network on its held-out
glaciers only, so every row of the returned table is predicted by a network that never saw
its glacier (``benchmarks/measured_finetune.py`` scores it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from glacierbed.core.config import config_to_dict, load_config
from glacierbed.core.errors import CorruptFileError
from glacierbed.evaluation.measured_table import CASES, MeasuredSet, collect, read_case_inputs
from glacierbed.models.thickness.finetune import MeasuredFinetuneConfig, MeasuredWindow, finetune_on_measured
from glacierbed.posterior.calibration import MEAN_UNIT
from glacierbed.posterior.physics_config import PhysicsConfig, as_physics_config

log = logging.getLogger(__name__)

#: measured cases with one example per glacier: a fold runs only its held-out glaciers of them
PER_GLACIER_CASES = ("glathida-grids", "alps-means")


def measured_windows(ms: MeasuredSet, model: str | Path | None, work_dir: str | Path) -> list[MeasuredWindow]:
    """One window per measured glacier of ``ms`` (its rows), as the estimate stage shows it to ``model``."""
    from glacierbed.pipeline.estimate import EstimateConfig, prepare_region
    from glacierbed.pipeline.glacier import glacier_window, read_glacier_window
    from glacierbed.pipeline.store import load_predictor

    predictor = load_predictor(model)
    if not hasattr(predictor, "window_features"):
        raise ValueError(f"model {predictor.name}: not a thickness network (only those can be fine-tuned)")
    out = []
    for example, rows in ms.rows.groupby("example", sort=True):
        dem, outlines, _ = read_case_inputs(str(example))
        region = prepare_region(dem, outlines, Path(work_dir) / str(example), predictor, EstimateConfig(), aux={})
        specs = {s.rgi_id: s for s in region.specs}
        for rgi_id, g in rows.groupby("rgi_id", sort=True):
            if rgi_id not in specs:
                log.warning("%s: %s has measurements but no window on the DEM: skipped", example, rgi_id)
                continue
            spec = specs[rgi_id]
            win = read_glacier_window(spec, region.ctx, predictor)
            _, feats = predictor.window_features(glacier_window(spec, region.ctx, win))
            truth = _binned(win.ww, g[g["unit"] != MEAN_UNIT])
            means = g.loc[g["unit"] == MEAN_UNIT, "obs"].to_numpy(float)
            out.append(MeasuredWindow(str(g["group"].iloc[0]), feats.astype(np.float32), truth, win.ownw.copy(),
                                      float(means.mean()) if len(means) else float("nan"), str(g["case"].iloc[0])))
    return out


def _binned(grid, rows: pd.DataFrame) -> np.ndarray:
    """Mean measured thickness per pixel of ``grid`` (NaN where none)."""
    truth = np.full(grid.shape, np.nan, np.float32)
    if not len(rows):
        return truth
    cols, rr = ~grid.transform @ (rows["x"].to_numpy(float), rows["y"].to_numpy(float))
    r, c = np.floor(np.asarray(rr)).astype(int), np.floor(np.asarray(cols)).astype(int)
    inside = (r >= 0) & (r < grid.shape[0]) & (c >= 0) & (c < grid.shape[1])
    flat = r[inside] * grid.shape[1] + c[inside]
    obs = rows["obs"].to_numpy(float)[inside]
    sums = np.bincount(flat, obs, minlength=truth.size)
    counts = np.bincount(flat, minlength=truth.size)
    has = counts > 0
    truth.ravel()[has] = sums[has] / counts[has]
    return truth


def with_folds_by(cfg: MeasuredFinetuneConfig, ms: MeasuredSet, by: str) -> MeasuredFinetuneConfig:
    """``cfg`` with the fold count :func:`glacier_folds` needs for ``by``: the config's for glacier-wise
    folds, one per RGI region of the measured rows for region-wise ones."""
    from dataclasses import replace

    return cfg if by == "group" else replace(cfg, folds=ms.rows["region"].astype(str).nunique())


def glacier_folds(ms: MeasuredSet, n_folds: int, by: str = "group") -> dict[str, int]:
    """Fold of every glacier identity. ``by="group"``: sorted by (region, group), dealt round-robin
    (measured glaciers first, so they spread evenly; pixel-only glaciers follow). ``by="region"``: one
    fold per RGI region of the measured rows (leave-one-region-out; ``n_folds`` must be their number)."""
    if by == "region":
        regions = sorted(set(ms.rows["region"].astype(str)))
        if n_folds != len(regions):
            raise ValueError(f"leave-one-region-out needs folds = {len(regions)} (regions {', '.join(regions)}), "
                             f"not {n_folds}")
        both = pd.concat([ms.rows[["region", "group"]], ms.pixels[["region", "group"]]]).astype(str)
        return {g: regions.index(r) for g, r in zip(both["group"], both["region"]) if r in regions}
    measured = ms.rows[["region", "group"]].astype(str).drop_duplicates().sort_values(["region", "group"])
    folds = {g: i % n_folds for i, g in enumerate(measured["group"])}
    others = sorted(set(ms.pixels["group"].astype(str)) - set(folds))
    folds.update({g: (len(folds) + i) % n_folds for i, g in enumerate(others)})
    return folds


def subset(ms: MeasuredSet, groups: set[str], keep: bool = True) -> MeasuredSet:
    """The rows and pixels of ``ms`` whose glacier identity is (``keep``) or is not in ``groups``."""
    def pick(df: pd.DataFrame) -> pd.DataFrame:
        return df[df["group"].astype(str).isin(groups) == keep] if len(df) else df

    return MeasuredSet(pick(ms.rows), pick(ms.pixels), dict(ms.info))


def cross_validate_finetune(ms: MeasuredSet, cfg: MeasuredFinetuneConfig, init_weights: str | Path,
                            run_dir: str | Path, physics: bool | PhysicsConfig = True,
                            progress: Callable[[str], None] | None = None,
                            windows: list[MeasuredWindow] | None = None,
                            by: str = "group", smb: bool = False) -> tuple[MeasuredSet, pd.DataFrame]:
    """Out-of-fold measured table of the fine-tuned network (see the module docstring) and one
    row per fold (glaciers held out, windows fitted on, seconds). ``windows``: those of
    :func:`measured_windows` when already made (only the glaciers of ``ms`` are used); ``by``:
    glacier-wise (``"group"``) or region-wise (``"region"``) folds (:func:`glacier_folds`); ``smb``: the maps
    of the examples with an SMB raster in the kit made with it (:func:`~glacierbed.evaluation.measured_table.collect`)."""
    import time

    run_dir = Path(run_dir)
    folds = glacier_folds(ms, cfg.folds, by)
    if windows is None:
        windows = measured_windows(ms, init_weights, run_dir / "windows")
    measured = set(ms.rows["group"].astype(str))
    windows = [w for w in windows if w.group in measured]
    rows, pixels, info = [], [], []
    for k in range(cfg.folds):
        held = {g for g, f in folds.items() if f == k}
        t0 = time.perf_counter()
        train = fewer_glaciers([w for w in windows if w.group not in held], cfg.train_glaciers, cfg.seed + k)
        weights, _ = finetune_on_measured(cfg, init_weights, train, run_dir, run_dir / f"fold{k}" / "weights.pt")
        t_fit = time.perf_counter() - t0
        # Ötztal and Hintereisferner hold glaciers of every fold: run each time, keep this fold's
        cases = [c for c in CASES if c not in (*PER_GLACIER_CASES, "south-glacier")]
        if ms.rows.loc[ms.rows["case"] == "south-glacier", "group"].astype(str).isin(held).any():
            cases.insert(0, "south-glacier")
        parts = [collect(run_dir / "tables", weights, physics, cases=cases, allow_seen=True, smb=smb)]
        held_ids = {}
        for case in PER_GLACIER_CASES:  # one example per glacier: run the held-out ones only
            of_case = ms.rows[ms.rows["case"] == case]
            held_ids[case] = sorted(set(of_case.loc[of_case["group"].astype(str).isin(held), "rgi_id"].astype(str)))
            if held_ids[case]:
                parts.append(collect(run_dir / "tables", weights, physics, cases=[case], glaciers=held_ids[case],
                                     allow_seen=True, smb=smb))
        for p in parts:
            rows.append(p.rows[p.rows["group"].astype(str).isin(held)])
            pixels.append(p.pixels[p.pixels["group"].astype(str).isin(held)])
        info.append({"fold": k, "held_out_groups": len(held), "held_out_grids": len(held_ids["glathida-grids"]),
                     "held_out_alps_means": len(held_ids["alps-means"]),
                     "fitted_windows": len(train), "fit_seconds": round(t_fit, 1),
                     "seconds": round(time.perf_counter() - t0, 1), "weights": str(weights)})
        if progress:
            progress(f"fold {k + 1}/{cfg.folds}: {len(train)} glaciers fitted, {len(held)} held out")
    oof = MeasuredSet(pd.concat(rows, ignore_index=True), pd.concat(pixels, ignore_index=True),
                      {"folds": info, "config": cfg.__dict__})
    return oof, pd.DataFrame(info)


def fewer_glaciers(windows: list[MeasuredWindow], n: int, seed: int) -> list[MeasuredWindow]:
    """The windows of ``n`` of their glacier identities drawn at random (``seed``), a glacier's windows together;
    all of them when ``n`` is 0 or not fewer than the glaciers there are."""
    groups = sorted({w.group for w in windows})
    if n <= 0 or n >= len(groups):
        return windows
    keep = set(np.random.default_rng(seed).choice(groups, n, replace=False))
    return [w for w in windows if w.group in keep]


def finetune_all(ms: MeasuredSet, cfg: MeasuredFinetuneConfig, init_weights: str | Path, run_dir: str | Path,
                 out: str | Path, windows: list[MeasuredWindow] | None = None) -> tuple[Path, dict]:
    """The network fine-tuned on every measured glacier of ``ms`` (the one that would ship; its
    out-of-fold scores are :func:`cross_validate_finetune`'s). Returns (weights path, record)."""
    run_dir = Path(run_dir)
    if windows is None:
        windows = measured_windows(ms, init_weights, run_dir / "windows")
    measured = set(ms.rows["group"].astype(str))
    return finetune_on_measured(cfg, init_weights, [w for w in windows if w.group in measured], run_dir, out)


def nested_calibration(ms: MeasuredSet, cfg: MeasuredFinetuneConfig, init_weights: str | Path, run_dir: str | Path,
                       variant: str, physics: bool | PhysicsConfig = True,
                       progress: Callable[[str], None] | None = None,
                       calibrate_on: Sequence[str] | None = None, by: str = "group",
                       fit_physics: bool | PhysicsConfig | None = None,
                       interval_physics: bool | PhysicsConfig | None = None):
    """:func:`nested_calibrations` of one calibration ``variant`` (its CrossValidation)."""
    return nested_calibrations(ms, cfg, init_weights, run_dir, [variant], physics, progress, calibrate_on, by,
                               fit_physics, interval_physics)[variant]


def nested_calibrations(ms: MeasuredSet, cfg: MeasuredFinetuneConfig, init_weights: str | Path, run_dir: str | Path,
                        variants: Sequence[str], physics: bool | PhysicsConfig = True,
                        progress: Callable[[str], None] | None = None,
                        calibrate_on: Sequence[str] | None = None, by: str = "group",
                        fit_physics: bool | PhysicsConfig | None = None,
                        interval_physics: bool | PhysicsConfig | None = None, smb: bool = False,
                        inner_by: str | None = None) -> dict:
    """The fine-tuned network *and* a calibration on top, both fitted without each outer fold.

    For outer fold k: the network fine-tuned without it (:func:`cross_validate_finetune`) predicts its glaciers;
    each calibration of ``variants`` is fitted on out-of-fold maps of the other glaciers made by networks fine-tuned
    without fold k too (an inner :func:`cross_validate_finetune` with one fold fewer on them), so neither the network
    nor the calibration ever saw fold k. ``calibrate_on``: the cases whose inner rows the calibration is fitted on
    (None: all; the network is fine-tuned on all cases either way); ``by``: glacier- or region-wise folds, outer and
    inner; ``fit_physics``: the physics stage of the inner maps the calibration is fitted on, when it differs from the
    scored maps' ``physics`` (e.g. a calibration fitted on zero-margin maps applied to plastic-margin ones, as the
    shipped calibration would be); ``interval_physics``: the physics stage of the inner maps the interval step alone
    is fitted on (the steps before it fitted on ``fit_physics``' maps and applied to these; None, or the same physics:
    the same maps as the other steps, read once); ``smb``: the outer maps made with the kit's SMB rasters, the inner
    ones without (as the shipped calibration was fitted); ``inner_by``: the inner folds' key when it differs from the
    outer ``by`` (region-wise outer folds with glacier-wise inner ones: the shipped design, a calibration fitted on
    glacier-wise out-of-fold maps, on a region it never saw). Returns per variant (each fitted on the same inner maps)
    the :class:`~glacierbed.evaluation.cross_validation.CrossValidation` of the outer folds (``rows`` with ``mu_cal``;
    ``glaciers``; ``fits`` per outer fold) for :func:`~glacierbed.evaluation.cross_validation.score`.
    """
    from glacierbed.evaluation.cross_validation import CrossValidation, cross_validate

    run_dir = Path(run_dir)
    inner_by = by if inner_by is None else inner_by
    inner_name = "inner{}" if inner_by == by else f"inner{{}}-by-{inner_by}"
    inner_physics = physics if fit_physics is None else fit_physics
    if interval_physics is not None and as_physics_config(interval_physics) == as_physics_config(inner_physics):
        interval_physics = None  # the interval's maps are the other steps' maps
    windows = measured_windows(ms, init_weights, run_dir / "windows")
    outer, _ = cross_validate_finetune(ms, cfg, init_weights, run_dir, physics, progress, windows, by, smb)
    folds = glacier_folds(ms, cfg.folds, by)
    rows, glaciers, fits = ({v: [] for v in variants} for _ in range(3))
    for k in range(cfg.folds):
        held = {g for g, f in folds.items() if f == k}
        inner = (subset(ms, held, keep=False), cfg, init_weights, run_dir / inner_name.format(k))
        fit = _inner_maps(*inner, inner_physics, progress, windows, inner_by, calibrate_on)
        test = subset(outer, held)
        interval_on = None
        if interval_physics is not None:
            iv = _inner_maps(*inner, interval_physics, progress, windows, inner_by, calibrate_on)
            interval_on = MeasuredSet(iv.rows.assign(nest="fit"), iv.pixels.assign(nest="fit"))
        both = MeasuredSet(pd.concat([fit.rows.assign(nest="fit"), test.rows.assign(nest="held")],
                                     ignore_index=True),
                           pd.concat([fit.pixels.assign(nest="fit"), test.pixels.assign(nest="held")],
                                     ignore_index=True))
        for variant in variants:
            cv = cross_validate(both, variant, by="nest", only=["held"], interval_on=interval_on)
            rows[variant].append(cv.rows.assign(fold=k))
            glaciers[variant].append(cv.glaciers.assign(fold=k))
            fits[variant].append((str(k), cv.fits["held"]))
        if progress:
            progress(f"outer fold {k + 1}/{cfg.folds}: calibration fitted on {len(fit.rows)} inner out-of-fold rows")
    return {v: CrossValidation(f"finetune+{v}", "nested", pd.concat(rows[v], ignore_index=True),
                               pd.concat(glaciers[v], ignore_index=True), dict(fits[v])) for v in variants}


def _inner_maps(others: MeasuredSet, cfg: MeasuredFinetuneConfig, init_weights: str | Path, run_dir: Path,
                physics: bool | PhysicsConfig, progress: Callable[[str], None] | None,
                windows: list[MeasuredWindow], by: str, calibrate_on: Sequence[str] | None) -> MeasuredSet:
    """An outer fold's inner out-of-fold maps: ``others`` (the glaciers outside it) in ``cfg.folds - 1`` folds of
    ``by``, each predicted by a network fine-tuned without it (cached in ``run_dir``), of the ``calibrate_on`` cases."""
    from dataclasses import replace

    inner, _ = cross_validate_finetune(others, replace(cfg, folds=cfg.folds - 1), init_weights, run_dir, physics,
                                       progress, windows, by)
    return only_cases(inner, calibrate_on)


def fitted_physics_record(fit_physics: PhysicsConfig, interval_physics: PhysicsConfig) -> dict[str, dict]:
    """A calibration's ``meta["physics"]``: every field of the physics stage of the maps its steps before the
    interval were fitted on and of those its interval describes (read back by :func:`calibration_physics`)."""
    return {"fit": config_to_dict(fit_physics), "interval": config_to_dict(interval_physics)}


def calibration_physics(cal) -> tuple[PhysicsConfig, PhysicsConfig]:
    """(fit, interval) physics of the maps a calibration was fitted on, from its ``meta["physics"]``
    (:func:`fitted_physics_record`); a calibration that records none (fitted before 2026-12-06, on the maps of the
    physics default of its day) is refused rather than guessed."""
    record = cal.meta.get("physics")
    if not isinstance(record, dict) or set(record) != {"fit", "interval"}:
        raise CorruptFileError(f"{cal.source or 'calibration'}: its meta does not record the physics of the maps it was "
                         f"fitted on ({record!r})")
    return load_config(PhysicsConfig, record["fit"]), load_config(PhysicsConfig, record["interval"])


def only_cases(ms: MeasuredSet, cases: Sequence[str] | None) -> MeasuredSet:
    """The rows and pixels of ``cases`` (None: all)."""
    if cases is None:
        return ms
    return MeasuredSet(ms.rows[ms.rows["case"].isin(cases)], ms.pixels[ms.pixels["case"].isin(cases)], ms.info)


#: the end of the nested variant's label in the results tables of ``benchmarks/measured_finetune.py``
NESTED_LABEL = "(nested)"


def nested_variant_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of such a results table (results, cases, per glacier) that belong to its nested variant."""
    return table[table["variant"].astype(str).str.endswith(NESTED_LABEL)]


#: the measured-fine-tuning splits scored nested: name, fold key (:func:`glacier_folds`)
SPLITS = (("glacier-wise", "group"), ("region-wise", "region"))


def default_recipe_options(ap, config: Path) -> None:
    """argparse options of the benchmarks that rescore the default's recipe (``config``) nested on its cached
    fold networks: the measured table of the network it was fine-tuned from, and a run folder per split."""
    cache = Path.home() / ".cache"
    ap.add_argument("--config", type=Path, default=config)
    ap.add_argument("--table-dir", type=Path, default=cache / "glacierbed-calibration")
    ap.add_argument("--reference", default="runs/previous_default/thickness-net.pt",
                    help="the previous default, stage 0 of the default's lineage (its measured table gives the rows; "
                         "the fine-tunes start from the spanning stage after it, the config's init_weights)")
    ap.add_argument("--glacier-run-dir", type=Path, default=cache / "glacierbed-finetune-spanning-p128")
    ap.add_argument("--region-run-dir", type=Path, default=cache / "glacierbed-finetune-loro")
    ap.add_argument("--splits", nargs="+", choices=[name for name, _ in SPLITS], default=[name for name, _ in SPLITS],
                    help="the splits scored (each needs its fold networks: about an hour to make on 2 cores)")


def default_recipe(args) -> tuple[MeasuredFinetuneConfig, MeasuredSet]:
    """The recipe and the measured table named by the options of :func:`default_recipe_options`."""
    from glacierbed.evaluation.measured_table import collect

    return MeasuredFinetuneConfig.from_yaml(args.config), collect(args.table_dir, args.reference, True)


def raw_out_of_fold(ms: MeasuredSet, cfg: MeasuredFinetuneConfig, run_dir: Path, by: str = "group"
                    ) -> tuple[pd.DataFrame, dict]:
    """Per-glacier grid ratios and the acceptance figures of the raw (uncalibrated) out-of-fold maps of ``cfg``'s fold
    networks (:func:`cross_validate_finetune`, fine-tuned from ``cfg.init_weights``; cached ones reused)."""
    from glacierbed.evaluation.cross_validation import acceptance_summary, cross_validate, glathida_per_glacier

    oof, folds = cross_validate_finetune(ms, cfg, Path(cfg.init_weights), run_dir, True, by=by,
                                         progress=lambda m: log.info(m))
    cv = cross_validate(oof, "none")
    fitted = f"{folds['fitted_windows'].min()}–{folds['fitted_windows'].max()} windows"
    return glathida_per_glacier(cv), {**acceptance_summary(cv), "fitted": fitted}


def nested_by_split(args, variants: Sequence[str], progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """:func:`nested_calibrations` of ``variants`` for each split of ``args.splits`` (:data:`SPLITS`), from the
    options of :func:`default_recipe_options` (calibrations fitted on the measured cases): ``{split: {variant: cv}}``.
    The maps scored have the default physics; the calibrations are fitted on maps with the physics the shipped
    calibration was fitted on (:func:`calibration_physics`), so each variant is fitted as the default's would be.
    Optional: ``args.smb``, the scored maps made with the kit's SMB rasters; ``args.inner_by``, the inner folds' key."""
    from glacierbed.evaluation.measured_table import CASES
    from glacierbed.pipeline.store import shipped_weights
    from glacierbed.posterior.calibration import Calibration

    fit_physics, interval_physics = calibration_physics(Calibration.load(shipped_weights(
        "thickness_net.calibration.json")))
    cfg, ms = default_recipe(args)
    run_dirs = {"group": args.glacier_run_dir, "region": args.region_run_dir}
    return {split: nested_calibrations(ms, with_folds_by(cfg, ms, by), Path(cfg.init_weights), run_dirs[by],
                                       list(variants), calibrate_on=CASES, by=by, progress=progress,
                                       fit_physics=fit_physics, interval_physics=interval_physics,
                                       smb=bool(getattr(args, "smb", False)),
                                       inner_by=getattr(args, "inner_by", None))
            for split, by in SPLITS if split in getattr(args, "splits", [name for name, _ in SPLITS])}


def diagnostic_condition(candidate: Mapping[str, float], reference: Mapping[str, float], ratio_column: str,
                         what: str, against: str, variant: str) -> tuple[bool, str]:
    """The rule the averaging diagnostics' protocols declared before a ``variant`` would be: ``candidate``'s median
    over the grid glaciers of its RMSE / ``reference``'s (``ratio_column``) at most 0.97, with South Glacier's and
    the Ötztal means' RMSE at most 2 % worse. Returns (met, the report's line)."""
    met = bool(candidate[ratio_column] <= 0.97
               and candidate["south_glacier_rmse_m"] <= 1.02 * reference["south_glacier_rmse_m"]
               and candidate["oetztal_means_rmse_m"] <= 1.02 * reference["oetztal_means_rmse_m"])
    line = (f"- {what}: grids median ratio to {against} {candidate[ratio_column]:.3f} (≤ 0.97?), South Glacier "
            f"{candidate['south_glacier_rmse_m']:.1f} vs {reference['south_glacier_rmse_m']:.1f} m, Ötztal "
            f"{candidate['oetztal_means_rmse_m']:.2f} vs {reference['oetztal_means_rmse_m']:.2f} m (≤ 2 % worse?): **"
            + (f"met: {variant} is worth declaring as a variant" if met else f"not met: no {variant} follows from it")
            + "**.")
    return met, line


def out_of_fold_calibration(oof: MeasuredSet, variant: str, calibrate_on: Sequence[str] | None = CASES):
    """The calibration ``variant`` to ship beside the network fine-tuned on all glaciers
    (:func:`finetune_all`), fitted on out-of-fold maps ``oof`` (:func:`cross_validate_finetune`'s table:
    each glacier predicted by the fold network fine-tuned without it).

    Fitting it on the final network's own maps would teach it the residuals of glaciers the network
    has seen (too small, intervals too narrow); out-of-fold maps are what a new glacier gets, and it
    is how :func:`nested_calibration` scored it. ``calibrate_on``: the cases fitted on (None: all).
    Returns the fitted :class:`~glacierbed.posterior.calibration.Calibration` (identity not set)."""
    from glacierbed.posterior.calibration import Calibration

    oof = only_cases(oof, calibrate_on)
    return Calibration.variant(variant).fit(oof.rows, oof.pixels)


__all__ = ["measured_windows", "with_folds_by", "glacier_folds", "subset", "cross_validate_finetune", "fewer_glaciers",
           "finetune_all", "nested_calibration", "nested_calibrations", "fitted_physics_record", "calibration_physics",
           "only_cases", "out_of_fold_calibration", "NESTED_LABEL", "nested_variant_rows", "SPLITS",
           "default_recipe_options", "default_recipe", "raw_out_of_fold", "nested_by_split", "diagnostic_condition"]
