"""BOLD5000 ROI release (Chang et al. 2019).

Files (``root`` is the folder holding ``ROIs``)::

    ROIs/CSI{N}/mat/CSI{N}_ROIs_TR{1,2,3,4,5,34}.mat   MATLAB v5, keys LHPPA, RHPPA, LHLOC, RHLOC,
                                                      LHEarlyVis, RHEarlyVis, LHRSC, RHRSC, LHOPA,
                                                      RHOPA, each (n_trials, n_voxels_in_roi)
    ROIs/stim_lists/CSI0{N}_stim_lists.txt           one image file name per trial, in row order

TR34 (the mean of TRs 3 and 4) is the usual choice. Image names tell the source:
``COCO_*.jpg`` (COCO), ``*.JPEG`` (ImageNet), other ``.jpg`` (SUN scenes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scene2brain.data.containers import Experiment, Responses, Stimuli
from scene2brain.data.datasets._files import DatasetFileError, require, subject_number
from scene2brain.data.images import FileImages

ROIS = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")
TRS = ("1", "2", "3", "4", "5", "34")


def image_source(name: str) -> str:
    """ "coco", "imagenet" or "scenes" from a BOLD5000 image file name."""
    if name.startswith("COCO_"):
        return "coco"
    if name.endswith(".JPEG"):
        return "imagenet"
    return "scenes"


def load_bold5000(
    root: str | Path,
    subject: int | str = 1,
    tr: str = "34",
    rois: Sequence[str] = ROIS,
    images_dir: str | Path | None = None,
) -> Experiment:
    """Load one BOLD5000 subject (CSI1-CSI4) from the ROI release.

    Parameters
    ----------
    root : path
    subject : 1..4 or "CSI1"
    tr : {"1", "2", "3", "4", "5", "34"}
    rois : sequence of {"EarlyVis", "LOC", "OPA", "PPA", "RSC"}
        Both hemispheres of each.
    images_dir : path, optional
        ``Presented_Stimuli`` folder with ``COCO``, ``ImageNet`` and ``Scene``
        subfolders, for lazy image access.

    Returns
    -------
    Experiment
        One row per trial; stimuli = distinct images in order of first presentation
        with their ``source``; "test" = images shown more than once, "train" = the
        rest. Voxel table: ``roi``, ``hemisphere``.
    """
    from scipy.io import loadmat

    number = subject_number(subject, "CSI", 4)
    if str(tr) not in TRS:
        raise ValueError(f"tr: expected one of {TRS}, got {tr!r}")
    bad = [r for r in rois if r not in ROIS]
    if bad or not rois:
        raise ValueError(f"rois: expected a non-empty subset of {ROIS}, got {list(rois)}")
    root = Path(root)
    path = require(root / "ROIs" / f"CSI{number}" / "mat" / f"CSI{number}_ROIs_TR{tr}.mat", "ROI responses")
    try:
        mat = loadmat(path)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as a MATLAB v5 file: {err}") from err
    list_path = require(root / "ROIs" / "stim_lists" / f"CSI0{number}_stim_lists.txt", "one image file name per trial")
    names = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]

    blocks, tables = [], []
    for roi in rois:
        for hemi in ("lh", "rh"):
            key = f"{hemi.upper()}{roi}"
            if key not in mat:
                raise DatasetFileError(f"{path}: variable {key!r} missing")
            block = np.asarray(mat[key], dtype=np.float32)
            if block.ndim != 2 or len(block) != len(names):
                raise DatasetFileError(
                    f"{path}: {key} should be (n_trials={len(names)}, n_voxels) to match {list_path.name}, "
                    f"found {block.shape}"
                )
            blocks.append(block)
            tables.append(pd.DataFrame({"roi": [roi] * block.shape[1], "hemisphere": hemi}))
    data = np.ascontiguousarray(np.concatenate(blocks, axis=1))

    unique, first, inverse, counts = np.unique(names, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first)  # stimuli in order of first presentation
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    stim_names = unique[order]
    table = pd.DataFrame({"stimulus_id": stim_names, "source": [image_source(n) for n in stim_names]})
    table["n_presentations"] = counts[order]
    images = None
    if images_dir is not None:
        folders = {"coco": "COCO", "imagenet": "ImageNet", "scenes": "Scene"}
        images = FileImages(
            [Path(images_dir) / folders[s] / n for s, n in zip(table["source"], stim_names, strict=True)]
        )
    repeated = table["n_presentations"].to_numpy() > 1
    splits = {"train": np.flatnonzero(~repeated), "test": np.flatnonzero(repeated)}
    metadata = {"dataset": "bold5000", "subject": f"CSI{number}", "root": str(root), "tr": str(tr)}
    voxels = pd.concat(tables, ignore_index=True)
    return Experiment(f"CSI{number}", Stimuli(table, images), Responses(data, rank[inverse], voxels), splits, metadata)
