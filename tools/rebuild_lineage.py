"""Rebuild the default thickness network's lineage from git (a maintainer's step; hours on 2 cores).

No checkout holds the default's intermediate networks: stage 0 (trained from scratch) is in git history, but
stage 1 (fine-tuned on the spanning simulated sets) and the measured fine-tuning's fold networks live in ``runs/``
and caches. Without them no change to the default's post-processing can be scored the way the default was (nested,
out of fold). This script rebuilds them, each step skipped when its output exists and resumed where it can be:

1. stage 0 from git into ``runs/previous_default/`` (sha256 checked against ``lineage[0]`` of the shipped record);
2. the three simulated sets stage 1 trained on (``glacierbed simulate build``, resumable batch by batch), each
   checked against the window counts its summary has in the shipped record;
3. stage 1 (``glacierbed train-thickness --config benchmarks/configs/thickness_spanning_all.yaml``); its sha256 is
   compared with ``lineage[1]``: equal means the rebuild *is* the default's stage 1, otherwise a twin (reported).
   The rebuild of 2026-12-06 is committed (``benchmarks/weights/spanning_stage1_twin.pt``, a twin: validation
   equal to 4 digits, sha256 not); unless ``--retrain``, it is used and only the set the fold recipe draws from is
   built (steps 2-3 then take ~21 min on 2 workers, the 683-window set, instead of ~1.7 h);
4. ``runs/span128/p128/weights.pt``: stage 1 with ``patch_size`` 128 in its record (how the default plans windows);
5. with ``--folds``: the default's 6 x 5 glacier-wise fold networks and their nested table
   (``benchmarks/measured_finetune.py`` with the default's design, :data:`DEFAULT_DESIGN`), written to ``--out`` so
   the default's own results files stay as they are, and :data:`COMPARISON` comparing it with them.

Run: ``GLACIERBED_DATA=../shared/data python tools/rebuild_lineage.py [--folds] [--workers 2]``; with
``--stage0-only`` only step 1 (the previous default, e.g. to score it beside the default on grids nobody has seen).
An interrupted step resumes: the builds batch by batch, the training from its checkpoint with the same draws.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from glacierbed.core.atomic import file_sha256, write_bytes, write_json, write_text
from glacierbed.evaluation.recipe_cli import DEFAULT_PHYSICS, DEFAULT_RECIPE, default_results_name
from glacierbed.posterior.calibration import SHIPPED_VARIANT

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "glacierbed" / "weights" / "thickness_net.json"
STAGE0_COMMIT = "d1266c4"  #: the last commit whose package weights were stage 0 (docs/thickness_model.md)
STAGE0 = Path("runs/previous_default/thickness-net")
SETS = {  # path in the stage-1 record -> the config that builds it
    "runs/span128/sim128s.npz": "src/glacierbed/configs/simulated_spanning_128.yaml",
    "runs/span/sim256_bysource.npz": "src/glacierbed/configs/simulated_spanning_256.yaml",
    "runs/span/sim128.npz": "src/glacierbed/configs/simulated.yaml",
}
STAGE1_CONFIG = "benchmarks/configs/thickness_spanning_all.yaml"
STAGE1 = Path("runs/span128/train/weights.pt")
TWIN = Path("benchmarks/weights/spanning_stage1_twin.pt")  #: stage 1 as rebuilt on 2026-12-06 (committed)
REPORT = Path("benchmarks/results/rebuilt_lineage/stage1.md")
FOLDS_CONFIG = DEFAULT_RECIPE
#: how the default's nested rows are made since candidates 28-29 (recipe_cli.DEFAULT_PHYSICS)
PHYSICS, FIT_PHYSICS, INTERVAL_PHYSICS = DEFAULT_PHYSICS
DEFAULT_DESIGN = ("--physics-config", PHYSICS, "--fit-physics-config", FIT_PHYSICS,
                  "--interval-physics-config", INTERVAL_PHYSICS)
#: the default's own nested rows (candidate 37's run, its interval ``~parametric``; candidate 38 changed no column)
DEFAULT_ROWS = Path("benchmarks/results") / (default_results_name("residual+scale+interval~parametric") + ".csv")
#: step 5's comparison (``fold_networks.md`` is the 2026-12-06 one, of the zero-margin design of that day)
COMPARISON = "fold_networks_shipped_design.md"
P128 = Path("runs/span128/p128/weights.pt")
FOLDS_DIR = Path.home() / ".cache" / "glacierbed-finetune-spanning-p128"


def run(*cmd: str) -> None:
    """Run one step's command in the repository root; stop with its name if it fails."""
    print("+", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=ROOT).returncode:
        raise SystemExit(f"step failed: {' '.join(cmd)}")


def stage0(lineage: list[dict]) -> None:
    """Stage 0's weights, record, ONNX and calibration from git, checked against the shipped lineage."""
    pt = ROOT / STAGE0.with_suffix(".pt")
    if not pt.exists():
        for ext in ("pt", "json", "onnx", "calibration.json"):
            blob = subprocess.run(["git", "show", f"{STAGE0_COMMIT}:src/glacierbed/weights/thickness_net.{ext}"],
                                  cwd=ROOT, capture_output=True, check=True).stdout
            write_bytes(ROOT / f"{STAGE0}.{ext}", blob)
    if file_sha256(pt) != lineage[0]["weights_sha256"]:
        raise SystemExit(f"{pt}: sha256 {file_sha256(pt)[:12]} is not stage 0's {lineage[0]['weights_sha256'][:12]}")
    print(f"stage 0: {pt} ({lineage[0]['weights_sha256'][:12]})")


def simulated_sets(stage1: dict, workers: int, paths: list[str]) -> list[dict]:
    """Build each set of ``paths`` stage 1 trained on (resumable), check its window counts against the record."""
    recorded = {s["path"]: s["summary"] for s in stage1["dataset"]["sets"]}
    summaries = []
    for path in paths:
        config = SETS[path]
        out = ROOT / path
        if not out.exists():
            run("glacierbed", "simulate", "build", "--config", config, "--out", path, "--workers", str(workers))
        summary = json.loads((out.with_suffix(".json")).read_text())
        if summary["counts"] != recorded[path]["counts"]:
            raise SystemExit(f"{path}: window counts differ from the ones stage 1 trained on "
                             f"({summary['n']} vs {recorded[path]['n']} windows): the simulator or its config changed")
        print(f"set {path}: {summary['n']} windows, counts as recorded")
        summaries.append({"path": path, "config": config, "n": summary["n"], "seconds": summary["seconds"],
                          "steady_share": summary["steady_share"],
                          "recorded_steady_share": recorded[path]["steady_share"]})
    return summaries


def use_twin() -> None:
    """The committed rebuild of stage 1 as ``runs/span128/train/weights.pt`` (its record checked)."""
    record = json.loads((ROOT / TWIN).with_suffix(".json").read_text())
    if file_sha256(ROOT / TWIN) != record["weights_sha256"]:
        raise SystemExit(f"{TWIN}: its sha256 is not the one its record names")
    for ext in (".pt", ".json"):
        write_bytes((ROOT / STAGE1).with_suffix(ext), (ROOT / TWIN).with_suffix(ext).read_bytes())
    print(f"stage 1: the committed rebuild {TWIN}")


def stage1_network(stage1: dict) -> tuple[bool, dict]:
    """Train stage 1 unless it exists; whether its sha256 is the default's stage 1, and its record."""
    if not (ROOT / STAGE1).exists():
        run("glacierbed", "train-thickness", "--config", STAGE1_CONFIG, "--run-dir", str(STAGE1.parent))
    sha = file_sha256(ROOT / STAGE1)
    same = sha == stage1["weights_sha256"]
    print(f"stage 1: {STAGE1} {sha[:12]} " + ("= the default's stage 1" if same else
          f"!= the default's stage 1 ({stage1['weights_sha256'][:12]}): a twin, not the same network"))
    record = json.loads((ROOT / STAGE1).with_suffix(".json").read_text())
    for key in ("rmse_m", "bias_m", "coverage68"):
        print(f"  validation {key}: rebuilt {record['validation'][key]:.4f}, recorded {stage1['validation'][key]:.4f}")
    return same, record


def write_report(stage1: dict, record: dict, same: bool, sets: list[dict]) -> Path:
    """``benchmarks/results/rebuilt_lineage/stage1.md``: the rebuilt sets and stage 1 beside the shipped record."""
    rows = [f"| {s['path']} | {s['n']} | {s['steady_share']:.4f} ({s['recorded_steady_share']:.4f}) | "
            f"{s['seconds'] / 60:.0f} |" for s in sets]
    val = [f"| {k} | {record['validation'][k]:.4f} | {stage1['validation'][k]:.4f} |"
           for k in ("rmse_m", "bias_m", "mae_m", "coverage68", "rmse_50m", "rmse_100m", "rmse_200m")]
    text = "\n".join([
        "# The default's stage 1 rebuilt from git (`tools/rebuild_lineage.py`)", "",
        "Simulated sets (window counts per source equal to the shipped record's; steady share, recorded in brackets;",
        "minutes on 2 Dask workers, the last sitting):", "",
        "| set | windows | steady share | min |", "|---|---|---|---|", *rows, "",
        f"Stage 1: `{STAGE1_CONFIG}` from stage 0, {record['steps']} steps, {record['train_seconds'] / 60:.1f} min on "
        f"{record.get('device', 'cpu')}; sha256 `{record['weights_sha256'][:12]}` against the record's "
        f"`{stage1['weights_sha256'][:12]}`: " + ("**the same network**." if same else
        "**a twin** (same data and recipe, not bit-identical)."), "",
        "| validation (simulated Jura windows) | rebuilt | recorded |", "|---|---|---|", *val, ""])
    return write_text(ROOT / REPORT, text)


def rebuilt_rows(out: Path) -> Path:
    """The results CSV step 5 writes in ``out``: named as ``benchmarks/measured_finetune.py`` names it for the
    default's design and the shipped calibration (:func:`~glacierbed.evaluation.recipe_cli.results_name`)."""
    path = out / (default_results_name(SHIPPED_VARIANT) + ".csv")
    if not path.exists():
        raise SystemExit(f"step 5 wrote no {path}")
    return path


def compare_rows(rebuilt: Path) -> Path:
    """:data:`COMPARISON` beside ``rebuilt`` (a measured_finetune.py results CSV of the rebuilt fold networks):
    each of its rows beside the default's row of the same variant (the calibration's name in a label set aside),
    every column both have."""
    import pandas as pd

    def rows(path: Path) -> pd.DataFrame:
        table = pd.read_csv(path)
        return table.assign(variant=table["variant"].str.replace(r" \(residual\+[^)]*\)$", "", regex=True))

    new, old = rows(rebuilt), rows(ROOT / DEFAULT_ROWS)
    both = new.merge(old, on=["variant", "split"], suffixes=(" rebuilt", " default"))
    cols = [c for c in new.columns if c not in ("variant", "split") and c in old.columns]
    lines = [f"# The default's fold networks rebuilt from stage 1's twin: [{rebuilt.name}]({rebuilt.name}) beside "
             f"[{DEFAULT_ROWS.name}](../{DEFAULT_ROWS.name})", "",
             "| variant | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for _, r in both.iterrows():
        lines.append(f"| {r['variant']} ({r['split']}) | " + " | ".join(
            f"{r[c + ' rebuilt']:.5g} / {r[c + ' default']:.5g}" for c in cols) + " |")
    lines += ["", "Each cell: rebuilt / default.", ""]
    return write_text(rebuilt.with_name(COMPARISON), "\n".join(lines))


def p128_copy(record: dict) -> None:
    """Stage 1 (``record``: its record) with patch_size 128 in its record: the measured windows are planned as the
    default plans them."""
    out = ROOT / P128
    if not out.exists() or file_sha256(out) != file_sha256(ROOT / STAGE1):  # atomic: a fold run may be reading it
        write_bytes(out, (ROOT / STAGE1).read_bytes())
    write_json(out.with_suffix(".json"), {**record, "patch_size": 128})
    print(f"stage 1 planned at 128 px: {P128}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2, help="Dask workers for the simulated sets")
    ap.add_argument("--folds", action="store_true", help="also fine-tune the default's fold networks (~1 h)")
    ap.add_argument("--retrain", action="store_true", help="rebuild every set and train stage 1 even though a "
                    f"rebuild is committed ({TWIN})")
    ap.add_argument("--stage0-only", action="store_true", help="only step 1: the previous default (stage 0, its "
                    "shipped calibration beside it) into runs/previous_default/, seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rebuilt_lineage",
                    help="where the fold networks' nested table goes (not the default's results files)")
    args = ap.parse_args(argv)
    if not os.environ.get("GLACIERBED_DATA"):
        raise SystemExit("set GLACIERBED_DATA to the data kit (e.g. ../shared/data)")
    lineage = json.loads(SHIPPED.read_text())["lineage"]
    stage0(lineage)
    if args.stage0_only:
        return
    if args.retrain and (ROOT / STAGE1).exists() and (ROOT / TWIN).exists() \
            and file_sha256(ROOT / STAGE1) == file_sha256(ROOT / TWIN):
        raise SystemExit(f"--retrain: {STAGE1} is the committed twin copied there, not a training of this checkout; "
                         f"delete {STAGE1.parent} to retrain")
    twin = not args.retrain and (ROOT / TWIN).exists() and not (ROOT / STAGE1).exists()
    if twin:
        use_twin()
    sets = simulated_sets(lineage[1], args.workers, ["runs/span/sim128.npz"] if twin else list(SETS))
    same, record = stage1_network(lineage[1])
    if not twin:  # every set checked: the rebuild's report
        print(f"report: {write_report(lineage[1], record, same, sets)}")
    p128_copy(record)
    if args.folds:
        args.out.mkdir(parents=True, exist_ok=True)
        run(sys.executable, "benchmarks/measured_finetune.py", "--config", FOLDS_CONFIG, "--run-dir", str(FOLDS_DIR),
            "--nested", "--reference", str(STAGE0.with_suffix(".pt")), *DEFAULT_DESIGN, "--out", str(args.out))
        print(f"compared: {compare_rows(rebuilt_rows(args.out))}")
    print("the default's lineage rebuilt" + ("" if same else " as a twin (stage 1 differs)"))


if __name__ == "__main__":
    main()
