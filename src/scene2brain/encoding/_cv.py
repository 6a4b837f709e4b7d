"""The one cross-validation driver behind ridge and banded ridge.

Plain ridge is banded ridge with a single, unscaled candidate: banded ridge writes
``alpha_i = alpha / gamma_i`` and fits plain ridge on ``sqrt(gamma_i) X_i`` for every
candidate weighting ``gamma`` (himalaya's structure). :func:`cross_validate` therefore
searches over *candidates* (per-feature scales) x *alphas*: every form of the solver
(:mod:`scene2brain.encoding._solver`) scores each candidate's whole alpha grid for a
chunk of targets, a :class:`Selection` keeps each target's best (candidate, alpha),
and the refit groups targets by their candidate.

Forms, and how their loops are ordered so that the expensive pieces are done once:

* ``primal`` — per chunk of targets, the fold-blocked statistics ``X_f^T Y_f`` are
  formed once and reused by every candidate (only the small ``p x p`` decompositions
  depend on the candidate; they are kept across chunks while they fit the budget);
* ``dual`` — per candidate, its kernel, then one fold at a time (one ``n_tr x n_tr``
  decomposition alive at a time) over every chunk;
* ``loo`` / ``group_out`` — per candidate, one decomposition of all samples serves
  every fold and chunk (exact leave-one-out, or leave-group-out for complementary folds
  when that is cheaper than the dual's per-fold decompositions).

Plain ridge (one candidate) refits each chunk right after scoring it, from the same
statistics; with several candidates the refit waits until every candidate is scored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

import numpy as np

from scene2brain.encoding import _solver as sv
from scene2brain.encoding._base import Folds, Solver, check_alphas, default_alphas
from scene2brain.encoding.backend import Backend

T = TypeVar("T")


@dataclass
class Bands:
    """Banded search: the band of every feature and the weightings (candidates) to try."""

    index: np.ndarray  # (n_features,) band number of each column
    gammas: np.ndarray  # (n_candidates, n_bands), rows on the simplex
    labels: np.ndarray | None = None  # (n_bands,) the bands' labels, for the results


@dataclass
class CVFit:
    """What :func:`cross_validate` found; ``ridge_cv`` and ``banded_ridge_cv`` repackage it."""

    coef: np.ndarray  # (n_features, n_targets)
    intercept: np.ndarray  # (n_targets,)
    alphas: np.ndarray  # the sorted grid
    best_alphas: np.ndarray  # (n_targets,)
    best_candidate: np.ndarray  # (n_targets,) row of ``Bands.gammas`` (0 for plain ridge)
    best_scores: np.ndarray  # (n_targets,) NaN where every score was NaN
    cv_scores: np.ndarray | None  # (n_alphas, n_targets) with a single candidate, else None
    solver: str  # "primal" or "dual"
    retained_variance: float | None


class Candidates:
    """The per-feature scales searched over: one unscaled candidate, or one per band weighting."""

    def __init__(self, design: sv.Design, bands: Bands | None):
        self.design = design
        self.bands = bands
        be = design.be
        if bands is None:
            self.scales: list[Any | None] = [None]
        else:
            self.scales = [be.asarray(np.sqrt(g)[bands.index], np.float64) for g in bands.gammas]
        self._band_kernels: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.scales)

    def clear(self) -> None:
        """Drop the cached band kernels (n x n each)."""
        self._band_kernels = None

    def kernel(self, g: int) -> Any | None:
        """Float64 kernel of all samples with candidate ``g``'s scale; None when folds build their own."""
        design = self.design
        if design.standardise:
            return None
        if self.bands is None:
            return design.be.gram(design.X64)
        if self._band_kernels is None:
            self._band_kernels = []
            for b in range(self.bands.gammas.shape[1]):
                Xb = design.X64[:, design.be.index(np.flatnonzero(self.bands.index == b))]
                self._band_kernels.append(design.be.gram(Xb))
        return sum(float(w) * K for w, K in zip(self.bands.gammas[g], self._band_kernels, strict=True))


class Selection:
    """Each target's best (candidate, alpha) so far; with one candidate, also the whole score table."""

    def __init__(self, alphas: np.ndarray, n_candidates: int, n_targets: int, eps: float):
        self.alphas = alphas
        self.eps = eps
        self.score = np.full(n_targets, -np.inf)
        self.candidate = np.zeros(n_targets, dtype=np.int64)
        self.alpha = np.full(n_targets, alphas[-1])
        self.cv_scores = np.empty((len(alphas), n_targets)) if n_candidates == 1 else None

    def update(self, g: int, cols: slice, scores: np.ndarray) -> None:
        """Candidate ``g``'s mean held-out scores (n_alphas, chunk) for the targets ``cols``."""
        if self.cv_scores is not None:
            self.cv_scores[:, cols] = scores
        idx = sv.select_best(scores)
        score = np.where(np.isnan(scores), -np.inf, scores)[idx, np.arange(scores.shape[1])]
        better = score > self.score[cols] + self.eps  # strictly better, as himalaya
        self.score[cols] = np.where(better, score, self.score[cols])
        self.candidate[cols] = np.where(better, g, self.candidate[cols])
        self.alpha[cols] = np.where(better, self.alphas[idx], self.alpha[cols])

    def by_candidate(self, cols: slice) -> Iterator[tuple[int, np.ndarray | None]]:
        """(candidate, positions within ``cols``) of the targets ``cols``; None when one candidate serves all."""
        best = self.candidate[cols]
        labels = np.unique(best)
        if len(labels) == 1:
            yield int(labels[0]), None
            return
        for g in labels:
            yield int(g), np.flatnonzero(best == g)


def _columns(cols: slice, sub: np.ndarray | None) -> slice | np.ndarray:
    """Target indices of the positions ``sub`` within ``cols`` (``cols`` itself for None)."""
    return cols if sub is None else cols.start + sub


def _subset(be: Backend, block: Any, sub: np.ndarray | None) -> Any:
    return block if sub is None else block[:, be.index(sub)]


def cross_validate(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: Any,
    folds: Folds,
    *,
    bands: Bands | None = None,
    standardise: bool = False,
    n_components: int | None = None,
    fit_intercept: bool,
    scoring: sv.Scoring,
    solver: Solver,
    backend: str | Backend,
    device: str | None,
    memory_budget: float,
) -> CVFit:
    """Choose every target's (candidate, alpha) by cross-validation and refit on all samples.

    ``X`` and ``Y`` come from :func:`~scene2brain.encoding._base.check_arrays`, ``scoring``
    and ``solver`` from :func:`~scene2brain.encoding._base.check_options`; the other
    arguments are those of :func:`~scene2brain.encoding.ridge_cv` (``bands``: None for
    plain ridge). This is :func:`prepare` (everything that depends on ``X`` alone)
    followed by :func:`fit_targets` on all of ``Y``.
    """
    dtype = np.dtype(np.float32) if Y.dtype == np.float32 else np.dtype(np.float64)
    prepared = prepare(
        X,
        dtype,
        alphas,
        folds,
        bands=bands,
        standardise=standardise,
        n_components=n_components,
        fit_intercept=fit_intercept,
        scoring=scoring,
        solver=solver,
        backend=backend,
        device=device,
        memory_budget=memory_budget,
    )
    return fit_targets(prepared, Y)


@dataclass
class SharedFactors:
    """Every candidate's X-side decompositions, computed once for all chunks of targets (see :func:`share_factors`).

    Only the lists of the prepared form are filled: ``folds`` and ``full`` for the
    primal and dual K-fold forms, ``loo`` for exact leave-one-out and leave-group-out.
    """

    folds: list[list[sv.FoldFactors]] | None  # [candidate][fold]
    full: list[sv.FullFactors] | None  # [candidate]
    loo: list[sv.LooFactors] | None  # [candidate]


@dataclass
class Prepared:
    """What :func:`cross_validate` derives from ``X`` alone; every chunk of targets shares it.

    Built by :func:`prepare`; :func:`fit_targets` fits any set of target columns with
    it, and gives each column the result the whole fit would give it (per-target
    selection needs nothing from the other targets). ``shared``, when set by
    :func:`share_factors`, holds the decompositions so that fits of chunks do no
    X-side work.
    """

    design: sv.Design
    folds: list[sv.Fold]  # checked K-fold splits; empty for leave-one-out
    loo: bool
    partition: bool  # the test sets partition the samples
    alphas: np.ndarray
    form: str  # "primal", "dual", "loo" or "group_out"
    dual: bool
    candidates: Candidates
    scoring: sv.Scoring
    size: int  # targets per chunk within the memory budget
    budget: float
    x_mean: np.ndarray  # (n_features,) of the original X (zeros without intercept)
    projection: np.ndarray | None  # (n_features, n_components) with a rank truncation
    retained: float | None
    shared: SharedFactors | None = None

    @property
    def n_features(self) -> int:
        """Columns of the original ``X`` (rows of the coefficients)."""
        return len(self.x_mean)

    @property
    def dtype(self) -> np.dtype:
        """Working precision of the products with ``Y`` and of the coefficients."""
        return self.design.dtype


def prepare(
    X: np.ndarray,
    dtype: np.dtype,
    alphas: Any,
    folds: Folds,
    *,
    bands: Bands | None = None,
    standardise: bool = False,
    n_components: int | None = None,
    fit_intercept: bool,
    scoring: sv.Scoring,
    solver: Solver,
    backend: str | Backend,
    device: str | None,
    memory_budget: float,
) -> Prepared:
    """Check the folds and options and prepare the features for any chunk of targets.

    ``dtype`` is the working precision: float32 for float32 responses, else float64.
    The other arguments are those of :func:`cross_validate`.
    """
    be = backend if isinstance(backend, Backend) else Backend(backend, device)
    dtype = np.dtype(dtype)
    n, p = X.shape
    loo = isinstance(folds, str)
    if loo and folds != "loo":
        raise ValueError(f"folds: expected a sequence of (train, test) index pairs or 'loo', got {folds!r}")
    if loo and standardise:
        raise ValueError("standardise: not available with exact leave-one-out; standardise X beforehand")
    if loo and n < 3:
        raise ValueError(f"folds='loo': needs at least 3 samples, got {n}")
    checked, partition = ([], True) if loo else sv.check_folds(list(folds), n)

    design = sv.Design.build(X, be, dtype, fit_intercept, standardise)
    projection, retained = None, None
    if n_components is not None:
        if standardise:
            raise ValueError("n_components: truncation works on the raw features; standardise X beforehand")
        if bands is not None:
            raise ValueError("n_components: truncation mixes the feature bands; not available with bands")
        if not 1 <= n_components <= min(n, p):
            raise ValueError(f"n_components: expected 1..{min(n, p)}, got {n_components}")
        projection, retained = _truncate(design, int(n_components))
        reduced = be.to_numpy(design.X64 @ be.asarray(projection, np.float64))
        design = sv.Design.build(reduced, be, dtype, fit_intercept, standardise)

    if alphas is None:
        features = be.to_numpy(design.X64)
        if standardise:
            sd = features.std(axis=0)
            features = features / np.where(sd == 0, 1.0, sd)
        alphas = default_alphas(features)
    alphas = check_alphas(alphas)

    min_train = n - 1 if loo else min(len(f.train) for f in checked)
    dual = solver == "dual" or (solver == "auto" and design.n_features > min_train)
    form = "loo" if loo else ("dual" if dual else "primal")
    if form == "dual" and _group_out_is_cheaper(design, checked, len(alphas)):
        form = "group_out"
    size = sv.chunk_size(memory_budget, _bytes_per_target(design, form, checked, len(alphas)))
    x_mean = X.mean(axis=0, dtype=np.float64) if fit_intercept else np.zeros(p)
    candidates = Candidates(design, bands)
    return Prepared(design, checked, loo, partition, alphas, form, dual, candidates, scoring, size,
                    memory_budget, x_mean, projection, retained)  # fmt: skip


def fit_targets(prepared: Prepared, Y: np.ndarray) -> CVFit:
    """Cross-validate and refit the targets ``Y`` (n_samples, n_targets) with the prepared features.

    Each column gets what a fit of all the targets together gives it: ``Y``'s column
    means centre it (with an intercept), and its (candidate, alpha) is chosen from its
    own scores.
    """
    design = prepared.design
    fit_intercept = design.fit_intercept
    y_mean = Y.mean(axis=0, dtype=np.float64) if fit_intercept else np.zeros(Y.shape[1])
    candidates = prepared.candidates
    selection = Selection(prepared.alphas, len(candidates), Y.shape[1], float(np.finfo(design.dtype).eps))
    run = _Run(design, Y, y_mean, prepared.alphas, prepared.scoring, candidates, selection, prepared.size,
               prepared.budget, prepared.shared)  # fmt: skip
    form = prepared.form
    if form in ("loo", "group_out"):
        score = sv.loo_scores if prepared.loo else partial(sv.group_out_scores, folds=prepared.folds)
        coef = run.full_basis(prepared.dual, score)
    elif form == "dual":
        coef = run.dual(prepared.folds)
    else:
        coef = run.primal(prepared.folds, prepared.partition)

    if prepared.projection is not None:
        coef = prepared.projection.astype(coef.dtype) @ coef
    intercept = y_mean - prepared.x_mean @ coef if fit_intercept else np.zeros(Y.shape[1])
    best_scores = selection.score.copy()
    best_scores[np.isneginf(best_scores)] = np.nan
    return CVFit(
        coef,
        intercept,
        prepared.alphas,
        selection.alpha,
        selection.candidate,
        best_scores,
        selection.cv_scores,
        "dual" if prepared.dual else "primal",
        prepared.retained,
    )


def share_factors(prepared: Prepared) -> SharedFactors:
    """Compute every candidate's X-side decompositions once, exactly as :func:`fit_targets` would.

    Fits of chunks of targets that carry them (``prepared.shared``) do no X-side work;
    the price is memory: all of them are alive at once (:func:`shared_factor_bytes`).
    """
    design, candidates = prepared.design, prepared.candidates
    scales = candidates.scales
    if prepared.form in ("loo", "group_out"):
        return SharedFactors(None, None, [sv.loo_factors(design, prepared.dual, s) for s in scales])
    folds, full = [], []
    for g, scale in enumerate(scales):
        if prepared.form == "dual":
            kernel = candidates.kernel(g)
            folds.append(
                [sv.fold_factors(design, f, dual=True, band_scale=scale, kernel=kernel) for f in prepared.folds]
            )
            full.append(sv.full_factors(design, dual=True, band_scale=scale, kernel=kernel))
            del kernel
        else:
            folds.append(
                [
                    sv.fold_factors(design, f, dual=False, band_scale=scale, n_alphas=len(prepared.alphas))
                    for f in prepared.folds
                ]
            )
            full.append(sv.full_factors(design, dual=False, band_scale=scale))
    candidates.clear()
    return SharedFactors(folds, full, None)


def for_tasks(prepared: Prepared) -> Prepared:
    """What fits of chunks need once ``prepared.shared`` is set: without the float64 features of a float32 fit.

    The float64 copy of ``X`` only feeds the decompositions, which the shared factors
    replace; the working-precision copy feeds the products with the targets.
    """
    design = prepared.design
    if prepared.shared is None or design.Xw is design.X64:
        return prepared
    light = replace(design, X64=None)
    return replace(prepared, design=light, candidates=Candidates(light, prepared.candidates.bands))


def shared_factor_bytes(prepared: Prepared) -> int:
    """Upper estimate of the bytes :func:`share_factors` would hold (working precision)."""
    design = prepared.design
    n, p = design.n_samples, design.n_features
    item = design.dtype.itemsize
    if prepared.form in ("loo", "group_out"):
        per = n * min(n, p) * (item + 8) + (0 if prepared.dual else p * p * item)
    elif prepared.form == "dual":
        per = sum(len(f.train) * (len(f.train) + len(f.test)) for f in prepared.folds) * item + n * n * item
    else:  # per fold: the basis and F0 or the float64 partial-fraction matrix
        per = (len(prepared.folds) + 1) * p * p * (item + 8)
    return int(per * len(prepared.candidates))


@dataclass
class _Run:
    """One search: the loops of each solver form over candidates, folds and chunks of targets."""

    design: sv.Design
    Y: np.ndarray
    y_mean: np.ndarray
    alphas: np.ndarray
    scoring: sv.Scoring
    candidates: Candidates
    selection: Selection
    size: int
    budget: float
    shared: SharedFactors | None = None

    def _coef(self) -> np.ndarray:
        return np.empty((self.design.n_features, self.Y.shape[1]), dtype=self.design.dtype)

    def _chunks(self) -> Iterator[tuple[slice, Any]]:
        """Chunks of target columns and their targets on the backend."""
        for cols in sv.chunks(self.Y.shape[1], self.size):
            yield cols, sv.load_targets(self.design, self.Y, cols, self.y_mean)

    def primal(self, folds: list[sv.Fold], partition: bool) -> np.ndarray:
        design, be, scales = self.design, self.design.be, self.candidates.scales

        def build(g: int) -> tuple[list[sv.FoldFactors], sv.FullFactors]:
            if self.shared is not None:
                return self.shared.folds[g], self.shared.full[g]
            fold_factors = [
                sv.fold_factors(design, fold, dual=False, band_scale=scales[g], n_alphas=len(self.alphas))
                for fold in folds
            ]
            return fold_factors, sv.full_factors(design, dual=False, band_scale=scales[g])

        # Built once, before any targets, while all candidates' factors fit the budget (always for
        # one); else rebuilt for every chunk of targets.
        factor_bytes = (len(folds) + 1) * design.n_features**2 * (design.dtype.itemsize + 8)  # F0 or float64 H
        factors = build
        if len(scales) == 1 or factor_bytes * len(scales) <= self.budget:
            factors = [build(g) for g in range(len(scales))].__getitem__
        coef = self._coef()

        def fit_chunk(cols: slice) -> None:
            Yc = sv.load_targets(design, self.Y, cols, self.y_mean)
            stats = sv.primal_stats(design, folds, partition, Yc)
            for g in range(len(scales)):
                scores = sum(
                    sv.score_alphas(ff, sv.primal_targets(design, ff, stats, f, Yc), self.alphas, self.scoring, be)
                    for f, ff in enumerate(factors(g)[0])
                )
                self.selection.update(g, cols, scores / len(folds))
            for g, sub in self.selection.by_candidate(cols):
                targets = _columns(cols, sub)
                target_side = _subset(be, stats.S_all, sub)
                weights = sv.refit_weights(design, factors(g)[1], target_side, self.selection.alpha[targets])
                coef[:, targets] = be.to_numpy(weights)

        self._each_chunk(fit_chunk, parallel=factors is not build)
        return coef

    def _each_chunk(self, work: Callable[[slice], None], parallel: bool) -> None:
        """``work`` on every chunk of target columns; on numpy, on as many threads as BLAS has.

        Each thread then runs its chunks with one BLAS thread: the element-wise passes, which
        numpy runs on one core, use every core too, and the budget is shared between the
        chunks in flight. Chunks write disjoint columns of the results.
        """
        n_targets = self.Y.shape[1]
        # BLAS's thread count is process-wide: one fit at a time changes it, others run their chunks in turn
        owner = parallel and self.design.be.name == "numpy" and _THREADED.acquire(blocking=False)
        try:
            threads = _blas_threads() if owner else 1
            threads = min(threads, -(-n_targets // max(1, self.size // threads)))
            if threads <= 1:
                for cols in sv.chunks(n_targets, self.size):
                    work(cols)
                return
            from concurrent.futures import ThreadPoolExecutor

            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, sv.chunks(n_targets, max(1, self.size // threads))))  # raises a chunk's error
        finally:
            if owner:
                _THREADED.release()

    def dual(self, folds: list[sv.Fold]) -> np.ndarray:
        design, be, candidates = self.design, self.design.be, self.candidates
        n_targets = self.Y.shape[1]
        last, last_kernel = len(candidates) - 1, None  # the last candidate's kernel serves its refit
        shared = self.shared
        for g, scale in enumerate(candidates.scales):
            last_kernel = None
            kernel = candidates.kernel(g) if shared is None else None
            scores = np.zeros((len(self.alphas), n_targets))
            for f, fold in enumerate(folds):
                if shared is not None:
                    ff = shared.folds[g][f]
                else:
                    ff = sv.fold_factors(design, fold, dual=True, band_scale=scale, kernel=kernel)
                for cols, Yc in self._chunks():
                    targets = sv.dual_targets(design, ff, Yc)
                    scores[:, cols] += sv.score_alphas(ff, targets, self.alphas, self.scoring, be)
                del ff
            self.selection.update(g, slice(0, n_targets), scores / len(folds))
            last_kernel = kernel
            del kernel
        coef = self._coef()

        def full_factors(g: int) -> sv.FullFactors:
            nonlocal last_kernel
            if shared is not None:
                return shared.full[g]
            kernel, last_kernel = (last_kernel if g == last else None), None
            if g != last:
                kernel = candidates.kernel(g)
            return sv.full_factors(design, dual=True, band_scale=candidates.scales[g], kernel=kernel)

        self._refit_by_candidate(coef, full_factors, partial(sv.refit_weights, design), first=last)
        return coef

    def full_basis(self, dual: bool, score: Callable[..., tuple[np.ndarray, Any]]) -> np.ndarray:
        """Candidates outermost: one decomposition of all samples alive at a time.

        The targets' choice is final once the last candidate is scored, so its refit reuses
        that pass's ``Z = M^T Y`` (for plain ridge: every target's); the targets that chose
        an earlier candidate are refitted from a second decomposition afterwards.
        """
        design, be, scales = self.design, self.design.be, self.candidates.scales
        last = len(scales) - 1
        coef = self._coef()

        def factors(g: int) -> sv.LooFactors:
            return self.shared.loo[g] if self.shared is not None else sv.loo_factors(design, dual, scales[g])

        for g in range(len(scales)):
            lf = factors(g)
            for cols, Yc in self._chunks():
                scores, Z = score(design, lf, Y=Yc, alphas=self.alphas, scoring=self.scoring)
                self.selection.update(g, cols, scores)
                if g == last:
                    for chosen, sub in self.selection.by_candidate(cols):
                        if chosen == last:
                            targets = _columns(cols, sub)
                            weights = sv.loo_refit(design, lf, _subset(be, Z, sub), self.selection.alpha[targets])
                            coef[:, targets] = be.to_numpy(weights)
                del Z
            del lf
        self._refit_by_candidate(
            coef,
            factors,
            lambda lf, Yc, alphas: sv.loo_refit(design, lf, lf.M.T @ Yc, alphas),
            skip=last,
        )
        return coef

    def _refit_by_candidate(
        self,
        coef: np.ndarray,
        factors: Callable[[int], T],
        weights: Callable[[T, Any, np.ndarray], Any],
        first: int | None = None,
        skip: int | None = None,
    ) -> None:
        """Refit every target (but those that chose ``skip``) from its candidate's ``factors``, in chunks.

        ``weights(factors, Y_chunk, alphas)`` gives the chunk's weights; ``first`` is done first.
        """
        n_targets = self.Y.shape[1]
        groups = sorted(self.selection.by_candidate(slice(0, n_targets)), key=lambda group: group[0] != first)
        for g, sub in groups:
            if g == skip:
                continue
            fitted = factors(g)
            targets = np.arange(n_targets) if sub is None else sub
            for part in sv.chunks(len(targets), self.size):
                cols = part if sub is None else targets[part]
                Yc = sv.load_targets(self.design, self.Y, cols, self.y_mean)
                coef[:, cols] = self.design.be.to_numpy(weights(fitted, Yc, self.selection.alpha[cols]))
            del fitted


#: held by the fit whose chunks run on several threads (it has set BLAS to one thread for the process)
_THREADED = threading.Lock()


def _blas_threads() -> int:
    """The threads BLAS uses now (as set by a Dask task or a ``threadpool_limits`` block, if any)."""
    from threadpoolctl import threadpool_info

    return max((int(info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas"), default=1)


def _truncate(design: sv.Design, n_components: int) -> tuple[np.ndarray, float]:
    """Top ``n_components`` right singular vectors (p, r) of the centred X and the variance they keep."""
    be = design.be
    X = design.X64
    total = float(be.to_numpy(be.sum64(X * X)).sum())
    if design.n_features <= design.n_samples:
        lam, P = be.eigh(be.gram(X.T), top=n_components)
    else:
        lam, Q = be.eigh(be.gram(X), top=n_components)
        keep = lam > lam.max() * 1e-12
        lam, Q = lam[keep], Q[:, keep]
        P = (X.T @ Q) / lam**0.5
    kept = float(be.to_numpy(lam).sum()) / total if total > 0 else 1.0
    return be.to_numpy(P), kept


def _bytes_per_target(design: sv.Design, form: str, folds: list[sv.Fold], n_alphas: int) -> float:
    n, p = design.n_samples, design.n_features
    item = design.dtype.itemsize
    if form in ("loo", "group_out"):
        words = 4 * n + 2 * min(n, p)
    elif form == "dual":
        n_tr = max(len(f.train) for f in folds)
        n_te = max(len(f.test) for f in folds)
        words = 2 * n + 4 * n_tr + 2 * n_te
    else:
        words = 2 * n + (len(folds) + 2) * p + 6 * p
    return item * words + 8 * 4 * n_alphas


def _group_out_is_cheaper(design: sv.Design, folds: list[sv.Fold], n_alphas: int) -> bool:
    """Dual K-fold: one full decomposition + per-fold ``H_gg`` solves vs one eigendecomposition per fold.

    Needs folds whose training sets are the complements of their test sets and no
    per-fold standardisation. Costs in GEMM-equivalent flops: a symmetric
    eigendecomposition runs at about an eighth of GEMM speed per n^3 (measured).
    """
    if design.standardise or not all(f.complement for f in folds):
        return False
    n = design.n_samples
    group_out = n_alphas * sum(2.0 * len(f.test) ** 2 * n for f in folds)
    per_fold = sum(8.0 * len(f.train) ** 3 for f in folds)
    return group_out < per_fold
