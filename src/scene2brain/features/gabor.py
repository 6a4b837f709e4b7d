"""Gabor wavelet pyramid with contrast-energy outputs (Kay et al., 2008).

Wavelets sit at spatial frequencies of 1, 2, 4, ... cycles per field of view (FOV),
each frequency ``f`` on an ``f x f`` grid of positions, at 8 orientations and in two
quadrature phases. Envelopes are isotropic Gaussians giving a one-octave bandwidth,
truncated below 1% of their peak; every wavelet is zero-mean and unit-length. One
extra luminance wavelet (a uniform field) gives the mean luminance. A channel's
output is the contrast energy ``sqrt(q0**2 + q90**2)`` of its quadrature pair (and
``sqrt(2 p**2)`` for luminance). At 64 px with frequencies 1..16 this gives
341 x 8 + 1 = 2,729 channels.

Because every wavelet covers the whole image, the pyramid is one matrix product
``pixels @ wavelets`` over a batch of images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Spatial SD (in FOV units) times frequency (cycles/FOV) for a one-octave bandwidth:
# sigma_f = f / (3 sqrt(2 ln 2)) and sigma = 1 / (2 pi sigma_f).
_SIGMA_TIMES_FREQ = 3.0 * np.sqrt(2.0 * np.log(2.0)) / (2.0 * np.pi)
_ENVELOPE_CUTOFF = 0.01


@dataclass(frozen=True)
class GaborPyramid:
    """A Gabor wavelet pyramid for square grayscale images.

    Parameters
    ----------
    image_size : int
        Side of the (square) images in pixels.
    frequencies : tuple of float
        Spatial frequencies in cycles per field of view.
    n_orientations : int
        Orientations evenly spaced over 180 degrees.
    """

    image_size: int = 64
    frequencies: tuple[float, ...] = (1, 2, 4, 8, 16)
    n_orientations: int = 8

    def __post_init__(self) -> None:
        if self.image_size < 4:
            raise ValueError(f"image_size: expected at least 4 pixels, got {self.image_size}")
        nyquist = self.image_size / 2
        too_high = [f for f in self.frequencies if f >= nyquist]
        if too_high:
            raise ValueError(
                f"frequencies {too_high} cycles/FOV reach the Nyquist limit of {nyquist} "
                f"for {self.image_size}-px images"
            )

    @property
    def n_channels(self) -> int:
        return int(sum(int(f) ** 2 for f in self.frequencies) * self.n_orientations + 1)

    def channels(self) -> pd.DataFrame:
        """One row per channel: kind, frequency (cycles/FOV), orientation (radians), x, y (FOV units, 0..1)."""
        rows = []
        for f in self.frequencies:
            centres = (np.arange(int(f)) + 0.5) / f
            for cy in centres:
                for cx in centres:
                    for k in range(self.n_orientations):
                        rows.append(("gabor", float(f), np.pi * k / self.n_orientations, cx, cy))
        rows.append(("luminance", 0.0, np.nan, 0.5, 0.5))
        return pd.DataFrame(rows, columns=["kind", "frequency", "orientation", "x", "y"])

    def wavelets(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature wavelet matrices, each of shape (image_size**2, n_channels), float32.

        Column ``c`` of the first (cosine) and second (sine) matrix form channel ``c``'s
        pair. The luminance channel is a uniform field in the first matrix and zero in
        the second.
        """
        table = self.channels()
        n = self.image_size
        coords = (np.arange(n) + 0.5) / n
        xx, yy = np.meshgrid(coords, coords)
        gabor = table["kind"].to_numpy() == "gabor"
        f = table["frequency"].to_numpy()[gabor][:, None, None]
        theta = table["orientation"].to_numpy()[gabor][:, None, None]
        dx = xx[None] - table["x"].to_numpy()[gabor][:, None, None]
        dy = yy[None] - table["y"].to_numpy()[gabor][:, None, None]
        sigma = _SIGMA_TIMES_FREQ / f
        envelope = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
        envelope[envelope < _ENVELOPE_CUTOFF] = 0.0
        phase = 2 * np.pi * f * (dx * np.cos(theta) + dy * np.sin(theta))
        out = []
        for carrier in (np.cos(phase), np.sin(phase)):
            w = envelope * carrier
            support = envelope > 0
            mean = w.sum(axis=(1, 2), keepdims=True) / support.sum(axis=(1, 2), keepdims=True)
            w = np.where(support, w - mean, 0.0)
            w /= np.linalg.norm(w.reshape(len(w), -1), axis=1)[:, None, None]
            matrix = np.zeros((n * n, len(table)), dtype=np.float32)
            matrix[:, gabor] = w.reshape(len(w), -1).T
            out.append(matrix)
        out[0][:, ~gabor] = 1.0 / n  # uniform, unit-length luminance wavelet
        return out[0], out[1]

    def transform(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Contrast energy of every channel for a batch of grayscale images.

        Parameters
        ----------
        images : ndarray of shape (n, image_size, image_size)
            Grayscale images (any real scale; luminance in [0, 1] is conventional).
        batch_size : int
            Images per matrix product.

        Returns
        -------
        ndarray of shape (n, n_channels), float32
        """
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (self.image_size, self.image_size):
            raise ValueError(f"images: expected shape (n, {self.image_size}, {self.image_size}), got {images.shape}")
        cos_w, sin_w = self.wavelets()
        flat = images.reshape(len(images), -1).astype(np.float32)
        out = np.empty((len(images), self.n_channels), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            block = flat[start : start + batch_size]
            out[start : start + batch_size] = np.hypot(block @ cos_w, block @ sin_w)
        out[:, -1] *= np.sqrt(2.0)  # luminance energy sqrt(2 p^2) = sqrt(2) |p|
        return out


def to_grayscale(images: np.ndarray, size: int) -> np.ndarray:
    """Convert uint8 (n, H, W[, 3]) images to float32 luminance in [0, 1] at ``size`` x ``size`` px."""
    from PIL import Image

    out = np.empty((len(images), size, size), dtype=np.float32)
    for i, img in enumerate(images):
        pil = Image.fromarray(np.asarray(img))
        if pil.mode != "L":
            pil = pil.convert("L")
        if pil.size != (size, size):
            pil = pil.resize((size, size), Image.Resampling.LANCZOS)
        out[i] = np.asarray(pil, dtype=np.float32) / 255.0
    return out
