"""How wrong is an inpainted bed, as a function of distance to the hole's margin?

On the spatially held-out validation patches (ice-free terrain, glacier-shaped holes
placed in hollows, several resolutions) the error of the biharmonic fill and of the
shipped network is binned by the distance to the margin. The fitted slope of RMSE vs
distance is the calibration of the physics stage's data-term uncertainty
(``PhysicsConfig.data_sigma_growth``): measured on terrain, not on any glacier.

    python benchmarks/inpainting_uncertainty.py [--dataset runs/patches128.npz] [--model NAME_OR_PATH]
    python benchmarks/inpainting_uncertainty.py --report-only   # rewrite the .md/.png from .csv/.json

Writes ``benchmarks/results/inpainting_uncertainty.{csv,json,md,png}``; every figure in the
report is computed from the binned table and the fitted slopes (fill and network).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from glacierbed.evaluation.methods import rewrite_report
from glacierbed.core.atomic import write_json, write_text
from glacierbed.data.terrain import resolve
from glacierbed.models.inpainting.patches import PatchSet
from glacierbed.core.fill import biharmonic_fill
from glacierbed.pipeline.store import load_inpainter
from glacierbed.models.inpainting.masks import MaskGenerator, OutlineShapes
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).parent / "results"
BINS_M = [0, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000]
NEAR_M = 1000  #: the slope is fitted on pixels closer than this to the margin (most glacier pixels)
FAR_M = 1500  #: bins starting at or beyond this are "far from the margin" in the report


def report(df: pd.DataFrame, meta: dict) -> str:
    """The Markdown report, from the binned table and the run's facts only."""
    lo = df["distance_m"].str.split("-").str[0].astype(float)
    far = df[lo >= meta["far_m"]]
    first = df.iloc[0]
    md = ["# Inpainting error vs distance to the hole margin (held-out terrain)", "",
          f"{meta['n_patches']} validation patches of `{meta['dataset']}`, glacier-shaped holes in hollows; "
          "error = inpainted - true elevation (m).", "", df.round(3).to_markdown(index=False), "",
          f"Slope of RMSE with distance d to the margin, through the origin: RMS(error)/RMS(d) for "
          f"d < {meta['near_m'] / 1000:g} km = **{meta['slope']:.3f}** (biharmonic fill; used as "
          f"`PhysicsConfig.data_sigma_growth`). Nearest bin ({first['distance_m']} m): RMSE "
          f"{first['biharmonic_rmse_m']:.1f} m, bias {first['biharmonic_bias_m']:+.1f} m."]
    if len(far):
        b = far["biharmonic_bias_m"]
        sign = "high" if (b > 0).all() else "low" if (b < 0).all() else "mixed"
        md.append(f"Far from the margin (d >= {meta['far_m'] / 1000:g} km, {int(far['n_pixels'].sum())} pixels) the "
                  f"fill's bias is {b.min():+.0f} to {b.max():+.0f} m" +
                  (f": biased {sign}, the 'fill too high in hollows' effect." if sign == "high" else f" ({sign})."))
    ratio = df["network_over_biharmonic"]
    md += [f"Network / biharmonic RMSE per bin: {ratio.min():.3f}–{ratio.max():.3f}"
           + (f"; slope through the origin for d < {meta['near_m'] / 1000:g} km: network **{meta['network_slope']:.3f}** "
              f"against the fill's {meta['slope']:.3f}" if "network_slope" in meta else "")
           + f" (network weights sha256 `{str(meta.get('model_sha256', ''))[:12]}`).", "",
           "![error vs distance](inpainting_uncertainty.png)", ""]
    return "\n".join(md)


def plot(df: pd.DataFrame, meta: dict, path: Path) -> None:
    """RMSE and bias of the fill and the network against distance to the margin, with the fill's fitted slope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo = df["distance_m"].str.split("-").str[0].astype(float)
    hi = df["distance_m"].str.split("-").str[1].astype(float)
    mid = (lo + hi) / 2
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for m, style in (("biharmonic", "o-"), ("network", "s--")):
        ax[0].plot(mid, df[f"{m}_rmse_m"], style, label=m)
        ax[1].plot(mid, df[f"{m}_bias_m"], style, label=m)
    d = np.linspace(0, meta["near_m"], 10)
    ax[0].plot(d, meta["slope"] * d, "k:", label=f"{meta['slope']:.3f} x distance (fill, d < {meta['near_m']:g} m)")
    ax[0].set(xscale="log", yscale="log", xlabel="distance to the hole margin (m)", ylabel="RMSE (m)")
    ax[1].axhline(0, color="grey", lw=0.5)
    ax[1].set(xscale="log", xlabel="distance to the hole margin (m)", ylabel="bias, inpainted - true (m)")
    for a in ax:
        a.legend(fontsize=8)
    fig.suptitle(f"Held-out terrain, glacier-shaped holes ({meta['n_patches']} patches)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="runs/patches128.npz")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="inpainting-network", help="the network (name or weights path)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md and .png from the .csv/.json")
    a = ap.parse_args()
    if a.report_only:
        print(rewrite_report(RESULTS, "inpainting_uncertainty", report))
        plot(pd.read_csv(RESULTS / "inpainting_uncertainty.csv"),
             json.loads((RESULTS / "inpainting_uncertainty.json").read_text()), RESULTS / "inpainting_uncertainty.png")
        return
    ps = PatchSet.load(a.dataset).subset("val")
    shapes = OutlineShapes.from_outlines([resolve("oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp"),
                                          resolve("nz-canterbury-25m/glaciers.gpkg")])
    gen = MaskGenerator(shapes, p_box=0.0)
    net = load_inpainter(a.model)
    rng = np.random.default_rng(a.seed)
    err = {"biharmonic": [], "network": []}
    dist = []
    for i in rng.choice(len(ps), min(a.n, len(ps)), replace=False):
        dem = ps.dem[i].astype(np.float64)
        hole = gen(dem, rng) | ps.glacier[i]
        w = hole & ~ps.glacier[i]
        err["biharmonic"].append((biharmonic_fill(dem, hole) - dem)[w])
        err["network"].append((net.inpaint(dem, hole, float(ps.res[i])) - dem)[w])
        dist.append((ndimage.distance_transform_edt(hole) * ps.res[i])[w])
    d = np.concatenate(dist)
    rows = []
    for lo, hi in zip(BINS_M[:-1], BINS_M[1:]):
        k = (d >= lo) & (d < hi)
        if not k.any():
            continue
        row = {"distance_m": f"{lo}-{hi}", "n_pixels": int(k.sum())}
        for m, e in err.items():
            e = np.concatenate(e)[k]
            row[f"{m}_rmse_m"] = float(np.sqrt(np.mean(e**2)))
            row[f"{m}_bias_m"] = float(np.mean(e))
        row["network_over_biharmonic"] = row["network_rmse_m"] / row["biharmonic_rmse_m"]
        rows.append(row)
    df = pd.DataFrame(rows)
    e_b = np.concatenate(err["biharmonic"])
    near = d < NEAR_M  # most glacier pixels; slope of RMSE with distance, through the origin
    slope = float(np.sqrt(np.sum(e_b[near] ** 2) / np.sum(d[near] ** 2)))
    e_n = np.concatenate(err["network"])
    net_slope = float(np.sqrt(np.sum(e_n[near] ** 2) / np.sum(d[near] ** 2)))
    meta = {"dataset": a.dataset, "n_patches": len(dist), "seed": a.seed, "slope": round(slope, 4),
            "network_slope": round(net_slope, 4),
            "near_m": NEAR_M, "far_m": FAR_M, "model_sha256": net.weights_sha256}
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / "inpainting_uncertainty.csv", index=False, float_format="%.3f")
    write_json(RESULTS / "inpainting_uncertainty.json", meta)
    write_text(RESULTS / "inpainting_uncertainty.md", report(df, meta))
    plot(df, meta, RESULTS / "inpainting_uncertainty.png")
    print(report(df, meta))


if __name__ == "__main__":
    run_script(main)
