"""The fast permutation path of the ridge decoder: one decomposition per fold, all permutations at once.

The ridge decoder (``StandardScaler -> RidgeClassifier``) regresses ±1 one-hot targets
(one ±1 column for two classes) on the standardised features. Standardisation uses no
labels, so for each fold (every inner fold and the refit on all training rows) the
standardised training matrix ``A`` (n x p) and test matrix ``B`` are the same for every
permutation. With ``A`` decomposed once (eigendecomposition of ``A^T A`` when n >= p,
else of ``A A^T``), the predictions for *all* permutations' targets ``Y`` (n x m, one
block of columns per permutation) at a ridge strength ``alpha`` are one product::

    B W = (B V) diag(1 / (lambda + alpha)) (A V)^T (Y - mean(Y))  + mean(Y)      (n >= p)
    B W = (B A^T U) diag(1 / (lambda + alpha)) U^T (Y - mean(Y))  + mean(Y)      (n <  p)

which is what :class:`sklearn.linear_model.RidgeClassifier` solves (``A`` is centred,
so its intercept is the target mean). ``alpha`` is then chosen per permutation by the
same rule as :class:`~sklearn.model_selection.GridSearchCV`: the mean over inner folds
of the metric, the first of the best in grid order. The null values equal those of the
refit-per-permutation loop (up to ties of decision values at ~1e-12).

Supervised screening (``SelectKBest(f_classif)``) depends on the labels, so a decoder
with screening does not take this path: :func:`~scene2brain.decoding.decode` refits the
whole pipeline per permutation instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.preprocessing import StandardScaler

from scene2brain.decoding.metrics import batch_scores

Folds = Sequence[tuple[np.ndarray, np.ndarray]]


class FoldSolver:
    """The label-free part of a ridge fit on one fold: scaling and decomposition of the training rows.

    Parameters
    ----------
    X_train : ndarray (n, p)
        Training rows (standardised here with their own mean and standard deviation).
    X_test : ndarray (n_test, p)
        Rows to predict (standardised with the training rows' statistics).
    """

    def __init__(self, X_train: np.ndarray, X_test: np.ndarray) -> None:
        scaler = StandardScaler().fit(X_train)
        A = scaler.transform(X_train)
        B = scaler.transform(X_test)
        n, p = A.shape
        if n >= p:
            lam, V = np.linalg.eigh(A.T @ A)
            self.left = A @ V  # (n, p)
            self.test = B @ V  # (n_test, p)
        else:
            lam, U = np.linalg.eigh(A @ A.T)
            self.left = U  # (n, n)
            self.test = (B @ A.T) @ U  # (n_test, n)
        self.eigenvalues = np.clip(lam, 0.0, None)

    def decision(self, targets: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
        """Ridge predictions for every target column at every alpha: (n_alphas, n_test, m)."""
        mean = targets.mean(axis=0)
        projected = self.left.T @ (targets - mean)
        out = np.empty((len(alphas), self.test.shape[0], targets.shape[1]))
        for i, alpha in enumerate(alphas):
            out[i] = self.test @ (projected / (self.eigenvalues + alpha)[:, None]) + mean
        return out


def ridge_targets(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """±1 targets (n, n_perm * m) of class codes (n_perm, n): m = 1 for two classes, else ``n_classes``."""
    if n_classes == 2:
        return np.where(codes == 1, 1.0, -1.0).T
    onehot = np.where(codes[:, :, None] == np.arange(n_classes), 1.0, -1.0)  # (P, n, K)
    return onehot.transpose(1, 0, 2).reshape(codes.shape[1], -1)


def to_codes(decision: np.ndarray, n_perm: int, n_classes: int) -> np.ndarray:
    """Predicted codes (..., n_perm, n_test) from ridge predictions (..., n_test, n_perm * m)."""
    if n_classes == 2:
        return np.swapaxes((decision > 0).astype(np.int64), -1, -2)
    shaped = decision.reshape(*decision.shape[:-1], n_perm, n_classes)
    return np.swapaxes(shaped.argmax(axis=-1), -1, -2)


def ridge_permutation_predictions(
    X_train: np.ndarray,
    codes_train: np.ndarray,
    X_test: np.ndarray,
    n_classes: int,
    alphas: Sequence[float],
    inner_folds: Folds,
    metric: str,
    chunk_size: int = 250,
) -> tuple[np.ndarray, np.ndarray]:
    """Test-row predictions of the ridge decoder for many training label vectors at once.

    For each row of ``codes_train``: alpha chosen by the inner folds (mean metric over
    folds, the first best in grid order), refit on all training rows, prediction of
    ``X_test``.

    Parameters
    ----------
    X_train : ndarray (n, p)
    codes_train : ndarray of int, shape (n_perm, n)
        Class codes (0 .. n_classes - 1) of the training rows, one row per permutation.
    X_test : ndarray (n_test, p)
    n_classes : int
    alphas : sequence of float
        The grid; with one value there is no inner search.
    inner_folds : sequence of (train, test) index arrays into the training rows
    metric : {"accuracy", "balanced_accuracy"}
        The inner-CV criterion.
    chunk_size : int
        Permutations solved together (bounds memory).

    Returns
    -------
    codes_pred : ndarray of int, shape (n_perm, n_test)
    best_alpha : ndarray of shape (n_perm,)
    """
    alphas = [float(a) for a in alphas]
    n_perm = codes_train.shape[0]
    chunks = [slice(s, min(s + chunk_size, n_perm)) for s in range(0, n_perm, chunk_size)]
    best = np.zeros(n_perm, dtype=np.int64)
    if len(alphas) > 1:
        cv = np.empty((len(alphas), n_perm, len(inner_folds)))
        for f, (tr, te) in enumerate(inner_folds):
            solver = FoldSolver(X_train[tr], X_train[te])
            for chunk in chunks:
                codes = codes_train[chunk]
                n_c = codes.shape[0]
                pred = to_codes(solver.decision(ridge_targets(codes[:, tr], n_classes), alphas), n_c, n_classes)
                for a in range(len(alphas)):
                    cv[a, chunk, f] = batch_scores(metric, codes[:, te], pred[a], n_classes)
        means = np.average(cv, axis=2)  # as GridSearchCV: mean over folds, (n_alphas, n_perm)
        best = np.argmax(means, axis=0)  # the first of the best in grid order
    solver = FoldSolver(X_train, X_test)
    out = np.empty((n_perm, X_test.shape[0]), dtype=np.int64)
    for a, alpha in enumerate(alphas):  # the refit: each permutation at its own alpha only
        chosen = np.flatnonzero(best == a)
        for start in range(0, len(chosen), chunk_size):
            rows = chosen[start : start + chunk_size]
            decision = solver.decision(ridge_targets(codes_train[rows], n_classes), [alpha])
            out[rows] = to_codes(decision, len(rows), n_classes)[0]
    return out, np.asarray(alphas)[best]
