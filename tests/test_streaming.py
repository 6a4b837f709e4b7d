"""NSD-sized inputs are streamed (bounded memory) and image digests are memoised per source content."""

import hashlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from scene2brain.data import FileImages, HDF5Images, as_image_source, hdf5_images
from scene2brain.data.images import DIGEST_MEMO_DIR, ImageSource
from scene2brain.features import GaborPyramid, extract_features, to_grayscale
from scene2brain.features.gabor import GaborExtractor
from scene2brain.features.store import FeatureStore

N_BRICK, SIDE = 20_000, 32
BRICK_BYTES = N_BRICK * SIDE * SIDE * 3  # 61.4 MB of uint8 pixels

# Runs in a fresh interpreter so that its peak memory is its own. After a warm-up on the first 1,000 images
# (imports, the wavelets, zarr and h5py machinery), each phase is measured on its own: the peak of traced
# allocations (numpy buffers included) and the growth of the peak resident set over the phase (Linux: the peak
# is reset through /proc/self/clear_refs; None where that is not possible). The phase "whole" reads the brick at
# once, as a non-streaming reader would: it shows the harness sees a whole-brick load.
HARNESS = r"""
import json, sys, tracemalloc
import numpy as np
from scene2brain.data.images import HDF5Images
from scene2brain.features.extraction import extract_to_store
from scene2brain.features.gabor import GaborExtractor, GaborPyramid

brick, store, phases = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
source = HDF5Images(brick)
extractor = GaborExtractor(GaborPyramid(16, (1, 2, 4)))


def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status("VmRSS")
    except OSError:
        return None


warm = source.subset(np.arange(1000))
warm.digest()
extract_to_store(warm, extractor, ["energy"], "avg", store + "-warm-up", batch_size=500, progress=False)
report = {}
for phase in phases:
    base = reset_peak()
    tracemalloc.start()
    if phase == "digest":
        out = source.digest()
    elif phase == "gabor":
        out = extract_to_store(source, extractor, ["energy"], "avg", store, batch_size=500, progress=False)[1]
    else:  # "whole": the brick read at once
        out = list(source.read(slice(None)).shape)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    grown = None if base is None else status("VmHWM") - base
    report[phase] = {"out": out, "traced_peak": peak, "rss_growth": grown}
print(json.dumps(report))
"""


def _digest_of(data, block=256):
    """The pixel digest written out (count, then per block of rows its shape, dtype and bytes)."""
    h = hashlib.sha256(str(len(data)).encode())
    for start in range(0, len(data), block):
        a = np.ascontiguousarray(data[start : start + block])
        h.update(f"{a.shape[1:]}{a.dtype.str}".encode())
        h.update(a.data)
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def brick(tmp_path_factory):
    """20,000 images of 32 x 32 RGB in an HDF5 brick (NSD's layout), written 2,000 at a time."""
    path = tmp_path_factory.mktemp("brick") / "nsd_stimuli.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_dataset("imgBrick", (N_BRICK, SIDE, SIDE, 3), dtype=np.uint8, chunks=(250, SIDE, SIDE, 3))
        for start in range(0, N_BRICK, 2000):
            data[start : start + 2000] = rng.integers(0, 256, (2000, SIDE, SIDE, 3), dtype=np.uint8)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """scene2brain's cache folder (the digest memos) in a fresh temporary folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SCENE2BRAIN_CACHE", str(folder))
    return folder


def _measure(brick, store, phases):
    env = {**os.environ, "SCENE2BRAIN_CACHE": ""}  # no digest memo: the digest is computed from the pixels
    run = subprocess.run(
        [sys.executable, "-c", HARNESS, str(brick), str(store), ",".join(phases)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_gabor_features_and_digest_of_a_20000_image_brick_stream_in_bounded_memory(brick, tmp_path):
    report = _measure(brick, tmp_path / "store", ["digest", "gabor", "whole"])
    print(json.dumps(report))
    bound = BRICK_BYTES / 4
    for phase in ("digest", "gabor"):
        assert report[phase]["traced_peak"] < bound, (phase, report)
        assert report[phase]["rss_growth"] is None or report[phase]["rss_growth"] < bound, (phase, report)
    # the deliberately non-streaming read is caught by the same measurements
    assert report["whole"]["out"] == [N_BRICK, SIDE, SIDE, 3]
    assert report["whole"]["traced_peak"] > 0.95 * BRICK_BYTES, report
    assert report["whole"]["rss_growth"] is None or report["whole"]["rss_growth"] > 0.95 * BRICK_BYTES, report

    # what was streamed is right: the digest written out, and the features of sampled images computed directly
    with h5py.File(brick) as f:
        data = f["imgBrick"]
        assert report["digest"]["out"] == _digest_of(data)
        rows = np.array([0, 499, 500, 7777, N_BRICK - 1])
        images = np.stack([data[r] for r in rows])
    assert report["gabor"]["out"] == ["energy"]
    pyramid = GaborPyramid(16, (1, 2, 4))
    expected = pyramid.transform(to_grayscale(images, 16))
    stored = extract_features(brick, GaborExtractor(pyramid), ["energy"], store=tmp_path / "store", lazy=True)
    np.testing.assert_allclose(stored["energy"][rows], expected, rtol=1e-6, atol=1e-7)
    assert stored["energy"].shape == (N_BRICK, pyramid.n_channels)


def test_the_gabor_transform_reads_an_on_disk_array_batch_by_batch(tmp_path):
    pyramid = GaborPyramid(16, (1, 2))
    gray = np.random.default_rng(1).random((70, 16, 16)).astype(np.float32)
    with h5py.File(tmp_path / "gray.h5", "w") as f:
        f["gray"] = gray
        on_disk = pyramid.transform(f["gray"], batch_size=16)  # an h5py dataset, never read whole
    in_memory = pyramid.transform(gray)
    np.testing.assert_array_equal(on_disk, in_memory)
    # the energies equal the wavelet products computed directly
    cos, sin = (w.toarray() for w in pyramid.wavelets())
    flat = gray.reshape(70, -1).astype(np.float64)
    direct = np.hypot(flat @ cos, flat @ sin)
    direct[:, -1] *= np.sqrt(2.0)
    np.testing.assert_allclose(in_memory, direct, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size: expected a positive integer, got 0"):
        pyramid.transform(gray, batch_size=0)
    with pytest.raises(ValueError, match=r"images: expected shape \(n, 16, 16\), got \(70, 16\)"):
        pyramid.transform(gray[:, 0])


def _small_brick(path, n=300, seed=0, side=8):
    images = np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("imgBrick", data=images)
    return images


def _later(path, seconds=5):
    """Move the modification time of ``path`` on (a rewrite seen later than within one file-system clock tick)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


def _count_reads(monkeypatch):
    """Count the blocks of stored pixels read (what the digest hashes) and the file digests computed."""
    counts = {"blocks": 0, "files": 0}
    stored, files = HDF5Images._stored, FileImages._compute_digest

    def counting_stored(self, positions):
        counts["blocks"] += 1
        return stored(self, positions)

    def counting_files(self):
        counts["files"] += 1
        return files(self)

    monkeypatch.setattr(HDF5Images, "_stored", counting_stored)
    monkeypatch.setattr(FileImages, "_compute_digest", counting_files)
    return counts


def test_the_digest_is_computed_once_per_source_content_and_recorded(tmp_path, cache, monkeypatch):
    path = tmp_path / "brick.hdf5"
    images = _small_brick(path)
    counts = _count_reads(monkeypatch)
    first = hdf5_images(path).digest()
    assert first == _digest_of(images) and counts["blocks"] == 2  # 300 images: two digest blocks
    assert len(list((cache / DIGEST_MEMO_DIR).glob("*.json"))) == 1
    # the next run's sources (new objects, a path string) find it without reading an image
    assert hdf5_images(path).digest() == first
    assert as_image_source(str(path)).digest() == first
    assert HDF5Images(path, rows=np.arange(300)).digest() == first
    assert counts["blocks"] == 2
    # a subset is its own content: computed once, then recorded too
    subset = hdf5_images(path).subset([5, 3, 3])
    assert subset.digest() == _digest_of(images[[5, 3, 3]]) and counts["blocks"] == 3
    assert hdf5_images(path).subset([5, 3, 3]).digest() == subset.digest() and counts["blocks"] == 3
    # a folder of image files: file names and bytes, recorded the same way
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(images[i]).save(folder / f"im{i}.png")
    files = as_image_source(folder).digest()
    assert as_image_source(folder).digest() == files and counts["files"] == 1


def test_a_changed_file_misses_the_memo(tmp_path, cache, monkeypatch):
    path = tmp_path / "brick.hdf5"
    _small_brick(path)
    counts = _count_reads(monkeypatch)
    first = hdf5_images(path).digest()
    # touched (new modification time, same content): recomputed, same digest
    _later(path, 2)
    assert hdf5_images(path).digest() == first and counts["blocks"] == 4
    # rewritten with other pixels of the same size (later: a new modification time): recomputed, the new digest
    other = _small_brick(path, seed=1)
    _later(path)
    assert hdf5_images(path).digest() == _digest_of(other) != first and counts["blocks"] == 6
    # a different size (more images): recomputed
    more = _small_brick(path, n=310, seed=1)
    assert hdf5_images(path).digest() == _digest_of(more) and counts["blocks"] == 8
    # files: a rewritten image file misses the memo too
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.fromarray(more[0]).save(folder / "a.png")
    before = as_image_source(folder).digest()
    Image.fromarray(more[1]).save(folder / "a.png")
    _later(folder / "a.png")
    after = as_image_source(folder).digest()
    assert before != after and counts["files"] == 2
    assert after == FileImages([folder / "a.png"])._compute_digest()


def test_damaged_or_foreign_memos_are_not_trusted(tmp_path, cache, monkeypatch):
    path = tmp_path / "brick.hdf5"
    images = _small_brick(path)
    counts = _count_reads(monkeypatch)
    right = hdf5_images(path).digest()
    (memo,) = (cache / DIGEST_MEMO_DIR).glob("*.json")
    content = json.loads(memo.read_text())
    for damaged in (
        "{not json",
        json.dumps({**content, "key": {**content["key"], "version": -1}}),  # recorded for another key
        json.dumps({**content, "digest": "not a digest"}),
        json.dumps([content]),
    ):
        memo.write_text(damaged)
        reads = counts["blocks"]
        assert hdf5_images(path).digest() == right == _digest_of(images)
        assert counts["blocks"] == reads + 2  # recomputed from the pixels
        assert json.loads(memo.read_text()) == content  # and recorded again


def test_without_a_usable_cache_the_digest_is_computed_and_nothing_fails(tmp_path, monkeypatch):
    path = tmp_path / "brick.hdf5"
    images = _small_brick(path)
    counts = _count_reads(monkeypatch)
    monkeypatch.setenv("SCENE2BRAIN_CACHE", "")  # turned off: computed for every new source
    assert hdf5_images(path).digest() == hdf5_images(path).digest() == _digest_of(images)
    assert counts["blocks"] == 4
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("SCENE2BRAIN_CACHE", str(blocked))  # cannot be written: computed, no error
    assert hdf5_images(path).digest() == _digest_of(images) and counts["blocks"] == 6
    # arrays have no file to stamp: no memo, the digest of their pixels
    monkeypatch.setenv("SCENE2BRAIN_CACHE", str(tmp_path / "cache"))
    assert as_image_source(images).digest() == _digest_of(images)
    assert not (tmp_path / "cache").exists()
    # a missing brick is named, memo or not
    source = HDF5Images(tmp_path / "gone.hdf5", rows=np.arange(3))
    with pytest.raises(FileNotFoundError, match="HDF5 file not found"):
        source.digest()


def test_extraction_from_a_path_reads_the_recorded_digest(tmp_path, cache, monkeypatch):
    path = tmp_path / "brick.hdf5"
    _small_brick(path, n=40, side=16)
    extractor, store = GaborExtractor(GaborPyramid(16, (1, 2))), FeatureStore(tmp_path / "store")
    first = extract_features(str(path), extractor, ["energy"], store=store, progress=False)["energy"]
    reads = []
    monkeypatch.setattr(ImageSource, "_compute_digest", lambda self: reads.append(1))
    monkeypatch.setattr(HDF5Images, "_read", lambda self, positions: reads.append(1))
    again = extract_features(str(path), extractor, ["energy"], store=store, progress=False)["energy"]
    assert not reads  # the second run: the digest from the memo, the features from the store
    np.testing.assert_array_equal(again, first)
