"""Representational dissimilarity matrices (RDMs): computation and the stored form.

The stored form
---------------
An RDM is stored as its upper triangle *without* the diagonal, row-major (the order of
:func:`scipy.spatial.distance.squareform` and of rsatoolbox's ``RDMs.dissimilarities``):
entry ``k`` of the vector is the pair ``(i, j)``, ``i < j``, with
``k = i * n - i * (i + 1) / 2 + j - i - 1``. One RDM is a vector of shape
``(n_pairs,)``, several are ``(n_rdms, n_pairs)``, always float64, with
``n_pairs = n_stimuli * (n_stimuli - 1) / 2``. The diagonal (a stimulus with itself) and
the lower triangle (a copy of the upper one) are never stored: comparing RDMs on them
inflates every similarity (the diagonal is trivially predicted) and counts each pair
twice. :func:`rdm_vector` turns a square matrix into this form after checking that it
is one (symmetric, zero diagonal); :func:`rdm_matrix` turns it back for display.

Distances
---------
All distances are computed from Gram matrices ``X X^T`` accumulated over chunks of
channels (each chunk centred in float64 first), so the memory is the ``n x n`` float64
Gram (800 MB for 10,000 stimuli) plus one chunk of the patterns; no
``n x n x channels`` array is ever formed.

Precision: the Gram of each chunk is computed in the input's precision. float64 (and
integer) patterns: float64 throughout (BLAS ``dsyrk``). float32 patterns: each chunk
(at most 4,096 channels) is centred in float64, rounded to float32, and its Gram
computed in float32 (``ssyrk``, twice as fast); the chunks' Grams are summed in float64.
The distances then agree with the float64 computation to about 1e-7 relative (float32
sums over at most a few thousand products), a little closer than rsatoolbox's, which
is one float32 product over all channels. Pass float64 patterns for float64 precision.
With ``p`` channels and patterns ``x_i``:

``"correlation"``
    ``1 - r(x_i, x_j)``, the Pearson correlation across channels (rsatoolbox's
    ``calc_rdm(method="correlation")``).
``"euclidean"``
    rsatoolbox's convention: the *squared* Euclidean distance divided by the number of
    channels, ``||x_i - x_j||^2 / p`` (rsatoolbox names it ``"squared euclidean"``).
    It is comparable across ROIs of different sizes. Take ``sqrt(d * p)`` for the plain
    Euclidean distance.
``"cosine"``
    ``1 - cos(x_i, x_j)`` (:func:`scipy.spatial.distance.pdist` ``"cosine"``).
``"crossnobis"``
    the cross-validated squared Mahalanobis distance, from trials: see
    :func:`crossvalidated_rdm` (it needs repeats and partitions, not one pattern per
    stimulus).

``normalise=True`` z-scores each channel across stimuli (mean 0, population standard
deviation 1; constant channels become 0) before the distance; this changes
``"euclidean"`` and ``"cosine"`` (and ``"correlation"`` slightly, since it changes the
weight of each channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg.blas import dsyrk, ssyrk

__all__ = [
    "DISTANCES",
    "compute_rdms",
    "crossvalidated_rdm",
    "n_stimuli_from_pairs",
    "noise_precision",
    "pair_indices",
    "rdm_matrix",
    "rdm_vector",
]

#: Names of the distances: the first three by :func:`compute_rdms` (one pattern per
#: stimulus), ``"crossnobis"`` by :func:`crossvalidated_rdm` (trials with partitions).
DISTANCES: tuple[str, ...] = ("correlation", "euclidean", "cosine", "crossnobis")
_PATTERN_DISTANCES = ("correlation", "euclidean", "cosine")
#: Names of the noise-precision estimators (:func:`noise_precision`).
NOISE_METHODS: tuple[str, ...] = ("shrinkage_diag", "shrinkage_eye", "diag", "full")
_CHUNK_BYTES = 64 * 2**20  # bytes of one chunk of channels
_SINGLE_CHUNK = 4096  # most channels in one float32 chunk (float32 sums over at most this many products)


# --------------------------------------------------------------------------- stored form


def n_stimuli_from_pairs(n_pairs: int) -> int:
    """Number of stimuli ``n`` with ``n * (n - 1) / 2 == n_pairs``.

    Parameters
    ----------
    n_pairs : int
        Length of an RDM vector.

    Returns
    -------
    int
        The number of stimuli.

    Raises
    ------
    ValueError
        When ``n_pairs`` is not a triangular number (the array is not an RDM vector).
    """
    n = round((1 + float(np.sqrt(1 + 8 * n_pairs))) / 2)
    if n * (n - 1) // 2 != n_pairs or n < 2:
        raise ValueError(
            f"an RDM vector has n*(n-1)/2 entries (upper triangle, no diagonal); {n_pairs} is not such a number"
        )
    return n


def pair_indices(n_stimuli: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index of every entry of the stored form, ``i < j``, row-major.

    Parameters
    ----------
    n_stimuli : int
        Number of stimuli.

    Returns
    -------
    rows, cols : ndarray of int64, shape (n_pairs,)
    """
    return np.triu_indices(n_stimuli, k=1)


def _pair_position(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position in the stored form of the pairs ``(i, j)`` (any order, ``i != j``)."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo * n - lo * (lo + 1) // 2 + hi - lo - 1


def _is_full_square(a: np.ndarray) -> bool:
    """Whether the last two axes form a symmetric matrix with a zero diagonal."""
    if a.ndim < 2 or a.shape[-1] != a.shape[-2] or a.shape[-1] < 2:
        return False
    diag = np.diagonal(a, axis1=-2, axis2=-1)
    scale = max(float(np.nanmax(np.abs(a))) if a.size else 0.0, 1e-300)
    return bool(np.all(np.abs(diag) <= 1e-10 * scale) and np.allclose(a, np.swapaxes(a, -1, -2), rtol=1e-8, atol=0))


def as_rdm_vectors(rdms: np.ndarray, name: str = "rdms") -> np.ndarray:
    """Check that ``rdms`` is in the stored form and return it as float64 ``(n_rdms, n_pairs)``.

    Parameters
    ----------
    rdms : array-like, shape (n_pairs,) or (n_rdms, n_pairs)
        RDM vectors (upper triangle without diagonal).
    name : str
        Name of the argument, for error messages.

    Returns
    -------
    ndarray, shape (n_rdms, n_pairs), float64

    Raises
    ------
    ValueError
        For a full square matrix (use :func:`rdm_vector`), a 3-D stack, or a length that
        is not ``n*(n-1)/2``.
    """
    a = np.asarray(rdms, dtype=np.float64)
    if a.ndim == 3 or (a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 1):
        # any square input is refused (a stack of k RDMs with k == n_pairs is ambiguous with a full matrix, and a
        # similarity matrix has a non-zero diagonal): the diagonal and both triangles can never enter a comparison
        raise ValueError(
            f"{name}: got a full square matrix {a.shape}; RDMs are compared on the upper triangle without the "
            "diagonal only (convert a full matrix with scene2brain.representation.rdm_vector; pass a stack of "
            "RDMs whose count differs from their number of pairs)"
        )
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (n_pairs,) or (n_rdms, n_pairs), got {a.shape}")
    try:
        n_stimuli_from_pairs(a.shape[1])
    except ValueError as err:
        raise ValueError(f"{name}: {err} (a full square matrix? convert it with rdm_vector)") from None
    return a


def rdm_vector(square: np.ndarray, *, atol: float = 1e-10) -> np.ndarray:
    """Stored form of a square RDM (or a stack of them): the upper triangle without the diagonal.

    Parameters
    ----------
    square : array-like, shape (n, n) or (n_rdms, n, n)
        Symmetric dissimilarity matrices with a zero diagonal.
    atol : float
        Tolerance, relative to the largest absolute entry, for the symmetry and
        zero-diagonal checks.

    Returns
    -------
    ndarray, shape (n_pairs,) or (n_rdms, n_pairs), float64
        Row-major upper triangle (``squareform`` order).

    Raises
    ------
    ValueError
        If the matrix is not square, not symmetric or has a non-zero diagonal.
    """
    a = np.asarray(square, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2] or a.shape[-1] < 2:
        raise ValueError(f"rdm_vector: expected square matrices (n, n) or (n_rdms, n, n), got {a.shape}")
    scale = max(float(np.nanmax(np.abs(a))), 1e-300)
    diag = np.diagonal(a, axis1=-2, axis2=-1)
    if np.any(np.abs(diag) > atol * scale):
        raise ValueError("rdm_vector: the diagonal of an RDM must be zero (a stimulus is not dissimilar to itself)")
    asym = np.abs(a - np.swapaxes(a, -1, -2))
    if np.any(asym > atol * scale) or np.isnan(a).sum() != np.isnan(np.swapaxes(a, -1, -2)).sum():
        raise ValueError(f"rdm_vector: the matrix is not symmetric (max |D - D.T| = {np.nanmax(asym):.3g})")
    rows, cols = pair_indices(a.shape[-1])
    return np.ascontiguousarray(a[..., rows, cols])


def rdm_matrix(vector: np.ndarray) -> np.ndarray:
    """Square form of RDM vectors (for display): symmetric, zero diagonal.

    Parameters
    ----------
    vector : array-like, shape (n_pairs,) or (n_rdms, n_pairs)
        RDMs in the stored form.

    Returns
    -------
    ndarray, shape (n, n) or (n_rdms, n, n), float64
    """
    v = np.asarray(vector, dtype=np.float64)
    single = v.ndim == 1
    v = as_rdm_vectors(v, "vector")
    n = n_stimuli_from_pairs(v.shape[1])
    rows, cols = pair_indices(n)
    out = np.zeros((v.shape[0], n, n))
    out[:, rows, cols] = v
    out[:, cols, rows] = v
    return out[0] if single else out


# --------------------------------------------------------------------------- distances


def _default_chunk(n: int, p: int, chunk_size: int | None, single: bool = False) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return int(chunk_size)
    if single:  # float32: a few thousand channels per chunk (float32 sums), within the memory bound
        return max(1, min(p, _SINGLE_CHUNK, _CHUNK_BYTES // (4 * max(n, 1))))
    return max(1, min(p, _CHUNK_BYTES // (8 * max(n, 1))))


def _gram(x: np.ndarray, *, centre_rows: bool, centre_columns: bool, normalise: bool, chunk: int) -> np.ndarray:
    """Upper triangle (C order) of ``Xc Xc^T`` in float64, ``Xc`` the (optionally) prepared patterns.

    Returns an ``(n, n)`` C-contiguous array whose upper triangle and diagonal hold the
    Gram matrix (the lower triangle is not used). ``centre_columns`` subtracts each
    channel's mean over stimuli (Euclidean distances do not change; the Gram entries
    get smaller, so less precision is lost in ``G_ii + G_jj - 2 G_ij``).

    float32 input: each chunk is centred in float64, rounded to float32 and its Gram
    computed in float32 (BLAS ``ssyrk``); the chunks' Grams are summed in float64.
    Anything else: float64 throughout (``dsyrk``).
    """
    n, p = x.shape
    single = x.dtype == np.float32
    row_mean = None
    col_mean = x.mean(axis=0, dtype=np.float64) if centre_columns and not normalise else None
    if centre_rows:
        if normalise:  # the row means of the z-scored channels: one extra pass
            row_mean = np.zeros(n)
            for start in range(0, p, chunk):
                row_mean += _zscore(x[:, start : start + chunk]).sum(axis=1)
            row_mean /= p
        else:
            row_mean = x.mean(axis=1, dtype=np.float64)
    g = np.zeros((n, n), order="F")  # syrk fills its lower triangle: the upper one of g.T (C order)
    dtype = np.float32 if single else np.float64
    buffer = np.empty((n, min(chunk, p)), dtype=dtype)  # reused: no page faults per chunk
    part = np.zeros((n, n), dtype=np.float32, order="F") if single else None  # one chunk's Gram (float32)
    for start in range(0, p, chunk):
        width = min(chunk, p - start)
        block = buffer[:, :width] if width == buffer.shape[1] else np.empty((n, width), dtype=dtype)
        source = x[:, start : start + width]
        # centred in float64 and rounded once into the block
        if normalise or (row_mean is not None and col_mean is not None):
            prepared = _zscore(source) if normalise else source - col_mean[start : start + width]
            if row_mean is not None:
                prepared -= row_mean[:, None]
            np.copyto(block, prepared, casting="unsafe")
        elif row_mean is not None:
            np.subtract(source, row_mean[:, None], out=block, casting="unsafe")
        elif col_mean is not None:
            np.subtract(source, col_mean[start : start + width], out=block, casting="unsafe")
        else:
            np.copyto(block, source, casting="unsafe")
        if single:
            part = ssyrk(1.0, block.T, beta=0.0, c=part, trans=1, lower=1, overwrite_c=1)
            g += part
        else:
            dsyrk(1.0, block.T, beta=1.0, c=g, trans=1, lower=1, overwrite_c=1)
    return g.T


def _zscore(block: np.ndarray) -> np.ndarray:
    block = np.array(block, dtype=np.float64)
    block -= block.mean(axis=0)
    sd = block.std(axis=0)
    np.divide(block, sd, out=block, where=sd > 0)
    block[:, sd == 0] = 0.0
    return block


def _vector_from_gram(gram: np.ndarray, distance: str, n_channels: int, out: np.ndarray) -> None:
    """Fill ``out`` (n_pairs,) with the distances, row by row of the upper triangle."""
    n = gram.shape[0]
    diag = np.diagonal(gram).copy()
    if distance in ("correlation", "cosine"):
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_norm = 1.0 / np.sqrt(diag)
    offset = 0
    for i in range(n - 1):
        row = gram[i, i + 1 :]
        seg = out[offset : offset + n - i - 1]
        if distance == "euclidean":
            np.add(diag[i + 1 :], diag[i], out=seg)
            seg -= 2.0 * row
            seg /= n_channels
        else:
            np.multiply(row, inv_norm[i + 1 :], out=seg)
            seg *= -inv_norm[i]
            seg += 1.0
        offset += n - i - 1


def compute_rdms(
    patterns: np.ndarray | Sequence[np.ndarray],
    distance: str = "correlation",
    *,
    normalise: bool = False,
    chunk_size: int | None = None,
) -> np.ndarray:
    """RDMs of one or several pattern matrices over the same stimuli.

    Parameters
    ----------
    patterns : ndarray (n_stimuli, n_channels) or sequence of them
        One pattern per stimulus (rows) over channels (voxels, units); several arrays
        (ROIs, layers) must share the stimuli (the same rows). float32 patterns are
        multiplied in float32 per chunk of channels, the chunks summed in float64
        (about 1e-7 relative precision, see the module docstring); anything else in
        float64.
    distance : {"correlation", "euclidean", "cosine"}
        See the module docstring; ``"euclidean"`` follows rsatoolbox (squared distance
        divided by the number of channels).
    normalise : bool
        Z-score each channel across stimuli first (population standard deviation;
        constant channels are set to 0).
    chunk_size : int, optional
        Channels per chunk of the Gram accumulation; by default as many as fit in
        64 MB (float64; float32 input: at most 4,096).

    Returns
    -------
    ndarray, shape (n_rdms, n_pairs), float64
        One RDM per input array, in the stored form. A pattern with zero norm (after
        centring for ``"correlation"``) gives NaN distances.

    Notes
    -----
    Memory: the ``n_stimuli x n_stimuli`` float64 Gram (plus a float32 one for float32
    input), one chunk and the output. Equal to ``rsatoolbox.rdm.calc_rdm(Dataset(x), method=distance)`` for
    ``"correlation"`` and ``"euclidean"``.
    """
    if distance == "crossnobis":
        raise ValueError("compute_rdms: 'crossnobis' needs trials and partitions: use crossvalidated_rdm")
    if distance not in _PATTERN_DISTANCES:
        raise ValueError(f"compute_rdms: distance must be one of {_PATTERN_DISTANCES}, got {distance!r}")
    arrays = [patterns] if isinstance(patterns, np.ndarray) else list(patterns)
    if not arrays:
        raise ValueError("compute_rdms: no patterns given")
    arrays = [np.asarray(a) for a in arrays]
    n = arrays[0].shape[0] if arrays[0].ndim == 2 else -1
    for k, a in enumerate(arrays):
        if a.ndim != 2:
            raise ValueError(f"compute_rdms: patterns[{k}] must be 2-D (n_stimuli, n_channels), got {a.shape}")
        if a.shape[0] != n:
            raise ValueError(f"compute_rdms: patterns[{k}] has {a.shape[0]} stimuli, patterns[0] has {n}")
        if n < 2 or a.shape[1] < 1:
            raise ValueError(f"compute_rdms: need >= 2 stimuli and >= 1 channel, got {a.shape}")
    out = np.empty((len(arrays), n * (n - 1) // 2))
    for k, a in enumerate(arrays):
        chunk = _default_chunk(n, a.shape[1], chunk_size, a.dtype == np.float32)
        gram = _gram(
            a,
            centre_rows=distance == "correlation",
            centre_columns=distance == "euclidean",
            normalise=normalise,
            chunk=chunk,
        )
        _vector_from_gram(gram, distance, a.shape[1], out[k])
        del gram
    return out


# --------------------------------------------------------------------------- noise and crossnobis


def noise_precision(residuals: np.ndarray, method: str = "shrinkage_diag", *, dof: int | None = None) -> np.ndarray:
    """Precision matrix (inverse noise covariance) over channels, from residuals.

    Equal to ``rsatoolbox.data.noise.prec_from_residuals(residuals, dof, method)``.

    Parameters
    ----------
    residuals : ndarray, shape (n_residuals, n_channels)
        E.g. GLM residuals or trial responses minus their condition means. The column
        means are removed first.
    method : {"shrinkage_diag", "shrinkage_eye", "diag", "full"}
        ``"shrinkage_diag"``: Schäfer & Strimmer (2005) shrinkage of the correlations
        towards 0 (the diagonal kept); ``"shrinkage_eye"``: Ledoit & Wolf (2004)
        shrinkage towards a multiple of the identity; ``"diag"``: the variances only
        (univariate noise normalisation); ``"full"``: the sample covariance.
    dof : int, optional
        Degrees of freedom of the covariance; ``n_residuals - 1`` by default (correct it
        for the number of GLM regressors).

    Returns
    -------
    ndarray, shape (n_channels, n_channels)
        The precision matrix, for ``crossvalidated_rdm(noise=...)``. Its size is
        ``n_channels**2`` float64: for many channels use ``"diag"``.
    """
    if method not in NOISE_METHODS:
        raise ValueError(f"noise_precision: method must be one of {NOISE_METHODS}, got {method!r}")
    x = np.asarray(residuals, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"noise_precision: residuals must be (n_residuals >= 2, n_channels), got {x.shape}")
    n, p = x.shape
    x = x - x.mean(axis=0, keepdims=True)
    dof = n - 1 if dof is None else int(dof)
    if method == "diag":
        return np.linalg.inv(np.diag(np.einsum("ij,ij->j", x, x) / dof))
    s_sum = x.T @ x
    if method == "full":
        return np.linalg.inv(s_sum / dof)
    x2 = x * x
    s2_sum = x2.T @ x2
    if method == "shrinkage_eye":  # Ledoit & Wolf, as rsatoolbox's _covariance_eye
        s = s_sum / n
        b2 = np.sum(s2_sum / n - s * s) / n
        m = np.trace(s) / p
        eye = np.eye(p)
        d2 = np.sum((s - m * eye) ** 2)
        b2 = min(d2, b2)
        cov = (b2 / d2 * m * eye + (d2 - b2) / d2 * s) * n / dof
    else:  # shrinkage_diag, as rsatoolbox's _covariance_diag
        s = s_sum / dof
        var = np.diag(s)
        std = np.sqrt(var)
        s_mean = s_sum / std[None, :] / std[:, None] / (n - 1)
        s2_mean = s2_sum / var[None, :] / var[:, None] / (n - 1)
        var_hat = n / dof**2 * (s2_mean - s_mean**2)
        mask = ~np.eye(p, dtype=bool)
        lamb = float(np.sum(var_hat[mask]) / np.sum(s_mean[mask] ** 2))
        lamb = max(min(lamb, 1.0), 0.0)
        cov = s * (np.eye(p) + (1.0 - lamb) * mask)
    return np.linalg.inv(cov)


def crossvalidated_rdm(
    data: np.ndarray,
    conditions: np.ndarray,
    partitions: np.ndarray,
    *,
    noise: np.ndarray | None = None,
    distance: str = "crossnobis",
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validated (squared) Mahalanobis distances, leave one partition out.

    For each partition ``f``: ``a`` = per-condition means of the trials outside ``f``,
    ``b`` = per-condition means inside ``f``; the distance between conditions ``i`` and
    ``j`` is ``(a_i - a_j)^T P (b_i - b_j) / n_channels`` with ``P`` the noise precision
    (the identity when ``noise`` is None: cross-validated Euclidean). The RDM is the
    mean over partitions. Independent noise in ``a`` and ``b`` makes the estimate
    unbiased: its expectation is the true squared distance (it can be negative).

    Equal to ``rsatoolbox.rdm.calc_rdm(Dataset(data, obs_descriptors={"c": conditions,
    "p": partitions}), method="crossnobis", descriptor="c", cv_descriptor="p",
    noise=noise)``.

    Parameters
    ----------
    data : ndarray, shape (n_trials, n_channels)
        Trial (or run-wise beta) patterns.
    conditions : array-like, shape (n_trials,)
        Condition (stimulus) of each trial; the RDM's rows are ``np.unique(conditions)``.
    partitions : array-like, shape (n_trials,)
        Cross-validation fold of each trial (run, session or repeat index). Every
        condition must occur in every partition.
    noise : ndarray (n_channels, n_channels), optional
        Noise precision matrix (:func:`noise_precision`); None for the identity.
    distance : {"crossnobis"}
        The only cross-validated distance.

    Returns
    -------
    rdm : ndarray, shape (n_pairs,)
        The RDM in the stored form.
    labels : ndarray, shape (n_conditions,)
        The conditions, in the RDM's order (sorted).
    """
    if distance != "crossnobis":
        raise ValueError(f"crossvalidated_rdm: distance must be 'crossnobis', got {distance!r}")
    x = np.asarray(data)
    conditions = np.asarray(conditions)
    partitions = np.asarray(partitions)
    if x.ndim != 2 or conditions.shape != (x.shape[0],) or partitions.shape != (x.shape[0],):
        raise ValueError(
            f"crossvalidated_rdm: data (n_trials, n_channels) with conditions and partitions of length n_trials; "
            f"got {x.shape}, {conditions.shape}, {partitions.shape}"
        )
    labels, cond = np.unique(conditions, return_inverse=True)
    folds, part = np.unique(partitions, return_inverse=True)
    n_cond, p = len(labels), x.shape[1]
    if n_cond < 2 or len(folds) < 2:
        raise ValueError("crossvalidated_rdm: need >= 2 conditions and >= 2 partitions")
    if noise is not None:
        noise = np.asarray(noise, dtype=np.float64)
        if noise.shape != (p, p):
            raise ValueError(f"crossvalidated_rdm: noise must be ({p}, {p}), got {noise.shape}")
    sums = np.zeros((len(folds), n_cond, p))
    counts = np.zeros((len(folds), n_cond))
    np.add.at(counts, (part, cond), 1.0)
    if np.any(counts == 0):
        f, c = np.argwhere(counts == 0)[0]
        raise ValueError(f"crossvalidated_rdm: condition {labels[c]!r} has no trial in partition {folds[f]!r}")
    for f in range(len(folds)):
        in_f = part == f
        np.add.at(sums[f], cond[in_f], x[in_f].astype(np.float64))
    total_sum, total_count = sums.sum(axis=0), counts.sum(axis=0)
    rows, cols = pair_indices(n_cond)
    rdm = np.zeros(len(rows))
    for f in range(len(folds)):
        test = sums[f] / counts[f][:, None]
        train = (total_sum - sums[f]) / (total_count - counts[f])[:, None]
        kernel = train @ (test.T if noise is None else noise @ test.T)
        d = np.diag(kernel)
        rdm += (d[rows] + d[cols] - kernel[rows, cols] - kernel[cols, rows]) / p
    return rdm / len(folds), labels
