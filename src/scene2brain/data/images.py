"""Stimulus images: one abstraction for where they come from, what they hold and how to find them again.

An :class:`ImageSource` is an ordered set of images read on demand:

- :class:`ArrayImages`: an array-like of shape (n, H, W[, C]) (numpy, zarr, h5py);
- :class:`FileImages`: image files (PNG, JPEG, ...) read with Pillow;
- :class:`HDF5Images`: rows of a dataset in an HDF5 file (e.g. NSD's ``imgBrick``),
  the file opened for each read;
- :class:`SubsetImages`: some images of another source, in a given order.

Every source reads batches (``read``/``[]``), gives its content digest (computed once,
or given when it is already known), selects subsets and describes itself as a JSON-able
reference (``describe``/``from_description``) so a saved experiment can point at files
and HDF5 bricks instead of copying them. :func:`as_image_source` turns arrays, stimuli,
folders and ``file.h5[:dataset]`` strings into a source.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
HDF5_SUFFIXES = (".h5", ".hdf5")
DEFAULT_HDF5_DATASET = "imgBrick"
DIGEST_BLOCK = 256  # images hashed per block; part of the digest (each block hashes its shape and dtype)

Images = np.ndarray | list[np.ndarray]


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
        loaded whole), then kept; a digest given at construction is never recomputed.
        """
        if self._digest is None:
            self._digest = self._compute_digest()
        return self._digest

    def _compute_digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the count, then per block of images its shape, dtype and pixels."""
        n = len(self)
        h = hashlib.sha256(str(n).encode())
        for start in range(0, n, DIGEST_BLOCK):
            block = self.read(slice(start, min(start + DIGEST_BLOCK, n)))
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
    """Images held in an array-like (numpy, zarr, h5py) of shape (n, H, W[, C]).

    Nothing is read until images are indexed, so a zarr- or HDF5-backed array stays
    on disk. A saved experiment stores these pixels as data.
    """

    kind = "array"

    def __init__(self, array: Any, *, digest: str | None = None):
        super().__init__(digest=digest)
        shape = getattr(array, "shape", None)
        if shape is None or len(shape) not in (3, 4):
            raise ValueError(
                f"images: expected an array of shape (n, H, W) or (n, H, W, C), got "
                f"{f'shape {tuple(shape)}' if shape is not None else type(array).__name__}"
            )
        self.array = array

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def _read(self, positions: np.ndarray) -> np.ndarray:
        return _take(self.array, positions)

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
    """Images read from files (PNG, JPEG, ...) with Pillow when indexed.

    A batch is one array when its images share a shape and dtype, else a list. The
    digest hashes each file's name and bytes, so re-encoding a file changes it.
    """

    kind = "files"

    def __init__(self, paths: Sequence[str | Path], *, digest: str | None = None):
        super().__init__(digest=digest)
        self.paths = [Path(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    def _read(self, positions: np.ndarray) -> Images:
        from PIL import Image

        images = []
        for i in positions:
            path = self.paths[i]
            if not path.is_file():
                raise FileNotFoundError(f"stimulus image not found: {path}")
            with Image.open(path) as img:
                images.append(np.asarray(img))
        if not images:
            return np.empty((0,), dtype=np.uint8)
        first = images[0]
        if all(a.shape == first.shape and a.dtype == first.dtype for a in images):
            return np.stack(images)
        return images

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
            import h5py

            with h5py.File(self._checked_path(), "r") as f:
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

    def _checked_path(self) -> Path:
        if not self.path.is_file():
            raise FileNotFoundError(f"stimuli: HDF5 file not found: {self.path}")
        return self.path

    def _open_dataset(self, handle: Any) -> Any:
        if self.dataset not in handle:
            raise ValueError(f"stimuli: {self.path} has no dataset {self.dataset!r}; found {list(handle.keys())}")
        data = handle[self.dataset]
        if len(data.shape) not in (3, 4):
            raise ValueError(
                f"stimuli: {self.path}:{self.dataset} has shape {data.shape}; expected (n, H, W) or (n, H, W, C)"
            )
        return data

    def _read(self, positions: np.ndarray) -> np.ndarray:
        import h5py

        rows = self.rows[positions]
        with h5py.File(self._checked_path(), "r") as f:
            data = self._open_dataset(f)
            if rows.size and rows.max() >= data.shape[0]:
                raise IndexError(
                    f"rows: row {rows.max()} is out of range for {self.path}:{self.dataset} ({data.shape[0]} images)"
                )
            return _take(data, rows)

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

    @property
    def by_reference(self) -> bool:
        return self.parent.by_reference

    def subset(self, indices: Any) -> SubsetImages:
        return SubsetImages(self.parent, self.indices[self._positions(indices)])

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "parent": self.parent.describe(), "indices": self.indices.tolist()}

    @classmethod
    def _from_description(cls, description: dict[str, Any], array: Any, digest: str | None) -> SubsetImages:
        parent = ImageSource.from_description(description["parent"], array=array)
        return cls(parent, np.asarray(description["indices"], dtype=np.int64), digest=digest)


_KINDS: dict[str, type[ImageSource]] = {c.kind: c for c in (ArrayImages, FileImages, HDF5Images, SubsetImages)}


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


def folder_images(folder: str | Path) -> FileImages:
    """The image files of ``folder`` (not recursive), sorted by file name."""
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
    return FileImages(paths)


def hdf5_images(path: str | Path, dataset: str = DEFAULT_HDF5_DATASET) -> HDF5Images:
    """All images of an HDF5 dataset of shape (n, H, W[, C]), e.g. NSD's ``nsd_stimuli.hdf5``.

    The file and dataset are checked now; images are read batch by batch.
    """
    return HDF5Images(path, dataset)


def as_image_source(images: Any) -> ImageSource:
    """An image source for ``images``.

    Parameters
    ----------
    images : ImageSource, array-like, Stimuli, path or str
        A source (returned as is); an array (n, H, W[, C]) (numpy, zarr, h5py); an object
        with an ``images`` attribute (a :class:`~scene2brain.data.containers.Stimuli`);
        a folder of images; ``"file.h5[:dataset]"`` (default dataset ``imgBrick``); or a
        ``.npy`` file (memory-mapped).
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
            return ArrayImages(np.load(path, mmap_mode="r"))
        return folder_images(text)
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
