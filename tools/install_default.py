"""Install a decided thickness network as the package default (a maintainer's release step).

The default lives in ``src/glacierbed/weights/`` (``thickness_net.pt`` + its record ``.json``,
its ONNX export and ``thickness_net.calibration.json``), which :func:`glacierbed.pipeline.store.ship_weights`
never writes. This script does, once a protocol has decided a network
(``benchmarks/results/*_decision.md``): it copies the weights, writes a record whose ``lineage``
lists every training stage from scratch to the final one (each stage's data, config, steps,
time, device), exports ONNX (checked against torch), installs the calibration after checking
it was fitted for these weights, and loads the result through the model store as a user would.

Run: ``python tools/install_default.py WEIGHTS --stages RECORD [RECORD ...] --note TEXT``:
WEIGHTS is a ``.pt`` with its ``.json`` record and ``<stem>.calibration.json`` beside it
(``benchmarks/measured_finetune.py --final`` writes that pair); RECORDS are the earlier stages'
records in training order, the first one trained from scratch.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from glacierbed.core.atomic import file_sha256, replacing, write_json
from glacierbed.models.thickness.network import export_onnx
from glacierbed.pipeline.store import load_predictor, package_weights_dir
from glacierbed.posterior.calibration import Calibration

STAGE_KEYS = ("weights_sha256", "steps", "train_seconds", "patch_size", "config", "dataset", "validation", "device",
              "torch", "note")


def stage(record: dict, label: str) -> dict:
    """One training stage of the lineage: what it trained on, how, and what it reached."""
    return {"stage": label, **{k: record[k] for k in STAGE_KEYS if k in record}}


def install(weights: Path, stages: list[Path], note: str, dest: Path) -> Path:
    """Copy ``weights`` (+ record with its lineage, ONNX, calibration) to ``dest/thickness_net.*``."""
    calibration = weights.with_name(f"{weights.stem}.calibration.json")
    for p in (weights, weights.with_suffix(".json"), calibration, *stages):
        if not p.is_file():
            raise SystemExit(f"{p}: not found")
    sha = file_sha256(weights)
    Calibration.load(calibration).check_model_identity(sha)  # fitted on these weights' maps, else refused
    record = json.loads(weights.with_suffix(".json").read_text())
    if record.get("weights_sha256") != sha:
        raise SystemExit(f"{weights.with_suffix('.json')}: records weights {record.get('weights_sha256')}, "
                         f"the file is {sha}")
    earlier = [json.loads(p.read_text()) for p in stages]
    if earlier[0].get("config", {}).get("init_weights"):
        raise SystemExit(f"{stages[0]}: the first stage must be trained from scratch (it starts from "
                         f"{earlier[0]['config']['init_weights']})")
    lineage = [stage(r, "trained from scratch" if i == 0 else f"fine-tuned from stage {i - 1}")
               for i, r in enumerate(earlier)]
    lineage.append({"stage": f"fine-tuned on measured thickness from stage {len(earlier) - 1}",
                    "weights_sha256": sha, **record["finetuned_on_measured"]})
    record.pop("onnx", None)
    record.update({"note": note, "lineage": lineage, "installed_from": str(weights)})
    out = dest / "thickness_net.pt"
    with replacing(out) as tmp:
        shutil.copyfile(weights, tmp)
    write_json(out.with_suffix(".json"), record)
    export_onnx(out)
    with replacing(dest / "thickness_net.calibration.json") as tmp:
        shutil.copyfile(calibration, tmp)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", type=Path)
    ap.add_argument("--stages", type=Path, nargs="+", required=True,
                    help="records of the earlier training stages, in order, the first trained from scratch")
    ap.add_argument("--note", required=True, help="why this network is the default (the decision file)")
    ap.add_argument("--dest", type=Path, default=package_weights_dir())
    args = ap.parse_args(argv)
    out = install(args.weights, args.stages, args.note, args.dest)
    predictor = load_predictor(None)  # the default, as estimate loads it (ONNX + calibration checked)
    print(f"installed {out} ({file_sha256(out)[:12]}); default predictor {predictor.name}, "
          f"identity {predictor.identity[:12]}, calibration {predictor.calibration_path}")


if __name__ == "__main__":
    main()
