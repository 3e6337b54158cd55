"""The spanning-simulator candidate against the shipped network, by its selection protocol's rule.

Protocol (written before scoring): ``benchmarks/results/selection_protocol_spanning_simulator.md``.
Reads what the same sitting's runs wrote:

* ``benchmarks/calibration.py --variants residual+scale+interval --no-loro`` once per model,
  with ``--out benchmarks/results/spanning_shipped`` and ``--model <candidate> --out
  benchmarks/results/spanning_candidate``;
* ``benchmarks/simulated_glaciers.py --splits test --name simulated_glaciers_<set>_<variant>``
  on the test splits of the rebuilt old set (``sim128``) and of the spanning set (``sim256_bysource``).

Writes ``benchmarks/results/<--name>.{md,csv}`` (default ``spanning_decision``): every number of
the rule per variant, and the decision per candidate. Run: ``python benchmarks/spanning_decision.py
[--candidate NAME=FOLDER ...] [--sets SET ...] [--protocol FILE] [--name STEM]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.evaluation.benchmark import checklist, to_markdown, write_table
from glacierbed.core.errors import run_script
from glacierbed.posterior.calibration import BOOSTED_DESIGN

RESULTS = Path(__file__).resolve().parent / "results"
SHIPPED = ("shipped", "spanning_shipped")
SHIP = BOOSTED_DESIGN  #: the shipped design when this decision was taken (its committed results)
#: rule (c): acceptance targets the shipped network meets today
TARGET_SG_RMSE, TARGET_OETZTAL_RMSE, TARGET_FILL_RATIO = 29.0, 11.4, 0.2


def variant_row(name: str, folder: str, sets: list[str]) -> dict:
    cal = pd.read_csv(RESULTS / folder / "calibration.csv")
    cal = cal[(cal["variant"] == SHIP) & (cal["split"] == "LOGO")].set_index("case")
    row = {"variant": name,
           "grids_median_ratio_per_glacier": cal.loc["glathida-grids", "median_ratio_to_best_baseline"],
           "grids_ratio_of_medians": cal.loc["glathida-grids", "ratio_to_best_baseline_median"],
           "grids_regions_over_1": cal.loc["glathida-grids", "regions_worse_than_best_baseline"],
           "south_glacier_rmse_m": cal.loc["south-glacier", "rmse"],
           "oetztal_means_rmse_m": cal.loc["oetztal-means", "rmse"],
           "hef_volume_rel_error": cal.loc["hintereisferner", "rel_error_volume"]}
    for ds in sets:
        sim = pd.read_csv(RESULTS / f"simulated_glaciers_{ds}_{name}.csv")
        sim = sim[(sim["source"] == "all") & (sim["method"] == "network_physics")]
        for r in sim.itertuples():
            row[f"{ds}_{int(r.pixel_m)}m_ratio_to_fill"] = r.ratio_to_biharmonic_clipped
            row[f"{ds}_{int(r.pixel_m)}m_rmse_m"] = r.rmse_m
    return row


def regions(folder: str, name: str) -> pd.DataFrame:
    r = pd.read_csv(RESULTS / folder / "calibration_regions.csv", dtype={"region": str})
    return r[r["split"] == "LOGO"][["region", "name", "n_glaciers", "ratio", "median_ratio_per_glacier"]].assign(
        variant=name)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidate", nargs="+", default=["spanning=spanning_candidate"],
                    help="NAME=FOLDER: the candidate's calibration results folder in benchmarks/results")
    ap.add_argument("--sets", nargs="+", default=["sim128", "sim256_bysource"],
                    help="simulated test sets scored (simulated_glaciers_<set>_<variant>.csv); the first is the "
                         "old distribution of rule (b)")
    ap.add_argument("--protocol", default="selection_protocol_spanning_simulator.md")
    ap.add_argument("--name", default="spanning_decision")
    args = ap.parse_args(argv)
    variants = dict([SHIPPED, *(c.split("=", 1) for c in args.candidate)])
    table = pd.DataFrame([variant_row(n, f, args.sets) for n, f in variants.items()]).set_index("variant")
    ship = table.loc[SHIPPED[0]]
    old = args.sets[0]
    rule_lines, decisions = [], []
    for name in list(variants)[1:]:
        cand = table.loc[name]
        fill = [c for c in table.columns if c.startswith(f"{old}_") and c.endswith("ratio_to_fill")]
        checks = {
            "(a) grid per-glacier median ratio lower than shipped's":
                cand["grids_median_ratio_per_glacier"] < ship["grids_median_ratio_per_glacier"],
            f"(b) old-distribution simulated test <= {TARGET_FILL_RATIO}x the clipped fill at every pixel size":
                bool((cand[fill] <= TARGET_FILL_RATIO).all()),
            f"(c) South Glacier <= {TARGET_SG_RMSE:g} m": cand["south_glacier_rmse_m"] <= TARGET_SG_RMSE,
            f"(c) Ötztal means <= {TARGET_OETZTAL_RMSE:g} m": cand["oetztal_means_rmse_m"] <= TARGET_OETZTAL_RMSE,
        }
        ships = all(checks.values())
        rule_lines += [f"### `{name}`", "", *checklist(checks), "",
                       f"**Decision: {'the candidate ships' if ships else 'the default is unchanged'}.**", ""]
        decisions.append(ships)
    write_table(table.reset_index(), RESULTS / f"{args.name}.csv")
    reg = pd.concat([regions(f, n) for n, f in variants.items()]).pivot_table(
        index=["region", "name", "n_glaciers"], columns="variant", values=["ratio", "median_ratio_per_glacier"])
    reg.columns = [f"{a} ({b})" for a, b in reg.columns]
    links = ", ".join(f"[{n}]({f}/calibration.md)" for n, f in variants.items())
    lines = ["# Spanning simulator: candidate vs shipped network (issue 16, item 2)", "",
             f"Protocol, written before scoring: [{args.protocol}]({args.protocol}). Measured numbers: calibration "
             f"`{SHIP}` refitted leave-one-glacier-out per model ({links}); simulated: network with physics on "
             "test ranges (`simulated_glaciers_<set>_<variant>.md`).", "",
             to_markdown(table.T.reset_index().rename(columns={"index": "metric"})), "",
             "## The rule", "", *rule_lines,
             "## Grid regions (LOGO): median RMSE over the best baseline's, and the median per-glacier ratio", "",
             to_markdown(reg.reset_index()), ""]
    write_text(RESULTS / f"{args.name}.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
