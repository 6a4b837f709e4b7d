"""The decoder registry: every classifier a decoding analysis can fit, by name.

A decoder is a scikit-learn :class:`~sklearn.pipeline.Pipeline`::

    scale (StandardScaler, fitted on the training rows)
      -> screen (optional SelectKBest(f_classif, k), fitted on the training rows)
      -> clf (the classifier)

so that everything learned from data, the screening included, is refitted inside each
training fold by whoever fits the pipeline. Each :class:`DecoderEntry` of
:data:`DECODERS` holds the factory of the classifier, its options with their defaults
and its hyperparameter grid (searched by grouped inner cross-validation in
:func:`~scene2brain.decoding.decode`). Passing a grid parameter as a scalar option fixes
it (no search); passing it as a list replaces the grid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from scene2brain.decoding.mlp import MLPDecoder

CLF = "clf"  # name of the classifier step in every decoder pipeline


@dataclass(frozen=True)
class DecoderEntry:
    """One registered decoder.

    Attributes
    ----------
    name : str
    factory : callable
        ``factory(seed, **options) -> classifier`` (options with their defaults filled in).
    options : dict
        Every option the classifier takes, with its default (grid parameters included:
        their default is used by :func:`make_decoder` when no grid search runs).
    grid : dict
        Hyperparameter name -> candidate values searched by inner cross-validation.
    doc : str
        One line for listings and configuration errors.
    accepts_groups : bool
        Whether the classifier's ``fit`` takes ``groups`` (for its own validation split).
    """

    name: str
    factory: Callable[..., BaseEstimator]
    options: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    doc: str = ""
    accepts_groups: bool = False


def _logistic(seed: int, C: float, max_iter: int, tol: float, class_weight: str | None) -> BaseEstimator:
    # lbfgs fits the multinomial (softmax) model whenever there are more than two classes
    return LogisticRegression(C=C, max_iter=max_iter, tol=tol, class_weight=class_weight, random_state=seed)


def _svm(seed: int, C: float, max_iter: int, tol: float, class_weight: str | None) -> BaseEstimator:
    return LinearSVC(C=C, max_iter=max_iter, tol=tol, class_weight=class_weight, random_state=seed)


def _ridge(seed: int, alpha: float) -> BaseEstimator:
    # least squares on +-1 one-hot targets (one +-1 column for two classes), intercept fitted
    return RidgeClassifier(alpha=alpha)


def _mlp(seed: int, **options: Any) -> BaseEstimator:
    return MLPDecoder(random_state=seed, **options)


DECODERS: dict[str, DecoderEntry] = {
    "logistic": DecoderEntry(
        "logistic",
        _logistic,
        {"C": 1.0, "max_iter": 1000, "tol": 1e-4, "class_weight": None},
        {"C": [float(c) for c in 10.0 ** np.arange(-5, 2)]},
        "multinomial logistic regression (L2, lbfgs); C chosen by grouped inner CV",
    ),
    "svm": DecoderEntry(
        "svm",
        _svm,
        {"C": 1.0, "max_iter": 5000, "tol": 1e-4, "class_weight": None},
        {"C": [float(c) for c in 10.0 ** np.arange(-6, 1)]},
        "linear support vector machine (one-vs-rest LinearSVC); C chosen by grouped inner CV",
    ),
    "ridge": DecoderEntry(
        "ridge",
        _ridge,
        {"alpha": 1.0},
        {"alpha": [float(a) for a in 10.0 ** np.arange(-1, 7)]},
        "ridge classifier (least squares on +-1 one-hot targets); alpha chosen by grouped inner CV; "
        "exact fast permutation path",
    ),
    "mlp": DecoderEntry(
        "mlp",
        _mlp,
        {
            "hidden_layers": (512, 512, 100),
            "dropout": 0.6,
            "batch_norm": True,
            "balance": "sampler",
            "lr": 0.01,
            "weight_decay": 0.0,
            "batch_size": 128,
            "max_epochs": 100,
            "patience": 10,
            "validation_fraction": 0.1,
            "device": "cpu",
        },
        {},
        "torch multilayer perceptron (the decoding-thoughts architecture), early stopping on a grouped "
        "validation part of the training rows",
        accepts_groups=True,
    ),
}


def decoder_entry(name: str) -> DecoderEntry:
    """The registered entry of ``name``; ValueError naming the valid choices otherwise."""
    if name not in DECODERS:
        raise ValueError(f"decoder: unknown {name!r}; valid choices: {sorted(DECODERS)}")
    return DECODERS[name]


def _is_grid(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def resolve_options(
    name: str, options: Mapping[str, Any] | None = None
) -> tuple[DecoderEntry, dict[str, Any], dict[str, list[Any]]]:
    """Split a decoder's options into fixed values and the grid to search.

    Parameters
    ----------
    name : str
        A key of :data:`DECODERS`.
    options : mapping, optional
        Option name -> value. A grid parameter given a list (or tuple, array) replaces
        the default grid; given a scalar it is fixed. A grid left with one candidate is
        fixed too.

    Returns
    -------
    entry : DecoderEntry
    fixed : dict
        Every option's value (grid parameters at their default when searched).
    grid : dict
        Parameter -> candidates (two or more) to search.

    Raises
    ------
    ValueError
        An unknown decoder or option (the message names the valid choices) or an empty grid.
    """
    entry = decoder_entry(name)
    options = dict(options or {})
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        raise ValueError(f"decoder {name!r}: unknown option(s) {unknown}; valid options: {sorted(entry.options)}")
    fixed = {**entry.options}
    grid = {k: list(v) for k, v in entry.grid.items()}
    for key, value in options.items():
        if key in entry.grid and _is_grid(value):
            if len(value) == 0:
                raise ValueError(f"decoder {name!r}: option {key!r} has an empty grid")
            grid[key] = list(value)
        else:
            grid.pop(key, None)
            fixed[key] = value
    for key in [k for k, v in grid.items() if len(v) == 1]:
        fixed[key] = grid.pop(key)[0]
    return entry, fixed, grid


def build_pipeline(entry: DecoderEntry, fixed: Mapping[str, Any], seed: int, screening: int | None) -> Pipeline:
    """``StandardScaler -> [SelectKBest(f_classif, screening)] -> classifier`` with options ``fixed``."""
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if screening is not None:
        if int(screening) < 1:
            raise ValueError(f"screening: expected a positive number of features, got {screening}")
        steps.append(("screen", SelectKBest(f_classif, k=int(screening))))
    steps.append((CLF, entry.factory(seed, **fixed)))
    return Pipeline(steps)


def make_decoder(name: str, seed: int = 0, **options: Any) -> Pipeline:
    """A decoder pipeline with fixed hyperparameters (no search).

    Parameters
    ----------
    name : str
        A key of :data:`DECODERS`: ``"logistic"``, ``"svm"``, ``"ridge"``, ``"mlp"``.
    seed : int
        Seed of the classifier (solver randomness, MLP initialisation and sampling).
    **options
        ``screening`` (int or None): keep the ``screening`` features with the largest
        ANOVA F (:class:`~sklearn.feature_selection.SelectKBest` with ``f_classif``),
        fitted on the training rows. Every other option is the decoder's (see
        ``DECODERS[name].options``); grid parameters (``C``, ``alpha``) take their
        default when not given and must be scalars here.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``scale``, optionally ``screen``, and ``clf``.

    Raises
    ------
    ValueError
        An unknown decoder or option, naming the valid choices; a list given to a grid parameter.

    Examples
    --------
    >>> make_decoder("ridge", alpha=10.0).named_steps["clf"].alpha
    10.0
    """
    screening = options.pop("screening", None)
    entry, fixed, _ = resolve_options(name, {k: v for k, v in options.items() if not _grid_value(name, k, v)})
    grids = sorted(k for k, v in options.items() if _grid_value(name, k, v))
    if grids:
        raise ValueError(f"make_decoder: {grids} must be single values (grids are searched by decode)")
    return build_pipeline(entry, fixed, seed, screening)


def _grid_value(name: str, key: str, value: Any) -> bool:
    return key in decoder_entry(name).grid and _is_grid(value)
