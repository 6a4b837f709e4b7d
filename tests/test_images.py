"""Image sources: batched reads, subsets, content digests, descriptions, and experiments that point at their images."""

import hashlib
import json
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr
from PIL import Image
from slow_extraction import counting_model

from scene2brain.data import (
    ArrayImages,
    Experiment,
    FileImages,
    HDF5Images,
    ImageSource,
    Responses,
    Stimuli,
    SubsetImages,
    as_image_source,
    folder_images,
    hdf5_images,
    load_experiment,
    load_stimuli,
    save_experiment,
    save_stimuli,
)
from scene2brain.data.images import ImageNotFoundError, ImageReadError, read_image, to_rgb
from scene2brain.features import extract_features


def _images(n=12, size=6, seed=0, channels=3):
    shape = (n, size, size, channels) if channels else (n, size, size)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def old_images_digest(images, paths=None, block=256):
    """The digest of the former ``scene2brain.features.images.images_digest``, written out here."""
    h = hashlib.sha256()
    if paths is not None:
        for path in paths:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    else:
        n = len(images)
        h.update(str(n).encode())
        for start in range(0, n, block):
            a = np.ascontiguousarray(images[start : min(start + block, n)])
            h.update(f"{a.shape[1:]}{a.dtype.str}".encode())
            h.update(a.data)
    return h.hexdigest()[:16]


class CountingArray:
    """An array-like that counts how many times it is read."""

    def __init__(self, array):
        self.array, self.reads = array, 0
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, index):
        self.reads += 1
        return self.array[index]


def _write_folder(folder, images):
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"img_{i:03d}.png")
    return sorted(folder.glob("*.png"))


def _write_brick(path, images, dataset="imgBrick"):
    with h5py.File(path, "w") as f:
        f.create_dataset(dataset, data=images, chunks=(1, *images.shape[1:]))
    return path


@pytest.fixture
def sources(tmp_path):
    """The same 12 images as every kind of source: numpy, zarr, h5py arrays, an HDF5 brick, files, a subset."""
    images = _images()
    z = zarr.create_array(tmp_path / "a.zarr", shape=images.shape, dtype=images.dtype, chunks=(5, 6, 6, 3))
    z[:] = images
    brick = _write_brick(tmp_path / "brick.h5", images)
    handle = h5py.File(brick, "r")
    bigger = np.concatenate([images[::-1], images])  # images = bigger[12:]
    made = {
        "numpy": ArrayImages(images),
        "zarr": ArrayImages(z),
        "h5py": ArrayImages(handle["imgBrick"]),
        "hdf5": HDF5Images(brick),
        "hdf5 rows": HDF5Images(_write_brick(tmp_path / "big.h5", bigger), "imgBrick", np.arange(12, 24)),
        "files": FileImages(_write_folder(tmp_path / "folder", images)),
        "subset": SubsetImages(ArrayImages(bigger), np.arange(12, 24)),
    }
    yield images, made
    handle.close()


KINDS = ["numpy", "zarr", "h5py", "hdf5", "hdf5 rows", "files", "subset"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_source_reads_slices_unsorted_repeated_indices_and_masks(sources, kind):
    images, made = sources
    source = made[kind]
    assert len(source) == 12
    np.testing.assert_array_equal(source.read(slice(2, 5)), images[2:5])
    np.testing.assert_array_equal(source.read(slice(None, None, -3)), images[::-3])
    np.testing.assert_array_equal(source.read([7, 1, 1, 11, 0]), images[[7, 1, 1, 11, 0]])
    np.testing.assert_array_equal(source[np.array([-1, 3])], images[[11, 3]])
    mask = np.arange(12) % 4 == 1
    np.testing.assert_array_equal(source.read(mask), images[mask])
    np.testing.assert_array_equal(source[5], images[5])
    assert source.read([]).shape[0] == 0
    with pytest.raises(IndexError, match="index 12 is out of range for 12 images"):
        source.read([0, 12])
    with pytest.raises(IndexError, match=r"boolean mask of shape \(3,\) for 12 images"):
        source.read(np.ones(3, bool))
    with pytest.raises(IndexError, match="expected an int, a slice"):
        source.read(np.zeros((2, 2), int))


@pytest.mark.parametrize("kind", KINDS)
def test_subsets_read_their_images_and_have_their_own_digest(sources, kind):
    images, made = sources
    sub = made[kind].subset([9, 2, 2, 5])
    np.testing.assert_array_equal(sub.read(slice(None)), images[[9, 2, 2, 5]])
    subsub = sub.subset(np.array([False, True, False, True]))
    np.testing.assert_array_equal(subsub.read(slice(None)), images[[2, 5]])
    if kind == "files":
        assert sub.digest() == old_images_digest(None, [made[kind].paths[i] for i in (9, 2, 2, 5)])
    else:
        assert sub.digest() == old_images_digest(images[[9, 2, 2, 5]])
    assert sub.digest() != made[kind].digest()


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "files"])
def test_pixel_digest_is_the_former_images_digest(sources, kind):
    images, made = sources
    assert made[kind].digest() == old_images_digest(images)


@pytest.mark.parametrize(
    "images",
    [_images(300, 4), _images(5, 7, channels=0), np.random.default_rng(1).random((3, 4, 4)).astype(np.float32)],
    ids=["blocks", "grayscale", "float32"],
)
def test_array_digest_is_the_former_images_digest_across_blocks_and_dtypes(images):
    assert ArrayImages(images).digest() == old_images_digest(images)


def test_pinned_digests_of_arrays_and_files(tmp_path):
    # values given by the former scene2brain.features.images.images_digest (feature-store keys stay valid)
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert ArrayImages(images).digest() == old_images_digest(images)
    assert ArrayImages(images).digest() == "2b456b7009f81d79"
    (tmp_path / "a.png").write_bytes(b"not really a png")
    assert FileImages([tmp_path / "a.png"]).digest() == "8f8270f4ccc06a4a"


def test_file_digest_hashes_names_and_bytes(sources, tmp_path):
    images, made = sources
    files = made["files"]
    assert files.digest() == old_images_digest(None, files.paths)
    assert files.digest() != ArrayImages(images).digest()
    moved = tmp_path / "moved"
    shutil.copytree(files.paths[0].parent, moved)
    assert folder_images(moved).digest() == files.digest()  # the folder does not count, names and bytes do


def test_digest_is_computed_once_and_a_given_digest_is_never_recomputed():
    array = CountingArray(_images(600, 4))
    source = ArrayImages(array)
    first = source.digest()
    assert array.reads == 3  # 600 images in blocks of 256
    assert source.digest() == first and array.reads == 3
    recorded = ArrayImages(array, digest="0123456789abcdef")
    assert recorded.digest() == "0123456789abcdef" and array.reads == 3
    with pytest.raises(TypeError, match="digest: expected a str"):
        ArrayImages(array.array, digest=123)


def test_extraction_hashes_a_source_once_for_all_layers_and_calls(tmp_path):
    array = CountingArray(_images(8, 16))
    source = ArrayImages(array)
    model = counting_model()
    extract_features(source, model, ["conv", "output"], "avg", batch_size=4, store=tmp_path, progress=False)
    reads = array.reads
    assert reads == 1 + 2  # one digest block, two batches
    again = extract_features(source, model, ["conv", "output"], "avg", batch_size=4, store=tmp_path, progress=False)
    assert array.reads == reads and model.module.calls == 2  # cached features, cached digest: no pixel read
    np.testing.assert_allclose(again["conv"], extract_features(array.array, model, ["conv"], progress=False)["conv"])


def test_files_of_different_sizes_come_as_a_list_and_missing_files_are_named(tmp_path):
    paths = _write_folder(tmp_path / "f", [_images(1, 6)[0], _images(1, 9)[0], _images(1, 6)[0]])
    source = FileImages(paths)
    batch = source.read(slice(None))
    assert isinstance(batch, list) and [a.shape for a in batch] == [(6, 6, 3), (9, 9, 3), (6, 6, 3)]
    assert isinstance(source.read([0, 2]), np.ndarray) and source.read([0, 2]).shape == (2, 6, 6, 3)
    assert len(SubsetImages(source, slice(None)).digest()) == 16  # a list batch is hashed image by image
    paths[1].unlink()
    with pytest.raises(FileNotFoundError, match=f"stimulus image not found: {paths[1]}"):
        source[1]


@pytest.mark.parametrize("kind", ["hdf5", "hdf5 rows", "files", "subset"])
def test_descriptions_find_the_same_images_again(sources, kind):
    images, made = sources
    source = made[kind]
    if kind == "subset":  # a subset of files or of a brick is described by its parent and indices
        source = SubsetImages(made["files"], [3, 1])
        images = images[[3, 1]]
    description = json.loads(json.dumps(source.describe()))
    assert description["kind"] == source.kind and source.by_reference
    back = ImageSource.from_description(description, digest="fedcba9876543210")
    assert type(back) is type(source) and back.digest() == "fedcba9876543210"
    np.testing.assert_array_equal(back.read(slice(None)), images)
    assert ImageSource.from_description(description).digest() == source.digest()


def test_hdf5_rows_are_described_compactly_when_contiguous(sources):
    _, made = sources
    assert made["hdf5 rows"].describe()["rows"] == {"start": 12, "stop": 24}
    assert made["hdf5 rows"].subset([3, 0]).describe()["rows"] == [15, 12]


def test_arrays_are_not_references_and_need_their_pixels_to_be_rebuilt(sources):
    images, made = sources
    for kind in ("numpy", "subset"):
        assert not made[kind].by_reference
    description = made["numpy"].describe()
    assert description == {"kind": "array", "shape": [12, 6, 6, 3], "dtype": "|u1"}
    with pytest.raises(ValueError, match="pass array="):
        ImageSource.from_description(description)
    with pytest.raises(ValueError, match=r"expected shape \[12, 6, 6, 3\].*got shape \[2, 6, 6, 3\]"):
        ImageSource.from_description(description, array=images[:2])
    np.testing.assert_array_equal(ImageSource.from_description(description, array=images).read([4]), images[[4]])
    with pytest.raises(ValueError, match="unknown kind 'tiff'"):
        ImageSource.from_description({"kind": "tiff"})


def test_as_image_source_accepts_arrays_stimuli_sources_folders_bricks_and_npy(sources, tmp_path):
    images, made = sources
    assert as_image_source(made["files"]) is made["files"]
    np.testing.assert_array_equal(as_image_source(images).read([1]), images[[1]])
    stim = Stimuli(pd.DataFrame({"stimulus_id": list("abcdefghijkl")}), made["hdf5"])
    assert as_image_source(stim) is made["hdf5"]
    with pytest.raises(ValueError, match="has no images attached"):
        as_image_source(Stimuli(pd.DataFrame({"stimulus_id": ["a"]})))
    assert as_image_source(tmp_path / "folder").digest() == made["files"].digest()
    _write_brick(tmp_path / "other.hdf5", images[:3], dataset="stimuli")
    for text in (str(tmp_path / "brick.h5"), f"{tmp_path / 'brick.h5'}:imgBrick"):
        assert (
            isinstance(as_image_source(text), HDF5Images) and as_image_source(text).digest() == made["numpy"].digest()
        )
    np.testing.assert_array_equal(as_image_source(f"{tmp_path / 'other.hdf5'}:stimuli").read([2]), images[[2]])
    np.save(tmp_path / "images.npy", images)
    assert as_image_source(str(tmp_path / "images.npy")).digest() == made["numpy"].digest()
    with pytest.raises(ValueError, match=r"has no dataset 'imgBrick'; found \['stimuli'\]"):
        hdf5_images(tmp_path / "other.hdf5")
    with pytest.raises(FileNotFoundError, match="HDF5 file not found"):
        as_image_source(tmp_path / "missing.h5")
    with pytest.raises(FileNotFoundError, match="folder not found"):
        as_image_source(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not images")
    with pytest.raises(ValueError, match=r"notes.txt is a file, not a folder of images, an HDF5 file"):
        as_image_source(tmp_path / "notes.txt")
    with pytest.raises(TypeError, match=r"images: expected an ImageSource.*got list"):
        as_image_source([images[0], images[1]])
    with pytest.raises(TypeError, match=r"images: expected an ImageSource.*got list"):
        Stimuli(pd.DataFrame({"stimulus_id": ["a", "b"]}), [images[0], images[1]])
    with pytest.raises(ValueError, match=r"expected an array of shape \(n, H, W\).*got shape \(12, 6\)"):
        ArrayImages(np.zeros((12, 6)))


def test_hdf5_rows_out_of_range_and_missing_brick_are_named(tmp_path):
    brick = _write_brick(tmp_path / "b.h5", _images(4))
    with pytest.raises(IndexError, match=r"row 9 is out of range for .*b.h5:imgBrick \(4 images\)"):
        HDF5Images(brick, "imgBrick", [0, 9]).read(slice(None))
    with pytest.raises(ValueError, match="rows: expected rows >= 0"):
        HDF5Images(brick, "imgBrick", [-1])
    lazy = HDF5Images(tmp_path / "gone.h5", "imgBrick", [0, 1])  # rows given: the file is not opened yet
    assert len(lazy) == 2
    with pytest.raises(FileNotFoundError, match=r"gone\.h5"):
        lazy.read([0])


def _experiment(images, n=None):
    n = len(images) if n is None else n
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)]})
    responses = Responses(rng.standard_normal((n, 3)).astype(np.float32), np.arange(n))
    return Experiment(
        "sub01", Stimuli(table, images), responses, {"train": np.arange(n - 10), "test": np.arange(n - 10, n)}
    )


def _size(folder):
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_saving_an_experiment_on_an_hdf5_brick_does_not_copy_its_images(tmp_path):
    images = _images(200, 64)
    brick = _write_brick(tmp_path / "brick.h5", images)
    source = HDF5Images(brick, "imgBrick", np.arange(199, -1, -1))  # reversed rows
    path = save_experiment(_experiment(source), tmp_path / "exp")
    assert _size(path / "arrays.zarr") < brick.stat().st_size / 50
    header = json.loads((path / "experiment.json").read_text())
    assert header["images"]["source"]["kind"] == "hdf5" and header["images"]["array"] is None
    assert header["images"]["digest"] == old_images_digest(images[::-1])
    back = load_experiment(path)
    np.testing.assert_array_equal(back.stimuli.load_images(), images[::-1])
    np.testing.assert_array_equal(back.stimuli.load_images([5, 0, 5]), images[[194, 199, 194]])
    # the digest is the recorded one: it needs no pixels, even once the brick is gone
    brick.rename(tmp_path / "renamed.h5")
    again = load_experiment(path)
    assert again.stimuli.images.digest() == header["images"]["digest"]
    with pytest.raises(FileNotFoundError, match="HDF5 file not found"):
        again.stimuli.load_images([0])


def test_saved_files_are_references_with_their_digest(tmp_path):
    images = _images(14, 8)
    paths = _write_folder(tmp_path / "folder", images)
    path = save_experiment(_experiment(FileImages(paths)), tmp_path / "exp")
    assert not (path / "arrays.zarr" / "images").exists()
    digest = old_images_digest(None, paths)
    np.testing.assert_array_equal(load_experiment(path).stimuli.load_images([3, 2]), images[[3, 2]])
    shutil.rmtree(tmp_path / "folder")
    assert load_experiment(path).stimuli.images.digest() == digest


def test_saved_arrays_are_data_and_keep_their_digest(tmp_path):
    images = _images(300, 5)
    experiment = _experiment(images)
    path = save_experiment(experiment.select_split("test"), tmp_path / "test")
    header = json.loads((path / "experiment.json").read_text())
    assert header["images"]["array"] == "images" and header["images"]["source"]["shape"] == [10, 5, 5, 3]
    back = load_experiment(path)
    np.testing.assert_array_equal(back.stimuli.load_images(), images[290:])
    assert header["images"]["digest"] == old_images_digest(images[290:]) == back.stimuli.images.digest()
    whole = save_experiment(experiment, tmp_path / "whole")  # written block by block (300 > one block)
    np.testing.assert_array_equal(load_experiment(whole).stimuli.load_images(), images)
    reloaded = load_experiment(whole).stimuli.images
    reloaded.array = counting = CountingArray(reloaded.array)
    assert reloaded.digest() == old_images_digest(images) and counting.reads == 0  # recorded, not recomputed


def test_load_stimuli_reads_the_table_images_and_splits_only(tmp_path):
    images = _images(20, 4)
    brick = _write_brick(tmp_path / "brick.h5", images)
    experiment = _experiment(HDF5Images(brick), 20)
    experiment.stimuli.table["category"] = ["a", "b"] * 10
    path = save_experiment(experiment, tmp_path / "exp")
    for name in ("responses", "trial_stimulus"):  # not needed: gone
        shutil.rmtree(path / "arrays.zarr" / name)
    (path / "voxels.parquet").unlink()
    stimuli, splits = load_stimuli(path)
    pd.testing.assert_frame_equal(stimuli.table, experiment.stimuli.table)
    np.testing.assert_array_equal(stimuli.load_images([19, 0]), images[[19, 0]])
    assert stimuli.images.digest() == experiment.stimuli.images.digest()
    assert splits.keys() == experiment.splits.keys()
    np.testing.assert_array_equal(splits["test"], experiment.splits["test"])
    with pytest.raises(FileNotFoundError):
        load_experiment(path)


def test_save_stimuli_writes_a_stimulus_set_without_responses(tmp_path):
    images = _images(12, 4)
    table = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(12)]})
    path = save_stimuli(Stimuli(table, images), {"train": np.arange(8), "test": [8, 9]}, tmp_path / "stim")
    stimuli, splits = load_stimuli(path)
    np.testing.assert_array_equal(stimuli.load_images(), images)
    assert stimuli.images.digest() == old_images_digest(images)
    np.testing.assert_array_equal(splits["test"], [8, 9])
    assert splits["test"].dtype == np.int64 and list(splits) == ["train", "test"]
    with pytest.raises(ValueError, match=r"a stimulus set saved by save_stimuli.*read it with load_stimuli"):
        load_experiment(path)
    with pytest.raises(ValueError, match="splits 'train' and 'test' overlap in 1 stimuli"):
        save_stimuli(stimuli, {"train": [0, 1], "test": [1]}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    without = save_stimuli(Stimuli(table), None, tmp_path / "bare")
    stimuli, splits = load_stimuli(without)
    assert stimuli.images is None and splits == {} and len(stimuli) == 12


def test_version_1_folders_are_read_and_unknown_versions_named(tmp_path, small_experiment):
    path = save_experiment(small_experiment, tmp_path / "exp")
    header = json.loads((path / "experiment.json").read_text())
    (path / "experiment.json").write_text(json.dumps({**header, "version": 1, "images": {"kind": "array"}}))
    back = load_experiment(path)
    np.testing.assert_array_equal(back.stimuli.load_images(), small_experiment.stimuli.load_images())
    assert back.stimuli.images.digest() == small_experiment.stimuli.images.digest()
    (path / "experiment.json").write_text(json.dumps({**header, "version": 99}))
    with pytest.raises(ValueError, match=r"format version 99 is not supported \(expected one of \(1, 2\)\)"):
        load_experiment(path)


# --- the one image reader: every Pillow mode to RGB, unreadable files named ----------------------------------


def _alpha_on_white(values, alpha):
    """Hand formula of compositing onto white: v * a + 255 * (1 - a), a = alpha / 255."""
    a = np.asarray(alpha, dtype=np.float64) / 255.0
    return np.asarray(values, dtype=np.float64) * a + 255.0 * (1.0 - a)


def test_palette_png_reads_as_its_palette_colours_not_its_indices(tmp_path):
    palette = [(200, 10, 30), (0, 128, 255), (17, 240, 99)]
    indices = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    img = Image.fromarray(indices, mode="P")
    img.putpalette([c for colour in palette for c in colour])
    img.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    expected = np.array(palette, dtype=np.uint8)[indices]
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)
    np.testing.assert_array_equal(FileImages([tmp_path / "p.png"])[0], expected)  # the folder path reads the same


def test_palette_png_with_a_transparent_colour_shows_white_there(tmp_path):
    img = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), mode="P")
    img.putpalette([10, 20, 30, 40, 50, 60])
    img.save(tmp_path / "t.png", transparency=0)
    np.testing.assert_array_equal(read_image(tmp_path / "t.png"), [[[255, 255, 255], [40, 50, 60]]])


def test_cmyk_jpeg_is_converted_by_pillow_not_fed_as_rgb(tmp_path):
    cmyk = np.random.default_rng(0).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as img:
        assert img.mode == "CMYK"
        reference = np.asarray(img.convert("RGB"))
        raw = np.asarray(img)[..., :3]
    got = read_image(tmp_path / "c.jpg")
    assert got.dtype == np.uint8 and got.shape == (16, 16, 3)
    np.testing.assert_array_equal(got, reference)
    assert np.abs(got.astype(int) - raw).mean() > 20  # not the C, M, Y channels as R, G, B


@pytest.mark.parametrize("mode", ["L", "1", "YCbCr", "LAB", "HSV", "RGBX"])
def test_other_modes_use_pillows_conversion(mode):
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)).convert(mode)
    got = to_rgb(img)
    assert got.shape == (5, 7, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.asarray(img.convert("RGB")))
    if mode in ("L", "1"):
        np.testing.assert_array_equal(got, np.repeat(np.asarray(img.convert("L"))[..., None], 3, axis=2))


def test_grey_alpha_and_rgba_pngs_are_composited_onto_white(tmp_path):
    grey = np.array([[0, 100, 200, 255]], dtype=np.uint8)
    alpha = np.array([[0, 128, 255, 64]], dtype=np.uint8)
    Image.fromarray(np.stack([grey, alpha], axis=-1)).save(tmp_path / "la.png")
    assert Image.open(tmp_path / "la.png").mode == "LA"
    got = read_image(tmp_path / "la.png")
    expected = _alpha_on_white(grey, alpha)
    assert got.shape == (1, 4, 3) and (got[..., 0] == got[..., 2]).all()
    np.testing.assert_allclose(got[..., 0], expected, atol=1)
    rgba = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 128]]], dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(read_image(tmp_path / "rgba.png"), _alpha_on_white(rgba[..., :3], rgba[..., 3:]), atol=1)
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png")[0, :2], [[255, 255, 255], [255, 0, 0]])


def test_premultiplied_grey_alpha_is_composited_onto_white():
    img = Image.new("La", (2, 1))
    img.putpixel((0, 0), (40, 100))  # premultiplied grey 40 at alpha 100: 40 + 255 - 100
    img.putpixel((1, 0), (0, 0))
    np.testing.assert_array_equal(to_rgb(img)[0, :, 0], [195, 255])


def test_16_bit_png_is_scaled_by_65535(tmp_path):
    values = np.array([[0, 257, 1000, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I")
    got = read_image(tmp_path / "16.png")
    np.testing.assert_array_equal(got[..., 0], [[0, 1, 4, 128, 255]])  # round(v * 255 / 65535)
    np.testing.assert_array_equal(got[..., 0], np.round(values * 255.0 / 65535).astype(np.uint8))


def test_32_bit_and_float_tiffs_need_values_in_their_documented_range(tmp_path):
    Image.fromarray(np.array([[0, 65535]], dtype=np.int32), mode="I").save(tmp_path / "i.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "i.tif")[0, :, 0], [0, 255])
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32), mode="I").save(tmp_path / "big.tif")
    with pytest.raises(ImageReadError, match=r"big\.tif: mode I pixel values must lie in 0\.\.65535.*found 0\.\.70000"):
        read_image(tmp_path / "big.tif")
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif")[0, :, 1], [0, 128, 255])
    Image.fromarray(np.array([[0.0, 2.5]], dtype=np.float32)).save(tmp_path / "f2.tif")
    with pytest.raises(ImageReadError, match=r"f2\.tif: floating-point pixel values must lie in \[0, 1\], found"):
        read_image(tmp_path / "f2.tif")


def test_exif_orientation_6_is_applied(tmp_path):
    # four flat quadrants (JPEG keeps flat colours): red top-left, green top-right, blue bottom-left, white
    img = np.zeros((32, 48, 3), dtype=np.uint8)
    img[:16, :24] = (255, 0, 0)
    img[:16, 24:] = (0, 255, 0)
    img[16:, :24] = (0, 0, 255)
    img[16:, 24:] = (255, 255, 255)
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    pil.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    got = read_image(tmp_path / "rot.jpg")
    assert got.shape == (48, 32, 3)  # width and height swapped
    # a quarter turn clockwise: blue (bottom-left) comes to the top-left, red to the top-right
    inner = (slice(4, 20), slice(4, 12)), (slice(4, 20), slice(20, 28)), (slice(28, 44), slice(20, 28))
    for (rows, cols), colour in zip(inner, [(0, 0, 255), (255, 0, 0), (0, 255, 0)], strict=True):
        assert np.abs(got[rows, cols].astype(int) - colour).max() < 8, colour
    assert np.abs(got.astype(int) - np.rot90(img, k=-1)).mean() < 8  # JPEG blurs the edges; a wrong turn gives > 60


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_text("this is not a picture"), "not an image file Pillow can identify"),
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_bytes(_encoded("PNG")[:-200]), "damaged or incomplete"),
        (lambda p: p.write_bytes(_encoded("JPEG")[: len(_encoded("JPEG")) // 2]), "damaged or incomplete"),
        (lambda p: p.write_bytes(_corrupt_jpeg()), "damaged or incomplete"),
    ],
    ids=["text-named-png", "empty", "truncated-png", "truncated-jpeg", "corrupt-jpeg"],
)
def test_unreadable_files_raise_an_image_read_error_naming_the_file(tmp_path, make, reason):
    path = tmp_path / "bad_image.png"
    make(path)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)
    with pytest.raises(ImageReadError, match=r"bad_image\.png"):
        FileImages([path]).read([0])


def _encoded(fmt, size=64):
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


def _corrupt_jpeg():
    data = bytearray(_encoded("JPEG"))
    start = data.index(b"\xff\xda")  # start of scan: garble the header that follows
    data[start + 2 : start + 12] = b"\xff" * 10
    return bytes(data)


def test_a_missing_file_is_an_image_not_found_error(tmp_path):
    with pytest.raises(ImageNotFoundError, match=r"stimulus image not found: .*gone\.png") as info:
        read_image(tmp_path / "gone.png")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ImageReadError)


def test_skip_unreadable_drops_and_lists_bad_files(tmp_path):
    good = _write_folder(tmp_path / "f", _images(3, 5))
    (tmp_path / "f" / "broken.png").write_text("oops")
    (tmp_path / "f" / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"broken\.png: not an image file"):
        folder_images(tmp_path / "f").read(slice(None))
    source = folder_images(tmp_path / "f", skip_unreadable=True)
    assert source.paths == good and source.names() == [p.name for p in good]
    assert [(p.name, "not an image file" in why or "empty" in why) for p, why in source.skipped] == [
        ("broken.png", True),
        ("empty.jpg", True),
    ]
    assert source.digest() == FileImages(good).digest()
    np.testing.assert_array_equal(source.read(slice(None)), _images(3, 5))
    assert as_image_source(tmp_path / "f", skip_unreadable=True).paths == good
    assert FileImages([*good, tmp_path / "nope.png"], skip_unreadable=True).skipped[0][0].name == "nope.png"
    with pytest.raises(ImageReadError, match=r"none of the 2 image files can be read; the first: .*broken\.png"):
        FileImages([tmp_path / "f" / "broken.png", tmp_path / "f" / "empty.jpg"], skip_unreadable=True)


def test_grey_image_files_read_as_rgb(tmp_path):
    grey = _images(1, 6, channels=0)[0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(FileImages([tmp_path / "g.png"])[0], np.repeat(grey[..., None], 3, axis=2))


def test_array_sources_convert_what_the_models_do_not_take_and_keep_the_stored_digest(tmp_path):
    rng = np.random.default_rng(3)
    la = rng.integers(0, 256, (4, 5, 6, 2), dtype=np.uint8)
    expected = np.stack([to_rgb(img) for img in la])
    np.testing.assert_allclose(expected[..., 0], _alpha_on_white(la[..., 0], la[..., 1]), atol=1)
    for source in (ArrayImages(la), HDF5Images(_write_brick(tmp_path / "la.h5", la))):
        np.testing.assert_array_equal(source.read(slice(None)), expected)
        np.testing.assert_array_equal(source.read([3, 1]), expected[[3, 1]])
        assert source.digest() == old_images_digest(la)  # the stored pixels, not the converted ones
        assert source.subset([2, 0]).digest() == old_images_digest(la[[2, 0]])
    sixteen = rng.integers(0, 65536, (3, 4, 4), dtype=np.uint16)
    eight = np.round(sixteen / 257).astype(np.uint8)
    np.testing.assert_array_equal(ArrayImages(sixteen).read(slice(None)), eight)  # grey stays grey, as 8 bits
    np.testing.assert_array_equal(ArrayImages(sixteen[..., None]).read([2, 0]), eight[[2, 0]])
    grey, floats = _images(3, 4, channels=0), rng.random((3, 4, 4, 3)).astype(np.float32)
    assert ArrayImages(grey).read(slice(None)) is not None and ArrayImages(grey).read(slice(None)).shape == (3, 4, 4)
    np.testing.assert_array_equal(ArrayImages(floats * 7).read([1]), floats[[1]] * 7)  # floats: their own scale
    np.testing.assert_array_equal(ArrayImages(floats[..., :1]).read([2]), floats[[2], ..., 0])
    ints = rng.integers(0, 256, (2, 3, 3, 3)).astype(np.int64)
    np.testing.assert_array_equal(ArrayImages(ints).read(slice(None)), ints.astype(np.uint8))
    ints[1, 0, 0, 0] = 300
    with pytest.raises(ValueError, match=r"images\[1\]: int64 pixel values must lie in 0\.\.255.*found \d+\.\.300"):
        ArrayImages(ints).read([1])


def test_array_sources_refuse_shapes_and_dtypes_that_hold_no_images(tmp_path):
    with pytest.raises(ValueError, match=r"images: expected .*C in \(1, 2, 3, 4\).*got shape \(2, 4, 4, 5\)"):
        ArrayImages(np.zeros((2, 4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"images: expected integer, bool or floating-point pixels, got dtype <U1"):
        ArrayImages(np.full((2, 4, 4), "a"))
    brick = _write_brick(tmp_path / "five.h5", np.zeros((2, 4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"five\.h5:imgBrick: expected .*got shape \(2, 4, 4, 5\)"):
        HDF5Images(brick)
    (tmp_path / "fake.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"fake\.h5 cannot be opened as an HDF5 file"):
        as_image_source(tmp_path / "fake.h5")
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"flat\.npy: images: expected .*got shape \(4, 4\)"):
        as_image_source(tmp_path / "flat.npy")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 4, 5), np.uint8), r"shape \(4, 4, 5\)"),
        (np.zeros(4, np.uint8), r"got shape \(4,\)"),
        (np.full((2, 2), -1.0), r"must lie in \[0, 1\], found \[-1, -1\]"),
        (np.full((2, 2), np.nan), r"must lie in \[0, 1\], found \[nan, nan\]"),
        (np.full((2, 2), -3, np.int16), r"int16 pixel values must lie in 0\.\.255"),
        (np.zeros((2, 2), np.complex64), "got dtype complex64"),
    ],
    ids=["five-channels", "1-d", "negative-float", "nan", "negative-int", "complex"],
)
def test_to_rgb_names_the_image_and_what_is_wrong(image, message):
    with pytest.raises(ValueError, match=rf"my image: .*{message}"):
        to_rgb(image, "my image")


def test_to_rgb_of_arrays_matches_hand_computed_pixels():
    np.testing.assert_array_equal(to_rgb(np.array([[True, False]])), [[[255] * 3, [0] * 3]])
    np.testing.assert_array_equal(to_rgb(np.array([[0.0, 0.5, 1.0]])), [[[0] * 3, [128] * 3, [255] * 3]])
    rgb = _images(1, 3)[0]
    assert to_rgb(rgb) is not None and np.shares_memory(to_rgb(rgb), rgb)  # RGB uint8: no copy
    np.testing.assert_array_equal(to_rgb(rgb[..., :1]), np.repeat(rgb[..., :1], 3, axis=2))


def test_stimuli_from_images_and_the_gabor_pyramid_read_through_the_same_reader(tmp_path):
    from scene2brain.data.simulate import stimuli_from_images
    from scene2brain.features.gabor import to_grayscale

    palette = [(250, 0, 0), (0, 0, 250)]
    paths = []
    for i in range(6):
        img = Image.fromarray(np.full((8, 8), i % 2, dtype=np.uint8), mode="P")
        img.putpalette([c for colour in palette for c in colour])
        img.save(tmp_path / f"p{i}.png")
        paths.append(tmp_path / f"p{i}.png")
    stimuli, _ = stimuli_from_images(FileImages(paths), [p.name for p in paths], image_size=4, n_test=1)
    np.testing.assert_array_equal(stimuli.load_images([0, 1])[:, 0, 0], palette)  # colours, not indices 0 and 1
    sixteen = np.random.default_rng(4).integers(0, 65536, (6, 8, 8), dtype=np.uint16)
    eight = np.round(sixteen / 257).astype(np.uint8)
    from_16, _ = stimuli_from_images(ArrayImages(sixteen), image_size=8, n_test=1)
    np.testing.assert_array_equal(from_16.load_images(), np.repeat(eight[..., None], 3, axis=3))
    with pytest.raises(ValueError, match=r"image-00002: floating-point pixel values must lie in \[0, 1\]"):
        stimuli_from_images(
            ArrayImages(np.where(np.arange(6)[:, None, None] == 2, 3.0, np.full((6, 8, 8), 0.5))),
            image_size=8,
            n_test=1,
        )
    # Gabor: luminance of 16-bit, float and grey+alpha images equals that of their 8-bit RGB
    np.testing.assert_allclose(to_grayscale(sixteen, 8), to_grayscale(eight, 8))
    unit = eight / 255.0
    np.testing.assert_allclose(to_grayscale(unit, 8), to_grayscale(eight, 8))
    assert to_grayscale(unit, 8).mean() > 0.2  # was read as mode F and truncated to 0 or 1 grey levels
    la = np.stack([eight, np.full_like(eight, 128)], axis=-1)
    np.testing.assert_allclose(to_grayscale(la, 8), to_grayscale(np.stack([to_rgb(x) for x in la]), 8))
    with pytest.raises(ValueError, match=r"images\[0\]: floating-point pixel values must lie in \[0, 1\]"):
        to_grayscale(np.full((1, 8, 8), 5.0), 8)


def test_gif_files_in_a_folder_are_read_as_rgb(tmp_path):
    from PIL import Image

    from scene2brain.data.images import folder_images

    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0], rgb[1, 2] = 200, (10, 220, 30)
    Image.fromarray(rgb).save(tmp_path / "a.gif")  # a palette image: exact for these two colours
    source = folder_images(tmp_path)
    assert source.names() == ["a.gif"]
    np.testing.assert_array_equal(np.asarray(source[0]), rgb)


def test_every_unreadable_file_is_named_at_once(tmp_path):
    from scene2brain.data.images import ImageReadError, folder_images

    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("not an image")
    (tmp_path / "c.png").write_bytes(b"")
    source = folder_images(tmp_path)
    with pytest.raises(ImageReadError, match=r"2 of 3 image files cannot be read") as err:
        source.read(np.arange(3))
    assert "b.png" in str(err.value) and "c.png" in str(err.value)
    assert [p.name for p, _ in folder_images(tmp_path, skip_unreadable=True).skipped] == ["b.png", "c.png"]
