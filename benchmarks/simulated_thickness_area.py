"""How thick the simulated glaciers are for their area, beside measured glaciers (issue 16, items 1-2; a diagnostic).

The network learns what thickness goes with what ice surface from simulated glaciers; if the simulator makes glaciers
much thicker (or thinner) for their area than real ones, the network starts from that bias and the measured
fine-tuning and the calibration must undo it. This benchmark puts each simulated set's glaciers (the glaciers inside
a window, not cut by its edge: :func:`glacierbed.simulation.thickness_area.inner_glaciers`) and the simulated regions'
glaciers beside every GlaThiDa glacier-level survey with an area and a mean thickness (held-out surveys dropped) and
the Farinotti-type volume-area scaling V = 0.034 A^1.375 (km³, km²): per size class
(:func:`glacierbed.simulation.thickness_area.thickness_for_area`, which every ``glacierbed simulate build`` records
in its summary), the median over glaciers of the mean thickness over the scaling's, and the class's total volume over
the scaling's. Nothing is fitted or chosen.

Sets read where present: samples of the stage-1 spanning simulator, 1/10 of its 128 px half and 1/5 of its 256 px
half (``glacierbed simulate build --config benchmarks/configs/simulated_spanning_{128,256}_sample.yaml --out
runs/thickness_area/span{128,256}_sample.npz --workers 2``, ~11 and ~8 min; their own draws, the same ranges), the
old simulator's set the measured fine-tuning draws from
(``runs/span/sim128.npz``, ``tools/rebuild_lineage.py``), and the simulated regions of ``benchmarks/region_scale.py``
and ``benchmarks/large_glaciers.py``.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/simulated_thickness_area.py`` writes
``benchmarks/results/simulated_thickness_area.{md,csv,png}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.data import registry
from glacierbed.data.observations import read_glathida_glaciers
from glacierbed.core.glaciology import va_mean_thickness_m
from glacierbed.evaluation.benchmark import to_markdown, write_table
from glacierbed.simulation.thickness_area import glacier_sizes, thickness_for_area

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: simulated window sets: label -> (path, the splits read)
WINDOW_SETS = {
    "spanning 128 px simulator (stage 1; 1/10 sample)": (ROOT / "runs/thickness_area/span128_sample.npz", ("train",)),
    "spanning 256 px simulator (stage 1; 1/5 sample)": (ROOT / "runs/thickness_area/span256_sample.npz", ("train",)),
    "old simulator (measured fine-tuning's pool)": (ROOT / "runs/span/sim128.npz", ("train",)),
}
#: simulated regions: label -> truth table
REGIONS = {
    "simulated Alpine region (128 px blocks)": ROOT / "runs/region_truth/region/truth.csv",
    "simulated large-glacier region (256 px blocks)": ROOT / "runs/large_glaciers/region_s0/truth.csv",
}
MEASURED = "GlaThiDa glacier surveys (measured)"


def window_glaciers(path: Path, splits: tuple[str, ...]) -> pd.DataFrame:
    """Area and mean thickness of every glacier inside a window (not cut by its edge) of a simulated set."""
    z = np.load(path)
    sizes = [glacier_sizes(z["thickness"][i], z["ids"][i], float(z["res"][i]))
             for i in np.flatnonzero(np.isin(z["split"], splits))]
    return pd.DataFrame({"area_km2": np.concatenate([a for a, _ in sizes]),
                         "mean_thickness_m": np.concatenate([h for _, h in sizes])})


def region_glaciers(path: Path) -> pd.DataFrame:
    """Area and mean thickness of every glacier of a simulated region's truth table."""
    t = pd.read_csv(path)
    return pd.DataFrame({"area_km2": t["area_km2"],
                         "mean_thickness_m": 1e3 * t["volume_km3"] / t["area_km2"]})


def measured_glaciers() -> pd.DataFrame:
    """GlaThiDa glacier-level surveys with an area and a mean thickness (held-out surveys dropped)."""
    g = read_glathida_glaciers(registry.get_file("glathida/glacier.csv"), for_fitting=True)
    g = g[(g["area"] > 0) & (g["mean_thickness"] > 0)]
    return pd.DataFrame({"area_km2": g["area"].to_numpy(float),
                         "mean_thickness_m": g["mean_thickness"].to_numpy(float)})


def by_size(glaciers: pd.DataFrame, label: str) -> pd.DataFrame:
    """:func:`thickness_for_area` of one set, labelled."""
    return thickness_for_area(glaciers["area_km2"], glaciers["mean_thickness_m"]).assign(set=label)


def plot(sets: dict[str, pd.DataFrame], path: Path) -> Path:
    """Mean thickness against area, each set beside the measured surveys and the scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sim = [k for k in sets if k != MEASURED]
    fig, axes = plt.subplots(1, len(sim), figsize=(4.2 * len(sim), 4.0), sharex=True, sharey=True, squeeze=False)
    a = np.logspace(-2, 3, 50)
    for ax, label in zip(axes[0], sim):
        m = sets[MEASURED]
        ax.scatter(sets[label]["area_km2"], sets[label]["mean_thickness_m"], s=3, alpha=0.3, label="simulated")
        ax.scatter(m["area_km2"], m["mean_thickness_m"], s=6, c="k", alpha=0.6, label="measured (GlaThiDa)")
        ax.plot(a, va_mean_thickness_m(a), "r-", lw=1.5, label="V = 0.034 A^1.375")
        ax.set(xscale="log", yscale="log", xlabel="area (km²)", title=label, xlim=(0.01, 1000), ylim=(1, 2000))
    axes[0][0].set_ylabel("mean thickness (m)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    sets, missing = {MEASURED: measured_glaciers()}, []
    readers = {**{label: (path, lambda p, s=splits: window_glaciers(p, s)) for label, (path, splits) in WINDOW_SETS.items()},
               **{label: (path, region_glaciers) for label, path in REGIONS.items()}}
    for label, (path, read) in readers.items():
        if path.is_file():
            sets[label] = read(path)
        else:
            missing.append(f"{label} (`{path.relative_to(ROOT)}`)")
    table = pd.concat([by_size(g, label) for label, g in sets.items()], ignore_index=True)
    table = table[["set", *table.columns.drop("set")]].round(2)
    write_table(table, args.out / "simulated_thickness_area.csv")
    plot(sets, args.out / "simulated_thickness_area.png")
    lines = [
        "# How thick the simulated glaciers are for their area, beside measured glaciers", "",
        f"Run {dt.date.today()}; a diagnostic (nothing fitted or chosen). Per size class: the median over glaciers of "
        "the glacier's mean thickness over volume-area scaling's (V = 0.034 A^1.375), its 10th-90th percentiles, and "
        "the class's volume over the scaling's. Simulated windows: only glaciers inside a window (not cut by its "
        "edge); measured: every GlaThiDa glacier-level survey with an area and a mean thickness (held-out surveys "
        f"dropped; {len(sets[MEASURED])} surveys). Script: `benchmarks/simulated_thickness_area.py`.", "",
        to_markdown(table), "",
        "![thickness against area](simulated_thickness_area.png)", ""]
    if missing:
        lines += ["Not on this machine, left out: " + "; ".join(missing) + ".", ""]
    write_text(args.out / "simulated_thickness_area.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
