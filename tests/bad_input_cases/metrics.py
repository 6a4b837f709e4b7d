"""Bad arrays for the numerical API: shapes that would broadcast or lengths that do not match.

Each case must raise a ``ValueError`` that names the arguments and their shapes (never numpy's
broadcast message, never a silently broadcast result).
"""

from __future__ import annotations

import numpy as np

from bad_input_cases import Case
from scene2brain.decoding.metrics import batch_scores, decoding_metrics
from scene2brain.evaluation import noise_normalised_accuracy, pearson_r
from scene2brain.evaluation.identification import identify
from scene2brain.evaluation.inference import compare_predictions
from scene2brain.evaluation.noise_ceiling import ncsnr_from_repeats, scores_with_ceiling, spearman_brown
from scene2brain.evaluation.partitioning import variance_partitioning
from scene2brain.evaluation.summary import summarise_scores

_RNG = np.random.default_rng(0)
_Y = _RNG.standard_normal((10, 4))

CASES = [
    Case(
        "metrics/nnacc-ceiling-that-broadcasts",
        lambda f: noise_normalised_accuracy(np.full(5, 0.5), np.full((5, 1), 0.5)),
        ValueError,
        "got r of shape (5,) and noise_ceiling of shape (5, 1)",
    ),
    Case(
        "metrics/scores-with-ceiling-of-other-length",
        lambda f: scores_with_ceiling(np.full(5, 0.5), np.full(6, 0.5)),
        ValueError,
        "r of shape (5,) and noise_ceiling of shape (6,)",
    ),
    Case(
        "metrics/pearson-of-other-length",
        lambda f: pearson_r(_Y, _Y[:9]),
        ValueError,
        "y_true of shape (10, 4) and y_pred of shape (9, 4)",
    ),
    Case(
        "metrics/pearson-column-against-matrix",
        lambda f: pearson_r(_Y[:, 0], _Y[:, :1]),
        ValueError,
        "y_true of shape (10,) and y_pred of shape (10, 1)",
    ),
    Case(
        "metrics/compare-second-prediction",
        lambda f: compare_predictions(_Y, _Y, _Y[:, :3], n_resamples=5),
        ValueError,
        "y_true of shape (10, 4) and pred_b of shape (10, 3)",
    ),
    Case(
        "metrics/ncsnr-trial-stimulus-length",
        lambda f: ncsnr_from_repeats(_Y, np.repeat(np.arange(4), 2)),
        ValueError,
        "responses of shape (10, 4) and trial_stimulus of shape (8,)",
    ),
    Case(
        "metrics/spearman-brown-factor-that-broadcasts",
        lambda f: spearman_brown(np.full(4, 0.3), np.full((4, 1), 2.0)),
        ValueError,
        "reliability of shape (4,) and factor of shape (4, 1)",
    ),
    Case(
        "metrics/partitioning-entries-of-other-shapes",
        lambda f: variance_partitioning({"A": np.zeros(4), "B": np.zeros((4, 1)), "A+B": np.zeros(4)}),
        ValueError,
        "r2['A'] of shape (4,) and r2['B'] of shape (4, 1)",
    ),
    Case(
        "metrics/decoding-scores-of-other-length",
        lambda f: decoding_metrics(["a", "b", "a"], ["a", "a", "b"], scores=np.zeros(4)),
        ValueError,
        "y_true of shape (3,) and scores of shape (4,)",
    ),
    Case(
        "metrics/batch-scores-truth-of-other-length",
        lambda f: batch_scores("balanced_accuracy", np.zeros(6, int), np.zeros((2, 5), int), 2),
        ValueError,
        "codes_true of shape (6,) and codes_pred[0] of shape (5,)",
    ),
    Case(
        "metrics/identify-voxel-counts-differ",
        lambda f: identify(_Y[:3], _Y[:3, :3]),
        ValueError,
        "measured (3, 4) and predicted (3, 3)",
    ),
    Case(
        "metrics/identify-true-index-length",
        lambda f: identify(_Y[:3], _Y[:5], true_index=np.arange(2)),
        ValueError,
        "true_index: expected 3 integer candidate indices",
    ),
    Case(
        "metrics/summary-labels-of-other-length",
        lambda f: summarise_scores(np.ones(3), subject=["s1", "s2"]),
        ValueError,
        "subject: expected one label per score (3,), got shape (2,)",
    ),
]
