"""Training-set build benchmark: kept/rejected counts by reason, split sizes and time.

Builds the default patch set (``src/glacierbed/configs/dataset.yaml``) and writes
``benchmarks/results/dataset_build.{csv,json,md}`` plus a figure of sample patches with
training holes. The baseline in the same run is the seed pipeline's design: 256 x 256
patches at each source's first resolution only, same filters. Every figure in the report
is computed from the build's results; sources that gave no patch are named as such.

    python benchmarks/dataset_build.py [--out runs/patches128.npz]
    python benchmarks/dataset_build.py --report-only   # rewrite the .md from the .csv/.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.evaluation.methods import rewrite_report
from glacierbed.core.atomic import write_json, write_text
from glacierbed.data.terrain import source_grids
from glacierbed.models.inpainting.patches import BuildReport, DatasetConfig, build_dataset, sample_patches
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).parent / "results"
CONFIG = Path(__file__).parents[1] / "src/glacierbed/configs/dataset.yaml"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def report(df: pd.DataFrame, meta: dict) -> str:
    """The Markdown report, from the per-source table and the run's summary only."""
    train, val = int(df["train"].sum()), int(df["val"].sum())
    total = train + val
    base = meta["baseline"]
    p, bp = meta["patch"], base["patch"]
    empty = df[(df["train"] + df["val"]) == 0]
    no_val = df[(df["val"] == 0) & (df["train"] > 0)]
    cores = meta.get("cpu_cores")
    on = f" on {cores} cores" if cores else ""
    lines = [f"# Training-set build (default config, {p} x {p} patches)", "",
             f"- kept: **{total}** patches ({train} train / {val} validation, {val / total:.1%} validation by "
             f"spatial strips) from **{len(df) - len(empty)} of {len(df)}** source/resolution pairs in "
             f"**{meta['seconds']:.0f} s**{on}",
             f"- baseline (seed design: {bp} x {bp} patches, one resolution per source, same filters): "
             f"{base['n_patches']} patches in {base['seconds']:.0f} s; the multi-resolution {p} px set has "
             f"{total / max(base['n_patches'], 1):.1f}x as many"]
    if len(empty):
        why = meta.get("empty_sources", {})

        def reasons(key: str) -> str:
            r = why.get(key, {})
            tot = sum(r.values())
            return "; ".join(f"{k} {v / tot:.0%}" if v / tot >= 0.005 else f"{k} <1%" for k, v in sorted(r.items(), key=lambda kv: -kv[1])) if tot else "?"

        lines.append(f"- **no patch** from {len(empty)} source/resolution pair(s) although the config lists "
                     f"them, so they contribute nothing to training or validation: "
                     + ", ".join(f"{k} (rejected candidates, re-drawn alone: {reasons(k)})" for k in empty["source"]))
    if len(no_val):
        lines.append(f"- no validation patch from: {', '.join(no_val['source'])}")
    lines += ["", "| source@resolution | train | val | note |", "|---|---:|---:|---|"]
    for r in df.itertuples():
        note = "**0 patches**" if r.train + r.val == 0 else ("no validation patch" if r.val == 0 else "")
        lines.append(f"| {r.source} | {r.train} | {r.val} | {note} |")
    lines += ["", "| rejected candidates, by reason | count |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(meta["rejected"].items(), key=lambda kv: -kv[1])]
    lines += ["", "![sample patches](dataset_patches.png)", ""]
    return "\n".join(lines)


def why_empty(cfg: DatasetConfig, keys: list[str], n: int = 200) -> dict[str, dict[str, int]]:
    """Rejection reasons of sources that gave no patch, re-drawn alone (``n`` wanted patches)."""
    out = {}
    for src in cfg.sources:
        for res in src.resolutions_m:
            key = f"{src.name}@{res:g}m"
            if key not in keys:
                continue
            dem, glacier = source_grids(src, res)
            rep = BuildReport()
            sample_patches(dem, glacier, cfg, np.random.default_rng(cfg.seed), n, rep, (np.inf, np.inf))
            out[key] = dict(rep.rejected)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/patches128.npz")
    ap.add_argument("--n-per-source", type=int, default=3000)
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md from dataset_build.{csv,json}")
    ap.add_argument("--no-figure", action="store_true", help="do not redraw dataset_patches.png")
    a = ap.parse_args()
    if a.report_only:
        print(rewrite_report(RESULTS, "dataset_build", report))
        return
    cfg = DatasetConfig.from_yaml(CONFIG)
    t = time.perf_counter()
    rep = build_dataset(cfg, a.out, a.n_per_source)
    secs = time.perf_counter() - t
    # baseline: the seed's 256 px patches, one resolution per source, same filters
    base_cfg = replace(cfg, patch=256, sources=tuple(replace(s, resolutions_m=s.resolutions_m[:1]) for s in cfg.sources))
    t = time.perf_counter()
    base = build_dataset(base_cfg, RESULTS / ".tmp" / "seed256.npz", a.n_per_source)
    base_secs = time.perf_counter() - t
    df = pd.DataFrame([dict(source=k, train=v["train"], val=v["val"]) for k, v in rep.per_source.items()])
    meta = {"patch": cfg.patch, "n_per_source": a.n_per_source, "dataset": a.out, "seconds": round(secs, 1),
            "cpu_cores": _cores(), "rejected": dict(rep.rejected),
            "baseline": {"patch": base_cfg.patch, "n_patches": base.kept["train"] + base.kept["val"],
                         "seconds": round(base_secs, 1)},
            "empty_sources": why_empty(cfg, [k for k, v in rep.per_source.items() if v["train"] + v["val"] == 0])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / "dataset_build.csv", index=False)
    write_json(RESULTS / "dataset_build.json", meta)
    write_text(RESULTS / "dataset_build.md", report(df, meta))
    print(report(df, meta))
    if not a.no_figure:
        subprocess.run([sys.executable, "-m", "glacierbed.cli", "dataset", "figure", a.out,
                        "--out", str(RESULTS / "dataset_patches.png")], check=True)


if __name__ == "__main__":
    run_script(main)
