"""Column-wise array helpers shared by the data, evaluation and pipeline layers."""

from __future__ import annotations

import numpy as np
from scipy import sparse

_BLOCK_COLUMNS = 2048


def group_means(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of the rows of ``values`` within each group, accumulated in float64.

    Rows are combined through a sparse indicator matrix, a block of columns at a time,
    so memory stays bounded and the cost is one pass over ``values``.

    Parameters
    ----------
    values : array of shape (n_rows, n_columns)
    groups : array of shape (n_rows,)
        Group label of each row.

    Returns
    -------
    labels : ndarray
        Sorted unique group labels.
    means : ndarray of shape (n_groups, n_columns), float64
    counts : ndarray of shape (n_groups,)
        Rows per group.

    Examples
    --------
    >>> labels, means, counts = group_means(np.array([[1.0], [3.0], [5.0]]), np.array([7, 2, 7]))
    >>> labels.tolist(), means.ravel().tolist(), counts.tolist()
    ([2, 7], [3.0, 3.0], [1, 2])
    """
    labels, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    n_rows, n_cols = values.shape
    indicator = sparse.csr_array((1.0 / counts[inverse], (inverse, np.arange(n_rows))), shape=(len(labels), n_rows))
    means = np.empty((len(labels), n_cols))
    for start in range(0, n_cols, _BLOCK_COLUMNS):
        cols = slice(start, start + _BLOCK_COLUMNS)
        means[:, cols] = indicator @ np.asarray(values[:, cols], dtype=np.float64)
    return labels, means, counts


def standardise_columns(values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Z-score each column with the mean and SD of ``rows`` (all rows by default), in float64.

    Columns whose SD is zero are only centred.
    """
    values = np.asarray(values, dtype=np.float64)
    reference = values if rows is None else values[rows]
    sd = reference.std(axis=0)
    sd[sd == 0] = 1.0
    return (values - reference.mean(axis=0)) / sd
