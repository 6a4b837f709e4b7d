"""What latent codes encode: per-latent selectivity, separability against baselines, dictionary recovery.

Arrays in, arrays out; every function works on *any* code matrix (rows = stimuli or
trials, columns = latents), whatever produced it: a sparse autoencoder, PCA, ICA, NMF
(:func:`baseline_codes`) or the voxels themselves.

- :func:`latent_selectivity`: per latent, the ROC AUC for one class, the two-sided
  Mann-Whitney test, a permutation test (labels permuted within the group structure of
  :func:`~scene2brain.decoding.permute_labels`, all latents at once), mean and fraction
  active per class, and Benjamini-Hochberg FDR across the latents of the call;
  :func:`fdr_across` applies the FDR across several such tables (latents x subjects x
  configurations).
- :func:`baseline_codes`: PCA, FastICA and NMF codes of the same size, fitted on the
  training rows only: the comparisons for a sparse autoencoder.
- :func:`compare_separability`: cross-validated linear separability of the classes from
  each code, with the same folds, permutations and statistics for every code
  (:func:`~scene2brain.decoding.cross_validate_decoding`).
- :func:`norm_test`: the source project's test (Mann-Whitney on per-row L2 norms), kept
  only for comparison.
- :func:`dictionary_recovery`, :func:`atom_roi_fraction`: how well learned atoms match
  known voxel patterns (the simulation's ``SPARSE`` factors) and where an atom's weight lies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from sklearn.decomposition import NMF, PCA, FastICA

from scene2brain.decoding import correct_p_values, cross_validate_decoding, permutation_p_value, permute_labels

BASELINES = ("pca", "ica", "nmf")


def _matrix(values: Any, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D array (rows, columns), got shape {values.shape}")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{name}: {int(bad.sum())} NaN or infinite values in {int(bad.any(axis=0).sum())} of "
            f"{values.shape[1]} columns; expected finite values"
        )
    return values


def _labels(labels: Any, n: int, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name}: expected {n} labels (one per row of codes), got shape {labels.shape}")
    return labels


def _positive_mask(labels: np.ndarray, positive: Any) -> tuple[np.ndarray, Any]:
    """Rows of the positive class; ``positive=None`` needs exactly two classes and takes the second (sorted)."""
    classes = np.unique(labels)
    if positive is None:
        if len(classes) != 2:
            raise ValueError(
                f"labels: expected exactly two classes when positive is not given, got {len(classes)} "
                f"({classes.tolist()[:10]}); pass positive= to test one class against the others"
            )
        positive = classes[1]
    mask = labels == positive
    if not mask.any():
        raise ValueError(f"positive: {positive!r} is not among the labels {classes.tolist()[:10]}")
    if mask.all():
        raise ValueError(f"labels: every row is {positive!r}; expected rows of another class too")
    return mask, positive


def latent_selectivity(
    codes: np.ndarray,
    labels: np.ndarray | Sequence[Any],
    *,
    positive: Any = None,
    n_permutations: int = 1000,
    groups: np.ndarray | Sequence[Any] | None = None,
    threshold: float = 0.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Per latent: how well it separates one class from the others, with three tests.

    Ranks are taken per latent over all rows (ties averaged). The rank sum of the
    positive rows gives the Mann-Whitney ``U = R_pos - n_pos (n_pos + 1) / 2`` and the
    ROC AUC ``U / (n_pos n_neg)`` (the probability that a positive row has the larger
    code, ties counted half). The permutation test uses the two-sided statistic
    ``|AUC - 0.5|`` on labels permuted by :func:`~scene2brain.decoding.permute_labels`
    (rows of a group keep a common label); every latent's rank sums under every
    permutation are one matrix product of the permuted label indicators with the ranks,
    so all latents see the same permutations.

    Parameters
    ----------
    codes : ndarray of shape (n_rows, n_latents)
        Latent codes (any code matrix).
    labels : array-like of shape (n_rows,)
    positive : optional
        The class tested against all others; default: with exactly two classes, the
        second in sorted order.
    n_permutations : int
        Permutations of the labels (0: no permutation test, ``p_permutation`` NaN).
    groups : array-like of shape (n_rows,), optional
        Rows that must keep a common label in a permutation (repeats of a stimulus,
        crops of one photograph); default each row on its own.
    threshold : float
        A latent is *active* on a row when its code exceeds ``threshold``.
    random_state : int
        Seeds the permutations (the same seed gives the same permutations as the
        decoding analyses for the same labels and groups).

    Returns
    -------
    DataFrame
        One row per latent: ``latent``, ``positive``, ``n_positive``, ``n_negative``,
        ``auc``, ``mannwhitney_u`` (of the positive rows), ``p_mannwhitney`` (two-sided,
        :func:`scipy.stats.mannwhitneyu`, asymptotic with tie correction),
        ``p_permutation``, ``p_fdr`` (Benjamini-Hochberg of ``p_permutation`` across the
        latents of this call; use :func:`fdr_across` for a larger family), and per class
        ``c`` of the labels ``mean[c]`` and ``active[c]`` (fraction of rows above
        ``threshold``). A constant latent (a dead unit) has AUC 0.5 and NaN p-values; it
        is left out of the FDR family.

    Examples
    --------
    >>> codes = np.array([[0.0, 1.0], [0.0, 2.0], [3.0, 0.0], [4.0, 0.5]])
    >>> t = latent_selectivity(codes, ["a", "a", "b", "b"], n_permutations=0)
    >>> t["auc"].tolist()
    [1.0, 0.0]
    """
    codes = _matrix(codes, "codes")
    n, n_latents = codes.shape
    labels = _labels(labels, n)
    mask, positive = _positive_mask(labels, positive)
    if n_permutations < 0:
        raise ValueError(f"n_permutations: expected a non-negative integer, got {n_permutations}")
    if groups is not None and np.asarray(groups).shape != (n,):
        raise ValueError(f"groups: expected {n} entries (one per row of codes), got shape {np.asarray(groups).shape}")
    ranks = stats.rankdata(codes, axis=0)
    n_pos, n_neg = int(mask.sum()), int(n - mask.sum())
    u = ranks[mask].sum(axis=0) - n_pos * (n_pos + 1) / 2
    auc = u / (n_pos * n_neg)
    constant = np.ptp(codes, axis=0) == 0
    p_mw = np.full(n_latents, np.nan)
    if (~constant).any():
        p_mw[~constant] = stats.mannwhitneyu(
            codes[mask][:, ~constant], codes[~mask][:, ~constant], alternative="two-sided", method="asymptotic"
        ).pvalue
    observed = np.where(constant, np.nan, np.abs(auc - 0.5))
    p_perm = np.full(n_latents, np.nan)
    p_fdr = np.full(n_latents, np.nan)
    if n_permutations > 0:
        binary = np.where(mask, 1, 0)
        indicators = (permute_labels(binary, groups, n_permutations, random_state) == 1).astype(np.float64)
        k = indicators.sum(axis=1, keepdims=True)  # positive rows per permutation (varies with unequal groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            null_auc = (indicators @ ranks - k * (k + 1) / 2) / (k * (n - k))
        null = np.abs(np.nan_to_num(null_auc, nan=0.5) - 0.5)
        p_perm = np.array([permutation_p_value(o, null[:, j]) for j, o in enumerate(observed)])
        p_fdr = correct_p_values(observed, null, method="fdr")
    table = pd.DataFrame(
        {
            "latent": np.arange(n_latents),
            "positive": str(positive),
            "n_positive": n_pos,
            "n_negative": n_neg,
            "auc": auc,
            "mannwhitney_u": u,
            "p_mannwhitney": p_mw,
            "p_permutation": p_perm,
            "p_fdr": p_fdr,
        }
    )
    for c in np.unique(labels).tolist():
        rows = labels == c
        table[f"mean[{c}]"] = codes[rows].mean(axis=0)
        table[f"active[{c}]"] = (codes[rows] > threshold).mean(axis=0)
    return table


def fdr_across(
    tables: Sequence[pd.DataFrame] | Mapping[str, pd.DataFrame],
    column: str = "p_permutation",
    name: str = "p_fdr_across",
) -> list[pd.DataFrame] | dict[str, pd.DataFrame]:
    """Benjamini-Hochberg FDR over the p-values of several tables together (one family).

    Use it when latents of several subjects or configurations are tested: the family is
    every row of every table, not the latents of one call.

    Parameters
    ----------
    tables : sequence or mapping of DataFrame
        E.g. :func:`latent_selectivity` tables of several subjects.
    column : str
        The p-value column, in every table.
    name : str
        The column added to each table with the adjusted p-values
        (:func:`scipy.stats.false_discovery_control`, ``method="bh"``). NaN p-values stay
        NaN and are left out of the family.

    Returns
    -------
    list or dict of DataFrame
        Copies of the tables (same container type and keys) with ``name`` added.

    Examples
    --------
    >>> a, b = pd.DataFrame({"p": [0.01, 0.04]}), pd.DataFrame({"p": [0.03, np.nan]})
    >>> [t["q"].round(3).tolist() for t in fdr_across([a, b], column="p", name="q")]
    [[0.03, 0.04], [0.04, nan]]
    """
    keyed = isinstance(tables, Mapping)
    items = list(tables.items()) if keyed else list(enumerate(tables))
    if not items:
        raise ValueError("tables: expected at least one table, got none")
    values = []
    for key, table in items:
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"tables[{key!r}]: expected a pandas DataFrame, got {type(table).__name__}")
        if column not in table.columns:
            raise ValueError(f"tables[{key!r}]: no column {column!r} (columns: {list(table.columns)})")
        p = table[column].to_numpy(dtype=np.float64)
        outside = (p < 0) | (p > 1)
        if outside.any():
            raise ValueError(
                f"tables[{key!r}][{column!r}]: {int(outside.sum())} values outside [0, 1] "
                f"(first: {p[outside][0]}); expected p-values"
            )
        values.append(p)
    pooled = np.concatenate(values)
    adjusted = np.full(len(pooled), np.nan)
    valid = np.isfinite(pooled)
    if valid.any():
        adjusted[valid] = stats.false_discovery_control(pooled[valid], method="bh")
    out, start = [], 0
    for (key, table), p in zip(items, values, strict=True):
        out.append((key, table.assign(**{name: adjusted[start : start + len(p)]})))
        start += len(p)
    return dict(out) if keyed else [t for _, t in out]


@dataclass(frozen=True)
class BaselineCodes:
    """Codes of one baseline decomposition; unpacks as ``train, eval = codes``.

    Attributes
    ----------
    train, eval : ndarray of shape (n_rows, n_components)
        Codes of the training and evaluation rows.
    patterns : ndarray of shape (n_components, n_voxels)
        Each component's voxel pattern (PCA ``components_``, ICA mixing columns, NMF
        ``components_``), in the input's units: the atoms to compare with a dictionary.
    estimator : object
        The fitted scikit-learn estimator.
    """

    train: np.ndarray
    eval: np.ndarray
    patterns: np.ndarray
    estimator: Any

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.train, self.eval))


def _orient(train: np.ndarray, eval_: np.ndarray, patterns: np.ndarray) -> tuple[np.ndarray, ...]:
    """Flip components so that their training codes have non-negative skewness (sparse positive activity)."""
    sign = np.where(stats.skew(train, axis=0) < 0, -1.0, 1.0)
    return train * sign, eval_ * sign, patterns * sign[:, None]


def baseline_codes(
    X_train: np.ndarray,
    X_eval: np.ndarray,
    n_components: int,
    methods: Sequence[str] = BASELINES,
    random_state: int = 0,
) -> dict[str, BaselineCodes]:
    """PCA, FastICA and NMF codes of ``n_components`` latents, fitted on the training rows only.

    The comparisons for a sparse autoencoder of the same size: a code is only
    interesting if it does better than these.

    - ``pca``: :class:`sklearn.decomposition.PCA`; patterns ``components_``.
    - ``ica``: :class:`sklearn.decomposition.FastICA` (``whiten="unit-variance"``);
      patterns the columns of ``mixing_``.
    - ``nmf``: :class:`sklearn.decomposition.NMF` (``init="nndsvda"``). NMF needs
      non-negative input, so every voxel is shifted by its **training** minimum
      (``X - X_train.min(axis=0)``); evaluation values below that minimum are clipped to 0.

    PCA and ICA components have no natural sign; each is flipped so that its training
    codes have non-negative skewness (a sparse, mostly-positive activity, as a
    non-negative factor has), so that signed comparisons of patterns
    (:func:`dictionary_recovery`) are fair to them.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_voxels)
    X_eval : ndarray of shape (n_eval, n_voxels)
    n_components : int
    methods : sequence of {"pca", "ica", "nmf"}
    random_state : int

    Returns
    -------
    dict of str to BaselineCodes
        ``train, eval = out["pca"]`` unpacks the codes; ``out["pca"].patterns`` holds
        the voxel patterns.
    """
    X_train, X_eval = _matrix(X_train, "X_train"), _matrix(X_eval, "X_eval")
    if X_eval.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_eval: expected {X_train.shape[1]} columns (the voxels of X_train), got {X_eval.shape[1]}")
    top = min(X_train.shape)
    if not isinstance(n_components, int | np.integer) or not 1 <= n_components <= top:
        raise ValueError(
            f"n_components: expected an integer in 1 .. {top} (min of X_train's shape), got {n_components}"
        )
    unknown = [m for m in methods if m not in BASELINES]
    if unknown or not methods:
        raise ValueError(f"methods: unknown {unknown}; expected a non-empty subset of {list(BASELINES)}")
    out = {}
    for method in methods:
        if method == "pca":
            est = PCA(n_components, random_state=random_state).fit(X_train)
            train, ev, patterns = _orient(est.transform(X_train), est.transform(X_eval), est.components_)
        elif method == "ica":
            est = FastICA(n_components, whiten="unit-variance", max_iter=1000, random_state=random_state)
            train = est.fit_transform(X_train)
            train, ev, patterns = _orient(train, est.transform(X_eval), est.mixing_.T)
        else:
            low = X_train.min(axis=0)
            est = NMF(n_components, init="nndsvda", max_iter=1000, random_state=random_state)
            train = est.fit_transform(X_train - low)
            ev = est.transform(np.clip(X_eval - low, 0.0, None))
            patterns = est.components_
        out[method] = BaselineCodes(train, ev, np.array(patterns), est)
    return out


def compare_separability(
    codes: Mapping[str, np.ndarray],
    labels: np.ndarray | Sequence[Any],
    *,
    groups: np.ndarray | Sequence[Any] | None,
    decoder: str = "logistic",
    options: Mapping[str, Any] | None = None,
    n_folds: int = 5,
    n_permutations: int = 100,
    random_state: int = 0,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Cross-validated linear separability of the classes from each code, on the same folds.

    Every code goes through :func:`~scene2brain.decoding.cross_validate_decoding` with
    the same labels, groups, decoder, folds (``GroupKFold`` seeded by ``random_state``)
    and label permutations, so the numbers are comparable and the permutation nulls of
    the codes are paired: ``p_fwe`` corrects the codes' p-values by the maximum
    statistic across them (:func:`~scene2brain.decoding.correct_p_values`).

    Parameters
    ----------
    codes : mapping of str to ndarray (n_rows, n_features)
        E.g. ``{"sae": ..., "pca": ..., "ica": ..., "voxels": X}``: the raw voxels are
        just another code.
    labels : array-like of shape (n_rows,)
    groups : array-like of shape (n_rows,) or None
        Rows that must stay in one fold and keep a common permuted label (None: each row
        its own group; given explicitly so that it is never forgotten).
    decoder, options : see :func:`~scene2brain.decoding.cross_validate_decoding`
    n_folds : int
        Outer folds (the inner search uses the same number).
    n_permutations : int
        Permutations of the whole nested procedure per code (0: no test).
    random_state : int
    n_jobs : int

    Returns
    -------
    DataFrame
        One row per code: ``code``, ``n_features``, ``accuracy``, ``balanced_accuracy``,
        ``auc`` (two classes), ``chance``, ``majority``, ``metric``, ``p_value``,
        ``p_fwe``, ``n_permutations``.
    """
    if not isinstance(codes, Mapping) or not codes:
        raise ValueError("codes: expected a non-empty mapping of name -> code matrix")
    arrays = {name: _matrix(c, f"codes[{name!r}]") for name, c in codes.items()}
    n = len(next(iter(arrays.values())))
    for name, c in arrays.items():
        if len(c) != n:
            raise ValueError(f"codes[{name!r}]: expected {n} rows (as the first code), got {len(c)}")
    labels = _labels(labels, n)
    rows, nulls = [], []
    for name, X in arrays.items():
        result = cross_validate_decoding(
            X,
            labels,
            groups=groups,
            decoder=decoder,
            options=options,
            n_folds=n_folds,
            n_inner_folds=n_folds,
            n_permutations=n_permutations,
            seed=random_state,
            n_jobs=n_jobs,
        )
        rows.append(
            {
                "code": name,
                "n_features": X.shape[1],
                "accuracy": result.accuracy,
                "balanced_accuracy": result.balanced_accuracy,
                "auc": result.auc,
                "chance": result.chance,
                "majority": result.majority,
                "metric": result.metric,
                "p_value": result.p_value,
                "n_permutations": len(result.null),
            }
        )
        nulls.append(result.null)
    table = pd.DataFrame(rows)
    table["p_fwe"] = np.nan
    if n_permutations > 0:
        observed = table[table["metric"].iloc[0]].to_numpy(dtype=np.float64)
        table["p_fwe"] = correct_p_values(observed, np.stack(nulls, axis=1), method="maxstat")
    return table


def norm_test(codes: np.ndarray, labels: np.ndarray | Sequence[Any], *, positive: Any = None) -> dict[str, float | str]:
    """The source project's test: two-sided Mann-Whitney U on the per-row L2 norms of two classes.

    Kept only to compare with the source project. It is a weak and indirect test: the
    norm pools every latent, so it cannot say which latent differs, it ignores the
    direction of the code, a class difference in overall response amplitude alone makes
    it significant, and it was applied once per subject without correction. Prefer
    :func:`latent_selectivity` (per latent, permutation-tested, FDR-corrected) and
    :func:`compare_separability`.

    Parameters
    ----------
    codes : ndarray of shape (n_rows, n_latents)
    labels : array-like of shape (n_rows,)
    positive : optional
        The class compared with all others; default the second of exactly two classes.

    Returns
    -------
    dict
        ``positive``, ``u`` (of the positive rows), ``p_value`` (two-sided,
        :func:`scipy.stats.mannwhitneyu`), ``median_norm_positive``, ``median_norm_other``.
    """
    codes = _matrix(codes, "codes")
    labels = _labels(labels, len(codes))
    mask, positive = _positive_mask(labels, positive)
    norms = np.linalg.norm(codes, axis=1)
    result = stats.mannwhitneyu(norms[mask], norms[~mask], alternative="two-sided")
    return {
        "positive": str(positive),
        "u": float(result.statistic),
        "p_value": float(result.pvalue),
        "median_norm_positive": float(np.median(norms[mask])),
        "median_norm_other": float(np.median(norms[~mask])),
    }


def dictionary_recovery(
    true_patterns: np.ndarray, learned_patterns: np.ndarray, *, one_to_one: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """For each true pattern, the best signed cosine similarity with any learned pattern.

    The cosine is **signed**: a learned atom that points the opposite way (all weights
    negated) scores -1, not 1. A sparse autoencoder's atoms and a non-negative factor's
    voxel pattern have a meaningful sign (the factor adds activity), so an atom of the
    opposite sign has not recovered it. (Decompositions without a natural sign should be
    oriented first, as :func:`baseline_codes` does.)

    Parameters
    ----------
    true_patterns : ndarray of shape (n_true, n_voxels)
        Known patterns, one per row (e.g. the simulation's ``sparse_factor_k`` loadings).
    learned_patterns : ndarray of shape (n_learned, n_voxels)
        Learned atoms (a dictionary's rows, a decomposition's patterns) over the same voxels.
    one_to_one : bool
        False (default): each true pattern takes its best atom, and two true patterns may
        take the same one. True: an optimal one-to-one assignment maximising the summed
        cosine (:func:`scipy.optimize.linear_sum_assignment`; needs at least as many atoms
        as true patterns).

    Returns
    -------
    best : ndarray of shape (n_true,)
        Cosine similarity of each true pattern with its matched atom (an all-zero atom
        has cosine 0 with everything).
    index : ndarray of int, shape (n_true,)
        The matched atom's row in ``learned_patterns``.

    Examples
    --------
    >>> true = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    >>> learned = np.array([[0.0, 2.0, 2.0], [-1.0, 0.0, 0.0]])
    >>> best, index = dictionary_recovery(true, learned)
    >>> best.round(3).tolist(), index.tolist()
    ([0.0, 1.0], [0, 0])
    """
    true_patterns = _matrix(true_patterns, "true_patterns")
    learned_patterns = _matrix(learned_patterns, "learned_patterns")
    if learned_patterns.shape[1] != true_patterns.shape[1]:
        raise ValueError(
            f"learned_patterns: expected {true_patterns.shape[1]} columns (the voxels of true_patterns), "
            f"got {learned_patterns.shape[1]}"
        )
    true_norm = np.linalg.norm(true_patterns, axis=1)
    if (true_norm == 0).any():
        raise ValueError(f"true_patterns: rows {np.flatnonzero(true_norm == 0).tolist()[:10]} are all zero")
    learned_norm = np.linalg.norm(learned_patterns, axis=1)
    unit = learned_patterns / np.where(learned_norm == 0, 1.0, learned_norm)[:, None]
    cosine = (true_patterns / true_norm[:, None]) @ unit.T
    if one_to_one:
        if len(learned_patterns) < len(true_patterns):
            raise ValueError(
                f"learned_patterns: one_to_one needs at least {len(true_patterns)} atoms (one per true pattern), "
                f"got {len(learned_patterns)}"
            )
        rows, index = optimize.linear_sum_assignment(cosine, maximize=True)
        index = index[np.argsort(rows)]
    else:
        index = cosine.argmax(axis=1)
    return cosine[np.arange(len(cosine)), index], index.astype(np.int64)


def atom_roi_fraction(patterns: np.ndarray, roi_labels: np.ndarray | Sequence[Any]) -> pd.DataFrame:
    """Fraction of each atom's squared norm that falls in each ROI.

    Parameters
    ----------
    patterns : ndarray of shape (n_atoms, n_voxels)
        Atoms over voxels (a dictionary's rows).
    roi_labels : array-like of shape (n_voxels,)
        The ROI of each voxel.

    Returns
    -------
    DataFrame
        One row per atom (index ``atom``), one column per ROI in order of first
        appearance; each row sums to 1 (NaN for an all-zero atom).

    Examples
    --------
    >>> atom_roi_fraction(np.array([[1.0, 1.0, 2.0]]), ["A", "A", "B"]).round(3).values.tolist()
    [[0.333, 0.667]]
    """
    patterns = _matrix(patterns, "patterns")
    roi_labels = np.asarray(roi_labels)
    if roi_labels.shape != (patterns.shape[1],):
        raise ValueError(
            f"roi_labels: expected {patterns.shape[1]} entries (one per voxel, the columns of patterns), "
            f"got shape {roi_labels.shape}"
        )
    rois = list(dict.fromkeys(roi_labels.tolist()))
    power = patterns**2
    total = power.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        fractions = {str(r): power[:, roi_labels == r].sum(axis=1) / total for r in rois}
    table = pd.DataFrame(fractions)
    table.index.name = "atom"
    return table
