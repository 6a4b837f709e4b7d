import sys

import numpy as np
import pytest

from scene2brain.representation.embedding import Embedding, embed


def _clusters(n_per=40, seed=0):
    """Three well-separated classes in 6 dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, (3, 6))
    labels = np.repeat(np.arange(3), n_per)
    return centres[labels] + rng.standard_normal((3 * n_per, 6)), labels


def _knn_agreement(coordinates, labels, k=5):
    d = np.linalg.norm(coordinates[:, None] - coordinates[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    neighbours = np.argsort(d, axis=1)[:, :k]
    return float(np.mean(labels[neighbours] == labels[:, None]))


def test_tsne_is_one_seeded_fit_for_all_classes():
    codes, labels = _clusters()
    a = embed(codes, perplexity=10, n_iter=200, random_state=1)
    b = embed(codes, perplexity=10, n_iter=200, random_state=1)
    c = embed(codes, perplexity=10, n_iter=200, random_state=2)
    assert isinstance(a, Embedding) and a.method == "tsne" and a.n_features == 6
    assert a.coordinates.shape == (len(codes), 2)  # every row of every class in one map
    np.testing.assert_array_equal(a.coordinates, b.coordinates)
    assert not np.allclose(a.coordinates, c.coordinates)
    assert _knn_agreement(a.coordinates, labels) > 0.95  # classes apart in the one map
    # the classes' regions differ, which separate per-class fits could not show
    centroids = np.array([a.coordinates[labels == k].mean(axis=0) for k in range(3)])
    spread = max(a.coordinates[labels == k].std(axis=0).max() for k in range(3))
    assert np.min(np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)[np.triu_indices(3, 1)]) > 2 * spread


def test_placed_rows_land_next_to_their_neighbours():
    codes, labels = _clusters(seed=1)
    emb = embed(codes, perplexity=10, n_iter=200)
    copies = codes[::10] + 1e-6  # held-out copies of training rows
    placed = emb.place(copies)
    assert placed.shape == (len(copies), 2)
    scale = np.ptp(emb.coordinates, axis=0).max()
    distance = np.linalg.norm(placed - emb.coordinates[::10], axis=1)
    assert distance.max() < 0.05 * scale, distance / scale
    # new rows of a class land among that class's fitted points
    rng = np.random.default_rng(5)
    centre = codes[labels == 2].mean(axis=0)
    new = emb.place(centre + rng.standard_normal((5, 6)))
    d = np.linalg.norm(new[:, None] - emb.coordinates[None], axis=-1)
    assert (labels[np.argsort(d, axis=1)[:, :5]] == 2).all()
    np.testing.assert_array_equal(emb.coordinates, embed(codes, perplexity=10, n_iter=200).coordinates)


def test_embedding_rejects_bad_input():
    codes, _ = _clusters(n_per=10)
    with pytest.raises(ValueError, match=r"method: unknown 'pca'; valid choices: \['tsne', 'umap'\]"):
        embed(codes, method="pca")
    with pytest.raises(ValueError, match=r"perplexity: expected a value in \(0, 9.66667\) for 30 rows"):
        embed(codes, perplexity=30)
    bad = codes.copy()
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="codes: 1 NaN or infinite values in 1 of 30 rows"):
        embed(bad, perplexity=5)
    with pytest.raises(ValueError, match=r"codes: expected a non-empty 2-D array .* got shape \(30,\)"):
        embed(codes[:, 0], perplexity=5)
    with pytest.raises(ValueError, match=r"n_neighbors: expected an integer in 2 \.\. 29 for 30 rows"):
        embed(codes, method="umap", n_neighbors=30)
    emb = embed(codes, perplexity=5, n_iter=50)
    with pytest.raises(ValueError, match="new_codes: expected 6 columns"):
        emb.place(codes[:, :4])


def test_umap_missing_names_the_extra(monkeypatch):
    codes, _ = _clusters(n_per=10)
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap now raises ImportError
    with pytest.raises(ImportError, match=r"pip install scene2brain\[umap\]"):
        embed(codes, method="umap", n_neighbors=5)


@pytest.mark.slow  # numba compiles UMAP's kernels on first use (tens of seconds)
def test_umap_one_fit_and_placement():
    pytest.importorskip("umap")
    codes, labels = _clusters(n_per=30, seed=2)
    a = embed(codes, method="umap", n_neighbors=10, random_state=0)
    b = embed(codes, method="umap", n_neighbors=10, random_state=0)
    assert a.coordinates.shape == (90, 2)
    np.testing.assert_array_equal(a.coordinates, b.coordinates)
    assert _knn_agreement(a.coordinates, labels) > 0.95
    placed = a.place(codes[:3] + 1e-6)
    d = np.linalg.norm(placed[:, None] - a.coordinates[None], axis=-1)
    assert (labels[np.argsort(d, axis=1)[:, :5]] == labels[:3, None]).all()
