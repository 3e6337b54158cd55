"""Run ``estimate`` on every DEM + outline pair of the data kit; a table per glacier.

Sanity baselines measured beside each glacier: the volume-area scaling volume
(V = 0.034 A^1.375 km3, A in km2; Bahr et al. 1997 / Chen & Ohmura 1990 constants) and,
for RGI 6 ids, the ITMIX/consensus-type inversion volume of ``g2ti/rgi62_itmix_df.h5``.
Writes ``benchmarks/results/estimate_all_kit.{csv,md}``.
Run: ``GLACIERBED_DATA=../shared/data python benchmarks/estimate_all_kit.py [--model biharmonic]``
(default model: the shipped network, falling back to biharmonic when its weights are absent).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.data import registry as reg
from glacierbed.errors import DataNotFoundError
from glacierbed.estimate import estimate
from glacierbed.catalogue import load_predictor as resolve_model

log = logging.getLogger("estimate_all_kit")

EXAMPLES = ["oetztal", "hintereisferner", "baltoro", "columbia", "south-glacier", "chhota-shigri",
            "karakoram-03439", "alaska-10299", "greenland-08389", "alpine-01270", "nz-canterbury"]
VA_C, VA_GAMMA = 0.034, 1.375


def md_table(df: pd.DataFrame, index: bool = True) -> str:
    """A GitHub Markdown table (pandas' to_markdown needs the optional ``tabulate``)."""
    d = df.reset_index() if index else df
    head = "| " + " | ".join(map(str, d.columns)) + " |"
    sep = "|" + "---|" * len(d.columns)
    body = ["| " + " | ".join("" if (isinstance(v, float) and np.isnan(v)) else str(v) for v in row) + " |"
            for row in d.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def pick_model(name: str | None):
    """The requested model; for the default network, biharmonic if its weights are absent."""
    if name is not None:
        return resolve_model(name), name
    try:
        return resolve_model(None), "network"
    except DataNotFoundError as exc:
        log.warning("network not available (%s): falling back to biharmonic", exc)
        return resolve_model("biharmonic"), "biharmonic (network weights absent)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="default: network, else biharmonic")
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model, label = pick_model(args.model)
    work = Path(args.out or tempfile.mkdtemp(prefix="glacierbed_estimate_kit_"))
    itmix = pd.read_hdf(reg.get_file("oggm-sample-data/g2ti/rgi62_itmix_df.h5"))
    rows = []
    for name in EXAMPLES:
        ex = reg.get_example(name)
        t0 = time.perf_counter()
        res = estimate(ex.dem, ex.outlines, work / name, model=model, maps=False)
        wall = time.perf_counter() - t0
        t = res.glaciers.copy()
        t.insert(0, "example", name)
        t["example_wall_s"] = wall
        rows.append(t)
        log.info("%s: %d glaciers, %.3f km3 in %.1f s (%s)", name, len(t), t["volume_km3"].sum(), wall,
                 dict(t["status"].value_counts()))
    df = pd.concat(rows, ignore_index=True)
    df["va_volume_km3"] = VA_C * df["area_km2"] ** VA_GAMMA
    df["ratio_to_va"] = df["volume_km3"] / df["va_volume_km3"]
    df["itmix_volume_km3"] = df["rgi_id"].map(itmix["vol_itmix_m3"] / 1e9)
    df["ratio_to_itmix"] = df["volume_km3"] / df["itmix_volume_km3"]
    df["model_used"] = label
    cols = ["example", "rgi_id", "name", "area_km2", "volume_km3", "volume_std_km3", "mean_thickness_m",
            "max_thickness_m", "neg_fraction", "status", "working_resolution_m", "n_tiles", "seconds",
            "va_volume_km3", "ratio_to_va", "itmix_volume_km3", "ratio_to_itmix", "model_used"]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    df[cols].to_csv(out / "estimate_all_kit.csv", index=False)
    per_ex = df.groupby("example", sort=False).agg(
        glaciers=("rgi_id", "size"), area_km2=("area_km2", "sum"), volume_km3=("volume_km3", "sum"),
        va_volume_km3=("va_volume_km3", "sum"), wall_s=("example_wall_s", "first"))
    per_ex["ratio_to_va"] = per_ex["volume_km3"] / per_ex["va_volume_km3"]
    fmt = df[cols].copy()
    fmt["name"] = fmt["name"].fillna("").astype(str).str.slice(0, 20)
    md = [f"# estimate on every kit DEM + outlines (model: {label})", "",
          f"{len(df)} glaciers in {len(EXAMPLES)} examples; {int(df['status'].str.startswith('ok').sum())} ok, "
          f"statuses { {k: int(v) for k, v in df['status'].value_counts().items()} }. "
          f"Median volume / V-A scaling = {np.nanmedian(df['ratio_to_va']):.2f}; "
          f"median volume / ITMIX (RGI 6 ids, n={int(df['itmix_volume_km3'].notna().sum())}) = "
          f"{np.nanmedian(df['ratio_to_itmix']):.2f}.", "",
          "## per example", "", md_table(per_ex.round(4)), "",
          "## per glacier", "", md_table(fmt.round(4), index=False), ""]
    (out / "estimate_all_kit.md").write_text("\n".join(md))
    print(per_ex.round(4).to_string())
    print(f"model: {label}; work folder {work}")


if __name__ == "__main__":
    main()
