"""The command line of the benchmarks that rescore the default's recipe nested on its cached fold networks.

:func:`recipe_arguments` gives them one parser (the recipe's options of
:func:`~glacierbed.evaluation.measured_finetune.default_recipe_options`, their own, ``--out``) and one logging set-up,
so each script states only what it adds; :func:`results_name` names a measured fine-tuning run's results files (the
benchmark writes them, the lineage rebuild and the benchmarks that read the default's rows find them by it).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable, Sequence

from glacierbed.core.errors import quiet_per_glacier_logs
from glacierbed.evaluation.measured_finetune import default_recipe_options
from glacierbed.posterior.calibration import BOOSTED_DESIGN

#: the default's measured fine-tuning recipe and, since candidates 28-29, the physics of its nested rows: plastic
#: margins on the scored maps, the calibration's residual and scale fitted on zero-margin maps, its interval on plastic
#: ones (repository paths of the benchmarks' configs; docs/thickness_model.md)
DEFAULT_RECIPE = "benchmarks/configs/measured_finetune_from_spanning_all_p128.yaml"
DEFAULT_PHYSICS = tuple(f"benchmarks/configs/physics_margin_{m}.yaml" for m in ("plastic", "zero", "plastic"))


def recipe_arguments(doc: str, argv: Sequence[str] | None, config: Path, results: Path,
                     options: Callable[[argparse.ArgumentParser], None] | None = None, verbose: bool = True,
                     quiet: Sequence[str] = ()) -> argparse.Namespace:
    """Parse ``argv`` for a recipe benchmark whose docstring is ``doc`` (its first line describes it): the recipe's
    options with ``config`` as its default, the script's own ``options``, ``--out`` (default ``results``). Logging at
    INFO with the per-glacier loggers (and ``quiet`` ones) quietened when ``verbose``, else at WARNING."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    default_recipe_options(ap, config)
    if options is not None:
        options(ap)
    ap.add_argument("--out", type=Path, default=results)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if verbose:
        quiet_per_glacier_logs(*quiet)
    return args


def calibration_suffix(variant: str) -> str:
    """A results-file tag for a calibration variant other than :data:`BOOSTED_DESIGN` (whose results carry none): its
    steps' forms (``residual+scale+interval~parametric`` -> ``parametric``), else the variant with ``+`` as ``_``."""
    options = [t.split("~", 1)[1] for t in variant.split("+") if "~" in t]
    tag = "_".join(options) if options else variant.replace("+", "_")
    return tag.replace("^", "-").replace(":", "-").replace("@", "-")


def results_name(config: Path, calibration: str, physics: Path | None = None, fit_physics: Path | None = None,
                 interval_physics: Path | None = None, by: str = "glacier",
                 calibrated_with: Sequence[str] = ()) -> str:
    """The stem of a measured fine-tuning run's results files (``benchmarks/measured_finetune.py``): the fold config's
    stem, then what changes the scores, each by its YAML stem or tag, in this order: the side cases the calibration
    was fitted with, ``_loro`` (``by="region"``), the physics of the scored maps, of the calibration's fit, of its
    interval, and the calibration variant unless it is :data:`BOOSTED_DESIGN` (the design up to candidate 36)."""
    return Path(config).stem + (
        "_calibrated_with_" + "_".join(c.split("-")[0] for c in calibrated_with) if calibrated_with else "") + (
        "_loro" if by == "region" else "") + (
        f"_{Path(physics).stem}" if physics else "") + (
        f"_fit_{Path(fit_physics).stem}" if fit_physics else "") + (
        f"_interval_{Path(interval_physics).stem}" if interval_physics else "") + (
        "" if calibration == BOOSTED_DESIGN else "_cal_" + calibration_suffix(calibration))


def default_results_name(calibration: str, by: str = "glacier") -> str:
    """:func:`results_name` of the default's recipe scored with its physics (:data:`DEFAULT_PHYSICS`) and the
    calibration variant ``calibration``."""
    return results_name(Path(DEFAULT_RECIPE), calibration, *DEFAULT_PHYSICS, by=by)
