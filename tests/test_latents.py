import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from scene2brain.decoding import cross_validate_decoding, permute_labels
from scene2brain.representation.latents import (
    atom_roi_fraction,
    baseline_codes,
    compare_separability,
    dictionary_recovery,
    fdr_across,
    latent_selectivity,
    norm_test,
)


def _codes(n=60, n_latents=6, seed=0):
    """Sparse non-negative codes (many exact zeros: ties) with latent 0 selective for class "b"."""
    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b"] * (n // 2))
    codes = np.maximum(rng.normal(-0.3, 1.0, (n, n_latents)), 0.0)
    codes[:, 0] += 2.0 * (labels == "b")
    return codes, labels


def test_selectivity_matches_sklearn_auc_and_scipy_mannwhitney():
    codes, labels = _codes()
    table = latent_selectivity(codes, labels, n_permutations=0)
    pos = labels == "b"
    for j in range(codes.shape[1]):
        assert table["auc"][j] == pytest.approx(roc_auc_score(pos, codes[:, j]))
        ref = stats.mannwhitneyu(codes[pos, j], codes[~pos, j], alternative="two-sided", method="asymptotic")
        assert table["mannwhitney_u"][j] == pytest.approx(ref.statistic)
        assert table["p_mannwhitney"][j] == pytest.approx(ref.pvalue)
    frame = pd.DataFrame(codes).assign(label=labels)
    np.testing.assert_allclose(table["mean[a]"], frame.groupby("label").mean().loc["a"])
    np.testing.assert_allclose(table["active[b]"], (frame.drop(columns="label") > 0).groupby(labels).mean().loc["b"])
    assert (table["positive"] == "b").all() and table["p_permutation"].isna().all()
    # the other class as positive: AUC mirrored
    other = latent_selectivity(codes, labels, positive="a", n_permutations=0)
    np.testing.assert_allclose(other["auc"], 1 - table["auc"])


def _loop_p(codes, labels, positive, groups, n_permutations, seed):
    """Permutation p-values one permutation and one latent at a time, AUC by scikit-learn."""
    observed = np.array([abs(roc_auc_score(labels == positive, c) - 0.5) for c in codes.T])
    perms = permute_labels(labels, groups, n_permutations, seed)
    null = np.array([[abs(roc_auc_score(p == positive, c) - 0.5) for c in codes.T] for p in perms])
    return (1 + (null >= observed - 1e-12).sum(axis=0)) / (1 + n_permutations)


@pytest.mark.parametrize("grouped", [False, True])
def test_permutation_p_values_equal_a_loop_over_permutations(grouped):
    codes, labels = _codes(n=40, n_latents=4, seed=1)
    groups = np.repeat(np.arange(20), 2) if grouped else None
    if grouped:  # labels constant within each pair of rows, so the pairs are the permutation units
        labels = np.repeat(np.array(["a", "b"] * 10), 2)
        codes[:, 0] = np.maximum(codes[:, 0], 0) + 2.0 * (labels == "b")
    table = latent_selectivity(codes, labels, n_permutations=200, groups=groups, random_state=3)
    np.testing.assert_allclose(table["p_permutation"], _loop_p(codes, labels, "b", groups, 200, 3))
    assert table["p_permutation"][0] == pytest.approx(1 / 201)  # the selective latent beats every permutation
    np.testing.assert_allclose(table["p_fdr"], stats.false_discovery_control(table["p_permutation"], method="bh"))


def test_a_label_free_latent_is_not_selective():
    codes, labels = _codes(n=200, seed=2)
    table = latent_selectivity(codes, labels, n_permutations=300)
    assert table["p_permutation"][0] < 0.01 and table["p_fdr"][0] < 0.05
    assert (table["p_fdr"][1:] > 0.05).all()
    assert abs(table["auc"][1:] - 0.5).max() < 0.15


def test_dead_latent_has_no_p_value_and_is_left_out_of_the_fdr_family():
    codes, labels = _codes()
    codes[:, 3] = 0.0
    table = latent_selectivity(codes, labels, n_permutations=100)
    assert table["auc"][3] == 0.5
    assert np.isnan(table[["p_mannwhitney", "p_permutation", "p_fdr"]].iloc[3]).all()
    valid = table["p_permutation"].notna()
    expected = stats.false_discovery_control(table["p_permutation"][valid], method="bh")
    np.testing.assert_allclose(table["p_fdr"][valid], expected)


def test_selectivity_rejects_bad_input():
    codes, labels = _codes()
    with pytest.raises(ValueError, match="exactly two classes"):
        latent_selectivity(codes, np.arange(len(codes)) % 3, n_permutations=0)
    with pytest.raises(ValueError, match="positive: 'c' is not among the labels"):
        latent_selectivity(codes, labels, positive="c", n_permutations=0)
    with pytest.raises(ValueError, match="labels: expected 60 labels"):
        latent_selectivity(codes, labels[:-1])
    bad = codes.copy()
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="codes: 1 NaN or infinite values in 1 of 6 columns"):
        latent_selectivity(bad, labels)
    with pytest.raises(ValueError, match="groups: expected 60 entries"):
        latent_selectivity(codes, labels, groups=np.arange(10))
    # three classes with positive: one class against the others, means for every class
    three = np.array(["a", "b", "c"] * 20)
    table = latent_selectivity(codes, three, positive="c", n_permutations=0)
    assert {"mean[a]", "mean[b]", "mean[c]"} <= set(table.columns) and (table["n_positive"] == 20).all()


def test_fdr_across_is_benjamini_hochberg_over_all_tables():
    rng = np.random.default_rng(0)
    tables = {f"sub{i}": pd.DataFrame({"p_permutation": rng.uniform(0, 0.2, 5)}) for i in range(3)}
    tables["sub1"].loc[2, "p_permutation"] = np.nan
    out = fdr_across(tables)
    assert list(out) == list(tables)
    pooled = pd.concat(tables.values())["p_permutation"].to_numpy()
    expected = np.full(len(pooled), np.nan)
    expected[~np.isnan(pooled)] = stats.false_discovery_control(pooled[~np.isnan(pooled)], method="bh")
    np.testing.assert_allclose(pd.concat(out.values())["p_fdr_across"], expected)
    # a larger family is more conservative than each table alone
    alone = stats.false_discovery_control(tables["sub0"]["p_permutation"], method="bh")
    assert (out["sub0"]["p_fdr_across"].to_numpy() >= alone - 1e-12).all()
    assert isinstance(fdr_across(list(tables.values())), list)
    with pytest.raises(ValueError, match=r"tables\['sub0'\]: no column 'p'"):
        fdr_across(tables, column="p")
    with pytest.raises(ValueError, match=r"values outside \[0, 1\]"):
        fdr_across([pd.DataFrame({"p_permutation": [0.5, 1.5]})])


def test_baseline_codes_are_fitted_on_training_rows_only():
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((4, 12))
    X_train = rng.laplace(size=(80, 4)) @ mixing + 0.1 * rng.standard_normal((80, 12))
    X_eval = rng.laplace(size=(30, 4)) @ mixing + 0.1 * rng.standard_normal((30, 12))
    out = baseline_codes(X_train, X_eval, 4)
    assert set(out) == {"pca", "ica", "nmf"}
    pca = PCA(4, random_state=0).fit(X_train)
    train, ev = out["pca"]
    sign = np.sign(np.sum(out["pca"].patterns * pca.components_, axis=1))  # components up to sign
    np.testing.assert_allclose(train, pca.transform(X_train) * sign, atol=1e-10)
    np.testing.assert_allclose(ev, pca.transform(X_eval) * sign, atol=1e-10)
    for name in ("pca", "ica"):  # oriented: training codes skew non-negatively
        assert (stats.skew(out[name].train, axis=0) >= 0).all()
    # other evaluation rows do not change the fit
    again = baseline_codes(X_train, X_eval[:5] * 10, 4)
    for name in out:
        np.testing.assert_allclose(again[name].train, out[name].train)
        np.testing.assert_allclose(again[name].patterns, out[name].patterns)
    nmf = out["nmf"]
    assert (nmf.patterns >= 0).all() and (nmf.train >= 0).all() and (nmf.eval >= 0).all()
    shifted = X_train - X_train.min(axis=0)
    np.testing.assert_allclose(nmf.train @ nmf.patterns, nmf.estimator.inverse_transform(nmf.train))
    assert np.linalg.norm(shifted - nmf.train @ nmf.patterns) < np.linalg.norm(shifted)
    with pytest.raises(ValueError, match=r"n_components: expected an integer in 1 \.\. 12"):
        baseline_codes(X_train, X_eval, 13)
    with pytest.raises(ValueError, match="methods: unknown"):
        baseline_codes(X_train, X_eval, 2, methods=("svd",))
    with pytest.raises(ValueError, match="X_eval: expected 12 columns"):
        baseline_codes(X_train, X_eval[:, :5], 2)


def test_ica_recovers_independent_sparse_sources_better_than_pca():
    rng = np.random.default_rng(1)
    sources = np.maximum(rng.standard_normal((600, 3)) - 1.2, 0)  # sparse, independent
    patterns = rng.uniform(0, 1, (3, 20))
    X = sources @ patterns + 0.01 * rng.standard_normal((600, 20))
    out = baseline_codes(X, X[:10], 3, methods=("pca", "ica"))
    ica, _ = dictionary_recovery(patterns, out["ica"].patterns)
    pca, _ = dictionary_recovery(patterns, out["pca"].patterns)
    assert ica.min() > 0.99 and np.median(pca) < np.median(ica)


def test_compare_separability_uses_the_same_folds_for_every_code():
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"] * 40)
    groups = np.repeat(np.arange(40), 2)
    informative = rng.standard_normal((80, 5)) + 1.5 * (labels == "b")[:, None]
    noise = rng.standard_normal((80, 7))
    codes = {"sae": informative, "noise": noise}
    table = compare_separability(codes, labels, groups=groups, decoder="ridge", n_permutations=50, random_state=2)
    assert table["code"].tolist() == ["sae", "noise"] and table["n_features"].tolist() == [5, 7]
    for name, X in codes.items():
        ref = cross_validate_decoding(X, labels, groups=groups, decoder="ridge", n_permutations=50, seed=2)
        row = table.set_index("code").loc[name]
        assert row["balanced_accuracy"] == pytest.approx(ref.balanced_accuracy)
        assert row["auc"] == pytest.approx(ref.auc) and row["p_value"] == pytest.approx(ref.p_value)
    sae, other = table.set_index("code").loc["sae"], table.set_index("code").loc["noise"]
    assert sae["balanced_accuracy"] > 0.8 and sae["p_value"] < 0.05 and other["p_value"] > 0.05
    assert (table["p_fwe"] >= table["p_value"] - 1e-12).all()
    with pytest.raises(ValueError, match=r"codes\['noise'\]: expected 80 rows"):
        compare_separability({"sae": informative, "noise": noise[:50]}, labels, groups=groups)
    with pytest.raises(ValueError, match="codes: expected a non-empty mapping"):
        compare_separability({}, labels, groups=groups)


def test_norm_test_is_mannwhitney_on_row_norms():
    codes, labels = _codes()
    out = norm_test(codes, labels)
    norms = np.linalg.norm(codes, axis=1)
    ref = stats.mannwhitneyu(norms[labels == "b"], norms[labels == "a"], alternative="two-sided")
    assert out["u"] == pytest.approx(ref.statistic) and out["p_value"] == pytest.approx(ref.pvalue)
    assert out["median_norm_positive"] == pytest.approx(np.median(norms[labels == "b"]))
    # blind to which latent carries the class: moving the signal to another latent gives the same test
    swapped = codes[:, [1, 0, 2, 3, 4, 5]]
    assert norm_test(swapped, labels)["p_value"] == pytest.approx(out["p_value"])


def test_dictionary_recovery_on_hand_made_cases():
    true = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    learned = np.array([[0.0, 0.0, 0.0, 5.0], [3.0, 3.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    best, index = dictionary_recovery(true, learned)
    # scaled and permuted atoms: cosine 1; the negated atom counts -1, so no atom recovers pattern 1
    np.testing.assert_allclose(best, [1.0, 0.0, 1.0])
    assert index[0] == 1 and index[2] == 0
    # a mixed atom: cos = (1*1 + 1*0) / (sqrt(2) * 1)
    best, index = dictionary_recovery(true[:1], np.array([[1.0, 0.0, 0.0, 0.0]]))
    assert best[0] == pytest.approx(1 / np.sqrt(2)) and index[0] == 0
    # two true patterns sharing a best atom: one-to-one gives the second its second-best
    shared = np.array([[1.0, 0.1, 0.0], [1.0, 0.0, 0.1]])
    atoms = np.array([[1.0, 0.05, 0.05], [0.0, 0.0, 1.0]])
    assert dictionary_recovery(shared, atoms)[1].tolist() == [0, 0]
    best, index = dictionary_recovery(shared, atoms, one_to_one=True)
    assert sorted(index.tolist()) == [0, 1] and best[index == 1][0] == pytest.approx(0.1 / np.sqrt(1.01))
    with pytest.raises(ValueError, match="learned_patterns: expected 4 columns"):
        dictionary_recovery(true, learned[:, :3])
    with pytest.raises(ValueError, match=r"true_patterns: rows \[0\] are all zero"):
        dictionary_recovery(np.zeros((1, 4)), learned)
    with pytest.raises(ValueError, match="one_to_one needs at least 3 atoms"):
        dictionary_recovery(true, learned[:2], one_to_one=True)


def test_atom_roi_fraction():
    patterns = np.array([[1.0, -1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    table = atom_roi_fraction(patterns, ["FACE", "FACE", "SPARSE", "EV"])
    assert list(table.columns) == ["FACE", "SPARSE", "EV"]
    np.testing.assert_allclose(table.iloc[0], [2 / 6, 4 / 6, 0.0])
    np.testing.assert_allclose(table.iloc[1], [0.0, 0.0, 1.0])
    assert table.iloc[2].isna().all()
    with pytest.raises(ValueError, match="roi_labels: expected 4 entries"):
        atom_roi_fraction(patterns, ["FACE"])
