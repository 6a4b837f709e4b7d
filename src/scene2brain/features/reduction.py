"""Dimensionality reduction fitted on training stimuli only, storable beside the features."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import joblib
import numpy as np
from sklearn.base import TransformerMixin
from sklearn.decomposition import PCA, IncrementalPCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.random_projection import SparseRandomProjection

from scene2brain.features.store import FeatureStore
from scene2brain.utils.files import array_digest, atomic_path


@dataclass(frozen=True)
class Reduction:
    """What reduction to fit.

    Parameters
    ----------
    method : {"pca", "srp", "standardise"}
        Principal components, sparse random projection, or z-scoring of columns only.
    n_components : int, optional
        Output dimension for "pca" and "srp" (PCA clips it to the number of training
        rows and features).
    standardise : bool
        Z-score columns (with training means and SDs) before PCA or SRP.
    solver : {"auto", "full", "randomized", "incremental"}
        PCA solver: scikit-learn's choice, exact SVD, randomized SVD (wide layers), or
        incremental PCA over blocks of rows (features too large for memory, e.g. a lazy
        zarr array from the feature store).
    seed : int
        Seed of the randomized solver and of the random projection.
    """

    method: Literal["pca", "srp", "standardise"] = "pca"
    n_components: int | None = None
    standardise: bool = False
    solver: Literal["auto", "full", "randomized", "incremental"] = "auto"
    seed: int = 0

    # Unknown keys are errors when a run configuration is validated (pydantic reads this).
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012

    def __post_init__(self) -> None:
        if self.method not in ("pca", "srp", "standardise"):
            raise ValueError(f"method: expected 'pca', 'srp' or 'standardise', got {self.method!r}")
        if self.method != "standardise" and (self.n_components is None or self.n_components < 1):
            raise ValueError(f"n_components: expected a positive integer for {self.method}, got {self.n_components}")
        if self.method == "standardise" and self.n_components is not None:
            raise ValueError(f"n_components: 'standardise' keeps every column; got n_components={self.n_components}")
        if self.solver not in ("auto", "full", "randomized", "incremental"):
            raise ValueError(f"solver: expected auto, full, randomized or incremental, got {self.solver!r}")

    def estimator(self, n_train: int, n_features: int) -> TransformerMixin:
        """An unfitted scikit-learn transformer."""
        if self.method == "standardise":
            return StandardScaler()
        if self.method == "srp":
            step = SparseRandomProjection(self.n_components, random_state=self.seed)
        else:
            k = int(min(self.n_components, n_train, n_features))
            if self.solver == "incremental":
                step = IncrementalPCA(k)
            else:
                step = PCA(k, svd_solver=self.solver, random_state=self.seed)
        return make_pipeline(StandardScaler(), step) if self.standardise else step


#: Training rows up to this size (as float64) are fitted in float64 (see :func:`fit_reduction`).
FLOAT64_FIT_BYTES = 2 * 1024**3


def _rows(features: Any, index: np.ndarray) -> np.ndarray:
    """Rows of an in-memory or lazy (zarr, h5py) matrix as float32."""
    index = np.asarray(index)
    if isinstance(features, np.ndarray):
        return np.asarray(features[index], dtype=np.float32)
    order = np.argsort(index, kind="stable")  # zarr and h5py read increasing indices
    rows = np.sort(index)
    block = np.asarray(features.oindex[rows, :] if hasattr(features, "oindex") else features[rows], dtype=np.float32)
    out = np.empty_like(block)
    out[order] = block
    return out


def fit_reduction(
    features: Any, train_index: np.ndarray, reduction: Reduction, block_rows: int = 2048
) -> TransformerMixin:
    """Fit ``reduction`` on the rows ``train_index`` of ``features`` (and on nothing else).

    In float64 when the training rows take at most :data:`FLOAT64_FIT_BYTES` so (and always
    for incremental PCA, block by block): float64 keeps the fitted components stable to the
    last bits when the BLAS thread count changes (a float32 SVD's trailing components moved by
    2.6e-4 with it), so that a Dask run and a local run agree. Larger layers are fitted in
    float32, which halves the copy (use ``solver="incremental"`` for both).
    """
    train_index = np.asarray(train_index)
    if train_index.ndim != 1 or len(train_index) < 2:
        raise ValueError(f"train_index: expected at least 2 row indices, got shape {train_index.shape}")
    estimator = reduction.estimator(len(train_index), features.shape[1])
    if not (reduction.method == "pca" and reduction.solver == "incremental"):
        rows = _rows(features, train_index)
        return estimator.fit(rows.astype(np.float64) if 2 * rows.nbytes <= FLOAT64_FIT_BYTES else rows)
    # Two streaming passes over the training rows: column moments (if standardising), then PCA.
    scaler, pca = (estimator[0], estimator[-1]) if reduction.standardise else (None, estimator)
    # blocks of at least max(block_rows, n_components) rows, as IncrementalPCA needs
    blocks = np.array_split(train_index, max(1, len(train_index) // max(block_rows, pca.n_components)))
    if scaler is not None:
        for block in blocks:
            scaler.partial_fit(_rows(features, block).astype(np.float64))
    for block in blocks:
        rows = _rows(features, block).astype(np.float64)
        pca.partial_fit(scaler.transform(rows) if scaler is not None else rows)
    return estimator


def transform_rows(estimator: TransformerMixin, features: Any, block_rows: int = 2048) -> np.ndarray:
    """Apply a fitted reduction to every row, block by block; float32 output."""
    n = features.shape[0]
    parts = [
        np.asarray(estimator.transform(_rows(features, np.arange(s, min(s + block_rows, n)))), dtype=np.float32)
        for s in range(0, n, block_rows)
    ]
    return np.concatenate(parts)


def reduce_features(
    features: Any,
    train_index: np.ndarray,
    reduction: Reduction,
    *,
    store: FeatureStore | None = None,
    source_key: dict[str, Any] | None = None,
) -> tuple[np.ndarray, TransformerMixin]:
    """Fit on the training rows, transform every row; optionally through the feature store.

    Parameters
    ----------
    features : array of shape (n_stimuli, n_features)
        In memory or lazy (zarr/h5py), e.g. ``extract_features(..., lazy=True)``.
    train_index : ndarray of int
        Rows the reduction is fitted on; no other row influences it.
    reduction : Reduction
    store : FeatureStore, optional
        Where the reduced matrix and the fitted reducer (``reducer.joblib``) are kept.
    source_key : dict, optional
        Key of the unreduced features (required with ``store``).

    Returns
    -------
    reduced : ndarray of shape (n_stimuli, n_components), float32
    reducer : fitted scikit-learn transformer
    """
    if store is None:
        estimator = fit_reduction(features, train_index, reduction)
        return transform_rows(estimator, features), estimator
    if source_key is None:
        raise ValueError("source_key: the key of the unreduced features is needed to store the reduction")
    key = {"source": source_key, "reduction": asdict(reduction), "train": array_digest(np.asarray(train_index))}
    entry = store.entry(f"reduced-{source_key.get('model', 'features')}", key)
    reducer_path = entry.path / "reducer.joblib"
    if entry.complete and reducer_path.is_file():
        return entry.read(), joblib.load(reducer_path)
    estimator = fit_reduction(features, train_index, reduction)
    reduced = transform_rows(estimator, features)
    entry.path.mkdir(parents=True, exist_ok=True)
    with atomic_path(reducer_path) as tmp:
        joblib.dump(estimator, tmp)
    entry.write(reduced)
    return reduced, estimator
