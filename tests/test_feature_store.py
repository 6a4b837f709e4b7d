"""The feature store: keys, reuse, atomic writes and resumption after a killed extraction."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch import nn

from scene2brain.features import (
    FeatureModel,
    FeatureStore,
    GaussianBlur,
    Preprocessing,
    extract_features,
    feature_key,
    images_digest,
)
from scene2brain.features.extraction import store_entries
from scene2brain.features.images import as_image_source

SLOW_MODEL = textwrap.dedent(
    """
    import sys
    import time

    import numpy as np
    import torch
    from torch import nn

    from scene2brain.features import FeatureModel, Preprocessing, extract_features


    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            time.sleep(DELAY)
            return self.conv(x)


    def model():
        torch.manual_seed(0)
        return FeatureModel.from_module(Slow(), Preprocessing(16, None), name="slow")


    IMAGES = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    DELAY = 0.0

    if __name__ == "__main__":
        DELAY = float(sys.argv[2])
        extract_features(IMAGES, model(), ["conv", "output"], "avg", batch_size=4, store=sys.argv[1], progress=False)
    """
)


def _load_script(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("slow_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x)


def _model(seed=0, prep=None):
    torch.manual_seed(seed)
    return FeatureModel.from_module(Counting(), prep or Preprocessing(16, None), name="counting")


def _images(n=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def test_cache_key_changes_with_each_ingredient_and_only_then():
    images = _images()
    digest = images_digest(as_image_source(images))
    base = feature_key(_model(), "conv", "avg", digest)
    assert feature_key(_model(), "conv", "avg", images_digest(as_image_source(images.copy()))) == base
    blurred = Preprocessing(16, None).with_steps(GaussianBlur(1.0))
    variants = {
        "weights": feature_key(_model(seed=1), "conv", "avg", digest),
        "preprocessing": feature_key(_model(prep=blurred), "conv", "avg", digest),
        "normalisation": feature_key(_model(prep=Preprocessing(16, None, mean=(0.5,) * 3)), "conv", "avg", digest),
        "layer": feature_key(_model(), "output", "avg", digest),
        "pooling": feature_key(_model(), "conv", "max", digest),
        "stimuli": feature_key(_model(), "conv", "avg", images_digest(as_image_source(_images(seed=1)))),
        "stimulus order": feature_key(_model(), "conv", "avg", images_digest(as_image_source(images[::-1]))),
    }  # fmt: skip
    store = FeatureStore("/nonexistent")
    paths = {name: store.entry("counting", key).path for name, key in variants.items()}
    assert store.entry("counting", base).path not in paths.values()
    assert len(set(paths.values())) == len(paths)


def test_reuse_computes_only_what_is_missing(tmp_path):
    model, images = _model(), _images()
    first = extract_features(images, model, ["conv"], "avg", batch_size=4, store=tmp_path, progress=False)
    assert model.module.calls == 3
    again = extract_features(images, model, ["conv"], "avg", batch_size=4, store=tmp_path, progress=False)
    assert model.module.calls == 3  # fully cached: no forward pass
    np.testing.assert_array_equal(first["conv"], again["conv"])
    # one new layer next to a cached one: computed alone, in one pass per batch
    both = extract_features(images, model, ["conv", "output"], "avg", batch_size=4, store=tmp_path, progress=False)
    assert model.module.calls == 6
    np.testing.assert_array_equal(both["conv"], first["conv"])
    lazy = extract_features(images, model, ["output"], "avg", store=tmp_path, lazy=True, progress=False)["output"]
    assert model.module.calls == 6 and lazy.shape == (10, 4) and not isinstance(lazy, np.ndarray)
    entries = store_entries(images, model, ["conv", "output"], "avg", tmp_path)
    assert all(entry.complete for entry in entries.values())
    key = json.loads((entries["conv"].path / "key.json").read_text())
    assert key["key"]["layer"] == "conv" and key["key"]["weights"] == model.weights_digest
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.partial"))


def test_get_or_compute_whole_matrices(tmp_path):
    store = FeatureStore(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    a, hit_a = store.get_or_compute("x", {"layer": "a"}, compute)
    b, hit_b = store.get_or_compute("x", {"layer": "a"}, compute)
    _, hit_c = store.get_or_compute("x", {"layer": "b"}, compute)
    assert (hit_a, hit_b, hit_c) == (False, True, False) and len(calls) == 2
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="expected a 2-D matrix"):
        store.get_or_compute("x", {"layer": "c"}, lambda: np.zeros(3))


def test_killed_extraction_never_reads_as_complete_and_resumes(tmp_path):
    script = tmp_path / "slow_model.py"
    script.write_text(SLOW_MODEL)
    store_dir = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, str(script), str(store_dir), "0.3"], env={**os.environ})
    slow = _load_script(script)
    model = slow.model()
    entries = store_entries(slow.IMAGES, model, ["conv", "output"], "avg", store_dir)
    deadline = time.monotonic() + 120
    while entries["output"].rows_done < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {layer: entry.rows_done for layer, entry in entries.items()}
    assert 8 <= min(done.values()) and max(done.values()) < 40, done
    assert not any(entry.complete for entry in entries.values())
    with pytest.raises(RuntimeError, match="incomplete"):
        entries["conv"].read()

    layers = ["conv", "output"]
    resumed = extract_features(slow.IMAGES, model, layers, "avg", batch_size=4, store=store_dir, progress=False)
    remaining_batches = 10 - min(done.values()) // 4
    assert model.module.calls == remaining_batches
    fresh = extract_features(slow.IMAGES, slow.model(), ["conv", "output"], "avg", batch_size=4, progress=False)
    for layer in ("conv", "output"):
        np.testing.assert_array_equal(resumed[layer], fresh[layer])
        assert entries[layer].complete
