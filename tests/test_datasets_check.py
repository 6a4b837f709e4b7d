"""`check_dataset` opens what it checks: shapes against each other, dtypes, NaN counts, sizes against headers.

Each test builds a fixture in the real format, checks that it passes, corrupts one file
and checks that exactly that file is reported, with the reason.
"""

import json
import re

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from dataset_fixtures import (
    N_FS,
    write_algonauts_subject,
    write_bold5000,
    write_kay_nma,
    write_kay_vim1,
    write_nsd,
    write_nsd_coco,
    write_things,
)
from scipy.io import savemat

from scene2brain.data.datasets import DATASETS, DatasetFileError, check_dataset

FMRI = "subj01/training_split/training_fmri/lh_training_fmri.npy"


def _bad(report) -> dict[str, str]:
    return {check.path: check.status for check in report if not check.ok}


@pytest.fixture
def algonauts(tmp_path):
    write_algonauts_subject(tmp_path, 1, n_train=12, n_vertices=(30, 40))
    return tmp_path


def test_an_intact_algonauts_copy_passes_with_every_file_opened(algonauts):
    report = check_dataset("algonauts2023", algonauts)
    assert [c.path for c in report] == DATASETS["algonauts2023"].files(1)
    assert all(c.status == "ok" and c.note == "" for c in report), _bad(report)
    assert dict(report)[FMRI] == "ok"  # unpacks as (path, status)


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda p: np.save(p, np.zeros((11, 30), np.float32)), r"of shape \(12, 30\), found \(11, 30\)"),  # rows
        (lambda p: np.save(p, np.zeros((12, 29), np.float32)), r"training images x mask vertices.*found \(12, 29\)"),
        (lambda p: np.save(p, np.zeros((12, 30), np.int64)), r"dtype kind 'f', found dtype int64"),
        (lambda p: np.save(p, np.full((12, 30), np.nan, np.float32)), r"every value .* is NaN or inf \(360 NaN"),
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), r"truncated: its header says shape \(12, 30\) float32"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 8), r"8 bytes more than its header says"),
        (lambda p: p.write_text("not an array"), r"could not be read as \.npy"),
    ],
    ids=["rows-vs-images", "columns-vs-mask", "dtype", "all-nan", "truncated", "too-long", "not-npy"],
)
def test_a_damaged_fmri_file_is_reported_with_the_reason(algonauts, corrupt, reason):
    corrupt(algonauts / FMRI)
    bad = _bad(check_dataset("algonauts2023", algonauts))
    assert list(bad) == [FMRI]
    assert bad[FMRI].startswith("malformed: ")
    assert re.search(reason, bad[FMRI]), bad[FMRI]


def test_labels_and_fmri_are_compared_with_the_mask(algonauts):
    mask = algonauts / "subj01/roi_masks/lh.all-vertices_fsaverage_space.npy"
    values = np.load(mask)
    values[np.flatnonzero(values == 0)[0]] = 1  # one more challenge vertex: 31
    np.save(mask, values)
    bad = _bad(check_dataset("algonauts2023", algonauts))
    assert "found (12, 30)" in bad[FMRI] and "(12, 31)" in bad[FMRI]
    labels = "subj01/roi_masks/lh.floc-faces_challenge_space.npy"
    assert "of shape (31,), found (30,)" in bad[labels]
    assert not any(path.startswith("subj01/roi_masks/rh.") for path in bad)


def test_a_broken_mask_is_reported_and_its_dependants_are_noted_not_compared(algonauts):
    mask = algonauts / "subj01/roi_masks/lh.all-vertices_fsaverage_space.npy"
    np.save(mask, np.ones(1000, dtype=int))
    report = {c.path: c for c in check_dataset("algonauts2023", algonauts)}
    assert report[mask.relative_to(algonauts).as_posix()].status.startswith("malformed: expected the all-vertices mask")
    assert report[FMRI].ok and "not compared with" in report[FMRI].note


def test_nan_responses_are_counted_in_a_note(algonauts):
    fmri = np.load(algonauts / FMRI)
    fmri[[1, 4], 3] = np.nan
    fmri[2, 7] = np.inf
    np.save(algonauts / FMRI, fmri)
    check = {c.path: c for c in check_dataset("algonauts2023", algonauts)}[FMRI]
    assert check.ok
    assert check.note == "2 NaN and 1 inf values in 2 of 30 vertices (3 of 12 images)"


def test_image_folders_are_opened(algonauts):
    folder = algonauts / "subj01/training_split/training_images"
    image, truncated = sorted(folder.iterdir())[3:5]
    image.write_text("not a png")
    truncated.write_bytes(truncated.read_bytes()[:-40])  # header intact: Pillow's verify() alone accepts some of these
    bad = _bad(check_dataset("algonauts2023", algonauts))
    assert list(bad) == ["subj01/training_split/training_images/"]
    message = bad["subj01/training_split/training_images/"]
    assert "2 of 12 images are not readable" in message
    assert image.name in message and truncated.name in message


def test_a_missing_root_is_one_error(tmp_path):
    for name in ("algonauts2023", "nsd", "kay2008", "kay2008-nma", "things-fmri", "bold5000", "coco"):
        with pytest.raises(DatasetFileError, match=r"nowhere: missing; expected the root folder of a copy of") as info:
            check_dataset(name, tmp_path / "nowhere")
        assert "\n" not in str(info.value)
    (tmp_path / "file").write_text("")
    with pytest.raises(DatasetFileError, match=r"file: a file, not a folder"):
        check_dataset("nsd", tmp_path / "file")


def test_nsd_sessions_masks_and_brick_are_opened(tmp_path):
    write_nsd(tmp_path, n_sessions=2, n_per=10)
    base = "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    report = {c.path: c for c in check_dataset("nsd", tmp_path)}
    written = [p for p, c in report.items() if not (p.startswith(base) and "session" in p and int(p[-6:-4]) > 2)]
    assert all(report[p].status == "ok" for p in written), {p: report[p].status for p in written}
    assert report[f"{base}/lh.betas_session03.mgh"].status == "missing"

    session = tmp_path / base / "lh.betas_session02.mgh"
    session.write_bytes(session.read_bytes()[: len(session.read_bytes()) // 2])
    mask = tmp_path / "nsddata/freesurfer/fsaverage/label/rh.nsdgeneral.mgz"
    nib.save(nib.MGHImage(np.ones((100, 1, 1), np.float32), np.eye(4)), mask)
    first = tmp_path / base / "lh.betas_session01.mgh"
    betas = nib.load(first, mmap=False).get_fdata(dtype=np.float32)  # a copy: the file is rewritten
    vertices = np.flatnonzero(
        nib.load(tmp_path / "nsddata/freesurfer/fsaverage/label/lh.nsdgeneral.mgz").get_fdata().ravel() > 0
    )
    betas[vertices[0], 0, 0, :3] = np.nan
    betas[np.flatnonzero(np.isin(np.arange(N_FS), vertices, invert=True))[0]] = np.nan  # outside the mask: not counted
    nib.save(nib.MGHImage(betas, np.eye(4)), first)
    report = {c.path: c for c in check_dataset("nsd", tmp_path)}
    assert report[f"{base}/lh.betas_session02.mgh"].status.startswith("malformed: truncated: its header says shape")
    assert (
        "expected the nsdgeneral mask of shape (163842, 1, 1), found (100, 1, 1)"
        in report[mask.relative_to(tmp_path).as_posix()].status
    )
    assert (
        report[f"{base}/lh.betas_session01.mgh"].note
        == "3 NaN and 0 inf values in 1 of 15 nsdgeneral vertices (3 of 10 trials)"
    )
    assert "not compared with" in report[f"{base}/rh.betas_session01.mgh"].note

    betas[vertices] = np.nan
    nib.save(nib.MGHImage(betas, np.eye(4)), first)
    status = dict(check_dataset("nsd", tmp_path))[f"{base}/lh.betas_session01.mgh"]
    assert status.startswith("malformed: every value of the betas at the mask's vertices is NaN")


def test_nsd_brick_and_trial_counts_are_compared(tmp_path):
    write_nsd(tmp_path, n_sessions=2, n_per=10)
    base = "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    nib.save(nib.MGHImage(np.zeros((N_FS, 1, 1, 9), np.float32), np.eye(4)), tmp_path / base / "rh.betas_session02.mgh")
    with h5py.File(tmp_path / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "w") as f:
        f.create_dataset("imgBrick", data=np.zeros((5, 6, 6, 3), np.uint8))
    bad = _bad(check_dataset("nsd", tmp_path))
    assert "9 trials, but lh.betas_session01.mgh holds 10" in bad[f"{base}/rh.betas_session02.mgh"]
    assert (
        "imgBrick holds 5 images, the design needs 73k ids up to" in bad["nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"]
    )


def test_kay_vim1_shapes_against_the_stimuli_and_nan_counts(tmp_path):
    write_kay_vim1(tmp_path, n_train=14, n_test=6, n_voxels=25)
    report = {c.path: c for c in check_dataset("kay2008", tmp_path)}
    assert report["EstimatedResponses.mat"].ok and report["Stimuli.mat"].ok
    assert report["EstimatedResponses.mat"].note == "2 NaN and 0 inf values in 2 of 25 voxels (2 of 20 images)"
    savemat(tmp_path / "Stimuli.mat", {"stimTrn": np.zeros((13, 16, 16)), "stimVal": np.zeros((6, 16, 16))})
    bad = _bad(check_dataset("kay2008", tmp_path))
    assert list(bad) == ["EstimatedResponses.mat"]
    assert (
        "dataTrnS1 (stimTrn images x voxels through HDF5) of shape (13, 'any'), found (14, 25)"
        in bad["EstimatedResponses.mat"]
    )


def test_kay_nma_archive_members_are_checked(tmp_path):
    dat = write_kay_nma(tmp_path)
    assert all(c.ok for c in check_dataset("kay2008-nma", tmp_path))
    np.savez(tmp_path / "kay_images.npz", **{**dat, "roi": dat["roi"][:-1]})
    assert (
        "roi (one code per voxel) of shape (30,), found (29,)"
        in dict(check_dataset("kay2008-nma", tmp_path))["kay_images.npz"]
    )
    np.savez(tmp_path / "kay_images.npz", **{**dat, "responses": dat["responses"].astype(np.int64)})
    assert (
        "expected responses of dtype kind 'f', found int64"
        in _bad(check_dataset("kay2008-nma", tmp_path))["kay_images.npz"]
    )
    np.savez(tmp_path / "kay_images.npz", **{**dat, "responses_test": np.full((6, 30), np.nan)})
    note = {c.path: c for c in check_dataset("kay2008-nma", tmp_path)}["kay_images.npz"].note
    assert note == "180 NaN and 0 inf values in 30 of 30 voxels (6 of 20 images)"
    archive = tmp_path / "kay_images.npz"
    archive.write_bytes(archive.read_bytes()[:-2000])
    bad = _bad(check_dataset("kay2008-nma", tmp_path))
    assert bad["kay_images.npz"].startswith("malformed: could not be read as .npz")
    assert (
        "not compared with kay_images.npz"
        in {c.path: c for c in check_dataset("kay2008-nma", tmp_path)}["kay_labels.npy"].note
    )
    np.save(tmp_path / "kay_labels.npy", np.zeros((4, 3), dtype="<U5"))
    np.savez(tmp_path / "kay_images.npz", **dat)
    assert "of shape (4, 14), found (4, 3)" in _bad(check_dataset("kay2008-nma", tmp_path))["kay_labels.npy"]


def test_things_response_table_against_the_metadata(tmp_path):
    write_things(tmp_path, n_voxels=9)
    report = check_dataset("things-fmri", tmp_path)
    assert all(c.ok and not c.note for c in report), _bad(report)
    voxels = pd.read_csv(tmp_path / "sub-01_VoxelMetadata.csv")
    voxels.iloc[:-1].to_csv(tmp_path / "sub-01_VoxelMetadata.csv", index=False)
    bad = _bad(check_dataset("things-fmri", tmp_path))
    assert list(bad) == ["sub-01_ResponseData.h5"]
    assert "voxel_id rows (9) differ from sub-01_VoxelMetadata.csv (8 rows" in bad["sub-01_ResponseData.h5"]
    voxels.to_csv(tmp_path / "sub-01_VoxelMetadata.csv", index=False)
    trials = pd.read_csv(tmp_path / "sub-01_StimulusMetadata.csv")
    trials.iloc[:-2].to_csv(tmp_path / "sub-01_StimulusMetadata.csv", index=False)
    assert (
        "13 trial columns, but sub-01_StimulusMetadata.csv lists 11 trials"
        in _bad(check_dataset("things-fmri", tmp_path))["sub-01_ResponseData.h5"]
    )


def test_bold5000_rois_against_the_stimulus_list(tmp_path):
    truth = write_bold5000(tmp_path)
    assert all(c.ok for c in check_dataset("bold5000", tmp_path))
    lists = tmp_path / "ROIs/stim_lists/CSI01_stim_lists.txt"
    lists.write_text("\n".join([*truth["names"], "extra.jpg"]) + "\n")
    bad = _bad(check_dataset("bold5000", tmp_path))
    assert list(bad) == ["ROIs/CSI1/mat/CSI1_ROIs_TR34.mat"]
    assert (
        "LHEarlyVis should be (n_trials=8, n_voxels) to match CSI01_stim_lists.txt, found (7, 5)"
        in bad["ROIs/CSI1/mat/CSI1_ROIs_TR34.mat"]
    )
    lists.write_text("\n".join(truth["names"]) + "\n")
    rois = {**truth["rois"], "LHOPA": np.full((7, 2), np.nan), "RHOPA": np.full((7, 2), np.nan)}
    savemat(tmp_path / "ROIs/CSI1/mat/CSI1_ROIs_TR34.mat", rois)
    note = {c.path: c for c in check_dataset("bold5000", tmp_path)}["ROIs/CSI1/mat/CSI1_ROIs_TR34.mat"].note
    assert note == "28 NaN and 0 inf values in 4 of 32 voxels (7 of 7 trials)"


def test_coco_files_cut_off_or_without_keys_are_malformed(tmp_path):
    write_nsd(tmp_path)
    folder = write_nsd_coco(tmp_path)
    assert all(c.ok for c in check_dataset("coco", folder))
    train = folder / "instances_train2017.json"
    train.write_bytes(train.read_bytes()[:-10])
    val = folder / "instances_val2017.json"
    data = json.loads(val.read_text())
    del data["categories"]
    val.write_text(json.dumps(data))
    bad = _bad(check_dataset("coco", folder))
    assert "not a complete JSON object" in bad["instances_train2017.json"]
    assert "keys ['categories'] missing" in bad["instances_val2017.json"]


def test_nan_policy_raise_drop_allow_on_algonauts(algonauts):
    from scene2brain.data.datasets import load_algonauts2023

    fmri = np.load(algonauts / FMRI)
    fmri[[0, 5], 2] = np.nan
    fmri[3, 9] = np.nan
    np.save(algonauts / FMRI, fmri)
    with pytest.raises(DatasetFileError, match=r"lh_training_fmri\.npy: 3 NaN and 0 inf values in 2 of 30 vertices"):
        load_algonauts2023(algonauts, 1)  # the default names the file, the counts and the option
    with pytest.warns(UserWarning, match=r"2 of 70 voxels have NaN responses and were left out"):
        exp = load_algonauts2023(algonauts, 1, nan_policy="drop")
    assert exp.responses.n_voxels == 68 and np.isfinite(exp.responses.data).all()
    vertices = np.flatnonzero(np.load(algonauts / "subj01/roi_masks/lh.all-vertices_fsaverage_space.npy"))
    dropped = exp.metadata["dropped_voxels"]
    assert dropped == {"column": [2, 9], "hemisphere": ["lh", "lh"], "vertex": vertices[[2, 9]].tolist()}
    assert exp.metadata["n_nan_voxels"] == 2 and exp.metadata["n_vertices"] == {"lh": 30, "rh": 40}
    assert not np.isin(vertices[[2, 9]], exp.voxels["vertex"]).any()
    np.testing.assert_array_equal(exp.responses.data[:, :28], np.delete(fmri, [2, 9], axis=1))
    kept = load_algonauts2023(algonauts, 1, nan_policy="allow")
    assert kept.responses.n_voxels == 70 and np.isnan(kept.responses.data).sum() == 3
    with pytest.raises(ValueError, match=r"nan_policy: expected one of \('raise', 'drop', 'allow'\), got 'zero'"):
        load_algonauts2023(algonauts, 1, nan_policy="zero")
    np.save(algonauts / FMRI, np.full_like(fmri, np.nan))
    with pytest.raises(DatasetFileError, match=r"lh_training_fmri\.npy: every value"):
        load_algonauts2023(algonauts, 1, nan_policy="drop")  # a damaged file is refused under every policy


def test_nan_policy_on_nsd_things_bold5000(tmp_path):
    from scene2brain.data.datasets import load_bold5000, load_nsd, load_things_fmri

    write_nsd(tmp_path / "nsd", n_sessions=2, n_per=10)
    base = tmp_path / "nsd/nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    mask = nib.load(tmp_path / "nsd/nsddata/freesurfer/fsaverage/label/rh.nsdgeneral.mgz").get_fdata().ravel() > 0
    betas = nib.load(base / "rh.betas_session02.mgh", mmap=False).get_fdata(dtype=np.float32)
    betas[np.flatnonzero(mask)[4], 0, 0, 1] = np.nan
    nib.save(nib.MGHImage(betas, np.eye(4)), base / "rh.betas_session02.mgh")
    with pytest.raises(DatasetFileError, match=r"rh\.betas_session02\.mgh: 1 NaN .* in 1 of 15 vertices"):
        load_nsd(tmp_path / "nsd", 1, sessions=[1, 2])
    with pytest.warns(UserWarning, match="1 of 30 voxels"):
        exp = load_nsd(tmp_path / "nsd", 1, sessions=[1, 2], nan_policy="drop")
    assert exp.responses.n_voxels == 29 and exp.metadata["dropped_voxels"]["column"] == [15 + 4]
    assert exp.metadata["dropped_voxels"]["vertex"] == [int(np.flatnonzero(mask)[4])]
    allowed = load_nsd(tmp_path / "nsd", 1, sessions=[1, 2], nan_policy="allow")
    assert np.isnan(allowed.responses.data).sum() == 1  # z-scoring ignored the NaN, it did not spread
    assert np.isfinite(allowed.responses.data[10:, 19]).sum() == 9

    truth = write_things(tmp_path, n_voxels=9)
    values = truth["values"].copy()
    values[3, 0] = np.nan
    table = pd.DataFrame(values, columns=[str(i) for i in range(values.shape[1])])
    table.insert(0, "voxel_id", truth["voxels"]["voxel_id"])
    table.to_hdf(tmp_path / "sub-01_ResponseData.h5", key="ResponseData")
    with pytest.raises(DatasetFileError, match=r"sub-01_ResponseData\.h5: 1 NaN"):
        load_things_fmri(tmp_path, 1, include_catch=True)
    with pytest.warns(UserWarning):
        exp = load_things_fmri(tmp_path, 1, include_catch=True, nan_policy="drop")
    assert exp.metadata["dropped_voxels"] == {"column": [3], "voxel_id": [1003]}

    bold = write_bold5000(tmp_path / "bold")
    savemat(tmp_path / "bold/ROIs/CSI1/mat/CSI1_ROIs_TR34.mat", {**bold["rois"], "RHRSC": np.full((7, 2), np.nan)})
    with pytest.raises(DatasetFileError, match=r"CSI1_ROIs_TR34\.mat: 14 NaN .* in 2 of 32 voxels"):
        load_bold5000(tmp_path / "bold")
    with pytest.warns(UserWarning):
        exp = load_bold5000(tmp_path / "bold", nan_policy="drop")
    assert exp.metadata["dropped_voxels"]["roi"] == ["RSC", "RSC"] and exp.responses.n_voxels == 30


def test_the_run_configuration_can_pass_nan_policy():
    """`[dataset] options` are bound to the loader's signature: every experiment loader takes nan_policy."""
    import inspect

    for info in DATASETS.values():
        if info.load is not None:
            inspect.signature(info.load).bind("root", 1, nan_policy="drop")
