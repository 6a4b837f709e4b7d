"""Bad input to the sparse autoencoder (``scene2brain.representation.sae``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bad_input_cases import Case
from scene2brain.representation.sae import SparseAutoencoder


def _X(n: int = 40, voxels: int = 12) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, voxels))


def _sae(**kw: object) -> SparseAutoencoder:
    return SparseAutoencoder(**{"n_latents": 4, "max_epochs": 1, "device": "cpu", **kw})


def _nan_in_X(folder: Path) -> None:
    X = _X()
    X[5, 2] = np.inf
    _sae().fit(X)


def _wrong_voxels_at_transform(folder: Path) -> None:
    _sae().fit(_X()).transform(_X(voxels=11))


def _training_ids_analysed(folder: Path) -> None:
    ids = np.array([f"shared{i:04d}" for i in range(40)])
    _sae().fit(_X(), stimulus_ids=ids).transform(_X(5), stimulus_ids=ids[:5])


def _k_above_n_latents(folder: Path) -> None:
    _sae(sparsity="topk", k=9).fit(_X())


def _unknown_architecture(folder: Path) -> None:
    _sae(architecture="transformer").fit(_X())


def _too_few_rows_for_validation(folder: Path) -> None:
    _sae(validation_fraction=0.5).fit(_X(n=3))


CASES: list[Case] = [
    Case("estimators/sae-nonfinite-X", _nan_in_X, ValueError, "X: expected finite values, found 1 NaN/inf"),
    Case("estimators/sae-transform-voxels", _wrong_voxels_at_transform, ValueError, "expected 12 columns (as in fit)"),
    Case("estimators/sae-training-ids", _training_ids_analysed, ValueError, "5 of the analysed stimuli were training"),
    Case("estimators/sae-k-above-latents", _k_above_n_latents, ValueError, "k: expected at most n_latents (4)"),
    Case("estimators/sae-architecture", _unknown_architecture, ValueError, "architecture: unknown 'transformer'"),
    Case("estimators/sae-validation-rows", _too_few_rows_for_validation, ValueError, "3 training rows are too few"),
]
