"""Bad inputs to the data model (:mod:`scene2brain.data.containers`): each names the argument and what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bad_input_cases import Case
from scene2brain.data.containers import Experiment, Responses, Stimuli


def _table(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)]})


def _responses(n: int = 3, value: float | None = None) -> Responses:
    data = np.zeros((n, 4), np.float32)
    if value is not None:
        data[1, 2] = value
    return Responses(data, np.arange(n))


def _experiment(**change) -> Experiment:
    args = {"subject": "s01", "stimuli": Stimuli(_table()), "responses": _responses(), "splits": {"train": [0, 1]}}
    return Experiment(**{**args, **change})


CASES = [
    Case(
        "containers/responses-float64",
        lambda f: Responses(np.zeros((3, 4)), np.arange(3)),
        TypeError,
        "expected dtype float32, got float64",
    ),
    Case(
        "containers/trial-stimulus-length",
        lambda f: Responses(np.zeros((3, 4), np.float32), np.arange(2)),
        ValueError,
        "trial_stimulus: expected one entry per trial (3 trials), got 2",
    ),
    Case(
        "containers/trial-stimulus-floats",
        lambda f: Responses(np.zeros((3, 4), np.float32), np.arange(3.0)),
        TypeError,
        "trial_stimulus: expected a 1-D integer array",
    ),
    Case(
        "containers/responses-nan",
        lambda f: _responses(value=np.nan),
        ValueError,
        "1 voxels contain NaN (first: voxel 2)",
    ),
    Case(
        "containers/responses-inf",
        lambda f: _responses(value=np.inf),
        ValueError,
        "1 voxels contain infinite values (first: voxel 2)",
    ),
    Case(
        "containers/voxel-table-rows",
        lambda f: Responses(np.zeros((3, 4), np.float32), np.arange(3), pd.DataFrame({"roi": ["V1"] * 3})),
        ValueError,
        "voxel table: expected 4 rows, got 3",
    ),
    Case(
        "containers/duplicate-stimulus-ids",
        lambda f: Stimuli(pd.DataFrame({"stimulus_id": ["a", "b", "b"]})),
        ValueError,
        "stimulus_id must be unique, found 1 duplicated ids (first: 'b')",
    ),
    Case(
        "containers/images-for-other-stimuli",
        lambda f: Stimuli(_table(3), np.zeros((4, 8, 8), np.uint8)),
        ValueError,
        "images: expected 3 images (one per stimulus), got 4",
    ),
    Case(
        "containers/trial-of-an-unknown-stimulus",
        lambda f: _experiment(responses=Responses(np.zeros((2, 4), np.float32), np.array([0, 5]))),
        ValueError,
        "responses.trial_stimulus: index 5 is out of range for 3 stimuli",
    ),
    Case(
        "containers/overlapping-splits",
        lambda f: _experiment(splits={"train": [0, 1], "test": [1, 2]}),
        ValueError,
        "splits 'train' and 'test' overlap in 1 stimuli",
    ),
    Case(
        "containers/split-out-of-range",
        lambda f: _experiment(splits={"test": [2, 3]}),
        ValueError,
        "split 'test': stimulus positions must lie in [0, 3)",
    ),
    Case(
        "containers/unknown-roi-label",
        lambda f: Experiment(
            "s01",
            Stimuli(_table()),
            Responses(np.zeros((3, 2), np.float32), np.arange(3), pd.DataFrame({"roi": ["V1", "V2"]})),
        ).select_rois(["V1", "FFA"]),
        ValueError,
        "ROI labels ['FFA'] not found in family 'roi'",
    ),
]
