"""Noise ceilings from repeated trials, and the noise-normalised accuracy of Algonauts 2023.

Four estimators of the same quantity, checked against each other in the tests. With
signal variance ``s2`` and trial-noise variance ``n2`` per voxel, the fraction of the
variance of an ``n``-trial average that a perfect model can explain is

    NC_n = s2 / (s2 + n2 / n)

- :func:`ncsnr_from_repeats` + :func:`noise_ceiling_from_ncsnr` (NSD, Algonauts):
  ``ncsnr = sqrt(s2 / n2)``, ``NC_n = ncsnr**2 / (ncsnr**2 + 1/n)``;
- :func:`explainable_variance` (voxelwise tutorials): ``NC_1`` with the repeat-count
  bias correction, and :func:`spearman_brown` to step it up to ``n`` trials;
- :func:`split_half_reliability`: the correlation between halves of the repeats,
  stepped up to all repeats with the Spearman-Brown formula.

``NC`` is a fraction of variance: it bounds ``r**2``; ``sqrt(NC)`` bounds ``r``.
"""

from __future__ import annotations

import numpy as np

from scene2brain.utils.arrays import check_same_length, check_same_shape, group_means


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
    if y.ndim != 2 or trial_stimulus.ndim != 1:
        raise ValueError(
            f"responses {y.shape} and trial_stimulus {trial_stimulus.shape}: "
            "expected shapes (n_trials, n_voxels) and (n_trials,)"
        )
    check_same_length(responses=y, trial_stimulus=trial_stimulus)
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


def repeats_array(
    responses: np.ndarray, trial_stimulus: np.ndarray, n_repeats: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Arrange single trials as ``(n_repeats, n_stimuli, n_voxels)`` for the repeat-based ceilings.

    Parameters
    ----------
    responses : ndarray of shape (n_trials, n_voxels)
    trial_stimulus : ndarray of shape (n_trials,)
    n_repeats : int, optional
        Trials kept per stimulus; stimuli with fewer are left out, stimuli with more
        keep their first ``n_repeats`` trials (in trial order). Default: the smallest
        count among the stimuli shown at least twice.

    Returns
    -------
    stimuli : ndarray of shape (n_stimuli,)
        Sorted labels of the stimuli kept.
    repeats : ndarray of shape (n_repeats, n_stimuli, n_voxels)

    Examples
    --------
    >>> stim, rep = repeats_array(np.arange(5.0)[:, None], np.array([4, 9, 4, 9, 1]))
    >>> stim.tolist(), rep[..., 0].tolist()
    ([4, 9], [[0.0, 1.0], [2.0, 3.0]])
    """
    y = np.asarray(responses)
    trial_stimulus = np.asarray(trial_stimulus)
    if y.ndim != 2 or trial_stimulus.ndim != 1:
        raise ValueError(
            f"responses {y.shape} and trial_stimulus {trial_stimulus.shape}: "
            "expected shapes (n_trials, n_voxels) and (n_trials,)"
        )
    check_same_length(responses=y, trial_stimulus=trial_stimulus)
    labels, inverse, counts = np.unique(trial_stimulus, return_inverse=True, return_counts=True)
    if n_repeats is None:
        if not (counts >= 2).any():
            raise ValueError("trial_stimulus: no stimulus was shown more than once")
        n_repeats = int(counts[counts >= 2].min())
    if n_repeats < 2:
        raise ValueError(f"n_repeats: expected at least 2, got {n_repeats}")
    keep = counts >= n_repeats
    if not keep.any():
        raise ValueError(f"n_repeats={n_repeats}: no stimulus was shown that many times (max {counts.max()})")
    order = np.argsort(inverse, kind="stable")  # trials grouped by stimulus, in trial order
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[keep]
    rows = order[starts[None, :] + np.arange(n_repeats)[:, None]]
    return labels[keep], y[rows]


def _check_repeats(repeats: np.ndarray) -> np.ndarray:
    data = np.asarray(repeats, dtype=np.float64)
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3 or data.shape[0] < 2 or data.shape[1] < 3:
        raise ValueError(f"repeats: expected shape (n_repeats >= 2, n_stimuli >= 3, n_voxels), got {np.shape(repeats)}")
    return data


def explainable_variance(repeats: np.ndarray, bias_correction: bool = True, zscore: bool = True) -> np.ndarray:
    """Fraction of a single trial's variance that repeats across presentations.

    ``ev = Var_stimuli(mean over repeats) / mean over repeats of Var_stimuli``, with
    the bias correction ``ev - (1 - ev) / (n_repeats - 1)`` that removes the noise left
    in the mean of finitely many repeats (Hsu et al. 2004; Schoppe et al. 2016; the
    voxelwise tutorials' ``explainable_variance``). The corrected value estimates
    ``NC_1``; ``spearman_brown(ev, n)`` gives the ceiling for an ``n``-trial average.

    Parameters
    ----------
    repeats : ndarray of shape (n_repeats, n_stimuli, n_voxels)
        See :func:`repeats_array`.
    bias_correction : bool
    zscore : bool
        Z-score each repeat over stimuli first (as the voxelwise tutorials do), so
        repeats with different gains or offsets count equally.

    Returns
    -------
    ndarray of shape (n_voxels,)
        Can be slightly negative for voxels without signal (an unbiased estimate of 0).
    """
    data = _check_repeats(repeats)
    if zscore:
        data = (data - data.mean(axis=1, keepdims=True)) / data.std(axis=1, keepdims=True)
    mean_var = data.var(axis=1, ddof=1).mean(axis=0)
    var_mean = data.mean(axis=0).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ev = var_mean / mean_var
    if bias_correction:
        ev = ev - (1.0 - ev) / (data.shape[0] - 1)
    return ev


def spearman_brown(reliability: np.ndarray, factor: float | np.ndarray) -> np.ndarray:
    """Reliability of an average of ``factor`` times as many trials: ``k r / (1 + (k - 1) r)``.

    Either argument may be a scalar; two arrays must have the same shape (one factor
    per reliability), never broadcast against each other.

    Examples
    --------
    >>> float(spearman_brown(0.5, 2))
    0.6666666666666666
    """
    r = np.asarray(reliability, dtype=np.float64)
    k = np.asarray(factor, dtype=np.float64)
    if r.ndim and k.ndim:
        check_same_shape(reliability=r, factor=k)
    if np.any(k <= 0):
        raise ValueError(f"factor: expected values > 0, got {factor}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return k * r / (1.0 + (k - 1.0) * r)


def split_half_reliability(
    repeats: np.ndarray, n_splits: int = 100, spearman_brown_correction: bool = True, random_state: int = 0
) -> np.ndarray:
    """Split-half reliability of the repeat-averaged response, per voxel.

    For each of ``n_splits`` random splits of the repeats into two halves of
    ``h = n_repeats // 2`` trials (an odd leftover trial is left out of that split),
    correlate the two half-means over stimuli; average the correlations over splits.
    With ``spearman_brown_correction``, step the result up from ``h`` trials to all
    ``n_repeats`` trials (factor ``n_repeats / h``), which estimates ``NC_n``.

    Parameters
    ----------
    repeats : ndarray of shape (n_repeats, n_stimuli, n_voxels)
    n_splits : int
    spearman_brown_correction : bool
    random_state : int

    Returns
    -------
    ndarray of shape (n_voxels,)
    """
    data = _check_repeats(repeats)
    n_rep = data.shape[0]
    half = n_rep // 2
    rng = np.random.default_rng(random_state)
    total = np.zeros(data.shape[2])
    for _ in range(n_splits):
        perm = rng.permutation(n_rep)
        a = data[perm[:half]].mean(axis=0)
        b = data[perm[half : 2 * half]].mean(axis=0)
        a -= a.mean(axis=0)
        b -= b.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            total += (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    r = total / n_splits
    return spearman_brown(r, n_rep / half) if spearman_brown_correction else r


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

    Parameters
    ----------
    r : ndarray of shape (n_voxels,)
        Pearson r per voxel.
    noise_ceiling : ndarray of the same shape as ``r``
        Fraction of explainable variance per voxel (never broadcast: shapes (5,) and
        (5, 1) are an error, not a (5, 5) result).

    Returns
    -------
    ndarray of the shape of ``r``
    """
    r = np.asarray(r, dtype=np.float64)
    nc = np.asarray(noise_ceiling, dtype=np.float64).copy()
    check_same_shape(r=r, noise_ceiling=nc)
    nc[nc == 0] = 1e-14
    score = 100.0 * np.clip(r, 0.0, None) ** 2 / nc
    return np.minimum(score, 100.0)


#: Names of the two primary scores (see :func:`primary_score`).
NNACC, PEARSON_R = "nnacc", "r"


def primary_score(noise_ceiling: np.ndarray) -> str:
    """Which score ranks models: ``"nnacc"`` where a noise ceiling exists, else ``"r"``.

    The one rule every table, check, figure and report of a run uses: the noise-normalised
    accuracy (:func:`noise_normalised_accuracy`) when any voxel has a noise ceiling;
    Pearson r when none has (``noise_ceiling`` all NaN).

    Examples
    --------
    >>> primary_score(np.array([0.4, np.nan])), primary_score(np.full(2, np.nan))
    ('nnacc', 'r')
    """
    return PEARSON_R if np.isnan(np.asarray(noise_ceiling, dtype=np.float64)).all() else NNACC


def scores_with_ceiling(r: np.ndarray, noise_ceiling: np.ndarray) -> np.ndarray:
    """Noise-normalised accuracy per voxel; NaN where the voxel has no noise ceiling (same shapes, never broadcast)."""
    ceiling = np.asarray(noise_ceiling, dtype=np.float64)
    check_same_shape(r=r, noise_ceiling=ceiling)
    return np.where(np.isnan(ceiling), np.nan, noise_normalised_accuracy(r, np.nan_to_num(ceiling)))
