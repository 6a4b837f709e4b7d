"""What each supported dataset needs on disk, where to get it, and a check of a local copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DatasetInfo:
    """A supported dataset."""

    name: str
    description: str
    obtain: str
    loader: str
    files: Callable[[int], list[str]]  # subject -> paths relative to the dataset root
    default_subject: int = 1


def _algonauts_files(subject: int) -> list[str]:
    from scene2brain.data.datasets.algonauts import ROI_FAMILIES

    s = f"subj{subject:02d}"
    files = []
    for hemi in ("lh", "rh"):
        files.append(f"{s}/roi_masks/{hemi}.all-vertices_fsaverage_space.npy")
        files += [f"{s}/roi_masks/{hemi}.{f}_challenge_space.npy" for f in ROI_FAMILIES]
        files.append(f"{s}/training_split/training_fmri/{hemi}_training_fmri.npy")
    files += [f"{s}/roi_masks/mapping_{f}.npy" for f in ROI_FAMILIES]
    return [*files, f"{s}/training_split/training_images/", f"{s}/test_split/test_images/"]


def _nsd_files(subject: int) -> list[str]:
    from scene2brain.data.datasets.nsd import SESSIONS_PER_SUBJECT

    s = f"subj{subject:02d}"
    base = f"nsddata_betas/ppdata/{s}/fsaverage/betas_fithrf_GLMdenoise_RR"
    files = [
        "nsddata/experiments/nsd/nsd_expdesign.mat",
        "nsddata/experiments/nsd/nsd_stim_info_merged.csv",
        "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5",
    ]
    for hemi in ("lh", "rh"):
        files += [f"nsddata/freesurfer/fsaverage/label/{hemi}.nsdgeneral.mgz", f"{base}/{hemi}.ncsnr.mgh"]
        files += [f"{base}/{hemi}.betas_session{k:02d}.mgh" for k in range(1, SESSIONS_PER_SUBJECT[subject - 1] + 1)]
    return files


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "algonauts2023",
            "Algonauts 2023 challenge: NSD subjects 1-8, fsaverage challenge vertices, images as PNG",
            "Fill in the data request form on algonautsproject.com/2023 (accept the NSD terms); "
            "download algonauts_2023_challenge_data from the shared Google Drive folder.",
            "scene2brain.data.datasets.load_algonauts2023",
            _algonauts_files,
        ),
        DatasetInfo(
            "nsd",
            "Natural Scenes Dataset: single-trial betas (fsaverage or volume), design, stimuli, ROIs",
            "Register at naturalscenesdataset.org (NSD Data Access agreement), then copy from the "
            "s3://natural-scenes-dataset bucket, e.g. aws s3 sync --no-sign-request.",
            "scene2brain.data.datasets.load_nsd",
            _nsd_files,
        ),
        DatasetInfo(
            "kay2008",
            "Kay et al. 2008 (CRCNS vim-1): estimated responses of S1/S2, greyscale stimuli",
            "Create a CRCNS account (crcns.org), then download vim-1 (EstimatedResponses.mat, Stimuli.mat).",
            "scene2brain.data.datasets.load_kay2008",
            lambda subject: ["EstimatedResponses.mat", "Stimuli.mat"],
        ),
        DatasetInfo(
            "kay2008-nma",
            "Kay et al. 2008 as repackaged by Neuromatch Academy (S1, 8,428 voxels, category labels)",
            "Public on OSF, no registration: `scene2brain datasets fetch kay2008-nma` downloads it.",
            "scene2brain.data.datasets.load_kay2008_nma",
            lambda subject: ["kay_images.npz", "kay_labels.npy", "kay_labels_val.npy"],
        ),
        DatasetInfo(
            "things-fmri",
            "THINGS-fMRI single-trial response tables (3 subjects)",
            "Public on figshare (THINGS-data collection), no registration: `scene2brain datasets fetch "
            "things-fmri` downloads betas_csv (all subjects). The THINGS images need the password from "
            "the THINGS database's OSF page.",
            "scene2brain.data.datasets.load_things_fmri",
            lambda subject: [
                f"sub-{subject:02d}_ResponseData.h5",
                f"sub-{subject:02d}_VoxelMetadata.csv",
                f"sub-{subject:02d}_StimulusMetadata.csv",
            ],
        ),
        DatasetInfo(
            "bold5000",
            "BOLD5000 ROI release: per-ROI responses of CSI1-CSI4 and the per-trial image lists",
            "Public on figshare (release 1) and Dropbox, no registration: `scene2brain datasets fetch "
            "bold5000` downloads the ROI release and the stimuli.",
            "scene2brain.data.datasets.load_bold5000",
            lambda subject: [
                f"ROIs/CSI{subject}/mat/CSI{subject}_ROIs_TR34.mat",
                f"ROIs/stim_lists/CSI0{subject}_stim_lists.txt",
            ],
        ),
        DatasetInfo(
            "coco",
            "COCO 2017 instance annotations (categories of NSD images)",
            "Public at cocodataset.org, no registration: `scene2brain datasets fetch coco` downloads "
            "annotations_trainval2017.zip and unpacks its annotations/ folder.",
            "scene2brain.data.datasets.coco.nsd_coco_categories",
            lambda subject: ["instances_train2017.json", "instances_val2017.json"],
        ),
    )
}


def _probe(path: Path) -> None:
    """Open ``path`` with the reader its format needs; raise on anything unreadable."""
    name = path.name
    if name.endswith(".npy"):
        pickled = name.startswith("mapping_")  # Algonauts ROI dicts are pickled objects
        np.load(path, mmap_mode=None if pickled else "r", allow_pickle=pickled)
    elif name.endswith(".npz"):
        with np.load(path) as archive:
            archive.files  # noqa: B018 (reading the index validates the archive)
    elif name.endswith((".mgh", ".mgz", ".nii", ".nii.gz")):
        import nibabel as nib

        nib.load(path).header  # noqa: B018
    elif name.endswith((".hdf5", ".h5")) or name == "EstimatedResponses.mat":
        import h5py

        h5py.File(path, "r").close()
    elif name.endswith(".mat"):
        from scipy.io import whosmat

        whosmat(path)
    elif name.endswith((".csv", ".txt", ".json")):
        with open(path, encoding="utf-8") as fh:
            fh.readline()


def check_dataset(name: str, root: str | Path, subject: int | None = None) -> list[tuple[str, str]]:
    """Status of every file a dataset needs: ``[(relative path, "ok" | "missing" | "malformed: ...")]``."""
    if name not in DATASETS:
        raise ValueError(f"dataset: expected one of {sorted(DATASETS)}, got {name!r}")
    info = DATASETS[name]
    root = Path(root)
    report = []
    for rel in info.files(subject or info.default_subject):
        path = root / rel
        if rel.endswith("/"):
            status = "ok" if path.is_dir() and any(path.iterdir()) else "missing"
        elif not path.is_file():
            status = "missing"
        else:
            try:
                _probe(path)
                status = "ok"
            except Exception as err:
                status = f"malformed: {type(err).__name__}: {err}"
        report.append((rel, status))
    return report
