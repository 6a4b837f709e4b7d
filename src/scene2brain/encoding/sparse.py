"""Independent per-voxel lasso and elastic net, each voxel's alpha chosen from its own path.

:class:`VoxelwiseElasticNetCV` (and :class:`VoxelwiseLassoCV`) fit, for every target
column separately, what scikit-learn's ``ElasticNetCV`` / ``LassoCV`` fit on that column
alone, with the same choice:

- each target's grid runs from its own ``alpha_max`` (the smallest alpha with all
  weights zero, computed on all rows) down to ``eps`` times it, ``n_alphas`` values
  log-spaced (or one explicit grid for every target);
- on every fold the whole path is computed by ``sklearn.linear_model.enet_path`` with
  the fold's Gram matrix ``X_c^T X_c`` and ``X_c^T Y_c`` formed once for all targets
  (the features are few, so the Gram form is fast);
- the chosen (alpha, l1_ratio) minimises the mean over folds of the held-out mean
  squared error (as ``LassoCV``; the first l1_ratio wins ties), evaluated from
  sufficient statistics of each test fold rather than from predictions;
- the refit on all rows uses the chosen alpha.

Targets are processed in chunks, in parallel threads (``n_jobs``; the coordinate descent
releases the GIL). ``cv_score_`` is the mean over folds of the held-out R^2 at the chosen
alpha, the quantity every encoder reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.linear_model import enet_path
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from scene2brain.encoding._base import check_alphas
from scene2brain.encoding._solver import check_folds
from scene2brain.encoding.regressors import check_int, ratio_grid

__all__ = ["CHUNK", "VoxelwiseElasticNetCV", "VoxelwiseLassoCV"]

#: Targets per parallel task (fixed, so that results do not depend on ``n_jobs``).
CHUNK = 64


@dataclass
class _Rows:
    """Feature-side quantities of one set of training rows (a fold, or all rows for the refit)."""

    train: np.ndarray
    test: np.ndarray | None
    x_mean: np.ndarray  # (p,)
    Xc: np.ndarray  # (n_train, p) centred, Fortran order
    gram: np.ndarray  # (p, p) Xc^T Xc
    test_gram: np.ndarray | None  # (p, p) (X_test - x_mean)^T (X_test - x_mean)
    Xte: np.ndarray | None  # (n_test, p) X_test - x_mean


def _rows(X: np.ndarray, train: np.ndarray, test: np.ndarray | None, fit_intercept: bool) -> _Rows:
    Xtr = X[train]
    x_mean = Xtr.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
    Xc = np.asfortranarray(Xtr - x_mean)
    gram = np.ascontiguousarray(Xc.T @ Xc)
    if test is None:
        return _Rows(train, None, x_mean, Xc, gram, None, None)
    Xte = X[test] - x_mean
    return _Rows(train, test, x_mean, Xc, gram, Xte.T @ Xte, Xte)


def _path(rows: _Rows, y: np.ndarray, xy: np.ndarray, alphas: np.ndarray, l1_ratio: float, options: dict) -> np.ndarray:
    """Weights (p, n_alphas) along ``alphas`` (descending), by coordinate descent on the Gram matrix."""
    _, coefs, _ = enet_path(
        rows.Xc,
        y,
        l1_ratio=l1_ratio,
        alphas=alphas,
        precompute=rows.gram,
        Xy=xy,
        copy_X=False,
        check_input=False,
        **options,
    )
    return coefs


def _chunk(
    X: np.ndarray,
    Y: np.ndarray,
    cols: np.ndarray,
    folds: list[_Rows],
    full: _Rows,
    grids: np.ndarray,
    ratios: list[float],
    fit_intercept: bool,
    options: dict,
) -> tuple[np.ndarray, ...]:
    """CV, choice and refit of the targets ``cols``.

    Returns the mean held-out MSE (n_ratios, n_alphas, c), the chosen (ratio, alpha)
    indices (c,), (c,), the fold-mean R^2 at the choice (c,), the weights (p, c) and
    intercepts (c,).
    """
    n_ratios, n_alphas = grids.shape[:2]
    c = len(cols)
    mse = np.zeros((n_ratios, n_alphas, c))
    r2 = np.empty((len(folds), n_ratios, n_alphas, c))
    for f, rows in enumerate(folds):
        Ytr = Y[np.ix_(rows.train, cols)].astype(np.float64)
        y_mean = Ytr.mean(axis=0) if fit_intercept else np.zeros(c)
        Ytr = np.asfortranarray(Ytr - y_mean)
        Xy = rows.Xc.T @ Ytr
        Yte = Y[np.ix_(rows.test, cols)].astype(np.float64)
        sst = ((Yte - Yte.mean(axis=0)) ** 2).sum(axis=0)
        Yte = Yte - y_mean
        cross = rows.Xte.T @ Yte  # (p, c)
        base = (Yte**2).sum(axis=0)
        for j in range(c):
            xy = np.ascontiguousarray(Xy[:, j])
            for r, ratio in enumerate(ratios):
                W = _path(rows, Ytr[:, j], xy, grids[r, :, j], ratio, options)
                sse = base[j] - 2 * cross[:, j] @ W + np.einsum("pa,pa->a", rows.test_gram @ W, W)
                sse = np.maximum(sse, 0.0)
                mse[r, :, j] += sse / len(rows.test) / len(folds)
                with np.errstate(divide="ignore", invalid="ignore"):
                    r2[f, r, :, j] = np.where(sst[j] > 0, 1 - sse / sst[j], np.nan)
    best_alpha = np.argmin(mse, axis=1)  # (n_ratios, c): first minimum along each path
    best_mse = np.take_along_axis(mse, best_alpha[:, None, :], axis=1)[:, 0, :]
    ratio_index = np.argmin(best_mse, axis=0)  # first l1_ratio wins ties
    alpha_index = best_alpha[ratio_index, np.arange(c)]
    with np.errstate(invalid="ignore"):
        fold_r2 = np.nanmean(r2[:, ratio_index, alpha_index, np.arange(c)], axis=0)

    Ytr = Y[:, cols].astype(np.float64)
    y_mean = Ytr.mean(axis=0) if fit_intercept else np.zeros(c)
    Ytr = np.asfortranarray(Ytr - y_mean)
    Xy = full.Xc.T @ Ytr
    coef = np.empty((X.shape[1], c))
    for j in range(c):
        alpha = grids[ratio_index[j], alpha_index[j], j : j + 1]
        coef[:, j] = _path(full, Ytr[:, j], np.ascontiguousarray(Xy[:, j]), alpha, ratios[ratio_index[j]], options)[
            :, 0
        ]
    intercept = y_mean - full.x_mean @ coef
    return mse, ratio_index, alpha_index, fold_r2, coef, intercept


class VoxelwiseElasticNetCV(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Elastic net fitted independently for every target, each with its own (alpha, l1_ratio) from CV.

    Target ``j`` gets exactly what ``ElasticNetCV(l1_ratio=l1_ratio, alphas=n_alphas, eps=eps,
    cv=folds)`` fitted on column ``j`` alone would give (to the coordinate-descent
    tolerance): see the module docstring.

    Parameters
    ----------
    l1_ratio : float or sequence of float, default=0.5
        Mixing parameter(s) in (0, 1] (1: lasso); with several, each target chooses jointly.
    n_alphas : int, default=100
        Length of each target's path.
    eps : float, default=1e-3
        ``alpha_min / alpha_max`` of each path.
    alphas : sequence of float, optional
        One explicit grid for every target (and every l1_ratio) instead of the paths.
    cv : int, splitter or iterable of (train, test), default=5
    fit_intercept : bool, default=True
    max_iter : int, default=1000
    tol : float, default=1e-4
        Of coordinate descent (scikit-learn's meaning).
    n_jobs : int, default=1
        Threads over chunks of targets.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_targets)
    intercept_ : ndarray of shape (n_targets,)
    alpha_ : ndarray of shape (n_targets,)
    l1_ratio_ : ndarray of shape (n_targets,)
    alphas_ : ndarray of shape (n_l1_ratios, n_alphas, n_targets)
        Each target's grid (descending).
    mse_path_ : ndarray of shape (n_l1_ratios, n_alphas, n_targets)
        Mean over folds of the held-out mean squared error.
    cv_score_ : ndarray of shape (n_targets,)
        Mean over folds of the held-out R^2 at the chosen (alpha, l1_ratio).
    n_features_in_ : int
    """

    def __init__(
        self,
        l1_ratio: float | Sequence[float] = 0.5,
        n_alphas: int = 100,
        eps: float = 1e-3,
        alphas: Sequence[float] | None = None,
        cv: Any = 5,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        n_jobs: int = 1,
    ):
        self.l1_ratio = l1_ratio
        self.n_alphas = n_alphas
        self.eps = eps
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs

    def _ratios(self) -> list[float]:
        return ratio_grid("l1_ratio", self.l1_ratio)

    def _grids(self, X: np.ndarray, Y: np.ndarray, ratios: list[float]) -> np.ndarray:
        """(n_ratios, n_alphas, n_targets) descending grids, as ``ElasticNetCV`` builds them on all rows."""
        v = Y.shape[1]
        if self.alphas is not None:
            grid = check_alphas(self.alphas)[::-1]
            return np.broadcast_to(grid[None, :, None], (len(ratios), len(grid), v)).copy()
        n_alphas = check_int("n_alphas", self.n_alphas, 1)
        if not 0 < self.eps < 1:
            raise ValueError(f"eps: expected a ratio in (0, 1), got {self.eps!r}")
        Xc = X - X.mean(axis=0) if self.fit_intercept else X
        Yc = Y - Y.mean(axis=0) if self.fit_intercept else Y
        top = np.abs(Xc.T @ Yc).max(axis=0) / len(X)  # (v,)
        steps = np.geomspace(1.0, self.eps, num=n_alphas)
        grids = np.empty((len(ratios), n_alphas, v))
        tiny = np.finfo(np.float64).resolution
        for r, ratio in enumerate(ratios):
            alpha_max = top / ratio
            grids[r] = np.where(alpha_max > tiny, steps[:, None] * alpha_max[None, :], tiny)
        return grids

    def fit(self, X: Any, y: Any, groups: Any = None) -> Self:
        """Choose every target's (alpha, l1_ratio) by cross-validation, then refit on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        groups : array-like of shape (n_samples,), optional
            Group labels for group-aware splitters.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        Y = y[:, None] if y.ndim == 1 else y
        ratios = self._ratios()
        n_jobs = check_int("n_jobs", self.n_jobs, 1)
        folds, _ = check_folds(list(check_cv(self.cv).split(X, Y, groups)), len(X))
        grids = self._grids(X, Y, ratios)
        fold_rows = [_rows(X, f.train, f.test, self.fit_intercept) for f in folds]
        full = _rows(X, np.arange(len(X)), None, self.fit_intercept)
        options = {"max_iter": check_int("max_iter", self.max_iter, 1), "tol": float(self.tol)}
        v = Y.shape[1]
        pieces = [np.arange(start, min(start + CHUNK, v)) for start in range(0, v, CHUNK)]
        results = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_chunk)(X, Y, cols, fold_rows, full, grids[:, :, cols], ratios, self.fit_intercept, options)
            for cols in pieces
        )
        self.mse_path_ = np.concatenate([r[0] for r in results], axis=2)
        ratio_index = np.concatenate([r[1] for r in results])
        alpha_index = np.concatenate([r[2] for r in results])
        self.cv_score_ = np.concatenate([r[3] for r in results])
        self.coef_ = np.concatenate([r[4] for r in results], axis=1)
        self.intercept_ = np.concatenate([r[5] for r in results])
        self.alphas_ = grids
        self.alpha_ = grids[ratio_index, alpha_index, np.arange(v)]
        self.l1_ratio_ = np.asarray(ratios)[ratio_index]
        self._single = y.ndim == 1
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets) (or (n_samples,) for a 1-D target)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        out = X @ self.coef_ + self.intercept_
        return out[:, 0] if self._single else out


class VoxelwiseLassoCV(VoxelwiseElasticNetCV):
    """Lasso fitted independently for every target, each with its own alpha from CV (``LassoCV`` per target).

    Parameters
    ----------
    n_alphas, eps, alphas, cv, fit_intercept, max_iter, tol, n_jobs
        As :class:`VoxelwiseElasticNetCV`.

    Attributes
    ----------
    As :class:`VoxelwiseElasticNetCV` (``l1_ratio_`` is 1 everywhere).
    """

    def __init__(  # no l1_ratio parameter: the lasso's is 1
        self,
        n_alphas: int = 100,
        eps: float = 1e-3,
        alphas: Sequence[float] | None = None,
        cv: Any = 5,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        n_jobs: int = 1,
    ):
        self.n_alphas = n_alphas
        self.eps = eps
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs

    def _ratios(self) -> list[float]:
        return [1.0]
