"""Data model (Stimuli, Responses, Experiment), storage and the simulated experiment."""

from scene2brain.data.containers import ArrayImages, Experiment, FileImages, Responses, Stimuli
from scene2brain.data.storage import load_experiment, save_experiment

__all__ = ["ArrayImages", "Experiment", "FileImages", "Responses", "Stimuli", "load_experiment", "save_experiment"]
