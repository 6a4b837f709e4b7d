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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scene2brain.data.containers import Experiment, Responses, Stimuli
from scene2brain.data.datasets._files import DatasetFileError, check_shape, nsd_subject, require
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


def _read_image(path: Path, what: str) -> np.ndarray:
    """Raw voxel or vertex values of an MGH/MGZ or NIfTI file (nibabel picks the format)."""
    import nibabel as nib

    require(path, what)
    try:
        return np.asarray(nib.load(path).dataobj)
    except Exception as err:
        raise DatasetFileError(f"{path}: not readable as MGH/MGZ or NIfTI: {err}; expected {what}") from err


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


def _session_betas(base: Path, space: str, session: int, hemispheres: Sequence[str], fmt: str, mask: Any) -> np.ndarray:
    """One session's betas as (n_trials, n_selected) float32, in %BOLD for volumes."""
    if space == "fsaverage":
        blocks = []
        for hemi in hemispheres:
            path = base / f"{hemi}.betas_session{session:02d}.mgh"
            arr = _read_image(path, f"session {session} betas over fsaverage (163842, 1, 1, n_trials)")
            check_shape(path, arr, (N_FSAVERAGE_VERTICES, 1, 1, None), "fsaverage betas")
            blocks.append(arr.reshape(N_FSAVERAGE_VERTICES, -1).T[:, mask[hemi]])
        return np.concatenate(blocks, axis=1).astype(np.float32)
    if fmt == "nifti":
        path = base / f"betas_session{session:02d}.nii.gz"
        arr = _read_image(path, f"session {session} betas (X, Y, Z, n_trials), int16 = beta * 300")
        if arr.ndim != 4 or arr.shape[:3] != mask.shape:
            raise DatasetFileError(f"{path}: expected shape {(*mask.shape, 'n_trials')}, found {arr.shape}")
        values = arr[mask].T  # (n_trials, n_voxels)
    else:
        import h5py

        path = require(base / f"betas_session{session:02d}.hdf5", f"session {session} betas, dataset 'betas'")
        with h5py.File(path, "r") as f:
            if "betas" not in f:
                raise DatasetFileError(f"{path}: dataset 'betas' missing (found {list(f.keys())})")
            arr = np.asarray(f["betas"])
        if arr.ndim != 4 or arr.shape[1:] != mask.shape[::-1]:
            raise DatasetFileError(
                f"{path}: expected 'betas' of shape (n_trials, {', '.join(map(str, mask.shape[::-1]))}) "
                f"(NIfTI axes reversed), found {arr.shape}"
            )
        values = arr.transpose(0, 3, 2, 1)[:, mask]
    scale = INT16_SCALE if values.dtype.kind == "i" else 1.0
    return values.astype(np.float32) / np.float32(scale)


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
    root = Path(root)
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
        selection = {h: _read_image(label_dir / f"{h}.{mask}.mgz", f"the {mask} mask").ravel() > 0 for h in hemispheres}
        voxels = pd.concat(
            [pd.DataFrame({"hemisphere": h, "vertex": np.flatnonzero(selection[h])}) for h in hemispheres],
            ignore_index=True,
        )
        ncsnr_paths = [base / f"{h}.ncsnr.mgh" for h in hemispheres]
        if all(p.is_file() for p in ncsnr_paths):
            voxels["ncsnr"] = np.concatenate(
                [_read_image(p, "ncsnr").ravel()[selection[h]] for p, h in zip(ncsnr_paths, hemispheres, strict=True)]
            )
        for family in rois:
            ctab = read_ctab(label_dir / f"{family}.mgz.ctab")
            voxels[family] = np.concatenate(
                [
                    _label_names(_read_image(label_dir / f"{h}.{family}.mgz", f"{family} labels").ravel()[selection[h]],
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
    blocks = []
    for session in sessions:
        betas = _session_betas(base, space, session, hemispheres, volume_format, selection)
        blocks.append(standardise_columns(betas).astype(np.float32) if zscore_sessions else betas)
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
    images = HDF5Images(brick, "imgBrick", nsd_ids) if brick.is_file() else None
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
    return Experiment(subj, Stimuli(table, images), Responses(data, trial_stimulus, voxels), splits, metadata)
