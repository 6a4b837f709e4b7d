"""What each supported dataset needs on disk, where to get it, and a check of a local copy."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scene2brain.data.datasets._files import DatasetFileError


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
            "Public on figshare (THINGS-data collection, betas_csv): download the sub-0X files.",
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
            "Public on figshare / bold5000.org (ROIs release); no registration.",
            "scene2brain.data.datasets.load_bold5000",
            lambda subject: [
                f"ROIs/CSI{subject}/mat/CSI{subject}_ROIs_TR34.mat",
                f"ROIs/stim_lists/CSI0{subject}_stim_lists.txt",
            ],
        ),
        DatasetInfo(
            "coco",
            "COCO 2017 instance annotations (categories of NSD images)",
            "Public at cocodataset.org: annotations_trainval2017.zip, then point at its annotations/ folder.",
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


#: The NMA Kay 2008 files on OSF, with their sizes in bytes where known (from the Git LFS pointers).
KAY_NMA_FILES = {
    "kay_images.npz": ("https://osf.io/ymnjv/download", 248_704_338),
    "kay_labels.npy": ("https://osf.io/r638s/download", 1_988_128),
    "kay_labels_val.npy": ("https://osf.io/yqb3e/download", None),
}


def data_home(path: str | Path | None = None) -> Path:
    """Where fetched datasets live: ``path``, else ``$SCENE2BRAIN_DATA``, else ``~/scene2brain_data``."""
    return Path(path or os.environ.get("SCENE2BRAIN_DATA") or Path.home() / "scene2brain_data")


def fetch_kay2008_nma(home: str | Path | None = None) -> Path:
    """Download the public NMA Kay 2008 files into the data home (once) and return their folder.

    Files already present with the expected size are used as they are, so an offline
    machine works from a copy placed there by hand. A download that fails (offline,
    server error) raises a :class:`DatasetFileError` saying where to put the files.
    Sizes are checked where the size is known; on first download the SHA-256 of each
    file is recorded in ``SHA256SUMS`` beside them and verified on later calls.
    """
    import hashlib

    folder = data_home(home) / "kay2008-nma"
    folder.mkdir(parents=True, exist_ok=True)
    sums_path = folder / "SHA256SUMS"
    sums = dict(line.split()[::-1] for line in sums_path.read_text().splitlines()) if sums_path.is_file() else {}
    for fname, (url, size) in KAY_NMA_FILES.items():
        target = folder / fname
        if not target.is_file():
            import pooch

            try:
                pooch.retrieve(url, known_hash=None, fname=fname, path=folder, progressbar=False)
            except Exception as err:
                raise DatasetFileError(
                    f"{target}: missing and the download from {url} failed ({type(err).__name__}: {err}); "
                    f"when offline, download it elsewhere and copy it to {folder}"
                ) from err
        if size is not None and target.stat().st_size != size:
            raise DatasetFileError(f"{target}: expected {size} bytes, found {target.stat().st_size} (truncated?)")
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if fname in sums and sums[fname] != digest:
            raise DatasetFileError(f"{target}: SHA-256 {digest} differs from the one recorded in {sums_path}")
        sums[fname] = digest
    sums_path.write_text("".join(f"{d}  {f}\n" for f, d in sorted(sums.items())))
    return folder
