"""Gabor wavelet pyramid with contrast-energy outputs (Kay et al., 2008).

Wavelets sit at spatial frequencies of 1, 2, 4, ... cycles per field of view (FOV),
each frequency ``f`` on an ``f x f`` grid of positions, at 8 orientations and in two
quadrature phases. Envelopes are isotropic Gaussians giving a one-octave bandwidth,
truncated below 1% of their peak; every wavelet is zero-mean and unit-length. One
extra luminance wavelet (a uniform field) gives the mean luminance. A channel's
output is the contrast energy ``sqrt(q0**2 + q90**2)`` of its quadrature pair (and
``sqrt(2 p**2)`` for luminance). At 64 px with frequencies 1..16 this gives
341 x 8 + 1 = 2,729 channels; at 128 px with 1..32, 10,921.

With ``aperture=True`` (Kay's circular stimuli) a wavelet whose envelope has more
than half its mass beyond 90% of the stimulus radius is zeroed; channel counts do
not change.

Truncated envelopes are small: the pyramid is two sparse (pixels x channels) wavelet
matrices (about 100 non-zeros per pixel at 128 px instead of 10,921), and the
transform is one sparse matrix product per batch of images.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from scene2brain.data.images import to_rgb
from scene2brain.utils.progress import track

# Spatial SD (in FOV units) times frequency (cycles/FOV) for a one-octave bandwidth:
# sigma_f = f / (3 sqrt(2 ln 2)) and sigma = 1 / (2 pi sigma_f).
_SIGMA_TIMES_FREQ = 3.0 * np.sqrt(2.0 * np.log(2.0)) / (2.0 * np.pi)
_ENVELOPE_CUTOFF = 0.01
_APERTURE_RADIUS = 0.45  # 90% of the stimulus radius (0.5 FOV)


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
    aperture : bool
        Zero the wavelets that lie mostly outside a centred circular aperture
        (more than 50% of the envelope beyond 90% of its radius), as Kay et al.
        did for their circular stimuli.
    """

    image_size: int = 64
    frequencies: tuple[float, ...] = (1, 2, 4, 8, 16)
    n_orientations: int = 8
    aperture: bool = False

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

    @classmethod
    def kay2008(cls, image_size: int = 64, aperture: bool = True) -> GaborPyramid:
        """Kay et al.'s pyramid: octaves from 1 cycle/FOV up to ``image_size / 4``, 8 orientations."""
        n_octaves = int(np.log2(image_size)) - 1
        return cls(image_size, tuple(2**k for k in range(n_octaves)), 8, aperture)

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

    @functools.cache  # noqa: B019 - frozen dataclass, the matrices depend only on its fields
    def wavelets(self) -> tuple[sparse.csc_matrix, sparse.csc_matrix]:
        """Quadrature wavelet matrices, each sparse (CSC) of shape (image_size**2, n_channels), float32.

        Column ``c`` of the first (cosine) and second (sine) matrix form channel ``c``'s
        pair. The luminance channel is a uniform field in the first matrix and zero in
        the second. Pixels are in row-major order.
        """
        n = self.image_size
        rows: list[list[np.ndarray]] = [[], []]
        cols: list[np.ndarray] = []
        vals: list[list[np.ndarray]] = [[], []]
        column = 0
        for f in self.frequencies:
            f = int(f)
            sigma = _SIGMA_TIMES_FREQ / f
            half = min(n, int(np.ceil(np.sqrt(2 * np.log(1 / _ENVELOPE_CUTOFF)) * sigma * n)) + 1)
            offsets = np.arange(-half, half + 1)
            centres = (np.arange(f) + 0.5) / f
            cy, cx = (c.ravel() for c in np.meshgrid(centres, centres, indexing="ij"))  # row-major positions
            # pixel indices of each position's window: (positions, window, window)
            py = np.round(cy * n - 0.5).astype(int)[:, None, None] + offsets[None, :, None]
            px = np.round(cx * n - 0.5).astype(int)[:, None, None] + offsets[None, None, :]
            py, px = np.broadcast_arrays(py, px)
            dy = (py + 0.5) / n - cy[:, None, None]
            dx = (px + 0.5) / n - cx[:, None, None]
            envelope = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
            support = (envelope >= _ENVELOPE_CUTOFF) & (py >= 0) & (py < n) & (px >= 0) & (px < n)
            keep = np.ones(len(cy), dtype=bool)
            if self.aperture:
                dist = np.hypot((py + 0.5) / n - 0.5, (px + 0.5) / n - 0.5)
                mass = np.where(support, envelope, 0.0)
                outside = np.where(dist > _APERTURE_RADIUS, mass, 0.0).sum(axis=(1, 2)) / mass.sum(axis=(1, 2))
                keep = outside <= 0.5
            for k in range(self.n_orientations):
                theta = np.pi * k / self.n_orientations
                phase = 2 * np.pi * f * (dx * np.cos(theta) + dy * np.sin(theta))
                for q, carrier in enumerate((np.cos(phase), np.sin(phase))):
                    w = np.where(support, envelope * carrier, 0.0)
                    w -= support * (w.sum(axis=(1, 2)) / support.sum(axis=(1, 2)))[:, None, None]
                    w /= np.linalg.norm(w.reshape(len(w), -1), axis=1)[:, None, None]
                    w[~keep] = 0.0
                    pos, wy, wx = np.nonzero(support & keep[:, None, None])
                    rows[q].append(py[pos, wy, wx] * n + px[pos, wy, wx])
                    vals[q].append(w[pos, wy, wx])
                    if q == 0:
                        # channel order: positions row-major, orientation fastest
                        cols.append(column + pos * self.n_orientations + k)
            column += f * f * self.n_orientations
        # luminance: uniform, unit-length
        lum_rows = np.arange(n * n)
        matrices = []
        for q in (0, 1):
            r = np.concatenate([*rows[q], lum_rows if q == 0 else lum_rows[:0]])
            c = np.concatenate([*cols, np.full(n * n if q == 0 else 0, column)])
            v = np.concatenate([*vals[q], np.full(n * n if q == 0 else 0, 1.0 / n)])
            m = sparse.csc_matrix((v.astype(np.float32), (r, c)), shape=(n * n, self.n_channels))
            m.eliminate_zeros()
            matrices.append(m)
        return matrices[0], matrices[1]

    def transform(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Contrast energy of every channel for a batch of grayscale images.

        Parameters
        ----------
        images : array-like of shape (n, image_size, image_size)
            Grayscale images (any real scale; luminance in [0, 1] is conventional): an
            ndarray, or an on-disk array (zarr, h5py) read ``batch_size`` images at a time.
        batch_size : int
            Images per matrix product. Memory beyond the result is one batch of images in
            float32 and its responses, whatever ``n``.

        Returns
        -------
        ndarray of shape (n, n_channels), float32
        """
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        if not hasattr(images, "shape"):
            images = np.asarray(images)
        shape = tuple(images.shape)
        if len(shape) != 3 or shape[1:] != (self.image_size, self.image_size):
            raise ValueError(f"images: expected shape (n, {self.image_size}, {self.image_size}), got {shape}")
        cos_t, sin_t = (w.T for w in self.wavelets())  # CSR views: fast sparse @ dense
        n = shape[0]
        out = np.empty((n, self.n_channels), dtype=np.float32)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            block = np.asarray(images[start:stop], dtype=np.float32).reshape(stop - start, -1).T
            out[start:stop] = np.hypot(cos_t @ block, sin_t @ block).T
        out[:, -1] *= np.sqrt(2.0)  # luminance energy sqrt(2 p^2) = sqrt(2) |p|
        return out


def to_grayscale(images: np.ndarray | Sequence[np.ndarray], size: int) -> np.ndarray:
    """Luminance of images as float32 in [0, 1] at ``size`` x ``size`` px.

    Each image is first made RGB by the project's one image reader
    (:func:`scene2brain.data.images.to_rgb`: grey, grey + alpha, RGBA composited onto
    white, 16-bit, floating point in [0, 1], ...), then converted to luminance by
    Pillow (ITU-R 601-2, mode ``L``) and resampled (Lanczos).

    Parameters
    ----------
    images : ndarray of shape (n, H, W[, C]) or list of (H, W[, C]) arrays
    size : int

    Returns
    -------
    ndarray of shape (n, size, size), float32
    """
    from PIL import Image

    out = np.empty((len(images), size, size), dtype=np.float32)
    for i, img in enumerate(images):
        pil = Image.fromarray(to_rgb(img, f"images[{i}]")).convert("L")
        if pil.size != (size, size):
            pil = pil.resize((size, size), Image.Resampling.LANCZOS)
        out[i] = np.asarray(pil, dtype=np.float32) / 255.0
    return out


@dataclass(frozen=True)
class GaborExtractor:
    """The Gabor pyramid as a feature extractor, behind the same store API as the networks.

    It has one layer, ``"energy"``; images are converted to luminance and resampled to
    the pyramid's grid with Pillow (Lanczos) before the transform. Pooling does not
    apply (the energies are already one vector per image).
    """

    pyramid: GaborPyramid
    name: str = "gabor"
    LAYER = "energy"

    def key(self) -> dict:
        """Extractor part of a feature-store key."""
        return {"model": self.name, "pyramid": asdict(self.pyramid), "grayscale": "PIL-L+lanczos"}

    def batches(self, source, poolings, first: int, batch_size: int, progress: bool = False, **_):
        """Yield ``(start, {"energy": float32 array})`` per batch of images from row ``first`` on (on the CPU).

        Images are read from ``source`` one batch at a time (an HDF5 brick or a folder is
        never loaded whole): memory is one batch of images and its energies.
        """
        unknown = sorted(set(poolings) - {self.LAYER})
        if unknown:
            raise ValueError(f"layers: the Gabor pyramid has one layer, {self.LAYER!r}; got {unknown}")
        starts = range(first, len(source), batch_size)
        for start in track(starts, f"{self.name} features", total=len(starts), show=progress):
            images = source.read(slice(start, min(start + batch_size, len(source))))
            yield start, {self.LAYER: self.pyramid.transform(to_grayscale(images, self.pyramid.image_size))}
