"""Scores per voxel and noise ceilings (arrays in, arrays out)."""

from scene2brain.evaluation.metrics import pearson_r, r2_score, r2_score_split
from scene2brain.evaluation.noise_ceiling import (
    ncsnr_from_repeats,
    noise_ceiling_from_ncsnr,
    noise_normalised_accuracy,
)

__all__ = [
    "ncsnr_from_repeats",
    "noise_ceiling_from_ncsnr",
    "noise_normalised_accuracy",
    "pearson_r",
    "r2_score",
    "r2_score_split",
]
