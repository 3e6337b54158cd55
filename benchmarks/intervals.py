"""Intervals that know what they have not seen: per-glacier coverage of distance-widened intervals.

Protocol: ``benchmarks/results/selection_protocol_intervals.md`` (written before scoring).
Variants of the interval step of ``residual+scale+interval``: V0 today's, V1
``interval@linear``, V2 ``interval@quadrature`` (:mod:`glacierbed.posterior.calibration.widening`).
Each is refitted without each glacier (LOGO) and each RGI region (LORO); per glacier with
measured points/cells (South Glacier radar, 23 GlaThiDa grids) the share of its
measurements inside the 68 % and 90 % intervals; over glaciers the median, 10th percentile
and worst; pooled coverage per case as in ``benchmarks/calibration.py``. The decision rule
of the protocol is applied and written out.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/intervals.py [--run-dir DIR]``.
Writes ``benchmarks/results/intervals.md``, ``intervals_glaciers.csv`` (per glacier,
variant, split) and ``intervals.csv`` (summary per variant and split).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.cross_validation import coverage_spread, cross_validate, per_glacier_coverage, score
from glacierbed.evaluation.diagnosis import calibration_attributes, with_attributes
from glacierbed.evaluation.measured_table import collect
from glacierbed.core.errors import run_script

log = logging.getLogger("intervals")
RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {"V0": "residual+scale+interval", "V1": "residual+scale+interval@linear",
            "V2": "residual+scale+interval@quadrature"}
NOMINAL = {"coverage68": 68.0, "coverage90": 90.0}
POOLED_CASES = ("south-glacier", "glathida-grids", "oetztal-means")


def run_variants(ms, splits: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(per-glacier coverage, summary, pooled per case) of every variant and split."""
    per, summary, pooled = [], [], []
    for name, variant in VARIANTS.items():
        for by in splits:
            t0 = time.perf_counter()
            cv = cross_validate(ms, variant, by)
            split = {"group": "LOGO", "region": "LORO"}[by]
            pg = per_glacier_coverage(cv).assign(variant=name, split=split)
            per.append(pg)
            summary.append({"variant": name, "split": split, **coverage_spread(pg)})
            sc = score(cv)
            pooled.append(sc[sc["case"].isin(POOLED_CASES)][["case", "coverage68", "coverage90"]]
                          .assign(variant=name, split=split))
            gammas = [s.get("spread", {}).get("gamma") for f in cv.fits.values() for s in f["steps"]
                      if s.get("kind") == "interval"]
            gammas = [g for g in gammas if g is not None]
            summary[-1]["gamma_median"] = float(np.median(gammas)) if gammas else float("nan")
            log.info("%s %s: %.0f s", name, split, time.perf_counter() - t0)
    return pd.concat(per, ignore_index=True), pd.DataFrame(summary), pd.concat(pooled, ignore_index=True)


def decide(summary: pd.DataFrame, pooled: pd.DataFrame) -> pd.DataFrame:
    """The protocol's rule: score D, the constraints and whether each variant may ship."""
    out = []
    v0_pooled = pooled[pooled["variant"] == "V0"].set_index(["split", "case"])
    for name, s in summary.groupby("variant", sort=True):
        dev = [abs(100 * row[f"{c}_{stat}"] - NOMINAL[c]) for _, row in s.iterrows() for c in NOMINAL
               for stat in ("median", "p10")]
        bad = []
        for _, row in s.iterrows():
            bad += [f"{row['split']} median {c}" for c in NOMINAL if 100 * row[f"{c}_median"] > NOMINAL[c] + 10]
        for _, row in pooled[pooled["variant"] == name].iterrows():
            for c in NOMINAL:
                off = abs(100 * row[c] - NOMINAL[c])
                off0 = abs(100 * v0_pooled.loc[(row["split"], row["case"]), c] - NOMINAL[c])
                if off > 10 and off > off0 + 2:
                    bad.append(f"{row['split']} {row['case']} pooled {c} {100 * row[c]:.1f}")
        out.append({"variant": name, "D": float(np.mean(dev)), "constraints_met": not bad,
                    "violations": "; ".join(bad)})
    table = pd.DataFrame(out)
    d0 = float(table.loc[table["variant"] == "V0", "D"].iloc[0])
    table["ships"] = False
    ok = table[table["constraints_met"] & (table["variant"] != "V0") & (table["D"] <= d0 - 3.0)]
    if len(ok):
        table.loc[table["D"] == ok["D"].min(), "ships"] = True
    return table


def report(summary: pd.DataFrame, pooled: pd.DataFrame, decision: pd.DataFrame, per: pd.DataFrame,
           seconds: float) -> str:
    """The markdown report."""
    pct = summary.copy()
    for c in pct.columns:
        if c.startswith("coverage"):
            pct[c] = 100 * pct[c]
    pool = pooled.pivot_table(index=["variant", "split"], columns="case", values=["coverage68", "coverage90"]) * 100
    pool.columns = [f"{c} {case}" for c, case in pool.columns]
    worst = per.sort_values("coverage68").groupby(["variant", "split"]).head(3)
    winner = decision[decision["ships"]]
    verdict = (f"**{winner['variant'].iloc[0]} ({VARIANTS[winner['variant'].iloc[0]]}) wins** by the protocol's rule."
               if len(winner) else "**No variant wins** by the protocol's rule: nothing ships; V0 stays.")
    return "\n".join([
        "# Intervals that widen away from the fitted glaciers (issue 16, item 6)", "",
        "Protocol: [selection_protocol_intervals.md](selection_protocol_intervals.md), written before scoring. "
        "Variants: " + ", ".join(f"{k} = `{v}`" for k, v in VARIANTS.items()) + ". Per glacier with measured "
        "points or cells (South Glacier radar + 23 GlaThiDa grids = 24 units): share of its measurements inside "
        "±σ (68 %) and ±z90·σ (90 %), out of fold; over glaciers the median, 10th percentile (p10) and worst.", "",
        verdict, "", "## Decision (D = mean |statistic − nominal|, points; lower is better)", "",
        to_markdown(decision, ".3g"), "",
        "## Per-glacier coverage over glaciers (%)", "", to_markdown(pct, ".3g"), "",
        "## Pooled coverage per case (%; grids glacier-balanced, Ötztal at glacier level)", "",
        to_markdown(pool.reset_index(), ".3g"), "",
        "## The three least-covered glaciers per variant and split (68 %)", "", to_markdown(worst, ".3g"), "",
        f"Run time {seconds:.0f} s (2 shared CPU cores).", ""])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-calibration")
    ap.add_argument("--no-loro", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    ms = collect(args.run_dir, args.model, True)
    attrs = calibration_attributes(sorted(set(ms.rows["example"].astype(str)) | set(ms.pixels["example"].astype(str))))
    ms.rows, ms.pixels = with_attributes(ms.rows, attrs), with_attributes(ms.pixels, attrs)
    per, summary, pooled = run_variants(ms, ("group",) if args.no_loro else ("group", "region"))
    decision = decide(summary, pooled)
    write_table(per, args.out / "intervals_glaciers.csv")
    write_table(summary.merge(decision, on="variant"), args.out / "intervals.csv")
    text = report(summary, pooled, decision, per, time.perf_counter() - t0)
    write_text(args.out / "intervals.md", text)
    print(text)


if __name__ == "__main__":
    run_script(main)
