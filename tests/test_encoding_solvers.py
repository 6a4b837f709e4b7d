"""Ridge and banded ridge through every solver form and backend, against independent references.

The references never call scene2brain: scikit-learn ``Ridge`` refitted per fold, alpha
and band weighting (on explicitly scaled features), and the penalised normal equations
with one penalty per band for the refit. Each case also checks which form of the
driver ran (primal statistics, per-fold dual kernels, leave-group-out from one
decomposition, or exact leave-one-out), so that the matrix really covers them all.
"""

import numpy as np
import pytest
import torch
from scipy import linalg
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, LeaveOneOut

from scene2brain.encoding import _solver as sv
from scene2brain.encoding import banded_ridge_cv, ridge_cv

BACKENDS = [
    pytest.param(("numpy", None), id="numpy"),
    pytest.param(("torch", "cpu"), id="torch-cpu"),
    pytest.param(
        ("torch", "cuda"),
        id="torch-cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]
# form -> (n_features, folds): K-fold splits are shuffled KFold(n_splits) of 40 samples
FORMS = {
    "primal": (9, 4),
    "dual": (60, 2),  # 2 folds of 20: per-fold kernel decompositions are cheaper
    "group_out": (60, 5),  # 5 folds of 8: one decomposition of all samples, leave-group-out
    "loo": (9, "loo"),
    "loo_dual": (60, "loo"),
}
SOLVER_CALLS = {  # the _solver function that only each form calls
    "primal": "primal_stats",
    "dual": "dual_targets",
    "group_out": "group_out_scores",
    "loo": "loo_scores",
    "loo_dual": "loo_scores",
}
ALPHAS = np.logspace(-2, 3, 6)
GAMMAS = np.array([[0.5, 0.5], [0.9, 0.1], [0.15, 0.85], [0.99, 0.01]])


def _data(p, v=5, n=40, seed=0):
    """Two bands (the first ``p // 3`` columns, the rest) of different scale; the first ``v // 2``
    targets are driven by band "a" only, the others by band "b" only, with growing signal."""
    rng = np.random.default_rng(seed + p)
    X = rng.standard_normal((n, p)) * np.logspace(0, -1, p) + 2.0
    X[:, p // 3 :] *= 3.0
    bands = np.where(np.arange(p) < p // 3, "a", "b")
    W = rng.standard_normal((p, v)) * np.linspace(0.3, 1, v)
    W[(bands == "b")[:, None] & (np.arange(v) < v // 2)[None, :]] = 0.0
    W[(bands == "a")[:, None] & (np.arange(v) >= v // 2)[None, :]] = 0.0
    Y = X @ W + rng.standard_normal((n, v)) + 1.0
    return X, Y, bands


def _folds(n_splits, n=40):
    return "loo" if n_splits == "loo" else list(KFold(n_splits, shuffle=True, random_state=0).split(np.zeros(n)))


def _scores(y, pred, scoring):
    if scoring == "r2":
        return r2_score(y, pred, multioutput="raw_values")
    a, b = y - y.mean(0), pred - pred.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def _reference_scores(X, Y, alphas, folds, fit_intercept, scoring):
    """Mean held-out score (n_alphas, n_targets) from scikit-learn refits on every split."""
    scores = np.zeros((len(alphas), Y.shape[1]))
    for k, alpha in enumerate(alphas):
        if folds == "loo":
            pred = np.empty_like(Y)
            for train, test in LeaveOneOut().split(X):
                pred[test] = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X[train], Y[train]).predict(X[test])
            scores[k] = _scores(Y, pred, scoring)
            continue
        for train, test in folds:
            model = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X[train], Y[train])
            scores[k] += _scores(Y[test], model.predict(X[test]), scoring) / len(folds)
    return scores


def _normal_equations(X, Y, penalties, fit_intercept):
    """Coefficients (p, v) and intercepts of ridge with a per-feature, per-target penalty (p, v)."""
    Xc, Yc = (X - X.mean(0), Y - Y.mean(0)) if fit_intercept else (X, Y)
    coef = np.column_stack(
        [linalg.solve(Xc.T @ Xc + np.diag(penalties[:, j]), Xc.T @ Yc[:, j]) for j in range(Y.shape[1])]
    )
    intercept = Y.mean(0) - X.mean(0) @ coef if fit_intercept else np.zeros(Y.shape[1])
    return coef, intercept


@pytest.fixture
def calls(monkeypatch):
    """Names of the solver-form functions called during the test."""
    seen = set()
    for name in set(SOLVER_CALLS.values()):
        original = getattr(sv, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            seen.add(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(sv, name, spy)
    return seen


def _every_backend_form_and_option(test):
    for name, values in (("fit_intercept", [True, False]), ("scoring", ["r2", "correlation"]),
                         ("form", list(FORMS)), ("backend", BACKENDS)):  # fmt: skip
        test = pytest.mark.parametrize(name, values)(test)
    return test


def _backend_kwargs(backend):
    name, device = backend
    return {"backend": name, "device": device}


@_every_backend_form_and_option
def test_ridge_matches_scikit_learn_refits(backend, form, scoring, fit_intercept, calls):
    p, n_splits = FORMS[form]
    X, Y, _ = _data(p)
    folds = _folds(n_splits)
    res = ridge_cv(X, Y, ALPHAS, folds, fit_intercept=fit_intercept, scoring=scoring, **_backend_kwargs(backend))
    assert SOLVER_CALLS[form] in calls and len(calls) == 1
    assert res.solver == ("dual" if p > 30 else "primal")
    expected = _reference_scores(X, Y, ALPHAS, folds, fit_intercept, scoring)
    np.testing.assert_allclose(res.cv_scores, expected, rtol=1e-7, atol=1e-9)
    best = ALPHAS[len(ALPHAS) - 1 - np.argmax(expected[::-1], axis=0)]
    np.testing.assert_array_equal(res.best_alphas, best)
    coef, intercept = _normal_equations(X, Y, np.broadcast_to(best, (p, len(best))), fit_intercept)
    np.testing.assert_allclose(res.coef, coef, rtol=1e-7, atol=1e-9 * np.abs(coef).max())
    np.testing.assert_allclose(res.intercept, intercept, rtol=1e-7, atol=1e-9)


@_every_backend_form_and_option
def test_banded_matches_scikit_learn_refits_per_weighting(backend, form, scoring, fit_intercept, calls):
    p, n_splits = FORMS[form]
    X, Y, bands = _data(p)
    folds = _folds(n_splits)
    res = banded_ridge_cv(X, Y, bands, ALPHAS, folds, gammas=GAMMAS, fit_intercept=fit_intercept, scoring=scoring,
                          **_backend_kwargs(backend))  # fmt: skip
    assert SOLVER_CALLS[form] in calls and len(calls) == 1
    # reference: plain ridge on sqrt(gamma)-scaled bands; alpha_band = alpha / gamma_band
    per_gamma = np.stack([
        _reference_scores(X * np.sqrt(np.where(bands == "a", g[0], g[1])), Y, ALPHAS, folds, fit_intercept, scoring)
        for g in GAMMAS
    ])  # fmt: skip
    best_alpha = per_gamma.shape[1] - 1 - np.argmax(per_gamma[:, ::-1], axis=1)  # (n_gammas, n_targets)
    best_score = per_gamma.max(axis=1)
    g_best = np.zeros(Y.shape[1], dtype=int)
    for g in range(1, len(GAMMAS)):  # a later weighting must be strictly better
        g_best = np.where(best_score[g] > best_score[g_best, np.arange(Y.shape[1])] + 1e-12, g, g_best)
    targets = np.arange(Y.shape[1])
    assert len(np.unique(g_best)) > 1  # the refit groups targets by weighting
    np.testing.assert_allclose(res.cv_scores, best_score[g_best, targets], rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(res.band_weights, GAMMAS[g_best].T)
    np.testing.assert_array_equal(res.alphas, ALPHAS[best_alpha[g_best, targets]])
    np.testing.assert_allclose(res.band_alphas, res.alphas / GAMMAS[g_best].T, rtol=1e-15)
    penalties = np.where((bands == "a")[:, None], res.band_alphas[0], res.band_alphas[1])
    coef, intercept = _normal_equations(X, Y, penalties, fit_intercept)
    np.testing.assert_allclose(res.coef, coef, rtol=1e-7, atol=1e-9 * np.abs(coef).max())
    np.testing.assert_allclose(res.intercept, intercept, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_banded_torch_backend_matches_numpy(form, dtype):
    p, n_splits = FORMS[form]
    X, Y, bands = _data(p, v=12, seed=3)
    Y = Y.astype(dtype)
    kwargs = {"folds": _folds(n_splits), "n_iter": 6, "scoring": "correlation"}
    ref = banded_ridge_cv(X, Y, bands, ALPHAS, **kwargs)
    out = banded_ridge_cv(X, Y, bands, ALPHAS, backend="torch", device="cpu", **kwargs)
    tol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(out.cv_scores, ref.cv_scores, atol=tol)
    same = np.all(out.band_alphas == ref.band_alphas, axis=0)
    assert same.mean() >= (1.0 if dtype == np.float64 else 0.9)
    assert out.coef.dtype == ref.coef.dtype == dtype
    np.testing.assert_allclose(out.coef[:, same], ref.coef[:, same], rtol=100 * tol, atol=tol * np.abs(ref.coef).max())


@pytest.mark.parametrize("form", list(FORMS))
def test_banded_small_memory_budget_gives_identical_results(form):
    p, n_splits = FORMS[form]
    X, Y, bands = _data(p, v=9, seed=1)
    kwargs = {"folds": _folds(n_splits), "n_iter": 5}
    whole = banded_ridge_cv(X, Y, bands, ALPHAS, **kwargs)
    chunked = banded_ridge_cv(X, Y, bands, ALPHAS, memory_budget=1, **kwargs)  # one target per chunk, no cache
    np.testing.assert_allclose(chunked.cv_scores, whole.cv_scores, rtol=1e-10)
    np.testing.assert_array_equal(chunked.band_alphas, whole.band_alphas)
    np.testing.assert_allclose(chunked.coef, whole.coef, rtol=1e-10)


def test_one_weighting_of_bands_is_plain_ridge_in_every_form():
    """Ridge is banded ridge with one candidate: the same driver gives the same numbers."""
    for form, (p, n_splits) in FORMS.items():
        X, Y, bands = _data(p, seed=2)
        folds = _folds(n_splits)
        banded = banded_ridge_cv(X, Y, bands, ALPHAS, folds, gammas=[[0.5, 0.5]])
        plain = ridge_cv(X, Y, ALPHAS / 0.5, folds)
        np.testing.assert_allclose(banded.coef, plain.coef, rtol=1e-8, err_msg=form)
        np.testing.assert_allclose(banded.cv_scores, plain.cv_scores.max(axis=0), rtol=1e-10, err_msg=form)
        np.testing.assert_allclose(banded.band_alphas[0], plain.best_alphas, err_msg=form)
