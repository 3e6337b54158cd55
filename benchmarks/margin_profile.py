"""Thickness on the glaciers' margin pixels: measured, and zero (today) against Nye's plastic profile.

"Zero at the margin" is applied to whole pixels (the network's interior mask, the pipeline and the physics
projection). A margin pixel's centre lies inside the outline, so this removes ice, more at coarse pixels and
on small glaciers. Protocol, written first: ``benchmarks/results/selection_protocol_margin_profile.md``.

Three parts, nothing fitted here:

1. **Measured margin cells** (data only): on each GlaThiDa grid, the mean measured thickness on the outline's
   margin pixels, on the ring one pixel further in and on the next ring, against the glacier's measured mean.
2. **The decision**: two runs of ``benchmarks/calibration.py`` with the previous default (trained on simulated
   glaciers only), one per variant (``--physics-config`` with ``margin_profile: plastic`` for V1), compared
   on the protocol's metric (grids, LOGO, ``residual+scale+interval``) and the reported figures.
3. **Today's default on the Ötztal example** (uncalibrated and calibrated volumes with each profile): what the
   choice changes for a user; 4. the same on random RGI 11 glaciers beside their g2ti volumes.

Run: ``python benchmarks/margin_profile.py --v0 DIR --v1 DIR`` (the two calibration runs' ``--out``).
Writes ``benchmarks/results/margin_profile.{md,csv,png}``, ``margin_profile_glaciers.csv``, ``margin_cells.csv`` and
``margin_profile_oetztal.csv``, ``margin_profile_rgi11.csv``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import quiet_per_glacier_logs, run_script
from glacierbed.core.glaciology import PLASTIC_MARGIN_FACTOR, margin_pixels
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.posterior.calibration import BOOSTED_DESIGN

RESULTS = Path(__file__).resolve().parent / "results"
VARIANT = BOOSTED_DESIGN  #: the shipped design when this decision was taken (its committed results)
#: the protocol's rule: V1 recommended if the grids' ratio falls by this much ...
MIN_GAIN = 0.005
#: ... and South Glacier's and the Ötztal means' RMSE rise by no more than this (m)
MAX_LOSS_M = 0.5
log = logging.getLogger("margin_profile")


def rings(own: np.ndarray, n: int = 3) -> list[np.ndarray]:
    """The glacier's margin pixels and the next ``n - 1`` rings inward (4-neighbour peeling)."""
    out, left = [], own.copy()
    for _ in range(n):
        ring = margin_pixels(left, left)
        out.append(ring)
        left = left & ~ring
    return out


def measured_margin_cells() -> pd.DataFrame:
    """Per GlaThiDa grid (held-out surveys left out): measured thickness on the margin ring, the next two
    rings and the whole glacier (rings with fewer than 3 measured cells give NaN)."""
    from glacierbed.data import registry
    from glacierbed.data.outlines import rasterize_ids
    from glacierbed.data.rasters import Raster
    from glacierbed.evaluation.measured_table import _examples, read_case_inputs

    rows = []
    for _, example in _examples(("glathida-grids",), None):
        dem, outlines, ex = read_case_inputs(example)
        obs = Raster.from_file(ex.observations)
        if not obs.same_grid(dem):
            raise ValueError(f"{example}: thickness grid and DEM differ")
        own = rasterize_ids(outlines, dem) > 0
        measured = np.isfinite(obs.data) & own
        row = {"rgi_id": example.removeprefix(registry.GLATHIDA_EXAMPLE_PREFIX), "pixel_m": dem.res[0],
               "margin_share": float(rings(own, 1)[0].sum() / own.sum()),
               "mean_m": float(obs.data[measured].mean())}
        for name, ring in zip(("margin", "ring2", "ring3"), rings(own)):
            k = measured & ring
            row[f"n_{name}"] = int(k.sum())
            row[f"{name}_m"] = float(obs.data[k].mean()) if k.sum() >= 3 else float("nan")
        rows.append(row)
    df = pd.DataFrame(rows)
    df["margin_over_ring2"] = df["margin_m"] / df["ring2_m"]
    df["margin_over_mean"] = df["margin_m"] / df["mean_m"]
    return df


def _scores(run: Path, name: str) -> pd.DataFrame:
    s = pd.read_csv(run / "calibration.csv")
    s = s[s["variant"].isin([VARIANT, "none"])].assign(margin=name)
    return s[["margin", "variant", "split", "case", "n", "rmse", "bias", "median_ratio_to_best_baseline",
              "regions_worse_than_best_baseline", "rel_error_volume", "coverage68", "coverage90"]]


def bias_share(bias: pd.Series, measured_mean: pd.Series) -> float:
    """Share of glaciers (``bias`` indexed by RGI id) with |bias| ≤ 20 % of their measured mean."""
    return float((bias.abs() <= 0.2 * measured_mean.reindex(bias.index)).mean())


def decision(scores: pd.DataFrame, base: str = "zero", new: str = "plastic"
             ) -> tuple[bool, dict[str, dict[str, float]]]:
    """The protocol's rule on the LOGO rows of the shipped variant: ``new`` against ``base`` (their ``margin``
    labels); returns whether it holds and the figures it compared, {"grids"|"sg"|"oetztal": {label: value}}."""
    s = scores[(scores["variant"] == VARIANT) & (scores["split"] == "LOGO")].set_index(["margin", "case"])
    d = {what: {m: float(s.loc[(m, case), column]) for m in (base, new)}
         for what, case, column in (("grids", "glathida-grids", "median_ratio_to_best_baseline"),
                                    ("sg", "south-glacier", "rmse"), ("oetztal", "oetztal-means", "rmse"))}
    ok = (d["grids"][new] <= d["grids"][base] - MIN_GAIN and d["sg"][new] <= d["sg"][base] + MAX_LOSS_M
          and d["oetztal"][new] <= d["oetztal"][base] + MAX_LOSS_M)
    return ok, d


def per_glacier_change(v0: Path, v1: Path) -> pd.DataFrame:
    """Grid glaciers: ratio to the best baseline and bias under each profile (LOGO, shipped variant)."""
    a, b = (pd.read_csv(r / "calibration_glaciers.csv", dtype={"rgi_id": str}) for r in (v0, v1))
    a, b = (x[x["case"] == "glathida-grids"].set_index("rgi_id") for x in (a, b))
    return pd.DataFrame({"ratio_zero": a["ratio_to_best_baseline"], "ratio_plastic": b["ratio_to_best_baseline"],
                         "bias_zero": a["bias"], "bias_plastic": b["bias"]}).assign(
        plastic_over_zero=lambda d: d["ratio_plastic"] / d["ratio_zero"])


def figure(cells: pd.DataFrame, change: pd.DataFrame, path: Path) -> None:
    """Measured margin cells against the next ring (with the two profiles' values), and each grid
    glacier's ratio to its best baseline under each profile."""
    from matplotlib.figure import Figure

    from glacierbed.core.figures import save_figure

    fig = Figure(figsize=(10, 4.2))
    a, b = fig.subplots(1, 2)
    ok = cells.dropna(subset=["margin_m", "ring2_m"])
    a.scatter(ok["ring2_m"], ok["margin_m"], s=18, color="k", label="GlaThiDa grid glaciers")
    top = float(max(ok["ring2_m"].max(), ok["margin_m"].max())) * 1.1
    x = np.array([1.0, top])
    a.plot(x, x, color="0.6", lw=0.8, label="equal")
    a.plot(x, PLASTIC_MARGIN_FACTOR * x, color="tab:blue", label=f"plastic (× {PLASTIC_MARGIN_FACTOR:.3f})")
    a.axhline(1.0, color="tab:red", lw=1.5, label="zero (today; drawn at 1 m)")
    a.set(xscale="log", yscale="log", xlabel="measured, ring next to the margin (m)",
          ylabel="measured, margin pixels (m)", title="Measured thickness on margin pixels")
    a.legend(fontsize=8)
    b.scatter(change["ratio_zero"], change["ratio_plastic"], s=18, color="k")
    lim = [0.4, float(max(change["ratio_zero"].max(), change["ratio_plastic"].max())) * 1.05]
    b.plot(lim, lim, color="0.6", lw=0.8)
    b.set(xlim=lim, ylim=lim, xlabel="zero margins: RMSE / best baseline", ylabel="plastic margins: RMSE / best baseline",
          title="Grid glaciers, previous default, LOGO calibrated")
    save_figure(fig, path)


def profile_volumes(dem: Any, outlines: Any, **estimate_options: Any) -> pd.DataFrame:
    """Today's default with each margin profile, uncalibrated and calibrated: per glacier, the four volumes,
    the outline area and the working resolution (``estimate_options`` go to ``estimate``, e.g. ``select``)."""
    from glacierbed.pipeline.estimate import EstimateConfig, estimate
    from glacierbed.posterior.physics_config import PhysicsConfig

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for profile in ("zero", "plastic"):
            for calibrate in (False, True):
                cfg = EstimateConfig(physics=PhysicsConfig(margin_profile=profile), calibrate=calibrate)
                res = estimate(dem, outlines, Path(tmp) / f"{profile}-{calibrate}", config=cfg, maps=False,
                               **estimate_options)
                g = res.glaciers.set_index("rgi_id")
                out[f"volume_{profile}{'_calibrated' if calibrate else ''}_km3"] = g["volume_km3"]
                out.setdefault("area_km2", g["area_km2"])
                out.setdefault("working_resolution_m", g["working_resolution_m"])
    return pd.DataFrame(out)


def oetztal_volumes() -> pd.DataFrame:
    """Today's default on the Ötztal example, each margin profile, calibrated and not."""
    from glacierbed.data.examples import read_case_inputs

    dem, outlines, _ = read_case_inputs("oetztal")
    df = profile_volumes(dem, outlines)
    df["plastic_over_zero"] = df["volume_plastic_km3"] / df["volume_zero_km3"]
    df["plastic_over_zero_calibrated"] = df["volume_plastic_calibrated_km3"] / df["volume_zero_calibrated_km3"]
    return df.reset_index()


def rgi11_sample(n: int, seed: int = 0) -> pd.DataFrame:
    """Today's default on ``n`` random glaciers of RGI 11 (the kit's tiles), each margin profile, uncalibrated
    and calibrated, beside their g2ti (consensus-type) volumes: how much of the gap to g2ti is the margin."""
    import geopandas as gpd

    from glacierbed.data import registry
    from glacierbed.data.store import data_dir

    if data_dir() is None:
        raise SystemExit("GLACIERBED_DATA must point at the data kit (rgi11-alps/)")
    alps = data_dir() / "rgi11-alps"
    outlines = alps / "outlines.gpkg"
    ids = gpd.read_file(outlines, ignore_geometry=True)["RGIId"].sample(n, random_state=seed).tolist()
    df = profile_volumes(alps / "dem", outlines, select=ids)
    df["volume_g2ti_km3"] = registry.consensus_volumes_km3().reindex(df.index)
    return df.reset_index()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--v0", type=Path, required=True, help="benchmarks/calibration.py --out of V0 (zero)")
    ap.add_argument("--v1", type=Path, required=True, help="the same for V1 (margin_profile: plastic)")
    ap.add_argument("--rgi11-sample", type=int, default=300, help="random RGI 11 glaciers for part 4 (0: skip)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_per_glacier_logs()
    cells = measured_margin_cells()
    write_table(cells, args.out / "margin_cells.csv")
    scores = pd.concat([_scores(args.v0, "zero"), _scores(args.v1, "plastic")], ignore_index=True)
    write_table(scores, args.out / "margin_profile.csv")
    ok, d = decision(scores)
    change = per_glacier_change(args.v0, args.v1)
    write_table(change.reset_index(), args.out / "margin_profile_glaciers.csv")
    figure(cells, change, args.out / "margin_profile.png")
    oz = oetztal_volumes()
    write_table(oz, args.out / "margin_profile_oetztal.csv")
    alps = rgi11_sample(args.rgi11_sample) if args.rgi11_sample else None
    if alps is not None:
        write_table(alps, args.out / "margin_profile_rgi11.csv")
    enough = cells.dropna(subset=["margin_over_ring2"])
    means = cells.set_index("rgi_id")["mean_m"]
    v0_md = (args.v0 / "calibration.md").read_text().splitlines()[0]
    md = [
        "# Thickness on the margin pixels: measured, zero (today) and Nye's plastic profile", "",
        f"{dt.date.today().isoformat()}. Protocol (written first): "
        "[selection_protocol_margin_profile.md](selection_protocol_margin_profile.md); 2 variants, 1 new. "
        f"Script: `benchmarks/margin_profile.py`. V1 gives each margin pixel {PLASTIC_MARGIN_FACTOR:.3f} (√(1/3)) × "
        "its inner neighbours' thickness (no parameter fitted). Scored with the previous default "
        f"(simulated glaciers only; {v0_md.split('model: ', 1)[-1].rstrip(')')}) through "
        "`benchmarks/calibration.py`, each variant calibrated on its own maps, leave-one-glacier-out (LOGO) and "
        "leave-one-region-out (LORO).", "",
        "## 1. Measured thickness on margin pixels (GlaThiDa grids, data only)", "",
        f"On {len(enough)} of {len(cells)} grid glaciers with ≥ 3 measured cells on the margin ring and on the "
        f"next ring, the margin cells average a median **{enough['margin_over_ring2'].median():.2f}×** the next "
        f"ring's (10–90 %: {enough['margin_over_ring2'].quantile(0.1):.2f}–"
        f"{enough['margin_over_ring2'].quantile(0.9):.2f}) and {enough['margin_over_mean'].median():.2f}× the "
        f"glacier's measured mean; margin pixels are {cells['margin_share'].median():.0%} of a grid glacier's "
        "pixels (median). Today every margin pixel is 0. Per glacier: [margin_cells.csv](margin_cells.csv). "
        "Caveat: tracks are sparse near margins and outlines and surveys differ in date.", "",
        "## 2. The decision (previous default, `residual+scale+interval`)", "",
        to_markdown(scores[scores["variant"] == VARIANT].drop(columns=["variant"]).round(3)), "",
        f"- Deciding: grids median per-glacier ratio to the best baseline, LOGO: zero {d['grids']['zero']:.3f}, "
        f"plastic {d['grids']['plastic']:.3f}; South Glacier {d['sg']['zero']:.1f} / {d['sg']['plastic']:.1f} m; "
        f"Ötztal means {d['oetztal']['zero']:.2f} / {d['oetztal']['plastic']:.2f} m.",
        f"- Rule: plastic recommended if the grids' ratio falls by ≥ {MIN_GAIN} and South Glacier and the Ötztal "
        f"means lose ≤ {MAX_LOSS_M} m: **{'recommended' if ok else 'not recommended'}**. The default does not "
        "change this session either way (its own nested table decides).",
        f"- Per grid glacier (LOGO): plastic / zero ratio median {change['plastic_over_zero'].median():.3f}, "
        f"better on {(change['plastic_over_zero'] < 1).sum()} of {len(change)}; |bias| ≤ 20 % on "
        f"{bias_share(change['bias_zero'], means):.0%} (zero) / {bias_share(change['bias_plastic'], means):.0%} "
        "(plastic).", "",
        "Uncalibrated (`none`) rows, for the effect before the calibration's scale factor:", "",
        to_markdown(scores[scores["variant"] == "none"].drop(columns=["variant"]).round(3)), "",
        "![margin profile](margin_profile.png)", "",
        "## 3. Today's default on the Ötztal example", "",
        f"20 glaciers, {oz['area_km2'].sum():.1f} km²: volume {oz['volume_zero_km3'].sum():.3f} km³ (zero) → "
        f"{oz['volume_plastic_km3'].sum():.3f} km³ (plastic) uncalibrated, "
        f"{oz['volume_zero_calibrated_km3'].sum():.3f} → {oz['volume_plastic_calibrated_km3'].sum():.3f} km³ "
        f"calibrated (the shipped calibration was fitted with zero margins); per glacier plastic / zero "
        f"{oz['plastic_over_zero'].min():.2f}–{oz['plastic_over_zero'].max():.2f} (median "
        f"{oz['plastic_over_zero'].median():.2f}), the most on the smallest glaciers "
        "([margin_profile_oetztal.csv](margin_profile_oetztal.csv)).",
    ]
    if alps is not None:
        ok = alps.dropna(subset=["volume_g2ti_km3"])
        ok = ok[(ok["volume_zero_km3"] > 0) & (ok["volume_g2ti_km3"] > 0)]
        g = ok["volume_g2ti_km3"].sum()
        md += ["", "## 4. Today's default on random RGI 11 glaciers, against g2ti", "",
               f"{len(alps)} glaciers drawn at random (seed 0) from the kit's 3,927, {alps['area_km2'].sum():.0f} km², "
               f"{len(ok)} with a g2ti volume ({g:.2f} km³): glacierbed / g2ti total "
               f"{ok['volume_zero_km3'].sum() / g:.2f} (zero) → {ok['volume_plastic_km3'].sum() / g:.2f} (plastic) "
               f"uncalibrated, {ok['volume_zero_calibrated_km3'].sum() / g:.2f} → "
               f"{ok['volume_plastic_calibrated_km3'].sum() / g:.2f} calibrated; per glacier median "
               f"{(ok['volume_zero_calibrated_km3'] / ok['volume_g2ti_km3']).median():.2f} → "
               f"{(ok['volume_plastic_calibrated_km3'] / ok['volume_g2ti_km3']).median():.2f} (calibrated); plastic / "
               f"zero per glacier median {(ok['volume_plastic_km3'] / ok['volume_zero_km3']).median():.2f} "
               f"([margin_profile_rgi11.csv](margin_profile_rgi11.csv)). g2ti is a model, not a measurement: this says "
               "how much of the gap to it the margin pixels make, not which is right."]
    write_text(args.out / "margin_profile.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    run_script(main)
