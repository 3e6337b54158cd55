"""``glacierbed region build``: a region of simulated glaciers with a known bed (DEM + outlines + truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from glacierbed.commands.common import clean_errors, console, count_progress, explicit_options


def register(app: typer.Typer) -> None:
    reg = typer.Typer(help="Regions of simulated glaciers on real terrain, with the bed known (benchmarks).",
                      no_args_is_help=True)
    app.add_typer(reg, name="region")

    @reg.command("build")
    @clean_errors
    def build(
        ctx: typer.Context,
        out: Path = typer.Option(..., "--out", help="Output folder (dem.tif, outlines.gpkg, bed.tif, thickness.tif, "
                                                     "truth.csv, region.json)."),
        tile: Optional[list[str]] = typer.Option(None, "--tile", help="Alpine tile name (jura, linth, lyon, rhine, "
                                                                      "ticino) or DEM path; repeat; default: all five."),
        config: Optional[Path] = typer.Option(None, help="YAML of RegionConfig fields (block, ranges, simulation, ...)."),
        block: Optional[int] = typer.Option(None, help="Block side in pixels (overrides the config)."),
        seed: Optional[int] = typer.Option(None, help="Random seed (overrides the config)."),
        min_relief: Optional[float] = typer.Option(None, "--min-relief", help="Skip flatter blocks (m)."),
        min_basin_km2: Optional[float] = typer.Option(None, "--min-basin-km2", help="Smallest glacier (km2)."),
        workers: int = typer.Option(1, min=1, help="Local Dask worker processes for the simulations (1 = serial)."),
    ) -> None:
        """Cut the tiles into blocks, glaciate each with the shallow-ice model, write the region; resumes."""
        from glacierbed.core.config import load_config
        from glacierbed.simulation.synthetic_region import ALPS_TILES, RegionConfig, build_region, resolve_tiles

        given = explicit_options(ctx, block=block, seed=seed, min_relief=min_relief, min_basin_km2=min_basin_km2)
        cfg = load_config(RegionConfig, config, **{"min_relief_m" if k == "min_relief" else k: v
                                                   for k, v in given.items()})
        tiles = resolve_tiles(tile or ALPS_TILES)
        with count_progress("simulating block batches") as progress:
            res = build_region(tiles, out, cfg, workers=workers, progress=progress)
        s = res.summary
        sizes = s["size_distribution"]
        console.print(f"{s['n_glaciers']} glaciers ({', '.join(f'{k} {v}' for k, v in s['glaciers_per_tile'].items())}) "
                      f"in {s['blocks']['simulated']} blocks; {s['glacier_area_km2']:.0f} km2 of ice, "
                      f"{s['volume_km3']:.1f} km3; area median {sizes['p50']:.2f} km2, max {sizes['max_km2']:.1f} km2; "
                      f"{s['seconds']:.0f} s ({s['blocks']['batches_resumed']} of {s['blocks']['batches']} batches "
                      f"resumed)")
        console.print(f"wrote {res.out_dir}/{{dem,bed,thickness}}.tif, outlines.gpkg, truth.csv, region.json")
