"""Execute a run configuration: plan its stage graph, compute what is missing, record what happened.

See :mod:`scene2brain.pipeline.plan` for the stages and :mod:`scene2brain.pipeline.graph`
for how they are keyed: a rerun skips finished work, and a changed setting recomputes
the stages that declare it and what reads them, nothing else. The stages run one after
another in this process, or (``executor="dask"``) in parallel on a Dask cluster
(:mod:`scene2brain.pipeline.dask_executor`), with the same results.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from scene2brain.data.datasets.registry import dataset_info
from scene2brain.data.images import image_files, image_path
from scene2brain.data.storage import load_experiment
from scene2brain.features.store import FeatureStore
from scene2brain.pipeline.analyses import ANALYSES
from scene2brain.pipeline.config import SIMULATED, ConfigError, FeatureSection, RunConfig, layer_widths
from scene2brain.pipeline.executor import StageReport, recover_folder, run_local, stage_folders
from scene2brain.pipeline.graph import Ref, Runtime, Stage, StageGraph
from scene2brain.pipeline.plan import (
    EXPERIMENT_DIR,
    Plan,
    compute_experiment,
    compute_noise_ceiling,
    compute_responses,
    split_problems,
)
from scene2brain.pipeline.report import TABLES, add_report_stage, add_tables_stage
from scene2brain.pipeline.simulated import add_simulated_experiments, driver_specs, fingerprint, read_test_names
from scene2brain.results import ALL_VOXELS, LOCK_FILE, ResultsLayout
from scene2brain.utils.files import atomic_path, folder_lock, folder_problem, free_bytes, nearest_existing, url_protocol

PACKAGES = ("scene2brain", "numpy", "scipy", "scikit-learn", "pandas", "torch", "torchvision", "nilearn", "zarr")


@dataclass
class RunResult:
    """What :func:`run_config` did.

    Attributes
    ----------
    config : RunConfig
    layout : ResultsLayout
        The results folder.
    stages : StageReport
        Names of the computed and the skipped stages, keys, folders, seconds.
    seconds : float
        Wall time of this call.
    """

    config: RunConfig
    layout: ResultsLayout
    stages: StageReport
    seconds: float

    @property
    def output(self) -> Path:
        return self.layout.root

    @property
    def computed(self) -> list[str]:
        return self.stages.computed

    @property
    def skipped(self) -> list[str]:
        return self.stages.skipped


def plan_run(config: RunConfig) -> tuple[StageGraph, Plan]:
    """The stage graph of ``config`` and the plan that built it.

    Every experiment stage (loading or simulating the data) comes before the stages that
    analyse it, so that :func:`check_data` sees every subject before that work starts.
    """
    plan = Plan(config)
    splits = config.splits.model_dump()
    if config.dataset.name == SIMULATED:
        add_simulated_experiments(plan)
    else:
        dataset = config.dataset.model_dump(mode="json", include={"name", "path", "options"})
        experiments = {
            name: plan.graph.add(
                Stage(
                    plan.experiment(name),
                    compute_experiment,
                    settings={"dataset": dataset, "subject": subject, "label": name, "splits": splits},
                )
            )
            for subject, name in zip(config.dataset.subjects, plan.subjects, strict=True)
        }
        for name, experiment in experiments.items():
            plan.set_spaces(name, {spec.name: plan.add_features(experiment, spec, name) for spec in config.features})
    for name in plan.subjects:
        experiment = Ref(plan.experiment(name))
        plan.graph.add(Stage(plan.responses(name), compute_responses, splits, {"experiment": experiment}))
        nc = {"method": config.evaluation.noise_ceiling, "test": config.splits.test, "label": name}
        plan.graph.add(Stage(plan.noise_ceiling(name), compute_noise_ceiling, nc, {"experiment": experiment}))
    needs = {analysis.name: analysis.plan(plan) for analysis in ANALYSES}
    tables = add_tables_stage(plan, {name: need for name, need in needs.items() if need is not None})
    if config.report.enabled:
        add_report_stage(plan, tables)
    return plan.graph, plan


# -- validation before any work ------------------------------------------------------------------

MARGIN = 1.25  # the disk-space estimate is rough: ask for this much more free space than it says


def _gigabytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _feature_entries(config: RunConfig) -> list[FeatureSection]:
    entries = list(config.features)
    if config.dataset.name == SIMULATED:
        entries += list(driver_specs(config))
    return entries


def estimate_bytes(config: RunConfig, n_stimuli: int, n_trials: int, n_voxels: int, n_test: int) -> dict[str, int]:
    """A rough upper estimate of the disk space a run needs: ``{"output": bytes, "cache": bytes}``.

    The feature store holds every layer's raw features (float32, width from a forward pass of
    the network on PyTorch's meta device; layers whose width cannot be found that way are
    left out); the results folder the reduced features, the experiment (responses and, for
    the simulation, the images), and per feature space the test predictions and per-voxel
    results.

    Parameters
    ----------
    config : RunConfig
    n_stimuli, n_trials, n_voxels, n_test : int
        Size of the largest subject's experiment (stimuli, trials, voxels, test stimuli).
    """
    store = results = 0
    for spec in _feature_entries(config):
        widths = layer_widths(spec.model, spec.layer_names(), spec.pooling, spec.options) or {}
        for width in widths.values():
            store += 4 * n_stimuli * width
            kept = spec.reduction.n_components if spec.reduction.n_components is not None else width
            results += 4 * n_stimuli * min(width, kept)
    n_subjects = len(config.dataset.subjects)
    experiment = 4 * n_trials * n_voxels * 2  # trials, and the repeat-averaged train/test responses
    if config.dataset.name == SIMULATED:
        size = config.dataset.simulation.image_size
        experiment += n_stimuli * size * size * 3
    per_space = 4 * n_voxels * (3 * n_test + 16)  # predictions, scores, per-voxel tables
    results += n_subjects * (experiment + per_space * len(config.spaces()))
    return {"output": int(MARGIN * results), "cache": int(MARGIN * store)}


def _space_problems(config: RunConfig, need: dict[str, int]) -> list[str]:
    """A problem per file system that lacks the estimated free space."""
    layout = ResultsLayout(config.run.output)
    cache = config.run.cache or layout.root / "cache"
    places = {"output": ("run.output", layout.root)}
    if isinstance(cache, Path):  # an object store's space is not ours to check
        places["cache"] = ("run.cache", cache)
    by_device: dict[int, tuple[int, list[str], Path]] = {}
    for what, (key, path) in places.items():
        device = os.stat(nearest_existing(path)).st_dev
        total, keys, _ = by_device.get(device, (0, [], path))
        by_device[device] = (total + need[what], [*keys, key], path)
    problems = []
    for total, keys, path in by_device.values():
        free = free_bytes(path)
        if total > free:
            problems.append(
                f"{' and '.join(dict.fromkeys(keys))}: this run needs about {_gigabytes(total)} of disk space "
                f"(estimated), but only {_gigabytes(free)} are free on the file system of {nearest_existing(path)}; "
                "free some space or choose another folder"
            )
    return problems


def _simulated_size(config: RunConfig) -> tuple[int, int, int]:
    """Stimuli, trials and test stimuli of a simulated subject (the demo's design: test stimuli shown 3 times)."""
    sim = config.dataset.simulation
    if sim.stimuli is None:
        n = sim.n_stimuli
    else:
        file, _ = image_path(sim.stimuli)
        n = len(image_files(file)) if file.is_dir() else 10_000  # an HDF5 brick: counted when read
    n_test = sim.n_test or max(1, n // 6)
    return n, n - n_test + 3 * n_test, n_test


def check_run(config: RunConfig) -> list[str]:
    """Every problem found without loading any data, each naming its key: an empty list if none.

    Checks that the output and cache folders can be written (no file in the way, write
    permission), that the dataset folder exists and the loader takes ``dataset.options``,
    that a simulation's own stimuli and test list can be read, and, for a simulation, that
    the estimated disk space is free (for a dataset, :func:`check_data` checks it once the
    data are loaded). The configuration's own values are validated when it is read
    (:func:`~scene2brain.pipeline.config.load_config`).
    """
    problems = [
        problem
        for key, path in (("run.output", config.run.output), ("run.cache", config.run.cache))
        if isinstance(path, Path) and (problem := folder_problem(path, key)) is not None
    ]
    if isinstance(config.run.cache, str):  # a URL: its file system must exist and open with the options given
        try:
            FeatureStore(config.run.cache, storage_options=config.run.cache_options or None)
        except (ImportError, ValueError, OSError) as err:
            problems.append(f"run.cache: {config.run.cache} cannot be opened: {err}")
    dataset = config.dataset
    if dataset.name == SIMULATED:
        sim = dataset.simulation
        for check, value in ((fingerprint, sim.stimuli), (read_test_names, sim.test_stimuli)):
            if value is not None:
                try:
                    check(value)
                except ConfigError as err:
                    problems.append(str(err))
    else:
        info = dataset_info(dataset.name)
        if not dataset.path.is_dir():
            what = "is a file" if dataset.path.exists() else "does not exist"
            problems.append(
                f"dataset.path: {dataset.path} {what}; expected the folder holding the {dataset.name} files"
            )
        try:
            inspect.signature(info.load).bind(dataset.path, dataset.subjects[0], **dataset.options)
        except TypeError as err:
            problems.append(f"dataset.options: {err} (options of {info.name}: {inspect.signature(info.load)})")
    if dataset.name == SIMULATED and not problems:
        n, n_trials, n_test = _simulated_size(config)
        problems += _space_problems(config, estimate_bytes(config, n, n_trials, dataset.simulation.n_voxels, n_test))
    return problems


def check_data(config: RunConfig, experiments: dict[str, Path]) -> list[str]:
    """Every problem with the loaded data that a setting causes, each naming its key: an empty list if none.

    Parameters
    ----------
    config : RunConfig
    experiments : dict
        Subject label -> saved experiment folder.

    Checks, for every subject: the splits (present, with measured responses), the noise
    ceiling's needs (repeated test stimuli, or an ``ncsnr`` column), ``dataset.roi_column``,
    the label columns and ROIs of ``[decoding]``, ``[rsa]`` and ``[sae]``; then the disk space the
    rest of the run needs.
    """
    problems: list[str] = []
    largest = (0, 0, 0, 0)
    for subject, folder in experiments.items():
        experiment = load_experiment(folder)
        problems += split_problems(experiment, config.splits.model_dump(), subject)
        voxels, table = experiment.voxels, experiment.stimuli.table
        method = config.evaluation.noise_ceiling
        if config.splits.test in experiment.splits and method != "none":
            trials = experiment.trials_in_split(config.splits.test)
            _, repeats = np.unique(experiment.responses.trial_stimulus[trials], return_counts=True)
            if method == "repeats" and repeats.size and repeats.max() < 2:
                problems.append(
                    f"evaluation.noise_ceiling: 'repeats' needs test stimuli shown at least twice; {subject}'s "
                    f"split {config.splits.test!r} has one trial per stimulus; use 'ncsnr' (voxel table column) or "
                    "'none'"
                )
            if method == "ncsnr" and "ncsnr" not in voxels:
                problems.append(
                    f"evaluation.noise_ceiling: 'ncsnr' needs an ncsnr column in {subject}'s voxel table "
                    f"(columns: {list(voxels.columns)}); use 'repeats' or 'none'"
                )
        roi_column = config.dataset.roi_column
        if roi_column not in voxels:
            problems.append(
                f"dataset.roi_column: {roi_column!r} is not a column of {subject}'s voxel table; "
                f"columns: {list(voxels.columns)}"
            )
        for i, entry in enumerate(config.encoders):
            if entry.voxel_groups is not None and entry.voxel_groups not in voxels:
                problems.append(
                    f"encoders[{i}].voxel_groups: {entry.voxel_groups!r} is not a column of {subject}'s voxel table; "
                    f"columns: {list(voxels.columns)}"
                )
        rois = set(map(str, voxels[roi_column].unique())) | {ALL_VOXELS} if roi_column in voxels else None
        for key, section in (("decoding", config.decoding), ("rsa", config.rsa), ("sae", config.sae)):
            if section is None:
                continue
            labels = section.labels if isinstance(section.labels, list) else [section.labels]
            for label in [c for c in labels if c is not None and c not in table]:
                problems.append(
                    f"{key}.labels: {label!r} is not a column of {subject}'s stimulus table; "
                    f"columns: {list(table.columns)}"
                )
            unknown = [r for r in section.rois or [] if rois is not None and r not in rois]
            if unknown:
                problems.append(
                    f"{key}.rois: {unknown} are not ROIs of {roi_column!r} in {subject}; found {sorted(rois)}"
                )
        n_test = len(experiment.splits.get(config.splits.test, []))
        size = (len(experiment.stimuli), experiment.responses.n_trials, experiment.responses.n_voxels, n_test)
        largest = max(largest, size)
    if not problems and config.dataset.name != SIMULATED:
        problems += _space_problems(config, estimate_bytes(config, *largest))
    return problems


def _raise_problems(problems: list[str], source: str) -> None:
    if problems:
        raise ConfigError(f"{source}: cannot run:\n  " + "\n  ".join(problems))


def versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


EXECUTORS = ("local", "dask")


def _dask_options(executor: str, dask_options: Any, client: Any) -> Any:
    """The validated :class:`~scene2brain.pipeline.dask_executor.DaskOptions` of a run (None for the local executor)."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor: expected one of {', '.join(map(repr, EXECUTORS))}, got {executor!r}")
    if executor == "local":
        if dask_options is not None or client is not None:
            given = "dask_options" if dask_options is not None else "client"
            raise ValueError(f"{given} is for the Dask executor: pass executor='dask' with it")
        return None
    from scene2brain.pipeline.dask_executor import DaskOptions

    if dask_options is None:
        return DaskOptions()
    if isinstance(dask_options, DaskOptions):
        options = dask_options
    elif isinstance(dask_options, dict):
        try:
            options = DaskOptions(**dask_options)
        except TypeError as err:
            raise ValueError(f"dask_options: {err}; expected the fields of DaskOptions") from None
    else:
        raise TypeError(f"dask_options: expected a DaskOptions or a dict, got {type(dask_options).__name__}")
    if client is not None and (options.scheduler is not None or options.workers is not None):
        raise ValueError("client: a run uses the given client's cluster; do not also give a scheduler or workers")
    return options


@contextlib.contextmanager
def _executor(options: Any, client: Any, log: Callable[[str], None] | None) -> Iterator[Callable[..., StageReport]]:
    """The executor of a run: :func:`run_local`, or :func:`run_dask` on ``client`` or on a cluster started for it."""
    if options is None:
        yield run_local
        return
    from scene2brain.pipeline.dask_executor import dask_client, describe_client, run_dask

    with contextlib.nullcontext(client) if client is not None else dask_client(options) as dask:
        if log is not None:
            log(describe_client(dask))
        yield functools.partial(run_dask, client=dask, retries=options.retries)


def run_config(
    config: RunConfig,
    progress: bool = True,
    *,
    executor: str = "local",
    dask_options: Any = None,
    client: Any = None,
) -> RunResult:
    """Run every stage of ``config`` that is not already done; write the results folder.

    The folder (``config.run.output``) holds ``config.toml`` (the resolved
    configuration), ``run.json`` (versions, what this run computed and skipped),
    ``tables/`` (per-voxel and per-ROI/layer/model results, parquet + CSV),
    ``report/`` (index.html with figures as PNG and SVG) and ``stages/`` (every
    stage's arrays as .npy, the experiments as zarr + parquet).

    Everything that can be checked is checked before any work: the configuration's values
    (when it was read), the folders and disk space (:func:`check_run`), and, once the data
    are loaded and before anything reads them, what the settings need of the data
    (:func:`check_data`); each check reports every problem it finds at once.

    A failed run changes nothing: ``config.toml`` and ``provenance.json`` are written once
    the tables are (the report reads them) and put back if a later stage fails, ``run.json``
    when every stage has succeeded, and finished stages it recomputed are put back
    as they were. One run at a time writes a results folder (a second waits for the first);
    what a killed run left (temporary folders, stages it had moved aside) is undone first.

    Parameters
    ----------
    config : RunConfig
    progress : bool
        Print a line per stage (and, for Dask, the cluster and its dashboard address).
    executor : {"local", "dask"}
        ``"local"`` computes the stages one after another in this process; ``"dask"``
        computes independent stages in parallel on a Dask cluster
        (:mod:`scene2brain.pipeline.dask_executor`). Both give the same results.
    dask_options : DaskOptions or dict, optional
        The Dask cluster: a local one started for the run (workers, threads per worker,
        memory limit) or an existing scheduler's address; see
        :class:`~scene2brain.pipeline.dask_executor.DaskOptions`.
    client : distributed.Client, optional
        Run on this client's cluster instead (left open).

    Raises
    ------
    ConfigError
        A setting that cannot work; the message names every such key.
    DaskSetupError
        A Dask option out of range, or an unreachable scheduler.
    StageError
        A stage failed on a Dask worker (the message names it).
    """
    start = time.perf_counter()
    options = _dask_options(executor, dask_options, client)
    layout = ResultsLayout(config.run.output)
    problems = check_run(config)
    if executor == "dask" and isinstance(config.run.cache, str) and url_protocol(config.run.cache) == "memory":
        problems.append(
            f"run.cache: {config.run.cache} lives in one process's memory, and Dask workers are other processes; "
            "use a folder every worker sees or an object store with --executor dask"
        )
    _raise_problems(problems, "run configuration")
    graph, plan = plan_run(config)
    layout.root.mkdir(parents=True, exist_ok=True)
    log = (lambda line: print(line, flush=True)) if progress else None

    def waiting() -> None:
        print(f"waiting for another run writing {layout.root} to finish", file=sys.stderr, flush=True)

    with folder_lock(layout.root / LOCK_FILE, on_wait=waiting):
        recovered = recover_folder(layout.root, [layout.tables, layout.report])
        if recovered and log is not None:
            log(f"  undid what an interrupted run left: {len(recovered)} temporary or replaced folders")
        cache = config.run.cache or layout.root / "cache"
        store = FeatureStore(cache, storage_options=config.run.cache_options or None)
        runtime = Runtime(store, progress, log)
        folders = stage_folders(graph, layout.root)
        experiments = {name: folders[plan.experiment(name)] / EXPERIMENT_DIR for name in plan.subjects}
        last = max((plan.experiment(name) for name in plan.subjects), key=graph.ids().index)

        def data_checks() -> None:
            _raise_problems(check_data(config, experiments), "run configuration")

        # the report reads config and versions from provenance.json: both are written once the tables are, and put
        # back as they were if a later stage fails
        earlier = {path: path.read_bytes() if path.is_file() else None for path in (layout.config, layout.provenance)}

        def write_records() -> None:
            with atomic_path(layout.config) as tmp:
                tmp.write_text(tomli_w.dumps(config.to_dict()))
            with atomic_path(layout.provenance) as tmp:
                tmp.write_text(json.dumps({"versions": versions(), "config": config.to_dict()}, indent=2))

        try:
            with _executor(options, client, log) as execute:
                report = execute(graph, layout.root, runtime, checks={last: data_checks, TABLES: write_records})
        except BaseException:
            for path, content in earlier.items():
                if content is None:
                    path.unlink(missing_ok=True)
                elif not path.is_file() or path.read_bytes() != content:
                    with atomic_path(path) as tmp:
                        tmp.write_bytes(content)
            raise
        seconds = time.perf_counter() - start
        record = {
            "name": config.run.name,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(seconds, 2),
            "executor": executor,
            "computed": report.computed,
            "skipped": report.skipped,
            "stage_seconds": {name: round(s, 3) for name, s in report.seconds.items()},
        }
        with atomic_path(layout.run_record) as tmp:
            tmp.write_text(json.dumps(record, indent=2))
    return RunResult(config, layout, report, seconds)
