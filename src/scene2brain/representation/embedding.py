"""Two-dimensional embeddings of codes: one fit for all classes, held-out rows placed into it.

The source project fitted t-SNE / UMAP separately for each class, so the maps of two
classes had unrelated axes and could not be compared. :func:`embed` fits **once** on all
rows of a split (every class together, so distances between classes mean something) and
:meth:`Embedding.place` puts new rows (a held-out split) into that fitted map without
moving the fitted points (openTSNE's :meth:`openTSNE.TSNEEmbedding.transform`, UMAP's
``transform``).

t-SNE is :mod:`openTSNE` (a dependency); UMAP is :mod:`umap` (``umap-learn``), optional
(``pip install scene2brain[umap]``) and imported only when asked for. Both are seeded
and run single-threaded, so the same input and seed give the same map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EMBEDDINGS = ("tsne", "umap")


def _codes(codes: Any, name: str, n_features: int | None = None) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D array (rows, features), got shape {codes.shape}")
    if n_features is not None and codes.shape[1] != n_features:
        raise ValueError(
            f"{name}: expected {n_features} columns (the features the embedding was fitted on), got {codes.shape[1]}"
        )
    bad = ~np.isfinite(codes)
    if bad.any():
        raise ValueError(
            f"{name}: {int(bad.sum())} NaN or infinite values in {int(bad.any(axis=1).sum())} of {len(codes)} rows; "
            "expected finite values"
        )
    return codes


def _umap() -> Any:
    try:
        import umap
    except ImportError as err:
        raise ImportError(
            "method='umap' needs the optional package umap-learn: pip install scene2brain[umap] "
            f"(or pip install umap-learn); import failed with: {err}"
        ) from None
    return umap


@dataclass
class Embedding:
    """A fitted low-dimensional map of codes.

    Attributes
    ----------
    method : {"tsne", "umap"}
    coordinates : ndarray of shape (n_rows, n_components)
        The map of every fitted row (all classes, one array, in the input's row order).
    model : object
        The fitted :class:`openTSNE.TSNEEmbedding` or :class:`umap.UMAP`.
    n_features : int
        Columns of the fitted codes (new rows must have as many).
    """

    method: str
    coordinates: np.ndarray
    model: Any
    n_features: int

    def place(self, new_codes: np.ndarray) -> np.ndarray:
        """Place new rows into the fitted map, leaving the fitted points where they are.

        t-SNE: each new point starts at the median of its nearest fitted points and is
        optimised against the fixed map (:meth:`openTSNE.TSNEEmbedding.transform`, its
        defaults). UMAP: :meth:`umap.UMAP.transform`.

        Parameters
        ----------
        new_codes : ndarray of shape (n_new, n_features)

        Returns
        -------
        ndarray of shape (n_new, n_components)
        """
        new_codes = _codes(new_codes, "new_codes", self.n_features)
        return np.asarray(self.model.transform(new_codes), dtype=np.float64)


def embed(
    codes: np.ndarray,
    method: str = "tsne",
    *,
    n_components: int = 2,
    random_state: int = 0,
    perplexity: float = 30.0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "euclidean",
    n_iter: int = 500,
) -> Embedding:
    """Fit one embedding on all rows of ``codes`` (every class together).

    Parameters
    ----------
    codes : ndarray of shape (n_rows, n_features)
        Codes of every row of a split, all classes together (never one fit per class).
    method : {"tsne", "umap"}
        ``tsne``: :class:`openTSNE.TSNE` (PCA initialisation, ``n_jobs=1``); ``umap``:
        :class:`umap.UMAP` (optional: ``pip install scene2brain[umap]``).
    n_components : int
        Dimensions of the map.
    random_state : int
        Seeds the method; the same codes and seed give the same map.
    perplexity : float
        t-SNE only; must be below ``(n_rows - 1) / 3`` (each point needs ``3 * perplexity``
        neighbours).
    n_neighbors : int
        UMAP only; between 2 and ``n_rows - 1``.
    min_dist : float
        UMAP only.
    metric : str
        Distance between codes (both methods; e.g. ``"euclidean"``, ``"cosine"``).
    n_iter : int
        t-SNE only: optimisation iterations after the early exaggeration phase.

    Returns
    -------
    Embedding
        ``coordinates`` of every row (t-SNE: centred on their bounding box, the frame in
        which openTSNE places new points); ``place(new_codes)`` for held-out rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> codes = np.vstack([rng.normal(0, 1, (30, 5)), rng.normal(6, 1, (30, 5))])
    >>> emb = embed(codes, perplexity=5, n_iter=100)
    >>> emb.coordinates.shape, emb.place(codes[:2]).shape
    ((60, 2), (2, 2))
    """
    if method not in EMBEDDINGS:
        raise ValueError(f"method: unknown {method!r}; valid choices: {list(EMBEDDINGS)}")
    codes = _codes(codes, "codes")
    n = len(codes)
    if not isinstance(n_components, int | np.integer) or n_components < 1:
        raise ValueError(f"n_components: expected a positive integer, got {n_components!r}")
    if method == "tsne":
        if not 0 < perplexity < (n - 1) / 3:
            raise ValueError(
                f"perplexity: expected a value in (0, {(n - 1) / 3:g}) for {n} rows (each point needs 3 x perplexity "
                f"neighbours), got {perplexity}; lower it or embed more rows"
            )
        from openTSNE import TSNE

        tsne = TSNE(
            n_components=n_components,
            perplexity=perplexity,
            metric=metric,
            n_iter=n_iter,
            initialization="pca",
            n_jobs=1,
            random_state=random_state,
        )
        model = tsne.fit(codes)
        # openTSNE's transform first centres the fitted map on its bounding box, in place; doing it now keeps
        # the coordinates returned here and the points placed later in one frame
        model -= (np.max(model, axis=0) + np.min(model, axis=0)) / 2
        coordinates = np.asarray(model, dtype=np.float64).copy()
    else:
        if not 2 <= n_neighbors < n:
            raise ValueError(f"n_neighbors: expected an integer in 2 .. {n - 1} for {n} rows, got {n_neighbors}")
        umap = _umap()
        model = umap.UMAP(
            n_components=n_components,
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            metric=metric,
            random_state=random_state,
            n_jobs=1,
        ).fit(codes)
        coordinates = np.asarray(model.embedding_, dtype=np.float64).copy()
    return Embedding(method, coordinates, model, codes.shape[1])
