import numpy as np
import pandas as pd
import pytest

from scene2brain.data import Experiment, Responses, Stimuli, load_experiment, save_experiment


def test_stimuli_rejects_duplicate_ids():
    with pytest.raises(ValueError, match=r"stimulus_id must be unique.*'b'"):
        Stimuli(pd.DataFrame({"stimulus_id": ["a", "b", "b"]}))


def test_stimuli_requires_id_column_and_matching_images():
    with pytest.raises(ValueError, match="missing column 'stimulus_id'"):
        Stimuli(pd.DataFrame({"id": ["a"]}))
    with pytest.raises(ValueError, match="expected 2 images"):
        Stimuli(pd.DataFrame({"stimulus_id": ["a", "b"]}), np.zeros((3, 4, 4), np.uint8))


def test_stimuli_lazy_images_keep_requested_order():
    images = np.arange(5)[:, None, None] * np.ones((5, 2, 2), np.uint8)
    stim = Stimuli(pd.DataFrame({"stimulus_id": list("abcde")}), images)
    np.testing.assert_array_equal(stim.load_images([3, 0, 4])[:, 0, 0], [3, 0, 4])
    np.testing.assert_array_equal(stim.subset([4, 1]).load_images()[:, 0, 0], [4, 1])


def test_responses_rejects_wrong_dtype():
    with pytest.raises(TypeError, match="expected dtype float32, got float64"):
        Responses(np.zeros((3, 2)), np.arange(3))
    with pytest.raises(TypeError, match="1-D integer array"):
        Responses(np.zeros((3, 2), np.float32), np.array([0.0, 1.0, 2.0]))


def test_responses_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"one entry per trial \(3 trials\), got 2"):
        Responses(np.zeros((3, 2), np.float32), np.arange(2))
    with pytest.raises(ValueError, match="voxel table: expected 2 rows, got 3"):
        Responses(np.zeros((3, 2), np.float32), np.arange(3), pd.DataFrame({"roi": ["a", "b", "c"]}))
    with pytest.raises(ValueError, match="2-D array"):
        Responses(np.zeros(3, np.float32), np.arange(3))


def test_responses_nan_policy():
    data = np.zeros((3, 4), np.float32)
    data[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 voxels contain NaN.*voxel 2"):
        Responses(data, np.arange(3))
    assert np.isnan(Responses(data, np.arange(3), nan_policy="allow").data).sum() == 1
    with pytest.raises(ValueError, match="nan_policy"):
        Responses(data, np.arange(3), nan_policy="drop")


def test_responses_rejects_bad_hemisphere():
    with pytest.raises(ValueError, match=r"'lh' or 'rh'.*'left'"):
        Responses(np.zeros((2, 2), np.float32), np.arange(2), pd.DataFrame({"hemisphere": ["lh", "left"]}))


def test_experiment_rejects_overlapping_splits(small_experiment):
    e = small_experiment
    with pytest.raises(ValueError, match="splits 'train' and 'test' overlap in 1 stimuli"):
        Experiment("s", e.stimuli, e.responses, {"train": [0, 1, 2], "test": [2, 4]})


def test_experiment_rejects_out_of_range_indices(small_experiment):
    e = small_experiment
    with pytest.raises(ValueError, match=r"split 'test': stimulus positions must lie in \[0, 6\)"):
        Experiment("s", e.stimuli, e.responses, {"test": [4, 6]})
    bad = Responses(e.responses.data, np.array([0, 1, 2, 3, 4, 5, 4, 5, 4, 9]))
    with pytest.raises(ValueError, match="index 9 is out of range for 6 stimuli"):
        Experiment("s", e.stimuli, bad)


def test_average_repeats_matches_hand_computation(small_experiment):
    e = small_experiment
    avg = e.average_repeats().responses
    np.testing.assert_array_equal(avg.trial_stimulus, np.arange(6))
    d = e.responses.data.astype(np.float64)
    np.testing.assert_allclose(avg.data[4], d[[4, 6, 8]].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(avg.data[0], d[0], rtol=1e-6)
    _, counts = e.responses.repeat_counts()
    np.testing.assert_array_equal(counts, [1, 1, 1, 1, 3, 3])


def test_select_rois_and_split(small_experiment):
    e = small_experiment
    hv = e.select_rois("HV")
    assert list(hv.voxels["roi"]) == ["HV", "HV"]
    np.testing.assert_array_equal(hv.responses.data, e.responses.data[:, 2:4])
    with pytest.raises(ValueError, match=r"ROI labels \['V9'\] not found"):
        e.select_rois("V9")
    test = e.select_split("test")
    assert list(test.stimuli.ids) == ["s4", "s5"]
    np.testing.assert_array_equal(test.responses.trial_stimulus, [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(test.responses.data, e.responses.data[4:])
    np.testing.assert_array_equal(test.stimuli.load_images(), e.stimuli.load_images([4, 5]))
    with pytest.raises(KeyError, match="split 'val' not found"):
        e.select_split("val")


def test_zscore_uses_training_trials_only(small_experiment):
    e = small_experiment
    z = e.zscore("train").responses.data.astype(np.float64)
    train = e.responses.data[:4].astype(np.float64)
    np.testing.assert_allclose(z[:4].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(z[:4].std(axis=0), 1, atol=1e-5)
    expected_test = (e.responses.data[4:] - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(z[4:], expected_test, rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_is_exact(small_experiment, tmp_path):
    e = small_experiment
    path = save_experiment(e, tmp_path / "exp")
    back = load_experiment(path)
    assert back.subject == e.subject and back.metadata == e.metadata
    np.testing.assert_array_equal(back.responses.data, e.responses.data)
    assert back.responses.data.dtype == np.float32
    np.testing.assert_array_equal(back.responses.trial_stimulus, e.responses.trial_stimulus)
    pd.testing.assert_frame_equal(back.stimuli.table, e.stimuli.table)
    pd.testing.assert_frame_equal(back.voxels, e.voxels)
    assert back.splits.keys() == e.splits.keys()
    for name in e.splits:
        np.testing.assert_array_equal(back.splits[name], e.splits[name])
    np.testing.assert_array_equal(back.stimuli.load_images(), e.stimuli.load_images())


def test_failed_save_keeps_previous_version(small_experiment, tmp_path, monkeypatch):
    e = small_experiment
    path = save_experiment(e, tmp_path / "exp")
    original = e.responses.data.copy()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    changed = Experiment(e.subject, e.stimuli, Responses(original + 1, e.responses.trial_stimulus, e.voxels), e.splits)
    with pytest.raises(OSError, match="disk full"):
        save_experiment(changed, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_experiment(path).responses.data, original)
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]  # no temporary folder left behind


def test_load_reports_missing_header(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"experiment.json is missing"):
        load_experiment(tmp_path)
