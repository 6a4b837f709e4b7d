"""Inference on RDM comparisons: bootstrap intervals, permutation tests, pairwise tests, noise ceilings.

Conventions (those of rsatoolbox, so that the numbers can be checked against it):

* **Stimulus bootstrap** (rsatoolbox's ``bootstrap_sample_pattern``): draw ``n``
  stimuli with replacement; the resampled RDM has one row per draw; pairs of a
  stimulus with its own copy are dropped (their zero dissimilarity would be trivially
  "predicted"); the comparison is computed on the remaining entries, where a pair of
  distinct stimuli drawn ``c_i`` and ``c_j`` times appears ``c_i * c_j`` times.
  Resamples with fewer than 3 distinct stimuli give NaN and are ignored.
  For ``"spearman"``, ``"pearson"`` and ``"cosine"`` this is computed without forming
  the resampled vectors: the duplicated entries are weights ``c_i c_j`` on the
  original pairs, ranks of the resampled vector are weighted mid-ranks (one sort per
  RDM, done once; then cumulative sums of the weights in each RDM's sorted order), and
  the comparison a weighted correlation. Resamples are processed in batches (8 to 32
  at a time, about 64 MB of float64 work space), see the notes above
  ``_StimulusBootstrap``; the results equal the explicit computation to rounding
  (the weights and doubled ranks are integers, exact in float64).
  ``"kendall_tau_a"`` and the ``_cov`` comparators form the resampled vectors
  explicitly (slower; the ``_cov`` ones use rsatoolbox's least-squares double centring
  for the missing self-pairs).
* **Subject bootstrap**: draw subjects with replacement; the similarity of a model is
  the mean over the drawn subjects. ``"both"`` draws subjects and stimuli
  (rsatoolbox's ``bootstrap_sample``).
* **Confidence intervals**: percentiles of the bootstrap samples.
* **Permutation test** (one-sided, "the model is more similar than chance"): the
  stimulus labels of the data RDM(s) are permuted (rows and columns together, the same
  permutation for all subjects); ``p = (1 + #{null >= observed}) / (1 + n_permutations)``.
* **Pairwise model comparisons**: rsatoolbox's ``bootstrap_pair_tests``: for models
  ``i, j``, ``q`` = share of bootstrap samples in which ``i < j`` (ties excluded),
  ``p = 2 * min(q, 1 - q)``, then ``p * (n - 1) / n + 1 / n``; Benjamini-Hochberg FDR
  over the ``n_models * (n_models - 1) / 2`` tests
  (:func:`scipy.stats.false_discovery_control`).
* **Noise ceiling** (rsatoolbox's ``boot_noise_ceiling``, Nili et al. 2014): the upper
  bound is the mean similarity of each subject's RDM with the pooled RDM of all
  subjects (including itself), the lower bound with the pooled RDM of the other
  subjects. Pooling suits the comparator (rsatoolbox's ``pool_rdm``): ranks are
  averaged for the rank comparators, z-scored vectors for ``pearson``, RMS-normalised
  ones for ``cosine``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from scene2brain.representation.compare import (
    _LINEAR,
    _check_method,
    _tau_a_matrix,
    _unit_rows,
    compare_rdms,
    transform_for_comparison,
)
from scene2brain.representation.rdm import (
    _PATTERN_DISTANCES,
    _pair_position,
    as_rdm_vectors,
    compute_rdms,
    n_stimuli_from_pairs,
    pair_indices,
)

__all__ = ["BOOTSTRAPS", "RDMComparison", "compare_models", "noise_ceiling", "pool_rdms", "repeat_noise_ceiling"]

BOOTSTRAPS: tuple[str, ...] = ("stimuli", "subjects", "both")
_WEIGHTED = ("spearman", "pearson", "cosine")  # comparators with the weighted (fast) stimulus bootstrap


@dataclass
class RDMComparison:
    """Similarity of each model RDM to the data RDM(s), with bootstrap and permutation inference.

    Attributes
    ----------
    similarity : ndarray, shape (n_models,)
        Similarity on all stimuli, the mean over subjects.
    ci_low, ci_high : ndarray, shape (n_models,)
        Percentile bootstrap interval at ``confidence`` (NaN without bootstraps).
    p_value : ndarray, shape (n_models,)
        One-sided stimulus-permutation p-value (NaN without permutations).
    samples : ndarray, shape (n_bootstrap, n_models)
        Bootstrap samples of ``similarity`` (rows of NaN for degenerate resamples).
    pairwise_p : ndarray, shape (n_models, n_models)
        Two-sided bootstrap p-value of the difference of two models (symmetric; NaN on
        the diagonal).
    pairwise_p_fdr : ndarray, shape (n_models, n_models)
        The same, Benjamini-Hochberg adjusted over the pairs.
    method : str
        The comparator.
    bootstrap : str
        What was resampled: ``"stimuli"``, ``"subjects"`` or ``"both"``.
    confidence : float
        Level of the interval.
    n_permutations : int
        Permutations behind ``p_value``.
    """

    similarity: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    samples: np.ndarray
    pairwise_p: np.ndarray
    pairwise_p_fdr: np.ndarray
    method: str
    bootstrap: str = "stimuli"
    confidence: float = 0.95
    n_permutations: int = 0

    def table(self, names: list[str] | None = None) -> pd.DataFrame:
        """One row per model: ``model, similarity, ci_low, ci_high, p_value``.

        Parameters
        ----------
        names : list of str, optional
            Model names; ``model_0, model_1, ...`` by default.

        Returns
        -------
        pandas.DataFrame
        """
        names = names if names is not None else [f"model_{i}" for i in range(len(self.similarity))]
        return pd.DataFrame(
            {
                "model": list(names),
                "similarity": self.similarity,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "p_value": self.p_value,
            }
        )


# --------------------------------------------------------------------------- stimulus-bootstrap machinery
#
# A stimulus resample is a vector of counts ``c`` (how often each stimulus was drawn);
# the resampled RDM holds pair ``(i, j)`` ``w = c_i c_j`` times. Resamples are processed
# in batches of ``B`` columns: the weights are a ``(p_pad, B)`` float64 array (one row
# per pair, zero rows padding ``p`` to a multiple of ``_BLOCK``).
#
# Spearman. The resampled vector has ``N = sum(w)`` entries; the mid-rank of a pair is
# ``#{entries below} + (#{entries tied with it} + 1) / 2``, and its mean is exactly
# ``(N + 1) / 2``. With ``r`` the centred mid-ranks (half-integers), the similarity is
# ``sum(w r_data r_model) / sqrt(sum(w r_data^2) sum(w r_model^2))``, where
# ``sum(w r^2) = (N^3 - sum_g t_g^3) / 12`` over the tie groups ``g`` of total weight
# ``t_g`` (the classical tie correction; ``t_g = w`` for a vector without ties), so only
# the cross term needs a pass over the pairs. For a model without ties, in its sorted
# order, ``r_model = (weight strictly below) + w / 2 - N / 2``, hence with
# ``u = w r_data``: ``sum(u r_model) = sum(u * exclusive_cumsum(w)) + sum(u w) / 2 -
# N sum(u) / 2``; the last two terms do not depend on the model. The exclusive cumsum
# is done in blocks: the sorted pairs are gathered into a ``(_BLOCK, n_blocks, B)``
# array (position ``t`` of the sorted order at ``[t % _BLOCK, t // _BLOCK]``), so that
# each step of the block-wise accumulation is one contiguous vector operation over all
# blocks and resamples, the blocks' starting offsets coming from one cumsum over
# blocks. Models with ties use the group totals instead (a sparse indicator matrix in
# the original order, no gather). All weights, cumsums and doubled ranks are integers,
# exact in float64. The data RDM(s) get their ranks once per batch, back in the
# original order.
#
# Pearson and cosine are weighted moments: matrix products of the weights with the
# (centred) vectors, their squares and the data-weighted vectors.

_BLOCK = 16  # pairs per block of the blocked cumsum
_BATCH_BYTES = 64 * 2**20  # float64 working set of one batch of resamples (about), within the limits below
_MIN_BATCH, _MAX_BATCH = 8, 32  # resamples per batch (more: no faster, the working set falls out of cache)


class _RankOrder:
    """Sorted order and tie groups of one RDM vector, for weighted mid-ranks."""

    def __init__(self, v: np.ndarray, p_pad: int, *, data: bool = False) -> None:
        p = len(v)
        order = np.argsort(v)  # tie groups are contiguous whatever the order within them
        ordered = v[order]
        new = np.ones(p, dtype=bool)
        new[1:] = ordered[1:] != ordered[:-1]
        self.tied = not bool(new.all())
        if self.tied:  # group of each pair in the original order, as a sparse indicator (groups in sorted order)
            group = np.empty(p_pad, dtype=np.int64)
            group[order] = np.cumsum(new) - 1
            group[p:] = 0  # padding rows: zero weight
            n_groups = int(new.sum())
            self.group = group
            self.indicator = sparse.csr_matrix((np.ones(p), (group[:p], np.arange(p))), shape=(n_groups, p_pad))
        else:  # gather index into the blocked layout: row t % L * n_blocks + t // L holds sorted position t
            padded = np.concatenate([order, np.arange(p, p_pad)])
            self.gather = np.ascontiguousarray(padded.reshape(-1, _BLOCK).T).ravel()
            if data:  # original pair -> row of the blocked layout (the data's ranks go back to the original order)
                self.scatter = np.empty(p_pad, dtype=np.int64)
                self.scatter[self.gather] = np.arange(p_pad)


class _Batch:
    """Weights of a batch of stimulus resamples and the quantities shared by all RDMs."""

    def __init__(self, counts: np.ndarray, rows: np.ndarray, cols: np.ndarray, p_pad: int) -> None:
        b = counts.shape[1]
        p = len(rows)
        self.w = np.empty((p_pad, b))
        self.buffer = np.empty((p_pad, b))  # gathered weights
        self.buffer_u = np.empty((p_pad, b))  # gathered data terms
        np.take(counts, rows, axis=0, out=self.w[:p], mode="clip")
        np.take(counts, cols, axis=0, out=self.buffer[:p], mode="clip")
        self.w[:p] *= self.buffer[:p]
        self.w[p:] = 0.0
        s1, s2 = counts.sum(axis=0), (counts * counts).sum(axis=0)
        c3 = counts**3
        self.n_total = (s1 * s1 - s2) / 2.0  # N: entries of the resampled vector
        self.cubes = (c3.sum(axis=0) ** 2 - (c3 * c3).sum(axis=0)) / 2.0  # sum(w^3)
        self.big = self.n_total * self.n_total * self.n_total  # N^3


def _tied_ranks(order: _RankOrder, batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
    """Centred mid-ranks of the tie groups (n_groups, B), sorted order, and ``sum(w r^2)`` (B,)."""
    t = order.indicator @ batch.w  # total weight of each group
    mid = np.cumsum(t, axis=0)
    mid -= t / 2.0
    mid -= batch.n_total / 2.0
    return mid, (batch.big - (t * t * t).sum(axis=0)) / 12.0


def _block_offsets(x: np.ndarray) -> np.ndarray:
    """Weight before each block (exclusive cumsum of the block totals), (n_blocks, B)."""
    totals = x.sum(axis=0)
    offsets = np.cumsum(totals, axis=0)
    offsets -= totals
    return offsets


def _centred_ranks(order: _RankOrder, batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
    """Centred weighted mid-ranks in the original order (p_pad, B) and ``sum(w r^2)`` (B,)."""
    w = batch.w
    if order.tied:
        mid, spread = _tied_ranks(order, batch)
        return np.take(mid, order.group, axis=0), spread
    x = np.take(w, order.gather, axis=0, out=batch.buffer, mode="clip").reshape(_BLOCK, -1, w.shape[1])
    mid = batch.buffer_u.reshape(x.shape)
    acc = _block_offsets(x)
    for t in range(_BLOCK):
        acc += x[t]
        np.multiply(x[t], -0.5, out=mid[t])
        mid[t] += acc
    mid -= (batch.n_total / 2.0)[None, None, :]
    ranks = np.take(batch.buffer_u, order.scatter, axis=0, out=np.empty_like(w), mode="clip")
    return ranks, (batch.big - batch.cubes) / 12.0


def _rank_cross(order: _RankOrder, batch: _Batch, u: np.ndarray, shared: np.ndarray, tied_mid: np.ndarray | None):
    """``sum(u r_model)`` (B,) for ``u = w r_data``; ``shared = sum(u w) / 2 - N sum(u) / 2`` (models without ties)."""
    if order.tied:
        return np.einsum("gb,gb->b", order.indicator @ u, tied_mid)
    b = u.shape[1]
    x = np.take(batch.w, order.gather, axis=0, out=batch.buffer, mode="clip").reshape(_BLOCK, -1, b)
    y = np.take(u, order.gather, axis=0, out=batch.buffer_u, mode="clip").reshape(_BLOCK, -1, b)
    acc = _block_offsets(x)  # weight before the block, then before each position within it
    out = shared.copy()
    for t in range(_BLOCK):
        out += np.einsum("kb,kb->b", y[t], acc)
        acc += x[t]
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _spearman_batch(data: list[_RankOrder], models: list[_RankOrder], batch: _Batch) -> np.ndarray:
    """Similarities (B, n_data, n_models) on a batch of resamples."""
    b = batch.w.shape[1]
    out = np.empty((b, len(data), len(models)))
    tied = {j: _tied_ranks(m, batch) for j, m in enumerate(models) if m.tied}
    free_spread = (batch.big - batch.cubes) / 12.0
    model_spread = np.stack([tied[j][1] if j in tied else free_spread for j in range(len(models))], axis=1)
    for d, order in enumerate(data):
        u, spread = _centred_ranks(order, batch)
        u *= batch.w
        shared = np.einsum("pb,pb->b", u, batch.w) / 2.0 - batch.n_total * u.sum(axis=0) / 2.0
        cross = np.stack(
            [_rank_cross(m, batch, u, shared, tied[j][0] if j in tied else None) for j, m in enumerate(models)], axis=1
        )
        out[:, d] = _ratio(cross, np.sqrt(np.maximum(spread[:, None] * model_spread, 0.0)))
    return out


def _moment_batch(data: np.ndarray, models: np.ndarray, w: np.ndarray, method: str) -> np.ndarray:
    """Weighted Pearson / cosine similarities (B, n_data, n_models); ``data``, ``models`` pre-centred for Pearson."""
    n_total = w.sum(axis=0)
    a_m, q_m = models @ w, (models * models) @ w  # (k, B)
    a_d, q_d = data @ w, (data * data) @ w  # (n_data, B)
    out = np.empty((w.shape[1], len(data), len(models)))
    for d in range(len(data)):
        cross = models @ (w * data[d][:, None])  # (k, B)
        if method == "pearson":
            with np.errstate(divide="ignore", invalid="ignore"):
                cross = cross - a_d[d] * a_m / n_total
                var_m = q_m - a_m * a_m / n_total
                var_d = q_d[d] - a_d[d] * a_d[d] / n_total
            var_m = np.where(var_m > 1e-12 * q_m, var_m, 0.0)  # zero spread on the resample (up to rounding)
            var_d = np.where(var_d > 1e-12 * q_d[d], var_d, 0.0)
        else:
            var_m, var_d = q_m, q_d[d]
        den = np.sqrt(var_d * var_m)
        out[:, d] = _ratio(np.nan_to_num(cross), den).T
    return out


class _StimulusBootstrap:
    """Similarities of data and model RDMs on batches of stimulus resamples (spearman, pearson, cosine)."""

    def __init__(self, data: np.ndarray, models: np.ndarray, method: str) -> None:
        self.method = method
        n_pairs = data.shape[1]
        self.n = n_stimuli_from_pairs(n_pairs)
        self.rows, self.cols = pair_indices(self.n)
        self.p_pad = -(-n_pairs // _BLOCK) * _BLOCK
        if method == "spearman":
            self.data = [_RankOrder(v, self.p_pad, data=True) for v in data]
            self.models = [_RankOrder(v, self.p_pad) for v in models]
            per_column = 8 * self.p_pad * (4 + 1)  # weights, two gathers, ranks of one data RDM, one temporary
        else:
            centre = method == "pearson"

            def prepared(v: np.ndarray) -> np.ndarray:
                v = v - v.mean(axis=1, keepdims=True) if centre else v.copy()
                v[np.ptp(v, axis=1) == 0 if centre else ~np.any(v, axis=1)] = 0.0  # constant: exactly zero
                return v

            self.data, self.models = prepared(data), prepared(models)
            per_column = 8 * self.p_pad * 3
        self.batch_size = int(max(_MIN_BATCH, min(_MAX_BATCH, _BATCH_BYTES // per_column)))

    def similarities(self, counts: np.ndarray) -> np.ndarray:
        """Similarities (B, n_data, n_models) for resample counts (n_stimuli, B)."""
        batch = _Batch(counts, self.rows, self.cols, self.p_pad)
        if self.method == "spearman":
            return _spearman_batch(self.data, self.models, batch)
        return _moment_batch(self.data, self.models, batch.w[: len(self.rows)], self.method)


def _whitened_masked(v: np.ndarray, rows: np.ndarray, cols: np.ndarray, m: int) -> np.ndarray:
    """rsatoolbox's ``_cov_weighting`` with missing pairs: least-squares double centring.

    ``v`` (k, n_valid) holds the entries of the pairs ``(rows, cols)`` of an ``m x m``
    matrix whose other off-diagonal pairs are missing.
    """
    n_valid = len(rows)
    ext = np.concatenate([v, np.zeros((len(v), m))], axis=1) * -0.5
    idx = np.arange(n_valid)
    diag = np.arange(m)
    sum_i = sparse.csr_matrix(
        (
            np.concatenate([np.ones(2 * n_valid), np.ones(m)]),
            (np.concatenate([idx, idx, n_valid + diag]), np.concatenate([rows, cols, diag])),
        ),
        shape=(n_valid + m, m),
    )
    weight = np.concatenate([np.full(n_valid, 0.5), np.ones(m)])
    weighted = sparse.diags(weight) @ sum_i
    gram = (sum_i.T @ weighted).toarray()
    ext = ext - (np.linalg.solve(gram, (ext @ sum_i).T).T @ weighted.T)
    ext[:, :n_valid] *= np.sqrt(2.0)
    return ext


def _explicit_similarity(data: np.ndarray, models: np.ndarray, idx: np.ndarray, method: str, n: int) -> np.ndarray:
    """The comparison on an explicit resampled RDM (rsatoolbox's way), for tau-a and the _cov comparators."""
    s = np.sort(idx)
    a, b = np.triu_indices(len(s), k=1)
    valid = s[a] != s[b]
    pos = _pair_position(s[a][valid], s[b][valid], n)
    vd, vm = data[:, pos], models[:, pos]
    if method == "kendall_tau_a":
        return _tau_a_matrix(vd, vm)
    if method == "pearson_cov":
        vd = vd - vd.mean(axis=1, keepdims=True)
        vm = vm - vm.mean(axis=1, keepdims=True)
    if valid.all():
        wd, wm = transform_for_comparison(vd, "cosine_cov"), transform_for_comparison(vm, "cosine_cov")
    else:
        wd = _unit_rows(_whitened_masked(vd, a[valid], b[valid], len(s)))
        wm = _unit_rows(_whitened_masked(vm, a[valid], b[valid], len(s)))
    return wd @ wm.T


def _bootstrap_samples(
    data: np.ndarray,
    models: np.ndarray,
    method: str,
    per_subject: np.ndarray,
    stim_idx: np.ndarray | None,
    subj_idx: np.ndarray | None,
) -> np.ndarray:
    n_boot = len(stim_idx) if stim_idx is not None else len(subj_idx)
    n_subj, n_pairs = data.shape
    out = np.full((n_boot, len(models)), np.nan)
    subj_counts = np.ones((n_boot, n_subj))
    if subj_idx is not None:
        subj_counts = np.stack([np.bincount(i, minlength=n_subj) for i in subj_idx]).astype(np.float64)
    if stim_idx is None:  # subjects only: average the full-stimulus similarities
        return subj_counts @ per_subject / subj_counts.sum(axis=1, keepdims=True)
    n = n_stimuli_from_pairs(n_pairs)
    if method in _WEIGHTED:
        engine = _StimulusBootstrap(data, models, method)
        for start in range(0, n_boot, engine.batch_size):
            idx = stim_idx[start : start + engine.batch_size]
            size = len(idx)
            flat = (idx + n * np.arange(size)[:, None]).ravel()
            counts = np.ascontiguousarray(np.bincount(flat, minlength=n * size).reshape(size, n).T, dtype=np.float64)
            sims = engine.similarities(counts)  # (size, n_subjects, n_models)
            weights = subj_counts[start : start + size]
            out[start : start + size] = np.einsum("bs,bsk->bk", weights, sims) / weights.sum(axis=1, keepdims=True)
            out[start : start + size][np.count_nonzero(counts, axis=0) < 3] = np.nan
        return out
    for b, idx in enumerate(stim_idx):
        if np.count_nonzero(np.bincount(idx, minlength=n)) < 3:
            continue
        used = subj_counts[b] > 0
        sims = np.zeros((n_subj, len(models)))
        sims[used] = _explicit_similarity(data[used], models, idx, method, n)
        out[b] = subj_counts[b] @ sims / subj_counts[b].sum()
    return out


# --------------------------------------------------------------------------- tests


def _permutation_p(
    data: np.ndarray, models: np.ndarray, method: str, observed: np.ndarray, n_perm: int, rng: np.random.Generator
) -> np.ndarray:
    n = n_stimuli_from_pairs(data.shape[1])
    rows, cols = pair_indices(n)
    null = np.empty((n_perm, len(models)))
    if method in _LINEAR and method not in ("pearson_cov", "cosine_cov"):
        # ranks, centring and norms do not change when entries are permuted
        td, tm = transform_for_comparison(data, method), transform_for_comparison(models, method)
        for k in range(n_perm):
            perm = rng.permutation(n)
            null[k] = (td[:, _pair_position(perm[rows], perm[cols], n)] @ tm.T).mean(axis=0)
    else:
        for k in range(n_perm):
            perm = rng.permutation(n)
            null[k] = compare_rdms(data[:, _pair_position(perm[rows], perm[cols], n)], models, method).mean(axis=0)
    return (1.0 + (null >= observed - 1e-12).sum(axis=0)) / (1.0 + n_perm)


def _pairwise_p(samples: np.ndarray) -> np.ndarray:
    """rsatoolbox's ``bootstrap_pair_tests`` on the finite samples; NaN diagonal."""
    ok = samples[np.isfinite(samples).all(axis=1)]
    n, k = ok.shape
    p = np.full((k, k), np.nan)
    if n == 0:
        return p
    for i in range(k - 1):
        for j in range(i + 1, k):
            ties = np.sum(ok[:, i] == ok[:, j])
            q = np.sum(ok[:, i] < ok[:, j]) / (n - ties) if n > ties else 0.5
            value = 2 * min(q, 1 - q) * (n - 1) / n + 1 / n
            p[i, j] = p[j, i] = value
    return p


def _fdr(p: np.ndarray) -> np.ndarray:
    k = len(p)
    out = np.full_like(p, np.nan)
    iu = np.triu_indices(k, k=1)
    values = p[iu]
    if len(values) and np.isfinite(values).all():
        adj = stats.false_discovery_control(values, method="bh")
        out[iu] = adj
        out[iu[1], iu[0]] = adj
    return out


def compare_models(
    data_rdms: np.ndarray,
    model_rdms: np.ndarray,
    *,
    method: str = "spearman",
    n_bootstrap: int = 1000,
    n_permutations: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    n_stimuli: int | None = None,
    bootstrap: str | None = None,
    resamples: np.ndarray | None = None,
    subject_resamples: np.ndarray | None = None,
) -> RDMComparison:
    """Compare model RDMs with data RDM(s), with bootstrap CIs, permutation p-values and pairwise tests.

    Parameters
    ----------
    data_rdms : ndarray, shape (n_pairs,) or (n_subjects, n_pairs)
        The data RDM of one subject, or one per subject (same stimuli).
    model_rdms : ndarray, shape (n_models, n_pairs)
        Model RDMs (layers, feature spaces) in the stored form.
    method : str
        Comparator (see :mod:`scene2brain.representation.compare`).
    n_bootstrap : int
        Bootstrap resamples (0 for none: NaN intervals and pairwise p-values).
    n_permutations : int
        Stimulus-label permutations for ``p_value`` (0 for none: NaN).
    confidence : float
        Level of the percentile intervals.
    seed : int
        Seed of every random draw (bootstrap, then permutations).
    n_stimuli : int, optional
        Expected number of stimuli (checked against the RDMs' length).
    bootstrap : {"stimuli", "subjects", "both"}, optional
        What to resample; by default stimuli for one subject, subjects for several.
    resamples : ndarray of int, shape (n_bootstrap, n_stimuli), optional
        Explicit stimulus resamples (indices drawn with replacement) instead of seeded
        ones; e.g. to reproduce another program's draws.
    subject_resamples : ndarray of int, shape (n_bootstrap, n_subjects), optional
        Explicit subject resamples.

    Returns
    -------
    RDMComparison
    """
    _check_method(method)
    data, models = as_rdm_vectors(data_rdms, "data_rdms"), as_rdm_vectors(model_rdms, "model_rdms")
    if data.shape[1] != models.shape[1]:
        raise ValueError(f"data and model RDMs have different lengths: {data.shape[1]} and {models.shape[1]}")
    n = n_stimuli_from_pairs(data.shape[1])
    if n_stimuli is not None and n_stimuli != n:
        raise ValueError(f"n_stimuli={n_stimuli} but the RDMs are over {n} stimuli")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_subj = len(data)
    mode = bootstrap or ("stimuli" if n_subj == 1 else "subjects")
    if mode not in BOOTSTRAPS:
        raise ValueError(f"bootstrap must be one of {BOOTSTRAPS}, got {mode!r}")
    rng = np.random.default_rng(seed)
    per_subject = compare_rdms(data, models, method)
    similarity = per_subject.mean(axis=0)

    if resamples is not None:
        n_bootstrap = len(resamples)
    elif subject_resamples is not None:
        n_bootstrap = len(subject_resamples)
    stim_idx = subj_idx = None
    if n_bootstrap > 0 and mode in ("stimuli", "both"):
        stim_idx = np.asarray(resamples) if resamples is not None else rng.integers(0, n, size=(n_bootstrap, n))
        if stim_idx.shape != (n_bootstrap, n) or stim_idx.min() < 0 or stim_idx.max() >= n:
            raise ValueError(f"resamples must be indices in [0, {n}) of shape (n_bootstrap, {n})")
    if n_bootstrap > 0 and mode in ("subjects", "both"):
        if subject_resamples is not None:
            subj_idx = np.asarray(subject_resamples)
        else:
            subj_idx = rng.integers(0, n_subj, size=(n_bootstrap, n_subj))
        if subj_idx.shape != (n_bootstrap, n_subj):
            raise ValueError(f"subject_resamples must have shape (n_bootstrap, {n_subj})")
    if n_bootstrap > 0:
        samples = _bootstrap_samples(data, models, method, per_subject, stim_idx, subj_idx)
        alpha = (1 - confidence) / 2
        with np.errstate(all="ignore"):
            ci_low, ci_high = np.nanquantile(samples, [alpha, 1 - alpha], axis=0)
        pairwise = _pairwise_p(samples)
    else:
        samples = np.empty((0, len(models)))
        ci_low = ci_high = np.full(len(models), np.nan)
        pairwise = np.full((len(models), len(models)), np.nan)
    p_value = np.full(len(models), np.nan)
    if n_permutations > 0:
        p_value = _permutation_p(data, models, method, similarity, n_permutations, rng)
    return RDMComparison(
        similarity=similarity,
        ci_low=np.asarray(ci_low),
        ci_high=np.asarray(ci_high),
        p_value=p_value,
        samples=samples,
        pairwise_p=pairwise,
        pairwise_p_fdr=_fdr(pairwise),
        method=method,
        bootstrap=mode,
        confidence=confidence,
        n_permutations=n_permutations,
    )


# --------------------------------------------------------------------------- noise ceilings


def pool_rdms(rdms: np.ndarray, method: str = "spearman") -> np.ndarray:
    """The pooled (group) RDM suited to a comparator, as rsatoolbox's ``pool_rdm``.

    Parameters
    ----------
    rdms : ndarray, shape (n_rdms, n_pairs)
        RDMs in the stored form.
    method : str
        Comparator: ranks are averaged for ``"spearman"`` and ``"kendall_tau_a"``,
        z-scored vectors for the ``pearson`` ones (then shifted to a minimum of 0),
        RMS-normalised vectors for the ``cosine`` ones.

    Returns
    -------
    ndarray, shape (n_pairs,)
    """
    _check_method(method)
    v = as_rdm_vectors(rdms)
    if method in ("spearman", "kendall_tau_a"):
        return stats.rankdata(v, axis=1).mean(axis=0)
    if method in ("cosine", "cosine_cov"):
        return (v / np.sqrt(np.mean(v**2, axis=1, keepdims=True))).mean(axis=0)
    z = v - v.mean(axis=1, keepdims=True)
    z = (z / z.std(axis=1, keepdims=True)).mean(axis=0)
    return z - z.min()


def noise_ceiling(subject_rdms: np.ndarray, method: str = "spearman") -> tuple[float, float]:
    """Lower and upper bound of the noise ceiling from subjects' RDMs (leave one subject out).

    Equal to ``rsatoolbox.inference.boot_noise_ceiling(RDMs(subject_rdms),
    method=COMPARATORS[method])``.

    Parameters
    ----------
    subject_rdms : ndarray, shape (n_subjects, n_pairs)
        One RDM per subject (or per pseudo-subject), same stimuli; at least 2.
    method : str
        Comparator.

    Returns
    -------
    low : float
        Mean similarity of each subject's RDM with the pooled RDM of the others: a
        model cannot be expected to exceed this by much if it were the true one.
    high : float
        Mean similarity of each subject's RDM with the pooled RDM of all (itself
        included): the true model's expected similarity cannot exceed this.
    """
    _check_method(method)
    v = as_rdm_vectors(subject_rdms, "subject_rdms")
    if len(v) < 2:
        raise ValueError("noise_ceiling: need RDMs of at least 2 subjects")
    pooled_all = pool_rdms(v, method)
    low = np.empty(len(v))
    high = np.empty(len(v))
    for s in range(len(v)):
        others = pool_rdms(np.delete(v, s, axis=0), method)
        low[s] = compare_rdms(others, v[s], method)[0, 0]
        high[s] = compare_rdms(pooled_all, v[s], method)[0, 0]
    return float(low.mean()), float(high.mean())


def repeat_partitions(conditions: np.ndarray) -> np.ndarray:
    """The partition of each trial: the k-th showing of a condition (in trial order) gets partition k.

    Examples
    --------
    >>> repeat_partitions(np.array([3, 1, 3, 3, 1])).tolist()
    [0, 0, 1, 2, 1]
    """
    conditions = np.asarray(conditions)
    order = np.argsort(conditions, kind="stable")
    ordered = conditions[order]
    starts = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(ordered)])
    part = np.empty(len(conditions), dtype=np.int64)
    part[order] = np.arange(len(ordered)) - np.repeat(starts, counts)
    return part


def repeat_noise_ceiling(
    trials: np.ndarray,
    conditions: np.ndarray,
    *,
    distance: str = "correlation",
    method: str = "spearman",
    partitions: np.ndarray | None = None,
    spearman_brown: bool = False,
) -> tuple[float, float]:
    """Noise ceiling of one subject from repeated presentations.

    Each partition (by default the repeat index: the k-th presentation of every
    stimulus forms partition k) is treated as a pseudo-subject: its trials are
    averaged per condition, its RDM computed with ``distance``, and
    :func:`noise_ceiling` applied to these RDMs.

    Without correction the bounds refer to the RDM of **one partition** (one repeat):
    ``low`` is the mean similarity of a single-repeat RDM with the pooled RDM of the
    other repeats, ``high`` with the pooled RDM of all repeats. A model compared with
    the RDM of the *average over the k repeats* has less noise to contend with, so
    its ceiling is higher. ``spearman_brown=True`` maps each bound ``b`` to that
    ceiling under classical test theory: ``b**2`` brackets the reliability of a
    single-repeat RDM (``low**2 <= rho_1 <= high**2``), the Spearman-Brown formula
    gives the reliability of the k-repeat average ``rho_k = k rho_1 / (1 + (k - 1)
    rho_1)``, and the expected similarity of the true model with it is
    ``sqrt(rho_k)``. This assumes independent, additive noise on the RDM entries
    (approximate for rank comparators and non-linear distances); negative bounds are
    clipped to 0 before the correction.

    Parameters
    ----------
    trials : ndarray, shape (n_trials, n_channels)
        Single-trial patterns.
    conditions : array-like, shape (n_trials,)
        Condition (stimulus) of each trial.
    distance : {"correlation", "euclidean", "cosine"}
        Distance of the per-partition RDMs.
    method : str
        Comparator.
    partitions : array-like, shape (n_trials,), optional
        Partition of each trial; every condition must occur in every partition.
    spearman_brown : bool
        Return the ceiling for the k-repeat average instead (see above).

    Returns
    -------
    low, high : float
    """
    if distance not in _PATTERN_DISTANCES:
        raise ValueError(f"repeat_noise_ceiling: distance must be one of {_PATTERN_DISTANCES}, got {distance!r}")
    x = np.asarray(trials)
    conditions = np.asarray(conditions)
    if x.ndim != 2 or conditions.shape != (x.shape[0],):
        raise ValueError(f"repeat_noise_ceiling: trials (n_trials, n_channels), conditions (n_trials,); "
                         f"got {x.shape}, {conditions.shape}")  # fmt: skip
    part = repeat_partitions(conditions) if partitions is None else np.asarray(partitions)
    labels, cond = np.unique(conditions, return_inverse=True)
    folds, fold = np.unique(part, return_inverse=True)
    if len(folds) < 2:
        raise ValueError("repeat_noise_ceiling: need at least 2 repeats (partitions)")
    patterns = []
    for f in range(len(folds)):
        in_f = fold == f
        counts = np.bincount(cond[in_f], minlength=len(labels)).astype(np.float64)
        if np.any(counts == 0):
            missing = labels[np.flatnonzero(counts == 0)[0]]
            raise ValueError(f"repeat_noise_ceiling: condition {missing!r} has no trial in partition {folds[f]!r}")
        sums = np.zeros((len(labels), x.shape[1]))
        np.add.at(sums, cond[in_f], x[in_f].astype(np.float64))
        patterns.append(sums / counts[:, None])
    low, high = noise_ceiling(compute_rdms(patterns, distance), method)
    if spearman_brown:
        k = len(folds)

        def corrected(b: float) -> float:
            rho = max(b, 0.0) ** 2
            return float(np.sqrt(k * rho / (1 + (k - 1) * rho)))

        low, high = corrected(low), corrected(high)
    return low, high
