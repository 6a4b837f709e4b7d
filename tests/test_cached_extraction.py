"""A fully cached extraction finds its store entries without building the network or reading its weights."""

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
import zarr
from torch import nn
from typer.testing import CliRunner

from scene2brain.cli import app
from scene2brain.data import Stimuli
from scene2brain.data.storage import save_stimuli
from scene2brain.features import FeatureModel, FeatureStore, GaussianBlur, Preprocessing, extract_features
from scene2brain.features import models as models_module
from scene2brain.features.extraction import extract_to_store, store_entries
from scene2brain.features.models import (
    LazyModel,
    ModelEntry,
    NoPreprocessingError,
    file_stamp,
    load_model,
    model_request,
)
from scene2brain.pipeline.config import FeatureSection
from scene2brain.pipeline.graph import Runtime, StageContext
from scene2brain.pipeline.plan import EXPERIMENT_DIR, FEATURES_FILE, compute_features

runner = CliRunner()
IMAGES = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)


def _save_weights(path, seed):
    torch.manual_seed(seed)
    torch.save(Tiny().state_dict(), path)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Register "tiny" (its "pretrained" weights: a file); return the list of weights it was built with."""
    builds = []
    pretrained = tmp_path / "pretrained.pt"
    _save_weights(pretrained, seed=100)

    def factory(weights):
        builds.append(str(weights))
        module = Tiny()
        if weights != "random":
            path = pretrained if weights == "pretrained" else weights
            module.load_state_dict(torch.load(path, weights_only=True))
        return FeatureModel("tiny", module, Preprocessing(16, None), str(weights))

    monkeypatch.setitem(models_module._REGISTRY, "tiny", ModelEntry(factory, weights_file=lambda: pretrained))
    return builds


def _json(key):
    """A key in its JSON form (tuples as lists), as the store records and digests it."""
    return json.loads(json.dumps(key))


def _extract(layers, store, weights, **kwargs):
    return extract_features(IMAGES, "tiny", layers, "avg", weights=weights, store=store, progress=False, **kwargs)


@pytest.mark.parametrize("weights", ["random", "file", "pretrained"])
def test_a_cached_extraction_builds_nothing_and_an_uncached_one_builds(tmp_path, tiny, weights):
    if weights == "file":
        weights = tmp_path / "local.pt"
        _save_weights(weights, seed=7)
    store = tmp_path / "store"
    first = _extract(["conv"], store, weights, batch_size=4)
    assert len(tiny) == 1
    again = _extract(["conv"], store, weights)
    assert len(tiny) == 1  # the old code built the model here, to find the weights digest of the key
    np.testing.assert_array_equal(again["conv"], first["conv"])
    both = _extract(["conv", "output"], store, weights)  # one layer missing: the network is needed
    assert len(tiny) == 2
    np.testing.assert_array_equal(both["conv"], first["conv"])
    eager = load_model("tiny", weights)
    np.testing.assert_array_equal(both["output"], extract_features(IMAGES, eager, ["output"], progress=False)["output"])
    # the entries are those of the built model's key, as before
    entries = store_entries(IMAGES, eager, ["conv", "output"], "avg", store)
    assert all(entry.complete for entry in entries.values())


def test_a_rewritten_weights_file_misses_the_record_and_changes_the_key(tmp_path, tiny):
    weights, store = tmp_path / "local.pt", tmp_path / "store"
    _save_weights(weights, seed=1)
    stamp = file_stamp(weights)
    first = _extract(["conv"], store, weights)
    time.sleep(0.05)  # past the file system's clock tick
    _save_weights(weights, seed=2)  # same shapes, same file size, other values, same path
    assert file_stamp(weights)["size"] == stamp["size"] and file_stamp(weights) != stamp
    second = _extract(["conv"], store, weights)
    assert len(tiny) == 2  # the record of the old file does not stand in for the new one
    assert not np.allclose(second["conv"], first["conv"])
    assert len(list(store.rglob("key.json"))) == 2
    (record,) = json.loads((store / FeatureStore.MEMO_FILE).read_text()).values()  # replaced, not added
    assert record["record"]["weights_file"] == file_stamp(weights)
    lazy = LazyModel("tiny", weights, memo=FeatureStore(store).memo())
    assert lazy.key() == _json(load_model("tiny", weights).key()) and not lazy.built
    _extract(["conv"], store, weights)
    assert len(tiny) == 3  # the load_model just above; the extraction itself found the new record


def test_recorded_keys_equal_the_built_models_keys(tmp_path, tiny):
    memo = FeatureStore(tmp_path / "store").memo()
    blur = GaussianBlur(1.0)
    for weights, seed in [("random", 0), ("random", 1), ("pretrained", 0)]:
        LazyModel("tiny", weights, seed, memo=memo).load()  # records the key
        n_builds = len(tiny)
        lazy = LazyModel("tiny", weights, seed, memo=memo)
        built = load_model("tiny", weights, seed)
        assert lazy.key() == _json(built.key()) and lazy.name == "tiny" and lazy.preprocessing == built.preprocessing
        blurred = lazy.with_preprocessing(lazy.preprocessing.with_steps(blur))
        assert blurred.key() == _json(built.with_preprocessing(built.preprocessing.with_steps(blur)).key())
        assert blurred.key() != lazy.key()
        assert not lazy.built and not blurred.built and len(tiny) == n_builds + 1  # only load_model built
    seeds = [LazyModel("tiny", "random", s, memo=memo).key()["weights"] for s in (0, 1)]
    assert seeds[0] != seeds[1]
    gabor = LazyModel("gabor", options={"image_size": 16}, memo=memo)
    gabor.load()
    again = LazyModel("gabor", options={"image_size": 16}, memo=memo)
    assert again.key() == _json(load_model("gabor", image_size=16).key()) and not again.built
    assert LazyModel("gabor", options={"image_size": 24}, memo=memo).key() != again.key()


def test_a_stale_record_is_not_used_to_file_computed_features(tmp_path, tiny):
    store = FeatureStore(tmp_path / "store")
    identity = model_request("tiny", "random")
    true_key = load_model("tiny", "random").key()
    stale = {"name": "tiny", "key": {**true_key, "weights": "0123456789abcdef"}, "weights_file": None}
    store.memo().put(identity, stale)
    entries, computed = extract_to_store(IMAGES, "tiny", ["conv"], "avg", store, weights="random", progress=False)
    assert computed == ["conv"]
    assert entries["conv"].key["weights"] == true_key["weights"]
    assert store.memo().get(identity)["key"] == _json(true_key)  # corrected when the model was built


def test_the_memo_survives_a_damaged_file(tmp_path, tiny):
    store = FeatureStore(tmp_path / "store")
    store.root.mkdir()
    (store.root / FeatureStore.MEMO_FILE).write_text("{not json")
    _extract(["conv"], store.root, "random")
    _extract(["conv"], store.root, "random")
    assert len(tiny) == 1
    content = json.loads((store.root / FeatureStore.MEMO_FILE).read_text())
    assert [(item["identity"]["weights"], item["identity"]["seed"]) for item in content.values()] == [("random", 0)]


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="model: unknown name 'no-such-net'"):
        LazyModel("no-such-net")
    with pytest.raises(ValueError, match=r"options: \['size'\] are not options of model 'gabor'"):
        LazyModel("gabor", options={"size": 3})
    with pytest.raises(ValueError, match="weights: model 'gabor' has no weights"):
        LazyModel("gabor", "random")
    with pytest.raises(FileNotFoundError, match="weights: file not found"):
        LazyModel("efficientnet-lite0", tmp_path / "missing.pt")
    with pytest.raises(NoPreprocessingError, match="'gabor' has no image preprocessing"):
        LazyModel("gabor").with_preprocessing(Preprocessing())


def _statuses(output):
    """Layer -> status column of the table `scene2brain extract` prints."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]
    return {row[0]: row[2] for row in rows if row[0]}


def _refuse_to_build(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("the network was built")

    monkeypatch.setattr(models_module, "load_model", refuse)


def test_cli_cached_extract_never_builds_the_network(tmp_path, monkeypatch):
    np.save(tmp_path / "images.npy", np.random.default_rng(1).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8))
    base = ["extract", "--stimuli", str(tmp_path / "images.npy"), "--out", str(tmp_path / "store"), "--quiet"]
    runs = [
        ["--layers", "_blocks.1,head"],  # the bundled pretrained weights
        ["--layers", "head", "--weights", "random", "--retina", "--blur", "1"],
    ]
    for args in runs:
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 0, result.output
        assert set(_statuses(result.output).values()) == {"computed"}
    arrays = {path: zarr.open_array(path)[:] for path in (tmp_path / "store").rglob("features.zarr")}
    assert len(arrays) == 3
    _refuse_to_build(monkeypatch)
    for args in runs:
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 0, result.output
        assert _statuses(result.output) == dict.fromkeys(args[1].split(","), "cached")
    assert set((tmp_path / "store").rglob("features.zarr")) == set(arrays)  # no new entry; the stored ones unchanged
    for path, before in arrays.items():
        np.testing.assert_array_equal(zarr.open_array(path)[:], before)
    more = runner.invoke(app, [*base, "--layers", "_blocks.1,_blocks.2"])  # _blocks.2 is not stored
    assert isinstance(more.exception, RuntimeError) and "the network was built" in str(more.exception)


def test_cli_blur_of_the_gabor_pyramid_names_the_option(tmp_path):
    np.save(tmp_path / "images.npy", IMAGES)
    result = runner.invoke(
        app, ["extract", "--stimuli", str(tmp_path / "images.npy"), "--out", str(tmp_path / "store"), "--model",
              "gabor", "--layers", "energy", "--blur", "1", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 2 and "--blur: model 'gabor' has no image preprocessing" in result.output


def test_pipeline_feature_stage_reuses_the_store_without_building(tmp_path, monkeypatch):
    images = np.random.default_rng(2).integers(0, 256, (8, 24, 24, 3), dtype=np.uint8)
    stimuli = Stimuli(pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(8)]}), images)
    save_stimuli(stimuli, {"train": np.arange(6), "test": np.arange(6, 8)}, tmp_path / "stimuli" / EXPERIMENT_DIR)
    spec = FeatureSection(name="net", model="efficientnet-lite0", weights="random", reduction="standardise")
    runtime = Runtime(FeatureStore(tmp_path / "cache"))

    def run(out):
        ctx = StageContext(
            out=out,
            settings={"extraction": spec.extraction(), "train": "train"},
            inputs={"stimuli": tmp_path / "stimuli"},
            options={"batch_size": 4, "device": "cpu"},
            runtime=runtime,
            outputs=("head",),
        )
        compute_features(ctx)
        return np.load(out / "head" / FEATURES_FILE)

    first = run(tmp_path / "first")
    _refuse_to_build(monkeypatch)
    np.testing.assert_array_equal(run(tmp_path / "again"), first)


def test_a_recorded_torchvision_model_is_found_without_importing_torchvision(tmp_path):
    memo = FeatureStore(tmp_path).memo()
    key = LazyModel("squeezenet1_1", "random", memo=memo).key()  # builds it (torchvision) and records it
    script = (
        "import json, sys\n"
        "from scene2brain.features.models import LazyModel\n"
        "from scene2brain.features.store import FeatureStore\n"
        f"model = LazyModel('squeezenet1_1', 'random', memo=FeatureStore({str(tmp_path)!r}).memo())\n"
        "print(json.dumps({'key': model.key(), 'built': model.built, 'torchvision': 'torchvision' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert json.loads(out.splitlines()[-1]) == {"key": key, "built": False, "torchvision": False}


def test_changed_feature_code_misses_the_record(tmp_path, tiny, monkeypatch):
    """A record made by other feature code (a model factory, a preprocessing, a key) is not trusted."""
    from scene2brain.features import models

    store = tmp_path / "store"
    _extract(["conv"], store, "random")
    assert len(tiny) == 1
    _extract(["conv"], store, "random")
    assert len(tiny) == 1  # the record serves the cached run
    monkeypatch.setattr(models, "_feature_code_digest", lambda: "other code")
    _extract(["conv"], store, "random")
    assert len(tiny) == 2  # the code changed: the model is built again and its own key decides
