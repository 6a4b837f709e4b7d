"""The encoder registry: every voxelwise model a run can fit, by name.

Each entry fits on training rows with folds given by the caller (so every encoder of
a run sees the same splits), chooses its hyperparameters by cross-validation on those
folds only, and returns a :class:`FittedEncoder`: predictions for new rows, the
regularisation chosen per target (NaN where the model has none), the held-out
training-fold score per target (one meaning for every encoder, see
:mod:`scene2brain.encoding.selection`) and a summary of its fitted state for the
report. :data:`ENCODERS` is the single source that the run configuration's
``[encoder]`` and ``[[encoders]]`` and the pipeline read.

An encoder's fit function has the signature ``fit(X, Y, folds, *, <options>)``; its
keyword options are what a configuration may set (:func:`check_encoder_options`), and
``random_state`` / ``device``, when it takes them, are given by the run.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

from scene2brain.encoding import regressors
from scene2brain.encoding.bottleneck import check_bottleneck_options, fit_bottleneck
from scene2brain.encoding.kernel import KernelRidgeCV
from scene2brain.encoding.ridge import RidgeCV
from scene2brain.encoding.selection import fold_scores
from scene2brain.encoding.sparse import VoxelwiseElasticNetCV, VoxelwiseLassoCV

Folds = Sequence[tuple[np.ndarray, np.ndarray]]
#: Options that the run, not the configuration's options table, gives an encoder.
RUN_OPTIONS = ("random_state", "device", "row_groups", "voxel_groups")
#: Rows and features of the trial problem that checks option values before any data is seen (:func:`trial_fit`).
TRIAL_SHAPE = (300, 64)


@dataclass
class FittedEncoder:
    """A fitted encoder.

    Attributes
    ----------
    model : estimator
        Has ``predict(X)``.
    alphas : ndarray of shape (n_targets,)
        Regularisation chosen per target (NaN for unregularised models).
    cv_score : ndarray of shape (n_targets,)
        Held-out R^2 on the training folds (the mean over folds of each fold's R^2) at the
        chosen hyperparameter; the same quantity for every encoder.
    summary : dict
        The fitted state in a few JSON-able values for the report (chosen hyperparameters,
        or their median over targets; sizes; iterations).
    fit_seconds : float
        Wall time of the whole fit, CV included (set by :func:`fit_encoder`).
    """

    model: Any
    alphas: np.ndarray
    cv_score: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = float("nan")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(X)


@dataclass(frozen=True)
class EncoderInfo:
    """A registered encoder: a name, a description and ``fit(X, Y, folds, **options) -> FittedEncoder``.

    ``check(options)`` refuses bad option values before any data is seen (ValueError); by
    default a trial fit on a small random problem (:func:`trial_fit`), which runs the encoder's
    own validation.
    """

    name: str
    description: str
    fit: Callable[..., FittedEncoder]
    check: Callable[[dict[str, Any]], None] | None = None

    def options(self) -> list[str]:
        """The keyword options of ``fit`` a configuration may set (the run gives ``random_state`` and ``device``)."""
        params = inspect.signature(self.fit).parameters.values()
        return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in RUN_OPTIONS]

    def accepts(self, name: str) -> bool:
        return name in inspect.signature(self.fit).parameters


def _fit_ridge(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    alphas: Sequence[float] | None = None,
    backend: str = "numpy",
    device: str | None = None,
) -> FittedEncoder:
    model = RidgeCV(alphas=alphas, cv=list(folds), scoring="r2", backend=backend, device=device).fit(X, Y)
    best = np.asarray(model.best_alphas_, np.float64)
    summary = {"median_log10_alpha": float(np.median(np.log10(best)))}
    return FittedEncoder(model, best, np.max(model.cv_scores_, axis=0), summary)


def _fit_ols(X: np.ndarray, Y: np.ndarray, folds: Folds) -> FittedEncoder:
    model = LinearRegression().fit(X, Y)
    return FittedEncoder(model, np.full(Y.shape[1], np.nan), fold_scores(LinearRegression, X, Y, folds))


def _encoder(search: Callable[..., regressors.GridFit]) -> Callable[..., FittedEncoder]:
    """An encoder fit function (same signature, so the same options) from a :mod:`regressors` search."""

    @functools.wraps(search)
    def fit(X: np.ndarray, Y: np.ndarray, folds: Folds, **options: Any) -> FittedEncoder:
        found = search(X, Y, folds, **options)
        return FittedEncoder(found.model, found.alphas, found.cv_score, found.summary)

    return fit


def _per_voxel_summary(alphas: np.ndarray) -> dict[str, float]:
    return {"median_log10_alpha": float(np.median(np.log10(alphas)))}


def _fit_lasso(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    n_alphas: int = 100,
    eps: float = 1e-3,
    alphas: Sequence[float] | None = None,
    max_iter: int = 1000,
    tol: float = 1e-4,
    n_jobs: int = 1,
) -> FittedEncoder:
    model = VoxelwiseLassoCV(
        n_alphas=n_alphas, eps=eps, alphas=alphas, cv=list(folds), max_iter=max_iter, tol=tol, n_jobs=n_jobs
    ).fit(X, Y)
    summary = _per_voxel_summary(model.alpha_) | {"mean_n_active": float(np.mean(np.count_nonzero(model.coef_, 0)))}
    return FittedEncoder(model, model.alpha_, model.cv_score_, summary)


def _fit_elasticnet(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    l1_ratios: Sequence[float] = (0.5,),
    n_alphas: int = 100,
    eps: float = 1e-3,
    alphas: Sequence[float] | None = None,
    max_iter: int = 1000,
    tol: float = 1e-4,
    n_jobs: int = 1,
) -> FittedEncoder:
    model = VoxelwiseElasticNetCV(
        l1_ratio=l1_ratios,
        n_alphas=n_alphas,
        eps=eps,
        alphas=alphas,
        cv=list(folds),
        max_iter=max_iter,
        tol=tol,
        n_jobs=n_jobs,
    ).fit(X, Y)
    summary = _per_voxel_summary(model.alpha_) | {"median_l1_ratio": float(np.median(model.l1_ratio_))}
    summary["mean_n_active"] = float(np.mean(np.count_nonzero(model.coef_, 0)))
    return FittedEncoder(model, model.alpha_, model.cv_score_, summary)


def _fit_multitask_lasso(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    alphas: Sequence[float] | None = None,
    n_alphas: int = 10,
    eps: float = 1e-3,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> FittedEncoder:
    found = regressors.multitask_elasticnet(
        X, Y, folds, l1_ratios=(1.0,), alphas=alphas, n_alphas=n_alphas, eps=eps, max_iter=max_iter, tol=tol
    )
    return FittedEncoder(found.model, found.alphas, found.cv_score, found.summary)


def _fit_kernel_ridge(
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    kernel: str = "rbf",
    alphas: Sequence[float] | None = None,
    gamma: float | None = None,
    degree: int = 3,
    coef0: float = 1.0,
    fit_intercept: bool = True,
) -> FittedEncoder:
    if kernel == "precomputed":
        raise ValueError("kernel: expected 'rbf', 'poly' or 'linear' (an encoder gets features, not a kernel)")
    model = KernelRidgeCV(
        alphas=alphas,
        kernel=kernel,
        gamma=gamma,
        degree=degree,
        coef0=coef0,
        cv=list(folds),
        fit_intercept=fit_intercept,
    ).fit(X, Y)
    best = np.asarray(model.best_alphas_, np.float64)
    cv_score = np.max(np.where(np.isnan(model.cv_scores_), -np.inf, model.cv_scores_), axis=0)
    cv_score[np.isneginf(cv_score)] = np.nan
    return FittedEncoder(model, best, cv_score, _per_voxel_summary(best) | {"kernel_rank": model.rank_})


def _check_forest(options: dict[str, Any]) -> None:
    """The forest's trial fit with 2 trees (its number of trees checked on its own)."""
    regressors.check_int("n_estimators", options.get("n_estimators", 100), 1)
    trial_fit(_encoder(regressors.forest), {**options, "n_estimators": 2})


def _bounded_by_data(option: str, fit: Callable[..., FittedEncoder]) -> Callable[[dict[str, Any]], None]:
    """A check for an encoder whose grid ``option`` is bounded by the data (PLS components, neighbours).

    The grid is checked for its type and lower bound only (its upper bound, the features or the
    training rows, is checked by the fit on the real data); the other options by a trial fit.
    """

    def check(options: dict[str, Any]) -> None:
        if options.get(option) is not None:
            regressors.int_grid(option, options[option], 1)
        trial_fit(fit, {key: value for key, value in options.items() if key != option})

    return check


def trial_fit(fit: Callable[..., FittedEncoder], options: dict[str, Any]) -> None:
    """Fit once on a seeded random problem (:data:`TRIAL_SHAPE`, 2 targets, 2 folds): the encoder's own value checks.

    Any error becomes a ValueError with the encoder's message (and the error's type when it
    is not a ValueError).
    """
    rng = np.random.default_rng(0)
    n, p = TRIAL_SHAPE
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, 2)) + rng.standard_normal((n, 2))
    half = np.arange(n // 2)
    try:
        fit(X, Y, [(half + n // 2, half), (half, half + n // 2)], **options)
    except ValueError as err:
        raise ValueError(str(err)) from None
    except Exception as err:  # an option that makes the encoder fail in any other way is a bad option too
        raise ValueError(f"{type(err).__name__}: {err}") from None


ENCODERS: dict[str, EncoderInfo] = {
    info.name: info
    for info in (
        EncoderInfo(
            "ridge", "voxelwise ridge, one alpha per voxel chosen by K-fold CV on the training rows", _fit_ridge
        ),
        EncoderInfo("ols", "ordinary least squares (no regularisation)", _fit_ols),
        EncoderInfo(
            "ridge-shared",
            "ridge with one alpha for all voxels (img2brain's RidgeCV)",
            _encoder(regressors.ridge_shared),
        ),
        EncoderInfo(
            "multitask-lasso",
            "multi-task lasso (features selected jointly for all voxels), one alpha by CV",
            _fit_multitask_lasso,
        ),
        EncoderInfo(
            "multitask-elasticnet",
            "multi-task elastic net (shared support), one (alpha, l1_ratio) by CV",
            _encoder(regressors.multitask_elasticnet),
        ),
        EncoderInfo("lasso", "independent lasso per voxel, each alpha from its own path by CV (LassoCV)", _fit_lasso),
        EncoderInfo(
            "elasticnet",
            "independent elastic net per voxel, each (alpha, l1_ratio) by CV (ElasticNetCV)",
            _fit_elasticnet,
        ),
        EncoderInfo(
            "pls",
            "partial least squares, number of components by CV",
            _encoder(regressors.pls),
            _bounded_by_data("n_components", _encoder(regressors.pls)),
        ),
        EncoderInfo(
            "knn",
            "k nearest neighbours, k by CV",
            _encoder(regressors.knn),
            _bounded_by_data("n_neighbors", _encoder(regressors.knn)),
        ),
        EncoderInfo("tree", "one multi-output regression tree, depth by CV", _encoder(regressors.tree)),
        EncoderInfo("forest", "multi-output random forest, depth by CV", _encoder(regressors.forest), _check_forest),
        EncoderInfo(
            "kernel-ridge",
            "kernel ridge (RBF, polynomial or linear kernel), one alpha per voxel by exact dual CV",
            _fit_kernel_ridge,
        ),
        EncoderInfo(
            "bottleneck",
            "residual MLP between PCA-reduced features and PCA-reduced responses (F-BNet, done right), torch",
            fit_bottleneck,
            check_bottleneck_options,
        ),
    )
}


def encoder_info(name: str) -> EncoderInfo:
    """The registry entry of ``name``, or a ValueError listing the names."""
    if name not in ENCODERS:
        raise ValueError(f"encoder: expected one of {sorted(ENCODERS)}, got {name!r}")
    return ENCODERS[name]


def check_encoder_options(name: str, options: dict[str, Any]) -> None:
    """ValueError naming the options that encoder ``name`` does not take, and the ones it does."""
    info = encoder_info(name)
    allowed = info.options()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{unknown} are not options of encoder {name!r}; expected some of {allowed}")


def check_encoder_values(name: str, options: dict[str, Any]) -> None:
    """ValueError for option values that encoder ``name`` refuses, without data (:class:`EncoderInfo`).

    Each encoder and set of options is checked once per process.
    """
    check_encoder_options(name, options)
    key = (name, json.dumps(options, sort_keys=True, default=repr))
    if key in _CHECKED:
        return
    info = encoder_info(name)
    if info.check is not None:
        info.check(dict(options))
    else:
        trial_fit(info.fit, dict(options))
    _CHECKED.add(key)


_CHECKED: set[tuple[str, str]] = set()


def fit_encoder(
    name: str,
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    random_state: int | None = 0,
    device: str | None = None,
    row_groups: np.ndarray | None = None,
    voxel_groups: np.ndarray | None = None,
    **options: Any,
) -> FittedEncoder:
    """Fit the registered encoder ``name`` on ``X``, ``Y`` with ``folds`` (and its ``options``), timed.

    What the run knows reaches the encoders that take it: ``random_state``; ``device``;
    ``row_groups``, the content group of each row (stimuli sharing content, e.g. crops of one
    photograph, which a validation split must keep together); ``voxel_groups``, a label per
    target (hemisphere, ROI set) for encoders that reduce responses per group. A ``device`` or
    ``voxel_groups`` given to an encoder that cannot use it is an error; ``row_groups`` is
    ignored by encoders that take their splits from ``folds`` alone.
    """
    info = encoder_info(name)
    check_encoder_options(name, options)
    given = {"random_state": random_state, "device": device, "row_groups": row_groups, "voxel_groups": voxel_groups}
    run = {key: value for key, value in given.items() if info.accepts(key)}
    for key in ("device", "voxel_groups"):
        if given[key] is not None and key not in run:
            raise ValueError(f"{key}: encoder {name!r} does not take it, got {given[key]!r}")
    start = time.perf_counter()
    fitted = info.fit(X, Y, folds, **run, **options)
    fitted.fit_seconds = time.perf_counter() - start
    return fitted
