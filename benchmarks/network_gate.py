"""A learned gate between the shipped and the spanning-all network, by its selection protocol.

Protocol (written before scoring): ``benchmarks/results/selection_protocol_network_gate.md``.
Reads the two networks' calibrated leave-one-glacier-out results of the same sitting
(``benchmarks/calibration.py --variants residual+scale+interval --no-loro`` with ``--out
benchmarks/results/spanning_shipped`` and ``--model <spanning-all weights> --out
benchmarks/results/spanning_all_candidate``), the simulated figures of ``spanning_all_decision.csv``
and the glacier attributes of the shipped network's measured table (cached by the calibration run).
Per glacier, a ridge on the attributes fitted without that glacier (or its region) predicts which
network's calibrated map errs less; the glacier gets that map. Writes
``benchmarks/results/network_gate.{md,csv}`` and ``network_gate_glaciers.csv``.
Run: ``python benchmarks/network_gate.py [--run-dir DIR]``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.evaluation.benchmark import checklist, to_markdown, write_table
from glacierbed.evaluation.glacier_level_cv import cross_validated_gate, gate_target, glacier_table
from glacierbed.evaluation.measured_table import CASES, collect
from glacierbed.core.errors import run_script
from glacierbed.posterior.calibration import BOOSTED_DESIGN

RESULTS = Path(__file__).resolve().parent / "results"
SHIP = BOOSTED_DESIGN  #: the shipped design when this decision was taken (its committed results)
MODELS = {"shipped": "spanning_shipped", "spanning-all": "spanning_all_candidate"}
SOUTH_GLACIER, HINTEREISFERNER = "RGI60-01.16195", "RGI60-11.00897"
#: the protocol's bars (spanning rule (c)) and the relative simulated guard
TARGET_SG_RMSE, TARGET_OETZTAL_RMSE, SIM_GUARD = 29.0, 11.4, 1.1


def per_glacier(folder: str) -> pd.DataFrame:
    """One row per (case, glacier): its calibrated error (grid RMSE, or |mean error|) and what scores need."""
    g = pd.read_csv(RESULTS / folder / "calibration_glaciers.csv", dtype={"region": str})
    g["error_m"] = np.where(g["case"] == "glathida-grids", g["rmse"], (g["pred_mean_m"] - g["obs_mean_m"]).abs())
    return g.set_index(["case", "rgi_id"])


def case_figures(folder: str) -> pd.DataFrame:
    cal = pd.read_csv(RESULTS / folder / "calibration.csv")
    return cal[(cal["variant"] == SHIP) & (cal["split"] == "LOGO")].set_index("case")


def score(choice: pd.Series, glaciers: dict[str, pd.DataFrame], cases: dict[str, pd.DataFrame]) -> dict:
    """The protocol's figures when each glacier identity takes the network ``choice`` names."""
    rows = pd.concat([g.assign(model=name) for name, g in glaciers.items()]).reset_index()
    rows = rows[rows["model"] == rows["group"].map(choice)]
    grids = rows[rows["case"] == "glathida-grids"]
    means = rows[rows["case"] == "oetztal-means"]
    by_region = grids.groupby("region")["ratio_to_best_baseline"].median()
    return {"grids_median_ratio_per_glacier": float(grids["ratio_to_best_baseline"].median()),
            "grid_regions_median_ratio_over_1": int((by_region > 1.0).sum()),
            "grid_glaciers_on_spanning_all": int((grids["model"] == "spanning-all").sum()),
            "south_glacier_rmse_m": float(cases[choice.get(SOUTH_GLACIER, "shipped")].loc["south-glacier", "rmse"]),
            "oetztal_means_rmse_m": float(np.sqrt(np.mean((means["pred_mean_m"] - means["obs_mean_m"]) ** 2))),
            "hef_volume_rel_error": float(
                cases[choice.get(HINTEREISFERNER, "shipped")].loc["hintereisferner", "rel_error_volume"])}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-calibration")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    glaciers = {name: per_glacier(folder) for name, folder in MODELS.items()}
    cases = {name: case_figures(folder) for name, folder in MODELS.items()}
    ship, span = glaciers["shipped"], glaciers["spanning-all"].loc[glaciers["shipped"].index]
    target = gate_target(ship["error_m"], span["error_m"], ship["group"])
    ms = collect(args.run_dir, None, True, cases=CASES)
    attributes = glacier_table(ms.rows, ms.pixels)
    choices = {"shipped (reference)": pd.Series("shipped", index=target.index),
               "spanning-all (reference)": pd.Series("spanning-all", index=target.index),
               "oracle (upper bound)": target.map(lambda t: "spanning-all" if t < 0 else "shipped")}
    predicted = {}
    for split, by in (("LOGO", "group"), ("LORO", "region")):
        predicted[split] = cross_validated_gate(attributes, target, by)
        choices[f"gate, {split}"] = predicted[split].map(lambda p: "spanning-all" if p < 0 else "shipped")
    table = pd.DataFrame([{"variant": k, **score(c, glaciers, cases)} for k, c in choices.items()]).set_index("variant")
    sim = pd.read_csv(RESULTS / "spanning_all_decision.csv").set_index("variant")
    rmse_cols = [c for c in sim.columns if c.startswith("sim128_rebuilt_") and c.endswith("_rmse_m")]
    sim_ratio = (sim.loc["spanning-all", rmse_cols] / sim.loc["shipped", rmse_cols]).rename(
        lambda c: c.replace("sim128_rebuilt_", "").replace("_rmse_m", ""))
    gate, ref = table.loc["gate, LOGO"], table.loc["shipped (reference)"]
    checks = {
        f"(a) grid per-glacier median ratio lower than shipped's ({ref['grids_median_ratio_per_glacier']:.3f})":
            gate["grids_median_ratio_per_glacier"] < ref["grids_median_ratio_per_glacier"],
        f"(b) South Glacier <= {TARGET_SG_RMSE:g} m": gate["south_glacier_rmse_m"] <= TARGET_SG_RMSE,
        f"(b) Ötztal means <= {TARGET_OETZTAL_RMSE:g} m": gate["oetztal_means_rmse_m"] <= TARGET_OETZTAL_RMSE,
        f"(c) spanning-all <= {SIM_GUARD:g}x the shipped RMSE on the rebuilt old simulated test, every pixel size "
        f"({', '.join(f'{k}: {v:.3f}x' for k, v in sim_ratio.items())})": bool((sim_ratio <= SIM_GUARD).all())}
    ships = all(checks.values())
    detail = pd.DataFrame({"target": target, "gate_LOGO": predicted["LOGO"], "gate_LORO": predicted["LORO"]})
    detail.index.name = "group"
    write_table(table.reset_index(), RESULTS / "network_gate.csv")
    write_table(detail.reset_index(), RESULTS / "network_gate_glaciers.csv", ".4g")
    lines = ["# A learned gate between the shipped and the spanning-all network (issue 16, items 4–5)", "",
             "Protocol, written before scoring: [selection_protocol_network_gate.md](selection_protocol_network_gate.md). "
             f"Each network's calibrated LOGO maps (`{SHIP}`; [shipped](spanning_shipped/calibration.md), "
             "[spanning-all](spanning_all_candidate/calibration.md)); per glacier identity the ridge on user attributes, "
             "fitted without it (LOGO) or its region (LORO), picks the network expected to err less "
             f"({len(target)} glacier identities: 23 grids, 19 Ötztal means, Gepatschferner's two counted once). "
             "Oracle: each glacier's better network, an upper bound no method reaches. Per glacier: "
             "[network_gate_glaciers.csv](network_gate_glaciers.csv).", "",
             to_markdown(table.reset_index(), ".3g"), "", "## The rule (gate, LOGO)", "",
             *checklist(checks), "",
             f"**Decision: {'the gated pair ships' if ships else 'the default is unchanged'}.** 1 variant tried.", ""]
    write_text(RESULTS / "network_gate.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
