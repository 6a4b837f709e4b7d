"""Plan an experiment by simulation: what more training images and more test repeats buy.

For a stimulus set (the bundled photographs or your own images) and its split,
:func:`plan_experiment` simulates subjects (:func:`~scene2brain.data.simulate.simulate_responses`,
the demo's ROIs and SNR laws) for every combination of a number of training images and
a number of test repeats, analyses each like real data, and reports against the
simulation's truth:

- ``nc_median_abs_error``: how far the noise ceiling estimated from the test repeats is
  from the true one (median over voxels; NaN with one repeat, where it cannot be estimated);
- ``fraction_of_ceiling``: per ROI, the median over voxels of ``max(r, 0)^2 / true NC``
  of a voxelwise ridge (alphas by 5-fold CV on the training images) from the ROI's driver
  space (Gabor energies for EV, the driver layer's PCA for the others);
- ``identification``: image identification accuracy among the test images (Kay et al.
  2008) from every voxel's predicted pattern, and its chance level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from scene2brain.data.containers import Stimuli
from scene2brain.data.simulate import SimulationDrivers, SubjectConfig, simulate_responses
from scene2brain.encoding.registry import fit_encoder
from scene2brain.evaluation.identification import identify
from scene2brain.evaluation.metrics import pearson_r
from scene2brain.evaluation.noise_ceiling import ncsnr_from_repeats, noise_ceiling_from_ncsnr
from scene2brain.features.extraction import extract_features
from scene2brain.features.gabor import GaborPyramid
from scene2brain.features.models import load_model
from scene2brain.features.reduction import Reduction, reduce_features
from scene2brain.features.store import FeatureStore
from scene2brain.pipeline.plan import training_folds, training_groups
from scene2brain.utils.arrays import standardise_columns

N_FOLDS = 5  # folds of the training images that choose each voxel's alpha
MIN_TRAIN = 2 * N_FOLDS  # every fold holds out at least 2 images


def simulation_drivers(
    stimuli: Stimuli,
    train: np.ndarray,
    store: FeatureStore,
    gabor_size: int = 64,
    driver_model: str = "efficientnet-lite0",
    driver_layer: str = "head",
    n_components: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> SimulationDrivers:
    """The drivers of a simulated subject (Gabor energies, the driver layer and its PCA on ``train``)."""
    gabor = extract_features(stimuli, load_model("gabor", image_size=gabor_size), ["energy"], store=store,
                             progress=progress)["energy"]  # fmt: skip
    deep = extract_features(stimuli, driver_model, [driver_layer], store=store, progress=progress)[driver_layer]
    calibration, _ = reduce_features(deep, train, Reduction("pca", n_components, seed=seed))
    name = f"{driver_model}:{driver_layer}"
    return SimulationDrivers(
        gabor_energy=gabor,
        gabor_channels=GaborPyramid.kay2008(gabor_size, aperture=False).channels(),
        deep=deep,
        calibration=calibration,
        is_face=stimuli.table["is_face"].to_numpy().astype(bool),
        names={"deep": name, "calibration": f"{name} (PCA {calibration.shape[1]})"},
    )


def check_plan(splits: dict[str, np.ndarray], n_train: Sequence[int], repeats: Sequence[int]) -> None:
    """A ValueError naming the numbers of training images or repeats that ``splits`` cannot give."""
    available = len(splits["train"])
    too_many = [n for n in n_train if not MIN_TRAIN <= n <= available]
    if too_many:
        raise ValueError(
            f"n_train: {too_many} outside {MIN_TRAIN}..{available} (5-fold CV needs {MIN_TRAIN} training "
            f"images; {available} are available)"
        )
    if any(r < 1 for r in repeats):
        raise ValueError(f"repeats: expected positive numbers of test repeats, got {list(repeats)}")


def plan_experiment(
    stimuli: Stimuli,
    splits: dict[str, np.ndarray],
    drivers: SimulationDrivers,
    n_train: Sequence[int],
    repeats: Sequence[int],
    n_voxels: int = 600,
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate and analyse one subject per (number of training images, test repeats); one row per ROI.

    Parameters
    ----------
    stimuli : Stimuli
    splits : dict
        ``train`` and ``test`` positions; each simulation uses ``n`` training images drawn
        from ``train`` (the same draw for every number of repeats) and every test image.
    drivers : SimulationDrivers
        From :func:`simulation_drivers`.
    n_train, repeats : sequences of int
    n_voxels : int
        Voxels per simulated subject (the demo's ROI proportions).
    seed : int

    Returns
    -------
    DataFrame
        Columns ``n_train``, ``test_repeats``, ``roi``, ``n_voxels``, ``fraction_of_ceiling``,
        ``nc_median_abs_error``, ``identification``, ``chance``.
    """
    check_plan(splits, n_train, repeats)
    train_pool, test = np.asarray(splits["train"]), np.asarray(splits["test"])
    order = np.random.default_rng(seed).permutation(train_pool)
    without = () if drivers.is_face.any() else ("FACE",)
    spaces = {"gabor": drivers.gabor_energy, "calibration": drivers.calibration}
    rows = []
    for n in n_train:
        train = np.sort(order[:n])
        for n_repeats in repeats:
            config = replace(SubjectConfig.scaled(n_voxels, without=without), test_repeats=n_repeats)
            experiment = simulate_responses(stimuli, {"train": train, "test": test}, drivers, config, seed=seed)
            rows += _analyse(experiment, train, test, spaces, n, n_repeats, seed)
    return pd.DataFrame(rows)


def _analyse(experiment, train, test, spaces, n_train, n_repeats, seed) -> list[dict]:
    responses = experiment.responses
    averaged = experiment.average_repeats().responses
    row_of = {s: i for i, s in enumerate(averaged.trial_stimulus)}
    y_train = averaged.data[[row_of[s] for s in train]]
    y_test = averaged.data[[row_of[s] for s in test]]
    voxels = experiment.voxels
    roi = voxels["roi"].to_numpy()
    predictions = np.empty_like(y_test)
    folds = training_folds(training_groups(experiment.stimuli.table, train), N_FOLDS, seed)
    for space, rois in (("gabor", roi == "EV"), ("calibration", roi != "EV")):
        X = spaces[space]
        if space == "gabor":  # z-scored as the run's "standardise"; PCA scores keep their variances (a
            # z-scored PCA space is white, so ridge would give OLS's r for every alpha)
            X = standardise_columns(X, train)
        if rois.any():
            fitted = fit_encoder("ridge", X[train], y_train[:, rois], folds)
            predictions[:, rois] = fitted.predict(X[test])
    true_nc = voxels["true_noise_ceiling"].to_numpy()
    fraction = np.clip(pearson_r(y_test, predictions), 0, None) ** 2 / true_nc
    if n_repeats >= 2:
        trials = np.isin(responses.trial_stimulus, test)
        ncsnr = ncsnr_from_repeats(responses.data[trials], responses.trial_stimulus[trials])
        nc_error = np.abs(noise_ceiling_from_ncsnr(ncsnr, n_repeats) - true_nc)
    else:
        nc_error = np.full(len(true_nc), np.nan)
    identification = identify(y_test, predictions).accuracy
    rows = []
    for name in [*dict.fromkeys(roi), "all"]:
        mask = np.ones(len(roi), bool) if name == "all" else roi == name
        rows.append(
            {
                "n_train": n_train,
                "test_repeats": n_repeats,
                "roi": name,
                "n_voxels": int(mask.sum()),
                "fraction_of_ceiling": float(np.nanmedian(fraction[mask])),
                "nc_median_abs_error": float(np.median(nc_error[mask])),
                "identification": identification,
                "chance": 1 / len(test),
            }
        )
    return rows
