"""Hyperparameters by cross-validation on the caller's folds, with one meaning of the CV score for every encoder.

Every encoder of a run sees the same folds (the caller's ``(train, test)`` index
pairs on the training stimuli) and reports the same held-out quantity per target:
the mean over folds of each fold's R^2 (:func:`~scene2brain.evaluation.metrics.r2_score`,
about the fold's own test mean) at the chosen hyperparameters. These helpers
implement that loop once for any scikit-learn-style regressor.

A grid is searched either *shared* (one value for every target, chosen by the mean
over targets of the CV score: the choice of scikit-learn's ``GridSearchCV`` with
``scoring="r2"``), or *per target* (each target's best value; targets are then refitted
in groups that share a value, see :class:`TargetGroups`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scene2brain.evaluation.metrics import r2_score

Folds = Sequence[tuple[np.ndarray, np.ndarray]]


def fold_scores(
    make: Callable[[], Any],
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    fit_params: Callable[[np.ndarray], dict[str, Any]] | None = None,
) -> np.ndarray:
    """Mean over ``folds`` of the held-out R^2 per target of a fresh ``make()`` fitted on each training part.

    Parameters
    ----------
    make : callable
        Returns an unfitted estimator with ``fit(X, Y)`` and ``predict(X)``.
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets)
    folds : sequence of (train_index, test_index)
    fit_params : callable, optional
        ``fit_params(train_index)`` gives the keyword arguments of ``fit`` on that training part.

    Returns
    -------
    ndarray of shape (n_targets,)
        NaN for a target that is constant on every test part.
    """
    scores = []
    for train, test in folds:
        extra = fit_params(train) if fit_params is not None else {}
        predicted = np.asarray(make().fit(X[train], Y[train], **extra).predict(X[test])).reshape(len(test), -1)
        scores.append(r2_score(Y[test], predicted))
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.array(scores), axis=0) if len(scores) else np.full(Y.shape[1], np.nan)


def grid_scores(
    make: Callable[[Any], Any], grid: Sequence[Any], X: np.ndarray, Y: np.ndarray, folds: Folds
) -> np.ndarray:
    """:func:`fold_scores` of ``make(value)`` for every value of ``grid``: shape (n_grid, n_targets)."""
    return np.array([fold_scores(lambda v=value: make(v), X, Y, folds) for value in grid])


def choose(scores: np.ndarray, per_target: bool) -> np.ndarray:
    """Index into the grid of the value chosen for each target (first best on ties; NaN scores never win).

    Parameters
    ----------
    scores : ndarray of shape (n_grid, n_targets)
    per_target : bool
        Each target's own best value, or one shared value: the best mean over targets.

    Returns
    -------
    ndarray of int, shape (n_targets,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    if per_target:
        return np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(np.isnan(scores).all(axis=1, keepdims=True), -np.inf, scores), axis=1)
    return np.full(scores.shape[1], int(np.argmax(np.where(np.isnan(mean), -np.inf, mean))))


class TargetGroups:
    """Targets fitted in groups (each group its own estimator); ``predict`` puts their columns back in place.

    Parameters
    ----------
    models : list of estimators, fitted
    columns : list of ndarray of int
        The target columns each model predicts, in its output order.
    n_targets : int
    """

    def __init__(self, models: list[Any], columns: list[np.ndarray], n_targets: int):
        self.models = models
        self.columns = columns
        self.n_targets = n_targets

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((len(X), self.n_targets))
        for model, cols in zip(self.models, self.columns, strict=True):
            out[:, cols] = np.asarray(model.predict(X)).reshape(len(X), -1)
        return out


def search(
    make: Callable[[Any], Any],
    grid: Sequence[Any],
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    per_target: bool = False,
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Score ``grid`` on ``folds``, choose, refit on all rows.

    Parameters
    ----------
    make : callable
        ``make(value)`` returns an unfitted estimator with that hyperparameter value.
    grid : sequence
        Candidate values.
    X, Y : ndarray
    folds : sequence of (train_index, test_index)
    per_target : bool
        Choose per target (refitting each group of targets that share a value) or one shared value.

    Returns
    -------
    model : estimator or TargetGroups
        Fitted on all rows; ``predict(X)`` gives (n_samples, n_targets).
    chosen : ndarray of int, shape (n_targets,)
        Index into ``grid`` per target.
    cv_score : ndarray of shape (n_targets,)
        Each target's CV score at its chosen value.
    scores : ndarray of shape (n_grid, n_targets)
        Every value's CV score.
    """
    if len(grid) == 0:
        raise ValueError("grid: expected at least one candidate value")
    scores = grid_scores(make, grid, X, Y, folds)
    chosen = choose(scores, per_target)
    cv_score = scores[chosen, np.arange(Y.shape[1])]
    values = np.unique(chosen)
    if len(values) == 1:
        model = make(grid[int(values[0])]).fit(X, Y)
        return TargetGroups([model], [np.arange(Y.shape[1])], Y.shape[1]), chosen, cv_score, scores
    models, columns = [], []
    for value in values:
        cols = np.flatnonzero(chosen == value)
        models.append(make(grid[int(value)]).fit(X, Y[:, cols]))
        columns.append(cols)
    return TargetGroups(models, columns, Y.shape[1]), chosen, cv_score, scores
