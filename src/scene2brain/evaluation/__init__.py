"""Scores per voxel, noise ceilings, inference, image identification and variance partitioning.

Arrays in, arrays (or small tables) out; nothing here reads files or knows datasets.
"""

from scene2brain.evaluation.identification import (
    IdentificationResult,
    extrapolate_identification,
    identification_curve,
    identify,
    pattern_correlations,
    select_voxels,
    set_size_at_accuracy,
)
from scene2brain.evaluation.inference import (
    BootstrapResult,
    ComparisonResult,
    PermutationResult,
    bootstrap_ci,
    compare_predictions,
    permutation_test_correlation,
    sign_flip_test,
)
from scene2brain.evaluation.metrics import explained_variance, pearson_r, r2_score, r2_score_split
from scene2brain.evaluation.noise_ceiling import (
    explainable_variance,
    ncsnr_from_repeats,
    noise_ceiling_from_ncsnr,
    noise_normalised_accuracy,
    primary_score,
    repeats_array,
    spearman_brown,
    split_half_reliability,
)
from scene2brain.evaluation.partitioning import VariancePartition, variance_partitioning
from scene2brain.evaluation.summary import summarise_scores

__all__ = [
    "BootstrapResult",
    "ComparisonResult",
    "IdentificationResult",
    "PermutationResult",
    "VariancePartition",
    "bootstrap_ci",
    "compare_predictions",
    "explainable_variance",
    "explained_variance",
    "extrapolate_identification",
    "identification_curve",
    "identify",
    "ncsnr_from_repeats",
    "noise_ceiling_from_ncsnr",
    "noise_normalised_accuracy",
    "pattern_correlations",
    "pearson_r",
    "permutation_test_correlation",
    "primary_score",
    "r2_score",
    "r2_score_split",
    "repeats_array",
    "select_voxels",
    "set_size_at_accuracy",
    "sign_flip_test",
    "spearman_brown",
    "split_half_reliability",
    "summarise_scores",
    "variance_partitioning",
]
