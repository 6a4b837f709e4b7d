"""Bad images: files that cannot be read, folders without images, arrays that hold no images.

Palette, CMYK, grey + alpha, 16-bit and EXIF-rotated images are not errors: ``tests/test_images.py``
checks their pixels. Each case here must raise an error that names the file, the array or the shape.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from bad_input_cases import Case
from scene2brain.data.images import (
    ArrayImages,
    FileImages,
    HDF5Images,
    ImageNotFoundError,
    ImageReadError,
    as_image_source,
    folder_images,
)


def _encoded(fmt: str, size: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


def _folder_with(folder: Path, name: str, data: bytes) -> Path:
    """A stimulus folder of two good PNGs and ``name`` holding ``data``."""
    stim = folder / "stimuli"
    stim.mkdir()
    for i in range(2):
        (stim / f"good{i}.png").write_bytes(_encoded("PNG", 8))
    (stim / name).write_bytes(data)
    return stim


def _read_all(folder: Path, name: str, data: bytes) -> None:
    folder_images(_folder_with(folder, name, data)).read(slice(None))


def _corrupt_jpeg() -> bytes:
    data = bytearray(_encoded("JPEG"))
    start = data.index(b"\xff\xda")  # garble the start-of-scan header
    data[start + 2 : start + 12] = b"\xff" * 10
    return bytes(data)


def _brick(path: Path, array: np.ndarray) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("imgBrick", data=array)
    return path


def _simulation_on(folder: Path) -> None:
    from scene2brain.data.simulate import stimuli_from_images

    source = folder_images(_folder_with(folder, "scan.jpg", _encoded("JPEG")[:300]))
    stimuli_from_images(source, source.names(), image_size=8, n_test=1)


def _too_big_mode_i(folder: Path) -> None:
    Image.fromarray(np.array([[0, 90000]], dtype=np.int32), mode="I").save(folder / "deep.tif")
    FileImages([folder / "deep.tif"]).read([0])


def _gabor_float(folder: Path) -> None:
    from scene2brain.features.gabor import to_grayscale

    to_grayscale(np.full((2, 8, 8), 40.0), 8)


def _int_pixels(folder: Path) -> None:
    pixels = np.zeros((3, 4, 4, 3), dtype=np.int32)
    pixels[2, 0, 0, 0] = 1000
    ArrayImages(pixels).read(slice(None))


CASES = [
    Case("images/corrupt-jpeg", lambda f: _read_all(f, "broken.jpg", _corrupt_jpeg()), ImageReadError, "broken.jpg"),
    Case(
        "images/truncated-jpeg",
        lambda f: _read_all(f, "half.jpg", _encoded("JPEG")[: len(_encoded("JPEG")) // 2]),
        ImageReadError,
        "half.jpg",
    ),
    Case(
        "images/truncated-png",
        lambda f: _read_all(f, "cut.png", _encoded("PNG")[:-300]),
        ImageReadError,
        "cut.png",
    ),
    Case(
        "images/text-named-png",
        lambda f: _read_all(f, "notes.png", b"these are my notes, not a picture"),
        ImageReadError,
        "notes.png: not an image file",
    ),
    Case(
        "images/zero-byte-file", lambda f: _read_all(f, "zero.png", b""), ImageReadError, "zero.png: the file is empty"
    ),
    Case(
        "images/missing-file",
        lambda f: FileImages([f / "gone.png"]).read([0]),
        ImageNotFoundError,
        "stimulus image not found: {folder}/gone.png",
    ),
    Case(
        "images/folder-without-images",
        lambda f: (f / "empty").mkdir() or folder_images(f / "empty"),
        ValueError,
        "no image files (.png, .jpg",
    ),
    Case(
        "images/every-file-unreadable-with-skipping",
        lambda f: FileImages([f / "a.png", f / "b.png"], skip_unreadable=True),
        ImageReadError,
        "none of the 2 image files can be read; the first: stimulus image not found: {folder}/a.png",
    ),
    Case(
        "images/array-with-five-channels",
        lambda f: ArrayImages(np.zeros((2, 4, 4, 5), dtype=np.uint8)),
        ValueError,
        "got shape (2, 4, 4, 5)",
    ),
    Case(
        "images/array-of-strings",
        lambda f: ArrayImages(np.full((2, 4, 4), "x")),
        ValueError,
        "got dtype <U1",
    ),
    Case(
        "images/hdf5-with-five-channels",
        lambda f: HDF5Images(_brick(f / "bad.h5", np.zeros((2, 4, 4, 5), dtype=np.uint8))),
        ValueError,
        "bad.h5:imgBrick: expected an array of shape (n, H, W) or (n, H, W, C)",
    ),
    Case(
        "images/not-an-hdf5-file",
        lambda f: (f / "fake.h5").write_text("no") and as_image_source(f / "fake.h5"),
        ValueError,
        "fake.h5 cannot be opened as an HDF5 file",
    ),
    Case(
        "images/npy-of-one-image",
        lambda f: np.save(f / "one.npy", np.zeros((4, 4))) or as_image_source(f / "one.npy"),
        ValueError,
        "one.npy: images: expected an array of shape (n, H, W)",
    ),
    Case("images/int-pixels-above-255", _int_pixels, ValueError, "images[2]: int32 pixel values must lie in 0..255"),
    Case("images/32-bit-tiff-beyond-16-bits", _too_big_mode_i, ImageReadError, "deep.tif: mode I pixel values"),
    Case(
        "images/gabor-floats-outside-unit-range",
        _gabor_float,
        ValueError,
        "images[0]: floating-point pixel values must lie in [0, 1], found [40, 40]",
    ),
    Case("images/simulation-on-a-truncated-file", _simulation_on, ImageReadError, "scan.jpg"),
]
