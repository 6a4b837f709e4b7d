"""Stimulus images: one abstraction for where they come from, what they hold and how to find them again.

An :class:`ImageSource` is an ordered set of images read on demand:

- :class:`ArrayImages`: an array-like of shape (n, H, W[, C]) (numpy, zarr, h5py);
- :class:`FileImages`: image files (PNG, JPEG, ...) read with Pillow;
- :class:`HDF5Images`: rows of a dataset in an HDF5 file (e.g. NSD's ``imgBrick``),
  the file opened for each read;
- :class:`SubsetImages`: some images of another source, in a given order.

Every source reads batches (``read``/``[]``), gives its content digest (computed once,
block by block, or given when it is already known; sources in files also keep it in a
memo keyed by the files' stamps, see :meth:`ImageSource.digest`), selects subsets and describes itself as a JSON-able
reference (``describe``/``from_description``) so a saved experiment can point at files
and HDF5 bricks instead of copying them. :func:`as_image_source` turns arrays, stimuli,
folders and ``file.h5[:dataset]`` strings into a source.

Pixels
------
Every path that turns images into pixels goes through one reader: :func:`read_image`
for files (Pillow), :func:`to_rgb` for Pillow images and arrays. Both give the
``(H, W, 3)`` uint8 RGB the models expect:

=====================================  ==================================================
what                                    becomes
=====================================  ==================================================
EXIF orientation (JPEG, TIFF, ...)      applied (``ImageOps.exif_transpose``): the image
                                        as a viewer shows it, width and height swapped
                                        for a quarter turn
RGB, RGBX, L (grey), 1 (bi-level)       RGB (grey repeated; 1-bit as 0 and 255)
P (palette)                             the palette's colours
CMYK, YCbCr, LAB, HSV                   Pillow's conversion to RGB (no ICC colour
                                        management: an embedded profile is ignored)
RGBA, LA, PA, RGBa, La, P or L or RGB   composited onto **white** (what image viewers and
with a transparent colour               browsers show on a white page); the alpha channel
                                        is not kept
I;16, I;16B, I;16L, I;16N, I            16-bit values ``v`` (0..65535) as
                                        ``round(v * 255 / 65535)``; values outside
                                        0..65535 are an error (Pillow gives 16-bit PNG,
                                        TIFF and PGM as I;16 or I)
F (32-bit float)                        values in [0, 1] as ``round(v * 255)``; other
                                        values are an error (no scale can be guessed)
=====================================  ==================================================

Arrays follow the same rules by dtype and channel count: ``(H, W)`` and ``(H, W, 1)``
are grey, ``(H, W, 2)`` grey + alpha, ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA; uint8 as
is, uint16 as 16-bit, bool as 0/255, other integer types when their values lie in
0..255, floating point when its values lie in [0, 1].

Files always read as RGB. Array and HDF5 sources keep the two layouts every model
takes, grey ``(n, H, W)`` and RGB ``(n, H, W, 3)`` (a channel axis of 1 is dropped:
grey), and convert the rest: integer and bool pixels to uint8 by the rules above (so
16-bit grey stays grey, as 8 bits), grey + alpha ``(n, H, W, 2)`` and RGBA
``(n, H, W, 4)`` to RGB with :func:`to_rgb`. Floating-point grey and RGB pixels are
returned as stored: their scale is the data's own (e.g. Kay's stimuli, which
:func:`scene2brain.features.to_unit_range` rescales). Their digest is that of the
stored pixels.

A file that cannot be read (missing, empty, truncated, damaged, not an image) raises
:class:`ImageReadError` (a ``ValueError``; :class:`ImageNotFoundError`, also a
``FileNotFoundError``, for a missing file) whose message names the file and what is
wrong. ``FileImages(paths, skip_unreadable=True)`` (also :func:`folder_images` and
:func:`as_image_source`) reads every file once up front, leaves out those that cannot
be read and lists them in ``.skipped``.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scene2brain.utils.files import array_digest, atomic_path, cache_home, stat_stamp, text_digest

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
HDF5_SUFFIXES = (".h5", ".hdf5")
DEFAULT_HDF5_DATASET = "imgBrick"
DIGEST_BLOCK = 256  # images hashed per block; part of the digest (each block hashes its shape and dtype)

Images = np.ndarray | list[np.ndarray]

#: Pillow modes of 16-bit grey images (see the module notes).
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
#: Pillow modes with an alpha channel (composited onto white).
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")
#: Channels of an array image: grey, grey + alpha, RGB, RGBA.
_ARRAY_CHANNELS = (1, 2, 3, 4)
_WHITE = 255

#: Version of the pixel conversion (:func:`to_rgb`); part of every feature cache key, so features
#: cached from files read by an earlier conversion (palette indices as grey, CMYK as RGB, no EXIF
#: orientation) are recomputed.
READER_VERSION = 2


class ImageReadError(ValueError):
    """An image file that cannot be read or converted; the message names the file and what is wrong."""


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """An image file that does not exist (also a ``FileNotFoundError``)."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as the RGB the models expect.

    The EXIF orientation is applied, then the image is converted with :func:`to_rgb`
    (palette, CMYK, grey, grey + alpha, 16-bit, ...: see the module notes).

    Parameters
    ----------
    path : path
        An image file Pillow can read (PNG, JPEG, BMP, TIFF, WebP, ...).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8

    Raises
    ------
    ImageNotFoundError
        When ``path`` is not a file.
    ImageReadError
        When the file is empty, not an image, truncated or damaged, or holds pixel
        values that have no RGB meaning (e.g. floats outside [0, 1]); the message names
        the file and the reason.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageNotFoundError(f"stimulus image not found: {path}")
    if path.stat().st_size == 0:
        raise ImageReadError(f"stimulus image {path}: the file is empty (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
    except UnidentifiedImageError:
        raise ImageReadError(
            f"stimulus image {path}: not an image file Pillow can identify (expected PNG, JPEG, BMP, TIFF, WebP, ...)"
        ) from None
    except Exception as err:  # truncated or damaged data: OSError, SyntaxError, EOFError, ValueError, zlib errors ...
        raise ImageReadError(
            f"stimulus image {path}: the image data is damaged or incomplete ({type(err).__name__}: {err})"
        ) from None
    try:
        return to_rgb(img, name=f"stimulus image {path}")
    except ValueError as err:  # pixel values without an RGB meaning; the message names the file
        raise ImageReadError(str(err)) from None


def to_rgb(image: Any, name: str = "image") -> np.ndarray:
    """One image (a Pillow image or an array) as ``(H, W, 3)`` uint8 RGB.

    Parameters
    ----------
    image : PIL.Image.Image or array-like
        A Pillow image of any mode, or an array ``(H, W)``, ``(H, W, 1)`` (grey),
        ``(H, W, 2)`` (grey + alpha), ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA) of
        uint8, uint16 (16-bit), bool, another integer type (values 0..255) or floating
        point (values in [0, 1]).
    name : str
        What to call the image in error messages (a file, ``images[3]``).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        Transparent pixels composited onto white; see the module notes for each mode.

    Raises
    ------
    ValueError
        For an array of another shape or dtype, or pixel values outside the range of
        their type (the message names ``name``, what was found and what was expected).

    Examples
    --------
    >>> to_rgb(np.array([[0, 65535]], dtype=np.uint16)).tolist()
    [[[0, 0, 0], [255, 255, 255]]]
    >>> to_rgb(np.array([[[0, 0, 0, 0], [0, 0, 0, 255]]], dtype=np.uint8)).tolist()  # RGBA on white
    [[[255, 255, 255], [0, 0, 0]]]
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, name)
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[-1] not in _ARRAY_CHANNELS:
        raise ValueError(
            f"{name}: expected an image of shape (H, W) or (H, W, C) with C in {_ARRAY_CHANNELS} "
            f"(grey, grey + alpha, RGB, RGBA), got shape {pixels.shape}"
        )
    pixels = _to_uint8(pixels, name)
    if pixels.shape[-1] == 3:
        return np.ascontiguousarray(pixels)
    if pixels.shape[-1] == 1:
        return np.repeat(pixels, 3, axis=2)
    return _pil_to_rgb(Image.fromarray(np.ascontiguousarray(pixels)), name)  # LA or RGBA


def _to_uint8(pixels: np.ndarray, name: str) -> np.ndarray:
    """Pixel values as uint8 by the dtype rules of the module notes."""
    dtype = pixels.dtype
    if dtype == np.uint8:
        return pixels
    if dtype == np.bool_:
        return pixels.astype(np.uint8) * np.uint8(255)
    if dtype == np.uint16:
        return np.round(pixels / 257.0).astype(np.uint8)  # v * 255 / 65535
    if np.issubdtype(dtype, np.integer):
        if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
            raise ValueError(
                f"{name}: {dtype} pixel values must lie in 0..255 (8-bit; use uint16 for 16-bit images), "
                f"found {pixels.min()}..{pixels.max()}"
            )
        return pixels.astype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        if pixels.size:
            lo, hi = float(np.min(pixels)), float(np.max(pixels))
            if not (0.0 <= lo and hi <= 1.0):  # NaN fails too
                raise ValueError(
                    f"{name}: floating-point pixel values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]; rescale "
                    "the whole stimulus set first, e.g. scene2brain.features.to_unit_range(images)"
                )
        return np.round(pixels.astype(np.float64) * 255.0).astype(np.uint8)
    raise ValueError(f"{name}: expected integer, bool or floating-point pixels, got dtype {dtype}")


def _pil_to_rgb(img: Any, name: str) -> np.ndarray:
    """A Pillow image of any mode as (H, W, 3) uint8 RGB (module notes)."""
    from PIL import Image

    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(img).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"{name}: mode {mode} pixel values must lie in 0..65535 (16-bit), found {values.min()}..{values.max()}"
            )
        return to_rgb(values.astype(np.uint16), name)
    if mode == "F":
        return to_rgb(np.asarray(img, dtype=np.float32), name)
    if mode == "La":  # premultiplied grey + alpha: on white, grey + (255 - alpha)
        la = np.asarray(img).astype(np.int64)
        return to_rgb(np.clip(la[..., 0] + _WHITE - la[..., 1], 0, 255).astype(np.uint8), name)
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (_WHITE, _WHITE, _WHITE, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def _model_pixels(batch: np.ndarray, name: str, positions: np.ndarray) -> np.ndarray:
    """A batch (n, H, W[, C]) of an array source as the models take it (module notes).

    Grey ``(n, H, W)`` (also from ``(n, H, W, 1)``) and RGB ``(n, H, W, 3)`` keep their
    layout: uint8 and floating point as stored, other types as uint8; grey + alpha and
    RGBA become RGB through :func:`to_rgb`. An error names ``name[position]``.
    """
    if batch.ndim == 4 and batch.shape[-1] == 1:
        batch = batch[..., 0]
    if batch.ndim == 3 or batch.shape[-1] == 3:
        if batch.dtype == np.uint8 or np.issubdtype(batch.dtype, np.floating):
            return batch
        out = np.empty(batch.shape, dtype=np.uint8)
        for i, img in enumerate(batch):
            out[i] = _to_uint8(img, f"{name}[{int(positions[i])}]")
        return out
    out = np.empty((*batch.shape[:3], 3), dtype=np.uint8)
    for i, img in enumerate(batch):
        out[i] = to_rgb(img, f"{name}[{int(positions[i])}]")
    return out


def _check_layout(shape: Sequence[int] | None, dtype: Any, name: str) -> None:
    """Refuse array sources whose shape or dtype holds no images (n, H, W[, C in 1..4])."""
    if shape is None or len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in _ARRAY_CHANNELS):
        found = f"shape {tuple(shape)}" if shape is not None else "no shape"
        raise ValueError(
            f"{name}: expected an array of shape (n, H, W) or (n, H, W, C) with C in {_ARRAY_CHANNELS} "
            f"(grey, grey + alpha, RGB, RGBA), got {found}"
        )
    if dtype is not None and np.dtype(dtype).kind not in "biuf":
        raise ValueError(f"{name}: expected integer, bool or floating-point pixels, got dtype {np.dtype(dtype)}")


class ImageSource(ABC):
    """An ordered set of images read on demand.

    Parameters
    ----------
    digest : str, optional
        The content digest, when it is already known (e.g. recorded in a saved
        experiment); it is then never recomputed from the pixels.

    Notes
    -----
    Subclasses implement ``__len__``, ``_read`` (images at validated positions) and
    ``describe``; they may override ``subset`` and ``_compute_digest``.
    """

    kind: ClassVar[str]
    """Name of the source kind in descriptions."""

    def __init__(self, *, digest: str | None = None):
        if digest is not None and not isinstance(digest, str):
            raise TypeError(f"digest: expected a str or None, got {type(digest).__name__}")
        self._digest = digest

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _read(self, positions: np.ndarray) -> Images:
        """Images at ``positions`` (1-D int64 in [0, len), any order, repeats allowed)."""

    def _stored(self, positions: np.ndarray) -> Images:
        """Images at ``positions`` as stored, before any conversion (what the digest hashes)."""
        return self._read(positions)

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """A JSON-able description of this source (``{"kind": ..., ...}``); see :meth:`from_description`."""

    @property
    def by_reference(self) -> bool:
        """Whether :meth:`describe` alone finds the images again (files, HDF5 bricks).

        False when the pixels exist only in this process (arrays): a saved experiment
        then stores them as data.
        """
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)})"

    def read(self, index: Any) -> Images:
        """Images at ``index``: a slice, an integer array or list, a boolean mask, or an int.

        Returns
        -------
        ndarray of shape (k, H, W[, C]), or list of k arrays
            A list only when the images differ in shape (files of different sizes). An
            int gives one image (H, W[, C]). Unsorted and repeated indices are honoured.
        """
        if isinstance(index, int | np.integer):
            return self._read(self._positions(np.array([index])))[0]
        return self._read(self._positions(index))

    def __getitem__(self, index: Any) -> Images:
        return self.read(index)

    def names(self) -> list[str]:
        """A name per image: file names for files, else ``image-00000``, ``image-00001``, ..."""
        return [f"image-{i:05d}" for i in range(len(self))]

    def digest(self) -> str:
        """Digest of the images' content (pixels, or file bytes for files), in order.

        Computed once, from the images read block by block (an HDF5 brick is never
        loaded whole: memory stays at one block of :data:`DIGEST_BLOCK` images), then
        kept; a digest given at construction is never recomputed.

        Sources that live in files (HDF5 bricks, image files, their subsets) also record
        their digest in a memo in scene2brain's cache folder
        (:func:`~scene2brain.utils.files.cache_home`: ``$SCENE2BRAIN_CACHE``, else
        ``~/.cache/scene2brain``), keyed by each file's resolved path, size, inode and
        modification and change times (and the dataset and rows of a brick): a new
        source over unchanged files (the next run) reads the digest there instead of
        every image. Any change to a file misses the memo and recomputes; only an
        in-place rewrite to the same size within one tick of the file system's clock goes
        unseen. An unreadable or damaged memo is ignored; one that cannot be written
        (read-only cache) only costs the recomputation. ``SCENE2BRAIN_CACHE=""`` turns
        the memo off.
        """
        if self._digest is None:
            key = self._memo_key()
            memo = _digest_memo_file(key) if key is not None else None
            digest = _read_digest_memo(memo, key) if memo is not None else None
            if digest is None:
                digest = self._compute_digest()
                if memo is not None:
                    _write_digest_memo(memo, key, digest)
            self._digest = digest
        return self._digest

    def _memo_key(self) -> dict[str, Any] | None:
        """What identifies this source's content without reading it (file stamps), or None: no digest memo."""
        return None

    def _compute_digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the count, then per block of stored images its shape, dtype and pixels."""
        n = len(self)
        h = hashlib.sha256(str(n).encode())
        for start in range(0, n, DIGEST_BLOCK):
            block = self._stored(np.arange(start, min(start + DIGEST_BLOCK, n), dtype=np.int64))
            for a in [block] if isinstance(block, np.ndarray) else [np.asarray(img)[None] for img in block]:
                a = np.ascontiguousarray(a)
                h.update(f"{a.shape[1:]}{a.dtype.str}".encode())
                h.update(a.data)
        return h.hexdigest()[:16]

    def subset(self, indices: Any) -> ImageSource:
        """The images at ``indices`` (as for :meth:`read`, without an int), in that order.

        The subset has its own digest (that of its images).
        """
        return SubsetImages(self, indices)

    @staticmethod
    def from_description(description: dict[str, Any], *, array: Any = None, digest: str | None = None) -> ImageSource:
        """The source that :meth:`describe` described.

        Parameters
        ----------
        description : dict
            Output of :meth:`describe`.
        array : array-like, optional
            The pixels, for a description of kind ``"array"`` (a description holds no pixels).
        digest : str, optional
            The source's recorded digest, so that it is not recomputed.
        """
        if not isinstance(description, dict) or "kind" not in description:
            raise ValueError(f"image source description: expected a dict with a 'kind', got {description!r:.200}")
        kind = description["kind"]
        if kind not in _KINDS:
            raise ValueError(f"image source description: unknown kind {kind!r}; expected one of {sorted(_KINDS)}")
        return _KINDS[kind]._from_description(description, array, digest)

    @classmethod
    @abstractmethod
    def _from_description(cls, description: dict[str, Any], array: Any, digest: str | None) -> ImageSource: ...

    def _positions(self, index: Any) -> np.ndarray:
        """``index`` (slice, integers, boolean mask) as validated non-negative int64 positions."""
        n = len(self)
        if isinstance(index, slice):
            return np.arange(*index.indices(n), dtype=np.int64)
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"images: boolean mask of shape {idx.shape} for {n} images; expected shape ({n},)")
            return np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise IndexError(
                f"images: expected an int, a slice, a 1-D integer array or a boolean mask, "
                f"got {idx.ndim}-D {idx.dtype} values"
            )
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"images: index {bad} is out of range for {n} images")
        return np.where(idx < 0, idx + n, idx)


class ArrayImages(ImageSource):
    """Images held in an array-like (numpy, zarr, h5py) of shape (n, H, W[, C]), C in 1..4.

    Nothing is read until images are indexed, so a zarr- or HDF5-backed array stays
    on disk. Pixels the models do not take as they are (16-bit and other integer types,
    grey + alpha, RGBA) are converted when read (module notes); the digest is that of
    the stored pixels. A saved experiment stores these pixels as data.
    """

    kind = "array"

    def __init__(self, array: Any, *, digest: str | None = None):
        super().__init__(digest=digest)
        shape = getattr(array, "shape", None)
        if shape is None:
            raise ValueError(
                f"images: expected an array of shape (n, H, W) or (n, H, W, C), got {type(array).__name__}"
            )
        _check_layout(tuple(shape), getattr(array, "dtype", None), "images")
        self.array = array

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def _stored(self, positions: np.ndarray) -> np.ndarray:
        return _take(self.array, positions)

    def _read(self, positions: np.ndarray) -> np.ndarray:
        return _model_pixels(_take(self.array, positions), "images", positions)

    @property
    def by_reference(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "shape": [int(s) for s in self.array.shape],
            "dtype": np.dtype(self.array.dtype).str,
        }

    @classmethod
    def _from_description(cls, description: dict[str, Any], array: Any, digest: str | None) -> ArrayImages:
        if array is None:
            raise ValueError("image source description of kind 'array': the pixels are not part of it; pass array=")
        shape = [int(s) for s in array.shape]
        if shape != description["shape"] or np.dtype(array.dtype).str != description["dtype"]:
            raise ValueError(
                f"array: expected shape {description['shape']} and dtype {description['dtype']} as described, "
                f"got shape {shape} and dtype {np.dtype(array.dtype).str}"
            )
        return cls(array, digest=digest)


class FileImages(ImageSource):
    """Images read from files (PNG, JPEG, ...) with :func:`read_image` when indexed: (H, W, 3) uint8 RGB.

    A batch is one array when its images share a shape, else a list. The digest hashes
    each file's name and bytes, so re-encoding a file changes it.

    Parameters
    ----------
    paths : sequence of path
        The image files, in order.
    digest : str, optional
        See :class:`ImageSource`.
    skip_unreadable : bool
        Read every file once now and leave out those that cannot be read (missing,
        empty, damaged, not an image); they are listed in :attr:`skipped`. When none can
        be read, an :class:`ImageReadError` names the first. Default False: every path
        is kept and an unreadable file raises :class:`ImageReadError` when it is read.

    Attributes
    ----------
    paths : list of Path
        The files of this source (without the skipped ones).
    skipped : list of (Path, str)
        The files left out by ``skip_unreadable`` and why, in the order given.
    """

    kind = "files"

    def __init__(self, paths: Sequence[str | Path], *, digest: str | None = None, skip_unreadable: bool = False):
        super().__init__(digest=digest)
        if isinstance(paths, str | Path):
            raise TypeError(f"paths: expected a sequence of image files, got one {type(paths).__name__} ({paths})")
        self.paths = [Path(p) for p in paths]
        self.skipped: list[tuple[Path, str]] = []
        if skip_unreadable:
            self.skipped = _unreadable(self.paths)
            if self.paths and len(self.skipped) == len(self.paths):
                reason = self.skipped[0][1]
                raise ImageReadError(f"none of the {len(self.paths)} image files can be read; the first: {reason}")
            left_out = {path for path, _ in self.skipped}
            self.paths = [path for path in self.paths if path not in left_out]

    def __len__(self) -> int:
        return len(self.paths)

    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    def _read(self, positions: np.ndarray) -> Images:
        try:
            images = [read_image(self.paths[i]) for i in positions]
        except ImageReadError as err:  # name every unreadable file of the source at once, not one per attempt
            bad = _unreadable(self.paths)
            if len(bad) <= 1:
                raise
            shown = "; ".join(reason for _, reason in bad[:10]) + (" ..." if len(bad) > 10 else "")
            raise ImageReadError(
                f"{len(bad)} of {len(self.paths)} image files cannot be read (skip_unreadable=True, or "
                f"`--skip-unreadable`, leaves them out): {shown}"
            ) from err
        if not images:
            return np.empty((0,), dtype=np.uint8)
        first = images[0]
        if all(a.shape == first.shape for a in images):
            return np.stack(images)
        return images

    def _memo_key(self) -> dict[str, Any] | None:
        try:
            stamps = [stat_stamp(path) for path in self.paths]
        except OSError:  # a missing file: computing the digest names it
            return None
        return {"kind": self.kind, "n": len(self.paths), "files": text_digest(json.dumps(stamps), 32)}

    def _compute_digest(self) -> str:
        h = hashlib.sha256()
        for path in self.paths:
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()[:16]

    def subset(self, indices: Any) -> FileImages:
        return FileImages([self.paths[i] for i in self._positions(indices)])

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "paths": [str(p.absolute()) for p in self.paths]}

    @classmethod
    def _from_description(cls, description: dict[str, Any], array: Any, digest: str | None) -> FileImages:
        return cls(description["paths"], digest=digest)


def _unreadable(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """The files :func:`read_image` refuses, with the reason, in the order given."""
    bad = []
    for path in paths:
        try:
            read_image(path)
        except ImageReadError as err:
            bad.append((path, str(err)))
    return bad


class HDF5Images(ImageSource):
    """Images of an HDF5 dataset of shape (n, H, W[, C]) (e.g. NSD's ``imgBrick``), optionally some rows.

    Parameters
    ----------
    path : path
        The HDF5 file; opened for each read, never kept open.
    dataset : str
        Name of the dataset in the file.
    rows : array of int, optional
        Rows of the dataset, in order (repeats allowed). Default: all rows, which opens
        the file once here to count them and check the dataset; with ``rows`` the file
        is not touched until images are read.
    digest : str, optional
        See :class:`ImageSource`.
    """

    kind = "hdf5"

    def __init__(
        self,
        path: str | Path,
        dataset: str = DEFAULT_HDF5_DATASET,
        rows: Sequence[int] | np.ndarray | None = None,
        *,
        digest: str | None = None,
    ):
        super().__init__(digest=digest)
        self.path, self.dataset = Path(path), str(dataset)
        if rows is None:
            with self._open() as f:
                rows = np.arange(len(self._open_dataset(f)))
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise TypeError(f"rows: expected a 1-D integer array, got {rows.ndim}-D {rows.dtype} values")
        if rows.size and rows.min() < 0:
            raise ValueError(f"rows: expected rows >= 0 of {self.path}:{self.dataset}, found {rows.min()}")
        self.rows = rows.astype(np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"HDF5Images({str(self.path)!r}, {self.dataset!r}, n={len(self)})"

    def _open(self) -> Any:
        """The HDF5 file, open for reading; a missing file or one that is not HDF5 is named."""
        import h5py

        if not self.path.is_file():
            raise FileNotFoundError(f"stimuli: HDF5 file not found: {self.path}")
        try:
            return h5py.File(self.path, "r")
        except OSError as err:
            raise ValueError(f"stimuli: {self.path} cannot be opened as an HDF5 file ({err})") from None

    def _open_dataset(self, handle: Any) -> Any:
        if self.dataset not in handle:
            raise ValueError(f"stimuli: {self.path} has no dataset {self.dataset!r}; found {list(handle.keys())}")
        data = handle[self.dataset]
        if not hasattr(data, "shape"):
            raise ValueError(f"stimuli: {self.path}:{self.dataset} is a group, not a dataset of images")
        _check_layout(data.shape, data.dtype, f"stimuli: {self.path}:{self.dataset}")
        return data

    def _read(self, positions: np.ndarray) -> np.ndarray:
        return _model_pixels(self._stored(positions), f"{self.path}:{self.dataset}", self.rows[positions])

    def _stored(self, positions: np.ndarray) -> np.ndarray:
        rows = self.rows[positions]
        with self._open() as f:
            data = self._open_dataset(f)
            if rows.size and rows.max() >= data.shape[0]:
                raise IndexError(
                    f"rows: row {rows.max()} is out of range for {self.path}:{self.dataset} ({data.shape[0]} images)"
                )
            return _take(data, rows)

    def _memo_key(self) -> dict[str, Any] | None:
        try:
            stamp = stat_stamp(self.path)
        except OSError:  # a missing file: computing the digest names it
            return None
        rows = array_digest(self.rows, length=32)
        return {"kind": self.kind, "file": stamp, "dataset": self.dataset, "n": len(self.rows), "rows": rows}

    def subset(self, indices: Any) -> HDF5Images:
        return HDF5Images(self.path, self.dataset, self.rows[self._positions(indices)])

    def describe(self) -> dict[str, Any]:
        rows: Any = self.rows.tolist()
        if len(self.rows) and np.array_equal(self.rows, np.arange(self.rows[0], self.rows[0] + len(self.rows))):
            rows = {"start": int(self.rows[0]), "stop": int(self.rows[0] + len(self.rows))}
        return {"kind": self.kind, "path": str(self.path.absolute()), "dataset": self.dataset, "rows": rows}

    @classmethod
    def _from_description(cls, description: dict[str, Any], array: Any, digest: str | None) -> HDF5Images:
        rows = description["rows"]
        if isinstance(rows, dict):
            rows = np.arange(rows["start"], rows["stop"])
        return cls(description["path"], description["dataset"], np.asarray(rows, dtype=np.int64), digest=digest)


class SubsetImages(ImageSource):
    """The images of ``parent`` at ``indices`` (slice, integers or boolean mask), in that order."""

    kind = "subset"

    def __init__(self, parent: ImageSource, indices: Any, *, digest: str | None = None):
        super().__init__(digest=digest)
        if not isinstance(parent, ImageSource):
            raise TypeError(f"parent: expected an ImageSource, got {type(parent).__name__}")
        self.parent = parent
        self.indices = parent._positions(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def _read(self, positions: np.ndarray) -> Images:
        return self.parent._read(self.indices[positions])

    def _stored(self, positions: np.ndarray) -> Images:
        return self.parent._stored(self.indices[positions])

    @property
    def by_reference(self) -> bool:
        return self.parent.by_reference

    def _memo_key(self) -> dict[str, Any] | None:
        parent = self.parent._memo_key()
        if parent is None:
            return None
        return {"kind": self.kind, "parent": parent, "n": len(self.indices), "indices": array_digest(self.indices, 32)}

    def subset(self, indices: Any) -> SubsetImages:
        return SubsetImages(self.parent, self.indices[self._positions(indices)])

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "parent": self.parent.describe(), "indices": self.indices.tolist()}

    @classmethod
    def _from_description(cls, description: dict[str, Any], array: Any, digest: str | None) -> SubsetImages:
        parent = ImageSource.from_description(description["parent"], array=array)
        return cls(parent, np.asarray(description["indices"], dtype=np.int64), digest=digest)


_KINDS: dict[str, type[ImageSource]] = {c.kind: c for c in (ArrayImages, FileImages, HDF5Images, SubsetImages)}

#: Folder of the digest memos inside scene2brain's cache folder; one JSON file per source content.
DIGEST_MEMO_DIR = "image-digests"
#: Version of the digest memo's key; part of it, so a change of what the key holds misses old memos.
DIGEST_MEMO_VERSION = 1


def _memo_identity(key: dict[str, Any]) -> dict[str, Any]:
    """The whole memo key: the source's key, the digest's block size and the memo version."""
    return {"source": key, "block": DIGEST_BLOCK, "version": DIGEST_MEMO_VERSION}


def _digest_memo_file(key: dict[str, Any]) -> Path | None:
    """Where the digest memo of a source with memo key ``key`` lives, or None when the cache is off."""
    home = cache_home()
    if home is None:
        return None
    return home / DIGEST_MEMO_DIR / f"{text_digest(json.dumps(_memo_identity(key), sort_keys=True), 32)}.json"


def _read_digest_memo(memo: Path, key: dict[str, Any]) -> str | None:
    """The digest recorded in ``memo`` for ``key``; None when missing, damaged or recorded for another key."""
    try:
        content = json.loads(memo.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict) or content.get("key") != json.loads(json.dumps(_memo_identity(key))):
        return None
    digest = content.get("digest")
    return digest if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{16}", digest) else None


def _write_digest_memo(memo: Path, key: dict[str, Any], digest: str) -> None:
    """Record ``digest`` for ``key`` in ``memo`` (atomically; a cache that cannot be written is skipped)."""
    try:
        with atomic_path(memo) as tmp:
            tmp.write_text(json.dumps({"key": _memo_identity(key), "digest": digest}, indent=1))
    except OSError:
        pass


def _take(array: Any, positions: np.ndarray) -> np.ndarray:
    """``array[positions]`` for any array-like.

    A contiguous run is read as one slice; zarr and h5py arrays are read at sorted,
    distinct rows (h5py needs them), then put in the asked order.
    """
    if len(positions) == 0:
        return np.asarray(array[0:0])
    first = int(positions[0])
    if np.array_equal(positions, np.arange(first, first + len(positions))):
        return np.asarray(array[first : first + len(positions)])
    if isinstance(array, np.ndarray):
        return array[positions]
    unique, inverse = np.unique(positions, return_inverse=True)
    return np.asarray(array[unique])[inverse]


def image_files(folder: Path) -> list[Path]:
    """The image files of ``folder`` (by suffix, not recursive), sorted by file name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_path(text: str | Path) -> tuple[Path, str]:
    """Split ``"file.h5:dataset"`` into the file and the dataset name ("" when none is given)."""
    text = str(text)
    path, _, dataset = text.rpartition(":") if ":" in Path(text).name else (text, "", "")
    return Path(path), dataset


def folder_images(folder: str | Path, *, skip_unreadable: bool = False) -> FileImages:
    """The image files of ``folder`` (not recursive), sorted by file name.

    Parameters
    ----------
    folder : path
    skip_unreadable : bool
        Leave out the files that cannot be read, listed in the result's ``skipped``
        (see :class:`FileImages`).
    """
    folder = Path(folder)
    if folder.is_file():
        raise ValueError(
            f"stimuli: {folder} is a file, not a folder of images, an HDF5 file ({', '.join(HDF5_SUFFIXES)}) "
            "or a .npy array"
        )
    if not folder.is_dir():
        raise FileNotFoundError(f"stimuli: folder not found: {folder}")
    paths = image_files(folder)
    if not paths:
        raise ValueError(f"stimuli: no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return FileImages(paths, skip_unreadable=skip_unreadable)


def hdf5_images(path: str | Path, dataset: str = DEFAULT_HDF5_DATASET) -> HDF5Images:
    """All images of an HDF5 dataset of shape (n, H, W[, C]), e.g. NSD's ``nsd_stimuli.hdf5``.

    The file and dataset are checked now; images are read batch by batch.
    """
    return HDF5Images(path, dataset)


def as_image_source(images: Any, *, skip_unreadable: bool = False) -> ImageSource:
    """An image source for ``images``.

    Parameters
    ----------
    images : ImageSource, array-like, Stimuli, path or str
        A source (returned as is); an array (n, H, W[, C]) (numpy, zarr, h5py); an object
        with an ``images`` attribute (a :class:`~scene2brain.data.containers.Stimuli`);
        a folder of images; ``"file.h5[:dataset]"`` (default dataset ``imgBrick``); or a
        ``.npy`` file (memory-mapped).
    skip_unreadable : bool
        For a folder: leave out the files that cannot be read (listed in the source's
        ``skipped``, see :class:`FileImages`). Other inputs are not affected.
    """
    if isinstance(images, ImageSource):
        return images
    if isinstance(images, str | Path):
        text = str(images)
        path, dataset = image_path(text)
        suffix = path.suffix.lower()
        if suffix in HDF5_SUFFIXES:
            return hdf5_images(path, dataset or DEFAULT_HDF5_DATASET)
        if suffix == ".npy" and not dataset:
            if not path.is_file():
                raise FileNotFoundError(f"stimuli: .npy file not found: {path}")
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as err:
                raise ValueError(f"stimuli: {path} cannot be read as a .npy array ({err})") from None
            try:
                return ArrayImages(array)
            except ValueError as err:
                raise ValueError(f"stimuli: {path}: {err}") from None
        return folder_images(text, skip_unreadable=skip_unreadable)
    if hasattr(images, "images") and not hasattr(images, "shape"):
        if images.images is None:
            raise ValueError(f"stimuli: this {type(images).__name__} has no images attached")
        return as_image_source(images.images)
    if hasattr(images, "shape"):
        return ArrayImages(images)
    raise TypeError(
        "images: expected an ImageSource, an array (n, H, W[, C]), a Stimuli, a folder, 'file.h5[:dataset]' "
        f"or a .npy file, got {type(images).__name__}"
    )
