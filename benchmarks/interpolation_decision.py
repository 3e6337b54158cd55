"""Candidate 30 (the fine-tuned network interpolated back toward its start) against the default, by its protocol.

Protocol (written before any run): ``benchmarks/results/selection_protocol_measured_finetune_from_spanning_all_p128_
wise50_physics_margin_plastic_fit_physics_margin_zero_interval_physics_margin_plastic.md``. Reads the nested rows that
``benchmarks/measured_finetune.py --nested`` wrote for the candidate's config and for the default's, glacier-wise and
region-wise (``--by region``), each with the default's physics options, and writes ``<candidate>_decision.md``: every
number of the rule and the decision. The simulated test ranges come after, only when the measured part is met.

Run: ``python benchmarks/interpolation_decision.py [--candidate STEM] [--default STEM]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import load_script, to_markdown
from glacierbed.evaluation.measured_finetune import nested_variant_rows
from glacierbed.evaluation.recipe_cli import DEFAULT_PHYSICS, results_name
from glacierbed.posterior.calibration import BOOSTED_DESIGN

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the protocol's bounds, declared before the run
REGION_MARGIN, GLACIER_SLACK, OETZTAL_MAX_M, HEF_MAX, SG_MAX_M, COVERAGE_WORST_MAX = 0.03, 0.01, 10.0, 0.10, 29.0, 17.1


def _measured_finetune():
    """benchmarks/measured_finetune.py as a module (its nested-row and coverage readers)."""
    return load_script(HERE / "measured_finetune.py")


def design_results(stem: str, by: str = "glacier") -> str:
    """The results name of the fold config ``stem`` scored with the default's physics and the calibration design of
    the time (:data:`BOOSTED_DESIGN`)."""
    return results_name(Path(stem), BOOSTED_DESIGN, *DEFAULT_PHYSICS, by=by)


def nested_rows(stem: str, results: Path = RESULTS) -> dict:
    """The nested rows of ``stem``'s runs: glacier-wise and region-wise results, and glacier-wise coverage deviations."""
    bench = _measured_finetune()
    rows = {}
    for split, by in (("glacier-wise", "glacier"), ("region-wise", "region")):
        path = results / f"{design_results(stem, by)}.csv"
        if not path.is_file():
            raise SystemExit(f"{path}: missing; run benchmarks/measured_finetune.py --nested"
                             + (" --by region" if by == "region" else "") + " with the default's physics options first")
        table = pd.read_csv(path)
        nested = nested_variant_rows(table)
        if len(nested) != 1:
            raise SystemExit(f"{path}: expected one nested row, found {len(nested)}")
        rows[split] = nested.iloc[0]
    cases = pd.read_csv(results / f"{design_results(stem)}_cases.csv")
    rows["coverage"] = bench.coverage_deviations(cases)
    return rows


def rule_failures(candidate: dict, default: dict) -> list[str]:
    """The protocol's conditions 1-5 the candidate misses, each with its value (empty: the measured part is met)."""
    glacier, region = candidate["glacier-wise"], candidate["region-wise"]
    bound_region = default["region-wise"]["grids_median_ratio"] - REGION_MARGIN
    bound_glacier = default["glacier-wise"]["grids_median_ratio"] + GLACIER_SLACK
    worst = float(candidate["coverage"].max())
    checks = [
        (region["grids_median_ratio"] <= bound_region, f"region-wise grids {region['grids_median_ratio']:.3f} > "
                                                       f"{bound_region:.3f}"),
        (glacier["grids_median_ratio"] <= bound_glacier, f"glacier-wise grids {glacier['grids_median_ratio']:.3f} > "
                                                         f"{bound_glacier:.3f}"),
        (glacier["oetztal_means_rmse_m"] <= OETZTAL_MAX_M, f"Ötztal {glacier['oetztal_means_rmse_m']:.2f} m > "
                                                           f"{OETZTAL_MAX_M:g} m"),
        (abs(glacier["hef_volume_rel_error"]) <= HEF_MAX, f"Hintereisferner {100 * glacier['hef_volume_rel_error']:+.1f} % "
                                                          "outside ±10 %"),
        (glacier["south_glacier_rmse_m"] <= SG_MAX_M, f"South Glacier {glacier['south_glacier_rmse_m']:.1f} m > "
                                                      f"{SG_MAX_M:g} m"),
        (worst <= COVERAGE_WORST_MAX, f"worst coverage deviation {worst:.1f} > {COVERAGE_WORST_MAX:g} points"),
    ]
    return [message for ok, message in checks if not ok]


COLUMNS = ["grids_median_ratio", "grids_regions_over_1", "grids_share_bias_within_20pct", "south_glacier_rmse_m",
           "oetztal_means_rmse_m", "hef_volume_rel_error"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidate", default="measured_finetune_from_spanning_all_p128_wise50")
    ap.add_argument("--default", default="measured_finetune_from_spanning_all_p128")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    candidate, default = nested_rows(args.candidate, args.results), nested_rows(args.default, args.results)
    table = pd.DataFrame([{"variant": name, "split": split, **row[split][COLUMNS].to_dict(),
                           "worst_coverage_deviation": float(row["coverage"].max()) if split == "glacier-wise" else None}
                          for name, row in (("default", default), ("candidate 30", candidate))
                          for split in ("glacier-wise", "region-wise")])
    failures = rule_failures(candidate, default)
    verdict = ("meets the measured part of the rule: the simulated test ranges decide next." if not failures else
               f"does not meet the rule ({'; '.join(failures)}): the default is unchanged.")
    name, default_name = design_results(args.candidate), design_results(args.default)
    lines = ["# Candidate 30: the fine-tuned network interpolated halfway back to its start (decision)", "",
             f"Protocol: [selection_protocol_{name}.md](selection_protocol_{name}.md). Nested rows of "
             f"[{name}.md]({name}.md) and its `_loro` twin against the default's ({default_name}[_loro]).", "",
             to_markdown(table.round(3)), "", f"- Candidate 30 {verdict}", "",
             "A correction to the protocol's wording: the 0.862 / 0.790 network it calls \"the network it was fine-tuned "
             "from (stage 0)\" is the previous default, stage 0 of the default's lineage; the measured fine-tunes start "
             "from the spanning stage after it (`runs/span128/p128/weights.pt`), and that start is what α = 0.5 "
             "interpolates toward (as the protocol's variant says).", "",
             "How much of each gap is the draw of the 23 grid glaciers (bootstrap intervals, reported, not deciding): "
             "[selection_noise.md](selection_noise.md) (`benchmarks/selection_noise.py`), which holds these rows.", ""]
    write_text(args.results / f"{args.candidate}_decision.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
