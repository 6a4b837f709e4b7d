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


datasets_app = typer.Typer(help="Supported datasets: what they need, where to get them, checks of local copies.")
app.add_typer(datasets_app, name="datasets")


@datasets_app.callback(invoke_without_command=True)
def datasets_list(ctx: typer.Context) -> None:
    """List the supported datasets (run a subcommand to check or fetch one)."""
    if ctx.invoked_subcommand is not None:
        return
    from scene2brain.data.datasets.registry import DATASETS

    table = Table(title="Supported datasets")
    for col in ("name", "what", "how to obtain", "loader"):
        table.add_column(col, overflow="fold")
    for info in DATASETS.values():
        table.add_row(info.name, info.description, info.obtain, info.loader)
    console.print(table)
    console.print("Check a local copy: scene2brain datasets check NAME PATH [--subject N]")


@datasets_app.command("check")
def datasets_check(
    name: Annotated[str, typer.Argument(help="Dataset name (see `scene2brain datasets`).")],
    path: Annotated[Path, typer.Argument(help="Root folder of your copy.")],
    subject: Annotated[int | None, typer.Option(help="Subject number (default: the first).")] = None,
) -> None:
    """Report which files of a local copy are missing or malformed (exit code 1 if any)."""
    from scene2brain.data.datasets.registry import check_dataset

    try:
        report = check_dataset(name, path, subject)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    bad = [(rel, status) for rel, status in report if status != "ok"]
    for rel, status in bad:
        console.print(f"[red]{status}[/red] {path / rel}", soft_wrap=True)
    console.print(f"{len(report) - len(bad)} of {len(report)} expected files ok in {path}", soft_wrap=True)
    if bad:
        raise typer.Exit(code=1)


@datasets_app.command("fetch")
def datasets_fetch(
    name: Annotated[str, typer.Argument(help="A dataset public without registration: kay2008-nma.")],
    home: Annotated[
        Path | None, typer.Option(help="Data home [default: $SCENE2BRAIN_DATA or ~/scene2brain_data].")
    ] = None,
) -> None:
    """Download a public dataset into the data home (files already there are kept and verified)."""
    from scene2brain.data.datasets.registry import fetch_kay2008_nma

    if name != "kay2008-nma":
        raise typer.BadParameter(f"only kay2008-nma can be fetched; {name!r} needs registration or a manual download")
    console.print(f"Files in {fetch_kay2008_nma(home)}")
