"""Execute a run configuration stage by stage.

Stages, per subject and feature space (``<name>:<layer>``)::

    experiment/<subject>                     load the dataset (or simulate)
    responses/<subject>                      repeat-averaged train and test responses
    noise_ceiling/<subject>                  per-voxel noise ceiling of the test responses
    features/<subject>/<space>               features, reduced on the training stimuli
    encode/<subject>/<space>                 encoder fit; test predictions, alphas, CV scores
    scores/<subject>/<space>                 r, R^2, noise-normalised accuracy per voxel
    identification/<subject>/<space>         image identification (when enabled)
    summary                                  tables per voxel / ROI / layer / model  -> tables/
    report                                   the HTML report and its figures          -> report/

Each stage is keyed by the settings it depends on and by its inputs (see
:mod:`scene2brain.pipeline.stages`), so a rerun skips finished work and a changed
setting recomputes that stage and what reads it, nothing else.
"""

from __future__ import annotations

import inspect
import json
import platform
import time
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_predict

from scene2brain.data.containers import Experiment
from scene2brain.data.datasets import (
    load_algonauts2023,
    load_bold5000,
    load_kay2008,
    load_kay2008_nma,
    load_nsd,
    load_things_fmri,
)
from scene2brain.data.storage import load_experiment, save_experiment
from scene2brain.encoding.ridge import RidgeCV
from scene2brain.evaluation.identification import (
    extrapolate_identification,
    identification_curve,
    identify,
    select_voxels,
)
from scene2brain.evaluation.metrics import pearson_r, r2_score
from scene2brain.evaluation.noise_ceiling import (
    ncsnr_from_repeats,
    noise_ceiling_from_ncsnr,
    noise_normalised_accuracy,
)
from scene2brain.features.store import FeatureStore
from scene2brain.pipeline.config import ConfigError, FeatureSection, RunConfig
from scene2brain.pipeline.results import write_summary
from scene2brain.pipeline.simulated import simulate_subject
from scene2brain.pipeline.spaces import raw_features, reduced_space
from scene2brain.pipeline.stages import Stage, StageContext, StageReport, run_stages
from scene2brain.report.html import write_report
from scene2brain.utils.files import atomic_path

LOADERS = {
    "algonauts2023": load_algonauts2023,
    "nsd": load_nsd,
    "kay2008": load_kay2008,
    "kay2008-nma": lambda root, subject, **options: load_kay2008_nma(root, **options),
    "things": load_things_fmri,
    "bold5000": load_bold5000,
}
PACKAGES = ("scene2brain", "numpy", "scipy", "scikit-learn", "pandas", "torch", "torchvision", "nilearn", "zarr")


@dataclass
class RunResult:
    """What :func:`run_config` did.

    Attributes
    ----------
    config : RunConfig
    output : Path
        The results folder.
    stages : StageReport
        Names of the computed and the skipped stages, keys, folders, seconds.
    seconds : float
        Wall time of this call.
    """

    config: RunConfig
    output: Path
    stages: StageReport
    seconds: float

    @property
    def computed(self) -> list[str]:
        return self.stages.computed

    @property
    def skipped(self) -> list[str]:
        return self.stages.skipped


def subject_name(dataset: str, subject: int | str) -> str:
    """Folder-safe subject label used in stage names and tables."""
    if dataset == "simulated":
        return f"sim{int(subject):02d}"
    return str(subject) if isinstance(subject, str) else f"{dataset}-{subject:02d}"


def _load_real(config: RunConfig, subject: int | str) -> Experiment:
    loader = LOADERS[config.dataset.name]
    try:
        inspect.signature(loader).bind(config.dataset.path, subject, **config.dataset.options)
    except TypeError as err:
        signature = inspect.signature(loader)
        raise ConfigError(f"dataset.options: {err} (options of {config.dataset.name}: {signature})") from None
    return loader(config.dataset.path, subject, **config.dataset.options)


def _check_splits(config: RunConfig, experiment: Experiment, subject: str) -> None:
    for key in ("train", "test"):
        name = getattr(config.splits, key)
        if name not in experiment.splits:
            raise ConfigError(
                f"splits.{key}: {name!r} is not a split of {subject}; its splits: {list(experiment.splits)}"
            )
        if len(experiment.trials_in_split(name)) == 0:
            raise ConfigError(
                f"splits.{key}: split {name!r} of {subject} has no measured responses "
                f"(e.g. the Algonauts test images); choose one of {list(experiment.splits)} that has"
            )


def _experiment_stage(ctx: StageContext, config: RunConfig, subject: int | str, store: FeatureStore, progress: bool):
    if config.dataset.name == "simulated":
        sim = config.dataset.simulation
        prefetch = [
            layer
            for f in config.features
            if (f.model, f.pooling, f.weights) == (sim.driver_model, "avg", "pretrained")
            for layer in f.layers
        ]
        experiment = simulate_subject(sim, int(subject), config.run.seed, store, progress, prefetch)
    else:
        experiment = _load_real(config, subject)
    _check_splits(config, experiment, subject_name(config.dataset.name, subject))
    save_experiment(experiment, ctx.out / "experiment")


def _experiment(ctx: StageContext, name: str) -> Experiment:
    return load_experiment(ctx.input(name) / "experiment")


def _responses_stage(ctx: StageContext, config: RunConfig, experiment_stage: str):
    """Repeat-averaged responses of the train and test stimuli (rows in split order), and those stimuli."""
    experiment = _experiment(ctx, experiment_stage)
    averaged = experiment.average_repeats().responses
    row_of = {s: i for i, s in enumerate(averaged.trial_stimulus)}
    for key in ("train", "test"):
        stimuli = experiment.split_index(getattr(config.splits, key))
        np.save(ctx.out / f"{key}.npy", averaged.data[[row_of[s] for s in stimuli]])
        np.save(ctx.out / f"{key}_stimuli.npy", stimuli)


def _noise_ceiling_stage(ctx: StageContext, config: RunConfig, experiment_stage: str, subject: str):
    experiment = _experiment(ctx, experiment_stage)
    method = config.evaluation.noise_ceiling
    trials = experiment.trials_in_split(config.splits.test)
    stimuli = experiment.responses.trial_stimulus[trials]
    _, repeats = np.unique(stimuli, return_counts=True)
    if method == "repeats":
        if repeats.max() < 2:
            raise ConfigError(
                f"evaluation.noise_ceiling: 'repeats' needs test stimuli shown at least twice; {subject}'s "
                f"test split has one trial per stimulus; use 'ncsnr' (voxel table column) or 'none'"
            )
        ncsnr = ncsnr_from_repeats(experiment.responses.data[trials], stimuli)
        ceiling = noise_ceiling_from_ncsnr(ncsnr, repeats)
    elif method == "ncsnr":
        if "ncsnr" not in experiment.voxels:
            raise ConfigError(
                f"evaluation.noise_ceiling: 'ncsnr' needs an ncsnr column in {subject}'s voxel table "
                f"(columns: {list(experiment.voxels.columns)}); use 'repeats' or 'none'"
            )
        ceiling = noise_ceiling_from_ncsnr(experiment.voxels["ncsnr"].to_numpy(), repeats)
    else:
        ceiling = np.full(experiment.responses.n_voxels, np.nan)
    np.save(ctx.out / "noise_ceiling.npy", ceiling.astype(np.float64))


def _features_stage(
    ctx: StageContext,
    config: RunConfig,
    spec: FeatureSection,
    layer: str,
    experiment_stage: str,
    subject: str,
    store: FeatureStore,
    progress: bool,
):
    experiment = _experiment(ctx, experiment_stage)
    # Extract every layer of this model that some pending stage needs in one pass; the
    # other layers' stages then find them in the feature store.
    pending = [name for name in spec.layer_names() if f"features/{subject}/{spec.space(name)}" in ctx.pending]
    raw = raw_features(experiment.stimuli, spec, [layer], store, progress, prefetch=pending)[layer]
    train = experiment.split_index(config.splits.train)
    np.save(ctx.out / "features.npy", reduced_space(raw, train, spec, config.run.seed))
    (ctx.out / "info.json").write_text(json.dumps({"raw_features": int(raw.shape[1])}))


def _encode_stage(ctx: StageContext, config: RunConfig, features_stage: str, responses_stage: str):
    X = np.load(ctx.input(features_stage) / "features.npy")
    folder = ctx.input(responses_stage)
    y_train = np.load(folder / "train.npy")
    train, test = np.load(folder / "train_stimuli.npy"), np.load(folder / "test_stimuli.npy")
    folds = KFold(n_splits=config.encoder.cv, shuffle=True, random_state=config.run.seed)
    if config.encoder.model == "ridge":
        encoder = config.encoder
        model = RidgeCV(alphas=encoder.alphas, cv=folds, backend=encoder.backend, device=encoder.device)
        model.fit(X[train], y_train)
        best_alphas = model.best_alphas_
        cv_score = np.max(model.cv_scores_, axis=0)
    else:
        model = LinearRegression().fit(X[train], y_train)
        best_alphas = np.full(y_train.shape[1], np.nan)
        cv_score = pearson_r(y_train, cross_val_predict(LinearRegression(), X[train], y_train, cv=folds))
    np.save(ctx.out / "predictions.npy", model.predict(X[test]).astype(np.float32))
    np.save(ctx.out / "alphas.npy", np.asarray(best_alphas, dtype=np.float64))
    np.save(ctx.out / "cv_score.npy", np.asarray(cv_score, dtype=np.float64))


def _scores_stage(ctx: StageContext, encode_stage: str, responses_stage: str, noise_ceiling_stage: str):
    y_test = np.load(ctx.input(responses_stage) / "test.npy")
    predictions = np.load(ctx.input(encode_stage) / "predictions.npy")
    ceiling = np.load(ctx.input(noise_ceiling_stage) / "noise_ceiling.npy")
    r = pearson_r(y_test, predictions)
    np.save(ctx.out / "r.npy", r)
    np.save(ctx.out / "r2.npy", r2_score(y_test, predictions))
    nnacc = np.where(np.isnan(ceiling), np.nan, noise_normalised_accuracy(r, np.nan_to_num(ceiling)))
    np.save(ctx.out / "nnacc.npy", nnacc)


def _identification_stage(ctx: StageContext, config: RunConfig, encode_stage: str, responses_stage: str):
    measured = np.load(ctx.input(responses_stage) / "test.npy")
    predicted = np.load(ctx.input(encode_stage) / "predictions.npy")
    cv_score = np.load(ctx.input(encode_stage) / "cv_score.npy")
    n_voxels = min(config.evaluation.identification_voxels, measured.shape[1])
    voxels = select_voxels(np.nan_to_num(cv_score, nan=-np.inf), n_voxels)
    result = identify(measured, predicted, voxels=voxels)
    n = result.n_candidates
    exact = np.unique(np.geomspace(2, n, num=min(n - 1, 20)).round().astype(int))
    beyond = np.geomspace(n, 1e6, num=12)
    record = {
        "n_candidates": n,
        "n_voxels": len(voxels),
        "accuracy": result.accuracy,
        "pairwise_accuracy": result.pairwise_accuracy,
        "set_sizes": exact.tolist(),
        "curve": identification_curve(result, exact).tolist(),
        "extrapolated_set_sizes": beyond.tolist(),
        "extrapolated": extrapolate_identification(result, beyond).tolist(),
    }
    (ctx.out / "identification.json").write_text(json.dumps(record, indent=2))


def _summary_stage(ctx: StageContext, config: RunConfig, layout: dict[str, Any]):
    folders = {key: {kind: ctx.input(stage) for kind, stage in stages.items()} for key, stages in layout.items()}
    write_summary(ctx.out, config, folders)


def _report_stage(ctx: StageContext, results: Path):
    write_report(results, ctx.out)


def _stage_settings(spec: FeatureSection) -> dict[str, Any]:
    """What a feature space's values depend on (not batch size or device)."""
    return spec.model_dump(mode="json", exclude={"name", "layers", "batch_size", "device"})


def plan_stages(config: RunConfig, store: FeatureStore, progress: bool = False) -> list[Stage]:
    """The stages of a run, in dependency order."""
    out = config.run.output
    splits = config.splits.model_dump()
    seed = config.run.seed
    stages: list[Stage] = []
    layout: dict[str, Any] = {}

    def add(name: str, settings: dict, inputs: list[str], function, **arguments) -> str:
        stages.append(Stage(name, settings, inputs, partial(function, **arguments)))
        return name

    dataset = config.dataset.model_dump(mode="json", exclude={"subjects", "roi_column"})
    if config.dataset.name != "simulated":
        dataset.pop("simulation")
    encoder = {"encoder": config.encoder.model_dump(mode="json", exclude={"device"}), "seed": seed}
    for subject in config.dataset.subjects:
        s = subject_name(config.dataset.name, subject)
        exp = add(
            f"experiment/{s}", {"dataset": dataset, "subject": subject, "seed": seed, "splits": splits}, [],
            _experiment_stage, config=config, subject=subject, store=store, progress=progress,
        )  # fmt: skip
        resp = add(f"responses/{s}", {"splits": splits}, [exp], _responses_stage, config=config, experiment_stage=exp)
        nc = add(
            f"noise_ceiling/{s}", {"method": config.evaluation.noise_ceiling, "test": config.splits.test}, [exp],
            _noise_ceiling_stage, config=config, experiment_stage=exp, subject=s,
        )  # fmt: skip
        layout[s] = {"experiment": exp, "responses": resp, "noise_ceiling": nc}
        for spec in config.features:
            for layer in spec.layer_names():
                space = spec.space(layer)
                feature = {"feature": _stage_settings(spec), "layer": layer, "train": config.splits.train, "seed": seed}
                feat = add(
                    f"features/{s}/{space}", feature, [exp], _features_stage, config=config, spec=spec, layer=layer,
                    experiment_stage=exp, subject=s, store=store, progress=progress,
                )  # fmt: skip
                enc = add(
                    f"encode/{s}/{space}", encoder, [feat, resp], _encode_stage, config=config,
                    features_stage=feat, responses_stage=resp,
                )  # fmt: skip
                sco = add(
                    f"scores/{s}/{space}", {}, [enc, resp, nc], _scores_stage, encode_stage=enc,
                    responses_stage=resp, noise_ceiling_stage=nc,
                )  # fmt: skip
                layout[f"{s}|{space}"] = {"encode": enc, "scores": sco}
                if config.evaluation.identification:
                    layout[f"{s}|{space}"]["identification"] = add(
                        f"identification/{s}/{space}", {"n_voxels": config.evaluation.identification_voxels},
                        [enc, resp], _identification_stage, config=config, encode_stage=enc, responses_stage=resp,
                    )  # fmt: skip
    summary_settings = {
        "roi_column": config.dataset.roi_column,
        "evaluation": config.evaluation.model_dump(mode="json", include={"n_bootstraps", "confidence"}),
        "features": [f.model_dump(mode="json", include={"name", "model", "layers"}) for f in config.features],
        "seed": seed,
    }
    every = [stage.name for stage in stages]
    summary = partial(_summary_stage, config=config, layout=layout)
    stages.append(Stage("summary", summary_settings, every, summary, out / "tables"))
    if not config.report.enabled:
        return stages
    report_settings = {"report": config.report.model_dump(mode="json"), "config": config.to_dict()}
    stages.append(Stage("report", report_settings, ["summary"], partial(_report_stage, results=out), out / "report"))
    return stages


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
    out = config.run.output
    out.mkdir(parents=True, exist_ok=True)
    store = FeatureStore(config.run.cache or out / "cache")
    with atomic_path(out / "config.toml") as tmp:
        tmp.write_text(tomli_w.dumps(config.to_dict()))
    with atomic_path(out / "provenance.json") as tmp:
        tmp.write_text(json.dumps({"versions": versions(), "config": config.to_dict()}, indent=2))
    stages = plan_stages(config, store, progress)
    log = (lambda line: print(line, flush=True)) if progress else None
    report = run_stages(stages, out, log)
    seconds = time.perf_counter() - start
    record = {
        "name": config.run.name,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(seconds, 2),
        "computed": report.computed,
        "skipped": report.skipped,
        "stage_seconds": {name: round(s, 3) for name, s in report.seconds.items()},
    }
    with atomic_path(out / "run.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return RunResult(config, out, report, seconds)
