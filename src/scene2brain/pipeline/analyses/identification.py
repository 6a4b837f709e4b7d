"""Image identification (Kay et al. 2008): which test image was seen, from its measured pattern.

Stage ``identification/<subject>/<space>``: the encoder's predicted test patterns over
the voxels best predicted in cross-validation on the training stimuli (no test data in
the selection), correlated with the measured patterns. Table ``identification``:
accuracy against the number of candidates, exact up to the test-set size and
extrapolated beyond.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scene2brain.evaluation.identification import (
    extrapolate_identification,
    identification_curve,
    identify,
    select_voxels,
)
from scene2brain.pipeline.analyses.encoding import encode_id
from scene2brain.pipeline.analysis import Analysis, TableNeeds
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageId
from scene2brain.pipeline.plan import Plan
from scene2brain.report.html import Block, FigureBlock
from scene2brain.results import IDENTIFICATION, Results, write_table
from scene2brain.viz.figures import figure_identification

RECORD = "identification.json"


def identification_id(subject: str, space: str) -> StageId:
    return StageId("identification", subject, space)


def plan(p: Plan) -> TableNeeds | None:
    evaluation = p.config.evaluation
    if not evaluation.identification:
        return None
    inputs = []
    for subject in p.subjects:
        for space in p.spaces(subject):
            stage = Stage(
                identification_id(subject, space.name),
                compute_identification,
                {"n_voxels": evaluation.identification_voxels},
                {"encode": Ref(encode_id(subject, space.name)), "responses": Ref(p.responses(subject))},
            )
            inputs.append(Ref(p.graph.add(stage)))
    spaces = [[s.name, s.spec.name, s.layer, s.depth] for s in p.spaces(p.subjects[0])]
    return TableNeeds({"subjects": p.subjects, "spaces": spaces}, inputs)


def compute_identification(ctx: StageContext) -> None:
    measured = np.load(ctx.input("responses") / "test.npy")
    predicted = np.load(ctx.input("encode") / "predictions.npy")
    cv_score = np.load(ctx.input("encode") / "cv_score.npy")
    n_voxels = min(ctx.settings["n_voxels"], measured.shape[1])
    voxels = select_voxels(np.nan_to_num(cv_score, nan=-np.inf), n_voxels)
    result = identify(measured, predicted, voxels=voxels)
    n = result.n_candidates
    exact = np.unique(np.geomspace(2, n, num=min(n - 1, 20)).round().astype(int))
    beyond = np.geomspace(n, 1e6, num=12)
    record = {
        "n_candidates": n,
        "n_voxels": len(voxels),
        "accuracy": result.accuracy,
        "pairwise_accuracy": result.pairwise_accuracy,
        "set_sizes": exact.tolist(),
        "curve": identification_curve(result, exact).tolist(),
        "extrapolated_set_sizes": beyond.tolist(),
        "extrapolated": extrapolate_identification(result, beyond).tolist(),
    }
    (ctx.out / RECORD).write_text(json.dumps(record, indent=2))


def write_tables(ctx: StageContext) -> None:
    rows = []
    for subject in ctx.settings["subjects"]:
        for space, model, layer, depth in ctx.settings["spaces"]:
            record = json.loads((ctx.input(identification_id(subject, space)) / RECORD).read_text())
            base = {"subject": subject, "model": model, "layer": layer, "depth": depth, "space": space}
            for kind, sizes, accuracy in (
                ("exact", record["set_sizes"], record["curve"]),
                ("extrapolated", record["extrapolated_set_sizes"], record["extrapolated"]),
            ):
                rows += [
                    {**base, "kind": kind, "set_size": n, "accuracy": a, "chance": 1 / n,
                     "n_voxels": record["n_voxels"], "n_candidates": record["n_candidates"]}
                    for n, a in zip(sizes, accuracy, strict=True)
                ]  # fmt: skip
    write_table(pd.DataFrame(rows), ctx.out, IDENTIFICATION)


def section(results: Results) -> list[Block]:
    if not results.has_table(IDENTIFICATION):
        return []
    return [
        FigureBlock(
            "identification",
            "Image identification (Kay et al. 2008) of the test images, with voxels selected on training CV: "
            "accuracy against the number of candidate images, exact up to the test set size and extrapolated beyond.",
            figure_identification(results.table(IDENTIFICATION)),
        )
    ]


IDENTIFICATION_ANALYSIS = Analysis("identification", plan, write_tables, section)
