"""Atomic file and directory writes, and content digests."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
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
