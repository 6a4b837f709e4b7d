"""Figures of encoding results; each writes one PNG and returns its file name.

Figures are built with :class:`matplotlib.figure.Figure` directly, so drawing them never
changes the caller's pyplot backend or state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scene2brain.utils.files import atomic_path

ROI_COLOURS = {"EV": "#1f77b4", "HV": "#d62728", "FACE": "#9467bd", "CAL": "#2ca02c"}


def _space_names(summary: pd.DataFrame) -> list[str]:
    return [c[len("median_nnacc[") : -1] for c in summary.columns if c.startswith("median_nnacc[")]


def _new_axes(width: float, height: float):
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _save(fig: Figure, path: Path) -> str:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path.name


def figure_roi_accuracy(summary: pd.DataFrame, path: Path) -> str:
    """Grouped bars: median noise-normalised accuracy per ROI and feature space."""
    spaces = _space_names(summary)
    fig, ax = _new_axes(8, 3.8)
    width = 0.8 / len(spaces)
    x = np.arange(len(summary))
    for i, space in enumerate(spaces):
        ax.bar(x + i * width - 0.4 + width / 2, summary[f"median_nnacc[{space}]"], width, label=space)
    ax.set_xticks(x, summary["roi"])
    ax.set_ylabel("median noise-normalised\naccuracy (%)")
    ax.set_title("Which feature space predicts which ROI")
    ax.legend(fontsize=8, ncols=2)
    return _save(fig, path)


def figure_layer_hierarchy(summary: pd.DataFrame, path: Path) -> str:
    """Median accuracy per ROI across EfficientNet-Lite0 layers (Gabor as a dashed reference)."""
    spaces = [s for s in _space_names(summary) if s.startswith("effnet:")]
    fig, ax = _new_axes(6.5, 3.8)
    for _, row in summary.iterrows():
        colour = ROI_COLOURS.get(row["roi"])
        ax.plot(range(len(spaces)), [row[f"median_nnacc[{s}]"] for s in spaces], "o-", color=colour, label=row["roi"])
        if "median_nnacc[gabor]" in row:
            ax.axhline(row["median_nnacc[gabor]"], color=colour, ls="--", lw=0.8)
    ax.set_xticks(range(len(spaces)), [s.split(":", 1)[1] for s in spaces])
    ax.set_xlabel("EfficientNet-Lite0 layer (dashed: Gabor pyramid)")
    ax.set_ylabel("median noise-normalised\naccuracy (%)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def figure_noise_ceiling(table: pd.DataFrame, path: Path) -> str:
    """Noise ceiling estimated from the test repeats against the simulation's truth."""
    fig, ax = _new_axes(4.2, 4.2)
    for roi, group in table.groupby("roi", sort=False):
        ax.scatter(
            group["true_noise_ceiling"], group["noise_ceiling"], s=4, alpha=0.5, color=ROI_COLOURS.get(roi), label=roi
        )
    ax.plot([0, 1], [0, 1], "k-", lw=0.8)
    ax.set_xlabel("true noise ceiling")
    ax.set_ylabel("estimated from repeats")
    ax.legend(fontsize=8, markerscale=3)
    return _save(fig, path)


def figure_calibration(table: pd.DataFrame, space: str, path: Path) -> str:
    """Held-out r^2 of calibration voxels against their true noise ceiling."""
    cal = table[table["roi"] == "CAL"]
    fig, ax = _new_axes(4.2, 4.2)
    ax.scatter(cal["true_noise_ceiling"], np.clip(cal[f"r[{space}]"], 0, None) ** 2, s=6, color=ROI_COLOURS["CAL"])
    ax.plot([0, 1], [0, 1], "k-", lw=0.8, label="ceiling")
    ax.plot([0, 1], [0, 0.8], "k--", lw=0.8, label="80% of ceiling")
    ax.set_xlabel("true noise ceiling")
    ax.set_ylabel(f"test r$^2$ ({space})")
    ax.set_title("Calibration voxels (linear ground truth)", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)
