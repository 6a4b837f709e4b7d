"""Ablations of the bottleneck network with seeds and bootstrap intervals, so that "+0.73 points" becomes an interval.

F-BNet reported each design choice (the leak, pretraining, the racing loss) from one run
each. :func:`run_ablation` varies one factor at a time from a base configuration, fits
every cell with several seeds, and scores the cell's seed-averaged test prediction with a
percentile bootstrap interval over test stimuli, plus the paired bootstrap difference from
the base cell (the same resampled stimuli for both).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scene2brain.encoding.bottleneck import BottleneckNetwork, pretrain_trunk
from scene2brain.evaluation.inference import CorrelationScore, bootstrap_ci, compare_predictions
from scene2brain.evaluation.metrics import pearson_r
from scene2brain.evaluation.noise_ceiling import noise_normalised_accuracy

#: The factor that switches cross-subject pretraining on (True) or off (False).
PRETRAIN = "pretrain"
#: Key of the ablated subject among the pretraining subjects.
TARGET = "__target__"


def _factor_names() -> list[str]:
    names = BottleneckNetwork._get_param_names()
    return [n for n in names if n not in ("pretrained", "random_state")] + [PRETRAIN]


def _cells(base: dict[str, Any], factors: Mapping[str, Sequence[Any]]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(factor, value, parameters) for the base cell and each factor value that differs from the base's."""
    defaults = {**BottleneckNetwork().get_params(), PRETRAIN: False}
    cells = [("base", None, dict(base))]
    for name, values in factors.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"factors: expected a non-empty list of values for {name!r}, got {values!r}")
        for value in values:
            if value == base.get(name, defaults[name]):
                continue  # the base cell
            cells.append((name, value, {**base, name: value}))
    return cells


def _score_function(noise_ceiling: np.ndarray | None, n_voxels: int) -> Any:
    if noise_ceiling is None:
        return pearson_r
    ceiling = np.asarray(noise_ceiling, dtype=np.float64)
    if ceiling.shape != (n_voxels,):
        raise ValueError(f"noise_ceiling: expected shape ({n_voxels},) (one per voxel), got {ceiling.shape}")
    return CorrelationScore(lambda r: noise_normalised_accuracy(r, ceiling))


def run_ablation(
    X_train: np.ndarray,
    Y_train: np.ndarray,
    X_test: np.ndarray,
    Y_test: np.ndarray,
    base: Mapping[str, Any],
    factors: Mapping[str, Sequence[Any]],
    seeds: Sequence[int] = (0, 1, 2),
    noise_ceiling: np.ndarray | None = None,
    n_bootstraps: int = 1000,
    confidence: float = 0.95,
    pretrain: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    groups: np.ndarray | None = None,
    random_state: int = 0,
) -> pd.DataFrame:
    """Fit the base configuration and each one-factor change with several seeds; score on test with intervals.

    Parameters
    ----------
    X_train, Y_train : ndarray
        The subject's training features (n, p) and responses (n, v).
    X_test, Y_test : ndarray
        Its test features and responses (scored, never fitted).
    base : mapping
        :class:`~scene2brain.encoding.bottleneck.BottleneckNetwork` parameters of the base
        cell (not ``random_state``, which ``seeds`` give, nor ``pretrained``), and optionally
        ``"pretrain": True`` to pretrain the base cell too.
    factors : mapping of str to list
        Values to try per factor, one factor at a time from ``base``; a value equal to the
        base's is the base cell and gets no row of its own. Factors are network parameters
        (``leak``, ``loss``, ``n_input_components``, ``n_output_components``, ``width``, ...)
        or ``"pretrain"`` (True/False).
    seeds : sequence of int
        One fit per seed and cell (the seed also seeds the pretraining).
    noise_ceiling : ndarray of shape (v,), optional
        Score by noise-normalised accuracy (percent) rather than Pearson r.
    n_bootstraps : int
    confidence : float
    pretrain : mapping of str to (X, Y), optional
        Other subjects' *training* rows (the same feature space), needed by a pretrained
        cell: the trunk is pretrained on them plus this subject's training rows, then
        fine-tuned on this subject.
    groups : ndarray of shape (v,), optional
        Voxel groups of the response PCA (e.g. hemispheres).
    random_state : int
        Seeds the bootstrap (the same resamples for every cell).

    Returns
    -------
    DataFrame
        One row per cell: ``factor`` ("base" for the base cell), ``value``, ``n_seeds``,
        ``score`` (median over voxels of the seed-averaged prediction's score), ``ci_low``,
        ``ci_high`` (its bootstrap interval over test stimuli), ``diff_vs_base``,
        ``diff_low``, ``diff_high``, ``diff_p`` (paired bootstrap of the difference from the
        base cell; NaN for the base), ``seed_scores`` (each seed's median score), ``seed_mean``,
        ``seed_sd``, ``fit_seconds`` (mean per seed, pretraining included) and ``epochs`` (mean).
    """
    base = dict(base)
    allowed = _factor_names()
    for label, names in (("base", base), ("factors", factors)):
        unknown = sorted(set(names) - set(allowed))
        if unknown:
            raise ValueError(f"{label}: {unknown} are not ablation factors; expected some of {allowed}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    Y_test = np.asarray(Y_test, dtype=np.float64)
    score = _score_function(noise_ceiling, Y_test.shape[1] if Y_test.ndim == 2 else -1)
    cells = _cells(base, factors)
    if any(params.get(PRETRAIN, False) for _, _, params in cells) and not pretrain:
        raise ValueError("pretrain: a cell pretrains (factor 'pretrain' True) but no pretraining subjects were given")
    for _, _, params in cells:  # refuse a bad value before hours of fitting
        BottleneckNetwork(**{k: v for k, v in params.items() if k != PRETRAIN}).check_params()

    rows, base_prediction = [], None
    for factor, value, params in cells:
        params = dict(params)
        pretrained = bool(params.pop(PRETRAIN, False))
        predictions, seed_scores, seconds, epochs = [], [], [], []
        for seed in seeds:
            start = time.perf_counter()
            trunk = None
            if pretrained:
                subjects = {**dict(pretrain or {}), TARGET: (X_train, Y_train)}
                trunk = pretrain_trunk(
                    subjects, groups=None if groups is None else {TARGET: groups}, **params, random_state=seed
                )
            model = BottleneckNetwork(**params, random_state=seed, pretrained=trunk)
            model.fit(X_train, Y_train, groups=groups)
            seconds.append(time.perf_counter() - start)
            epochs.append(model.n_epochs_)
            predicted = model.predict(X_test)
            predictions.append(predicted)
            seed_scores.append(float(np.nanmedian(score(Y_test, predicted))))
        averaged = np.mean(predictions, axis=0)
        interval = bootstrap_ci(Y_test, averaged, score, np.nanmedian, n_bootstraps, confidence, random_state)
        row = {
            "factor": factor,
            "value": value,
            "n_seeds": len(seeds),
            "score": float(interval.estimate),
            "ci_low": float(interval.low),
            "ci_high": float(interval.high),
            "diff_vs_base": np.nan,
            "diff_low": np.nan,
            "diff_high": np.nan,
            "diff_p": np.nan,
            "seed_scores": seed_scores,
            "seed_mean": float(np.mean(seed_scores)),
            "seed_sd": float(np.std(seed_scores, ddof=1)) if len(seeds) > 1 else np.nan,
            "fit_seconds": float(np.mean(seconds)),
            "epochs": float(np.mean(epochs)),
        }
        if base_prediction is None:
            base_prediction = averaged
        else:
            diff = compare_predictions(
                Y_test,
                averaged,
                base_prediction,
                score,
                np.nanmedian,
                n_resamples=n_bootstraps,
                confidence=confidence,
                random_state=random_state,
            )
            row.update(
                diff_vs_base=float(diff.difference),
                diff_low=float(diff.low),
                diff_high=float(diff.high),
                diff_p=float(diff.p_value),
            )
        rows.append(row)
    return pd.DataFrame(rows)
