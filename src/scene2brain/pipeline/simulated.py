"""The simulated dataset of a run: one stimulus set, its features, and simulated subjects driven by them.

The simulation's drivers are feature spaces like any other: the Gabor energies and
the driver layer (average-pooled, and its PCA for the calibration voxels) come from
the run's own feature stages when the configuration has a matching [[features]] entry
(same model, pooling, weights, options and, for the PCA, the same reduction), so they
are extracted and reduced once for the simulation and the encoding models alike; a
driver without a match gets a feature stage of its own (``sim-gabor``, ``sim-driver``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scene2brain.data.images import HDF5_SUFFIXES, IMAGE_SUFFIXES, as_image_source, image_files, image_path
from scene2brain.data.simulate import (
    SimulationDrivers,
    SubjectConfig,
    make_stimuli,
    simulate_responses,
    stimuli_from_images,
)
from scene2brain.data.storage import load_stimuli, save_experiment, save_stimuli
from scene2brain.features.gabor import GaborPyramid
from scene2brain.features.reduction import Reduction
from scene2brain.pipeline.config import ConfigError, FeatureSection, RunConfig
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageId
from scene2brain.pipeline.plan import EXPERIMENT_DIR, FEATURES_FILE, Plan, check_splits, raw_features
from scene2brain.utils.files import text_digest

STIMULI = StageId("stimuli")


def driver_specs(config: RunConfig) -> tuple[FeatureSection, FeatureSection]:
    """The simulation's Gabor pyramid and driver layer (average-pooled, PCA for the calibration voxels)."""
    sim = config.dataset.simulation
    seed = config.run.seed
    gabor = FeatureSection(
        name="sim-gabor", model="gabor", options={"image_size": sim.gabor_size}, reduction=Reduction("standardise")
    )
    deep = FeatureSection(
        name="sim-driver",
        model=sim.driver_model,
        layers=[sim.driver_layer],
        pooling="avg",
        reduction=Reduction("pca", sim.n_components, seed=seed),
    )
    return gabor, deep


def _matching(config: RunConfig, driver: FeatureSection, layer: str, same_reduction: bool) -> FeatureSection | None:
    """The configured [[features]] entry that computes ``driver``'s ``layer`` the same way, if any."""
    want = driver.extraction()
    for spec in config.features:
        have = spec.extraction()
        if not same_reduction:
            have, want = {**have, "reduction": None}, {**want, "reduction": None}
        if have == want and layer in spec.layer_names():
            return spec
    return None


def add_simulated_experiments(plan: Plan) -> None:
    """Add the stimulus set, the feature stages and one experiment stage per simulated subject."""
    config = plan.config
    sim = config.dataset.simulation
    settings = {"image_size": sim.image_size, "seed": config.run.seed}
    if sim.stimuli is None:
        settings["n_stimuli"] = sim.n_stimuli
        if sim.n_test is not None:  # (only when set, so that the default keeps the stage's key)
            settings["n_test"] = sim.n_test
    else:
        settings["images"] = {"path": str(sim.stimuli), "fingerprint": fingerprint(sim.stimuli)}
        settings["n_test"] = sim.n_test
        settings["test_names"] = read_test_names(sim.test_stimuli) if sim.test_stimuli is not None else None
    stimuli = plan.graph.add(Stage(STIMULI, compute_stimuli, settings))
    features = {spec.name: plan.add_features(stimuli, spec) for spec in config.features}
    gabor, deep = driver_specs(config)
    drivers = {}
    for role, driver, layer, same_reduction in (
        ("gabor", gabor, "energy", False),
        ("deep", deep, sim.driver_layer, True),
    ):
        match = _matching(config, driver, layer, same_reduction)
        stage = features[match.name] if match else plan.add_features(stimuli, driver, layers=[layer])
        drivers[role] = Ref(stage, layer)
    settings = sim.model_dump(mode="json", include={"n_voxels", "gabor_size", "driver_model", "driver_layer"})
    for subject, name in zip(config.dataset.subjects, plan.subjects, strict=True):
        plan.graph.add(
            Stage(
                plan.experiment(name),
                compute_simulated_experiment,
                settings={
                    "simulation": settings,
                    "subject": int(subject),
                    "label": name,
                    "seed": config.run.seed,
                    "splits": config.splits.model_dump(),
                },
                inputs={"stimuli": Ref(stimuli), **drivers},
            )
        )
        plan.set_spaces(name, features)


def fingerprint(path: Path) -> str:
    """A cheap digest of a folder's image files or of a file (names, sizes, modification times).

    Part of the stimulus stage's settings, so that changed images rerun the simulation
    without reading every pixel at planning time.
    """
    file, _ = image_path(path)
    allowed = f"a folder of images ({', '.join(IMAGE_SUFFIXES)}) or an HDF5 file ({', '.join(HDF5_SUFFIXES)}[:dataset])"
    if file.is_dir():
        entries = image_files(file)
        if not entries:
            raise ConfigError(f"dataset.simulation.stimuli: {file} holds no image files; expected {allowed}")
    elif file.is_file() and file.suffix.lower() in HDF5_SUFFIXES:
        entries = [file]
    elif file.is_file():
        raise ConfigError(f"dataset.simulation.stimuli: {file} is a file but not an HDF5 file; expected {allowed}")
    else:
        raise ConfigError(f"dataset.simulation.stimuli: {file} does not exist; expected {allowed}")
    return text_digest(json.dumps([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in entries]))


def read_test_names(path: Path) -> list[str]:
    """The image file names listed in ``path`` (one per line; blank lines and ``#`` comments ignored)."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"dataset.simulation.test_stimuli: file not found: {path}") from None
    names = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not names:
        raise ConfigError(f"dataset.simulation.test_stimuli: {path} lists no image names")
    return names


def compute_stimuli(ctx: StageContext) -> None:
    """The simulated stimulus set and its train/test split: bundled photographs, or the user's images."""
    s = ctx.settings
    if "images" not in s:
        try:
            stimuli, splits = make_stimuli(
                s["n_stimuli"], n_test=s.get("n_test"), image_size=s["image_size"], seed=s["seed"]
            )
        except ValueError as err:
            raise ConfigError(f"dataset.simulation: {err}") from None
    else:
        try:
            source = as_image_source(s["images"]["path"])
            stimuli, splits = stimuli_from_images(
                source, source.names(), s["image_size"], s["n_test"], s["test_names"], s["seed"]
            )
        except (ValueError, FileNotFoundError) as err:
            key = "test_stimuli" if str(err).startswith("test_names") else "stimuli"
            raise ConfigError(f"dataset.simulation.{key} ({s['images']['path']}): {err}") from None
    save_stimuli(stimuli, splits, ctx.out / EXPERIMENT_DIR)


def compute_simulated_experiment(ctx: StageContext) -> None:
    """One simulated subject (seed + subject - 1) driven by the Gabor energies and the driver layer."""
    s = ctx.settings
    stimuli, splits = load_stimuli(ctx.input("stimuli") / EXPERIMENT_DIR)
    sim = s["simulation"]
    name = f"{sim['driver_model']}:{sim['driver_layer']}"
    calibration = np.load(ctx.input("deep") / FEATURES_FILE)
    drivers = SimulationDrivers(
        gabor_energy=raw_features(ctx.input("gabor"), ctx.runtime.store),
        gabor_channels=GaborPyramid.kay2008(sim["gabor_size"], aperture=False).channels(),
        deep=raw_features(ctx.input("deep"), ctx.runtime.store),
        calibration=calibration,
        is_face=stimuli.table["is_face"].to_numpy().astype(bool),
        names={"deep": name, "calibration": f"{name} (PCA {calibration.shape[1]})"},
    )
    faces = stimuli.table["is_face"].to_numpy()
    experiment = simulate_responses(
        stimuli,
        splits,
        drivers,
        SubjectConfig.scaled(sim["n_voxels"], without=() if faces.any() else ("FACE",)),
        seed=s["seed"] + s["subject"] - 1,
        subject=s["label"],
    )
    check_splits(experiment, s["splits"], s["label"])
    save_experiment(experiment, ctx.out / EXPERIMENT_DIR)
