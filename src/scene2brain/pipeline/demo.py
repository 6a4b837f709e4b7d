"""The demo: a simulated experiment analysed end to end, checked against its ground truth.

Stages: stimuli -> features (Gabor pyramid, EfficientNet-Lite0 layers; cached) ->
simulated subject -> voxelwise ridge per feature space -> scores against the noise
ceiling -> report. Because the simulation knows which feature space drives each ROI
and the true noise ceiling of every voxel, the demo ends by checking that the
analysis recovered them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from scene2brain.data.containers import Experiment
from scene2brain.data.simulate import SimulationDrivers, SubjectConfig, make_stimuli, simulate_responses
from scene2brain.encoding.ridge import RidgeCV
from scene2brain.evaluation.metrics import pearson_r
from scene2brain.evaluation.noise_ceiling import (
    ncsnr_from_repeats,
    noise_ceiling_from_ncsnr,
    noise_normalised_accuracy,
)
from scene2brain.features.extraction import extract_to_store
from scene2brain.features.gabor import GaborPyramid, to_grayscale
from scene2brain.features.reduction import Reduction, reduce_features
from scene2brain.features.store import FeatureStore
from scene2brain.report.demo_report import DemoReportContent, write_demo_report
from scene2brain.utils.arrays import standardise_columns
from scene2brain.utils.files import array_digest, atomic_path
from scene2brain.utils.progress import track

GABOR = "gabor"


@dataclass
class DemoSettings:
    """Everything that defines a demo run."""

    n_stimuli: int = 1200
    n_voxels: int = 2000
    seed: int = 0
    image_size: int = 128
    gabor_size: int = 64
    deep_layers: tuple[str, ...] = ("_blocks.2", "_blocks.6", "_blocks.10", "head")
    driver_layer: str = "head"
    n_components: int = 64
    n_folds: int = 5
    batch_size: int = 32
    progress: bool = True

    def __post_init__(self) -> None:
        if self.n_stimuli < 60:
            raise ValueError(f"n_stimuli: expected at least 60, got {self.n_stimuli}")
        if self.n_voxels < 4:
            raise ValueError(f"n_voxels: expected at least 4 (one per ROI), got {self.n_voxels}")
        if self.driver_layer not in self.deep_layers:
            raise ValueError(f"driver_layer {self.driver_layer!r} must be one of deep_layers {self.deep_layers}")

    def space_name(self, layer: str) -> str:
        return f"effnet:{layer.lstrip('_')}"


@dataclass
class DemoResult:
    """What a demo run produced."""

    out_dir: Path
    experiment: Experiment
    voxel_metrics: pd.DataFrame
    roi_summary: pd.DataFrame
    checks: dict[str, dict]
    timings: dict[str, float] = field(default_factory=dict)
    cache_hits: dict[str, bool] = field(default_factory=dict)


def _log(settings: DemoSettings, message: str) -> None:
    if settings.progress:
        print(message, flush=True)


def compute_features(
    images: np.ndarray, settings: DemoSettings, store: FeatureStore
) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """Gabor energies and average-pooled EfficientNet-Lite0 layers for ``images``, through the store."""
    pyramid = GaborPyramid(image_size=settings.gabor_size)
    hits: dict[str, bool] = {}
    features: dict[str, np.ndarray] = {}
    gabor_key = {
        "space": GABOR,
        "pyramid": asdict(pyramid),
        "grayscale": "PIL-L+lanczos",
        "stimuli": array_digest(images),
    }
    features[GABOR], hits[GABOR] = store.get_or_compute(
        GABOR, gabor_key, lambda: pyramid.transform(to_grayscale(images, settings.gabor_size))
    )
    entries, computed = extract_to_store(
        images,
        "efficientnet-lite0",
        settings.deep_layers,
        "avg",
        store,
        batch_size=settings.batch_size,
        progress=settings.progress,
    )
    for layer, entry in entries.items():
        features[settings.space_name(layer)] = entry.read()
        hits[settings.space_name(layer)] = layer not in computed
    return features, hits


def fit_and_score(
    experiment: Experiment, spaces: dict[str, np.ndarray], n_folds: int, seed: int, progress: bool = False
) -> pd.DataFrame:
    """Fit a voxelwise RidgeCV per feature space on the training split; score on the test split.

    Returns the per-voxel table: r, noise-normalised accuracy and alpha per space, the
    estimated noise ceiling and the winning space.
    """
    train, test = experiment.split_index("train"), experiment.split_index("test")
    averaged = experiment.average_repeats().responses
    row_of = {s: i for i, s in enumerate(averaged.trial_stimulus)}
    y_train = averaged.data[[row_of[s] for s in train]]
    y_test = averaged.data[[row_of[s] for s in test]]

    test_trials = experiment.trials_in_split("test")
    test_stimuli = experiment.responses.trial_stimulus[test_trials]
    ncsnr = ncsnr_from_repeats(experiment.responses.data[test_trials], test_stimuli)
    _, repeats = np.unique(test_stimuli, return_counts=True)
    table = experiment.voxels[["roi", "hemisphere", "driver", "true_noise_ceiling"]].copy()
    table["noise_ceiling"] = noise_ceiling_from_ncsnr(ncsnr, repeats)

    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for space, X in track(spaces.items(), "Voxelwise ridge", total=len(spaces), show=progress):
        model = RidgeCV(cv=folds).fit(X[train], y_train)
        r = pearson_r(y_test, model.predict(X[test]))
        table[f"r[{space}]"] = r
        table[f"nnacc[{space}]"] = noise_normalised_accuracy(r, table["noise_ceiling"].to_numpy())
        table[f"alpha[{space}]"] = model.best_alphas_
    names = list(spaces)
    acc = table[[f"nnacc[{s}]" for s in names]].to_numpy()
    table["best_space"] = np.asarray(names)[np.nanargmax(np.nan_to_num(acc, nan=-1.0), axis=1)]
    return table


def summarise(table: pd.DataFrame, spaces: list[str]) -> pd.DataFrame:
    """Per-ROI summary: median r and noise-normalised accuracy per space, winner, ceilings."""
    rows = []
    for roi, group in table.groupby("roi", sort=False):
        row = {"roi": roi, "n_voxels": len(group)}
        medians = {s: float(np.nanmedian(group[f"nnacc[{s}]"])) for s in spaces}
        best = max(medians, key=medians.get)
        row["best_space"] = best
        row["median_r"] = float(np.nanmedian(group[f"r[{best}]"]))
        row["median_nnacc"] = medians[best]
        row["nc_estimated"] = float(np.median(group["noise_ceiling"]))
        row["nc_true"] = float(np.median(group["true_noise_ceiling"]))
        for s in spaces:
            row[f"median_nnacc[{s}]"] = medians[s]
            row[f"median_r[{s}]"] = float(np.nanmedian(group[f"r[{s}]"]))
        rows.append(row)
    return pd.DataFrame(rows)


def ground_truth_checks(table: pd.DataFrame, summary: pd.DataFrame, settings: DemoSettings) -> dict[str, dict]:
    """Did the analysis recover what the simulation put in?"""
    best = dict(zip(summary["roi"], summary["best_space"], strict=True))
    deep = settings.space_name(settings.driver_layer)
    checks: dict[str, dict] = {}
    if "EV" in best:
        checks["EV is best predicted by Gabor features"] = {"passed": best["EV"] == GABOR, "found": best["EV"]}
    if "HV" in best:
        checks[f"HV is best predicted by {deep}"] = {"passed": best["HV"] == deep, "found": best["HV"]}
    cal = table[table["roi"] == "CAL"]
    if len(cal):
        r = cal[f"r[{deep}]"].to_numpy()
        recovered = float(np.nanmedian(np.clip(r, 0, None) ** 2 / cal["true_noise_ceiling"].to_numpy()))
        checks["CAL voxels reach >= 80% of the true noise ceiling (median r^2 / NC)"] = {
            "passed": recovered >= 0.8,
            "found": round(recovered, 3),
        }
    nc_r = float(np.corrcoef(table["noise_ceiling"], table["true_noise_ceiling"])[0, 1])
    nc_err = float(np.median(np.abs(table["noise_ceiling"] - table["true_noise_ceiling"])))
    checks["estimated noise ceiling tracks the truth (r > 0.8)"] = {
        "passed": nc_r > 0.8,
        "found": {"correlation": round(nc_r, 3), "median_abs_error": round(nc_err, 3)},
    }
    return checks


def run_demo(
    out_dir: str | Path, settings: DemoSettings | None = None, cache_dir: str | Path | None = None
) -> DemoResult:
    """Run the whole demo and write its report folder.

    Parameters
    ----------
    out_dir : path
        Report folder (index.html, figures, metrics JSON/CSV, the saved experiment).
    settings : DemoSettings, optional
    cache_dir : path, optional
        Feature cache; default ``out_dir / "cache"``.

    Returns
    -------
    DemoResult
    """
    settings = settings or DemoSettings()
    out_dir = Path(out_dir)
    store = FeatureStore(Path(cache_dir) if cache_dir is not None else out_dir / "cache")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    _log(settings, f"[1/5] Cutting {settings.n_stimuli} stimuli from bundled photographs")
    stimuli, splits = make_stimuli(settings.n_stimuli, image_size=settings.image_size, seed=settings.seed)
    images = stimuli.load_images()
    timings["stimuli"] = time.perf_counter() - t0

    _log(settings, "[2/5] Features: Gabor pyramid and EfficientNet-Lite0 layers (cached)")
    t = time.perf_counter()
    raw, hits = compute_features(images, settings, store)
    timings["features"] = time.perf_counter() - t

    t = time.perf_counter()
    train = splits["train"]
    spaces = {GABOR: standardise_columns(raw[GABOR], train).astype(np.float32)}
    for layer in settings.deep_layers:
        name = settings.space_name(layer)
        reduced, _ = reduce_features(raw[name], train, Reduction("pca", settings.n_components, seed=settings.seed))
        spaces[name] = standardise_columns(reduced, train).astype(np.float32)
    driver = settings.space_name(settings.driver_layer)
    drivers = SimulationDrivers(
        gabor_energy=raw[GABOR],
        gabor_channels=GaborPyramid(image_size=settings.gabor_size).channels(),
        deep=raw[driver],
        calibration=spaces[driver],
        is_face=stimuli.table["is_face"].to_numpy(),
        names={"deep": driver, "calibration": f"{driver} (PCA {spaces[driver].shape[1]})"},
    )
    _log(settings, f"[3/5] Simulating a subject with {settings.n_voxels} voxels")
    experiment = simulate_responses(
        stimuli, splits, drivers, SubjectConfig.scaled(settings.n_voxels), seed=settings.seed
    )
    experiment.save(out_dir / "experiment")
    timings["simulation"] = time.perf_counter() - t

    _log(settings, f"[4/5] Fitting voxelwise ridge for {len(spaces)} feature spaces")
    t = time.perf_counter()
    table = fit_and_score(experiment, spaces, settings.n_folds, settings.seed, settings.progress)
    timings["encoding"] = time.perf_counter() - t

    summary = summarise(table, list(spaces))
    checks = ground_truth_checks(table, summary, settings)
    timings["total"] = time.perf_counter() - t0

    _log(settings, "[5/5] Writing the report")
    result = DemoResult(out_dir, experiment, table, summary, checks, timings, hits)
    facts = {
        "subject": experiment.subject,
        "n_stimuli": len(experiment.stimuli),
        "n_train": len(splits["train"]),
        "n_test": len(splits["test"]),
        "test_repeats": experiment.metadata["simulation"]["test_repeats"],
        "n_voxels": experiment.responses.n_voxels,
        "seed": settings.seed,
        "n_folds": settings.n_folds,
        "driver_space": driver,
    }
    content = DemoReportContent(summary, table, checks, facts, asdict(settings), timings, hits)
    write_demo_report(content, out_dir)
    with atomic_path(out_dir / "settings.json") as tmp:
        tmp.write_text(json.dumps(asdict(settings), indent=2))
    return result
