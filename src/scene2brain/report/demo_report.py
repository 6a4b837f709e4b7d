"""The demo's report folder: index.html, PNG figures, metrics as JSON and CSV."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scene2brain.utils.files import atomic_path
from scene2brain.viz.figures import (
    figure_calibration,
    figure_layer_hierarchy,
    figure_noise_ceiling,
    figure_roi_accuracy,
)


@dataclass
class DemoReportContent:
    """What the demo report shows.

    Attributes
    ----------
    roi_summary, voxel_metrics : DataFrame
        Per-ROI and per-voxel results.
    checks : dict
        Ground-truth check name -> {"passed": bool, "found": ...}.
    facts : dict
        subject, n_stimuli, n_train, n_test, test_repeats, n_voxels, seed, n_folds and
        driver_space (the feature space behind the HV and CAL voxels).
    settings : dict
        The run's settings, recorded in metrics.json.
    timings : dict
        Seconds per stage, with "total".
    cache_hits : dict
        Feature space -> whether its features came from the cache.
    """

    roi_summary: pd.DataFrame
    voxel_metrics: pd.DataFrame
    checks: dict[str, dict[str, Any]]
    facts: dict[str, Any]
    settings: dict[str, Any]
    timings: dict[str, float]
    cache_hits: dict[str, bool]


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t")


def write_demo_report(result: DemoReportContent, out: Path) -> Path:
    """Write index.html, figures, metrics.json, roi_summary.csv and voxel_metrics.csv into ``out``.

    Returns the path of index.html.
    """
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    facts = result.facts
    driver = facts["driver_space"]
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
        "settings": result.settings,
        "facts": facts,
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
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>scene2brain demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
table.t {{ border-collapse: collapse; font-size: 0.9em; }} table.t td, table.t th {{ padding: 3px 8px; border-bottom: 1px solid #ddd; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.85em; color: #555; }}
</style></head><body>
<h1>scene2brain demo: a simulated experiment, analysed and checked</h1>
<p>Subject <b>{html.escape(facts["subject"])}</b>: {facts["n_stimuli"]} stimuli ({facts["n_train"]} train shown once,
{facts["n_test"]} test shown {facts["test_repeats"]} times), {facts["n_voxels"]} voxels, seed {facts["seed"]}. Run time {result.timings["total"]:.1f} s.</p>
<p>Each ROI was simulated from a known source: <b>EV</b> from Gabor-energy receptive fields, <b>HV</b> from nonlinear mixtures of
{html.escape(driver)} features, <b>FACE</b> from face category membership, <b>CAL</b> exactly linear in the reduced
{html.escape(driver)} space. A voxelwise ridge (alpha per voxel, {facts["n_folds"]}-fold CV on the training split) was fitted
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
