"""Figures of a run's results; each function returns a matplotlib Figure.

Figures are built with :class:`matplotlib.figure.Figure` directly, so drawing them never
changes the caller's pyplot backend or state. The tables are those of
:mod:`scene2brain.pipeline.results` (``roi_summary``, ``model_summary``, per-voxel
tables, ``identification``).
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

SCORE_LABELS = {"nnacc": "noise-normalised accuracy (%)", "r": "Pearson r"}


def score_label(score: str) -> str:
    return SCORE_LABELS.get(score, score)


def _rois(table: pd.DataFrame) -> list[str]:
    rois = list(dict.fromkeys(table["roi"]))
    return [r for r in rois if r != "all"] + (["all"] if "all" in rois else [])


def figure_roi_accuracy(model_summary: pd.DataFrame) -> Figure:
    """Per ROI: each model at its best layer (bars, bootstrap CI whiskers), and the noise ceiling.

    One row of panels per subject.
    """
    subjects = list(dict.fromkeys(model_summary["subject"]))
    has_nc = model_summary["median_noise_ceiling"].notna().any()
    fig = Figure(figsize=(10 if has_nc else 7.5, 3.4 * len(subjects)))
    axes = fig.subplots(len(subjects), 2 if has_nc else 1, squeeze=False, width_ratios=[3, 1] if has_nc else None)
    for row, subject in enumerate(subjects):
        table = model_summary[model_summary["subject"] == subject]
        rois, models = _rois(table), list(dict.fromkeys(table["model"]))
        ax = axes[row, 0]
        width = 0.8 / len(models)
        x = np.arange(len(rois))
        for i, model in enumerate(models):
            part = table[table["model"] == model].set_index("roi").reindex(rois)
            err = np.vstack([part["median"] - part["ci_low"], part["ci_high"] - part["median"]])
            ax.bar(x + (i + 0.5) * width - 0.4, part["median"], width, label=model)
            if np.isfinite(err).any():
                ax.errorbar(x + (i + 0.5) * width - 0.4, part["median"], yerr=np.clip(err, 0, None), fmt="none",
                            ecolor="k", elinewidth=0.8, capsize=2)  # fmt: skip
        ax.set_xticks(x, rois, rotation=30 if len(rois) > 8 else 0, fontsize=8)
        ax.set_ylabel(f"median {score_label(table['score'].iloc[0])}", fontsize=9)
        ax.set_title(f"{subject}: each model at its best layer per ROI (bars: 95% bootstrap CI)", fontsize=9)
        ax.legend(fontsize=7, ncols=2)
        if has_nc:
            nc = table.drop_duplicates("roi").set_index("roi").reindex(rois)["median_noise_ceiling"] * 100
            axes[row, 1].barh(np.arange(len(rois)), nc, color="0.6")
            axes[row, 1].set_yticks(np.arange(len(rois)), rois, fontsize=8)
            axes[row, 1].invert_yaxis()
            axes[row, 1].set_xlabel("median noise ceiling (% variance)", fontsize=9)
    fig.tight_layout()
    return fig


def figure_layer_hierarchy(roi_summary: pd.DataFrame) -> Figure | None:
    """Accuracy against layer depth, one panel per model (with more than one layer), one line per ROI."""
    models = [m for m, g in roi_summary.groupby("model", sort=False) if g["layer"].nunique() > 1]
    if not models:
        return None
    subjects = list(dict.fromkeys(roi_summary["subject"]))
    fig = Figure(figsize=(4.6 * len(models), 3.4 * len(subjects)))
    axes = fig.subplots(len(subjects), len(models), squeeze=False)
    for row, subject in enumerate(subjects):
        for col, model in enumerate(models):
            ax = axes[row, col]
            table = roi_summary[(roi_summary["subject"] == subject) & (roi_summary["model"] == model)]
            layers = table.drop_duplicates("depth").sort_values("depth")
            for roi in _rois(table):
                part = table[table["roi"] == roi].sort_values("depth")
                style = {"color": "k", "ls": "--"} if roi == "all" else {"ls": "-"}
                (line,) = ax.plot(part["depth"], part["median"], marker="o", ms=3, label=roi, **style)
                if part["ci_low"].notna().any():
                    band = part["ci_low"], part["ci_high"]
                    ax.fill_between(part["depth"], *band, alpha=0.12, color=line.get_color())
            ax.set_xticks(layers["depth"], layers["layer"], rotation=30, fontsize=7)
            ax.set_title(f"{subject}: {model}", fontsize=9)
            ax.set_ylabel(f"median {score_label(table['score'].iloc[0])}", fontsize=8)
            ax.set_xlabel("layer (input to output)", fontsize=8)
        axes[row, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def figure_voxel_scatter(voxels: pd.DataFrame, a: str, b: str, score: str, roi_column: str) -> Figure:
    """Voxel-by-voxel scores of two feature spaces, coloured by ROI, with the diagonal."""
    fig = Figure(figsize=(4.8, 4.4))
    ax = fig.subplots()
    x, y = voxels[f"{score}[{a}]"], voxels[f"{score}[{b}]"]
    groups = voxels[roi_column].fillna("none") if roi_column in voxels else pd.Series("all", index=voxels.index)
    for roi in dict.fromkeys(groups):
        rows = (groups == roi).to_numpy()
        ax.scatter(x[rows], y[rows], s=3, alpha=0.5, label=str(roi), rasterized=True)
    finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    ax.plot([low, high], [low, high], "k-", lw=0.8)
    ax.set_xlabel(f"{a}: {score_label(score)}", fontsize=8)
    ax.set_ylabel(f"{b}: {score_label(score)}", fontsize=8)
    above = float(np.mean(y > x))
    ax.set_title(f"{voxels['subject'].iloc[0]}: {above:.0%} of voxels above the diagonal", fontsize=9)
    ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    return fig


def figure_identification(identification: pd.DataFrame) -> Figure:
    """Identification accuracy against set size: exact (solid) and extrapolated (dashed), with chance."""
    subjects = list(dict.fromkeys(identification["subject"]))
    fig = Figure(figsize=(5.5 * len(subjects), 4))
    axes = fig.subplots(1, len(subjects), squeeze=False)[0]
    for ax, subject in zip(axes, subjects, strict=True):
        table = identification[identification["subject"] == subject]
        for i, (space, part) in enumerate(table.groupby("space", sort=False)):
            colour = f"C{i % 10}"
            exact = part[part["kind"] == "exact"]
            extra = part[part["kind"] == "extrapolated"]
            ax.plot(exact["set_size"], exact["accuracy"] * 100, "-", color=colour, label=space)
            ax.plot(extra["set_size"], extra["accuracy"] * 100, "--", color=colour, lw=0.8)
        sizes = np.geomspace(2, table["set_size"].max(), 50)
        ax.plot(sizes, 100 / sizes, ":", color="0.5", label="chance")
        ax.set_xscale("log")
        ax.set_xlabel("set size (candidate images)", fontsize=8)
        ax.set_ylabel("identification accuracy (%)", fontsize=8)
        ax.set_title(f"{subject}: exact (solid), extrapolated (dashed)", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def figure_noise_ceiling_truth(voxels: pd.DataFrame, roi_column: str) -> Figure:
    """Noise ceiling estimated from the data against the simulation's true one."""
    fig = Figure(figsize=(4.4, 4.2))
    ax = fig.subplots()
    for roi, group in voxels.groupby(roi_column, sort=False):
        ax.scatter(group["true_noise_ceiling"], group["noise_ceiling"], s=4, alpha=0.5, label=roi, rasterized=True)
    ax.plot([0, 1], [0, 1], "k-", lw=0.8)
    ax.set_xlabel("true noise ceiling")
    ax.set_ylabel("estimated noise ceiling")
    ax.set_title(f"{voxels['subject'].iloc[0]}: simulation ground truth", fontsize=9)
    ax.legend(fontsize=8, markerscale=3)
    fig.tight_layout()
    return fig


def figure_simulation_plan(plan: pd.DataFrame) -> Figure:
    """What more training images and test repeats buy (:func:`scene2brain.pipeline.planning.plan_experiment`).

    Three panels against the number of training images, one line per number of test
    repeats: the noise ceiling's estimation error, the fraction of the true ceiling a
    ridge model reaches (all voxels; dashed: per ROI for the most repeats), and image
    identification accuracy with its chance level.
    """
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    pooled = plan[plan["roi"] == "all"]
    for repeats, part in pooled.groupby("test_repeats"):
        part = part.sort_values("n_train")
        label = f"{repeats} test repeat{'s' * (repeats > 1)}"
        axes[0].plot(part["n_train"], part["nc_median_abs_error"], marker="o", label=label)
        axes[1].plot(part["n_train"], part["fraction_of_ceiling"], marker="o", label=label)
        axes[2].plot(part["n_train"], part["identification"] * 100, marker="o", label=label)
    most = plan[(plan["test_repeats"] == plan["test_repeats"].max()) & (plan["roi"] != "all")]
    for roi, part in most.groupby("roi", sort=False):
        part = part.sort_values("n_train")
        axes[1].plot(part["n_train"], part["fraction_of_ceiling"], ls="--", lw=0.8, label=f"{roi} (most repeats)")
    axes[2].plot(pooled["n_train"], pooled["chance"] * 100, "k:", lw=0.8, label="chance")
    titles = ("noise ceiling: median |estimate - truth|", "median r^2 / true noise ceiling", "identification (%)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("training images", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_encoder_comparison(encoders: pd.DataFrame) -> Figure:
    """Encoders x feature spaces per ROI (bars with bootstrap whiskers), and each fit's time.

    One row of panels per subject x feature space: left, the median primary score per ROI of
    every encoder; right, the encoders' fit times (log scale).
    """
    panels = list(dict.fromkeys(zip(encoders["subject"], encoders["space"], strict=True)))
    all_names = list(dict.fromkeys(encoders["encoder"]))  # one colour per encoder in every panel
    # tab20 in the order dark 0..9, then light 0..9: the first ten encoders get ten different hues
    palette = matplotlib.colormaps["tab20"]

    def colour(i: int) -> tuple:
        return palette((2 * i) % 20 + (i // 10) % 2)

    fig = Figure(figsize=(11, 3.2 * len(panels)))
    axes = fig.subplots(len(panels), 2, squeeze=False, width_ratios=[3, 1])
    for row, (subject, space) in enumerate(panels):
        table = encoders[(encoders["subject"] == subject) & (encoders["space"] == space)]
        rois, names = _rois(table), list(dict.fromkeys(table["encoder"]))
        ax, width, x = axes[row, 0], 0.8 / len(names), np.arange(len(rois))
        colours = {name: colour(i) for i, name in enumerate(all_names)}
        for i, name in enumerate(names):
            part = table[table["encoder"] == name].set_index("roi").reindex(rois)
            err = np.vstack([part["score"] - part["ci_low"], part["ci_high"] - part["score"]])
            ax.bar(x + (i + 0.5) * width - 0.4, part["score"], width, label=name, color=colours[name])
            if np.isfinite(err).any():
                ax.errorbar(x + (i + 0.5) * width - 0.4, part["score"], yerr=np.clip(err, 0, None), fmt="none",
                            ecolor="k", elinewidth=0.8, capsize=2)  # fmt: skip
        ax.set_xticks(x, rois, rotation=30 if len(rois) > 8 else 0, fontsize=8)
        ax.set_ylabel(f"median {score_label(table['metric'].iloc[0])}", fontsize=9)
        ax.set_title(f"{subject}, {space}: encoders per ROI, test split", fontsize=9)
        ax.legend(fontsize=7, ncols=3)
        seconds = table.drop_duplicates("encoder").set_index("encoder").reindex(names)["fit_seconds"]
        times = axes[row, 1]
        times.barh(np.arange(len(names)), seconds, color=[colours[n] for n in names])
        times.set_yticks(np.arange(len(names)), names, fontsize=8)
        times.invert_yaxis()
        times.set_xscale("log")
        times.xaxis.set_minor_formatter(NullFormatter())
        finite = seconds[np.isfinite(seconds) & (seconds > 0)]
        if len(finite):
            times.set_xlim(finite.min() / 3, finite.max() * 3)
        for i, value in enumerate(seconds):
            if np.isfinite(value) and value > 0:
                times.text(value, i, f" {value:.3g}", va="center", fontsize=7)
        times.set_xlabel("fit time (s, CV included; log scale)", fontsize=9)
    fig.tight_layout()
    return fig
