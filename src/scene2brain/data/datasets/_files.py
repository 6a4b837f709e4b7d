"""Checked reading of dataset files: every failure names the file, what was found and what was expected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np


class DatasetFileError(ValueError):
    """A dataset file is missing, unreadable or not in the expected format."""


def subject_number(subject: int | str, prefix: str, n_subjects: int, width: int = 1) -> int:
    """1..n_subjects from ``3``, ``"3"`` or the dataset's own label (``"subj03"``, ``"S1"``, ``"CSI2"``...)."""
    match = re.fullmatch(rf"(?:{re.escape(prefix)})?0*(\d+)", str(subject), flags=re.IGNORECASE)
    if not match or not 1 <= int(match.group(1)) <= n_subjects:
        first, last = f"{prefix}{1:0{width}d}", f"{prefix}{n_subjects:0{width}d}"
        raise ValueError(f"subject: expected 1..{n_subjects} or {first!r}..{last!r}, got {subject!r}")
    return int(match.group(1))


def nsd_subject(subject: int | str) -> int:
    """NSD (and Algonauts 2023) subject 1..8 from ``3``, ``"3"`` or ``"subj03"``."""
    return subject_number(subject, "subj", 8, 2)


def require(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a :class:`DatasetFileError` saying what it should hold."""
    if not path.is_file():
        hint = " (the folder does not exist either)" if not path.parent.is_dir() else ""
        raise DatasetFileError(f"{path}: missing{hint}; expected {what}")
    return path


def load_npy(
    path: Path, what: str, *, ndim: int | None = None, kind: str | None = None, allow_pickle: bool = False
) -> Any:
    """Load a ``.npy`` file, checking its number of dimensions and dtype kind ("f", "i", "b", "O"...)."""
    require(path, what)
    try:
        array = np.load(path, allow_pickle=allow_pickle)
    except Exception as err:  # truncated or corrupt files raise several exception types
        raise DatasetFileError(f"{path}: could not be read as .npy ({err}); expected {what}") from err
    if ndim is not None and array.ndim != ndim:
        raise DatasetFileError(f"{path}: expected {what} with {ndim} dimension(s), found shape {array.shape}")
    if kind is not None and array.dtype.kind not in kind:
        raise DatasetFileError(f"{path}: expected {what} of dtype kind {kind!r}, found dtype {array.dtype}")
    return array


def check_shape(path: Path, array: np.ndarray, expected: tuple, what: str) -> None:
    """Raise unless ``array.shape`` matches ``expected`` (``None`` entries match anything)."""
    ok = len(array.shape) == len(expected) and all(
        e is None or e == s for s, e in zip(array.shape, expected, strict=True)
    )
    if not ok:
        shown = tuple("any" if e is None else e for e in expected)
        raise DatasetFileError(f"{path}: expected {what} of shape {shown}, found {array.shape}")
