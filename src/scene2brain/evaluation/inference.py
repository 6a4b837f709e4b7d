"""Seeded inference for encoding scores: permutation tests, bootstrap intervals, paired comparisons.

Every function takes ``random_state`` and gives the same answer for the same seed.
Monte-Carlo p-values are ``(1 + #{null >= observed}) / (1 + n_resamples)``, never 0
(Phipson & Smyth 2010). When the number of distinct resamples is at most
``n_permutations``, the test enumerates them all and the p-value is exact.

Resampling statistics of correlations are matrix products, not loops over resamples:
a bootstrap resample of the stimuli is a row of counts ``c`` (how often each stimulus
was drawn), and every voxel's Pearson r on that resample follows from the weighted
sums ``c @ [y, p, y*y, p*p, y*p]`` (the per-stimulus sufficient statistics, after
centering each column on its full-sample mean, which leaves r unchanged and keeps the
one-pass variance free of cancellation). A (resamples x stimuli) count matrix times
the (stimuli x 5 voxels) statistics gives every resample's r at once; a summary that is
not linear (a median per ROI) is then applied to each resample's row. The same holds
for the sign-flip comparison of two predictions (the mixed predictions are linear in
the flips). The per-voxel permutation test is a gather (a permuted pairing has no
shared matrix across voxels), done on cache-sized voxel blocks.
The numbers equal those of the loop over resamples (kept as ``_bootstrap_ci_loop``
etc. for tests and ``benchmarks/inference.py``) to rounding (about 1e-15).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from scene2brain.evaluation.metrics import _check_pair, pearson_r

_ALTERNATIVES = ("greater", "less", "two-sided")
_TIE = 1e-12  # null values this close to the observed one count as ties (>=)

ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
SummaryFn = Callable[[np.ndarray], float | np.ndarray]


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative: expected one of {_ALTERNATIVES}, got {alternative!r}")


def _oriented(values: np.ndarray, alternative: str) -> np.ndarray:
    """Map a statistic so that larger always means more extreme."""
    if alternative == "greater":
        return values
    if alternative == "less":
        return -values
    return np.abs(values)


def _permutations(n: int, n_permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Row permutations: all ``n!`` of them when that is at most ``n_permutations``, else random ones."""
    if n <= 8 and math.factorial(n) <= n_permutations:
        return np.array(list(itertools.permutations(range(n)))), True
    return np.array([rng.permutation(n) for _ in range(n_permutations)]), False


def _p_from_counts(exceed: np.ndarray, n_resamples: int, exact: bool) -> np.ndarray:
    """Share of resamples at least as extreme; the Monte-Carlo form counts the observed one too."""
    return exceed / n_resamples if exact else (1.0 + exceed) / (1.0 + n_resamples)


def _p_values(observed: np.ndarray, null: np.ndarray, exact: bool) -> np.ndarray:
    """``null`` of shape (n_resamples, ...) against ``observed`` of shape (...)."""
    p = _p_from_counts((null >= observed - _TIE).sum(axis=0), len(null), exact)
    return np.where(np.isnan(observed), np.nan, p)


@dataclass
class PermutationResult:
    """Per-voxel permutation test of the correlation between measured and predicted responses.

    Attributes
    ----------
    r : ndarray (n_voxels,)
        Observed Pearson r.
    p : ndarray (n_voxels,)
        Uncorrected p-values.
    p_fwe : ndarray (n_voxels,)
        Family-wise corrected p-values from the null distribution of the maximum
        statistic over voxels (Nichols & Holmes 2002).
    p_fdr : ndarray (n_voxels,)
        Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``).
    null_max : ndarray (n_permutations,)
        Maximum (oriented) statistic over voxels in each permutation.
    exact : bool
        Whether every permutation of the stimuli was enumerated.
    """

    r: np.ndarray
    p: np.ndarray
    p_fwe: np.ndarray
    p_fdr: np.ndarray
    null_max: np.ndarray
    exact: bool


def permutation_test_correlation(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_permutations: int = 1000,
    alternative: str = "greater",
    random_state: int = 0,
    chunk_size: int = 4096,
) -> PermutationResult:
    """Test each voxel's Pearson r by permuting the stimuli.

    One permutation of the stimulus order is applied to every voxel at once, so the
    spatial dependence between voxels is kept, which the maximum-statistic correction
    needs.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_voxels)
        Measured and predicted responses to the same test stimuli.
    n_permutations : int
    alternative : {"greater", "less", "two-sided"}
        "greater" (the default) asks whether the prediction is positively correlated
        with the data, the question an encoding model asks; "two-sided" counts
        permutations with ``|r|`` at least as large as observed (and the maximum
        statistic is then the maximum ``|r|``).
    random_state : int
    chunk_size : int
        Voxels processed together (bounds memory at ``n_samples * chunk_size`` floats).

    Returns
    -------
    PermutationResult
        Voxels with an undefined r (constant data or prediction) get NaN p-values and
        are left out of the maximum and of the FDR family.
    """
    _check_alternative(alternative)
    y_true, y_pred = _check_pair(y_true, y_pred)
    a = y_true - y_true.mean(axis=0)
    b = y_pred - y_pred.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        a /= np.linalg.norm(a, axis=0)
        b /= np.linalg.norm(b, axis=0)
    r = np.clip(np.einsum("ij,ij->j", a, b), -1.0, 1.0)  # Pearson r; NaN for constant columns
    observed = _oriented(r, alternative)
    perms, exact = _permutations(len(a), n_permutations, np.random.default_rng(random_state))

    exceed, null_max = _permutation_null(a, b, observed, perms, alternative, chunk_size)
    p = np.where(np.isnan(r), np.nan, _p_from_counts(exceed, len(perms), exact))
    p_fwe = _p_values(observed, null_max[:, None], exact)
    p_fdr = np.full_like(p, np.nan)
    valid = ~np.isnan(p)
    if valid.any():
        p_fdr[valid] = stats.false_discovery_control(p[valid], method="bh")
    return PermutationResult(r=r, p=p, p_fwe=p_fwe, p_fdr=p_fdr, null_max=null_max, exact=exact)


#: Bytes of per-stimulus statistics held per voxel chunk (5 float64 columns per voxel).
_STATS_BYTES = 1 << 25
#: Bytes of resampled scores (resamples x voxels, float64) held at once.
_SCORES_BYTES = 1 << 27
#: Bytes of the two float64 voxel blocks a permutation gathers from (kept in cache).
_PERM_BLOCK_BYTES = 1 << 22  # 262 voxels of 1,000 stimuli
#: Where a resample's centred sum of squares is below this share of its raw one, its r is
#: recomputed directly (the one-pass form would lose more than about 1e-12 relative).
_RECOMPUTE = 1e-4


def _permutation_null_loop(
    a: np.ndarray, b: np.ndarray, observed: np.ndarray, perms: np.ndarray, alternative: str, chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reference: one pass over every voxel chunk per permutation (the original implementation)."""
    exceed = np.zeros(a.shape[1])
    null_max = np.full(len(perms), -np.inf)
    for start in range(0, a.shape[1], chunk_size):
        cols = slice(start, start + chunk_size)
        a_c, b_c, obs_c = a[:, cols], b[:, cols], observed[cols]
        for k, perm in enumerate(perms):
            null = _oriented(np.einsum("ij,ij->j", a_c[perm], b_c), alternative)
            exceed[cols] += null >= obs_c - _TIE
            finite = null[np.isfinite(null)]
            if finite.size:
                null_max[k] = max(null_max[k], finite.max())
    return exceed, null_max


def _permutation_null(
    a: np.ndarray, b: np.ndarray, observed: np.ndarray, perms: np.ndarray, alternative: str, chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exceedance counts per voxel and the maximum null statistic per permutation.

    A permuted pairing ``sum_i a[perm[i], j] b[i, j]`` shares no matrix across voxels, so
    it is a gather: done here on contiguous voxel blocks small enough to stay in cache
    (the gather and the column sums then run at cache speed), with the null values of a
    block kept for all permutations and compared with the observed ones in one pass.
    """
    n, v = a.shape
    exceed = np.zeros(v)
    null_max = np.full(len(perms), -np.inf)
    block = max(1, min(chunk_size, _PERM_BLOCK_BYTES // (16 * n)))
    null = np.empty((len(perms), block))
    for start in range(0, v, block):
        cols = slice(start, min(v, start + block))
        a_c, b_c = np.ascontiguousarray(a[:, cols]), np.ascontiguousarray(b[:, cols])
        nb = null[:, : cols.stop - start]
        for k, perm in enumerate(perms):
            np.einsum("ij,ij->j", a_c.take(perm, axis=0), b_c, out=nb[k])
        nb = _oriented(nb, alternative)
        exceed[cols] = (nb >= observed[cols] - _TIE).sum(axis=0)
        with np.errstate(invalid="ignore"):
            block_max = np.where(np.isfinite(nb), nb, -np.inf).max(axis=1)
        np.maximum(null_max, block_max, out=null_max)
    return exceed, null_max


@dataclass
class BootstrapResult:
    """A summary score with its bootstrap distribution over stimuli.

    Attributes
    ----------
    estimate : float or ndarray
        The summary on the original stimuli.
    low, high : float or ndarray
        Percentile confidence bounds.
    distribution : ndarray (n_bootstraps, ...)
        The summary on each resample.
    """

    estimate: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    distribution: np.ndarray


def _resample_rows(n: int, n_bootstraps: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, n, size=(n_bootstraps, n))


def _percentiles(distribution: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence}")
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(distribution, [tail, 100 - tail], axis=0)
    return low, high


class CorrelationScore:
    """A per-voxel score that depends on the data only through Pearson r.

    :func:`bootstrap_ci` and :func:`compare_predictions` compute such a score on every
    resample at once from sufficient statistics (a matrix product); any other score
    callable is recomputed on each resample. :func:`pearson_r` itself is recognised too.

    Parameters
    ----------
    transform : callable ``r (n_voxels,) -> (n_voxels,)``, optional
        Applied to the r of each resample, e.g.
        ``CorrelationScore(lambda r: noise_normalised_accuracy(r, nc))``.

    Examples
    --------
    >>> import numpy as np
    >>> squared = CorrelationScore(np.square)
    >>> squared(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))
    array([0.25])
    """

    def __init__(self, transform: Callable[[np.ndarray], np.ndarray] | None = None):
        self.transform = transform

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return self.from_r(pearson_r(y_true, y_pred))

    def from_r(self, r: np.ndarray) -> np.ndarray:
        """The score given each voxel's r."""
        return r if self.transform is None else np.asarray(self.transform(r))

    def __repr__(self) -> str:
        return f"CorrelationScore({self.transform!r})"


def _correlation_score(score: ScoreFn) -> CorrelationScore | None:
    if score is pearson_r:
        return CorrelationScore()
    return score if isinstance(score, CorrelationScore) else None


def _counts(rows: np.ndarray, n: int) -> np.ndarray:
    """(resamples, n) float64 matrix of how often each stimulus was drawn."""
    offsets = (rows + n * np.arange(len(rows))[:, None]).ravel()
    return np.bincount(offsets, minlength=len(rows) * n).reshape(len(rows), n).astype(np.float64)


def _r_from_sums(
    total: float | np.ndarray, sy: np.ndarray, sp: np.ndarray, syy: np.ndarray, spp: np.ndarray, syp: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r from weighted sums of centred values, and where the one-pass form is not trusted.

    The second array marks entries whose centred sum of squares is below
    ``_RECOMPUTE`` of the raw one (a resample nearly constant relative to its offset from
    the full-sample mean): there the subtraction loses digits and r is recomputed directly.
    """
    vy = syy - sy * sy / total
    vp = spp - sp * sp / total
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (syp - sy * sp / total) / np.sqrt(vy * vp)
    np.clip(r, -1.0, 1.0, out=r)
    return r, (vy < _RECOMPUTE * syy) | (vp < _RECOMPUTE * spp)


def _centred_chunk(y: np.ndarray, cols: slice) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Columns of ``y`` centred on their mean over finite rows (0 where not finite).

    Also returns the mask of non-finite entries (None when all are finite) and which
    columns are constant over their finite rows (r undefined on every resample).
    """
    chunk = y[:, cols]
    finite = np.isfinite(chunk)
    if finite.all():
        return chunk - chunk.mean(axis=0), None, chunk.max(axis=0) == chunk.min(axis=0)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        masked = np.where(finite, chunk, np.nan)
        constant = ~(np.nanmax(masked, axis=0) > np.nanmin(masked, axis=0))
    chunk = np.where(finite, chunk, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = chunk.sum(axis=0) / finite.sum(axis=0)
    chunk -= np.nan_to_num(mean)
    chunk[~finite] = 0.0
    return chunk, ~finite, constant


def _direct_r(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Two-pass r of the drawn values, NaN where either side's drawn values are all equal."""
    r = pearson_r(y, p)
    r[(np.ptp(y, axis=0) == 0) | (np.ptp(p, axis=0) == 0)] = np.nan
    return r


def _resampled_r(counts: np.ndarray, y: np.ndarray, preds: list[np.ndarray]) -> list[np.ndarray]:
    """Pearson r of ``y`` with each prediction on every resample: ``[(resamples, voxels), ...]``.

    Per voxel chunk, the per-stimulus statistics ``[y, y*y, p, p*p, y*p]`` (centred on
    the full-sample means, which leaves r unchanged and keeps the one-pass variance free
    of cancellation) are multiplied by the count matrix in one GEMM. A non-finite value
    makes r NaN in exactly the resamples that draw its stimulus, and a resample whose
    drawn values of a voxel are all equal gets NaN, as :func:`pearson_r` documents.
    """
    n, v = y.shape
    total = counts.sum(axis=1)[:, None]
    k = 2 + 3 * len(preds)
    out = [np.empty((len(counts), v)) for _ in preds]
    step = max(1, min(v, _STATS_BYTES // (8 * k * n)))
    for start in range(0, v, step):
        cols = slice(start, min(v, start + step))
        m = cols.stop - start
        stats_ = np.empty((n, k, m))
        yc, bad_y, const_y = _centred_chunk(y, cols)
        stats_[:, 0] = yc
        np.multiply(yc, yc, out=stats_[:, 1])
        centred = []
        for i, pred in enumerate(preds):
            pc, bad_p, const_p = _centred_chunk(pred, cols)
            stats_[:, 2 + 3 * i] = pc
            np.multiply(pc, pc, out=stats_[:, 3 + 3 * i])
            np.multiply(yc, pc, out=stats_[:, 4 + 3 * i])
            centred.append((bad_p, const_p))
        sums = (counts @ stats_.reshape(n, k * m)).reshape(len(counts), k, m)
        sy, syy = sums[:, 0], sums[:, 1]
        for i, (bad_p, const_p) in enumerate(centred):
            r, recompute = _r_from_sums(total, sy, sums[:, 2 + 3 * i], syy, sums[:, 3 + 3 * i], sums[:, 4 + 3 * i])
            missing = [mask for mask in (bad_y, bad_p) if mask is not None]
            undefined = np.zeros_like(r, dtype=bool)
            if missing:
                undefined |= (counts @ np.logical_or.reduce(missing).astype(np.float64)) > 0
            undefined |= const_y | const_p
            recompute &= ~undefined
            for b in np.flatnonzero(recompute.any(axis=1)):
                drawn = np.repeat(np.arange(n), counts[b].astype(np.int64))
                j = np.flatnonzero(recompute[b])
                r[b, j] = _direct_r(y[np.ix_(drawn, start + j)], preds[i][np.ix_(drawn, start + j)])
            r[undefined] = np.nan
            out[i][:, cols] = r
    return out


def _bootstrap_r_blocks(y: np.ndarray, preds: list[np.ndarray], rows: np.ndarray):
    """Yield, block by block of resamples, ``[(block, voxels) r for each prediction]``."""
    n, v = y.shape
    step = max(1, _SCORES_BYTES // (8 * v * len(preds)))
    for start in range(0, len(rows), step):
        yield _resampled_r(_counts(rows[start : start + step], n), y, preds)


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    score: ScoreFn = pearson_r,
    summary: SummaryFn = np.nanmean,
    n_bootstraps: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> BootstrapResult:
    """Bootstrap confidence interval over stimuli for a summary of per-voxel scores.

    Each resample draws the test stimuli with replacement, rescores every voxel with
    ``score`` and summarises with ``summary``.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_voxels)
    score : callable ``(y_true, y_pred) -> (n_voxels,)``
        Per-voxel score, e.g. :func:`pearson_r`, or
        ``CorrelationScore(lambda r: noise_normalised_accuracy(r, nc))``. For these two
        (a score that depends on the data only through r) all resamples' r come from
        one matrix product of resample counts with per-stimulus statistics; any other
        callable is recomputed on each resample (the same numbers, slower).
    summary : callable ``(n_voxels,) -> float or (k,)``
        E.g. ``np.nanmean``, ``np.nanmedian``, or a function returning one value per
        ROI.
    n_bootstraps : int
    confidence : float
    random_state : int

    Returns
    -------
    BootstrapResult
    """
    correlation = _correlation_score(score)
    if correlation is None:
        return _bootstrap_ci_loop(y_true, y_pred, score, summary, n_bootstraps, confidence, random_state)
    y_true, y_pred = _check_pair(y_true, y_pred)
    rows = _resample_rows(len(y_true), n_bootstraps, np.random.default_rng(random_state))
    estimate = summary(score(y_true, y_pred))
    distribution = np.array(
        [summary(correlation.from_r(r)) for block in _bootstrap_r_blocks(y_true, [y_pred], rows) for r in block[0]]
    )
    low, high = _percentiles(distribution, confidence)
    return BootstrapResult(estimate=estimate, low=low, high=high, distribution=distribution)


def _bootstrap_ci_loop(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    score: ScoreFn = pearson_r,
    summary: SummaryFn = np.nanmean,
    n_bootstraps: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> BootstrapResult:
    """:func:`bootstrap_ci` by rescoring each resample (any ``score``; the reference for the fast path)."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    rows = _resample_rows(len(y_true), n_bootstraps, np.random.default_rng(random_state))
    estimate = summary(score(y_true, y_pred))
    distribution = np.array([summary(score(y_true[idx], y_pred[idx])) for idx in rows])
    low, high = _percentiles(distribution, confidence)
    return BootstrapResult(estimate=estimate, low=low, high=high, distribution=distribution)


@dataclass
class ComparisonResult:
    """Paired comparison of two models' predictions of the same voxels.

    Attributes
    ----------
    difference : float or ndarray
        ``summary(score(a)) - summary(score(b))`` on the original stimuli.
    p_value : float or ndarray
    low, high : float or ndarray
        Bootstrap percentile interval of the difference (NaN for the sign-flip test).
    distribution : ndarray
        Bootstrap distribution of the difference, or its null distribution under
        sign flips.
    method : str
    """

    difference: float | np.ndarray
    p_value: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    distribution: np.ndarray
    method: str


def compare_predictions(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    score: ScoreFn = pearson_r,
    summary: SummaryFn = np.nanmean,
    method: str = "bootstrap",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    alternative: str = "two-sided",
    random_state: int = 0,
) -> ComparisonResult:
    """Is model A's summary score different from model B's on the same voxels and stimuli?

    Parameters
    ----------
    y_true, pred_a, pred_b : ndarray of shape (n_samples, n_voxels)
    score, summary : callables
        As in :func:`bootstrap_ci`.
    method : {"bootstrap", "sign-flip"}
        "bootstrap": resample stimuli with replacement (the same rows for both
        models), giving a confidence interval of the difference; the p-value is the
        share of the bootstrap distribution on the far side of 0, doubled for a
        two-sided test. "sign-flip": under the null hypothesis the two models'
        predictions of each stimulus are exchangeable, so each resample swaps A's and
        B's prediction on a random half of the stimuli (for a score that adds up over
        stimuli, such as squared error, this is exactly flipping the sign of each
        stimulus' paired difference).
    n_resamples : int
    confidence : float
    alternative : {"two-sided", "greater", "less"}
        "greater" tests A > B.
    random_state : int

    Returns
    -------
    ComparisonResult
    """
    _check_alternative(alternative)
    y_true, pred_a = _check_pair(y_true, pred_a, ("y_true", "pred_a"))
    _, pred_b = _check_pair(y_true, pred_b, ("y_true", "pred_b"))
    rng = np.random.default_rng(random_state)
    observed = np.asarray(summary(score(y_true, pred_a)) - summary(score(y_true, pred_b)), dtype=np.float64)
    n = len(y_true)
    if method == "bootstrap":
        rows = _resample_rows(n, n_resamples, rng)
        correlation = _correlation_score(score)
        if correlation is None:
            diffs = np.array(
                [
                    np.asarray(summary(score(y_true[idx], pred_a[idx])) - summary(score(y_true[idx], pred_b[idx])))
                    for idx in rows
                ]
            )
        else:
            diffs = np.array(
                [
                    np.asarray(summary(correlation.from_r(ra)) - summary(correlation.from_r(rb)))
                    for block_a, block_b in _bootstrap_r_blocks(y_true, [pred_a, pred_b], rows)
                    for ra, rb in zip(block_a, block_b, strict=True)
                ]
            )
        low, high = _percentiles(diffs, confidence)
        below = (1.0 + (diffs <= 0).sum(axis=0)) / (1.0 + n_resamples)
        above = (1.0 + (diffs >= 0).sum(axis=0)) / (1.0 + n_resamples)
        p = {"greater": below, "less": above, "two-sided": np.minimum(1.0, 2 * np.minimum(below, above))}[alternative]
        return ComparisonResult(observed[()], p[()], low[()], high[()], diffs, method)
    if method == "sign-flip":
        flips, exact = _sign_flips(n, n_resamples, rng)
        null = []
        for swap in flips.astype(bool):
            mixed_a = np.where(swap[:, None], pred_b, pred_a)
            mixed_b = np.where(swap[:, None], pred_a, pred_b)
            null.append(np.asarray(summary(score(y_true, mixed_a)) - summary(score(y_true, mixed_b))))
        null = np.array(null)
        p = _p_values(_oriented(observed, alternative), _oriented(null, alternative), exact)
        nan = np.full_like(observed, np.nan)
        return ComparisonResult(observed[()], p[()], nan[()], nan[()], null, method)
    raise ValueError(f"method: expected 'bootstrap' or 'sign-flip', got {method!r}")


def _sign_flips(n: int, n_permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """0/1 flip patterns over ``n`` units: all ``2**n`` when that fits in ``n_permutations``."""
    if n <= 20 and 2**n <= n_permutations:
        return np.array(list(itertools.product((0, 1), repeat=n))), True
    return rng.integers(0, 2, size=(n_permutations, n)), False


def sign_flip_test(
    differences: np.ndarray, n_permutations: int = 10000, alternative: str = "two-sided", random_state: int = 0
) -> tuple[float, float]:
    """Paired sign-flip permutation test of the mean of paired differences.

    Use it where the units are independent: subjects, or ROI scores of separate
    subjects. Voxels of one subject are not independent, so a test over voxels is
    liberal; compare models on one subject with :func:`compare_predictions`.

    Parameters
    ----------
    differences : ndarray of shape (n_units,)
        Score of model A minus score of model B per unit.
    n_permutations : int
        All ``2**n_units`` flips are enumerated when they fit (an exact test).
    alternative : {"two-sided", "greater", "less"}
    random_state : int

    Returns
    -------
    mean_difference : float
    p_value : float
    """
    _check_alternative(alternative)
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or len(d) < 2 or not np.isfinite(d).all():
        raise ValueError(f"differences: expected a finite 1-d array of at least 2 values, got shape {d.shape}")
    flips, exact = _sign_flips(len(d), n_permutations, np.random.default_rng(random_state))
    null = ((1 - 2 * flips) * d).mean(axis=1)
    observed = d.mean()
    p = _p_values(_oriented(np.array(observed), alternative), _oriented(null, alternative), exact)
    return float(observed), float(p)
