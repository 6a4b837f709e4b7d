"""Decoding: cross-validation, permutation tests, corrections and metrics against scikit-learn / scipy."""

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from scene2brain.decoding import (
    DECODERS,
    correct_p_values,
    cross_validate_decoding,
    decode,
    decoding_metrics,
    make_decoder,
    permute_labels,
)

LABELS = np.array(["animal", "artifact", "geo"])


def grouped_data(n_stim=40, repeats=2, p=15, k=3, signal=0.7, seed=0, n_test=0):
    """Stimuli with repeats (groups), labels constant per stimulus, signal in the first 3 features."""
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, k, n_stim + n_test)
    groups = np.repeat(np.arange(n_stim), repeats)
    stim = rng.standard_normal((n_stim + n_test, p))
    stim[:, :3] += signal * ys[:, None]
    X = stim[groups] + 0.5 * rng.standard_normal((len(groups), p))
    out = (X, LABELS[ys[groups]], groups)
    if n_test:
        out += (stim[n_stim:] + 0.5 * rng.standard_normal((n_test, p)), LABELS[ys[n_stim:]])
    return out


def test_cv_with_fixed_hyperparameters_matches_cross_val_score():
    X, y, g = grouped_data()
    res = cross_validate_decoding(X, y, groups=g, decoder="logistic", options={"C": 0.1}, n_folds=5, seed=3)
    ref = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000, random_state=3)),
        X,
        y,
        groups=g,
        cv=GroupKFold(5, shuffle=True, random_state=3),
        scoring="accuracy",
    )
    np.testing.assert_allclose(res.fold_accuracies, ref)
    assert res.hyperparameters == {"C": [0.1] * 5}
    # pooled out-of-fold metrics: every row predicted once
    assert res.n_test == len(y) and res.predictions.shape == y.shape
    assert res.accuracy == pytest.approx(accuracy_score(y, res.predictions))


@pytest.mark.parametrize("decoder", ["logistic", "ridge"])
def test_nested_cv_matches_gridsearch_in_cross_val_score(decoder):
    X, y, g = grouped_data(seed=1)
    name, clf = {
        "logistic": ("C", LogisticRegression(max_iter=1000, random_state=0)),
        "ridge": ("alpha", RidgeClassifier()),
    }[decoder]
    grid = [0.01, 1.0, 100.0] if decoder == "ridge" else [0.01, 0.1, 1.0]
    res = cross_validate_decoding(X, y, groups=g, decoder=decoder, options={name: grid}, n_folds=5, n_inner_folds=3)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), clf),
        {f"{type(clf).__name__.lower()}__{name}": grid},
        scoring="balanced_accuracy",
        cv=GroupKFold(3, shuffle=True, random_state=0),
    )
    ref = cross_val_score(
        search,
        X,
        y,
        groups=g,
        cv=GroupKFold(5, shuffle=True, random_state=0),
        scoring="balanced_accuracy",
        params={"groups": g},
    )
    np.testing.assert_allclose(res.fold_scores, ref)


def _brute_force_null(X, y, g, Xt, yt, estimator, grid, perms, n_folds):
    null = []
    for yp in perms:
        search = GridSearchCV(
            estimator, grid, scoring="balanced_accuracy", cv=GroupKFold(n_folds, shuffle=True, random_state=0)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(X, yp, groups=g)
        null.append(balanced_accuracy_score(yt, search.predict(Xt)))
    return np.array(null)


@pytest.mark.parametrize("decoder", ["logistic", "ridge"])
def test_permutation_null_and_p_match_a_brute_force_loop(decoder):
    X, y, g, Xt, yt = grouped_data(n_stim=30, p=8, signal=0.3, seed=2, n_test=30)
    if decoder == "logistic":
        estimator, grid, options = LogisticRegression(max_iter=1000, random_state=0), [0.01, 1.0], {"C": [0.01, 1.0]}
        key = "logisticregression__C"
    else:
        estimator, grid, options = RidgeClassifier(), [0.1, 10.0, 1000.0], {"alpha": [0.1, 10.0, 1000.0]}
        key = "ridgeclassifier__alpha"
    n_perm = 12 if decoder == "logistic" else 40
    res = decode(X, y, Xt, yt, groups=g, decoder=decoder, options=options, n_folds=3, n_permutations=n_perm)
    perms = permute_labels(y, g, n_perm, seed=0)
    null = _brute_force_null(X, y, g, Xt, yt, make_pipeline(StandardScaler(), estimator), {key: grid}, perms, 3)
    np.testing.assert_allclose(res.null, null, atol=1e-10)
    assert res.p_value == pytest.approx((1 + np.sum(null >= res.balanced_accuracy - 1e-12)) / (1 + n_perm))
    assert res.null.shape == (n_perm,)


@pytest.mark.parametrize("k", [2, 3])
def test_fast_ridge_path_equals_refitting_every_permutation(k):
    X, y, g = grouped_data(n_stim=36, p=50, k=k, signal=0.2, seed=4)
    alphas = {"alpha": [0.1, 10.0, 1000.0]}
    kw = {"groups": g, "decoder": "ridge", "options": alphas, "n_permutations": 15, "n_inner_folds": 3, "n_folds": 4}
    fast = cross_validate_decoding(X, y, **kw)
    slow = cross_validate_decoding(X, y, fast_path=False, **kw)
    np.testing.assert_allclose(fast.null, slow.null, atol=1e-10)
    assert fast.p_value == slow.p_value
    # n < p and n >= p (primal and dual decompositions), accuracy metric, decode
    Xt, yt = X[:20] + 0.1, y[:20]
    for p in (10, 50):
        kw = {
            "groups": g,
            "decoder": "ridge",
            "options": alphas,
            "n_permutations": 25,
            "n_folds": 3,
            "metric": "accuracy",
        }
        a = decode(X[:, :p], y, Xt[:, :p], yt, **kw)
        b = decode(X[:, :p], y, Xt[:, :p], yt, fast_path=False, **kw)
        np.testing.assert_allclose(a.null, b.null, atol=1e-10)


def test_grouped_folds_never_split_a_group():
    # each stimulus has its own random pattern, repeated almost exactly; labels are random per stimulus,
    # so only a fold that splits a stimulus's repeats can predict its label
    rng = np.random.default_rng(5)
    n_stim, repeats, p = 60, 3, 300
    g = np.repeat(np.arange(n_stim), repeats)
    y = rng.integers(0, 2, n_stim)[g]
    X = rng.standard_normal((n_stim, p))[g] + 0.01 * rng.standard_normal((len(g), p))
    kw = {"decoder": "ridge", "options": {"alpha": 1.0}, "metric": "accuracy"}
    grouped = cross_validate_decoding(X, y, groups=g, **kw)
    leaky = cross_validate_decoding(X, y, **kw)  # each row its own group: repeats split across folds
    assert leaky.accuracy > 0.9
    assert abs(grouped.accuracy - 0.5) < 0.15
    for _, te in GroupKFold(5, shuffle=True, random_state=0).split(X, groups=g):
        assert np.isin(g, g[te]).sum() == len(te)


def test_permuted_labels_keep_units_and_are_reproducible():
    rng = np.random.default_rng(6)
    sizes = rng.integers(1, 4, 30)
    g = np.repeat(np.arange(30), sizes)
    y = LABELS[rng.integers(0, 3, 30)][g]
    perms = permute_labels(y, g, 50, seed=1)
    assert perms.shape == (50, len(y)) and perms.dtype == y.dtype
    for p in perms:
        for s in range(30):
            assert len(set(p[g == s])) == 1
    # unit labels are permuted: the multiset of stimulus labels is kept, and permutations differ
    stim_first = np.unique(g, return_index=True)[1]
    for p in perms:
        assert sorted(p[stim_first]) == sorted(y[stim_first])
    assert len({p.tobytes() for p in perms}) == 50
    np.testing.assert_array_equal(perms, permute_labels(y, g, 50, seed=1))
    assert not np.array_equal(perms, permute_labels(y, g, 50, seed=2))
    # a group holding two labels is split into one unit per label
    y2 = np.array(["a", "b", "a", "a", "b", "b"])
    g2 = np.array([0, 0, 0, 1, 1, 2])
    for p in permute_labels(y2, g2, 20, seed=0):
        assert p[0] == p[2]  # rows 0 and 2 share group and label
    # no groups: a free row permutation
    free = permute_labels(np.arange(10), None, 5, seed=0)
    assert all(sorted(p) == list(range(10)) for p in free)


def _null_p_values(n_rep, leaky=False, seed=0):
    """p-values of the fast ridge path on data without signal."""
    rng = np.random.default_rng(seed)
    ps = []
    for _ in range(n_rep):
        n_train, n_test, p = 30, 20, 200 if leaky else 10
        X, Xt = rng.standard_normal((n_train, p)), rng.standard_normal((n_test, p))
        y, yt = rng.integers(0, 2, n_train), rng.integers(0, 2, n_test)
        if leaky:  # screening fitted once on all rows, test labels included
            keep = SelectKBest(f_classif, k=5).fit(np.vstack([X, Xt]), np.concatenate([y, yt])).get_support()
            X, Xt = X[:, keep], Xt[:, keep]
        res = decode(
            X,
            y,
            Xt,
            yt,
            decoder="ridge",
            options={"alpha": [1.0, 100.0]},
            n_folds=3,
            n_permutations=99,
            seed=int(rng.integers(1 << 30)),
        )
        ps.append(res.p_value)
    return np.array(ps)


def test_permutation_test_is_calibrated_and_the_check_catches_broken_variants():
    n_rep = 200
    low, high = stats.binom.ppf([0.0005, 0.9995], n_rep, 0.05)
    p = _null_p_values(n_rep)
    rejections = int(np.sum(p <= 0.05))
    assert low <= rejections <= high, rejections
    assert stats.kstest(p, "uniform").pvalue > 0.001 or np.mean(p) > 0.45  # discrete p: at worst conservative
    # broken: leaky screening (fitted on all rows with the test labels), 200 features, 50 rows
    p_leaky = _null_p_values(n_rep, leaky=True, seed=1)
    assert np.sum(p_leaky <= 0.05) > high


def test_signal_is_detected_and_shuffled_labels_are_not():
    X, y, g, Xt, yt = grouped_data(n_stim=60, p=20, signal=2.0, seed=7, n_test=45)
    res = decode(X, y, Xt, yt, groups=g, decoder="ridge", n_permutations=199)
    assert res.p_value < 0.01 and res.p_value == pytest.approx(1 / 200)
    assert res.balanced_accuracy > res.chance + 0.3
    shuffled = np.random.default_rng(0).permutation(yt)
    res = decode(X, y, Xt, shuffled, groups=g, decoder="ridge", n_permutations=199)
    assert res.p_value > 0.1
    cv = cross_validate_decoding(X, y, groups=g, decoder="ridge", n_permutations=99)
    assert cv.p_value == pytest.approx(0.01) and cv.balanced_accuracy > 0.6


def test_correct_p_values_maxstat_by_hand_and_fdr_against_scipy():
    observed = np.array([0.4, 0.6, 0.15])
    null = np.array([[0.1, 0.5, 0.1], [0.3, 0.2, 0.2], [0.2, 0.1, 0.05], [0.45, 0.3, 0.1]])
    # per-permutation maxima: 0.5, 0.3, 0.2, 0.45
    np.testing.assert_allclose(correct_p_values(observed, null, "maxstat"), [3 / 5, 1 / 5, 5 / 5])
    uncorrected = np.array([(1 + 1) / 5, (1 + 0) / 5, (1 + 1) / 5])
    np.testing.assert_allclose(correct_p_values(observed, null, "fdr"), stats.false_discovery_control(uncorrected))
    with pytest.raises(ValueError, match="maxstat"):
        correct_p_values(observed, null, "bonferroni")
    # the same permutations across ROIs: nulls of two decodings with the same labels/groups/seed line up
    X, y, g, Xt, yt = grouped_data(n_stim=30, p=12, seed=8, n_test=20)
    a = decode(X[:, :6], y, Xt[:, :6], yt, groups=g, decoder="ridge", n_permutations=20, seed=4)
    b = decode(X[:, :6], y, Xt[:, :6], yt, groups=g, decoder="ridge", n_permutations=20, seed=4)
    np.testing.assert_array_equal(a.null, b.null)
    p = correct_p_values(np.array([a.balanced_accuracy]), a.null[:, None])
    assert p[0] == pytest.approx(a.p_value)


def test_metrics_against_sklearn():
    rng = np.random.default_rng(9)
    y_true = LABELS[rng.integers(0, 3, 50)]
    y_pred = np.where(rng.random(50) < 0.6, y_true, LABELS[rng.integers(0, 3, 50)])
    m = decoding_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(m["confusion"], confusion_matrix(y_true, y_pred, labels=LABELS))
    recall = recall_score(y_true, y_pred, average=None, labels=LABELS)
    assert [m["recall"][c] for c in LABELS] == pytest.approx(list(recall))
    assert m["chance"] == pytest.approx(1 / 3)
    assert m["majority"] == pytest.approx(np.unique(y_true, return_counts=True)[1].max() / 50)
    assert np.isnan(m["auc"])
    # two classes: AUC of the second class's score
    yb = rng.integers(0, 2, 40)
    scores = yb + rng.standard_normal(40)
    mb = decoding_metrics(yb, (scores > 0.5).astype(int), scores=scores)
    assert mb["auc"] == pytest.approx(roc_auc_score(yb, scores))
    assert decoding_metrics(yb, yb, scores=np.column_stack([-scores, scores]))["auc"] == pytest.approx(mb["auc"])
    # a class absent from y_true: dropped from the balanced accuracy, as sklearn does
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = balanced_accuracy_score(["a", "a", "b"], ["a", "c", "b"])
    assert decoding_metrics(["a", "a", "b"], ["a", "c", "b"])["balanced_accuracy"] == pytest.approx(ref)


def test_result_row_and_registry_errors():
    X, y, g, Xt, yt = grouped_data(n_stim=20, p=6, seed=10, n_test=12, k=2)
    res = decode(X, y, Xt, yt, groups=g, decoder="logistic", options={"C": [0.1, 1.0]}, n_folds=3)
    row = res.to_row()
    for key in (
        "accuracy",
        "balanced_accuracy",
        "chance",
        "majority",
        "auc",
        "p_value",
        "n_train",
        "n_test",
        "decoder",
    ):
        assert key in row
    assert row["n_train"] == 40 and row["n_test"] == 12 and np.isnan(row["p_value"]) and res.null.shape == (0,)
    assert np.isfinite(res.auc) and res.hyperparameters["C"] in (0.1, 1.0)
    assert res.confusion.shape == (2, 2) and res.confusion.sum() == 12
    assert set(DECODERS) == {"logistic", "svm", "ridge", "mlp"}
    with pytest.raises(ValueError, match=r"valid choices.*logistic"):
        make_decoder("lda")
    with pytest.raises(ValueError, match="valid options"):
        make_decoder("ridge", C=1.0)
    with pytest.raises(ValueError, match="unknown option"):
        decode(X, y, Xt, yt, decoder="svm", options={"alpha": 1.0})
    with pytest.raises(ValueError, match="metric"):
        decode(X, y, Xt, yt, decoder="ridge", metric="f1")
    pipe = make_decoder("logistic", seed=1, screening=3, C=0.5)
    assert [s for s, _ in pipe.steps] == ["scale", "screen", "clf"] and pipe.named_steps["clf"].C == 0.5
    # screening inside the folds; svm decodes too (generic permutation path)
    res = decode(X, y, Xt, yt, groups=g, decoder="svm", screening=3, n_folds=3, n_permutations=3)
    assert res.null.shape == (3,) and 0 < res.p_value <= 1


@pytest.mark.parametrize("decoder", ["ridge", "logistic"])
def test_cross_validation_with_another_measurement_of_the_held_out_rows(decoder):
    """X_eval: trained on X's training part, scored on X_eval's held-out rows; equals decode() fold by fold."""
    X, y, g = grouped_data(n_stim=30, repeats=2, seed=3)
    X_eval = X + np.random.default_rng(4).standard_normal(X.shape)
    res = cross_validate_decoding(X, y, groups=g, decoder=decoder, n_folds=3, n_inner_folds=3, seed=1, X_eval=X_eval)
    expected = np.empty_like(y)
    for tr, te in GroupKFold(3, shuffle=True, random_state=1).split(X, groups=g):
        fold = decode(X[tr], y[tr], X_eval[te], y[te], groups=g[tr], decoder=decoder, n_folds=3, seed=1)
        expected[te] = fold.predictions
    np.testing.assert_array_equal(res.predictions, expected)
    same = cross_validate_decoding(X, y, groups=g, decoder=decoder, n_folds=3, n_inner_folds=3, seed=1)
    assert not np.array_equal(same.predictions, res.predictions)  # X_eval is really what is scored
    with pytest.raises(ValueError, match="X_eval"):
        cross_validate_decoding(X, y, groups=g, X_eval=X_eval[:, :3])


def test_non_finite_inputs_and_negative_permutations_are_named_errors():
    X, y, g, Xt, yt = grouped_data(n_stim=20, n_test=6)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X_train: 1 NaN or infinite values in 1 of 15 columns"):
        decode(bad, y, Xt, yt, groups=g)
    with pytest.raises(ValueError, match="X_eval: 1 NaN"):
        cross_validate_decoding(X, y, groups=g, X_eval=bad)
    with pytest.raises(ValueError, match="n_permutations"):
        decode(X, y, Xt, yt, groups=g, n_permutations=-1)
