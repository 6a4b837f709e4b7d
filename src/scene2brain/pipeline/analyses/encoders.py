"""Encoders compared: every ``[[encoders]]`` entry beside ``[encoder]``, on the same splits and folds.

Stages ``encoders/<subject>/<space>|<name>`` fit one entry on one feature space (the
training stimuli; hyperparameters on the ``[encoder] cv`` folds every encoder shares) and
score its test predictions. The table ``encoders`` has a row per subject x ROI x space x
encoder (``[encoder]`` included, under its model's name): the median primary score over
the ROI's voxels on the test split with a percentile bootstrap interval over test
stimuli, the median training-CV R^2, the fit time and the fitted state, and the paired
bootstrap difference from ``[encoder]`` on the same space (the same stimulus resamples
for both; ``diff``, ``diff_low``, ``diff_high``, ``p_value``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scene2brain.evaluation.inference import CorrelationScore, bootstrap_ci, compare_predictions
from scene2brain.evaluation.metrics import pearson_r
from scene2brain.evaluation.noise_ceiling import NNACC, noise_normalised_accuracy
from scene2brain.pipeline.analyses.encoding import (
    FITTED_FILE,
    encode_id,
    fit_configured,
    roi_masks,
    save_fitted,
    save_scores,
)
from scene2brain.pipeline.analysis import Analysis, TableNeeds
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageId
from scene2brain.pipeline.plan import FEATURES_FILE, Plan, read_subject
from scene2brain.report.html import Block, FigureBlock, table_html
from scene2brain.results import ENCODERS_TABLE, Results, write_table
from scene2brain.viz.figures import figure_encoder_comparison


def entry_id(subject: str, space: str, name: str) -> StageId:
    return StageId("encoders", subject, f"{space}|{name}")


def plan(p: Plan) -> TableNeeds | None:
    config = p.config
    if not config.encoders:
        return None
    inputs: list[Ref] = []
    fitted: list[list[str]] = []  # [subject, space, encoder name, model]
    for subject in p.subjects:
        responses, nc = Ref(p.responses(subject)), Ref(p.noise_ceiling(subject))
        inputs += [responses, nc]
        for space in p.spaces(subject):
            primary = encode_id(subject, space.name)
            inputs.append(Ref(primary))
            fitted.append([subject, space.name, config.encoder.model, config.encoder.model])
            for entry in config.encoders:
                if entry.spaces is not None and space.name not in entry.spaces:
                    continue
                stage = p.graph.add(
                    Stage(
                        entry_id(subject, space.name, entry.name),
                        compute_entry,
                        {
                            "encoder": {
                                "model": entry.model,
                                "cv": config.encoder.cv,
                                "options": entry.options,
                                "voxel_groups": entry.voxel_groups,
                            },
                            "seed": config.run.seed,
                        },
                        {"features": space.features, "responses": responses, "noise_ceiling": nc},
                        options={"device": entry.device},
                    )
                )
                inputs.append(Ref(stage))
                fitted.append([subject, space.name, entry.name, entry.model])
    settings = {
        "fitted": fitted,
        "primary": config.encoder.model,
        "subjects": p.subjects,
        "roi_column": config.dataset.roi_column,
        "n_bootstraps": config.evaluation.n_bootstraps,
        "confidence": config.evaluation.confidence,
        "seed": config.run.seed,
    }
    return TableNeeds(settings, inputs)


def compute_entry(ctx: StageContext) -> None:
    """Fit one ``[[encoders]]`` entry on the training stimuli, predict and score the test stimuli."""
    X = np.load(ctx.input("features") / FEATURES_FILE)
    folder = ctx.input("responses")
    fitted = fit_configured(ctx.settings["encoder"], X, folder, ctx.settings["seed"], ctx.options["device"])
    save_fitted(ctx.out, fitted, X[np.load(folder / "test_stimuli.npy")])
    save_scores(ctx.out, np.load(folder / "test.npy"), ctx.out, ctx.input("noise_ceiling"))


def write_tables(ctx: StageContext) -> None:
    s = ctx.settings
    rows = []
    for subject in s["subjects"]:
        d = read_subject(ctx.input(StageId("responses", subject)), ctx.input(StageId("noise_ceiling", subject)))
        y_test, ceiling, score = d["y_test"], d["noise_ceiling"], d["score"]
        masks = roi_masks(d["voxels"], s["roi_column"], subject)
        scorer = CorrelationScore(lambda r, c=ceiling: noise_normalised_accuracy(r, c)) if score == NNACC else pearson_r

        def per_roi(v: np.ndarray, masks=masks) -> np.ndarray:
            return np.array([np.nanmedian(v[m]) if m.any() else np.nan for m in masks.values()])

        primary = {space: ctx.input(encode_id(subject, space)) for subj, space, *_ in s["fitted"] if subj == subject}
        for _, space, name, model in (f for f in s["fitted"] if f[0] == subject):
            is_primary = name == s["primary"]
            folder = primary[space] if is_primary else ctx.input(entry_id(subject, space, name))
            predictions = np.load(folder / "predictions.npy")
            values = scorer(y_test, predictions)
            cv = np.load(folder / "cv_score.npy")
            info = json.loads((folder / FITTED_FILE).read_text()) if (folder / FITTED_FILE).is_file() else {}
            nan = np.full(len(masks), np.nan)
            low, high, diff, diff_low, diff_high, p_value = nan, nan, nan, nan, nan, nan
            if s["n_bootstraps"]:
                boot = bootstrap_ci(y_test, predictions, scorer, per_roi, s["n_bootstraps"], s["confidence"], s["seed"])
                low, high = boot.low, boot.high
                if not is_primary:
                    reference = np.load(primary[space] / "predictions.npy")
                    c = compare_predictions(
                        y_test, predictions, reference, scorer, per_roi, n_resamples=s["n_bootstraps"],
                        confidence=s["confidence"], random_state=s["seed"],
                    )  # fmt: skip
                    diff, diff_low, diff_high, p_value = c.difference, c.low, c.high, c.p_value
            rows.append(
                pd.DataFrame(
                    {
                        "subject": subject,
                        "roi": list(masks),
                        "space": space,
                        "encoder": name,
                        "model": model,
                        "primary": is_primary,
                        "metric": score,
                        "score": per_roi(values),
                        "ci_low": low,
                        "ci_high": high,
                        "median_r": per_roi(pearson_r(y_test, predictions)),
                        "median_cv": per_roi(cv),
                        "fit_seconds": float(info.get("fit_seconds", np.nan)),
                        "fitted": json.dumps(info.get("summary", {}), sort_keys=True),
                        "n_voxels": [int(m.sum()) for m in masks.values()],
                        "diff": diff,
                        "diff_low": diff_low,
                        "diff_high": diff_high,
                        "p_value": p_value,
                    }
                )
            )
    write_table(pd.concat(rows, ignore_index=True), ctx.out, ENCODERS_TABLE)


def section(results: Results) -> list[Block]:
    if not results.has_table(ENCODERS_TABLE):
        return []
    table = results.table(ENCODERS_TABLE)
    columns = ["subject", "roi", "space", "encoder", "metric", "score", "ci_low", "ci_high", "diff", "diff_low",
               "diff_high", "median_cv", "fit_seconds", "fitted"]  # fmt: skip
    primary = results.config["encoder"]["model"]
    return [
        "<h2>Encoders compared</h2><p>Every encoder was fitted on the training stimuli of each feature space, its "
        "hyperparameters chosen on the same cross-validation folds of those stimuli (<code>median_cv</code>: median "
        "held-out R&sup2; over the ROI's voxels); every other number is from the test split. <code>score</code>: the "
        "median primary score over the ROI's voxels, with a percentile bootstrap interval over test stimuli; "
        f"<code>diff</code>: the paired bootstrap difference from <code>{primary}</code> on the same space (the same "
        "stimulus resamples for both). <code>fit_seconds</code>: the whole fit, cross-validation included; "
        "<code>fitted</code>: the fitted state.</p>",
        table_html(table[columns]),
        FigureBlock(
            "encoder_comparison",
            "Encoders x feature spaces per ROI, test split (whiskers: bootstrap interval over test stimuli); right: "
            "fit time per encoder and space.",
            figure_encoder_comparison(table),
        ),
    ]


ENCODERS_ANALYSIS = Analysis("encoders", plan, write_tables, section)
