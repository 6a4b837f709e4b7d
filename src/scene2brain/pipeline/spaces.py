"""Feature spaces of a run: raw layer features through the feature store, then reduced."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from scene2brain.features.extraction import extract_to_store
from scene2brain.features.gabor import GaborPyramid, to_grayscale
from scene2brain.features.images import as_image_source, images_digest, load_batch
from scene2brain.features.reduction import Reduction, reduce_features
from scene2brain.features.store import FeatureStore
from scene2brain.pipeline.config import GABOR, FeatureSection
from scene2brain.utils.arrays import standardise_columns


def gabor_pyramid(image_size: int) -> GaborPyramid:
    """Kay et al.'s octaves (1 cycle/FOV up to ``image_size / 4``), 8 orientations, no aperture."""
    return GaborPyramid.kay2008(image_size, aperture=False)


def gabor_energy(images: Any, image_size: int, store: FeatureStore) -> np.ndarray:
    """Kay et al. (2008) Gabor contrast energies of ``images`` at ``image_size`` px, through the store."""
    source = as_image_source(images)
    pyramid = gabor_pyramid(image_size)
    key = {"space": GABOR, "pyramid": asdict(pyramid), "grayscale": "PIL-L+lanczos", "stimuli": images_digest(source)}

    def compute() -> np.ndarray:
        blocks = [
            to_grayscale(load_batch(source, start, min(start + 256, len(source))), image_size)
            for start in range(0, len(source), 256)
        ]
        return pyramid.transform(np.concatenate(blocks))

    features, _ = store.get_or_compute(GABOR, key, compute)
    return features


def raw_features(
    images: Any,
    spec: FeatureSection,
    layers: Sequence[str],
    store: FeatureStore,
    progress: bool = False,
    prefetch: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Unreduced features of ``layers`` of one configured model, through the store.

    Missing layers, and the missing ``prefetch`` layers that later calls will ask for,
    are computed together in one pass over the images.
    """
    if spec.model == GABOR:
        return {"energy": gabor_energy(images, spec.image_size, store)}
    entries, _ = extract_to_store(
        images,
        spec.model,
        list(dict.fromkeys([*layers, *prefetch])),
        spec.pooling,
        store,
        weights=spec.weights,
        batch_size=spec.batch_size,
        device=spec.device,
        progress=progress,
    )
    return {layer: entries[layer].read() for layer in layers}


def reduced_space(raw: np.ndarray, train: np.ndarray, spec: FeatureSection, seed: int) -> np.ndarray:
    """Reduce (fitted on the ``train`` rows), then z-score columns with training statistics; float32."""
    r = spec.reduction
    n_components = None if r.method == "standardise" else r.n_components
    reduction = Reduction(r.method, n_components, standardise=r.standardise, solver=r.solver, seed=seed)
    reduced, _ = reduce_features(raw, train, reduction)
    return standardise_columns(reduced, train).astype(np.float32)
