"""Per-glacier work as tasks: a folder per glacier and one decorator for the plumbing.

After OGGM's ``GlacierDirectory`` / ``entity_task``, plainer:

* :class:`GlacierDir` is a glacier's folder, ``<root>/glaciers/<rgi_id>``: it hands out its
  files by logical name (:data:`BASENAMES`), reads its task records, and can be reopened
  from the folder alone (:meth:`GlacierDir.open`);
* :func:`glacier_task` owns resume, timing, status and error isolation. It follows the one
  resume rule of :class:`glacierbed.core.parallel.Checkpoint`: a glacier is skipped only if
  its ``<task>.json`` says ``ok`` with the same key (a hash of everything that changes its
  result) and every result file exists, matches its recorded sha256 and can be read;
  otherwise it is recomputed and the reason is recorded (``recomputed`` in
  ``task_status.csv``). Every run writes ``<task>.json`` (status, message, seconds, key,
  sha256 of the results, versions and the task's record) atomically, after the results.
  Exceptions are caught per glacier, logged with its id and recorded (re-raised with
  ``fail_fast``, and always on a full disk, which would fail every glacier after it);
* :func:`compile_status` gathers the outcomes into one table.

The tasks are mapped over glaciers by :func:`glacierbed.core.parallel.execute`.
"""

from __future__ import annotations

import functools
import json
import logging
import platform
import time
import traceback
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from glacierbed import __version__
from glacierbed.core.errors import DataNotFoundError, GlacierbedError
from glacierbed.core.parallel import Checkpoint, is_disk_full

log = logging.getLogger(__name__)

#: the files of a glacier folder: logical name -> (file name, description)
BASENAMES: dict[str, tuple[str, str]] = {
    "thickness": ("thickness.tif", "thickness and thickness_std (m): a 2-band float32 GeoTIFF of the glacier's "
                                   "box on the DEM grid (CRS, transform, nodata -9999)"),
    "elevation_bands": ("elevation_bands.csv", "area, volume, mean thickness, surface and bed per surface-elevation "
                                               "band (EstimateConfig.elevation_band_m; pipeline.outputs.elevation_bands)"),
    "estimate": ("estimate.json", "record of the estimate task: status, message, seconds, key, sha256 of the "
                                  "results, versions and the glacier's record (volume, thickness, ...)"),
}


class Status(str, Enum):
    """Outcome of one task on one glacier."""

    OK = "ok"
    ERROR = "error"


def safe_id(rgi_id: str) -> str:
    """A file-system-safe folder name for a glacier id."""
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in rgi_id) or "glacier"


@dataclass(frozen=True)
class GlacierDir:
    """A glacier's output folder, ``<root>/glaciers/<rgi_id>``: its files, records and id."""

    root: Path
    rgi_id: str

    @classmethod
    def open(cls, folder: str | Path) -> "GlacierDir":
        """Reopen a glacier folder: its id is read from a task record in it."""
        folder = Path(folder)
        probe = cls(folder.parent.parent, folder.name)  # safe_id(folder.name) == folder.name
        for task, (base, _) in BASENAMES.items():
            stored = probe.read_task(task) if base.endswith(".json") else None
            if stored and "rgi_id" in stored:
                return cls(probe.root, str(stored["rgi_id"]))
        raise DataNotFoundError(f"{folder}: not a glacier folder (no readable task record in it)")

    @property
    def path(self) -> Path:
        return Path(self.root) / "glaciers" / safe_id(self.rgi_id)

    def get_filepath(self, name: str) -> Path:
        if name not in BASENAMES:
            raise KeyError(f"unknown glacier file {name!r}; known: {', '.join(BASENAMES)}")
        return self.path / BASENAMES[name][0]

    def read_task(self, task: str) -> dict[str, Any] | None:
        """The stored ``<task>.json`` (status, key, record, ...), or None when missing or unreadable."""
        try:
            return json.loads(self.get_filepath(task).read_text())
        except (OSError, ValueError):
            return None

    def record(self, task: str = "estimate") -> dict[str, Any]:
        """The glacier's record from ``task`` (volume, thickness, ...); empty when there is none."""
        return (self.read_task(task) or {}).get("record", {})


STATUS_COLUMNS = ["rgi_id", "task", "status", "message", "seconds", "resumed", "recomputed"]


@dataclass
class TaskOutcome:
    """What one task did on one glacier (``record``: the task's own result fields).

    ``resumed``: its stored result was reused; ``recomputed``: why a stored result was not
    reused ("" when there was none, or when it was reused).
    """

    rgi_id: str
    task: str
    status: Status
    message: str = ""
    seconds: float = 0.0
    resumed: bool = False
    record: dict[str, Any] = field(default_factory=dict)
    recomputed: str = ""

    def as_row(self) -> dict[str, Any]:
        return {"rgi_id": self.rgi_id, "task": self.task, "status": self.status.value, "message": self.message,
                "seconds": self.seconds, "resumed": self.resumed, "recomputed": self.recomputed}


def _versions() -> dict[str, str]:
    return {"glacierbed": __version__, "python": platform.python_version()}


def _run(func: Callable[..., dict[str, Any]], gdir: GlacierDir, name: str, fail_fast: bool, args: tuple,
         kwargs: dict) -> tuple[dict[str, Any], Status, str]:
    """``func``'s record, or an error status and message (one glacier must not stop a region)."""
    try:
        return func(gdir, *args, **kwargs), Status.OK, ""
    except Exception as exc:
        if fail_fast or is_disk_full(exc):  # a full disk would fail every glacier after this one
            raise
        if isinstance(exc, GlacierbedError):
            log.error("%s: %s: %s", gdir.rgi_id, name, exc)
            return {}, Status.ERROR, str(exc)
        log.error("%s: %s failed\n%s", gdir.rgi_id, name, traceback.format_exc())
        return {}, Status.ERROR, f"{type(exc).__name__}: {exc}"


def glacier_task(name: str, writes: Sequence[str] = (),
                 read: Callable[[Mapping[str, Path]], Any] | None = None) -> Callable:
    """Decorate ``func(gdir, *args, **kwargs) -> dict`` into a resumable, isolated task.

    The wrapped function takes ``(gdir, *args, key: str, fail_fast: bool = False, **kwargs)``
    and returns a :class:`TaskOutcome`. ``writes``: logical file names the task produces;
    ``read(files)`` reads them back (it must succeed for a stored result to be reused).
    """
    if name not in BASENAMES:
        raise KeyError(f"task {name!r} needs a BASENAMES entry for its status file")

    def decorate(func: Callable[..., dict[str, Any]]) -> Callable[..., TaskOutcome]:
        @functools.wraps(func)
        def wrapper(gdir: GlacierDir, *args: Any, key: str, fail_fast: bool = False, **kwargs: Any) -> TaskOutcome:
            cp = Checkpoint(gdir.get_filepath(name), {w: gdir.get_filepath(w) for w in writes}, key)
            found = cp.check(read)
            if found.reusable:
                done = found.record
                return TaskOutcome(gdir.rgi_id, name, Status.OK, done.get("message", ""), done.get("seconds", 0.0),
                                   True, done.get("record", {}))
            if found.why_not:
                log.warning("%s: %s: %s: recomputed", gdir.rgi_id, name, found.why_not)
            t0 = time.perf_counter()
            record, status, message = _run(func, gdir, name, fail_fast, args, kwargs)
            seconds = time.perf_counter() - t0
            cp.commit(status.value, task=name, rgi_id=gdir.rgi_id, message=message, seconds=seconds,
                      recomputed=found.why_not, versions=_versions(), record=record)
            if status is Status.OK and found.why_not:  # this run's status line says why it ran again
                message = f"{found.why_not}: recomputed"
            return TaskOutcome(gdir.rgi_id, name, status, message, seconds, False, record, found.why_not)

        wrapper.writes = tuple(writes)  # type: ignore[attr-defined]
        wrapper.__doc__ = (func.__doc__ or "") + f"\n\n    Task ``{name}``; writes: {', '.join(writes) or '-'}."
        return wrapper

    return decorate


def compile_status(outcomes: Iterable[TaskOutcome]) -> pd.DataFrame:
    """One row per glacier and task: status, message, seconds, resumed, recomputed (why)."""
    return pd.DataFrame([o.as_row() for o in outcomes], columns=STATUS_COLUMNS)
