"""Speed of ``estimate`` with a model, against the biharmonic fill measured in the same run.

Every case runs :func:`glacierbed.pipeline.estimate.estimate` (no maps, a fresh temporary folder, so
nothing is resumed) with the requested model and then with ``biharmonic``;
``ratio_to_biharmonic`` is the model's wall time over biharmonic's in the same case.
``ensemble`` is the number of members: flips/mask dilations for the inpainters
(``glacierbed.models.predictors.MEMBERS``), square symmetries for the thickness network
(``glacierbed.models.thickness.runtime.SYMMETRIES``), 8 at most; the default is ``EstimateConfig().ensemble``.

* ``floor``: Hintereisferner alone, ensemble 1, physics off, fastest of 3 runs. Its glacier's
  ``seconds`` (the per-glacier task: window read, working grid, one ``predict`` call with one
  member, volumes, window file) is the least a glacier costs through the pipeline; ``wall_s``
  adds the region's fixed cost (DEM preparation, mosaics, tables). ``median_glacier_over_floor``
  of every case is its median glacier seconds over this floor, same model.
* ``oetztal-ens1`` / ``oetztal``: the 20 Ötztal glaciers in-process, ensemble 1 / the default
  ensemble, physics on;
* ``oetztal-dask2``: the same on 2 local Dask worker processes (``workers=2``), default
  ensemble; the wall time includes the cluster start and loading the model once per worker;
* ``columbia``: Columbia Glacier (935 km2, the largest kit glacier), serial, default ensemble.

Reported per case and model: glaciers/s, median and max per-glacier seconds (the ``seconds``
column of the glaciers table), the largest glacier's seconds, the ratio to biharmonic, and the
1/5/15-minute load average at start and end: timings mean something on a quiet machine only.
A warm-up run (imports, GDAL and model caches) of each model comes first and is not reported.

The model is the shipped default (``glacierbed.pipeline.store.load_predictor(None)``) unless
``--model`` names another; a model that cannot be loaded is an error (no fallback).

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/estimate_speed.py [--model NAME]
[--cases KEY ...] [--out DIR]``.
Writes ``<out>/estimate_speed.csv`` and ``<out>/estimate_speed.md`` (``--out`` defaults to
``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.pipeline.store import load_predictor
from glacierbed.data import registry as reg
from glacierbed.pipeline.estimate import EstimateConfig, estimate
from glacierbed.models.predictors import ThicknessPredictor
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "biharmonic"
DEFAULT_ENSEMBLE = EstimateConfig().ensemble


@dataclass(frozen=True)
class Case:
    key: str
    example: str
    config: EstimateConfig
    workers: int = 1
    repeats: int = 1  #: runs; the fastest (wall time) is reported


CASES = (
    Case("floor", "hintereisferner", EstimateConfig(ensemble=1, physics=None), repeats=3),
    Case("oetztal-ens1", "oetztal", EstimateConfig(ensemble=1)),
    Case("oetztal", "oetztal", EstimateConfig()),
    Case("oetztal-dask2", "oetztal", EstimateConfig(), workers=2),
    Case("columbia", "columbia", EstimateConfig()),
)


@dataclass
class Model:
    """A model as it is timed: loaded (serial runs) and its spec (name/path/None, what Dask workers load)."""

    spec: str | None
    predictor: ThicknessPredictor

    def for_run(self, workers: int) -> ThicknessPredictor | str | None:
        return self.predictor if workers <= 1 else self.spec


def run(model: Model, case: Case) -> tuple[float, pd.DataFrame]:
    """Wall seconds and glaciers table of the fastest of ``case.repeats`` estimate calls."""
    ex = reg.get_example(case.example)

    def once() -> tuple[float, pd.DataFrame]:
        with tempfile.TemporaryDirectory(prefix="glacierbed_speed_") as out:
            t0 = time.perf_counter()
            res = estimate(ex.dem, ex.outlines, out, model=model.for_run(case.workers), config=case.config,
                           workers=case.workers, maps=False)
            return time.perf_counter() - t0, res.glaciers

    return min((once() for _ in range(case.repeats)), key=lambda r: r[0])


def case_row(case: Case, model: Model, wall: float, t: pd.DataFrame) -> dict[str, object]:
    """One row of the results: the case, the model and the timings of its glaciers table."""
    per = t["seconds"]
    largest = t.loc[t["area_km2"].idxmax()]
    return {"case": case.key, "example": case.example, "model": model.predictor.name, "workers": case.workers,
            "ensemble": case.config.ensemble, "physics": case.config.physics is not None, "glaciers": len(t),
            "not_ok": int((~t["status"].str.startswith("ok")).sum()), "wall_s": wall,
            "glaciers_per_s": len(t) / wall, "median_glacier_s": float(per.median()),
            "max_glacier_s": float(per.max()), "largest_glacier": largest["rgi_id"],
            "largest_glacier_km2": float(largest["area_km2"]), "largest_glacier_s": float(largest["seconds"])}


def with_ratios(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """``ratio_to_biharmonic`` (wall time over the ``baseline`` model's, same case) and
    ``median_glacier_over_floor`` (median glacier seconds over the floor's, same model)."""
    base = df[df["model"] == baseline].set_index("case")["wall_s"]
    floor = df[df["case"] == "floor"].set_index("model")["median_glacier_s"]
    return df.assign(ratio_to_biharmonic=df["wall_s"] / df["case"].map(base),
                     median_glacier_over_floor=df["median_glacier_s"] / df["model"].map(floor))


def load_averages() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or weights path (default: the shipped default)")
    ap.add_argument("--cases", nargs="+", default=[c.key for c in CASES], choices=[c.key for c in CASES],
                    metavar="KEY", help=f"restrict to these cases ({', '.join(c.key for c in CASES)})")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    load_start = load_averages()
    model = Model(args.model, load_predictor(args.model))  # the default too: an error if it cannot be loaded
    baseline = Model(BASELINE, load_predictor(BASELINE))
    models = [model] if model.predictor.identity == baseline.predictor.identity else [model, baseline]
    for m in models:  # warm-up: imports, GDAL and model caches
        run(m, Case("warm-up", "hintereisferner", EstimateConfig(ensemble=1)))
    rows = []
    for case in (c for c in CASES if c.key in args.cases):
        for m in models:  # model then baseline, back to back: the same machine state
            rows.append(case_row(case, m, *run(m, case)))
            print({k: rows[-1][k] for k in ("case", "model", "wall_s", "median_glacier_s", "max_glacier_s")})
    load_end = load_averages()
    df = with_ratios(pd.DataFrame(rows), baseline.predictor.name)
    write_table(df, args.out / "estimate_speed.csv")
    p = model.predictor
    md = "\n".join([
        "# estimate speed", "",
        (f"Model: `{p.name}` ({f'--model {args.model}' if args.model else 'the shipped default'}; identity "
         f"`{p.identity}`); baseline `{BASELINE}` in the same run. "
         f"{os.cpu_count()} CPU cores; load average (1/5/15 min) {load_start} at start, {load_end} at end."), "",
        ("**Timings are only meaningful on a quiet machine**: anything else running (load average well above "
         "0) inflates them, the Dask case most."), "",
        ("Cases: `floor` = Hintereisferner alone, ensemble 1, physics off (fastest of 3; its glacier's seconds is "
         "the per-glacier floor); `oetztal-ens1` / `oetztal` = 20 glaciers in-process, ensemble 1 / "
         f"{DEFAULT_ENSEMBLE}, physics on; `oetztal-dask2` = the same on 2 local Dask workers (cluster start and "
         "model load per worker included); `columbia` = the largest kit glacier, serial. `ratio_to_biharmonic`: "
         "wall time over biharmonic's, same case; `median_glacier_over_floor`: median glacier seconds over the "
         "floor's, same model."), "",
        to_markdown(df), ""])
    write_text(args.out / "estimate_speed.md", md)
    print(md)


if __name__ == "__main__":
    run_script(main)
