"""The source projects' regressors as encoders, each against its scikit-learn counterpart on the same folds."""

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import RandomForestRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    ElasticNetCV,
    Lasso,
    LassoCV,
    MultiTaskElasticNet,
    MultiTaskElasticNetCV,
    MultiTaskLasso,
    MultiTaskLassoCV,
    Ridge,
)
from sklearn.metrics import r2_score as sk_r2
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor

from scene2brain.encoding import RidgeCV, sparse
from scene2brain.encoding.kernel import KernelRidgeCV
from scene2brain.encoding.registry import ENCODERS, fit_encoder
from scene2brain.encoding.regressors import MultiTaskElasticNetGram, _pls_fold_scores, multitask_alpha_grid
from scene2brain.encoding.sparse import VoxelwiseElasticNetCV, VoxelwiseLassoCV


def _data(n=90, p=6, v=4, seed=0):
    """Linear plus nonlinear signal of different strength per target, offsets away from zero."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + 30, p)) + 1.0
    W = rng.standard_normal((p, v)) * (rng.random((p, v)) < 0.5)
    Y = X @ W + np.sin(2 * X[:, np.arange(v) % p]) + rng.standard_normal((n + 30, v)) * np.linspace(0.3, 2.0, v) + 2.0
    return X[:n], Y[:n], X[n:]


def _folds(X):
    return list(KFold(5, shuffle=True, random_state=0).split(X))


def _fold_r2(make, X, Y, folds):
    """Per target, mean over folds of scikit-learn's held-out R^2 (an independent reference for ``cv_score``)."""
    scores = []
    for train, test in folds:
        pred = np.asarray(make().fit(X[train], Y[train]).predict(X[test])).reshape(len(test), -1)
        scores.append([sk_r2(Y[test, j], pred[:, j]) for j in range(Y.shape[1])])
    return np.mean(scores, axis=0)


def _grid_search(estimator, grid, X, Y, folds):
    return GridSearchCV(estimator, grid, cv=folds, scoring="r2").fit(X, Y)


# ------------------------------------------------------------------------------ shared-grid wrappers

WRAPPED = [
    ("ridge-shared", {"alphas": [0.01, 0.3, 3.0, 30.0, 300.0]}, Ridge(), "alpha", [0.01, 0.3, 3.0, 30.0, 300.0]),
    ("pls", {"n_components": [1, 2, 3, 4, 5]}, PLSRegression(scale=False), "n_components", [1, 2, 3, 4, 5]),
    ("pls", {"scale": True}, PLSRegression(scale=True), "n_components", [1, 2, 3, 4, 5, 6]),
    ("knn", {}, KNeighborsRegressor(), "n_neighbors", [1, 2, 5, 10, 20, 50]),
    (
        "knn",
        {"n_neighbors": [3, 7, 15], "weights": "distance"},
        KNeighborsRegressor(weights="distance"),
        "n_neighbors",
        [3, 7, 15],
    ),
    ("tree", {}, DecisionTreeRegressor(random_state=0), "max_depth", [2, 4, 8, 16, None]),
    (
        "tree",
        {"max_depth": [1, 3, "none"], "min_samples_leaf": 5},
        DecisionTreeRegressor(random_state=0, min_samples_leaf=5),
        "max_depth",
        [1, 3, None],
    ),
    (
        "forest",
        {"max_depth": [2, 4, "none"], "n_estimators": 10},
        RandomForestRegressor(n_estimators=10, max_features=1 / 3, random_state=0, n_jobs=1),
        "max_depth",
        [2, 4, None],
    ),
]


@pytest.mark.parametrize(("name", "options", "estimator", "param", "grid"), WRAPPED)
def test_wrapped_regressor_equals_grid_search(name, options, estimator, param, grid):
    X, Y, X_new = _data()
    folds = _folds(X)
    fitted = fit_encoder(name, X, Y, folds, random_state=0, **options)
    reference = _grid_search(estimator, {param: grid}, X, Y, folds)
    np.testing.assert_allclose(fitted.predict(X_new), reference.predict(X_new), rtol=1e-8, atol=1e-8)
    best = reference.best_params_[param]
    expected = _fold_r2(lambda: clone(estimator).set_params(**reference.best_params_), X, Y, folds)
    np.testing.assert_allclose(fitted.cv_score, expected, rtol=1e-8, atol=1e-10)
    # GridSearchCV's score is the mean over targets of the same per-target fold means
    np.testing.assert_allclose(fitted.cv_score.mean(), reference.best_score_, rtol=1e-10)
    summary = json.loads(json.dumps(fitted.summary))
    if name == "ridge-shared":
        assert summary["alpha"] == best
        np.testing.assert_array_equal(fitted.alphas, np.full(Y.shape[1], best))
    else:
        assert best in summary.values()
        assert np.isnan(fitted.alphas).all()
    assert fitted.fit_seconds > 0


@pytest.mark.parametrize("scale", [False, True])
def test_pls_scores_every_candidate_as_its_own_fit(scale):
    """One fit per fold with the most components stands for a separate fit per candidate."""
    X, Y, _ = _data(v=7)
    Y[:, 3] = 5.0  # a constant target: scale=True must not divide by its zero SD
    train, test = _folds(X)[0]
    grid = [1, 2, 4, 6]
    scores = _pls_fold_scores(X[train], Y[train], X[test], Y[test], grid, scale)
    for row, k in zip(scores, grid, strict=True):
        pred = PLSRegression(n_components=k, scale=scale).fit(X[train], Y[train]).predict(X[test])
        expected = [sk_r2(Y[test, j], pred[:, j]) for j in range(Y.shape[1]) if j != 3]
        np.testing.assert_allclose(np.delete(row, 3), expected, rtol=1e-9, atol=1e-12)


def test_ridge_shared_default_grid_is_ridges_and_a_different_alpha_gives_other_predictions():
    X, Y, X_new = _data(seed=1)
    folds = _folds(X)
    fitted = fit_encoder("ridge-shared", X, Y, folds)
    voxelwise = RidgeCV(cv=folds).fit(X, Y)
    grid = voxelwise.alphas_
    assert len(np.unique(voxelwise.best_alphas_)) > 1  # a per-voxel choice would differ from the shared one
    reference = _grid_search(Ridge(), {"alpha": list(grid)}, X, Y, folds)
    assert fitted.summary["alpha"] == pytest.approx(reference.best_params_["alpha"], rel=1e-12)
    np.testing.assert_allclose(fitted.predict(X_new), reference.predict(X_new), rtol=1e-8)
    # the equality is not vacuous: the next alpha of the grid predicts differently
    k = int(np.flatnonzero(np.isclose(grid, fitted.summary["alpha"]))[0])
    other = Ridge(alpha=grid[k + 1 if k + 1 < len(grid) else k - 1]).fit(X, Y)
    assert np.abs(other.predict(X_new) - fitted.predict(X_new)).max() > 1e-3


# ------------------------------------------------------------------------------------- multi-task


@pytest.mark.parametrize("l1_ratios", [None, [0.3, 0.9]])
def test_multitask_models_equal_grid_search(l1_ratios):
    X, Y, X_new = _data(n=100, p=8, v=5, seed=2)
    folds = _folds(X)
    tol = 1e-10
    if l1_ratios is None:
        fitted = fit_encoder("multitask-lasso", X, Y, folds, n_alphas=8, tol=tol, max_iter=100_000)
        path = MultiTaskLassoCV(alphas=8, cv=folds).fit(X, Y).alphas_  # scikit-learn's grid on the same rows
        np.testing.assert_allclose(multitask_alpha_grid(X, Y, 1.0, 8), path, rtol=1e-12)
        estimator, grid = MultiTaskLasso(tol=tol, max_iter=100_000), {"alpha": list(path)}
    else:
        options = {"l1_ratios": l1_ratios, "n_alphas": 6, "tol": tol, "max_iter": 100_000}
        fitted = fit_encoder("multitask-elasticnet", X, Y, folds, **options)
        paths = MultiTaskElasticNetCV(l1_ratio=l1_ratios, alphas=6, cv=folds).fit(X, Y).alphas_
        estimator = MultiTaskElasticNet(tol=tol, max_iter=100_000)
        grid = [{"alpha": list(path), "l1_ratio": [r]} for path, r in zip(paths, l1_ratios, strict=True)]
    reference = _grid_search(estimator, grid, X, Y, folds)
    assert fitted.summary["alpha"] == pytest.approx(reference.best_params_["alpha"], rel=1e-12)
    if l1_ratios is not None:
        assert fitted.summary["l1_ratio"] == reference.best_params_["l1_ratio"]
    np.testing.assert_allclose(fitted.predict(X_new), reference.predict(X_new), atol=1e-6)
    np.testing.assert_allclose(fitted.cv_score.mean(), reference.best_score_, atol=1e-8)
    assert fitted.summary["n_active_features"] <= X.shape[1]


@pytest.mark.parametrize(("n", "l1_ratio"), [(80, 1.0), (80, 0.4), (5, 0.7)])  # n=5 < p: no reduction
def test_multitask_gram_equals_sklearn_at_fixed_alpha(n, l1_ratio):
    X, Y, X_new = _data(n=n, p=7, v=3, seed=3)
    ours = MultiTaskElasticNetGram(alpha=0.2, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000).fit(X, Y)
    sk = MultiTaskElasticNet(alpha=0.2, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000).fit(X, Y)
    np.testing.assert_allclose(ours.coef_, sk.coef_.T, atol=1e-8)
    np.testing.assert_allclose(ours.predict(X_new), sk.predict(X_new), atol=1e-8)
    # shared support: a feature is in for every target or for none
    assert np.all(np.any(ours.coef_ != 0, axis=1) == np.all(ours.coef_ != 0, axis=1))


# --------------------------------------------------------------------------- per-voxel lasso / enet


def test_voxelwise_lasso_equals_a_lassocv_loop():
    X, Y, X_new = _data(n=120, p=10, v=6, seed=4)
    folds = _folds(X)
    fitted = fit_encoder("lasso", X, Y, folds, n_alphas=30)
    assert isinstance(fitted.model, VoxelwiseLassoCV)
    for j in range(Y.shape[1]):
        sk = LassoCV(alphas=30, cv=folds).fit(X, Y[:, j])
        assert fitted.alphas[j] == pytest.approx(sk.alpha_, rel=1e-12)
        np.testing.assert_allclose(fitted.model.alphas_[0, :, j], sk.alphas_, rtol=1e-12)
        np.testing.assert_allclose(fitted.model.mse_path_[0, :, j], sk.mse_path_.mean(axis=1), rtol=1e-9)
        np.testing.assert_allclose(fitted.predict(X_new)[:, j], sk.predict(X_new), atol=1e-8)
        expected = _fold_r2(lambda a=sk.alpha_: Lasso(alpha=a, tol=1e-12, max_iter=100_000), X, Y[:, [j]], folds)
        np.testing.assert_allclose(fitted.cv_score[j], expected[0], atol=1e-5)  # path at tol=1e-4 vs exact
    assert len(np.unique(fitted.alphas)) > 1  # each voxel its own alpha
    assert fitted.summary["median_log10_alpha"] == pytest.approx(np.median(np.log10(fitted.alphas)))


def test_voxelwise_elasticnet_chooses_alpha_and_l1_ratio_as_elasticnetcv_in_parallel(monkeypatch):
    X, Y, X_new = _data(n=120, p=10, v=6, seed=5)
    folds = _folds(X)
    ratios = [0.2, 0.6, 1.0]
    monkeypatch.setattr(sparse, "CHUNK", 2)  # three tasks for two threads
    fitted = fit_encoder("elasticnet", X, Y, folds, l1_ratios=ratios, n_alphas=20, n_jobs=2)
    serial = VoxelwiseElasticNetCV(l1_ratio=ratios, n_alphas=20, cv=folds).fit(X, Y)
    np.testing.assert_array_equal(serial.coef_, fitted.model.coef_)
    np.testing.assert_array_equal(serial.cv_score_, fitted.cv_score)
    for j in range(Y.shape[1]):
        sk = ElasticNetCV(l1_ratio=ratios, alphas=20, cv=folds).fit(X, Y[:, j])
        assert fitted.alphas[j] == pytest.approx(sk.alpha_, rel=1e-12)
        assert fitted.model.l1_ratio_[j] == sk.l1_ratio_
        np.testing.assert_allclose(fitted.predict(X_new)[:, j], sk.predict(X_new), atol=1e-8)


def test_voxelwise_lasso_explicit_grid_one_target_and_a_different_alpha_differs():
    X, Y, X_new = _data(n=100, p=8, v=1, seed=6)
    folds = _folds(X)
    grid = [0.001, 0.01, 0.1, 1.0]
    model = VoxelwiseLassoCV(alphas=grid, cv=folds).fit(X, Y[:, 0])
    sk = LassoCV(alphas=grid, cv=folds).fit(X, Y[:, 0])
    assert model.predict(X_new).shape == (len(X_new),)
    assert model.alpha_[0] == sk.alpha_
    np.testing.assert_allclose(model.predict(X_new), sk.predict(X_new), atol=1e-8)
    other = Lasso(alpha=next(a for a in grid if a != sk.alpha_)).fit(X, Y[:, 0])
    assert np.abs(other.predict(X_new) - model.predict(X_new)).max() > 1e-3


# ------------------------------------------------------------------------------------ kernel ridge

KERNELS = [("rbf", {"gamma": 0.3}), ("poly", {"gamma": 0.5, "degree": 2, "coef0": 1.0})]


@pytest.mark.parametrize(("kernel", "params"), KERNELS)
def test_kernel_ridge_equals_sklearn_per_target_and_brute_force_choice(kernel, params):
    X, Y, X_new = _data(n=60, p=4, v=5, seed=7)
    folds = _folds(X)
    alphas = np.logspace(-3, 2, 8)
    fitted = fit_encoder("kernel-ridge", X, Y, folds, kernel=kernel, alphas=list(alphas), fit_intercept=False, **params)
    scores = np.zeros((len(alphas), Y.shape[1]))
    for k, alpha in enumerate(alphas):
        scores[k] = _fold_r2(lambda a=alpha: KernelRidge(alpha=a, kernel=kernel, **params), X, Y, folds)
    np.testing.assert_allclose(fitted.model.cv_scores_, scores, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(fitted.alphas, alphas[np.argmax(scores, axis=0)])
    np.testing.assert_allclose(fitted.cv_score, scores.max(axis=0), rtol=1e-8)
    assert len(np.unique(fitted.alphas)) > 1  # one alpha per voxel
    for j in range(Y.shape[1]):
        sk = KernelRidge(alpha=fitted.alphas[j], kernel=kernel, **params).fit(X, Y[:, j])
        np.testing.assert_allclose(fitted.predict(X_new)[:, j], sk.predict(X_new), atol=1e-6)


def test_kernel_ridge_with_intercept_linear_kernel_equals_voxelwise_ridge_and_precomputed_kernel():
    X, Y, X_new = _data(n=50, p=5, v=4, seed=8)
    folds = _folds(X)
    alphas = np.logspace(-2, 3, 7)
    linear = KernelRidgeCV(alphas=alphas, kernel="linear", cv=folds).fit(X, Y)
    ridge = RidgeCV(alphas=alphas, cv=folds).fit(X, Y)
    assert linear.rank_ == X.shape[1]
    np.testing.assert_allclose(linear.cv_scores_, ridge.cv_scores_, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(linear.best_alphas_, ridge.best_alphas_)
    np.testing.assert_allclose(linear.predict(X_new), ridge.predict(X_new), rtol=1e-8, atol=1e-8)

    rbf = KernelRidgeCV(alphas=alphas, kernel="rbf", gamma=0.2, cv=folds).fit(X, Y)
    K, K_new = (pairwise_kernels(A, X, metric="rbf", gamma=0.2) for A in (X, X_new))
    pre = KernelRidgeCV(alphas=alphas, kernel="precomputed", cv=folds).fit(K, Y)
    np.testing.assert_array_equal(pre.best_alphas_, rbf.best_alphas_)
    np.testing.assert_allclose(pre.predict(K_new), rbf.predict(X_new), atol=1e-10)
    # the intercept matters: without it the offset of Y (about 2) is shrunk towards zero
    no_intercept = KernelRidgeCV(alphas=alphas, kernel="rbf", gamma=0.2, cv=folds, fit_intercept=False).fit(X, Y)
    assert np.abs(no_intercept.predict(X_new) - rbf.predict(X_new)).max() > 1e-2
    with pytest.raises(ValueError, match="precomputed kernel"):
        pre.predict(K_new[:, :-1])
    with pytest.raises(ValueError, match="square"):
        KernelRidgeCV(kernel="precomputed").fit(K[:, :-1], Y)


# ---------------------------------------------------------------------------------- every encoder


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_fits_predicts_and_summarises(name):
    X, Y, X_new = _data(n=60, p=5, v=3, seed=9)
    options = {"n_estimators": 5} if name == "forest" else {}
    fitted = fit_encoder(name, X, Y, _folds(X), **options)
    assert fitted.predict(X_new).shape == (len(X_new), Y.shape[1])
    assert fitted.alphas.shape == fitted.cv_score.shape == (Y.shape[1],)
    assert np.all(np.isfinite(fitted.cv_score)) and np.all(fitted.cv_score <= 1)
    json.dumps(fitted.summary)


def test_unknown_option_and_bad_grids_raise_clear_errors():
    X, Y, _ = _data(n=40, p=4, v=2)
    folds = _folds(X)
    with pytest.raises(ValueError, match="bogus"):
        fit_encoder("knn", X, Y, folds, bogus=1)
    bad = [
        ("knn", {"n_neighbors": [0, 3]}, "n_neighbors"),
        ("knn", {"n_neighbors": [100]}, "n_neighbors"),  # more than the training rows of a fold
        ("knn", {"weights": "gaussian"}, "weights"),
        ("pls", {"n_components": [2, 9]}, "n_components"),
        ("tree", {"max_depth": [0]}, "max_depth"),
        ("forest", {"max_depth": [2.5]}, "max_depth"),
        ("forest", {"n_estimators": 0}, "n_estimators"),
        ("multitask-elasticnet", {"l1_ratios": [0.5, 1.5]}, "l1_ratios"),
        ("multitask-lasso", {"n_alphas": 0}, "n_alphas"),
        ("elasticnet", {"l1_ratios": [0.0]}, "l1_ratio"),
        ("lasso", {"eps": 2.0}, "eps"),
        ("lasso", {"alphas": [-1.0, 1.0]}, "alphas"),
        ("ridge-shared", {"alphas": [0.0]}, "alphas"),
        ("kernel-ridge", {"kernel": "sigmoid"}, "kernel"),
        ("kernel-ridge", {"kernel": "precomputed"}, "kernel"),
        ("kernel-ridge", {"gamma": -1.0}, "gamma"),
    ]
    for name, options, word in bad:
        with pytest.raises(ValueError, match=word):
            fit_encoder(name, X, Y, folds, **options)
    with pytest.raises(ValueError, match="device"):
        fit_encoder("knn", X, Y, folds, device="cuda")
