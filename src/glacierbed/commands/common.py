"""Helpers shared by the command modules: one-line errors, one progress bar, explicit options."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape

from glacierbed.core.errors import GlacierbedError
from glacierbed.core.parallel import DiskFullError, is_disk_full

if TYPE_CHECKING:
    import pandas as pd

console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` on one line (never wrapped) and exit with ``code``."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=code)


def clean_errors(func: Callable) -> Callable:
    """Turn a GlacierbedError, a path that cannot be written or read as asked (``--out`` naming a file, no
    permission) or a full disk into a one-line message and exit code 2 (no traceback).

    A full disk that no stage named (an ``OSError(ENOSPC)`` from anywhere) is reported with
    the folder of the file being written.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GlacierbedError as exc:
            fail(str(exc))
        except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
            # a path the user gave cannot be written or read as asked (--out naming a file, a read-only folder)
            fail(f"{exc.filename}: {exc.strerror.lower() if exc.strerror else exc}")
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            where = Path(getattr(exc, "filename", None) or Path.cwd())
            fail(str(DiskFullError(where if where.is_dir() else where.parent)))

    return wrapper


@contextmanager
def progress_bar(label: str, total: int | None = None,
                 describe: Callable[[Any], str] | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar (label, bar, done/total, elapsed, ETA, and ``describe(info)`` beside it).

    Yields ``update(done, total=None, info=None)``: the count done, the total when it is
    known only later, and what ``describe`` turns into the text beside the bar.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*cols, console=console) as bar:
        task = bar.add_task(label, total=total, info="")

        def update(done: int, total: int | None = None, info: Any = None) -> None:
            fields = {"info": describe(info)} if describe is not None and info is not None else {}
            bar.update(task, completed=done, **({"total": total} if total is not None else {}), **fields)

        yield update


@contextmanager
def count_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """:func:`progress_bar` for ``progress(done, total)`` callbacks (glaciers, batches)."""
    with progress_bar(label) as update:
        yield lambda done, total: update(done, total)


@contextmanager
def step_progress(total: int, describe: Callable[[dict[str, Any]], str]) -> Iterator[Callable[[int, dict], None]]:
    """:func:`progress_bar` for training: yields ``on_step(step, row)``, ``describe(row)`` beside it."""
    with progress_bar("training", total, describe) as update:
        yield lambda step, row: update(step, info=row)


def explicit_options(ctx: typer.Context, **values: Any) -> dict[str, Any]:
    """The ``values`` whose options were given (command line or environment), not defaulted.

    The one override route of the commands: a ``--config`` file first, then these on top,
    booleans included (``--calibrate`` overrides ``calibrate: false``).
    """
    given = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")  # by name: typer ships its own copy of click's enum
    return {k: v for k, v in values.items() if getattr(ctx.get_parameter_source(k), "name", None) in given}


def register(app: typer.Typer) -> None:  # this module adds no command
    return None


#: the metrics a terminal shows (the files keep every column)
SUMMARY_COLUMNS = ("method", "rgi_id", "status", "n", "rmse", "mae", "bias", "r", "mean_obs", "mean_pred")


def print_metrics(metrics: "pd.DataFrame", columns: tuple[str, ...] = SUMMARY_COLUMNS) -> None:
    """A metrics table as a terminal-width rich table: the columns of ``columns`` it has, numbers to 3
    significant digits (whole numbers from 1,000 up), a status longer than a word cut to its first clause
    and given in full below the table (the files keep every column)."""
    from rich.table import Table

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "–" if v != v else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
        return escape(str(v))

    table = Table(show_edge=False, pad_edge=False)
    shown = [c for c in columns if c in metrics.columns]
    for c in shown:
        table.add_column(c, justify="left" if c in ("method", "rgi_id", "status") else "right", overflow="fold")
    notes: dict[str, int] = {}
    for _, row in metrics.iterrows():
        cells = []
        for c in shown:
            v = row[c]
            if c == "status" and isinstance(v, str) and len(v) > 24:
                v = f"{v.split(':')[0]} [{notes.setdefault(v, len(notes) + 1)}]"
            cells.append(cell(v))
        table.add_row(*cells)
    console.print(table)
    for text, k in notes.items():
        console.print(f"[{k}] {escape(text)}", soft_wrap=True)
