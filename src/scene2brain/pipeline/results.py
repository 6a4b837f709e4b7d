"""The results tables of a run: per voxel, per ROI x layer x model, identification, checks.

Every table is written as parquet and as CSV. The primary score is the noise-normalised
accuracy (percent of the noise ceiling) where a noise ceiling exists, else Pearson r.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scene2brain.data.storage import load_experiment
from scene2brain.evaluation.inference import bootstrap_ci
from scene2brain.evaluation.metrics import pearson_r
from scene2brain.evaluation.noise_ceiling import noise_normalised_accuracy
from scene2brain.pipeline.config import ConfigError, RunConfig
from scene2brain.pipeline.simulated import ground_truth_checks

ALL = "all"


def write_table(frame: pd.DataFrame, folder: Path, name: str) -> None:
    """``<name>.parquet`` and ``<name>.csv`` in ``folder``."""
    frame.to_parquet(folder / f"{name}.parquet", index=False)
    frame.to_csv(folder / f"{name}.csv", index=False)


def _roi_masks(voxels: pd.DataFrame, column: str, subject: str) -> dict[str, np.ndarray]:
    if column not in voxels:
        raise ConfigError(
            f"dataset.roi_column: {column!r} is not a column of {subject}'s voxel table; "
            f"columns: {list(voxels.columns)}"
        )
    labels = voxels[column]
    masks = {str(name): (labels == name).to_numpy() for name in labels.dropna().unique()}
    masks[ALL] = np.ones(len(voxels), dtype=bool)
    return masks


def _roi_rows(
    y_test: np.ndarray,
    predictions: np.ndarray,
    ceiling: np.ndarray,
    masks: dict[str, np.ndarray],
    values: dict[str, np.ndarray],
    config: RunConfig,
) -> list[dict[str, Any]]:
    """Median scores per ROI with bootstrap CIs over the test stimuli."""
    has_ceiling = not np.isnan(ceiling).all()

    def score(y: np.ndarray, p: np.ndarray) -> np.ndarray:
        r = pearson_r(y, p)
        return noise_normalised_accuracy(r, ceiling) if has_ceiling else r

    def per_roi(v: np.ndarray) -> np.ndarray:
        return np.array([np.nanmedian(v[m]) if m.any() else np.nan for m in masks.values()])

    n_boot = config.evaluation.n_bootstraps
    if n_boot:
        boot = bootstrap_ci(y_test, predictions, score, per_roi, n_boot, config.evaluation.confidence, config.run.seed)
        low, high = boot.low, boot.high
    else:
        low = high = np.full(len(masks), np.nan)
    primary = values["nnacc"] if has_ceiling else values["r"]
    rows = []
    for i, (roi, mask) in enumerate(masks.items()):
        rows.append(
            {
                "roi": roi,
                "n_voxels": int(mask.sum()),
                "score": "nnacc" if has_ceiling else "r",
                "median": float(np.nanmedian(primary[mask])) if mask.any() else np.nan,
                "ci_low": float(low[i]),
                "ci_high": float(high[i]),
                "median_r": float(np.nanmedian(values["r"][mask])) if mask.any() else np.nan,
                "median_noise_ceiling": float(np.nanmedian(ceiling[mask])) if has_ceiling and mask.any() else np.nan,
                "median_log10_alpha": float(np.nanmedian(np.log10(values["alpha"][mask])))
                if mask.any() and not np.isnan(values["alpha"]).all()
                else np.nan,
            }
        )
    return rows


def write_summary(out: Path, config: RunConfig, layout: dict[str, dict[str, Path]]) -> None:
    """Write the tables of a run into ``out`` from its stage folders (see :func:`plan_stages`)."""
    roi_rows, ident_rows, facts = [], [], {"subjects": {}}
    checks: dict[str, Any] = {}
    for subject in (name for name in layout if "|" not in name):
        folders = layout[subject]
        experiment = load_experiment(folders["experiment"] / "experiment")
        voxels = experiment.voxels.copy()
        masks = _roi_masks(voxels, config.dataset.roi_column, subject)
        y_test = np.load(folders["responses"] / "test.npy")
        ceiling = np.load(folders["noise_ceiling"] / "noise_ceiling.npy")
        voxels["noise_ceiling"] = ceiling
        has_ceiling = not np.isnan(ceiling).all()
        trials = experiment.trials_in_split(config.splits.test)
        facts["subjects"][subject] = {
            "n_stimuli": len(experiment.stimuli),
            "n_train": len(experiment.split_index(config.splits.train)),
            "n_test": len(experiment.split_index(config.splits.test)),
            "n_test_trials": len(trials),
            "n_voxels": experiment.responses.n_voxels,
        }
        for spec in config.features:
            for depth, layer in enumerate(spec.layer_names()):
                space = spec.space(layer)
                stage = layout[f"{subject}|{space}"]
                values = {k: np.load(stage["scores"] / f"{k}.npy") for k in ("r", "r2", "nnacc")}
                values["alpha"] = np.load(stage["encode"] / "alphas.npy")
                for key, array in values.items():
                    voxels[f"{key}[{space}]"] = array
                predictions = np.load(stage["encode"] / "predictions.npy")
                base = {"subject": subject, "model": spec.name, "layer": layer, "depth": depth, "space": space}
                roi_rows += [{**base, **row} for row in _roi_rows(y_test, predictions, ceiling, masks, values, config)]
                if "identification" in stage:
                    record = json.loads((stage["identification"] / "identification.json").read_text())
                    for kind, sizes, accuracy in (
                        ("exact", record["set_sizes"], record["curve"]),
                        ("extrapolated", record["extrapolated_set_sizes"], record["extrapolated"]),
                    ):
                        ident_rows += [
                            {**base, "kind": kind, "set_size": n, "accuracy": a, "chance": 1 / n,
                             "n_voxels": record["n_voxels"], "n_candidates": record["n_candidates"]}
                            for n, a in zip(sizes, accuracy, strict=True)
                        ]  # fmt: skip
        key = "nnacc" if has_ceiling else "r"
        spaces = config.spaces()
        scores = voxels[[f"{key}[{s}]" for s in spaces]].to_numpy()
        best = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1)
        voxels["best_space"] = np.asarray(spaces)[best]
        voxels["best_score"] = scores[np.arange(len(voxels)), best]
        voxels["best_log10_alpha"] = np.log10(
            voxels[[f"alpha[{s}]" for s in spaces]].to_numpy()[np.arange(len(voxels)), best]
        )
        for spec in config.features:
            own = voxels[[f"{key}[{spec.space(layer)}]" for layer in spec.layer_names()]].to_numpy()
            voxels[f"best_depth[{spec.name}]"] = np.argmax(np.nan_to_num(own, nan=-np.inf), axis=1)
        voxels.insert(0, "subject", subject)
        write_table(voxels, out, f"voxels_{subject}")
        if config.dataset.name == "simulated":
            checks[subject] = ground_truth_checks(voxels, config.features, config.dataset.simulation)
        facts["subjects"][subject]["score"] = key
    roi = pd.DataFrame(roi_rows)
    write_table(roi, out, "roi_summary")
    scored = roi.dropna(subset=["median"])
    best = scored.loc[scored.groupby(["subject", "model", "roi"], sort=False)["median"].idxmax().to_numpy()]
    write_table(best.reset_index(drop=True), out, "model_summary")
    if ident_rows:
        write_table(pd.DataFrame(ident_rows), out, "identification")
    if checks:
        (out / "checks.json").write_text(json.dumps(checks, indent=2))
    (out / "facts.json").write_text(json.dumps(facts, indent=2))
