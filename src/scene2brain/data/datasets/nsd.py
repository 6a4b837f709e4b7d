"""Natural Scenes Dataset (Allen et al. 2022): single-trial betas with their images.

Files read, relative to the NSD root (the folder holding ``nsddata``, ``nsddata_betas``
and ``nsddata_stimuli``)::

    nsddata/experiments/nsd/nsd_expdesign.mat        masterordering, subjectim, sharedix (1-based)
    nsddata/experiments/nsd/nsd_stim_info_merged.csv  one row per 73k image (cocoId, cropBox, ...)
    nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5      imgBrick (73000, 425, 425, 3) uint8
    nsddata_betas/ppdata/subjXX/fsaverage/<version>/{lh,rh}.betas_sessionNN.mgh   (163842, 1, 1, n_trials)
    nsddata_betas/ppdata/subjXX/fsaverage/<version>/{lh,rh}.ncsnr.mgh
    nsddata_betas/ppdata/subjXX/func1pt8mm/<version>/betas_sessionNN.nii.gz   int16 = beta * 300, (X, Y, Z, n)
    nsddata_betas/ppdata/subjXX/func1pt8mm/<version>/betas_sessionNN.hdf5     "betas", axes (n, Z, Y, X)
    nsddata_betas/ppdata/subjXX/func1pt8mm/<version>/ncsnr.nii.gz
    nsddata/freesurfer/fsaverage/label/{lh,rh}.<roi>.mgz (+ <roi>.mgz.ctab)  surface ROIs
    nsddata/ppdata/subjXX/func1pt8mm/roi/<roi>.nii.gz (+ nsddata/freesurfer/subjXX/label/<roi>.mgz.ctab)

Index bases, converted once here: every index in ``nsd_expdesign.mat`` is 1-based;
``subjectN_repK`` columns of the stimulus table hold 1-based trial numbers with 0 for
"not shown"; 73k ids in this package are 0-based everywhere (the ``nsd_id`` column).
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
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
    NonFinite,
    Noted,
    check_nan_policy,
    check_nonfinite,
    check_shape,
    count_nonfinite,
    drop_voxels,
    nsd_subject,
    require,
    require_root,
)
from scene2brain.data.datasets.coco import nsd_coco_labels, require_pycocotools
from scene2brain.data.fsaverage import N_FSAVERAGE_VERTICES
from scene2brain.data.images import HDF5Images
from scene2brain.utils.arrays import standardise_columns

BETA_VERSIONS = ("betas_fithrf_GLMdenoise_RR", "betas_fithrf", "betas_assumehrf")
SPACES = ("fsaverage", "func1pt8mm", "func1mm")
INT16_SCALE = 300.0
SESSIONS_PER_SUBJECT = (40, 40, 32, 30, 40, 32, 40, 30)


@dataclass
class ExpDesign:
    """``nsd_expdesign.mat`` with every index made 0-based.

    Attributes
    ----------
    masterordering : ndarray (n_trials,)
        For each trial in chronological order, the position (0..9999) in the subject's
        10,000-image list.
    subjectim : ndarray (8, 10000)
        0-based 73k ids of each subject's images; columns 0..999 are the shared images.
    sharedix : ndarray (1000,)
        0-based 73k ids of the shared images.
    """

    masterordering: np.ndarray
    subjectim: np.ndarray
    sharedix: np.ndarray

    def trial_images(self, subject: int | str, n_trials: int | None = None) -> np.ndarray:
        """0-based 73k id shown on each trial of ``subject``, chronologically."""
        order = self.masterordering if n_trials is None else self.masterordering[:n_trials]
        return self.subjectim[nsd_subject(subject) - 1, order]


def read_expdesign(path: str | Path) -> ExpDesign:
    """Read ``nsd_expdesign.mat`` (MATLAB v5) and convert its 1-based indices to 0-based."""
    from scipy.io import loadmat

    path = require(Path(path), "the NSD design (nsd_expdesign.mat)")
    try:
        mat = loadmat(path)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as a MATLAB v5 file: {err}") from err
    missing = [k for k in ("masterordering", "subjectim", "sharedix") if k not in mat]
    if missing:
        raise DatasetFileError(f"{path}: variables {missing} missing")
    ordering = np.asarray(mat["masterordering"]).ravel().astype(np.int64)
    subjectim = np.asarray(mat["subjectim"]).astype(np.int64)
    sharedix = np.asarray(mat["sharedix"]).ravel().astype(np.int64)
    if subjectim.ndim != 2 or subjectim.shape[0] != 8:
        raise DatasetFileError(f"{path}: expected subjectim of shape (8, n_images), found {subjectim.shape}")
    if ordering.min() < 1 or ordering.max() > subjectim.shape[1]:
        raise DatasetFileError(
            f"{path}: masterordering must be 1-based indices in 1..{subjectim.shape[1]}, "
            f"found {ordering.min()}..{ordering.max()}"
        )
    if subjectim.min() < 1 or sharedix.min() < 1:
        raise DatasetFileError(f"{path}: subjectim and sharedix must be 1-based 73k ids (found a value < 1)")
    return ExpDesign(ordering - 1, subjectim - 1, sharedix - 1)


def read_stim_info(path: str | Path) -> pd.DataFrame:
    """Read ``nsd_stim_info_merged.csv``: one row per 73k image, ``cropBox`` parsed to a tuple.

    ``subjectN_repK`` keep the file's meaning: 1-based trial number of the K-th
    presentation to subject N, 0 when not shown (see :func:`trials_from_stim_info`).
    """
    path = require(Path(path), "the NSD stimulus table (nsd_stim_info_merged.csv)")
    try:
        table = pd.read_csv(path, index_col=0)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as CSV: {err}") from err
    needed = ["cocoId", "cocoSplit", "cropBox", "nsdId", "shared1000"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise DatasetFileError(f"{path}: columns {missing} missing (found {list(table.columns)[:12]}...)")
    if not np.array_equal(table["nsdId"].to_numpy(), np.arange(len(table))):
        raise DatasetFileError(f"{path}: nsdId must run 0..{len(table) - 1} in row order")
    table["cropBox"] = [tuple(float(v) for v in ast.literal_eval(str(box))) for box in table["cropBox"]]
    return table


def trials_from_stim_info(table: pd.DataFrame, subject: int | str) -> pd.DataFrame:
    """Long table (nsd_id, repetition, trial) from the ``subjectN_repK`` columns, 0-based trials."""
    n = nsd_subject(subject)
    columns = sorted(c for c in table.columns if c.startswith(f"subject{n}_rep"))
    if not columns:
        raise ValueError(f"stimulus table: no subject{n}_repK columns")
    rows = []
    for rep, col in enumerate(columns):
        shown = table[col].to_numpy() > 0
        rows.append(pd.DataFrame({"nsd_id": table["nsdId"].to_numpy()[shown], "repetition": rep,
                                  "trial": table[col].to_numpy()[shown] - 1}))  # fmt: skip
    return pd.concat(rows, ignore_index=True).sort_values("trial", ignore_index=True)


def _open_image(path: Path, what: str) -> Any:
    """A nibabel image (MGH/MGZ or NIfTI), its header read; an uncompressed MGH's size is checked against it."""
    import nibabel as nib

    require(path, what)
    try:
        image = nib.load(path)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as MGH/MGZ or NIfTI: {err}; expected {what}") from err
    if path.suffix == ".mgh":
        header = image.header
        expected = int(header.get_data_offset()) + int(header.get_data_size())
        size = path.stat().st_size
        if size < expected:
            raise DatasetFileError(
                f"{path}: truncated: its header says shape {image.shape} {header.get_data_dtype()} "
                f"({expected} bytes with the header), the file holds {size} bytes; expected {what}"
            )
    return image


def _read_image(path: Path, what: str) -> np.ndarray:
    """Raw voxel or vertex values of an MGH/MGZ or NIfTI file (nibabel picks the format)."""
    image = _open_image(path, what)
    try:
        return np.asarray(image.dataobj)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as MGH/MGZ or NIfTI: {err}; expected {what}") from err


def read_surface_values(path: Path, what: str) -> np.ndarray:
    """One value per fsaverage vertex (an ROI mask or label file, ncsnr): shape (163842, 1, 1) checked, raveled."""
    values = _read_image(path, what)
    check_shape(path, values, (N_FSAVERAGE_VERTICES, 1, 1), what)
    return values.ravel()


def read_fsaverage_betas(
    path: Path, session: int, selection: np.ndarray, nan_policy: str, keep: bool = True
) -> tuple[np.ndarray | None, NonFinite]:
    """One hemisphere's session betas at the ``selection`` vertices, (n_trials, n_selected) float32.

    Checks the header's shape (163842, 1, 1, n_trials) and size, and counts NaN and inf
    among the selected vertices, reading blocks of trials (bounded memory);
    ``check_nonfinite`` judges the counts under ``nan_policy``. With ``keep=False`` only
    the counts are returned (the values are not kept).
    """
    what = f"session {session} betas over fsaverage (163842, 1, 1, n_trials)"
    image = _open_image(path, what)
    check_shape(path, image.shape, (N_FSAVERAGE_VERTICES, 1, 1, None), "fsaverage betas")
    n_trials = image.shape[3]
    step = max(1, (64 * 2**20) // (N_FSAVERAGE_VERTICES * 4))
    kept: list[np.ndarray] = []

    def blocks() -> Any:
        for start in range(0, n_trials, step):
            try:
                block = np.asarray(image.dataobj[:, 0, 0, start : start + step])
            except Exception as err:
                raise DatasetFileError(f"{path}: not readable as MGH/MGZ: {err}; expected {what}") from err
            block = block.T[:, selection]
            if keep:
                kept.append(block.astype(np.float32))
            yield block

    counts = count_nonfinite(blocks(), int(selection.sum()))
    check_nonfinite(path, counts, nan_policy, "the betas at the mask's vertices", rows="trials", columns="vertices")
    values = (np.concatenate(kept) if kept else np.zeros((0, int(selection.sum())), np.float32)) if keep else None
    return values, counts


def check_image_brick(path: Path, n_ids: int | None = None) -> tuple[int, ...]:
    """Shape of ``imgBrick`` in ``nsd_stimuli.hdf5``: (n >= n_ids, height, width, 3) uint8, read from metadata."""
    import h5py

    require(path, "the NSD image brick (HDF5 dataset imgBrick, (73000, 425, 425, 3) uint8)")
    try:
        with h5py.File(path, "r") as handle:
            if "imgBrick" not in handle:
                raise DatasetFileError(f"{path}: dataset 'imgBrick' missing (found {sorted(handle.keys())})")
            brick = handle["imgBrick"]
            shape, dtype = tuple(brick.shape), brick.dtype
            if len(shape) == 4 and shape[0]:
                brick[shape[0] - 1]
    except OSError as err:
        raise DatasetFileError(f"{path}: not readable as HDF5: {err}") from err
    check_shape(path, shape, (None, None, None, 3), "imgBrick (images x height x width x RGB)")
    if dtype != np.uint8:
        raise DatasetFileError(f"{path}: expected imgBrick of dtype uint8, found {dtype}")
    if n_ids is not None and shape[0] < n_ids:
        raise DatasetFileError(f"{path}: imgBrick holds {shape[0]} images, the design needs 73k ids up to {n_ids - 1}")
    return shape


def read_ctab(path: Path) -> dict[int, str]:
    """A FreeSurfer colour table as NSD ships it: space-delimited "index name" lines."""
    require(path, "an ROI colour table (space-delimited 'index name' lines)")
    mapping = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].lstrip("-").isdigit():
            mapping[int(parts[0])] = parts[1]
    if not mapping:
        raise DatasetFileError(f"{path}: no 'index name' lines found")
    return mapping


def _label_names(codes: np.ndarray, ctab: dict[int, str], source: Path) -> np.ndarray:
    codes = codes.astype(np.int64)
    unknown = sorted(set(np.unique(codes[codes > 0]).tolist()) - set(ctab))
    if unknown:
        raise DatasetFileError(f"{source}: labels {unknown} are not in its colour table")
    names = np.full(codes.shape, None, dtype=object)
    for code, name in ctab.items():
        if code > 0:
            names[codes == code] = name
    return names


def _session_betas(
    base: Path, space: str, session: int, hemispheres: Sequence[str], fmt: str, mask: Any, nan_policy: str
) -> tuple[np.ndarray, np.ndarray]:
    """One session's betas as (n_trials, n_selected) float32, in %BOLD for volumes, and its NaN/inf columns."""
    if space == "fsaverage":
        blocks, bad = [], []
        for hemi in hemispheres:
            path = base / f"{hemi}.betas_session{session:02d}.mgh"
            values, counts = read_fsaverage_betas(path, session, mask[hemi], nan_policy)
            blocks.append(values)
            bad.append(counts.bad_columns)
        trials = {len(b) for b in blocks}
        if len(trials) != 1:
            raise DatasetFileError(f"{base}: the hemispheres of session {session} hold different trial counts")
        return np.concatenate(blocks, axis=1), np.concatenate(bad)
    if fmt == "nifti":
        path = base / f"betas_session{session:02d}.nii.gz"
        arr = _read_image(path, f"session {session} betas (X, Y, Z, n_trials), int16 = beta * 300")
        if arr.ndim != 4 or arr.shape[:3] != mask.shape:
            raise DatasetFileError(f"{path}: expected shape {(*mask.shape, 'n_trials')}, found {arr.shape}")
        values = arr[mask].T  # (n_trials, n_voxels)
    else:
        import h5py

        path = require(base / f"betas_session{session:02d}.hdf5", f"session {session} betas, dataset 'betas'")
        try:
            with h5py.File(path, "r") as f:
                if "betas" not in f:
                    raise DatasetFileError(f"{path}: dataset 'betas' missing (found {list(f.keys())})")
                arr = np.asarray(f["betas"])
        except OSError as err:
            raise DatasetFileError(f"{path}: not readable as HDF5: {err}") from err
        if arr.ndim != 4 or arr.shape[1:] != mask.shape[::-1]:
            raise DatasetFileError(
                f"{path}: expected 'betas' of shape (n_trials, {', '.join(map(str, mask.shape[::-1]))}) "
                f"(NIfTI axes reversed), found {arr.shape}"
            )
        values = arr.transpose(0, 3, 2, 1)[:, mask]
    counts = count_nonfinite(values)
    check_nonfinite(path, counts, nan_policy, "the betas in the mask", rows="trials", columns="voxels")
    scale = INT16_SCALE if values.dtype.kind == "i" else 1.0
    return values.astype(np.float32) / np.float32(scale), counts.bad_columns


def _zscore(betas: np.ndarray) -> np.ndarray:
    """Each column z-scored over the session's trials (NaN-aware when NaN are kept)."""
    if np.isfinite(betas).all():
        return standardise_columns(betas).astype(np.float32)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        mean, sd = np.nanmean(betas, axis=0), np.nanstd(betas, axis=0)
    sd[sd == 0] = 1.0
    return ((betas - mean) / sd).astype(np.float32)


def load_nsd(
    root: str | Path,
    subject: int | str,
    sessions: Sequence[int] | None = None,
    space: str = "fsaverage",
    beta_version: str = BETA_VERSIONS[0],
    volume_format: str = "nifti",
    hemispheres: Sequence[str] = ("lh", "rh"),
    mask: str = "nsdgeneral",
    rois: Sequence[str] = (),
    zscore_sessions: bool = True,
    coco_annotations: str | Path | None = None,
    coco_min_visible_fraction: float = 0.0,
    nan_policy: NanPolicy = "raise",
) -> Experiment:
    """Load one NSD subject's single-trial betas as an :class:`Experiment`.

    Parameters
    ----------
    root : path
        The NSD root folder.
    subject : 1..8 or "subj01".."subj08"
    sessions : sequence of int, optional
        1-based session numbers; default all the subject completed.
    space : {"fsaverage", "func1pt8mm", "func1mm"}
    beta_version : str
        One of :data:`BETA_VERSIONS`.
    volume_format : {"nifti", "hdf5"}
        For volume spaces: ``.nii.gz`` (int16 / 300) or ``.hdf5`` (axes reversed).
    hemispheres : for fsaverage
    mask : str
        ROI file whose positive entries select the voxels or vertices (default
        "nsdgeneral": ``fsaverage/label/{hemi}.nsdgeneral.mgz`` or
        ``func*/roi/nsdgeneral.nii.gz``).
    rois : sequence of str
        ROI families to add to the voxel table, e.g. "streams", "prf-visualrois"
        (names from their ``.mgz.ctab``; missing outside the family's ROIs).
    zscore_sessions : bool
        Z-score each voxel within each session (mean 0, SD 1 over the session's
        trials; the default). NSD's ``ncsnr`` is estimated from betas z-scored this
        way (Allen et al. 2022) and Algonauts 2023 z-scored them too, so noise
        ceilings from the voxel table's ``ncsnr`` describe these responses. ``False``
        keeps the betas in percent BOLD change (session-to-session offsets and gain
        changes then add to the between-repeat noise).
    coco_annotations : path, optional
        Folder holding COCO 2017 ``instances_train2017.json`` / ``instances_val2017.json``
        (a relative path is taken from ``root``, e.g.
        ``nsddata_stimuli/stimuli/nsd/annotations`` where ``nsd_access`` looks). When
        given, the stimulus table gets the labels of
        :func:`scene2brain.data.datasets.coco.nsd_coco_labels`, from the objects visible
        after NSD's crop: ``has_person``, ``person`` ("person"/"non-person"),
        ``main_supercategory`` and one boolean ``supercategory_<name>`` column per COCO
        supercategory. Needs ``pycocotools`` and ``nsd_stim_info_merged.csv``.
    coco_min_visible_fraction : float
        An annotation counts when more than this share of its bounding box is inside
        the crop (0: any visible part).
    nan_policy : {"raise", "drop", "allow"}
        What NaN or inf betas of the selected vertices or voxels do. "raise" (default):
        a :class:`DatasetFileError` naming the session file and how many vertices and
        trials hold them; "drop": leave out every vertex or voxel with one in any session
        read, with a warning, recording them in ``metadata["dropped_voxels"]``
        (``column`` and ``hemisphere``/``vertex`` or ``i``/``j``/``k``); "allow": keep
        them (z-scoring then ignores them). A file with no finite value is refused.

    Returns
    -------
    Experiment
        One row per trial, chronological; repeats kept. Stimuli are the distinct images
        shown, ordered by 73k id, with ``nsd_id``, ``shared1000`` and, when
        ``nsd_stim_info_merged.csv`` is present, ``coco_id``, ``coco_split``,
        ``crop_box``, and the COCO labels when ``coco_annotations`` is given; images
        come lazily from ``nsd_stimuli.hdf5`` when present. Splits:
        "test" = the shared-1000 images, "train" = the others. The voxel table holds
        ``ncsnr`` when the ncsnr file is present (turn it into a noise ceiling with
        ``scene2brain.evaluation.noise_ceiling_from_ncsnr(ncsnr, n_averaged_trials)``).
    """
    number = nsd_subject(subject)
    root = require_root(root, "the NSD data (nsddata, nsddata_betas, nsddata_stimuli)")
    check_nan_policy(nan_policy)
    if space not in SPACES:
        raise ValueError(f"space: expected one of {SPACES}, got {space!r}")
    if beta_version not in BETA_VERSIONS:
        raise ValueError(f"beta_version: expected one of {BETA_VERSIONS}, got {beta_version!r}")
    if volume_format not in ("nifti", "hdf5"):
        raise ValueError(f"volume_format: expected 'nifti' or 'hdf5', got {volume_format!r}")
    sessions = list(range(1, SESSIONS_PER_SUBJECT[number - 1] + 1)) if sessions is None else list(sessions)
    if not sessions or min(sessions) < 1 or max(sessions) > SESSIONS_PER_SUBJECT[number - 1]:
        raise ValueError(
            f"sessions: subject {number} has sessions 1..{SESSIONS_PER_SUBJECT[number - 1]}, got {sessions}"
        )
    subj = f"subj{number:02d}"
    base = root / "nsddata_betas" / "ppdata" / subj / space / beta_version
    if not base.is_dir():
        raise DatasetFileError(f"{base}: missing; expected the {space} {beta_version} betas of {subj}")
    info_path = root / "nsddata" / "experiments" / "nsd" / "nsd_stim_info_merged.csv"
    coco_dir = None
    if coco_annotations is not None:  # fail before reading any betas
        require_pycocotools("load_nsd(coco_annotations=...)")
        coco_dir = Path(coco_annotations) if Path(coco_annotations).is_absolute() else root / coco_annotations
        if not coco_dir.is_dir():
            raise DatasetFileError(
                f"{coco_dir}: missing; expected the folder holding COCO 2017 instances_train2017.json and "
                "instances_val2017.json (coco_annotations)"
            )
        require(info_path, "the NSD stimulus table (nsd_stim_info_merged.csv), which gives each image's cocoId")

    if space == "fsaverage":
        label_dir = root / "nsddata" / "freesurfer" / "fsaverage" / "label"
        selection = {h: read_surface_values(label_dir / f"{h}.{mask}.mgz", f"the {mask} mask") > 0 for h in hemispheres}
        voxels = pd.concat(
            [pd.DataFrame({"hemisphere": h, "vertex": np.flatnonzero(selection[h])}) for h in hemispheres],
            ignore_index=True,
        )
        ncsnr_paths = [base / f"{h}.ncsnr.mgh" for h in hemispheres]
        if all(p.is_file() for p in ncsnr_paths):
            voxels["ncsnr"] = np.concatenate(
                [read_surface_values(p, "ncsnr")[selection[h]] for p, h in zip(ncsnr_paths, hemispheres, strict=True)]
            )
        for family in rois:
            ctab = read_ctab(label_dir / f"{family}.mgz.ctab")
            voxels[family] = np.concatenate(
                [
                    _label_names(read_surface_values(label_dir / f"{h}.{family}.mgz", f"{family} labels")[selection[h]],
                                 ctab, label_dir / f"{h}.{family}.mgz")
                    for h in hemispheres
                ]
            )  # fmt: skip
    else:
        roi_dir = root / "nsddata" / "ppdata" / subj / space / "roi"
        selection = _read_image(roi_dir / f"{mask}.nii.gz", f"the {mask} mask") > 0
        ijk = np.argwhere(selection)
        voxels = pd.DataFrame({"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2]})
        if (base / "ncsnr.nii.gz").is_file():
            voxels["ncsnr"] = _read_image(base / "ncsnr.nii.gz", "ncsnr")[selection]
        for family in rois:
            ctab = read_ctab(root / "nsddata" / "freesurfer" / subj / "label" / f"{family}.mgz.ctab")
            path = roi_dir / f"{family}.nii.gz"
            voxels[family] = _label_names(_read_image(path, f"{family} labels")[selection], ctab, path)

    design = read_expdesign(root / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat")  # fail before reading betas
    blocks, bad = [], np.zeros(len(voxels), dtype=bool)
    for session in sessions:
        betas, session_bad = _session_betas(base, space, session, hemispheres, volume_format, selection, nan_policy)
        bad |= session_bad
        blocks.append(_zscore(betas) if zscore_sessions else betas)
    per_session = [len(b) for b in blocks]
    if len(set(per_session)) != 1:
        raise DatasetFileError(f"{base}: sessions hold different trial counts {per_session}; expected equal")
    n_per = per_session[0]

    trials = np.concatenate([np.arange((s - 1) * n_per, s * n_per) for s in sessions])
    if trials.max() >= len(design.masterordering):
        raise DatasetFileError(
            f"nsd_expdesign.mat: masterordering has {len(design.masterordering)} trials, "
            f"session {max(sessions)} needs {trials.max() + 1}"
        )
    image_ids = design.subjectim[number - 1, design.masterordering[trials]]
    nsd_ids, trial_stimulus = np.unique(image_ids, return_inverse=True)

    table = pd.DataFrame({"stimulus_id": [f"nsd-{i:05d}" for i in nsd_ids], "nsd_id": nsd_ids})
    table["shared1000"] = np.isin(nsd_ids, design.sharedix)
    if info_path.is_file():
        stim_info = read_stim_info(info_path)
        info = stim_info.set_index("nsdId")
        table["coco_id"] = info.loc[nsd_ids, "cocoId"].to_numpy()
        table["coco_split"] = info.loc[nsd_ids, "cocoSplit"].to_numpy()
        table["crop_box"] = info.loc[nsd_ids, "cropBox"].to_numpy()
        if coco_dir is not None:
            labels = nsd_coco_labels(stim_info, coco_dir, nsd_ids, coco_min_visible_fraction)
            for column in labels.columns:
                table[column] = labels[column].to_numpy()
    brick = root / "nsddata_stimuli" / "stimuli" / "nsd" / "nsd_stimuli.hdf5"
    images = None
    if brick.is_file():
        check_image_brick(brick, int(nsd_ids.max()) + 1)
        images = HDF5Images(brick, "imgBrick", nsd_ids)
    shared = np.flatnonzero(table["shared1000"].to_numpy())
    splits = {"train": np.flatnonzero(~table["shared1000"].to_numpy()), "test": shared}
    metadata = {
        "dataset": "nsd",
        "subject": subj,
        "root": str(root),
        "space": space,
        "beta_version": beta_version,
        "sessions": sessions,
        "trials_per_session": n_per,
        "zscored_per_session": zscore_sessions,
        "units": "z-scores per session" if zscore_sessions else "percent BOLD change",
    }
    if coco_dir is not None:
        metadata["coco_annotations"] = str(coco_dir)
        metadata["coco_min_visible_fraction"] = coco_min_visible_fraction
    data = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    ids = ("hemisphere", "vertex") if space == "fsaverage" else ("i", "j", "k")
    data, voxels = drop_voxels(data, voxels, bad, nan_policy, metadata, base, ids)
    responses = Responses(data, trial_stimulus, voxels, nan_policy="allow" if nan_policy == "allow" else "raise")
    return Experiment(subj, Stimuli(table, images), responses, splits, metadata)


_FS_BETAS = "nsddata_betas/ppdata/subj{:02d}/fsaverage/betas_fithrf_GLMdenoise_RR"


def nsd_files(subject: int) -> list[str]:
    """Paths, relative to the NSD root, that :func:`load_nsd`'s default (fsaverage) reading of a subject needs."""
    base = _FS_BETAS.format(subject)
    files = [
        "nsddata/experiments/nsd/nsd_expdesign.mat",
        "nsddata/experiments/nsd/nsd_stim_info_merged.csv",
        "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5",
    ]
    for hemi in ("lh", "rh"):
        files += [f"nsddata/freesurfer/fsaverage/label/{hemi}.nsdgeneral.mgz", f"{base}/{hemi}.ncsnr.mgh"]
        files += [f"{base}/{hemi}.betas_session{k:02d}.mgh" for k in range(1, SESSIONS_PER_SUBJECT[subject - 1] + 1)]
    return files


def check_nsd(root: str | Path, subject: int | str) -> list[FileCheck]:
    """Open every file of :func:`nsd_files` and check it as :func:`load_nsd` would (fsaverage betas).

    The design and stimulus table are read; the image brick's shape and last image;
    masks and ncsnr (one value per fsaverage vertex); each session's betas: header
    shape and size, trial counts equal across sessions and hemispheres and within the
    design, NaN and inf counted at the nsdgeneral vertices in blocks of trials.
    """
    number = nsd_subject(subject)
    root = require_root(root, "the NSD data (nsddata, nsddata_betas, nsddata_stimuli)")
    check = CopyCheck(root)
    design_rel = "nsddata/experiments/nsd/nsd_expdesign.mat"
    design = check.file(design_rel, read_expdesign)
    check.file("nsddata/experiments/nsd/nsd_stim_info_merged.csv", read_stim_info)
    n_ids = None if design is None else int(design.subjectim.max()) + 1
    check.file(
        "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5",
        lambda p: check_image_brick(p, n_ids),
        after="" if design is not None else design_rel,
    )
    base = _FS_BETAS.format(number)
    first: dict[str, Any] = {}  # trials per session, from the first readable session file
    for hemi in ("lh", "rh"):
        mask_rel = f"nsddata/freesurfer/fsaverage/label/{hemi}.nsdgeneral.mgz"
        selection = check.file(mask_rel, lambda p: read_surface_values(p, "the nsdgeneral mask") > 0)
        check.file(f"{base}/{hemi}.ncsnr.mgh", lambda p: read_surface_values(p, "ncsnr"))
        for session in range(1, SESSIONS_PER_SUBJECT[number - 1] + 1):

            def betas(path: Path, session: int = session, selection: Any = selection) -> Noted:
                use = np.ones(N_FSAVERAGE_VERTICES, bool) if selection is None else selection
                _, counts = read_fsaverage_betas(path, session, use, "allow", keep=False)
                n_trials = counts.shape[0]
                if first and n_trials != first["n"]:
                    raise DatasetFileError(
                        f"{path}: {n_trials} trials, but {first['file']} holds {first['n']}; sessions hold equal counts"
                    )
                first.setdefault("n", n_trials)
                first.setdefault("file", path.name)
                if design is not None and session * n_trials > len(design.masterordering):
                    raise DatasetFileError(
                        f"{path}: session {session} of {n_trials} trials needs {session * n_trials} trials in "
                        f"nsd_expdesign.mat's masterordering, which has {len(design.masterordering)}"
                    )
                return Noted(None, counts.describe("trials", "nsdgeneral vertices"))

            check.file(
                f"{base}/{hemi}.betas_session{session:02d}.mgh", betas, after="" if selection is not None else mask_rel
            )
    return check.results
