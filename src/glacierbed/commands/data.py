"""``glacierbed data list`` and ``glacierbed data fetch NAME``: the data registry on the command line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from glacierbed.commands.common import clean_errors

#: piped or redirected output is not cut to 80 columns (rich's default without a terminal): a long path or name
#: would fold over lines; at a terminal the table fits its width
out = Console(width=None if sys.stdout.isatty() else 200)


def list_data() -> None:
    """Table of named examples and datasets, and whether each is available locally."""
    from glacierbed.data import registry as reg

    dd = reg.data_dir()
    out.print(f"offline data dir: {dd or '(GLACIERBED_DATA unset)'}   cache: {reg.cache_dir()}")
    t = Table(title="Examples (glacierbed data fetch NAME)")
    # names are what a user types next: never cut, even at 80 columns (a pipe), the description folds instead
    t.add_column("name", no_wrap=True, min_width=max(map(len, reg.EXAMPLES)))
    for col in ("DEM", "outlines", "extras", "local"):
        t.add_column(col)
    t.add_column("description", overflow="fold")
    for name, e in reg.EXAMPLES.items():
        extras = ", ".join([k for k in ("glacier_mask", "observations", "consensus") if getattr(e, k)]
                           + [role for role, _ in e.extras if role == "smb"])
        t.add_row(name, f"{len(e.dem)} file(s)", "yes" if e.outlines else "-", extras or "-",
                  "[green]yes[/]" if reg.example_available(name) else "[red]no[/]", e.description)
    out.print(t)
    t = Table(title="Datasets")
    t.add_column("dataset", no_wrap=True, min_width=max(map(len, reg.DATASETS)))
    for col in ("source", "files", "local", "license"):
        t.add_column(col, overflow="fold")
    for name, ds in reg.DATASETS.items():
        files = [r for r in reg.REGISTRY if r.startswith(name + "/")]
        n_local = sum(reg.locate(r) is not None for r in files)
        t.add_row(name, ds.url or f"offline only ({ds.origin})", str(len(files)), f"{n_local}/{len(files)}", ds.license)
    out.print(t)
    out.print("Full sources (no fixed checksum): RGI 6.0 regions "
              f"{reg.rgi6_region_url(11)} ..., Copernicus GLO-30 {reg.GLO30_URL_PATTERN}")


def fetch(name: str = typer.Argument(..., help="Example name (see `glacierbed data list`) or a registry path.")) -> None:
    """Resolve an example (or one registry file) to local paths, downloading when needed."""
    from glacierbed.data import registry as reg

    if name in reg.EXAMPLES or "/" not in name:
        ex = reg.get_example(name)
        t = Table(title=f"{ex.name}: {ex.description}")
        t.add_column("role")
        t.add_column("path")
        for p in ex.dem:
            t.add_row("dem", str(p))
        for role in ("outlines", "glacier_mask", "observations", "consensus"):
            if getattr(ex, role) is not None:
                t.add_row(role, str(getattr(ex, role)))
        for role, path in ex.extras.items():  # e.g. South Glacier's SMB raster (for --smb)
            t.add_row(role, str(path))
        out.print(t)
    else:
        out.print(str(reg.get_file(name)))


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Named examples and datasets: list, fetch (offline kit, cache, download).",
                           no_args_is_help=True)
    data_app.command("list")(clean_errors(list_data))
    data_app.command("fetch")(clean_errors(fetch))
    app.add_typer(data_app, name="data")
