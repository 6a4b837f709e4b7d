"""Run configurations that cannot work: each is refused when it is read or before any stage runs."""

from __future__ import annotations

import json
from pathlib import Path

import tomli_w
from run_fixtures import SMALL

from bad_input_cases import Case
from scene2brain.pipeline.config import ConfigError, load_config
from scene2brain.pipeline.run import run_config


def _study(folder: Path, change) -> Path:
    data = json.loads(json.dumps(SMALL))
    change(data)
    path = folder / "study.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def _load(change):
    return lambda folder: load_config(_study(folder, change))


def _run(change):
    def act(folder: Path):
        run_config(load_config(_study(folder, change)), progress=False)

    return act


def _set(section: str, key: str, value, entry: int | None = None):
    def change(data):
        target = data.setdefault(section, {}) if entry is None else data[section][entry]
        target[key] = value

    return change


def algonauts_study(folder: Path, test: str, output: str = "results") -> Path:
    """A one-subject Algonauts 2023 copy (``tests/dataset_fixtures``) and a small study of it scored on ``test``."""
    from dataset_fixtures import write_algonauts_subject

    root = folder / "algonauts"
    if not root.exists():
        write_algonauts_subject(root, 1, n_train=30, n_test=6)
    data = {
        "run": {"output": output, "cache": "cache"},
        "dataset": {"name": "algonauts2023", "path": "algonauts", "roi_column": "prf-visualrois"},
        "splits": {"train": "train", "test": test},
        "features": [{"name": "gabor", "model": "gabor", "options": {"image_size": 16}, "reduction": "standardise"}],
        "encoder": {"alphas": [1.0, 10.0], "cv": 2},
        "evaluation": {"noise_ceiling": "none", "n_bootstraps": 5},
        "report": {"enabled": False},
    }
    path = folder / f"algonauts-{test}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def _withheld(folder: Path):
    run_config(load_config(algonauts_study(folder, "test")), progress=False)


def _huge(data):
    data["dataset"]["simulation"]["n_voxels"] = 10**10  # about 10**14 bytes of responses: no disk holds that


CASES = [
    Case("configuration/unknown-model", _load(_set("features", "model", "resnet5000", 1)), ConfigError,
         "features[1].model: unknown model 'resnet5000'"),
    Case("configuration/bad-network-layer", _load(_set("features", "layers", ["_blocks.2", "layer4"], 1)), ConfigError,
         "features[1]: layers: ['layer4'] are not layers of efficientnet-lite0"),
    Case("configuration/bad-gabor-layer", _load(_set("features", "layers", ["conv1"], 0)), ConfigError,
         "layers: gabor has the layers ['energy']; got ['conv1']"),
    Case("configuration/bad-pooling", _load(_set("features", "pooling", "median", 1)), ConfigError,
         "features[1].pooling: expected one of flatten"),
    Case("configuration/unknown-key", _load(_set("encoder", "alpha", [1.0])), ConfigError,
         "encoder.alpha: unknown key; allowed keys: model, alphas, cv"),
    Case("configuration/wrong-type", _load(_set("encoder", "cv", "five")), ConfigError, "encoder.cv"),
    Case("configuration/unknown-driver-model",
         _load(lambda d: d["dataset"]["simulation"].update(driver_model="no-such-net")), ConfigError,
         "dataset.simulation: driver_model: unknown model 'no-such-net'"),
    Case("configuration/bad-driver-layer",
         _load(lambda d: d["dataset"]["simulation"].update(driver_layer="fc9")), ConfigError,
         "driver_layer: 'fc9' is not a layer of efficientnet-lite0"),
    Case("configuration/simulated-split-missing", _load(_set("splits", "test", "val")), ConfigError,
         "splits.test: 'val' is not a split of the simulated dataset"),
    Case("configuration/disk-space", _run(_huge), ConfigError, "of disk space (estimated), but only"),
    Case("configuration/own-stimuli-missing",
         _run(lambda d: d["dataset"]["simulation"].update(stimuli="no-such-folder", n_stimuli=None) or
              d["dataset"]["simulation"].pop("n_stimuli")), ConfigError,
         "dataset.simulation.stimuli: {folder}/no-such-folder does not exist"),
    Case("configuration/withheld-test-split", _withheld, ConfigError,
         "splits.test: split 'test' of algonauts2023-01 has no measured responses"),
]  # fmt: skip
