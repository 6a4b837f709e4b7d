"""Encoding models: voxelwise ridge with per-target (and per-band) regularisation."""

from scene2brain.encoding.backend import Backend
from scene2brain.encoding.banded import BandedRidgeCV, BandedRidgeResult, banded_ridge_cv, sample_band_weights
from scene2brain.encoding.ridge import RidgeCV, RidgeResult, default_alphas, ridge_cv

__all__ = [
    "Backend",
    "BandedRidgeCV",
    "BandedRidgeResult",
    "RidgeCV",
    "RidgeResult",
    "banded_ridge_cv",
    "default_alphas",
    "ridge_cv",
    "sample_band_weights",
]
