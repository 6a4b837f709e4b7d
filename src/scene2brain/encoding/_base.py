"""What ridge and banded ridge share around the solver: argument checks, parameter docs, the estimator base.

Every parameter that :func:`~scene2brain.encoding.ridge_cv`,
:func:`~scene2brain.encoding.banded_ridge_cv` and their estimators have in common is
described once in :data:`PARAMETER_DOCS`; their docstrings say ``%(name)s`` and
:func:`fill_doc` puts the text in.
"""

from __future__ import annotations

import numbers
from abc import ABCMeta, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Self

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import LeaveOneOut, check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from scene2brain.encoding import _solver as sv
from scene2brain.utils.docs import doc_filler

Solver = Literal["auto", "primal", "dual"]
SOLVERS = ("auto", "primal", "dual")
Folds = Sequence[tuple[np.ndarray, np.ndarray]] | Literal["loo"]
DEFAULT_MEMORY_BUDGET = 2**30

PARAMETER_DOCS = {
    "X": """X : ndarray of shape (n_samples, n_features)
    Features (for banded ridge: all bands side by side).""",
    "Y": """Y : ndarray of shape (n_samples, n_targets) or (n_samples,)
    Responses. float32 responses keep the products with ``Y`` in float32 (Gram
    matrices and eigendecompositions are always float64); anything else runs in
    float64.""",
    "alphas": """alphas : array-like of float, optional
    Candidate strengths (banded ridge: the overall strength ``alpha``, divided by each
    band's weight). Default: 17 values log-spaced over 1e-4..1e4 times the mean
    eigenvalue of the centred ``X^T X`` of the features as used (standardised,
    truncated), see :func:`~scene2brain.encoding.default_alphas`.""",
    "folds": """folds : sequence of (train_index, test_index), or "loo"
    K-fold splits (any splitter's output, e.g. ``list(KFold(5).split(X))``), or exact
    leave-one-out from one decomposition of all samples.""",
    "cv": """cv : int, cross-validation splitter, iterable of splits, or "loo", default=5
    Folds (``int`` -> unshuffled ``KFold``); ``groups`` passed to ``fit`` reach
    group-aware splitters (e.g. keep the repeats of one image in one fold). ``"loo"``
    or ``LeaveOneOut()`` use the exact closed-form leave-one-out.""",
    "fit_intercept": """fit_intercept : bool, default=True
    Fit an unpenalised intercept: features and targets are centred on each training
    fold's mean.""",
    "scoring": """scoring : {"r2", "correlation"}, default="r2"
    Held-out criterion for choosing the strengths: the coefficient of determination
    about the test mean, or Pearson r. Targets that are constant on a test set score
    NaN there; a target whose scores are all NaN gets the largest alpha.""",
    "standardise": """standardise : bool, default=False
    Divide features by their standard deviation on each training fold (and on all
    samples for the refit); coefficients are returned in the original units. Not
    available with leave-one-out.""",
    "solver": """solver : {"auto", "primal", "dual"}, default="auto"
    ``"auto"`` works in the primal (``p x p`` Gram) when every training fold has at
    least as many samples as features, else in the dual (``n x n`` kernel). Dual
    K-fold uses one decomposition of all samples and exact leave-group-out updates
    when that is cheaper than one decomposition per fold.""",
    "n_components": """n_components : int, optional
    Fit on the top ``n_components`` principal directions of the centred features
    (computed from ``X`` alone, over all samples); the kept variance is reported.""",
    "backend": """backend : {"numpy", "torch"} or Backend, default="numpy"
    Array library of the solver.""",
    "device": """device : str, optional
    Torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``...); default CUDA when available.
    Leave unset with numpy.""",
    "memory_budget": """memory_budget : float, default=2**30
    Bytes of working memory for each chunk of targets (the feature-side factors and
    the outputs come on top).""",
    "bands": """bands : sequence of length n_features, or int
    The band label of every feature column (e.g. ``["gabor"] * 500 + ["deep"] * 1000``),
    or a number ``k`` of contiguous bands of (near) equal width. At least 2 bands.""",
    "n_iter": """n_iter : int, default=20
    Number of band weightings tried (the first is uniform, see
    :func:`~scene2brain.encoding.sample_band_weights`). himalaya's default is 100;
    20 is usually enough for 2-3 bands.""",
    "concentration": """concentration : sequence of float, default=(0.1, 1.0)
    Dirichlet concentrations of the random band weightings, cycled.""",
    "seed": """seed : int or None, default=0
    Seed of the random band weightings.""",
    "random_state": """random_state : int or None, default=0
    Seed of the random band weightings.""",
    "gammas": """gammas : ndarray of shape (n_iter, n_bands), optional
    Explicit band weightings (rows on the simplex) instead of the random search.""",
    "coef_": """coef_ : ndarray of shape (n_features, n_targets)
    Weights (one column per target; a 1-D array for a single 1-D target).""",
    "intercept_": """intercept_ : ndarray of shape (n_targets,)
    Unpenalised offsets (0 without ``fit_intercept``).""",
}
fill_doc = doc_filler(PARAMETER_DOCS)


def default_alphas(X: np.ndarray, n_alphas: int = 17) -> np.ndarray:
    """A log-spaced grid from 1e-4 to 1e4 times the mean eigenvalue of the centred ``X^T X``.

    Scaling by the data keeps the grid meaningful whatever the features' units.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_alphas : int
        Length of the grid.

    Returns
    -------
    ndarray of shape (n_alphas,)
    """
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    scale = (Xc**2).sum() / max(min(Xc.shape), 1)
    if scale == 0:
        scale = 1.0
    return scale * np.logspace(-4, 4, n_alphas)


def check_alphas(alphas: Iterable[float]) -> np.ndarray:
    """Sorted float64 grid of positive finite strengths, or a ValueError."""
    alphas = np.sort(np.asarray(list(np.ravel(alphas)), dtype=np.float64))
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alphas: expected positive finite values, got {alphas}")
    return alphas


def check_options(scoring: str, solver: str) -> None:
    """ValueError for an unknown scoring or solver name."""
    if scoring not in sv.SCORINGS:
        raise ValueError(f"scoring: expected one of {list(sv.SCORINGS)}, got {scoring!r}")
    if solver not in SOLVERS:
        raise ValueError(f"solver: expected 'auto', 'primal' or 'dual', got {solver!r}")


def check_arrays(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (n, p) of finite numbers and numeric ``Y`` as 2-D (n, v), or a ValueError."""
    X = np.asarray(X)
    Y = np.asarray(Y)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"X and Y: expected 2-D arrays, got shapes {X.shape} and {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y: expected the same number of samples, got {X.shape[0]} and {Y.shape[0]}")
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise ValueError("X: expected finite numbers; found NaN, infinite or non-numeric values")
    if not np.issubdtype(Y.dtype, np.number):
        raise ValueError(f"Y: expected numbers, got dtype {Y.dtype}")
    return X, Y


def check_bands(bands: Any, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted band labels and the band index of every feature, or a ValueError (see the ``bands`` parameter)."""
    if bands is None:
        raise ValueError("bands: expected one band label per feature column, got None")
    if isinstance(bands, numbers.Integral) and not isinstance(bands, bool):
        k = int(bands)
        if k < 2:
            raise ValueError(f"bands: expected at least 2 feature bands, got {k}")
        if n_features < k:
            raise ValueError(f"bands: {k} contiguous bands need at least {k} features, got {n_features} feature(s)")
        return np.arange(k), np.arange(n_features) * k // n_features
    bands = np.asarray(bands).ravel()
    if bands.shape != (n_features,):
        raise ValueError(f"bands: expected one label per feature ({n_features}), got {bands.shape[0]} labels")
    labels, index = np.unique(bands, return_inverse=True)
    if len(labels) < 2:
        raise ValueError(f"bands: expected at least 2 feature bands, got {len(labels)}")
    return labels, index


def check_gammas(gammas: Any, n_bands: int) -> np.ndarray:
    """Band weightings as float64 rows on the simplex, or a ValueError."""
    gammas = np.atleast_2d(np.asarray(gammas, dtype=np.float64))
    if gammas.shape[1] != n_bands or np.any(gammas < 0) or not np.allclose(gammas.sum(axis=1), 1.0):
        raise ValueError(f"gammas: expected rows of {n_bands} non-negative weights summing to 1, got {gammas.shape}")
    return gammas


class LinearModelCV(MultiOutputMixin, RegressorMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared estimator plumbing: folds from ``cv``, fitted ``coef_`` / ``intercept_``, prediction.

    Subclasses keep their own ``__init__`` (scikit-learn reads the parameters from its
    signature) and implement ``_fit`` with their functional core.
    """

    def _folds(self, X: np.ndarray, y: np.ndarray, groups: Any) -> Folds:
        """``"loo"`` for exact leave-one-out, else the splits of ``self.cv``."""
        if (isinstance(self.cv, str) and self.cv == "loo") or isinstance(self.cv, LeaveOneOut):
            return "loo"
        return list(check_cv(self.cv).split(X, y, groups))

    def fit(self, X: Any, y: Any, groups: Any = None) -> Self:
        """Choose every target's strengths by cross-validation, then refit on all samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        groups : array-like of shape (n_samples,), optional
            Group labels for group-aware splitters.

        Returns
        -------
        self
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=[np.float64, np.float32])
        self._fit(X, y, self._folds(X, y, groups))
        return self

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, folds: Folds) -> None:
        """Run the functional core on validated data and store the fitted attributes (each estimator's own)."""

    def _solver_options(self) -> dict[str, Any]:
        """Keyword arguments every functional core takes, from the estimator's parameters."""
        names = ("fit_intercept", "scoring", "solver", "backend", "device", "memory_budget")
        return {name: getattr(self, name) for name in names}

    def _store(self, coef: np.ndarray, intercept: np.ndarray, single: bool) -> None:
        self.coef_ = coef[:, 0] if single else coef
        self.intercept_ = intercept[0] if single else intercept

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets) (or (n_samples,) for a 1-D target)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_ + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
