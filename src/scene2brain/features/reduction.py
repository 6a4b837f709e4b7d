"""Dimensionality reduction fitted on training stimuli only."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA


def pca_reduce(
    features: np.ndarray, train_index: np.ndarray, n_components: int, random_state: int = 0
) -> tuple[np.ndarray, PCA]:
    """Project all stimuli on the principal components of the training stimuli.

    Parameters
    ----------
    features : ndarray of shape (n_stimuli, n_features)
    train_index : ndarray of int
        Rows the PCA is fitted on; no other row influences the projection.
    n_components : int
        Clipped to the number of training rows and features.
    random_state : int
        Seed of the randomized solver (used for wide matrices).

    Returns
    -------
    reduced : ndarray of shape (n_stimuli, n_components), float32
    pca : sklearn.decomposition.PCA
        The fitted reducer.
    """
    n_components = int(min(n_components, len(train_index), features.shape[1]))
    pca = PCA(n_components=n_components, random_state=random_state)
    pca.fit(np.asarray(features[train_index], dtype=np.float64))
    return pca.transform(np.asarray(features, dtype=np.float64)).astype(np.float32), pca
