"""A content-addressed on-disk cache of feature matrices.

Each entry is keyed by a digest of everything that determines it (feature space,
its parameters, the stimulus images) and stored as ``<name>-<digest>.npy`` with a
JSON sidecar describing the key. Files are written atomically, so an interrupted
run never leaves an entry that reads as complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scene2brain.utils.files import atomic_path, save_npy_atomic, text_digest


class FeatureCache:
    """Feature matrices on disk under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, name: str, key: dict[str, Any]) -> Path:
        digest = text_digest(json.dumps(key, sort_keys=True, default=str))
        return self.root / f"{name}-{digest}.npy"

    def get_or_compute(
        self, name: str, key: dict[str, Any], compute: Callable[[], np.ndarray]
    ) -> tuple[np.ndarray, bool]:
        """Load the entry for ``key`` or compute and store it.

        Returns
        -------
        features : ndarray
        hit : bool
            Whether the entry came from the cache.
        """
        path = self.path(name, key)
        if path.is_file():
            return np.load(path), True
        features = compute()
        save_npy_atomic(path, features)
        with atomic_path(path.with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps({"name": name, "key": key, "shape": list(features.shape)}, indent=2, default=str))
        return features, False
