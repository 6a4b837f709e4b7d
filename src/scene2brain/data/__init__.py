"""Data model (Stimuli, Responses, Experiment), image sources, storage and the simulated experiment."""

from scene2brain.data.containers import Experiment, Responses, Stimuli
from scene2brain.data.images import (
    ArrayImages,
    FileImages,
    HDF5Images,
    ImageSource,
    SubsetImages,
    as_image_source,
    folder_images,
    hdf5_images,
)
from scene2brain.data.storage import load_experiment, load_stimuli, save_experiment, save_stimuli

__all__ = [
    "ArrayImages",
    "Experiment",
    "FileImages",
    "HDF5Images",
    "ImageSource",
    "Responses",
    "Stimuli",
    "SubsetImages",
    "as_image_source",
    "folder_images",
    "hdf5_images",
    "load_experiment",
    "load_stimuli",
    "save_experiment",
    "save_stimuli",
]
