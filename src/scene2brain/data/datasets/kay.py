"""Kay et al. 2008 ("vim-1"): the CRCNS release and the Neuromatch Academy repackaging.

CRCNS vim-1 (``root`` holds both files)::

    EstimatedResponses.mat   MATLAB v7.3 (HDF5): dataTrnS1/S2 (voxels x 1750 in MATLAB),
                             dataValS1/S2 (voxels x 120), roiS1/S2, voxIdxS1/S2
    Stimuli.mat              MATLAB v5: stimTrn (1750, 128, 128), stimVal (120, 128, 128)

Read through HDF5 the MATLAB axes come out reversed: ``dataTrnS1`` is (1750, n_voxels)
and ``roiS1`` is (1, n_voxels). ``voxIdx`` is a 1-based, column-major index into the
64 x 64 x 18 functional volume. Some voxels have NaN responses: they are reported and
left out. ROI codes: 0 other, 1 V1, 2 V2, 3 V3, 4 V3A, 5 V3B, 6 V4, 7 LatOcc.

NMA repackaging (``root`` holds)::

    kay_images.npz       stimuli (1750,128,128) float32, stimuli_test (120,128,128),
                         responses (1750, 8428) float64, responses_test (120, 8428),
                         roi (8428,) codes 1..7, roi_names (8,) ['Other', 'V1', ...]
    kay_labels.npy       (4, 1750) strings: 3 WordNet levels (general to specific), then the
    kay_labels_val.npy   (4, 120)   ImageNet label of a pretrained network (optional files)

Both give an Experiment with one row per image (responses already estimated per
image), "train" (1750) and "test" (120, Kay's validation images) splits, and a voxel
table whose ``roi`` column holds the ROI names, so ``experiment.select_rois("V1")``
keeps exactly the V1 voxels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scene2brain.data.containers import Experiment, Responses, Stimuli
from scene2brain.data.datasets._files import DatasetFileError, check_shape, load_npy, require, subject_number

ROI_NAMES = ("other", "V1", "V2", "V3", "V3A", "V3B", "V4", "LatOcc")
VOLUME_SHAPE = (64, 64, 18)
LABEL_LEVELS = ("wordnet_general", "wordnet_middle", "wordnet_specific", "imagenet_label")


def _stimuli(train: np.ndarray, test: np.ndarray, extra: pd.DataFrame | None = None) -> Stimuli:
    table = pd.DataFrame(
        {
            "stimulus_id": [f"trn-{i + 1:04d}" for i in range(len(train))]
            + [f"val-{i + 1:04d}" for i in range(len(test))],
            "source_split": ["train"] * len(train) + ["test"] * len(test),
        }
    )
    if extra is not None:
        table = pd.concat([table, extra.reset_index(drop=True)], axis=1)
    return Stimuli(table, np.concatenate([train, test]).astype(np.float32))


def _drop_nan_voxels(train: np.ndarray, test: np.ndarray, source: Path) -> tuple[np.ndarray, int]:
    finite = np.isfinite(train).all(axis=0) & np.isfinite(test).all(axis=0)
    n_bad = int((~finite).sum())
    if n_bad:
        warnings.warn(f"{source}: {n_bad} of {len(finite)} voxels have NaN responses and were left out", stacklevel=3)
    return finite, n_bad


def load_kay2008(root: str | Path, subject: int | str = 1) -> Experiment:
    """Load subject S1 or S2 of the CRCNS vim-1 release.

    Parameters
    ----------
    root : path
        Folder holding ``EstimatedResponses.mat`` and ``Stimuli.mat``.
    subject : 1, 2, "S1" or "S2"

    Returns
    -------
    Experiment
        Voxel table: ``roi`` (name), ``roi_code``, ``volume_index`` (0-based, column-major
        into 64 x 64 x 18) and ``i``, ``j``, ``k`` (voxel coordinates). Voxels with NaN
        responses are left out (counted in ``metadata["n_nan_voxels"]``, with a warning).
    """
    import h5py

    number = subject_number(subject, "S", 2)
    root = Path(root)
    resp_path = require(root / "EstimatedResponses.mat", "Kay 2008 responses (MATLAB v7.3 / HDF5)")
    try:
        handle = h5py.File(resp_path, "r")
    except OSError as err:
        raise DatasetFileError(f"{resp_path}: not readable as MATLAB v7.3 (HDF5): {err}") from err
    with handle:
        arrays = {}
        for name in ("dataTrn", "dataVal", "roi", "voxIdx"):
            key = f"{name}S{number}"
            if key not in handle:
                raise DatasetFileError(f"{resp_path}: variable {key!r} missing (found {sorted(handle.keys())})")
            arrays[name] = np.asarray(handle[key])
    stim = _load_stimuli_mat(root)
    n_train, n_test = len(stim["stimTrn"]), len(stim["stimVal"])
    train, test = arrays["dataTrn"], arrays["dataVal"]
    n_vox = train.shape[-1]
    check_shape(resp_path, train, (n_train, None), f"dataTrnS{number} (stimTrn images x voxels through HDF5)")
    check_shape(resp_path, test, (n_test, n_vox), f"dataValS{number} (stimVal images x voxels through HDF5)")
    check_shape(resp_path, arrays["roi"], (1, n_vox), f"roiS{number}")
    check_shape(resp_path, arrays["voxIdx"], (1, n_vox), f"voxIdxS{number}")
    codes = arrays["roi"][0].astype(np.int64)
    if codes.min() < 0 or codes.max() >= len(ROI_NAMES):
        raise DatasetFileError(f"{resp_path}: roiS{number} codes must lie in 0..7, found {codes.min()}..{codes.max()}")
    volume_index = arrays["voxIdx"][0].astype(np.int64) - 1  # MATLAB is 1-based
    if volume_index.min() < 0 or volume_index.max() >= np.prod(VOLUME_SHAPE):
        raise DatasetFileError(f"{resp_path}: voxIdxS{number} must lie in 1..{np.prod(VOLUME_SHAPE)}")
    keep, n_bad = _drop_nan_voxels(train, test, resp_path)
    i, j, k = np.unravel_index(volume_index, VOLUME_SHAPE, order="F")
    voxels = pd.DataFrame(
        {
            "roi": np.asarray(ROI_NAMES, dtype=object)[codes],
            "roi_code": codes,
            "volume_index": volume_index,
            "i": i,
            "j": j,
            "k": k,
        }
    )[keep].reset_index(drop=True)

    data = np.concatenate([train, test])[:, keep].astype(np.float32)
    metadata = {
        "dataset": "kay2008-vim1",
        "subject": f"S{number}",
        "root": str(root),
        "n_nan_voxels": n_bad,
        "responses": "estimated response amplitude per image (Kay et al. 2008), averaged over repeats",
    }
    return Experiment(
        f"S{number}",
        _stimuli(stim["stimTrn"], stim["stimVal"]),
        Responses(data, np.arange(len(data)), voxels),
        _splits(n_train, n_test),
        metadata,
    )


def _splits(n_train: int, n_test: int) -> dict[str, np.ndarray]:
    return {"train": np.arange(n_train), "test": np.arange(n_train, n_train + n_test)}


def _load_stimuli_mat(root: Path) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    path = require(root / "Stimuli.mat", "Kay 2008 stimuli (MATLAB v5 with stimTrn and stimVal)")
    try:
        stim = loadmat(path, variable_names=["stimTrn", "stimVal"])
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as a MATLAB v5 file: {err}") from err
    for key in ("stimTrn", "stimVal"):
        if key not in stim:
            raise DatasetFileError(f"{path}: variable {key!r} missing")
        check_shape(path, stim[key], (None, None, None), f"{key} (images x height x width)")
    return stim


def load_kay2008_nma(root: str | Path) -> Experiment:
    """Load the Neuromatch Academy repackaging of Kay 2008 (subject S1, 8,428 voxels).

    Parameters
    ----------
    root : path
        Folder holding ``kay_images.npz`` and, optionally, ``kay_labels.npy`` and
        ``kay_labels_val.npy`` (added to the stimulus table as ``wordnet_general``,
        ``wordnet_middle``, ``wordnet_specific`` and ``imagenet_label``).

    Returns
    -------
    Experiment
    """
    root = Path(root)
    path = require(root / "kay_images.npz", "the NMA Kay 2008 archive (np.savez of stimuli, responses, roi...)")
    try:
        with np.load(path) as archive:
            dat = {key: archive[key] for key in archive.files}
    except Exception as err:
        raise DatasetFileError(f"{path}: could not be read as .npz ({err})") from err
    expected = ("stimuli", "stimuli_test", "responses", "responses_test", "roi", "roi_names")
    missing = [k for k in expected if k not in dat]
    if missing:
        raise DatasetFileError(f"{path}: missing arrays {missing} (found {sorted(dat)})")
    check_shape(path, dat["stimuli"], (None, None, None), "stimuli (images x height x width)")
    check_shape(path, dat["stimuli_test"], (None, None, None), "stimuli_test (images x height x width)")
    n_train, n_test = len(dat["stimuli"]), len(dat["stimuli_test"])
    n_vox = dat["responses"].shape[-1]
    check_shape(path, dat["responses"], (n_train, None), "responses (stimuli x voxels)")
    check_shape(path, dat["responses_test"], (n_test, n_vox), "responses_test (stimuli_test x voxels)")
    check_shape(path, dat["roi"], (n_vox,), "roi (one code per voxel)")
    names = np.asarray(dat["roi_names"]).astype(str)
    codes = dat["roi"].astype(np.int64)
    if codes.min() < 0 or codes.max() >= len(names):
        raise DatasetFileError(f"{path}: roi codes must index roi_names (0..{len(names) - 1}), found max {codes.max()}")
    keep, n_bad = _drop_nan_voxels(dat["responses"], dat["responses_test"], path)
    voxels = pd.DataFrame({"roi": names[codes].astype(object), "roi_code": codes})[keep].reset_index(drop=True)

    extra = None
    label_files = (root / "kay_labels.npy", root / "kay_labels_val.npy")
    if all(p.is_file() for p in label_files):
        blocks = []
        for label_path, n in zip(label_files, (n_train, n_test), strict=True):
            labels = load_npy(label_path, "category labels (4 levels x images)", ndim=2, kind="U")
            check_shape(label_path, labels, (len(LABEL_LEVELS), n), "category labels (4 levels x images)")
            blocks.append(pd.DataFrame(labels.T, columns=list(LABEL_LEVELS)))
        extra = pd.concat(blocks, ignore_index=True)
    data = np.concatenate([dat["responses"], dat["responses_test"]])[:, keep].astype(np.float32)
    metadata = {"dataset": "kay2008-nma", "subject": "S1", "root": str(root), "n_nan_voxels": n_bad}
    return Experiment(
        "S1",
        _stimuli(dat["stimuli"], dat["stimuli_test"], extra),
        Responses(data, np.arange(len(data)), voxels),
        _splits(n_train, n_test),
        metadata,
    )
