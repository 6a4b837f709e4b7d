"""Repeat-based noise ceilings: hand cases, and four estimators agreeing with the known truth."""

import numpy as np
import pytest
from scipy import stats

from scene2brain.evaluation import (
    explainable_variance,
    ncsnr_from_repeats,
    noise_ceiling_from_ncsnr,
    repeats_array,
    spearman_brown,
    split_half_reliability,
)


def test_repeats_array_keeps_first_trials_in_trial_order():
    y = np.arange(6.0)[:, None] * np.array([[1.0, 10.0]])
    stim = np.array([5, 3, 5, 3, 5, 8])
    labels, rep = repeats_array(y, stim)  # default: 2 repeats, the fewest among repeated stimuli
    assert labels.tolist() == [3, 5]  # 8 was shown once
    assert rep.shape == (2, 2, 2)
    np.testing.assert_array_equal(rep[..., 0], [[1.0, 0.0], [3.0, 2.0]])
    np.testing.assert_array_equal(rep[..., 1], 10 * rep[..., 0])
    labels3, rep3 = repeats_array(y, stim, n_repeats=3)
    assert labels3.tolist() == [5]
    np.testing.assert_array_equal(rep3[..., 0], [[0.0], [2.0], [4.0]])
    with pytest.raises(ValueError, match="no stimulus was shown that many times"):
        repeats_array(y, stim, n_repeats=4)
    with pytest.raises(ValueError, match="n_repeats: expected at least 2"):
        repeats_array(y, stim, n_repeats=1)


def test_explainable_variance_hand_case():
    # repeats [1, 2, 3] and [1, 2, 5]: var of mean 7/3, mean of vars 8/3 -> 7/8; corrected 7/8 - 1/8 = 3/4
    rep = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 5.0]])[..., None]
    assert explainable_variance(rep, zscore=False)[0] == pytest.approx(0.75)
    assert explainable_variance(rep, zscore=False, bias_correction=False)[0] == pytest.approx(7 / 8)


def test_split_half_with_two_repeats_is_spearman_brown_of_their_correlation():
    rng = np.random.default_rng(0)
    rep = rng.standard_normal((2, 50, 3))
    rep[1] += rep[0]
    r = np.array([stats.pearsonr(rep[0, :, j], rep[1, :, j])[0] for j in range(3)])
    np.testing.assert_allclose(split_half_reliability(rep, n_splits=5, spearman_brown_correction=False), r)
    np.testing.assert_allclose(split_half_reliability(rep, n_splits=5), 2 * r / (1 + r))


def test_spearman_brown_identities():
    r = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(spearman_brown(r, 1), r)
    np.testing.assert_allclose(spearman_brown(spearman_brown(r, 3), 1 / 3), r)
    with pytest.raises(ValueError, match="factor"):
        spearman_brown(r, 0)


def test_repeat_checks_name_the_shape():
    with pytest.raises(ValueError, match=r"n_repeats >= 2"):
        explainable_variance(np.zeros((1, 10, 2)))


@pytest.mark.parametrize("n_repeats", [2, 3, 4])
def test_four_ceilings_agree_with_the_truth(n_repeats):
    """Signal variance s2, noise variance 1/ncsnr**2: NC_n = s2 / (s2 + noise / n) for all estimators."""
    rng = np.random.default_rng(n_repeats)
    n_stim, n_vox = 12000, 6
    ncsnr = np.array([0.2, 0.4, 0.7, 1.0, 1.5, 3.0])
    signal = rng.standard_normal((n_stim, n_vox))
    trials = signal[None] + rng.standard_normal((n_repeats, n_stim, n_vox)) / ncsnr
    s2 = signal.var(axis=0, ddof=1)
    truth = s2 / (s2 + 1 / (ncsnr**2 * n_repeats))

    trial_stimulus = np.tile(np.arange(n_stim), n_repeats)
    flat = trials.reshape(-1, n_vox)
    from_ncsnr = noise_ceiling_from_ncsnr(ncsnr_from_repeats(flat, trial_stimulus), n_repeats)
    from_ev = spearman_brown(explainable_variance(trials), n_repeats)
    from_split = split_half_reliability(trials, n_splits=20)
    _, rearranged = repeats_array(flat, trial_stimulus)
    np.testing.assert_array_equal(rearranged, trials)
    for name, est in (("ncsnr", from_ncsnr), ("explainable variance", from_ev), ("split-half", from_split)):
        np.testing.assert_allclose(est, truth, atol=0.05, err_msg=name)
    np.testing.assert_allclose(from_ev, from_ncsnr, atol=0.02)
