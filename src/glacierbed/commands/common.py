"""Helpers shared by the command modules."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import typer
from rich.console import Console

from glacierbed.core.errors import GlacierbedError

console = Console(stderr=True)


def clean_errors(func: Callable) -> Callable:
    """Turn a GlacierbedError into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GlacierbedError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code=2) from None

    return wrapper


@contextmanager
def count_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar (done/total, elapsed, ETA); yields the ``progress(done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextmanager
def step_progress(total: int, describe: Callable[[dict[str, Any]], str]) -> Iterator[Callable[[int, dict], None]]:
    """A training progress bar; yields ``on_step(step, row)``, ``describe(row)`` the text beside it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    cols = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*cols, console=console) as bar:
        task = bar.add_task("training", total=total, info="")
        yield lambda step, row: bar.update(task, completed=step, info=describe(row))


def register(app: typer.Typer) -> None:  # this module adds no command
    return None
