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

from collections.abc import Callable, Sequence
import inspect
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

from scene2brain.encoding.ridge import RidgeCV
from scene2brain.encoding.selection import fold_scores

Folds = Sequence[tuple[np.ndarray, np.ndarray]]
#: Options that the run, not the configuration's options table, gives an encoder.
RUN_OPTIONS = ("random_state", "device")


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
    """A registered encoder: a name, a description and ``fit(X, Y, folds, **options) -> FittedEncoder``."""

    name: str
    description: str
    fit: Callable[..., FittedEncoder]

    def options(self) -> list[str]:
        """The keyword options of ``fit`` a configuration may set (``random_state`` and ``device`` come from the run)."""
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


ENCODERS: dict[str, EncoderInfo] = {
    info.name: info
    for info in (
        EncoderInfo(
            "ridge", "voxelwise ridge, one alpha per voxel chosen by K-fold CV on the training rows", _fit_ridge
        ),
        EncoderInfo("ols", "ordinary least squares (no regularisation)", _fit_ols),
    )
}


def encoder_info(name: str) -> EncoderInfo:
    """The registry entry of ``name``, or a ValueError listing the names."""
    if name not in ENCODERS:
        raise ValueError(f"encoder: expected one of {sorted(ENCODERS)}, got {name!r}")
    return ENCODERS[name]


def check_encoder_options(name: str, options: dict[str, Any]) -> None:
    """ValueError naming the options that encoder ``name`` does not take, and the ones it does."""
    allowed = encoder_info(name).options()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{unknown} are not options of encoder {name!r}; expected some of {allowed}")


def fit_encoder(
    name: str,
    X: np.ndarray,
    Y: np.ndarray,
    folds: Folds,
    *,
    random_state: int | None = 0,
    device: str | None = None,
    **options: Any,
) -> FittedEncoder:
    """Fit the registered encoder ``name`` on ``X``, ``Y`` with ``folds`` (and its ``options``), timed.

    ``random_state`` and ``device`` reach the encoders that take them (a ``device`` given to
    an encoder that has none is ignored only when it is None).
    """
    info = encoder_info(name)
    check_encoder_options(name, options)
    run = {"random_state": random_state} if info.accepts("random_state") else {}
    if info.accepts("device"):
        run["device"] = device
    elif device is not None:
        raise ValueError(f"device: encoder {name!r} runs on the CPU only, got device={device!r}")
    start = time.perf_counter()
    fitted = info.fit(X, Y, folds, **run, **options)
    fitted.fit_seconds = time.perf_counter() - start
    return fitted
