"""Speed of ``glacierbed.simulation.ice_flow``: simulated glaciers (128x128 patches) per minute at 25-200 m.

Patches are random windows (relief >= 800 m) of the kit's terrain: ``nz-canterbury-25m/dem.tif``
at 25 and 50 m, the Alps 200 m tiles (Ticino, Rhine, Linth) at 100 (bilinear) and 200 m.
Parameters come from ``draw_params`` (retreat included). Each glacier grows from a bare bed to
steady state (coarse spin-up, then 128x128), then retreats if drawn. Baselines on the same
100 m patches, measured in the same run: batch size 1, no torch.compile, no coarse spin-up,
the first-order upwind face thickness instead of MUSCL-superbee. Timings are wall clock and
process CPU time; the machine may be shared (load average recorded).
Writes ``benchmarks/results/simulate_speed.{csv,md}``.
Run: ``GLACIERBED_DATA=../shared/data python benchmarks/simulate_speed.py [--patches 16] [--batch 8]``
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from glacierbed.core.atomic import replacing, write_text
from glacierbed.data.rasters import read_dem
from glacierbed.data.registry import get_file
from glacierbed.simulation.ice_flow import GlacierParams, SimulationConfig, SimulationResult, draw_params, simulate_glaciers
from glacierbed.core.errors import run_script

SOURCES = {25.0: ["nz-canterbury-25m/dem.tif"], 50.0: ["nz-canterbury-25m/dem.tif"],
           100.0: [f"alps-topography-200m/topg-{t}.tif" for t in ("ticino", "rhine", "linth")],
           200.0: [f"alps-topography-200m/topg-{t}.tif" for t in ("ticino", "rhine", "linth")]}
SIZE, MIN_RELIEF_M = 128, 800.0


def patches(res: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[GlacierParams]]:
    """``n`` random windows (no voids, relief >= MIN_RELIEF_M) and their drawn parameters."""
    dems = [read_dem(get_file(f), resolution=res).data for f in SOURCES[res]]
    beds: list[np.ndarray] = []
    while len(beds) < n:
        dem = dems[rng.integers(len(dems))]
        r, c = rng.integers(0, dem.shape[0] - SIZE), rng.integers(0, dem.shape[1] - SIZE)
        w = dem[r:r + SIZE, c:c + SIZE]
        if np.isfinite(w).all() and np.ptp(w) >= MIN_RELIEF_M:
            beds.append(w)
    return np.stack(beds), [draw_params(rng, b) for b in beds]


def timed(beds: np.ndarray, res: float, params: list[GlacierParams], cfg: SimulationConfig, batch: int
          ) -> tuple[float, float, pd.DataFrame, np.ndarray]:
    """Wall and CPU seconds, records and steady volumes of all patches, in batches of ``batch``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out: list[SimulationResult] = [simulate_glaciers(beds[i:i + batch], res, params[i:i + batch], cfg)
                                   for i in range(0, len(beds), batch)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, pd.concat([o.table() for o in out], ignore_index=True), np.concatenate(
        [[r.steady_volume_m3 for r in o.records] for o in out])


def summary(case: str, res: float, batch: int, wall: float, cpu: float, t: pd.DataFrame) -> dict:
    ice = t["ice_fraction"]
    return dict(case=case, pixel_m=res, batch=batch, patches=len(t), wall_s=round(wall, 1), cpu_s=round(cpu, 1),
                patches_per_min=round(60 * len(t) / wall, 1), patches_per_cpu_min=round(60 * len(t) / cpu, 1),
                cpu_s_per_patch=round(cpu / len(t), 2),
                steady_share=t["steady"].mean(), years_fine=round(t["years"].mean()),
                years_spinup=round(t["spinup_years"].mean()), years_retreat=round(t["retreat_years"].mean()),
                steps_fine=round(t["steps"].mean()), steps_spinup=round(t["spinup_steps"].mean()),
                ice_p10=round(ice.quantile(0.1), 3), ice_median=round(ice.median(), 3),
                ice_p90=round(ice.quantile(0.9), 3), ice_in_5_40=round(ice.between(0.05, 0.40).mean(), 2),
                edge_share_median=round(t["edge_share"].median(), 3),
                clipped_share=t["clipped_m3"].sum() / max(t["steady_volume_m3"].sum(), 1.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    load0 = os.getloadavg()
    cfg = SimulationConfig()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    simulate_glaciers(np.zeros((2, 32, 32)) + np.linspace(0, 2000, 32), 100.0,
                      [GlacierParams(ela_m=1500.0)] * 2, dataclasses.replace(cfg, max_years=20.0))
    compile_s = time.perf_counter() - t0
    rows, volumes, data = [], {}, {}
    for res in SOURCES:
        data[res] = patches(res, args.patches, rng)
        wall, cpu, t, v = timed(data[res][0], res, data[res][1], cfg, args.batch)
        rows.append(summary("default", res, args.batch, wall, cpu, t))
        volumes[res] = v
        print(rows[-1], flush=True)
    beds, params = data[100.0]
    for case, c, batch in [("batch 1", cfg, 1), ("eager (no torch.compile)", dataclasses.replace(cfg, compile=False),
                                                    args.batch),
                           ("no coarse spin-up", dataclasses.replace(cfg, coarse_levels=0), args.batch),
                           ("upwind face thickness", dataclasses.replace(cfg, scheme="upwind"), args.batch)]:
        wall, cpu, t, v = timed(beds, 100.0, params, c, batch)
        rows.append(summary(case, 100.0, batch, wall, cpu, t))
        rows[-1]["steady_volume_vs_default"] = float(np.median(np.abs(v / np.maximum(volumes[100.0], 1.0) - 1)))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    base = df[(df["case"] == "default") & (df["pixel_m"] == 100.0)].iloc[0]
    df["default_speedup_over_this"] = np.where(df["pixel_m"] == 100.0, (df["cpu_s"] / base["cpu_s"]).round(2),
                                               np.nan)
    out = Path(__file__).parent / "results"
    with replacing(out / "simulate_speed.csv") as tmp:
        df.to_csv(tmp, index=False)
    load1 = os.getloadavg()
    md = [f"# simulate speed: 128x128 patches, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"{cfg.threads} torch thread(s) per call", "",
          f"Load average (1 min) {load0[0]:.1f} at the start, {load1[0]:.1f} at the end (about 1 = this run alone "
          "on the machine; more means other jobs shared the cores and wall times are upper bounds); CPU time "
          "(this process only) is the steadier measure, and the speed-up column uses it. "
          f"First call (torch.compile of the step, cache on disk): {compile_s:.1f} s, not counted below.", "",
          f"{args.patches} patches per resolution (seed {args.seed}), batches of {args.batch}; "
          "years = mean per patch: fine = 128x128 grid to steady state, spin-up = coarse grids, retreat = drawn "
          "retreat phase. Ice fractions after retreat. `default_speedup_over_this`: how many times faster the "
          "default is than the row (100 m rows, same patches and parameters); `steady_volume_vs_default`: median "
          "|V / V_default - 1| of the steady-state volumes.", "",
          df.to_markdown(index=False), ""]
    write_text(out / "simulate_speed.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    run_script(main)
