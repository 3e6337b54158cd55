"""Where a region's ice lies in elevation: the ``elevation_bands.csv`` of a ``glacierbed estimate`` run, summed.

Reads a run folder (``--run``; the whole of RGI 11 from the kit's 3,927 tiles by default, made with

    glacierbed estimate --dem ../shared/data/rgi11-alps/dem \\
        --outlines ../shared/data/rgi11-alps/outlines.gpkg --out runs/rgi11 --no-maps

), checks that every glacier's bands add up to its row of ``glaciers.csv`` (volume and estimated area), and sums
the 30 m bands of all glaciers into 150 m bands (five whole bands each): the region's ice area, volume and mean
thickness per band, the cumulative shares, and the elevations below which half of the area and half of the ice
lie. Nothing is fitted; it describes the default's output. Writes
``benchmarks/results/elevation_bands_<name>.{csv,md,png}``.
Run: ``python benchmarks/elevation_bands.py --run runs/rgi11 --name rgi11``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.core.figures import save_figure
from glacierbed.evaluation.benchmark import to_markdown, write_table

RESULTS = Path(__file__).resolve().parent / "results"


def band_consistency(bands: pd.DataFrame, glaciers: pd.DataFrame) -> dict[str, float]:
    """The largest relative gap between a glacier's summed bands and its row (volume, estimated area), over the ok
    glaciers with ice, and how many glaciers have bands."""
    ok = glaciers[(glaciers["status"] == "ok") & (glaciers["volume_km3"] > 0)].set_index("rgi_id")
    totals = bands.groupby("rgi_id")[["volume_km3", "area_km2"]].sum().reindex(ok.index)
    return {"glaciers_ok_with_ice": len(ok), "glaciers_with_bands": int(totals["volume_km3"].notna().sum()),
            "max_rel_gap_volume": float((totals["volume_km3"] / ok["volume_km3"] - 1).abs().max()),
            "max_rel_gap_area": float((totals["area_km2"] / ok["estimated_area_km2"] - 1).abs().max())}


def region_bands(bands: pd.DataFrame, height_m: float) -> pd.DataFrame:
    """The glaciers' bands summed into bands of ``height_m`` (a multiple of theirs): area, volume, mean thickness and
    the cumulative shares of area and volume from the bottom up."""
    step = float((bands["band_top_m"] - bands["band_bottom_m"]).iloc[0])
    if not np.isclose(height_m / step, round(height_m / step)):
        raise SystemExit(f"--height {height_m:g} m is not a multiple of the run's {step:g} m bands")
    b = bands.assign(bottom=np.floor(bands["band_bottom_m"] / height_m + 1e-9) * height_m)
    out = b.groupby("bottom").agg(area_km2=("area_km2", "sum"), volume_km3=("volume_km3", "sum")).reset_index()
    out = out.rename(columns={"bottom": "band_bottom_m"})
    out.insert(1, "band_top_m", out["band_bottom_m"] + height_m)
    out["mean_thickness_m"] = out["volume_km3"] / out["area_km2"] * 1e3
    out["area_share_below"] = out["area_km2"].cumsum() / out["area_km2"].sum()
    out["volume_share_below"] = out["volume_km3"].cumsum() / out["volume_km3"].sum()
    return out


def half_elevation(table: pd.DataFrame, share: str) -> float:
    """The elevation below which half of ``share`` lies (linear within the band that crosses one half)."""
    above = table[table[share] >= 0.5].iloc[0]
    below = float(table.loc[table.index < above.name, share].iloc[-1]) if above.name > table.index[0] else 0.0
    frac = (0.5 - below) / (float(above[share]) - below)
    return float(above["band_bottom_m"] + frac * (above["band_top_m"] - above["band_bottom_m"]))


def plot(table: pd.DataFrame, halves: tuple[float, float], path: Path, title: str) -> Path:
    """Area and volume per band, each panel with its half elevation (``halves``: area, volume) dashed."""
    import matplotlib.pyplot as plt

    fig, (ax_a, ax_v) = plt.subplots(1, 2, figsize=(9, 5), sharey=True)
    mid = (table["band_bottom_m"] + table["band_top_m"]) / 2
    height = float((table["band_top_m"] - table["band_bottom_m"]).iloc[0])
    ax_a.barh(mid, table["area_km2"], height=0.9 * height, color="#7aa6c2")
    ax_a.set_xlabel("ice area per band (km²)")
    ax_a.set_ylabel("surface elevation (m)")
    ax_v.barh(mid, table["volume_km3"], height=0.9 * height, color="#2f5d80")
    ax_v.set_xlabel("ice volume per band (km³)")
    for ax, half in zip((ax_a, ax_v), halves):
        ax.axhline(half, color="k", lw=1, ls="--")
    fig.suptitle(title)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/rgi11"))
    ap.add_argument("--name", default="rgi11")
    ap.add_argument("--height", type=float, default=150.0, help="height (m) of the summed bands")
    args = ap.parse_args(argv)
    for f in ("elevation_bands.csv", "glaciers.csv"):
        if not (args.run / f).is_file():
            raise SystemExit(f"{args.run / f}: missing; run glacierbed estimate --out {args.run} first (see --help)")
    bands, glaciers = pd.read_csv(args.run / "elevation_bands.csv"), pd.read_csv(args.run / "glaciers.csv")
    checks = band_consistency(bands, glaciers)
    table = region_bands(bands, args.height)
    half_area, half_ice = half_elevation(table, "area_share_below"), half_elevation(table, "volume_share_below")
    stem = RESULTS / f"elevation_bands_{args.name}"
    write_table(table, stem.with_suffix(".csv"), ".6g")
    title = (f"{args.run.name}: {table['volume_km3'].sum():.1f} km³ of ice on {table['area_km2'].sum():.0f} km², "
             "by surface elevation")
    plot(table, (half_area, half_ice), stem.with_suffix(".png"), title)
    lines = [f"# Where the ice lies in elevation: `{args.run}` ({args.name})", "",
             "`benchmarks/elevation_bands.py`: the run's `elevation_bands.csv` (every glacier's 30 m bands, the "
             f"default model) summed into {args.height:g} m bands. Nothing fitted.", "",
             f"- Glaciers with bands: {checks['glaciers_with_bands']} of the {checks['glaciers_ok_with_ice']} ok "
             "glaciers with ice; the largest relative gap between a glacier's summed bands and its `glaciers.csv` row: "
             f"volume {checks['max_rel_gap_volume']:.1e}, area {checks['max_rel_gap_area']:.1e}.",
             f"- Half of the ice area lies below **{half_area:,.0f} m**, half of the ice volume below "
             f"**{half_ice:,.0f} m**.",
             f"- Total: {table['area_km2'].sum():,.1f} km², {table['volume_km3'].sum():.2f} km³.", "",
             to_markdown(table, ".4g"), "", f"![bands]({stem.name}.png)", ""]
    write_text(stem.with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
