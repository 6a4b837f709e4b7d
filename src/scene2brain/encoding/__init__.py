"""Encoding models: voxelwise ridge with per-target regularisation."""

from scene2brain.encoding.ridge import RidgeCV, default_alphas, ridge_cv

__all__ = ["RidgeCV", "default_alphas", "ridge_cv"]
