"""Layer features of a deep network for a batch of images (EfficientNet-Lite0 here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from scene2brain.features.efficientnet_lite import (
    INPUT_SIZE,
    LAYER_NAMES,
    PIXEL_MEAN,
    PIXEL_STD,
    load_efficientnet_lite0,
)
from scene2brain.utils.progress import track

Pooling = Literal["avg", "max", "flatten"]


def preprocess_images(images: np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 images (n, H, W[, 3]) -> float tensor (n, 3, size, size) normalised for EfficientNet-Lite.

    Grayscale images are repeated over the three colour channels; resizing is bilinear
    with anti-aliasing.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
    if x.ndim == 3:
        x = x[..., None].expand(*x.shape, 3)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images: expected shape (n, H, W) or (n, H, W, 3), got {tuple(images.shape)}")
    x = x.permute(0, 3, 1, 2)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x - PIXEL_MEAN) / PIXEL_STD


def _pool(h: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    if h.ndim == 2:
        return h
    if pooling == "avg":
        return h.mean(dim=(2, 3))
    if pooling == "max":
        return h.amax(dim=(2, 3))
    if pooling == "flatten":
        return h.flatten(1)
    raise ValueError(f"pooling: expected 'avg', 'max' or 'flatten', got {pooling!r}")


def extract_efficientnet_features(
    images: np.ndarray,
    layers: Sequence[str],
    pooling: Pooling = "avg",
    batch_size: int = 32,
    weights: str | None = "imagenet",
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Features of several EfficientNet-Lite0 layers from one forward pass per batch.

    Parameters
    ----------
    images : ndarray of shape (n, H, W[, 3]), uint8
    layers : sequence of str
        Layer names from :data:`scene2brain.features.efficientnet_lite.LAYER_NAMES`.
    pooling : {"avg", "max", "flatten"}
        Spatial pooling of convolutional maps.
    batch_size : int
    weights : "imagenet", path or None
        See :func:`~scene2brain.features.efficientnet_lite.load_efficientnet_lite0`.
    device : str
        Torch device ("cpu", "cuda").
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of str to ndarray of shape (n, n_features), float32
    """
    unknown = [name for name in layers if name not in LAYER_NAMES]
    if unknown:
        raise ValueError(f"layers: unknown EfficientNet-Lite0 layers {unknown}; available: {list(LAYER_NAMES)}")
    model = load_efficientnet_lite0(weights).to(device)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    starts = range(0, len(images), batch_size)
    with torch.inference_mode():
        for start in track(starts, "EfficientNet-Lite0 features", total=len(starts), show=progress):
            x = preprocess_images(np.asarray(images[start : start + batch_size])).to(device)
            outputs = model.forward_features(x)
            for name in layers:
                chunks[name].append(_pool(outputs[name], pooling).float().cpu().numpy())
    return {name: np.concatenate(parts) if parts else np.empty((0, 0), np.float32) for name, parts in chunks.items()}
