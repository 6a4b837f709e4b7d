"""The feature store with several writers at once (processes, threads), and at fsspec URLs (object stores)."""

import json
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest
import zarr

from scene2brain.data import ArrayImages
from scene2brain.features import GaborPyramid, extract_features
from scene2brain.features.extraction import extract_to_store, store_entries
from scene2brain.features.gabor import GaborExtractor
from scene2brain.features.models import LazyModel
from scene2brain.features.store import FeatureStore, KeyMemo, RemotePath, StoreEntry

N_WRITERS, N_RECORDS = 3, 25
IMAGES = np.random.default_rng(0).integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)
PYRAMID = GaborPyramid(16, (1, 2))

# One writer process: waits for the start signal, then at once with the others records model keys (its own and
# one shared by all), computes a matrix shared by all and one of its own, and extracts Gabor features that every
# writer asks for (read slowly, so the writers overlap). It notes every computation in MARKS. With "unlocked" the
# store's locks do nothing: the same writers then lose records and compute the shared matrix more than once.
WRITER = r"""
import contextlib, json, sys, time
from pathlib import Path
import numpy as np
from scene2brain.data import ArrayImages
from scene2brain.features import GaborPyramid
from scene2brain.features import store as store_module
from scene2brain.features.extraction import extract_to_store
from scene2brain.features.gabor import GaborExtractor

root, marks, go, writer, mode = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
write_json = store_module._write_json


def slow_write_json(path, content):  # widens the read-modify-write window of the memo, locked or not
    if str(path).endswith(".model_keys.json"):
        time.sleep(0.002)
    write_json(path, content)


store_module._write_json = slow_write_json
if mode == "unlocked":
    store_module._reentrant_flock = lambda *args, **kwargs: contextlib.nullcontext()


class SlowImages(ArrayImages):
    def _read(self, positions):
        time.sleep(0.05)
        return super()._read(positions)


def compute(name, value):
    def run():
        (marks / f"{name}-{writer}-{time.monotonic_ns()}").touch()
        time.sleep(0.5)
        return np.full((6, 5), value, dtype=np.float32)
    return run


store = store_module.FeatureStore(root)
(go.parent / f"ready-{writer}").touch()
while not go.exists():
    time.sleep(0.005)
memo = store.memo()
for k in range(N_RECORDS):
    memo.put({"writer": writer, "k": k}, {"value": writer * 1000 + k})
memo.put({"shared": True}, {"value": "same for all"})
store.get_or_compute("matrix", {"shared": True}, compute("shared", 7.0))
store.get_or_compute("matrix", {"writer": writer}, compute("own", float(writer)))
computed = []
if mode == "locked":
    images = SlowImages(np.random.default_rng(0).integers(0, 256, (48, 16, 16, 3), dtype=np.uint8))
    _, computed = extract_to_store(images, GaborExtractor(GaborPyramid(16, (1, 2))), ["energy"], "avg", store,
                                   batch_size=8, progress=False)
print(json.dumps({"computed": computed}))
""".replace("N_RECORDS", str(N_RECORDS))


def _run_writers(tmp_path, mode, watch=None):
    """Start N_WRITERS writer processes together; call ``watch()`` until they end.

    Returns the store, the writers' reports (None for a writer that failed) and the marks of their computations.
    A writer that fails with the locks on fails the test.
    """
    root, marks, go = tmp_path / "store", tmp_path / "marks", tmp_path / "go"
    marks.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(marks), str(go), str(w), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(N_WRITERS)
    ]
    try:
        deadline = time.monotonic() + 240
        while len(list(tmp_path.glob("ready-*"))) < N_WRITERS and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
            time.sleep(0.01)  # every writer imported and waits at the start line
        go.touch()
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if watch is not None:
                watch()
            time.sleep(0.002)
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if mode == "locked":
        for p, (_, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err[-3000:]
    reports = [
        json.loads(out.strip().splitlines()[-1]) if p.returncode == 0 else None
        for p, (out, _) in zip(procs, outs, strict=True)
    ]
    return FeatureStore(root), reports, sorted(m.name.split("-")[0] for m in marks.iterdir())


@pytest.mark.slow
def test_concurrent_writer_processes_lose_nothing_and_readers_never_see_a_partial_entry(tmp_path):
    reference = extract_features(IMAGES, GaborExtractor(PYRAMID), ["energy"], progress=False)["energy"]
    root = tmp_path / "store"
    gabor = store_entries(IMAGES, GaborExtractor(PYRAMID), ["energy"], "avg", root)["energy"]
    shared = FeatureStore(root).entry("matrix", {"shared": True})
    seen = {"gabor": 0, "shared": 0, "memo": 0, "partial gabor": 0}

    def watch():  # a reader polling while the writers write: complete entries are always whole and right
        if gabor.complete:
            np.testing.assert_array_equal(gabor.read(), reference)
            seen["gabor"] += 1
        elif gabor.rows_done:
            seen["partial gabor"] += 1
            with pytest.raises(RuntimeError, match="incomplete"):
                gabor.read()
        if shared.complete:
            np.testing.assert_array_equal(shared.read(), np.full((6, 5), 7.0, dtype=np.float32))
            seen["shared"] += 1
        memo_file = root / FeatureStore.MEMO_FILE
        if memo_file.exists():
            assert isinstance(json.loads(memo_file.read_text()), dict)  # replaced whole, never half-written
            seen["memo"] += 1

    store, reports, marks = _run_writers(tmp_path, "locked", watch)
    # every record of every writer is there
    memo = store.memo()
    for w in range(N_WRITERS):
        for k in range(N_RECORDS):
            assert memo.get({"writer": w, "k": k}) == {"value": w * 1000 + k}, (w, k)
    assert len(json.loads((root / FeatureStore.MEMO_FILE).read_text())) == N_WRITERS * N_RECORDS + 1
    # the shared matrix and the shared features were computed once; the others waited and read them
    assert marks.count("shared") == 1 and marks.count("own") == N_WRITERS
    assert sorted(len(r["computed"]) for r in reports) == [0] * (N_WRITERS - 1) + [1]
    np.testing.assert_array_equal(gabor.read(), reference)
    for w in range(N_WRITERS):
        np.testing.assert_array_equal(store.entry("matrix", {"writer": w}).read(), np.full((6, 5), float(w)))
    assert seen["gabor"] and seen["shared"] and seen["memo"] and seen["partial gabor"], seen
    assert not list(root.rglob("*.tmp"))


@pytest.mark.slow
def test_without_the_locks_the_same_writers_lose_records_and_compute_twice(tmp_path):
    """The deliberately broken store (locks turned off): the checks above catch what the locks prevent."""
    store, _, marks = _run_writers(tmp_path, "unlocked")
    memo = store.memo()
    found = sum(memo.get({"writer": w, "k": k}) is not None for w in range(N_WRITERS) for k in range(N_RECORDS))
    assert found < N_WRITERS * N_RECORDS  # lost updates of the read-modify-write
    assert marks.count("shared") > 1  # several writers computed the shared matrix (and may have crashed: one
    # recreating the array while another writes into it)


def test_threads_of_one_process_share_entries_and_compute_each_once(tmp_path):
    store = FeatureStore(tmp_path / "store")
    calls = []

    def compute():
        calls.append(threading.get_ident())
        time.sleep(0.2)
        return np.arange(12, dtype=np.float32).reshape(3, 4)

    class SlowImages(ArrayImages):
        def _read(self, positions):
            time.sleep(0.02)
            return super()._read(positions)

    results, errors = [], []

    def work():
        try:
            results.append(store.get_or_compute("m", {"k": 1}, compute))
            _, computed = extract_to_store(
                SlowImages(IMAGES), GaborExtractor(PYRAMID), ["energy"], "avg", store, batch_size=8, progress=False
            )
            results.append(computed)
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(calls) == 1
    matrices = [r for r in results if isinstance(r, tuple)]
    assert [hit for _, hit in matrices].count(False) == 1
    for matrix, _ in matrices:
        np.testing.assert_array_equal(matrix, np.arange(12, dtype=np.float32).reshape(3, 4))
    assert sorted(len(r) for r in results if isinstance(r, list)) == [0, 0, 0, 1]
    reference = extract_features(IMAGES, GaborExtractor(PYRAMID), ["energy"], progress=False)["energy"]
    np.testing.assert_array_equal(
        extract_features(IMAGES, GaborExtractor(PYRAMID), ["energy"], store=store, progress=False)["energy"], reference
    )


def test_a_store_that_cannot_be_locked_still_reads_its_complete_entries(tmp_path):
    store = FeatureStore(tmp_path / "store")
    store.get_or_compute("m", {"k": 1}, lambda: np.eye(3))
    entry = store.entry("m", {"k": 1})
    (entry.path / ".lock").unlink()
    (entry.path / ".lock").mkdir()  # a lock that cannot be opened: reading needs no lock
    np.testing.assert_array_equal(store.get_or_compute("m", {"k": 1}, lambda: np.zeros((3, 3)))[0], np.eye(3))
    with pytest.raises(IsADirectoryError):
        entry.write(np.zeros((3, 3)))  # writing does


def test_a_writer_never_wipes_an_array_of_the_right_shape(tmp_path, monkeypatch):
    entry = FeatureStore(tmp_path).entry("m", {"k": 1})
    ones = np.ones((4, 2), dtype=np.float32)
    entry.start(8, 2, chunk_rows=4)
    entry.write_rows(0, ones)
    (entry.path / "status.json").unlink()  # e.g. a second writer that started before the status was written
    assert entry.start(8, 2, chunk_rows=4) == 0  # starts over, but keeps the rows in the array
    np.testing.assert_array_equal(zarr.open_array(entry.array_path)[:4], ones)

    # a writer that saw no array while another created it keeps the other's array (zarr refuses to create it)
    exists, looks = StoreEntry._array_exists, []

    def not_yet(self):  # the array "appears" after this writer's two checks, as if created in between
        looks.append(1)
        return len(looks) > 2 and exists(self)

    (entry.path / "status.json").unlink()
    monkeypatch.setattr(StoreEntry, "_array_exists", not_yet)
    entry.start(8, 2, chunk_rows=4)
    assert len(looks) == 3
    np.testing.assert_array_equal(zarr.open_array(entry.array_path)[:4], ones)
    # deliberately broken: a check that never recognises the array replaces it (what the check prevents)
    (entry.path / "status.json").unlink()
    monkeypatch.setattr(StoreEntry, "_existing_array", lambda self, *args: False)
    entry.start(8, 2, chunk_rows=4)
    np.testing.assert_array_equal(zarr.open_array(entry.array_path)[:4], np.zeros((4, 2)))
    monkeypatch.undo()
    # another shape replaces it
    assert entry.start(6, 2, chunk_rows=4) == 0 and zarr.open_array(entry.array_path).shape == (6, 2)


# -- stores at URLs (fsspec) -----------------------------------------------------------------------------------------


@pytest.fixture
def memory_url():
    """A fresh folder of fsspec's in-memory file system (a stand-in for an object store), removed afterwards."""
    import fsspec

    name = f"scene2brain-test-{uuid.uuid4().hex}"
    yield f"memory://{name}"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


def test_a_store_at_a_url_extracts_reads_and_resumes_like_a_folder(memory_url):
    reference = extract_features(IMAGES, GaborExtractor(PYRAMID), ["energy"], progress=False)["energy"]
    store = FeatureStore(memory_url)
    assert store.remote and isinstance(store.root, RemotePath)
    entries, computed = extract_to_store(IMAGES, GaborExtractor(PYRAMID), ["energy"], "avg", store, batch_size=8)
    assert computed == ["energy"]
    entry = entries["energy"]
    assert str(entry.path).startswith("memory://") and entry.complete and entry.remote
    np.testing.assert_array_equal(entry.read(), reference)
    lazy = entry.read(lazy=True)
    assert not isinstance(lazy, np.ndarray) and lazy.shape == reference.shape
    # a URL string finds the entry again (a feature stage records it as text)
    np.testing.assert_array_equal(StoreEntry(str(entry.path), {}).read(), reference)
    _, again = extract_to_store(IMAGES, GaborExtractor(PYRAMID), ["energy"], "avg", memory_url, batch_size=8)
    assert again == []
    # storage options (credentials, endpoints on a real object store) reach fsspec and zarr
    options = FeatureStore(memory_url, storage_options={"skip_instance_cache": True}).entry("gabor", entry.key)
    assert options.path.storage_options == {"skip_instance_cache": True}
    np.testing.assert_array_equal(options.read(), reference)
    # a killed writer's partial entry reads as incomplete and resumes
    partial = FeatureStore(memory_url).entry("partial", {"k": 1})
    assert partial.start(10, 3, chunk_rows=4) == 0
    partial.write_rows(0, np.ones((4, 3)))
    assert not partial.complete and partial.rows_done == 4
    with pytest.raises(RuntimeError, match="incomplete"):
        partial.read()
    assert partial.start(10, 3, chunk_rows=4) == 4
    partial.write_rows(4, np.full((6, 3), 2.0))
    assert partial.complete
    np.testing.assert_array_equal(partial.read(), np.vstack([np.ones((4, 3)), np.full((6, 3), 2.0)]))
    # an object store has no locks: a late writer never takes "complete" back
    partial.write_rows(0, np.ones((4, 3)))
    assert partial.complete and partial.status()["rows_done"] == 10


def test_model_keys_at_a_url_are_one_object_per_record(memory_url):
    store = FeatureStore(memory_url)
    gabor = LazyModel("gabor", options={"image_size": 16}, memo=store.memo())
    key = gabor.key()  # builds it and records it
    again = LazyModel("gabor", options={"image_size": 16}, memo=FeatureStore(memory_url).memo())
    assert again.key() == key and not again.built
    records = store.root.fs.ls(f"{store.root.path}/.model_keys", detail=False)
    assert len(records) == 1 and records[0].endswith(".json")
    # concurrent records (threads) are never lost: each is its own object
    memo = KeyMemo(f"{memory_url}/other.json")
    threads = [
        threading.Thread(target=lambda w=w: [memo.put({"w": w, "k": k}, {"v": k}) for k in range(20)]) for w in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(memo.get({"w": w, "k": k}) == {"v": k} for w in range(4) for k in range(20))
    assert memo.get({"w": 9, "k": 0}) is None
    # a damaged record is not trusted
    fs = memo.path.fs
    first = sorted(fs.ls(f"{store.root.path}/other", detail=False))[0]  # the records of other.json
    RemotePath(first, fs=fs).write_text("{not json")
    assert sum(memo.get({"w": w, "k": k}) is None for w in range(4) for k in range(20)) == 1


def test_a_file_url_is_the_local_folder(tmp_path):
    store = FeatureStore(f"file://{tmp_path}/store")
    assert store.root == tmp_path / "store" and not store.remote
    _, hit = store.get_or_compute("m", {"k": 1}, lambda: np.eye(2))
    assert not hit and (tmp_path / "store").is_dir()
    assert FeatureStore(tmp_path / "store").get_or_compute("m", {"k": 1}, lambda: np.zeros((2, 2)))[1]
    assert FeatureStore(f"file://localhost{tmp_path}/store").root == tmp_path / "store"


def test_bad_store_locations_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"root 'nosuchprotocol://x': not a store URL fsspec can open"):
        FeatureStore("nosuchprotocol://x")
    with pytest.raises(TypeError, match="root: expected a folder path or a URL string, got int"):
        FeatureStore(3)
    with pytest.raises(ValueError, match="storage_options: given for the local folder"):
        FeatureStore(tmp_path, storage_options={"anon": True})
    with pytest.raises(ValueError, match="names host 'elsewhere'"):
        FeatureStore("file://elsewhere/data")
    with pytest.raises(TypeError, match="path: expected a folder path or a URL string, got NoneType"):
        StoreEntry(None, {})


def test_a_run_keeps_its_feature_cache_at_a_url(tmp_path):
    """``run.cache`` may be an fsspec URL: the run extracts into it and a rerun finds everything there."""
    import fsspec
    from run_fixtures import write_config

    from scene2brain.pipeline.config import ConfigError
    from scene2brain.pipeline.run import run_config

    url = f"memory://s2b-run-{tmp_path.name}"
    features = [{"name": "gabor", "model": "gabor", "options": {"image_size": 32}, "reduction": "standardise"}]
    changes = {"run": {"cache": url}, "features": features, "evaluation": {"identification": False}}
    config = write_config(tmp_path, changes)
    assert config.run.cache == url
    first = run_config(config, progress=False)
    assert any(name.startswith("features/") for name in first.computed)
    fs = fsspec.filesystem("memory")
    assert fs.find(url), "nothing was written to the URL cache"
    assert not (tmp_path / "cache").exists() and not (first.output / "cache").exists()
    assert run_config(config, progress=False).computed == []
    # a file:// URL is a folder; storage options are for URLs only
    local = write_config(tmp_path, {"run": {"cache": f"file://{tmp_path}/c"}})
    assert local.run.cache == tmp_path / "c"
    with pytest.raises(ConfigError, match="cache_options"):
        write_config(tmp_path, {"run": {"cache": "cache", "cache_options": {"anon": True}}})


def test_a_run_passes_the_cache_options_wherever_it_opens_the_store(tmp_path):
    """``run.cache_options`` reach every reader of the store (the simulation reads raw features back)."""
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem
    from run_fixtures import write_config

    from scene2brain.pipeline.config import ConfigError
    from scene2brain.pipeline.run import run_config

    class TokenMemory(MemoryFileSystem):
        """An in-memory file system that refuses to open without its token (as an object store without credentials)."""

        protocol = "tokenmem"

        def __init__(self, *args, token=None, **kwargs):
            if token != "secret":
                raise PermissionError(f"tokenmem: no valid token (got {token!r})")
            super().__init__(*args, **kwargs)

    fsspec.register_implementation("tokenmem", TokenMemory, clobber=True)
    url = f"tokenmem://s2b-{tmp_path.name}"
    features = [{"name": "gabor", "model": "gabor", "options": {"image_size": 32}, "reduction": "standardise"}]
    changes = {"features": features, "evaluation": {"identification": False}}
    config = write_config(tmp_path, {**changes, "run": {"cache": url, "cache_options": {"token": "secret"}}})
    assert any(name.startswith("experiment/") for name in run_config(config, progress=False).computed)
    # the broken case: without the options the store cannot be opened, which the checks before the run say
    (tmp_path / "results").rename(tmp_path / "first")
    with pytest.raises(ConfigError, match=r"run.cache: tokenmem://.* cannot be opened: tokenmem: no valid token"):
        run_config(write_config(tmp_path, {**changes, "run": {"cache": url}}), progress=False)
    assert not (tmp_path / "results").exists()
    # a URL whose file system is unknown, and memory:// (one process's) with Dask workers
    with pytest.raises(ConfigError, match=r"run.cache: nosuchfs://x cannot be opened"):
        run_config(write_config(tmp_path, {**changes, "run": {"cache": "nosuchfs://x"}}), progress=False)
    with pytest.raises(ConfigError, match=r"run.cache: memory://.*Dask workers are other processes"):
        run_config(write_config(tmp_path, {**changes, "run": {"cache": "memory://x"}}), executor="dask")


def test_a_writer_that_a_stale_status_set_back_still_completes_its_entry(tmp_path):
    """Object stores have no locks: a slower writer may write a status counting fewer rows than are written."""
    from scene2brain.features.store import StoreEntry

    for own_run in (True, False):
        entry = StoreEntry(f"memory://s2b-stale-{tmp_path.name}-{own_run}", {"k": 1})
        entry.start(40, 3, chunk_rows=10)
        rows = np.arange(120, dtype=np.float32).reshape(40, 3)
        for start in (0, 10, 20):
            entry.write_rows(start, rows[start : start + 10], written_from=0)
        # another writer, from a status read before these writes, counts its own first batch only
        status = entry.status()
        status.update(rows_done=10, complete=False)
        (entry.path / "status.json").write_text(json.dumps(status))
        entry.write_rows(30, rows[30:], written_from=0 if own_run else None)
        assert entry.complete is own_run  # without its own run, the last writer leaves the entry incomplete
        if own_run:
            np.testing.assert_array_equal(entry.read(), rows)
