"""Atomic file writes: write ``<name>.tmp`` beside the target, then rename it; and reading back the arrays written.

An existing output file is therefore always complete, which is what lets an interrupted
run resume by looking at which files exist. :func:`read_npz` opens such an array file with errors that name it.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from glacierbed.core.errors import CorruptFileError, DataNotFoundError


@contextmanager
def replacing(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    ``keep_suffix`` names it ``<stem>.tmp<suffix>`` for writers that need the extension
    (GDAL's GeoPackage driver, ``numpy.savez``); otherwise ``<name>.tmp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}" if keep_suffix else f"{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def write_bytes(path: str | Path, payload: bytes) -> Path:
    with replacing(path) as tmp:
        tmp.write_bytes(payload)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def write_json(path: str | Path, obj: Any) -> Path:
    """JSON (indented) with numpy scalars/arrays and paths converted."""
    return write_text(path, json.dumps(obj, indent=2, default=_json_default))


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB chunks): identifies weights, DEMs, inputs."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def read_npz(path: str | Path, what: str) -> Iterator[Any]:
    """``numpy.load`` of an ``.npz`` (no pickles) whose failures name the file and ``what`` it should hold: missing,
    not an npz archive (truncated, another format), or lacking an array the reader asks for."""
    import zipfile

    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"{path}: {what} not found")
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:  # numpy's word for a file that is no archive: "contains pickled (object) data"
        raise CorruptFileError(f"{path}: cannot be read as a {what}: not a NumPy .npz archive") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"{path}: cannot be read as a {what} ({exc})") from exc
    with archive:
        try:
            yield archive
        except KeyError as exc:
            raise CorruptFileError(f"{path}: not a {what}: {exc.args[0] if exc.args else exc}") from exc
