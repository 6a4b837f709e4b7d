"""Runs that fail on top of a finished run: each leaves every file of the earlier run byte-identical.

``setup`` runs a small Algonauts 2023 study (a fixture copy, scored on the devkit's ``val``
split) to the end; ``act`` then runs a broken variant of it into the same results folder.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

from bad_input_cases import Case
from bad_input_cases.configuration import algonauts_study
from scene2brain.pipeline.config import ConfigError, load_config
from scene2brain.pipeline.run import run_config


def _finished_run(folder: Path) -> None:
    run_config(load_config(algonauts_study(folder, "val")), progress=False)


def _variant(folder: Path, test: str = "val", **changes: dict) -> None:
    data = tomllib.loads(algonauts_study(folder, "val").read_text())
    data["splits"]["test"] = test
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    path = folder / "variant.toml"
    path.write_text(tomli_w.dumps(data))
    run_config(load_config(path), progress=False)


CASES = [
    Case("runs/withheld-test-split", lambda f: _variant(f, "test"), ConfigError,
         "splits.test: split 'test' of algonauts2023-01 has no measured responses", setup=_finished_run),
    Case("runs/repeats-ceiling-without-repeats",
         lambda f: _variant(f, evaluation={"noise_ceiling": "repeats"}, encoder={"alphas": [0.5, 5.0]}), ConfigError,
         "evaluation.noise_ceiling: 'repeats' needs test stimuli shown at least twice", setup=_finished_run),
    Case("runs/missing-label-column",
         lambda f: _variant(f, decoding={"labels": "animacy", "n_permutations": 0}, encoder={"alphas": [0.5]}),
         ConfigError, "decoding.labels: 'animacy' is not a column of algonauts2023-01's stimulus table",
         setup=_finished_run),
    Case("runs/missing-roi-column", lambda f: _variant(f, dataset={"roi_column": "glasser"}), ConfigError,
         "dataset.roi_column: 'glasser' is not a column", setup=_finished_run),
    Case("runs/dataset-folder-missing", lambda f: _variant(f, dataset={"path": "elsewhere"}), ConfigError,
         "dataset.path: {folder}/elsewhere does not exist", setup=_finished_run),
]  # fmt: skip
