"""Which real glaciers a simulated set makes: its glaciers against the kit's measured ones.

For every simulated set given, each glacier wholly inside its window (not cut by the edge,
the simulation's sink) gives its area, mean and largest thickness and mean surface slope.
The kit's measured glaciers (``benchmarks/results/diagnosis.csv``: area, measured mean
thickness, slope) are then asked: does the set hold a glacier like this one, i.e. within a
factor 1.5 of its area, 1.3 of its mean thickness and 5 degrees of its slope? Counted per kind
of the diagnosis (larger than a 128 px window, polar, plateau / ice cap, thicker than 200 m).

Run: ``python benchmarks/simulated_coverage.py NAME=SET.npz [NAME=SET.npz ...]``. Writes
``benchmarks/results/simulated_coverage.{csv,md}`` and ``simulated_coverage.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from glacierbed.core.atomic import write_text
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.simulation.thickness_area import inner_glaciers
from glacierbed.simulation.glacier_set import SimulatedSet

RESULTS = Path(__file__).resolve().parent / "results"
AREA_FACTOR, THICK_FACTOR, SLOPE_DEG = 1.5, 1.3, 5.0
KINDS = ["larger_than_window_ice", "polar_cold_ice", "plateau_or_ice_cap", "thick_over_200m"]


def simulated_glaciers(sims: SimulatedSet, ice_min_m: float = 1.0) -> pd.DataFrame:
    """One row per simulated glacier not cut by its window's edge."""
    rows = []
    for i in range(len(sims)):
        h, ids, px = sims.thickness[i], sims.ids[i].astype(int) * (sims.thickness[i] > ice_min_m), float(sims.res[i])
        gy, gx = np.gradient(sims.bed[i] + h, px)
        slope = np.degrees(np.arctan(np.hypot(gx, gy)))
        labels = np.unique(ids[inner_glaciers(ids)])
        if not labels.size:
            continue
        n = ndimage.sum(np.ones_like(h), ids, labels)
        rows.append(pd.DataFrame({
            "sample": i, "split": str(sims.split[i]), "source": str(sims.source[i]), "pixel_m": px,
            "area_km2": n * px * px / 1e6, "mean_h_m": ndimage.mean(h, ids, labels),
            "max_h_m": ndimage.maximum(h, ids, labels), "slope_deg": ndimage.mean(slope, ids, labels)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def covered(real: pd.DataFrame, sim: pd.DataFrame) -> np.ndarray:
    """Whether each real glacier has a simulated look-alike (area, mean thickness, slope)."""
    a, h, s = (sim[c].to_numpy()[None] for c in ("area_km2", "mean_h_m", "slope_deg"))
    ra, rh, rs = (real[c].to_numpy()[:, None] for c in ("area_km2", "obs_mean_m", "slope_deg"))
    return ((np.abs(np.log(a / ra)) <= np.log(AREA_FACTOR)) & (np.abs(np.log(h / rh)) <= np.log(THICK_FACTOR))
            & (np.abs(s - rs) <= SLOPE_DEG)).any(axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+", help="NAME=PATH.npz; sets named with + are pooled (a+b=...)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    real = pd.read_csv(RESULTS / "diagnosis.csv").drop_duplicates("group")
    sims, summary, rows = {}, [], []
    for item in args.sets:
        name, path = item.split("=", 1)
        parts = [simulated_glaciers(SimulatedSet.load(p)).assign(set_file=p) for p in path.split(",")]
        sims[name] = pd.concat(parts, ignore_index=True)
    for name, g in sims.items():
        train = g[g["split"] == "train"]
        hit = covered(real, train)
        summary.append({"set": name, "windows_with_whole_glaciers": int(g.groupby(["set_file", "sample"]).ngroups),
                        "glaciers_train": len(train),
                        "largest_km2": round(float(train["area_km2"].max()), 1),
                        "glaciers_over_100km2": int((train["area_km2"] > 100).sum()),
                        "glaciers_mean_over_200m": int((train["mean_h_m"] > 200).sum()),
                        "flat_glaciers_under_10deg": int((train["slope_deg"] < 10).sum()),
                        "kit_glaciers_covered": f"{int(hit.sum())}/{len(real)}",
                        **{f"{k}_covered": f"{int(hit[real[k].astype(bool).to_numpy()].sum())}/"
                                           f"{int(real[k].astype(bool).sum())}" for k in KINDS}})
        rows.append(real.assign(set=name, covered=hit)[["set", "group", "region", "area_km2", "obs_mean_m",
                                                        "slope_deg", *KINDS, "covered"]])
    table = pd.DataFrame(summary)
    write_table(pd.concat(rows, ignore_index=True), args.out / "simulated_coverage.csv")
    text = ("# Which real glaciers the simulated sets make\n\n"
            f"A kit glacier counts as covered when the set's training split holds a glacier within a factor "
            f"{AREA_FACTOR} of its area, {THICK_FACTOR} of its measured mean thickness and {SLOPE_DEG:g} degrees of "
            f"its mean slope (glaciers cut by their window's edge not counted). Kinds as in diagnosis.md. "
            f"Per glacier: simulated_coverage.csv.\n\n" + to_markdown(table) + "\n")
    write_text(args.out / "simulated_coverage.md", text)
    _figure(real, sims, args.out / "simulated_coverage.png")
    print(text)
    return 0


def _figure(real: pd.DataFrame, sims: dict[str, pd.DataFrame], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sims), figsize=(5.5 * len(sims), 4.5), squeeze=False, sharey=True)
    for ax, (name, g) in zip(axes[0], sims.items()):
        t = g[g["split"] == "train"]
        ax.scatter(t["area_km2"], t["mean_h_m"], s=3, c="0.6", label=f"simulated ({len(t)})")
        hit = covered(real, t)
        ax.scatter(real["area_km2"], real["obs_mean_m"], s=25, c=np.where(hit, "tab:blue", "tab:red"),
                   label="kit glacier: covered (blue) / not (red)")
        ax.set(xscale="log", yscale="log", xlabel="glacier area (km²)", title=name)
        ax.legend(fontsize=8, loc="upper left")
    axes[0][0].set_ylabel("mean thickness (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
