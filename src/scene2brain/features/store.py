"""A content-addressed, resumable store of feature matrices, on disk or in an object store.

Every entry is a folder ``<root>/<name>/<digest>/`` where ``digest`` hashes the
entry's key (everything that determines the features: model, weights digest, layer,
preprocessing, pooling, stimulus-set digest, ...). The folder holds

- ``key.json``: the key, plus free-form information that is not part of it;
- ``features.zarr``: the (n_stimuli, n_features) float32 matrix, chunked by rows;
- ``status.json``: how many leading rows are written and whether the entry is complete.

Beside the entries, the store records the key of each model built for it (a
:class:`KeyMemo`, with the stamp of its weights file), so that a fully cached extraction
finds its entries without building the model
(:class:`~scene2brain.features.models.LazyModel`).

Where the store lives
---------------------
``root`` is a local folder (a path, or a ``file://`` URL), or any URL fsspec knows:
``"s3://bucket/prefix"``, ``"gs://bucket/prefix"``, ``"az://container/prefix"``,
``"memory://name"``, ... (``pip install "scene2brain[dask]"`` for fsspec, plus the
file system's own package: s3fs, gcsfs, adlfs). ``storage_options`` go to fsspec and
zarr (credentials, endpoint), e.g.
``FeatureStore("s3://lab-cache/features", storage_options={"profile": "lab"})``;
without them the file system's usual environment (``AWS_*`` variables, credential
files) applies. Dask workers without a shared file system then share one cache.

Writers, readers and what they may rely on
------------------------------------------
Rows are written in chunks (each chunk a whole file or object, replaced atomically) and
``status.json`` is replaced atomically *after* the rows it counts are written, so a
killed writer leaves an entry that reads as incomplete and resumes from its last
counted row. Only entries marked complete are ever read as results: a reader never
sees a partial entry, whatever the writers do. An existing array of the right shape is
resumed, never recreated, so rows another writer counted are never wiped.

*Local stores* (and ``file://``) are safe for any number of writers, threads of one
process (Dask threads) or processes (Dask workers, several runs) on one machine or on a
shared file system with working ``flock`` (local disks, NFSv4, Lustre and GPFS mounted
with locking): a writer holds the entry's lock (``<entry>/.lock``, :meth:`StoreEntry.lock`)
from its completeness check to its last row, so a second writer of the same entry waits
and then finds it complete (nothing computed twice); the model-key memo (one JSON file,
``.model_keys.json``) is read, changed and replaced under its own lock, so concurrent
records are never lost. The operating system releases a killed writer's locks.

*Object stores* have no locks. Their guarantees rest on atomic whole-object writes and
content addressing: each model-key record is its own object (``.model_keys/<digest>.json``),
so records never overwrite each other; two writers of one entry compute the same rows
(the key fixes the content) and write the same chunks, so a reader sees one of two
equal chunks; and ``status.json`` may briefly count fewer rows than are written (one
writer's update replacing the other's), never more, and is never taken back from
complete. Two simultaneous writers of one entry may both compute it; nothing is lost or
mixed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.errors import ContainsArrayError

from scene2brain.utils.files import atomic_path, file_url_path, folder_lock, text_digest, url_protocol

#: The lock file of an entry of a local store (held while writing it).
LOCK_FILE = ".lock"
_FSSPEC_EXTRA = 'a feature store at a URL needs fsspec: pip install "scene2brain[dask]"'


def key_digest(key: dict[str, Any]) -> str:
    """Digest of a JSON-able key (order of dict items does not matter)."""
    return text_digest(json.dumps(key, sort_keys=True, default=str))


class RemotePath:
    """A file or folder in an fsspec file system (an object store), with the few ``Path`` methods the store uses.

    Parameters
    ----------
    url : str
        ``"protocol://..."`` (or an fsspec chain ``"a::b://..."``).
    storage_options : dict, optional
        Options of the file system (credentials, endpoint, ...).
    fs : fsspec file system, optional
        The file system, when already made (then ``url`` is its path, without protocol).
    what : str
        What to call the URL in error messages (the argument that gave it).
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, fs: Any = None, what: str = "root"):
        self.storage_options = dict(storage_options or {})
        if fs is None:
            try:
                import fsspec
            except ImportError as err:  # pragma: no cover (fsspec comes with the test extra)
                raise ImportError(f"{what} {url!r}: {_FSSPEC_EXTRA}") from err
            try:
                fs, url = fsspec.core.url_to_fs(url, **self.storage_options)
            except ImportError as err:
                raise ImportError(
                    f"{what} {url!r}: the file system of this URL needs a package that is not installed ({err})"
                ) from None
            except (ValueError, TypeError) as err:
                raise ValueError(
                    f"{what} {url!r}: not a store URL fsspec can open ({err}); expected a local folder or a URL "
                    "such as s3://bucket/prefix, gs://bucket/prefix or memory://name"
                ) from None
        self.fs = fs
        self.path = str(url).rstrip("/") or "/"

    @property
    def url(self) -> str:
        """The full URL (with its protocol)."""
        return self.fs.unstrip_protocol(self.path)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemotePath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __truediv__(self, name: str) -> RemotePath:
        return RemotePath(f"{self.path}/{name}", self.storage_options, fs=self.fs)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        """Make the folder (object stores have no folders: usually nothing to do)."""
        self.fs.makedirs(self.path, exist_ok=True)

    def read_text(self) -> str:
        return self.fs.cat_file(self.path).decode()

    def write_text(self, text: str) -> None:
        """Write the whole object at once (atomic on object stores: a reader sees the old or the new text)."""
        self.fs.pipe_file(self.path, text.encode())


Location = Path | RemotePath


def _location(root: Any, storage_options: dict[str, Any] | None, what: str = "root") -> Location:
    """``root`` as a local Path (paths, ``file://`` URLs) or a :class:`RemotePath` (other URLs)."""
    if isinstance(root, RemotePath):
        return root
    if not isinstance(root, str | Path):
        raise TypeError(f"{what}: expected a folder path or a URL string, got {type(root).__name__}")
    protocol = url_protocol(root)
    if protocol is None or (protocol == "file" and "::" not in str(root)):
        if storage_options:
            raise ValueError(
                f"storage_options: given for the local folder {str(root)!r}; they apply to URLs "
                "(s3://..., gs://..., memory://...) only"
            )
        return file_url_path(str(root)) if protocol == "file" else Path(root)
    return RemotePath(str(root), storage_options, what=what)


def _write_json(path: Location, content: dict[str, Any]) -> None:
    text = json.dumps(content, indent=2, default=str)
    if isinstance(path, RemotePath):
        path.write_text(text)
        return
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _read_json(path: Location) -> Any:
    """The JSON content of ``path``; None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # FileNotFoundError, damaged or half-written-by-hand files
        return None


# Locks this process's threads hold (lock file -> holding thread id, count): a thread that
# holds an entry's lock may take it again (extraction holds it and calls StoreEntry.write).
_HELD: dict[str, tuple[int, int]] = {}
_HELD_GUARD = threading.Lock()
if hasattr(os, "register_at_fork"):  # a forked child holds none of them (it must take its own)
    os.register_at_fork(after_in_child=_HELD.clear)


@contextlib.contextmanager
def _reentrant_flock(lock_file: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_file`` for the block, that the holding thread may take again."""
    name, me = os.path.abspath(lock_file), threading.get_ident()
    with _HELD_GUARD:
        holder, count = _HELD.get(name, (None, 0))
        if holder == me:
            _HELD[name] = (me, count + 1)
    if holder == me:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[name] = (me, _HELD[name][1] - 1)
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(lock_file, on_wait=on_wait):
        with _HELD_GUARD:
            _HELD[name] = (me, 1)
        try:
            yield
        finally:
            with _HELD_GUARD:
                del _HELD[name]


class StoreEntry:
    """One feature matrix in a :class:`FeatureStore`.

    Parameters
    ----------
    path : path, URL or RemotePath
        The entry's folder (``<root>/<name>/<digest>``); a string with a protocol
        (``s3://...``) is a URL (see :class:`FeatureStore`).
    key : dict
        The entry's key.
    storage_options : dict, optional
        For a URL: options of its file system.
    """

    def __init__(self, path: str | Path | RemotePath, key: dict[str, Any], storage_options: dict | None = None):
        self.path: Location = _location(path, storage_options, "path")
        self.key = key

    def __repr__(self) -> str:
        return f"StoreEntry({self.path}, rows_done={self.rows_done}, complete={self.complete})"

    @property
    def remote(self) -> bool:
        """Whether the entry lives in an object store (no locks; see the module notes)."""
        return isinstance(self.path, RemotePath)

    @property
    def array_path(self) -> Location:
        return self.path / "features.zarr"

    def _zarr(self) -> dict[str, Any]:
        """How zarr opens the array: ``store`` and, for a URL, ``storage_options``."""
        if isinstance(self.path, RemotePath):
            array = self.array_path
            return {"store": array.url, "storage_options": array.storage_options}
        return {"store": self.array_path}

    def _array_exists(self) -> bool:
        if isinstance(self.path, RemotePath):
            return (self.array_path / "zarr.json").exists()
        return self.array_path.exists()

    def status(self) -> dict[str, Any]:
        """Content of ``status.json`` (``{}`` when the entry was never started)."""
        content = _read_json(self.path / "status.json")
        return content if isinstance(content, dict) else {}

    @property
    def complete(self) -> bool:
        return bool(self.status().get("complete")) and self._array_exists()

    @property
    def rows_done(self) -> int:
        """Leading rows already written (0 when the array is missing)."""
        return int(self.status().get("rows_done", 0)) if self._array_exists() else 0

    @contextlib.contextmanager
    def lock(self, on_wait: Callable[[], None] | None = None) -> Iterator[StoreEntry]:
        """Hold the entry's write lock for the block (a local store); see the module notes.

        Another thread or process that asks for it waits until the block ends (``on_wait``
        is called once first); the thread that holds it may ask again. Writers check
        :attr:`complete` inside the block. In an object store there are no locks: the
        block runs at once.
        """
        if isinstance(self.path, RemotePath):
            yield self
            return
        with _reentrant_flock(self.path / LOCK_FILE, on_wait):
            yield self

    def read(self, lazy: bool = False) -> np.ndarray | zarr.Array:
        """The complete matrix (a zarr array when ``lazy``, else in memory)."""
        if not self.complete:
            raise RuntimeError(f"feature store entry {self.path} is incomplete; it resumes when extracted again")
        array = zarr.open_array(mode="r", **self._zarr())
        return array if lazy else array[:]

    def _existing_array(self, n_rows: int, n_cols: int, chunks: tuple[int, int]) -> bool:
        """Whether the entry already holds a float32 array of this shape and chunking (then it is kept)."""
        if not self._array_exists():
            return False
        try:
            array = zarr.open_array(mode="r", **self._zarr())
        except Exception:  # a damaged array is replaced
            return False
        return array.shape == (n_rows, n_cols) and array.chunks == chunks and array.dtype == np.float32

    def start(self, n_rows: int, n_cols: int, chunk_rows: int, info: dict[str, Any] | None = None) -> int:
        """Prepare for writing an (n_rows, n_cols) matrix; return the first row still to write.

        An existing partial entry of the same shape is resumed. An existing array of this
        shape and chunking is kept (another writer may be filling it: rows it counted are
        never wiped); anything else is replaced. Hold :meth:`lock` around ``start`` and
        :meth:`write_rows` in a store written by several processes.
        """
        status = self.status()
        if status.get("shape") == [n_rows, n_cols] and self._array_exists():
            return int(status.get("rows_done", 0))
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(self.path / "key.json", {"key": self.key, "info": info or {}})
        chunks = (max(1, min(chunk_rows, n_rows)), n_cols)
        if not self._existing_array(n_rows, n_cols, chunks):
            spec = {"shape": (n_rows, n_cols), "chunks": chunks, "dtype": "float32", **self._zarr()}
            try:  # a new array: created without deleting anything (another writer may create it at the same time)
                zarr.create_array(overwrite=self._array_exists(), **spec)
            except ContainsArrayError:  # it did: keep its array if it is this one
                if not self._existing_array(n_rows, n_cols, chunks):
                    zarr.create_array(overwrite=True, **spec)
        _write_json(self.path / "status.json", {"shape": [n_rows, n_cols], "rows_done": 0, "complete": False})
        return 0

    def write_rows(self, start: int, block: np.ndarray, written_from: int | None = None) -> None:
        """Write rows ``start:start + len(block)`` and count them as done.

        ``written_from``: the first row of the contiguous run of rows this writer has written up
        to ``start`` (its resume point). In an object store (no locks) another writer's stale
        status may have counted fewer rows than this writer wrote; knowing its own run, the
        writer still counts every row up to ``stop`` when that run starts at or before the
        counted rows, so that the entry is complete when its last writer finishes.
        """
        array = zarr.open_array(mode="r+", **self._zarr())
        stop = start + len(block)
        array[start:stop] = np.asarray(block, dtype=np.float32)
        status = self.status()
        if status.get("complete") and self.remote:
            return  # another writer finished it (object stores: never take "complete" back)
        done = int(status.get("rows_done", 0))
        if start <= done or (written_from is not None and written_from <= done):  # contiguous with what is written
            done = max(done, stop)
        status.update(shape=list(array.shape), rows_done=done, complete=done == array.shape[0])
        _write_json(self.path / "status.json", status)

    def write(self, features: np.ndarray, chunk_rows: int = 1024, info: dict[str, Any] | None = None) -> None:
        """Store a whole matrix at once and mark the entry complete (under the entry's :meth:`lock`)."""
        features = np.asarray(features)
        if features.ndim != 2:
            raise ValueError(f"features: expected a 2-D matrix, got shape {features.shape}")
        with self.lock():
            self.start(*features.shape, chunk_rows=chunk_rows, info=info)
            self.write_rows(0, features)


@contextlib.contextmanager
def lock_entries(entries: Iterable[StoreEntry], on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the :meth:`~StoreEntry.lock` of every entry, taken in the order of their paths (no deadlocks)."""
    with contextlib.ExitStack() as stack:
        for entry in sorted(entries, key=lambda e: str(e.path)):
            stack.enter_context(entry.lock(on_wait))
        yield


class KeyMemo:
    """Records of model keys, by a JSON-able identity.

    The identity is how a model was asked for (:func:`~scene2brain.features.models.model_request`);
    the record is what building it gave (its name and key, weights digest included, and the
    stamp of its weights file). A missing, unreadable or unwritable memo only means the model
    is built to find its key, as without a memo.

    In a local folder the records are one JSON file (``path``), read, changed and replaced
    under a lock (``<path>.lock``), so writers in several threads or processes never lose
    each other's records. In an object store (``path`` a URL or :class:`RemotePath`) each
    record is its own object, ``<path without .json>/<digest of the identity>.json``,
    written whole (no read-modify-write, no lock needed).

    Parameters
    ----------
    path : path, URL or RemotePath
        The JSON file (created on the first record).
    storage_options : dict, optional
        For a URL: options of its file system.
    """

    def __init__(self, path: str | Path | RemotePath, storage_options: dict | None = None):
        self.path: Location = _location(path, storage_options, "path")

    def _record_path(self, digest: str) -> RemotePath:
        folder = self.path.path[: -len(".json")] if self.path.path.endswith(".json") else self.path.path
        return RemotePath(f"{folder}/{digest}.json", self.path.storage_options, fs=self.path.fs)

    def _read(self) -> dict[str, Any]:
        content = _read_json(self.path)
        return content if isinstance(content, dict) else {}

    def get(self, identity: dict[str, Any]) -> dict[str, Any] | None:
        """The record of ``identity``, or None."""
        digest = key_digest(identity)
        item = _read_json(self._record_path(digest)) if self.remote else self._read().get(digest)
        if not isinstance(item, dict) or item.get("identity") != json.loads(json.dumps(identity, default=str)):
            return None
        record = item.get("record")
        return record if isinstance(record, dict) else None

    @property
    def remote(self) -> bool:
        return isinstance(self.path, RemotePath)

    def put(self, identity: dict[str, Any], record: dict[str, Any]) -> None:
        """Record ``record`` for ``identity`` (atomically; nothing happens if the memo cannot be written)."""
        digest = key_digest(identity)
        item = {"identity": identity, "record": record}
        try:
            if isinstance(self.path, RemotePath):
                _write_json(self._record_path(digest), item)
                return
            with _reentrant_flock(self.path.with_name(self.path.name + ".lock")):
                content = self._read()
                content[digest] = item
                _write_json(self.path, content)
        except OSError:  # a read-only store: its complete entries are still readable, found by building the model
            pass


class FeatureStore:
    """Feature matrices under ``root`` (a local folder or an object-store URL), addressed by their keys.

    Parameters
    ----------
    root : path or str
        A local folder (a path or a ``file://`` URL: unchanged behaviour, with locks), or a
        URL fsspec opens (``s3://bucket/prefix``, ``gs://...``, ``memory://name``, ...);
        see the module notes for what concurrent writers may rely on in each.
    storage_options : dict, optional
        For a URL: options of its file system (credentials, endpoint, ...), passed to
        fsspec and zarr. Not used for local folders (an error).

    Examples
    --------
    >>> import tempfile
    >>> store = FeatureStore(tempfile.mkdtemp())
    >>> x, hit = store.get_or_compute("demo", {"n": 2}, lambda: np.eye(2))
    >>> hit, store.get_or_compute("demo", {"n": 2}, lambda: np.zeros((2, 2)))[1]
    (False, True)
    >>> FeatureStore("memory://doc-store").root
    RemotePath('memory:///doc-store')
    """

    MEMO_FILE = ".model_keys.json"

    def __init__(self, root: str | Path | RemotePath, storage_options: dict[str, Any] | None = None):
        self.root: Location = _location(root, storage_options)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    @property
    def remote(self) -> bool:
        """Whether the store lives in an object store (see the module notes)."""
        return isinstance(self.root, RemotePath)

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

        In a local store the entry's lock is held while computing, so concurrent callers
        with the same key compute it once (the others wait, then read it).

        Returns
        -------
        features : ndarray
        hit : bool
            Whether the entry came from the store.
        """
        entry = self.entry(name, key)
        if entry.complete:
            return entry.read(), True
        with entry.lock():
            if entry.complete:  # written by another writer while this one waited
                return entry.read(), True
            features = np.asarray(compute(), dtype=np.float32)
            entry.write(features)
        return features, False
