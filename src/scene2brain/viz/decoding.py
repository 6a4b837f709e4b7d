"""Figures of decoding results; each function returns a matplotlib Figure.

Built with :class:`matplotlib.figure.Figure` directly (no pyplot state), like
:mod:`scene2brain.viz.figures`. Inputs are tables and arrays, never files:

- :func:`figure_decoding_accuracy`: held-out accuracy per ROI / feature space against
  chance, each row's permutation null (violin) and stars for corrected p-values;
- :func:`figure_confusion`: row-normalised confusion matrices, one panel each;
- :func:`figure_blur_curves`: accuracy against blur level per feature space, with a
  bootstrap band and the chance line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scene2brain.features.blur import box_equivalent_sigma

METRIC_LABELS = {"balanced_accuracy": "balanced accuracy", "accuracy": "accuracy"}


def stars(p: float) -> str:
    """``***`` (p < 0.001), ``**`` (< 0.01), ``*`` (< 0.05) or ``""`` (also for NaN)."""
    if not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _ordered(values: pd.Series) -> list:
    return list(dict.fromkeys(values))


def figure_decoding_accuracy(
    table: pd.DataFrame, null: Mapping[str, np.ndarray] | None = None, metric: str = "balanced_accuracy"
) -> Figure:
    """Held-out decoding accuracy per row against chance, with permutation nulls and corrected p.

    Parameters
    ----------
    table : DataFrame
        One row per decoding: ``subject``, ``target`` (the kind of thing decoded from,
        e.g. ``"roi"`` or ``"space"``), ``name``, ``decoder``, ``label`` (the row's
        display name, unique within a subject and target; the key of ``null``),
        ``metric`` column (default ``balanced_accuracy``), ``chance`` and
        ``p_corrected``.
    null : mapping, optional
        ``(subject, target, label)`` (or just the label) -> the metric's permutation null;
        shown as a violin behind the row.
    metric : str
        The column plotted.

    Returns
    -------
    Figure
        One row of panels per subject, one column per target kind; within a panel one
        position per row, colour per decoder; a short dashed line at each row's chance
        and stars above the rows with corrected p < 0.05 (* / ** / *** at 0.05 / 0.01 / 0.001).
    """
    null = dict(null or {})
    subjects, targets = _ordered(table["subject"]), _ordered(table["target"])
    decoders = _ordered(table["decoder"])
    colours = {d: f"C{i}" for i, d in enumerate(decoders)}
    width = max(4.0, 0.45 * table.groupby(["subject", "target"]).size().max() + 1.5)
    fig = Figure(figsize=(width * len(targets), 3.4 * len(subjects)))
    axes = fig.subplots(len(subjects), len(targets), squeeze=False)
    for r, subject in enumerate(subjects):
        for c, target in enumerate(targets):
            ax = axes[r, c]
            part = table[(table["subject"] == subject) & (table["target"] == target)].reset_index(drop=True)
            if part.empty:
                ax.set_axis_off()
                continue
            x = np.arange(len(part))
            nulls = [
                np.asarray(null.get((subject, target, label), null.get(str(label), [])), dtype=float)
                for label in part["label"]
            ]
            shown = [i for i, v in enumerate(nulls) if np.isfinite(v).sum() > 1]
            if shown:
                body = ax.violinplot(
                    [nulls[i][np.isfinite(nulls[i])] for i in shown], positions=x[shown], widths=0.7, showextrema=False
                )
                for patch in body["bodies"]:
                    patch.set_facecolor("0.75")
                    patch.set_edgecolor("none")
                    patch.set_alpha(0.8)
            for i, row in part.iterrows():
                ax.hlines(row["chance"], i - 0.4, i + 0.4, colors="k", linestyles="--", linewidth=0.8)
                ax.plot(i, row[metric], "o", color=colours[row["decoder"]], ms=6, zorder=3)
                mark = stars(float(row.get("p_corrected", np.nan)))
                if mark:
                    ax.annotate(
                        mark, (i, row[metric]), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=9
                    )
            ax.set_xticks(
                x,
                part["label"],
                rotation=40 if len(part) > 4 else 0,
                ha="right" if len(part) > 4 else "center",
                fontsize=8,
            )
            ax.set_xlim(-0.7, len(part) - 0.3)
            ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize=9)
            ax.set_title(f"{subject}: decoding from each {target} (grey: permutation null)", fontsize=9)
            handles = [ax.plot([], [], "o", color=colours[d], label=d)[0] for d in _ordered(part["decoder"])]
            handles.append(ax.plot([], [], "k--", lw=0.8, label="chance")[0])
            ax.legend(handles=handles, fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def figure_confusion(confusions: Mapping[str, tuple[np.ndarray, Sequence[str]]], n_columns: int = 4) -> Figure:
    """Row-normalised confusion matrices (rows: true class), one small panel per entry.

    Parameters
    ----------
    confusions : mapping of str to (ndarray (K, K), sequence of K class names)
        Panel title -> counts (rows true, columns predicted) and the class names.
    n_columns : int
        Panels per row.

    Returns
    -------
    Figure
        Each cell shows the share of the true class's rows predicted as the column's
        class (recall on the diagonal); rows without any sample are left blank.
    """
    if not confusions:
        raise ValueError("confusions: nothing to draw")
    n = len(confusions)
    cols = min(n_columns, n)
    rows = -(-n // cols)
    k_max = max(np.asarray(m).shape[0] for m, _ in confusions.values())
    side = 1.2 + 0.45 * k_max
    fig = Figure(figsize=(side * cols + 0.8, side * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax, (title, (matrix, classes)) in zip(axes.ravel(), confusions.items(), strict=False):
        counts = np.asarray(matrix, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = counts / counts.sum(axis=1, keepdims=True)
        image = ax.imshow(share, vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(share):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
        ticks = np.arange(len(classes))
        ax.set_xticks(ticks, classes, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(ticks, classes, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(title, fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="share of the true class")
    return fig


def figure_blur_curves(table: pd.DataFrame, metric: str = "accuracy") -> Figure:
    """Decoding accuracy against blur level, one line per feature space.

    Parameters
    ----------
    table : DataFrame
        ``space``, ``blur`` (``"gaussian"``: ``level`` is sigma in pixels; ``"box"``:
        ``level`` is the box size), ``level``, the ``metric`` column, ``ci_low`` and
        ``ci_high`` (bootstrap interval; NaN to omit) and ``chance``; optionally
        ``subject`` (one row of panels each).
    metric : str

    Returns
    -------
    Figure
        One panel per blur kind present (Gaussian: x = sigma; box: x = box size, with its
        equivalent Gaussian sigma in the tick labels); shaded bands for the interval,
        a dashed line at chance.
    """
    kinds = [k for k in ("gaussian", "box") if k in set(table["blur"])]
    if not kinds:
        raise ValueError(f"table: expected blur kinds 'gaussian' and/or 'box', got {sorted(set(table['blur']))}")
    subjects = _ordered(table["subject"]) if "subject" in table else [None]
    spaces = _ordered(table["space"])
    colours = {s: f"C{i}" for i, s in enumerate(spaces)}
    fig = Figure(figsize=(4.6 * len(kinds), 3.3 * len(subjects)))
    axes = fig.subplots(len(subjects), len(kinds), squeeze=False)
    for r, subject in enumerate(subjects):
        rows = table if subject is None else table[table["subject"] == subject]
        for c, kind in enumerate(kinds):
            ax = axes[r, c]
            part = rows[rows["blur"] == kind]
            for space in _ordered(part["space"]):
                line = part[part["space"] == space].sort_values("level")
                ax.plot(line["level"], line[metric], marker="o", ms=3, color=colours[space], label=space)
                if line[["ci_low", "ci_high"]].notna().all(axis=None):
                    ax.fill_between(
                        line["level"], line["ci_low"], line["ci_high"], color=colours[space], alpha=0.2, linewidth=0
                    )
            if part["chance"].notna().any():
                ax.axhline(float(part["chance"].dropna().iloc[0]), color="k", ls="--", lw=0.8, label="chance")
            if kind == "box":
                sizes = sorted(set(part["level"].astype(int)))
                ax.set_xticks(sizes, [f"{k}\n(σ {box_equivalent_sigma(k):.1f})" for k in sizes], fontsize=7)
                ax.set_xlabel("box size (px; equivalent Gaussian σ)", fontsize=9)
            else:
                ax.set_xlabel("Gaussian σ (px)", fontsize=9)
            ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize=9)
            prefix = "" if subject is None else f"{subject}: "
            ax.set_title(f"{prefix}{kind} blur (bands: bootstrap CI)", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
