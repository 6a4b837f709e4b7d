"""The data home: the folder where fetched datasets and the full fsaverage surface live."""

from __future__ import annotations

import os
from pathlib import Path


def data_home(path: str | Path | None = None) -> Path:
    """Where fetched data lives: ``path``, else ``$SCENE2BRAIN_DATA``, else ``~/scene2brain_data``.

    Parameters
    ----------
    path : path, optional
        An explicit data home; it wins over the environment.

    Returns
    -------
    Path
        The folder, with ``~`` expanded (it need not exist yet).
    """
    return Path(path or os.environ.get("SCENE2BRAIN_DATA") or Path.home() / "scene2brain_data").expanduser()
