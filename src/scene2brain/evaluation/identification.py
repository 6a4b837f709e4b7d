"""Image identification from brain activity (Kay, Naselaris, Prenger & Gallant 2008).

An encoding model predicts the voxel pattern every candidate image would evoke; a
measured pattern is assigned to the candidate whose predicted pattern correlates
best with it (Pearson r across the selected voxels). Kay et al. used the 500 voxels
best predicted on the training data and 120 novel candidate images.

Accuracy for a set size ``N`` other than the number of candidates comes in two forms:

- :func:`identification_curve` is exact for ``N <= n_candidates``: the chance that
  the correct image beats ``N - 1`` incorrect candidates drawn without replacement
  from the available ones, averaged over measured patterns (no sampling noise);
- :func:`extrapolate_identification` reaches set sizes far beyond the candidates
  (Kay et al. extrapolated to 10^11 images) by modelling, for each measured pattern,
  the correlations with incorrect images as a normal distribution fitted to the
  observed ones: ``P(correct | N) = Phi((c - mu) / sigma) ** (N - 1)``.

Check the normal model where it can be checked: compare the two for set sizes up to
the number of candidates. When the incorrect-match correlations have lighter tails
than a normal law (as for a candidate set made of clusters of similar images, e.g.
crops of a few photographs), the extrapolation is pessimistic; with heavier tails it
is optimistic.

NaN correlations (a constant or non-finite measured or predicted pattern has no Pearson
r with anything) never help the shown candidate: a comparison that involves a NaN is a
tie, and ties count against the shown candidate in its rank, so in the n-way accuracy
and the set-size curves, and one half in the pairwise accuracy. A measured pattern
whose correlation with its own candidate is NaN therefore always ranks last (a miss),
and a candidate with a constant predicted pattern ranks at or above the shown one for
every measured pattern. :func:`identify` warns (``RuntimeWarning``) with the number of
such patterns.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


def select_voxels(train_scores: np.ndarray, n_voxels: int = 500) -> np.ndarray:
    """Indices of the ``n_voxels`` best-predicted voxels (NaN scores never selected).

    The scores must come from training data only (e.g. ``RidgeCV.cv_scores_.max(0)``),
    otherwise selection leaks the test set.
    """
    scores = np.asarray(train_scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"train_scores: expected one score per voxel, got shape {scores.shape}")
    finite = np.flatnonzero(np.isfinite(scores))
    if n_voxels < 1 or n_voxels > len(finite):
        raise ValueError(f"n_voxels: expected 1..{len(finite)} (voxels with a finite score), got {n_voxels}")
    order = np.argsort(-scores[finite], kind="stable")
    return np.sort(finite[order[:n_voxels]])


def _unusable_rows(patterns: np.ndarray) -> np.ndarray:
    """Rows that have no Pearson r: constant (zero variance) or holding a non-finite value."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(patterns).all(axis=1) | (np.ptp(patterns, axis=1) == 0)


def pattern_correlations(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Pearson r between every measured and every predicted pattern, across voxels.

    A constant or non-finite pattern (measured or predicted) gets NaN correlations
    with everything, also when rounding leaves its centred values slightly off zero.

    Parameters
    ----------
    measured : ndarray of shape (n_measured, n_voxels)
    predicted : ndarray of shape (n_candidates, n_voxels)

    Returns
    -------
    ndarray of shape (n_measured, n_candidates)
    """
    m = np.asarray(measured, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if m.ndim != 2 or p.ndim != 2 or m.shape[1] != p.shape[1]:
        raise ValueError(
            f"measured {m.shape} and predicted {p.shape}: expected (n_measured, n_voxels) and (n_candidates, n_voxels)"
        )
    m_bad, p_bad = _unusable_rows(m), _unusable_rows(p)
    m = m - m.mean(axis=1, keepdims=True)
    p = p - p.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        p /= np.linalg.norm(p, axis=1, keepdims=True)
    m[m_bad] = np.nan
    p[p_bad] = np.nan
    return m @ p.T


@dataclass
class IdentificationResult:
    """Outcome of identifying measured patterns among candidates.

    Attributes
    ----------
    correlations : ndarray (n_measured, n_candidates)
    true_index : ndarray (n_measured,)
        Candidate that was actually shown.
    predicted_index : ndarray (n_measured,)
        Best-correlated candidate among those with a finite correlation; -1 where every
        correlation is NaN. Where some correlations are NaN it can be the shown
        candidate while ``rank > 1``: ``rank`` is what the accuracies count.
    rank : ndarray (n_measured,)
        Rank of the correct candidate, 1 = identified. Ties count against it, and a
        comparison involving a NaN correlation is a tie: a NaN correlation with the
        correct candidate ranks it last (``n_candidates``).
    accuracy : float
        n-way accuracy (share of ``rank == 1``); chance is ``1 / n_candidates``.
    pairwise_accuracy : float
        Share of (correct, incorrect) candidate pairs in which the correct one has
        the higher correlation, ties (NaN comparisons included) counting one half;
        chance is 0.5.
    """

    correlations: np.ndarray
    true_index: np.ndarray
    predicted_index: np.ndarray
    rank: np.ndarray
    accuracy: float
    pairwise_accuracy: float

    @property
    def n_candidates(self) -> int:
        return self.correlations.shape[1]

    @property
    def chance(self) -> float:
        return 1.0 / self.n_candidates


def _correct_and_others(correlations: np.ndarray, true_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(len(true_index))
    correct = correlations[rows, true_index]
    mask = np.ones(correlations.shape, dtype=bool)
    mask[rows, true_index] = False
    others = correlations[mask].reshape(len(true_index), -1)
    return correct, others


def _ranking(correct: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per measured pattern: incorrect candidates at or above the correct one, and pairwise wins.

    A comparison that involves a NaN correlation is a tie: it counts against the
    correct candidate in the first count and one half in the second.
    """
    correct = correct[:, None]
    tie = (others == correct) | np.isnan(others) | np.isnan(correct)
    above = (others > correct) | tie
    wins = (others < correct).sum(axis=1) + 0.5 * tie.sum(axis=1)
    return above.sum(axis=1), wins


def _warn_unusable(measured: np.ndarray, predicted: np.ndarray) -> None:
    bad_m, bad_p = int(_unusable_rows(measured).sum()), int(_unusable_rows(predicted).sum())
    if bad_m or bad_p:
        warnings.warn(
            f"identify: {bad_m} of {len(measured)} measured patterns and {bad_p} of {len(predicted)} predicted "
            "patterns are constant or not finite, so their correlations are NaN; a NaN correlation with the "
            "shown candidate counts as a miss and one with another candidate as a tie ranked against the "
            "shown one",
            RuntimeWarning,
            stacklevel=3,
        )


def _check_truth(correlations: np.ndarray, true_index: np.ndarray | None) -> np.ndarray:
    n_meas, n_cand = correlations.shape
    if n_cand < 2:
        raise ValueError(f"need at least 2 candidates, got {n_cand}")
    truth = np.arange(n_meas) if true_index is None else np.asarray(true_index)
    if truth.shape != (n_meas,) or not np.issubdtype(truth.dtype, np.integer):
        raise ValueError(f"true_index: expected {n_meas} integer candidate indices, got {truth.dtype} {truth.shape}")
    if truth.min() < 0 or truth.max() >= n_cand:
        raise ValueError(f"true_index: values must lie in 0..{n_cand - 1}, got {truth.min()}..{truth.max()}")
    return truth


def identify(
    measured: np.ndarray,
    predicted: np.ndarray,
    true_index: np.ndarray | None = None,
    voxels: np.ndarray | None = None,
) -> IdentificationResult:
    """Identify which candidate image evoked each measured pattern.

    Parameters
    ----------
    measured : ndarray of shape (n_measured, n_voxels)
        Measured responses: one row per trial (single-trial identification) or per
        repeat-averaged image.
    predicted : ndarray of shape (n_candidates, n_voxels)
        Predicted responses to every candidate image.
    true_index : ndarray of shape (n_measured,), optional
        Row of ``predicted`` that was actually shown; by default measured row ``i``
        goes with candidate ``i``.
    voxels : ndarray, optional
        Voxels to use (indices or mask), e.g. from :func:`select_voxels`.

    Returns
    -------
    IdentificationResult

    Warns
    -----
    RuntimeWarning
        When a measured or predicted pattern is constant across the voxels used (or
        holds a NaN or infinite value): its correlations are NaN, which count against
        the shown candidate (see the module notes); the message says how many.
    """
    if voxels is not None:
        measured = np.asarray(measured)[:, voxels]
        predicted = np.asarray(predicted)[:, voxels]
    corr = pattern_correlations(measured, predicted)
    truth = _check_truth(corr, true_index)
    _warn_unusable(np.asarray(measured, dtype=np.float64), np.asarray(predicted, dtype=np.float64))
    correct, others = _correct_and_others(corr, truth)
    beaten, wins = _ranking(correct, others)
    finite = np.isfinite(corr)
    best = np.argmax(np.where(finite, corr, -np.inf), axis=1)
    return IdentificationResult(
        correlations=corr,
        true_index=truth,
        predicted_index=np.where(finite.any(axis=1), best, -1),
        rank=1 + beaten,
        accuracy=float(np.mean(beaten == 0)),
        pairwise_accuracy=float(wins.sum() / others.size),
    )


def _log_comb(n: np.ndarray | int, r: np.ndarray | int) -> np.ndarray:
    """log C(n, r) through log-gamma (no overflow for large n)."""
    return special.gammaln(n + 1) - special.gammaln(r + 1) - special.gammaln(n - r + 1)


def identification_curve(result: IdentificationResult, set_sizes: np.ndarray) -> np.ndarray:
    """Expected n-way accuracy for set sizes up to the number of candidates.

    For a measured pattern whose correct candidate is beaten (or tied, NaN
    correlations included) by ``k`` of the ``M - 1`` incorrect ones, a random set of ``N - 1`` incorrect candidates
    misses all ``k`` with probability ``C(M-1-k, N-1) / C(M-1, N-1)``; the curve
    averages this over measured patterns. Exact, with no sampling.

    Parameters
    ----------
    result : IdentificationResult
    set_sizes : array of int in 2..n_candidates

    Returns
    -------
    ndarray of shape (len(set_sizes),)
    """
    sizes = np.atleast_1d(np.asarray(set_sizes))
    m = result.n_candidates
    if sizes.min() < 2 or sizes.max() > m:
        raise ValueError(f"set_sizes: expected values in 2..{m} (the number of candidates), got {sizes.tolist()}")
    k = result.rank - 1  # incorrect candidates at or above the correct one, per measured pattern
    free = m - 1 - k
    curve = []
    for size in sizes:
        draws = size - 1
        with np.errstate(invalid="ignore"):
            log_p = np.where(free >= draws, _log_comb(free, draws) - _log_comb(m - 1, draws), -np.inf)
        curve.append(np.exp(log_p).mean())
    return np.array(curve)


def extrapolate_identification(result: IdentificationResult, set_sizes: np.ndarray) -> np.ndarray:
    """Predicted n-way accuracy for any set size, under a normal model of incorrect matches.

    For each measured pattern, the correlations with the incorrect candidates are
    modelled as draws from a normal distribution with their mean ``mu`` and SD
    ``sigma``; the correct image, with correlation ``c``, wins against ``N - 1`` such
    draws with probability ``Phi((c - mu) / sigma) ** (N - 1)``. Averaging over
    measured patterns gives the accuracy; computed in log space so set sizes such
    as 1e12 are fine.

    NaN correlations never help the correct image: a pattern whose correlation with
    its own candidate is NaN (or that has fewer than 2 finite incorrect correlations to
    fit) has accuracy 0, and incorrect candidates with a NaN correlation (a share
    ``q``) count as beating it: ``P = ((1 - q) Phi((c - mu) / sigma)) ** (N - 1)``, with
    ``mu`` and ``sigma`` fitted to the finite ones.

    Parameters
    ----------
    result : IdentificationResult
        Needs at least 3 candidates (2 incorrect ones) to estimate ``sigma``.
    set_sizes : array of float >= 2

    Returns
    -------
    ndarray of shape (len(set_sizes),)
    """
    sizes = np.atleast_1d(np.asarray(set_sizes, dtype=np.float64))
    if sizes.min() < 2:
        raise ValueError(f"set_sizes: expected values >= 2, got {sizes.min()}")
    if result.n_candidates < 3:
        raise ValueError("extrapolate_identification: needs at least 3 candidates to fit the incorrect-match spread")
    correct, others = _correct_and_others(result.correlations, result.true_index)
    finite = np.isfinite(others)
    n_finite = finite.sum(axis=1)
    values = np.where(finite, others, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = values.sum(axis=1) / n_finite
        sigma = np.sqrt((np.where(finite, others - mu[:, None], 0.0) ** 2).sum(axis=1) / (n_finite - 1))
        z = (correct - mu) / sigma
        log_win = special.log_ndtr(z) + np.log(n_finite / others.shape[1])
    log_win = np.where(np.isnan(log_win) | (n_finite < 2), -np.inf, log_win)
    return np.exp((sizes[:, None] - 1.0) * log_win[None, :]).mean(axis=1)


def set_size_at_accuracy(result: IdentificationResult, accuracy: float = 0.1) -> float:
    """Set size at which :func:`extrapolate_identification` falls to ``accuracy``.

    Kay et al. report this for 10 %: 10^11.3 images for subject S1 with the Gabor
    model. Returns ``inf`` if the accuracy is never reached before 10^300 images and
    2 if it is already below at 2 candidates.
    """
    if not 0 < accuracy < 1:
        raise ValueError(f"accuracy: expected a value in (0, 1), got {accuracy}")

    def gap(log10_size: float) -> float:
        return float(extrapolate_identification(result, [10.0**log10_size])[0]) - accuracy

    lo, hi = np.log10(2.0), 300.0
    if gap(lo) <= 0:
        return 2.0
    if gap(hi) > 0:
        return float("inf")
    return float(10.0 ** optimize.brentq(gap, lo, hi, xtol=1e-6))
