"""NSD loader on a scaled-down tree in NSD's exact formats."""

import numpy as np
import pandas as pd
import pytest
from dataset_fixtures import write_nsd, write_nsd_coco

from scene2brain.data import load_experiment, save_experiment
from scene2brain.data.datasets import DatasetFileError
from scene2brain.data.datasets.nsd import load_nsd, read_expdesign, read_stim_info, trials_from_stim_info


@pytest.fixture(scope="module")
def nsd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsd")
    return root, write_nsd(root)


def test_design_indices_are_made_zero_based_once(nsd_root):
    root, truth = nsd_root
    design = read_expdesign(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    np.testing.assert_array_equal(design.trial_images(1), truth["trial_image"])
    np.testing.assert_array_equal(design.sharedix, truth["shared"])
    # the stimulus table's 1-based rep columns (0 = not shown) say the same as the design
    info = read_stim_info(root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv")
    assert info.loc[1, "cropBox"] == (0.0, 0.0, 0.125, 0.125)
    long = trials_from_stim_info(info, "subj01")
    first_three = pd.Series(truth["trial_image"]).groupby(truth["trial_image"]).head(3)
    np.testing.assert_array_equal(long["trial"], np.sort(first_three.index.to_numpy()))
    np.testing.assert_array_equal(long["nsd_id"], truth["trial_image"][long["trial"]])


def test_fsaverage_trials_images_and_rois(nsd_root):
    root, truth = nsd_root
    exp = load_nsd(root, 1, sessions=[1, 2], rois=["streams"], zscore_sessions=False)
    assert exp.responses.data.shape == (20, 30)
    expected = np.concatenate([np.hstack([truth["fs"]["lh", s], truth["fs"]["rh", s]]) for s in (1, 2)])
    np.testing.assert_allclose(exp.responses.data, expected)
    # every trial points at the image the design says was shown
    shown = exp.stimuli.table["nsd_id"].to_numpy()[exp.responses.trial_stimulus]
    np.testing.assert_array_equal(shown, truth["trial_image"][:20])
    # repeats are kept: a repeated image has several rows
    _, counts = exp.responses.repeat_counts()
    assert counts.max() >= 2
    # the lazy brick returns the right image for each stimulus
    ids = exp.stimuli.table["nsd_id"].to_numpy()
    np.testing.assert_array_equal(exp.stimuli.load_images([2, 0])[:, 0, 0, 0], ids[[2, 0]] % 256)
    vox = exp.voxels
    np.testing.assert_array_equal(vox.loc[vox.hemisphere == "rh", "vertex"], truth["fs_mask"]["rh"])
    np.testing.assert_allclose(vox.loc[vox.hemisphere == "lh", "ncsnr"], truth["fs", "ncsnr", "lh"])
    names = {1: "early", 2: "midventral", 3: "midlateral"}
    lh = vox.loc[vox.hemisphere == "lh", "streams"]
    codes = truth["streams"]["lh"]
    assert lh.isna().tolist() == (codes == 0).tolist()
    assert lh[codes != 0].tolist() == [names[c] for c in codes[codes != 0]]
    assert exp.stimuli.table.loc[exp.splits["test"], "shared1000"].all()
    assert set(exp.stimuli.table.loc[exp.splits["test"], "nsd_id"]) <= set(truth["shared"])
    assert exp.stimuli.table["coco_id"].tolist() == (100000 + ids).tolist()


def test_a_saved_nsd_experiment_points_at_the_brick(nsd_root, tmp_path):
    root, _ = nsd_root
    exp = load_nsd(root, 1, sessions=[1])
    path = save_experiment(exp, tmp_path / "exp")
    assert not (path / "arrays.zarr" / "images").exists()  # the brick is referenced, not copied
    back = load_experiment(path)
    np.testing.assert_array_equal(back.stimuli.load_images([3, 1, 3]), exp.stimuli.load_images([3, 1, 3]))
    assert back.stimuli.images.digest() == exp.stimuli.images.digest()
    np.testing.assert_array_equal(back.stimuli.subset([2, 0]).load_images(), exp.stimuli.load_images([2, 0]))


def test_betas_are_zscored_within_sessions_by_default(nsd_root):
    # NSD's ncsnr assumes betas z-scored per voxel within each session; so does the default
    root, truth = nsd_root
    exp = load_nsd(root, 1, sessions=[1, 2], hemispheres=["lh"])
    assert exp.metadata["zscored_per_session"] is True and exp.metadata["units"] == "z-scores per session"
    for session, rows in ((1, slice(0, 10)), (2, slice(10, 20))):
        block = exp.responses.data[rows].astype(np.float64)
        np.testing.assert_allclose(block.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(block.std(axis=0), 1, atol=1e-5)
        raw = truth["fs"]["lh", session].astype(np.float64)
        np.testing.assert_allclose(block, (raw - raw.mean(axis=0)) / raw.std(axis=0), atol=1e-5)
    # switchable: raw betas in percent BOLD change
    raw = load_nsd(root, 1, sessions=[1, 2], hemispheres=["lh"], zscore_sessions=False)
    assert raw.metadata["zscored_per_session"] is False and raw.metadata["units"] == "percent BOLD change"
    np.testing.assert_allclose(raw.responses.data, np.concatenate([truth["fs"]["lh", s] for s in (1, 2)]))


@pytest.mark.parametrize("fmt", ["nifti", "hdf5"])
def test_volume_betas_are_rescaled_and_axes_restored(nsd_root, fmt):
    root, truth = nsd_root
    exp = load_nsd(
        root, 1, sessions=[2], space="func1pt8mm", volume_format=fmt, rois=["prf-visualrois"], zscore_sessions=False
    )
    np.testing.assert_allclose(exp.responses.data, truth["vol", 2], rtol=1e-6)  # int16 / 300, in %BOLD
    assert exp.responses.data.dtype == np.float32
    ijk = np.argwhere(truth["vol_mask"])
    np.testing.assert_array_equal(exp.voxels[["i", "j", "k"]].to_numpy(), ijk)
    codes = truth["prf"]
    assert exp.voxels["prf-visualrois"][codes == 1].eq("V1v").all()
    shown = exp.stimuli.table["nsd_id"].to_numpy()[exp.responses.trial_stimulus]
    np.testing.assert_array_equal(shown, truth["trial_image"][10:20])  # session 2's trials


def test_nsd_errors_name_the_file(nsd_root, tmp_path):
    root, _ = nsd_root
    with pytest.raises(DatasetFileError, match=r"lh\.betas_session03\.mgh: missing"):
        load_nsd(root, 1, sessions=[3])
    with pytest.raises(ValueError, match=r"sessions: subject 4 has sessions 1\.\.30"):
        load_nsd(root, 4, sessions=[31])
    with pytest.raises(DatasetFileError, match="subj02/fsaverage/betas_fithrf_GLMdenoise_RR: missing"):
        load_nsd(root, 2)
    from scipy.io import savemat

    bad = tmp_path / "nsd_expdesign.mat"
    savemat(bad, {"masterordering": np.array([[0, 1, 2]]), "subjectim": np.ones((8, 3)), "sharedix": np.ones((1, 1))})
    with pytest.raises(DatasetFileError, match="masterordering must be 1-based"):
        read_expdesign(bad)


def _expected_coco_labels(nsd_id: int) -> tuple[str, str, set[str]]:
    """(person, main_supercategory, visible supercategories) of a fixture image, by its construction."""
    top_crop = nsd_id % 3 == 0  # the fixture's two crop boxes (see write_nsd_coco)
    return {
        0: ("person", "animal", {"person", "animal"}),
        1: ("non-person", "vehicle", {"vehicle"}),
        2: ("non-person", "none", set()),
        3: ("person", "person" if top_crop else "food", {"person", "food"}),
    }[nsd_id % 4]


def test_coco_labels_reach_the_stimulus_table(tmp_path):
    root = tmp_path / "nsd"
    root.mkdir()
    write_nsd(root, n_per=30, n_images=40)  # enough images for every case of write_nsd_coco and both crops
    write_nsd_coco(root)
    exp = load_nsd(
        root, 1, sessions=[1, 2], hemispheres=["lh"], coco_annotations="nsddata_stimuli/stimuli/nsd/annotations"
    )
    table = exp.stimuli.table
    supers = ["person", "vehicle", "animal", "food"]
    assert [c for c in table.columns if c.startswith("supercategory_")] == [f"supercategory_{s}" for s in supers]
    assert table["has_person"].dtype == bool
    for _, row in table.iterrows():
        person, main, visible = _expected_coco_labels(int(row["nsd_id"]))
        assert row["person"] == person and row["has_person"] == (person == "person"), row["nsd_id"]
        assert row["main_supercategory"] == main, row["nsd_id"]
        assert {s for s in supers if row[f"supercategory_{s}"]} == visible, row["nsd_id"]
    assert {n % 4 for n in table["nsd_id"]} == {0, 1, 2, 3}  # every case is exercised
    assert {n % 3 == 0 for n in table["nsd_id"] if n % 4 == 3} == {True, False}  # both crops of the cut person
    assert exp.metadata["coco_annotations"] == str(root / "nsddata_stimuli/stimuli/nsd/annotations")
    # a stricter visibility rule drops the half-visible person (only half its box is inside the side crop)
    folder = root / "nsddata_stimuli/stimuli/nsd/annotations"  # absolute this time
    strict = load_nsd(
        root, 1, sessions=[1], hemispheres=["lh"], coco_annotations=folder, coco_min_visible_fraction=0.6
    ).stimuli.table
    side_cut = strict[(strict["nsd_id"] % 4 == 3) & (strict["nsd_id"] % 3 != 0)]
    assert len(side_cut) and (side_cut["person"] == "non-person").all()
    # without the option, no label columns
    assert "person" not in load_nsd(root, 1, sessions=[1], hemispheres=["lh"]).stimuli.table


def test_coco_label_errors_name_what_is_missing(tmp_path, monkeypatch):
    import sys

    root = tmp_path / "nsd"
    root.mkdir()
    write_nsd(root)
    with pytest.raises(DatasetFileError, match=r"annotations: missing; expected the folder holding COCO 2017"):
        load_nsd(root, 1, sessions=[1], coco_annotations="annotations")
    (root / "annotations").mkdir()
    with pytest.raises(DatasetFileError, match=r"instances_(train|val)2017\.json: missing"):
        load_nsd(root, 1, sessions=[1], coco_annotations="annotations")
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    with pytest.raises(ImportError, match=r"load_nsd\(coco_annotations=...\) needs pycocotools: pip install"):
        load_nsd(root, 1, sessions=[1], coco_annotations="annotations")
