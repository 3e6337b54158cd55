"""Validation of every thickness method against measurements and today's products.

Cases (real data kit, ``GLACIERBED_DATA``):

* South Glacier (Yukon): the 9,619 radar points, RMSE/MAE/bias and run time per method;
* Ötztal (20 RGI 5.0 glaciers): GlaThiDa mean thickness per matched glacier, pooled RMSE;
* Hintereisferner: volume and mean thickness vs the Farinotti et al. 2019 consensus;
* regional volume: Ötztal total per method vs the per-glacier ITMIX/consensus-type volumes
  of ``g2ti/rgi62_itmix_df.h5`` summed over the same glaciers (RGI 5 -> RGI 6 ids).

Every case has an ``oggm`` row (:mod:`glacierbed.evaluation.oggm_peer`: OGGM's own tasks, offline, on
the same DEM and outlines); its status says "not installed" or why a glacier failed.

Rows: the baselines (volume-area scaling, GlabTop, mass conservation only, the SIA stress
band only, OGGM), the terrain-only biharmonic fill (+ physics), the old default (inpainting
network + SIA band) and the thickness network (+ physics), all without calibration: the
calibration was fitted on these glaciers, so its scores are leave-one-glacier-out only
(``benchmarks/calibration.py``).

Run: ``python benchmarks/validation.py [--model NAME]`` (the thickness network to evaluate,
a name or weights path; default = the shipped one). Writes
``benchmarks/results/validation_*.csv``, ``validation.md`` and figures there.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.evaluation.benchmark import run_case, to_markdown, write_table
from glacierbed.data import registry
from glacierbed.data.outlines import read_outlines
from glacierbed.evaluation.oggm_peer import MB_GRADIENT, OGGM_TASKS, oggm_version
from glacierbed.core.errors import run_script

log = logging.getLogger("validation")
RESULTS = Path(__file__).resolve().parent / "results"
BASELINES = ("va_uniform", "va_shaped", "glabtop", "mass_conservation", "sia_band_only", "biharmonic", "oggm")


def add_ratio(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """``<col>_ratio``: each method's value over the best (lowest) baseline's, same run."""
    base = df.loc[df["method"].isin(BASELINES), col].dropna()
    best = base.min() if len(base) else np.nan
    df = df.copy()
    df[f"{col}_ratio_to_best_baseline"] = df[col] / best
    df.attrs["best_baseline"] = df.loc[df[col] == best, "method"].iloc[0] if np.isfinite(best) else None
    return df


def rgi5_to_rgi6(ids: pd.Series) -> tuple[pd.Series, str]:
    """Map RGI 5.0 ids to RGI 6.0 ids by identical region and number (divides ``_dNN``
    go to their parent), checked against GlaThiDa's RGI50 -> RGI60 link table."""
    mapped = ids.str.replace(r"_d\d+$", "", regex=True).str.replace("RGI50-", "RGI60-", regex=False)
    links = pd.read_csv(registry.get_file("oggm-sample-data/glathida/rgi_glathida_links.csv"))
    known = links.set_index("RGI50_ID")["RGI60_ID"]
    both = ids[ids.isin(known.index)]
    agree = int((known.loc[both].to_numpy() == mapped[both.index].to_numpy()).sum())
    note = (f"RGI 5.0 -> 6.0 by identical number ({ids.str.contains('_d').sum()} divides mapped to their parent); "
            f"GlaThiDa's link table covers {len(both)} of these glaciers and agrees for {agree}")
    return mapped, note


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="thickness network name/path (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out: Path = args.out
    md: list[str] = [f"# Validation (thickness network: {args.model or 'shipped'}; no calibration)", "",
                     f"OGGM row: OGGM {oggm_version() or 'not installed'}, run offline per glacier on the same DEM "
                     f"and outline ({', '.join(OGGM_TASKS)}; linear mass balance {MB_GRADIENT:g} mm w.e./m balanced "
                     "over the glacier, OGGM's default Glen A 2.4e-24, no sliding), its thickness warped onto the "
                     "DEM grid.", ""]
    t_all = time.perf_counter()

    # --- South Glacier: radar points ----------------------------------------------------
    sg = run_case("south-glacier", model=args.model, out_dir=out)
    cols = ["method", "status", "seconds", "n", "n_points", "n_outside_outlines", "n_no_prediction",
            "rmse", "mae", "bias", "median_error", "r", "mean_obs", "mean_pred"]
    sgm = add_ratio(sg.metrics[[c for c in cols if c in sg.metrics]], "rmse")
    write_table(sgm, out / "validation_south_glacier.csv")
    md += ["## South Glacier (Yukon), 9,619 radar points (Wilson et al. 2013; Flowers et al. 2011)", "",
           to_markdown(sgm), "", f"Best baseline: {sgm.attrs['best_baseline']}", ""]

    # --- Ötztal: GlaThiDa glacier means ---------------------------------------------------------
    oz = run_case("oetztal", model=args.model, out_dir=out)
    ozm = add_ratio(oz.metrics[[c for c in oz.metrics.columns if c != "case"]], "glathida_rmse")
    per_glacier = pd.concat([v for k, v in oz.details.items() if k.startswith("glaciers_")], ignore_index=True)
    wide = per_glacier.pivot_table(index=["rgi_id", "survey_name", "survey_year", "obs_mean_m"], columns="method",
                                   values="pred_mean_m").reset_index()
    write_table(ozm, out / "validation_oetztal_summary.csv")
    write_table(per_glacier, out / "validation_oetztal_glaciers.csv")
    unmatched = oz.details.get("glathida_unmatched", pd.DataFrame())
    md += ["## Ötztal, GlaThiDa mean thickness per glacier (GlaThiDa Consortium 2019)", "",
           to_markdown(ozm[["method", "status", "seconds", "glathida_n", "glathida_rmse", "glathida_bias",
                            "glathida_r", "glathida_rmse_ratio_to_best_baseline", "volume_km3",
                            "share_nonpositive"]].dropna(axis=1, how="all")), "",
           f"Best baseline: {ozm.attrs['best_baseline']}. Surveys within the outlines' extent but unmatched "
           f"(position/area disagree): {len(unmatched)} "
           f"({', '.join(unmatched['name'].astype(str)) if len(unmatched) else '-'}).", "",
           "Observed vs predicted mean thickness (m), latest survey per glacier:", "",
           to_markdown(wide, ".0f"), ""]
    if "oggm_glaciers" in oz.details:
        og = oz.details["oggm_glaciers"]
        write_table(og, out / "validation_oetztal_oggm.csv")
        failed = og[og["status"] != "ok"]
        md += [f"OGGM per glacier: {int((og['status'] == 'ok').sum())} of {len(og)} ok, "
               f"{og['seconds'].sum():.0f} s in all (median {og['seconds'].median():.1f} s per glacier); "
               f"OGGM's own volume {og['volume_km3'].sum():.2f} km³."
               + (" Failures:" if len(failed) else ""), ""]
        if len(failed):
            md += [to_markdown(failed[["rgi_id", "status"]]), ""]

    # --- Hintereisferner vs consensus -------------------------------------------------------------
    hef = run_case("hintereisferner", model=args.model, out_dir=out)
    hcols = ["method", "status", "volume_km3", "mean_thickness_m", "consensus_volume_km3",
             "rel_error_volume_vs_consensus", "rmse_vs_consensus_m", "bias_vs_consensus_m", "r_vs_consensus",
             "glathida_mean_obs", "share_nonpositive"]
    hefm = hef.metrics[[c for c in hcols if c in hef.metrics]]
    write_table(hefm, out / "validation_hintereisferner.csv")
    md += ["## Hintereisferner (RGI60-11.00897) vs Farinotti et al. 2019 consensus", "",
           to_markdown(hefm), "", "GlaThiDa: 67 m mean thickness (2001 survey).", ""]

    # --- regional volume vs g2ti ---------------------------------------------------------------------
    outlines = read_outlines(registry.get_example("oetztal").outlines)
    g2ti = registry.consensus_volumes_km3()
    rgi6, note = rgi5_to_rgi6(outlines["rgi_id"])
    in_g2ti = rgi6.isin(g2ti.index)
    ref_km3 = float(g2ti.loc[rgi6[in_g2ti].unique()].sum())
    rows = []
    for k, v in oz.details.items():
        if not k.startswith("volumes_"):
            continue
        matched = v["rgi_id"].isin(outlines.loc[in_g2ti.to_numpy(), "rgi_id"])
        vol = float(v.loc[matched, "volume_km3"].sum())
        rows.append({"method": k.removeprefix("volumes_"), "volume_km3_all": float(v["volume_km3"].sum()),
                     "volume_km3_matched": vol, "g2ti_volume_km3_matched": ref_km3,
                     "ratio_to_g2ti": vol / ref_km3 if ref_km3 else np.nan})
    reg = pd.DataFrame(rows)
    write_table(reg, out / "validation_regional_volume.csv")
    md += ["## Ötztal regional volume vs g2ti (ITMIX/consensus-type per-glacier volumes, RGI 6.2)", "",
           f"{int(in_g2ti.sum())} of {len(outlines)} outlines matched ({rgi6[in_g2ti].nunique()} RGI 6 ids). {note}.",
           "", to_markdown(reg), ""]

    md += [f"Total run time {time.perf_counter() - t_all:.0f} s (2 CPU cores, shared).", ""]
    (out / "validation.md.tmp").write_text("\n".join(md))
    (out / "validation.md.tmp").replace(out / "validation.md")

    print("\n".join(md))
    for name, df, col in (("South Glacier RMSE", sgm, "rmse"), ("Ötztal glacier-mean RMSE", ozm, "glathida_rmse")):
        print(f"\n{name} / best baseline ({df.attrs['best_baseline']}):")
        for _, r in df.iterrows():
            ratio = r.get(f"{col}_ratio_to_best_baseline", np.nan)
            print(f"  {r['method']:<34} {r[col]:8.2f} m  ratio {ratio:5.2f}" if np.isfinite(ratio)
                  else f"  {r['method']:<34} {r['status']}")


if __name__ == "__main__":
    run_script(main)
