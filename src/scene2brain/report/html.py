"""The report of a run: one self-contained HTML file, every figure also as PNG and SVG.

The page is a header (dataset, subjects, splits, feature spaces, encoder, evaluation,
compute time, versions) followed by one section per analysis: each analysis gives a
function that turns the :class:`~scene2brain.results.Results` of a run into
:data:`Block` s (HTML text or figures). Figures are embedded as base64 PNG, so the file
can be sent alone, and written beside it as ``figures/<name>.png`` and ``.svg``.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from scene2brain.results import FIGURES_DIR, REPORT_INDEX, Results, read_results
from scene2brain.utils.files import atomic_path

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
class FigureBlock:
    """A figure of the report: its file name (without suffix), its caption (plain text), the figure."""

    name: str
    caption: str
    figure: Figure


Block = str | FigureBlock  # HTML text, or a figure
Section = Callable[[Results], list[Block]]


def table_html(frame: pd.DataFrame) -> str:
    """A table in the report's style (3 decimals, "–" for missing values)."""
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t", na_rep="–")


def save_figure(fig: Figure, folder: Path, name: str) -> str:
    """Write ``name``.png and .svg; return the PNG as base64."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    with atomic_path(folder / f"{name}.png") as tmp:
        tmp.write_bytes(buffer.getvalue())
    with atomic_path(folder / f"{name}.svg") as tmp:
        fig.savefig(tmp, format="svg", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _default_layers(model: str) -> list[str]:
    """The layers of a [[features]] entry that names none: the model's fixed layers, else its output."""
    from scene2brain.features.models import OUTPUT, model_entry

    try:
        layers = model_entry(model).layers
    except (KeyError, ValueError):  # a model registered by the user's code, not in this process
        return ["?"]
    return list(layers) if layers is not None else [OUTPUT]


def _header(results: Results) -> str:
    c = results.config
    dataset = c["dataset"]
    features = "; ".join(
        f"<b>{html.escape(f['name'])}</b> = {html.escape(f['model'])} "
        f"[{html.escape(', '.join(f.get('layers') or _default_layers(f['model'])))}] "
        f"pool {html.escape(f.get('pooling', ''))}, "
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


def _render(block: Block, figures_dir: Path) -> str:
    if isinstance(block, str):
        return block
    data = save_figure(block.figure, figures_dir, block.name)
    return (
        f'<figure id="{block.name}"><img alt="{html.escape(block.name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(block.caption)} <a href='figures/{block.name}.png'>PNG</a>"
        f"<a href='figures/{block.name}.svg'>SVG</a></figcaption></figure>"
    )


def write_report(results_dir: str | Path, sections: Sequence[Section], out: str | Path | None = None) -> Path:
    """Write ``index.html`` and ``figures/*.png|svg`` for a results folder.

    Parameters
    ----------
    results_dir : path
        Written by ``scene2brain run``.
    sections : sequence of callables ``(Results) -> list[Block]``
        The analyses' sections, in page order.
    out : path, optional
        Report folder; default ``<results_dir>/report``.

    Returns
    -------
    Path of index.html.
    """
    results = read_results(results_dir)
    out = Path(out) if out is not None else results.layout.report
    figures_dir = out / FIGURES_DIR
    figures_dir.mkdir(parents=True, exist_ok=True)
    body = "\n".join(_render(block, figures_dir) for section in sections for block in section(results))
    tables = ", ".join(f"<code>{html.escape(name)}</code>" for name in results.table_names())
    title = f"scene2brain report: {results.config['run'].get('name', 'run')}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="icon" href="data:,"><style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
{_header(results)}
{body}
<h2>Files</h2>
<p>Tables (parquet and CSV) are in <code>tables/</code> of the results folder: {tables}. The resolved configuration is
<code>config.toml</code>; versions are in <code>provenance.json</code>; every stage's arrays are in <code>stages/</code>.</p>
</body></html>
"""
    index = out / REPORT_INDEX
    with atomic_path(index) as tmp:
        tmp.write_text(page)
    return index
