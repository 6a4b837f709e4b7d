"""Figures of sparse-autoencoder analyses; each function returns a matplotlib Figure.

Inputs are the tables of :mod:`scene2brain.pipeline.analyses.sae` (or any frames with the
same columns) and plain arrays. Figures are built with :class:`matplotlib.figure.Figure`
directly, so drawing never touches pyplot's state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["figure_dictionary", "figure_embedding", "figure_latent_selectivity", "figure_sae_overview"]


def figure_sae_overview(table: pd.DataFrame) -> Figure:
    """Held-out reconstruction, sparsity and (when known) dictionary recovery per model and seed.

    Parameters
    ----------
    table : DataFrame
        One row per subject x model x seed: ``subject``, ``model``, ``seed``,
        ``recon_r2_test`` (median over voxels), ``sparsity`` (fraction of zero codes on
        the test stimuli), ``dead_units`` and ``n_latents``; optionally ``recovery``,
        ``recovery_pca`` and ``recovery_ica`` (median best cosine with the true patterns).

    Returns
    -------
    Figure
        One panel per quantity; a point per seed, one position per subject and model.
    """
    panels = [("recon_r2_test", "median reconstruction R² (test)"), ("sparsity", "fraction of zero codes (test)")]
    if "recovery" in table and table["recovery"].notna().any():
        panels.append(("recovery", "median best cosine with true patterns"))
    keys = list(dict.fromkeys(zip(table["subject"], table["model"], strict=True)))
    fig = Figure(figsize=(3.2 * len(panels) + 0.5, 3.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (column, title) in zip(axes, panels, strict=True):
        for i, (subject, model) in enumerate(keys):
            rows = table[(table["subject"] == subject) & (table["model"] == model)]
            ax.plot(np.full(len(rows), i), rows[column], "o", color="C0", alpha=0.8, label="SAE" if i == 0 else None)
            if column == "recovery":
                for j, (base, marker) in enumerate((("recovery_pca", "s"), ("recovery_ica", "^"))):
                    if base in rows and rows[base].notna().any():
                        ax.plot(np.full(len(rows), i + 0.2), rows[base], marker, color=f"C{j + 1}", alpha=0.8,
                                label=base.split("_")[1].upper() if i == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(keys)), [f"{s}\n{m}" for s, m in keys], fontsize=7)
        ax.set_xlim(-0.6, len(keys) - 0.4)
        ax.set_title(title, fontsize=9)
        if column == "recovery":
            ax.axhline(0.8, color="grey", lw=0.8, ls="--")
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def figure_latent_selectivity(latents: pd.DataFrame, alpha: float = 0.05, p_column: str = "p_fdr_across") -> Figure:
    """Each latent's AUC for the positive class, sorted, significant latents marked.

    Parameters
    ----------
    latents : DataFrame
        Per-latent rows of one model and seed: ``subject``, ``label``, ``positive``,
        ``latent``, ``auc`` and ``p_column``.
    alpha : float
        Latents with ``p_column < alpha`` are drawn filled.
    p_column : str

    Returns
    -------
    Figure
        One panel per subject and label.
    """
    keys = list(dict.fromkeys(zip(latents["subject"], latents["label"], strict=True)))
    fig = Figure(figsize=(4.2 * len(keys), 3.0))
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, (subject, label) in zip(axes, keys, strict=True):
        rows = latents[(latents["subject"] == subject) & (latents["label"] == label)].sort_values("auc")
        x = np.arange(len(rows))
        significant = (rows[p_column] < alpha).to_numpy()
        ax.scatter(x[~significant], rows["auc"].to_numpy()[~significant], s=14, facecolors="none", edgecolors="C0",
                   label="n.s.")  # fmt: skip
        ax.scatter(x[significant], rows["auc"].to_numpy()[significant], s=14, color="C3",
                   label=f"{p_column} < {alpha}")  # fmt: skip
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
        ax.set_xlabel("latent (sorted by AUC)")
        ax.set_ylabel(f"AUC for {rows['positive'].iloc[0]!s}" if len(rows) else "AUC")
        ax.set_title(f"{subject}: {label}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def figure_embedding(coordinates: np.ndarray, labels: Sequence, held_out: np.ndarray, title: str = "") -> Figure:
    """A 2-D embedding of codes, coloured by label; held-out stimuli placed into it drawn outlined.

    Parameters
    ----------
    coordinates : ndarray of shape (n, 2)
    labels : sequence of length n
    held_out : ndarray of bool, shape (n,)
        True for rows placed into the fitted embedding (not fitted).
    title : str
    """
    coordinates = np.asarray(coordinates)
    labels = np.asarray(labels).astype(str)
    held_out = np.asarray(held_out, dtype=bool)
    fig = Figure(figsize=(4.6, 4.0))
    ax = fig.subplots()
    for i, c in enumerate(sorted(set(labels.tolist()))):
        colour = f"C{i % 10}"
        fitted = (labels == c) & ~held_out
        placed = (labels == c) & held_out
        ax.scatter(*coordinates[fitted].T, s=5, color=colour, alpha=0.5, label=f"{c} (fitted)", linewidths=0)
        ax.scatter(*coordinates[placed].T, s=16, facecolors="none", edgecolors=colour, label=f"{c} (placed)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, markerscale=1.5, loc="best")
    fig.tight_layout()
    return fig


def figure_dictionary(dictionary: np.ndarray, rois: Sequence, highlight: Sequence[int] = ()) -> Figure:
    """The dictionary as an image: atoms (rows) over voxels grouped by ROI.

    Parameters
    ----------
    dictionary : ndarray of shape (n_latents, n_voxels)
        Atoms in voxel units.
    rois : sequence of length n_voxels
        Each voxel's ROI; voxels are grouped by it, boundaries drawn.
    highlight : sequence of int
        Atoms marked with an arrow (e.g. the label-selective latents).
    """
    dictionary = np.asarray(dictionary, dtype=np.float64)
    rois = np.asarray(rois).astype(str)
    order = np.argsort(rois, kind="stable")
    shown = dictionary[:, order]
    limit = float(np.nanpercentile(np.abs(shown), 99)) or 1.0
    fig = Figure(figsize=(6.4, 0.16 * len(dictionary) + 1.4))
    ax = fig.subplots()
    image = ax.imshow(shown, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    names, starts = np.unique(rois[order], return_index=True)
    for start in starts[1:]:
        ax.axvline(start - 0.5, color="k", lw=0.6)
    ends = [*starts[1:], len(order)]
    ax.set_xticks([(a + b) / 2 for a, b in zip(starts, ends, strict=True)], names, fontsize=7)
    ax.set_ylabel("latent")
    for k in highlight:
        ax.annotate("", xy=(-0.5, k), xytext=(-0.08 * len(order), k), arrowprops={"arrowstyle": "->", "color": "C3"},
                    annotation_clip=False)  # fmt: skip
    fig.colorbar(image, ax=ax, label="atom weight (voxel units)", fraction=0.04)
    fig.tight_layout()
    return fig
