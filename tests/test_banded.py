import numpy as np
import pytest
from scipy import linalg
from sklearn.model_selection import KFold, ShuffleSplit

from scene2brain.encoding import BandedRidgeCV, banded_ridge_cv, ridge_cv, sample_band_weights
from scene2brain.evaluation import r2_score, r2_score_split


def _two_bands(n=90, p1=6, p2=9, v=12, seed=0):
    """Targets 0..v/2 driven by band A only, the rest by band B only."""
    rng = np.random.default_rng(seed)
    XA = rng.standard_normal((n, p1))
    XB = rng.standard_normal((n, p2)) * 3.0
    half = v // 2
    Y = np.hstack([XA @ rng.standard_normal((p1, half)), XB @ rng.standard_normal((p2, v - half))])
    Y += 0.5 * Y.std(0) * rng.standard_normal((n, v)) + 1.0
    X = np.hstack([XA, XB])
    bands = np.array(["A"] * p1 + ["B"] * p2)
    return X, Y, bands


def test_band_weights_are_on_the_simplex_and_start_uniform():
    gammas = sample_band_weights(3, 10, seed=1)
    np.testing.assert_allclose(gammas.sum(axis=1), 1.0)
    np.testing.assert_allclose(gammas[0], 1 / 3)
    assert np.all(gammas >= 0)
    np.testing.assert_array_equal(gammas, sample_band_weights(3, 10, seed=1))


def test_uniform_weighting_equals_plain_ridge():
    X, Y, bands = _two_bands()
    alphas = np.logspace(-2, 3, 8)
    folds = list(KFold(5).split(X))
    banded = banded_ridge_cv(X, Y, bands, alphas, folds, gammas=[[0.5, 0.5]])
    plain = ridge_cv(X, Y, alphas / 0.5, folds)  # sqrt(0.5) X with alpha == X with alpha / 0.5
    np.testing.assert_allclose(banded.coef, plain.coef, rtol=1e-8)
    np.testing.assert_allclose(banded.band_alphas, np.vstack([plain.best_alphas, plain.best_alphas]))
    np.testing.assert_allclose(banded.cv_scores, plain.cv_scores.max(axis=0), rtol=1e-10)


@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_search_matches_brute_force_over_weightings(solver):
    X, Y, bands = _two_bands()
    alphas = np.logspace(-2, 3, 6)
    folds = list(KFold(4, shuffle=True, random_state=0).split(X))
    gammas = np.array([[0.5, 0.5], [0.9, 0.1], [0.1, 0.9], [0.99, 0.01]])
    res = banded_ridge_cv(X, Y, bands, alphas, folds, gammas=gammas, solver=solver)
    # brute force: one plain ridge CV per weighting on explicitly scaled features
    scores = np.stack([ridge_cv(X * np.sqrt(np.where(bands == "A", g[0], g[1])), Y, alphas, folds).cv_scores
                       for g in gammas])  # fmt: skip
    best = scores.max(axis=1)  # (n_gammas, n_targets)
    g_best = np.argmax(best, axis=0)
    np.testing.assert_allclose(res.cv_scores, best.max(axis=0), rtol=1e-8)
    np.testing.assert_allclose(res.band_weights, gammas[g_best].T)
    # refit: penalised normal equations with one penalty per band
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    for j in range(Y.shape[1]):
        penalty = np.where(bands == "A", res.band_alphas[0, j], res.band_alphas[1, j])
        w = linalg.solve(Xc.T @ Xc + np.diag(penalty), Xc.T @ Yc[:, j])
        np.testing.assert_allclose(res.coef[:, j], w, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(res.intercept, Y.mean(0) - X.mean(0) @ res.coef)


def test_exact_ties_keep_the_first_weighting():
    """Two copies of one band: weightings (0.9, 0.1) and (0.1, 0.9) give bitwise the same kernels.

    A later weighting must be strictly better to replace an earlier one (himalaya's rule),
    so every target keeps the first; the fit is plain ridge on the band itself.
    """
    X, Y, _ = _two_bands(p1=6)
    XA = X[:, :6]
    alphas = np.logspace(-2, 3, 6)
    folds = list(ShuffleSplit(3, train_size=0.6, test_size=0.3, random_state=0).split(X))
    gammas = [[0.9, 0.1], [0.1, 0.9]]
    res = banded_ridge_cv(np.hstack([XA, XA]), Y, ["A"] * 6 + ["B"] * 6, alphas, folds, gammas=gammas, solver="dual")
    np.testing.assert_array_equal(res.band_weights, np.tile([[0.9], [0.1]], Y.shape[1]))
    plain = ridge_cv(XA, Y, alphas, folds)
    np.testing.assert_array_equal(res.alphas, plain.best_alphas)
    np.testing.assert_allclose(res.cv_scores, plain.cv_scores.max(axis=0), rtol=1e-8)
    np.testing.assert_allclose(res.coef[:6] + res.coef[6:], plain.coef, rtol=1e-7)


def test_estimator_finds_the_relevant_band_and_splits_variance():
    X, Y, bands = _two_bands(n=200, v=10)
    model = BandedRidgeCV(bands=bands, alphas=np.logspace(-2, 4, 13), n_iter=30).fit(X[:150], Y[:150])
    assert list(model.bands_) == ["A", "B"]
    # band A drives the first 5 targets: it gets the weaker penalty there, and B on the others
    assert np.all(model.band_alphas_[0, :5] < model.band_alphas_[1, :5])
    assert np.all(model.band_alphas_[1, 5:] < model.band_alphas_[0, 5:])
    split = model.score_split(X[150:], Y[150:])
    assert split.shape == (2, 10)
    assert np.all(split[0, :5] > split[1, :5]) and np.all(split[1, 5:] > split[0, 5:])
    centred = Y[150:] - Y[150:].mean(0)
    total = model.predict_split(X[150:]).sum(0)
    np.testing.assert_allclose(split.sum(0), r2_score(centred, total - total.mean(0)), rtol=1e-10)
    np.testing.assert_allclose(model.predict(X[150:]), total + model.intercept_)


def test_r2_split_matches_himalaya():
    from himalaya.scoring import r2_score_split as h_split

    rng = np.random.default_rng(3)
    y = rng.standard_normal((50, 4))
    y -= y.mean(0)
    parts = rng.standard_normal((3, 50, 4))
    parts -= parts.mean(1, keepdims=True)
    np.testing.assert_allclose(r2_score_split(y, parts), h_split(y, parts), rtol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("solver", ["primal", "dual"])  # dual: leave-group-out from one decomposition
def test_agrees_with_himalaya_group_ridge(solver, backend):
    from himalaya.ridge import GroupRidgeCV
    from himalaya.scoring import r2_score as h_r2

    X, Y, bands = _two_bands(n=160, p1=10, p2=20, v=200, seed=4)
    alphas = np.logspace(-2, 4, 13)
    gammas = sample_band_weights(2, 15, seed=0)
    groups = (bands == "B").astype(int)
    params = {"alphas": alphas, "n_iter": gammas, "score_func": h_r2, "progress_bar": False}
    peer = GroupRidgeCV(groups=groups, cv=KFold(5), fit_intercept=True, solver_params=params).fit(X, Y)
    device = "cpu" if backend == "torch" else None
    folds = list(KFold(5).split(X))
    ours = banded_ridge_cv(X, Y, bands, alphas, folds, gammas=gammas, solver=solver, backend=backend, device=device)
    peer_band_alphas = 1.0 / np.exp(np.asarray(peer.deltas_))
    assert np.mean(np.all(np.isclose(ours.band_alphas, peer_band_alphas, rtol=1e-6), axis=0)) >= 0.98
    np.testing.assert_allclose(X @ ours.coef + ours.intercept, peer.predict(X), rtol=1e-5, atol=1e-6)


def test_bad_bands_give_clear_errors():
    X, Y, bands = _two_bands()
    folds = list(KFold(3).split(X))
    with pytest.raises(ValueError, match="one label per feature"):
        banded_ridge_cv(X, Y, bands[:-1], [1.0], folds)
    with pytest.raises(ValueError, match="at least 2 feature bands"):
        banded_ridge_cv(X, Y, ["A"] * X.shape[1], [1.0], folds)
    with pytest.raises(ValueError, match="summing to 1"):
        banded_ridge_cv(X, Y, bands, [1.0], folds, gammas=[[0.2, 0.2]])
    with pytest.raises(ValueError, match="bands: expected"):
        BandedRidgeCV().fit(X, Y)
