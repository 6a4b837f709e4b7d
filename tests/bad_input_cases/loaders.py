"""Bad dataset copies given to the loaders and to ``check_dataset``: each error names the file (or argument)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dataset_fixtures import write_algonauts_subject, write_bold5000, write_kay_nma, write_nsd, write_things

from bad_input_cases import Case
from scene2brain.data.datasets import (
    DatasetFileError,
    check_dataset,
    load_algonauts2023,
    load_bold5000,
    load_kay2008_nma,
    load_nsd,
    load_things_fmri,
)

FMRI = "subj01/training_split/training_fmri/lh_training_fmri.npy"


def _algonauts(folder: Path, damage) -> None:
    """A one-subject Algonauts copy (12 images, 30 + 40 vertices) with ``damage(folder)`` done, then loaded."""
    write_algonauts_subject(folder, 1, n_train=12, n_vertices=(30, 40))
    damage(folder)
    load_algonauts2023(folder, 1)


def _nan(folder: Path) -> None:
    fmri = np.load(folder / FMRI)
    fmri[4, 2] = np.nan
    np.save(folder / FMRI, fmri)


def _extra_vertex(folder: Path) -> None:
    path = folder / "subj01/roi_masks/lh.all-vertices_fsaverage_space.npy"
    mask = np.load(path)
    mask[np.flatnonzero(mask == 0)[0]] = 1
    np.save(path, mask)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _nsd_truncated(folder: Path) -> None:
    write_nsd(folder, n_sessions=1, n_per=10)
    _truncate(folder / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/lh.betas_session01.mgh")
    load_nsd(folder, 1, sessions=[1])


def _kay_truncated(folder: Path) -> None:
    write_kay_nma(folder)
    _truncate(folder / "kay_images.npz", 0.9)
    load_kay2008_nma(folder)


def _things_mismatch(folder: Path) -> None:
    import pandas as pd

    write_things(folder, n_voxels=9)
    voxels = pd.read_csv(folder / "sub-01_VoxelMetadata.csv")
    voxels.iloc[:-1].to_csv(folder / "sub-01_VoxelMetadata.csv", index=False)
    load_things_fmri(folder, 1)


def _bold_rows(folder: Path) -> None:
    truth = write_bold5000(folder)
    (folder / "ROIs/stim_lists/CSI01_stim_lists.txt").write_text("\n".join(truth["names"][:-1]))
    load_bold5000(folder, 1)


CASES = [
    Case("loaders/missing-root", lambda f: load_algonauts2023(f / "nowhere", 1), DatasetFileError,
         "{folder}/nowhere: missing; expected the root folder"),
    Case("loaders/missing-file", lambda f: _algonauts(f, lambda g: (g / FMRI).unlink()), DatasetFileError,
         "lh_training_fmri.npy: missing"),
    Case("loaders/wrong-shape",
         lambda f: _algonauts(f, lambda g: np.save(g / FMRI, np.zeros((11, 30), np.float32))),
         DatasetFileError, "lh_training_fmri.npy: expected training fMRI (training images x mask vertices)"),
    Case("loaders/nan-responses", lambda f: _algonauts(f, _nan), DatasetFileError,
         "lh_training_fmri.npy: 1 NaN and 0 inf values in 1 of 30 vertices"),
    Case("loaders/wrong-dtype", lambda f: _algonauts(f, lambda g: np.save(g / FMRI, np.zeros((12, 30), np.int32))),
         DatasetFileError, "lh_training_fmri.npy: expected training fMRI"),
    Case("loaders/mask-response-mismatch", lambda f: _algonauts(f, _extra_vertex), DatasetFileError,
         "lh_training_fmri.npy: expected training fMRI (training images x mask vertices) of shape (12, 31)"),
    Case("loaders/truncated-npy", lambda f: _algonauts(f, lambda g: _truncate(g / FMRI)), DatasetFileError,
         "lh_training_fmri.npy: truncated"),
    Case("loaders/bad-subject", lambda f: load_algonauts2023(f, 9), ValueError, "subject: expected 1..8"),
    Case("loaders/bad-nan-policy", lambda f: load_algonauts2023(f, 1, nan_policy="zero"), ValueError,
         "nan_policy: expected one of"),
    Case("loaders/nsd-truncated-mgh", _nsd_truncated, DatasetFileError, "lh.betas_session01.mgh: truncated"),
    Case("loaders/kay-nma-truncated-npz", _kay_truncated, DatasetFileError, "kay_images.npz: could not be read"),
    Case("loaders/things-voxels-mismatch", _things_mismatch, DatasetFileError,
         "sub-01_ResponseData.h5: voxel_id rows (9) differ from sub-01_VoxelMetadata.csv"),
    Case("loaders/bold5000-rows-vs-stimulus-list", _bold_rows, DatasetFileError,
         "CSI1_ROIs_TR34.mat: LHEarlyVis should be (n_trials=6, n_voxels) to match CSI01_stim_lists.txt"),
    Case("loaders/check-missing-root", lambda f: check_dataset("algonauts2023", f / "nowhere"), DatasetFileError,
         "{folder}/nowhere: missing"),
]  # fmt: skip
