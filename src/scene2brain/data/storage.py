"""Persist an Experiment (or a stimulus set alone) as a folder: zarr arrays + parquet tables + a JSON header.

Layout::

    experiment/
      experiment.json     format, version, image source (description + digest), split names;
                          for an experiment also subject, metadata, NaN policy
      arrays.zarr/        splits/<name>, images (arrays only); for an experiment also
                          responses (trials x voxels) and trial_stimulus
      stimuli.parquet     the stimulus table
      voxels.parquet      the voxel table (experiments only)

An experiment is written by :func:`save_experiment` (format ``scene2brain.experiment``),
a stimulus set with its splits by :func:`save_stimuli` (format ``scene2brain.stimuli``).
:func:`load_stimuli` reads the stimuli and splits of either without reading responses.

Images held in memory (arrays) are stored in ``arrays.zarr``; images that live in files
(image files, HDF5 bricks, subsets of them) are stored as a reference
(:meth:`~scene2brain.data.images.ImageSource.describe`), never copied. Either way the
header records the images' digest, so a reloaded source never re-reads its pixels to
name its content.

The folder is written next to its destination and moved into place at the end, so
an interrupted save never leaves a folder that loads as complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from scene2brain.data.containers import Experiment, Responses, Stimuli, checked_splits
from scene2brain.data.images import ArrayImages, FileImages, ImageSource
from scene2brain.utils.files import atomic_path

EXPERIMENT_FORMAT = "scene2brain.experiment"
STIMULI_FORMAT = "scene2brain.stimuli"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: images as {"kind": "array"} or {"kind": "files", "paths": [...]}, no digest
HEADER = "experiment.json"
_IMAGE_BLOCK = 256
_RESPONSE_CHUNK_VOXELS = 4096


def save_experiment(experiment: Experiment, path: str | Path) -> Path:
    """Write ``experiment`` to the folder ``path`` (replacing it atomically).

    Parameters
    ----------
    experiment : Experiment
    path : path
        Destination folder.

    Returns
    -------
    Path
        The folder written.
    """
    path = Path(path)
    header = {
        "format": EXPERIMENT_FORMAT,
        "subject": experiment.subject,
        "metadata": experiment.metadata,
        "nan_policy": experiment.responses.nan_policy,
    }
    with atomic_path(path, directory=True) as tmp:
        group = zarr.open_group(tmp / "arrays.zarr", mode="w")
        data = np.asarray(experiment.responses.data)
        group.create_array(
            "responses", data=data, chunks=(data.shape[0] or 1, min(_RESPONSE_CHUNK_VOXELS, max(data.shape[1], 1)))
        )
        group.create_array("trial_stimulus", data=experiment.responses.trial_stimulus)
        experiment.responses.voxels.to_parquet(tmp / "voxels.parquet", index=False)
        _write_stimuli(tmp, group, experiment.stimuli, experiment.splits, header)
    return path


def save_stimuli(stimuli: Stimuli, splits: Mapping[str, Sequence[int] | np.ndarray] | None, path: str | Path) -> Path:
    """Write a stimulus set and its named splits (no responses) to the folder ``path``, atomically.

    Parameters
    ----------
    stimuli : Stimuli
    splits : mapping of str to array of int, optional
        Named, pairwise disjoint sets of stimulus positions.
    path : path
        Destination folder; read it back with :func:`load_stimuli`.

    Returns
    -------
    Path
        The folder written.
    """
    if not isinstance(stimuli, Stimuli):
        raise TypeError(f"stimuli: expected a Stimuli, got {type(stimuli).__name__}")
    path = Path(path)
    clean = checked_splits(splits, len(stimuli))
    with atomic_path(path, directory=True) as tmp:
        group = zarr.open_group(tmp / "arrays.zarr", mode="w")
        _write_stimuli(tmp, group, stimuli, clean, {"format": STIMULI_FORMAT})
    return path


def _write_stimuli(
    folder: Path, group: zarr.Group, stimuli: Stimuli, splits: Mapping[str, np.ndarray], header: dict[str, Any]
) -> None:
    """Write the splits, images, stimulus table and the header (completed here) into ``folder``."""
    split_group = group.create_group("splits")
    for name, idx in splits.items():
        split_group.create_array(name, data=idx)
    images = stimuli.images
    described = None
    if images is not None:
        stored = not images.by_reference
        described = {
            "source": _write_images(group, images) if stored else images.describe(),
            "digest": images.digest(),
            "array": "images" if stored else None,  # where the pixels are in arrays.zarr, if they are
        }
    stimuli.table.to_parquet(folder / "stimuli.parquet", index=False)
    header = {**header, "version": FORMAT_VERSION, "splits": list(splits), "images": described}
    (folder / HEADER).write_text(json.dumps(header, indent=2))


def _write_images(group: zarr.Group, images: ImageSource) -> dict[str, Any]:
    """Copy ``images`` into ``group["images"]`` block by block; return the description of the stored array."""
    n = len(images)
    array = None
    for start in range(0, max(n, 1), _IMAGE_BLOCK):
        block = images.read(slice(start, min(start + _IMAGE_BLOCK, n)))
        if not isinstance(block, np.ndarray):
            raise ValueError(
                f"images: {images!r} holds images of different shapes ({block[0].shape}, ...); only images of "
                "one shape can be stored as an array"
            )
        if array is None:
            array = group.create_array(
                "images", shape=(n, *block.shape[1:]), dtype=block.dtype, chunks=(min(64, n) or 1, *block.shape[1:])
            )
        array[start : start + len(block)] = block
    return ArrayImages(array).describe()


def _read_header(path: Path, formats: Sequence[str]) -> dict[str, Any]:
    header_file = path / HEADER
    if not header_file.is_file():
        raise FileNotFoundError(f"{path} is not a saved experiment: {header_file.name} is missing")
    header = json.loads(header_file.read_text())
    found = header.get("format")
    if found == STIMULI_FORMAT and found not in formats:
        raise ValueError(
            f"{header_file}: a stimulus set saved by save_stimuli (no responses); read it with load_stimuli"
        )
    if found not in formats:
        raise ValueError(f"{header_file}: expected format {' or '.join(map(repr, formats))}, found {found!r}")
    if header.get("version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{header_file}: format version {header.get('version')} is not supported "
            f"(expected one of {READABLE_VERSIONS}); save the experiment again with this version of scene2brain"
        )
    return header


def _read_images(group: zarr.Group, header: dict[str, Any]) -> ImageSource | None:
    info = header.get("images")
    if not info:
        return None
    if header["version"] == 1:
        return FileImages(info["paths"]) if info["kind"] == "files" else ArrayImages(group["images"])
    array = group[info["array"]] if info["array"] else None
    return ImageSource.from_description(info["source"], array=array, digest=info["digest"])


def _read_stimuli(path: Path, header: dict[str, Any]) -> tuple[Stimuli, dict[str, np.ndarray]]:
    group = zarr.open_group(path / "arrays.zarr", mode="r")
    stimuli = Stimuli(pd.read_parquet(path / "stimuli.parquet"), _read_images(group, header))
    return stimuli, {name: np.asarray(group["splits"][name][:]) for name in header["splits"]}


def load_stimuli(path: str | Path) -> tuple[Stimuli, dict[str, np.ndarray]]:
    """The stimuli (table and image source) and splits of a folder, without reading any responses.

    Reads folders written by :func:`save_stimuli` and by :func:`save_experiment`. The
    image source's digest is the recorded one.

    Returns
    -------
    stimuli : Stimuli
    splits : dict of str -> int64 array of stimulus positions
    """
    path = Path(path)
    return _read_stimuli(path, _read_header(path, (EXPERIMENT_FORMAT, STIMULI_FORMAT)))


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment folder written by :func:`save_experiment`.

    Responses are read into memory; images stay on disk (zarr-backed, or the
    referenced files) until indexed.
    """
    path = Path(path)
    header = _read_header(path, (EXPERIMENT_FORMAT,))
    stimuli, splits = _read_stimuli(path, header)
    group = zarr.open_group(path / "arrays.zarr", mode="r")
    voxels = pd.read_parquet(path / "voxels.parquet")
    if voxels.columns.empty:  # parquet keeps no row count without columns: the voxels are the response columns
        voxels = None
    responses = Responses(
        np.asarray(group["responses"][:]),
        np.asarray(group["trial_stimulus"][:]),
        voxels,
        nan_policy=header["nan_policy"],
    )
    return Experiment(header["subject"], stimuli, responses, splits, header["metadata"])
