"""B1: a learned blend of the calibrated network's map with VA, GlabTop and mass conservation.

Protocol (written before scoring): ``benchmarks/results/selection_protocol_map_blend.md``. Real data
kit (``GLACIERBED_DATA``); the shipped network's measured table (cached by ``benchmarks/calibration.py``).
Every row's calibrated network thickness comes from the shipped calibration variant fitted without its
glacier (LOGO) or region (LORO); the blend's non-negative weights are fitted without it as well. Writes
``benchmarks/results/map_blend.{md,csv}`` and ``map_blend_weights.csv`` (the weights of every fold).
Run: ``python benchmarks/map_blend.py [--run-dir DIR]``. ``--with-oggm`` scores candidate 40 (protocol
``selection_protocol_map_blend_oggm.md``): OGGM's map as a fifth member, B1 beside it as a reported row, written to
``map_blend_oggm.{md,csv}``. ``--model``: the network whose maps are blended (the previous default, as B1 was scored;
the shipped default's own maps would be in-sample).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.evaluation.benchmark import checklist, to_markdown, write_table
from glacierbed.evaluation.cross_validation import cross_validate
from glacierbed.evaluation.glacier_level_cv import cross_validated_blend, score, with_pixel_means
from glacierbed.evaluation.measured_table import collect
from glacierbed.core.errors import run_script
from glacierbed.posterior.calibration import BOOSTED_DESIGN

RESULTS = Path(__file__).resolve().parent / "results"
CASES = ("south-glacier", "glathida-grids", "oetztal-means")
SHIP = BOOSTED_DESIGN  #: the shipped design when this decision was taken (its committed results)
MEMBERS = ("mu_cal", "base_va_shaped", "base_glabtop", "h_mc_m")
TARGET_SG_RMSE, TARGET_OETZTAL_RMSE = 29.0, 11.4


def scored(rows: pd.DataFrame, thickness: pd.Series) -> dict[str, float]:
    """The protocol's figures with ``thickness`` as each row's prediction."""
    r = rows.assign(mu=thickness)
    return score(r, pd.Series(1.0, index=r["group"].unique()))


def calibrated_rows(ms, by: str) -> pd.DataFrame:
    """Every row with the network calibrated (``SHIP``) without its ``by`` fold; glacier-mean rows carry their
    pixels' mass-conservation mean (a member of the blends)."""
    return with_pixel_means(cross_validate(ms, SHIP, by=by).rows, ms.pixels, ("h_mc_m",))


def blend_rule(ref: pd.Series, blend: pd.Series) -> dict[str, bool]:
    """B1's rule (and candidate 40's): the blend's leave-one-glacier-out scores against the calibrated network's."""
    return {f"grid per-glacier median ratio lower than the calibrated network's ({ref['grids_median_ratio']:.3f})":
            blend["grids_median_ratio"] < ref["grids_median_ratio"],
            f"South Glacier <= {TARGET_SG_RMSE:g} m": blend["south_glacier_rmse"] <= TARGET_SG_RMSE,
            f"Ötztal means <= {TARGET_OETZTAL_RMSE:g} m": blend["oetztal_means_rmse"] <= TARGET_OETZTAL_RMSE}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, default=Path.home() / ".cache" / "glacierbed-calibration")
    ap.add_argument("--model", default="runs/previous_default/thickness-net.pt")
    ap.add_argument("--with-oggm", action="store_true", help="candidate 40: OGGM's map as a fifth member")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.with_oggm:
        return main_with_oggm(args)
    ms = collect(args.run_dir, args.model, True, cases=CASES)
    results, weights = [], []
    for split, by in (("LOGO", "group"), ("LORO", "region")):
        rows = calibrated_rows(ms, by)
        blend, w = cross_validated_blend(rows, MEMBERS, by=by)
        rows = rows.loc[blend.index]
        results += [{"variant": "calibrated network (shipped)", "split": split, **scored(rows, rows["mu_cal"])},
                    {"variant": "B1 blend", "split": split, **scored(rows, blend)}]
        weights.append(w.assign(split=split))
    df = pd.DataFrame(results)
    w = pd.concat(weights)
    w.index.name = "held_out"
    logo = df[df["split"] == "LOGO"].set_index("variant")
    ref, b1 = logo.loc["calibrated network (shipped)"], logo.loc["B1 blend"]
    checks = blend_rule(ref, b1)
    wins = all(checks.values())
    logo_w = w[w["split"] == "LOGO"][list(MEMBERS)]
    write_table(df, RESULTS / "map_blend.csv", ".6g")
    write_table(w.reset_index(), RESULTS / "map_blend_weights.csv", ".4g")
    lines = ["# B1: a learned blend of thickness maps (issue 16, item 5)", "",
             "Protocol, written before scoring: [selection_protocol_map_blend.md](selection_protocol_map_blend.md). "
             f"Members per row: the calibrated network (`{SHIP}`, fitted without the row's glacier or region), VA "
             "(shaped), GlabTop, mass conservation; non-negative weights, no intercept, each glacier identity "
             "weighing the same, fitted without the row's glacier (LOGO) or region (LORO). Grid ratio: median over the "
             "23 grid glaciers of RMSE / that glacier's best baseline (VA, GlabTop, OGGM) on the same cells. "
             "Hintereisferner not scored (no baseline maps in the pixel table). Glacier-mean rows take the "
             "mass-conservation mean of their glacier's pixels (a first run left them out by a missing value, "
             "which dropped the Ötztal means from fit and score; its grid figures were the same to 3 digits).", "",
             to_markdown(df, ".3g"), "",
             "Blend weights over the LOGO folds (min / median / max): " + "; ".join(
                 f"{m} {logo_w[m].min():.2f} / {logo_w[m].median():.2f} / {logo_w[m].max():.2f}" for m in MEMBERS)
             + " ([every fold](map_blend_weights.csv)).", "",
             "## The rule (LOGO)", "", *checklist(checks), "",
             f"**Decision: {'B1 wins and is a candidate for the default' if wins else 'the default is unchanged'}.** "
             "1 variant tried.", ""]
    write_text(RESULTS / "map_blend.md", "\n".join(lines))
    print("\n".join(lines))


OGGM_MEMBERS = (*MEMBERS, "base_oggm")
OGGM_NAME = "map_blend_oggm"


def blended_scores(ms, by: str) -> tuple[list[dict], pd.DataFrame, int]:
    """Candidate 40's split ``by``: the calibrated network, B1 and B1 + OGGM scored on the rows where every member of
    B1 + OGGM exists; the weights of both blends per held-out fold; the number of rows left out for a missing member."""
    rows = calibrated_rows(ms, by)
    complete = rows[list(OGGM_MEMBERS)].notna().all(axis=1)
    rows = rows[complete]
    out, weights = [{"variant": "calibrated network", **scored(rows, rows["mu_cal"])}], []
    for name, members in (("B1 blend (reported)", MEMBERS), ("B1 + OGGM (candidate 40)", OGGM_MEMBERS)):
        blend, w = cross_validated_blend(rows, members, by=by)
        out.append({"variant": name, **scored(rows, blend)})
        weights.append(w.assign(blend=name))
    return out, pd.concat(weights), int((~complete).sum())


def main_with_oggm(args: argparse.Namespace) -> None:
    """Candidate 40 (protocol ``selection_protocol_map_blend_oggm.md``): results and decision files."""
    ms = collect(args.run_dir, args.model, True, cases=CASES)
    results, weights, dropped = [], [], {}
    for split, by in (("LOGO", "group"), ("LORO", "region")):
        rows, w, dropped[split] = blended_scores(ms, by)
        results += [{**r, "split": split} for r in rows]
        weights.append(w.assign(split=split))
    df = pd.DataFrame(results)[["variant", "split", *[c for c in results[0] if c not in ("variant", "split")]]]
    w = pd.concat(weights)
    w.index.name = "held_out"
    logo = df[df["split"] == "LOGO"].set_index("variant")
    ref, cand = logo.loc["calibrated network"], logo.loc["B1 + OGGM (candidate 40)"]
    checks = blend_rule(ref, cand)
    write_table(df, RESULTS / f"{OGGM_NAME}.csv", ".6g")
    write_table(w.reset_index(), RESULTS / f"{OGGM_NAME}_weights.csv", ".4g")
    logo_w = w[(w["split"] == "LOGO") & (w["blend"] == "B1 + OGGM (candidate 40)")]
    lines = ["# Candidate 40: the learned map blend with OGGM as a member (issue 16, item 5)", "",
             "Protocol, written before scoring: [selection_protocol_map_blend_oggm.md]"
             "(selection_protocol_map_blend_oggm.md). Network: `" + str(args.model) + "` (the previous default, as B1 "
             f"was scored), today's default physics, calibrated `{SHIP}` without the row's glacier (LOGO) or region "
             "(LORO). Members: that calibrated map, VA (shaped), GlabTop, mass conservation and, for the candidate, "
             "OGGM; non-negative weights without intercept, each glacier identity weighing the same, fitted without "
             f"the row's glacier or region. Rows without every member left out of every variant: {dropped['LOGO']}.",
             "", to_markdown(df, ".3g"), "",
             "B1 + OGGM weights over the LOGO folds (min / median / max): " + "; ".join(
                 f"{m} {logo_w[m].min():.2f} / {logo_w[m].median():.2f} / {logo_w[m].max():.2f}" for m in OGGM_MEMBERS)
             + f" ([every fold]({OGGM_NAME}_weights.csv)).", "",
             "## The rule (LOGO)", "", *checklist(checks), "",
             "**Decision: " + ("B1 + OGGM is a candidate for an opt-in consensus; the nested test on the default's "
                               "fold networks comes next" if all(checks.values()) else "not shipped") + ".** 1 variant "
             "tried (B1 rerun as a reported row).", ""]
    write_text(RESULTS / f"{OGGM_NAME}.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
