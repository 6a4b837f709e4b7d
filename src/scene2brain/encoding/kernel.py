"""Kernel ridge regression with one alpha per target, chosen by the exact dual ridge cross-validation.

:class:`KernelRidgeCV` takes an RBF, polynomial or linear kernel of the features (or a
precomputed kernel) and solves ``(K + alpha_j I) c_j = y_j`` for every target ``j`` with
its own ``alpha_j``, chosen on the folds by the solver behind
:func:`~scene2brain.encoding.ridge_cv` (no second ridge solver): the kernel of the
training rows is factored as ``K = Phi Phi^T`` (``Phi = U sqrt(lambda)`` from its
eigendecomposition, eigenvalues below ``n * eps * lambda_max`` dropped), and ridge on the
``Phi`` rows is kernel ridge on ``K`` -- on every fold too, since the kernel of a fold's
rows is the block of ``K``. New rows ``x`` map to ``K(x, X_train) U lambda^(-1/2)``,
which is exact because the ridge weights lie in the span of the training rows, so the
predictions are ``K(x, X_train) @ dual_coef_ + intercept_``.

With ``fit_intercept`` (the default, as the linear ridge) the kernel is centred on each
training fold's mean in feature space and an unpenalised intercept is fitted; without
it the model is scikit-learn's ``KernelRidge``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.model_selection import LeaveOneOut, check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from scene2brain.encoding.ridge import ridge_cv

__all__ = ["KERNELS", "KernelRidgeCV"]

#: The kernels of features; ``"precomputed"`` takes the kernel itself as ``X``.
KERNELS = ("rbf", "poly", "linear", "precomputed")


class KernelRidgeCV(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Kernel ridge with a cross-validated alpha for every target.

    Parameters
    ----------
    alphas : sequence of float, optional
        Candidates; default :func:`~scene2brain.encoding.default_alphas` of the kernel's
        factor (17 values over 1e-4..1e4 times its mean eigenvalue).
    kernel : {"rbf", "poly", "linear", "precomputed"}, default="rbf"
        ``rbf``: ``exp(-gamma ||x - x'||^2)``; ``poly``: ``(gamma <x, x'> + coef0)^degree``;
        ``linear``: ``<x, x'>``; ``precomputed``: ``X`` is the (n, n) kernel of the training
        rows at ``fit`` and the (m, n) kernel of new rows against them at ``predict``.
    gamma : float, optional
        Default ``1 / n_features`` (scikit-learn's).
    degree : int, default=3
    coef0 : float, default=1.0
    cv : int, splitter, iterable of (train, test) or "loo", default=5
        Folds (``"loo"``: exact leave-one-out).
    fit_intercept : bool, default=True
        Centre the kernel on each training fold's mean and fit an unpenalised intercept.

    Attributes
    ----------
    dual_coef_ : ndarray of shape (n_train, n_targets)
    intercept_ : ndarray of shape (n_targets,)
    best_alphas_ : ndarray of shape (n_targets,)
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
        Mean over folds of the held-out R^2 per alpha.
    alphas_ : ndarray
        The grid used (sorted).
    rank_ : int
        Eigenvalues of the training kernel kept.
    X_fit_ : ndarray
        The training rows (None for a precomputed kernel).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 3))
    >>> Y = np.sin(X[:, :2]) + 0.05 * rng.standard_normal((60, 2))
    >>> model = KernelRidgeCV(kernel="rbf", gamma=0.5, cv=5).fit(X, Y)
    >>> model.best_alphas_.shape, bool(model.score(X, Y) > 0.9)
    ((2,), True)
    """

    def __init__(
        self,
        alphas: Sequence[float] | None = None,
        kernel: str = "rbf",
        gamma: float | None = None,
        degree: int = 3,
        coef0: float = 1.0,
        cv: Any = 5,
        fit_intercept: bool = True,
    ):
        self.alphas = alphas
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.cv = cv
        self.fit_intercept = fit_intercept

    def _check_params(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel: expected one of {list(KERNELS)}, got {self.kernel!r}")
        if self.gamma is not None and not (isinstance(self.gamma, numbers.Real) and self.gamma > 0):
            raise ValueError(f"gamma: expected a positive number or None, got {self.gamma!r}")
        if not (isinstance(self.degree, numbers.Integral) and self.degree >= 1):
            raise ValueError(f"degree: expected a positive integer, got {self.degree!r}")
        if not isinstance(self.coef0, numbers.Real):
            raise ValueError(f"coef0: expected a number, got {self.coef0!r}")

    def _kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        params: dict[str, Any] = {}
        if self.kernel in ("rbf", "poly"):
            params["gamma"] = self.gamma
        if self.kernel == "poly":
            params |= {"degree": self.degree, "coef0": self.coef0}
        return pairwise_kernels(A, B, metric=self.kernel, **params)

    def _folds(self, X: np.ndarray, Y: np.ndarray, groups: Any) -> Any:
        if (isinstance(self.cv, str) and self.cv == "loo") or isinstance(self.cv, LeaveOneOut):
            return "loo"
        return list(check_cv(self.cv).split(X, Y, groups))

    def fit(self, X: Any, y: Any, groups: Any = None) -> Self:
        """Choose every target's alpha by cross-validation on the rows of ``X``, then refit on all of them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or (n_samples, n_samples) kernel
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        groups : array-like of shape (n_samples,), optional
            Group labels for group-aware splitters.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        Y = y[:, None] if y.ndim == 1 else y
        if self.kernel == "precomputed":
            if X.shape[0] != X.shape[1]:
                raise ValueError(f"X: a precomputed kernel must be square (n_samples, n_samples), got {X.shape}")
            K = (X + X.T) / 2
        else:
            K = self._kernel(X, X)
        eigvals, U = linalg.eigh(K)
        keep = eigvals > max(float(eigvals[-1]), 0.0) * len(K) * np.finfo(np.float64).eps
        if not keep.any():
            raise ValueError("X: the training kernel is zero (no positive eigenvalue)")
        eigvals, U = eigvals[keep], U[:, keep]
        root = np.sqrt(eigvals)
        features = U * root  # Phi, with Phi Phi^T = K
        result = ridge_cv(features, Y, self.alphas, self._folds(X, Y, groups), fit_intercept=self.fit_intercept)
        self.dual_coef_ = U @ (result.coef / root[:, None])
        self.intercept_ = result.intercept
        self.best_alphas_ = result.best_alphas
        self.cv_scores_ = result.cv_scores
        self.alphas_ = result.alphas
        self.rank_ = int(keep.sum())
        self.X_fit_ = None if self.kernel == "precomputed" else X
        self._single = y.ndim == 1
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets) (or (n_samples,) for a 1-D target).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or (n_samples, n_train) kernel against the training rows
        """
        check_is_fitted(self)
        if self.kernel == "precomputed":
            K = np.asarray(X, dtype=np.float64)
            if K.ndim != 2 or K.shape[1] != self.dual_coef_.shape[0]:
                n_train = self.dual_coef_.shape[0]
                raise ValueError(f"X: expected a precomputed kernel of shape (n, {n_train}), got {K.shape}")
        else:
            X = validate_data(self, X, reset=False, dtype=np.float64)
            K = self._kernel(X, self.X_fit_)
        out = K @ self.dual_coef_ + self.intercept_
        return out[:, 0] if self._single else out
