"""Ground-truth checks of a simulated run: did the analysis recover what the simulation put in?

Runs only on simulated data. Reads the per-voxel tables the encoding analysis wrote
(``r[<space>]``, ``nnacc[<space>]``, ``noise_ceiling`` beside the simulation's
``roi`` and ``true_noise_ceiling``) and writes ``checks.json``.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd

from scene2brain.evaluation.noise_ceiling import primary_score
from scene2brain.pipeline.analyses.encoding import scores_id
from scene2brain.pipeline.analysis import Analysis, TableNeeds
from scene2brain.pipeline.config import SIMULATED, RunConfig
from scene2brain.pipeline.graph import Ref, StageContext
from scene2brain.pipeline.plan import Plan
from scene2brain.pipeline.simulated import driver_specs
from scene2brain.report.html import Block, FigureBlock
from scene2brain.results import CHECKS_FILE, Results, space_column, voxels_table
from scene2brain.viz.figures import figure_noise_ceiling_truth


def driver_spaces(config: RunConfig) -> dict[str, list[str]]:
    """The run's feature spaces that hold each simulation driver.

    ``gabor``: every Gabor-pyramid space; ``deep``: the driver layer of the driver model,
    average-pooled; ``calibration``: those of ``deep`` reduced as the simulation reduced
    them (the only spaces in which the CAL voxels are exactly linear).
    """
    gabor, deep = driver_specs(config)
    layer = deep.layer_names()[0]
    deep_specs = [
        f for f in config.features if (f.model, f.pooling) == (deep.model, deep.pooling) and layer in f.layer_names()
    ]
    return {
        "gabor": [f.space(layer) for f in config.features if f.model == gabor.model for layer in f.layer_names()],
        "deep": [f.space(layer) for f in deep_specs],
        "calibration": [f.space(layer) for f in deep_specs if f.reduction == deep.reduction],
    }


def ground_truth_checks(voxels: pd.DataFrame, spaces: dict[str, list[str]]) -> dict[str, dict]:
    """The checks of one subject's per-voxel table; a check whose feature space is not in the run is left out."""
    score = primary_score(voxels["noise_ceiling"].to_numpy())
    prefix = f"{score}["
    medians = {
        roi: {c[len(prefix) : -1]: np.nanmedian(g[c]) for c in g.columns if c.startswith(prefix)}
        for roi, g in voxels.groupby("roi", sort=False)
    }
    best = {roi: max(m, key=m.get) for roi, m in medians.items()}
    checks: dict[str, dict] = {}
    if spaces["gabor"] and "EV" in best:
        checks["EV is best predicted by Gabor features"] = {
            "passed": best["EV"] in spaces["gabor"],
            "found": best["EV"],
        }
    if spaces["deep"] and "HV" in best:
        name = f"HV is best predicted by {spaces['deep'][0]}"
        checks[name] = {"passed": best["HV"] in spaces["deep"], "found": best["HV"]}
    cal = voxels[voxels["roi"] == "CAL"]
    if spaces["calibration"] and len(cal):
        r = cal[space_column("r", spaces["calibration"][0])].to_numpy()
        recovered = float(np.nanmedian(np.clip(r, 0, None) ** 2 / cal["true_noise_ceiling"].to_numpy()))
        checks["CAL voxels reach >= 80% of the true noise ceiling (median r^2 / NC)"] = {
            "passed": recovered >= 0.8,
            "found": round(recovered, 3),
        }
    if voxels["noise_ceiling"].notna().all():
        nc_r = float(np.corrcoef(voxels["noise_ceiling"], voxels["true_noise_ceiling"])[0, 1])
        nc_err = float(np.median(np.abs(voxels["noise_ceiling"] - voxels["true_noise_ceiling"])))
        checks["estimated noise ceiling tracks the truth (r > 0.8)"] = {
            "passed": nc_r > 0.8,
            "found": {"correlation": round(nc_r, 3), "median_abs_error": round(nc_err, 3)},
        }
    return checks


def plan(p: Plan) -> TableNeeds | None:
    if p.config.dataset.name != SIMULATED:
        return None
    inputs = [Ref(scores_id(subject, space.name)) for subject in p.subjects for space in p.spaces(subject)]
    return TableNeeds({"subjects": p.subjects, "spaces": driver_spaces(p.config)}, inputs)


def write_tables(ctx: StageContext) -> None:
    checks = {
        subject: ground_truth_checks(
            pd.read_parquet(ctx.out / f"{voxels_table(subject)}.parquet"), ctx.settings["spaces"]
        )
        for subject in ctx.settings["subjects"]
    }
    (ctx.out / CHECKS_FILE).write_text(json.dumps(checks, indent=2))


def section(results: Results) -> list[Block]:
    if not results.checks:
        return []
    rows = "".join(
        f"<tr><td>{html.escape(subject)}</td><td class='{'pass' if c['passed'] else 'fail'}'>"
        f"{'PASS' if c['passed'] else 'FAIL'}</td><td>{html.escape(name)}</td>"
        f"<td>{html.escape(json.dumps(c['found']))}</td></tr>"
        for subject, checks in results.checks.items()
        for name, c in checks.items()
    )
    blocks: list[Block] = [
        "<h2>Ground-truth checks (simulated data)</h2><table class='t'><tr><th>subject</th><th>result</th>"
        f"<th>check</th><th>found</th></tr>{rows}</table>"
    ]
    roi_column = results.config["dataset"].get("roi_column", "roi")
    for subject in results.subjects:
        voxels = results.voxels(subject)
        if "true_noise_ceiling" in voxels and voxels["noise_ceiling"].notna().all():
            blocks.append(
                FigureBlock(
                    f"noise_ceiling_truth_{subject}",
                    "Simulated data: the noise ceiling estimated from repeats against the true one.",
                    figure_noise_ceiling_truth(voxels, roi_column),
                )
            )
    return blocks


GROUND_TRUTH = Analysis("ground_truth", plan, write_tables, section)
