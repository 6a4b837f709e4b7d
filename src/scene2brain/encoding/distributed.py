"""Voxel-chunked ridge and banded ridge on a Dask ``distributed`` cluster.

:func:`fit_chunked` fits a :class:`~scene2brain.encoding.RidgeCV` or
:class:`~scene2brain.encoding.BandedRidgeCV` on responses held as a numpy array, a Dask
array or a zarr array (or the path/URL of one), with one task per block of target
columns. Every target's choice of (band weighting, alpha) depends on that target alone
(:mod:`scene2brain.encoding._cv`), so the split is exact:

1. **X side, once, on the client**: the checks, the alpha grid and every candidate's
   fold and full-sample decompositions (:func:`~scene2brain.encoding._cv.prepare`,
   :func:`~scene2brain.encoding._cv.share_factors`). They are sent once to every
   worker (``client.scatter(..., broadcast=True)``); when they would exceed
   ``factor_budget`` bytes only the prepared features are sent and each task
   decomposes them itself.
2. **Y side, one task per block of columns**: the task gets its block (read from the
   zarr store by the task itself, computed on the workers for a Dask array, or
   scattered from the client for a numpy array), scores every alpha of every
   candidate, picks each target's best and refits, under a BLAS thread limit
   (``blas_threads``), and returns the block's coefficients, intercepts, alphas and
   scores, or writes its coefficients into the ``out`` zarr store and returns the rest.
3. **The client** places each block's results as it arrives; at most ``2 x`` the
   cluster's threads blocks are in flight, so a worker holds a few blocks of
   ``n_samples x chunk_size`` responses and their results at a time, however many
   targets there are. With a zarr store, the responses never pass through the client
   or the scheduler.

The results are those of the in-process fit: the same alphas (and band weightings),
coefficients and scores equal up to floating-point rounding (BLAS may sum in another
order for blocks of another width or thread count).

Dask and ``distributed`` are the optional ``dask`` extra: ``pip install "scene2brain[dask]"``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import numpy as np

from scene2brain.encoding._base import Folds
from scene2brain.encoding._cv import (
    CVFit,
    Prepared,
    fit_targets,
    for_tasks,
    prepare,
    share_factors,
    shared_factor_bytes,
)
from scene2brain.encoding.backend import Backend

__all__ = ["DEFAULT_FACTOR_BUDGET", "fit_chunked"]

DEFAULT_FACTOR_BUDGET = 2**31
"""Bytes of X-side decompositions that are computed once and sent to every worker (see :func:`fit_chunked`)."""

_EXTRA = 'chunked fits on Dask need the optional dependencies dask and distributed: pip install "scene2brain[dask]"'


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise ImportError(_EXTRA) from error
    return distributed


@dataclass
class _Targets:
    """The responses as given, described without reading them."""

    kind: str  # "numpy", "dask", "zarr" (read by the tasks) or "client-zarr" (an in-memory zarr store)
    data: Any  # (n_samples, n_targets) or (n_samples,)
    n_samples: int
    n_targets: int
    dtype: np.dtype
    single: bool  # a 1-D target
    native: int | None  # column width of the storage chunks

    def block(self, cols: slice) -> Any:
        """Columns ``cols``, read here (numpy and in-memory zarr only)."""
        return _read(self.data, cols)


def _read(data: Any, cols: slice) -> np.ndarray:
    """Columns ``cols`` of a 1-D or 2-D array (numpy, zarr, Dask-computed) as a 2-D numpy array."""
    if data.ndim == 1:  # a single target: cols is slice(0, 1)
        return np.asarray(data[:])[:, None]
    return np.asarray(data[:, cols])


def _open_targets(Y: Any) -> _Targets:
    """Describe ``Y``: a path or URL of a zarr array, a zarr array, a Dask array or anything numpy takes."""
    import zarr

    if isinstance(Y, str | os.PathLike):
        try:
            Y = zarr.open_array(os.fspath(Y), mode="r")
        except (FileNotFoundError, zarr.errors.NodeTypeValidationError) as error:
            raise ValueError(f"Y: expected a zarr array at {os.fspath(Y)!r}, could not open one ({error})") from error
    if isinstance(Y, zarr.Array):
        kind = "client-zarr" if isinstance(Y.store, zarr.storage.MemoryStore) else "zarr"
        native = int(Y.chunks[1]) if Y.ndim == 2 else None
    elif type(Y).__module__.startswith("dask.") and hasattr(Y, "chunks") and hasattr(Y, "dask"):
        kind = "dask"
        native = int(Y.chunks[1][0]) if Y.ndim == 2 and Y.shape[1] else None
    else:
        kind, native = "numpy", None
        Y = np.asarray(Y)
    dtype = np.dtype(Y.dtype)
    if Y.ndim not in (1, 2):
        raise ValueError(f"Y: expected a 1-D or 2-D array (n_samples, n_targets), got shape {tuple(Y.shape)}")
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating) or dtype == np.bool_):
        raise ValueError(f"Y: expected real numbers, got dtype {dtype}")
    if any(math.isnan(s) for s in Y.shape):
        raise ValueError("Y: a Dask array with unknown chunk sizes; call Y.compute_chunk_sizes() first")
    n_targets = 1 if Y.ndim == 1 else int(Y.shape[1])
    if n_targets == 0:
        raise ValueError("Y: expected at least one target column, got 0")
    return _Targets(kind, Y, int(Y.shape[0]), n_targets, dtype, Y.ndim == 1, native)


def _check_features(X: Any, n_samples: int) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] != n_samples:
        raise ValueError(f"X and Y: expected the same number of samples, got {X.shape[0]} and {n_samples}")
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise ValueError("X: expected finite numbers; found NaN, infinite or non-numeric values")
    return X


def _check_count(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


@contextmanager
def _blas_limit(threads: int) -> Iterator[None]:
    """Run the enclosed code with ``threads`` BLAS/OpenMP threads.

    ``distributed``'s nanny starts workers with ``OMP_NUM_THREADS=1`` (and the same for
    OpenBLAS and MKL); this sets the count a task really uses.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


_RESULTS = ("coef", "intercept", "best_alphas", "best_candidate", "best_scores", "cv_scores")


def _fit_block(prepared: Prepared, source: Any, cols: slice, blas_threads: int, out: Any | None) -> dict[str, Any]:
    """One task: fit the targets ``cols`` (``source``: the block itself, or the array to read it from).

    Returns the block's results as a dict of arrays (so that Dask sizes them): those of
    :data:`_RESULTS` that exist, without ``coef`` when it was written to ``out``.
    """
    with _blas_limit(blas_threads):
        block = source if isinstance(source, np.ndarray) else _read(source, cols)
        if block.dtype not in (np.float32, np.float64):
            block = block.astype(np.float64)
        finite = np.isfinite(block).all(axis=0)
        if not finite.all():
            bad = cols.start + int(np.flatnonzero(~finite)[0])
            raise ValueError(f"Y: target column {bad} contains NaN or infinite values; expected finite responses")
        fit = fit_targets(prepared, block)
    if out is not None:
        out[:, cols] = fit.coef
        fit.coef = None
    return {name: getattr(fit, name) for name in _RESULTS if getattr(fit, name) is not None}


def _blocks(n_targets: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n_targets)) for start in range(0, n_targets, size)]


def _default_chunk_size(prepared: Prepared, targets: _Targets, n_threads: int) -> int:
    """At least two blocks per Dask thread, within the memory budget, in whole storage chunks where they fit it.

    A storage chunk wider than the budget is read in parts (each task reads its columns of
    it): the memory bound holds, at the cost of reading a chunk more than once.
    """
    size = min(prepared.size, max(1, math.ceil(targets.n_targets / (2 * n_threads))))
    if targets.native and targets.native <= prepared.size:
        size = max(targets.native, size // targets.native * targets.native)
    return size


def _output(out: Any, prepared: Prepared, n_targets: int, chunk_size: int) -> Any:
    """The ``coef`` array of the ``out`` zarr group, created with one storage chunk per block."""
    import zarr

    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"out: expected the path or URL of a zarr group, got {type(out).__name__}")
    group = zarr.open_group(os.fspath(out), mode="a")
    return group.create_array(
        "coef",
        shape=(prepared.n_features, n_targets),
        chunks=(prepared.n_features, chunk_size),
        dtype=prepared.dtype,
        overwrite=True,
    )


def _cross_validate_chunked(
    X: np.ndarray,
    targets: _Targets,
    folds: Folds,
    arguments: dict[str, Any],
    client: Any,
    chunk_size: int | None,
    blas_threads: int,
    factor_budget: float,
    out: Any | None,
) -> CVFit:
    """:func:`~scene2brain.encoding._cv.cross_validate` with the targets split into tasks on ``client``."""
    distributed = _distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client: expected a distributed.Client, got {type(client).__name__}")
    if client.status != "running":
        raise ValueError(f"client: expected a connected distributed.Client, got one whose status is {client.status!r}")
    backend = arguments.get("backend", "numpy")
    if (backend.name if isinstance(backend, Backend) else backend) != "numpy":
        raise ValueError(f"backend: chunked fits on Dask run the numpy backend only, got {backend!r}")
    chunk_size = _check_count("chunk_size", chunk_size, allow_none=True)
    blas_threads = _check_count("blas_threads", blas_threads)
    if isinstance(factor_budget, bool) or not isinstance(factor_budget, numbers.Real) or not factor_budget >= 0:
        raise ValueError(f"factor_budget: expected a number of bytes >= 0, got {factor_budget!r}")
    dtype = np.dtype(np.float32) if targets.dtype == np.float32 else np.dtype(np.float64)
    prepared = prepare(X, dtype, folds=folds, **arguments)
    if shared_factor_bytes(prepared) <= factor_budget:
        prepared.shared = share_factors(prepared)
        prepared = for_tasks(prepared)
    n_threads = max(1, sum(client.nthreads().values()))
    if chunk_size is None:
        chunk_size = _default_chunk_size(prepared, targets, n_threads)
    output = None if out is None else _output(out, prepared, targets.n_targets, chunk_size)

    v = targets.n_targets
    coef = None if out is not None else np.empty((prepared.n_features, v), dtype=prepared.dtype)
    intercept, best_alphas, best_scores = np.empty(v), np.empty(v), np.empty(v)
    best_candidate = np.empty(v, dtype=np.int64)
    cv_scores = np.empty((len(prepared.alphas), v)) if len(prepared.candidates) == 1 else None

    token = uuid4().hex[:12]
    # Straight from the client to the workers unless the client says otherwise (not through the scheduler).
    direct = True if client.direct_to_workers is None else client.direct_to_workers
    shared = client.scatter(prepared, broadcast=True, hash=False, direct=direct)
    pending = iter(enumerate(_blocks(v, chunk_size)))
    columns: dict[str, slice] = {}

    def submit() -> Any | None:
        item = next(pending, None)
        if item is None:
            return None
        i, cols = item
        if targets.kind in ("numpy", "client-zarr"):
            source = client.scatter(np.ascontiguousarray(targets.block(cols)), hash=False, direct=direct)
        elif targets.kind == "dask":
            data = targets.data if targets.data.ndim == 2 else targets.data[:, None]
            source = client.compute(data[:, cols])
        else:
            source = targets.data
        key = f"ridge-block-{token}-{i}"
        columns[key] = cols
        return client.submit(_fit_block, shared, source, cols, blas_threads, output, key=key)

    running = distributed.as_completed()
    try:
        for _ in range(2 * n_threads):
            future = submit()
            if future is None:
                break
            running.add(future)
        for future in running:
            cols = columns.pop(future.key)
            fit = future.result()
            future.release()
            if coef is not None:
                coef[:, cols] = fit["coef"]
            intercept[cols], best_alphas[cols] = fit["intercept"], fit["best_alphas"]
            best_scores[cols], best_candidate[cols] = fit["best_scores"], fit["best_candidate"]
            if cv_scores is not None:
                cv_scores[:, cols] = fit["cv_scores"]
            following = submit()
            if following is not None:
                running.add(following)
    finally:
        running.clear()
        client.cancel([shared])
    if output is not None:
        import zarr

        coef = zarr.open_array(os.fspath(out), path="coef", mode="r")
    return CVFit(coef, intercept, prepared.alphas, best_alphas, best_candidate, best_scores, cv_scores,
                 "dual" if prepared.dual else "primal", prepared.retained)  # fmt: skip


def fit_chunked(
    estimator: Any,
    X: Any,
    Y: Any,
    *,
    client: Any,
    chunk_size: int | None = None,
    groups: Any = None,
    blas_threads: int = 1,
    factor_budget: float = DEFAULT_FACTOR_BUDGET,
    out: str | os.PathLike | None = None,
) -> Any:
    """Fit a ridge estimator with one Dask task per block of target columns.

    The estimator ends up with the attributes ``estimator.fit(X, Y, groups)`` gives it
    (same alphas and band weightings; coefficients and scores equal up to rounding),
    but ``Y`` never needs to be whole in the client's memory.

    Parameters
    ----------
    estimator : RidgeCV or BandedRidgeCV
        Unfitted or fitted; its parameters (``cv``, ``alphas``, ``bands``...) are used
        as in ``fit``. Its ``backend`` must be ``"numpy"``.
    X : array-like of shape (n_samples, n_features)
        Features, in memory (the X side is prepared on the client).
    Y : ndarray, dask array, zarr array, or str / path-like
        Responses of shape (n_samples, n_targets) or (n_samples,). A path or URL
        (anything ``zarr.open_array`` opens, e.g. ``"s3://bucket/y.zarr"`` with fsspec)
        or a zarr array on disk or in an object store is read by the tasks themselves
        (the workers must reach the store); store it column-chunked (chunks of shape
        ``(n_samples, c)``) so that a block is a contiguous read. A Dask array's
        blocks are computed on the workers. A numpy array (or a zarr array in a
        ``MemoryStore``) is on the client already; its blocks are sent to the workers.
    client : distributed.Client
        The cluster to run on (``LocalCluster``, dask-jobqueue, an existing scheduler...).
    chunk_size : int, optional
        Target columns per task. Default: at least two tasks per Dask thread, at most
        what ``estimator.memory_budget`` allows, in whole storage chunks of ``Y``.
        A worker holds about ``n_samples x chunk_size`` responses plus the task's
        results per running task.
    groups : array-like of shape (n_samples,), optional
        Group labels for group-aware splitters (as in ``fit``).
    blas_threads : int, default=1
        BLAS threads each task uses. A worker runs as many tasks at once as it has
        Dask threads, so 1 keeps every core busy without oversubscription when the
        workers have one Dask thread per core; use the cores per worker with
        ``threads_per_worker=1``.
    factor_budget : float, default=2**31
        Bytes of X-side decompositions (every fold, every band weighting) that may be
        computed once on the client and sent to every worker. Above it, only the
        prepared features are sent and each task decomposes them itself (no memory
        cost on the workers, the decompositions' time in every task).
    out : str or path-like, optional
        A zarr group (path or URL the workers can write to): the coefficients are
        written there, array ``coef`` of shape (n_features, n_targets) with one storage
        chunk per task, and ``estimator.coef_`` is that array opened read-only (numpy
        reads it on use). The other attributes are returned as usual.

    Returns
    -------
    estimator
        The fitted estimator.

    Raises
    ------
    ImportError
        Without the ``dask`` extra.
    TypeError
        For an estimator that is not a ridge estimator, or a client that is not a
        ``distributed.Client``.
    ValueError
        For inconsistent shapes, non-finite values (naming the first bad target
        column), or options out of range.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
    ...     model = fit_chunked(RidgeCV(cv=5), X, "responses.zarr", client=client)  # doctest: +SKIP
    """
    _distributed()
    if not (hasattr(estimator, "_cv_arguments") and hasattr(estimator, "_store_cv")):
        raise TypeError(f"estimator: expected a RidgeCV or BandedRidgeCV, got {type(estimator).__name__}")
    from sklearn.utils.validation import validate_data

    targets = _open_targets(Y)
    X = validate_data(estimator, X, reset=True, dtype=[np.float64, np.float32])
    X = _check_features(X, targets.n_samples)
    folds = estimator._folds(X, None, groups)
    arguments = estimator._cv_arguments(X.shape[1])
    fit = _cross_validate_chunked(X, targets, folds, arguments, client, chunk_size, blas_threads, factor_budget, out)
    estimator._store_cv(fit, targets.single, arguments)
    return estimator
