"""Persist an Experiment as a folder: zarr arrays + parquet tables + a JSON header.

Layout::

    experiment/
      experiment.json     subject, metadata, format version, image storage
      arrays.zarr/        responses (trials x voxels), trial_stimulus, splits/<name>, images
      stimuli.parquet     the stimulus table
      voxels.parquet      the voxel table

The folder is written next to its destination and moved into place at the end, so
an interrupted save never leaves a folder that loads as complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from scene2brain.data.containers import ArrayImages, Experiment, FileImages, Responses, Stimuli
from scene2brain.utils.files import atomic_path

FORMAT_VERSION = 1
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
        "format": "scene2brain.experiment",
        "version": FORMAT_VERSION,
        "subject": experiment.subject,
        "metadata": experiment.metadata,
        "nan_policy": experiment.responses.nan_policy,
        "splits": list(experiment.splits),
        "images": None,
    }
    with atomic_path(path, directory=True) as tmp:
        group = zarr.open_group(tmp / "arrays.zarr", mode="w")
        data = np.asarray(experiment.responses.data)
        group.create_array(
            "responses", data=data, chunks=(data.shape[0] or 1, min(_RESPONSE_CHUNK_VOXELS, max(data.shape[1], 1)))
        )
        group.create_array("trial_stimulus", data=experiment.responses.trial_stimulus)
        splits = group.create_group("splits")
        for name, idx in experiment.splits.items():
            splits.create_array(name, data=idx)
        images = experiment.stimuli.images
        if isinstance(images, FileImages):
            header["images"] = {"kind": "files", "paths": [str(p) for p in images.paths]}
        elif images is not None:
            array = experiment.stimuli.load_images()
            group.create_array("images", data=array, chunks=(min(64, len(array)) or 1, *array.shape[1:]))
            header["images"] = {"kind": "array"}
        experiment.stimuli.table.to_parquet(tmp / "stimuli.parquet", index=False)
        experiment.responses.voxels.to_parquet(tmp / "voxels.parquet", index=False)
        (tmp / "experiment.json").write_text(json.dumps(header, indent=2))
    return path


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment folder written by :func:`save_experiment`.

    Responses are read into memory; images stay on disk (zarr-backed) until indexed.
    """
    path = Path(path)
    header_file = path / "experiment.json"
    if not header_file.is_file():
        raise FileNotFoundError(f"{path} is not a saved experiment: {header_file.name} is missing")
    header = json.loads(header_file.read_text())
    if header.get("format") != "scene2brain.experiment":
        raise ValueError(f"{header_file}: expected format 'scene2brain.experiment', found {header.get('format')!r}")
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{header_file}: format version {header.get('version')} is not supported (expected {FORMAT_VERSION})"
        )
    group = zarr.open_group(path / "arrays.zarr", mode="r")
    table = pd.read_parquet(path / "stimuli.parquet")
    voxels = pd.read_parquet(path / "voxels.parquet")
    images_info = header.get("images")
    images = None
    if images_info and images_info["kind"] == "array":
        images = ArrayImages(group["images"])
    elif images_info and images_info["kind"] == "files":
        images = FileImages(images_info["paths"])
    responses = Responses(
        np.asarray(group["responses"][:]),
        np.asarray(group["trial_stimulus"][:]),
        voxels,
        nan_policy=header["nan_policy"],
    )
    splits = {name: np.asarray(group["splits"][name][:]) for name in header["splits"]}
    return Experiment(header["subject"], Stimuli(table, images), responses, splits, header["metadata"])
