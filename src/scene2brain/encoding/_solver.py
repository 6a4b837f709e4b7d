"""The exact per-target ridge cross-validation engine shared by RidgeCV and BandedRidgeCV.

Notation: fold ``f`` has ``n_tr`` training and ``n_te`` test samples; features are
scaled by ``s`` (standardisation and/or band weights) after centring on the training
mean ``m_x``; ``V, lambda`` diagonalise the training Gram matrix (primal: ``p x p``
``X^T X``; dual: ``n_tr x n_tr`` kernel ``X X^T``), ``d = 1 / (lambda + alpha)``.
For every fold and target the solver forms, once:

* ``Z`` — the training targets in the eigenbasis (the weights are ``V diag(d) Z``),
* ``C0`` — the test cross-products ``(X_te - mean)^T (y_te - mean)`` in the eigenbasis,
* ``F0`` — a square root of the test-centred test Gram in the eigenbasis
  (upper Cholesky factor when ``n_te >= p``, else the rotated test design itself),
* ``g`` — the difference between test and training feature means in the eigenbasis,

and then, for every alpha, without forming a single prediction::

    SSE = SST - 2 d.(C0*Z) + ||F0 (d*Z)||^2 + n_te (dy - g.(d*Z))^2
    r   = d.(C0*Z) / sqrt(SST ||F0 (d*Z)||^2)

with ``SST`` the test sum of squares about the test mean and ``dy`` the difference
between test and training target means. In the primal form ``Z`` and ``C0`` come from
fold-blocked sufficient statistics ``X_f^T Y_f`` (one pass over ``Y`` for all folds)
and the quadratic term is, for all alphas at once, one float64 product per fold
(partial fractions, :class:`SpectralForm`), or a triangular multiply per alpha when
that is cheaper (few alphas, many equal eigenvalues). Gram matrices and
eigendecompositions are float64; the products that touch ``Y`` run in the input's
precision; scores are accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from scene2brain.encoding.backend import Backend

Scoring = Literal["r2", "correlation"]
SCORINGS = ("r2", "correlation")


@dataclass
class Design:
    """The feature matrix prepared once on the backend.

    ``X64`` (float64) feeds Gram matrices; ``Xw`` (working precision) feeds products with
    ``Y``. When ``fit_intercept`` both are centred on the mean over all samples, which
    leaves every in-fold centred fit unchanged and keeps the sufficient statistics
    well conditioned.
    """

    be: Backend
    X64: Any
    Xw: Any
    dtype: np.dtype
    fit_intercept: bool
    standardise: bool

    @classmethod
    def build(cls, X: np.ndarray, be: Backend, dtype: np.dtype, fit_intercept: bool, standardise: bool) -> Design:
        x_mean = X.mean(axis=0, dtype=np.float64) if fit_intercept else np.zeros(X.shape[1])
        X64 = be.asarray(np.asarray(X, dtype=np.float64) - x_mean, np.float64)
        Xw = X64 if dtype == np.float64 else be.asarray(be.to_numpy(X64).astype(dtype), dtype)
        return cls(be, X64, Xw, np.dtype(dtype), fit_intercept, standardise)

    @property
    def n_samples(self) -> int:
        return int(self.Xw.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.Xw.shape[1])

    def scale(self, rows: Any, band_scale: Any | None) -> Any:
        """Per-feature scale ``s``: band weights, divided by the SD over ``rows`` when standardising."""
        be = self.be
        scale = be.asarray(np.ones(self.n_features), np.float64) if band_scale is None else band_scale
        if self.standardise:
            X = self.X64[rows]
            sd = ((X - X.mean(axis=0)) ** 2).mean(axis=0) ** 0.5
            scale = scale / (sd + (sd == 0))  # constant features keep a unit scale
        return scale

    def train_mean(self, rows: Any) -> Any:
        """Mean of the samples ``rows`` (zeros without intercept)."""
        if not self.fit_intercept:
            return self.be.zeros((self.n_features,), np.float64)
        return self.X64[rows].mean(axis=0)


@dataclass
class Fold:
    """One split's indices, checked."""

    train: np.ndarray
    test: np.ndarray
    complement: bool  # train is exactly every sample not in test


def check_folds(folds: Sequence[tuple[np.ndarray, np.ndarray]], n_samples: int) -> tuple[list[Fold], bool]:
    """Validate the splits; also say whether the test sets partition the samples."""
    checked = []
    for f, (train, test) in enumerate(folds):
        train = np.asarray(train, dtype=np.int64).ravel()
        test = np.asarray(test, dtype=np.int64).ravel()
        for name, idx in (("train", train), ("test", test)):
            if idx.size and (idx.min() < 0 or idx.max() >= n_samples):
                raise ValueError(f"fold {f}: {name} indices must lie in [0, {n_samples}), got {idx.min()}..{idx.max()}")
        if len(train) < 2 or len(test) < 2:
            raise ValueError(
                f"fold {f}: needs at least 2 training and 2 test samples, got {len(train)} and {len(test)}"
            )
        if np.intersect1d(train, test).size:
            raise ValueError(f"fold {f}: train and test indices overlap")
        complement = len(train) + len(test) == n_samples and len(np.union1d(train, test)) == n_samples
        checked.append(Fold(train, test, complement))
    if not checked:
        raise ValueError("folds: no cross-validation split was given")
    all_test = np.sort(np.concatenate([f.test for f in checked]))
    partition = len(all_test) == n_samples and bool(np.all(all_test == np.arange(n_samples)))
    return checked, partition


#: the largest rounding amplification the partial-fraction form of the quadratic term may have (see
#: :class:`SpectralForm`): eigenvalues closer than ``spread / SEPARATION`` are treated together, exactly
SEPARATION = 1e8


@dataclass
class SpectralForm:
    """The test Gram ``G = F0^T F0`` split so that ``||F0 (d*z)||^2`` costs O(r) per alpha, not O(r^2).

    With ``d_a = 1 / (lambda_a + alpha)`` and ``d_a d_b = (d_a - d_b) / (lambda_b - lambda_a)``::

        z^T D G D z = sum_a d_a^2 G_aa z_a^2 + 2 sum_a d_a z_a h_a,   h = H z,
        H_ab = G_ab / (lambda_b - lambda_a)   (a != b)

    ``H`` is antisymmetric, so ``z^T H z = 0`` and ``d_a`` may be replaced by
    ``e_a = d_a - d_top = (lambda_top - lambda_a) d_a d_top`` (``top``: the largest
    eigenvalue). In that form no term exceeds the exact pair term ``d_a d_b G_ab z_a z_b`` by
    more than ``spread / |lambda_b - lambda_a|`` for any alpha: eigenvalues closer than
    ``spread / SEPARATION`` (rounding amplified at most 1e8 times, float64) form groups whose
    pairs are left out of ``H`` and summed exactly per alpha. One float64 product ``H Z``
    per fold then replaces a triangular product per alpha.
    """

    eigvals: Any  # lambda (r,) float64
    diag: Any  # G_aa (r,) float64
    cross: Any  # H with zero blocks for the groups (r, r) float64
    groups: list[tuple[slice, Any]]  # (indices of the eigenvalues, G's block with a zero diagonal), float64


def _groups(eigvals: Any, be: Backend) -> tuple[np.ndarray, list[slice]]:
    """Eigenvalues (ascending, float64) and the runs of them too close to separate (see :class:`SpectralForm`)."""
    lam = be.to_numpy(eigvals).astype(np.float64)
    close = np.diff(lam) <= (lam[-1] - lam[0]) / SEPARATION  # ascending: only neighbours need checking
    starts = np.flatnonzero(np.r_[True, ~close])
    stops = np.r_[starts[1:], len(lam)]
    return lam, [slice(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if b - a > 1]


def spectral_form(be: Backend, G: Any, eigvals: Any) -> SpectralForm:
    """The :class:`SpectralForm` of the test Gram ``G`` (float64; overwritten) in the eigenbasis of ``eigvals``."""
    lam, runs = _groups(eigvals, be)
    groups = []
    for rows in runs:
        block = np.array(be.to_numpy(G[rows, rows]), dtype=np.float64)
        np.fill_diagonal(block, 0.0)
        groups.append((rows, be.asarray(block, np.float64)))
    diag = be.asarray(np.diagonal(be.to_numpy(G)).copy(), np.float64)
    gaps = np.subtract.outer(lam, lam)  # lambda_b - lambda_a at (b, a): transposed below
    np.fill_diagonal(gaps, 1.0)
    with np.errstate(divide="ignore"):  # equal eigenvalues: grouped, zeroed below
        np.reciprocal(gaps, out=gaps)
    np.fill_diagonal(gaps, 0.0)
    for rows in runs:
        gaps[rows, rows] = 0.0
    cross = G  # in place: one r x r float64 temporary besides G
    cross *= be.asarray(gaps.T, np.float64)
    return SpectralForm(be.asarray(lam, np.float64), diag, cross, groups)


def spectral_quad(form: SpectralForm, alphas: np.ndarray, Z: Any, be: Backend) -> np.ndarray:
    """``||F0 (d_k * z)||^2`` for every alpha (rows) and column of ``Z`` (float64), see :class:`SpectralForm`."""
    lam, top = form.eigvals, form.eigvals[-1]
    a = be.asarray(np.asarray(alphas, dtype=np.float64)[:, None], np.float64)
    d = 1.0 / (lam[None, :] + a)  # (k, r)
    e = (top - lam)[None, :] * d / (top + a)
    Z64 = be.asarray(Z, np.float64)
    within = be.zeros((len(alphas), Z64.shape[1]), np.float64)
    for rows, block in form.groups:
        for k in range(len(alphas)):
            w = d[k, rows][:, None] * Z64[rows]
            within[k] += be.sum64(w * (block @ w))
    h = form.cross @ Z64
    h *= Z64  # in place from here on: passes over (r, c) float64 arrays cost as much as the product
    if Z64 is Z:  # float64 targets: Z is the caller's array
        squares = Z64 * Z64
    else:
        squares = Z64
        squares *= Z64
    squares *= form.diag[:, None]
    return be.to_numpy((d * d) @ squares + 2.0 * (e @ h) + within)


def _spectral_is_cheaper(n_features: int, n_test: int, n_alphas: int, grouped: int = 0) -> bool:
    """Partial fractions vs ``F0`` per alpha, in float32 GEMM flops per target.

    Partial fractions: one float64 ``r x r`` product (~4 r^2) and, per alpha, the float64
    blocks of the ``grouped`` = sum of squared group sizes (~4 each). ``F0``: a triangular
    multiply per alpha (r^2 flops at about half GEMM speed) when ``n_test >= r``, else a GEMM
    with the ``n_test x r`` test design.
    """
    per_alpha = 2.0 * n_features**2 if n_test >= n_features else 2.0 * n_test * n_features
    return 4.0 * n_features**2 + 4.0 * n_alphas * grouped < n_alphas * per_alpha


@dataclass
class FoldFactors:
    """X-side quantities of one fold (see the module docstring)."""

    fold: Fold
    eigvals: Any  # (r,) working precision
    basis: Any  # primal: s * V (p, r); dual: Q (n_tr, r)
    factor: Any  # F0 (None with ``spectral``)
    triangular: bool
    offset: Any  # g (r,)
    train_mean: Any  # primal: V_s^T m_x (r,)
    test_mean: Any  # primal: V_s^T xbar_te (r,)
    spectral: SpectralForm | None = None  # the quadratic term for all alphas at once, instead of F0


def _test_factor(be: Backend, test_design: Any, n_features: int) -> tuple[Any, bool]:
    """F0 with ``F0^T F0 = test_design^T test_design``: Cholesky when square or taller, else the design."""
    if test_design.shape[0] < n_features:
        return test_design, False
    gram = be.gram(test_design.T)
    upper = be.cholesky_upper(gram)
    if upper is not None:
        return upper, True
    w, U = be.eigh(gram)
    return (w**0.5)[:, None] * U.T, False


def _dual_blocks(K: Any, train: Any, test: Any, fit_intercept: bool) -> tuple[Any, Any, Any]:
    """Centred kernel blocks of one fold from the uncentred kernel ``K`` over its samples.

    Returns the training kernel centred on the training mean, the test-by-training
    kernel with test rows centred on the test mean and columns on the training mean,
    and ``(xbar_te - m_x)^T (x_j - m_x)`` for the training samples ``j``.
    """
    Ktt = K[train][:, train]
    Kst = K[test][:, train]
    b = Kst.mean(axis=0)  # xbar_te^T x_j
    if not fit_intercept:
        return Ktt, Kst - b[None, :], b
    r = Ktt.mean(axis=0)  # m_x^T x_j
    m = r.mean()  # m_x^T m_x
    a = Kst.mean(axis=1)  # x_i^T m_x
    c = a.mean()  # xbar_te^T m_x
    return Ktt - r[:, None] - r[None, :] + m, Kst - a[:, None] - b[None, :] + c, b - r - (c - m)


def fold_factors(
    design: Design,
    fold: Fold,
    dual: bool,
    band_scale: Any | None = None,
    kernel: Any | None = None,
    n_alphas: int = 1,
) -> FoldFactors:
    """Decompose one training set and express its test set in the eigenbasis.

    ``kernel`` (dual only): the float64 kernel of all samples with ``band_scale``
    already applied, reused across folds instead of recomputing fold kernels.
    ``n_alphas``: how many alphas will be scored (primal: the partial-fraction form of
    the quadratic term when that is cheaper, see :class:`SpectralForm`).
    """
    be, dt = design.be, design.dtype
    train, test = be.index(fold.train), be.index(fold.test)
    spectral = None
    if dual:
        if kernel is None or design.standardise:
            s = design.scale(train, band_scale)
            Xs = design.X64[be.index(np.concatenate([fold.train, fold.test]))] * s
            kernel = be.gram(Xs)
            train = be.index(np.arange(len(fold.train)))
            test = be.index(np.arange(len(fold.train), len(fold.train) + len(fold.test)))
        Ktt, Kst, off = _dual_blocks(kernel, train, test, design.fit_intercept)
        lam, Q = be.eigh(Ktt)
        factor, triangular, offset = Kst @ Q, False, off @ Q
        basis, train_mean, test_mean = Q, None, None
    else:
        m_x, s = design.train_mean(train), design.scale(train, band_scale)
        X_test = design.X64[test]
        x_test_mean = X_test.mean(axis=0)
        Xtr = (design.X64[train] - m_x) * s
        lam, V = be.eigh(be.gram(Xtr.T), overwrite=True)
        basis = s[:, None] * V
        test_design = (X_test - x_test_mean) @ basis
        grouped = sum((rows.stop - rows.start) ** 2 for rows in _groups(lam, be)[1])
        if _spectral_is_cheaper(design.n_features, len(fold.test), n_alphas, grouped):
            spectral = spectral_form(be, be.gram(test_design.T), lam)
            factor, triangular = None, False
        else:
            factor, triangular = _test_factor(be, test_design, design.n_features)
        offset = (x_test_mean - m_x) @ basis
        train_mean, test_mean = m_x @ basis, x_test_mean @ basis
    cast = (lambda a: None if a is None else be.asarray(a, dt)) if dt != np.float64 else (lambda a: a)
    if triangular and be.name == "numpy":
        factor = np.asfortranarray(factor)
    return FoldFactors(fold, cast(lam), cast(basis), cast(factor), triangular, cast(offset), cast(train_mean),
                       cast(test_mean), spectral)  # fmt: skip


@dataclass
class FoldTargets:
    """Y-side quantities of one fold for a chunk of targets."""

    Z: Any
    C0: Any
    sst: np.ndarray  # float64
    dy: np.ndarray  # float64


def score_alphas(ff: FoldFactors, ft: FoldTargets, alphas: np.ndarray, scoring: Scoring, be: Backend) -> np.ndarray:
    """Held-out score of every alpha (rows) for every target (columns), float64."""
    lam = ff.eigvals
    n_te = len(ff.fold.test)
    d = 1.0 / (lam[None, :] + be.asarray(alphas[:, None], lam.dtype))  # (k, r)
    cross = be.to_numpy(d @ (ft.C0 * ft.Z)).astype(np.float64)
    shift = be.to_numpy((d * ff.offset[None, :]) @ ft.Z).astype(np.float64)
    if ff.spectral is not None:
        quad = spectral_quad(ff.spectral, alphas, ft.Z, be)
    else:
        quad = np.empty_like(cross)
        for k in range(len(alphas)):
            scaled = d[k][:, None] * ft.Z
            proj = be.triangular_matmul(ff.factor, scaled) if ff.triangular else ff.factor @ scaled
            quad[k] = be.to_numpy(be.sum64(proj * proj))
    with np.errstate(divide="ignore", invalid="ignore"):
        if scoring == "r2":
            sse = ft.sst - 2.0 * cross + quad + n_te * (ft.dy - shift) ** 2
            return 1.0 - sse / ft.sst
        return cross / np.sqrt(ft.sst * quad)


def _test_moments(be: Backend, Y_test: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """Column sums (float64), centred test targets' sum of squares, and the test means."""
    sums = be.sum64(Y_test)
    mean = sums / Y_test.shape[0]
    centred = Y_test - be.asarray(mean, Y_test.dtype)[None, :]
    return sums, be.to_numpy(be.sum64(centred * centred)), be.to_numpy(mean)


@dataclass
class PrimalStats:
    """Fold-blocked sufficient statistics of one chunk of targets."""

    S_test: list[Any]  # X_te^T Y_te per fold (p, c)
    S_all: Any  # X^T Y
    sum_test: list[Any]  # column sums per fold, float64
    sum_all: Any
    sst: list[np.ndarray]
    test_mean: list[np.ndarray]


def primal_stats(design: Design, folds: list[Fold], partition: bool, Y: Any) -> PrimalStats:
    """One pass over the chunk ``Y`` (n, c) for all folds."""
    be = design.be
    S_test, sums, ssts, means = [], [], [], []
    for fold in folds:
        test = be.index(fold.test)
        Y_test = Y[test]
        S_test.append(design.Xw[test].T @ Y_test)
        s, sst, mean = _test_moments(be, Y_test)
        sums.append(s)
        ssts.append(sst)
        means.append(mean)
    if partition:
        S_all, sum_all = S_test[0], sums[0]
        for S, s in zip(S_test[1:], sums[1:], strict=True):
            S_all, sum_all = S_all + S, sum_all + s
    else:
        S_all, sum_all = design.Xw.T @ Y, be.sum64(Y)
    return PrimalStats(S_test, S_all, sums, sum_all, ssts, means)


def primal_targets(design: Design, ff: FoldFactors, stats: PrimalStats, f: int, Y: Any) -> FoldTargets:
    """Z, C0, SST and dy of fold ``f`` from the sufficient statistics."""
    be, fold = design.be, ff.fold
    n_tr = len(fold.train)
    projected_test = ff.basis.T @ stats.S_test[f]
    if fold.complement:  # basis^T (S_all - S_test) without forming the (p, c) difference
        Z = ff.basis.T @ stats.S_all
        Z -= projected_test
        sum_train = stats.sum_all - stats.sum_test[f]
    else:
        train = be.index(fold.train)
        Z, sum_train = ff.basis.T @ (design.Xw[train].T @ Y[train]), be.sum64(Y[train])
    dy = stats.test_mean[f]
    if design.fit_intercept:
        y_train_mean = sum_train / n_tr
        be.subtract_outer(Z, n_tr * ff.train_mean, be.asarray(y_train_mean, Z.dtype))
        dy = dy - be.to_numpy(y_train_mean)
    C0 = be.subtract_outer(projected_test, ff.test_mean, be.asarray(stats.sum_test[f], Z.dtype))
    return FoldTargets(Z, C0, stats.sst[f], dy)


def dual_targets(design: Design, ff: FoldFactors, Y: Any) -> FoldTargets:
    """Z, C0, SST and dy of one fold, from the target rows themselves."""
    be, fold = design.be, ff.fold
    Y_train = Y[be.index(fold.train)]
    Y_test = Y[be.index(fold.test)]
    _, sst, test_mean = _test_moments(be, Y_test)
    dy = test_mean
    if design.fit_intercept:
        y_train_mean = be.sum64(Y_train) / Y_train.shape[0]
        Y_train = Y_train - be.asarray(y_train_mean, Y.dtype)[None, :]
        dy = dy - be.to_numpy(y_train_mean)
    Y_test = Y_test - be.asarray(test_mean, Y.dtype)[None, :]
    return FoldTargets(ff.basis.T @ Y_train, ff.factor.T @ Y_test, sst, dy)


@dataclass
class FullFactors:
    """Eigenbasis of all samples, for the refit."""

    eigvals: Any
    basis: Any  # primal: s * V (p, r); dual: Q (n, r)
    scale: Any  # s (p,), working precision
    dual: bool


def full_factors(design: Design, dual: bool, band_scale: Any | None = None, kernel: Any | None = None) -> FullFactors:
    """Eigenbasis of all samples; ``kernel`` as in :func:`fold_factors`."""
    be = design.be
    s = design.scale(be.index(np.arange(design.n_samples)), band_scale)
    if dual and kernel is not None and not design.standardise:
        lam, basis = be.eigh(kernel)
    else:
        Xs = design.X64 * s  # already centred on the full-sample mean
        if dual:
            lam, basis = be.eigh(be.gram(Xs), overwrite=True)
        else:
            lam, V = be.eigh(be.gram(Xs.T), overwrite=True)
            basis = s[:, None] * V
    dt = design.dtype
    return FullFactors(be.asarray(lam, dt), be.asarray(basis, dt), be.asarray(s, dt), dual)


def refit_weights(design: Design, full: FullFactors, target_side: Any, alphas: np.ndarray) -> Any:
    """Weights (p, c) on all samples, one alpha per target.

    ``target_side`` is ``X^T Y`` in the primal form and the (centred) targets ``Y`` in the dual.
    """
    d = 1.0 / (full.eigvals[:, None] + design.be.asarray(alphas[None, :], full.eigvals.dtype))
    if not full.dual:
        return full.basis @ (d * (full.basis.T @ target_side))
    beta = full.basis @ (d * (full.basis.T @ target_side))
    s = full.scale
    return s[:, None] * ((design.Xw * s[None, :]).T @ beta)


def chunks(n_targets: int, size: int) -> Iterator[slice]:
    size = max(1, int(size))
    for start in range(0, n_targets, size):
        yield slice(start, min(start + size, n_targets))


def chunk_size(budget: float, bytes_per_target: float) -> int:
    """Targets per chunk so that the chunk's working arrays fit in ``budget`` bytes."""
    return max(1, int(budget // max(bytes_per_target, 1)))


def load_targets(design: Design, Y: np.ndarray, cols: slice | np.ndarray, y_mean: np.ndarray) -> Any:
    """Columns ``cols`` (slice or indices) of ``Y`` on the backend in working precision, centred with an intercept."""
    block = np.asarray(Y[:, cols])
    if not np.all(np.isfinite(block)):
        bad = int(np.arange(Y.shape[1])[cols][np.flatnonzero(~np.isfinite(block).all(axis=0))[0]])
        raise ValueError(f"Y: target column {bad} contains NaN or infinite values; expected finite responses")
    out = design.be.asarray(block, design.dtype)
    if design.fit_intercept:
        out = out - design.be.asarray(y_mean[cols], design.dtype)[None, :]
    return out


def select_best(cv_scores: np.ndarray) -> np.ndarray:
    """Index of the best alpha per target; NaN scores lose and ties go to the largest alpha."""
    ranked = np.where(np.isnan(cv_scores), -np.inf, cv_scores)
    return cv_scores.shape[0] - 1 - np.argmax(ranked[::-1], axis=0)


@dataclass
class LooFactors:
    """The full-sample smoother ``H = M diag(w) M^T`` (+ ``11^T / n`` with an intercept).

    With ``X`` the centred features (times the band scale ``s`` when given) and ``V,
    lambda`` (primal, ``X^T X``) or ``Q, lambda`` (dual, ``X X^T``) its eigenbasis:
    primal ``M = X V`` and ``w = d``; dual ``M = Q`` and ``w = lambda * d``. Leaving out
    one sample (or a group ``g``) changes its residuals ``r = y - H y`` to
    ``(I - H_gg)^-1 r_g`` exactly, so one decomposition serves every fold and alpha.
    """

    M: Any  # working precision
    M64: Any  # float64 (the same array in float64 runs)
    eigvals: Any
    V: Any  # primal: s * eigenvectors (p, p); None in the dual
    dual: bool
    scale: Any | None = None  # dual: band scale ``s`` (p,) in working precision; None when unscaled

    @property
    def M2(self) -> Any:
        return self.M * self.M


def loo_factors(design: Design, dual: bool, band_scale: Any | None = None) -> LooFactors:
    """The full-sample smoother of the features, scaled by ``band_scale`` (p,) when given."""
    be, dt = design.be, design.dtype
    X = design.X64  # centred on all samples when fitting an intercept: the full-data fit
    if band_scale is not None:
        X = X * band_scale
    scale = None
    if dual:
        lam, M = be.eigh(be.gram(X), overwrite=True)  # the kernel's memory becomes the eigenvectors
        V = None
        scale = None if band_scale is None else be.asarray(band_scale, dt)
    else:
        lam, V = be.eigh(be.gram(X.T), overwrite=True)
        M = X @ V
        V = be.asarray(V if band_scale is None else band_scale[:, None] * V, dt)
    return LooFactors(be.asarray(M, dt), M, be.asarray(lam, dt), V, dual, scale)


def _loo_weights(lf: LooFactors, alphas: Any) -> Any:
    d = 1.0 / (lf.eigvals[None, :] + alphas[:, None])
    return lf.eigvals[None, :] * d if lf.dual else d


def _pearson_columns(be: Backend, a: Any, b: Any) -> np.ndarray:
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    num = be.to_numpy(be.sum64(a * b))
    den = np.sqrt(be.to_numpy(be.sum64(a * a)) * be.to_numpy(be.sum64(b * b)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den


def loo_scores(design: Design, lf: LooFactors, Y: Any, alphas: np.ndarray, scoring: Scoring) -> tuple[np.ndarray, Any]:
    """Leave-one-out score of every alpha for the chunk ``Y`` (centred when fitting an intercept).

    Also returns ``Z = M^T Y`` for the refit.
    """
    be = design.be
    n = design.n_samples
    Z = lf.M.T @ Y
    weights = _loo_weights(lf, be.asarray(alphas, lf.eigvals.dtype))
    leverage = lf.M2 @ weights.T + (1.0 / n if design.fit_intercept else 0.0)  # (n, k)
    _, sst, _ = _test_moments(be, Y)
    scores = np.empty((len(alphas), Y.shape[1]))
    for k in range(len(alphas)):
        residual = (Y - lf.M @ (weights[k][:, None] * Z)) / (1.0 - leverage[:, k])[:, None]
        if scoring == "r2":
            with np.errstate(divide="ignore", invalid="ignore"):
                scores[k] = 1.0 - be.to_numpy(be.sum64(residual * residual)) / sst
        else:
            scores[k] = _pearson_columns(be, Y, Y - residual)
    return scores, Z


def loo_refit(design: Design, lf: LooFactors, Z: Any, alphas: np.ndarray) -> Any:
    """Weights (p, c) on all samples from ``Z = M^T Y``, one alpha per target."""
    d = 1.0 / (lf.eigvals[:, None] + design.be.asarray(alphas[None, :], lf.eigvals.dtype))
    if not lf.dual:
        return lf.V @ (d * Z)
    weights = design.Xw.T @ (lf.M @ (d * Z))
    return weights if lf.scale is None else (lf.scale * lf.scale)[:, None] * weights


def group_out_scores(
    design: Design, lf: LooFactors, folds: list[Fold], Y: Any, alphas: np.ndarray, scoring: Scoring
) -> tuple[np.ndarray, Any]:
    """Mean K-fold score of every alpha from the full-sample decomposition (folds must be complements).

    Per fold and alpha: ``H_gg`` (float64), a Cholesky solve for the held-out residuals.
    Also returns ``Z = M^T Y`` for the refit.
    """
    be = design.be
    n = design.n_samples
    Z = lf.M.T @ Y
    lam64 = be.asarray(be.to_numpy(lf.eigvals).astype(np.float64), np.float64)
    scores = np.zeros((len(alphas), Y.shape[1]))
    for fold in folds:
        test = be.index(fold.test)
        M_test, M64_test, Y_test = lf.M[test], lf.M64[test], Y[test]
        _, sst, _ = _test_moments(be, Y_test)
        eye = be.asarray(np.eye(len(fold.test)), np.float64)
        for k, alpha in enumerate(alphas):
            d = 1.0 / (lam64 + float(alpha))
            w = lam64 * d if lf.dual else d
            H_gg = be.gram(M64_test * (w**0.5)[None, :]) + (1.0 / n if design.fit_intercept else 0.0)
            fitted = M_test @ (be.asarray(w, Y.dtype)[:, None] * Z)
            residual = be.solve_spd(eye - H_gg, be.asarray(Y_test - fitted, np.float64))
            if scoring == "r2":
                with np.errstate(divide="ignore", invalid="ignore"):
                    scores[k] += 1.0 - be.to_numpy(be.sum64(residual * residual)) / sst
            else:
                scores[k] += _pearson_columns(be, Y_test, Y_test - be.asarray(residual, Y.dtype))
    return scores / len(folds), Z
