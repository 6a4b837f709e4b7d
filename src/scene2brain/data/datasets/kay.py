"""Kay et al. 2008 ("vim-1"): the CRCNS release and the Neuromatch Academy repackaging.

CRCNS vim-1 (``root`` holds both files)::

    EstimatedResponses.mat   MATLAB v7.3 (HDF5): dataTrnS1/S2 (voxels x 1750 in MATLAB),
                             dataValS1/S2 (voxels x 120), roiS1/S2, voxIdxS1/S2
    Stimuli.mat              MATLAB v5: stimTrn (1750, 128, 128), stimVal (120, 128, 128)

Read through HDF5 the MATLAB axes come out reversed: ``dataTrnS1`` is (1750, n_voxels)
and ``roiS1`` is (1, n_voxels). ``voxIdx`` is a 1-based, column-major index into the
64 x 64 x 18 functional volume. Some voxels have NaN responses: they are reported and
left out by default (``nan_policy``). ROI codes: 0 other, 1 V1, 2 V2, 3 V3, 4 V3A, 5 V3B, 6 V4, 7 LatOcc.

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

from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scene2brain.data.containers import Experiment, Responses, Stimuli
from scene2brain.data.datasets._files import (
    CopyCheck,
    DatasetFileError,
    FileCheck,
    NanPolicy,
    Noted,
    check_nan_policy,
    check_nonfinite,
    check_shape,
    count_nonfinite,
    drop_voxels,
    load_npy,
    npz_headers,
    npz_row_blocks,
    require,
    require_root,
    row_blocks,
    subject_number,
)

ROI_NAMES = ("other", "V1", "V2", "V3", "V3A", "V3B", "V4", "LatOcc")
VOLUME_SHAPE = (64, 64, 18)
LABEL_LEVELS = ("wordnet_general", "wordnet_middle", "wordnet_specific", "imagenet_label")


def _stimuli(train: np.ndarray, test: np.ndarray, extra: pd.DataFrame | None = None) -> Stimuli:
    """Both stimulus sets as one, float32 luminance in [0, 1].

    Float pixels outside [0, 1] (the NMA copy stores them centred on 0, about -0.5 to 0.5)
    are mapped linearly by the **training** images' range (test images clipped to it), so
    every image reader sees the luminance the stimuli had, not values it must refuse.
    """
    images = np.concatenate([train, test]).astype(np.float32)
    lo, hi = float(np.min(train)), float(np.max(train))
    if (lo < 0 or hi > 1) and hi > lo:
        images = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    table = pd.DataFrame(
        {
            "stimulus_id": [f"trn-{i + 1:04d}" for i in range(len(train))]
            + [f"val-{i + 1:04d}" for i in range(len(test))],
            "source_split": ["train"] * len(train) + ["test"] * len(test),
        }
    )
    if extra is not None:
        table = pd.concat([table, extra.reset_index(drop=True)], axis=1)
    return Stimuli(table, images)


def _vim1_datasets(handle: Any, path: Path, number: int, n_train: int | None, n_test: int | None) -> dict[str, Any]:
    """The four variables of one subject in ``EstimatedResponses.mat`` (h5py datasets), shapes checked, nothing read."""
    found = {}
    for name in ("dataTrn", "dataVal", "roi", "voxIdx"):
        key = f"{name}S{number}"
        if key not in handle:
            raise DatasetFileError(f"{path}: variable {key!r} missing (found {sorted(handle.keys())})")
        found[name] = handle[key]
    n_vox = found["dataTrn"].shape[-1]
    check_shape(path, found["dataTrn"], (n_train, None), f"dataTrnS{number} (stimTrn images x voxels through HDF5)")
    check_shape(path, found["dataVal"], (n_test, n_vox), f"dataValS{number} (stimVal images x voxels through HDF5)")
    check_shape(path, found["roi"], (1, n_vox), f"roiS{number}")
    check_shape(path, found["voxIdx"], (1, n_vox), f"voxIdxS{number}")
    for name in ("dataTrn", "dataVal"):
        if found[name].dtype.kind != "f":
            raise DatasetFileError(f"{path}: expected {name}S{number} of a float dtype, found {found[name].dtype}")
    return found


def _vim1_voxels(path: Path, number: int, roi: np.ndarray, vox_idx: np.ndarray) -> pd.DataFrame:
    """The voxel table from ``roiS{n}`` and ``voxIdxS{n}``, their ranges checked."""
    codes = roi[0].astype(np.int64)
    if codes.min() < 0 or codes.max() >= len(ROI_NAMES):
        raise DatasetFileError(f"{path}: roiS{number} codes must lie in 0..7, found {codes.min()}..{codes.max()}")
    volume_index = vox_idx[0].astype(np.int64) - 1  # MATLAB is 1-based
    if volume_index.min() < 0 or volume_index.max() >= np.prod(VOLUME_SHAPE):
        raise DatasetFileError(f"{path}: voxIdxS{number} must lie in 1..{np.prod(VOLUME_SHAPE)}")
    i, j, k = np.unravel_index(volume_index, VOLUME_SHAPE, order="F")
    names = np.asarray(ROI_NAMES, dtype=object)[codes]
    return pd.DataFrame({"roi": names, "roi_code": codes, "volume_index": volume_index, "i": i, "j": j, "k": k})


def _open_vim1(path: Path) -> Any:
    import h5py

    require(path, "Kay 2008 responses (MATLAB v7.3 / HDF5)")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DatasetFileError(f"{path}: not readable as MATLAB v7.3 (HDF5): {err}") from err


def load_kay2008(root: str | Path, subject: int | str = 1, nan_policy: NanPolicy = "drop") -> Experiment:
    """Load subject S1 or S2 of the CRCNS vim-1 release.

    Parameters
    ----------
    root : path
        Folder holding ``EstimatedResponses.mat`` and ``Stimuli.mat``.
    subject : 1, 2, "S1" or "S2"
    nan_policy : {"drop", "raise", "allow"}
        The release has voxels with NaN responses, so the default is "drop": leave
        out every voxel with a NaN or inf in dataTrn or dataVal (with a warning;
        counted in ``metadata["n_nan_voxels"]`` and listed in
        ``metadata["dropped_voxels"]`` by ``column`` and ``volume_index``). "raise": a
        :class:`DatasetFileError` naming the file and the counts; "allow": keep them.

    Returns
    -------
    Experiment
        Voxel table: ``roi`` (name), ``roi_code``, ``volume_index`` (0-based, column-major
        into 64 x 64 x 18) and ``i``, ``j``, ``k`` (voxel coordinates).
    """
    number = subject_number(subject, "S", 2)
    check_nan_policy(nan_policy)
    root = require_root(root, "the CRCNS vim-1 files (EstimatedResponses.mat, Stimuli.mat)")
    resp_path = root / "EstimatedResponses.mat"
    with _open_vim1(resp_path) as handle:
        stim = _load_stimuli_mat(root)
        n_train, n_test = len(stim["stimTrn"]), len(stim["stimVal"])
        found = _vim1_datasets(handle, resp_path, number, n_train, n_test)
        arrays = {name: np.asarray(ds) for name, ds in found.items()}
    voxels = _vim1_voxels(resp_path, number, arrays["roi"], arrays["voxIdx"])
    data = np.concatenate([arrays["dataTrn"], arrays["dataVal"]])
    counts = count_nonfinite(data)
    check_nonfinite(resp_path, counts, nan_policy, f"dataTrnS{number} and dataValS{number}", rows="images")
    metadata = {
        "dataset": "kay2008-vim1",
        "subject": f"S{number}",
        "root": str(root),
        "responses": "estimated response amplitude per image (Kay et al. 2008), averaged over repeats",
    }
    data, voxels = drop_voxels(
        data.astype(np.float32), voxels, counts.bad_columns, nan_policy, metadata, resp_path, ("volume_index",)
    )
    return Experiment(
        f"S{number}",
        _stimuli(stim["stimTrn"], stim["stimVal"]),
        Responses(data, np.arange(len(data)), voxels, nan_policy="allow" if nan_policy == "allow" else "raise"),
        _splits(n_train, n_test),
        metadata,
    )


def _splits(n_train: int, n_test: int) -> dict[str, np.ndarray]:
    return {"train": np.arange(n_train), "test": np.arange(n_train, n_train + n_test)}


def _stimulus_counts(path: Path, shapes: dict[str, tuple[int, ...]]) -> tuple[int, int]:
    """Images in ``stimTrn`` and ``stimVal`` of ``Stimuli.mat``, from their shapes (images x height x width)."""
    for key in ("stimTrn", "stimVal"):
        if key not in shapes:
            raise DatasetFileError(f"{path}: variable {key!r} missing (found {sorted(shapes)})")
        check_shape(path, shapes[key], (None, None, None), f"{key} (images x height x width)")
    return shapes["stimTrn"][0], shapes["stimVal"][0]


def _load_stimuli_mat(root: Path) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    path = require(root / "Stimuli.mat", "Kay 2008 stimuli (MATLAB v5 with stimTrn and stimVal)")
    try:
        stim = loadmat(path, variable_names=["stimTrn", "stimVal"])
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as a MATLAB v5 file: {err}") from err
    _stimulus_counts(path, {k: v.shape for k, v in stim.items() if not k.startswith("__")})
    return stim


def _stimulus_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of the variables of ``Stimuli.mat`` from its headers (``scipy.io.whosmat``, no data read)."""
    from scipy.io import whosmat

    try:
        return {name: tuple(shape) for name, shape, _ in whosmat(path)}
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as a MATLAB v5 file: {err}") from err


_NMA_ARRAYS = ("stimuli", "stimuli_test", "responses", "responses_test", "roi", "roi_names")


def _nma_counts(path: Path, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, np.dtype]) -> tuple[int, int, int]:
    """(n_train, n_test, n_voxels) of ``kay_images.npz`` from its arrays' shapes and dtypes, which are checked."""
    missing = [k for k in _NMA_ARRAYS if k not in shapes]
    if missing:
        raise DatasetFileError(f"{path}: missing arrays {missing} (found {sorted(shapes)})")
    check_shape(path, shapes["stimuli"], (None, None, None), "stimuli (images x height x width)")
    check_shape(path, shapes["stimuli_test"], (None, None, None), "stimuli_test (images x height x width)")
    n_train, n_test = shapes["stimuli"][0], shapes["stimuli_test"][0]
    check_shape(path, shapes["responses"], (n_train, None), "responses (stimuli x voxels)")
    n_vox = shapes["responses"][1]
    check_shape(path, shapes["responses_test"], (n_test, n_vox), "responses_test (stimuli_test x voxels)")
    check_shape(path, shapes["roi"], (n_vox,), "roi (one code per voxel)")
    for key, kinds in (("stimuli", "f"), ("stimuli_test", "f"), ("responses", "f"), ("responses_test", "f"),
                       ("roi", "iu"), ("roi_names", "US")):  # fmt: skip
        if dtypes[key].kind not in kinds:
            raise DatasetFileError(f"{path}: expected {key} of dtype kind {kinds!r}, found {dtypes[key]}")
    return n_train, n_test, n_vox


def _nma_roi(path: Path, roi: np.ndarray, roi_names: np.ndarray) -> pd.DataFrame:
    names = np.asarray(roi_names).astype(str)
    codes = roi.astype(np.int64)
    if codes.min() < 0 or codes.max() >= len(names):
        raise DatasetFileError(f"{path}: roi codes must index roi_names (0..{len(names) - 1}), found max {codes.max()}")
    return pd.DataFrame({"roi": names[codes].astype(object), "roi_code": codes})


def _nma_labels(path: Path, n: int) -> np.ndarray:
    labels = load_npy(path, "category labels (4 levels x images)", ndim=2, kind="U")
    check_shape(path, labels, (len(LABEL_LEVELS), n), "category labels (4 levels x images)")
    return labels


def load_kay2008_nma(root: str | Path, nan_policy: NanPolicy = "drop") -> Experiment:
    """Load the Neuromatch Academy repackaging of Kay 2008 (subject S1, 8,428 voxels).

    Parameters
    ----------
    root : path
        Folder holding ``kay_images.npz`` and, optionally, ``kay_labels.npy`` and
        ``kay_labels_val.npy`` (added to the stimulus table as ``wordnet_general``,
        ``wordnet_middle``, ``wordnet_specific`` and ``imagenet_label``).
    nan_policy : {"drop", "raise", "allow"}
        As in :func:`load_kay2008` (default "drop", the vim-1 convention; the dropped
        voxels are listed by ``column``).

    Returns
    -------
    Experiment
    """
    check_nan_policy(nan_policy)
    root = require_root(root, "the NMA Kay 2008 files (kay_images.npz, kay_labels.npy, kay_labels_val.npy)")
    path = root / "kay_images.npz"
    npz_headers(path, "the NMA Kay 2008 archive (np.savez of stimuli, responses, roi...)")  # sizes against headers
    try:
        with np.load(path) as archive:
            dat = {key: archive[key] for key in archive.files}
    except Exception as err:
        raise DatasetFileError(f"{path}: could not be read as .npz ({err})") from err
    n_train, n_test, _ = _nma_counts(path, {k: v.shape for k, v in dat.items()}, {k: v.dtype for k, v in dat.items()})
    voxels = _nma_roi(path, dat["roi"], dat["roi_names"])
    data = np.concatenate([dat["responses"], dat["responses_test"]])
    counts = count_nonfinite(data)
    check_nonfinite(path, counts, nan_policy, "responses and responses_test", rows="images")

    extra = None
    label_files = (root / "kay_labels.npy", root / "kay_labels_val.npy")
    if all(p.is_file() for p in label_files):
        blocks = [_nma_labels(p, n) for p, n in zip(label_files, (n_train, n_test), strict=True)]
        extra = pd.concat([pd.DataFrame(b.T, columns=list(LABEL_LEVELS)) for b in blocks], ignore_index=True)
    metadata = {"dataset": "kay2008-nma", "subject": "S1", "root": str(root)}
    data, voxels = drop_voxels(data.astype(np.float32), voxels, counts.bad_columns, nan_policy, metadata, path)
    return Experiment(
        "S1",
        _stimuli(dat["stimuli"], dat["stimuli_test"], extra),
        Responses(data, np.arange(len(data)), voxels, nan_policy="allow" if nan_policy == "allow" else "raise"),
        _splits(n_train, n_test),
        metadata,
    )


def check_kay2008(root: str | Path, subject: int | str = 1) -> list[FileCheck]:
    """Open ``Stimuli.mat`` and ``EstimatedResponses.mat`` and check them as :func:`load_kay2008` would.

    Shapes from the headers (whosmat, HDF5 metadata), the stimuli read one variable at
    a time, ROI and voxel indices read, responses' NaN and inf counted in row blocks.
    """
    from scipy.io import loadmat

    number = subject_number(subject, "S", 2)
    root = require_root(root, "the CRCNS vim-1 files (EstimatedResponses.mat, Stimuli.mat)")
    check = CopyCheck(root)

    def stimuli(path: Path) -> tuple[int, int]:
        counts = _stimulus_counts(path, _stimulus_shapes(path))
        for key in ("stimTrn", "stimVal"):  # one at a time: a damaged file fails here
            try:
                loadmat(path, variable_names=[key])
            except Exception as err:
                raise DatasetFileError(f"{path}: variable {key!r} not readable: {err}") from err
        return counts

    counts = check.file("Stimuli.mat", stimuli)

    def responses(path: Path) -> Noted:
        n_train, n_test = counts if counts is not None else (None, None)
        with _open_vim1(path) as handle:
            found = _vim1_datasets(handle, path, number, n_train, n_test)
            _vim1_voxels(path, number, np.asarray(found["roi"]), np.asarray(found["voxIdx"]))
            blocks = chain(row_blocks(found["dataTrn"]), row_blocks(found["dataVal"]))
            nonfinite = count_nonfinite(blocks, found["dataTrn"].shape[1])
        check_nonfinite(path, nonfinite, "allow", f"dataTrnS{number} and dataValS{number}", rows="images")
        return Noted(None, nonfinite.describe("images", "voxels"))

    check.file("EstimatedResponses.mat", responses, after="" if counts is not None else "Stimuli.mat")
    return check.results


def check_kay2008_nma(root: str | Path, subject: int | str = 1) -> list[FileCheck]:
    """Check ``kay_images.npz`` (member headers and sizes, shapes, ROI codes, NaN counts) and the label files."""
    root = require_root(root, "the NMA Kay 2008 files (kay_images.npz, kay_labels.npy, kay_labels_val.npy)")
    check = CopyCheck(root)

    def archive(path: Path) -> Noted:
        headers = npz_headers(path, "the NMA Kay 2008 archive (np.savez of stimuli, responses, roi...)")
        shapes = {k: v[0] for k, v in headers.items()}
        found = _nma_counts(path, shapes, {k: v[1] for k, v in headers.items()})
        with np.load(path) as small:
            _nma_roi(path, small["roi"], small["roi_names"])
        blocks = chain(npz_row_blocks(path, "responses"), npz_row_blocks(path, "responses_test"))
        nonfinite = count_nonfinite(blocks, found[2])
        check_nonfinite(path, nonfinite, "allow", "responses and responses_test", rows="images")
        return Noted(found, nonfinite.describe("images", "voxels"))

    found = check.file("kay_images.npz", archive)
    for name, n in (("kay_labels.npy", 0), ("kay_labels_val.npy", 1)):
        expected = None if found is None else found[n]
        check.file(name, lambda p, n=expected: _nma_labels(p, n), after="" if found is not None else "kay_images.npz")
    return check.results
