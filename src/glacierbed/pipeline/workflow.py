"""Per-glacier work as tasks: a folder per glacier, one decorator for the plumbing, a mapper.

After OGGM's ``GlacierDirectory`` / ``entity_task`` / ``execute_entity_task``, plainer:

* :class:`GlacierDir` hands out a glacier's file paths by logical name (:data:`BASENAMES`);
* :func:`glacier_task` owns skip/resume, timing, status and error isolation: a task that
  finished ``ok`` with the same key (a hash of everything that changes its result) and
  whose outputs exist is not run again; every run writes ``<task>.json`` (status,
  message, seconds, key, versions and the task's record) atomically; exceptions are
  caught per glacier, logged with its id and recorded (re-raised with ``fail_fast``);
* :func:`map_tasks` runs a task over many glaciers, serially in-process or on Dask
  (a local cluster or an existing scheduler), calling ``progress`` as they finish;
* :func:`compile_status` gathers the glaciers' task files into one table.
"""

from __future__ import annotations

import functools
import logging
import platform
import time
import traceback
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from glacierbed import __version__
from glacierbed.core.atomic import write_json
from glacierbed.core.errors import GlacierbedError

log = logging.getLogger(__name__)

#: the files of a glacier folder: logical name -> (file name, description)
BASENAMES: dict[str, tuple[str, str]] = {
    "window": ("window.npz", "thickness and thickness_std (m) on the DEM grid around the glacier, with the offset"),
    "estimate": ("estimate.json", "status of the estimate task and the glacier's record (volume, thickness, ...)"),
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
    """A glacier's output folder, ``<root>/glaciers/<rgi_id>``; paths by logical name."""

    root: Path
    rgi_id: str

    @property
    def path(self) -> Path:
        return Path(self.root) / "glaciers" / safe_id(self.rgi_id)

    def get_filepath(self, name: str) -> Path:
        if name not in BASENAMES:
            raise KeyError(f"unknown glacier file {name!r}; known: {', '.join(BASENAMES)}")
        return self.path / BASENAMES[name][0]


@dataclass
class TaskOutcome:
    """What one task did on one glacier (``record``: the task's own result fields)."""

    rgi_id: str
    task: str
    status: Status
    message: str = ""
    seconds: float = 0.0
    resumed: bool = False
    record: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {"rgi_id": self.rgi_id, "task": self.task, "status": self.status.value, "message": self.message,
                "seconds": self.seconds, "resumed": self.resumed}


def _versions() -> dict[str, str]:
    return {"glacierbed": __version__, "python": platform.python_version()}


def _load_done(path: Path, key: str, writes: Sequence[Path]) -> dict[str, Any] | None:
    """The stored task file if the task finished ok with ``key`` and its outputs exist."""
    import json

    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if stored.get("status") != Status.OK.value or stored.get("key") != key:
        return None
    if not all(p.exists() for p in writes):
        return None
    return stored


def glacier_task(name: str, writes: Sequence[str] = ()) -> Callable:
    """Decorate ``func(gdir, *args, **kwargs) -> dict`` into a resumable, isolated task.

    The wrapped function takes ``(gdir, *args, key: str, fail_fast: bool = False, **kwargs)``
    and returns a :class:`TaskOutcome`. ``writes``: logical file names the task produces
    (they must exist for a stored result to count as done).
    """
    if name not in BASENAMES:
        raise KeyError(f"task {name!r} needs a BASENAMES entry for its status file")

    def decorate(func: Callable[..., dict[str, Any]]) -> Callable[..., TaskOutcome]:
        @functools.wraps(func)
        def wrapper(gdir: GlacierDir, *args: Any, key: str, fail_fast: bool = False, **kwargs: Any) -> TaskOutcome:
            status_path = gdir.get_filepath(name)
            done = _load_done(status_path, key, [gdir.get_filepath(w) for w in writes])
            if done is not None:
                return TaskOutcome(gdir.rgi_id, name, Status.OK, done.get("message", ""), done.get("seconds", 0.0),
                                   True, done.get("record", {}))
            t0 = time.perf_counter()
            try:
                record, status, message = func(gdir, *args, **kwargs), Status.OK, ""
            except Exception as exc:  # one glacier's failure must not stop a region
                if fail_fast:
                    raise
                record, status = {}, Status.ERROR
                message = str(exc) if isinstance(exc, GlacierbedError) else f"{type(exc).__name__}: {exc}"
                if isinstance(exc, GlacierbedError):
                    log.error("%s: %s: %s", gdir.rgi_id, name, exc)
                else:
                    log.error("%s: %s failed\n%s", gdir.rgi_id, name, traceback.format_exc())
            seconds = time.perf_counter() - t0
            write_json(status_path, {"task": name, "rgi_id": gdir.rgi_id, "status": status.value, "message": message,
                                     "seconds": seconds, "key": key, "versions": _versions(), "record": record})
            return TaskOutcome(gdir.rgi_id, name, status, message, seconds, False, record)

        wrapper.writes = tuple(writes)  # type: ignore[attr-defined]
        wrapper.__doc__ = (func.__doc__ or "") + f"\n\n    Task ``{name}``; writes: {', '.join(writes) or '-'}."
        return wrapper

    return decorate


def map_tasks(task: Callable[..., TaskOutcome], items: Sequence[Any], *, workers: int = 1,
              scheduler: str | None = None, progress: Callable[[int, int], None] | None = None,
              order: Callable[[Any], float] | None = None) -> list[TaskOutcome]:
    """``task(item)`` for every item, serially or on Dask; outcomes in the items' order.

    ``workers > 1`` starts a local Dask cluster (processes, one thread each), ``scheduler``
    uses an existing one (its workers must see the output folder). ``order``: a sort key
    for submission (e.g. largest first, so long glaciers do not finish last).
    """
    items = list(items)
    outcomes: list[TaskOutcome | None] = [None] * len(items)
    if progress:
        progress(0, len(items))
    if not items:
        return []
    if workers <= 1 and not scheduler:
        for i, item in enumerate(items):
            outcomes[i] = task(item)
            if progress:
                progress(i + 1, len(items))
        return outcomes  # type: ignore[return-value]

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        idx = sorted(range(len(items)), key=(lambda i: order(items[i])) if order else (lambda i: i))
        futures = client.map(task, [items[i] for i in idx], pure=False)
        where = {f.key: i for f, i in zip(futures, idx)}
        done = as_completed(futures)
        del futures  # a finished task's result is released once read, so workers do not keep them all
        for n_done, fut in enumerate(done, start=1):
            outcomes[where.pop(fut.key)] = fut.result()
            fut.release()
            if progress:
                progress(n_done, len(items))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return outcomes  # type: ignore[return-value]


def compile_status(outcomes: Iterable[TaskOutcome]) -> pd.DataFrame:
    """One row per glacier and task: status, message, seconds, resumed."""
    return pd.DataFrame([o.as_row() for o in outcomes],
                        columns=["rgi_id", "task", "status", "message", "seconds", "resumed"])
