"""Decoding: which category was seen, read out of ROIs, out of feature spaces, and out of predictions.

Stages, per subject:

- ``labels/<subject>``: the ``[decoding] labels`` column of the stimulus table for the
  training and test stimuli, filtered to ``classes``;
- ``decode/<subject>``: every decoder on every ROI's measured responses (trained on the
  training stimuli, hyperparameters by grouped CV on them, scored on the test stimuli,
  permutation test of the whole pipeline with the same permutations for every ROI);
- ``probe/<subject>/<space>``: the same decoders on a feature space (linear probes);
- ``decode_predicted/<subject>/<space>``: decoders trained on each ROI's measured training
  responses, applied to the encoder's predicted test responses;
- ``blur/<subject>/<space>``: the test images blurred (Gaussian sigmas, box sizes): the
  probe's accuracy and the encoder's identification accuracy against blur, with bootstrap
  intervals over test stimuli.

Tables: ``decoding`` (one row per subject x target x decoder; p-values corrected within
each subject x kind x decoder family), ``decoding_confusion``, ``decoding_null`` and
``decoding_blur``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scene2brain.data.containers import select_classes, stimulus_labels
from scene2brain.data.images import ArrayImages
from scene2brain.data.storage import load_stimuli
from scene2brain.decoding import correct_p_values, cross_validate_decoding, decode, decoding_metrics
from scene2brain.evaluation.identification import identify, select_voxels
from scene2brain.features.blur import box_blur, gaussian_blur
from scene2brain.features.extraction import extract_to_store
from scene2brain.features.models import load_model
from scene2brain.features.reduction import Reduction, fit_reduction, transform_rows
from scene2brain.pipeline.analyses.encoding import encode_id, fit_configured, roi_masks
from scene2brain.pipeline.analysis import Analysis, TableNeeds
from scene2brain.pipeline.config import ConfigError
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageId
from scene2brain.pipeline.plan import (
    EXPERIMENT_DIR,
    FEATURES_FILE,
    Plan,
    raw_features,
    training_groups,
)
from scene2brain.report.html import Block, FigureBlock, table_html
from scene2brain.results import (
    DECODING,
    DECODING_BLUR,
    DECODING_CONFUSION,
    DECODING_NULL,
    Results,
    write_table,
)
from scene2brain.utils.arrays import standardise_columns
from scene2brain.viz.decoding import figure_blur_curves, figure_confusion, figure_decoding_accuracy

RESULTS_FILE = "results.json"
NULL_FILE = "null.npz"
BLUR_FILE = "blur.json"
ROI, SPACE, PREDICTED = "roi", "space", "predicted"  # the kinds of decoding target
# where each kind's numbers come from: trained on the training stimuli, scored on the test stimuli; or
# cross-validated (grouped folds) over the test stimuli
SPLIT = {ROI: "test", SPACE: "test", PREDICTED: "test (grouped CV)"}


def labels_id(subject: str) -> StageId:
    return StageId("labels", subject)


def plan(p: Plan) -> TableNeeds | None:
    config = p.config
    dec = config.decoding
    if dec is None:
        return None
    seed = config.run.seed
    decoders = {name: dec.options.get(name, {}) for name in dec.decoders}
    common = {
        "decoders": decoders,
        "cv": dec.cv,
        "screening": dec.screening,
        "n_permutations": dec.n_permutations,
        "metric": dec.metric,
        "seed": seed,
    }
    options = {"device": dec.device}
    rois = {"roi_column": config.dataset.roi_column, "rois": dec.rois}
    wanted = set(config.spaces()) if dec.spaces is None else set(dec.spaces)
    inputs: list[Ref] = []
    for subject in p.subjects:
        responses = Ref(p.responses(subject))
        labels = Ref(
            p.graph.add(
                Stage(
                    labels_id(subject),
                    compute_labels,
                    {"column": dec.labels, "classes": dec.classes, "subject": subject},
                    {"experiment": Ref(p.experiment(subject)), "responses": responses},
                )
            )
        )
        inputs.append(labels)
        stage = Stage(
            StageId("decode", subject),
            compute_decode_rois,
            {**common, **rois},
            {"labels": labels, "responses": responses},
            options=options,
        )
        inputs.append(Ref(p.graph.add(stage)))
        for space in p.spaces(subject):
            if space.name in wanted:
                stage = Stage(
                    StageId("probe", subject, space.name),
                    compute_probe,
                    common,
                    {"labels": labels, "responses": responses, "features": space.features},
                    options=options,
                )
                inputs.append(Ref(p.graph.add(stage)))
            if dec.from_predictions:
                stage = Stage(
                    StageId("decode_predicted", subject, space.name),
                    compute_decode_predicted,
                    {**common, **rois},
                    {"labels": labels, "responses": responses, "encode": Ref(encode_id(subject, space.name))},
                    options=options,
                )
                inputs.append(Ref(p.graph.add(stage)))
            if space.name in dec.blur_spaces:
                inputs.append(Ref(p.graph.add(_blur_stage(p, subject, space, common, labels, responses))))
    settings = {
        "subjects": p.subjects,
        "label": dec.labels,
        "decoders": dec.decoders,
        "spaces": [s.name for s in p.spaces(p.subjects[0]) if s.name in wanted],
        "predicted": dec.from_predictions,
        "all_spaces": [s.name for s in p.spaces(p.subjects[0])],
        "blur_spaces": dec.blur_spaces,
        "correction": dec.correction,
        "metric": dec.metric,
        "n_permutations": dec.n_permutations,
    }
    return TableNeeds(settings, inputs)


def _blur_stage(p: Plan, subject: str, space, common: dict, labels: Ref, responses: Ref) -> Stage:
    config, dec = p.config, p.config.decoding
    features = p.graph[space.features.stage]
    encoder = config.encoder.settings()
    settings = {
        **common,
        "decoder": dec.decoders[0],
        "extraction": features.settings["extraction"],
        "layer": space.layer,
        "sigmas": dec.blur_sigmas,
        "boxes": dec.blur_boxes,
        "encoder": encoder,
        "identification_voxels": config.evaluation.identification_voxels,
        "n_bootstraps": config.evaluation.n_bootstraps,
        "confidence": config.evaluation.confidence,
    }
    inputs = {
        "labels": labels,
        "responses": responses,
        "features": space.features,
        "stimuli": features.inputs["stimuli"],
        "encode": Ref(encode_id(subject, space.name)),
    }
    options = {"batch_size": space.spec.batch_size, "device": space.spec.device}
    return Stage(StageId("blur", subject, space.name), compute_blur, settings, inputs, options=options)


# -- stages ----------------------------------------------------------------------------------


def compute_labels(ctx: StageContext) -> None:
    """The label of each training and test stimulus, filtered to ``classes``.

    Stimuli without a label are left out, and so are test stimuli of a class that no
    training stimulus has (a decoder cannot predict it; ``labels.json`` counts them).
    """
    stimuli, _ = load_stimuli(ctx.input("experiment") / EXPERIMENT_DIR)
    column, classes, subject = ctx.settings["column"], ctx.settings["classes"], ctx.settings["subject"]
    try:
        values = stimulus_labels(stimuli.table, column)
        keep = select_classes(values, classes)
    except ValueError as err:
        key = "decoding.classes" if column in stimuli.table else "decoding.labels"
        raise ConfigError(f"{key}: {subject}: {err}") from None
    labels = np.where(keep, np.asarray(values.astype(str), dtype=str), "")
    folder = ctx.input("responses")
    split_labels = {split: labels[np.load(folder / f"{split}_stimuli.npy")] for split in ("train", "test")}
    trained = sorted(set(split_labels["train"]) - {""})
    if len(trained) < 2:
        raise ConfigError(
            f"decoding.labels: {column!r} has fewer than two classes among {subject}'s training stimuli "
            f"(found {trained})"
        )
    record: dict = {"column": column, "classes": trained}
    for split, y in split_labels.items():
        rows = np.flatnonzero(np.isin(y, trained))
        np.save(ctx.out / f"{split}_rows.npy", rows)
        np.save(ctx.out / f"y_{split}.npy", y[rows])
        record[f"n_{split}"] = {c: int((y[rows] == c).sum()) for c in trained}
    untrained = (split_labels["test"] != "") & ~np.isin(split_labels["test"], trained)
    record["test_left_out"] = {
        c: int((split_labels["test"][untrained] == c).sum()) for c in set(split_labels["test"][untrained])
    }
    groups = np.load(folder / "train_groups.npy")[np.load(ctx.out / "train_rows.npy")]
    np.save(ctx.out / "train_groups.npy", groups)
    test_stimuli = np.load(folder / "test_stimuli.npy")[np.load(ctx.out / "test_rows.npy")]
    np.save(ctx.out / "test_groups.npy", training_groups(stimuli.table, test_stimuli))
    (ctx.out / "labels.json").write_text(json.dumps(record, indent=2))


def _labels(ctx: StageContext) -> dict[str, np.ndarray]:
    folder = ctx.input("labels")
    return {
        name: np.load(folder / f"{name}.npy")
        for name in ("train_rows", "test_rows", "y_train", "y_test", "train_groups")
    }


def _with_device(ctx: StageContext, decoder: str, options: dict) -> dict:
    return {**options, "device": ctx.options["device"]} if decoder == "mlp" else dict(options)


def _screening(settings: dict, n_features: int) -> int | None:
    return None if settings["screening"] is None else min(settings["screening"], n_features)


def _row(result, name: str, decoder: str, n_features: int, metric: str) -> dict:
    row = {**result.to_row(), "name": name, "decoder": decoder, "n_features": n_features}
    row["classes"] = list(result.classes)
    row["confusion"] = np.asarray(result.confusion).tolist()
    row["recall"] = {str(k): float(v) for k, v in result.recall.items()}
    row["observed"] = float(getattr(result, metric))
    row["hyperparameters"] = {k: _plain(v) for k, v in result.hyperparameters.items()}
    return row


def _write(ctx: StageContext, rows: list[dict], nulls: dict[str, np.ndarray]) -> None:
    (ctx.out / RESULTS_FILE).write_text(json.dumps(rows, indent=2, default=_plain))
    np.savez(ctx.out / NULL_FILE, **nulls)


def _decode_all(ctx: StageContext, targets: dict[str, tuple[np.ndarray, np.ndarray]], lab: dict) -> None:
    """Every decoder on every target's (train, test) matrices; writes results.json and null.npz."""
    s = ctx.settings
    rows, nulls = [], {}
    for decoder, options in s["decoders"].items():
        for name, (x_train, x_test) in targets.items():
            result = decode(
                x_train, lab["y_train"], x_test, lab["y_test"], groups=lab["train_groups"], decoder=decoder,
                options=_with_device(ctx, decoder, options), n_folds=s["cv"],
                screening=_screening(s, x_train.shape[1]), n_permutations=s["n_permutations"], metric=s["metric"],
                seed=s["seed"],
            )  # fmt: skip
            rows.append(_row(result, name, decoder, int(x_train.shape[1]), s["metric"]))
            nulls[f"{decoder}|{name}"] = np.asarray(result.null, dtype=np.float64)
    _write(ctx, rows, nulls)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value if isinstance(value, (int, float, str, bool, list, dict)) or value is None else str(value)


def _roi_masks(ctx: StageContext) -> dict[str, np.ndarray]:
    voxels = pd.read_parquet(ctx.input("responses") / "voxels.parquet")
    masks = roi_masks(voxels, ctx.settings["roi_column"], "this subject")
    wanted = ctx.settings["rois"]
    if wanted is None:
        return masks
    unknown = [r for r in wanted if r not in masks]
    if unknown:
        raise ConfigError(
            f"decoding.rois: {unknown} are not ROIs of {ctx.settings['roi_column']!r}; found {list(masks)}"
        )
    return {r: masks[r] for r in wanted}


def compute_decode_rois(ctx: StageContext) -> None:
    """Each decoder on each ROI's measured responses: trained on the training stimuli, scored on the test ones."""
    lab = _labels(ctx)
    folder = ctx.input("responses")
    train, test = np.load(folder / "train.npy")[lab["train_rows"]], np.load(folder / "test.npy")[lab["test_rows"]]
    targets = {roi: (train[:, m], test[:, m]) for roi, m in _roi_masks(ctx).items()}
    _decode_all(ctx, targets, lab)


def _space_rows(ctx: StageContext, lab: dict) -> tuple[np.ndarray, np.ndarray]:
    features = np.load(ctx.input("features") / FEATURES_FILE)
    folder = ctx.input("responses")
    train = np.load(folder / "train_stimuli.npy")[lab["train_rows"]]
    test = np.load(folder / "test_stimuli.npy")[lab["test_rows"]]
    return features[train], features[test]


def compute_probe(ctx: StageContext) -> None:
    """Linear probes: the decoders on a feature space, trained on the training stimuli's features only."""
    lab = _labels(ctx)
    _decode_all(ctx, {"probe": _space_rows(ctx, lab)}, lab)


def compute_decode_predicted(ctx: StageContext) -> None:
    """Decoders trained on measured test responses, scored on predicted ones of other test stimuli (grouped CV).

    The encoder was fitted on the training stimuli, so its predictions share no noise
    with the measured test responses. (A decoder trained on the measured *training*
    responses would not do: it and the encoder would both carry the training noise, and
    the chain decoder(encoder(features)) is then a classifier of the feature space
    trained on the training labels, which "decodes" the category even from voxels
    that hold none.) Only voxels the encoder predicts (training-CV R^2 > 0, chosen on the
    training stimuli) are used: a voxel it cannot predict gets predictions that are some
    projection of the features, which carry the category whatever the voxel does. A ROI
    with fewer than two such voxels gets no row. Outer folds over the test stimuli keep
    content groups together; each voxel's measured and predicted responses are z-scored
    over the test stimuli (a ridge encoder shrinks its predictions toward the mean; the
    z-scores use no label).
    """
    s = ctx.settings
    lab = _labels(ctx)
    folder = ctx.input("responses")
    measured = standardise_columns(np.load(folder / "test.npy")[lab["test_rows"]])
    predicted = standardise_columns(np.load(ctx.input("encode") / "predictions.npy")[lab["test_rows"]])
    groups = np.load(ctx.input("labels") / "test_groups.npy")
    predictable = np.nan_to_num(np.load(ctx.input("encode") / "cv_score.npy"), nan=-np.inf) > 0
    n_folds = min(s["cv"], len(np.unique(groups)))
    if n_folds < 2:
        raise ConfigError("decoding.from_predictions: the test stimuli form fewer than two content groups")
    rows, nulls = [], {}
    for decoder, options in s["decoders"].items():
        for name, roi in _roi_masks(ctx).items():
            mask = roi & predictable
            if mask.sum() < 2:
                continue
            result = cross_validate_decoding(
                measured[:, mask], lab["y_test"], groups=groups, decoder=decoder,
                options=_with_device(ctx, decoder, options), n_folds=n_folds, n_inner_folds=n_folds,
                screening=_screening(s, int(mask.sum())), n_permutations=s["n_permutations"], metric=s["metric"],
                seed=s["seed"], X_eval=predicted[:, mask],
            )  # fmt: skip
            rows.append(_row(result, name, decoder, int(mask.sum()), s["metric"]))
            nulls[f"{decoder}|{name}"] = np.asarray(result.null, dtype=np.float64)
    _write(ctx, rows, nulls)


def _blur_levels(settings: dict) -> list[tuple[str, float, float]]:
    """(kind, level, equivalent Gaussian sigma) of every blur level, Gaussian first."""
    levels = [("gaussian", float(s), float(s)) for s in settings["sigmas"]]
    return levels + [("box", float(k), float(np.sqrt((k * k - 1) / 12))) for k in settings["boxes"]]


def compute_blur(ctx: StageContext) -> None:
    """Probe accuracy and identification accuracy for blurred test images, with bootstrap intervals.

    The probe (the first decoder, hyperparameters by grouped CV on the clean training
    features) and the encoder are fitted on the clean training stimuli; the reduction of the
    blurred test images' features is the one fitted on the clean training features. Only
    the test images are blurred.
    """
    s = ctx.settings
    lab = _labels(ctx)
    stimuli, _ = load_stimuli(ctx.input("stimuli") / EXPERIMENT_DIR)
    folder = ctx.input("responses")
    train_stim, test_stim = np.load(folder / "train_stimuli.npy"), np.load(folder / "test_stimuli.npy")
    raw = raw_features(ctx.input("features"), ctx.runtime.store)
    reducer = fit_reduction(raw, train_stim, Reduction(**s["extraction"]["reduction"]))
    clean = np.load(ctx.input("features") / FEATURES_FILE)
    # the encoder as the encode stage fitted it, and its voxel selection for identification
    fitted = fit_configured(s["encoder"], clean, folder, s["seed"])
    measured = np.load(folder / "test.npy")
    cv_score = np.load(ctx.input("encode") / "cv_score.npy")
    voxels = select_voxels(np.nan_to_num(cv_score, nan=-np.inf), min(s["identification_voxels"], measured.shape[1]))
    spec = s["extraction"]
    model = load_model(spec["model"], spec["weights"], **spec["options"])
    images = np.stack([np.asarray(stimuli.images[int(i)]) for i in test_stim])
    rng = np.random.default_rng(s["seed"])
    n_test = len(test_stim)
    boot = rng.integers(0, n_test, size=(s["n_bootstraps"], n_test)) if s["n_bootstraps"] else None
    rows, x_clean_train = [], clean[train_stim][lab["train_rows"]]
    levels = _blur_levels(s)
    features = []
    for kind, level, _ in levels:
        if level == 0:  # no blur: the stage's own features of the test images
            features.append(clean[test_stim])
            continue
        blurred = gaussian_blur(images, level) if kind == "gaussian" else box_blur(images, int(level))
        entries, _ = extract_to_store(
            ArrayImages(blurred), model, [s["layer"]], spec["pooling"], ctx.runtime.store,
            batch_size=ctx.options["batch_size"], device=ctx.options["device"], progress=False,
        )  # fmt: skip
        features.append(transform_rows(reducer, entries[s["layer"]].read()).astype(np.float32))
    # one probe (fitted once on the unblurred training features) predicts every level's test rows
    probe = decode(
        x_clean_train, lab["y_train"], np.concatenate([x[lab["test_rows"]] for x in features]),
        np.tile(lab["y_test"], len(levels)), groups=lab["train_groups"], decoder=s["decoder"],
        options=s["decoders"][s["decoder"]], n_folds=s["cv"], metric=s["metric"], seed=s["seed"],
    )  # fmt: skip
    per_level = np.split(np.asarray(probe.predictions), len(levels))
    for (kind, level, sigma), x_test, predicted in zip(levels, features, per_level, strict=True):
        metrics = decoding_metrics(lab["y_test"], predicted)
        ident = identify(measured, fitted.predict(x_test), voxels=voxels)
        correct = (ident.rank == 1).astype(np.float64)
        row = {
            "blur": kind, "level": level, "sigma": sigma, "accuracy": metrics["accuracy"],
            "balanced_accuracy": metrics["balanced_accuracy"], "chance": metrics["chance"], "metric": s["metric"],
            "identification": float(correct.mean()), "identification_chance": 1.0 / n_test,
        }  # fmt: skip
        if boot is not None:
            probe_boot = _bootstrap_metric(lab["y_test"], predicted, lab["test_rows"], boot, s["metric"])
            row.update(_interval("", probe_boot, s["confidence"]))
            row.update(_interval("identification_", correct[boot].mean(axis=1), s["confidence"]))
        rows.append(row)
    (ctx.out / BLUR_FILE).write_text(json.dumps(rows, indent=2))


def _bootstrap_metric(
    y: np.ndarray, predicted: np.ndarray, rows: np.ndarray, boot: np.ndarray, metric: str
) -> np.ndarray:
    """The metric over bootstrap resamples of the test stimuli (``boot`` indexes all test stimuli)."""
    position = np.full(int(rows.max(initial=-1)) + 1 if len(rows) else 0, -1)
    position[rows] = np.arange(len(rows))
    values = []
    for sample in boot:
        picked = position[sample[sample < len(position)]]
        picked = picked[picked >= 0]
        values.append(decoding_metrics(y[picked], predicted[picked])[metric] if len(picked) else np.nan)
    return np.asarray(values)


def _interval(prefix: str, samples: np.ndarray, confidence: float) -> dict[str, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return {f"{prefix}ci_low": float(low), f"{prefix}ci_high": float(high)}


# -- tables ----------------------------------------------------------------------------------


def write_tables(ctx: StageContext) -> None:
    s = ctx.settings
    rows, confusion, nulls, blur = [], [], [], []
    for subject in s["subjects"]:
        sources = [(ROI, StageId("decode", subject), None)]
        sources += [(SPACE, StageId("probe", subject, space), space) for space in s["spaces"]]
        if s["predicted"]:
            sources += [(PREDICTED, StageId("decode_predicted", subject, sp), sp) for sp in s["all_spaces"]]
        for kind, stage, space in sources:
            folder = ctx.input(stage)
            stored = np.load(folder / NULL_FILE)
            for r in json.loads((folder / RESULTS_FILE).read_text()):
                roi = None if kind == SPACE else r["name"]
                base = {"subject": subject, "kind": kind, "roi": roi, "space": space, "decoder": r["decoder"]}
                rows.append(
                    {
                        **base,
                        "label": s["label"],
                        **{k: r[k] for k in _ROW_KEYS if k in r},
                        "observed": r["observed"],
                        "split": SPLIT[kind],
                    }
                )
                for (i, true), (j, pred) in _pairs(r["classes"]):
                    confusion.append({**base, "true": true, "predicted": pred, "count": r["confusion"][i][j]})
                null = stored[f"{r['decoder']}|{r['name']}"]
                nulls += [{**base, "permutation": k, "value": float(v)} for k, v in enumerate(null)]
        for space in s["blur_spaces"]:
            for r in json.loads((ctx.input(StageId("blur", subject, space)) / BLUR_FILE).read_text()):
                blur.append({"subject": subject, "space": space, "label": s["label"], **r, "split": "test"})
    table = pd.DataFrame(rows)
    table["n_permutations"] = s["n_permutations"]
    table["correction"] = s["correction"]
    table["p_corrected"] = np.nan
    null_table = pd.DataFrame(nulls, columns=["subject", "kind", "roi", "space", "decoder", "permutation", "value"])
    for _, family in table.groupby(["subject", "kind", "decoder"], sort=False):
        if family["p_value"].isna().all():
            continue
        null = np.column_stack([_null_of(null_table, row) for _, row in family.iterrows()])
        table.loc[family.index, "p_corrected"] = correct_p_values(
            family["observed"].to_numpy(), null, method=s["correction"]
        )
    write_table(table.drop(columns="observed"), ctx.out, DECODING)
    write_table(pd.DataFrame(confusion), ctx.out, DECODING_CONFUSION)
    write_table(null_table, ctx.out, DECODING_NULL)
    if blur:
        write_table(pd.DataFrame(blur), ctx.out, DECODING_BLUR)


_ROW_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "chance",
    "majority",
    "auc",
    "p_value",
    "n_train",
    "n_test",
    "n_features",
    "metric",
)


def _pairs(classes: list[str]):
    return [((i, a), (j, b)) for i, a in enumerate(classes) for j, b in enumerate(classes)]


def _null_of(nulls: pd.DataFrame, row: pd.Series) -> np.ndarray:
    match = (nulls["subject"] == row["subject"]) & (nulls["kind"] == row["kind"]) & (nulls["decoder"] == row["decoder"])
    for key in ("roi", "space"):
        match &= nulls[key].isna() if pd.isna(row[key]) else nulls[key] == row[key]
    return nulls.loc[match].sort_values("permutation")["value"].to_numpy()


# -- report ----------------------------------------------------------------------------------


def _target(row: pd.Series) -> str:
    if row["kind"] == ROI:
        return f"{row['roi']}"
    if row["kind"] == SPACE:
        return f"{row['space']}"
    return f"{row['roi']} <- {row['space']}"


def section(results: Results) -> list[Block]:
    if not results.has_table(DECODING):
        return []
    table = results.table(DECODING).copy()
    nulls = results.table(DECODING_NULL)
    label = table["label"].iloc[0]
    blocks: list[Block] = [
        f"<h2>Decoding: {label}</h2><p>ROI decoders and feature-space probes are trained on the training "
        "stimuli (hyperparameters by grouped cross-validation on them) and scored on the <b>test</b> stimuli; "
        "decoding of predicted responses is cross-validated over the test stimuli (column <code>split</code>). "
        "Chance is 1 / number of classes; the majority rate is beside it. p-values come from permutation tests "
        "of the whole pipeline (training labels permuted, inner CV included), corrected across the ROIs or "
        f"spaces of each family ({table['correction'].iloc[0]}).</p>"
    ]
    table["name"] = table.apply(_target, axis=1)
    columns = [
        "subject",
        "kind",
        "name",
        "decoder",
        "accuracy",
        "balanced_accuracy",
        "chance",
        "majority",
        "auc",
        "p_value",
        "p_corrected",
        "n_train",
        "n_test",
        "split",
    ]
    blocks.append(table_html(table[columns]))
    metric = table["metric"].iloc[0]
    for kind, caption in (
        (ROI, "decoders on each ROI's measured responses"),
        (SPACE, "linear probes of each feature space"),
        (
            PREDICTED,
            "decoders trained on measured responses of some test stimuli, scored on the predicted responses of "
            "the others (grouped CV over the test stimuli; voxels the encoder predicts in training CV)",
        ),
    ):
        part = table[table["kind"] == kind]
        if part.empty:
            continue
        shown = part.assign(target=kind, label=[f"{r['name']} ({r['decoder']})" for _, r in part.iterrows()])
        null = {
            (subject, kind, label): _null_of(nulls, row)
            for subject, label, (_, row) in zip(shown["subject"], shown["label"], part.iterrows(), strict=True)
        }
        blocks.append(
            FigureBlock(
                f"decoding_{kind}",
                f"{metric.replace('_', ' ').capitalize()} on the test stimuli, {caption}; dashes: chance; "
                "violins: the permutation null; * corrected p < 0.05, ** < 0.01, *** < 0.001.",
                figure_decoding_accuracy(shown, null, metric=metric),
            )
        )
    conf = results.table(DECODING_CONFUSION)
    rois = conf[conf["kind"] == ROI]
    if not rois.empty:
        matrices = {}
        for (subject, roi, decoder), part in rois.groupby(["subject", "roi", "decoder"], sort=False):
            classes = list(dict.fromkeys(part["true"]))
            matrix = part.pivot(index="true", columns="predicted", values="count").loc[classes, classes].to_numpy()
            matrices[f"{subject} {roi} ({decoder})"] = (matrix, classes)
        blocks.append(
            FigureBlock(
                "decoding_confusion",
                "Confusion matrices of the ROI decoders on the test stimuli (rows: true class, normalised).",
                figure_confusion(matrices),
            )
        )
    if results.has_table(DECODING_BLUR):
        blur = results.table(DECODING_BLUR)
        blocks.append(
            FigureBlock(
                "decoding_blur",
                "Robustness to blur: the probe's accuracy when only the test images are blurred (Gaussian sigma in "
                "pixels; fixed box sizes with their equivalent sigma), probe and reduction fitted on the unblurred "
                "training images; bands: bootstrap intervals over test stimuli.",
                figure_blur_curves(blur, metric=metric),
            )
        )
        identification = blur.drop(columns=["ci_low", "ci_high", "chance"], errors="ignore").rename(
            columns={
                "identification_ci_low": "ci_low",
                "identification_ci_high": "ci_high",
                "identification_chance": "chance",
            }
        )
        blocks.append(
            FigureBlock(
                "decoding_blur_identification",
                "The encoder's image identification accuracy (which test image was seen, among all test images) "
                "when its input images are blurred, with bootstrap intervals over test stimuli.",
                figure_blur_curves(identification, metric="identification"),
            )
        )
    return blocks


DECODING_ANALYSIS = Analysis("decoding", plan, write_tables, section)
