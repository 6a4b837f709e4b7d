"""Voxelwise ridge regression with one regularisation strength per target.

The functional core (:func:`ridge_cv`) uses one eigendecomposition per fold for
every alpha and every target. With ``n`` training samples and ``p`` features it
works in the primal (eigendecomposition of the ``p x p`` matrix ``X^T X``) when
``p <= n`` and in the dual (``n x n`` kernel ``X X^T``) otherwise. In both cases
the held-out predictions for ridge strength ``alpha`` are

    A diag(1 / (lambda + alpha)) B

with ``A`` the test samples in the eigenbasis, ``lambda`` the eigenvalues and ``B``
the rotated training targets, so each extra alpha costs one small product.
Decompositions and accumulations are float64.

:class:`RidgeCV` is the scikit-learn estimator around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from scene2brain.evaluation.metrics import pearson_r, r2_score

Scoring = Literal["r2", "correlation"]
_SCORERS = {"r2": r2_score, "correlation": pearson_r}
_BATCH_BYTES = 256 * 2**20


class _Eigenbasis:
    """Eigendecomposition of one training set, in primal or dual form."""

    def __init__(self, X: np.ndarray):
        self.X = X
        self.dual = X.shape[1] > X.shape[0]
        gram = X @ X.T if self.dual else X.T @ X
        eigvals, self.vectors = linalg.eigh(gram, driver="evd")
        self.eigvals = np.clip(eigvals, 0.0, None)

    def project_test(self, X_test: np.ndarray) -> np.ndarray:
        """Test samples in the eigenbasis (the ``A`` matrix)."""
        return (X_test @ self.X.T) @ self.vectors if self.dual else X_test @ self.vectors

    def rotate_targets(self, Y: np.ndarray) -> np.ndarray:
        """Training targets in the eigenbasis (the ``B`` matrix)."""
        return self.vectors.T @ Y if self.dual else self.vectors.T @ (self.X.T @ Y)

    def coefficients(self, B: np.ndarray, alphas: np.ndarray) -> np.ndarray:
        """Primal weights (n_features, n_targets) for one alpha per target column of ``B``."""
        scaled = B / (self.eigvals[:, None] + alphas[None, :])
        return self.X.T @ (self.vectors @ scaled) if self.dual else self.vectors @ scaled


def default_alphas(X: np.ndarray, n_alphas: int = 17) -> np.ndarray:
    """A log-spaced grid from 1e-4 to 1e4 times the mean eigenvalue of the centred ``X^T X``.

    Scaling by the data keeps the grid meaningful whatever the features' units.
    """
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    scale = (Xc**2).sum() / max(min(Xc.shape), 1)
    if scale == 0:
        scale = 1.0
    return scale * np.logspace(-4, 4, n_alphas)


def _check_alphas(alphas: Iterable[float]) -> np.ndarray:
    alphas = np.sort(np.asarray(list(alphas), dtype=np.float64).ravel())
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alphas: expected positive finite values, got {alphas}")
    return alphas


def ridge_cv(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: Iterable[float],
    folds: Iterable[tuple[np.ndarray, np.ndarray]],
    fit_intercept: bool = True,
    scoring: Scoring = "r2",
) -> dict[str, np.ndarray]:
    """Choose each target's ridge alpha by cross-validation, then refit on all samples.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets)
    alphas : iterable of float
        Candidate strengths (positive).
    folds : iterable of (train_index, test_index)
    fit_intercept : bool
        Centre X and Y with the training means of each fold (the intercept is not
        penalised).
    scoring : {"r2", "correlation"}
        Held-out score averaged over folds.

    Returns
    -------
    dict
        ``coef`` (n_features, n_targets), ``intercept`` (n_targets,), ``best_alphas``
        (n_targets,), ``cv_scores`` (n_alphas, n_targets) and ``alphas`` (sorted).
        Ties (e.g. constant targets, whose scores are NaN) go to the largest alpha.
    """
    if scoring not in _SCORERS:
        raise ValueError(f"scoring: expected one of {sorted(_SCORERS)}, got {scoring!r}")
    score = _SCORERS[scoring]
    alphas = _check_alphas(alphas)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y)
    n, v = Y.shape
    cv_scores = np.zeros((len(alphas), v))
    n_folds = 0
    for train, test in folds:
        if len(train) < 2 or len(test) < 2:
            raise ValueError(
                f"fold {n_folds}: needs at least 2 training and 2 test samples, got {len(train)} and {len(test)}"
            )
        Xtr, Xte = X[train], X[test]
        x_mean = Xtr.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
        basis = _Eigenbasis(Xtr - x_mean)
        A = basis.project_test(Xte - x_mean)
        batch = max(1, _BATCH_BYTES // (8 * max(len(test), len(train))))
        for start in range(0, v, batch):
            cols = slice(start, start + batch)
            Ytr = np.asarray(Y[train, cols], dtype=np.float64)
            y_mean = Ytr.mean(axis=0) if fit_intercept else np.zeros(Ytr.shape[1])
            B = basis.rotate_targets(Ytr - y_mean)
            Yte = np.asarray(Y[test, cols], dtype=np.float64)
            for k, alpha in enumerate(alphas):
                pred = A @ (B / (basis.eigvals[:, None] + alpha)) + y_mean
                cv_scores[k, cols] += score(Yte, pred)
        n_folds += 1
    if n_folds == 0:
        raise ValueError("folds: no cross-validation split was given")
    cv_scores /= n_folds
    ranked = np.where(np.isnan(cv_scores), -np.inf, cv_scores)
    best = len(alphas) - 1 - np.argmax(ranked[::-1], axis=0)  # ties -> largest alpha
    best_alphas = alphas[best]

    x_mean = X.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
    basis = _Eigenbasis(X - x_mean)
    coef = np.empty((X.shape[1], v))
    intercept = np.zeros(v)
    batch = max(1, _BATCH_BYTES // (8 * n))
    for start in range(0, v, batch):
        cols = slice(start, start + batch)
        Yc = np.asarray(Y[:, cols], dtype=np.float64)
        y_mean = Yc.mean(axis=0) if fit_intercept else np.zeros(Yc.shape[1])
        coef[:, cols] = basis.coefficients(basis.rotate_targets(Yc - y_mean), best_alphas[cols])
        intercept[cols] = y_mean - x_mean @ coef[:, cols]
    return {"coef": coef, "intercept": intercept, "best_alphas": best_alphas, "cv_scores": cv_scores, "alphas": alphas}


class RidgeCV(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression with a cross-validated alpha for every target.

    Minimises ``||y_j - X w_j - b_j||^2 + alpha_j ||w_j||^2`` independently for each
    target ``j``, with ``alpha_j`` chosen from ``alphas`` by K-fold cross-validation.

    Parameters
    ----------
    alphas : array-like of float, optional
        Candidate strengths. Default: 17 values log-spaced over 1e-4..1e4 times the
        mean eigenvalue of the centred training ``X^T X`` (see :func:`default_alphas`).
    cv : int or cross-validation splitter
        Folds (``int`` -> unshuffled ``KFold``); ``groups`` passed to ``fit`` reach
        group-aware splitters.
    fit_intercept : bool
        Fit an unpenalised intercept (centring inside each fold).
    scoring : {"r2", "correlation"}
        Criterion for choosing alphas.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_targets)
        Weights (one column per target; a 1-D array for a single 1-D target).
    intercept_ : ndarray of shape (n_targets,)
    best_alphas_ : ndarray of shape (n_targets,)
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
        Mean held-out score per alpha.
    alphas_ : ndarray
        The grid actually used (sorted).
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

    def __init__(self, alphas=None, cv=5, fit_intercept: bool = True, scoring: Scoring = "r2"):
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring

    def fit(self, X, y, groups=None) -> RidgeCV:
        """Choose alphas by cross-validation and fit on all samples."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=[np.float64, np.float32])
        single = y.ndim == 1
        Y = y[:, None] if single else y
        alphas = default_alphas(X) if self.alphas is None else self.alphas
        folds = list(check_cv(self.cv).split(X, Y, groups))
        result = ridge_cv(X, Y, alphas, folds, fit_intercept=self.fit_intercept, scoring=self.scoring)
        self.coef_ = result["coef"][:, 0] if single else result["coef"]
        self.intercept_ = result["intercept"][0] if single else result["intercept"]
        self.best_alphas_ = result["best_alphas"]
        self.cv_scores_ = result["cv_scores"]
        self.alphas_ = result["alphas"]
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets) (or (n_samples,) for a 1-D target)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
