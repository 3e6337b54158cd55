"""Ablation of the physics refinement (glacierbed.posterior.physics) on measured thickness.

Cases (real data kit, ``GLACIERBED_DATA``), all through the real pipeline
(``glacierbed.pipeline.estimate.estimate``: windows, tiling, 4-member ensemble):

* South Glacier (Yukon): all 9,619 radar points, RMSE/MAE/bias (pred - obs);
* Ötztal (20 RGI 5.0 glaciers): GlaThiDa mean thickness per matched glacier (19), pooled;
* Columbia (RGI60-01.10689, tidewater): the only kit glacier covered by the ITS_LIVE
  velocity crop; no measured thickness map in the kit, so volume and mean thickness are
  set beside g2ti (ITMIX/consensus-type, a model) and GlaThiDa's undated mean (277 m).

Rows: inpainting only; + hard constraints; + SIA stress band (the default); + smoothness;
+ mass balance (South Glacier SMB raster); + velocity (Columbia); and the sensitivity to the
stress band. The baseline (VA-shaped, the best in benchmarks/results/validation*.csv) is
computed in the same run. Defaults are physical, not fitted (docs/physics.md).

Run: ``python benchmarks/physics_ablation.py [--model biharmonic|network|PATH ...]``
(default: biharmonic and the shipped network when its weights load). Writes
``benchmarks/results/physics_ablation.{csv,md}``.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.evaluation import baselines
from glacierbed.data import registry
from glacierbed.data.observations import match_glathida_to_outlines, read_glathida_glaciers, read_points
from glacierbed.data.outlines import check_overlap, rasterize_ids, read_outlines
from glacierbed.data.rasters import read_dem
from glacierbed.core.errors import InSampleError, run_script
from glacierbed.evaluation.in_sample import seen_glaciers
from glacierbed.pipeline.store import load_predictor as resolve_model  # noqa: I001
from glacierbed.evaluation.benchmark import estimate_with_table, to_markdown, write_table
from glacierbed.evaluation.against_measurements import POOLED, evaluate_glacier_means, evaluate_points, glacier_volumes
from glacierbed.core.metrics import share_nonpositive
from glacierbed.posterior.physics import PhysicsConfig
from glacierbed.core.atomic import write_text

log = logging.getLogger("physics_ablation")
RESULTS = Path(__file__).resolve().parent / "results"
SMB = "oggm-sample-data/benchmarks/south_glacier/mb_SouthGlacier.tif"
VX, VY = "oggm-sample-data/shop/crop_ALA_G0120_0000_vx.tif", "oggm-sample-data/shop/crop_ALA_G0120_0000_vy.tif"
DEFAULT = PhysicsConfig()

#: (row label, physics config or None, use SMB, use velocity)
ROWS: list[tuple[str, PhysicsConfig | None, bool, bool]] = [
    ("model only", None, False, False),
    ("+ hard constraints (H>=0, margin 0)", DEFAULT.only(), False, False),
    ("default (thickness net: data only; inpainters: + MC prior)", DEFAULT, False, False),
    ("data + mass-conservation prior", replace(DEFAULT, mc_with_model_sigma=True), False, False),
    ("prior only (no data term)", replace(DEFAULT, data=False), False, False),
    ("data + prior twice as wide (rel. sigma 0.8)", replace(DEFAULT, mc_with_model_sigma=True, mc_rel_sigma=0.8),
     False, False),
    ("data + prior half as wide (rel. sigma 0.2)", replace(DEFAULT, mc_with_model_sigma=True, mc_rel_sigma=0.2),
     False, False),
    ("default + SIA stress band 50-150 kPa", replace(DEFAULT, sia=True), False, False),
    ("default + smoothness", replace(DEFAULT, smooth=True), False, False),
    ("default + mass balance (SMB raster)", DEFAULT, True, False),
    ("default + velocity (ITS_LIVE)", DEFAULT, False, True),
    ("old default: data + SIA stress band", replace(DEFAULT, mass_conservation=False, sia=True), False, False),
    ("SIA stress band only (no data term)", DEFAULT.only("sia"), False, False),
]


def _case(name: str):
    ex = registry.get_example(name)
    dem = read_dem(ex.dem)
    return ex, dem, check_overlap(read_outlines(ex.outlines), dem)


def _shares(table: pd.DataFrame, thickness, outlines) -> dict[str, float]:
    """Raw share of non-positive inpainted thickness (area-weighted) and share of 0 in the map."""
    w = table["n_pixels"].to_numpy(float)
    raw = float(np.nansum(table["neg_fraction"] * w) / w.sum()) if w.sum() else np.nan
    inside = rasterize_ids(outlines, thickness) > 0
    sec = table["physics_seconds"].mean() if "physics_seconds" in table else np.nan
    return dict(share_nonpositive_raw=raw, share_zero_final=share_nonpositive(thickness.data, inside),
                physics_s_per_glacier=float(sec) if np.isfinite(sec) else np.nan)


def run_model(model_label: str, model) -> list[dict]:
    rows: list[dict] = []
    smb = registry.get_file(SMB)
    vel = (registry.get_file(VX), registry.get_file(VY))

    # --- South Glacier -------------------------------------------------------------------
    ex, dem, ol = _case("south-glacier")
    pts = read_points(ex.observations)
    for label, cfg, use_smb, use_vel in ROWS:
        if use_vel:
            rows.append(dict(case="south-glacier", model=model_label, row=label,
                             status="no velocity: the ITS_LIVE crop covers only Columbia (Alaska)"))
            continue
        t0 = time.perf_counter()
        h, table = estimate_with_table(dem, ol, model, cfg, smb=smb if use_smb else None)
        pooled = evaluate_points(h, pts, ol)[0].set_index("rgi_id").loc[POOLED]
        rows.append(dict(case="south-glacier", model=model_label, row=label, status="ok",
                         n=int(pooled["n"]), rmse=pooled["rmse"], mae=pooled["mae"], bias=pooled["bias"],
                         r=pooled["r"], volume_km3=float(table["volume_km3"].sum()),
                         **_shares(table, h, ol), seconds=time.perf_counter() - t0))
        log.info("south-glacier %s %s: RMSE %.1f", model_label, label, pooled["rmse"])

    # --- Ötztal: GlaThiDa means ------------------------------------------------------------
    ex, dem, ol = _case("oetztal")
    matches = match_glathida_to_outlines(read_glathida_glaciers(registry.get_file("glathida/glacier.csv")), ol)
    for label, cfg, use_smb, use_vel in ROWS:
        if use_smb or use_vel:
            rows.append(dict(case="oetztal", model=model_label, row=label,
                             status="no SMB raster in the kit" if use_smb else
                             "no velocity: the ITS_LIVE crop covers only Columbia (Alaska)"))
            continue
        t0 = time.perf_counter()
        h, table = estimate_with_table(dem, ol, model, cfg)
        _, pooled = evaluate_glacier_means(h, ol, matches)
        rows.append(dict(case="oetztal", model=model_label, row=label, status="ok", n=pooled["n"],
                         rmse=pooled["rmse"], mae=pooled["mae"], bias=pooled["bias"], r=pooled["r"],
                         volume_km3=float(table["volume_km3"].sum()), **_shares(table, h, ol),
                         seconds=time.perf_counter() - t0))
        log.info("oetztal %s %s: RMSE %.1f", model_label, label, pooled["rmse"])

    # --- Columbia: velocity -------------------------------------------------------------------
    ex, dem, ol = _case("columbia")
    ref_km3 = float(registry.consensus_volumes_km3().loc["RGI60-01.10689"])
    for label, cfg, use_vel in (("model only", None, False), (ROWS[2][0], DEFAULT, False),
                                ("data + mass-conservation prior", replace(DEFAULT, mc_with_model_sigma=True), False),
                                ("default + velocity (ITS_LIVE)", DEFAULT, True)):
        t0 = time.perf_counter()
        h, table = estimate_with_table(dem, ol, model, cfg, velocity=vel if use_vel else None)
        vols = glacier_volumes(h, ol)
        vol = float(vols["volume_km3"].sum())
        rows.append(dict(case="columbia", model=model_label, row=label, status="ok", n=1,
                         volume_km3=vol, mean_thickness_m=float(vols["mean_thickness_m"].iloc[0]),
                         g2ti_volume_km3=ref_km3, ratio_to_g2ti=vol / ref_km3, glathida_mean_m=277.0,
                         **_shares(table, h, ol), seconds=time.perf_counter() - t0))
        log.info("columbia %s %s: %.1f km3 (g2ti %.1f)", model_label, label, vol, ref_km3)
    return rows


def baseline_rows() -> list[dict]:
    """VA-shaped (the best baseline of benchmarks/results/validation*.csv), same run."""
    rows = []
    ex, dem, ol = _case("south-glacier")
    h = baselines.volume_area_thickness(dem, ol, shaped=True)
    p = evaluate_points(h, read_points(ex.observations), ol)[0].set_index("rgi_id").loc[POOLED]
    rows.append(dict(case="south-glacier", model="va_shaped", row="baseline", status="ok", n=int(p["n"]),
                     rmse=p["rmse"], mae=p["mae"], bias=p["bias"], r=p["r"],
                     volume_km3=float(glacier_volumes(h, ol)["volume_km3"].sum())))
    ex, dem, ol = _case("oetztal")
    matches = match_glathida_to_outlines(read_glathida_glaciers(registry.get_file("glathida/glacier.csv")), ol)
    h = baselines.volume_area_thickness(dem, ol, shaped=True)
    _, p = evaluate_glacier_means(h, ol, matches)
    rows.append(dict(case="oetztal", model="va_shaped", row="baseline", status="ok", n=p["n"], rmse=p["rmse"],
                     mae=p["mae"], bias=p["bias"], r=p["r"],
                     volume_km3=float(glacier_volumes(h, ol)["volume_km3"].sum())))
    ex, dem, ol = _case("columbia")
    h = baselines.volume_area_thickness(dem, ol, shaped=True)
    vols = glacier_volumes(h, ol)
    ref = float(registry.consensus_volumes_km3().loc["RGI60-01.10689"])
    rows.append(dict(case="columbia", model="va_shaped", row="baseline", status="ok", n=1,
                     volume_km3=float(vols["volume_km3"].sum()), mean_thickness_m=float(vols["mean_thickness_m"].iloc[0]),
                     g2ti_volume_km3=ref, ratio_to_g2ti=float(vols["volume_km3"].sum()) / ref, glathida_mean_m=277.0))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=None,
                    help="model(s): 'thickness-net', 'biharmonic', 'network' (the inpainting network) or a weights "
                         "path; repeatable")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("glacierbed").setLevel(logging.WARNING)
    t_all = time.perf_counter()
    rows = baseline_rows()
    for name in args.model or ["thickness-net", "biharmonic"]:
        try:
            model = resolve_model(name)
            seen_glaciers(model)  # South Glacier and the Ötztal means: a network fine-tuned on them is refused
        except InSampleError:
            raise
        except Exception as exc:  # no weights yet: say so in the table
            rows.append(dict(case="all", model=name, row="-", status=f"model not available: {exc}"))
            continue
        rows += run_model(name, model)
    df = pd.DataFrame(rows)
    for case in ("south-glacier", "oetztal"):
        base = df.loc[(df["case"] == case) & (df["model"] == "va_shaped"), "rmse"]
        if len(base):
            sel = df["case"] == case
            df.loc[sel, "rmse_ratio_to_va_shaped"] = df.loc[sel, "rmse"] / float(base.iloc[0])
    write_table(df, args.out / "physics_ablation.csv")
    cols = {"south-glacier": ["model", "row", "status", "n", "rmse", "mae", "bias", "r", "rmse_ratio_to_va_shaped",
                              "volume_km3", "share_nonpositive_raw", "share_zero_final", "physics_s_per_glacier"],
            "oetztal": ["model", "row", "status", "n", "rmse", "mae", "bias", "r", "rmse_ratio_to_va_shaped",
                        "volume_km3", "share_nonpositive_raw", "share_zero_final", "physics_s_per_glacier"],
            "columbia": ["model", "row", "status", "volume_km3", "g2ti_volume_km3", "ratio_to_g2ti",
                         "mean_thickness_m", "glathida_mean_m", "share_nonpositive_raw", "share_zero_final",
                         "physics_s_per_glacier"]}
    titles = {"south-glacier": "South Glacier (Yukon), 9,619 radar points: pred - obs (m)",
              "oetztal": "Ötztal, GlaThiDa mean thickness of 19 matched glaciers: pred - obs (m)",
              "columbia": "Columbia Glacier (RGI60-01.10689, tidewater): the only kit glacier under the ITS_LIVE "
                          "velocity crop; references are a model (g2ti) and an undated GlaThiDa mean"}
    md = ["# Physics refinement ablation", "",
          f"Models: {', '.join(args.model or ['thickness-net', 'biharmonic'])}. Pipeline: glacierbed.pipeline.estimate "
          "(4-member ensemble, no calibration); physics refines the ensemble mean. share_nonpositive_raw: share "
          "of glacier pixels where the model's bed is at or above the surface (before any constraint); "
          "share_zero_final: share of glacier pixels with zero thickness in the final map (margins included).", ""]
    for case, c in cols.items():
        sub = df[df["case"].isin([case, "all"])]
        md += [f"## {titles[case]}", "", to_markdown(sub[[x for x in c if x in sub.columns]]), ""]
    md += [f"Total run time {time.perf_counter() - t_all:.0f} s (2 CPU cores, shared).", ""]
    write_text(args.out / "physics_ablation.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    run_script(main)
