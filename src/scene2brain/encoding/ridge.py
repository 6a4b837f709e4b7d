"""Voxelwise ridge regression with one regularisation strength per target.

:func:`ridge_cv` is the functional core; :class:`RidgeCV` is the scikit-learn estimator
around it. Both run the cross-validation driver of :mod:`scene2brain.encoding._cv`
with a single, unscaled candidate (plain ridge is banded ridge with one band): each
training fold is decomposed once and every alpha is scored for every target from small
sufficient statistics, without forming predictions (see
:mod:`scene2brain.encoding._solver`); the refit happens in the full-sample eigenbasis
with each target's own alpha.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scene2brain.encoding import _solver as sv
from scene2brain.encoding._base import (
    DEFAULT_MEMORY_BUDGET,
    Folds,
    LinearModelCV,
    Solver,
    check_arrays,
    check_options,
    default_alphas,
    fill_doc,
)
from scene2brain.encoding._cv import CVFit, cross_validate
from scene2brain.encoding.backend import Backend

__all__ = ["RidgeCV", "RidgeResult", "default_alphas", "ridge_cv"]


@dataclass
class RidgeResult:
    """Output of :func:`ridge_cv`.

    Attributes
    ----------
    coef : ndarray of shape (n_features, n_targets)
    intercept : ndarray of shape (n_targets,)
    best_alphas : ndarray of shape (n_targets,)
    cv_scores : ndarray of shape (n_alphas, n_targets)
        Held-out score per alpha, averaged over folds (for leave-one-out: the score of
        all leave-one-out predictions together).
    alphas : ndarray of shape (n_alphas,)
        The grid, sorted.
    solver : {"primal", "dual"}
    retained_variance : float or None
        Fraction of the centred feature variance kept by the rank truncation.
    """

    coef: np.ndarray
    intercept: np.ndarray
    best_alphas: np.ndarray
    cv_scores: np.ndarray
    alphas: np.ndarray
    solver: str
    retained_variance: float | None = None


@fill_doc
def ridge_cv(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: Iterable[float] | None = None,
    folds: Folds = "loo",
    *,
    fit_intercept: bool = True,
    scoring: sv.Scoring = "r2",
    standardise: bool = False,
    solver: Solver = "auto",
    n_components: int | None = None,
    backend: str | Backend = "numpy",
    device: str | None = None,
    memory_budget: float = DEFAULT_MEMORY_BUDGET,
) -> RidgeResult:
    """Choose each target's ridge alpha by cross-validation, then refit on all samples.

    Minimises ``||y_j - X w_j - b_j||^2 + alpha_j ||w_j||^2`` for every target ``j``.

    Parameters
    ----------
    %(X)s
    %(Y)s
    %(alphas)s
    %(folds)s
    %(fit_intercept)s
    %(scoring)s
    %(standardise)s
    %(solver)s
    %(n_components)s
    %(backend)s
    %(device)s
    %(memory_budget)s

    Returns
    -------
    RidgeResult
    """
    check_options(scoring, solver)
    X, Y = check_arrays(X, Y)
    fit = cross_validate(
        X,
        Y,
        alphas,
        folds,
        fit_intercept=fit_intercept,
        scoring=scoring,
        standardise=standardise,
        solver=solver,
        n_components=n_components,
        backend=backend,
        device=device,
        memory_budget=memory_budget,
    )
    return _result(fit)


def _result(fit: CVFit) -> RidgeResult:
    return RidgeResult(
        fit.coef, fit.intercept, fit.best_alphas, fit.cv_scores, fit.alphas, fit.solver, fit.retained_variance
    )


@fill_doc
class RidgeCV(LinearModelCV):
    """Ridge regression with a cross-validated alpha for every target.

    Minimises ``||y_j - X w_j - b_j||^2 + alpha_j ||w_j||^2`` independently for each
    target ``j``, with ``alpha_j`` chosen from ``alphas`` by cross-validation
    (:func:`ridge_cv` describes the algorithm).

    Parameters
    ----------
    %(alphas)s
    %(cv)s
    %(fit_intercept)s
    %(scoring)s
    %(standardise)s
    %(solver)s
    %(n_components)s
    %(backend)s
    %(device)s
    %(memory_budget)s

    Attributes
    ----------
    %(coef_)s
    %(intercept_)s
    best_alphas_ : ndarray of shape (n_targets,)
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
        Mean held-out score per alpha.
    alphas_ : ndarray
        The grid actually used (sorted).
    solver_ : {"primal", "dual"}
    retained_variance_ : float or None
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5))
    >>> Y = X @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((100, 3))
    >>> model = RidgeCV(cv=5).fit(X, Y)
    >>> model.best_alphas_.shape, round(model.score(X, Y), 2)
    ((3,), 1.0)
    """

    def __init__(
        self,
        alphas=None,
        cv=5,
        fit_intercept: bool = True,
        scoring: sv.Scoring = "r2",
        standardise: bool = False,
        solver: Solver = "auto",
        n_components: int | None = None,
        backend: str = "numpy",
        device: str | None = None,
        memory_budget: float = DEFAULT_MEMORY_BUDGET,
    ):
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.standardise = standardise
        self.solver = solver
        self.n_components = n_components
        self.backend = backend
        self.device = device
        self.memory_budget = memory_budget

    def _cv_arguments(self, n_features: int) -> dict[str, Any]:
        """Keyword arguments of the cross-validation driver (all but the data and the folds)."""
        check_options(self.scoring, self.solver)
        return {
            "alphas": self.alphas,
            "standardise": self.standardise,
            "n_components": self.n_components,
            **self._solver_options(),
        }

    def _store_cv(self, fit: CVFit, single: bool, arguments: dict[str, Any]) -> None:
        """Set the fitted attributes from the driver's result (``arguments``: from :meth:`_cv_arguments`)."""
        result = _result(fit)
        self._store(result.coef, result.intercept, single)
        self.best_alphas_ = result.best_alphas
        self.cv_scores_ = result.cv_scores
        self.alphas_ = result.alphas
        self.solver_ = result.solver
        self.retained_variance_ = result.retained_variance

    def _fit(self, X: np.ndarray, y: np.ndarray, folds: Folds) -> None:
        arguments = self._cv_arguments(X.shape[1])
        X, Y = check_arrays(X, y)
        self._store_cv(cross_validate(X, Y, folds=folds, **arguments), y.ndim == 1, arguments)
