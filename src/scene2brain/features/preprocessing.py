"""Images -> model input tensors: image-space steps, resize, centre crop, normalisation.

A :class:`Preprocessing` is a frozen description (it goes into cache keys). Steps such
as a blur run on the [0, 1] float image before it is resized for the network, so they
see the stimulus at its own resolution. A step that sets the image size itself (one
with an ``output_size``, such as the retina warp) produces the network input: nothing
is resized or cropped after it, so its field of view reaches the network intact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch.nn import functional as F

Interpolation = Literal["bilinear", "bicubic"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageStep(Protocol):
    """An image-space transform: (n, 3, H, W) float tensor in [0, 1] -> (n, 3, H', W')."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


def step_key(step: Any) -> dict[str, Any]:
    """What identifies a step in a cache key: its class and its dataclass fields."""
    return {"step": type(step).__name__, **asdict(step)}


def step_output_size(step: Any) -> int | None:
    """Side of the square image a step produces whatever its input (``output_size``), or None."""
    size = getattr(step, "output_size", None)
    return None if size is None else int(size)


@dataclass(frozen=True)
class GaussianBlur:
    """Gaussian blur at a fixed ``sigma`` (pixels of the stimulus), mirror-padded.

    The kernel is truncated at ``int(4 * sigma + 0.5)`` pixels, as
    :func:`scipy.ndimage.gaussian_filter` does with its defaults and ``mode="mirror"``.
    """

    sigma: float

    def __post_init__(self) -> None:
        if not self.sigma >= 0:
            raise ValueError(f"sigma: expected a non-negative number of pixels, got {self.sigma}")

    def kernel(self) -> np.ndarray:
        """The normalised 1-D kernel (float64), applied along rows and then columns."""
        radius = int(4 * self.sigma + 0.5)
        kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / self.sigma) ** 2)
        return kernel / kernel.sum()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.sigma == 0:
            return x
        return _separable_filter(x, torch.as_tensor(self.kernel(), dtype=x.dtype, device=x.device))


@dataclass(frozen=True)
class BoxBlur:
    """Box (mean) filter of odd size ``kernel_size``, mirror-padded.

    The blur of the decoding-thoughts project (``albumentations.Blur``, i.e.
    ``cv2.blur`` with its default reflect-101 border) at one fixed kernel size; the
    project drew the size at random per image, which made blur levels irreproducible.
    Its equivalent Gaussian sigma is ``sqrt((k**2 - 1) / 12)``
    (:func:`box_equivalent_sigma`).
    """

    kernel_size: int

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive integer, got {self.kernel_size}")

    def kernel(self) -> np.ndarray:
        """The 1-D kernel (float64), applied along rows and then columns."""
        return np.full(self.kernel_size, 1.0 / self.kernel_size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        return _separable_filter(x, torch.as_tensor(self.kernel(), dtype=x.dtype, device=x.device))


def box_equivalent_sigma(kernel_size: int) -> float:
    """Standard deviation (pixels) of a box filter of ``kernel_size`` pixels."""
    return math.sqrt((kernel_size**2 - 1) / 12)


def check_kernel_fits(size: int, height: int, width: int) -> int:
    """The radius of a 1-D blur kernel of ``size`` taps, refused when mirrored borders cannot hold it."""
    radius = size // 2
    if radius >= min(height, width):
        raise ValueError(f"blur kernel radius {radius} px does not fit {height}x{width} images")
    return radius


def _separable_filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter rows then columns of every channel with a 1-D kernel, mirror (reflect-101) padding."""
    n, c, h, w = x.shape
    radius = check_kernel_fits(len(kernel), h, w)
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its images.

    Parameters
    ----------
    size : int
        Side of the square network input.
    resize : int or None
        Shorter side after resizing, before the centre crop of ``size`` (torchvision's
        ``Resize(resize) + CenterCrop(size)``). ``None`` resizes the whole image to
        ``size x size`` without cropping (nothing to do when a step already made it
        that size). Must be ``None`` with a step that sets the size.
    mean, std : tuple of 3 floats
        Per-channel normalisation of [0, 1] pixel values.
    interpolation : {"bilinear", "bicubic"}
        Resampling, with anti-aliasing.
    steps : tuple
        Image-space steps (blur, :class:`~scene2brain.features.retina.RetinaWarp`, ...)
        run before resizing. Each must be a frozen dataclass (it enters cache keys). A
        step with an ``output_size`` (the retina warp) produces the network input
        itself: its ``output_size`` must equal ``size`` and ``resize`` must be
        ``None``, so that no resize or centre crop upsamples the result or cuts off
        its periphery (:meth:`with_steps` sets ``resize = None`` for it).
    """

    size: int = 224
    resize: int | None = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: Interpolation = "bilinear"
    steps: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        for step in self.steps:
            out = step_output_size(step)
            if out is None:
                continue
            if out != self.size:
                raise ValueError(
                    f"steps: {type(step).__name__} produces {out} x {out} px but the network input is "
                    f"{self.size} x {self.size}; give it output_size={self.size}"
                )
            if self.resize is not None:
                raise ValueError(
                    f"steps: {type(step).__name__} produces the network input itself; resize={self.resize} "
                    "followed by a centre crop would upsample it and cut off its periphery: use resize=None "
                    "(Preprocessing.with_steps does)"
                )

    def key(self) -> dict[str, Any]:
        """JSON-able description for cache keys."""
        out = {k: v for k, v in asdict(self).items() if k != "steps"}
        out["steps"] = [step_key(s) for s in self.steps]
        return out

    def with_steps(self, *steps: Any) -> Preprocessing:
        """A copy with ``steps`` appended.

        When a step sets the image size (e.g. ``RetinaWarp(self.size)``), the copy has
        ``resize=None``: the step's output is the network input, not resized or cropped.
        """
        sizing = any(step_output_size(step) is not None for step in steps)
        return replace(self, steps=(*self.steps, *steps), resize=None if sizing else self.resize)

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 images -> normalised float tensor (n, 3, size, size).

        ``images`` is an array (n, H, W[, C]) or a list of differently sized images.
        Grayscale is repeated over three channels; an alpha channel is dropped.
        """
        if isinstance(images, np.ndarray) and images.ndim in (3, 4):
            return self._batch(_pixels(images))
        return torch.cat([self._batch(_pixels(np.asarray(img)[None])) for img in images])

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        # uint8 pixels are resized as uint8 (as torchvision does; several times faster than
        # floats, same result up to rounding) unless a step or bicubic resampling needs floats.
        if x.dtype == torch.uint8 and (self.steps or self.interpolation != "bilinear"):
            x = _unit_float(x)
        for step in self.steps:
            x = step(x)
        h, w = x.shape[-2:]
        if self.resize is None:
            out_hw = (self.size, self.size)
        else:
            scale = self.resize / min(h, w)
            out_hw = (max(self.size, round(h * scale)), max(self.size, round(w * scale)))
        if (h, w) != out_hw:
            x = F.interpolate(x, size=out_hw, mode=self.interpolation, antialias=True, align_corners=False)
        top, left = (out_hw[0] - self.size) // 2, (out_hw[1] - self.size) // 2
        x = _unit_float(x[..., top : top + self.size, left : left + self.size])
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()


def _unit_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x


def _pixels(images: np.ndarray) -> torch.Tensor:
    """Validated (n, 3, H, W) tensor: uint8 as given, floating point as float32 in [0, 1].

    Floating-point pixels on another scale (such as Kay's stimuli) need :func:`to_unit_range` first.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images: expected shape (n, H, W) or (n, H, W, 1|3|4), got {images.shape}")
    pixels = torch.from_numpy(np.require(images[..., :3], requirements=["C", "W"]))
    x = pixels.permute(0, 3, 1, 2).contiguous()
    if np.issubdtype(images.dtype, np.floating):
        x = x.float()
        lo, hi = float(x.min()), float(x.max())
        if not (0.0 <= lo and hi <= 1.0):
            raise ValueError(
                f"images: floating-point pixels must lie in [0, 1], found [{lo:.3g}, {hi:.3g}]; "
                "rescale the whole stimulus set first, e.g. scene2brain.features.to_unit_range(images)"
            )
    elif images.dtype != np.uint8:
        raise ValueError(f"images: expected uint8 or floating-point pixels, got dtype {images.dtype}")
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """Min-max rescale a whole stimulus set to [0, 1] (float32), keeping relative contrast between images."""
    images = np.asarray(images, dtype=np.float32)
    lo, hi = float(np.nanmin(images)), float(np.nanmax(images))
    if not np.isfinite([lo, hi]).all() or hi == lo:
        raise ValueError(f"images: cannot rescale pixel values spanning [{lo}, {hi}] to [0, 1]")
    return (images - lo) / (hi - lo)
