import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import r2_score as sk_r2

from scene2brain.decoding.metrics import batch_scores, confusion, decoding_metrics
from scene2brain.evaluation import (
    explained_variance,
    ncsnr_from_repeats,
    noise_ceiling_from_ncsnr,
    noise_normalised_accuracy,
    pearson_r,
    r2_score,
)
from scene2brain.evaluation.inference import bootstrap_ci, compare_predictions, permutation_test_correlation
from scene2brain.evaluation.metrics import r2_score_split
from scene2brain.evaluation.noise_ceiling import repeats_array, scores_with_ceiling, spearman_brown
from scene2brain.evaluation.partitioning import variance_partitioning
from scene2brain.utils.arrays import check_same_length, check_same_shape


def test_pearson_matches_scipy_per_column():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 7)), rng.standard_normal((50, 7))
    b[:, 0] += 3 * a[:, 0]
    expected = [stats.pearsonr(a[:, j], b[:, j])[0] for j in range(7)]
    np.testing.assert_allclose(pearson_r(a, b), expected, rtol=1e-12)
    assert pearson_r(a[:, 0], b[:, 0]).shape == (1,)


def test_pearson_constant_column_is_nan():
    a = np.column_stack([np.arange(5.0), np.ones(5)])
    r = pearson_r(a, np.column_stack([np.arange(5.0), np.arange(5.0)]))
    assert r[0] == pytest.approx(1.0) and np.isnan(r[1])


def test_r2_matches_sklearn_and_can_be_negative():
    rng = np.random.default_rng(1)
    y, p = rng.standard_normal((40, 4)), rng.standard_normal((40, 4))
    np.testing.assert_allclose(r2_score(y, p), sk_r2(y, p, multioutput="raw_values"), rtol=1e-12)
    assert (r2_score(y, p) < 0).all()
    assert np.isnan(r2_score(np.ones((5, 1)), np.arange(5.0)[:, None]))[0]


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"y_true of shape \(4, 2\) and y_pred of shape \(4, 3\)"):
        pearson_r(np.zeros((4, 2)), np.zeros((4, 3)))


def test_noise_ceiling_formula_hand_case():
    # ncsnr = 1, 3 trials: 1 / (1 + 1/3) = 0.75
    assert noise_ceiling_from_ncsnr(np.array([1.0]), 3)[0] == pytest.approx(0.75)
    # Algonauts repeat-weighted: counts (3, 3, 2, 1) -> norm = (1/3 + 1/3 + 1/2 + 1) / 4
    norm = (1 / 3 + 1 / 3 + 1 / 2 + 1) / 4
    assert noise_ceiling_from_ncsnr(np.array([2.0]), np.array([3, 3, 2, 1]))[0] == pytest.approx(4 / (4 + norm))


def test_ncsnr_from_repeats_recovers_known_snr():
    rng = np.random.default_rng(2)
    n_stim, reps = 3000, 3
    true = np.array([0.2, 0.5, 1.0, 2.0])
    signal = rng.standard_normal((n_stim, 4))
    trial_stimulus = np.repeat(np.arange(n_stim), reps)
    y = signal[trial_stimulus] + rng.standard_normal((n_stim * reps, 4)) / true
    est = ncsnr_from_repeats(y, trial_stimulus)
    np.testing.assert_allclose(est, true * signal.std(axis=0, ddof=1), rtol=0.1)


def test_ncsnr_needs_repeats():
    with pytest.raises(ValueError, match="no stimulus was shown more than once"):
        ncsnr_from_repeats(np.zeros((3, 2)), np.arange(3))


def _devkit_noise_ceiling(ncsnr, test_trials_all, test_unique_cond):
    """Noise ceiling as the Algonauts 2023 devkit prepares it (challenge_data_preparation.py).

    Counts the test images shown 1, 2 and 3 times, turns the counts into the
    repeat-weighted ``norm_term`` and returns ``ncsnr**2 / (ncsnr**2 + norm_term)``: a
    fraction of variance (the devkit stores it without a factor 100).
    """
    shown = {1: 0, 2: 0, 3: 0}
    for image in test_unique_cond:
        shown[int(np.sum(test_trials_all == image))] += 1
    norm_term = (shown[3] / 3 + shown[2] / 2 + shown[1] / 1) / (shown[3] + shown[2] + shown[1])
    return ncsnr**2 / (ncsnr**2 + norm_term)


def _devkit_accuracy(correlation, noise_ceiling):
    """Noise-normalised encoding accuracy in percent, the steps of the devkit's 03_test_encoding.py.

    Negative correlations set to 0, squared into r2; noise ceilings of 0 set to 1e-14;
    ``r2 / noise_ceiling * 100``; values above 100 set to 100.
    """
    correlation, noise_ceiling = np.array(correlation, dtype=float), np.array(noise_ceiling, dtype=float)
    correlation[correlation < 0] = 0
    r2 = correlation**2
    noise_ceiling[np.argwhere(noise_ceiling == 0)] = 1e-14
    accuracy = np.divide(r2, noise_ceiling) * 100
    accuracy[accuracy > 100] = 100
    return accuracy


def test_noise_normalised_accuracy_reproduces_devkit():
    # 40 test images: 25 shown three times, 8 twice, 7 once (the devkit's repeat-weighted case)
    images = np.arange(40)
    trials = np.concatenate([np.repeat(images[:25], 3), np.repeat(images[25:33], 2), images[33:]])
    ncsnr = np.array([0.0, 0.0, 0.3, 0.5, 0.8, 1.0, 1.3, 0.2, 2.0, 0.6])
    r = np.array([0.4, 0.0, 0.1, -0.3, 0.5, 0.95, 0.6, 0.4, 0.2, 0.45])
    # ours: fractions in, percent out
    nc = noise_ceiling_from_ncsnr(ncsnr, np.bincount(trials))
    ours = noise_normalised_accuracy(r, nc)
    devkit_nc = _devkit_noise_ceiling(ncsnr, trials, images)
    np.testing.assert_allclose(nc, devkit_nc, rtol=1e-12)
    np.testing.assert_allclose(ours, _devkit_accuracy(r, devkit_nc), rtol=1e-12)
    # the devkit's corner cases: NC = 0 scores 100 when r > 0 and 0 when r = 0; negative r
    # scores 0; r**2 above the ceiling is capped at 100
    assert ours[0] == 100.0 and ours[1] == 0.0 and ours[3] == 0.0 and ours[5] == 100.0
    assert 0 < ours[2] < 100 and 0 < ours[4] < 100
    assert noise_normalised_accuracy(np.array([0.5]), np.array([0.5]))[0] == pytest.approx(50.0)


def test_explained_variance_matches_sklearn_and_ignores_offsets():
    from sklearn.metrics import explained_variance_score

    rng = np.random.default_rng(3)
    y, p = rng.standard_normal((60, 5)), rng.standard_normal((60, 5))
    p[:, 0] = y[:, 0] + 10.0  # pure offset: explained variance 1, R^2 very negative
    expected = explained_variance_score(y, p, multioutput="raw_values", force_finite=False)
    np.testing.assert_allclose(explained_variance(y, p), expected, rtol=1e-12)
    assert explained_variance(y, p)[0] == pytest.approx(1.0)
    assert r2_score(y, p)[0] < -10


def test_nan_propagates_to_its_column_only():
    rng = np.random.default_rng(4)
    y, p = rng.standard_normal((30, 3)), rng.standard_normal((30, 3))
    y[5, 1] = np.nan
    for score in (pearson_r, r2_score, explained_variance):
        out = score(y, p)
        assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all(), score.__name__


def test_constant_prediction_gives_nan_r_but_defined_r2():
    y = np.arange(6.0)[:, None]
    p = np.full((6, 1), 2.5)
    assert np.isnan(pearson_r(y, p)[0])
    assert r2_score(y, p)[0] == pytest.approx(0.0)
    assert explained_variance(y, p)[0] == pytest.approx(0.0)
    assert np.isnan(explained_variance(np.ones((6, 1)), y))[0]


def test_float32_inputs_accumulate_in_float64():
    rng = np.random.default_rng(5)
    y = (1e4 + rng.standard_normal((20000, 2))).astype(np.float32)
    p = y + rng.standard_normal((20000, 2)).astype(np.float32)
    np.testing.assert_allclose(pearson_r(y, p), pearson_r(y.astype(np.float64), p.astype(np.float64)), rtol=1e-12)
    assert pearson_r(y, p).dtype == np.float64


# --- strict shapes: arrays that pair up are never broadcast ---------------------------------------------------


def test_noise_normalised_accuracy_refuses_a_ceiling_that_would_broadcast():
    r, ceiling = np.full(5, 0.5), np.full((5, 1), 0.5)
    assert np.broadcast_shapes(r.shape, ceiling.shape) == (5, 5)  # what used to come back
    message = r"r and noise_ceiling: expected the same shape, got r of shape \(5,\) and noise_ceiling of shape \(5, 1\)"
    with pytest.raises(ValueError, match=message):
        noise_normalised_accuracy(r, ceiling)
    with pytest.raises(ValueError, match=message):
        scores_with_ceiling(r, ceiling)
    with pytest.raises(ValueError, match=r"r of shape \(5,\) and noise_ceiling of shape \(4,\)"):
        noise_normalised_accuracy(r, np.full(4, 0.5))
    np.testing.assert_allclose(noise_normalised_accuracy(r, ceiling[:, 0]), np.full(5, 50.0))  # 100 * 0.25 / 0.5


@pytest.mark.parametrize("score", [pearson_r, r2_score, explained_variance])
def test_pairwise_scores_name_both_arguments_and_shapes(score):
    with pytest.raises(ValueError, match=r"y_true of shape \(6,\) and y_pred of shape \(6, 1\)"):
        score(np.arange(6.0), np.arange(6.0)[:, None])
    with pytest.raises(ValueError, match=r"y_true of shape \(6, 2\) and y_pred of shape \(5, 2\)"):
        score(np.zeros((6, 2)), np.zeros((5, 2)))


def test_inference_names_the_mismatched_prediction():
    rng = np.random.default_rng(0)
    y, a = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
    with pytest.raises(ValueError, match=r"y_true of shape \(8, 3\) and pred_b of shape \(7, 3\)"):
        compare_predictions(y, a, a[:7], n_resamples=10)
    with pytest.raises(ValueError, match=r"y_true of shape \(8, 3\) and pred_a of shape \(8, 1\)"):
        compare_predictions(y, a[:, :1], a, n_resamples=10)
    with pytest.raises(ValueError, match=r"y_true of shape \(8, 3\) and y_pred of shape \(8,\)"):
        bootstrap_ci(y, a[:, 0], n_bootstraps=10)
    with pytest.raises(ValueError, match=r"y_true of shape \(8, 3\) and y_pred of shape \(3,\)"):
        permutation_test_correlation(y, a[0], n_permutations=10)


def test_noise_ceiling_functions_refuse_mismatched_lengths_and_broadcasting():
    with pytest.raises(ValueError, match=r"responses of shape \(6, 2\) and trial_stimulus of shape \(5,\)"):
        ncsnr_from_repeats(np.zeros((6, 2)), np.array([0, 0, 1, 1, 2]))
    with pytest.raises(ValueError, match=r"expected shapes \(n_trials, n_voxels\) and \(n_trials,\)"):
        ncsnr_from_repeats(np.zeros((6, 2)), np.zeros((6, 1), int))
    with pytest.raises(ValueError, match=r"responses of shape \(4, 2\) and trial_stimulus of shape \(3,\)"):
        repeats_array(np.zeros((4, 2)), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match=r"reliability of shape \(3,\) and factor of shape \(3, 1\)"):
        spearman_brown(np.full(3, 0.5), np.full((3, 1), 2.0))
    np.testing.assert_allclose(spearman_brown(np.full(3, 0.5), 2), np.full(3, 2 / 3))  # a scalar is fine
    np.testing.assert_allclose(spearman_brown(0.5, np.array([1.0, 2.0])), [0.5, 2 / 3])


def test_variance_partitioning_and_r2_split_name_the_mismatched_entries():
    with pytest.raises(
        ValueError, match=r"r2\['A'\] and r2\['A\+B'\]: expected the same shape, got .* \(3,\) .* \(2,\)"
    ):
        variance_partitioning({"A": np.zeros(3), "B": np.zeros(3), "A+B": np.zeros(2)})
    with pytest.raises(ValueError, match=r"y_true of shape \(5, 2\) and y_pred_split of shape \(2, 5, 1\)"):
        r2_score_split(np.zeros((5, 2)), np.zeros((2, 5, 1)))


def test_decoding_metrics_refuse_mismatched_labels_scores_and_codes():
    with pytest.raises(ValueError, match=r"y_true of shape \(4,\) and y_pred of shape \(3,\)"):
        decoding_metrics(["a", "b", "a", "b"], ["a", "b", "a"])
    with pytest.raises(ValueError, match=r"y_true of shape \(4,\) and scores of shape \(3, 2\)"):
        decoding_metrics(["a", "b", "a", "b"], ["a", "b", "a", "a"], scores=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"codes_true of shape \(3,\) and codes_pred of shape \(3, 1\)"):
        confusion(np.array([0, 1, 1]), np.array([[0], [1], [1]]), 2)
    with pytest.raises(ValueError, match=r"codes_true of shape \(4,\) and codes_pred\[0\] of shape \(5,\)"):
        batch_scores("accuracy", np.zeros(4, int), np.zeros((3, 5), int), 2)
    with pytest.raises(ValueError, match=r"codes_true of shape \(3, 1\) and codes_pred of shape \(3, 5\)"):
        batch_scores("balanced_accuracy", np.zeros((3, 1), int), np.zeros((3, 5), int), 2)
    truth, pred = np.array([0, 1, 1, 0, 1]), np.array([[0, 1, 0, 0, 1], [1, 1, 1, 1, 1]])
    np.testing.assert_allclose(batch_scores("accuracy", truth, pred, 2), [0.8, 0.6])  # hand-counted
    np.testing.assert_allclose(batch_scores("accuracy", np.stack([truth, truth]), pred, 2), [0.8, 0.6])


def test_check_same_shape_and_length_helpers():
    check_same_shape(a=np.zeros((2, 3)), b=np.ones((2, 3)), c=[[0, 0, 0], [1, 1, 1]])
    check_same_shape()
    with pytest.raises(
        ValueError, match=r"a and c: expected the same shape, got a of shape \(2, 3\) and c of shape \(3,\)"
    ):
        check_same_shape(a=np.zeros((2, 3)), b=np.ones((2, 3)), c=np.zeros(3))
    check_same_length(x=np.zeros((4, 2)), labels=list("abcd"))
    with pytest.raises(ValueError, match=r"x and labels: expected the same number of rows, got x of shape \(4, 2\)"):
        check_same_length(x=np.zeros((4, 2)), labels=list("abc"))
    with pytest.raises(ValueError, match="labels: expected an array with one row per sample, got a scalar"):
        check_same_length(x=np.zeros(4), labels=3)
