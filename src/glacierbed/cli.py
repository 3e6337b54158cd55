"""Command line: ``glacierbed <command>``; each stage registers its commands here."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(help="Glacier bed, ice thickness and volume from the ice surface, the outlines and ice physics.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(show_path=False)])


def _register() -> None:
    """Import each stage's command module; each adds its commands to ``app``."""
    import importlib
    import pkgutil

    import glacierbed.commands as commands

    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"glacierbed.commands.{mod}").register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point callable from tests: ``main(["dataset", "build", ...])``."""
    app(args=argv, standalone_mode=True)


if __name__ == "__main__":
    app()
