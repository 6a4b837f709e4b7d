"""The dataset registry: every supported dataset, what it needs on disk, where to get it, its loader.

:data:`DATASETS` is the single list that ``scene2brain datasets``, the run
configuration's ``dataset.name`` and the pipeline read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scene2brain.data.containers import Experiment
from scene2brain.data.datasets._files import DatasetFileError, FileCheck, require_root
from scene2brain.data.datasets.algonauts import algonauts_files, check_algonauts2023, load_algonauts2023
from scene2brain.data.datasets.bold5000 import check_bold5000, load_bold5000
from scene2brain.data.datasets.coco import check_coco
from scene2brain.data.datasets.kay import check_kay2008, check_kay2008_nma, load_kay2008, load_kay2008_nma
from scene2brain.data.datasets.nsd import check_nsd, load_nsd, nsd_files
from scene2brain.data.datasets.things import check_things_fmri, load_things_fmri


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
    check : callable, optional
        ``check(root, subject) -> list[FileCheck]``: opens each of those files and checks
        it with the loader's own rules (see :func:`check_dataset`).
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
    check: Callable[[Path, int], list[FileCheck]] | None = None

    @property
    def loader(self) -> str:
        """Dotted name of the function that reads it (for listings)."""
        if self.reference:
            return self.reference
        return f"{self.load.__module__}.{self.load.__name__}" if self.load is not None else "-"


def _nma_subject(subject: int | str) -> None:
    if str(subject) not in ("1", "S1"):
        raise ValueError(f"subject: the kay2008-nma archive holds subject 1 only, got {subject!r}")


def _load_kay2008_nma(root: str | Path, subject: int | str = 1, **options: Any) -> Experiment:
    """The NMA archive holds subject 1 only; ``subject`` is accepted for a uniform loader signature."""
    _nma_subject(subject)
    return load_kay2008_nma(root, **options)


def _check_kay2008_nma(root: Path, subject: int | str = 1) -> list[FileCheck]:
    _nma_subject(subject)
    return check_kay2008_nma(root)


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
            algonauts_files,
            load_algonauts2023,
            check=check_algonauts2023,
        ),
        DatasetInfo(
            "nsd",
            "Natural Scenes Dataset: single-trial betas (fsaverage or volume), design, stimuli, ROIs",
            "Register at naturalscenesdataset.org (NSD Data Access agreement), then copy from the "
            "s3://natural-scenes-dataset bucket, e.g. aws s3 sync --no-sign-request.",
            nsd_files,
            load_nsd,
            check=check_nsd,
        ),
        DatasetInfo(
            "kay2008",
            "Kay et al. 2008 (CRCNS vim-1): estimated responses of S1/S2, greyscale stimuli",
            "Create a CRCNS account (crcns.org), then download vim-1 (EstimatedResponses.mat, Stimuli.mat).",
            lambda subject: ["EstimatedResponses.mat", "Stimuli.mat"],
            load_kay2008,
            check=check_kay2008,
        ),
        DatasetInfo(
            "kay2008-nma",
            "Kay et al. 2008 as repackaged by Neuromatch Academy (S1, 8,428 voxels, category labels)",
            "Public on OSF, no registration: `scene2brain datasets fetch kay2008-nma` downloads it.",
            lambda subject: ["kay_images.npz", "kay_labels.npy", "kay_labels_val.npy"],
            _load_kay2008_nma,
            reference="scene2brain.data.datasets.load_kay2008_nma",
            check=_check_kay2008_nma,
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
            check=check_things_fmri,
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
            check=check_bold5000,
        ),
        DatasetInfo(
            "coco",
            "COCO 2017 instance annotations (categories of NSD images)",
            "Public at cocodataset.org, no registration: `scene2brain datasets fetch coco` downloads "
            "annotations_trainval2017.zip and unpacks its annotations/ folder.",
            lambda subject: ["instances_train2017.json", "instances_val2017.json"],
            experiment=False,
            reference="scene2brain.data.datasets.coco.nsd_coco_categories",
            check=check_coco,
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``, or a ValueError listing the names."""
    if name not in DATASETS:
        raise ValueError(f"dataset: expected one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name]


def experiment_datasets() -> list[str]:
    """Names a run configuration accepts as ``dataset.name``."""
    return [name for name, info in DATASETS.items() if info.experiment]


def check_dataset(name: str, root: str | Path, subject: int | None = None) -> list[FileCheck]:
    """Open every file a dataset copy needs and check it with the loader's own rules.

    Each file is read in bounded memory (``.npy`` memory-mapped, HDF5 and MGH read in
    blocks of rows) and checked as its loader would: the size against the header
    (truncated files), dtype, shape and the shapes of the files it must agree with
    (responses: rows = images or trials, columns = mask vertices or voxels), and NaN
    and inf counts (reported in the result's ``note``; a file with no finite value is
    malformed).

    Parameters
    ----------
    name : str
        A registered dataset (:data:`DATASETS`).
    root : path
        The copy's root folder.
    subject : int, optional
        Default: the dataset's first subject.

    Returns
    -------
    list of FileCheck
        One per expected file, in the order of ``DATASETS[name].files``; each unpacks as
        ``(relative path, status)`` with status "ok", "missing" or "malformed: <why>".

    Raises
    ------
    DatasetFileError
        When ``root`` is not a folder (one error, not one "missing" per file).
    ValueError
        For an unknown dataset or subject.
    """
    info = dataset_info(name)
    subject = subject or info.default_subject
    expected = info.files(subject)
    if not expected:
        return []
    root = require_root(root, f"a copy of {name}")
    if info.check is None:
        raise DatasetFileError(f"{name}: no check is registered")
    found = {result.path: result for result in info.check(root, subject)}
    missing = [rel for rel in expected if rel not in found]
    if missing:  # a checker that forgets a file would report a copy as complete
        raise RuntimeError(f"the check of {name} did not look at {missing}")
    return [found[rel] for rel in expected]
