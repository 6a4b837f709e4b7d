"""Representational similarity analysis of ROIs and feature spaces on the test stimuli.

Stage ``rsa/<subject>``: an RDM (upper triangle without the diagonal) per ROI, from the
repeat-averaged test responses or cross-validated over the test trials' repeats, and per
feature space, from the test stimuli's features; each ROI's RDM compared with every
space's (bootstrap intervals over stimuli, stimulus-label permutation p-values, pairwise
comparisons with FDR) beside a noise ceiling from the repeats. Tables: ``rsa`` (subject x
ROI x space), ``rsa_pairwise`` (space pairs per ROI) and ``rsa_similarity`` (every RDM
against every other, for the MDS plot); ``rsa_rdms.npz`` holds RDMs for display. With
several subjects seeing the same test stimuli, ``subject = "group"`` rows compare the
subjects' RDMs with a bootstrap over subjects and stimuli and the across-subject noise
ceiling.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scene2brain.data.storage import load_experiment
from scene2brain.pipeline.analyses.encoding import roi_masks
from scene2brain.pipeline.analysis import Analysis, TableNeeds
from scene2brain.pipeline.config import ConfigError
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageId
from scene2brain.pipeline.plan import EXPERIMENT_DIR, FEATURES_FILE, Plan
from scene2brain.report.html import Block, FigureBlock, table_html
from scene2brain.representation import (
    compare_models,
    compare_rdms,
    compute_rdms,
    crossvalidated_rdm,
    noise_ceiling,
    noise_precision,
    rdm_matrix,
    rdm_vector,
    repeat_noise_ceiling,
    repeat_partitions,
)
from scene2brain.results import RSA, RSA_PAIRWISE, RSA_SIMILARITY, Results, write_table
from scene2brain.utils.arrays import group_means
from scene2brain.viz.rsa import figure_mds, figure_model_comparison, figure_rdms

RDMS_FILE = "rdms.npz"
RECORD = "rsa.json"
DISPLAY_FILE = "rsa_rdms.npz"  # in tables/: RDMs of at most DISPLAY_STIMULI stimuli, for the report
DISPLAY_STIMULI = 300
GROUP = "group"


def rsa_id(subject: str) -> StageId:
    return StageId("rsa", subject)


def plan(p: Plan) -> TableNeeds | None:
    config = p.config
    rsa = config.rsa
    if rsa is None:
        return None
    wanted = config.spaces() if rsa.spaces is None else rsa.spaces
    settings = {
        **rsa.model_dump(mode="json", exclude={"spaces"}),
        "spaces": wanted,
        "roi_column": config.dataset.roi_column,
        "test": config.splits.test,
        "confidence": config.evaluation.confidence,
        "seed": config.run.seed,
    }
    inputs = []
    for subject in p.subjects:
        spaces = {f"space:{s.name}": s.features for s in p.spaces(subject) if s.name in wanted}
        stage = Stage(
            rsa_id(subject),
            compute_rsa,
            {**settings, "subject": subject},
            {"experiment": Ref(p.experiment(subject)), "responses": Ref(p.responses(subject)), **spaces},
        )
        inputs.append(Ref(p.graph.add(stage)))
    table_settings = {
        "subjects": p.subjects,
        "spaces": wanted,
        "comparator": rsa.comparator,
        "distance": rsa.distance,
        "n_bootstraps": rsa.n_bootstraps,
        "n_permutations": rsa.n_permutations,
        "confidence": config.evaluation.confidence,
        "seed": config.run.seed,
    }
    return TableNeeds(table_settings, inputs)


def _rows(result, roi: str, spaces: list[str], low: float, high: float) -> list[dict]:
    """One table row per feature space of a ROI's comparison (an ``RDMComparison``) and its noise ceiling."""
    return [
        {"roi": roi, "space": space, "similarity": float(result.similarity[i]), "ci_low": float(result.ci_low[i]),
         "ci_high": float(result.ci_high[i]), "p_value": float(result.p_value[i]), "nc_low": float(low),
         "nc_high": float(high)}
        for i, space in enumerate(spaces)
    ]  # fmt: skip


def compute_rsa(ctx: StageContext) -> None:
    """RDMs of every ROI and feature space on the test stimuli, comparisons, intervals, noise ceilings."""
    s = ctx.settings
    experiment = load_experiment(ctx.input("experiment") / EXPERIMENT_DIR)
    folder = ctx.input("responses")
    test_stim = np.load(folder / "test_stimuli.npy")
    averaged = np.load(folder / "test.npy")
    labels = None
    if s["labels"] is not None:
        table = experiment.stimuli.table
        if s["labels"] not in table:
            raise ConfigError(f"rsa.labels: {s['labels']!r} is not a column of the stimulus table: {list(table)}")
        labels = np.asarray(table[s["labels"]].astype(str), dtype=str)[test_stim]
    voxels = pd.read_parquet(folder / "voxels.parquet")
    masks = roi_masks(voxels, s["roi_column"], s["subject"])
    if s["rois"] is not None:
        unknown = [r for r in s["rois"] if r not in masks]
        if unknown:
            raise ConfigError(f"rsa.rois: {unknown} are not ROIs of {s['roi_column']!r}; found {list(masks)}")
        masks = {r: masks[r] for r in s["rois"]}
    trials = experiment.trials_in_split(s["test"])
    data = experiment.responses.data[trials].astype(np.float64)
    stim = experiment.responses.trial_stimulus[trials]
    position = {int(v): i for i, v in enumerate(test_stim)}
    conditions = np.array([position[int(v)] for v in stim])  # test-stimulus order, like the averaged rows
    repeats = repeat_partitions(conditions)
    n_repeats = np.bincount(conditions).min()
    if s["crossvalidated"] and n_repeats < 2:
        raise ConfigError(
            f"rsa.crossvalidated: needs every test stimulus shown at least twice; {s['subject']} has a test stimulus "
            "shown once"
        )
    if s["crossvalidated"]:
        keep = repeats < n_repeats  # the same number of partitions for every stimulus
        roi_rdms = []
        for mask in masks.values():
            x = data[keep][:, mask]
            precision = None
            if s["noise_normalise"]:
                _, means, _ = group_means(x, conditions[keep])  # conditions are 0 .. n - 1, all present
                precision = noise_precision(x - means[conditions[keep]], method="shrinkage_diag")
            vector, order = crossvalidated_rdm(
                x, conditions[keep], repeats[keep], noise=precision, distance="crossnobis"
            )
            if not np.array_equal(np.asarray(order), np.arange(len(test_stim))):
                raise RuntimeError("crossvalidated_rdm: condition order differs from the test stimuli's")
            roi_rdms.append(vector)
        roi_rdms = np.asarray(roi_rdms)
    else:
        roi_rdms = compute_rdms([averaged[:, m] for m in masks.values()], s["distance"])
    spaces = [sp for sp in s["spaces"] if f"space:{sp}" in ctx.inputs]
    model_rdms = compute_rdms(
        [np.load(ctx.input(f"space:{sp}") / FEATURES_FILE)[test_stim].astype(np.float64) for sp in spaces],
        s["distance"],
    )
    for kind, names_, rdms in (("ROI", list(masks), roi_rdms), ("feature space", spaces, model_rdms)):
        for name, rdm in zip(names_, rdms, strict=True):
            if not np.isfinite(rdm).all():
                raise ConfigError(
                    f"rsa.distance: the {kind} {name!r} has {int((~np.isfinite(rdm)).sum())} undefined "
                    f"{s['distance']} distances on {s['subject']}'s test stimuli (constant patterns); use "
                    "'euclidean' or leave it out (rsa.rois / rsa.spaces)"
                )
    rows, pairwise = [], []
    for (roi, mask), data_rdm in zip(masks.items(), roi_rdms, strict=True):
        result = compare_models(
            data_rdm,
            model_rdms,
            method=s["comparator"],
            n_bootstrap=s["n_bootstraps"],
            n_permutations=s["n_permutations"],
            confidence=s["confidence"],
            seed=s["seed"],
        )
        if n_repeats >= 2:
            # the same number of repeats per stimulus (the first n_repeats showings), and the ceiling of RDMs of
            # the repeats' average (Spearman-Brown): the RDM compared is the repeat-averaged one
            first = repeats < n_repeats
            low, high = repeat_noise_ceiling(
                data[first][:, mask], conditions[first], partitions=repeats[first], distance=s["distance"],
                method=s["comparator"], spearman_brown=True,
            )  # fmt: skip
        else:
            low = high = np.nan
        rows += _rows(result, roi, spaces, low, high)
        for i, space in enumerate(spaces):
            for j in range(i + 1, len(spaces)):
                pairwise.append(
                    {
                        "roi": roi,
                        "space_a": space,
                        "space_b": spaces[j],
                        "p_value": float(result.pairwise_p[i, j]),
                        "p_fdr": float(result.pairwise_p_fdr[i, j]),
                    }
                )
    names = [f"roi:{r}" for r in masks] + [f"space:{sp}" for sp in spaces]
    everything = np.concatenate([roi_rdms, model_rdms])
    similarity = compare_rdms(everything, everything, method=s["comparator"])
    record = {
        "rois": list(masks),
        "spaces": spaces,
        "names": names,
        "rows": rows,
        "pairwise": pairwise,
        "similarity": np.asarray(similarity).tolist(),
        "n_stimuli": len(test_stim),
        "n_repeats": int(n_repeats),
        "test_stimuli": test_stim.tolist(),
    }
    (ctx.out / RECORD).write_text(json.dumps(record, indent=2))
    np.savez(
        ctx.out / RDMS_FILE,
        rdms=everything.astype(np.float32),
        names=np.array(names),
        labels=np.array([] if labels is None else labels),
    )


def _display(rdms: np.ndarray, labels: np.ndarray, n: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` stimuli (evenly spaced in label order, labels sorted), as RDM vectors."""
    order = np.argsort(labels, kind="stable") if len(labels) else np.arange(n)
    keep = order[np.linspace(0, n - 1, min(n, limit)).round().astype(int)] if n > limit else order
    out = np.array([rdm_vector(rdm_matrix(v)[np.ix_(keep, keep)]) for v in rdms])
    return out, (labels[keep] if len(labels) else np.array([]))


def write_tables(ctx: StageContext) -> None:
    s = ctx.settings
    rows, pairwise, similarity, subject_rdms, stimuli = [], [], [], {}, {}
    for subject in s["subjects"]:
        folder = ctx.input(rsa_id(subject))
        record = json.loads((folder / RECORD).read_text())
        common = {
            "subject": subject,
            "distance": s["distance"],
            "comparator": s["comparator"],
            "n_stimuli": record["n_stimuli"],
            "split": "test",
        }
        rows += [{**common, **r} for r in record["rows"]]
        pairwise += [{"subject": subject, **r} for r in record["pairwise"]]
        names = record["names"]
        similarity += [
            {"subject": subject, "a": a, "b": b, "similarity": record["similarity"][i][j]}
            for i, a in enumerate(names)
            for j, b in enumerate(names)
        ]
        stored = np.load(folder / RDMS_FILE)
        subject_rdms[subject] = (stored["rdms"].astype(np.float64), names, record)
        stimuli[subject] = tuple(record["test_stimuli"])
    first = s["subjects"][0]
    rdms, names, record = subject_rdms[first]
    shown, labels = _display(
        rdms, np.load(ctx.input(rsa_id(first)) / RDMS_FILE)["labels"], record["n_stimuli"], DISPLAY_STIMULI
    )
    np.savez(ctx.out / DISPLAY_FILE, rdms=shown, names=np.array(names), labels=labels, subject=first)
    if len(s["subjects"]) > 1 and len(set(stimuli.values())) == 1:
        rows += _group_rows(s, subject_rdms)
    write_table(pd.DataFrame(rows), ctx.out, RSA)
    write_table(
        pd.DataFrame(pairwise, columns=["subject", "roi", "space_a", "space_b", "p_value", "p_fdr"]),
        ctx.out,
        RSA_PAIRWISE,
    )
    write_table(pd.DataFrame(similarity), ctx.out, RSA_SIMILARITY)


def _group_rows(s: dict, subject_rdms: dict) -> list[dict]:
    """Subjects that saw the same test stimuli: bootstrap over subjects and stimuli, across-subject noise ceiling."""
    rdms0, _, record = next(iter(subject_rdms.values()))
    spaces = record["spaces"]
    model_rdms = rdms0[len(record["rois"]) :]
    rows = []
    for i, roi in enumerate(record["rois"]):
        data = np.array([r[i] for r, n, _ in subject_rdms.values() if n[i] == f"roi:{roi}"])
        if len(data) != len(subject_rdms):
            continue
        result = compare_models(
            data, model_rdms, method=s["comparator"], n_bootstrap=s["n_bootstraps"], bootstrap="both",
            n_permutations=s["n_permutations"], confidence=s["confidence"], seed=s["seed"],
        )  # fmt: skip
        low, high = noise_ceiling(data, method=s["comparator"])
        common = {"subject": GROUP, "distance": s["distance"], "comparator": s["comparator"],
                  "n_stimuli": record["n_stimuli"], "split": "test"}  # fmt: skip
        rows += [{**common, **row} for row in _rows(result, roi, spaces, low, high)]
    return rows


def section(results: Results) -> list[Block]:
    if not results.has_table(RSA):
        return []
    table = results.table(RSA)
    comparator, distance = table["comparator"].iloc[0], table["distance"].iloc[0]
    blocks: list[Block] = [
        f"<h2>Representational similarity</h2><p>RDMs ({distance} distance; upper triangle without the diagonal) "
        f"of each ROI and feature space on the <b>test</b> stimuli, compared by {comparator} correlation; "
        "intervals from bootstraps over stimuli, p-values from stimulus-label permutations, noise ceiling "
        "(lower-upper) from the repeats.</p>",
        table_html(
            table[
                [
                    "subject",
                    "roi",
                    "space",
                    "similarity",
                    "ci_low",
                    "ci_high",
                    "p_value",
                    "nc_low",
                    "nc_high",
                    "n_stimuli",
                ]
            ]
        ),
    ]
    display = np.load(results.layout.tables / DISPLAY_FILE)
    names = [str(n) for n in display["names"]]
    labels = display["labels"] if len(display["labels"]) else None
    blocks.append(
        FigureBlock(
            "rsa_rdms",
            f"RDMs of {display['subject']} (rank-transformed for display; at most {DISPLAY_STIMULI} test stimuli"
            + (", ordered by category)" if labels is not None else ")"),
            figure_rdms(dict(zip(names, display["rdms"], strict=True)), labels=labels),
        )
    )
    pairwise = results.table(RSA_PAIRWISE)
    for (subject, roi), part in table.groupby(["subject", "roi"], sort=False):
        spaces = list(part["space"])
        pairs = pairwise[(pairwise["subject"] == subject) & (pairwise["roi"] == roi)]
        matrix = np.full((len(spaces), len(spaces)), np.nan)
        for _, pair in pairs.iterrows():
            a, b = spaces.index(pair["space_a"]), spaces.index(pair["space_b"])
            matrix[a, b] = matrix[b, a] = pair["p_fdr"]
        blocks.append(
            FigureBlock(
                f"rsa_models_{subject}_{roi}",
                f"{subject}, {roi}: similarity of each feature space's RDM to the ROI's ({comparator}), with "
                "bootstrap intervals; grey band: noise ceiling; * permutation p < 0.05; lines join spaces that "
                "differ (FDR-corrected p < 0.05).",
                figure_model_comparison(
                    part.rename(columns={"space": "model"}),
                    noise_ceiling=(part["nc_low"].iloc[0], part["nc_high"].iloc[0]),
                    pairwise=matrix if len(pairs) else None,
                    method=comparator,
                ),
            )
        )
    similarity = results.table(RSA_SIMILARITY)
    first = similarity[similarity["subject"] == similarity["subject"].iloc[0]]
    square = first.pivot(index="a", columns="b", values="similarity")
    order = list(dict.fromkeys(first["a"]))
    blocks.append(
        FigureBlock(
            "rsa_mds",
            f"Multidimensional scaling of {first['subject'].iloc[0]}'s ROI and feature-space RDMs "
            f"(distance: 1 - {comparator} similarity of the full RDMs).",
            figure_mds(similarity=square.loc[order, order], method=comparator),
        )
    )
    return blocks


RSA_ANALYSIS = Analysis("rsa", plan, write_tables, section)
