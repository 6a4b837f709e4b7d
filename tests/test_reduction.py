"""Reduction fitted on training stimuli only, and stored with the features."""

import numpy as np
import pytest
import zarr
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from scene2brain.features import FeatureStore, Reduction, reduce_features
from scene2brain.features.reduction import fit_reduction, transform_rows


def _features(n=60, p=40, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 5)) @ rng.standard_normal((5, p)) + 0.1 * rng.standard_normal((n, p))).astype(
        np.float32
    )


@pytest.mark.parametrize(
    "reduction",
    [Reduction("pca", 4), Reduction("pca", 4, standardise=True), Reduction("srp", 8), Reduction("standardise")],
)
def test_reductions_are_fitted_on_training_rows_only(reduction):
    X = _features()
    train = np.arange(0, 60, 2)
    reduced, _ = reduce_features(X, train, reduction)
    changed = X.copy()
    changed[1::2] = 100 * changed[1::2] + 7  # non-training rows must not influence the fit
    reduced2, _ = reduce_features(changed, train, reduction)
    np.testing.assert_allclose(reduced[train], reduced2[train], rtol=1e-4, atol=1e-4)
    assert reduced.dtype == np.float32 and len(reduced) == 60


def test_pca_and_standardisation_match_scikit_learn():
    X = _features()
    train = np.arange(40)
    reduced, _ = reduce_features(X, train, Reduction("pca", 3, solver="full"))
    reference = PCA(3, svd_solver="full").fit(X[train].astype(np.float64)).transform(X)
    np.testing.assert_allclose(np.abs(reduced), np.abs(reference), rtol=1e-3, atol=1e-3)
    z, _ = reduce_features(X, train, Reduction("standardise"))
    np.testing.assert_allclose(z, StandardScaler().fit(X[train]).transform(X), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="n_components: expected a positive integer for pca"):
        Reduction("pca")


def test_incremental_pca_on_a_lazy_array_spans_the_same_subspace(tmp_path):
    X = _features(n=300)
    lazy = zarr.create_array(tmp_path / "x.zarr", shape=X.shape, chunks=(64, 40), dtype="float32")
    lazy[:] = X
    train = np.random.default_rng(1).permutation(300)[:200]
    exact, _ = reduce_features(X, train, Reduction("pca", 5, solver="full"))
    incremental, est = reduce_features(lazy, train, Reduction("pca", 5, solver="incremental"))
    assert est.n_samples_seen_ == 200
    # same 5-D subspace: projecting one on the other loses almost nothing
    coef, *_ = np.linalg.lstsq(exact, incremental, rcond=None)
    assert np.linalg.norm(exact @ coef - incremental) / np.linalg.norm(incremental) < 1e-3


def test_reduction_is_saved_with_the_store(tmp_path):
    X = _features()
    store = FeatureStore(tmp_path)
    source_key = {"model": "m", "layer": "l"}
    train = np.arange(30)
    first, est = reduce_features(X, train, Reduction("pca", 4), store=store, source_key=source_key)
    again, est2 = reduce_features(np.zeros_like(X), train, Reduction("pca", 4), store=store, source_key=source_key)
    np.testing.assert_array_equal(first, again)  # read back, not recomputed from the (changed) input
    np.testing.assert_allclose(est2.transform(X[:3]), est.transform(X[:3]), rtol=1e-6)
    assert len(list(tmp_path.rglob("reducer.joblib"))) == 1
    other, _ = reduce_features(X, np.arange(1, 31), Reduction("pca", 4), store=store, source_key=source_key)
    assert len(list(tmp_path.rglob("reducer.joblib"))) == 2 and not np.allclose(np.abs(other), np.abs(first))


def test_incremental_pca_streams_every_training_row_and_can_standardise(tmp_path):
    from scene2brain.features.reduction import fit_reduction

    X = _features(n=300) * np.linspace(1, 50, 40, dtype=np.float32)  # columns on very different scales
    lazy = zarr.create_array(tmp_path / "x.zarr", shape=X.shape, chunks=(64, 40), dtype="float32")
    lazy[:] = X
    train = np.arange(200)
    est = fit_reduction(lazy, train, Reduction("pca", 10, solver="incremental"), block_rows=64)
    assert est.n_samples_seen_ == 200  # no short final block left out
    z_est = fit_reduction(lazy, train, Reduction("pca", 5, standardise=True, solver="incremental"), block_rows=64)
    np.testing.assert_allclose(z_est[0].mean_, X[train].mean(axis=0), rtol=1e-4)
    exact, _ = reduce_features(X, train, Reduction("pca", 5, standardise=True, solver="full"))
    incremental = z_est.transform(X)
    coef, *_ = np.linalg.lstsq(exact, incremental, rcond=None)
    assert np.linalg.norm(exact @ coef - incremental) / np.linalg.norm(incremental) < 1e-3


def test_pca_is_stable_to_the_blas_thread_count():
    """The fitted components do not move with the thread count (a float32 fit moved 2.6e-4 here)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((240, 1280)) * np.linspace(1, 0.01, 1280) ** 2).astype(np.float32)
    X = np.maximum(X @ rng.standard_normal((1280, 1280)).astype(np.float32) * 0.05, 0)
    outputs = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            outputs.append(transform_rows(fit_reduction(X, np.arange(200), Reduction("pca", 64)), X))
    assert outputs[0].dtype == np.float32
    assert np.abs(outputs[0] - outputs[1]).max() <= 1e-6 * np.abs(outputs[0]).max()
