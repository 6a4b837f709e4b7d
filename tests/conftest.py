import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scene2brain.data import Experiment, Responses, Stimuli

sys.path.insert(0, str(Path(__file__).parent))  # helper modules beside the tests (dataset_fixtures)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Digest memos and other cached files go to a temporary folder, not the user's ~/.cache."""
    from scene2brain.utils.files import CACHE_ENV

    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("scene2brain-cache"))
    yield
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture
def small_experiment() -> Experiment:
    """6 stimuli (4 train shown once, 2 test shown 3 times), 5 voxels, images attached."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "stimulus_id": [f"s{i}" for i in range(6)],
            "category": ["a", "b", "a", "b", "a", "b"],
            "nsd_id": np.arange(6, dtype=np.int64) * 10,
        }
    )
    images = rng.integers(0, 255, (6, 8, 8, 3), dtype=np.uint8)
    trial_stimulus = np.array([0, 1, 2, 3, 4, 5, 4, 5, 4, 5])
    data = rng.standard_normal((10, 5)).astype(np.float32)
    voxels = pd.DataFrame(
        {"roi": ["EV", "EV", "HV", "HV", "CAL"], "hemisphere": ["lh", "rh", "lh", "rh", "lh"], "vertex": np.arange(5)}
    )
    return Experiment(
        "sub01",
        Stimuli(table, images),
        Responses(data, trial_stimulus, voxels),
        {"train": [0, 1, 2, 3], "test": [4, 5]},
        {"dataset": "fixture", "nested": {"k": [1, 2]}},
    )
