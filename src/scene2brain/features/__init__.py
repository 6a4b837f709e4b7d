"""Image -> feature matrices: model registry, layer extraction, Gabor pyramid, retina warp, reduction, store."""

from scene2brain.features.extraction import extract_features, feature_key
from scene2brain.features.gabor import GaborPyramid, to_grayscale
from scene2brain.features.layers import POOLINGS, list_layers, pool
from scene2brain.features.models import (
    FeatureModel,
    WeightsUnavailableError,
    available_models,
    load_model,
    register_model,
)
from scene2brain.features.preprocessing import (
    BoxBlur,
    GaussianBlur,
    Preprocessing,
    box_equivalent_sigma,
    to_unit_range,
)
from scene2brain.features.reduction import Reduction, reduce_features
from scene2brain.features.retina import RetinaWarp
from scene2brain.features.store import FeatureStore

__all__ = [
    "POOLINGS",
    "BoxBlur",
    "FeatureModel",
    "FeatureStore",
    "GaborPyramid",
    "GaussianBlur",
    "Preprocessing",
    "Reduction",
    "RetinaWarp",
    "WeightsUnavailableError",
    "available_models",
    "box_equivalent_sigma",
    "extract_features",
    "feature_key",
    "list_layers",
    "load_model",
    "pool",
    "reduce_features",
    "register_model",
    "to_grayscale",
    "to_unit_range",
]
