"""The regressors the source projects compare, as encoders: scikit-learn models with a cross-validated grid.

Every function here fits one model family on training rows ``X`` (n, p), ``Y`` (n, v)
with the caller's folds, chooses its hyperparameter on those folds only (one value
shared by every target: the choice of scikit-learn's ``GridSearchCV(scoring="r2")``,
see :mod:`scene2brain.encoding.selection`), refits on all rows and returns a
:class:`GridFit`; :mod:`scene2brain.encoding.registry` makes them encoders.

- :func:`ridge_shared` -- ridge with one alpha for all targets (img2brain's ``RidgeCV``),
  scored by the exact per-target ridge CV of :class:`~scene2brain.encoding.RidgeCV`;
- :func:`multitask_elasticnet` -- ``MultiTaskLasso`` / ``MultiTaskElasticNet``
  (shared support across targets), fitted by :class:`MultiTaskElasticNetGram`;
- :func:`pls` -- ``PLSRegression``, number of components (one fit per fold serves every
  candidate: the first ``k`` components of a larger fit are the ``k``-component fit);
- :func:`knn` -- ``KNeighborsRegressor``, number of neighbours;
- :func:`tree` / :func:`forest` -- multi-output ``DecisionTreeRegressor`` /
  ``RandomForestRegressor``, maximum depth.

Grids may be given in a configuration (TOML has no null: write ``"none"`` for an
unlimited depth).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import MultiTaskElasticNet, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted, validate_data

from scene2brain.encoding._base import check_alphas
from scene2brain.encoding._solver import check_folds
from scene2brain.encoding.ridge import RidgeCV
from scene2brain.encoding.selection import choose, search
from scene2brain.evaluation.metrics import r2_score

Folds = Sequence[tuple[np.ndarray, np.ndarray]]

#: Default candidate depths of the tree and the forest (None: grown until the leaves are pure or too small).
DEFAULT_DEPTHS: tuple[int | None, ...] = (2, 4, 8, 16, None)
#: Default candidate numbers of neighbours (values above the smallest training fold are dropped).
DEFAULT_NEIGHBOURS = (1, 2, 5, 10, 20, 50)


@dataclass
class GridFit:
    """A model fitted on all training rows with the hyperparameters chosen on the folds.

    Attributes
    ----------
    model : estimator
        ``predict(X)`` gives (n_samples, n_targets).
    cv_score : ndarray of shape (n_targets,)
        Mean over folds of the held-out R^2 at the chosen hyperparameters.
    alphas : ndarray of shape (n_targets,)
        Regularisation strength per target (NaN for models without one).
    summary : dict
        The chosen hyperparameters (JSON-able) for the report.
    """

    model: Any
    cv_score: np.ndarray
    alphas: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)


def min_train_size(folds: Folds, n_samples: int) -> int:
    """Number of training rows of the smallest fold (the folds are checked)."""
    checked, _ = check_folds(list(folds), n_samples)
    return min(len(f.train) for f in checked)


def _arrays(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise ValueError(f"X, Y: expected (n, p) and (n, v) arrays with the same n, got {X.shape} and {Y.shape}")
    return X, Y


def int_grid(name: str, values: Any, low: int, high: int | None = None, allow_none: bool = False) -> list[int | None]:
    """``values`` as a list of ints in ``low..high`` (and None where allowed, also written ``"none"``), or a ValueError.

    Parameters
    ----------
    name : str
        The option's name, for the message.
    values : int or sequence
    low, high : int
        Bounds, inclusive (``high`` None: unbounded).
    allow_none : bool
        Accept None (or the string ``"none"``, as a configuration writes it).
    """
    values = list(values) if isinstance(values, list | tuple | np.ndarray) else [values]
    out: list[int | None] = []
    for value in values:
        if allow_none and (value is None or (isinstance(value, str) and value.lower() == "none")):
            out.append(None)
            continue
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            extra = ' or "none"' if allow_none else ""
            raise ValueError(f"{name}: expected integers {bound}{extra}, got {value!r} (in {values})")
        out.append(int(value))
    if not out:
        raise ValueError(f"{name}: expected at least one value, got an empty grid")
    return out


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int ``>= low``, or a ValueError naming ``name``."""
    return int(int_grid(name, [value], low)[0])  # type: ignore[arg-type]


def ratio_grid(name: str, values: Any) -> list[float]:
    """``values`` as a non-empty list of floats in (0, 1], or a ValueError (elastic-net ``l1_ratio``)."""
    values = list(values) if isinstance(values, list | tuple | np.ndarray) else [values]
    ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v <= 1 for v in values)
    if not values or not ok:
        raise ValueError(f"{name}: expected values in (0, 1], got {values!r}")
    return [float(v) for v in values]


def _grid_fit(
    make: Callable[[Any], Any],
    grid: Sequence[Any],
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    describe: Callable[[Any, Any], dict[str, Any]],
    alpha: Callable[[Any], float] = lambda value: float("nan"),
) -> GridFit:
    """Shared-grid search with :func:`~scene2brain.encoding.selection.search`; ``describe(value, model)`` -> summary."""
    model, chosen, cv_score, _ = search(make, grid, X, Y, folds, per_target=False)
    value = grid[int(chosen[0])]
    fitted = model.models[0]
    return GridFit(fitted, cv_score, np.full(Y.shape[1], alpha(value)), describe(value, fitted))


# --------------------------------------------------------------------------------------- ridge, one alpha


def ridge_shared(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    alphas: Sequence[float] | None = None,
    backend: str = "numpy",
    device: str | None = None,
) -> GridFit:
    """Ridge with one alpha for every target (img2brain's ``RidgeCV``).

    The exact per-target CV table of :class:`~scene2brain.encoding.RidgeCV` (mean fold R^2,
    shape (n_alphas, n_targets)) is averaged over targets; its best alpha is refitted
    with scikit-learn's ``Ridge``. Same choice as ``GridSearchCV(Ridge(), {"alpha":
    alphas}, cv=folds, scoring="r2")`` (ties to the smaller alpha).

    Parameters
    ----------
    X, Y : ndarray
    folds : sequence of (train_index, test_index)
    alphas : sequence of float, optional
        Candidates; default :func:`~scene2brain.encoding.default_alphas` of ``X``.
    backend, device : str
        Of the CV (see :class:`~scene2brain.encoding.RidgeCV`).
    """
    X, Y = _arrays(X, Y)
    cv = RidgeCV(alphas=alphas, cv=list(folds), scoring="r2", backend=backend, device=device).fit(X, Y)
    scores = np.asarray(cv.cv_scores_).reshape(len(cv.alphas_), -1)
    index = int(choose(scores, per_target=False)[0])
    alpha = float(cv.alphas_[index])
    model = Ridge(alpha=alpha).fit(X, Y)
    summary = {"alpha": alpha, "log10_alpha": float(np.log10(alpha))}
    return GridFit(model, scores[index], np.full(Y.shape[1], alpha), summary)


# ----------------------------------------------------------------------------- multi-task lasso / enet


class MultiTaskElasticNetGram(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """scikit-learn's ``MultiTaskElasticNet`` solved on a ``p x p`` square root of the Gram matrix.

    Minimises the objective of ``MultiTaskElasticNet`` (``(1 / 2n) ||Y - X W - b||_F^2 +
    alpha * l1_ratio * ||W||_21 + alpha * (1 - l1_ratio) / 2 * ||W||_F^2``; rows of ``W``
    are zero for all targets together). With centred ``X`` and ``X^T X = V L V^T``
    (``n > p``), ``D = L^(1/2) V^T`` and ``T = L^(-1/2) V^T X^T Y`` give ``D^T D = X^T X``
    and ``D^T T = X^T Y``, so ``||Y - X W||_F^2 = ||T - D W||_F^2`` plus a constant:
    coordinate descent runs on ``p`` rows instead of ``n`` (``alpha`` rescaled by ``n / p``;
    the same coordinate updates) and stops at the same absolute duality-gap threshold,
    ``tol * ||Y - mean||_F^2``. Directions of ``X`` with a zero eigenvalue are dropped.

    Parameters
    ----------
    alpha : float, default=1.0
    l1_ratio : float, default=1.0
        1 gives ``MultiTaskLasso``.
    max_iter : int, default=1000
    tol : float, default=1e-4

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_targets)
    intercept_ : ndarray of shape (n_targets,)
    n_iter_ : int
    n_features_in_ : int
    """

    def __init__(self, alpha: float = 1.0, l1_ratio: float = 1.0, max_iter: int = 1000, tol: float = 1e-4):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: Any, y: Any) -> Self:
        """Fit on centred ``X``, ``y`` (intercept unpenalised).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_targets)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        Y = y[:, None] if y.ndim == 1 else y
        n, p = X.shape
        x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
        Xc, Yc = X - x_mean, Y - y_mean
        total = float((Yc**2).sum())
        design, targets, scale = Xc, Yc, 1.0
        if n > p:
            eigvals, V = np.linalg.eigh(Xc.T @ Xc)
            keep = eigvals > max(float(eigvals[-1]), 0.0) * n * np.finfo(np.float64).eps
            if keep.any():
                root, V = np.sqrt(eigvals[keep]), V[:, keep]
                design = (V * root).T  # (r, p): design^T design = Xc^T Xc
                targets = (V.T @ (Xc.T @ Yc)) / root[:, None]  # design^T targets = Xc^T Yc
                scale = n / len(root)
        kept = float((targets**2).sum())
        tol = self.tol * total / kept if kept > 0 else self.tol
        model = MultiTaskElasticNet(
            alpha=self.alpha * scale,
            l1_ratio=self.l1_ratio,
            fit_intercept=False,
            max_iter=self.max_iter,
            tol=tol,
        ).fit(np.asfortranarray(design), targets)
        self.coef_ = model.coef_.T
        self.intercept_ = y_mean - x_mean @ self.coef_
        self.n_iter_ = model.n_iter_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples, n_targets)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_


def multitask_alpha_grid(
    X: np.ndarray, Y: np.ndarray, l1_ratio: float = 1.0, n_alphas: int = 10, eps: float = 1e-3
) -> np.ndarray:
    """scikit-learn's path for multi-task models: ``alpha_max`` (all rows of ``W`` zero) down to ``eps`` of it.

    ``alpha_max = max_j ||(X_c^T Y_c)_j||_2 / (n * l1_ratio)``, the grid log-spaced and
    descending (``sklearn.linear_model.MultiTaskLassoCV``'s, on the rows given).
    """
    X, Y = _arrays(X, Y)
    Xy = (X - X.mean(axis=0)).T @ (Y - Y.mean(axis=0))
    alpha_max = float(np.sqrt(np.max(np.sum(Xy**2, axis=1)))) / (len(X) * l1_ratio)
    if alpha_max <= np.finfo(np.float64).resolution:
        return np.full(n_alphas, np.finfo(np.float64).resolution)
    return np.geomspace(alpha_max, alpha_max * eps, num=n_alphas)


def multitask_elasticnet(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    l1_ratios: Sequence[float] = (0.5,),
    alphas: Sequence[float] | None = None,
    n_alphas: int = 10,
    eps: float = 1e-3,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> GridFit:
    """Multi-task elastic net (``l1_ratios=(1.0,)``: multi-task lasso), one (alpha, l1_ratio) for all targets.

    The candidates are, for every ``l1_ratio``, its own :func:`multitask_alpha_grid` on all
    training rows (or the explicit ``alphas``); the pair with the best mean over targets of
    the fold-mean R^2 is refitted (``GridSearchCV``'s choice).

    Parameters
    ----------
    X, Y : ndarray
    folds : sequence of (train_index, test_index)
    l1_ratios : sequence of float in (0, 1]
        Default 0.5 (``MultiTaskElasticNetCV``'s).
    alphas : sequence of float, optional
        One explicit grid for every ``l1_ratio`` instead of the data-driven paths.
    n_alphas : int
        Length of each path.
    eps : float
        ``alpha_min / alpha_max`` of each path.
    max_iter, tol
        Of coordinate descent (see :class:`MultiTaskElasticNetGram`).
    """
    X, Y = _arrays(X, Y)
    ratios = ratio_grid("l1_ratios", l1_ratios)
    n_alphas = check_int("n_alphas", n_alphas, 1)
    if not 0 < eps < 1:
        raise ValueError(f"eps: expected a ratio in (0, 1), got {eps!r}")
    grid: list[tuple[float, float]] = []
    for ratio in ratios:
        path = multitask_alpha_grid(X, Y, ratio, n_alphas, eps) if alphas is None else check_alphas(alphas)[::-1]
        grid.extend((float(a), ratio) for a in path)

    def make(value: tuple[float, float]) -> MultiTaskElasticNetGram:
        return MultiTaskElasticNetGram(alpha=value[0], l1_ratio=value[1], max_iter=max_iter, tol=tol)

    def describe(value: tuple[float, float], model: MultiTaskElasticNetGram) -> dict[str, Any]:
        active = int(np.count_nonzero(np.any(model.coef_ != 0, axis=1)))
        return {"alpha": value[0], "l1_ratio": value[1], "n_active_features": active, "n_iter": int(model.n_iter_)}

    return _grid_fit(make, grid, X, Y, folds, describe, alpha=lambda value: value[0])


# ---------------------------------------------------------------------------- PLS, KNN, tree, forest


def pls(
    X: np.ndarray, Y: np.ndarray, folds: Folds, *, n_components: Sequence[int] | None = None, scale: bool = False
) -> GridFit:
    """Partial least squares (``PLSRegression``), the number of components chosen on the folds.

    Parameters
    ----------
    X, Y : ndarray
    folds : sequence of (train_index, test_index)
    n_components : sequence of int, optional
        Candidates in ``1..min(p, n_train - 1)`` (``n_train``: the smallest training fold);
        default every value up to ``min(20, p, n_train - 1)``.
    scale : bool
        Standardise features and targets inside PLS (default: as given).
    """
    X, Y = _arrays(X, Y)
    most = min(X.shape[1], min_train_size(folds, len(X)) - 1)
    if n_components is None:
        grid: list[int] = list(range(1, min(20, most) + 1))
    else:
        grid = [int(k) for k in int_grid("n_components", n_components, 1, most)]  # type: ignore[arg-type]
    scores = np.array([_pls_fold_scores(X[train], Y[train], X[test], Y[test], grid, scale) for train, test in folds])
    with np.errstate(invalid="ignore"):
        scores = np.nanmean(scores, axis=0)
    index = int(choose(scores, per_target=False)[0])
    k = grid[index]
    model = PLSRegression(n_components=k, scale=scale).fit(X, Y)
    return GridFit(model, scores[index], np.full(Y.shape[1], np.nan), {"n_components": k})


def _pls_fold_scores(
    X: np.ndarray, Y: np.ndarray, X_test: np.ndarray, Y_test: np.ndarray, grid: Sequence[int], scale: bool
) -> np.ndarray:
    """Held-out R^2 (len(grid), n_targets) of ``PLSRegression(k)`` for every ``k`` in ``grid``, from one fit.

    NIPALS finds the components one after another, so the first ``k`` components of a fit
    with ``max(grid)`` are those of a fit with ``k``; and ``P^T W`` (loadings by weights) is
    upper triangular, so the first ``k`` columns of the rotations are the ``k``-component
    rotations. The ``k``-component prediction is therefore ``T[:, :k] Q[:, :k]^T`` (test
    scores, y loadings), scaled back; the tests check it against separate fits.
    """
    model = PLSRegression(n_components=max(grid), scale=scale).fit(X, Y)
    scores = model.transform(X_test)
    y_std = Y.std(axis=0, ddof=1) if scale else np.ones(Y.shape[1])
    y_std[y_std == 0] = 1.0
    loadings = model.y_loadings_ * y_std[:, None]
    return np.array([r2_score(Y_test, scores[:, :k] @ loadings[:, :k].T + model.intercept_) for k in grid])


def knn(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    n_neighbors: Sequence[int] | None = None,
    weights: str = "uniform",
) -> GridFit:
    """k nearest neighbours (``KNeighborsRegressor``, Euclidean), k chosen on the folds.

    Parameters
    ----------
    X, Y : ndarray
    folds : sequence of (train_index, test_index)
    n_neighbors : sequence of int, optional
        Candidates in ``1..n_train`` (the smallest training fold); default
        :data:`DEFAULT_NEIGHBOURS` without the values above ``n_train``.
    weights : {"uniform", "distance"}
    """
    X, Y = _arrays(X, Y)
    if weights not in ("uniform", "distance"):
        raise ValueError(f"weights: expected 'uniform' or 'distance', got {weights!r}")
    most = min_train_size(folds, len(X))
    if n_neighbors is None:
        grid = [k for k in DEFAULT_NEIGHBOURS if k <= most] or [most]
    else:
        grid = int_grid("n_neighbors", n_neighbors, 1, most)
    return _grid_fit(
        lambda k: KNeighborsRegressor(n_neighbors=k, weights=weights), grid, X, Y, folds, lambda k, _: {"k": k}
    )


def _depth_summary(depth: int | None, model: Any) -> dict[str, Any]:
    trees = getattr(model, "estimators_", [model])
    return {"max_depth": depth, "mean_depth": float(np.mean([t.get_depth() for t in trees]))}


def tree(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    max_depth: Sequence[int | str | None] = DEFAULT_DEPTHS,
    min_samples_leaf: int = 1,
    random_state: int | None = 0,
) -> GridFit:
    """One multi-output regression tree (``DecisionTreeRegressor``), its maximum depth chosen on the folds.

    Parameters
    ----------
    X, Y : ndarray
    folds : sequence of (train_index, test_index)
    max_depth : sequence of int or None
        Candidates (None, or ``"none"``: unlimited).
    min_samples_leaf : int
    random_state : int or None
        Seed of the tie-breaking between equally good splits (the same for every fit).
    """
    X, Y = _arrays(X, Y)
    grid = int_grid("max_depth", max_depth, 1, allow_none=True)
    leaf = check_int("min_samples_leaf", min_samples_leaf, 1)

    def make(depth: int | None) -> DecisionTreeRegressor:
        return DecisionTreeRegressor(max_depth=depth, min_samples_leaf=leaf, random_state=random_state)

    return _grid_fit(make, grid, X, Y, folds, _depth_summary)


def forest(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    max_depth: Sequence[int | str | None] = DEFAULT_DEPTHS,
    n_estimators: int = 100,
    max_features: float | int | str = 1 / 3,
    min_samples_leaf: int = 1,
    n_jobs: int | None = 1,
    random_state: int | None = 0,
) -> GridFit:
    """Multi-output random forest (``RandomForestRegressor``), its maximum depth chosen on the folds.

    Parameters
    ----------
    X, Y : ndarray
    folds : sequence of (train_index, test_index)
    max_depth : sequence of int or None
        Candidates (None, or ``"none"``: unlimited).
    n_estimators : int
    max_features : float, int or {"sqrt", "log2"}
        Features tried per split (a float: that fraction; 1/3 is the usual choice for regression).
    min_samples_leaf : int
    n_jobs : int or None
        Trees fitted in parallel (results do not depend on it).
    random_state : int or None
        Seed of the bootstrap samples and feature draws (the same for every fit).
    """
    X, Y = _arrays(X, Y)
    grid = int_grid("max_depth", max_depth, 1, allow_none=True)
    trees = check_int("n_estimators", n_estimators, 1)
    leaf = check_int("min_samples_leaf", min_samples_leaf, 1)

    def make(depth: int | None) -> RandomForestRegressor:
        return RandomForestRegressor(
            n_estimators=trees,
            max_depth=depth,
            max_features=max_features,
            min_samples_leaf=leaf,
            n_jobs=n_jobs,
            random_state=random_state,
        )

    return _grid_fit(make, grid, X, Y, folds, _depth_summary)
