"""Execute a run configuration: plan its stage graph, compute what is missing, record what happened.

See :mod:`scene2brain.pipeline.plan` for the stages and :mod:`scene2brain.pipeline.graph`
for how they are keyed: a rerun skips finished work, and a changed setting recomputes
the stages that declare it and what reads them, nothing else.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import tomli_w

from scene2brain.features.store import FeatureStore
from scene2brain.pipeline.analyses import ANALYSES
from scene2brain.pipeline.config import SIMULATED, RunConfig
from scene2brain.pipeline.executor import StageReport, run_local
from scene2brain.pipeline.graph import Ref, Runtime, Stage, StageGraph
from scene2brain.pipeline.plan import Plan, compute_experiment, compute_noise_ceiling, compute_responses
from scene2brain.pipeline.report import add_report_stage, add_tables_stage
from scene2brain.pipeline.simulated import add_simulated_experiments
from scene2brain.results import ResultsLayout
from scene2brain.utils.files import atomic_path

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
    """The stage graph of ``config`` and the plan that built it."""
    plan = Plan(config)
    splits = config.splits.model_dump()
    if config.dataset.name == SIMULATED:
        add_simulated_experiments(plan)
    else:
        dataset = config.dataset.model_dump(mode="json", include={"name", "path", "options"})
        for subject, name in zip(config.dataset.subjects, plan.subjects, strict=True):
            experiment = plan.graph.add(
                Stage(
                    plan.experiment(name),
                    compute_experiment,
                    settings={"dataset": dataset, "subject": subject, "label": name, "splits": splits},
                )
            )
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


def versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def run_config(config: RunConfig, progress: bool = True) -> RunResult:
    """Run every stage of ``config`` that is not already done; write the results folder.

    The folder (``config.run.output``) holds ``config.toml`` (the resolved
    configuration), ``run.json`` (versions, what this run computed and skipped),
    ``tables/`` (per-voxel and per-ROI/layer/model results, parquet + CSV),
    ``report/`` (index.html with figures as PNG and SVG) and ``stages/`` (every
    stage's arrays as .npy, the experiments as zarr + parquet).
    """
    start = time.perf_counter()
    layout = ResultsLayout(config.run.output)
    graph, _ = plan_run(config)
    layout.root.mkdir(parents=True, exist_ok=True)
    with atomic_path(layout.config) as tmp:
        tmp.write_text(tomli_w.dumps(config.to_dict()))
    with atomic_path(layout.provenance) as tmp:
        tmp.write_text(json.dumps({"versions": versions(), "config": config.to_dict()}, indent=2))
    log = (lambda line: print(line, flush=True)) if progress else None
    runtime = Runtime(FeatureStore(config.run.cache or layout.root / "cache"), progress, log)
    report = run_local(graph, layout.root, runtime)
    seconds = time.perf_counter() - start
    record = {
        "name": config.run.name,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(seconds, 2),
        "computed": report.computed,
        "skipped": report.skipped,
        "stage_seconds": {name: round(s, 3) for name, s in report.seconds.items()},
    }
    with atomic_path(layout.run_record) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return RunResult(config, layout, report, seconds)
