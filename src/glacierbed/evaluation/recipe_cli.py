"""The command line of the benchmarks that rescore the default's recipe nested on its cached fold networks.

:func:`recipe_arguments` gives them one parser (the recipe's options of
:func:`~glacierbed.evaluation.measured_finetune.default_recipe_options`, their own, ``--out``) and one logging set-up,
so each script states only what it adds.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable, Sequence

from glacierbed.core.errors import quiet_per_glacier_logs
from glacierbed.evaluation.measured_finetune import default_recipe_options


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
