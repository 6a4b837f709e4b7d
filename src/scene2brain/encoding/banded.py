"""Banded ridge: one regularisation strength per feature space ("band") and per target.

Minimises ``||y - sum_i X_i w_i - b||^2 + sum_i alpha_i ||w_i||^2`` for every target.
Writing ``alpha_i = alpha / gamma_i`` with ``gamma`` on the simplex turns this into
plain ridge on the features ``sqrt(gamma_i) X_i``; like himalaya's ``GroupRidgeCV``,
the search samples ``gamma`` (the first sample uniform, the rest Dirichlet) and, for
each, scores the whole alpha grid by cross-validation with the driver that also runs
plain ridge (:mod:`scene2brain.encoding._cv`). Each target keeps the (gamma, alpha)
with the best CV score. In the primal form the fold-blocked statistics ``X_f^T Y_f``
are computed once per chunk of targets and reused for every gamma (only the small
``p x p`` decompositions change); in the dual each gamma needs new kernel
decompositions; exact leave-one-out needs one decomposition of all samples per gamma.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from scene2brain.encoding import _solver as sv
from scene2brain.encoding._base import (
    DEFAULT_MEMORY_BUDGET,
    Folds,
    LinearModelCV,
    Solver,
    check_arrays,
    check_bands,
    check_gammas,
    check_options,
    fill_doc,
)
from scene2brain.encoding._cv import Bands, CVFit, cross_validate
from scene2brain.encoding.backend import Backend
from scene2brain.evaluation.metrics import r2_score_split

__all__ = ["BandedRidgeCV", "BandedRidgeResult", "banded_ridge_cv", "sample_band_weights"]


@dataclass
class BandedRidgeResult:
    """Output of :func:`banded_ridge_cv`.

    Attributes
    ----------
    coef : ndarray of shape (n_features, n_targets)
    intercept : ndarray of shape (n_targets,)
    band_alphas : ndarray of shape (n_bands, n_targets)
        ``alpha / gamma_i`` per band (``inf`` where a band's weight is 0).
    band_weights : ndarray of shape (n_bands, n_targets)
        The chosen ``gamma`` per target (columns sum to 1).
    alphas : ndarray of shape (n_targets,)
        The chosen overall ``alpha`` per target.
    cv_scores : ndarray of shape (n_targets,)
        Best mean held-out score.
    gammas : ndarray of shape (n_iter, n_bands)
        Every band weighting that was tried.
    bands : ndarray of shape (n_bands,)
        Band labels, in the order of the rows above.
    """

    coef: np.ndarray
    intercept: np.ndarray
    band_alphas: np.ndarray
    band_weights: np.ndarray
    alphas: np.ndarray
    cv_scores: np.ndarray
    gammas: np.ndarray
    bands: np.ndarray


def sample_band_weights(
    n_bands: int, n_iter: int, concentration: Sequence[float] = (0.1, 1.0), seed: int | None = 0
) -> np.ndarray:
    """Band weightings on the simplex: uniform first, then Dirichlet draws cycling over ``concentration``.

    Parameters
    ----------
    n_bands : int
    n_iter : int
        Number of weightings (rows).
    concentration : sequence of float
        Dirichlet concentrations, cycled over the draws.
    seed : int or None

    Returns
    -------
    ndarray of shape (n_iter, n_bands)
    """
    if n_iter < 1:
        raise ValueError(f"n_iter: expected at least 1, got {n_iter}")
    rng = np.random.default_rng(seed)
    gammas = np.empty((n_iter, n_bands))
    gammas[0] = 1.0 / n_bands
    for i in range(1, n_iter):
        gammas[i] = rng.dirichlet(np.full(n_bands, concentration[(i - 1) % len(concentration)]))
    return gammas


@fill_doc
def banded_ridge_cv(
    X: np.ndarray,
    Y: np.ndarray,
    bands: Sequence | int,
    alphas: Iterable[float] | None = None,
    folds: Folds = (),
    *,
    n_iter: int = 20,
    concentration: Sequence[float] = (0.1, 1.0),
    gammas: np.ndarray | None = None,
    seed: int | None = 0,
    fit_intercept: bool = True,
    scoring: sv.Scoring = "r2",
    solver: Solver = "auto",
    backend: str | Backend = "numpy",
    device: str | None = None,
    memory_budget: float = DEFAULT_MEMORY_BUDGET,
) -> BandedRidgeResult:
    """Choose per-band, per-target ridge strengths by random search and cross-validation.

    Parameters
    ----------
    %(X)s
    %(Y)s
    %(bands)s
    %(alphas)s
    %(folds)s
    %(n_iter)s
    %(concentration)s
    %(gammas)s
    %(seed)s
    %(fit_intercept)s
    %(scoring)s
    %(solver)s
    %(backend)s
    %(device)s
    %(memory_budget)s

    Returns
    -------
    BandedRidgeResult
    """
    check_options(scoring, solver)
    X, Y = check_arrays(X, Y)
    search = _band_search(bands, X.shape[1], n_iter, concentration, gammas, seed)
    fit = cross_validate(
        X,
        Y,
        alphas,
        folds,
        bands=search,
        fit_intercept=fit_intercept,
        scoring=scoring,
        solver=solver,
        backend=backend,
        device=device,
        memory_budget=memory_budget,
    )
    return _result(fit, search)


def _band_search(
    bands: Sequence | int,
    n_features: int,
    n_iter: int,
    concentration: Sequence[float],
    gammas: np.ndarray | None,
    seed: int | None,
) -> Bands:
    """The checked bands and the band weightings to try (sampled unless ``gammas`` is given)."""
    labels, band_of = check_bands(bands, n_features)
    gammas = sample_band_weights(len(labels), n_iter, concentration, seed) if gammas is None else gammas
    return Bands(band_of, check_gammas(gammas, len(labels)), labels)


def _result(fit: CVFit, search: Bands) -> BandedRidgeResult:
    weights = search.gammas[fit.best_candidate].T
    with np.errstate(divide="ignore"):
        band_alphas = np.where(weights > 0, fit.best_alphas[None, :] / weights, np.inf)
    return BandedRidgeResult(
        fit.coef, fit.intercept, band_alphas, weights, fit.best_alphas, fit.best_scores, search.gammas, search.labels
    )


@fill_doc
class BandedRidgeCV(LinearModelCV):
    """Ridge with a cross-validated strength per feature band and per target.

    Parameters
    ----------
    %(bands)s
    %(alphas)s
    %(cv)s
    %(n_iter)s
    %(concentration)s
    %(random_state)s
    %(fit_intercept)s
    %(scoring)s
    %(solver)s
    %(backend)s
    %(device)s
    %(memory_budget)s

    Attributes
    ----------
    %(coef_)s
    %(intercept_)s
    band_alphas_ : ndarray of shape (n_bands, n_targets)
    band_weights_ : ndarray of shape (n_bands, n_targets)
    best_alphas_ : ndarray of shape (n_targets,)
        Overall ``alpha`` (``band_alphas_ = best_alphas_ / band_weights_``).
    cv_scores_ : ndarray of shape (n_targets,)
    bands_ : ndarray of shape (n_bands,)
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 6))
    >>> Y = X[:, :3] @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((100, 2))
    >>> model = BandedRidgeCV(bands=["a"] * 3 + ["b"] * 3, cv=5).fit(X, Y)
    >>> bool(np.all(model.band_alphas_[0] < model.band_alphas_[1]))  # band "a" drives Y
    True
    """

    def __init__(
        self,
        bands=None,
        alphas=None,
        cv=5,
        n_iter: int = 20,
        concentration=(0.1, 1.0),
        random_state: int | None = 0,
        fit_intercept: bool = True,
        scoring: sv.Scoring = "r2",
        solver: Solver = "auto",
        backend: str = "numpy",
        device: str | None = None,
        memory_budget: float = DEFAULT_MEMORY_BUDGET,
    ):
        self.bands = bands
        self.alphas = alphas
        self.cv = cv
        self.n_iter = n_iter
        self.concentration = concentration
        self.random_state = random_state
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.solver = solver
        self.backend = backend
        self.device = device
        self.memory_budget = memory_budget

    def _cv_arguments(self, n_features: int) -> dict[str, Any]:
        """Keyword arguments of the cross-validation driver (all but the data and the folds)."""
        check_options(self.scoring, self.solver)
        search = _band_search(self.bands, n_features, self.n_iter, self.concentration, None, self.random_state)
        return {"alphas": self.alphas, "bands": search, **self._solver_options()}

    def _store_cv(self, fit: CVFit, single: bool, arguments: dict[str, Any]) -> None:
        """Set the fitted attributes from the driver's result (``arguments``: from :meth:`_cv_arguments`)."""
        search = arguments["bands"]
        result = _result(fit, search)
        self._store(result.coef, result.intercept, single)
        self.band_alphas_ = result.band_alphas
        self.band_weights_ = result.band_weights
        self.best_alphas_ = result.alphas
        self.cv_scores_ = result.cv_scores
        self.bands_ = result.bands
        self._band_of = search.index

    def _fit(self, X: np.ndarray, y: np.ndarray, folds: Folds) -> None:
        arguments = self._cv_arguments(X.shape[1])
        X, Y = check_arrays(X, y)
        self._store_cv(cross_validate(X, Y, folds=folds, **arguments), y.ndim == 1, arguments)

    def predict_split(self, X: Any) -> np.ndarray:
        """Each band's contribution ``X_i w_i`` (without intercept), shape (n_bands, n_samples, n_targets)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return np.stack([X[:, self._band_of == b] @ self.coef_[self._band_of == b] for b in range(len(self.bands_))])

    def score_split(self, X: Any, y: Any) -> np.ndarray:
        """Per-band split of the R^2 on ``(X, y)`` (:func:`scene2brain.evaluation.r2_score_split`)."""
        return r2_score_split(y, self.predict_split(X))
