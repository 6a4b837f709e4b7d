"""Column-wise array helpers shared by the data, evaluation and pipeline layers."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

_BLOCK_COLUMNS = 2048


def check_matrix(X: Any, name: str, n_columns: int | None = None) -> np.ndarray:
    """``X`` as a 2-D array of finite real numbers (with ``n_columns`` columns when given), or a ValueError.

    The message names ``name`` and, for non-finite values, how many and where the first is.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (stimuli x columns), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real numbers, got dtype {X.dtype}")
    if n_columns is not None and X.shape[1] != n_columns:
        raise ValueError(f"{name}: expected {n_columns} columns (as in fit), got {X.shape[1]}")
    bad = ~np.isfinite(X)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"{name}: expected finite values, found {int(bad.sum())} NaN/inf entries "
            f"(first at row {rows[0]}, column {cols[0]})"
        )
    return X


def check_same_shape(**arrays: Any) -> None:
    """Refuse arrays that pair up element by element but differ in shape (no broadcasting).

    Numerical functions that combine arrays element by element (a correlation with its
    ceiling, a prediction with the data) call this first, so that shapes ``(5,)`` and
    ``(5, 1)`` are an error rather than a silent ``(5, 5)`` result.

    Parameters
    ----------
    **arrays : array-like
        The arrays by argument name, in the order to report them.

    Raises
    ------
    ValueError
        Naming the first argument whose shape differs from the first one's, and both shapes.

    Examples
    --------
    >>> check_same_shape(r=np.zeros(5), noise_ceiling=np.zeros(5))
    >>> check_same_shape(r=np.zeros(5), noise_ceiling=np.zeros((5, 1)))
    Traceback (most recent call last):
    ...
    ValueError: r and noise_ceiling: expected the same shape, got r of shape (5,) and noise_ceiling of shape (5, 1)
    """
    _check_matching(arrays, "shape", np.shape)


def check_same_length(**arrays: Any) -> None:
    """Refuse arrays that pair up row by row (first axis) but differ in length.

    Parameters
    ----------
    **arrays : array-like
        The arrays by argument name; each must have at least one dimension.

    Raises
    ------
    ValueError
        Naming the first argument whose length differs from the first one's, and both shapes.

    Examples
    --------
    >>> check_same_length(labels=np.zeros(4), scores=np.zeros((3, 2)))
    Traceback (most recent call last):
    ...
    ValueError: labels and scores: expected the same number of rows, got labels of shape (4,) and scores of shape (3, 2)
    """
    for name, array in arrays.items():
        if np.ndim(array) == 0:
            raise ValueError(f"{name}: expected an array with one row per sample, got a scalar")
    _check_matching(arrays, "number of rows", lambda a: np.shape(a)[0])


def _check_matching(arrays: dict[str, Any], what: str, key: Any) -> None:
    items = list(arrays.items())
    if not items:
        return
    first_name, first = items[0]
    for name, array in items[1:]:
        if key(array) != key(first):
            raise ValueError(
                f"{first_name} and {name}: expected the same {what}, got {first_name} of shape {np.shape(first)} "
                f"and {name} of shape {np.shape(array)}"
            )


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
