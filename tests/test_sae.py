"""Sparse autoencoders of brain responses: references are numpy, scikit-learn and hand-computed cases."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.metrics import r2_score

from scene2brain.representation.sae import SparseAutoencoder, dead_units, erk_densities, sparsity_stats


def sparse_data(n=600, atoms=8, voxels=80, noise=0.02, seed=0):
    """X = S @ D + noise, S non-negative with 1-2 active atoms per row; D unit-norm rows."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((atoms, voxels))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    S = np.zeros((n, atoms))
    for i in range(n):
        active = rng.choice(atoms, rng.integers(1, 3), replace=False)
        S[i, active] = rng.uniform(0.5, 1.5, len(active))
    X = S @ D + noise * rng.standard_normal((n, voxels))
    return X * 3.0 + 10.0, S, D  # not standardised: a voxel offset and scale for the estimator to remove


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one torch thread is faster than two fighting over a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return sparse_data()


def quick(**kw):
    base = dict(n_latents=8, lr=1e-2, batch_size=64, max_epochs=5, patience=5, device="cpu", l1=0.03)
    return SparseAutoencoder(**{**base, **kw})


def best_cosines(atoms, D):
    atoms = atoms / np.linalg.norm(atoms, axis=1, keepdims=True)
    return (atoms @ D.T).max(axis=0)


def test_recovers_planted_dictionary_better_than_pca(data):
    X, _, D = data
    sae = quick(max_epochs=150, patience=15).fit(X)
    ours = best_cosines(sae.dictionary_voxels(), D)
    pca = PCA(8).fit(X)
    theirs = np.abs(pca.components_ @ D.T).max(axis=0)  # PCA's sign is arbitrary: its best case
    assert np.median(ours) >= 0.9
    assert np.median(ours) > np.median(theirs) + 0.1
    assert sae.score(X) > 0.9
    # the codes are the planted sparse loadings, up to order and scale: mostly zeros
    stats = sparsity_stats(sae.transform(X))
    assert stats["fraction_zero"] > 0.6


def test_standardisation_uses_training_rows_only(data):
    X, S, _ = data
    train, test = X[:400], X[400:]
    sae = quick(max_epochs=3).fit(train)
    np.testing.assert_allclose(sae.mean_, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sae.scale_, train.std(axis=0), rtol=1e-12)
    # a class defined by atom 0 being active, shifted further along the first 10 voxels
    cls = S[400:, 0] > 0
    shifted = test.copy()
    shifted[cls, :10] += 5.0
    codes = sae.transform(shifted)
    np.testing.assert_allclose(sae.transform(shifted[cls]), codes[cls], rtol=1e-5, atol=1e-6)
    # a per-class z-score (the seed's) maps each class onto the training units differently
    sub = shifted[cls]
    per_class = (sub - sub.mean()) / sub.std() * sae.scale_ + sae.mean_
    assert not np.allclose(sae.transform(per_class), codes[cls], atol=1e-3)


def test_transform_is_independent_of_the_batch(data):
    X, _, _ = data
    sae = quick(architecture="mlp", hidden=(24, 12), max_epochs=3).fit(X[:400])
    test = X[400:]
    sae.module_.train()  # left in training mode by the caller: transform must still use eval mode
    Z = sae.transform(test)
    parts = np.concatenate([sae.transform(test[:7]), sae.transform(test[7:50]), sae.transform(test[50:])])
    np.testing.assert_allclose(parts, Z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sae.transform(test[3:4]), Z[3:4], rtol=1e-5, atol=1e-6)
    # the same network in training mode (batch statistics, the seed's bug) depends on the batch
    net = sae.module_
    x = torch.as_tensor((test - sae.mean_) / sae.scale_, dtype=torch.float32)
    net.train()
    with torch.no_grad():
        whole, part = net.encoder(x)[:7], net.encoder(x[:7])
    net.eval()
    assert not torch.allclose(whole, part, atol=1e-4)


@pytest.mark.parametrize("kw", [dict(), dict(architecture="mlp", hidden=(24, 12), weight_sparsity=0.8)])
def test_seeded_fits_are_identical(data, kw):
    X, _, _ = data
    a, b = quick(**kw).fit(X), quick(**kw).fit(X)
    c = quick(random_state=1, **kw).fit(X)
    sa, sb, sc = (m.module_.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[name], sb[name]) for name in sa)
    assert not all(torch.equal(sa[name], sc[name]) for name in sa)
    np.testing.assert_array_equal(a.history_["train_loss"], b.history_["train_loss"])


def test_training_stimuli_are_refused(data):
    X, _, _ = data
    ids = np.array([f"img{i:04d}" for i in range(len(X))])
    sae = quick(max_epochs=2).fit(X[:400], stimulus_ids=ids[:400])
    np.testing.assert_array_equal(sae.training_ids_, ids[:400])
    sae.transform(X[400:], stimulus_ids=ids[400:])  # held out: fine
    mixed = np.r_[390:410]
    with pytest.raises(ValueError, match=r"stimulus_ids: 10 of the analysed stimuli.*'img0390'"):
        sae.transform(X[mixed], stimulus_ids=ids[mixed])
    with pytest.raises(ValueError, match="stimulus_ids: 10 of"):
        sae.reconstruction_r2(X[mixed], stimulus_ids=ids[mixed])
    own = sae.transform(X[mixed], stimulus_ids=ids[mixed], allow_training=True)
    np.testing.assert_array_equal(own, sae.transform(X[mixed]))
    with pytest.raises(ValueError, match=r"stimulus_ids: expected one id per row of X \(20\)"):
        sae.transform(X[mixed], stimulus_ids=ids[:3])
    with pytest.raises(ValueError, match="fit was called without stimulus_ids"):
        quick(max_epochs=1).fit(X[:400]).transform(X[400:], stimulus_ids=ids[400:])


def test_validation_split_keeps_groups_together(data):
    X, _, _ = data
    ids = np.repeat(np.arange(200), 3)  # each stimulus seen three times
    sae = quick(max_epochs=1, validation_fraction=0.2).fit(X, stimulus_ids=ids)
    val = sae.validation_indices_
    assert len(np.unique(ids[val])) == 40
    assert not np.isin(ids[val], np.delete(ids, val)).any()
    rows = quick(max_epochs=1, validation_fraction=0.2).fit(X).validation_indices_
    assert len(rows) == 120 and np.isin(ids[rows], np.delete(ids, rows)).any()


def test_reconstruction_r2_matches_sklearn(data):
    X, _, _ = data
    sae = quick(max_epochs=10).fit(X[:400])
    test = X[400:]
    r2 = sae.reconstruction_r2(test)
    expected = r2_score(test, sae.inverse_transform(sae.transform(test)), multioutput="raw_values")
    np.testing.assert_allclose(r2, expected, rtol=1e-10)
    assert sae.score(test) == pytest.approx(expected.mean())
    nc = np.linspace(0, 1, test.shape[1])
    normalised = sae.reconstruction_r2(test, noise_ceiling=nc)
    assert np.isnan(normalised[0])
    np.testing.assert_allclose(normalised[1:], expected[1:] / nc[1:], rtol=1e-10)
    with pytest.raises(ValueError, match=r"noise_ceiling: expected fractions in \[0, 1\].*percent"):
        sae.reconstruction_r2(test, noise_ceiling=nc * 100)
    with pytest.raises(ValueError, match=r"noise_ceiling: expected shape \(80,\)"):
        sae.reconstruction_r2(test, noise_ceiling=nc[:5])
    with pytest.raises(ValueError, match="X: expected at least 2 rows"):
        sae.reconstruction_r2(test[:1])


@pytest.mark.parametrize("tied", [False, True])
def test_atoms_have_unit_norm(data, tied):
    X, _, _ = data
    sae = quick(tied=tied, n_latents=100, max_epochs=3).fit(X)  # overcomplete
    assert sae.dictionary_.shape == (100, 80)
    np.testing.assert_allclose(np.linalg.norm(sae.dictionary_, axis=1), 1.0, atol=1e-5)
    net = sae.module_
    decoder = net.W.T if tied else net.W_dec
    np.testing.assert_allclose(decoder.detach().norm(dim=0).numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose(sae.dictionary_voxels(), sae.dictionary_ * X.std(axis=0), rtol=1e-6)
    # the atoms are what the decoder adds for one unit of a latent
    unit = np.eye(100)[:3]
    np.testing.assert_allclose(
        sae.inverse_transform(unit) - sae.inverse_transform(np.zeros((1, 100))), sae.dictionary_voxels()[:3], atol=1e-5
    )


def test_topk_keeps_at_most_k_latents(data):
    X, _, _ = data
    sae = quick(sparsity="topk", k=3, l1=0.0, n_latents=20, max_epochs=3).fit(X)
    l0 = np.count_nonzero(sae.transform(X), axis=1)
    assert l0.max() == 3 and (l0 <= 3).all()
    assert sparsity_stats(sae.transform(X))["l0_mean"] <= 3
    with pytest.raises(ValueError, match=r"k: expected at most n_latents \(20\)"):
        quick(sparsity="topk", k=21, n_latents=20).fit(X)


def test_erk_densities_hand_computed():
    # raw (n_in + n_out) / (n_in n_out): 0.2 and 0.11; eps * (0.2 * 100 + 0.11 * 1000) = 0.5 * 1100
    np.testing.assert_allclose(erk_densities([(10, 10), (100, 10)], 0.5), [0.2 * 550 / 130, 0.11 * 550 / 130])
    # at 0.9 the first layer would exceed 1: it is kept dense and its excess goes to the second
    np.testing.assert_allclose(erk_densities([(10, 10), (100, 10)], 0.9), [1.0, 0.89])
    np.testing.assert_allclose(erk_densities([(10, 10), (100, 10)], 1.0), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"density: expected a value in \(0, 1\], got 1.5"):
        erk_densities([(10, 10)], 1.5)


@pytest.mark.parametrize("architecture", ["dictionary", "mlp"])
def test_weight_masks_are_fixed_through_training(data, architecture):
    X, _, _ = data
    kw = dict(architecture=architecture, weight_sparsity=0.8, n_latents=16)
    if architecture == "mlp":
        kw["hidden"] = (40, 20)
    long, short = quick(max_epochs=4, **kw).fit(X), quick(max_epochs=1, **kw).fit(X)
    weights = [w.detach().numpy() for w in long.module_.masked_weights()]
    sizes = np.array([w.size for w in weights])
    for w, mask, d in zip(weights, long.masks_, long.layer_densities_, strict=True):
        assert mask.shape == w.shape
        assert (w[~mask] == 0).all()  # exactly zero after every step
        assert (w[mask] != 0).mean() > 0.99
        assert mask.sum() == round(d * mask.size)
    for a, b in zip(long.masks_, short.masks_, strict=True):
        np.testing.assert_array_equal(a, b)  # drawn at initialisation, never changed
    shapes = [w.shape for w in weights]
    np.testing.assert_allclose(long.layer_densities_, erk_densities(shapes, 0.2))
    kept = sum(m.sum() for m in long.masks_) / sizes.sum()
    assert kept == pytest.approx(0.2, abs=0.01)


def test_early_stopping_restores_the_best_epoch():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 60))  # noise only: a wide code overfits quickly
    kw = dict(n_latents=200, lr=3e-2, l1=0.0, batch_size=16, patience=4, validation_fraction=0.25)
    sae = quick(max_epochs=60, **kw).fit(X)
    curve = sae.history_["validation_loss"]
    assert sae.best_epoch_ == int(np.argmin(curve)) < sae.n_epochs_ - 1
    assert sae.n_epochs_ == sae.best_epoch_ + 1 + 4
    assert len(sae.history_["train_loss"]) == len(curve) == sae.n_epochs_
    # training is deterministic, so a run stopped at the best epoch holds the same weights
    ref = quick(max_epochs=sae.best_epoch_ + 1, **kw).fit(X)
    for name, value in sae.module_.state_dict().items():
        torch.testing.assert_close(value, ref.module_.state_dict()[name], rtol=0, atol=0)
    val = X[sae.validation_indices_]
    mse = np.mean((sae.reconstruct(val) - val) ** 2 / sae.scale_**2)
    assert mse == pytest.approx(sae.history_["validation_mse"][sae.best_epoch_], rel=1e-4)
    assert not np.isclose(mse, sae.history_["validation_mse"][-1], rtol=1e-3)


def test_mlp_dictionary_is_the_decoded_unit_latent(data):
    X, _, _ = data
    sae = quick(architecture="mlp", hidden=(40, 20), n_latents=6, max_epochs=5).fit(X)
    Z = sae.transform(X)
    c = np.array([np.median(z[z > 0]) if (z > 0).any() else np.nan for z in Z.T])
    np.testing.assert_allclose(sae.latent_scale_, c, rtol=1e-6)
    live = np.flatnonzero(~np.isnan(c))
    assert len(live) > 0
    k = live[0]
    code = np.zeros((1, 6))
    code[0, k] = c[k]
    expected = sae.inverse_transform(code) - sae.inverse_transform(np.zeros((1, 6)))
    np.testing.assert_allclose(sae.dictionary_voxels()[k], expected[0], rtol=1e-4, atol=1e-6)
    assert np.isnan(sae.dictionary_[np.isnan(c)]).all()


def test_sparsity_stats_and_dead_units_hand_computed():
    Z = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 2.0, 3.0, 0.0], [0.0, 0.5, 0.0, 0.0]])
    assert sparsity_stats(Z) == pytest.approx({"fraction_zero": 8 / 12, "l0_mean": 4 / 3, "l0_median": 1.0})
    np.testing.assert_array_equal(dead_units(Z), [True, False, False, True])
    with pytest.raises(ValueError, match="Z: expected finite values"):
        dead_units(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="Z: expected a 2-D array"):
        sparsity_stats(np.ones(3))


BAD_PARAMETERS = [
    (dict(n_latents=0), "n_latents: expected an integer >= 1, got 0"),
    (dict(architecture="conv"), "architecture: unknown 'conv'"),
    (dict(sparsity="l0"), "sparsity: unknown 'l0'"),
    (dict(tied=True, architecture="mlp"), "tied: only the 'dictionary' architecture"),
    (dict(hidden=(4,)), "hidden: only the 'mlp' architecture"),
    (dict(architecture="mlp", hidden=(0, 3)), "hidden: expected positive integer widths"),
    (dict(weight_sparsity=1.0), r"weight_sparsity: expected a value in \[0, 1\)"),
    (dict(validation_fraction=1.0), r"validation_fraction: expected a value in \[0, 1\)"),
    (dict(l1=-1.0), "l1: expected a finite value >= 0"),
    (dict(lr=0.0), "lr: expected a finite value > 0"),
    (dict(device="tpu"), "device: expected 'auto', 'cpu' or 'cuda"),
    (dict(batch_size=0), "batch_size: expected an integer >= 1"),
    (dict(architecture="mlp", hidden=(4, 2), batch_size=1), r"batch_size: the 'mlp' architecture \(batch norm\)"),
]


@pytest.mark.parametrize(("kw", "message"), BAD_PARAMETERS, ids=[m.split(":")[0] for _, m in BAD_PARAMETERS])
def test_bad_parameters_are_named(kw, message):
    X = np.random.default_rng(0).standard_normal((30, 12))
    with pytest.raises(ValueError, match=message):
        quick(**kw).fit(X)


def test_bad_data_is_named(data):
    X, _, _ = data
    bad = X[:50].copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match=r"X: expected finite values, found 1 NaN/inf entries \(first at row 3"):
        quick().fit(bad)
    with pytest.raises(ValueError, match="X: 3 training rows are too few for a validation part"):
        quick(validation_fraction=0.5).fit(X[:3])
    with pytest.raises(ValueError, match="X: 2 training groups are too few"):
        quick().fit(X[:10], groups=np.repeat([0, 1], 5))
    quick(max_epochs=1, validation_fraction=0).fit(X[:3])  # without a validation part, 3 rows are enough
    with pytest.raises(ValueError, match=r"lr: training diverged \(non-finite loss in epoch 1\) with lr=1e\+30"):
        quick(lr=1e30).fit(X)
    with pytest.raises(ValueError, match=r"hidden: .*got \(1, 0\) \(the default D//3, D//6 for 5 voxels"):
        quick(architecture="mlp").fit(X[:, :5])
    sae = quick(max_epochs=1).fit(X)
    with pytest.raises(ValueError, match=r"X: expected 80 columns \(as in fit\), got 79"):
        sae.transform(X[:, :79])
    with pytest.raises(ValueError, match=r"Z: expected 8 columns \(as in fit\), got 7"):
        sae.inverse_transform(np.zeros((2, 7)))


def test_scikit_learn_conventions(data):
    X, _, _ = data
    sae = quick(max_epochs=2, n_latents=5)
    copy = clone(sae)
    assert copy.get_params() == sae.get_params()
    assert not hasattr(copy, "module_")
    Z = sae.fit_transform(X)
    assert Z.shape == (600, 5) and Z.dtype == np.float32 and (Z >= 0).all()
