"""Loaders for real datasets; each returns an :class:`~scene2brain.data.Experiment`.

The formats are documented in each module; every loader checks what it reads and
names the file, what it found and what it expected when something is off.
"""

from scene2brain.data.datasets._files import DatasetFileError
from scene2brain.data.datasets.algonauts import devkit_split, load_algonauts2023, write_submission
from scene2brain.data.datasets.bold5000 import load_bold5000
from scene2brain.data.datasets.coco import nsd_coco_categories
from scene2brain.data.datasets.fetch import PUBLIC_DATASETS, data_home, fetch_dataset
from scene2brain.data.datasets.kay import load_kay2008, load_kay2008_nma
from scene2brain.data.datasets.nsd import load_nsd, read_expdesign, read_stim_info, trials_from_stim_info
from scene2brain.data.datasets.registry import DATASETS, check_dataset
from scene2brain.data.datasets.things import load_things_fmri
from scene2brain.data.fsaverage import challenge_to_fsaverage, fsaverage_to_challenge

__all__ = [
    "DATASETS",
    "PUBLIC_DATASETS",
    "DatasetFileError",
    "challenge_to_fsaverage",
    "check_dataset",
    "data_home",
    "devkit_split",
    "fetch_dataset",
    "fsaverage_to_challenge",
    "load_algonauts2023",
    "load_bold5000",
    "load_kay2008",
    "load_kay2008_nma",
    "load_nsd",
    "load_things_fmri",
    "nsd_coco_categories",
    "read_expdesign",
    "read_stim_info",
    "trials_from_stim_info",
    "write_submission",
]
