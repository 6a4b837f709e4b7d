"""Encoding: a voxelwise encoder per subject and feature space, scored on the test split.

Stages ``encode/<subject>/<space>`` (fit on the training stimuli, CV folds seeded by
``run.seed``; test predictions, alphas, CV scores) and ``scores/<subject>/<space>``
(r, R^2, noise-normalised accuracy). Tables: ``voxels_<subject>`` (the voxel table,
the noise ceiling and every space's scores per voxel; best space and best layer),
``roi_summary`` (every subject x ROI x space: median primary score with bootstrap CI,
median r, noise ceiling, alpha) and ``model_summary`` (each model at its best layer).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from scene2brain.data.fsaverage import load_surface
from scene2brain.data.home import data_home
from scene2brain.encoding.registry import FittedEncoder, fit_encoder
from scene2brain.evaluation.inference import CorrelationScore, bootstrap_ci
from scene2brain.evaluation.metrics import pearson_r, r2_score
from scene2brain.evaluation.noise_ceiling import NNACC, noise_normalised_accuracy, scores_with_ceiling
from scene2brain.evaluation.summary import summarise_scores
from scene2brain.pipeline.analysis import Analysis, TableNeeds
from scene2brain.pipeline.config import ConfigError
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageId
from scene2brain.pipeline.plan import FEATURES_FILE, NOISE_CEILING_FILE, Plan, read_subject, training_folds
from scene2brain.report.html import Block, FigureBlock, table_html
from scene2brain.results import (
    ALL_VOXELS,
    MODEL_SUMMARY,
    ROI_SUMMARY,
    Results,
    space_column,
    voxels_table,
    write_table,
)
from scene2brain.viz.figures import figure_layer_hierarchy, figure_roi_accuracy, figure_voxel_scatter, score_label
from scene2brain.viz.surface import figure_surface_map, voxels_to_surface

SCORES = ("r", "r2", NNACC)
FITTED_FILE = "fitted.json"


def encode_id(subject: str, space: str) -> StageId:
    return StageId("encode", subject, space)


def scores_id(subject: str, space: str) -> StageId:
    return StageId("scores", subject, space)


def plan(p: Plan) -> TableNeeds:
    config = p.config
    encoder = {"encoder": config.encoder.settings(), "seed": config.run.seed}
    inputs: list[Ref] = []
    for subject in p.subjects:
        responses, nc = Ref(p.responses(subject)), Ref(p.noise_ceiling(subject))
        inputs += [responses, nc]
        for space in p.spaces(subject):
            enc = p.graph.add(
                Stage(
                    encode_id(subject, space.name),
                    compute_encode,
                    encoder,
                    {"features": space.features, "responses": responses},
                    options={"device": config.encoder.device},
                )
            )
            inputs.append(Ref(enc))
            inputs.append(
                Ref(p.graph.add(Stage(scores_id(subject, space.name), compute_scores, {}, {
                    "encode": Ref(enc), "responses": responses, "noise_ceiling": nc}))),
            )  # fmt: skip
    settings = {
        "subjects": p.subjects,
        "spaces": [[s.name, s.spec.name, s.layer, s.depth] for s in p.spaces(p.subjects[0])],
        "roi_column": config.dataset.roi_column,
        "n_bootstraps": config.evaluation.n_bootstraps,
        "confidence": config.evaluation.confidence,
        "seed": config.run.seed,
    }
    return TableNeeds(settings, inputs)


def compute_encode(ctx: StageContext) -> None:
    """Fit the encoder on the training stimuli (hyperparameters by K-fold CV on them); predict the test stimuli.

    The folds keep stimuli that share content together (see :func:`~scene2brain.pipeline.plan.training_folds`).
    """
    X = np.load(ctx.input("features") / FEATURES_FILE)
    folder = ctx.input("responses")
    test = np.load(folder / "test_stimuli.npy")
    fitted = fit_configured(ctx.settings["encoder"], X, folder, ctx.settings["seed"], ctx.options["device"])
    save_fitted(ctx.out, fitted, X[test])


def fit_configured(
    encoder: dict, X: np.ndarray, responses: Path, seed: int, device: str | None = None
) -> FittedEncoder:
    """Fit an encoder (``{"model", "cv", "options"[, "voxel_groups"]}``) on a responses stage's training stimuli.

    Its hyperparameters are chosen on ``cv`` folds of the training stimuli that keep stimuli
    sharing content together (:func:`~scene2brain.pipeline.plan.training_folds`, seeded by
    ``seed``), the same folds for every encoder of a run; the content groups also reach
    encoders that split off a validation part themselves. ``voxel_groups`` names a column of
    the voxel table that groups the voxels (see ``[[encoders]]``).
    """
    train = np.load(responses / "train_stimuli.npy")
    groups = np.load(responses / "train_groups.npy")
    folds = training_folds(groups, encoder["cv"], seed)
    voxel_groups = None
    if encoder.get("voxel_groups"):
        voxels = pd.read_parquet(responses / "voxels.parquet")
        column = encoder["voxel_groups"]
        if column not in voxels:
            raise ConfigError(f"encoders.voxel_groups: {column!r} is not a column of the voxel table; columns: "
                              f"{list(voxels.columns)}")  # fmt: skip
        voxel_groups = voxels[column].astype(str).to_numpy()
    return fit_encoder(
        encoder["model"], X[train], np.load(responses / "train.npy"), folds, random_state=seed, device=device,
        row_groups=groups, voxel_groups=voxel_groups, **encoder["options"],
    )  # fmt: skip


def save_fitted(out: Path, fitted: FittedEncoder, X_test: np.ndarray) -> None:
    """Test predictions, per-voxel alphas and CV scores, the fitted-state summary and the fit time."""
    np.save(out / "predictions.npy", fitted.predict(X_test).astype(np.float32))
    np.save(out / "alphas.npy", np.asarray(fitted.alphas, dtype=np.float64))
    np.save(out / "cv_score.npy", np.asarray(fitted.cv_score, dtype=np.float64))
    info = {"summary": fitted.summary, "fit_seconds": fitted.fit_seconds}
    (out / FITTED_FILE).write_text(json.dumps(info, default=float))


def compute_scores(ctx: StageContext) -> None:
    """Pearson r, R^2 and noise-normalised accuracy (NaN without a noise ceiling) per voxel on the test split."""
    y_test = np.load(ctx.input("responses") / "test.npy")
    save_scores(ctx.out, y_test, ctx.input("encode"), ctx.input("noise_ceiling"))


def save_scores(out: Path, y_test: np.ndarray, encode: Path, noise_ceiling: Path) -> None:
    """The test scores of the predictions in ``encode`` (r, R^2, noise-normalised accuracy), one file each."""
    predictions = np.load(encode / "predictions.npy")
    r = pearson_r(y_test, predictions)
    np.save(out / "r.npy", r)
    np.save(out / "r2.npy", r2_score(y_test, predictions))
    np.save(out / f"{NNACC}.npy", scores_with_ceiling(r, np.load(noise_ceiling / NOISE_CEILING_FILE)))


def roi_masks(voxels: pd.DataFrame, column: str, subject: str) -> dict[str, np.ndarray]:
    """Boolean mask per ROI label of ``column``, plus ``"all"``; a ConfigError names a missing column."""
    if column not in voxels:
        raise ConfigError(
            f"dataset.roi_column: {column!r} is not a column of {subject}'s voxel table; "
            f"columns: {list(voxels.columns)}"
        )
    labels = voxels[column]
    masks = {str(name): (labels == name).to_numpy() for name in labels.dropna().unique()}
    masks[ALL_VOXELS] = np.ones(len(voxels), dtype=bool)
    return masks


def _roi_rows(
    y_test: np.ndarray,
    predictions: np.ndarray,
    ceiling: np.ndarray,
    score: str,
    masks: dict[str, np.ndarray],
    values: dict[str, np.ndarray],
    settings: dict,
) -> pd.DataFrame:
    """Per ROI: median of the primary score (bootstrap CI over test stimuli), r, noise ceiling, log10 alpha."""

    # a score of r alone: every bootstrap resample's r comes from one matrix product
    resampled = CorrelationScore(lambda r: noise_normalised_accuracy(r, ceiling)) if score == NNACC else pearson_r

    def per_roi(v: np.ndarray) -> np.ndarray:
        return np.array([np.nanmedian(v[m]) if m.any() else np.nan for m in masks.values()])

    if settings["n_bootstraps"]:
        boot = bootstrap_ci(
            y_test, predictions, resampled, per_roi, settings["n_bootstraps"], settings["confidence"], settings["seed"]
        )
        low, high = boot.low, boot.high
    else:
        low = high = np.full(len(masks), np.nan)

    def medians(v: np.ndarray) -> np.ndarray:
        return summarise_scores(v, rois=masks, groupings=[("roi",)])["median"].to_numpy()

    return pd.DataFrame(
        {
            "roi": list(masks),
            "n_voxels": [int(m.sum()) for m in masks.values()],
            "n_nan": [int(np.isnan(values[score][m]).sum()) for m in masks.values()],
            "n_nc_zero": [int((ceiling[m] == 0).sum()) for m in masks.values()],
            "median_cv": medians(values["cv"]),
            "score": score,
            "median": medians(values[score]),
            "ci_low": low,
            "ci_high": high,
            "median_r": medians(values["r"]),
            "median_noise_ceiling": medians(ceiling),
            "median_log10_alpha": medians(np.log10(values["alpha"])),
        }
    )


def write_tables(ctx: StageContext) -> None:
    s = ctx.settings
    spaces = [(name, model, layer, depth) for name, model, layer, depth in s["spaces"]]
    roi_tables = []
    for subject in s["subjects"]:
        d = read_subject(ctx.input(StageId("responses", subject)), ctx.input(StageId("noise_ceiling", subject)))
        voxels, ceiling, score = d["voxels"].copy(), d["noise_ceiling"], d["score"]
        masks = roi_masks(voxels, s["roi_column"], subject)
        voxels["noise_ceiling"] = ceiling
        for name, model, layer, depth in spaces:
            values = {k: np.load(ctx.input(scores_id(subject, name)) / f"{k}.npy") for k in SCORES}
            values["alpha"] = np.load(ctx.input(encode_id(subject, name)) / "alphas.npy")
            values["cv"] = np.load(ctx.input(encode_id(subject, name)) / "cv_score.npy")
            for key, array in values.items():
                voxels[space_column(key, name)] = array
            predictions = np.load(ctx.input(encode_id(subject, name)) / "predictions.npy")
            rows = _roi_rows(d["y_test"], predictions, ceiling, score, masks, values, s)
            roi_tables.append(rows.assign(subject=subject, model=model, layer=layer, depth=depth, space=name))
        _best_columns(voxels, score, spaces)
        voxels.insert(0, "subject", subject)
        write_table(voxels, ctx.out, voxels_table(subject))
    first = ["subject", "model", "layer", "depth", "space"]
    roi = pd.concat(roi_tables, ignore_index=True)
    roi = roi[first + [c for c in roi.columns if c not in first]]
    write_table(roi, ctx.out, ROI_SUMMARY)
    # each model's layer per ROI is chosen on the training folds' CV score, never on the test split
    chosen = roi.dropna(subset=["median_cv"])
    best = chosen.loc[chosen.groupby(["subject", "model", "roi"], sort=False)["median_cv"].idxmax().to_numpy()]
    write_table(best.reset_index(drop=True), ctx.out, MODEL_SUMMARY)


def _best_columns(voxels: pd.DataFrame, score: str, spaces: list[tuple[str, str, str, int]]) -> None:
    """Per voxel: the feature space chosen by training CV, its test score and log10 alpha; each model's layer.

    Choices use the training folds' CV score only; a voxel whose CV scores are all NaN gets no
    choice (NaN / empty). Flags: ``nc_zero`` (noise ceiling 0: its accuracy is 100 whenever
    r > 0, the challenge's convention) and ``all_nan`` (no finite test score in any space).
    """
    names = [name for name, *_ in spaces]
    cv = voxels[[space_column("cv", n) for n in names]].to_numpy()
    scores = voxels[[space_column(score, n) for n in names]].to_numpy()
    chosen = np.argmax(np.nan_to_num(cv, nan=-np.inf), axis=1)
    none = np.isnan(cv).all(axis=1)
    rows = np.arange(len(voxels))
    voxels["best_space"] = np.where(none, "", np.asarray(names)[chosen])
    voxels["best_score"] = np.where(none, np.nan, scores[rows, chosen])
    alphas = voxels[[space_column("alpha", n) for n in names]].to_numpy()
    voxels["best_log10_alpha"] = np.where(none, np.nan, np.log10(alphas[rows, chosen]))
    for model in dict.fromkeys(model for _, model, _, _ in spaces):
        own = voxels[[space_column("cv", n) for n, m, _, _ in spaces if m == model]].to_numpy()
        depth = np.argmax(np.nan_to_num(own, nan=-np.inf), axis=1).astype(np.float64)
        voxels[f"best_depth[{model}]"] = np.where(np.isnan(own).all(axis=1), np.nan, depth)
    voxels["nc_zero"] = voxels["noise_ceiling"].to_numpy() == 0
    voxels["all_nan"] = np.isnan(scores).all(axis=1)


def _compare_spaces(results: Results) -> tuple[str, str] | None:
    chosen = results.config.get("report", {}).get("compare")
    if chosen:
        return chosen[0], chosen[1]
    summary = results.table(MODEL_SUMMARY)
    spaces = list(summary[summary["roi"] == ALL_VOXELS].drop_duplicates("model")["space"])
    if len(spaces) >= 2:
        return spaces[0], spaces[1]
    layers = results.table(ROI_SUMMARY).drop_duplicates("space")["space"].tolist()
    return (layers[0], layers[-1]) if len(layers) >= 2 else None


def surface_figures(results: Results) -> list[Block]:
    """Per-vertex maps (best score, noise ceiling, best layer, best alpha) of subjects with surface vertices."""
    report = results.config.get("report", {})
    views = tuple(report.get("views", ("lateral", "medial", "ventral")))
    blocks: list[Block] = []
    surface = None
    for subject in results.subjects:
        voxels = results.voxels(subject)
        if "vertex" not in voxels or "hemisphere" not in voxels:
            continue
        surface = surface or load_surface(report.get("surface", "auto"), data_home())
        primary = max(results.config["features"], key=lambda f: len(f.get("layers", [])))
        maps = [
            ("accuracy", voxels["best_score"],
             f"{score_label(results.score(subject))} (test) of the space chosen by training CV", "inferno", 0, None),
            ("noise_ceiling", voxels["noise_ceiling"] * 100, "noise ceiling (% variance)", "viridis", 0, None),
            ("best_layer", voxels[f"best_depth[{primary['name']}]"],
             f"layer of {primary['name']} chosen by training CV (depth index)",
             "turbo", 0, max(len(primary.get("layers", [])) - 1, 1)),
            ("best_alpha", voxels["best_log10_alpha"], "log10 alpha of the chosen feature space", "cividis", None,
             None),
        ]  # fmt: skip
        for name, values, label, cmap, vmin, vmax in maps:
            if values.isna().all():
                continue
            on_surface = voxels_to_surface(values.to_numpy(), voxels, surface.n_vertices)
            blocks.append(
                FigureBlock(
                    f"surface_{name}_{subject}",
                    "Per-vertex map on the inflated cortical surface, both hemispheres.",
                    figure_surface_map(on_surface, surface, f"{subject}: {label}", views, cmap, vmin, vmax, label),
                )
            )
    return blocks


def section(results: Results) -> list[Block]:
    summary = results.table(MODEL_SUMMARY)
    columns = ["subject", "roi", "model", "layer", "median_cv", "n_voxels", "n_nc_zero", "n_nan", "score", "median",
               "ci_low", "ci_high", "median_r", "median_noise_ceiling"]  # fmt: skip
    blocks: list[Block] = [
        "<h2>Per ROI: each model at its best layer</h2><p>Each model's layer is chosen per ROI on the training "
        "split (the median over the ROI's voxels of the held-out R&sup2; in K-fold cross-validation on the training "
        "stimuli, <code>median_cv</code>); every other number is from the test split, for the chosen layer. The "
        "primary score is the noise-normalised accuracy (100 &middot; max(r, 0)&sup2; / NC, in percent of the noise "
        "ceiling) where a noise ceiling exists, else Pearson r. Confidence intervals: percentile bootstrap over test "
        "stimuli. <code>n_nc_zero</code>: voxels with a noise ceiling of 0 (their accuracy is 100 whenever r &gt; 0); "
        "<code>n_nan</code>: voxels without a finite score.</p>",
        table_html(summary[columns]),
        FigureBlock(
            "roi_accuracy",
            "Accuracy per ROI: every model at its best layer (whiskers: bootstrap confidence interval over test "
            "stimuli), and the median noise ceiling per ROI.",
            figure_roi_accuracy(summary),
        ),
    ]
    hierarchy = figure_layer_hierarchy(results.table(ROI_SUMMARY))
    if hierarchy is not None:
        blocks.append(
            FigureBlock(
                "layer_hierarchy",
                "Layer hierarchy: median test-split accuracy per ROI against layer depth, per model (band: "
                "bootstrap CI; dashed: all voxels).",
                hierarchy,
            )
        )
    blocks += surface_figures(results)
    pair = _compare_spaces(results)
    roi_column = results.config["dataset"].get("roi_column", "roi")
    if pair is not None:
        for subject in results.subjects:
            blocks.append(
                FigureBlock(
                    f"scatter_{subject}",
                    f"Voxel by voxel, test split: {pair[0]} against {pair[1]}.",
                    figure_voxel_scatter(results.voxels(subject), pair[0], pair[1], results.score(subject), roi_column),
                )
            )
    return blocks


ENCODING = Analysis("encoding", plan, write_tables, section)
