"""Helpers shared by the command modules."""

from __future__ import annotations

import functools
from typing import Callable

import typer
from rich.console import Console

from glacierbed.errors import GlacierbedError

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


def register(app: typer.Typer) -> None:  # this module adds no command
    return None
