"""The dataset registry: every supported dataset, what it needs on disk, where to get it, its loader.

:data:`DATASETS` is the single list that ``scene2brain datasets``, the run
configuration's ``dataset.name`` and the pipeline read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scene2brain.data.containers import Experiment
from scene2brain.data.datasets.algonauts import ROI_FAMILIES, load_algonauts2023
from scene2brain.data.datasets.bold5000 import load_bold5000
from scene2brain.data.datasets.kay import load_kay2008, load_kay2008_nma
from scene2brain.data.datasets.nsd import SESSIONS_PER_SUBJECT, load_nsd
from scene2brain.data.datasets.things import load_things_fmri


@dataclass(frozen=True)
class DatasetInfo:
    """A supported dataset.

    Attributes
    ----------
    name : str
        The name used everywhere (CLI, run configurations, data home folders).
    description, obtain : str
        What it is; how to get a copy.
    files : callable
        subject -> paths relative to the dataset root that a complete copy holds.
    load : callable, optional
        ``load(root, subject, **options) -> Experiment``; None where the dataset is not
        an experiment (COCO annotations) or is built by the pipeline (the simulation).
    experiment : bool
        Whether a run configuration can name it as ``dataset.name``.
    """

    name: str
    description: str
    obtain: str
    files: Callable[[int], list[str]]
    load: Callable[..., Any] | None = None
    experiment: bool = True
    reference: str = ""
    default_subject: int = 1

    @property
    def loader(self) -> str:
        """Dotted name of the function that reads it (for listings)."""
        if self.reference:
            return self.reference
        return f"{self.load.__module__}.{self.load.__name__}" if self.load is not None else "-"


def _algonauts_files(subject: int) -> list[str]:
    s = f"subj{subject:02d}"
    files = []
    for hemi in ("lh", "rh"):
        files.append(f"{s}/roi_masks/{hemi}.all-vertices_fsaverage_space.npy")
        files += [f"{s}/roi_masks/{hemi}.{f}_challenge_space.npy" for f in ROI_FAMILIES]
        files.append(f"{s}/training_split/training_fmri/{hemi}_training_fmri.npy")
    files += [f"{s}/roi_masks/mapping_{f}.npy" for f in ROI_FAMILIES]
    return [*files, f"{s}/training_split/training_images/", f"{s}/test_split/test_images/"]


def _nsd_files(subject: int) -> list[str]:
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


def _load_kay2008_nma(root: str | Path, subject: int | str = 1, **options: Any) -> Experiment:
    """The NMA archive holds subject 1 only; ``subject`` is accepted for a uniform loader signature."""
    if str(subject) not in ("1", "S1"):
        raise ValueError(f"subject: the kay2008-nma archive holds subject 1 only, got {subject!r}")
    return load_kay2008_nma(root, **options)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "simulated",
            "Simulated experiment: crops of photographs bundled with scikit-image and scikit-learn, voxels of "
            "known tuning (Gabor pRFs, network features, faces), trial noise with repeats",
            "Nothing to download: `scene2brain demo` (or a run configuration with dataset.name = "
            "'simulated') builds it.",
            lambda subject: [],
            reference="scene2brain.data.simulate.simulate_responses",
        ),
        DatasetInfo(
            "algonauts2023",
            "Algonauts 2023 challenge: NSD subjects 1-8, fsaverage challenge vertices, images as PNG",
            "Fill in the data request form on algonautsproject.com/2023 (accept the NSD terms); "
            "download algonauts_2023_challenge_data from the shared Google Drive folder.",
            _algonauts_files,
            load_algonauts2023,
        ),
        DatasetInfo(
            "nsd",
            "Natural Scenes Dataset: single-trial betas (fsaverage or volume), design, stimuli, ROIs",
            "Register at naturalscenesdataset.org (NSD Data Access agreement), then copy from the "
            "s3://natural-scenes-dataset bucket, e.g. aws s3 sync --no-sign-request.",
            _nsd_files,
            load_nsd,
        ),
        DatasetInfo(
            "kay2008",
            "Kay et al. 2008 (CRCNS vim-1): estimated responses of S1/S2, greyscale stimuli",
            "Create a CRCNS account (crcns.org), then download vim-1 (EstimatedResponses.mat, Stimuli.mat).",
            lambda subject: ["EstimatedResponses.mat", "Stimuli.mat"],
            load_kay2008,
        ),
        DatasetInfo(
            "kay2008-nma",
            "Kay et al. 2008 as repackaged by Neuromatch Academy (S1, 8,428 voxels, category labels)",
            "Public on OSF, no registration: `scene2brain datasets fetch kay2008-nma` downloads it.",
            lambda subject: ["kay_images.npz", "kay_labels.npy", "kay_labels_val.npy"],
            _load_kay2008_nma,
            reference="scene2brain.data.datasets.load_kay2008_nma",
        ),
        DatasetInfo(
            "things-fmri",
            "THINGS-fMRI single-trial response tables (3 subjects)",
            "Public on figshare (THINGS-data collection), no registration: `scene2brain datasets fetch "
            "things-fmri` downloads betas_csv (all subjects). The THINGS images need the password from "
            "the THINGS database's OSF page.",
            lambda subject: [
                f"sub-{subject:02d}_ResponseData.h5",
                f"sub-{subject:02d}_VoxelMetadata.csv",
                f"sub-{subject:02d}_StimulusMetadata.csv",
            ],
            load_things_fmri,
        ),
        DatasetInfo(
            "bold5000",
            "BOLD5000 ROI release: per-ROI responses of CSI1-CSI4 and the per-trial image lists",
            "Public on figshare (release 1) and Dropbox, no registration: `scene2brain datasets fetch "
            "bold5000` downloads the ROI release and the stimuli.",
            lambda subject: [
                f"ROIs/CSI{subject}/mat/CSI{subject}_ROIs_TR34.mat",
                f"ROIs/stim_lists/CSI0{subject}_stim_lists.txt",
            ],
            load_bold5000,
        ),
        DatasetInfo(
            "coco",
            "COCO 2017 instance annotations (categories of NSD images)",
            "Public at cocodataset.org, no registration: `scene2brain datasets fetch coco` downloads "
            "annotations_trainval2017.zip and unpacks its annotations/ folder.",
            lambda subject: ["instances_train2017.json", "instances_val2017.json"],
            experiment=False,
            reference="scene2brain.data.datasets.coco.nsd_coco_categories",
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


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``, or a ValueError listing the names."""
    if name not in DATASETS:
        raise ValueError(f"dataset: expected one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name]


def experiment_datasets() -> list[str]:
    """Names a run configuration accepts as ``dataset.name``."""
    return [name for name, info in DATASETS.items() if info.experiment]


def check_dataset(name: str, root: str | Path, subject: int | None = None) -> list[tuple[str, str]]:
    """Status of every file a dataset needs: ``[(relative path, "ok" | "missing" | "malformed: ...")]``."""
    info = dataset_info(name)
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
