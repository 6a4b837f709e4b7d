"""Permutation tests of decoders: the label-permutation scheme, p-values and their correction.

The scheme (:func:`permute_labels`)
-----------------------------------
Rows are gathered into *units*: the rows that share a group **and** a label. When labels
are constant within each group (repeats of a stimulus, crops of one photograph), the
units are the groups. A permutation draws one random permutation of the units' labels
(``numpy.random.default_rng(seed)``, one ``permutation(n_units)`` per draw) and gives
every row its unit's new label. So

- rows of one unit (e.g. the repeats of a stimulus) always keep a common label;
- the multiset of unit labels is kept (class sizes in units; in rows when units are of
  equal size);
- the permutations depend only on the number of units and ``seed``: two calls with the
  same labels, groups and seed use the same permutations, as the maximum-statistic
  correction across ROIs or feature spaces (:func:`correct_p_values`) requires.

When a group holds several labels it is split into one unit per label: those rows are
exchangeable with any other unit, but rows of one group still stay together in the
cross-validation folds.

P-values are ``(1 + #{null >= observed}) / (1 + n_permutations)`` (Phipson & Smyth 2010;
:mod:`scene2brain.evaluation.inference`), never 0; null values within ``1e-12`` of the
observed one count as ties.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from scene2brain.evaluation.inference import _p_values


def permutation_units(y: np.ndarray, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The exchangeable units of :func:`permute_labels`.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels.
    groups : array-like of shape (n,), optional
        Rows that belong together; default each row its own group.

    Returns
    -------
    unit_of_row : ndarray of int, shape (n,)
        Unit index of each row, units numbered in order of first appearance of their
        (group, label) pair in the sorted order of ``np.unique``.
    unit_label : ndarray of shape (n_units,)
        The label of each unit.
    """
    y = np.asarray(y)
    n = len(y)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups: expected shape ({n},), got {groups.shape}")
    _, group_code = np.unique(groups, return_inverse=True)
    _, label_code = np.unique(y, return_inverse=True)
    _, first, unit_of_row = np.unique(
        np.stack([group_code.ravel(), label_code.ravel()], axis=1), axis=0, return_index=True, return_inverse=True
    )
    return unit_of_row.ravel(), y[first]


def permute_labels(y: np.ndarray, groups: np.ndarray | None, n_permutations: int, seed: int = 0) -> np.ndarray:
    """Permuted label vectors: unit labels shuffled, rows of a unit kept together.

    See the module docstring for the scheme.

    Parameters
    ----------
    y : array-like of shape (n,)
    groups : array-like of shape (n,) or None
        Default each row its own group (a free permutation of the rows).
    n_permutations : int
    seed : int

    Returns
    -------
    ndarray of shape (n_permutations, n), dtype of ``y``

    Examples
    --------
    >>> y = np.array(["a", "a", "b", "b"])
    >>> perms = permute_labels(y, groups=[0, 0, 1, 1], n_permutations=3, seed=0)
    >>> bool(all(p[0] == p[1] and p[2] == p[3] for p in perms))
    True
    """
    if n_permutations < 0:
        raise ValueError(f"n_permutations: expected a non-negative integer, got {n_permutations}")
    unit_of_row, unit_label = permutation_units(y, groups)
    rng = np.random.default_rng(seed)
    order = np.array([rng.permutation(len(unit_label)) for _ in range(n_permutations)], dtype=np.int64)
    order = order.reshape(n_permutations, len(unit_label))
    return unit_label[order][:, unit_of_row]


def permutation_p_value(observed: float, null: np.ndarray) -> float:
    """``(1 + #{null >= observed}) / (1 + len(null))``; NaN without a null or an observed value."""
    null = np.asarray(null, dtype=np.float64)
    if null.size == 0 or not np.isfinite(observed):
        return float("nan")
    return float(_p_values(np.asarray(observed, dtype=np.float64), null, exact=False))


def correct_p_values(observed: np.ndarray, null: np.ndarray, method: str = "maxstat") -> np.ndarray:
    """Permutation p-values corrected over ``k`` tests that share their permutations.

    Parameters
    ----------
    observed : ndarray of shape (k,)
        Observed statistic of each test (larger = more extreme).
    null : ndarray of shape (n_permutations, k)
        The statistic of each test under each permutation; row ``i`` must come from the
        same permutation of the labels for every test (as :func:`permute_labels` with
        one seed gives).
    method : {"maxstat", "fdr"}
        ``"maxstat"``: family-wise error control by the null of the maximum over the
        tests, ``p_j = (1 + #{max_i >= observed_j}) / (1 + n)`` (Nichols & Holmes 2002);
        ``"fdr"``: Benjamini-Hochberg (:func:`scipy.stats.false_discovery_control`) on
        the uncorrected permutation p-values.

    Returns
    -------
    ndarray of shape (k,)
        NaN for tests with a NaN observed value (left out of the maximum and the FDR family).

    Examples
    --------
    >>> null = np.array([[0.1, 0.5], [0.3, 0.2], [0.2, 0.1]])
    >>> correct_p_values(np.array([0.4, 0.6]), null)  # maxima 0.5, 0.3, 0.2
    array([0.5 , 0.25])
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    if observed.ndim != 1 or null.ndim != 2 or null.shape[1] != len(observed):
        raise ValueError(f"observed (k,), null (n_permutations, k): got {observed.shape}, {null.shape}")
    if len(null) == 0:
        return np.full(len(observed), np.nan)
    valid = np.isfinite(observed)
    if method == "maxstat":
        maxima = np.nanmax(np.where(valid[None, :], null, -np.inf), axis=1) if valid.any() else None
        if maxima is None:
            return np.full(len(observed), np.nan)
        return _p_values(observed, maxima[:, None], exact=False)
    if method == "fdr":
        p = _p_values(observed, null, exact=False)
        out = np.full(len(observed), np.nan)
        if valid.any():
            out[valid] = stats.false_discovery_control(p[valid], method="bh")
        return out
    raise ValueError(f"method: unknown {method!r}; valid choices: ['maxstat', 'fdr']")
