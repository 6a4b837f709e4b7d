"""Atomic file and directory writes, leftovers of killed writers, an exclusive folder lock, content digests,
file stamps, URLs and the cache folder.

:func:`atomic_path` writes next to its target in a hidden temporary (``.<name>.XXXX.tmp``)
and renames it into place; a process killed in the block leaves that temporary behind,
and :func:`remove_temporaries` (run by the next writer that holds the folder's
:func:`folder_lock`) removes it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(target: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path that replaces ``target`` only if the block succeeds.

    The temporary file or folder lives next to ``target`` (same file system), so the
    final ``os.replace`` is atomic for files. A reader never sees a half-written
    result: either the previous content or the complete new one.

    Parameters
    ----------
    target : path
        Final location.
    directory : bool
        Whether the block writes a directory instead of a file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod((0o777 if directory else 0o666) & ~umask)  # mkstemp/mkdtemp create private modes
    try:
        yield tmp
        if directory:
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def save_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` in .npy format atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def array_digest(*arrays: np.ndarray, length: int = 16) -> str:
    """SHA-256 hex digest (truncated) of arrays' shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.data)
    return h.hexdigest()[:length]


def text_digest(text: str, length: int = 16) -> str:
    """SHA-256 hex digest (truncated) of a string."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


#: Names :func:`atomic_path` leaves behind when its process is killed: ``.<name>.XXXX.tmp`` (the temporary) and
#: ``.<name>.old-<pid>`` (a replaced folder not yet removed).
TEMPORARY = re.compile(r"^\..+\.(tmp|old-\d+)$")


def remove_temporaries(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Remove what killed :func:`atomic_path` writers left in ``folder``; return the removed paths.

    Only call this while no other process writes into ``folder`` (hold its :func:`folder_lock`):
    a live writer's temporary looks exactly like a dead one's.

    Parameters
    ----------
    folder : path
        The folder to clean; a missing folder has nothing to clean.
    recursive : bool
        Also clean the subfolders (temporaries are not descended into).
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        if TEMPORARY.match(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        elif recursive and entry.is_dir() and not entry.is_symlink():
            removed += remove_temporaries(entry, recursive=True)
    return removed


@contextlib.contextmanager
def folder_lock(path: str | Path, on_wait: Callable[[], None] | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on the file ``path`` (created) for the block; wait while another process holds it.

    The lock is an advisory ``flock`` on the file: the operating system releases it when its holder
    exits, also when killed, so a killed run never leaves a folder locked. Where ``fcntl`` is not
    available (Windows) the block runs unlocked.

    Parameters
    ----------
    path : path
        The lock file (its folder must exist).
    on_wait : callable, optional
        Called once if the lock is held by another process, before waiting for it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows)
        yield Path(path)
        return
    path = Path(path)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def nearest_existing(path: str | Path) -> Path:
    """``path`` itself if it exists, else its closest existing ancestor."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def folder_problem(path: str | Path, key: str) -> str | None:
    """Why ``path`` cannot be (or become) a folder this process writes into, or None.

    The message names ``key`` (the setting or option that gave the path), the path and what was expected:
    a file in the way (at the path or above it), or a folder without write permission.
    """
    path = Path(path).absolute()
    existing = nearest_existing(path)
    if existing == path and not path.is_dir():
        return f"{key}: {path} is a file; expected a folder (or a path that does not exist yet)"
    if not existing.is_dir():
        return f"{key}: {path} cannot be created: {existing} is a file; expected a folder there"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is" if existing == path else f"would be created in {existing}, which is"
        return f"{key}: {path} {what} not writable (permission denied); expected a folder you can write to"
    return None


def free_bytes(path: str | Path) -> int:
    """Free space, in bytes, on the file system that holds (or would hold) ``path``."""
    return shutil.disk_usage(nearest_existing(path)).free


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is the operating system's "no space left" (or quota exceeded) error."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def url_protocol(location: str | Path) -> str | None:
    """The protocol of a URL (``"s3"`` for ``"s3://bucket/key"``, ``"memory"``, ``"file"``, ...), else None.

    A :class:`~pathlib.Path` is never a URL; a string is one when it has ``"://"`` (``"proto://..."``) or
    is an fsspec chain (``"simplecache::s3://..."``, whose protocol is the first one).
    """
    if not isinstance(location, str):
        return None
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)(://|::)", location)
    return match.group(1).lower() if match else None


def file_url_path(url: str) -> Path:
    """The local path of a ``file://`` URL (``file:///tmp/x`` and ``file://localhost/tmp/x`` -> ``/tmp/x``).

    Raises
    ------
    ValueError
        When ``url`` is not a ``file://`` URL or names another host.
    """
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    if parsed.scheme.lower() != "file":
        raise ValueError(f"url: expected a file:// URL, got {url!r}")
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(f"url: {url!r} names host {parsed.netloc!r}; a file:// URL must be local (file:///path)")
    return Path(unquote(parsed.path))


def stat_stamp(path: str | Path) -> dict[str, int | str]:
    """What identifies a file's content without reading it: resolved path, size, inode, modification and change times.

    Rewriting the file (in place or by replacing it) changes the stamp; only a rewrite to the same
    size, in place, within one tick of the file system's clock goes unseen.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    """
    path = Path(path).resolve()
    st = path.stat()
    return {
        "path": str(path),
        "size": st.st_size,
        "inode": st.st_ino,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
    }


#: Environment variable naming scene2brain's cache folder (memos of image digests); empty: no cache.
CACHE_ENV = "SCENE2BRAIN_CACHE"


def cache_home() -> Path | None:
    """scene2brain's cache folder, or None when caching is turned off.

    ``$SCENE2BRAIN_CACHE``, else ``$XDG_CACHE_HOME/scene2brain``, else ``~/.cache/scene2brain``;
    None when ``$SCENE2BRAIN_CACHE`` is set to the empty string. The folder need not exist yet.
    It holds only memos that can be recomputed (deleting it is safe).
    """
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value).expanduser() if value.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "scene2brain"
