"""Running one task over many items, the rule for reusing stored results, and a full disk.

* :func:`execute` maps a task over items: serially in-process (``workers=1``), on a local
  Dask cluster (``workers > 1``: processes with one thread each) or on an existing Dask
  scheduler (``scheduler``). Results come back in the items' order; on Dask each is
  released on the workers as soon as it is read, and ``progress(done, total)`` is called
  as items finish. Every per-item loop of glacierbed (glaciers, simulated batches) uses it.
* :class:`Checkpoint` is the one resume rule: a task's result files with a JSON record
  beside them, written last. The record holds the task's content-addressed key (a hash of
  everything that changes the result), its status and the sha256 of every result file. A
  stored result is reused only if the record says ``ok``, the key matches, and every file
  exists, matches its recorded sha256 and can be read; otherwise :meth:`Checkpoint.check`
  says why, and the task runs again.
* :func:`stop_when_disk_full` turns "No space left on device" anywhere in a block into one
  :class:`DiskFullError` that names the output folder and says that a rerun resumes.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from glacierbed.core.atomic import file_sha256, write_json
from glacierbed.core.errors import GlacierbedError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: the record status of a result that may be reused
OK = "ok"


# --------------------------------------------------------------------------------------
# the mapper
# --------------------------------------------------------------------------------------
def execute(task: Callable[[T], R], items: Sequence[T], *, workers: int = 1, scheduler: str | None = None,
            progress: Callable[[int, int], None] | None = None, order: Callable[[T], float] | None = None,
            worker_env: Mapping[str, str | None] | None = None) -> list[R]:
    """``task(item)`` for every item; results in the items' order.

    ``workers <= 1`` and no ``scheduler``: serially, in this process (no Dask). ``workers > 1``:
    a local Dask cluster of that many processes, one thread each, closed afterwards.
    ``scheduler``: the address of an existing Dask scheduler (its workers must see the files
    the tasks read and write). ``order``: a sort key for submission (e.g. largest first, so a
    long item does not finish last). ``worker_env``: environment variables for local workers
    (``None`` unsets one Dask would set; Dask also sets them in this process, so the first
    local cluster of a process decides). ``progress(done, total)`` starts at ``(0, total)``.
    """
    items = list(items)
    report = progress or (lambda done, total: None)
    report(0, len(items))
    if not items:
        return []
    if workers <= 1 and not scheduler:
        results = []
        for i, item in enumerate(items):
            results.append(task(item))
            report(i + 1, len(items))
        return results
    with _dask_client(workers, scheduler, worker_env) as client:
        return _as_completed(client, task, items, order, report)


@contextmanager
def _dask_client(workers: int, scheduler: str | None, worker_env: Mapping[str, str | None] | None) -> Iterator[Any]:
    """A client of ``scheduler``, or of a local cluster of ``workers`` processes (closed on exit)."""
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in (worker_env or {}).items()}
    with dask.config.set(env), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def _as_completed(client: Any, task: Callable[[T], R], items: list[T], order: Callable[[T], float] | None,
                  report: Callable[[int, int], None], in_flight: int | None = None) -> list[R]:
    """Submit in ``order``, at most ``in_flight`` at a time (default: 2 per worker thread),
    collect as they finish; each result is released once read.

    Submitting as others finish keeps the scheduler's graph small: items that carry arrays
    (the simulator's bed windows, ~350 MiB for a large set) are sent a few at a time instead
    of as one large graph."""
    from dask.distributed import as_completed

    idx = sorted(range(len(items)), key=(lambda i: order(items[i])) if order else (lambda i: i))
    if in_flight is None:
        in_flight = 2 * max(sum(client.nthreads().values()), 1)
    queue = iter(idx)
    where: dict[str, int] = {}

    def submit(n: int) -> list[Any]:
        futures = []
        for i in itertools.islice(queue, n):
            fut = client.submit(task, items[i], pure=False)
            where[fut.key] = i
            futures.append(fut)
        return futures

    done = as_completed(submit(in_flight))
    results: list[Any] = [None] * len(items)
    for n_done, fut in enumerate(done, start=1):
        results[where.pop(fut.key)] = fut.result()
        fut.release()
        report(n_done, len(items))
        for nxt in submit(1):
            done.add(nxt)
    return results


# --------------------------------------------------------------------------------------
# the resume rule
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stored:
    """What :meth:`Checkpoint.check` found: the record and the read result, or why not."""

    record: dict[str, Any] | None = None  #: the stored record, when the result may be reused
    value: Any = None  #: what ``read`` returned for it
    why_not: str = ""  #: why a stored result was not reused ("" when reused or when none was stored)

    @property
    def reusable(self) -> bool:
        return self.record is not None


@dataclass(frozen=True)
class Checkpoint:
    """A task's result ``files`` (logical name -> path) and its JSON ``record``, keyed by ``key``."""

    record: Path
    files: Mapping[str, Path]
    key: str

    def check(self, read: Callable[[Mapping[str, Path]], Any] | None = None) -> Stored:
        """The stored result if it may be reused (see the module doc), else why not."""
        if not self.record.exists():
            return Stored()
        try:
            stored = json.loads(self.record.read_text())
        except (OSError, ValueError) as exc:
            return Stored(why_not=f"record unreadable ({self.record.name}: {type(exc).__name__})")
        if stored.get("status") != OK:
            return Stored(why_not=f"stored status {stored.get('status')!r}")
        if stored.get("key") != self.key:
            return Stored(why_not="inputs changed (another key)")
        sums = stored.get("sha256") or {}
        for path in self.files.values():
            if not path.exists():
                return Stored(why_not=f"result missing ({path.name})")
            if sums.get(path.name) != file_sha256(path):
                return Stored(why_not=f"result unreadable ({path.name}: sha256 differs from the record)")
        try:
            value = read(self.files) if read is not None else None
        except Exception as exc:  # whatever a reader raises on a bad file: recompute
            return Stored(why_not=f"result unreadable ({type(exc).__name__}: {exc})")
        return Stored(record=stored, value=value)

    def commit(self, status: str, **fields: Any) -> dict[str, Any]:
        """Write the record (last, atomically): ``fields``, status, key, the files' sha256 when ok."""
        sums = {p.name: file_sha256(p) for p in self.files.values()} if status == OK else {}
        record = {**fields, "status": status, "key": self.key, "sha256": sums}
        write_json(self.record, record)
        return record


# --------------------------------------------------------------------------------------
# a full disk
# --------------------------------------------------------------------------------------
class DiskFullError(GlacierbedError, OSError):
    """The disk holding an output folder is full; the message names the folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)
        super().__init__(f"no space left on the device holding {folder}: free some space there and rerun the "
                         f"same command; it resumes where it stopped (finished results are kept)")

    def __reduce__(self) -> tuple[Any, ...]:  # pickled by folder (Dask workers send it back)
        return type(self), (self.folder,)


_FULL = ("No space left on device", "Free disk space available is")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk is full.

    ``OSError(ENOSPC)`` from Python, and GDAL's and other libraries' wrapped messages.
    """
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
            return True
        if any(s in str(exc) for s in _FULL):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


@contextmanager
def stop_when_disk_full(folder: str | Path) -> Iterator[None]:
    """Re-raise a full disk inside the block as one :class:`DiskFullError` naming ``folder``."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(folder) from exc


__all__ = ["Checkpoint", "DiskFullError", "OK", "Stored", "execute", "is_disk_full", "stop_when_disk_full"]
