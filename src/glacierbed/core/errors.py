"""Exceptions with messages that name the file and the problem."""

from __future__ import annotations

import logging
from typing import Callable


class GlacierbedError(Exception):
    """Base class for every error glacierbed raises on purpose."""


class DataNotFoundError(GlacierbedError, FileNotFoundError):
    """A file or named dataset is missing."""


class CorruptFileError(GlacierbedError):
    """A file exists but cannot be read as the expected format."""


class MissingCRSError(GlacierbedError):
    """A raster or vector file carries no usable georeferencing: no CRS, a wrong CRS label, a rotated grid."""


class NoOverlapError(GlacierbedError):
    """DEM and outlines (or observations) do not overlap, or only partly."""


class UnitError(GlacierbedError):
    """A raster's values cannot be its quantity in the units expected (a DEM above any elevation on Earth: feet?
    an SMB of thousands: mm w.e.?)."""


class OptionError(GlacierbedError):
    """An option's value cannot work with the input (e.g. a pixel size far finer than the DEM's)."""


class VoidError(GlacierbedError):
    """A DEM has nodata voids too large to fill safely."""


class EmptySelectionError(GlacierbedError):
    """A selection (glaciers, patches, points) came out empty."""


class DuplicateIdError(GlacierbedError):
    """Outlines share an id, which names each glacier's outputs (one folder per id)."""


class ChecksumError(GlacierbedError):
    """A downloaded or cached file does not match its registered checksum."""


class InSampleError(GlacierbedError):
    """A model would be scored on measurements it was fitted on (its scores there are in-sample)."""


#: loggers that speak once per glacier or per file; a benchmark over many glaciers quiets them
PER_GLACIER_LOGGERS = ("glacierbed.pipeline.estimate", "glacierbed.pipeline.workflow", "glacierbed.posterior.physics",
                       "glacierbed.evaluation.oggm_peer", "glacierbed.data.rasters", "glacierbed.data.outlines",
                       "glacierbed.data.warping", "glacierbed.data.units", "glacierbed.data.observations", "pyogrio")


def quiet_per_glacier_logs(*extra: str, level: int = logging.WARNING) -> None:
    """Raise the per-glacier loggers (and ``extra`` ones) to ``level``, so a benchmark's log shows its own
    progress. For the ``benchmarks/`` scripts."""
    for name in (*PER_GLACIER_LOGGERS, *extra):
        logging.getLogger(name).setLevel(level)


def run_script(main: Callable[[], object]) -> None:
    """Run a script's ``main``: a :class:`GlacierbedError` ends it with one line naming the problem and exit
    code 2 (as the CLI does), not a traceback. For the ``benchmarks/`` scripts."""
    import sys

    try:
        main()
    except GlacierbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
