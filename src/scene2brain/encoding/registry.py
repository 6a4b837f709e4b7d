"""The encoder registry: every voxelwise model a run can fit, by name.

Each entry fits on training rows with folds given by the caller (so every encoder of
a run sees the same splits) and returns a :class:`FittedEncoder`: predictions for new
rows, the hyperparameter chosen per target and the held-out training-fold score per
target. :data:`ENCODERS` is the single source that the run configuration's
``encoder.model`` and the pipeline read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

from scene2brain.encoding.ridge import RidgeCV
from scene2brain.evaluation.metrics import r2_score

Folds = Sequence[tuple[np.ndarray, np.ndarray]]


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
    """

    model: Any
    alphas: np.ndarray
    cv_score: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(X)


@dataclass(frozen=True)
class EncoderInfo:
    """A registered encoder: a name, a description and ``fit(X, Y, folds, **options) -> FittedEncoder``."""

    name: str
    description: str
    fit: Callable[..., FittedEncoder]


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
    return FittedEncoder(model, np.asarray(model.best_alphas_, np.float64), np.max(model.cv_scores_, axis=0))


def _fit_ols(X: np.ndarray, Y: np.ndarray, folds: Folds, **_: Any) -> FittedEncoder:
    model = LinearRegression().fit(X, Y)
    held_out = np.mean([r2_score(Y[test], LinearRegression().fit(X[train], Y[train]).predict(X[test]))
                        for train, test in folds], axis=0)  # fmt: skip
    return FittedEncoder(model, np.full(Y.shape[1], np.nan), held_out)


ENCODERS: dict[str, EncoderInfo] = {
    info.name: info
    for info in (
        EncoderInfo(
            "ridge", "voxelwise ridge, one alpha per voxel chosen by K-fold CV on the training rows", _fit_ridge
        ),
        EncoderInfo("ols", "ordinary least squares (no regularisation)", _fit_ols),
    )
}


def fit_encoder(name: str, X: np.ndarray, Y: np.ndarray, folds: Folds, **options: Any) -> FittedEncoder:
    """Fit the registered encoder ``name`` on ``X``, ``Y`` with ``folds`` (and its ``options``)."""
    if name not in ENCODERS:
        raise ValueError(f"encoder: expected one of {sorted(ENCODERS)}, got {name!r}")
    return ENCODERS[name].fit(X, Y, folds, **options)
