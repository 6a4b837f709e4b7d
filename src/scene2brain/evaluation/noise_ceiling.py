"""Noise ceilings from repeated trials, and the noise-normalised accuracy of Algonauts 2023."""

from __future__ import annotations

import numpy as np

from scene2brain.utils.arrays import group_means


def ncsnr_from_repeats(responses: np.ndarray, trial_stimulus: np.ndarray) -> np.ndarray:
    """Noise-ceiling SNR per voxel from repeated presentations, as NSD estimates it.

    The noise variance is the within-stimulus variance of the trials (ddof=1) pooled
    over stimuli shown at least twice; the signal variance is the total variance of
    those trials minus the noise variance, clipped at zero; ``ncsnr = signal SD /
    noise SD``.

    Parameters
    ----------
    responses : ndarray of shape (n_trials, n_voxels)
    trial_stimulus : ndarray of shape (n_trials,)
        Stimulus of each trial.

    Returns
    -------
    ndarray of shape (n_voxels,)
    """
    y = np.asarray(responses, dtype=np.float64)
    trial_stimulus = np.asarray(trial_stimulus)
    if y.ndim != 2 or len(trial_stimulus) != len(y):
        raise ValueError(
            f"responses {y.shape} and trial_stimulus {trial_stimulus.shape}: "
            "expected shapes (n_trials, n_voxels) and (n_trials,)"
        )
    labels, counts = np.unique(trial_stimulus, return_counts=True)
    repeated = np.isin(trial_stimulus, labels[counts >= 2])
    if not repeated.any():
        raise ValueError("ncsnr_from_repeats: no stimulus was shown more than once")
    y, stimulus = y[repeated], trial_stimulus[repeated]
    labels, means, counts = group_means(y, stimulus)
    residuals = y - means[np.searchsorted(labels, stimulus)]
    within = (residuals**2).sum(axis=0) / (len(y) - len(counts))
    total = y.var(axis=0, ddof=1)
    signal = np.clip(total - within, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ncsnr = np.sqrt(signal / within)
    ncsnr[within == 0] = np.nan
    return ncsnr


def noise_ceiling_from_ncsnr(ncsnr: np.ndarray, n_trials: int | np.ndarray = 1) -> np.ndarray:
    """Fraction of variance explainable in responses averaged over ``n_trials`` trials.

    ``NC = ncsnr**2 / (ncsnr**2 + 1/n)``. When ``n_trials`` is an array (the number of
    trials behind each test stimulus), ``1/n`` is replaced by its mean over stimuli:
    the repeat-weighted form the Algonauts 2023 challenge used.
    """
    n = np.asarray(n_trials, dtype=np.float64)
    if np.any(n < 1):
        raise ValueError(f"n_trials: expected values >= 1, got min {n.min()}")
    norm = np.mean(1.0 / n)
    ncsnr = np.asarray(ncsnr, dtype=np.float64)
    return ncsnr**2 / (ncsnr**2 + norm)


def noise_normalised_accuracy(r: np.ndarray, noise_ceiling: np.ndarray) -> np.ndarray:
    """Algonauts 2023 noise-normalised encoding accuracy per voxel, in percent.

    Negative correlations count as 0; ``100 * r**2 / NC`` with NC = 0 replaced by
    1e-14; capped at 100. NaN correlations stay NaN.
    """
    r = np.asarray(r, dtype=np.float64)
    nc = np.asarray(noise_ceiling, dtype=np.float64).copy()
    nc[nc == 0] = 1e-14
    score = 100.0 * np.clip(r, 0.0, None) ** 2 / nc
    return np.minimum(score, 100.0)
