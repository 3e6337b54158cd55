"""Run ``estimate`` on every DEM + outline pair of the data kit (Svalbard: its glacier mask); one row per glacier.

Each example of :data:`EXAMPLES` (names checked against ``glacierbed.data.registry.EXAMPLES``
and resolved before anything runs) goes through :func:`glacierbed.pipeline.estimate.estimate` with the
requested model and the default :class:`~glacierbed.pipeline.estimate.EstimateConfig` (its default
ensemble, physics posterior on, the model's shipped calibration applied when it has one),
without maps, in a fresh work folder. Beside each glacier, in the same run:

* ``va_volume_km3``: volume-area scaling of the outline's area
  (:func:`glacierbed.evaluation.baselines.va_volume_km3`: V = 0.034 A^1.375 km3, A in km2; Bahr et al.
  1997), ``ratio_to_va`` = volume / that;
* ``slope_deg`` and ``caution`` from ``glaciers.csv`` (kinds with a known weakness of the default);
* ``g2ti_volume_km3``: for RGI 6 ids only, the g2ti/ITMIX volume (``vol_itmix_m3``) of
  ``oggm-sample-data/g2ti/rgi62_itmix_df.h5`` (Farinotti et al. 2019), ``ratio_to_g2ti``.

The model is the shipped default (``glacierbed.pipeline.store.load_predictor(None)``) unless
``--model`` names another ("thickness-net", "network", "biharmonic", a weights path); a model
that cannot be loaded is an error (no fallback). Its name and identity head the Markdown.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/estimate_all_kit.py [--model NAME]
[--examples NAME ...] [--work DIR] [--out DIR]``.
Writes ``<out>/estimate_all_kit.csv`` (one row per glacier) and ``<out>/estimate_all_kit.md``
(per-example summary: glaciers, totals, median ratio to V-A scaling, status counts; then the
glacier table); ``--out`` defaults to ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import pandas as pd

from glacierbed import __version__
from glacierbed.evaluation import baselines
from glacierbed.core.atomic import write_text
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.pipeline.store import load_predictor
from glacierbed.data import registry as reg
from glacierbed.core.errors import DataNotFoundError
from glacierbed.pipeline.estimate import EstimateConfig, estimate
from glacierbed.pipeline.outputs import caution_counts
from glacierbed.models.predictors import ThicknessPredictor
from glacierbed.core.errors import quiet_per_glacier_logs, run_script

log = logging.getLogger("estimate_all_kit")

RESULTS = Path(__file__).resolve().parent / "results"
EXAMPLES = ["oetztal", "hintereisferner", "baltoro", "columbia", "south-glacier", "chhota-shigri",
            "karakoram-03439", "alaska-10299", "greenland-08389", "alpine-01270", "nz-canterbury", "svalbard"]
COLUMNS = ["example", "rgi_id", "name", "area_km2", "volume_km3", "volume_std_km3", "va_volume_km3", "ratio_to_va",
           "g2ti_volume_km3", "ratio_to_g2ti", "slope_deg", "caution", "status", "seconds"]


def resolve_examples(names: list[str]) -> dict[str, reg.ResolvedExample]:
    """Every example by name, checked against the registry and resolved (files verified) up front."""
    unknown = [n for n in names if n not in reg.EXAMPLES]
    if unknown:
        raise DataNotFoundError(f"examples not in glacierbed.data.registry.EXAMPLES: {', '.join(unknown)}")
    resolved = {n: reg.get_example(n) for n in names}
    no_outlines = [n for n, ex in resolved.items() if ex.estimate_outlines is None]
    if no_outlines:
        raise DataNotFoundError(f"examples without outlines or a glacier mask: {', '.join(no_outlines)}")
    return resolved


def run_example(name: str, ex: reg.ResolvedExample, predictor: ThicknessPredictor,
                work: Path) -> tuple[pd.DataFrame, float]:
    """The glaciers table of one example (``example`` column first) and the call's wall seconds."""
    t0 = time.perf_counter()
    res = estimate(ex.dem, ex.estimate_outlines, work / name, model=predictor, config=EstimateConfig(), maps=False)
    wall = time.perf_counter() - t0
    table = res.glaciers.assign(example=name)
    log.info("%s: %d glaciers, %.3f km3 in %.1f s (%s)", name, len(table), table["volume_km3"].sum(), wall,
             status_counts(table["status"]))
    return table, wall


def add_references(glaciers: pd.DataFrame, g2ti_km3: pd.Series) -> pd.DataFrame:
    """V-A scaling and g2ti volumes (and the ratios to them) beside each glacier, in :data:`COLUMNS` order."""
    df = glaciers.copy()
    df["va_volume_km3"] = baselines.va_volume_km3(df["area_km2"].to_numpy())
    df["ratio_to_va"] = df["volume_km3"] / df["va_volume_km3"]
    df["g2ti_volume_km3"] = df["rgi_id"].map(g2ti_km3)
    df["ratio_to_g2ti"] = df["volume_km3"] / df["g2ti_volume_km3"]
    return df[COLUMNS]


def status_counts(status: pd.Series) -> str:
    return ", ".join(f"{k} {v}" for k, v in status.value_counts().items())


def caution_summary(flags: pd.Series) -> str:
    """The glaciers per flag of ``glaciers.csv``'s ``caution`` column (docs/accuracy.md), e.g. ``large 1``."""
    return ", ".join(f"{k} {v}" for k, v in caution_counts(flags).items())


def summarise(df: pd.DataFrame, walls: dict[str, float]) -> pd.DataFrame:
    """One row per example: glaciers, total area and volumes, median ratios, statuses, wall seconds."""
    per = df.groupby("example", sort=False).agg(
        glaciers=("rgi_id", "size"), area_km2=("area_km2", "sum"), volume_km3=("volume_km3", "sum"),
        va_volume_km3=("va_volume_km3", "sum"), median_ratio_to_va=("ratio_to_va", "median"),
        g2ti_glaciers=("g2ti_volume_km3", "count"), median_ratio_to_g2ti=("ratio_to_g2ti", "median"),
        statuses=("status", status_counts), caution=("caution", caution_summary))
    per["wall_s"] = per.index.map(walls)
    return per.reset_index()


def markdown(df: pd.DataFrame, per: pd.DataFrame, predictor: ThicknessPredictor, requested: str | None) -> str:
    cfg = EstimateConfig()
    calibration = getattr(predictor, "calibration_path", None) if cfg.calibrate else None
    applied = f"calibration `{Path(calibration).name}` applied" if calibration else "no calibration applied"
    glaciers = df.assign(name=df["name"].fillna("").astype(str).str.slice(0, 24))
    return "\n".join([
        "# estimate on every kit DEM + outlines", "",
        (f"Model: `{predictor.name}` ({f'--model {requested}' if requested else 'the shipped default'}), "
         f"identity `{predictor.identity}`, {applied}. "
         f"`glacierbed.pipeline.estimate.estimate` with the default `EstimateConfig` (ensemble {cfg.ensemble}, physics "
         f"{'on' if cfg.physics is not None else 'off'}), no maps; glacierbed {__version__}."), "",
        (f"{len(df)} glaciers in {df['example'].nunique()} examples; statuses: {status_counts(df['status'])}. "
         f"Median volume / V-A scaling = {df['ratio_to_va'].median():.2f} (n={int(df['ratio_to_va'].count())}); "
         f"median volume / g2ti (RGI 6 ids, n={int(df['ratio_to_g2ti'].count())}) = "
         f"{df['ratio_to_g2ti'].median():.2f}."), "",
        ("V-A scaling: V = 0.034 A^1.375 (km3, km2) on the outline's whole area "
         "(`glacierbed.evaluation.baselines.va_volume_km3`); g2ti: `vol_itmix_m3` of `g2ti/rgi62_itmix_df.h5` "
         "(Farinotti et al. 2019), RGI 6 ids only. A glacier partly outside its DEM has the volume of "
         "the covered part only; a glacier whose estimate failed has no volume. `caution`: the kinds of glaciers the "
         "default has a known weakness on (`glaciers.csv`; docs/accuracy.md): `plateau_or_ice_cap` (mean surface slope "
         "< 10 degrees), `large` (> 10 km2), `unmeasured_region` (an RGI region without a measured glacier)."), "",
        "## Per example", "", to_markdown(per), "",
        "## Per glacier", "", to_markdown(glaciers), ""])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or weights path (default: the shipped default)")
    ap.add_argument("--examples", nargs="+", default=EXAMPLES, metavar="NAME",
                    help=f"restrict to these kit examples (default: all {len(EXAMPLES)})")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the estimate outputs here, one folder per example (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_per_glacier_logs("glacierbed.models.inpainting.network")
    examples = resolve_examples(args.examples)
    predictor = load_predictor(args.model)  # the default too: an error if it cannot be loaded
    g2ti = reg.consensus_volumes_km3()
    if args.work is not None:
        resumable = [n for n in examples if (args.work / n).exists()]
        if resumable:  # estimate would resume there: times and statuses would be of the earlier run
            raise SystemExit(f"{args.work} already holds {', '.join(resumable)}: choose an empty --work folder")
    tables, walls = [], {}
    with nullcontext(args.work) if args.work else tempfile.TemporaryDirectory(prefix="glacierbed_kit_") as work:
        for name, ex in examples.items():
            table, walls[name] = run_example(name, ex, predictor, Path(work))
            tables.append(table)
    df = add_references(pd.concat(tables, ignore_index=True), g2ti)
    per = summarise(df, walls)
    write_table(df, args.out / "estimate_all_kit.csv")
    write_text(args.out / "estimate_all_kit.md", markdown(df, per, predictor, args.model))
    print(per.to_string(index=False))
    print(f"model {predictor.name} ({predictor.identity}); results in {args.out}")


if __name__ == "__main__":
    run_script(main)
