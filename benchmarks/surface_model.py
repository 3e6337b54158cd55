"""Surface-aware network vs border-only network, biharmonic, SIA and VA baselines.

1. Synthetic glaciers on held-out validation patches (``runs/patches128.npz``, split
   "val"): glacier-shaped holes placed in hollows (as in training, another seed), a
   synthetic ice body (:mod:`glacierbed.synthetic`, tau 50-150 kPa) on the known terrain;
   bed RMSE/MAE/bias over the hole and RMSE of each glacier's mean thickness, for the
   surface network(s), the border-only network and the biharmonic fill (both clipped at
   the surface), and the SIA formula H = tau / (f rho g sin alpha), tau = 100 kPa, f = 0.8.
   The synthetic glaciers follow an SIA-like rule: this test favours SIA-like methods.
2. Real measurements through the real pipeline (:func:`glacierbed.benchmark.run_case`,
   :func:`glacierbed.estimate.estimate`, 4-member ensemble, physics on and off): South
   Glacier radar points, Ötztal GlaThiDa glacier means, Hintereisferner volume vs the
   Farinotti 2019 consensus. Baseline rows (VA, GlabTop, biharmonic) come from the same run.

Run: ``python benchmarks/surface_model.py --surface runs/surface/weights.pt
[runs/surface_clip/weights.pt ...]``. Writes ``benchmarks/results/surface_model.{csv,md}``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from glacierbed.dataset import PatchSet, resolve
from glacierbed.benchmark import run_case, to_markdown, write_table
from glacierbed.metrics import error_metrics
from glacierbed.fill import biharmonic_fill
from glacierbed.masks import MaskGenerator, OutlineShapes
from glacierbed.model import NetworkInpainter
from glacierbed.glaciology import sia_thickness, surface_slope
from glacierbed.physics import PhysicsConfig
from glacierbed.synthetic import synthetic_glacier_surface, synthetic_thickness
from glacierbed.train import TrainConfig
from glacierbed.atomic import write_text

log = logging.getLogger("surface_model")
RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
SIA_BASELINE = PhysicsConfig(shape_factor=0.8)  # tau 100 kPa: the generator's mean stress and f
REFERENCE = "border-only network + physics"


def _label(path: str) -> str:
    return f"surface network ({Path(path).parent.name})"


def synthetic_benchmark(surface_paths: list[str], seed: int = 2024, n_patches: int | None = None) -> pd.DataFrame:
    """Bed errors (pred - truth, m) in synthetic glaciers on the validation patches."""
    cfg = TrainConfig.from_yaml(REPO / "src/glacierbed/configs/train_surface.yaml")
    val = PatchSet.load(REPO / cfg.dataset).subset("val")
    masks = MaskGenerator(OutlineShapes.from_outlines([resolve(p) for p in cfg.outlines]), p_box=0.0)
    nets = {"border-only network (clipped)": NetworkInpainter.load(None),
            **{_label(p): NetworkInpainter.load(p) for p in surface_paths}}
    rng = np.random.default_rng(seed)
    errs: dict[str, list[np.ndarray]] = {}
    means: dict[str, list[tuple[float, float]]] = {}
    seconds: dict[str, float] = {}
    n_patches = len(val) if n_patches is None else min(n_patches, len(val))
    for i in range(n_patches):
        dem, res = val.dem[i].astype(np.float64), float(val.res[i])
        hole = masks(dem, rng)
        target = hole & ~val.glacier[i]
        surf = synthetic_glacier_surface(dem, target, res, rng)  # = dem outside target
        hidden = hole | val.glacier[i]
        beds: dict[str, np.ndarray] = {}
        t0 = time.perf_counter()
        beds["biharmonic (clipped)"] = np.minimum(biharmonic_fill(surf, hidden), surf)
        seconds["biharmonic (clipped)"] = seconds.get("biharmonic (clipped)", 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        sin_a, _, _ = surface_slope(surf, res, SIA_BASELINE.slope_smooth_m, SIA_BASELINE.min_slope_deg)
        beds["SIA formula (tau 100 kPa, f 0.8)"] = surf - np.where(hidden, sia_thickness(100e3, sin_a, SIA_BASELINE.shape_factor), 0)
        seconds["SIA formula (tau 100 kPa, f 0.8)"] = seconds.get("SIA formula (tau 100 kPa, f 0.8)", 0.0) + \
            time.perf_counter() - t0
        t0 = time.perf_counter()
        # the generator's own rule with its mean tau, applied to the *surface* as if it
        # were the bed (what a user could do): the SIA-like upper reference of this test
        name = "SIA + Nye margin (generator rule, tau 100 kPa)"
        beds[name] = surf - np.where(target, synthetic_thickness(surf, target, res, 100e3), 0.0)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
        for name, net in nets.items():
            t0 = time.perf_counter()
            beds[name] = np.minimum(net.inpaint(surf, hidden, res).astype(np.float64), surf)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
        # each connected synthetic glacier: mean thickness predicted vs true
        lab, n = ndimage.label(target)
        true_h = surf - dem
        for name, bed in beds.items():
            errs.setdefault(name, []).append((bed - dem)[target])
            h = surf - bed
            for k in range(1, n + 1):
                sel = lab == k
                if sel.sum() >= 20:
                    means.setdefault(name, []).append((float(h[sel].mean()), float(true_h[sel].mean())))
    rows = []
    for name, e in errs.items():
        e = np.concatenate(e)
        m = np.array(means[name])
        gm = error_metrics(m[:, 0], m[:, 1])
        rows.append({"method": name, "n_patches": n_patches, "n_pixels": e.size, "bed_rmse_m": float(np.sqrt(np.mean(e**2))),
                     "bed_mae_m": float(np.abs(e).mean()), "bed_bias_m": float(e.mean()),
                     "n_glaciers": gm["n"], "mean_thickness_rmse_m": gm["rmse"], "mean_thickness_bias_m": gm["bias"],
                     "mean_thickness_r": gm["r"], "seconds": seconds[name]})
    df = pd.DataFrame(rows)
    base = df.loc[df["method"] == "biharmonic (clipped)", "bed_rmse_m"].iloc[0]
    df["bed_rmse_ratio_to_biharmonic"] = df["bed_rmse_m"] / base
    return df


def _rename(df: pd.DataFrame, model: str | None) -> pd.DataFrame:
    """Method labels of one run_case call: the network rows named for what they are."""
    net = "network" if model is None else f"network:{Path(model).name}"
    new = "border-only network" if model is None else _label(model)
    df = df.copy()
    df["method"] = df["method"].str.replace(net, new, regex=False)
    return df


def real_benchmark(surface_paths: list[str]) -> pd.DataFrame:
    """Every case through the real pipeline: baselines + border-only + surface networks."""
    frames = []
    for case in ("south-glacier", "oetztal", "hintereisferner"):
        t0 = time.perf_counter()
        first = _rename(run_case(case, model=None, with_oggm=False).metrics, None)
        frames.append(first)
        for p in surface_paths:
            m = _rename(run_case(case, model=p, with_oggm=False).metrics, p)
            frames.append(m[m["method"].str.startswith("surface network")])
        log.info("%s done in %.0f s", case, time.perf_counter() - t0)
    df = pd.concat(frames, ignore_index=True)
    for case, col in (("south-glacier", "rmse"), ("oetztal", "glathida_rmse")):
        sel = df["case"] == case
        ref = df.loc[sel & (df["method"] == REFERENCE), col]
        va = df.loc[sel & (df["method"] == "va_shaped"), col]
        df.loc[sel, "rmse_ratio_to_border_only_physics"] = df.loc[sel, col] / float(ref.iloc[0]) if len(ref) else np.nan
        df.loc[sel, "rmse_ratio_to_va_shaped"] = df.loc[sel, col] / float(va.iloc[0]) if len(va) else np.nan
    return df


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--surface", nargs="+", required=True, help="surface-model weights (.pt) to compare")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--skip-real", action="store_true", help="synthetic test only")
    ap.add_argument("--n-patches", type=int, default=None, help="first N validation patches only (quick check)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t_all = time.perf_counter()
    syn = synthetic_benchmark(args.surface, n_patches=args.n_patches)
    log.info("synthetic:\n%s", syn.to_string())
    frames = [syn.assign(case="synthetic-val")]
    real = None if args.skip_real else real_benchmark(args.surface)
    if real is not None:
        frames.append(real)
    write_table(pd.concat(frames, ignore_index=True), args.out / "surface_model.csv")

    md = ["# Surface-aware network (docs/surface_model.md)", "",
          f"Surface models: {', '.join(args.surface)}. Border-only network: the shipped default.", "",
          "## Synthetic glaciers on held-out validation patches", "",
          "Glacier-shaped holes in hollows, a synthetic ice body (plastic/SIA fixed point, tau drawn in "
          "50-150 kPa, f 0.8) on the known terrain. **The synthetic glaciers are made with an SIA-like rule, "
          "so this test favours SIA-like methods** (the SIA formula here uses the generator's mean tau and f). "
          "Errors are bed (= thickness) errors, pred - truth, over the hole; mean_thickness_* compare each "
          "synthetic glacier's mean thickness.", "", to_markdown(syn), ""]
    if real is not None:
        sg = real[real["case"] == "south-glacier"]
        md += ["## South Glacier (Yukon), 9,619 radar points: pred - obs (m)", "",
               to_markdown(sg[[c for c in ["method", "status", "seconds", "n", "rmse", "mae", "bias", "r",
                                           "mean_pred", "rmse_ratio_to_border_only_physics",
                                           "rmse_ratio_to_va_shaped"] if c in sg]]), ""]
        oz = real[real["case"] == "oetztal"]
        md += ["## Ötztal, GlaThiDa mean thickness of matched glaciers: pred - obs (m)", "",
               to_markdown(oz[[c for c in ["method", "status", "seconds", "glathida_n", "glathida_rmse",
                                           "glathida_bias", "glathida_r", "volume_km3", "share_nonpositive",
                                           "rmse_ratio_to_border_only_physics", "rmse_ratio_to_va_shaped"]
                               if c in oz]]), ""]
        hef = real[real["case"] == "hintereisferner"]
        md += ["## Hintereisferner vs Farinotti et al. 2019 consensus (0.572 km³)", "",
               to_markdown(hef[[c for c in ["method", "status", "volume_km3", "mean_thickness_m",
                                            "rel_error_volume_vs_consensus", "rmse_vs_consensus_m",
                                            "bias_vs_consensus_m", "r_vs_consensus"] if c in hef]]), ""]
    md += [f"Total run time {time.perf_counter() - t_all:.0f} s (2 CPU cores, shared).", ""]
    write_text(args.out / "surface_model.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
