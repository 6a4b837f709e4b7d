"""Kay 2008 loaders (CRCNS vim-1 and the NMA repackaging) on format-faithful fixtures."""

import numpy as np
import pandas as pd
import pytest
from dataset_fixtures import write_kay_nma, write_kay_vim1

from scene2brain.data.containers import select_classes, stimulus_labels
from scene2brain.data.datasets import DatasetFileError, load_kay2008, load_kay2008_nma
from scene2brain.data.datasets.kay import LABEL_LEVELS


def test_vim1_axes_nan_voxels_and_roi_codes(tmp_path):
    truth = write_kay_vim1(tmp_path)
    with pytest.warns(UserWarning, match="2 of 25 voxels have NaN responses"):
        exp = load_kay2008(tmp_path, "S2")
    t = truth[2]
    keep = np.isfinite(t["train"]).all(0) & np.isfinite(t["test"]).all(0)
    assert keep.sum() == 23 and exp.metadata["n_nan_voxels"] == 2
    np.testing.assert_allclose(exp.responses.data[:14], t["train"][:, keep], rtol=1e-6)
    np.testing.assert_allclose(exp.responses.data[14:], t["test"][:, keep], rtol=1e-6)
    np.testing.assert_array_equal(exp.voxels["roi_code"], t["roi"][keep])
    # voxIdx is 1-based and column-major over 64 x 64 x 18
    vox = exp.voxels.iloc[4]
    flat = t["voxIdx"][keep][4] - 1
    assert vox["volume_index"] == flat
    assert vox["i"] + 64 * vox["j"] + 64 * 64 * vox["k"] == flat
    np.testing.assert_array_equal(exp.stimuli.load_images(np.arange(14, 20)), truth["stimVal"])
    assert exp.splits["test"].tolist() == list(range(14, 20))


def test_selecting_rois_keeps_exactly_their_voxels(tmp_path):
    """The decoding-thoughts seed returned positions of the wrong voxels; check content, not only counts."""
    truth = write_kay_vim1(tmp_path)
    with pytest.warns(UserWarning):
        exp = load_kay2008(tmp_path, 1)
    t = truth[1]
    keep = np.isfinite(t["train"]).all(0) & np.isfinite(t["test"]).all(0)
    for names, codes in ((["V1"], [1]), (["V2", "V3", "V4"], [2, 3, 6]), (["other"], [0])):
        sub = exp.select_rois(names)
        wanted = keep & np.isin(t["roi"], codes)
        np.testing.assert_allclose(sub.responses.data[:14], t["train"][:, wanted], rtol=1e-6)


def test_nma_archive_with_labels(tmp_path):
    dat = write_kay_nma(tmp_path)
    exp = load_kay2008_nma(tmp_path)
    assert exp.responses.data.dtype == np.float32 and exp.responses.data.shape == (20, 30)
    np.testing.assert_allclose(exp.responses.data[14:], dat["responses_test"], rtol=1e-6)
    assert exp.voxels["roi"].tolist()[:7] == ["V1", "V2", "V3", "V3A", "V3B", "V4", "LatOcc"]
    assert exp.select_rois("V4").responses.n_voxels == (dat["roi"] == 6).sum()
    table = exp.stimuli.table
    assert table.loc[0, "wordnet_general"] == "artifact" and table.loc[15, "imagenet_label"] == "class 1"
    # centred float luminance mapped to [0, 1] by the training images' range (test images clipped)
    lo, hi = dat["stimuli"].min(), dat["stimuli"].max()
    np.testing.assert_allclose(exp.stimuli.load_images([0])[0], (dat["stimuli"][0] - lo) / (hi - lo), rtol=1e-6)
    everything = exp.stimuli.load_images(np.arange(len(exp.stimuli)))
    assert everything.min() >= 0 and everything.max() <= 1


def test_kay_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetFileError, match=r"EstimatedResponses\.mat: missing"):
        load_kay2008(tmp_path)
    (tmp_path / "EstimatedResponses.mat").write_bytes(b"not hdf5")
    with pytest.raises(DatasetFileError, match=r"not readable as MATLAB v7\.3"):
        load_kay2008(tmp_path)
    write_kay_vim1(tmp_path)
    (tmp_path / "Stimuli.mat").unlink()
    with pytest.raises(DatasetFileError, match=r"Stimuli\.mat: missing"):
        load_kay2008(tmp_path)
    with pytest.raises(ValueError, match=r"subject: expected 1\.\.2 or 'S1'"):
        load_kay2008(tmp_path, 3)
    with pytest.raises(ValueError, match=r"subject: .* got 'left'"):  # not a bare int() error
        load_kay2008(tmp_path, "left")
    dat = write_kay_nma(tmp_path)
    np.savez(tmp_path / "kay_images.npz", **{**dat, "responses_test": dat["responses_test"][:, :5]})
    with pytest.raises(DatasetFileError, match=r"responses_test .* of shape \(6, 30\), found \(6, 5\)"):
        load_kay2008_nma(tmp_path)


def test_nma_labels_reach_the_stimulus_table_and_classes_are_an_option(tmp_path):
    """The 4 label levels are columns; the seed's class filter is a choice made on them, not built in."""
    write_kay_nma(tmp_path)
    table = load_kay2008_nma(tmp_path).stimuli.table
    assert [c for c in table.columns if c in LABEL_LEVELS] == list(LABEL_LEVELS)
    expected = np.concatenate([np.load(tmp_path / f) for f in ("kay_labels.npy", "kay_labels_val.npy")], axis=1)
    for level, row in zip(LABEL_LEVELS, expected, strict=True):
        assert table[level].tolist() == row.tolist()
    general = stimulus_labels(table, "wordnet_general")
    assert set(general) == {"artifact", "entity", "animal"}
    everything = select_classes(general, None)
    assert everything.all() and len(everything) == 20
    kept = select_classes(general, ["animal", "artifact"])  # Kay's seed also kept "geological formation"
    np.testing.assert_array_equal(kept, table["wordnet_general"].isin(["animal", "artifact"]).to_numpy())
    assert 0 < kept.sum() < len(table)
    # another level, another filter: nothing about the classes is fixed in the loader
    middle = select_classes(table["wordnet_middle"], ["vertebrate"])
    np.testing.assert_array_equal(middle, (table["wordnet_middle"] == "vertebrate").to_numpy())
    with pytest.raises(ValueError, match=r"\['geological formation'\] are not classes of labels 'wordnet_general'; "
                                         r"available: \['animal', 'artifact', 'entity'\]"):  # fmt: skip
        select_classes(general, ["animal", "artifact", "geological formation"])
    with pytest.raises(ValueError, match=r"classes: each class once"):
        select_classes(general, ["animal", "animal"])
    with pytest.raises(ValueError, match=r"classes: expected at least one class"):
        select_classes(general, [])
    with pytest.raises(ValueError, match=r"no column 'wordnet'; its columns: \['source_split', 'wordnet_general'"):
        stimulus_labels(table, "wordnet")
    # missing labels are never selected
    assert select_classes(pd.Series(["animal", None, np.nan]), None).tolist() == [True, False, False]
