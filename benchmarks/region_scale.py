"""Region scale with ground truth: thousands of simulated glaciers, serial vs Dask, memory, resume.

The region is built by :func:`glacierbed.simulation.synthetic_region.build_region` from the five glacier-free Alpine
tiles (200 m): a DEM of the ice surface and RGI-like outlines, with the bed known. Every case
runs in a fresh Python process (so peak-memory figures are its own) and writes into its own
folder:

* build: serial, and on a local Dask cluster of 2 workers (the two must give the same ice);
* ``estimate`` over nested random subsets of 500 / 1,000 / 2,000 glaciers and over all of them,
  serially (``workers=1``), and all of them on a local Dask cluster (``workers=2``, cluster start
  included); the same 500 glaciers on a DEM of one tile only, to price a DEM pixel;
* resume: the serial run over all glaciers repeated in its folder (everything skipped), then
  again after deleting some glaciers' ``estimate.json`` (only those recomputed); kill-and-restart:
  a serial run killed (SIGKILL) part-way and restarted, its volumes compared with an
  uninterrupted run's;
* the shipped default model on a random sample (when the full runs use another model);
* ground truth: the estimated thickness against the simulated one on the glaciers' pixels.

Memory: a thread in each case's process samples (every 0.1 s, psutil) the RSS of that process
(which also hosts the Dask scheduler and client) and of all its descendants (nannies and
workers), keeping the peaks of the parent, the sum over descendants and the largest single
descendant; ``ru_maxrss`` of the process (its true peak) and of its waited-for children are
reported too. Timings are wall-clock seconds on a shared 2-core machine: the load average at
each case's start is recorded, compare rows within one run.

Writes ``benchmarks/results/region_scale.{csv,md}`` and ``region_scale_glaciers.csv``.
Run: ``GLACIERBED_DATA=../shared/data python benchmarks/region_scale.py [--model biharmonic]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from glacierbed.core.errors import run_script

RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("region_scale")
MB = 1024**2


# --------------------------------------------------------------------------------------
# inside a case's process
# --------------------------------------------------------------------------------------
class PeakMemory:
    """Peak RSS of this process and of its descendants, sampled in a thread (psutil), and their CPU seconds
    (the descendants' as last sampled, so a worker's last 0.1 s may be missed)."""

    def __init__(self, every_s: float = 0.1) -> None:
        import psutil

        self.proc, self.every = psutil.Process(), every_s
        self.start_mb = self.proc.memory_info().rss / MB
        self.parent_mb = self.children_mb = self.child_max_mb = 0.0
        self.cpu_start = sum(self.proc.cpu_times()[:2])
        self.child_cpu: dict[int, float] = {}  #: latest user + system seconds of each descendant seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            self.parent_mb = max(self.parent_mb, self.proc.memory_info().rss / MB)
            rss = []
            for c in self.proc.children(recursive=True):
                try:
                    rss.append(c.memory_info().rss / MB)
                    self.child_cpu[c.pid] = sum(c.cpu_times()[:2])
                except psutil.Error:  # ended between listing and reading
                    pass
            self.children_mb = max(self.children_mb, sum(rss))
            self.child_max_mb = max([self.child_max_mb, *rss])
            self._stop.wait(self.every)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def record(self) -> dict[str, float]:
        return dict(rss_start_mb=self.start_mb, peak_parent_mb=self.parent_mb,
                    peak_parent_over_start_mb=self.parent_mb - self.start_mb,
                    peak_workers_sum_mb=self.children_mb, peak_worker_max_mb=self.child_max_mb,
                    maxrss_parent_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    maxrss_children_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                    cpu_parent_s=sum(self.proc.cpu_times()[:2]) - self.cpu_start,
                    cpu_workers_s=sum(self.child_cpu.values()))


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """One case (``kind`` build or estimate), measured; its record."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from glacierbed.pipeline.estimate import EstimateConfig, estimate
    from glacierbed.simulation.synthetic_region import ALPS_TILES, build_region

    rec: dict[str, Any] = {"load_1min": os.getloadavg()[0]}
    if spec["kind"] == "outlines":
        return {**rec, **outline_memory(Path(spec["region"]))}
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        if spec["kind"] == "dask_start":
            from dask.distributed import Client, LocalCluster

            with LocalCluster(n_workers=spec["workers"], threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                client.run(lambda: __import__("glacierbed.pipeline.estimate"))
                rec.update(n=0, wall_to_ready_s=time.perf_counter() - t0)
        elif spec["kind"] == "build":
            s = build_region(spec.get("tiles", ALPS_TILES), spec["out"], workers=spec["workers"]).summary
            rec.update(n=s["n_glaciers"], batches_resumed=s["blocks"]["batches_resumed"])
        else:
            select = json.loads(Path(spec["select"]).read_text()) if spec.get("select") else None
            r = estimate(Path(spec["region"]) / "dem.tif", Path(spec["region"]) / "outlines.gpkg", spec["out"],
                         model=spec["model"], config=EstimateConfig(), workers=spec["workers"], select=select,
                         maps=False)
            rec.update(n=len(r.glaciers), n_resumed=r.summary["n_resumed"],
                       n_ok=int((r.glaciers["status"] == "ok").sum()), model=r.summary["model"],
                       glacier_seconds_sum=float(r.glaciers["seconds"].sum()))
        rec["wall_s"] = time.perf_counter() - t0
    return {**rec, **mem.record()}


def outline_memory(region: Path) -> dict[str, float]:
    """RSS growth (this process) from reading every outline, then making every glacier's spec."""
    import psutil

    from glacierbed.data.outlines import check_overlap, read_outlines
    from glacierbed.data.rasters import read_dem
    from glacierbed.pipeline.estimate import EstimateConfig, glacier_specs

    proc = psutil.Process()
    dem = read_dem(region / "dem.tif")
    m0 = proc.memory_info().rss
    g = check_overlap(read_outlines(region / "outlines.gpkg"), dem)
    m1 = proc.memory_info().rss
    specs = glacier_specs(dem, g, EstimateConfig())
    m2 = proc.memory_info().rss
    return dict(n=len(specs), outlines_kb_per_glacier=(m1 - m0) / 1024 / len(g),
                specs_kb_per_glacier=(m2 - m1) / 1024 / len(specs))


# --------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------
def _spawn(spec: dict[str, Any]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--case", json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def case(name: str, **spec: Any) -> dict[str, Any]:
    """Run one case in a fresh process; its record with the case name."""
    p = _spawn(spec)
    out, err = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"case {name} failed:\n{err[-3000:]}")
    rec = {"case": name, **{k: v for k, v in spec.items() if k in ("kind", "workers", "model")},
           **json.loads(out.strip().splitlines()[-1])}
    log.warning("%s: %s", name, {k: round(v, 2) if isinstance(v, float) else v for k, v in rec.items()})
    return rec


def killed_and_restarted(region: Path, work: Path, model: str, select: Path, n: int, frac: float
                         ) -> tuple[dict, dict]:
    """A serial run SIGKILLed once ``frac`` of its glaciers are done, then restarted."""
    out = work / "est-killed"
    spec = dict(kind="estimate", region=str(region), out=str(out), model=model, workers=1, select=str(select))
    p = _spawn(spec)
    while p.poll() is None and len(list((out / "glaciers").glob("*/estimate.json"))) < frac * n:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done = len(list((out / "glaciers").glob("*/estimate.json")))
    tmp_left = len(list(out.rglob("*.tmp*")))
    rec = case(f"serial {n}, restarted after a kill", **spec)
    return rec, dict(killed_after=done, tmp_files_left=tmp_left)


def glacier_times(est: Path, region: Path) -> pd.DataFrame:
    """Per-glacier seconds with the glacier's true area (the run's own, non-resumed times)."""
    t = pd.read_csv(est / "glaciers.csv")[["rgi_id", "seconds", "resolution_mode", "working_resolution_m", "status"]]
    return t.merge(pd.read_csv(region / "truth.csv")[["rgi_id", "area_km2", "n_pixels"]], on="rgi_id")


def time_stats(sec: pd.Series) -> dict[str, float]:
    return dict(mean_s=sec.mean(), p10_s=sec.quantile(0.1), median_s=sec.median(), p90_s=sec.quantile(0.9),
                p99_s=sec.quantile(0.99), max_s=sec.max())


def rgi_counts() -> dict[str, int]:
    """Glacier counts of RGI 6 region 11, of its largest region and of all regions (the kit's g2ti table)."""
    from glacierbed.data import registry

    idx = registry.consensus_volumes_km3().index
    per_region = pd.Series(idx.str.slice(6, 8)).value_counts()
    return {"RGI 6 region 11 (Central Europe)": int(per_region["11"]),
            f"RGI 6 region {per_region.index[0]} (the most glaciers)": int(per_region.iloc[0]), "RGI 6, all": len(idx)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help="model of the full runs (default: the shipped default)")
    ap.add_argument("--default-sample", type=int, default=200,
                    help="glaciers the shipped default model runs on when --model is another one")
    ap.add_argument("--sizes", default="500,1000,2000", help="subset sizes (all glaciers are added)")
    ap.add_argument("--tiles", default=",".join(("jura", "linth", "lyon", "rhine", "ticino")),
                    help="Alpine tiles of the region (comma-separated)")
    ap.add_argument("--work", type=Path, default=Path("runs/region_scale"), help="work folder (emptied first)")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    model = args.model or "default"
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    region, rows = work / "region", []
    t_start = time.perf_counter()

    # --- the region: serial and Dask builds must agree ----------------------------------
    tiles = args.tiles.split(",")
    rows.append(case("build serial", kind="build", out=str(region), workers=1, tiles=tiles))
    rows.append(case("build dask 2 workers", kind="build", out=str(work / "region-dask"), workers=2, tiles=tiles))
    from glacierbed.data.rasters import Raster

    same_ice = bool(np.array_equal(Raster.from_file(region / "thickness.tif").data,
                                   Raster.from_file(work / "region-dask" / "thickness.tif").data, equal_nan=True))
    rec = json.loads((region / "region.json").read_text())
    truth = pd.read_csv(region / "truth.csv")
    order = list(np.random.default_rng(0).permutation(truth["rgi_id"].to_numpy()))
    sizes = [n for n in map(int, args.sizes.split(",")) if n < len(order)] + [len(order)]

    def select_file(n: int) -> str:
        path = work / f"select-{n}.json"
        path.write_text(json.dumps([str(i) for i in order[:n]]))
        return str(path)

    # --- estimate: subsets serial, all on Dask -------------------------------------------
    for n in sizes:
        rows.append(case(f"serial {n}", kind="estimate", region=str(region), out=str(work / f"est-serial-{n}"),
                         model=model, workers=1, select=select_file(n)))
    n_all = sizes[-1]
    rows.append(case(f"dask 2 workers {n_all}", kind="estimate", region=str(region),
                     out=str(work / f"est-dask-{n_all}"), model=model, workers=2, select=select_file(n_all)))
    rows.append(case("dask 2 workers: cluster start and imports", kind="dask_start", workers=2))
    rows.append(case(f"outline table and specs, {n_all} glaciers", kind="outlines", region=str(region)))
    # the price of DEM pixels: the same 500 glaciers on a one-tile region
    ticino = work / "region-ticino"
    rows.append(case("build serial, ticino only", kind="build", out=str(ticino), workers=1, tiles=["ticino"]))
    small = pd.read_csv(ticino / "truth.csv")["rgi_id"].sample(frac=1.0, random_state=0).tolist()[:sizes[0]]
    (work / "select-ticino.json").write_text(json.dumps(small))
    rows.append(case(f"serial {len(small)}, ticino DEM only", kind="estimate", region=str(ticino),
                     out=str(work / "est-serial-ticino"), model=model, workers=1,
                     select=str(work / "select-ticino.json")))

    # --- resume -------------------------------------------------------------------------
    full = work / f"est-serial-{n_all}"
    rows.append(case(f"serial {n_all}, rerun (resume)", kind="estimate", region=str(region), out=str(full),
                     model=model, workers=1, select=select_file(n_all)))
    rng = np.random.default_rng(1)
    gone = rng.choice(order[:n_all], size=max(n_all // 20, 1), replace=False)
    for i in gone:
        (full / "glaciers" / str(i) / "estimate.json").unlink()
    rows.append(case(f"serial {n_all}, rerun after deleting {len(gone)} estimate.json", kind="estimate",
                     region=str(region), out=str(full), model=model, workers=1, select=select_file(n_all)))
    n_kill = sizes[min(1, len(sizes) - 1)]
    killed, kill_info = killed_and_restarted(region, work, model, Path(select_file(n_kill)), n_kill, 0.5)
    rows.append(killed)
    a = pd.read_csv(work / "est-killed" / "glaciers.csv").set_index("rgi_id")["volume_km3"]
    b = pd.read_csv(work / f"est-serial-{n_kill}" / "glaciers.csv").set_index("rgi_id")["volume_km3"]
    kill_info.update(glaciers=n_kill, same_volumes_as_uninterrupted=bool(np.allclose(a.loc[b.index], b, rtol=1e-6)))

    # --- the shipped default model on a sample ------------------------------------------
    default_rows: list[dict] = []
    if model != "default" and args.default_sample:
        n_d = min(args.default_sample, n_all)
        default_rows.append(case(f"serial {n_d}, shipped default model", kind="estimate", region=str(region),
                                 out=str(work / "est-default"), model=None, workers=1, select=select_file(n_d)))
    rows += default_rows

    df = pd.DataFrame(rows)
    df["glaciers_per_s"] = df["n"] / df["wall_s"]
    df["seconds_per_glacier"] = df["wall_s"] / df["n"]
    df["cpu_s_per_glacier"] = (df["cpu_parent_s"] + df["cpu_workers_s"]) / df["n"]
    times = glacier_times(full, region)
    times.to_csv(RESULTS / "region_scale_glaciers.csv", index=False)
    from glacierbed.evaluation.known_truth import region_truth_scores  # here: the cases' processes stay light

    scores = [dict(run=f"{model}, all {n_all} glaciers", **region_truth_scores(region, full))]
    if default_rows:
        ids = order[:min(args.default_sample, n_all)]
        scores += [dict(run=f"shipped default, sample of {len(ids)}",
                        **region_truth_scores(region, work / "est-default", ids)),
                   dict(run=f"{model}, same sample (from the run over all)", **region_truth_scores(region, full, ids))]
    write_report(df, rec, times, pd.DataFrame(scores), kill_info, same_ice, model, work, order[:n_all],
                 time.perf_counter() - t_start)


def _class_label(c: dict) -> str:
    return f"{c['from_km2']:g}-" + ("" if c["to_km2"] is None else f"{c['to_km2']:g}")


def write_report(df: pd.DataFrame, rec: dict, times: pd.DataFrame, scores: pd.DataFrame, kill: dict,
                 same_ice: bool, model: str, work: Path, ids: list[str], total_s: float) -> None:
    """region_scale.csv (one row per case) and region_scale.md (tables and the scaling statement)."""
    from glacierbed.core.atomic import write_text
    from glacierbed.evaluation.benchmark import to_markdown, write_table

    write_table(df, RESULTS / "region_scale.csv")
    row = lambda pattern: df[df["case"].str.contains(pattern, regex=True)].iloc[0]  # noqa: E731
    serial = df[df["case"].str.fullmatch(r"serial \d+")].copy()
    n_all = int(serial["n"].max())
    s_all, d_all, tic = row(rf"^serial {n_all}$"), row(rf"^dask 2 workers {n_all}$"), row("ticino DEM only")
    start, outl = row("cluster start"), row("outline table")
    first = serial.iloc[0]
    sd = rec["size_distribution"]
    # memory: slope with the number of glaciers (same DEM), price of a DEM pixel (same number of glaciers)
    slope_kb = float(np.polyfit(serial["n"], serial["peak_parent_mb"], 1)[0] * 1024)
    per_glacier_kb = float(outl["outlines_kb_per_glacier"] + outl["specs_kb_per_glacier"])
    dem_px = rec["shape"][0] * rec["shape"][1]
    tic_rec = json.loads((work / "region-ticino" / "region.json").read_text())
    tic_px = tic_rec["shape"][0] * tic_rec["shape"][1]
    bytes_per_px = ((first["peak_parent_mb"] - tic["peak_parent_mb"]) * MB / (dem_px - tic_px) if dem_px > tic_px
                    else np.nan)
    per_glacier = time_stats(times["seconds"])
    default = df[df["case"].str.contains("shipped default")]
    counts = rgi_counts()
    eff_dask = (s_all["wall_s"] / d_all["wall_s"]) / 2
    models = [(model, per_glacier["mean_s"])]
    if len(default):
        models.append(("shipped default", float(default["glacier_seconds_sum"].iloc[0] / default["n"].iloc[0])))
    lines = []
    for label, mean_s in models:
        for region_name, n in counts.items():
            for workers in (1, 32, 256):
                ideal_h = n * mean_s / workers / 3600
                lines.append(dict(model=label, glaciers=region_name, n_glaciers=n, workers=workers,
                                  ideal_hours=ideal_h, at_measured_dask_efficiency_hours=ideal_h / eff_dask,
                                  parent_glacier_tables_mb=n * per_glacier_kb / 1024))
    scale = pd.DataFrame(lines)
    area_km2 = dem_px * rec["pixel_size_m"] ** 2 / 1e6
    px30 = area_km2 * 1e6 / 30.0**2
    net_vs = ""
    if len(default):
        a = pd.read_csv(work / "est-default" / "glaciers.csv").set_index("rgi_id")["volume_km3"]
        b = pd.read_csv(work / f"est-serial-{n_all}" / "glaciers.csv").set_index("rgi_id")["volume_km3"].loc[a.index]
        r = a / b
        net_vs = (f" Per glacier, the shipped default's volume / {model}'s: median {r.median():.3f}, 10-90 % "
                  f"{r.quantile(0.1):.3f}-{r.quantile(0.9):.3f} ({len(r)} glaciers).")
    md = [
        f"# Region scale with ground truth (model of the full runs: {model})", "",
        f"Region: {rec['n_glaciers']} simulated glaciers ({', '.join(f'{k} {v}' for k, v in rec['glaciers_per_tile'].items())}) "
        f"in {rec['blocks']['simulated']} blocks of {rec['config']['block']}x{rec['config']['block']} px "
        f"at {rec['pixel_size_m']:g} m (skipped: {rec['blocks']['skipped']}); "
        f"{rec['glacier_area_km2']:.0f} km² of ice ({rec['ice_fraction_of_blocks']:.1%} of the simulated blocks), "
        f"{rec['volume_km3']:.1f} km³, mean thickness {rec['mean_thickness_m']:.0f} m; DEM {rec['shape'][0]}x{rec['shape'][1]} px "
        f"({rec['terrain_km2']:.0f} km² of terrain). Glacier area: median {sd['p50']:.2f} km², 10-90 % "
        f"{sd['p10']:.2f}-{sd['p90']:.2f} km², mean {sd['mean_km2']:.2f} km², largest {sd['max_km2']:.1f} km²; "
        f"{rec['n_reaching_block_edge']} glaciers reach a block's edge (cut there). Build: "
        f"{row('^build serial$')['wall_s']:.0f} s serial, {row('^build dask')['wall_s']:.0f} s on 2 Dask workers "
        f"(torch.compile once per worker); the two give the same ice: {same_ice}.", "",
        "| area class (km²) | glaciers | area (km²) |", "|---|---|---|",
        *[f"| {_class_label(c)} | {c['n']} | {c['area_km2']:.0f} |" for c in sd["classes"]], "",
        f"Machine: {os.cpu_count()} CPU cores (load average at each case's start in `load_1min`: about 1 "
        f"on a quiet machine, the previous case's own load); benchmark total {total_s / 60:.1f} min. Each case is a fresh process; memory as in the "
        f"script's docstring (`peak_parent_mb`: the process running `estimate`, which also hosts the Dask "
        f"scheduler; `peak_workers_sum_mb`: all its descendant processes together).", "",
        to_markdown(df[df["kind"] != "outlines"][
            ["case", "n", "n_resumed", "wall_s", "glaciers_per_s", "seconds_per_glacier", "cpu_s_per_glacier",
             "load_1min", "rss_start_mb",
             "peak_parent_mb", "peak_parent_over_start_mb", "maxrss_parent_mb", "peak_workers_sum_mb",
             "peak_worker_max_mb"]], ".3g"), "",
        "## Throughput", "",
        f"All {n_all} glaciers: serial {s_all['glaciers_per_s']:.2f} glaciers/s ({s_all['wall_s']:.0f} s), Dask with 2 "
        f"workers {d_all['glaciers_per_s']:.2f} glaciers/s ({d_all['wall_s']:.0f} s, of which starting the cluster "
        f"and importing on the workers takes ~{start['wall_to_ready_s']:.0f} s): speed-up "
        f"{s_all['wall_s'] / d_all['wall_s']:.2f} on 2 cores (per-worker efficiency {eff_dask:.0%}). CPU "
        f"seconds per glacier (parent + workers): serial {s_all['cpu_s_per_glacier']:.3f}, Dask "
        f"{d_all['cpu_s_per_glacier']:.3f}; a glacier task's own wall time: serial {s_all['glacier_seconds_sum'] / n_all:.3f} s, "
        f"in a Dask worker {d_all['glacier_seconds_sum'] / n_all:.3f} s (the scheduler and nannies share the 2 cores with the workers).", "",
        f"Per-glacier time (serial, {n_all} glaciers, each glacier task's `seconds`): "
        + ", ".join(f"{k} {v:.3f} s" for k, v in per_glacier.items()) + ". By glacier area:", "",
        to_markdown(times.assign(area_class=pd.cut(times["area_km2"], [0, 0.5, 1, 2, 5, 10, 50, np.inf]))
                    .groupby("area_class", observed=True)["seconds"].agg(["count", "mean", "median", "max"])
                    .reset_index().astype({"area_class": str}), ".3g"), "",
        "## Memory", "",
        "Peak RSS of the process running `estimate` (serial, same DEM): "
        + ", ".join(f"{int(r.n)} glaciers {r.peak_parent_mb:.0f} MB" for r in serial.itertuples())
        + f" (linear fit {slope_kb:.0f} KB per selected glacier; every run reads all {n_all} outlines). Reading the "
        f"outlines and making the glacier specs grows a process by {outl['outlines_kb_per_glacier']:.0f} + "
        f"{outl['specs_kb_per_glacier']:.0f} KB per glacier. Dask ({n_all} glaciers): parent "
        f"{d_all['peak_parent_mb']:.0f} MB, its worker processes together {d_all['peak_workers_sum_mb']:.0f} MB "
        f"(largest {d_all['peak_worker_max_mb']:.0f} MB). The same {int(tic['n'])} glaciers' worth of work on a DEM "
        f"of {tic_px / 1e6:.2f} Mpx instead of {dem_px / 1e6:.2f} Mpx: {tic['peak_parent_mb']:.0f} vs "
        f"{first['peak_parent_mb']:.0f} MB, i.e. ~{bytes_per_px:.0f} bytes per DEM pixel in the parent (the DEM, the "
        f"output mosaics and their temporary copies). Each Dask task carries one glacier and its key; a result is "
        f"released as soon as the client has read it.", "",
        "## Resume", "",
        *[f"- {r.case}: {int(r.n_resumed)} of {int(r.n)} skipped, {r.wall_s:.1f} s." for r in
          df[df["case"].str.contains("rerun|restarted")].itertuples()],
        f"- Kill and restart: a serial run over {kill['glaciers']} glaciers was SIGKILLed after {kill['killed_after']} "
        f"had finished ({kill['tmp_files_left']} partial `*.tmp` files left behind); the restart skipped those and "
        f"its volumes equal an uninterrupted run's: {kill['same_volumes_as_uninterrupted']}.", "",
        "## Ground truth", "",
        "Estimated vs simulated thickness (m) on the glaciers' pixels; volumes from `glaciers.csv` vs `truth.csv` "
        "(the DEM is the exact simulated surface, no noise)." + net_vs, "",
        to_markdown(scores, ".3g"), "",
        "## Scaling to RGI region 11 and to all of RGI 6", "",
        f"Counts from the kit's per-glacier RGI 6.2 table (g2ti): "
        f"{', '.join(f'{k} {v:,}' for k, v in counts.items())}. Time = glaciers x mean glacier-seconds / workers "
        f"(`ideal_hours`), and divided by the per-worker efficiency measured here ({eff_dask:.0%}); no run is shorter "
        f"than its slowest glacier ({per_glacier['max_s']:.1f} s here). `parent_glacier_tables_mb`: outlines and "
        f"specs in the parent at the measured {per_glacier_kb:.0f} KB per glacier.", "",
        to_markdown(scale, ".3g"), "",
        "Assumptions and what does not scale:", "",
        f"- Glacier times are those of {rec['pixel_size_m']:g} m simulated glaciers (most are 'tiny' and worked on a "
        f"finer grid); real RGI glaciers on a 30 m DEM have larger windows, but the working grid is capped by the "
        f"model's patch size (coarsened or tiled), so the per-glacier time stays bounded; RGI 6 has more very small "
        f"glaciers than this region (10th percentile here {sd['p10']:.2f} km²).",
        f"- Per glacier the memory is bounded (one window per task); what grows is in the parent: the DEM and the "
        f"output mosaics (~{bytes_per_px:.0f} B per DEM pixel: this region's bounding box, {area_km2:,.0f} km², "
        f"at 30 m is {px30 / 1e6:,.0f} Mpx, i.e. ~{px30 * bytes_per_px / 1024**3:.0f} GB), the outline table and "
        f"glacier specs (~{per_glacier_kb:.0f} KB per glacier). RGI region 11 "
        f"fits one process; all 216,502 glaciers do not fit one DEM: run one `estimate` per RGI region or DEM tile "
        f"on a shared scheduler (`scheduler=`), workers reading their windows lazily from a shared file system.",
        "- Dask on one 2-core machine is pessimistic for a cluster: the scheduler, the nannies and two workers "
        "share the two cores the serial run has to itself; per task the scheduler adds milliseconds.",
    ]
    write_text(RESULTS / "region_scale.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    run_script(main)
