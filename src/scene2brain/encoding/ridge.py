"""Voxelwise ridge regression with one regularisation strength per target.

:func:`ridge_cv` is the functional core; :class:`RidgeCV` is the scikit-learn estimator
around it. The algorithm (see :mod:`scene2brain.encoding._solver`) decomposes each
training fold once and scores every alpha for every target from small sufficient
statistics, without forming predictions; the refit happens in the full-sample
eigenbasis with each target's own alpha.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import LeaveOneOut, check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from scene2brain.encoding import _solver as sv
from scene2brain.encoding.backend import Backend

Solver = Literal["auto", "primal", "dual"]
Folds = Sequence[tuple[np.ndarray, np.ndarray]] | Literal["loo"]
DEFAULT_MEMORY_BUDGET = 2**30


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


def check_alphas(alphas: Iterable[float]) -> np.ndarray:
    """Sorted float64 grid of positive finite strengths, or a ValueError."""
    alphas = np.sort(np.asarray(list(np.ravel(alphas)), dtype=np.float64))
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alphas: expected positive finite values, got {alphas}")
    return alphas


def _check_arrays(X, Y) -> tuple[np.ndarray, np.ndarray]:
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


def _truncate(design: sv.Design, n_components: int) -> tuple[np.ndarray, float]:
    """Top ``n_components`` right singular vectors (p, r) of the centred X and the variance they keep."""
    be = design.be
    X = design.X64
    total = float(be.to_numpy(be.sum64(X * X)).sum())
    if design.n_features <= design.n_samples:
        lam, P = be.eigh(X.T @ X, top=n_components)
    else:
        lam, Q = be.eigh(X @ X.T, top=n_components)
        keep = lam > lam.max() * 1e-12
        lam, Q = lam[keep], Q[:, keep]
        P = (X.T @ Q) / lam**0.5
    kept = float(be.to_numpy(lam).sum()) / total if total > 0 else 1.0
    return be.to_numpy(P), kept


def _bytes_per_target(design: sv.Design, form: str, folds: list[sv.Fold], n_alphas: int) -> float:
    n, p = design.n_samples, design.n_features
    item = design.dtype.itemsize
    if form in ("loo", "group_out"):
        words = 4 * n + 2 * min(n, p)
    elif form == "dual":
        n_tr = max(len(f.train) for f in folds)
        n_te = max(len(f.test) for f in folds)
        words = 2 * n + 4 * n_tr + 2 * n_te
    else:
        words = 2 * n + (len(folds) + 2) * p + 6 * p
    return item * words + 8 * 4 * n_alphas


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
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets) or (n_samples,)
        float32 responses keep the products with ``Y`` in float32 (Gram matrices and
        eigendecompositions are always float64); anything else runs in float64.
    alphas : iterable of float, optional
        Candidate strengths. Default: :func:`default_alphas` of the features as used.
    folds : sequence of (train_index, test_index), or "loo"
        K-fold splits (any splitter's output), or exact leave-one-out.
    fit_intercept : bool
        Fit an unpenalised intercept: features and targets are centred on each
        training fold's mean.
    scoring : {"r2", "correlation"}
        Held-out criterion (coefficient of determination about the test mean, or
        Pearson r). Targets that are constant on a test set score NaN there; a target
        whose scores are all NaN gets the largest alpha.
    standardise : bool
        Divide features by their standard deviation on each training fold (and on all
        samples for the refit); coefficients are returned in the original units. Not
        available with leave-one-out.
    solver : {"auto", "primal", "dual"}
        ``auto`` works in the primal (``p x p`` Gram) when every training fold has at
        least as many samples as features, else in the dual (``n x n`` kernel).
    n_components : int, optional
        Fit on the top ``n_components`` principal directions of the centred features
        (computed from ``X`` alone, over all samples); the kept variance is reported.
    backend : {"numpy", "torch"} or Backend
    device : str, optional
        Torch device; default CUDA when available.
    memory_budget : float
        Bytes of working memory for chunks of targets (the feature-side factors and
        the outputs come on top).

    Returns
    -------
    RidgeResult
    """
    if scoring not in sv.SCORINGS:
        raise ValueError(f"scoring: expected one of {list(sv.SCORINGS)}, got {scoring!r}")
    if solver not in ("auto", "primal", "dual"):
        raise ValueError(f"solver: expected 'auto', 'primal' or 'dual', got {solver!r}")
    X, Y = _check_arrays(X, Y)
    be = backend if isinstance(backend, Backend) else Backend(backend, device)
    dtype = np.dtype(np.float32) if Y.dtype == np.float32 else np.dtype(np.float64)
    n, p = X.shape
    loo = isinstance(folds, str)
    if loo and folds != "loo":
        raise ValueError(f"folds: expected a sequence of (train, test) index pairs or 'loo', got {folds!r}")
    if loo and standardise:
        raise ValueError("standardise: not available with exact leave-one-out; standardise X beforehand")
    if loo and n < 3:
        raise ValueError(f"folds='loo': needs at least 3 samples, got {n}")
    checked, partition = ([], True) if loo else sv.check_folds(folds, n)

    design = sv.Design.build(X, be, dtype, fit_intercept, standardise)
    projection, retained = None, None
    if n_components is not None:
        if standardise:
            raise ValueError("n_components: truncation works on the raw features; standardise X beforehand")
        if not 1 <= n_components <= min(n, p):
            raise ValueError(f"n_components: expected 1..{min(n, p)}, got {n_components}")
        projection, retained = _truncate(design, int(n_components))
        reduced = be.to_numpy(design.X64 @ be.asarray(projection, np.float64))
        design = sv.Design.build(reduced, be, dtype, fit_intercept, standardise)

    if alphas is None:
        features = be.to_numpy(design.X64)
        if standardise:
            sd = features.std(axis=0)
            features = features / np.where(sd == 0, 1.0, sd)
        alphas = default_alphas(features)
    alphas = check_alphas(alphas)

    min_train = n - 1 if loo else min(len(f.train) for f in checked)
    dual = solver == "dual" or (solver == "auto" and design.n_features > min_train)
    form = "loo" if loo else ("dual" if dual else "primal")
    if form == "dual" and _group_out_is_cheaper(design, checked, len(alphas)):
        form = "group_out"
    size = sv.chunk_size(memory_budget, _bytes_per_target(design, form, checked, len(alphas)))
    y_mean = Y.mean(axis=0, dtype=np.float64) if fit_intercept else np.zeros(Y.shape[1])
    if form in ("loo", "group_out"):
        score = sv.loo_scores if loo else partial(sv.group_out_scores, folds=checked)
        coef, cv_scores = _run_full_basis(design, Y, y_mean, alphas, scoring, size, dual, score)
    elif form == "dual":
        coef, cv_scores = _run_dual(design, Y, y_mean, checked, alphas, scoring, size)
    else:
        coef, cv_scores = _run_primal(design, Y, y_mean, checked, partition, alphas, scoring, size)

    if projection is not None:
        coef = projection.astype(coef.dtype) @ coef
    best = sv.select_best(cv_scores)
    x_mean = X.mean(axis=0, dtype=np.float64) if fit_intercept else np.zeros(p)
    intercept = y_mean - x_mean @ coef if fit_intercept else np.zeros(Y.shape[1])
    return RidgeResult(coef, intercept, alphas[best], cv_scores, alphas, "dual" if dual else "primal", retained)


def _run_primal(design, Y, y_mean, folds, partition, alphas, scoring, size):
    be = design.be
    factors = [sv.fold_factors(design, fold, dual=False) for fold in folds]
    full = sv.full_factors(design, dual=False)
    coef = np.empty((design.n_features, Y.shape[1]), dtype=design.dtype)
    cv_scores = np.empty((len(alphas), Y.shape[1]))
    for cols in sv.chunks(Y.shape[1], size):
        Yc = sv.load_targets(design, Y, cols, y_mean)
        stats = sv.primal_stats(design, folds, partition, Yc)
        scores = sum(
            sv.score_alphas(ff, sv.primal_targets(design, ff, stats, f, Yc), alphas, scoring, be)
            for f, ff in enumerate(factors)
        )
        cv_scores[:, cols] = scores / len(folds)
        best = alphas[sv.select_best(cv_scores[:, cols])]
        coef[:, cols] = be.to_numpy(sv.refit_weights(design, full, stats.S_all, best))
    return coef, cv_scores


def _run_dual(design, Y, y_mean, folds, alphas, scoring, size):
    be = design.be
    cv_scores = np.zeros((len(alphas), Y.shape[1]))
    kernel = None if design.standardise else design.X64 @ design.X64.T
    for fold in folds:
        ff = sv.fold_factors(design, fold, dual=True, kernel=kernel)
        for cols in sv.chunks(Y.shape[1], size):
            Yc = sv.load_targets(design, Y, cols, y_mean)
            cv_scores[:, cols] += sv.score_alphas(ff, sv.dual_targets(design, ff, Yc), alphas, scoring, be)
        del ff
    cv_scores /= len(folds)
    best = alphas[sv.select_best(cv_scores)]
    full = sv.full_factors(design, dual=True, kernel=kernel)
    del kernel
    coef = np.empty((design.n_features, Y.shape[1]), dtype=design.dtype)
    for cols in sv.chunks(Y.shape[1], size):
        Yc = sv.load_targets(design, Y, cols, y_mean)
        coef[:, cols] = be.to_numpy(sv.refit_weights(design, full, Yc, best[cols]))
    return coef, cv_scores


def _run_full_basis(design, Y, y_mean, alphas, scoring, size, dual, score):
    """Leave-one-out or leave-group-out: one decomposition of all samples serves every fold."""
    be = design.be
    lf = sv.loo_factors(design, dual)
    coef = np.empty((design.n_features, Y.shape[1]), dtype=design.dtype)
    cv_scores = np.empty((len(alphas), Y.shape[1]))
    for cols in sv.chunks(Y.shape[1], size):
        Yc = sv.load_targets(design, Y, cols, y_mean)
        cv_scores[:, cols], Z = score(design, lf, Y=Yc, alphas=alphas, scoring=scoring)
        best = alphas[sv.select_best(cv_scores[:, cols])]
        coef[:, cols] = be.to_numpy(sv.loo_refit(design, lf, Z, best))
    return coef, cv_scores


def _group_out_is_cheaper(design: sv.Design, folds: list[sv.Fold], n_alphas: int) -> bool:
    """Dual K-fold: one full decomposition + per-fold ``H_gg`` solves vs one eigendecomposition per fold.

    Needs folds whose training sets are the complements of their test sets and no
    per-fold standardisation. Costs in GEMM-equivalent flops: a symmetric
    eigendecomposition runs at about an eighth of GEMM speed per n^3 (measured).
    """
    if design.standardise or not all(f.complement for f in folds):
        return False
    n = design.n_samples
    group_out = n_alphas * sum(2.0 * len(f.test) ** 2 * n for f in folds)
    per_fold = sum(8.0 * len(f.train) ** 3 for f in folds)
    return group_out < per_fold


class _LinearModel(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Shared prediction for fitted ``coef_`` (n_features, n_targets) and ``intercept_``."""

    def _store(self, coef: np.ndarray, intercept: np.ndarray, single: bool) -> None:
        self.coef_ = coef[:, 0] if single else coef
        self.intercept_ = intercept[0] if single else intercept

    def predict(self, X) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets) (or (n_samples,) for a 1-D target)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_ + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class RidgeCV(_LinearModel):
    """Ridge regression with a cross-validated alpha for every target.

    Minimises ``||y_j - X w_j - b_j||^2 + alpha_j ||w_j||^2`` independently for each
    target ``j``, with ``alpha_j`` chosen from ``alphas`` by cross-validation
    (:func:`ridge_cv` describes the algorithm and every option).

    Parameters
    ----------
    alphas : array-like of float, optional
        Candidate strengths. Default: 17 values log-spaced over 1e-4..1e4 times the
        mean eigenvalue of the centred training ``X^T X`` (see :func:`default_alphas`).
    cv : int, cross-validation splitter, iterable of splits, or "loo"
        Folds (``int`` -> unshuffled ``KFold``); ``groups`` passed to ``fit`` reach
        group-aware splitters (e.g. keep the repeats of one image in one fold).
        ``"loo"`` or ``LeaveOneOut()`` use the exact closed-form leave-one-out.
    fit_intercept : bool
        Fit an unpenalised intercept (centring inside each fold).
    scoring : {"r2", "correlation"}
        Criterion for choosing alphas.
    standardise : bool
        Scale features to unit variance inside each training fold.
    solver : {"auto", "primal", "dual"}
    n_components : int, optional
        Rank truncation of the features; ``retained_variance_`` reports what it keeps.
    backend : {"numpy", "torch"}
    device : str, optional
        Torch device (default CUDA when available).
    memory_budget : float
        Bytes of working memory per chunk of targets.

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

    def _folds(self, X, y, groups) -> Folds:
        if (isinstance(self.cv, str) and self.cv == "loo") or isinstance(self.cv, LeaveOneOut):
            return "loo"
        return list(check_cv(self.cv).split(X, y, groups))

    def fit(self, X, y, groups=None) -> RidgeCV:
        """Choose alphas by cross-validation and fit on all samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        groups : array-like of shape (n_samples,), optional
            Group labels for group-aware splitters.
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=[np.float64, np.float32])
        result = ridge_cv(
            X,
            y,
            self.alphas,
            self._folds(X, y, groups),
            fit_intercept=self.fit_intercept,
            scoring=self.scoring,
            standardise=self.standardise,
            solver=self.solver,
            n_components=self.n_components,
            backend=self.backend,
            device=self.device,
            memory_budget=self.memory_budget,
        )
        self._store(result.coef, result.intercept, y.ndim == 1)
        self.best_alphas_ = result.best_alphas
        self.cv_scores_ = result.cv_scores
        self.alphas_ = result.alphas
        self.solver_ = result.solver
        self.retained_variance_ = result.retained_variance
        return self
