"""Inpainting benchmark: trained network vs classical fills on held-out terrain.

Same holes for every method, on the spatially held-out validation patches of the patch
set (several resolutions) and on an unseen range (Cordillera Blanca SRTM, never used in
training). Masked-region RMSE / MAE / bias in metres, over hole pixels that are not real
glacier; ratios against the best classical method measured in the same run. The report
gives every group's patch count and flags groups too small to rank methods, and each
network's training record (steps done of steps planned).

    python benchmarks/inpainting.py --dataset runs/patches128.npz [--model PATH] [--network NAME=PATH ...]
    python benchmarks/inpainting.py --report-only   # rewrite the .md from the .csv files

Writes ``benchmarks/results/inpainting.{csv,md}``, ``inpainting_models.csv`` (one row per
network: weights, SHA-256, steps) and ``inpainting_run.json`` (dataset, seed, cores).
``--report-only`` without ``inpainting_models.csv`` builds it from ``--record
NAME=record.json`` (default: the shipped ``inpainting_net.json`` and the GAN run's record).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.interpolate import griddata

from glacierbed.core.atomic import write_json, write_text
from glacierbed.data.terrain import PatchSource, resolve
from glacierbed.models.inpainting.patches import DatasetConfig, PatchSet, build_dataset
from glacierbed.core.fill import biharmonic_fill, harmonic_fill
from glacierbed.pipeline.store import load_inpainter
from glacierbed.models.inpainting.masks import MaskGenerator, OutlineShapes, box_mask
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]
#: groups with fewer held-out patches than this are flagged: too few to rank methods
MIN_PATCHES = 10
#: issue 19's target: RMSE at most this share of the best classical fill's
TARGET_RATIO = 0.8
DEFAULT_RECORDS = {"network": REPO / "src/glacierbed/weights/inpainting_net.json",
                   "network-gan": RESULTS / "training_gan_record.json"}
OUTLINES = ["oggm-sample-data/test-workflow/rgi/rgi_oetztal.shp", "nz-canterbury-25m/glaciers.gpkg",
            "oggm-sample-data/test-files/Hintereisferner_RGI6.shp",
            "oggm-sample-data/benchmarks/south_glacier/SouthGlacier.shp"]


def cubic_fill(dem: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Clough-Tocher cubic interpolation from a 3-pixel ring around the hole."""
    ring = ndimage.binary_dilation(hole, iterations=3) & ~hole
    pts = np.argwhere(ring)
    out = dem.astype(np.float64).copy()
    q = np.argwhere(hole)
    vals = griddata(pts, dem[ring], q, method="cubic")
    bad = ~np.isfinite(vals)
    if bad.any():  # outside the convex hull of the ring: nearest
        vals[bad] = griddata(pts, dem[ring], q[bad], method="nearest")
    out[hole] = vals
    return out


def unseen_patches(tmp: Path, patch: int) -> PatchSet:
    cfg = DatasetConfig(sources=(PatchSource("cordillera-blanca", ("peru-cordillera-blanca-srtm3/dem.tif",),
                                             resolutions_m=(90.0,)),),
                        patch=patch, val_fraction=1.0, seed=11)
    out = tmp / "unseen.npz"
    build_dataset(cfg, out, n_per_source=150)
    return PatchSet.load(out)


def run(dataset: Path, nets: dict, max_per_group: int, seed: int) -> pd.DataFrame:
    ps = PatchSet.load(dataset).subset("val")
    keys = [s["key"] for s in ps.summary["sources"]]
    groups = {}
    for src in np.unique(ps.source):
        key = keys[src]
        region = key.split("@")[0]
        region = "alps-200m" if region.startswith("alps-") else region
        groups.setdefault(f"{region}@{key.split('@')[1]}", []).append(np.flatnonzero(ps.source == src))
    tmp = RESULTS / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    unseen = unseen_patches(tmp, ps.dem.shape[-1])
    sets = [(name, ps, np.concatenate(idx)) for name, idx in groups.items()]
    sets.append(("cordillera-blanca@90m (unseen range)", unseen, np.arange(len(unseen))))
    shapes = OutlineShapes.from_outlines([resolve(p) for p in OUTLINES])
    gen = MaskGenerator(shapes, p_box=0.0)
    methods = {"biharmonic": biharmonic_fill, "harmonic": harmonic_fill, "cubic": cubic_fill}
    rows = []
    for set_name, pset, idx in sets:
        rng = np.random.default_rng(seed)
        idx = idx if len(idx) <= max_per_group else np.sort(rng.choice(idx, max_per_group, replace=False))
        for kind in ("glacier", "box"):
            mrng = np.random.default_rng(seed + 1)
            err = {m: [] for m in [*methods, *nets]}
            secs = {m: 0.0 for m in err}
            for i in idx:
                dem = pset.dem[i].astype(np.float64)
                hole = (box_mask(dem.shape[0], mrng) if kind == "box" else gen(dem, mrng)) | pset.glacier[i]
                w = hole & ~pset.glacier[i]
                for m, f in methods.items():
                    t = time.perf_counter(); out = f(dem, hole); secs[m] += time.perf_counter() - t
                    err[m].append((out - dem)[w])
                for m, net in nets.items():
                    t = time.perf_counter(); out = net.inpaint(dem, hole, float(pset.res[i])); secs[m] += time.perf_counter() - t
                    err[m].append((out - dem)[w])
            for m, e in err.items():
                e = np.concatenate(e)
                rows.append(dict(set=set_name, holes=kind, method=m, n_patches=len(idx), n_pixels=e.size,
                                 rmse_m=float(np.sqrt(np.mean(e**2))), mae_m=float(np.mean(np.abs(e))),
                                 bias_m=float(np.mean(e)), ms_per_patch=1000 * secs[m] / len(idx)))
            print(set_name, kind, {r["method"]: round(r["rmse_m"], 1) for r in rows[-len(err):]}, flush=True)
    df = pd.DataFrame(rows)
    best = df[df.method.isin(list(methods))].groupby(["set", "holes"]).rmse_m.min().rename("best_classical_rmse_m")
    df = df.join(best, on=["set", "holes"])
    df["ratio_to_best_classical"] = df.rmse_m / df.best_classical_rmse_m
    return df


def model_row(method: str, record: dict, weights: str = "", sha256: str = "") -> dict:
    """One network's training facts, read from its record (nothing typed by hand)."""
    cfg = record.get("config", {})
    planned = record.get("steps_planned", cfg.get("steps"))
    steps = record.get("steps")
    reason = record.get("stop_reason")
    if reason is None and steps is not None and planned is not None:
        limit = cfg.get("time_limit_s")
        reason = ("completed" if steps >= planned else
                  "time limit" if limit is not None and record.get("train_seconds", 0) >= limit else "stopped early")
    return dict(method=method, weights=weights, sha256=sha256 or record.get("weights_sha256", ""),
                steps=steps, steps_planned=planned, stop_reason=reason,
                train_seconds=record.get("train_seconds"), adversarial=record.get("adversarial", cfg.get("w_adv", 0) > 0))


def _rel(path: str | Path) -> str:
    p = Path(path).resolve() if str(path) else None
    return str(p.relative_to(REPO)) if p is not None and p.is_relative_to(REPO) else str(path)


def models_from_records(records: dict[str, Path]) -> pd.DataFrame:
    rows = []
    for method, path in records.items():
        path = Path(path)
        rec = json.loads(path.read_text())
        pt = path.with_suffix(".pt")
        sha = ""
        if pt.exists():
            from glacierbed.core.atomic import file_sha256

            sha = file_sha256(pt)
        rows.append(model_row(method, rec, _rel(pt) if pt.exists() else f"(record only: {path.name})", sha))
    return pd.DataFrame(rows)


def _n(x: float) -> str:
    return f"{int(x):,}" if pd.notna(x) else "?"


def network_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Each network's ratio to the best classical fill over the groups with ≥ MIN_PATCHES
    patches: median, worst, how many groups reach TARGET_RATIO, and the unseen range's ratios."""
    ranked = df[df.method.str.startswith("network") & (df.n_patches >= MIN_PATCHES)]
    rows = []
    for method, g in ranked.groupby("method"):
        unseen = g[g.set.str.contains("unseen")].set_index("holes").ratio_to_best_classical
        rows.append({"network": method, "median ratio": round(float(g.ratio_to_best_classical.median()), 3),
                     "worst ratio": round(float(g.ratio_to_best_classical.max()), 3),
                     f"groups ≤ {TARGET_RATIO}×": f"{int((g.ratio_to_best_classical <= TARGET_RATIO).sum())} of {len(g)}",
                     **{f"unseen {k}": round(float(v), 3) for k, v in unseen.items()}})
    return pd.DataFrame(rows).set_index("network") if rows else pd.DataFrame()


def report(df: pd.DataFrame, models: pd.DataFrame, meta: dict, stem: str = "inpainting") -> str:
    """The Markdown report, computed from the results table, the models table and the run's facts."""
    classical = [m for m in df.method.unique() if not m.startswith("network")]
    piv = df.pivot_table(index=["set", "holes"], columns="method", values="rmse_m").round(1)
    ratio = df[df.method.str.startswith("network")].pivot_table(index=["set", "holes"], columns="method",
                                                                values="ratio_to_best_classical").round(3)
    ratio.columns = [f"{c} / best classical" for c in ratio.columns]
    n = df.groupby(["set", "holes"]).n_patches.first().rename("patches")
    table = n.to_frame().join(piv).join(ratio)
    groups = df.groupby("set").n_patches.first()
    small = groups[groups < MIN_PATCHES]
    lines = ["# Inpainting benchmark (masked RMSE, m)", "",
             f"Held-out validation patches of `{meta.get('dataset', '?')}` and unseen Cordillera Blanca patches; "
             "same holes for every method; pixels of real glaciers excluded from the error. "
             f"{len(groups)} groups of {groups.min()}–{groups.max()} patches"
             + (f" (at most {meta['max_per_group']} drawn per group)" if meta.get("max_per_group") else "")
             + "; `patches` is each group's count.", ""]
    if len(small):
        lines += [f"**Too few patches to rank methods** (fewer than {MIN_PATCHES}): "
                  + ", ".join(f"{k} (n = {v})" for k, v in small.items())
                  + ". Their RMSE and ratios are single-patch anecdotes, not measurements.", ""]
    lines += [table.to_markdown(), ""]
    summary = network_summary(df)
    if len(summary):
        lines += [f"## Per network, over the groups with ≥ {MIN_PATCHES} patches (both hole kinds)", "",
                  summary.to_markdown(), "",
                  f"`groups ≤ {TARGET_RATIO}×`: groups where the network's RMSE is at most {TARGET_RATIO}× the best "
                  "classical fill's (issue 19's target); `unseen`: the Cordillera Blanca rows.", ""]
    if len(models):
        lines += ["## Networks compared", ""]
        for r in models.itertuples():
            done = (f"{_n(r.steps)} of {_n(r.steps_planned)} planned steps"
                    + (f" (**stopped early: {r.stop_reason}**)" if r.stop_reason not in (None, "completed") else ""))
            secs = f", {r.train_seconds:,.0f} s of training" if pd.notna(r.train_seconds) else ""
            sha = f", sha256 `{r.sha256[:12]}`" if isinstance(r.sha256, str) and r.sha256 else ""
            lines.append(f"- `{r.method}`: {done}{secs}{', adversarial' if r.adversarial else ''}; "
                         f"weights {r.weights}{sha}")
        lines.append("")
    cores = meta.get("cpu_cores")
    where = f"{cores} CPU cores" if cores else "CPU cores not recorded for this run"
    timing = df.groupby("method").ms_per_patch.mean().round(1)
    lines += [f"## Mean time per patch (ms, {where}, includes the biharmonic base fill for the network)", "",
              timing.to_frame().to_markdown(), "",
              f"Classical methods: {', '.join(classical)}. Full table: `{stem}.csv` (RMSE, MAE, bias, pixels, "
              f"patches); networks: `{stem}_models.csv`.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="runs/patches128.npz")
    ap.add_argument("--model", default="inpainting-network",
                    help="network weights or model name ('inpainting-network' = shipped)")
    ap.add_argument("--network", action="append", default=[], metavar="NAME=MODEL",
                    help="another network to compare (its name must start with 'network'), e.g. "
                         "network-previous=runs/previous/inpainting_net.pt")
    ap.add_argument("--max-per-group", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "inpainting"))
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md from the existing .csv files")
    ap.add_argument("--record", action="append", default=[], metavar="NAME=JSON",
                    help="--report-only without inpainting_models.csv: a network's training record")
    a = ap.parse_args()
    out = Path(a.out)
    models_csv = out.with_name(out.name + "_models.csv")
    run_json = out.with_name(out.name + "_run.json")
    if a.report_only:
        df = pd.read_csv(out.with_suffix(".csv"))
        if models_csv.exists():
            models = pd.read_csv(models_csv, keep_default_na=False, na_values=[""])
        else:
            records = dict(r.split("=", 1) for r in a.record) or {
                k: v for k, v in DEFAULT_RECORDS.items() if k in set(df.method)}
            models = models_from_records({k: Path(v) for k, v in records.items()})
            models.to_csv(models_csv, index=False)
        meta = json.loads(run_json.read_text()) if run_json.exists() else {"dataset": a.dataset}
    else:
        specs = {"network": a.model, **dict(s.split("=", 1) for s in a.network)}
        if not all(name.startswith("network") for name in specs):
            ap.error("--network names must start with 'network'")
        nets = {name: load_inpainter(path) for name, path in specs.items()}
        df = run(Path(a.dataset), nets, a.max_per_group, a.seed)
        models = pd.DataFrame([model_row(m, net.record, _rel(net.record.get("weights_path", "")), net.weights_sha256)
                               for m, net in nets.items()])
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        meta = {"dataset": a.dataset, "seed": a.seed, "max_per_group": a.max_per_group, "cpu_cores": cores}
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out.with_suffix(".csv"), index=False, float_format="%.3f")
        models.to_csv(models_csv, index=False)
        write_json(run_json, meta)
    md = report(df, models, meta, out.name)
    write_text(out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    run_script(main)
