"""A small simulated study (120 stimuli, Gabor + two EfficientNet-Lite0 layers) shared by the run tests."""

import json

import tomli_w

from scene2brain.pipeline.config import GROUND_TRUTH_CHECKS, RunConfig, load_config

SMALL = {
    "run": {"name": "small", "output": "results", "cache": "cache"},
    "dataset": {
        "name": "simulated",
        # too small for the ground-truth checks to mean anything: they are disabled (test_cli_run_and_report
        # runs them once and sees the run fail)
        "simulation": {"n_stimuli": 120, "n_voxels": 80, "image_size": 64, "skip_checks": list(GROUND_TRUTH_CHECKS)},
    },
    "features": [
        {"name": "gabor", "model": "gabor", "options": {"image_size": 32}, "reduction": "standardise"},
        {
            "name": "effnet",
            "model": "efficientnet-lite0",
            "layers": ["_blocks.2", "head"],
            "reduction": {"method": "pca", "n_components": 16},
        },
    ],
    "encoder": {"alphas": [1.0, 10.0, 100.0, 1000.0], "cv": 3},
    "evaluation": {"n_bootstraps": 20, "identification": True, "identification_voxels": 40},
    "report": {"enabled": False},
}


def write_config(folder, changes=None) -> RunConfig:
    """``folder/study.toml``: SMALL with sections updated (dicts) or replaced (lists) by ``changes``."""
    data = json.loads(json.dumps(SMALL))
    for section, values in (changes or {}).items():
        if isinstance(values, list):
            data[section] = values
        else:
            data.setdefault(section, {}).update(values)
    path = folder / "study.toml"
    path.write_text(tomli_w.dumps(data))
    return load_config(path)
