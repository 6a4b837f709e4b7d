"""Comparing RDMs: rank, linear and whitened similarities between RDM vectors.

Every comparator works on the stored form only (upper triangle without the diagonal,
see :mod:`scene2brain.representation.rdm`); a full square matrix is refused. Each
equals ``rsatoolbox.rdm.compare`` with the method named in :data:`COMPARATORS`:

``"spearman"``
    Pearson correlation of the ranks (ties get their average rank).
``"kendall_tau_a"``
    Kendall's tau-a, ``(concordant - discordant) / (n_pairs choose 2)``: ties count as
    neither, and are not corrected for in the denominator, so a model predicting ties
    (a categorical model) is not rewarded for them (Nili et al. 2014).
``"pearson"``
    Pearson correlation of the dissimilarities.
``"cosine"``
    Cosine of the dissimilarity vectors (no centring).
``"pearson_cov"``, ``"cosine_cov"``
    Correlation / cosine after whitening by the covariance of the RDM entries under
    i.i.d. pattern noise (Diedrichsen et al. 2021): each RDM ``D`` becomes the
    double-centred second moment ``G = -1/2 H D H`` and two RDMs are compared by
    ``<G1, G2>_F / (||G1||_F ||G2||_F)`` over the full ``n x n`` matrices (the
    "unbiased distance correlation", equivalent to linear CKA). ``"pearson_cov"``
    first subtracts each vector's mean. The whitening is computed from the vectors'
    row sums; nothing square is formed.

A vector with zero spread (all ranks tied for ``"spearman"``, a zero vector for
``"cosine"``) gets similarity 0, as in rsatoolbox.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from scene2brain.representation.rdm import as_rdm_vectors, n_stimuli_from_pairs, pair_indices

__all__ = ["COMPARATORS", "compare_rdms", "transform_for_comparison"]

#: Our comparator names and the equal ``rsatoolbox.rdm.compare`` method.
COMPARATORS: dict[str, str] = {
    "spearman": "spearman",
    "kendall_tau_a": "tau-a",
    "pearson": "corr",
    "cosine": "cosine",
    "pearson_cov": "corr_cov",
    "cosine_cov": "cosine_cov",
}
#: Comparators that are an inner product of transformed, unit-norm vectors.
_LINEAR = ("spearman", "pearson", "cosine", "pearson_cov", "cosine_cov")


def _check_method(method: str) -> None:
    if method not in COMPARATORS:
        raise ValueError(f"unknown RDM comparator {method!r}; expected one of {tuple(COMPARATORS)}")


def _unit_rows(v: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.einsum("ij,ij->i", v, v))
    return np.divide(v, norm[:, None], out=np.zeros_like(v), where=norm[:, None] > 0)


def _whitened(v: np.ndarray) -> np.ndarray:
    """rsatoolbox's ``_cov_weighting``: ``[sqrt(2) * upper(G), diag(G)]`` with ``G = -1/2 H D H``.

    The Euclidean inner product of two such vectors is the Frobenius inner product of
    the double-centred matrices.
    """
    k, n_pairs = v.shape
    n = n_stimuli_from_pairs(n_pairs)
    rows, cols = pair_indices(n)
    row_sums = np.zeros((k, n))
    for r in range(k):  # row sums of the full symmetric matrix
        row_sums[r] = np.bincount(rows, v[r], minlength=n) + np.bincount(cols, v[r], minlength=n)
    m = row_sums / n  # row (= column) means
    mm = row_sums.sum(axis=1, keepdims=True) / (n * n)  # grand mean
    out = np.empty((k, n_pairs + n))
    out[:, :n_pairs] = -0.5 * (v - m[:, rows] - m[:, cols] + mm) * np.sqrt(2.0)
    out[:, n_pairs:] = -0.5 * (-2.0 * m + mm)
    return out


def transform_for_comparison(rdms: np.ndarray, method: str) -> np.ndarray:
    """Unit-norm transformed vectors whose inner products are the similarities.

    For the linear comparators (all but ``"kendall_tau_a"``),
    ``compare_rdms(a, b, method) == transform_for_comparison(a, method) @
    transform_for_comparison(b, method).T``.

    Parameters
    ----------
    rdms : ndarray, shape (n_pairs,) or (n_rdms, n_pairs)
        RDMs in the stored form.
    method : str
        One of the linear comparators.

    Returns
    -------
    ndarray, shape (n_rdms, n_features)
    """
    _check_method(method)
    if method not in _LINEAR:
        raise ValueError(f"{method!r} is not an inner product of transformed vectors")
    v = as_rdm_vectors(rdms)
    if np.isnan(v).any():
        raise ValueError("RDMs with NaN entries cannot be compared (a constant pattern under correlation distance?)")
    if method == "spearman":
        v = stats.rankdata(v, axis=1)
    if method in ("spearman", "pearson", "pearson_cov"):
        v = v - v.mean(axis=1, keepdims=True)
    if method in ("pearson_cov", "cosine_cov"):
        v = _whitened(v)
    return _unit_rows(v)


def _tie_pairs(v: np.ndarray) -> int:
    _, counts = np.unique(v, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def _tau_a(x: np.ndarray, y: np.ndarray, ties_x: int, ties_y: int) -> float:
    """Kendall's tau-a from scipy's tau-b and the numbers of tied pairs."""
    total = len(x) * (len(x) - 1) // 2
    if total - ties_x == 0 or total - ties_y == 0:
        return 0.0  # one vector is constant: no pair is concordant or discordant
    tau_b = stats.kendalltau(x, y, variant="b").statistic
    tau = tau_b * np.sqrt(float(total - ties_x) * float(total - ties_y)) / total
    return float(min(1.0, max(-1.0, tau)))


def _tau_a_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ties_a = [_tie_pairs(x) for x in a]
    ties_b = [_tie_pairs(y) for y in b]
    out = np.empty((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i, j] = _tau_a(x, y, ties_a[i], ties_b[j])
    return out


def compare_rdms(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Similarity of every RDM in ``a`` with every RDM in ``b``.

    Parameters
    ----------
    a : ndarray, shape (n_pairs,) or (n_a, n_pairs)
        RDMs in the stored form (upper triangle without diagonal); a full square matrix
        is refused.
    b : ndarray, shape (n_pairs,) or (n_b, n_pairs)
        RDMs over the same stimuli.
    method : {"spearman", "kendall_tau_a", "pearson", "cosine", "pearson_cov", "cosine_cov"}
        See the module docstring; equal to ``rsatoolbox.rdm.compare(a, b,
        COMPARATORS[method])``.

    Returns
    -------
    ndarray, shape (n_a, n_b)
        Similarities in [-1, 1].
    """
    _check_method(method)
    va, vb = as_rdm_vectors(a, "a"), as_rdm_vectors(b, "b")
    if va.shape[1] != vb.shape[1]:
        raise ValueError(f"RDMs over different numbers of pairs: {va.shape[1]} and {vb.shape[1]}")
    if method == "kendall_tau_a":
        if np.isnan(va).any() or np.isnan(vb).any():
            raise ValueError("RDMs with NaN entries cannot be compared")
        return _tau_a_matrix(va, vb)
    return transform_for_comparison(va, method) @ transform_for_comparison(vb, method).T
