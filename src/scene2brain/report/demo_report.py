"""The demo's report folder: index.html, PNG figures, metrics as JSON and CSV."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scene2brain.utils.files import atomic_path

if TYPE_CHECKING:
    from scene2brain.pipeline.demo import DemoResult, DemoSettings

ROI_COLOURS = {"EV": "#1f77b4", "HV": "#d62728", "FACE": "#9467bd", "CAL": "#2ca02c"}


def _space_names(summary: pd.DataFrame) -> list[str]:
    return [c[len("median_nnacc[") : -1] for c in summary.columns if c.startswith("median_nnacc[")]


def _save(fig: plt.Figure, path: Path) -> str:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name


def figure_roi_accuracy(summary: pd.DataFrame, path: Path) -> str:
    """Grouped bars: median noise-normalised accuracy per ROI and feature space."""
    spaces = _space_names(summary)
    fig, ax = plt.subplots(figsize=(8, 3.8))
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
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
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
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
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
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.scatter(cal["true_noise_ceiling"], np.clip(cal[f"r[{space}]"], 0, None) ** 2, s=6, color=ROI_COLOURS["CAL"])
    ax.plot([0, 1], [0, 1], "k-", lw=0.8, label="ceiling")
    ax.plot([0, 1], [0, 0.8], "k--", lw=0.8, label="80% of ceiling")
    ax.set_xlabel("true noise ceiling")
    ax.set_ylabel(f"test r$^2$ ({space})")
    ax.set_title("Calibration voxels (linear ground truth)", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t")


def write_demo_report(result: DemoResult, settings: DemoSettings) -> Path:
    """Write index.html, figures, metrics.json, roi_summary.csv and voxel_metrics.csv.

    Returns the path of index.html.
    """
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    driver = settings.space_name(settings.driver_layer)
    figures = {
        "Median noise-normalised accuracy per ROI and feature space": figure_roi_accuracy(
            result.roi_summary, fig_dir / "roi_accuracy.png"
        ),
        "Layer hierarchy": figure_layer_hierarchy(result.roi_summary, fig_dir / "layer_hierarchy.png"),
        "Noise ceiling: estimated vs true": figure_noise_ceiling(result.voxel_metrics, fig_dir / "noise_ceiling.png"),
    }
    if (result.voxel_metrics["roi"] == "CAL").any():
        figures["Calibration voxels against their ceiling"] = figure_calibration(
            result.voxel_metrics, driver, fig_dir / "calibration.png"
        )

    for name, frame in (("roi_summary.csv", result.roi_summary), ("voxel_metrics.csv", result.voxel_metrics)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    metrics = {
        "settings": asdict(settings),
        "subject": result.experiment.subject,
        "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
        "feature_cache_hits": result.cache_hits,
        "checks": result.checks,
        "roi_summary": json.loads(result.roi_summary.to_json(orient="records")),
    }
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))

    overview = result.roi_summary[
        ["roi", "n_voxels", "best_space", "median_r", "median_nnacc", "nc_estimated", "nc_true"]
    ]
    check_rows = "".join(
        f"<tr><td>{'PASS' if c['passed'] else 'FAIL'}</td><td>{html.escape(name)}</td>"
        f"<td>{html.escape(json.dumps(c['found']))}</td></tr>"
        for name, c in result.checks.items()
    )
    figure_html = "".join(
        f'<figure><img src="figures/{src}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}</figcaption></figure>'
        for title, src in figures.items()
    )
    exp = result.experiment
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>scene2brain demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
table.t {{ border-collapse: collapse; font-size: 0.9em; }} table.t td, table.t th {{ padding: 3px 8px; border-bottom: 1px solid #ddd; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.85em; color: #555; }}
</style></head><body>
<h1>scene2brain demo: a simulated experiment, analysed and checked</h1>
<p>Subject <b>{html.escape(exp.subject)}</b>: {len(exp.stimuli)} stimuli ({len(exp.split_index("train"))} train shown once,
{len(exp.split_index("test"))} test shown {exp.metadata["simulation"]["test_repeats"]} times), {exp.responses.n_voxels} voxels,
seed {settings.seed}. Run time {result.timings["total"]:.1f} s.</p>
<p>Each ROI was simulated from a known source: <b>EV</b> from Gabor-energy receptive fields, <b>HV</b> from nonlinear mixtures of
{html.escape(driver)} features, <b>FACE</b> from face category membership, <b>CAL</b> exactly linear in the reduced
{html.escape(driver)} space. A voxelwise ridge (alpha per voxel, {settings.n_folds}-fold CV on the training split) was fitted
for every feature space and scored on the test split. Noise-normalised accuracy = 100 &middot; max(r, 0)&sup2; / NC, with NC
estimated from the test repeats (Algonauts 2023 convention).</p>
<h2>Ground-truth checks</h2>
<table class="t"><tr><th>result</th><th>check</th><th>found</th></tr>{check_rows}</table>
<h2>Per-ROI summary</h2>
{_table_html(overview)}
<h2>Figures</h2>
{figure_html}
<h2>Files</h2>
<ul><li><a href="metrics.json">metrics.json</a> (settings, timings, checks, ROI summary)</li>
<li><a href="roi_summary.csv">roi_summary.csv</a></li><li><a href="voxel_metrics.csv">voxel_metrics.csv</a> (one row per voxel)</li>
<li><code>experiment/</code>: the simulated experiment (load with <code>scene2brain.data.load_experiment</code>)</li></ul>
</body></html>
"""
    index = out / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text(page)
    return index
