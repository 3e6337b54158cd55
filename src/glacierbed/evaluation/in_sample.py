"""Scores of a model on measurements it was fitted on are in-sample: refuse them.

A network fine-tuned on the kit's measured glaciers records them
(:func:`~glacierbed.models.thickness.records.measured_groups`); every benchmark that scores a model on
those glaciers (:func:`glacierbed.evaluation.measured_table.collect`, the cases of
:mod:`glacierbed.evaluation.benchmark`) checks here first and raises
:class:`~glacierbed.core.errors.InSampleError` naming what to run instead (its out-of-fold scores).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from glacierbed.core.errors import InSampleError
from glacierbed.models.thickness.records import measured_groups


def in_sample_message(predictor: Any, seen: Sequence[str]) -> str:
    """Why a model fine-tuned on measured glaciers is not scored on them, and what to run instead."""
    return (f"model {predictor.name} ({predictor.identity[:12]}) was fine-tuned on the measured thickness of "
            f"{len(seen)} glacier(s) here ({', '.join(list(seen)[:4])}{', ...' if len(seen) > 4 else ''}): its scores "
            "on them would be in-sample. Score it out of fold (benchmarks/measured_finetune.py --nested), or score the network it "
            "was fine-tuned from (--model PATH)")


def seen_glaciers(predictor: Any, groups: Iterable[str] | None = None, allow: bool = False) -> list[str]:
    """The glacier identities of ``groups`` (None: any) that ``predictor``'s network was fine-tuned on;
    raises :class:`~glacierbed.core.errors.InSampleError` when there are any, unless ``allow``."""
    trained = measured_groups(getattr(predictor, "record", {}))
    seen = sorted(trained if groups is None else trained & set(groups))
    if seen and not allow:
        raise InSampleError(in_sample_message(predictor, seen))
    return seen


def refuse_in_sample(model: Any = None) -> None:
    """Raise :class:`~glacierbed.core.errors.InSampleError` when ``model`` (a name, path or predictor;
    None = the shipped default) was fine-tuned on the kit's measured glaciers: the benchmarks that
    score on them (every case of :mod:`glacierbed.evaluation.benchmark`) call this first."""
    from glacierbed.pipeline.store import load_predictor

    seen_glaciers(model if hasattr(model, "identity") else load_predictor(model))


__all__ = ["in_sample_message", "seen_glaciers", "refuse_in_sample"]
