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


PASS, FAIL, NOT_RUN, DISABLED = "pass", "fail", "not run", "disabled"
NC_MAX_MEDIAN_ERROR = 0.1  # median |estimated - true| noise ceiling
NC_MAX_BIAS = 0.05  # |median (estimated - true)|
NC_MIN_CORRELATION = 0.8


def winner(medians: dict[str, float]) -> tuple[str | None, list[str]]:
    """The space with the highest finite median, and the spaces whose median is NaN (which never win)."""
    finite = {k: v for k, v in medians.items() if np.isfinite(v)}
    return (max(finite, key=finite.get) if finite else None), [k for k in medians if k not in finite]


def checks_passed(checks: dict[str, dict[str, dict]]) -> bool:
    """True when every check of every subject passed or was disabled (a check that did not run fails)."""
    statuses = [c["status"] for subject in checks.values() for c in subject.values()]
    return bool(statuses) and all(status in (PASS, DISABLED) for status in statuses)


def ground_truth_checks(
    voxels: pd.DataFrame, spaces: dict[str, list[str]], skip: list[str] | tuple[str, ...] = ()
) -> dict[str, dict]:
    """The checks of one subject's per-voxel table.

    Every check of :data:`GROUND_TRUTH_CHECKS` is reported: ``status`` is "pass", "fail",
    "not run" (its inputs are missing: a feature space, an ROI or a noise ceiling; this
    counts as a failure) or "disabled" (listed in ``skip``). ``found`` holds what it saw.
    """
    score = primary_score(voxels["noise_ceiling"].to_numpy())
    columns = {space_column(score, space): space for space in _spaces_in(voxels, score)}
    by_roi = voxels.groupby("roi", sort=False)[list(columns)].median().rename(columns=columns)  # NaN: no score
    medians = {roi: row.to_dict() for roi, row in by_roi.iterrows()}
    checks: dict[str, dict] = {}

    def record(check: str, title: str, passed: bool | None, found: object, missing: str = "") -> None:
        if check in skip:
            status = DISABLED
        elif passed is None:
            status = NOT_RUN
        else:
            status = PASS if passed else FAIL
        checks[title] = {
            "id": check, "status": status, "passed": status == PASS, "found": missing if passed is None else found
        }  # fmt: skip

    for check, roi, wanted, what in (
        ("ev-gabor", "EV", spaces["gabor"], "Gabor features"),
        ("hv-driver", "HV", spaces["deep"], spaces["deep"][0] if spaces["deep"] else "the driver layer"),
    ):
        title = f"{roi} is best predicted by {what} (median {score})"
        if not wanted or roi not in medians:
            record(check, title, None, None, f"not run: no {'feature space' if not wanted else roi + ' voxels'}")
            continue
        if not set(medians[roi]) - set(wanted):  # nothing to beat: the check could not fail
            record(check, title, None, None, "not run: no other feature space to compare with")
            continue
        best, nan = winner(medians[roi])
        found = {"best": best, "median": round(medians[roi][best], 3) if best else None, "nan": nan}
        record(check, title, best in wanted, found)

    title = "CAL voxels reach >= 80% of the true noise ceiling (median r^2 / NC)"
    cal = voxels[voxels["roi"] == "CAL"]
    if spaces["calibration"] and len(cal):
        r = cal[space_column("r", spaces["calibration"][0])].to_numpy()
        recovered = float(pd.Series(np.clip(r, 0, None) ** 2 / cal["true_noise_ceiling"].to_numpy()).median())
        record("cal-ceiling", title, bool(recovered >= 0.8), round(recovered, 3))
    else:
        record("cal-ceiling", title, None, None, "not run: " + ("no CAL voxels" if not len(cal) else "no space"))

    title = (
        f"estimated noise ceiling tracks the truth (r > {NC_MIN_CORRELATION}, median |error| <= "
        f"{NC_MAX_MEDIAN_ERROR}, |bias| <= {NC_MAX_BIAS})"
    )
    if voxels["noise_ceiling"].notna().all():
        error = (voxels["noise_ceiling"] - voxels["true_noise_ceiling"]).to_numpy()
        nc_r = float(np.corrcoef(voxels["noise_ceiling"], voxels["true_noise_ceiling"])[0, 1])
        found = {
            "correlation": round(nc_r, 3),
            "median_abs_error": round(float(np.median(np.abs(error))), 3),
            "bias": round(float(np.median(error)), 3),
        }
        passed = (
            nc_r > NC_MIN_CORRELATION
            and found["median_abs_error"] <= NC_MAX_MEDIAN_ERROR
            and abs(found["bias"]) <= NC_MAX_BIAS
        )
        record("noise-ceiling", title, bool(passed), found)
    else:
        record("noise-ceiling", title, None, None, "not run: no noise ceiling estimated (evaluation.noise_ceiling)")
    return checks


def _spaces_in(voxels: pd.DataFrame, score: str) -> list[str]:
    prefix = f"{score}["
    return [c[len(prefix) : -1] for c in voxels.columns if c.startswith(prefix)]


def plan(p: Plan) -> TableNeeds | None:
    if p.config.dataset.name != SIMULATED:
        return None
    inputs = [Ref(scores_id(subject, space.name)) for subject in p.subjects for space in p.spaces(subject)]
    skip = p.config.dataset.simulation.skip_checks
    return TableNeeds({"subjects": p.subjects, "spaces": driver_spaces(p.config), "skip": skip}, inputs)


def write_tables(ctx: StageContext) -> None:
    checks = {
        subject: ground_truth_checks(
            pd.read_parquet(ctx.out / f"{voxels_table(subject)}.parquet"), ctx.settings["spaces"], ctx.settings["skip"]
        )
        for subject in ctx.settings["subjects"]
    }
    (ctx.out / CHECKS_FILE).write_text(json.dumps(checks, indent=2))


def section(results: Results) -> list[Block]:
    if not results.checks:
        return []
    rows = "".join(
        f"<tr><td>{html.escape(subject)}</td><td class='{'pass' if c['status'] in (PASS, DISABLED) else 'fail'}'>"
        f"{c['status'].upper()}</td><td>{html.escape(name)}</td>"
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
