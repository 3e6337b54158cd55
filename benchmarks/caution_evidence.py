"""What the measured glaciers say about each flag of ``glaciers.csv``'s ``caution`` column (evaluation only).

A reading of committed tables (nothing is run, fitted or chosen): the default's nested, out-of-fold per-glacier rows on
the 23 GlaThiDa grid glaciers (glacier-wise; and leave one region out, arm A of ``unseen_region_calibration``: every
glacier scored as a glacier of an ``unmeasured_region``) and on the 19 Ötztal glacier means, grouped by the flags
:func:`glacierbed.data.attributes.kind_flags` raises on each glacier's attributes (``diagnosis.csv``: from the kit's DEM
and outline, as ``glacierbed estimate`` computes them). Per group: the median ratio of a glacier's RMSE to its best
classical method (VA, GlabTop, OGGM on the same cells), its bias over the measured mean, and the share within 20 %.

Run: ``python benchmarks/caution_evidence.py`` → ``benchmarks/results/caution_evidence.{csv,md}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.core.metrics import rmse
from glacierbed.data.attributes import CAUTION_FLAGS, kind_flags
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.evaluation.measured_finetune import NESTED_LABEL
from glacierbed.evaluation.recipe_cli import default_results_name

RESULTS = Path(__file__).resolve().parent / "results"
#: the default's nested rows (candidate 37's run; candidate 38 changed only the volume interval)
DEFAULT = default_results_name("residual+scale+interval~parametric")
REGION_WISE_ARM = "A: as shipped (inner glacier-wise)"  #: unseen_region_calibration's row of the shipped design


def flagged(attributes: pd.DataFrame) -> pd.DataFrame:
    """``rgi_id`` and one boolean column per caution flag, from the diagnosis' per-glacier attributes."""
    return pd.concat([attributes[["rgi_id"]], kind_flags(attributes)], axis=1)


def grid_rows(results: Path) -> pd.DataFrame:
    """Per grid glacier and split: ratio to the best baseline and bias over the measured mean (nested rows)."""
    means = pd.read_csv(results / "bias_bar_glaciers.csv").set_index("rgi_id")["mean_obs_m"]
    wise = pd.read_csv(results / f"{DEFAULT}_glaciers.csv")
    wise = wise[wise["variant"].str.contains(NESTED_LABEL, regex=False)].assign(split="glacier-wise")
    region = pd.read_csv(results / "unseen_region_calibration_glaciers.csv")
    region = region[region["arm"] == REGION_WISE_ARM].assign(split="region-wise")
    rows = pd.concat([wise, region], ignore_index=True)[["rgi_id", "split", "ratio_to_best_baseline", "rmse", "bias"]]
    return rows.assign(rel_bias=rows["bias"] / rows["rgi_id"].map(means))


def flag_groups(table: pd.DataFrame) -> dict[str, pd.Series]:
    """The row masks of each caution flag and of 'no flag' for a table carrying the flag columns."""
    flags = table[list(CAUTION_FLAGS)].astype(bool)
    return {f: flags[f] for f in CAUTION_FLAGS} | {"no flag": ~flags.any(axis=1)}


def summarise(rows: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """One row per split and group (each flag a glacier raises, no flag, all): glaciers, median ratio, median RMSE,
    median relative bias and the share within 20 %."""
    rows = rows.merge(flags, on="rgi_id", how="left")
    missing = rows[CAUTION_FLAGS[0]].isna()
    if missing.any():
        raise ValueError(f"no attributes in diagnosis.csv for {sorted(rows.loc[missing, 'rgi_id'].unique())}")
    out = []
    for split, of_split in rows.groupby("split", sort=False):
        groups = flag_groups(of_split) | {"all": pd.Series(True, index=of_split.index)}
        for name, mask in groups.items():
            g = of_split[mask]
            if g.empty:  # unmeasured_region: every kit glacier's region was measured (its evidence: region-wise)
                continue
            out.append({"split": split, "group": name, "n_glaciers": len(g),
                        "median_ratio_to_best_baseline": g["ratio_to_best_baseline"].median(),
                        "median_rmse_m": g["rmse"].median(),
                        "median_rel_bias": g["rel_bias"].median(),
                        "share_bias_within_20pct": (g["rel_bias"].abs() <= 0.2).mean()})
    return pd.DataFrame(out)


def oetztal_rows(results: Path, flags: pd.DataFrame) -> pd.DataFrame:
    """The Ötztal glacier means (nested rows) per flag: glaciers, RMSE and bias (m)."""
    oetz = pd.read_csv(results / f"{DEFAULT}_oetztal.csv")
    oetz = oetz[oetz["variant"].str.contains(NESTED_LABEL, regex=False)].merge(flags, on="rgi_id", how="left")
    err = oetz["mu_cal"] - oetz["obs"]
    return pd.DataFrame([{"group": name, "n_glaciers": int(mask.sum()), "rmse_m": rmse(err[mask]),
                          "bias_m": err[mask].mean()} for name, mask in flag_groups(oetz).items() if mask.any()])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the committed tables are and results go")
    args = ap.parse_args(argv)
    attributes = pd.read_csv(args.results / "diagnosis.csv")
    grids = summarise(grid_rows(args.results), flagged(attributes[attributes["case"] == "glathida-grids"]))
    oetz = oetztal_rows(args.results, flagged(attributes[attributes["case"] == "oetztal-means"]))
    write_table(grids, args.results / "caution_evidence.csv")
    write_table(oetz, args.results / "caution_evidence_oetztal.csv")
    text = "\n".join([
        "# What the measured glaciers say about each `caution` flag (evaluation only)", "",
        __doc__.split("\n\n")[1].replace("\n", " "), "",
        "Flags: `plateau_or_ice_cap` mean surface slope < 10°; `large` > 10 km²; `unmeasured_region` an RGI region "
        "without a measured glacier: no kit glacier is one when the default is fitted on all of them, so its evidence "
        "is the region-wise split, in which every glacier is scored as one ('all' of that split; its flag rows group "
        "the same glaciers by the other flags). Groups overlap: a glacier may raise several flags.", "",
        "## The 23 GlaThiDa grid glaciers", "", to_markdown(grids, floatfmt=".3g"), "",
        "## The 19 Ötztal glacier means (glacier-wise)", "", to_markdown(oetz, floatfmt=".3g"), ""])
    write_text(args.results / "caution_evidence.md", text)
    print(grids.to_string(index=False))
    print(oetz.to_string(index=False))


if __name__ == "__main__":
    run_script(main)
