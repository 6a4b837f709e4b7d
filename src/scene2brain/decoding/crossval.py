"""Decoding with grouped (nested) cross-validation and permutation tests of the whole pipeline.

:func:`decode` fits on training rows and scores on test rows; :func:`cross_validate_decoding`
scores out-of-fold predictions of one set. Both choose hyperparameters by grouped
K-fold cross-validation on training rows only
(:class:`~sklearn.model_selection.GroupKFold` with ``shuffle=True, random_state=seed``;
the folds depend on the groups and the seed, never on the labels, so every permutation
sees the same folds) and refit on all training rows. Scaling and screening are steps of
the pipeline, so they are refitted inside every fold. ``X`` is converted to float64.

A permutation test repeats everything that sees the labels, inner search included, on
labels permuted by :func:`~scene2brain.decoding.permute_labels` (same ``seed``, so the
same permutations for every ROI or feature space decoded with the same labels and
groups). The ``"ridge"`` decoder without screening takes the exact fast path of
:mod:`scene2brain.decoding.ridge_null`; the others refit per permutation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV, GroupKFold

from scene2brain.decoding.decoders import CLF, DecoderEntry, build_pipeline, resolve_options
from scene2brain.decoding.metrics import batch_scores, check_metric, decoding_metrics
from scene2brain.decoding.permutation import permutation_p_value, permute_labels
from scene2brain.decoding.ridge_null import FoldSolver, ridge_permutation_predictions, ridge_targets
from scene2brain.utils.docs import doc_filler

DOCS = {
    "groups": (
        "groups : array-like of shape (n_samples,), optional\n"
        "    Rows that must stay together in a fold (repeats of a stimulus, crops of one\n"
        "    photograph) and in a permutation unit; default each row its own group."
    ),
    "decoder": (
        "decoder : str\n"
        "    A key of :data:`~scene2brain.decoding.DECODERS`: ``logistic`` (default), ``svm``,\n"
        "    ``ridge``, ``mlp``."
    ),
    "options": (
        "options : mapping, optional\n"
        "    The decoder's options; a grid parameter (``C``, ``alpha``) given a list replaces\n"
        "    its grid, given a scalar is fixed (no inner search)."
    ),
    "screening": (
        "screening : int, optional\n"
        "    Keep the ``screening`` features of largest ANOVA F, chosen on the training rows\n"
        "    of each fit (the ridge fast permutation path is then not used)."
    ),
    "n_permutations": (
        "n_permutations : int\n"
        "    Permutations of the training labels (0: no test). Each refits the whole\n"
        "    pipeline, inner search included."
    ),
    "metric": (
        'metric : {"balanced_accuracy", "accuracy"}\n'
        "    The score of the inner search, of the permutation test and of ``p_value``."
    ),
    "seed": (
        "seed : int\n"
        "    Seeds the folds, the permutations and the classifier; the same seed gives the\n"
        "    same folds and permutations for the same groups."
    ),
    "fast_path": (
        "fast_path : bool\n"
        "    Use the exact fast permutation path of the ridge decoder where it applies\n"
        "    (False: refit per permutation, for checks)."
    ),
    "n_jobs": "n_jobs : int\n    Parallel refits of the generic permutation path (joblib).",
}
fill_doc = doc_filler(DOCS)


@dataclass
class DecodingResult:
    """Held-out performance of a decoder, with its permutation test.

    Attributes
    ----------
    decoder : str
    classes : list of str
        Class labels in the order of ``confusion`` and ``recall``.
    accuracy, balanced_accuracy : float
    chance : float
        ``1 / K``.
    majority : float
        Rate of the most frequent class among the evaluated labels.
    recall : dict of str to float
    confusion : ndarray (K, K) of int
        Rows true, columns predicted.
    auc : float
        ROC AUC with two classes, else NaN.
    metric : str
        The statistic tested (``accuracy`` or ``balanced_accuracy``).
    p_value : float
        ``(1 + #{null >= observed}) / (1 + n_permutations)``; NaN without permutations.
    null : ndarray (n_permutations,)
        The metric under each permutation (the same permutations for the same labels,
        groups and seed).
    predictions : ndarray (n_test,)
        Predicted labels of the evaluated rows (out-of-fold for cross-validation).
    hyperparameters : dict
        Chosen values (:func:`decode`) or lists of per-outer-fold values
        (:func:`cross_validate_decoding`).
    n_train, n_test : int
        Training rows of the (final) fit and evaluated rows.
    fold_accuracies, fold_scores : ndarray
        Cross-validation only: accuracy and metric of each outer fold (empty otherwise).
    scores : ndarray or None
        Two classes: the score of the second class used for the AUC.
    """

    decoder: str
    classes: list[str]
    accuracy: float
    balanced_accuracy: float
    chance: float
    majority: float
    recall: dict[str, float]
    confusion: np.ndarray
    auc: float
    metric: str
    p_value: float
    null: np.ndarray
    predictions: np.ndarray
    hyperparameters: dict[str, Any]
    n_train: int
    n_test: int
    fold_accuracies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fold_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scores: np.ndarray | None = None

    @property
    def score(self) -> float:
        """The value of :attr:`metric`."""
        return float(getattr(self, self.metric))

    def to_row(self) -> dict[str, Any]:
        """A flat table row: the summary numbers, ``recall[<class>]`` and the hyperparameters.

        Examples
        --------
        >>> import numpy as np
        >>> r = decode(np.eye(6), [0, 1] * 3, np.eye(6), [0, 1] * 3, decoder="ridge", options={"alpha": 1.0})
        >>> sorted(r.to_row())[:4]
        ['accuracy', 'auc', 'balanced_accuracy', 'chance']
        """
        row: dict[str, Any] = {
            "decoder": self.decoder,
            "metric": self.metric,
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "chance": self.chance,
            "majority": self.majority,
            "auc": self.auc,
            "p_value": self.p_value,
            "n_permutations": len(self.null),
            "n_train": self.n_train,
            "n_test": self.n_test,
        }
        row.update({f"recall[{c}]": v for c, v in self.recall.items()})
        row.update({f"param[{k}]": v if np.isscalar(v) else str(v) for k, v in self.hyperparameters.items()})
        return row


@dataclass(frozen=True)
class _Spec:
    """Everything that defines one fit, except the data."""

    entry: DecoderEntry
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    screening: int | None
    n_folds: int
    metric: str
    seed: int

    def folds(self, groups: np.ndarray) -> GroupKFold:
        _check_n_groups(groups, self.n_folds)
        return GroupKFold(n_splits=self.n_folds, shuffle=True, random_state=self.seed)


def _check_n_groups(groups: np.ndarray, n_folds: int) -> None:
    n_groups = len(np.unique(groups))
    if n_folds < 2 or n_folds > n_groups:
        raise ValueError(f"n_folds: expected 2 .. {n_groups} (the number of groups), got {n_folds}")


def _second_class_scores(estimator: Any, X: np.ndarray, n_classes: int) -> np.ndarray | None:
    if n_classes != 2:
        return None
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(X))[:, 1]
    return np.asarray(estimator.decision_function(X), dtype=np.float64).ravel()


def _fit_predict(
    spec: _Spec, X_train: np.ndarray, y_train: np.ndarray, groups: np.ndarray, X_test: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Search (grouped inner CV), refit on all training rows, predict the test rows."""
    present = np.unique(y_train)
    if len(present) < 2:  # a training part (of a permutation) with one class: a classifier predicts that class
        return np.full(len(X_test), present[0]), (np.zeros(len(X_test)) if n_classes == 2 else None), {}
    pipeline = build_pipeline(spec.entry, spec.fixed, spec.seed, spec.screening)
    fit_params = {f"{CLF}__groups": groups} if spec.entry.accepts_groups else {}
    if spec.grid:
        search = GridSearchCV(
            pipeline,
            {f"{CLF}__{k}": v for k, v in spec.grid.items()},
            scoring=spec.metric,
            cv=spec.folds(groups),
            refit=True,
            error_score=np.nan,  # an inner training fold with one class scores NaN (ranked last), not an error
        )
        with warnings.catch_warnings():
            # a small inner fold of permuted labels may lack a class (or hold one only):
            # sklearn then averages the recall over the classes present and warns; expected
            # here, so not shown
            warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
            warnings.filterwarnings("ignore", message="A single label was found")
            warnings.filterwarnings("ignore", category=FitFailedWarning)
            warnings.filterwarnings("ignore", message="One or more of the test scores are non-finite")
            search.fit(X_train, y_train, groups=groups, **fit_params)
        fitted: Any = search
        chosen = {k.removeprefix(f"{CLF}__"): v for k, v in search.best_params_.items()}
    else:
        fitted = pipeline.fit(X_train, y_train, **fit_params)
        chosen = {}
    params = {**{k: spec.fixed[k] for k in spec.entry.grid if k in spec.fixed}, **chosen}
    return fitted.predict(X_test), _second_class_scores(fitted, X_test, n_classes), params


def _fast_ridge(spec: _Spec) -> bool:
    return spec.entry.name == "ridge" and spec.screening is None


def _fit_predict_ridge(
    spec: _Spec, X_train: np.ndarray, codes: np.ndarray, groups: np.ndarray, X_test: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any], np.ndarray]:
    """:func:`_fit_predict` of the ridge decoder through its fast path, for label vectors ``codes``.

    ``codes`` (n_vectors, n) holds the true labels' class codes first (then, e.g., the
    permutations'); returns the first vector's predictions, scores and chosen alpha, and
    every vector's predicted codes.
    """
    k = len(classes)
    pred, best = ridge_permutation_predictions(
        X_train, codes, X_test, k, _ridge_alphas(spec), _inner_folds(spec, groups), spec.metric
    )
    scores = None
    if k == 2:
        scores = FoldSolver(X_train, X_test).decision(ridge_targets(codes[:1], k), [float(best[0])])[0][:, 0]
    return classes[pred[0]], scores, {"alpha": float(best[0])}, pred


def _ridge_alphas(spec: _Spec) -> list[float]:
    return list(spec.grid["alpha"]) if "alpha" in spec.grid else [float(spec.fixed["alpha"])]


def _inner_folds(spec: _Spec, groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    if not spec.grid:
        return []
    return list(spec.folds(groups).split(np.zeros((len(groups), 1)), groups=groups))


def _as_float(X: Any, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        raise ValueError(
            f"{name}: {int(bad.sum())} NaN or infinite values in {int(bad.any(axis=0).sum())} of {X.shape[1]} "
            "columns; decoders need finite values (leave those voxels out or impute them on the training rows)"
        )
    return X


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name}: expected {n} labels, got shape {y.shape}")
    return y


def _groups(groups: Any, n: int) -> np.ndarray:
    if groups is None:
        return np.arange(n)
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups: expected {n} entries, got shape {groups.shape}")
    return groups


def _codes(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    codes = np.searchsorted(classes, y)
    codes = np.clip(codes, 0, len(classes) - 1)
    if not np.array_equal(classes[codes], y):
        unknown = sorted({str(v) for v in np.setdiff1d(y, classes).tolist()})
        raise ValueError(f"labels {unknown} do not occur in the training labels {classes.tolist()}")
    return codes


def _spec(
    decoder: str,
    options: Mapping[str, Any] | None,
    screening: int | None,
    n_folds: int,
    metric: str,
    seed: int,
) -> _Spec:
    entry, fixed, grid = resolve_options(decoder, options)
    return _Spec(entry, fixed, grid, screening, n_folds, check_metric(metric), seed)


def _result(
    spec: _Spec,
    classes: np.ndarray,
    y_eval: np.ndarray,
    predictions: np.ndarray,
    scores: np.ndarray | None,
    null: np.ndarray,
    hyperparameters: dict[str, Any],
    n_train: int,
    **extra: Any,
) -> DecodingResult:
    m = decoding_metrics(y_eval, predictions, scores, classes)
    result = DecodingResult(
        decoder=spec.entry.name,
        classes=m["classes"],
        accuracy=m["accuracy"],
        balanced_accuracy=m["balanced_accuracy"],
        chance=m["chance"],
        majority=m["majority"],
        recall=m["recall"],
        confusion=m["confusion"],
        auc=m["auc"],
        metric=spec.metric,
        p_value=float("nan"),
        null=np.asarray(null, dtype=np.float64),
        predictions=predictions,
        hyperparameters=hyperparameters,
        n_train=n_train,
        n_test=len(y_eval),
        scores=scores,
        **extra,
    )
    result.p_value = permutation_p_value(result.score, result.null)
    return result


def _map(fn: Callable[[np.ndarray], float], perms: np.ndarray, n_jobs: int) -> np.ndarray:
    if n_jobs == 1:
        return np.array([fn(p) for p in perms], dtype=np.float64)
    return np.array(Parallel(n_jobs=n_jobs)(delayed(fn)(p) for p in perms), dtype=np.float64)


@fill_doc
def decode(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    decoder: str = "logistic",
    options: Mapping[str, Any] | None = None,
    n_folds: int = 5,
    screening: int | None = None,
    n_permutations: int = 0,
    metric: str = "balanced_accuracy",
    seed: int = 0,
    fast_path: bool = True,
    n_jobs: int = 1,
) -> DecodingResult:
    """Fit a decoder on training rows (inner grouped CV for its hyperparameters) and score it on test rows.

    Parameters
    ----------
    X_train : ndarray (n_train, n_features)
    y_train : array-like (n_train,)
    X_test : ndarray (n_test, n_features)
    y_test : array-like (n_test,)
        Labels among those of ``y_train``.
    %(groups)s
        Of the training rows.
    %(decoder)s
    %(options)s
    n_folds : int
        Folds of the inner hyperparameter search (grouped).
    %(screening)s
    %(n_permutations)s
        The permuted models are scored on the true test labels.
    %(metric)s
    %(seed)s
    %(fast_path)s
    %(n_jobs)s

    Returns
    -------
    DecodingResult
    """
    X_train, X_test = _as_float(X_train, "X_train"), _as_float(X_test, "X_test")
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"X_train, X_test: different numbers of features ({X_train.shape[1]}, {X_test.shape[1]})")
    y_train, y_test = _labels(y_train, len(X_train), "y_train"), _labels(y_test, len(X_test), "y_test")
    groups = _groups(groups, len(X_train))
    spec = _spec(decoder, options, screening, n_folds, metric, seed)
    classes = np.unique(y_train)
    codes_test = _codes(y_test, classes)
    k = len(classes)
    if k < 2:
        raise ValueError("y_train: expected at least two classes")
    if n_permutations < 0:
        raise ValueError(f"n_permutations: expected a non-negative integer, got {n_permutations}")
    perms = permute_labels(y_train, groups, n_permutations, seed) if n_permutations > 0 else None
    null = np.zeros(0)
    if fast_path and _fast_ridge(spec):
        # the true labels and every permutation through one decomposition per fold
        codes = _codes(y_train, classes)[None]
        if perms is not None:
            codes = np.vstack([codes, _codes(perms.ravel(), classes).reshape(perms.shape)])
        predictions, scores, params, pred = _fit_predict_ridge(spec, X_train, codes, groups, X_test, classes)
        if perms is not None:
            null = batch_scores(spec.metric, codes_test, pred[1:], k)
    else:
        predictions, scores, params = _fit_predict(spec, X_train, y_train, groups, X_test, k)
        if perms is not None:

            def one(y_perm: np.ndarray) -> float:
                pred = _fit_predict(spec, X_train, y_perm, groups, X_test, k)[0]
                return float(batch_scores(spec.metric, codes_test, _codes(pred, classes)[None], k)[0])

            null = _map(one, perms, n_jobs)
    return _result(spec, classes, y_test, predictions, scores, null, params, len(X_train))


@fill_doc
def cross_validate_decoding(
    X: np.ndarray,
    y: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    decoder: str = "logistic",
    options: Mapping[str, Any] | None = None,
    n_folds: int = 5,
    n_inner_folds: int = 5,
    screening: int | None = None,
    n_permutations: int = 0,
    metric: str = "balanced_accuracy",
    seed: int = 0,
    fast_path: bool = True,
    n_jobs: int = 1,
    X_eval: np.ndarray | None = None,
) -> DecodingResult:
    """Nested grouped cross-validation of a decoder on one set of rows.

    Outer folds: ``GroupKFold(n_folds, shuffle=True, random_state=seed)`` over ``groups``.
    In each outer training part the hyperparameters are chosen by
    ``GroupKFold(n_inner_folds, shuffle=True, random_state=seed)`` over its groups, the
    decoder refitted on the whole part and the outer test part predicted. The metrics
    are those of the pooled out-of-fold predictions; ``fold_accuracies`` and
    ``fold_scores`` hold each outer fold's.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
    y : array-like (n_samples,)
    %(groups)s
    %(decoder)s
    %(options)s
    n_folds : int
        Outer folds.
    n_inner_folds : int
        Folds of the inner search in each outer training part.
    %(screening)s
    %(n_permutations)s
        All labels are permuted and the whole nested procedure rerun; the pooled
        out-of-fold metric against the permuted labels is the null value.
    %(metric)s
    %(seed)s
    %(fast_path)s
    %(n_jobs)s
    X_eval : ndarray (n_samples, n_eval_features), optional
        Another measurement of the same rows, scored in each outer test part instead of
        ``X`` (the decoder is trained on ``X``): e.g. an encoder's predicted responses,
        decoded by a decoder trained on measured responses of the other rows. Same
        columns as ``X``.

    Returns
    -------
    DecodingResult
        ``n_train`` is the mean number of training rows of the outer folds (rounded).
    """
    X = _as_float(X, "X")
    X_eval = X if X_eval is None else _as_float(X_eval, "X_eval")
    if X_eval.shape != X.shape:
        raise ValueError(f"X_eval: expected the shape of X {X.shape}, got {X_eval.shape}")
    y = _labels(y, len(X), "y")
    groups = _groups(groups, len(X))
    spec = _spec(decoder, options, screening, n_inner_folds, metric, seed)
    _check_n_groups(groups, n_folds)
    outer = list(GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(X, groups=groups))
    classes = np.unique(y)
    k = len(classes)
    if k < 2:
        raise ValueError("y: expected at least two classes")

    def nested(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, list[dict[str, Any]]]:
        pred = np.empty(len(y), dtype=labels.dtype)
        scores = np.zeros(len(y)) if k == 2 else None
        params = []
        for tr, te in outer:
            if fast_path and _fast_ridge(spec):
                p, s, chosen, _ = _fit_predict_ridge(
                    spec, X[tr], _codes(labels[tr], classes)[None], groups[tr], X_eval[te], classes
                )
            else:
                p, s, chosen = _fit_predict(spec, X[tr], labels[tr], groups[tr], X_eval[te], k)
            pred[te] = p
            if scores is not None and s is not None:
                scores[te] = s
            params.append(chosen)
        return pred, scores, params

    predictions, scores, params = nested(y)
    codes = _codes(y, classes)
    fold_acc = np.array([np.mean(predictions[te] == y[te]) for _, te in outer])
    pred_codes = _codes(predictions, classes)
    fold_scores = np.array([batch_scores(spec.metric, codes[te], pred_codes[None, te], k)[0] for _, te in outer])
    hyper = {key: [p[key] for p in params] for key in (params[0] if params else {})}

    null = np.zeros(0)
    if n_permutations > 0:
        perms = permute_labels(y, groups, n_permutations, seed)
        perm_codes = _codes(perms.ravel(), classes).reshape(perms.shape)
        if fast_path and _fast_ridge(spec):
            pooled = np.empty_like(perm_codes)
            for tr, te in outer:
                pooled[:, te], _ = ridge_permutation_predictions(
                    X[tr],
                    perm_codes[:, tr],
                    X_eval[te],
                    k,
                    _ridge_alphas(spec),
                    _inner_folds(spec, groups[tr]),
                    spec.metric,
                )
            null = batch_scores(spec.metric, perm_codes, pooled, k)
        else:

            def one(i: int) -> float:
                pred = nested(perms[i])[0]
                return float(batch_scores(spec.metric, perm_codes[i], _codes(pred, classes)[None], k)[0])

            null = _map(one, np.arange(n_permutations), n_jobs)
    n_train = round(float(np.mean([len(tr) for tr, _ in outer])))
    return _result(
        spec, classes, y, predictions, scores, null, hyper, n_train, fold_accuracies=fold_acc, fold_scores=fold_scores
    )
