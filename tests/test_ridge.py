import numpy as np
import pytest
from scipy import linalg
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.linear_model import RidgeCV as SkRidgeCV
from sklearn.metrics import r2_score as sk_r2
from sklearn.model_selection import GroupKFold, KFold, LeaveOneOut, ShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from scene2brain.encoding import RidgeCV, default_alphas, ridge_cv


def _data(n, p, v, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * np.logspace(0, -1, p) + 3.0
    Y = X @ rng.standard_normal((p, v)) + rng.standard_normal((n, v)) * np.linspace(0.1, 3, v) + 2.0
    return X, Y


FORMS = [(8, "primal"), (60, "dual"), (8, "loo"), (60, "loo")]


@pytest.mark.parametrize(("p", "form"), FORMS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fixed_alpha_matches_normal_equations_and_sklearn(p, form, fit_intercept):
    X, Y = _data(40, p, 3)
    alpha = 2.5
    folds = "loo" if form == "loo" else list(KFold(4).split(X))
    res = ridge_cv(X, Y, [alpha], folds, fit_intercept=fit_intercept)
    assert res.solver == ("primal" if p < 40 else "dual")
    Xc, Yc = (X - X.mean(0), Y - Y.mean(0)) if fit_intercept else (X, Y)
    expected = linalg.solve(Xc.T @ Xc + alpha * np.eye(p), Xc.T @ Yc, assume_a="pos")
    np.testing.assert_allclose(res.coef, expected, rtol=1e-7, atol=1e-9)
    for j in range(Y.shape[1]):
        sk = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, Y[:, j])
        np.testing.assert_allclose(X @ res.coef[:, j] + res.intercept[j], sk.predict(X), rtol=1e-8)


def _score(y, pred, scoring):
    return sk_r2(y, pred) if scoring == "r2" else np.corrcoef(y, pred)[0, 1]


def _model(alpha, fit_intercept, standardise):
    ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept)
    return make_pipeline(StandardScaler(with_mean=fit_intercept), ridge) if standardise else ridge


def _brute_force(X, Y, alphas, folds, fit_intercept, scoring, standardise=False):
    """Per-target, per-alpha, per-fold refits with scikit-learn."""
    scores = np.zeros((len(alphas), Y.shape[1]))
    for k, alpha in enumerate(alphas):
        for j in range(Y.shape[1]):
            if folds == "loo":
                pred = np.empty(len(X))
                for train, test in LeaveOneOut().split(X):
                    pred[test] = _model(alpha, fit_intercept, False).fit(X[train], Y[train, j]).predict(X[test])
                scores[k, j] = _score(Y[:, j], pred, scoring)
                continue
            for train, test in folds:
                model = _model(alpha, fit_intercept, standardise).fit(X[train], Y[train, j])
                scores[k, j] += _score(Y[test, j], model.predict(X[test]), scoring) / len(folds)
    return scores


@pytest.mark.parametrize(("p", "form"), [*FORMS, (14, "primal")])  # p=14: fewer test samples than features
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("scoring", ["r2", "correlation"])
def test_cv_scores_and_alphas_match_brute_force(p, form, fit_intercept, scoring):
    X, Y = _data(36, p, 5, seed=p)
    alphas = np.logspace(-2, 3, 8)
    folds = "loo" if form == "loo" else list(KFold(4, shuffle=True, random_state=0).split(X))
    res = ridge_cv(X, Y, alphas, folds, fit_intercept=fit_intercept, scoring=scoring)
    expected = _brute_force(X, Y, alphas, folds, fit_intercept, scoring)
    np.testing.assert_allclose(res.cv_scores, expected, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(res.best_alphas, alphas[np.argmax(expected, axis=0)])


@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_standardise_and_non_partition_splits_match_brute_force(solver):
    X, Y = _data(40, 6, 4, seed=3)
    X[:, 0] *= 100.0
    alphas = np.logspace(-2, 3, 6)
    folds = list(ShuffleSplit(3, train_size=0.6, test_size=0.25, random_state=0).split(X))
    res = ridge_cv(X, Y, alphas, folds, standardise=True, solver=solver)
    np.testing.assert_allclose(res.cv_scores, _brute_force(X, Y, alphas, folds, True, "r2", True), rtol=1e-7)
    for j in range(Y.shape[1]):
        model = _model(res.best_alphas[j], True, True).fit(X, Y[:, j])
        np.testing.assert_allclose(X @ res.coef[:, j] + res.intercept[j], model.predict(X), rtol=1e-8)


def test_collinear_features_use_the_eigen_fallback():
    X, Y = _data(48, 5, 3)
    X = np.hstack([X, X[:, :2]])  # rank 5 of 7: the test Gram is singular, no Cholesky
    alphas = np.logspace(-1, 2, 4)
    folds = list(KFold(3).split(X))
    res = ridge_cv(X, Y, alphas, folds)
    np.testing.assert_allclose(res.cv_scores, _brute_force(X, Y, alphas, folds, True, "r2"), rtol=1e-7)


@pytest.mark.parametrize("form", ["primal", "dual", "loo"])
def test_float32_targets_agree_with_float64(form):
    X, Y = _data(120, 30 if form != "dual" else 150, 40, seed=1)
    X = X.astype(np.float32)
    folds = "loo" if form == "loo" else list(KFold(5).split(X))
    r64 = ridge_cv(X, Y, np.logspace(-1, 4, 6), folds)
    r32 = ridge_cv(X, Y.astype(np.float32), np.logspace(-1, 4, 6), folds)
    assert r32.coef.dtype == np.float32 and r64.coef.dtype == np.float64
    np.testing.assert_allclose(r32.cv_scores, r64.cv_scores, atol=2e-4)
    assert np.mean(r32.best_alphas == r64.best_alphas) >= 0.95
    same = r32.best_alphas == r64.best_alphas
    np.testing.assert_allclose(r32.coef[:, same], r64.coef[:, same], rtol=2e-3, atol=2e-4 * np.abs(r64.coef).max())


@pytest.mark.parametrize("form", ["primal", "dual", "loo"])
def test_small_memory_budget_gives_identical_results(form):
    X, Y = _data(50, 8 if form != "dual" else 70, 9)
    folds = "loo" if form == "loo" else list(KFold(5).split(X))
    whole = ridge_cv(X, Y, np.logspace(-2, 2, 5), folds)
    chunked = ridge_cv(X, Y, np.logspace(-2, 2, 5), folds, memory_budget=1)  # one target per chunk
    np.testing.assert_allclose(chunked.cv_scores, whole.cv_scores, rtol=1e-10)
    np.testing.assert_allclose(chunked.coef, whole.coef, rtol=1e-10)


@pytest.mark.parametrize("n_bands", [1, 2])  # plain ridge; banded ridge (several candidates per chunk)
def test_chunks_on_several_threads_give_the_sequential_results(monkeypatch, n_bands):
    from threadpoolctl import threadpool_info

    from scene2brain.encoding import BandedRidgeCV, _cv

    X, Y = _data(60, 8, 40, seed=2)
    alphas, folds = np.logspace(-2, 3, 6), list(KFold(5).split(X))
    used = []

    def fit(threads):
        monkeypatch.setattr(_cv, "_blas_threads", lambda: threads)
        original = _cv._Run._each_chunk

        def each_chunk(run, work, parallel):
            def recorded(cols):
                used.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
                return work(cols)

            return original(run, recorded, parallel)

        monkeypatch.setattr(_cv._Run, "_each_chunk", each_chunk)
        options = {"alphas": alphas, "cv": folds, "memory_budget": 2e4}
        model = RidgeCV(**options) if n_bands == 1 else BandedRidgeCV(bands=["a"] * 4 + ["b"] * 4, n_iter=3, **options)
        return model.fit(X, Y)

    one = fit(1)
    assert len(used) > 3  # several chunks
    used.clear()
    three = fit(3)
    assert set(used) == {1}  # each thread's chunks run with one BLAS thread
    np.testing.assert_array_equal(three.best_alphas_, one.best_alphas_)
    np.testing.assert_allclose(three.coef_, one.coef_, rtol=1e-6, atol=1e-9 * np.abs(one.coef_).max())


@pytest.mark.parametrize(("form", "standardise"), [("primal", True), ("dual", True), ("dual", False), ("loo", False)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_backend_matches_numpy(form, standardise, dtype):
    X, Y = _data(60, 10 if form != "dual" else 80, 7)
    Y = Y.astype(dtype)
    folds = "loo" if form == "loo" else list(KFold(4).split(X))
    kwargs = {"folds": folds, "scoring": "correlation", "standardise": standardise}
    ref = ridge_cv(X, Y, np.logspace(-2, 3, 6), **kwargs)
    out = ridge_cv(X, Y, np.logspace(-2, 3, 6), backend="torch", device="cpu", **kwargs)
    tol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(out.cv_scores, ref.cv_scores, atol=tol)
    np.testing.assert_array_equal(out.best_alphas, ref.best_alphas)
    np.testing.assert_allclose(out.coef, ref.coef, rtol=100 * tol, atol=tol * np.abs(ref.coef).max())


def test_loo_matches_scikit_learn_alpha_per_target():
    X, Y = _data(80, 12, 20, seed=5)
    alphas = np.logspace(-2, 4, 13)
    ours = ridge_cv(X, Y, alphas, "loo")
    sk = SkRidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(ours.best_alphas, sk.alpha_)
    np.testing.assert_allclose(ours.coef, sk.coef_.T, rtol=1e-7, atol=1e-10)


def test_rank_truncation_reports_the_variance_it_keeps():
    X, Y = _data(60, 90, 4)
    alphas = np.logspace(-2, 3, 6)
    folds = list(KFold(3).split(X))
    res = ridge_cv(X, Y, alphas, folds, n_components=10)
    assert res.retained_variance == pytest.approx(PCA(10).fit(X).explained_variance_ratio_.sum(), rel=1e-8)
    scores = PCA(10).fit(X).transform(X)  # the same model, fitted on explicit PCA scores
    explicit = ridge_cv(scores, Y, alphas, folds)
    np.testing.assert_allclose(res.cv_scores, explicit.cv_scores, rtol=1e-7)
    np.testing.assert_allclose(X @ res.coef + res.intercept, scores @ explicit.coef + explicit.intercept, rtol=1e-7)
    full = ridge_cv(X, Y, alphas, folds, n_components=60)  # all of a rank-60 design: exact
    np.testing.assert_allclose(full.cv_scores, ridge_cv(X, Y, alphas, folds).cv_scores, rtol=1e-7)
    assert full.retained_variance == pytest.approx(1.0)


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
    loo = RidgeCV(alphas=np.logspace(-3, 4, 15), cv=LeaveOneOut()).fit(X, Y)
    np.testing.assert_allclose(loo.cv_scores_, ridge_cv(X, Y, np.logspace(-3, 4, 15), "loo").cv_scores)


def test_groups_reach_the_splitter():
    X, Y = _data(30, 4, 2)
    groups = np.repeat(np.arange(10), 3)
    model = RidgeCV(alphas=[1.0, 10.0], cv=GroupKFold(5)).fit(X, Y, groups=groups)
    folds = list(GroupKFold(5).split(X, Y, groups))
    np.testing.assert_allclose(model.cv_scores_, ridge_cv(X, Y, [1.0, 10.0], folds).cv_scores)


def test_default_alphas_scale_with_the_data():
    X, _ = _data(50, 5, 1)
    np.testing.assert_allclose(default_alphas(10 * X), 100 * default_alphas(X))


def test_constant_target_gets_largest_alpha_and_constant_prediction():
    X, Y = _data(40, 5, 2)
    Y[:, 1] = 7.0
    model = RidgeCV(alphas=[0.1, 1.0, 10.0], cv=4).fit(X, Y)
    assert np.all(np.isnan(model.cv_scores_[:, 1]))
    assert model.best_alphas_[1] == 10.0
    np.testing.assert_allclose(model.predict(X)[:, 1], 7.0)


def test_bad_inputs_give_clear_errors():
    X, Y = _data(20, 3, 2)
    with pytest.raises(ValueError, match="alphas: expected positive"):
        RidgeCV(alphas=[0.0, 1.0]).fit(X, Y)
    with pytest.raises(ValueError, match="needs at least 2 training and 2 test samples"):
        ridge_cv(X, Y, [1.0], [(np.arange(19), np.array([19]))])
    with pytest.raises(ValueError, match="overlap"):
        ridge_cv(X, Y, [1.0], [(np.arange(12), np.arange(10, 20))])
    with pytest.raises(ValueError, match="scoring"):
        RidgeCV(scoring="mse").fit(X, Y)
    with pytest.raises(ValueError, match="backend"):
        RidgeCV(backend="jax").fit(X, Y)
    with pytest.raises(ValueError, match="standardise"):
        ridge_cv(X, Y, [1.0], "loo", standardise=True)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RidgeCV().fit(X_nan, Y)
    with pytest.raises(ValueError, match="X: expected finite"):
        ridge_cv(X_nan, Y, [1.0], "loo")
    Y_nan = Y.copy()
    Y_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="target column 1 contains NaN"):
        ridge_cv(X, Y_nan, [1.0], list(KFold(4).split(X)))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("form", ["primal", "dual"])
def test_agrees_with_himalaya_on_the_same_folds_and_grid(form, backend):
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV
    from himalaya.scoring import r2_score as h_r2

    rng = np.random.default_rng(7)
    n, p, v = (300, 40, 400) if form == "primal" else (120, 300, 400)
    X = rng.standard_normal((n + 100, p)) * np.arange(1, p + 1) ** -0.5
    Y = X @ rng.standard_normal((p, v)) * np.logspace(-1.5, 0.5, v) + rng.standard_normal((n + 100, v))
    X_train, Y_train, X_test, Y_test = X[:n], Y[:n], X[n:], Y[n:]
    alphas = np.logspace(-2, 5, 15)
    cv = KFold(5)
    solver_params = {"score_func": h_r2}
    if form == "primal":
        peer = HimalayaRidgeCV(alphas=alphas, cv=cv, fit_intercept=True, solver_params=solver_params)
    else:
        peer = KernelRidgeCV(alphas=alphas, kernel="linear", cv=cv, fit_intercept=True, solver_params=solver_params)
    peer.fit(X_train, Y_train)
    ours = RidgeCV(alphas=alphas, cv=cv, backend=backend, device="cpu" if backend == "torch" else None)
    ours.fit(X_train, Y_train)
    assert ours.solver_ == form
    assert np.mean(np.isclose(ours.best_alphas_, np.asarray(peer.best_alphas_))) >= 0.98
    r_ours = np.array([np.corrcoef(Y_test[:, j], ours.predict(X_test)[:, j])[0, 1] for j in range(v)])
    pred = np.asarray(peer.predict(X_test))
    r_peer = np.array([np.corrcoef(Y_test[:, j], pred[:, j])[0, 1] for j in range(v)])
    assert np.max(np.abs(r_ours - r_peer)) < 1e-3


@pytest.mark.parametrize("n_splits", [2, 6])  # dual: per-fold kernels (2 folds) or leave-group-out (6 folds)
@pytest.mark.parametrize("scoring", ["r2", "correlation"])
def test_both_dual_strategies_match_brute_force(n_splits, scoring):
    X, Y = _data(36, 50, 4, seed=2)
    alphas = np.logspace(-2, 3, 8)
    folds = list(KFold(n_splits, shuffle=True, random_state=1).split(X))
    res = ridge_cv(X, Y, alphas, folds, scoring=scoring)
    assert res.solver == "dual"
    np.testing.assert_allclose(res.cv_scores, _brute_force(X, Y, alphas, folds, True, scoring), rtol=1e-7, atol=1e-9)


def _direct_quad(G, lam, alphas, Z):
    """||F0 (d * z)||^2 = (d*z)^T G (d*z) per alpha and column, straight from its definition (float64)."""
    d = 1.0 / (lam[None, :] + np.asarray(alphas)[:, None])
    return np.stack([np.einsum("ac,ab,bc->c", d[k][:, None] * Z, G, d[k][:, None] * Z) for k in range(len(alphas))])


@pytest.mark.parametrize(
    "spectrum",
    [
        "distinct",  # power law, as from real features
        "clustered",  # exact duplicates and a block of zeros (collinear features): groups summed exactly
    ],
)
def test_partial_fraction_quadratic_term_equals_its_definition_for_every_alpha(spectrum):
    from scene2brain.encoding._solver import spectral_form, spectral_quad
    from scene2brain.encoding.backend import Backend

    rng = np.random.default_rng(3)
    r, c = 40, 7
    lam = np.sort(1e3 * np.arange(1, r + 1, dtype=float) ** -1.5)
    if spectrum == "clustered":
        lam[:6] = 0.0
        lam[20:24] = lam[20]
        lam[31] = lam[30] * (1 + 1e-12)  # distinct, but too close to separate: grouped
    A = rng.standard_normal((60, r))
    G = A.T @ A
    Z = rng.standard_normal((r, c))
    alphas = np.logspace(-3, 12, 16)  # far below and far above every eigenvalue
    be = Backend("numpy")
    form = spectral_form(be, G.copy(), lam)  # G is overwritten
    expected = _direct_quad(G, lam, alphas, Z)
    np.testing.assert_allclose(spectral_quad(form, alphas, Z, be), expected, rtol=1e-9)
    sizes = sorted(rows.stop - rows.start for rows, _ in form.groups)
    assert sizes == ([] if spectrum == "distinct" else [2, 4, 6])


def test_partial_fractions_need_the_groups_and_the_shift(monkeypatch):
    """The two safeguards of the partial-fraction form each matter: without them it is wrong."""
    from scene2brain.encoding import _solver
    from scene2brain.encoding.backend import Backend

    rng = np.random.default_rng(4)
    r = 30
    lam = np.sort(np.r_[np.zeros(4), 1e2 * np.arange(1, r - 3, dtype=float) ** -1.0])
    A = rng.standard_normal((50, r))
    G, Z, alphas = A.T @ A, rng.standard_normal((r, 5)), np.array([1e-2, 1.0, 1e14])
    be = Backend("numpy")
    expected = _direct_quad(G, lam, alphas, Z)
    monkeypatch.setattr(_solver, "SEPARATION", -1.0)  # no eigenvalues are close: no groups, 1 / 0 for the zeros
    with np.errstate(invalid="ignore"):
        assert not np.isfinite(_solver.spectral_quad(_solver.spectral_form(be, G.copy(), lam), alphas, Z, be)).all()
    monkeypatch.undo()
    form = _solver.spectral_form(be, G.copy(), lam)
    # d_a instead of d_a - d_top: exact algebra, but at alpha = 1e14 the 1/alpha terms cancel to rounding noise
    d = 1.0 / (lam[None, :] + alphas[:, None])
    naive = (d * d) @ (form.diag[:, None] * Z * Z) + 2.0 * (d @ (Z * (form.cross @ Z)))
    for rows, block in form.groups:
        for k in range(len(alphas)):
            w = d[k, rows][:, None] * Z[rows]
            naive[k] += (w * (block @ w)).sum(axis=0)
    assert np.abs(naive[-1] / expected[-1] - 1).max() > 1e-3
    np.testing.assert_allclose(_solver.spectral_quad(form, alphas, Z, be), expected, rtol=1e-9)


@pytest.mark.parametrize("n_alphas", [2, 10])  # 2: the triangular factor per alpha; 10: partial fractions
def test_both_primal_quadratic_forms_give_the_same_fit(n_alphas):
    from scene2brain.encoding import _solver

    assert _solver._spectral_is_cheaper(50, 100, n_alphas) == (n_alphas > 2)
    X, Y = _data(200, 50, 30, seed=5)
    alphas = np.logspace(-1, 4, n_alphas)
    folds = list(KFold(5, shuffle=True, random_state=1).split(X))
    res = ridge_cv(X, Y, alphas, folds)
    expected = _brute_force(X, Y[:, :4], alphas, folds, True, "r2")
    np.testing.assert_allclose(res.cv_scores[:, :4], expected, rtol=1e-7, atol=1e-9)
