"""Classification metrics of a decoder: accuracy, balanced accuracy, recall, confusion, AUC.

:func:`decoding_metrics` is the summary of one set of predictions;
:func:`batch_scores` scores many label vectors at once (one row per permutation) with
the same arithmetic as :func:`sklearn.metrics.balanced_accuracy_score`, so a
permutation null computed in a batch equals the one computed one fit at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from scene2brain.utils.arrays import check_same_length, check_same_shape

METRICS = ("accuracy", "balanced_accuracy")


def check_metric(metric: str) -> str:
    """``metric`` if it is one of :data:`METRICS`, else a ValueError naming the choices."""
    if metric not in METRICS:
        raise ValueError(f"metric: unknown {metric!r}; valid choices: {list(METRICS)}")
    return metric


def confusion(codes_true: np.ndarray, codes_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts of integer class codes: rows true, columns predicted (int64, K x K).

    ``codes_true`` and ``codes_pred`` have the same shape (never broadcast).
    """
    check_same_shape(codes_true=codes_true, codes_pred=codes_pred)
    flat = np.bincount(codes_true * n_classes + codes_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def _balanced(confusions: np.ndarray) -> np.ndarray:
    """Mean recall over the classes present in the true labels (``confusions``: (..., K, K))."""
    counts = confusions.sum(axis=-1).astype(np.float64)
    hits = np.diagonal(confusions, axis1=-2, axis2=-1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = hits / counts
    # like sklearn: classes absent from y_true are dropped, the others averaged in class order
    return np.nanmean(recall, axis=-1)


def batch_scores(metric: str, codes_true: np.ndarray, codes_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """The metric of each row of predicted class codes against the matching row of true codes.

    Parameters
    ----------
    metric : {"accuracy", "balanced_accuracy"}
    codes_true, codes_pred : ndarray of int, shape (n_rows, n_samples)
        Class codes ``0 .. n_classes - 1``; ``codes_true`` may be 1-D (the same truth for every row).
    n_classes : int

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    check_metric(metric)
    codes_pred = np.atleast_2d(codes_pred)
    codes_true = np.asarray(codes_true)
    if codes_pred.ndim != 2:
        raise ValueError(f"codes_pred: expected shape (n_rows, n_samples), got {codes_pred.shape}")
    if codes_true.ndim == 1:  # one truth for every row: its length must be the rows' length
        check_same_shape(codes_true=codes_true, **{"codes_pred[0]": codes_pred[0]})
    else:
        check_same_shape(codes_true=codes_true, codes_pred=codes_pred)
    codes_true = np.broadcast_to(codes_true, codes_pred.shape)
    if metric == "accuracy":
        return (codes_true == codes_pred).mean(axis=1)
    n_rows = codes_pred.shape[0]
    flat = (np.arange(n_rows)[:, None] * n_classes + codes_true) * n_classes + codes_pred
    confusions = np.bincount(flat.ravel(), minlength=n_rows * n_classes * n_classes)
    return _balanced(confusions.reshape(n_rows, n_classes, n_classes))


def _positive_scores(scores: np.ndarray | None, n_classes: int) -> np.ndarray | None:
    if scores is None or n_classes != 2:
        return None
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2:
        if scores.shape[1] != 2:
            raise ValueError(f"scores: expected shape (n,) or (n, 2) for two classes, got {scores.shape}")
        scores = scores[:, 1]
    return scores


def decoding_metrics(
    y_true: np.ndarray | Sequence[Any],
    y_pred: np.ndarray | Sequence[Any],
    scores: np.ndarray | None = None,
    classes: np.ndarray | Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class recall, confusion matrix and (two classes) ROC AUC.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    scores : ndarray of shape (n_samples,) or (n_samples, 2), optional
        With two classes: a score that grows with the second class of ``classes``
        (a decision value or that class's probability; of a two-column array the
        second column). Used only for the AUC.
    classes : array-like, optional
        The label set, in the order of the confusion matrix; default the sorted union of
        ``y_true`` and ``y_pred``.

    Returns
    -------
    dict
        ``accuracy``; ``balanced_accuracy`` (mean recall over the classes present in
        ``y_true``, as :func:`sklearn.metrics.balanced_accuracy_score`); ``recall``
        (dict class -> recall, NaN for a class absent from ``y_true``); ``confusion``
        (K x K int array, rows true, columns predicted); ``auc`` (ROC AUC with two
        classes and ``scores``, else NaN; NaN also when ``y_true`` holds one class);
        ``chance`` (1 / K); ``majority`` (the rate of the most frequent class of
        ``y_true``: the accuracy of always guessing it); ``classes``; ``n``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    check_same_shape(y_true=y_true, y_pred=y_pred)
    if y_true.ndim != 1:
        raise ValueError(f"y_true, y_pred: expected two 1-D arrays of equal length, got {y_true.shape}, {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("y_true: no samples")
    if scores is not None:
        check_same_length(y_true=y_true, scores=scores)
    classes = np.unique(np.concatenate([y_true, y_pred])) if classes is None else np.asarray(classes)
    index = {c: i for i, c in enumerate(classes.tolist())}
    missing = sorted({str(c) for c in np.unique(np.concatenate([y_true, y_pred])).tolist() if c not in index})
    if missing:
        raise ValueError(f"labels {missing} are not in classes {classes.tolist()}")
    k = len(classes)
    codes_true = np.array([index[c] for c in y_true.tolist()], dtype=np.int64)
    codes_pred = np.array([index[c] for c in y_pred.tolist()], dtype=np.int64)
    conf = confusion(codes_true, codes_pred, k)
    counts = conf.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.diag(conf) / counts
    positive = _positive_scores(scores, k)
    auc = float("nan")
    if positive is not None and len(np.unique(codes_true)) == 2:
        auc = float(roc_auc_score(codes_true == 1, positive))
    return {
        "accuracy": float(np.mean(codes_true == codes_pred)),
        "balanced_accuracy": float(_balanced(conf)),
        "recall": {str(c): float(r) for c, r in zip(classes.tolist(), recall, strict=True)},
        "confusion": conf,
        "auc": auc,
        "chance": 1.0 / k,
        "majority": float(counts.max() / counts.sum()),
        "classes": [str(c) for c in classes.tolist()],
        "n": len(y_true),
    }
