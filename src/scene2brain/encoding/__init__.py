"""Encoding models: voxelwise ridge with per-target (and per-band) regularisation, and the regressors to compare."""

from scene2brain.encoding.backend import Backend
from scene2brain.encoding.banded import BandedRidgeCV, BandedRidgeResult, banded_ridge_cv, sample_band_weights
from scene2brain.encoding.kernel import KernelRidgeCV
from scene2brain.encoding.regressors import MultiTaskElasticNetGram
from scene2brain.encoding.ridge import RidgeCV, RidgeResult, default_alphas, ridge_cv
from scene2brain.encoding.sparse import VoxelwiseElasticNetCV, VoxelwiseLassoCV

__all__ = [
    "Backend",
    "BandedRidgeCV",
    "BandedRidgeResult",
    "KernelRidgeCV",
    "MultiTaskElasticNetGram",
    "RidgeCV",
    "RidgeResult",
    "VoxelwiseElasticNetCV",
    "VoxelwiseLassoCV",
    "banded_ridge_cv",
    "default_alphas",
    "ridge_cv",
    "sample_band_weights",
]
