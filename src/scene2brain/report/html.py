"""The report of a run: one self-contained HTML file, every figure also as PNG and SVG.

Reads a results folder written by ``scene2brain run`` (``provenance.json``,
``tables/``, ``stages/``) and writes ``index.html`` and ``figures/`` into the report
folder. Figures are embedded in the HTML as base64 PNG, so the file can be sent alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from scene2brain.data.datasets.fetch import data_home
from scene2brain.utils.files import atomic_path
from scene2brain.viz.figures import (
    figure_identification,
    figure_layer_hierarchy,
    figure_noise_ceiling_truth,
    figure_roi_accuracy,
    figure_voxel_scatter,
    score_label,
)
from scene2brain.viz.surface import figure_surface_map, load_surface, voxels_to_surface

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; color: #222; padding: 0 1em; }
table.t { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.t td, table.t th { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; } figcaption a { margin-left: 0.6em; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #cf222e; font-weight: bold; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; font-size: 0.9em; } dt { font-weight: bold; }
"""


@dataclass
class ResultsFolder:
    """What a report needs from a results folder."""

    root: Path
    config: dict[str, Any]
    versions: dict[str, str]
    facts: dict[str, Any]
    roi_summary: pd.DataFrame
    model_summary: pd.DataFrame
    voxels: dict[str, pd.DataFrame]
    identification: pd.DataFrame | None
    checks: dict[str, dict[str, dict]] = field(default_factory=dict)
    compute_seconds: float = 0.0


def _read_json(path: Path, root: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; is {root} a results folder written by `scene2brain run`?") from None


def read_results(root: str | Path) -> ResultsFolder:
    """Load the tables and provenance of a results folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: results folder not found")
    provenance = _read_json(root / "provenance.json", root)
    tables = root / "tables"
    facts = _read_json(tables / "facts.json", root)
    voxels = {s: pd.read_parquet(tables / f"voxels_{s}.parquet") for s in facts["subjects"]}
    identification = tables / "identification.parquet"
    checks = tables / "checks.json"
    seconds = sum(
        json.loads(p.read_text()).get("seconds", 0.0)
        for p in [*root.glob("stages/**/stage.json"), tables / "stage.json"]
        if p.is_file()
    )
    return ResultsFolder(
        root=root,
        config=provenance["config"],
        versions=provenance["versions"],
        facts=facts,
        roi_summary=pd.read_parquet(tables / "roi_summary.parquet"),
        model_summary=pd.read_parquet(tables / "model_summary.parquet"),
        voxels=voxels,
        identification=pd.read_parquet(identification) if identification.is_file() else None,
        checks=json.loads(checks.read_text()) if checks.is_file() else {},
        compute_seconds=float(seconds),
    )


def _save(fig: Figure, folder: Path, name: str) -> str:
    """Write ``name``.png and .svg; return the PNG as base64."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    with atomic_path(folder / f"{name}.png") as tmp:
        tmp.write_bytes(buffer.getvalue())
    with atomic_path(folder / f"{name}.svg") as tmp:
        fig.savefig(tmp, format="svg", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _surface_figures(results: ResultsFolder, surface_kind: str, views: tuple[str, ...]) -> dict[str, Figure]:
    figures: dict[str, Figure] = {}
    surface = None
    for subject, voxels in results.voxels.items():
        if "vertex" not in voxels or "hemisphere" not in voxels:
            continue
        surface = surface or load_surface(surface_kind, data_home())
        score = results.facts["subjects"][subject]["score"]
        primary = max(results.config["features"], key=lambda f: len(f.get("layers", [])))
        depth_column = f"best_depth[{primary['name']}]"
        maps = [
            ("accuracy", voxels["best_score"], f"best {score_label(score)} over feature spaces", "inferno", 0, None),
            ("noise_ceiling", voxels["noise_ceiling"] * 100, "noise ceiling (% variance)", "viridis", 0, None),
            ("best_layer", voxels[depth_column], f"best layer of {primary['name']} (depth index)", "turbo", 0,
             max(len(primary.get("layers", [])) - 1, 1)),
            ("best_alpha", voxels["best_log10_alpha"], "log10 alpha of the best feature space", "cividis", None, None),
        ]  # fmt: skip
        for name, values, label, cmap, vmin, vmax in maps:
            if values.isna().all():
                continue
            on_surface = voxels_to_surface(values.to_numpy(), voxels, surface.n_vertices)
            figures[f"surface_{name}_{subject}"] = figure_surface_map(
                on_surface, surface, f"{subject}: {label}", views, cmap, vmin, vmax, label
            )
    return figures


def _compare_spaces(results: ResultsFolder) -> tuple[str, str] | None:
    chosen = results.config.get("report", {}).get("compare")
    if chosen:
        return chosen[0], chosen[1]
    best = results.model_summary[results.model_summary["roi"] == "all"].drop_duplicates("model")
    spaces = list(best["space"])
    if len(spaces) >= 2:
        return spaces[0], spaces[1]
    layers = results.roi_summary.drop_duplicates("space")["space"].tolist()
    return (layers[0], layers[-1]) if len(layers) >= 2 else None


def make_figures(results: ResultsFolder) -> dict[str, tuple[str, Figure]]:
    """Every figure of the report: file name -> (caption, figure)."""
    config = results.config
    roi_column = config["dataset"].get("roi_column", "roi")
    figures: dict[str, tuple[str, Figure]] = {
        "roi_accuracy": (
            "Accuracy per ROI: every model at its best layer (whiskers: bootstrap confidence interval over test "
            "stimuli), and the median noise ceiling per ROI.",
            figure_roi_accuracy(results.model_summary),
        )
    }
    hierarchy = figure_layer_hierarchy(results.roi_summary)
    if hierarchy is not None:
        figures["layer_hierarchy"] = (
            "Layer hierarchy: median accuracy per ROI against layer depth, per model (band: bootstrap CI; "
            "dashed: all voxels).",
            hierarchy,
        )
    report = config.get("report", {})
    for name, figure in _surface_figures(
        results, report.get("surface", "auto"), tuple(report.get("views", ("lateral", "medial", "ventral")))
    ).items():
        figures[name] = ("Per-vertex map on the inflated cortical surface, both hemispheres.", figure)
    pair = _compare_spaces(results)
    if pair is not None:
        for subject, voxels in results.voxels.items():
            score = results.facts["subjects"][subject]["score"]
            figures[f"scatter_{subject}"] = (
                f"Voxel by voxel: {pair[0]} against {pair[1]}.",
                figure_voxel_scatter(voxels, pair[0], pair[1], score, roi_column),
            )
    if results.identification is not None:
        figures["identification"] = (
            "Image identification (Kay et al. 2008): accuracy against the number of candidate images, exact up to "
            "the test set size and extrapolated beyond.",
            figure_identification(results.identification),
        )
    for subject, voxels in results.voxels.items():
        if "true_noise_ceiling" in voxels and voxels["noise_ceiling"].notna().all():
            figures[f"noise_ceiling_truth_{subject}"] = (
                "Simulated data: the noise ceiling estimated from repeats against the true one.",
                figure_noise_ceiling_truth(voxels, roi_column),
            )
    return figures


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t", na_rep="–")


def _header(results: ResultsFolder) -> str:
    c = results.config
    dataset = c["dataset"]
    features = "; ".join(
        f"<b>{html.escape(f['name'])}</b> = {html.escape(f['model'])} "
        f"[{html.escape(', '.join(f.get('layers', [])))}] pool {html.escape(f.get('pooling', ''))}, "
        f"reduction {html.escape(f['reduction']['method'])}"
        + (f" {f['reduction']['n_components']}" if f["reduction"]["method"] != "standardise" else "")
        for f in c["features"]
    )
    subjects = ", ".join(
        f"{html.escape(s)} ({v['n_train']} train / {v['n_test']} test stimuli, {v['n_voxels']} voxels)"
        for s, v in results.facts["subjects"].items()
    )
    ev = c["evaluation"]
    rows = {
        "Dataset": html.escape(dataset["name"] + (f" at {dataset['path']}" if dataset.get("path") else "")),
        "Subjects": subjects,
        "Splits": f"fit on '{html.escape(c['splits']['train'])}', scored on '{html.escape(c['splits']['test'])}'",
        "Feature spaces": features,
        "Encoder": html.escape(json.dumps(c["encoder"])),
        "Evaluation": html.escape(
            f"noise ceiling: {ev['noise_ceiling']}; {ev['n_bootstraps']} bootstraps, "
            f"{ev['confidence']:.0%} CI; identification: {'on' if ev['identification'] else 'off'}"
        ),
        "Compute time": f"{results.compute_seconds:.1f} s (all stages)",
        "Versions": html.escape(", ".join(f"{k} {v}" for k, v in results.versions.items())),
    }
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows.items()) + "</dl>"


def _checks(results: ResultsFolder) -> str:
    if not results.checks:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(subject)}</td><td class='{'pass' if c['passed'] else 'fail'}'>"
        f"{'PASS' if c['passed'] else 'FAIL'}</td><td>{html.escape(name)}</td>"
        f"<td>{html.escape(json.dumps(c['found']))}</td></tr>"
        for subject, checks in results.checks.items()
        for name, c in checks.items()
    )
    return (
        "<h2>Ground-truth checks (simulated data)</h2><table class='t'><tr><th>subject</th><th>result</th>"
        f"<th>check</th><th>found</th></tr>{rows}</table>"
    )


def write_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``index.html`` and ``figures/*.png|svg`` for a results folder.

    Parameters
    ----------
    results_dir : path
        Written by ``scene2brain run``.
    out : path, optional
        Report folder; default ``<results_dir>/report``.

    Returns
    -------
    Path of index.html.
    """
    results = read_results(results_dir)
    out = Path(out) if out is not None else results.root / "report"
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    blocks = []
    for name, (caption, fig) in make_figures(results).items():
        data = _save(fig, figures_dir, name)
        blocks.append(
            f'<figure id="{name}"><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)} <a href='figures/{name}.png'>PNG</a>"
            f"<a href='figures/{name}.svg'>SVG</a></figcaption></figure>"
        )
    summary = results.model_summary[
        ["subject", "roi", "model", "layer", "n_voxels", "score", "median", "ci_low", "ci_high", "median_r",
         "median_noise_ceiling"]
    ]  # fmt: skip
    title = f"scene2brain report: {results.config['run'].get('name', 'run')}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="icon" href="data:,"><style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
{_header(results)}
{_checks(results)}
<h2>Per ROI: each model at its best layer</h2>
<p>Scores on the test split; the primary score is the noise-normalised accuracy (100 &middot; max(r, 0)&sup2; / NC, in
percent of the noise ceiling) where a noise ceiling exists, else Pearson r. Confidence intervals: percentile bootstrap
over test stimuli.</p>
{_table(summary)}
<h2>Figures</h2>
{"".join(blocks)}
<h2>Files</h2>
<p>Tables (parquet and CSV) are in <code>tables/</code> of the results folder: <code>roi_summary</code> (every ROI x
feature space), <code>model_summary</code> (best layer per model and ROI), <code>voxels_SUBJECT</code> (per voxel:
r, R&sup2;, accuracy and alpha per feature space, noise ceiling), <code>identification</code>. The resolved configuration
is <code>config.toml</code>; versions are in <code>provenance.json</code>.</p>
</body></html>
"""
    index = out / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text(page)
    return index
