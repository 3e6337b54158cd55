"""Scores of a model on measurements it was fitted on are in-sample: refuse them.

A network fine-tuned on the kit's measured glaciers records them
(:func:`~glacierbed.models.thickness.records.measured_groups`). :func:`seen_glaciers` says which of a set
it saw and raises :class:`~glacierbed.core.errors.InSampleError` naming what to run instead (its
out-of-fold scores): :func:`glacierbed.evaluation.measured_table.collect` and the physics ablation call
it before anything runs; :func:`glacierbed.evaluation.methods.run_methods` on measured glaciers marks the
network's rows "not scored" with :func:`in_sample_message`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from glacierbed.core.errors import InSampleError
from glacierbed.models.thickness.records import measured_groups


def in_sample_message(predictor: Any, seen: Sequence[str]) -> str:
    """Why a model fine-tuned on measured glaciers is not scored on them, and what to run instead."""
    listed = ", ".join(list(seen)[:4]) + (", ..." if len(seen) > 4 else "")
    return (f"model {predictor.name} ({predictor.identity[:12]}) was fine-tuned on the measured thickness of "
            f"{len(seen)} glacier(s) here ({listed}): its scores on them would be in-sample. Score it out of fold "
            "(benchmarks/measured_finetune.py --nested), or score the network it was fine-tuned from (--model PATH)")


def seen_glaciers(predictor: Any, groups: Iterable[str] | None = None, allow: bool = False) -> list[str]:
    """The glacier identities of ``groups`` (None: any) that ``predictor``'s network was fine-tuned on;
    raises :class:`~glacierbed.core.errors.InSampleError` when there are any, unless ``allow``."""
    trained = measured_groups(getattr(predictor, "record", {}))
    seen = sorted(trained if groups is None else trained & set(groups))
    if seen and not allow:
        raise InSampleError(in_sample_message(predictor, seen))
    return seen


def calibrated_glaciers(predictor: Any, groups: Iterable[str] | None = None) -> list[str]:
    """The glacier identities of ``groups`` (None: any) that ``predictor``'s calibration was fitted on (its record's
    RGI ids, as RGI 6): a network never fine-tuned can still carry a calibration fitted on measured glaciers."""
    from glacierbed.evaluation.glacier_identity import canonical_rgi6

    fitted = (getattr(getattr(predictor, "calibration", None), "trained_on", None) or {}).get("glaciers", [])
    ids = {canonical_rgi6(str(g)) for g in fitted}
    return sorted(ids if groups is None else ids & set(groups))


def estimate_in_sample(thickness_path: str | Path, rgi_ids: Iterable[str]) -> tuple[str, list[str]]:
    """For a map written by ``glacierbed estimate`` (its ``summary.json`` beside it, or two folders up for one
    glacier's map): the model's name and those of
    ``rgi_ids`` its network was fine-tuned on, or its calibration fitted on when the map was calibrated
    (``glacierbed evaluate`` warns: their scores are in-sample). ("", [])
    when the map has no summary, or its model cannot be loaded or is not the one that wrote it."""
    import json

    from glacierbed.core.errors import GlacierbedError
    from glacierbed.evaluation.glacier_identity import canonical_rgi6
    from glacierbed.pipeline.store import load_predictor

    here = Path(thickness_path).resolve().parent  # a region's mosaic, or one glacier's map in glaciers/<id>/
    summary = next((f for f in (here / "summary.json", here.parent.parent / "summary.json") if f.exists()),
                   here / "summary.json")
    try:
        info = json.loads(summary.read_text())
        predictor = load_predictor(info["model"])
    except (OSError, ValueError, KeyError, GlacierbedError):
        return "", []
    if not str(info.get("model_identity", "")).startswith(str(predictor.identity)):
        return "", []
    ids = {canonical_rgi6(str(r)) for r in rgi_ids}
    seen = set(seen_glaciers(predictor, ids, allow=True))
    if "+calibration:" in str(info["model_identity"]):  # the map was calibrated: the calibration's glaciers count too
        seen.update(calibrated_glaciers(predictor, ids))
    return predictor.name, sorted(seen)


__all__ = ["calibrated_glaciers", "estimate_in_sample", "in_sample_message", "seen_glaciers"]
