"""Deterministic blur of image arrays (uint8 or float), for blur-robustness analyses.

They are the model-input steps :class:`~scene2brain.features.preprocessing.GaussianBlur`
and :class:`~scene2brain.features.preprocessing.BoxBlur` applied to image arrays (one
implementation): borders mirrored without repeating the edge pixel (``scipy.ndimage``
mode ``"mirror"``, OpenCV's default ``BORDER_REFLECT_101``). uint8 input is filtered in
float64 and rounded half to even (``np.rint``) back to uint8; float input keeps its dtype
and is not rounded.

The decoding-thoughts project blurred with ``albumentations.Blur(blur_limit=b)``: a box
filter whose odd kernel size was drawn at random per image. Here a blur level is one
fixed size (:func:`box_blur`) or one Gaussian sigma (:func:`gaussian_blur`); a k x k box
has the standard deviation of a Gaussian of sigma ``sqrt((k**2 - 1) / 12)``
(:func:`box_equivalent_sigma`: k = 3 -> 0.82, 7 -> 2.0, 15 -> 4.3 pixels).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from scene2brain.features.preprocessing import BoxBlur, GaussianBlur, box_equivalent_sigma, check_kernel_fits

__all__ = ["box_blur", "box_equivalent_sigma", "gaussian_blur"]


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
        raise ValueError(f"images: expected (n, h, w) or (n, h, w, channels), got shape {images.shape}")
    if not (images.dtype == np.uint8 or np.issubdtype(images.dtype, np.floating)):
        raise ValueError(f"images: expected uint8 or float pixels, got {images.dtype}")
    return images


def _filtered(images: np.ndarray, step: GaussianBlur | BoxBlur) -> np.ndarray:
    """One of the model-input blur steps' kernels applied to an image array, in float64, back in its dtype.

    The same kernel and border as the step's torch filter, through :func:`scipy.ndimage.correlate1d`
    (about ten times faster on the CPU than a float64 convolution in torch).
    """
    kernel = step.kernel()
    check_kernel_fits(len(kernel), images.shape[1], images.shape[2])
    out = ndimage.correlate1d(images.astype(np.float64), kernel, axis=1, mode="mirror")
    out = ndimage.correlate1d(out, kernel, axis=2, mode="mirror")
    if images.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(images.dtype, copy=False)


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each image and channel, ``sigma`` in pixels.

    Parameters
    ----------
    images : ndarray of shape (n, h, w) or (n, h, w, c), uint8 or float
    sigma : float
        Standard deviation of the Gaussian (pixels); 0 returns a copy of the images. The
        kernel is truncated at ``int(4 * sigma + 0.5)`` pixels
        (:func:`scipy.ndimage.gaussian_filter` defaults), borders mirrored.

    Returns
    -------
    ndarray
        Same shape and dtype.

    Examples
    --------
    >>> img = np.zeros((1, 9, 9), dtype=np.uint8); img[0, 4, 4] = 255
    >>> int(gaussian_blur(img, 1.0)[0, 4, 4])
    41
    """
    images = _check_images(images)
    if not sigma >= 0:
        raise ValueError(f"sigma: expected a non-negative number of pixels, got {sigma}")
    if sigma == 0:
        return images.copy()
    return _filtered(images, GaussianBlur(float(sigma)))


def box_blur(images: np.ndarray, size: int) -> np.ndarray:
    """Mean over a fixed ``size`` x ``size`` window centred on each pixel (``cv2.blur`` with a k x k kernel).

    Parameters
    ----------
    images : ndarray of shape (n, h, w) or (n, h, w, c), uint8 or float
    size : int
        Odd window side in pixels; 1 returns a copy of the images. Borders are mirrored
        without repeating the edge pixel (``BORDER_REFLECT_101``): the pixel at
        ``-i`` is the pixel at ``i``. Equivalent Gaussian sigma
        ``sqrt((size**2 - 1) / 12)``.

    Returns
    -------
    ndarray
        Same shape and dtype.

    Examples
    --------
    >>> img = np.arange(9, dtype=np.uint8).reshape(1, 3, 3)
    >>> box_blur(img, 3)[0].tolist()  # centre: mean of 0..8; top row: rows 1, 0, 1
    [[3, 3, 3], [4, 4, 4], [5, 5, 5]]
    """
    images = _check_images(images)
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ValueError(f"size: expected an odd positive integer, got {size}")
    if size == 1:
        return images.copy()
    return _filtered(images, BoxBlur(int(size)))
