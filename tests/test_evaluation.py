import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import r2_score as sk_r2

from scene2brain.evaluation import (
    explained_variance,
    ncsnr_from_repeats,
    noise_ceiling_from_ncsnr,
    noise_normalised_accuracy,
    pearson_r,
    r2_score,
)


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
    with pytest.raises(ValueError, match="shapes differ"):
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
