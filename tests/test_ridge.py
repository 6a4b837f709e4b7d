import numpy as np
import pytest
from scipy import linalg
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score as sk_r2
from sklearn.model_selection import GroupKFold, KFold

from scene2brain.encoding import RidgeCV, default_alphas, ridge_cv


def _data(n, p, v, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * np.logspace(0, -1, p)
    Y = X @ rng.standard_normal((p, v)) + rng.standard_normal((n, v)) * np.linspace(0.1, 3, v) + 2.0
    return X, Y


@pytest.mark.parametrize("p", [8, 60])  # primal (p < n) and dual (p > n)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fixed_alpha_matches_normal_equations_and_sklearn(p, fit_intercept):
    X, Y = _data(40, p, 3)
    alpha = 2.5
    res = ridge_cv(X, Y, [alpha], list(KFold(4).split(X)), fit_intercept=fit_intercept)
    Xc, Yc = (X - X.mean(0), Y - Y.mean(0)) if fit_intercept else (X, Y)
    expected = linalg.solve(Xc.T @ Xc + alpha * np.eye(p), Xc.T @ Yc, assume_a="pos")
    np.testing.assert_allclose(res["coef"], expected, rtol=1e-8, atol=1e-10)
    for j in range(Y.shape[1]):
        sk = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, Y[:, j])
        np.testing.assert_allclose(X @ res["coef"][:, j] + res["intercept"][j], sk.predict(X), rtol=1e-8)


def _brute_force(X, Y, alphas, folds, fit_intercept, scoring):
    scores = np.zeros((len(alphas), Y.shape[1]))
    for k, alpha in enumerate(alphas):
        for train, test in folds:
            for j in range(Y.shape[1]):
                pred = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X[train], Y[train, j]).predict(X[test])
                if scoring == "r2":
                    scores[k, j] += sk_r2(Y[test, j], pred)
                else:
                    scores[k, j] += np.corrcoef(Y[test, j], pred)[0, 1]
    return scores / len(folds)


@pytest.mark.parametrize("p", [6, 50])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("scoring", ["r2", "correlation"])
def test_cv_scores_and_alphas_match_brute_force(p, fit_intercept, scoring):
    X, Y = _data(36, p, 5, seed=p)
    alphas = np.logspace(-2, 3, 8)
    folds = list(KFold(4, shuffle=True, random_state=0).split(X))
    res = ridge_cv(X, Y, alphas, folds, fit_intercept=fit_intercept, scoring=scoring)
    expected = _brute_force(X, Y, alphas, folds, fit_intercept, scoring)
    np.testing.assert_allclose(res["cv_scores"], expected, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(res["best_alphas"], alphas[np.argmax(expected, axis=0)])


def test_estimator_fits_per_target_alphas_and_predicts():
    X, Y = _data(80, 10, 6)
    model = RidgeCV(alphas=np.logspace(-3, 4, 15), cv=5).fit(X, Y)
    assert model.coef_.shape == (10, 6) and model.intercept_.shape == (6,)
    assert model.cv_scores_.shape == (15, 6) and model.n_features_in_ == 10
    assert model.best_alphas_[0] < model.best_alphas_[-1]  # noisier targets need more shrinkage
    for j in range(6):
        sk = Ridge(alpha=model.best_alphas_[j]).fit(X, Y[:, j])
        np.testing.assert_allclose(model.predict(X)[:, j], sk.predict(X), rtol=1e-8)
    single = RidgeCV(cv=5).fit(X, Y[:, 0])
    assert single.predict(X).shape == (80,)


def test_groups_reach_the_splitter():
    X, Y = _data(30, 4, 2)
    groups = np.repeat(np.arange(10), 3)
    model = RidgeCV(alphas=[1.0, 10.0], cv=GroupKFold(5)).fit(X, Y, groups=groups)
    folds = list(GroupKFold(5).split(X, Y, groups))
    np.testing.assert_allclose(model.cv_scores_, ridge_cv(X, Y, [1.0, 10.0], folds)["cv_scores"])


def test_default_alphas_scale_with_the_data():
    X, _ = _data(50, 5, 1)
    np.testing.assert_allclose(default_alphas(10 * X), 100 * default_alphas(X))


def test_constant_target_gets_largest_alpha_and_constant_prediction():
    X, Y = _data(40, 5, 2)
    Y[:, 1] = 7.0
    model = RidgeCV(alphas=[0.1, 1.0, 10.0], cv=4).fit(X, Y)
    assert model.best_alphas_[1] == 10.0
    np.testing.assert_allclose(model.predict(X)[:, 1], 7.0)


def test_bad_inputs_give_clear_errors():
    X, Y = _data(20, 3, 2)
    with pytest.raises(ValueError, match="alphas: expected positive"):
        RidgeCV(alphas=[0.0, 1.0]).fit(X, Y)
    with pytest.raises(ValueError, match="needs at least 2 training and 2 test samples"):
        ridge_cv(X, Y, [1.0], [(np.arange(19), np.array([19]))])
    with pytest.raises(ValueError, match="scoring"):
        RidgeCV(scoring="mse").fit(X, Y)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RidgeCV().fit(X_nan, Y)
