"""Where stimulus images come from (array, folder, HDF5 brick) and their content digest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from scene2brain.data.containers import ArrayImages, FileImages, ImageSource, Stimuli

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def folder_images(folder: str | Path) -> FileImages:
    """The image files of ``folder`` (not recursive), sorted by file name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"stimuli: folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"stimuli: no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return FileImages(paths)


def hdf5_images(path: str | Path, dataset: str = "imgBrick") -> ArrayImages:
    """Images of an HDF5 dataset of shape (n, H, W[, C]), e.g. NSD's ``nsd_stimuli.hdf5``.

    The file stays open and images are read batch by batch.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"stimuli: HDF5 file not found: {path}")
    handle = h5py.File(path, "r")
    if dataset not in handle:
        names = list(handle.keys())
        handle.close()
        raise ValueError(f"stimuli: {path} has no dataset {dataset!r}; found {names}")
    return ArrayImages(handle[dataset])


def as_image_source(images: Any) -> ImageSource:
    """Accept an array, a :class:`Stimuli`, an image source, a folder, or ``file.h5[:dataset]``."""
    if isinstance(images, Stimuli):
        if images.images is None:
            raise ValueError("stimuli: this Stimuli table has no images attached")
        return images.images
    if isinstance(images, np.ndarray):
        return ArrayImages(images)
    if isinstance(images, str | Path):
        text = str(images)
        path, _, dataset = text.rpartition(":") if ":" in Path(text).name else (text, "", "")
        if Path(path).suffix.lower() in (".h5", ".hdf5"):
            return hdf5_images(path, dataset or "imgBrick")
        return folder_images(text)
    if hasattr(images, "__len__") and hasattr(images, "__getitem__"):
        return images
    raise TypeError(f"images: expected an array, a folder, an HDF5 file or an image source, got {type(images)}")


def load_batch(source: ImageSource, start: int, stop: int) -> np.ndarray | list[np.ndarray]:
    """Images ``start:stop`` as one array, or a list when files may differ in size."""
    if isinstance(source, FileImages):
        return [source[i] for i in range(start, stop)]
    return np.asarray(source[start:stop])


def images_digest(source: ImageSource, block: int = 256) -> str:
    """Digest of the images' content (pixels, or file bytes for files), in order.

    Reads the images once, block by block, so HDF5 bricks are never loaded whole.
    """
    h = hashlib.sha256()
    if isinstance(source, FileImages):
        for path in source.paths:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    else:
        n = len(source)
        h.update(str(n).encode())
        for start in range(0, n, block):
            a = np.ascontiguousarray(source[start : min(start + block, n)])
            h.update(f"{a.shape[1:]}{a.dtype.str}".encode())
            h.update(a.data)
    return h.hexdigest()[:16]
