"""Banded ridge: one regularisation strength per feature space ("band") and per target.

Minimises ``||y - sum_i X_i w_i - b||^2 + sum_i alpha_i ||w_i||^2`` for every target.
Writing ``alpha_i = alpha / gamma_i`` with ``gamma`` on the simplex turns this into
plain ridge on the features ``sqrt(gamma_i) X_i``; like himalaya's ``GroupRidgeCV``,
the search samples ``gamma`` (the first sample uniform, the rest Dirichlet) and, for
each, scores the whole alpha grid by cross-validation with the exact solver of
:mod:`scene2brain.encoding.ridge`. Each target keeps the (gamma, alpha) with the best
CV score. In the primal form the fold-blocked statistics ``X_f^T Y_f`` are computed
once per chunk of targets and reused for every gamma (only the small ``p x p``
decompositions change); in the dual each gamma needs new kernel decompositions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from scene2brain.encoding import _solver as sv
from scene2brain.encoding.backend import Backend
from scene2brain.encoding.ridge import (
    DEFAULT_MEMORY_BUDGET,
    Solver,
    _check_arrays,
    _LinearModel,
    check_alphas,
    default_alphas,
)
from scene2brain.evaluation.metrics import r2_score_split


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
    """Band weightings on the simplex: uniform first, then Dirichlet draws cycling over ``concentration``."""
    if n_iter < 1:
        raise ValueError(f"n_iter: expected at least 1, got {n_iter}")
    rng = np.random.default_rng(seed)
    gammas = np.empty((n_iter, n_bands))
    gammas[0] = 1.0 / n_bands
    for i in range(1, n_iter):
        gammas[i] = rng.dirichlet(np.full(n_bands, concentration[(i - 1) % len(concentration)]))
    return gammas


def _check_bands(bands, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    bands = np.asarray(bands).ravel()
    if bands.shape != (n_features,):
        raise ValueError(f"bands: expected one label per feature ({n_features}), got {bands.shape[0]} labels")
    labels, index = np.unique(bands, return_inverse=True)
    if len(labels) < 2:
        raise ValueError(f"bands: expected at least 2 feature bands, got {len(labels)}")
    return labels, index


def _check_gammas(gammas, n_bands: int) -> np.ndarray:
    gammas = np.atleast_2d(np.asarray(gammas, dtype=np.float64))
    if gammas.shape[1] != n_bands or np.any(gammas < 0) or not np.allclose(gammas.sum(axis=1), 1.0):
        raise ValueError(f"gammas: expected rows of {n_bands} non-negative weights summing to 1, got {gammas.shape}")
    return gammas


def banded_ridge_cv(
    X: np.ndarray,
    Y: np.ndarray,
    bands: Sequence,
    alphas: Iterable[float] | None = None,
    folds: Sequence[tuple[np.ndarray, np.ndarray]] = (),
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
    X : ndarray of shape (n_samples, n_features)
        All bands side by side.
    Y : ndarray of shape (n_samples, n_targets)
    bands : sequence of length n_features
        The band label of every feature column.
    alphas : iterable of float, optional
        Grid of overall strengths (default :func:`default_alphas`).
    folds : sequence of (train_index, test_index)
    n_iter, concentration, seed
        Random search: ``n_iter`` band weightings (see :func:`sample_band_weights`).
    gammas : ndarray of shape (n_iter, n_bands), optional
        Explicit band weightings (rows on the simplex) instead of the random search.
    fit_intercept, scoring, solver, backend, device, memory_budget
        As in :func:`scene2brain.encoding.ridge_cv`.

    Returns
    -------
    BandedRidgeResult
    """
    if scoring not in sv.SCORINGS:
        raise ValueError(f"scoring: expected one of {list(sv.SCORINGS)}, got {scoring!r}")
    X, Y = _check_arrays(X, Y)
    labels, band_of = _check_bands(bands, X.shape[1])
    gammas = sample_band_weights(len(labels), n_iter, concentration, seed) if gammas is None else gammas
    gammas = _check_gammas(gammas, len(labels))
    be = backend if isinstance(backend, Backend) else Backend(backend, device)
    dtype = np.dtype(np.float32) if Y.dtype == np.float32 else np.dtype(np.float64)
    checked, partition = sv.check_folds(list(folds), X.shape[0])
    design = sv.Design.build(X, be, dtype, fit_intercept, standardise=False)
    alphas = check_alphas(default_alphas(X) if alphas is None else alphas)
    dual = solver == "dual" or (solver == "auto" and X.shape[1] > min(len(f.train) for f in checked))
    scales = [be.asarray(np.sqrt(g)[band_of], np.float64) for g in gammas]
    y_mean = Y.mean(axis=0, dtype=np.float64) if fit_intercept else np.zeros(Y.shape[1])

    n_targets = Y.shape[1]
    best_score = np.full(n_targets, -np.inf)
    best_gamma = np.zeros(n_targets, dtype=np.int64)
    best_alpha = np.full(n_targets, alphas[-1])

    def update(g: int, cols: slice, scores: np.ndarray) -> None:
        idx = sv.select_best(scores)
        score = np.where(np.isnan(scores), -np.inf, scores)[idx, np.arange(scores.shape[1])]
        better = score > best_score[cols] + np.finfo(dtype).eps  # strictly better, as himalaya
        best_score[cols] = np.where(better, score, best_score[cols])
        best_gamma[cols] = np.where(better, g, best_gamma[cols])
        best_alpha[cols] = np.where(better, alphas[idx], best_alpha[cols])

    coef = np.empty((X.shape[1], n_targets), dtype=dtype)
    size = sv.chunk_size(memory_budget, dtype.itemsize * (2 * X.shape[0] + (len(checked) + 8) * max(X.shape)))
    if dual:
        band_kernels = []
        for b in range(len(labels)):
            Xb = design.X64[:, be.index(np.flatnonzero(band_of == b))]
            band_kernels.append(Xb @ Xb.T)

        def kernel(g: int):
            return sum(float(w) * K for w, K in zip(gammas[g], band_kernels, strict=True))

        for g, scale in enumerate(scales):
            K = kernel(g)
            factors = [sv.fold_factors(design, fold, dual=True, band_scale=scale, kernel=K) for fold in checked]
            for cols in sv.chunks(n_targets, size):
                Yc = sv.load_targets(design, Y, cols, y_mean)
                scores = sum(
                    sv.score_alphas(ff, sv.dual_targets(design, ff, Yc), alphas, scoring, be) for ff in factors
                )
                update(g, cols, scores / len(checked))
        for g in np.unique(best_gamma):
            full = sv.full_factors(design, dual=True, band_scale=scales[g], kernel=kernel(g))
            targets = np.flatnonzero(best_gamma == g)
            for cols in sv.chunks(len(targets), size):
                Yc = sv.load_targets(design, Y[:, targets[cols]], slice(None), y_mean[targets[cols]])
                coef[:, targets[cols]] = be.to_numpy(sv.refit_weights(design, full, Yc, best_alpha[targets[cols]]))
    else:
        cache: dict[int, tuple[list[sv.FoldFactors], sv.FullFactors]] = {}
        factor_bytes = 2 * (len(checked) + 1) * X.shape[1] ** 2 * dtype.itemsize
        keep = factor_bytes * len(gammas) <= memory_budget

        def factors_for(g: int):
            if g in cache:
                return cache[g]
            out = (
                [sv.fold_factors(design, fold, dual=False, band_scale=scales[g]) for fold in checked],
                sv.full_factors(design, dual=False, band_scale=scales[g]),
            )
            if keep:
                cache[g] = out
            return out

        for cols in sv.chunks(n_targets, size):
            Yc = sv.load_targets(design, Y, cols, y_mean)
            stats = sv.primal_stats(design, checked, partition, Yc)
            for g in range(len(gammas)):
                fold_ffs, _ = factors_for(g)
                scores = sum(
                    sv.score_alphas(ff, sv.primal_targets(design, ff, stats, f, Yc), alphas, scoring, be)
                    for f, ff in enumerate(fold_ffs)
                )
                update(g, cols, scores / len(checked))
            for g in np.unique(best_gamma[cols]):
                _, full = factors_for(g)
                sub = np.flatnonzero(best_gamma[cols] == g)
                weights = sv.refit_weights(design, full, stats.S_all[:, be.index(sub)], best_alpha[cols][sub])
                coef[:, cols.start + sub] = be.to_numpy(weights)

    x_mean = X.mean(axis=0, dtype=np.float64) if fit_intercept else np.zeros(X.shape[1])
    intercept = y_mean - x_mean @ coef if fit_intercept else np.zeros(n_targets)
    weights = gammas[best_gamma].T
    with np.errstate(divide="ignore"):
        band_alphas = np.where(weights > 0, best_alpha[None, :] / weights, np.inf)
    best_score[np.isneginf(best_score)] = np.nan
    return BandedRidgeResult(coef, intercept, band_alphas, weights, best_alpha, best_score, gammas, labels)


class BandedRidgeCV(_LinearModel):
    """Ridge with a cross-validated strength per feature band and per target.

    Parameters
    ----------
    bands : sequence of length n_features
        The band label of each feature column (e.g. ``["gabor"] * 500 + ["deep"] * 1000``).
    alphas : array-like of float, optional
        Grid of overall strengths (default: :func:`default_alphas`).
    cv : int, cross-validation splitter or iterable of splits
        ``groups`` passed to ``fit`` reach group-aware splitters.
    n_iter : int
        Number of band weightings tried (the first is uniform). himalaya's default is
        100; 20 is usually enough for 2-3 bands.
    concentration : sequence of float
        Dirichlet concentrations, cycled.
    random_state : int or None
    fit_intercept, scoring, solver, backend, device, memory_budget
        As in :class:`scene2brain.encoding.RidgeCV`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_targets)
    intercept_ : ndarray of shape (n_targets,)
    band_alphas_ : ndarray of shape (n_bands, n_targets)
    band_weights_ : ndarray of shape (n_bands, n_targets)
    best_alphas_ : ndarray of shape (n_targets,)
        Overall ``alpha`` (``band_alphas_ = best_alphas_ / band_weights_``).
    cv_scores_ : ndarray of shape (n_targets,)
    bands_ : ndarray of shape (n_bands,)
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

    def fit(self, X, y, groups=None) -> BandedRidgeCV:
        """Search band weightings and alphas by cross-validation; refit on all samples."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=[np.float64, np.float32])
        if self.bands is None:
            raise ValueError("bands: expected one band label per feature column, got None")
        result = banded_ridge_cv(
            X,
            y,
            self.bands,
            self.alphas,
            list(check_cv(self.cv).split(X, y, groups)),
            n_iter=self.n_iter,
            concentration=self.concentration,
            seed=self.random_state,
            fit_intercept=self.fit_intercept,
            scoring=self.scoring,
            solver=self.solver,
            backend=self.backend,
            device=self.device,
            memory_budget=self.memory_budget,
        )
        self._store(result.coef, result.intercept, y.ndim == 1)
        self.band_alphas_ = result.band_alphas
        self.band_weights_ = result.band_weights
        self.best_alphas_ = result.alphas
        self.cv_scores_ = result.cv_scores
        self.bands_ = result.bands
        self._band_of = np.unique(np.asarray(self.bands).ravel(), return_inverse=True)[1]
        return self

    def predict_split(self, X) -> np.ndarray:
        """Each band's contribution ``X_i w_i`` (without intercept), shape (n_bands, n_samples, n_targets)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return np.stack([X[:, self._band_of == b] @ self.coef_[self._band_of == b] for b in range(len(self.bands_))])

    def score_split(self, X, y) -> np.ndarray:
        """Per-band split of the R^2 on ``(X, y)`` (:func:`scene2brain.evaluation.r2_score_split`)."""
        return r2_score_split(y, self.predict_split(X))
