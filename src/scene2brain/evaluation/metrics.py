"""Per-target (per-voxel) scores, vectorised over columns with float64 accumulation.

Conventions shared by every score here:

- inputs are ``(n_samples, n_targets)`` (or ``(n_samples,)`` for one target) and are
  cast to float64 before any sum, so float32 responses lose nothing;
- a NaN anywhere in a column makes that column's score NaN (it propagates; nothing is
  silently dropped, so a voxel is never scored on fewer samples than its neighbours);
- a column whose true values are constant has no defined score: NaN for Pearson r,
  R^2 and explained variance. A constant *prediction* gives NaN for Pearson r but a
  defined R^2 and explained variance (usually <= 0).
"""

from __future__ import annotations

import numpy as np

from scene2brain.utils.arrays import check_same_shape


def _check_pair(
    y_true: np.ndarray, y_pred: np.ndarray, names: tuple[str, str] = ("y_true", "y_pred")
) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 (n_samples, n_targets); the same shape (no broadcasting), 1-D or 2-D, >= 2 samples.

    ``names`` are the caller's argument names, used in the messages.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    check_same_shape(**{names[0]: y_true, names[1]: y_pred})
    if y_true.ndim not in (1, 2):
        raise ValueError(
            f"{names[0]}, {names[1]}: expected shape (n_samples,) or (n_samples, n_targets), got {y_true.shape}"
        )
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    if y_true.shape[0] < 2:
        raise ValueError(f"{names[0]}: need at least 2 samples, got {y_true.shape[0]}")
    return y_true, y_pred


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Pearson correlation between matching columns.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    ndarray of shape (n_targets,)

    Examples
    --------
    >>> import numpy as np
    >>> pearson_r(np.array([[1., 2.], [2., 1.], [3., 3.]]), np.array([[1., 1.], [2., 2.], [3., 3.]]))
    array([1. , 0.5])
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    a = y_true - y_true.mean(axis=0)
    b = y_pred - y_pred.mean(axis=0)
    denom = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / denom
    r[denom == 0] = np.nan
    return np.clip(r, -1.0, 1.0)


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination ``1 - SS_res / SS_tot`` per column.

    The true R^2 of the prediction as it is (no refitting of slope or offset), so it
    is negative for predictions worse than the column mean; compare with the squared
    Pearson r, which is never negative.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    ndarray of shape (n_targets,)
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return _one_minus_ratio(((y_true - y_pred) ** 2).sum(axis=0), ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0))


def _one_minus_ratio(residual: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``1 - residual / total``, NaN where ``total`` is 0 (a constant target)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 - residual / total
    out[total == 0] = np.nan
    return out


def explained_variance(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Explained variance ``1 - Var(y_true - y_pred) / Var(y_true)`` per column.

    Unlike :func:`r2_score`, a constant offset between prediction and truth is not
    penalised. Equal to scikit-learn's ``explained_variance_score`` with
    ``multioutput="raw_values", force_finite=False``.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    ndarray of shape (n_targets,)

    Examples
    --------
    >>> explained_variance(np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0]))
    array([1.])
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return _one_minus_ratio((y_true - y_pred).var(axis=0), y_true.var(axis=0))


def r2_score_split(y_true: np.ndarray, y_pred_split: np.ndarray) -> np.ndarray:
    """Split the R^2 of a sum of predictions between its parts (the product measure).

    With ``y`` and each part ``p_i`` centred over samples and ``p = sum_i p_i``, part
    ``i`` receives ``sum_t (2 y p_i - p_i p) / sum_t y^2``; the parts add up to the R^2
    of ``p`` (St-Yves & Naselaris 2018; himalaya's ``r2_score_split``). A part can be
    negative when it is anti-correlated with the others' contribution.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_targets)
    y_pred_split : ndarray of shape (n_parts, n_samples, n_targets)
        Each feature band's contribution to the prediction.

    Returns
    -------
    ndarray of shape (n_parts, n_targets)
        NaN for constant targets.
    """
    y_true_in = y_true
    y_true = np.asarray(y_true, dtype=np.float64)
    parts = np.asarray(y_pred_split, dtype=np.float64)
    if y_true.ndim == 1 and parts.ndim == 2:
        y_true, parts = y_true[:, None], parts[..., None]
    if y_true.ndim != 2 or parts.ndim != 3 or parts.shape[1:] != y_true.shape:
        raise ValueError(
            f"y_true and y_pred_split: expected shapes (n_samples, n_targets) and (n_parts, n_samples, n_targets), "
            f"got y_true of shape {np.shape(y_true_in)} and y_pred_split of shape {np.shape(y_pred_split)}"
        )
    y = y_true - y_true.mean(axis=0)
    parts = parts - parts.mean(axis=1, keepdims=True)
    total = parts.sum(axis=0)
    ss_tot = (y * y).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        split = (parts * (2 * y - total)[None]).sum(axis=1) / ss_tot
    split[:, ss_tot == 0] = np.nan
    return split
