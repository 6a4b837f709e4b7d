"""The two closing stages of a run: ``tables`` (every analysis's tables, facts) and ``report``."""

from __future__ import annotations

import json
from pathlib import Path

from scene2brain.pipeline.analyses import ANALYSES
from scene2brain.pipeline.analysis import TableNeeds
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageId
from scene2brain.pipeline.plan import Plan
from scene2brain.report.html import write_report
from scene2brain.results import FACTS_FILE, ResultsLayout

TABLES = StageId("tables")
REPORT = StageId("report")


def add_tables_stage(plan: Plan, needs: dict[str, TableNeeds]) -> StageId:
    """The stage that writes ``tables/``: facts per subject, then each analysis's tables in registration order."""
    layout = ResultsLayout(plan.config.run.output)
    inputs: dict = {}
    for subject in plan.subjects:
        inputs[plan.responses(subject)] = Ref(plan.responses(subject))
        inputs[plan.noise_ceiling(subject)] = Ref(plan.noise_ceiling(subject))
    for need in needs.values():
        inputs.update({ref.stage: ref for ref in need.inputs})
    settings = {"subjects": plan.subjects, "analyses": {name: need.settings for name, need in needs.items()}}
    return plan.graph.add(Stage(TABLES, compute_tables, settings, inputs, folder=layout.tables))


def compute_tables(ctx: StageContext) -> None:
    facts: dict = {"subjects": {}}
    for subject in ctx.settings["subjects"]:
        counts = json.loads((ctx.input(StageId("responses", subject)) / "facts.json").read_text())
        score = json.loads((ctx.input(StageId("noise_ceiling", subject)) / "score.json").read_text())
        facts["subjects"][subject] = {**counts, **score}
    (ctx.out / FACTS_FILE).write_text(json.dumps(facts, indent=2))
    for analysis in ANALYSES:
        if analysis.name in ctx.settings["analyses"]:
            own = StageContext(ctx.out, ctx.settings["analyses"][analysis.name], ctx.inputs, ctx.options, ctx.runtime)
            analysis.write_tables(own)


def add_report_stage(plan: Plan, tables: StageId) -> StageId:
    """The stage that writes ``report/`` from the results folder."""
    config = plan.config
    settings = {"report": config.report.model_dump(mode="json"), "config": config.result_settings()}
    layout = ResultsLayout(config.run.output)
    return plan.graph.add(Stage(REPORT, compute_report, settings, {"tables": Ref(tables)}, folder=layout.report))


def compute_report(ctx: StageContext) -> None:
    write_run_report(ctx.input("tables").parent, ctx.out)


def write_run_report(results: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a results folder with every analysis's section; return index.html."""
    return write_report(results, [a.section for a in ANALYSES if a.section is not None], out)
