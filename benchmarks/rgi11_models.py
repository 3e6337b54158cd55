"""The same region, every glacier of RGI 11, estimated by two models: what a change of model does to the volumes.

Reads run folders of ``glacierbed estimate`` on ``rgi11-alps`` (``benchmarks/rgi11_region.py`` makes the default's,
``runs/rgi11``); with ``--estimate LABEL=MODEL`` it first runs ``glacierbed estimate ... --model MODEL --out
runs/rgi11-LABEL`` (resumable). Per run: the region's total ± 1σ, its ratio to the g2ti / consensus-type total of the
same glaciers, the per-glacier ratio to g2ti (median, 10–90 %), and each run's per-glacier volume against the first
run's. g2ti is not truth: a consensus-type product to compare with. Evaluation only.

Writes ``benchmarks/results/rgi11_models.{md,csv}``. Run: ``GLACIERBED_DATA=../shared/data python
benchmarks/rgi11_models.py --run default=runs/rgi11 --estimate previous=runs/previous_default_plastic/thickness-net.pt``
(13 min for the second model on 2 cores; afterwards ``--run default=runs/rgi11 previous=runs/rgi11-previous`` rereads).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pandas as pd

from glacierbed.core.atomic import write_text
from glacierbed.core.errors import run_script
from glacierbed.evaluation.benchmark import load_script, to_markdown, write_table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _rgi11_region():
    """benchmarks/rgi11_region.py as a module (its data paths and g2ti join)."""
    return load_script(HERE / "rgi11_region.py")


def labelled(pairs: list[str], what: str) -> dict[str, str]:
    """``LABEL=VALUE`` arguments as a dict (a clear stop on a malformed one)."""
    out = {}
    for pair in pairs:
        label, sep, value = pair.partition("=")
        if not sep or not label or not value:
            raise SystemExit(f"{what} {pair!r}: expected LABEL=VALUE")
        out[label] = value
    return out


def run_summary(label: str, folder: Path, first: pd.Series | None, region) -> tuple[dict, pd.Series]:
    """One run's row (totals and per-glacier ratios to g2ti and to the first run) and its per-glacier volumes."""
    if not (folder / "summary.json").is_file():
        raise SystemExit(f"{folder}: no summary.json; run glacierbed estimate into it first (--estimate)")
    summary = json.loads((folder / "summary.json").read_text())
    table = region.with_g2ti(pd.read_csv(folder / "glaciers.csv").set_index("rgi_id"))
    both = table[(table["status"] == "ok") & (table["vol_g2ti_km3"] > 0)]
    q = both["ratio"].quantile([0.1, 0.5, 0.9])
    shown = folder.relative_to(region.REPO) if folder.is_relative_to(region.REPO) else folder
    row = {"model": label, "folder": str(shown), "glaciers_ok": int((table["status"] == "ok").sum()),
           "volume_km3": summary["volume_km3"], "volume_std_km3": summary["volume_std_km3"],
           "g2ti_km3": float(table["vol_g2ti_km3"].sum()),
           "total_ratio_to_g2ti": summary["volume_km3"] / float(table["vol_g2ti_km3"].sum()),
           "per_glacier_ratio_p10": q[0.1], "per_glacier_ratio_median": q[0.5], "per_glacier_ratio_p90": q[0.9]}
    volumes = table["volume_km3"]
    if first is not None:
        paired = (volumes / first).dropna()
        row.update({"per_glacier_vs_first_median": float(paired.median()),
                    "per_glacier_vs_first_p10": float(paired.quantile(0.1)),
                    "per_glacier_vs_first_p90": float(paired.quantile(0.9))})
    return row, volumes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", nargs="+", default=["default=runs/rgi11"], help="LABEL=FOLDER of finished runs")
    ap.add_argument("--estimate", nargs="*", default=[], help="LABEL=MODEL: run glacierbed estimate first")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    region = _rgi11_region()
    runs = {label: region.REPO / folder for label, folder in labelled(args.run, "--run").items()}
    for label, model in labelled(args.estimate, "--estimate").items():
        runs[label] = region.RUNS / f"rgi11-{label}"
        subprocess.run(["glacierbed", "estimate", "--dem", str(region.ALPS / "dem"), "--outlines",
                        str(region.ALPS / "outlines.gpkg"), "--model", model, "--out", str(runs[label])], check=True)
    rows, first = [], None
    for label, folder in runs.items():
        row, volumes = run_summary(label, folder, first, region)
        rows.append(row)
        first = volumes if first is None else first
    table = pd.DataFrame(rows)
    write_table(table, args.out / "rgi11_models.csv")
    lines = ["# RGI 11, every glacier, by two models (evaluation only)", "",
             "The same 3,927 glaciers and DEM tiles (`rgi11-alps`), each model with its own calibration and the "
             "default physics. Totals ± 1σ (glacier errors added linearly); g2ti: the consensus-type volumes of "
             "`oggm-sample-data/g2ti` for the same glaciers (not truth); per-glacier ratios over the glaciers with a "
             f"g2ti volume; `vs_first`: each glacier's volume / the first run's ({rows[0]['model']}).", "",
             to_markdown(table.drop(columns=["folder"]).round(3)), ""]
    write_text(args.out / "rgi11_models.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
