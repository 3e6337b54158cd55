"""``glacierbed simulate build|figure``: glaciers simulated on real ice-free terrain (training set)."""

from __future__ import annotations

from pathlib import Path

import typer

from glacierbed.commands.common import clean_errors, console, count_progress

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "simulated.yaml"


def register(app: typer.Typer) -> None:
    sim = typer.Typer(help="Simulate glaciers on real terrain with the shallow-ice model (training set).",
                      no_args_is_help=True)
    app.add_typer(sim, name="simulate")

    @sim.command("build")
    @clean_errors
    def build(
        out: Path = typer.Option(Path("runs/simulated.npz"), help="Output .npz (a .json summary is written beside it)."),
        config: Path = typer.Option(DEFAULT_CONFIG, help="YAML: sources (train/test ranges), filters, parameter ranges."),
        workers: int = typer.Option(1, min=1, help="Local Dask worker processes (1 = serial)."),
    ) -> None:
        """Draw windows, glaciate them (steady state, retreat), label glaciers, write one file."""
        from glacierbed.core.parallel import stop_when_disk_full
        from glacierbed.simulation.glacier_set import SimulatedSetConfig, build_simulated_set

        cfg = SimulatedSetConfig.from_yaml(config)
        with stop_when_disk_full(out.parent), count_progress("simulating batches") as progress:
            summary = build_simulated_set(cfg, out, workers, progress=progress)
        for row in summary["counts"]:
            console.print(f"{row['source']:>28} {row['split']:>5} {row['n']:5d}")
        console.print(f"{summary['n']} simulated windows in {summary['seconds']:.0f} s; dropped "
                      f"{summary['dropped_simulations']}; ice fraction median {summary['ice_fraction']['median']:.2f}")
        classes = "; ".join(f"{r['area_km2']} km² {r['median_over_va']:.2f}× ({r['glaciers']})"
                            for r in summary["thickness_for_area"])
        console.print(f"glaciers inside windows, median mean thickness over volume-area scaling's (count): {classes} "
                      "(measured GlaThiDa surveys: benchmarks/results/simulated_thickness_area.md)")

    @sim.command("figure")
    @clean_errors
    def figure(
        dataset: Path = typer.Argument(..., help="Simulated set (.npz) from `simulate build`."),
        out: Path = typer.Option(Path("simulated.png"), help="PNG to write."),
        n: int = typer.Option(6, help="Number of windows."),
        seed: int = typer.Option(0),
    ) -> None:
        """Examples: surface, bed, outlines and thickness of simulated glaciers."""
        from glacierbed.simulation.figures import simulated_examples_figure
        from glacierbed.simulation.glacier_set import SimulatedSet

        simulated_examples_figure(SimulatedSet.load(dataset), out, n, seed)
        console.print(f"wrote {out}")
