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
from scene2brain.data.datasets._files import (
    CopyCheck,
    DatasetFileError,
    FileCheck,
    NanPolicy,
    NonFinite,
    Noted,
    check_nan_policy,
    check_nonfinite,
    count_nonfinite,
    drop_voxels,
    require,
    require_root,
    subject_number,
)
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


def read_stim_list(path: Path) -> list[str]:
    """Image file names, one per trial, from ``CSI0N_stim_lists.txt``."""
    require(path, "one image file name per trial")
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as err:
        raise DatasetFileError(f"{path}: not a text file ({err}); expected one image file name per line") from err
    if not names:
        raise DatasetFileError(f"{path}: empty; expected one image file name per trial")
    return names


def _check_roi_block(
    path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype, n_trials: int | None, list_name: str
) -> None:
    """One ROI variable: (n_trials, n_voxels) with one row per line of the stimulus list, numeric."""
    if len(shape) != 2 or (n_trials is not None and shape[0] != n_trials):
        raise DatasetFileError(
            f"{path}: {key} should be (n_trials={n_trials}, n_voxels) to match {list_name}, found {shape}"
        )
    if np.dtype(dtype).kind not in "fiu":
        raise DatasetFileError(f"{path}: expected {key} of a numeric dtype, found {dtype}")


def check_bold5000(root: str | Path, subject: int | str = 1) -> list[FileCheck]:
    """Open the TR34 ROI file and the stimulus list and check them as :func:`load_bold5000` would.

    Shapes from the .mat headers against the list's trial count, then each ROI variable
    read alone (bounded memory) for its dtype and NaN and inf counts.
    """
    from scipy.io import loadmat, whosmat

    number = subject_number(subject, "CSI", 4)
    root = require_root(root, "the BOLD5000 ROI release (ROIs/CSI1 ..., ROIs/stim_lists)")
    check = CopyCheck(root)
    list_rel = f"ROIs/stim_lists/CSI0{number}_stim_lists.txt"
    names = check.file(list_rel, read_stim_list)

    def responses(path: Path) -> Noted:
        n_trials = None if names is None else len(names)
        try:
            shapes = {name: tuple(shape) for name, shape, _ in whosmat(path)}
        except Exception as err:
            raise DatasetFileError(f"{path}: not readable as a MATLAB v5 file: {err}") from err
        n_nan = n_inf = 0
        bad_columns, bad_rows = [], None
        for roi in ROIS:
            for side in ("LH", "RH"):
                key = f"{side}{roi}"
                if key not in shapes:
                    raise DatasetFileError(f"{path}: variable {key!r} missing (found {sorted(shapes)})")
                _check_roi_block(path, key, shapes[key], np.float64, n_trials, Path(list_rel).name)
                try:
                    block = np.asarray(loadmat(path, variable_names=[key])[key])
                except Exception as err:
                    raise DatasetFileError(f"{path}: variable {key!r} not readable: {err}") from err
                _check_roi_block(path, key, block.shape, block.dtype, n_trials, Path(list_rel).name)
                counts = count_nonfinite(block)
                n_nan, n_inf = n_nan + counts.n_nan, n_inf + counts.n_inf
                bad_columns.append(counts.bad_columns)
                rows = ~np.isfinite(block).all(axis=1) if block.dtype.kind == "f" else np.zeros(len(block), bool)
                bad_rows = rows if bad_rows is None else bad_rows | rows
        columns = np.concatenate(bad_columns)
        total = NonFinite(n_nan, n_inf, columns, int(bad_rows.sum()), (len(bad_rows), len(columns)))
        check_nonfinite(path, total, "allow", "the ROI responses", rows="trials")
        return Noted(None, total.describe("trials", "voxels"))

    check.file(
        f"ROIs/CSI{number}/mat/CSI{number}_ROIs_TR34.mat", responses, after="" if names is not None else list_rel
    )
    return check.results


def load_bold5000(
    root: str | Path,
    subject: int | str = 1,
    tr: str = "34",
    rois: Sequence[str] = ROIS,
    images_dir: str | Path | None = None,
    nan_policy: NanPolicy = "raise",
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
    nan_policy : {"raise", "drop", "allow"}
        What NaN or inf responses do. "raise" (default): a :class:`DatasetFileError`
        naming the .mat file and how many voxels and trials hold them; "drop": leave
        out those voxels, with a warning, listed in ``metadata["dropped_voxels"]``
        (``column``, ``roi``, ``hemisphere``); "allow": keep them.

    Returns
    -------
    Experiment
        One row per trial; stimuli = distinct images in order of first presentation
        with their ``source``; "test" = images shown more than once, "train" = the
        rest. Voxel table: ``roi``, ``hemisphere``.
    """
    from scipy.io import loadmat

    number = subject_number(subject, "CSI", 4)
    check_nan_policy(nan_policy)
    if str(tr) not in TRS:
        raise ValueError(f"tr: expected one of {TRS}, got {tr!r}")
    bad = [r for r in rois if r not in ROIS]
    if bad or not rois:
        raise ValueError(f"rois: expected a non-empty subset of {ROIS}, got {list(rois)}")
    root = require_root(root, "the BOLD5000 ROI release (ROIs/CSI1 ..., ROIs/stim_lists)")
    path = require(root / "ROIs" / f"CSI{number}" / "mat" / f"CSI{number}_ROIs_TR{tr}.mat", "ROI responses")
    try:
        mat = loadmat(path)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as a MATLAB v5 file: {err}") from err
    list_path = root / "ROIs" / "stim_lists" / f"CSI0{number}_stim_lists.txt"
    names = read_stim_list(list_path)

    blocks, tables = [], []
    for roi in rois:
        for hemi in ("lh", "rh"):
            key = f"{hemi.upper()}{roi}"
            if key not in mat:
                raise DatasetFileError(f"{path}: variable {key!r} missing")
            block = np.asarray(mat[key])
            _check_roi_block(path, key, block.shape, block.dtype, len(names), list_path.name)
            blocks.append(block.astype(np.float32))
            tables.append(pd.DataFrame({"roi": [roi] * block.shape[1], "hemisphere": hemi}))
    data = np.ascontiguousarray(np.concatenate(blocks, axis=1))
    nonfinite = count_nonfinite(data)
    check_nonfinite(path, nonfinite, nan_policy, f"the {', '.join(rois)} responses", rows="trials")

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
    data, voxels = drop_voxels(data, voxels, nonfinite.bad_columns, nan_policy, metadata, path, ("roi", "hemisphere"))
    responses = Responses(data, rank[inverse], voxels, nan_policy="allow" if nan_policy == "allow" else "raise")
    return Experiment(f"CSI{number}", Stimuli(table, images), responses, splits, metadata)
