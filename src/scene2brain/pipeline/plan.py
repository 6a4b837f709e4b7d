"""The shared stages of a run and the :class:`Plan` analyses build on (``plan_run`` in :mod:`.run` uses them).

Shared stages (what analyses read)::

    stimuli                          simulated data only: the stimulus set, shared by all subjects
    features/<subject>/<name>        one [[features]] entry (a model): every layer extracted in one
                                     pass through the feature store, each reduced on the training
                                     stimuli (one named output per layer); simulated subjects share
                                     one stage per model (no subject in the id)
    experiment/<subject>             the dataset's loader (or the simulation, from the features)
    responses/<subject>              repeat-averaged train and test responses, voxel table, counts
    noise_ceiling/<subject>          per-voxel noise ceiling of the test responses
    tables                           every analysis's tables               -> tables/
    report                           the HTML report                       -> report/

Each analysis of :data:`scene2brain.pipeline.analyses.ANALYSES` adds its own stages
between ``noise_ceiling`` and ``tables``.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold

from scene2brain.data.containers import Experiment
from scene2brain.data.datasets.registry import dataset_info
from scene2brain.data.storage import load_experiment, load_stimuli, save_experiment
from scene2brain.evaluation.noise_ceiling import (
    ncsnr_from_repeats,
    noise_ceiling_from_ncsnr,
    primary_score,
)
from scene2brain.features.extraction import extract_to_store
from scene2brain.features.models import LazyModel
from scene2brain.features.reduction import Reduction, reduce_features
from scene2brain.features.store import FeatureStore, StoreEntry
from scene2brain.pipeline.config import SIMULATED, ConfigError, FeatureSection, RunConfig
from scene2brain.pipeline.graph import WHOLE_WORKER, Ref, Stage, StageContext, StageGraph, StageId

EXPERIMENT_DIR = "experiment"  # inside an experiment (or stimuli) stage folder: the saved experiment
FEATURES_FILE = "features.npy"  # inside a feature stage's layer output: the reduced features
FEATURES_INFO = "info.json"  # ... and the raw width and the feature-store entry of the raw features
NOISE_CEILING_FILE = "noise_ceiling.npy"


def subject_name(dataset: str, subject: int | str) -> str:
    """Folder-safe subject label used in stage ids and tables."""
    if dataset == SIMULATED:
        return f"sim{int(subject):02d}"
    return str(subject) if isinstance(subject, str) else f"{dataset}-{subject:02d}"


@dataclass(frozen=True)
class Space:
    """One feature space of a subject: ``"<name>:<layer>"``, its [[features]] entry and its stage output."""

    name: str
    spec: FeatureSection
    layer: str
    depth: int
    features: Ref


class Plan:
    """The stage graph under construction, with the ids of the shared stages.

    Analyses add their stages to :attr:`graph` and find what they read with
    :meth:`responses`, :meth:`noise_ceiling`, :meth:`spaces` and :meth:`experiment`.
    """

    def __init__(self, config: RunConfig):
        self.config = config
        self.graph = StageGraph()
        self.subjects = [subject_name(config.dataset.name, s) for s in config.dataset.subjects]
        self._spaces: dict[str, list[Space]] = {}

    # -- shared stage ids ------------------------------------------------------------------
    def experiment(self, subject: str) -> StageId:
        return StageId("experiment", subject)

    def responses(self, subject: str) -> StageId:
        return StageId("responses", subject)

    def noise_ceiling(self, subject: str) -> StageId:
        return StageId("noise_ceiling", subject)

    def spaces(self, subject: str) -> list[Space]:
        """Every feature space of ``subject``, in configuration order."""
        return self._spaces[subject]

    # -- building --------------------------------------------------------------------------
    def add_features(self, source: StageId, spec: FeatureSection, subject: str = "", layers=None) -> StageId:
        """The feature stage of one [[features]] entry on the stimuli of ``source`` (added once)."""
        stage_id = StageId("features", subject, spec.name)
        layers = spec.layer_names() if layers is None else layers
        # The stage's outputs point into the feature store (the raw features the simulation reads), so the store's
        # location is part of what the result depends on.
        store = str(self.config.run.cache or self.config.run.output / "cache")
        settings = {"extraction": spec.extraction(), "train": self.config.splits.train, "store": store}
        if stage_id in self.graph:
            # the same stage asked for again; a different extraction under the same name (a [[features]] entry
            # named like the simulation's own driver stages) must not stand in for it
            existing = self.graph[stage_id]
            if existing.settings != settings or not set(layers) <= set(existing.outputs):
                raise ConfigError(
                    f"features: the name {spec.name!r} is taken by another feature extraction of this run "
                    "(the simulation's drivers are named 'sim-gabor' and 'sim-driver'); rename the entry"
                )
        else:
            self.graph.add(
                Stage(
                    stage_id,
                    compute_features,
                    settings=settings,
                    inputs={"stimuli": Ref(source)},
                    outputs={layer: {"layer": layer} for layer in layers},
                    options={"batch_size": spec.batch_size, "device": spec.device, WHOLE_WORKER: True},
                )
            )
        return stage_id

    def set_spaces(self, subject: str, feature_stages: dict[str, StageId]) -> None:
        """Record the feature spaces of ``subject`` (``feature_stages``: [[features]] name -> stage)."""
        self._spaces[subject] = [
            Space(spec.space(layer), spec, layer, depth, Ref(feature_stages[spec.name], layer))
            for spec in self.config.features
            for depth, layer in enumerate(spec.layer_names())
        ]


# -- shared stage functions ----------------------------------------------------------------


MIN_SPLIT = 2  # stimuli a split needs: a correlation or R^2 over stimuli is undefined with fewer


def split_problems(experiment: Experiment, splits: dict[str, str], subject: str) -> list[str]:
    """What is wrong with the configured splits for ``experiment``: one message per key, empty if nothing.

    Each split must exist, hold at least :data:`MIN_SPLIT` stimuli and have measured responses
    (a trial whose stimulus is in it): the Algonauts 2023 test images, for one, have none
    (their responses are withheld).
    """
    problems = []
    for key in ("train", "test"):
        name = splits[key]
        if name not in experiment.splits:
            problems.append(
                f"splits.{key}: {name!r} is not a split of {subject}; its splits: {list(experiment.splits)}"
            )
            continue
        stimuli = experiment.split_index(name)
        measured = np.isin(stimuli, experiment.responses.trial_stimulus)
        if not measured.all():
            usable = [
                s for s in experiment.splits if np.isin(experiment.splits[s], experiment.responses.trial_stimulus).all()
            ]
            what = (
                "has no measured responses"
                if not measured.any()
                else (f"has no measured responses for {int((~measured).sum())} of its {len(stimuli)} stimuli")
            )
            problems.append(
                f"splits.{key}: split {name!r} of {subject} {what} (e.g. the Algonauts test images, whose responses "
                f"are withheld); choose one of {usable} (splits with responses for every stimulus)"
            )
        elif len(stimuli) < MIN_SPLIT:
            big = [s for s in experiment.splits if len(experiment.splits[s]) >= MIN_SPLIT]
            problems.append(
                f"splits.{key}: split {name!r} of {subject} holds {len(stimuli)} stimuli; a score over stimuli needs "
                f"at least {MIN_SPLIT}; choose one of {big}"
            )
    return problems


def check_splits(experiment: Experiment, splits: dict[str, str], subject: str) -> None:
    """Both configured splits exist and have measured responses, or a ConfigError naming every such setting."""
    problems = split_problems(experiment, splits, subject)
    if problems:
        raise ConfigError("; ".join(problems))


def compute_experiment(ctx: StageContext) -> None:
    """Load one subject of a registered dataset and save it (images by reference where possible)."""
    dataset, subject = ctx.settings["dataset"], ctx.settings["subject"]
    info = dataset_info(dataset["name"])
    try:
        inspect.signature(info.load).bind(dataset["path"], subject, **dataset["options"])
    except TypeError as err:
        signature = inspect.signature(info.load)
        raise ConfigError(f"dataset.options: {err} (options of {info.name}: {signature})") from None
    experiment = info.load(dataset["path"], subject, **dataset["options"])
    check_splits(experiment, ctx.settings["splits"], ctx.settings["label"])
    save_experiment(experiment, ctx.out / EXPERIMENT_DIR)


def compute_features(ctx: StageContext) -> None:
    """Extract every layer in one pass through the feature store; reduce each on the training stimuli.

    The reduced features are what the reduction gives: PCA scores keep their variances (they
    are not whitened, so the ridge penalty acts differently on strong and weak components),
    and "standardise" z-scores every column with the training rows' statistics. The model is
    built only when some layer is not in the feature store yet.
    """
    spec = ctx.settings["extraction"]
    stimuli, splits = load_stimuli(ctx.input("stimuli") / EXPERIMENT_DIR)
    store = ctx.runtime.store if isinstance(ctx.runtime.store, FeatureStore) else FeatureStore(ctx.runtime.store)
    model = LazyModel(spec["model"], spec["weights"], options=spec["options"], memo=store.memo())
    entries, _ = extract_to_store(
        stimuli.images, model, list(ctx.outputs), spec["pooling"], store,
        batch_size=ctx.options["batch_size"], device=ctx.options["device"], progress=ctx.runtime.progress,
    )  # fmt: skip
    train = splits[ctx.settings["train"]]
    reduction = Reduction(**spec["reduction"])
    for layer in ctx.outputs:
        raw = entries[layer].read()
        reduced, _ = reduce_features(raw, train, reduction)
        folder = ctx.output(layer)
        np.save(folder / FEATURES_FILE, reduced.astype(np.float32))
        info = {"raw_features": int(raw.shape[1]), "store_entry": str(entries[layer].path)}
        (folder / FEATURES_INFO).write_text(json.dumps(info, indent=2))


def raw_features(output: Path, store: FeatureStore | None = None) -> np.ndarray:
    """The unreduced features behind a feature stage's layer output (read from the feature store).

    ``store``: the run's feature store, whose storage options (credentials, endpoint) open an
    entry in an object store; the entry's location is recorded in the output.
    """
    info = json.loads((output / FEATURES_INFO).read_text())
    options = store.root.storage_options if store is not None and store.remote else None
    return StoreEntry(info["store_entry"], {}, storage_options=options).read()


def compute_responses(ctx: StageContext) -> None:
    """Repeat-averaged responses of the train and test stimuli (rows in split order), the voxel table, counts."""
    experiment = load_experiment(ctx.input("experiment") / EXPERIMENT_DIR)
    averaged = experiment.average_repeats().responses
    row_of = {s: i for i, s in enumerate(averaged.trial_stimulus)}
    for key in ("train", "test"):
        stimuli = experiment.split_index(ctx.settings[key])
        np.save(ctx.out / f"{key}.npy", averaged.data[[row_of[s] for s in stimuli]])
        np.save(ctx.out / f"{key}_stimuli.npy", stimuli)
    np.save(
        ctx.out / "train_groups.npy",
        training_groups(experiment.stimuli.table, experiment.split_index(ctx.settings["train"])),
    )
    experiment.voxels.to_parquet(ctx.out / "voxels.parquet", index=False)
    facts = {
        "n_stimuli": len(experiment.stimuli),
        "n_train": len(experiment.split_index(ctx.settings["train"])),
        "n_test": len(experiment.split_index(ctx.settings["test"])),
        "n_test_trials": int(experiment.trials_in_split(ctx.settings["test"]).sum()),
        "n_voxels": experiment.responses.n_voxels,
    }
    (ctx.out / "facts.json").write_text(json.dumps(facts, indent=2))


def compute_noise_ceiling(ctx: StageContext) -> None:
    """Per-voxel noise ceiling of the test responses (NaN with method "none") and the primary score it implies."""
    experiment = load_experiment(ctx.input("experiment") / EXPERIMENT_DIR)
    method, subject = ctx.settings["method"], ctx.settings["label"]
    trials = experiment.trials_in_split(ctx.settings["test"])
    stimuli = experiment.responses.trial_stimulus[trials]
    _, repeats = np.unique(stimuli, return_counts=True)
    if method == "repeats":
        if repeats.max() < 2:
            raise ConfigError(
                f"evaluation.noise_ceiling: 'repeats' needs test stimuli shown at least twice; {subject}'s "
                f"test split has one trial per stimulus; use 'ncsnr' (voxel table column) or 'none'"
            )
        ceiling = noise_ceiling_from_ncsnr(ncsnr_from_repeats(experiment.responses.data[trials], stimuli), repeats)
    elif method == "ncsnr":
        if "ncsnr" not in experiment.voxels:
            raise ConfigError(
                f"evaluation.noise_ceiling: 'ncsnr' needs an ncsnr column in {subject}'s voxel table "
                f"(columns: {list(experiment.voxels.columns)}); use 'repeats' or 'none'"
            )
        ceiling = noise_ceiling_from_ncsnr(experiment.voxels["ncsnr"].to_numpy(), repeats)
    else:
        ceiling = np.full(experiment.responses.n_voxels, np.nan)
    np.save(ctx.out / NOISE_CEILING_FILE, ceiling.astype(np.float64))
    (ctx.out / "score.json").write_text(json.dumps({"score": primary_score(ceiling)}))


def training_groups(table: pd.DataFrame, train: np.ndarray) -> np.ndarray:
    """The content group of each training stimulus: the stimulus table's ``group`` column, else the stimulus."""
    return np.asarray(table["group"], dtype=str)[train] if "group" in table else np.asarray(train).astype(str)


def training_folds(groups: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds of the training rows that keep stimuli sharing content (a stimulus-table ``group``) together.

    Without shared content (every group one stimulus) the folds are a seeded shuffled K-fold
    split; with it, scikit-learn's GroupKFold, so no validation image has a near-copy (another
    crop of its photograph) among the images the model was fitted on.
    """
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups == len(groups):
        return list(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(groups))
    if n_groups < n_folds:
        raise ConfigError(f"encoder.cv: {n_folds} folds need at least {n_folds} stimulus groups; found {n_groups}")
    return list(GroupKFold(n_splits=n_folds).split(groups, groups=groups))


def read_subject(responses: Path, noise_ceiling: Path) -> dict[str, Any]:
    """What most analyses need of a subject: test responses, voxel table, noise ceiling, score, counts."""
    return {
        "y_test": np.load(responses / "test.npy"),
        "voxels": pd.read_parquet(responses / "voxels.parquet"),
        "facts": json.loads((responses / "facts.json").read_text()),
        "noise_ceiling": np.load(noise_ceiling / NOISE_CEILING_FILE),
        "score": json.loads((noise_ceiling / "score.json").read_text())["score"],
    }
