"""Figures of representational similarity analysis; each function returns a matplotlib Figure.

RDMs come in the stored form of :mod:`scene2brain.representation` (upper triangle without
the diagonal); comparison tables are ``RDMComparison.table()`` frames (``model``,
``similarity``, ``ci_low``, ``ci_high``, optionally ``p_value``). Figures are built with
:class:`matplotlib.figure.Figure` directly, so drawing never touches pyplot's state.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from scene2brain.representation import compare_rdms, rdm_matrix

__all__ = ["figure_mds", "figure_model_comparison", "figure_rdms"]


def _display_order(n: int, order: np.ndarray | None, labels: np.ndarray | None) -> np.ndarray:
    if order is not None:
        order = np.asarray(order)
        if sorted(order.tolist()) != list(range(n)):
            raise ValueError(f"order must be a permutation of range({n})")
        return order
    if labels is None:
        return np.arange(n)
    categories = list(dict.fromkeys(labels))  # in order of first appearance
    rank = np.array([categories.index(label) for label in labels])
    return np.argsort(rank, kind="stable")


def figure_rdms(
    rdms: dict[str, np.ndarray],
    order: np.ndarray | None = None,
    labels: np.ndarray | list | None = None,
) -> Figure:
    """RDM images, rank-transformed for display, ordered by category with boundaries.

    Parameters
    ----------
    rdms : dict of str to ndarray (n_pairs,)
        RDMs in the stored form, by name (ROIs, layers), over the same stimuli.
    order : array of int, optional
        Display order of the stimuli; by default grouped by ``labels``.
    labels : array-like of str, optional
        Category of each stimulus (in the RDMs' order): stimuli are grouped by
        category (categories in order of first appearance), boundaries drawn and the
        categories named on the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not rdms:
        raise ValueError("figure_rdms: no RDMs")
    names = list(rdms)
    squares = [rdm_matrix(np.asarray(rdms[k], dtype=np.float64)) for k in names]
    n = squares[0].shape[0]
    labels_arr = None if labels is None else np.asarray(labels)
    if labels_arr is not None and len(labels_arr) != n:
        raise ValueError(f"figure_rdms: {len(labels_arr)} labels for {n} stimuli")
    idx = _display_order(n, order, labels_arr)
    cols = min(4, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig = Figure(figsize=(3.3 * cols + 0.8, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax, name, square in zip(axes.ravel(), names, squares, strict=False):
        iu = np.triu_indices(n, 1)
        ranks = np.zeros((n, n))
        pct = (stats.rankdata(square[iu]) - 1) / max(len(iu[0]) - 1, 1) * 100
        ranks[iu] = pct
        ranks = ranks + ranks.T
        shown = ranks[np.ix_(idx, idx)]
        np.fill_diagonal(shown, np.nan)
        image = ax.imshow(shown, cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        if labels_arr is not None:
            ordered = labels_arr[idx]
            edges = np.flatnonzero(ordered[1:] != ordered[:-1]) + 0.5
            for e in edges:
                ax.axhline(e, color="w", lw=0.8)
                ax.axvline(e, color="w", lw=0.8)
            bounds = np.concatenate([[-0.5], edges, [n - 0.5]])
            centres = (bounds[:-1] + bounds[1:]) / 2
            cats = [ordered[int(np.ceil(b + 0.5))] for b in bounds[:-1]]
            ax.set_xticks(centres, cats, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(centres, cats, fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_label("dissimilarity (percentile)", fontsize=8)
    return fig


def figure_model_comparison(
    table: pd.DataFrame,
    noise_ceiling: tuple[float, float] | None = None,
    pairwise: np.ndarray | None = None,
    *,
    alpha: float = 0.05,
    method: str | None = None,
) -> Figure:
    """Similarity of each model to the data: bars with CI whiskers, noise-ceiling band, pairwise marks.

    Parameters
    ----------
    table : pandas.DataFrame
        ``model, similarity, ci_low, ci_high`` and optionally ``p_value`` (as
        ``RDMComparison.table()``); bars are drawn in the table's order.
    noise_ceiling : (float, float), optional
        Lower and upper bound, drawn as a grey band.
    pairwise : ndarray (n_models, n_models), optional
        (FDR-adjusted) p-values of model differences; pairs below ``alpha`` are marked
        by a horizontal line above the bars (at most 40, the smallest p first).
    alpha : float
        Significance level of the marks (``*`` above a bar: its ``p_value`` < alpha).
    method : str, optional
        Comparator, for the axis label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    models = list(table["model"])
    k = len(models)
    sim = table["similarity"].to_numpy(dtype=float)
    low = table["ci_low"].to_numpy(dtype=float)
    high = table["ci_high"].to_numpy(dtype=float)
    fig = Figure(figsize=(max(4.5, 0.45 * k + 2), 4.2))
    ax = fig.subplots()
    x = np.arange(k)
    if noise_ceiling is not None:
        ax.axhspan(noise_ceiling[0], noise_ceiling[1], color="0.8", alpha=0.7, lw=0, label="noise ceiling")
    ax.bar(x, sim, 0.7, color="C0")
    err = np.vstack([sim - low, high - sim])
    if np.isfinite(err).any():
        yerr = np.clip(np.nan_to_num(err), 0, None)
        ax.errorbar(x, sim, yerr=yerr, fmt="none", ecolor="k", elinewidth=0.8, capsize=2)
    top = np.nanmax(np.concatenate([sim, high[np.isfinite(high)], [noise_ceiling[1] if noise_ceiling else 0.0]]))
    span = max(top - min(0.0, float(np.nanmin(np.concatenate([sim, low[np.isfinite(low)]])))), 1e-3)
    if "p_value" in table:
        for i, p in enumerate(table["p_value"].to_numpy(dtype=float)):
            if np.isfinite(p) and p < alpha:
                ax.text(i, (high[i] if np.isfinite(high[i]) else sim[i]) + 0.01 * span, "*", ha="center", fontsize=10)
    n_marks = 0
    if pairwise is not None:
        pairwise = np.asarray(pairwise, dtype=float)
        iu = np.triu_indices(k, 1)
        sig = [(pairwise[i, j], i, j) for i, j in zip(*iu, strict=True) if pairwise[i, j] < alpha]
        sig.sort()
        for level, (_, i, j) in enumerate(sig[:40]):
            y = top + span * (0.08 + 0.035 * level)
            ax.plot([i, j], [y, y], color="0.3", lw=0.8)
            ax.plot([i, i], [y, y], marker="|", color="0.3")
            ax.plot([j, j], [y, y], marker="|", color="0.3")
        n_marks = len(sig)
    ax.set_xticks(x, models, rotation=45 if k > 5 else 0, ha="right" if k > 5 else "center", fontsize=8)
    ax.set_ylabel(f"RDM similarity ({method})" if method else "RDM similarity", fontsize=9)
    title = "model RDMs vs data (whiskers: bootstrap CI)"
    if pairwise is not None:
        title += f"\nlines: pairs differing at p < {alpha}" + (f" ({n_marks}, 40 shown)" if n_marks > 40 else "")
    ax.set_title(title, fontsize=9)
    if noise_ceiling is not None:
        ax.legend(fontsize=7, loc="lower right")
    ax.axhline(0, color="k", lw=0.5)
    fig.tight_layout()
    return fig


def _mds(dissimilarity: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import MDS

    if "metric_mds" in inspect.signature(MDS).parameters:  # scikit-learn >= 1.8
        mds = MDS(n_components=2, metric="precomputed", init="classical_mds", random_state=seed)
    else:
        mds = MDS(n_components=2, dissimilarity="precomputed", random_state=seed, n_init=4)
    return mds.fit_transform(dissimilarity)


def figure_mds(
    rdms: dict[str, np.ndarray] | None = None,
    method: str = "spearman",
    *,
    similarity: pd.DataFrame | None = None,
    seed: int = 0,
) -> Figure:
    """2-D metric MDS of RDMs (ROIs and layers) from ``1 - similarity`` between them.

    Parameters
    ----------
    rdms : dict of str to ndarray (n_pairs,), optional
        RDMs in the stored form, by name, over the same stimuli (at least 3).
    method : str
        Comparator of :func:`scene2brain.representation.compare_rdms`.
    similarity : DataFrame, optional
        Instead of ``rdms``: their similarities already computed (square, names as index
        and columns).
    seed : int
        Seed of the MDS.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if similarity is not None:
        names, sim = [str(n) for n in similarity.index], similarity.to_numpy(dtype=np.float64)
    else:
        names = list(rdms or {})
        v = np.vstack([np.asarray(rdms[k], dtype=np.float64) for k in names]) if names else np.zeros((0, 0))
        sim = compare_rdms(v, v, method) if names else np.zeros((0, 0))
    if len(names) < 3:
        raise ValueError("figure_mds: need at least 3 RDMs")
    d = 1.0 - sim
    d = np.clip((d + d.T) / 2, 0, None)
    np.fill_diagonal(d, 0.0)
    xy = _mds(d, seed)
    fig = Figure(figsize=(5, 4.6))
    ax = fig.subplots()
    ax.scatter(xy[:, 0], xy[:, 1], s=25, color="C1")
    for (px, py), name in zip(xy, names, strict=True):
        ax.annotate(name, (px, py), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.set_title(f"MDS of RDMs (1 - {method})", fontsize=9)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig
