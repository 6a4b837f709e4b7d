"""Command line: ``scene2brain --help``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Model how human visual cortex responds to natural images.", no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """scene2brain command line."""


@app.command()
def version() -> None:
    """Print the installed scene2brain version."""
    from scene2brain import __version__

    console.print(__version__)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("scene2brain-demo"),
    n_stimuli: Annotated[int, typer.Option(help="Number of stimuli (at least 60).")] = 1200,
    n_voxels: Annotated[int, typer.Option(help="Number of simulated voxels.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (stimuli, subject, folds).")] = 0,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature cache folder [default: OUT/cache].")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
) -> None:
    """Simulate an fMRI experiment from bundled photographs, analyse it end to end, write a report.

    The analysis must recover the simulation's ground truth: which feature space
    drives each ROI, and how close a linear model gets to the noise ceiling.
    """
    from scene2brain.pipeline.demo import DemoSettings, run_demo

    try:
        settings = DemoSettings(n_stimuli=n_stimuli, n_voxels=n_voxels, seed=seed, progress=not quiet)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    result = run_demo(out, settings, cache_dir=cache_dir)

    table = Table(title="Per-ROI summary (test split)")
    for col in ("ROI", "voxels", "best feature space", "median r", "median NN-acc %", "NC est.", "NC true"):
        table.add_column(col)
    for _, row in result.roi_summary.iterrows():
        table.add_row(
            row["roi"], str(row["n_voxels"]), row["best_space"], f"{row['median_r']:.3f}",
            f"{row['median_nnacc']:.1f}", f"{row['nc_estimated']:.3f}", f"{row['nc_true']:.3f}",
        )  # fmt: skip
    console.print(table)
    for name, check in result.checks.items():
        mark = "[green]PASS[/green]" if check["passed"] else "[red]FAIL[/red]"
        console.print(f"{mark} {name}: {check['found']}")
    console.print(f"Finished in {result.timings['total']:.1f} s. Report: {(result.out_dir / 'index.html').resolve()}")
    if not all(c["passed"] for c in result.checks.values()):
        raise typer.Exit(code=1)
