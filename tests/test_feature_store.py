"""The feature store: keys, reuse, atomic writes and resumption after a killed extraction."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from slow_extraction import IMAGES, LAYERS, counting_model

from scene2brain.data.images import as_image_source
from scene2brain.features import (
    FeatureStore,
    GaussianBlur,
    Preprocessing,
    extract_features,
    feature_key,
)
from scene2brain.features.extraction import store_entries

SCRIPT = Path(__file__).with_name("slow_extraction.py")


def _images(n=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def test_cache_key_changes_with_each_ingredient_and_only_then():
    images = _images()
    digest = as_image_source(images).digest()
    base = feature_key(counting_model(), "conv", "avg", digest)
    assert feature_key(counting_model(), "conv", "avg", as_image_source(images.copy()).digest()) == base
    blurred = Preprocessing(16, None).with_steps(GaussianBlur(1.0))
    renormalised = Preprocessing(16, None, mean=(0.5,) * 3)
    variants = {
        "weights": feature_key(counting_model(seed=1), "conv", "avg", digest),
        "preprocessing": feature_key(counting_model(prep=blurred), "conv", "avg", digest),
        "normalisation": feature_key(counting_model(prep=renormalised), "conv", "avg", digest),
        "layer": feature_key(counting_model(), "output", "avg", digest),
        "pooling": feature_key(counting_model(), "conv", "max", digest),
        "stimuli": feature_key(counting_model(), "conv", "avg", as_image_source(_images(seed=1)).digest()),
        "stimulus order": feature_key(counting_model(), "conv", "avg", as_image_source(images[::-1]).digest()),
    }  # fmt: skip
    store = FeatureStore("/nonexistent")
    paths = {name: store.entry("counting", key).path for name, key in variants.items()}
    assert store.entry("counting", base).path not in paths.values()
    assert len(set(paths.values())) == len(paths)


def test_reuse_computes_only_what_is_missing(tmp_path):
    model, images = counting_model(), _images()
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
    store_dir = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(store_dir), "0.3"])
    model = counting_model()
    entries = store_entries(IMAGES, model, LAYERS, "avg", store_dir)
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

    resumed = extract_features(IMAGES, model, LAYERS, "avg", batch_size=4, store=store_dir, progress=False)
    assert model.module.calls == 10 - min(done.values()) // 4  # only the batches still missing
    fresh = extract_features(IMAGES, counting_model(), LAYERS, "avg", batch_size=4, progress=False)
    for layer in LAYERS:
        np.testing.assert_array_equal(resumed[layer], fresh[layer])
        assert entries[layer].complete
