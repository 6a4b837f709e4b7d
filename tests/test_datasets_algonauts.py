"""Algonauts 2023 loader on format-faithful fixtures."""

import numpy as np
import pytest
from dataset_fixtures import N_FS, write_algonauts_subject

from scene2brain.data.datasets import (
    DatasetFileError,
    challenge_to_fsaverage,
    devkit_split,
    fsaverage_to_challenge,
    load_algonauts2023,
    write_submission,
)


@pytest.fixture
def algonauts(tmp_path):
    truths = {
        1: write_algonauts_subject(tmp_path, 1, n_vertices=(30, 40)),
        6: write_algonauts_subject(tmp_path, 6, n_vertices=(27, 35)),  # subj06 has fewer vertices
    }
    return tmp_path, truths


def test_rows_columns_and_ids_are_the_right_ones(algonauts):
    root, truths = algonauts
    exp = load_algonauts2023(root, "subj01")
    truth = truths[1]
    np.testing.assert_array_equal(exp.responses.data, np.hstack([truth["fmri"]["lh"], truth["fmri"]["rh"]]))
    vox = exp.voxels
    assert (vox["hemisphere"] == "lh").sum() == 30 and (vox["hemisphere"] == "rh").sum() == 40
    np.testing.assert_array_equal(vox.loc[vox["hemisphere"] == "rh", "vertex"], truth["vertices"]["rh"])
    stim = exp.stimuli.table
    np.testing.assert_array_equal(stim["nsd_id"][:12], truth["train_ids"])  # 0-based 73k ids from the names
    np.testing.assert_array_equal(stim["nsd_id"][12:], truth["test_ids"])
    assert stim["image_index"][:12].tolist() == list(range(1, 13))
    # the image of row 5 is the file carrying that row's NSD id
    assert exp.stimuli.load_images([5])[0, 0, 0, 0] == truth["train_ids"][5] % 256
    assert exp.responses.trial_stimulus.tolist() == list(range(12))
    assert exp.metadata["n_vertices"] == {"lh": 30, "rh": 40}
    other = load_algonauts2023(root, 6, hemispheres=["rh"], roi_families=())
    assert other.responses.data.shape == (12, 35) and list(other.voxels.columns) == ["hemisphere", "vertex"]


def test_roi_labels_follow_the_mapping_and_zero_is_no_roi(algonauts):
    root, truths = algonauts
    exp = load_algonauts2023(root, 1)
    lh = exp.voxels[exp.voxels["hemisphere"] == "lh"]
    codes = truths[1]["roi"]["lh", "floc-faces"]
    names = {1: "OFA", 2: "FFA-1", 3: "FFA-2", 4: "mTL-faces", 5: "aTL-faces"}
    found = lh["floc-faces"]
    assert found.isna().tolist() == (codes == 0).tolist()  # label 0: outside every face ROI
    assert found[codes != 0].tolist() == [names[c] for c in codes[codes != 0]]
    ffa = exp.select_rois("FFA-1", family="floc-faces")
    assert ffa.responses.n_voxels == sum((truths[1]["roi"][h, "floc-faces"] == 2).sum() for h in ("lh", "rh"))


def test_devkit_split_is_the_tutorials(algonauts):
    root, _ = algonauts
    exp = load_algonauts2023(root, 1)
    # the tutorial: np.random.seed(5); shuffle arange(n); first round(n / 100 * 90) train
    np.random.seed(5)  # noqa: NPY002 (the devkit's legacy global seeding, reproduced on purpose)
    idxs = np.arange(12)
    np.random.shuffle(idxs)  # noqa: NPY002
    n = int(np.round(12 / 100 * 90))
    np.testing.assert_array_equal(exp.splits["train"], idxs[:n])
    np.testing.assert_array_equal(exp.splits["val"], idxs[n:])
    np.testing.assert_array_equal(exp.splits["test"], np.arange(12, 16))
    fit, val = devkit_split(9841)
    assert (len(fit), len(val)) == (8857, 984)  # subject 1's published counts
    assert set(load_algonauts2023(root, 1, split="all").splits) == {"train", "test"}
    mine = load_algonauts2023(root, 1, split={"fit": np.arange(8), "holdout": np.arange(8, 12)})
    assert mine.splits["holdout"].tolist() == [8, 9, 10, 11] and len(mine.splits["test"]) == 4
    with pytest.raises(ValueError, match="overlap"):
        load_algonauts2023(root, 1, split={"a": [0, 1], "b": [1, 2]})


def test_surface_mapping_puts_each_value_on_its_vertex(algonauts):
    root, truths = algonauts
    exp = load_algonauts2023(root, 1, hemispheres=["lh"], roi_families=())
    vertices = exp.voxels["vertex"].to_numpy()
    values = np.arange(len(vertices), dtype=np.float32) + 1
    fs = challenge_to_fsaverage(values, vertices)
    assert fs.shape == (N_FS,)
    for k in (0, 7, len(vertices) - 1):
        assert fs[truths[1]["vertices"]["lh"][k]] == values[k]
    assert np.isnan(fs).sum() == N_FS - len(vertices)
    np.testing.assert_array_equal(fsaverage_to_challenge(fs, vertices), values)
    with pytest.raises(ValueError, match="expected 30 vertices"):
        challenge_to_fsaverage(values[:-1], vertices)


def test_submission_layout(algonauts, tmp_path):
    root, _ = algonauts
    exp = load_algonauts2023(root, 1)
    lh, rh = np.zeros((4, 30)), np.ones((4, 40))
    written = write_submission(tmp_path / "sub", 1, lh, rh, experiment=exp)
    assert [p.relative_to(tmp_path / "sub").as_posix() for p in written] == [
        "subj01/lh_pred_test.npy",
        "subj01/rh_pred_test.npy",
    ]
    back = np.load(written[1])
    assert back.dtype == np.float32 and back.shape == (4, 40)
    with pytest.raises(ValueError, match=r"rh: expected shape \(4, 40\)"):
        write_submission(tmp_path / "sub", 1, lh, rh[:, :39], experiment=exp)


def test_bad_files_get_errors_naming_them(algonauts):
    root, _ = algonauts
    fmri = root / "subj01" / "training_split" / "training_fmri" / "lh_training_fmri.npy"
    good = fmri.read_bytes()
    fmri.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(DatasetFileError, match=r"lh_training_fmri\.npy: truncated: its header says shape \(12, 30\)"):
        load_algonauts2023(root, 1)
    np.save(fmri, np.zeros((11, 30), np.float32))  # one row short
    with pytest.raises(DatasetFileError, match=r"fmri\.npy: expected training fMRI .* \(12, 30\), found \(11, 30\)"):
        load_algonauts2023(root, 1)
    fmri.unlink()
    with pytest.raises(DatasetFileError, match=r"lh_training_fmri\.npy: missing"):
        load_algonauts2023(root, 1)
    with pytest.raises(DatasetFileError, match=r"subj03: missing"):
        load_algonauts2023(root, 3)
    with pytest.raises(ValueError, match=r"subject: expected 1\.\.8"):
        load_algonauts2023(root, 9)
    image = next((root / "subj06" / "training_split" / "training_images").glob("train-0003_*.png"))
    image.unlink()
    with pytest.raises(DatasetFileError, match=r"counters must run 1\.\.11 without gaps"):
        load_algonauts2023(root, 6)
