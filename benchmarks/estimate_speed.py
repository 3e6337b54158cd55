"""Speed of ``estimate`` on the Ötztal set (20 glaciers): serial vs Dask, ensemble cost.

Baseline measured in the same run: one raw ``inpainter.inpaint`` call on Hintereisferner's
window (all glaciers masked), i.e. the least a glacier can cost. Reported: glaciers per
second for 1 worker (in-process) and 2 Dask workers (cluster start included and excluded),
ensemble 1 vs 4, the largest Ötztal glacier and the largest kit glacier (Columbia).
Writes ``benchmarks/results/estimate_speed.{csv,md}``.
Run: ``GLACIERBED_DATA=../shared/data python benchmarks/estimate_speed.py [--model biharmonic]``
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glacierbed.data import registry as reg
from glacierbed.data.outlines import rasterize_gids as id_grid
from glacierbed.estimate import EstimateConfig, estimate, glacier_specs
from glacierbed.data.outlines import check_overlap, read_outlines
from glacierbed.data.rasters import read_dem

from estimate_all_kit import md_table, pick_model

HEF = "RGI50-11.00897"


def raw_call_seconds(model, repeats: int = 5) -> tuple[float, tuple[int, int]]:
    """Best time of one inpaint call on Hintereisferner's estimate window."""
    ex = reg.get_example("oetztal")
    dem = read_dem(ex.dem)
    g = check_overlap(read_outlines(ex.outlines), dem)
    spec = [s for s in glacier_specs(dem, g, EstimateConfig(), [HEF])][0]
    window = dem.window(*_rows_cols(dem, spec.bounds))
    hole = (id_grid(spec.neighbours, window) > 0) | ~np.isfinite(window.data)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.inpainter.inpaint(window.data, hole, window.res[0])
        times.append(time.perf_counter() - t0)
    return min(times), window.shape


def _rows_cols(dem, bounds) -> tuple[int, int, int, int]:
    """(row0, col0, nrows, ncols) of ``bounds`` on the DEM grid."""
    import rasterio.windows

    w = rasterio.windows.from_bounds(*bounds, transform=dem.transform).round_offsets().round_lengths()
    return int(w.row_off), int(w.col_off), int(w.height), int(w.width)


def run(example: str, model, **kw) -> tuple[float, pd.DataFrame]:
    ex = reg.get_example(example)
    out = tempfile.mkdtemp(prefix="glacierbed_speed_")
    t0 = time.perf_counter()
    res = estimate(ex.dem, ex.outlines, out, model=model, maps=False, **kw)
    return time.perf_counter() - t0, res.glaciers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    model, label = pick_model(args.model)
    spec = args.model or ("biharmonic" if label.startswith("biharmonic") else None)
    raw, shape = raw_call_seconds(model)
    rows = []
    run("hintereisferner", model)  # warm-up: imports, GDAL caches

    def add(case: str, wall: float, t: pd.DataFrame, workers: int, ensemble: int) -> None:
        per = t["seconds"]
        rows.append(dict(case=case, workers=workers, ensemble=ensemble, glaciers=len(t), wall_s=wall,
                         glaciers_per_s=len(t) / wall, median_glacier_s=per.median(),
                         largest_glacier=t.loc[t["area_km2"].idxmax(), "rgi_id"],
                         largest_glacier_s=float(t.loc[t["area_km2"].idxmax(), "seconds"]),
                         median_glacier_over_raw_call=per.median() / raw))
        print(rows[-1])

    for ens in (1, 4):
        wall, t = run("oetztal", model, config=EstimateConfig(ensemble=ens))
        add(f"oetztal serial, ensemble {ens}", wall, t, 1, ens)
    # Dask: the model travels by name and is loaded once per worker process
    from dask.distributed import LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        start = time.perf_counter() - t0
        wall, t = run("oetztal", spec if spec else model, scheduler=cluster.scheduler_address,
                      config=EstimateConfig(ensemble=4))
        add("oetztal dask 2 workers (running cluster), ensemble 4", wall, t, 2, 4)
    wall, t = run("oetztal", spec if spec else model, workers=2, config=EstimateConfig(ensemble=4))
    add("oetztal dask 2 workers (incl. cluster start), ensemble 4", wall, t, 2, 4)
    wall, t = run("columbia", model, config=EstimateConfig(ensemble=4))
    add("columbia (935 km2) serial, ensemble 4", wall, t, 1, 4)

    df = pd.DataFrame(rows)
    base = df.loc[df["case"] == "oetztal serial, ensemble 4", "wall_s"].iloc[0]
    df["speedup_vs_serial_ens4"] = base / df["wall_s"]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    df.to_csv(out / "estimate_speed.csv", index=False)
    md = [f"# estimate speed (model: {label}; {os.cpu_count()} CPU cores, shared)", "",
          f"Baseline: one raw `inpaint` call on Hintereisferner's window ({shape[0]}x{shape[1]} px, all glaciers "
          f"masked): {raw:.3f} s. Dask cluster start: {start:.1f} s.", "",
          md_table(df.round(3), index=False), ""]
    (out / "estimate_speed.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
