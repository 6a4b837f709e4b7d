"""Command line: ``scene2brain --help``.

Every command runs inside one error boundary (:func:`_boundary`): an error caused by the
user's input (a configuration value, a file, a folder, an image, missing weights) is
printed as one paragraph that names the culprit and what was expected, with exit status
2; failed ground-truth checks exit with 1; ``scene2brain --debug COMMAND`` shows the
traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="Model how human visual cortex responds to natural images.", no_args_is_help=True)
console = Console()

BAD_INPUT = 2  # exit status of an error in what the user gave (configuration, files, folders, options)
CHECKS_FAILED = 1  # exit status of a run whose ground-truth checks did not pass


_OPTIONS = {"debug": False}  # the global options of this invocation (set by the app's callback)


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error instead of its message.")
    ] = False,
) -> None:
    """scene2brain command line."""
    _OPTIONS["debug"] = debug
    if not debug:  # a warning is a message for the user: its category and text, not our source line
        warnings.formatwarning = _short_warning


def _short_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    return f"{category.__name__}: {message}\n"


def _debugging() -> bool:
    return _OPTIONS["debug"]


_EXPECTED = {
    FileExistsError: "something is already there; expected a folder (or nothing) at this path",
    NotADirectoryError: "part of this path is a file; expected a folder there",
    IsADirectoryError: "this is a folder; expected a file",
    PermissionError: "permission denied; expected a path you can read (and, for outputs, write)",
    FileNotFoundError: "not found; expected an existing file or folder",
}


def error_message(err: BaseException) -> str | None:
    """The one-paragraph message of an error caused by the user's input, or None for any other error (a bug).

    Input errors are the project's ``ValueError`` subclasses (configuration, dataset files,
    images), missing files, unavailable pretrained weights, and operating-system errors
    about a path (a file where a folder is expected, no permission, a full disk).
    """
    from scene2brain.features.models import WeightsUnavailableError
    from scene2brain.utils.files import is_disk_full

    if isinstance(err, OSError) and (err.filename is not None or is_disk_full(err)):
        path = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
        reason = err.strerror or str(err)
        if is_disk_full(err):
            return f"{path or 'disk'}: {reason}; free some space (finished stages are kept: rerun to resume)"
        expected = next((text for kind, text in _EXPECTED.items() if isinstance(err, kind)), None)
        if isinstance(err, FileNotFoundError) and err.errno is None:  # raised by our code, with its own message
            return str(err)
        return f"{path}: {reason}" + (f"; {expected}" if expected else "")
    if isinstance(err, ValueError | FileNotFoundError | WeightsUnavailableError):
        return str(err)
    return None


F = TypeVar("F", bound=Callable[..., Any])


def _boundary(command: F) -> F:
    """Run ``command`` so that an input error exits with status 2 and one message, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            if _debugging():
                raise
            console.print("[red]interrupted[/red]: finished stages and features are kept; rerun to resume")
            raise typer.Exit(code=130) from None
        except Exception as err:
            message = error_message(err)
            if message is None or _debugging():
                raise
            raise _fail(message) from None

    return wrapper  # type: ignore[return-value]


def _command(group: typer.Typer, *args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``group.command(...)`` with the error boundary: how every command is registered."""

    def register(function: F) -> F:
        group.command(*args, **kwargs)(_boundary(function))
        return function

    return register


@_command(app)
def version() -> None:
    """Print the installed scene2brain version."""
    from scene2brain import __version__

    console.print(__version__)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=BAD_INPUT)


def _writable(*options: tuple[str, Path | None]) -> None:
    """Exit with one message naming every option whose folder cannot be written (a file in the way, no permission)."""
    from scene2brain.utils.files import folder_problem

    problems = [p for option, path in options if path is not None and (p := folder_problem(path, option))]
    if problems:
        raise _fail("; ".join(problems))


def _print_skipped(images: Any) -> None:
    """List the image files an image source left out because they could not be read."""
    skipped = getattr(images, "skipped", None) or []
    for path, reason in skipped:
        console.print(
            f"[yellow]skipped[/yellow] {escape(str(path))}: {escape(reason)}", highlight=False, soft_wrap=True
        )
    if skipped:
        console.print(f"{len(skipped)} unreadable files skipped", highlight=False)


def _print_run(result) -> None:
    from scene2brain.results import REPORT_INDEX

    index = result.layout.report / REPORT_INDEX
    console.print(
        f"{len(result.computed)} stages computed, {len(result.skipped)} already done (in {result.seconds:.1f} s). "
        f"Results: {result.output}" + (f"  Report: {index}" if index.is_file() else "  (no report: report.enabled)"),
        highlight=False,
        soft_wrap=True,
    )


def _print_checks(checks: dict) -> None:
    """One line per ground-truth check (simulated data): PASS, FAIL, NOT RUN or DISABLED."""
    colours = {"pass": "green", "fail": "red", "not run": "red", "disabled": "yellow"}
    for subject, subject_checks in checks.items():
        for name, check in subject_checks.items():
            status = check["status"]
            console.print(
                f"[{colours[status]}]{status.upper()}[/{colours[status]}] "
                + escape(f"{subject}: {name}: {check['found']}")
            )


def _print_summary(summary, title: str) -> None:
    from rich import box

    from scene2brain.evaluation.noise_ceiling import NNACC

    several = summary["subject"].nunique() > 1
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for col in ("subject",) * several + ("ROI", "model", "best layer", "voxels", "median", "95% CI", "r", "NC"):
        table.add_column(col, no_wrap=True)
    for _, row in summary.iterrows():
        unit = "%" if row["score"] == NNACC else ""
        table.add_row(
            *[row["subject"]] * several, row["roi"], row["model"], row["layer"], str(row["n_voxels"]),
            f"{row['median']:.1f}{unit}", f"{row['ci_low']:.1f}-{row['ci_high']:.1f}", f"{row['median_r']:.2f}",
            f"{row['median_noise_ceiling']:.2f}",
        )  # fmt: skip
    console.print(table)


@_command(app)
def demo(
    out: Annotated[Path, typer.Option(help="Results folder (report in OUT/report/index.html).")] = Path(
        "scene2brain-demo"
    ),
    n_stimuli: Annotated[int, typer.Option(help="Number of stimuli (at least 60).")] = 1200,
    n_voxels: Annotated[int, typer.Option(help="Number of simulated voxels.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (stimuli, subject, folds).")] = 0,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature store folder (default: OUT/cache).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
) -> None:
    """Run the packaged demo configuration: a simulated experiment analysed end to end, with a report.

    The analysis must recover the simulation's ground truth: which feature space
    drives each ROI, and how close a linear model gets to the noise ceiling. The
    configuration is scene2brain/pipeline/configs/demo.toml; `scene2brain run` runs
    a copy of it.
    """
    from scene2brain.pipeline.demo import demo_config, run_demo
    from scene2brain.results import ALL_VOXELS

    config = demo_config(out, n_stimuli=n_stimuli, n_voxels=n_voxels, seed=seed, cache_dir=cache_dir)
    result = run_demo(config, progress=not quiet)
    summary = result.model_summary
    _print_summary(summary[summary["roi"] != ALL_VOXELS], "Per ROI: each model at its best layer (test split)")
    _print_checks(result.checks)
    _print_run(result.run)
    if not result.passed:
        raise typer.Exit(code=CHECKS_FAILED)


def _print_encoders(table) -> None:
    """Encoders x feature spaces: the median primary score per ROI (test split)."""
    from rich import box

    several = table["subject"].nunique() > 1
    wide = table.pivot_table(index=["space", "encoder"], columns="roi", values="score", aggfunc="median", sort=False)
    out = Table(title=f"Encoders: median {table['metric'].iloc[0]} per ROI (test split)", box=box.SIMPLE_HEAD)
    if several:
        out.title += ", median over subjects"
    out.add_column("space", no_wrap=True)
    out.add_column("encoder", no_wrap=True)
    for roi in wide.columns:
        out.add_column(str(roi), justify="right")
    for (space, encoder), row in wide.iterrows():
        out.add_row(space, encoder, *(f"{v:.3g}" for v in row))
    console.print(out)


class Executor(StrEnum):
    """How ``scene2brain run`` computes the stages (see scene2brain.pipeline.run.run_config)."""

    local = "local"
    dask = "dask"


def _dask_options(
    executor: str, workers: int | None, threads: int | None, memory_limit: str | None, scheduler: str | None
) -> Any:
    """The run command's Dask options (None for the local executor); exits with a message on a contradiction."""
    given = {
        "--workers": workers,
        "--threads-per-worker": threads,
        "--memory-limit": memory_limit,
        "--scheduler": scheduler,
    }
    given = [name for name, value in given.items() if value is not None]
    if executor != "dask":
        if given:
            raise _fail(f"{', '.join(given)}: options of the Dask executor; add --executor dask")
        return None
    from scene2brain.pipeline.dask_executor import DaskOptions, require_distributed

    try:
        require_distributed()
    except ImportError as err:
        raise _fail(f"--executor dask: {err}") from None
    if scheduler is not None and (threads is not None or memory_limit is not None):
        local = [name for name in ("--threads-per-worker", "--memory-limit") if name in given]
        raise _fail(
            f"{', '.join(local)} with --scheduler {scheduler}: the workers of an existing cluster are set up by "
            "that cluster; these options are for the local cluster started without --scheduler"
        )
    options: dict[str, Any] = {"workers": workers, "scheduler": scheduler}
    if threads is not None:
        options["threads_per_worker"] = threads
    if memory_limit is not None:
        options["memory_limit"] = memory_limit
    return DaskOptions(**options)


def _stage_failure(err: BaseException) -> str | None:
    """The message of a stage that failed on a Dask worker because of the user's input or a lost worker, or None."""
    from scene2brain.pipeline.dask_executor import StageError

    if not isinstance(err, StageError):
        return None
    cause = err.__cause__
    if cause is None or type(cause).__name__ == "KilledWorker":
        return str(err)
    message = error_message(cause)
    return None if message is None else f"stage {err.stage}: {message}"


@contextlib.contextmanager
def _local_cluster_starting(options: Any) -> Iterator[Any]:
    """A local Dask cluster started in a thread (a future of its client), closed on exit.

    Its workers import the stage modules as they start (seconds), while this process
    imports them and reads the configuration.
    """
    import threading
    from concurrent.futures import Future

    from scene2brain.pipeline.dask_executor import dask_client

    started: Future = Future()
    finished = threading.Event()

    def hold() -> None:  # the client is entered and left in one thread (it keeps context variables)
        try:
            with dask_client(options) as client:
                started.set_result(client)
                finished.wait()
        except BaseException as err:
            if not started.done():
                started.set_exception(err)

    thread = threading.Thread(target=hold, name="scene2brain Dask cluster", daemon=True)
    thread.start()
    try:
        yield started
    finally:
        finished.set()
        thread.join()


def _run_config(config: Path, out: Path | None, quiet: bool, dask_options: Any, starting: Any) -> Any:
    """The run command's run_config; ``starting``: the future client of a local cluster being started, or None."""
    from scene2brain.pipeline.config import load_config, packaged_configs
    from scene2brain.pipeline.run import run_config

    if not config.exists() and config.parent == Path() and config.stem in packaged_configs():
        config = packaged_configs()[config.stem]
        console.print(f"Running the packaged configuration {config}", highlight=False, soft_wrap=True)
    overrides = {"run": {"output": str(out.resolve())}} if out is not None else None
    loaded = load_config(config, overrides)  # configuration errors before waiting for a cluster
    try:
        if starting is not None:
            return run_config(loaded, progress=not quiet, executor="dask", client=starting.result())
        executor = "local" if dask_options is None else "dask"
        return run_config(loaded, progress=not quiet, executor=executor, dask_options=dask_options)
    except Exception as err:
        message = _stage_failure(err)
        if message is None or _debugging():
            raise
        raise _fail(message) from None


@_command(app)
def run(
    config: Annotated[
        Path,
        typer.Argument(help="Run configuration (TOML), or the name of a packaged one: demo.toml, encoders.toml."),
    ],
    out: Annotated[Path | None, typer.Option(help="Results folder (default: run.output of the configuration).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
    executor: Annotated[
        Executor,
        typer.Option(
            help="local: one stage after another in this process; dask: independent stages in parallel on a Dask "
            'cluster (pip install "scene2brain\\[dask]").',
        ),
    ] = Executor.local,
    workers: Annotated[
        int | None,
        typer.Option(help="Dask: worker processes of the local cluster (default: cores / --threads-per-worker)."),
    ] = None,
    threads_per_worker: Annotated[
        int | None,
        typer.Option(
            help="Dask: threads of each local worker, one BLAS thread each (default: 1 with --workers, else one "
            "worker with a thread per core, so that a network's extraction uses every core)."
        ),
    ] = None,
    memory_limit: Annotated[
        str | None, typer.Option(help="Dask: memory limit of each local worker (4GB, auto, 0 = none; default auto).")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask: address of a running scheduler (tcp://host:8786) instead of a local cluster."),
    ] = None,
) -> None:
    """Run a configuration stage by stage; finished stages whose settings are unchanged are skipped.

    Writes the results folder: config.toml, provenance.json, run.json, tables/
    (parquet + CSV), report/ (index.html, figures as PNG and SVG) and stages/. A bare
    file name that is not in the current folder but names a configuration shipped with
    scene2brain (scene2brain/pipeline/configs/) runs that one. With --executor dask,
    independent stages run in parallel on a local Dask cluster or, with --scheduler, on
    a running one (SLURM, Kubernetes); the results are the same.
    """
    dask_options = _dask_options(executor.value, workers, threads_per_worker, memory_limit, scheduler)
    with contextlib.ExitStack() as stack:
        starting = None
        if dask_options is not None and dask_options.scheduler is None:
            starting = stack.enter_context(_local_cluster_starting(dask_options))
        result = _run_config(config, out, quiet, dask_options, starting)
    from scene2brain.pipeline.analyses.ground_truth import checks_passed
    from scene2brain.results import ALL_VOXELS, ENCODERS_TABLE, MODEL_SUMMARY, read_results

    results = read_results(result.output)
    summary = results.table(MODEL_SUMMARY)
    _print_summary(summary[summary["roi"] == ALL_VOXELS], "All voxels: each model at its best layer")
    if results.has_table(ENCODERS_TABLE):
        _print_encoders(results.table(ENCODERS_TABLE))
    _print_checks(results.checks)
    _print_run(result)
    if results.checks and not checks_passed(results.checks):
        raise typer.Exit(code=CHECKS_FAILED)


@_command(app)
def report(
    results: Annotated[Path, typer.Argument(help="Results folder written by `scene2brain run`.")],
    out: Annotated[Path | None, typer.Option(help="Report folder (default: RESULTS/report).")] = None,
) -> None:
    """Write the HTML report of a results folder (figures embedded; PNG and SVG beside it)."""
    from scene2brain.pipeline.report import write_run_report

    index = write_run_report(results, out)
    console.print(f"Report: {index.resolve()}", highlight=False, soft_wrap=True)


@_command(app)
def encoders() -> None:
    """List the encoders a run configuration can name ([encoder] model, [[encoders]] model) and their options."""
    from scene2brain.encoding.registry import ENCODERS

    table = Table(title="Encoders")
    for col in ("model", "what", "options"):
        table.add_column(col, overflow="fold")
    for info in ENCODERS.values():
        table.add_row(info.name, info.description, ", ".join(info.options()))
    console.print(table)


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


@_command(datasets_app, "check")
def datasets_check(
    name: Annotated[str, typer.Argument(help="Dataset name (see `scene2brain datasets`).")],
    path: Annotated[Path, typer.Argument(help="Root folder of your copy.")],
    subject: Annotated[int | None, typer.Option(help="Subject number (default: the first).")] = None,
) -> None:
    """Report which files of a local copy are missing or malformed (exit code 1 if any)."""
    from scene2brain.data.datasets.registry import check_dataset

    report = check_dataset(name, path, subject)
    bad = [c for c in report if not c.ok]
    for c in bad:
        console.print(f"[red]{c.status}[/red] {path / c.path}", soft_wrap=True)
    for c in report:
        if c.note:
            console.print(f"[yellow]note[/yellow] {path / c.path}: {c.note}", soft_wrap=True)
    if any("NaN" in c.note for c in report):
        console.print(
            "The loaders refuse NaN responses by default (nan_policy='raise'): in a run configuration set "
            '[dataset] options = {nan_policy = "drop"} (or "allow").',
            soft_wrap=True,
        )
    console.print(f"{len(report) - len(bad)} of {len(report)} expected files ok in {path}", soft_wrap=True)
    if bad:
        raise typer.Exit(code=1)


@_command(datasets_app, "fetch")
def datasets_fetch(
    name: Annotated[str, typer.Argument(help="kay2008-nma, things-fmri, bold5000 or coco.")],
    home: Annotated[
        Path | None, typer.Option(help="Data home (default: $SCENE2BRAIN_DATA or ~/scene2brain_data).")
    ] = None,
) -> None:
    """Download a public dataset into the data home; files already there (also copied by hand) are verified and kept."""
    import sys

    from scene2brain.data.datasets import DATASETS, PUBLIC_DATASETS, fetch_dataset

    if name not in PUBLIC_DATASETS:
        how = f"; {DATASETS[name].obtain}" if name in DATASETS else ""
        raise _fail(f"{name!r} cannot be fetched: expected one of {sorted(PUBLIC_DATASETS)}{how}")
    fetched = fetch_dataset(name, home, progress=sys.stderr.isatty())
    console.print(f"{name} is in {fetched.root}", highlight=False, soft_wrap=True)
    if fetched.images is not None:
        console.print(f"images: {fetched.images}", highlight=False, soft_wrap=True)
    console.print(f"load it with {DATASETS[name].loader}({str(fetched.root)!r})", highlight=False, soft_wrap=True)


simulate_app = typer.Typer(help="Simulated experiments: plan a study on your stimuli.")
app.add_typer(simulate_app, name="simulate")


def _numbers(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option}: expected comma-separated whole numbers, got {text!r}") from None
    if not values:
        raise typer.BadParameter(f"{option}: expected at least one number, got {text!r}")
    return values


@_command(simulate_app, "plan")
def simulate_plan(
    out: Annotated[Path, typer.Option(help="Folder for plan.csv/.parquet and plan.png/.svg.")] = Path("plan"),
    stimuli: Annotated[
        Path | None, typer.Option(help="Your images: a folder or file.h5[:dataset] (default: bundled photographs).")
    ] = None,
    n_stimuli: Annotated[int, typer.Option(help="Bundled photographs only: number of stimuli.")] = 1200,
    n_test: Annotated[int | None, typer.Option(help="Test images (default: one sixth).")] = None,
    n_train: Annotated[str, typer.Option(help="Numbers of training images, comma-separated.")] = "100,200,400,800",
    repeats: Annotated[str, typer.Option(help="Numbers of test repeats, comma-separated.")] = "1,2,3,5",
    n_voxels: Annotated[int, typer.Option(help="Voxels per simulated subject.")] = 600,
    seed: Annotated[int, typer.Option(help="Random seed (split, subjects, folds).")] = 0,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature store folder (default: OUT/cache).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
) -> None:
    """How the noise ceiling, encoding accuracy and identification improve with training images and test repeats.

    Simulates a subject (the demo's ROIs and SNR laws) on the stimulus set for every
    combination, analyses it like real data and compares with the simulation's truth.
    """
    from scene2brain.data.images import as_image_source
    from scene2brain.data.simulate import make_stimuli, stimuli_from_images
    from scene2brain.features.store import FeatureStore
    from scene2brain.pipeline.planning import check_plan, plan_experiment, simulation_drivers
    from scene2brain.report.html import save_figure
    from scene2brain.results import write_table
    from scene2brain.viz.figures import figure_simulation_plan

    sizes, counts = _numbers(n_train, "--n-train"), _numbers(repeats, "--repeats")
    _writable(("--out", out), ("--cache-dir", cache_dir))
    if stimuli is None:
        images, splits = make_stimuli(n_stimuli, n_test=n_test, seed=seed)
    else:
        source = as_image_source(str(stimuli))
        images, splits = stimuli_from_images(source, source.names(), n_test=n_test, seed=seed)
    check_plan(splits, sizes, counts)  # before the (slow) feature extraction
    out.mkdir(parents=True, exist_ok=True)
    store = FeatureStore(cache_dir or out / "cache")
    drivers = simulation_drivers(images, splits["train"], store, seed=seed, progress=not quiet)
    plan = plan_experiment(images, splits, drivers, sizes, counts, n_voxels=n_voxels, seed=seed)
    write_table(plan, out, "plan")
    save_figure(figure_simulation_plan(plan), out, "plan")
    table = Table(title=f"Simulated plan: {len(images)} stimuli, {len(splits['test'])} test images (all voxels)")
    for col in ("training images", "test repeats", "NC error", "r^2 / NC", "identification"):
        table.add_column(col, no_wrap=True)
    for _, row in plan[plan["roi"] == "all"].iterrows():
        table.add_row(
            str(row["n_train"]), str(row["test_repeats"]), f"{row['nc_median_abs_error']:.3f}",
            f"{row['fraction_of_ceiling']:.2f}", f"{row['identification']:.0%} (chance {row['chance']:.1%})",
        )  # fmt: skip
    console.print(table)
    console.print(f"Plan: {out / 'plan.csv'}  Figure: {out / 'plan.png'}", highlight=False, soft_wrap=True)


features_app = typer.Typer(help="Feature models and their layers.")
app.add_typer(features_app, name="features")


@features_app.callback(invoke_without_command=True)
def features_models(ctx: typer.Context) -> None:
    """List the model names `scene2brain extract --model` accepts."""
    if ctx.invoked_subcommand is not None:
        return
    from scene2brain.features.models import available_models, torchvision_models

    torchvision_names = set(torchvision_models())
    registered = [name for name in available_models() if name not in torchvision_names]
    console.print("Registered: " + ", ".join(registered))
    console.print("torchvision: " + ", ".join(sorted(torchvision_names)), soft_wrap=True)
    console.print("Layers of a model: scene2brain features layers MODEL")


@_command(features_app, "layers")
def features_layers(
    model: Annotated[str, typer.Argument(help="Model name (see `scene2brain features`).")],
    contains: Annotated[str | None, typer.Option(help="Only layers whose name contains this text.")] = None,
) -> None:
    """List a model's extractable layers with their output shapes (one image, random weights)."""
    from scene2brain.features.layers import list_layers
    from scene2brain.features.models import load_model

    table = list_layers(load_model(model, weights="random"))
    if contains:
        table = table[table["layer"].str.contains(contains, regex=False)]
    out = Table(title=f"{model}: {len(table)} layers")
    for col in ("layer", "module", "output shape"):
        out.add_column(col)
    for row in table.itertuples():
        out.add_row(row.layer, row.module, " x ".join(map(str, row.shape)))
    console.print(out)


@_command(app)
def extract(
    stimuli: Annotated[str, typer.Option(help="Image folder, FILE.hdf5[:dataset] or .npy array (n, H, W[, 3]).")],
    out: Annotated[Path, typer.Option(help="Feature store folder (reused: finished layers are not recomputed).")],
    model: Annotated[str, typer.Option(help="Model name (see `scene2brain features`).")] = "efficientnet-lite0",
    layers: Annotated[str, typer.Option(help="Comma-separated layer names.")] = "head",
    pool: Annotated[str, typer.Option(help="flatten, avg, max, adaptiveK, cls or mean_token.")] = "avg",
    weights: Annotated[str, typer.Option(help="pretrained, random, or a weights file.")] = "pretrained",
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 32,
    device: Annotated[str, typer.Option(help="Torch device: cpu, cuda, cuda:1, ...")] = "cpu",
    amp: Annotated[bool, typer.Option(help="Mixed precision on CUDA.")] = False,
    blur: Annotated[float, typer.Option(help="Gaussian blur sigma in stimulus pixels (0: none).")] = 0.0,
    retina: Annotated[
        bool,
        typer.Option(
            help="Retina-warp each image straight to the model's input size (after --blur); the warp replaces "
            "the model's resize and centre crop, so its whole field of view reaches the network."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    skip_unreadable: Annotated[
        bool,
        typer.Option(
            help="Image folders: leave out files that cannot be read as images (listed) instead of stopping at "
            "the first."
        ),
    ] = False,
) -> None:
    """Extract features of several layers in one pass per batch into a resumable feature store."""
    from scene2brain.data.images import as_image_source
    from scene2brain.features.extraction import extract_to_store
    from scene2brain.features.layers import check_pooling
    from scene2brain.features.models import LazyModel, NoPreprocessingError
    from scene2brain.features.preprocessing import GaussianBlur
    from scene2brain.features.retina import RetinaWarp
    from scene2brain.features.store import FeatureStore
    from scene2brain.utils.training import torch_device

    names = [name.strip() for name in layers.split(",") if name.strip()]
    if not names:
        raise _fail(f"--layers: expected comma-separated layer names, got {layers!r}")
    try:
        check_pooling(pool)
    except ValueError as err:
        raise _fail(f"--pool: {err}") from None
    _writable(("--out", out))
    try:
        torch_device(device)
    except ValueError as err:
        raise _fail(f"--{err}") from None
    images = as_image_source(stimuli, skip_unreadable=True) if skip_unreadable else as_image_source(stimuli)
    _print_skipped(images)
    store = FeatureStore(out)
    # built only if some layer is not in the store yet; until then its key is the one the store recorded
    feature_model = LazyModel(model, weights, memo=store.memo())
    if blur or retina:
        try:
            preprocessing = feature_model.preprocessing
        except NoPreprocessingError as err:
            raise _fail(f"--{'blur' if blur else 'retina'}: {err}") from None
        steps = ([GaussianBlur(blur)] if blur else []) + ([RetinaWarp(preprocessing.size)] if retina else [])
        # with_steps turns the model's resize + centre crop off after the warp (resize=None)
        feature_model = feature_model.with_preprocessing(preprocessing.with_steps(*steps))
    entries, computed = extract_to_store(
        images, feature_model, names, pool, store, batch_size=batch_size, device=device, amp=amp,
        progress=not quiet,
    )  # fmt: skip
    result = {layer: entry.read(lazy=True) for layer, entry in entries.items()}
    table = Table(
        title=f"{feature_model.name} features of {next(iter(result.values())).shape[0]} images ({pool} pooling)"
    )
    for col in ("layer", "shape", "status", "zarr array"):
        table.add_column(col, overflow="fold")
    for layer, array in result.items():
        status = "computed" if layer in computed else "cached"
        table.add_row(layer, " x ".join(map(str, array.shape)), status, str(entries[layer].array_path))
    console.print(table)
    console.print("Read with zarr.open_array(PATH)[:]; each entry's key.json says what it holds.")
