"""The Farinotti et al. (2019) consensus beside the default on the Alpine glacier means neither was fitted to.

Users compare glacierbed with the consensus: on every glacier of RGI 11 the default's volume is a median 0.78× the
consensus-type (g2ti) volume (``rgi11_region.md``). Which is closer to measured ice? The 61 Alpine glaciers with a
GlaThiDa mean thickness that the default never saw (``benchmarks/unseen_alps_means.py``, a blind check; its per-glacier
table is this script's input) are scored here with the consensus too: its mean thickness is the glacier's g2ti volume
(:func:`glacierbed.data.registry.consensus_volumes_km3`) over the area of the same outline the default was run on
(``rgi11-alps/outlines.gpkg``). Glacier means only: the consensus has no per-cell map in the kit for these glaciers.
Split by survey year too (the consensus' DEMs and outlines date from about 2000–2003; a later survey meets thinner ice).
Nothing is fitted or chosen here.

Run: ``GLACIERBED_DATA=../shared/data python benchmarks/consensus_alps_means.py`` (seconds). Writes
``benchmarks/results/consensus_alps_means.{md,csv,png}`` and ``consensus_alps_means_glaciers.csv``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.core.metrics import error_metrics
from glacierbed.evaluation.benchmark import to_markdown, write_table

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "consensus_alps_means"
#: estimate columns of unseen_alps_means_glaciers.csv (and the consensus, added here) -> method label
METHODS = {"default_calibrated_m": "default, calibrated", "reference_calibrated_m": "previous default, calibrated",
           "consensus_m": "consensus (Farinotti et al. 2019, g2ti)", "base_va_shaped": "volume-area scaling",
           "base_glabtop": "GlabTop", "base_oggm": "OGGM"}
#: the consensus' DEM and outline epoch ends about here; a survey after it meets thinner ice
EPOCH_END_YEAR = 2005


def with_consensus(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per glacier, ``rgi_id``) with ``consensus_m``: the consensus volume over the outline's area."""
    import geopandas as gpd

    from glacierbed.data import registry

    outlines = gpd.read_file(registry.get_file("rgi11-alps/outlines.gpkg"), columns=["RGIId", "area_km2"],
                             ignore_geometry=True).set_index("RGIId")
    ids = table["rgi_id"]
    missing = sorted(set(ids) - set(outlines.index))
    if missing:
        raise SystemExit(f"rgi11-alps/outlines.gpkg: no outline for {', '.join(missing[:5])}")
    volume = registry.consensus_volumes_km3().reindex(ids).to_numpy()
    return table.assign(consensus_m=volume * 1e9 / (outlines.loc[ids, "area_km2"].to_numpy() * 1e6))


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: n, RMSE, bias, MAE (m), median estimate / measured and the share within 20 % of it."""
    rows = []
    for col, label in METHODS.items():
        m = error_metrics(table[col], table["obs_mean_m"])
        ratio = table[col] / table["obs_mean_m"]
        rows.append({"method": label, "n": int(m["n"]), "rmse_m": m["rmse"], "bias_m": m["bias"], "mae_m": m["mae"],
                     "median_ratio_to_measured": float(ratio.median()),
                     "share_within_20pct": float(((ratio - 1).abs() <= 0.2).mean())})
    return pd.DataFrame(rows)


def by_epoch(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`scores` of the surveys up to :data:`EPOCH_END_YEAR` and after it (undated ones left out)."""
    dated = table.dropna(subset=["survey_year"])
    parts = {f"surveyed ≤ {EPOCH_END_YEAR}": dated[dated["survey_year"] <= EPOCH_END_YEAR],
             f"surveyed after {EPOCH_END_YEAR}": dated[dated["survey_year"] > EPOCH_END_YEAR]}
    return pd.concat([scores(part).assign(surveys=name) for name, part in parts.items()], ignore_index=True)


def plot(table: pd.DataFrame, path: Path) -> Path:
    """Measured against estimated glacier mean thickness: the default and the consensus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 5))
    ax.scatter(table["obs_mean_m"], table["consensus_m"], s=16, marker="s", facecolors="none", edgecolors="C1",
               label=METHODS["consensus_m"])
    ax.scatter(table["obs_mean_m"], table["default_calibrated_m"], s=14, c="C0", label=METHODS["default_calibrated_m"])
    top = float(np.nanmax(table[["obs_mean_m", "consensus_m", "default_calibrated_m"]].to_numpy())) * 1.05
    ax.plot([0, top], [0, top], "k-", lw=0.8)
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="GlaThiDa mean thickness (m)", ylabel="estimated mean thickness (m)",
           title=f"{len(table)} Alpine glaciers neither was fitted to")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--glaciers", type=Path, default=RESULTS / "unseen_alps_means_glaciers.csv",
                    help="per-glacier table of benchmarks/unseen_alps_means.py")
    ap.add_argument("--region", type=Path, default=RESULTS / "rgi11_region.csv",
                    help="the default's run over every RGI 11 glacier (benchmarks/rgi11_region.py), for its ratio to g2ti")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    table = with_consensus(pd.read_csv(args.glaciers))
    overall, epochs = scores(table), by_epoch(table)
    default_over_consensus = table["default_calibrated_m"] / table["consensus_m"]
    region = pd.read_csv(args.region)
    region_ratio = region.loc[region["status"] == "ok", "ratio"]
    write_table(overall, args.out / f"{NAME}.csv")
    write_table(table, args.out / f"{NAME}_glaciers.csv")
    plot(table, args.out / f"{NAME}.png")
    c = overall.set_index("method")
    lines = [f"# {__doc__.splitlines()[0]}", "",
             f"Run {dt.date.today()}. {len(table)} Alpine glaciers with a GlaThiDa mean thickness (held-out surveys "
             "dropped) that share no identity with a glacier the default was fine-tuned on; the default's, the previous "
             "default's and the baselines' means from [unseen_alps_means_glaciers.csv](unseen_alps_means_glaciers.csv); "
             "the consensus mean = its g2ti volume / the area of the rgi11-alps outline the default was run on. "
             "Metres of ice, estimate − measured. The consensus weighted its member models by their skill on "
             "measured glaciers (GlaThiDa-era data), so it is not blind to these glaciers in the way the default is.", "",
             to_markdown(overall, ".3g"), "",
             f"By survey year (the consensus' DEMs and outlines date from about 2000–2003):", "",
             to_markdown(epochs[["surveys", *overall.columns]], ".3g"), "",
             f"- The consensus is {c.loc[METHODS['consensus_m'], 'bias_m']:+.1f} m off on average (median "
             f"{c.loc[METHODS['consensus_m'], 'median_ratio_to_measured']:.2f}× the measured mean), the default "
             f"{c.loc[METHODS['default_calibrated_m'], 'bias_m']:+.1f} m "
             f"({c.loc[METHODS['default_calibrated_m'], 'median_ratio_to_measured']:.2f}×).",
             f"- The default / consensus on these glaciers: median {default_over_consensus.median():.2f} "
             f"(10–90 %: {default_over_consensus.quantile(0.1):.2f}–{default_over_consensus.quantile(0.9):.2f}); over "
             f"every RGI 11 glacier the default's volume is a median {region_ratio.median():.2f}× g2ti's "
             f"([rgi11_region.csv](rgi11_region.csv), {len(region_ratio)} glaciers).", "",
             f"![measured vs estimated]({NAME}.png)", ""]
    write_text(args.out / f"{NAME}.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
