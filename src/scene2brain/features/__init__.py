"""Image -> feature matrices: EfficientNet-Lite0 layers, Gabor pyramid, reduction, cache."""

from scene2brain.features.cache import FeatureCache
from scene2brain.features.deep import extract_efficientnet_features, preprocess_images
from scene2brain.features.efficientnet_lite import LAYER_NAMES, EfficientNetLite0, load_efficientnet_lite0
from scene2brain.features.gabor import GaborPyramid, to_grayscale
from scene2brain.features.reduction import pca_reduce

__all__ = [
    "LAYER_NAMES",
    "EfficientNetLite0",
    "FeatureCache",
    "GaborPyramid",
    "extract_efficientnet_features",
    "load_efficientnet_lite0",
    "pca_reduce",
    "preprocess_images",
    "to_grayscale",
]
