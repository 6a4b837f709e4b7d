"""Algonauts-style score tables, checked against the challenge devkit's per-vertex loop."""

import numpy as np
import pytest
from scipy import stats

from scene2brain.evaluation import noise_normalised_accuracy, pearson_r, summarise_scores


def _devkit_vertex_scores(bio, pred, nc):
    """Per-vertex scores as the Algonauts 2023 devkit's 03_test_encoding.py computes them, in percent.

    scipy's Pearson r vertex by vertex; negative correlations set to 0 and squared into
    r2; noise ceilings (fractions, as the devkit stores them) of 0 set to 1e-14;
    ``r2 / noise_ceiling * 100``; values above 100 set to 100.
    """
    correlation = np.array([stats.pearsonr(bio[:, v], pred[:, v])[0] for v in range(bio.shape[1])])
    correlation[correlation < 0] = 0
    r2 = correlation**2
    noise_ceiling = np.array(nc, dtype=float)
    noise_ceiling[np.argwhere(noise_ceiling == 0)] = 1e-14
    scores = np.divide(r2, noise_ceiling) * 100
    scores[scores > 100] = 100
    return scores


def _fixture():
    rng = np.random.default_rng(0)
    data = {}
    for subject in ("subj01", "subj02"):
        for hemi, n_vert in (("lh", 40), ("rh", 30)):
            bio = rng.standard_normal((50, n_vert))
            pred = 0.6 * bio + rng.standard_normal((50, n_vert))
            pred[:, :3] = -bio[:, :3]  # negative r -> 0
            nc = rng.uniform(0.05, 0.9, n_vert)
            nc[3] = 0.0  # guarded -> capped at 100
            roi = rng.integers(0, 3, n_vert)  # 0 = outside any ROI, 1 = V1v, 2 = FFA-1
            data[subject, hemi] = (bio, pred, nc, roi)
    return data


def test_leaderboard_and_roi_means_reproduce_the_devkit():
    data = _fixture()
    ours, subject, hemisphere, roi = [], [], [], []
    devkit = {}
    for (subj, hemi), (bio, pred, nc, r) in data.items():
        ours.append(noise_normalised_accuracy(pearson_r(bio, pred), nc))
        devkit[subj, hemi] = _devkit_vertex_scores(bio, pred, nc)
        subject += [subj] * len(nc)
        hemisphere += [hemi] * len(nc)
        roi.append(r)
    scores, roi = np.concatenate(ours), np.concatenate(roi)
    np.testing.assert_allclose(scores, np.concatenate(list(devkit.values())), rtol=1e-10)
    table = summarise_scores(
        scores, subject=subject, hemisphere=hemisphere, rois={"V1v": roi == 1, "FFA-1": roi == 2}
    ).set_index(["grouping", "roi", "subject", "hemisphere"])

    # leaderboard: mean over all vertices of all subjects and hemispheres
    everything = np.concatenate(list(devkit.values()))
    assert table.loc[("all", "all", "all", "all"), "mean"] == pytest.approx(everything.mean())
    assert table.loc[("all", "all", "all", "all"), "median"] == pytest.approx(np.median(everything))
    for (subj, hemi), vertex_scores in devkit.items():
        row = table.loc[("subject/hemisphere", "all", subj, hemi)]
        assert row["mean"] == pytest.approx(vertex_scores.mean()) and row["n"] == len(vertex_scores)
    # per ROI: all subjects and hemispheres appended together
    for code, name in ((1, "V1v"), (2, "FFA-1")):
        pooled = np.concatenate([devkit[k][data[k][3] == code] for k in data])
        assert table.loc[("roi", name, "all", "all"), "mean"] == pytest.approx(pooled.mean())
        assert table.loc[("roi", name, "all", "all"), "median"] == pytest.approx(np.median(pooled))
        per_subject = np.concatenate([devkit[k][data[k][3] == code] for k in data if k[0] == "subj02"])
        assert table.loc[("roi/subject", name, "subj02", "all"), "mean"] == pytest.approx(per_subject.mean())


def test_nan_scores_are_counted_and_left_out():
    t = summarise_scores(np.array([1.0, np.nan, 3.0]), rois={"A": np.array([True, True, False])})
    row = t[t["roi"] == "A"].iloc[0]
    assert (row["n"], row["n_nan"], row["mean"]) == (1, 1, 1.0)
    assert t[t["grouping"] == "all"].iloc[0]["mean"] == pytest.approx(2.0)


def test_empty_roi_gets_a_row_and_missing_labels_skip_groupings():
    t = summarise_scores(np.ones(4), rois={"mTL-bodies": np.zeros(4, dtype=bool)})
    assert set(t["grouping"]) == {"all", "roi"}  # no subject/hemisphere labels given
    empty = t[t["roi"] == "mTL-bodies"].iloc[0]
    assert empty["n"] == 0 and np.isnan(empty["mean"])


def test_summary_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"subject: expected one label per score \(3,\)"):
        summarise_scores(np.ones(3), subject=["a", "b"])
    with pytest.raises(ValueError, match=r"rois\['V1'\]: expected a boolean mask"):
        summarise_scores(np.ones(3), rois={"V1": np.array([1, 0, 1])})
    with pytest.raises(ValueError, match="unknown key"):
        summarise_scores(np.ones(3), groupings=[("voxel",)])
