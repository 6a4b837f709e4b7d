"""Checked reading of dataset files: every failure names the file, what was found and what was expected.

The rules here are shared by the loaders and by :func:`~scene2brain.data.datasets.check_dataset`,
so that a copy the check passes is a copy the loader reads:

- :func:`load_npy` / :func:`npy_header`: a ``.npy`` file's header (shape, dtype) against its
  size, its number of dimensions and its dtype kind;
- :func:`check_shape`: a shape against the expected one (``None`` matches anything);
- :func:`count_nonfinite` / :func:`check_nonfinite`: NaN and inf counts of a response
  matrix, read in row blocks (bounded memory), and what a ``nan_policy`` makes of them;
- :func:`drop_voxels`: the ``"drop"`` policy, recorded in the experiment's metadata.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

#: What a loader does with NaN or inf responses: ``"raise"`` (an error naming the file and how many
#: voxels and rows are affected), ``"drop"`` (leave out every voxel with a NaN or inf, recorded in
#: ``metadata["dropped_voxels"]``) or ``"allow"`` (keep them; NaN-aware analyses only).
NanPolicy = Literal["raise", "drop", "allow"]
NAN_POLICIES: tuple[str, ...] = ("raise", "drop", "allow")

_BLOCK_BYTES = 64 * 2**20  # rows read at a time when counting NaN: about 64 MiB


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


def require_root(root: str | Path, what: str) -> Path:
    """``root`` if it is a folder, else one :class:`DatasetFileError` saying what it should hold."""
    root = Path(root)
    if not root.is_dir():
        found = "a file, not a folder" if root.exists() else "missing"
        raise DatasetFileError(f"{root}: {found}; expected the root folder of {what}")
    return root


def npy_header(path: Path, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of a ``.npy`` file, checked against the file's size.

    Raises
    ------
    DatasetFileError
        When the header is unreadable, or the file is shorter (truncated) or longer than
        its header says (object arrays, which are pickled, are not size-checked).
    """
    require(path, what)
    try:
        with open(path, "rb") as fh:
            shape, _, dtype = _read_npy_header(fh)
            offset = fh.tell()
    except Exception as err:  # not a .npy file, or a header cut short
        raise DatasetFileError(f"{path}: could not be read as .npy ({err}); expected {what}") from err
    if not dtype.hasobject:
        expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        size = path.stat().st_size
        if size < expected:
            raise DatasetFileError(
                f"{path}: truncated: its header says shape {shape} {dtype} ({expected} bytes with the header), "
                f"the file holds {size} bytes; expected {what}"
            )
        if size > expected:
            raise DatasetFileError(
                f"{path}: {size - expected} bytes more than its header says (shape {shape} {dtype}, {expected} "
                f"bytes); the file is damaged; expected {what}"
            )
    return tuple(int(n) for n in shape), dtype, offset


def load_npy(
    path: Path,
    what: str,
    *,
    ndim: int | None = None,
    kind: str | None = None,
    allow_pickle: bool = False,
    mmap: bool = False,
) -> Any:
    """Load a ``.npy`` file, checking its size against its header, its dimensions and dtype kind ("f", "i"...).

    With ``mmap=True`` the array is memory-mapped read-only (nothing is read until used).
    """
    shape, dtype, _ = npy_header(path, what)
    if ndim is not None and len(shape) != ndim:
        raise DatasetFileError(f"{path}: expected {what} with {ndim} dimension(s), found shape {shape}")
    if kind is not None and dtype.kind not in kind:
        raise DatasetFileError(f"{path}: expected {what} of dtype kind {kind!r}, found dtype {dtype}")
    try:
        return np.load(path, allow_pickle=allow_pickle, mmap_mode="r" if mmap and not dtype.hasobject else None)
    except Exception as err:  # corrupt pickles and the like raise several exception types
        raise DatasetFileError(f"{path}: could not be read as .npy ({err}); expected {what}") from err


def _read_npy_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(fh)


def npz_headers(path: Path, what: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array of an ``.npz`` archive, from the members' headers (no data read).

    Each member's size is checked against its header; a truncated archive (no zip
    directory) or member is a :class:`DatasetFileError`.
    """
    require(path, what)
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as fh:
                    shape, _, dtype = _read_npy_header(fh)
                    offset = fh.tell()
                name = info.filename.removesuffix(".npy")
                expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if not dtype.hasobject and info.file_size != expected:
                    raise DatasetFileError(
                        f"{path}: array {name!r} holds {info.file_size} bytes, its header says shape {shape} "
                        f"{dtype} ({expected} bytes); expected {what}"
                    )
                headers[name] = (tuple(int(n) for n in shape), dtype)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        if isinstance(err, DatasetFileError):
            raise
        raise DatasetFileError(f"{path}: could not be read as .npz ({err}); expected {what}") from err
    return headers


def npz_row_blocks(path: Path, name: str, max_bytes: int = _BLOCK_BYTES) -> Iterator[np.ndarray]:
    """Blocks of rows of the 2-D array ``name`` of an ``.npz`` archive, read from the zip stream (bounded memory)."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as fh:
        shape, fortran, dtype = _read_npy_header(fh)
        if fortran or len(shape) != 2:
            yield np.load(path)[name]
            return
        row_bytes = shape[1] * dtype.itemsize
        step = max(1, max_bytes // max(1, row_bytes))
        for start in range(0, shape[0], step):
            n = min(step, shape[0] - start)
            yield np.frombuffer(fh.read(n * row_bytes), dtype=dtype).reshape(n, shape[1])


def check_shape(path: Path, array: Any, expected: tuple, what: str) -> None:
    """Raise unless the shape of ``array`` (an array or a shape tuple) matches ``expected`` (``None``: any)."""
    shape = tuple(array) if isinstance(array, tuple) else tuple(array.shape)
    ok = len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected, strict=True))
    if not ok:
        shown = tuple("any" if e is None else e for e in expected)
        raise DatasetFileError(f"{path}: expected {what} of shape {shown}, found {shape}")


def check_nan_policy(nan_policy: str) -> str:
    """``nan_policy`` if it is one of :data:`NAN_POLICIES`, else a ValueError naming the argument."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy: expected one of {NAN_POLICIES}, got {nan_policy!r}")
    return nan_policy


@dataclass(frozen=True)
class NonFinite:
    """NaN and inf counts of a (rows x columns) response matrix.

    Attributes
    ----------
    n_nan, n_inf : int
        Values that are NaN, and +-inf.
    bad_columns : ndarray of bool
        Columns (voxels) with at least one NaN or inf.
    n_bad_rows : int
        Rows with at least one NaN or inf.
    shape : tuple
        (rows, columns) counted.
    """

    n_nan: int
    n_inf: int
    bad_columns: np.ndarray
    n_bad_rows: int
    shape: tuple[int, int]

    @property
    def any(self) -> bool:
        return bool(self.n_nan or self.n_inf)

    @property
    def all(self) -> bool:
        """Every value is NaN or inf (an empty matrix is not)."""
        return self.shape[0] * self.shape[1] > 0 and self.n_nan + self.n_inf == self.shape[0] * self.shape[1]

    def describe(self, rows: str = "rows", columns: str = "voxels") -> str:
        """``"12 NaN and 0 inf values in 2 of 30 voxels (5 of 12 rows)"``, or ``""`` when there are none."""
        if not self.any:
            return ""
        return (
            f"{self.n_nan} NaN and {self.n_inf} inf values in {int(self.bad_columns.sum())} of {self.shape[1]} "
            f"{columns} ({self.n_bad_rows} of {self.shape[0]} {rows})"
        )


def row_blocks(array: Any, max_bytes: int = _BLOCK_BYTES) -> Iterator[np.ndarray]:
    """Blocks of rows of a 2-D array-like (ndarray, memmap, h5py dataset), about ``max_bytes`` each."""
    n_rows, n_cols = array.shape
    step = max(1, max_bytes // max(1, n_cols * np.dtype(array.dtype).itemsize))
    for start in range(0, n_rows, step):
        yield np.asarray(array[start : start + step])


def count_nonfinite(blocks: Iterable[np.ndarray] | np.ndarray, n_columns: int | None = None) -> NonFinite:
    """Count NaN and inf values of a response matrix given whole or as blocks of rows (bounded memory).

    Parameters
    ----------
    blocks : 2-D array-like or iterable of 2-D arrays
        The matrix (read through :func:`row_blocks`), or its consecutive row blocks.
    n_columns : int, optional
        The number of columns, needed only when ``blocks`` may be empty.
    """
    if hasattr(blocks, "shape"):
        n_columns = blocks.shape[1]
        blocks = row_blocks(blocks)
    bad_columns = None if n_columns is None else np.zeros(n_columns, dtype=bool)
    n_nan = n_inf = n_bad_rows = n_rows = 0
    for block in blocks:
        block = np.asarray(block)
        if bad_columns is None:
            bad_columns = np.zeros(block.shape[1], dtype=bool)
        n_rows += block.shape[0]
        if block.dtype.kind not in "fc":
            continue  # integers hold no NaN
        nan = np.isnan(block)
        inf = np.isinf(block)
        n_nan += int(nan.sum())
        n_inf += int(inf.sum())
        bad = nan | inf
        bad_columns |= bad.any(axis=0)
        n_bad_rows += int(bad.any(axis=1).sum())
    bad_columns = np.zeros(0, dtype=bool) if bad_columns is None else bad_columns
    return NonFinite(n_nan, n_inf, bad_columns, n_bad_rows, (n_rows, len(bad_columns)))


def check_nonfinite(
    path: Path | str, counts: NonFinite, nan_policy: str, what: str, rows: str = "rows", columns: str = "voxels"
) -> None:
    """Apply a NaN policy's rule to the counts of one file: raise a :class:`DatasetFileError` or pass.

    A file whose every value is NaN or inf is refused under every policy (the file is
    damaged); a file with some is refused under ``"raise"``, with the counts and the
    option that would load it.
    """
    if counts.all:
        raise DatasetFileError(
            f"{path}: every value of {what} is NaN or inf ({counts.n_nan} NaN, {counts.n_inf} inf in a "
            f"{counts.shape[0]} x {counts.shape[1]} matrix); the file is damaged or was not written completely"
        )
    if counts.any and nan_policy == "raise":
        raise DatasetFileError(
            f"{path}: {counts.describe(rows, columns)} of {what}; pass nan_policy='drop' to leave those "
            f"{columns} out (listed in metadata['dropped_voxels']) or nan_policy='allow' to keep them (in a run "
            'configuration: [dataset] options = {nan_policy = "drop"})'
        )


def drop_voxels(
    data: np.ndarray,
    voxels: pd.DataFrame,
    bad: np.ndarray,
    nan_policy: str,
    metadata: dict[str, Any],
    source: Path | str,
    id_columns: Iterable[str] = (),
) -> tuple[np.ndarray, pd.DataFrame]:
    """Apply ``nan_policy`` to the voxels flagged ``bad``; record what was done in ``metadata``.

    ``metadata`` gets ``nan_policy``, ``n_nan_voxels`` and, under ``"drop"``,
    ``dropped_voxels``: the dropped voxels' ``column`` (position in the file's full
    response matrix) and their ``id_columns`` of the voxel table, as lists. Dropping
    warns, naming ``source``.
    """
    bad = np.asarray(bad, dtype=bool)
    metadata["nan_policy"] = nan_policy
    metadata["n_nan_voxels"] = int(bad.sum())
    if nan_policy != "drop":
        return data, voxels
    dropped: dict[str, list] = {"column": np.flatnonzero(bad).tolist()}
    for column in id_columns:
        dropped[column] = [_plain(v) for v in voxels.loc[bad, column]]
    metadata["dropped_voxels"] = dropped
    if bad.any():
        warnings.warn(
            f"{source}: {int(bad.sum())} of {len(bad)} voxels have NaN responses and were left out "
            "(nan_policy='drop'; listed in metadata['dropped_voxels'])",
            stacklevel=3,
        )
        data = np.ascontiguousarray(data[:, ~bad])
        voxels = voxels.loc[~bad].reset_index(drop=True)
    return data, voxels


def _plain(value: Any) -> Any:
    """A JSON-friendly Python scalar (numpy scalars unwrapped, missing as None)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


@dataclass(frozen=True)
class FileCheck:
    """The state of one file of a dataset copy, as :func:`~scene2brain.data.datasets.check_dataset` found it.

    Unpacks as ``(path, status)``.

    Attributes
    ----------
    path : str
        Relative to the dataset root (folders end with "/").
    status : str
        ``"ok"``, ``"missing"`` or ``"malformed: <why>"``.
    note : str
        Facts about a readable file worth knowing (NaN and inf counts), else "".
    """

    path: str
    status: str
    note: str = ""

    def __iter__(self) -> Iterator[str]:
        return iter((self.path, self.status))

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class CopyCheck:
    """Runs the per-file checks of a dataset copy and collects their :class:`FileCheck` results."""

    def __init__(self, root: Path):
        self.root = root
        self.results: list[FileCheck] = []

    def file(self, rel: str, check: Callable[[Path], Any], after: str = "") -> Any:
        """Run ``check(root / rel)``; record ok / missing / malformed; return its value (None if not ok).

        ``check`` returns a value, or a :class:`Noted` (value and note); a
        :class:`DatasetFileError` (or any error reading the file) makes the file malformed
        with the error's message, less the leading path. ``after`` names files this one
        is compared with that were themselves not ok (the comparison is skipped, and noted).
        """
        path = self.root / rel
        exists = path.is_dir() if rel.endswith("/") else path.is_file()
        if not exists:
            self.results.append(FileCheck(rel, "missing"))
            return None
        try:
            value = check(path)
        except Exception as err:  # the loaders' DatasetFileError, or anything else a damaged file raises
            message = str(err)
            for prefix in (f"{path}: ", f"{path}/: "):
                message = message.removeprefix(prefix)
            kind = "" if isinstance(err, DatasetFileError) else f"{type(err).__name__}: "
            self.results.append(FileCheck(rel, f"malformed: {kind}{message}"))
            return None
        note = ""
        if isinstance(value, Noted):
            value, note = value.value, value.note
        if after:
            note = "; ".join(n for n in (note, f"not compared with {after}, which is not ok") if n)
        self.results.append(FileCheck(rel, "ok", note))
        return value


@dataclass(frozen=True)
class Noted:
    """A check's value with a note for its :class:`FileCheck` (see :meth:`CopyCheck.file`)."""

    value: Any
    note: str
