"""A content-addressed, resumable on-disk store of feature matrices.

Every entry is a folder ``<root>/<name>/<digest>/`` where ``digest`` hashes the
entry's key (everything that determines the features: model, weights digest, layer,
preprocessing, pooling, stimulus-set digest, ...). The folder holds

- ``key.json``: the key, plus free-form information that is not part of it;
- ``features.zarr``: the (n_stimuli, n_features) float32 matrix, chunked by rows;
- ``status.json``: how many leading rows are written and whether the entry is complete.

Beside the entries, ``<root>/.model_keys.json`` (a :class:`KeyMemo`) records the key of each
model built for the store (with the stamp of its weights file), so that a fully cached
extraction finds its entries without building the model
(:class:`~scene2brain.features.models.LazyModel`).

Rows are written in chunks (zarr replaces each chunk file atomically) and
``status.json`` is replaced atomically *after* the rows it counts are on disk, so a
killed writer leaves an entry that reads as incomplete and resumes from its last
counted row. Only entries marked complete are ever read as results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from scene2brain.utils.files import atomic_path, text_digest


def _write_json(path: Path, content: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2, default=str))


def key_digest(key: dict[str, Any]) -> str:
    """Digest of a JSON-able key (order of dict items does not matter)."""
    return text_digest(json.dumps(key, sort_keys=True, default=str))


class StoreEntry:
    """One feature matrix in a :class:`FeatureStore`."""

    def __init__(self, path: Path, key: dict[str, Any]):
        self.path = path
        self.key = key

    def __repr__(self) -> str:
        return f"StoreEntry({self.path}, rows_done={self.rows_done}, complete={self.complete})"

    @property
    def array_path(self) -> Path:
        return self.path / "features.zarr"

    def status(self) -> dict[str, Any]:
        """Content of ``status.json`` (``{}`` when the entry was never started)."""
        try:
            return json.loads((self.path / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    @property
    def complete(self) -> bool:
        return bool(self.status().get("complete")) and self.array_path.exists()

    @property
    def rows_done(self) -> int:
        """Leading rows already on disk (0 when the array is missing)."""
        return int(self.status().get("rows_done", 0)) if self.array_path.exists() else 0

    def read(self, lazy: bool = False) -> np.ndarray | zarr.Array:
        """The complete matrix (a zarr array when ``lazy``, else in memory)."""
        if not self.complete:
            raise RuntimeError(f"feature store entry {self.path} is incomplete; it resumes when extracted again")
        array = zarr.open_array(self.array_path, mode="r")
        return array if lazy else array[:]

    def start(self, n_rows: int, n_cols: int, chunk_rows: int, info: dict[str, Any] | None = None) -> int:
        """Prepare for writing an (n_rows, n_cols) matrix; return the first row still to write.

        An existing partial entry of the same shape is resumed; anything else is replaced.
        """
        status = self.status()
        if status.get("shape") == [n_rows, n_cols] and self.array_path.exists():
            return int(status.get("rows_done", 0))
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(self.path / "key.json", {"key": self.key, "info": info or {}})
        chunks = (max(1, min(chunk_rows, n_rows)), n_cols)
        zarr.create_array(self.array_path, shape=(n_rows, n_cols), chunks=chunks, dtype="float32", overwrite=True)
        _write_json(self.path / "status.json", {"shape": [n_rows, n_cols], "rows_done": 0, "complete": False})
        return 0

    def write_rows(self, start: int, block: np.ndarray) -> None:
        """Write rows ``start:start + len(block)`` and count them as done."""
        array = zarr.open_array(self.array_path, mode="r+")
        stop = start + len(block)
        array[start:stop] = np.asarray(block, dtype=np.float32)
        status = self.status()
        done = int(status.get("rows_done", 0))
        if start <= done:  # contiguous with what is already written
            done = max(done, stop)
        status.update(rows_done=done, complete=done == array.shape[0])
        _write_json(self.path / "status.json", status)

    def write(self, features: np.ndarray, chunk_rows: int = 1024, info: dict[str, Any] | None = None) -> None:
        """Store a whole matrix at once and mark the entry complete."""
        features = np.asarray(features)
        if features.ndim != 2:
            raise ValueError(f"features: expected a 2-D matrix, got shape {features.shape}")
        self.start(*features.shape, chunk_rows=chunk_rows, info=info)
        self.write_rows(0, features)


class KeyMemo:
    """Records of model keys, in one JSON file, by a JSON-able identity.

    The identity is how a model was asked for (:func:`~scene2brain.features.models.model_request`);
    the record is what building it gave (its name and key, weights digest included, and the
    stamp of its weights file). A missing, unreadable or unwritable file only means the model
    is built to find its key, as without a memo.

    Parameters
    ----------
    path : path
        The JSON file (created on the first record).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            content = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return content if isinstance(content, dict) else {}

    def get(self, identity: dict[str, Any]) -> dict[str, Any] | None:
        """The record of ``identity``, or None."""
        item = self._read().get(key_digest(identity))
        if not isinstance(item, dict) or item.get("identity") != json.loads(json.dumps(identity, default=str)):
            return None
        record = item.get("record")
        return record if isinstance(record, dict) else None

    def put(self, identity: dict[str, Any], record: dict[str, Any]) -> None:
        """Record ``record`` for ``identity`` (atomically; nothing happens if the file cannot be written)."""
        content = self._read()
        content[key_digest(identity)] = {"identity": identity, "record": record}
        try:
            _write_json(self.path, content)
        except OSError:  # a read-only store: its complete entries are still readable, found by building the model
            pass


class FeatureStore:
    """Feature matrices on disk under ``root``, addressed by their keys.

    Examples
    --------
    >>> import tempfile
    >>> store = FeatureStore(tempfile.mkdtemp())
    >>> x, hit = store.get_or_compute("demo", {"n": 2}, lambda: np.eye(2))
    >>> hit, store.get_or_compute("demo", {"n": 2}, lambda: np.zeros((2, 2)))[1]
    (False, True)
    """

    MEMO_FILE = ".model_keys.json"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def memo(self) -> KeyMemo:
        """The store's record of model keys (see :class:`KeyMemo`)."""
        return KeyMemo(self.root / self.MEMO_FILE)

    def entry(self, name: str, key: dict[str, Any]) -> StoreEntry:
        """The entry of ``key`` among the entries of model ``name``."""
        folder = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        return StoreEntry(self.root / folder / key_digest(key), key)

    def get_or_compute(
        self, name: str, key: dict[str, Any], compute: Callable[[], np.ndarray]
    ) -> tuple[np.ndarray, bool]:
        """Read the complete entry for ``key``, or compute, store and return it.

        Returns
        -------
        features : ndarray
        hit : bool
            Whether the entry came from the store.
        """
        entry = self.entry(name, key)
        if entry.complete:
            return entry.read(), True
        features = np.asarray(compute(), dtype=np.float32)
        entry.write(features)
        return features, False
