"""Image identification (Kay et al. 2008): brute-force checks, the set-size curve, and the simulated experiment."""

import numpy as np
import pytest

from scene2brain.data.simulate import SimulationDrivers, SubjectConfig, make_stimuli, simulate_responses
from scene2brain.encoding import RidgeCV
from scene2brain.evaluation import (
    extrapolate_identification,
    identification_curve,
    identify,
    pattern_correlations,
    repeats_array,
    select_voxels,
    set_size_at_accuracy,
)
from scene2brain.features.gabor import GaborPyramid


def _patterns(n_images=60, n_voxels=400, noise=3.0, seed=0):
    rng = np.random.default_rng(seed)
    predicted = rng.standard_normal((n_images, n_voxels))
    measured = predicted + noise * rng.standard_normal((n_images, n_voxels))
    return measured, predicted


def test_pattern_correlations_match_corrcoef():
    measured, predicted = _patterns(5, 30)
    full = np.corrcoef(measured, predicted)[:5, 5:]
    np.testing.assert_allclose(pattern_correlations(measured, predicted), full, atol=1e-12)


def test_identify_against_a_brute_force_loop():
    measured, predicted = _patterns(40, 200, noise=6.0, seed=1)
    truth = np.random.default_rng(2).permutation(40)
    res = identify(measured, predicted[np.argsort(truth)], true_index=truth)
    corr = res.correlations
    for i in range(40):
        correct = corr[i, truth[i]]
        others = np.delete(corr[i], truth[i])
        assert res.rank[i] == 1 + (others >= correct).sum()
    assert res.accuracy == pytest.approx(np.mean(res.predicted_index == truth))
    pairs = [(corr[i, truth[i]] > c) for i in range(40) for c in np.delete(corr[i], truth[i])]
    assert res.pairwise_accuracy == pytest.approx(np.mean(pairs))
    assert 1 / 40 < res.accuracy < 1 and res.chance == 1 / 40


def test_voxel_selection_uses_the_best_training_scores():
    scores = np.array([0.1, np.nan, 0.9, 0.5, 0.7])
    np.testing.assert_array_equal(select_voxels(scores, 2), [2, 4])
    with pytest.raises(ValueError, match=r"n_voxels: expected 1..4"):
        select_voxels(scores, 5)
    measured, predicted = _patterns(10, 50)
    sub = identify(measured, predicted, voxels=np.arange(20))
    np.testing.assert_allclose(sub.correlations, pattern_correlations(measured[:, :20], predicted[:, :20]))


def test_identification_errors_name_the_argument():
    measured, predicted = _patterns(10, 50)
    with pytest.raises(ValueError, match=r"true_index: values must lie in 0\.\.9"):
        identify(measured, predicted, true_index=np.arange(1, 11))
    with pytest.raises(ValueError, match=r"measured \(10, 50\) and predicted \(10, 49\)"):
        identify(measured, predicted[:, :49])


def test_set_size_curve_is_exact_against_random_subsets():
    measured, predicted = _patterns(50, 300, noise=5.0, seed=3)
    res = identify(measured, predicted)
    sizes = np.array([2, 5, 20, 50])
    curve = identification_curve(res, sizes)
    assert curve[-1] == pytest.approx(res.accuracy)
    assert curve[0] == pytest.approx(res.pairwise_accuracy)  # 2-way = pairwise (no ties here)
    # Monte Carlo: draw N - 1 incorrect candidates at random for every measured pattern
    rng = np.random.default_rng(0)
    for size, expected in zip(sizes[1:3], curve[1:3], strict=True):
        hits = []
        for _ in range(400):
            for i in range(50):
                others = rng.choice(np.delete(np.arange(50), i), size - 1, replace=False)
                hits.append(res.correlations[i, i] > res.correlations[i, others].max())
        assert np.mean(hits) == pytest.approx(expected, abs=0.015)
    assert np.all(np.diff(curve) <= 0)
    with pytest.raises(ValueError, match="set_sizes"):
        identification_curve(res, [51])


def test_extrapolation_follows_the_exact_curve_when_its_model_holds():
    # independent random predicted patterns: incorrect-match correlations are close to normal
    measured, predicted = _patterns(400, 500, noise=8.0, seed=4)
    res = identify(measured, predicted)
    sizes = np.array([2, 10, 50, 200, 400])
    np.testing.assert_allclose(extrapolate_identification(res, sizes), identification_curve(res, sizes), atol=0.03)
    big = extrapolate_identification(res, [1e3, 1e6, 1e12])
    assert np.all(np.diff(big) < 0) and big[-1] >= 0
    n10 = set_size_at_accuracy(res, 0.1)
    assert extrapolate_identification(res, [n10])[0] == pytest.approx(0.1, abs=1e-6)
    assert set_size_at_accuracy(res, 0.99) == 2.0  # already below 99 % with 2 candidates


@pytest.fixture(scope="module")
def kay_like_runs():
    """A simulated early-visual subject, fitted with a Gabor-energy model at two SNRs."""
    stimuli, splits = make_stimuli(1120, n_test=120, image_size=32, n_faces=0, seed=0)
    pyramid = GaborPyramid(32, (1, 2, 4, 8), n_orientations=8)
    energy = pyramid.transform(stimuli.load_images().mean(axis=-1))
    features = np.log1p(energy)
    rng = np.random.default_rng(0)
    n = len(stimuli)
    drivers = SimulationDrivers(
        gabor_energy=energy,
        gabor_channels=pyramid.channels(),
        deep=rng.standard_normal((n, 4)),
        calibration=rng.standard_normal((n, 4)),
        is_face=np.zeros(n, dtype=bool),
    )
    runs = {}
    for snr in (0.3, 1.0):
        config = SubjectConfig(n_voxels={"EV": 800}, ncsnr_median={"EV": snr}, test_repeats=3)
        exp = simulate_responses(stimuli, splits, drivers, config, seed=1)
        stim = exp.responses.trial_stimulus
        train, test = exp.trials_in_split("train"), exp.trials_in_split("test")
        model = RidgeCV(cv=5).fit(features[stim[train]], exp.responses.data[train])
        voxels = select_voxels(model.cv_scores_.max(axis=0), 500)  # training-data selection, as Kay et al.
        images, repeats = repeats_array(exp.responses.data[test], stim[test])
        runs[snr] = {
            "predicted": model.predict(features[images]),
            "repeats": repeats,
            "voxels": voxels,
            "single_trials": exp.responses.data[test],
            "trial_image": np.searchsorted(images, stim[test]),
        }
    return runs


def test_identification_on_the_simulated_experiment(kay_like_runs):
    accuracy = {}
    for snr, run in kay_like_runs.items():
        for n_avg in (1, 3):
            measured = run["repeats"][:n_avg].mean(axis=0)
            res = identify(measured, run["predicted"], voxels=run["voxels"])
            accuracy[snr, n_avg] = res.accuracy
            # chance is 1/120; the test images are crops of photographs no training image comes from
            assert res.accuracy > 10 * res.chance, (snr, n_avg)
    assert accuracy[1.0, 1] > accuracy[0.3, 1] + 0.2  # rises with SNR
    assert accuracy[0.3, 3] > accuracy[0.3, 1] + 0.1  # rises with the repeats averaged
    assert accuracy[1.0, 3] >= accuracy[1.0, 1]
    # single-trial identification, every trial against the 120 candidates
    run = kay_like_runs[1.0]
    single = identify(run["single_trials"], run["predicted"], true_index=run["trial_image"], voxels=run["voxels"])
    assert len(single.rank) == 360 and single.accuracy > 0.5
    assert single.pairwise_accuracy > 0.95


def test_constant_patterns_are_misses_and_warn():
    # constant (zero-variance) measured or predicted patterns have NaN correlations: they must
    # not count as identified (``others >= NaN`` is False, which used to give accuracy 1.0)
    measured, predicted = _patterns(20, 100, noise=0.5, seed=5)
    measured[:] = 1.0  # every measured pattern constant: nothing can be identified
    with pytest.warns(RuntimeWarning, match=r"20 of 20 measured patterns .*constant"):
        res = identify(measured, predicted)
    assert res.accuracy == 0.0 and res.pairwise_accuracy <= 0.5
    np.testing.assert_array_equal(res.rank, 20)  # last place: every incorrect candidate counts against it
    np.testing.assert_array_equal(identification_curve(res, [2, 10, 20]), 0.0)
    assert extrapolate_identification(res, [2, 1e6]).max() == 0.0
    assert set_size_at_accuracy(res, 0.1) == 2.0


def test_a_constant_predicted_pattern_never_helps_the_shown_candidate():
    measured, predicted = _patterns(30, 200, noise=0.5, seed=6)  # clean: every pattern identified
    assert identify(measured, predicted).accuracy == 1.0
    predicted[[3, 7]] = 0.25  # two candidates whose predicted pattern is constant
    with pytest.warns(RuntimeWarning, match=r"2 of 30 predicted patterns .*constant"):
        res = identify(measured, predicted)
    # their own measured patterns are misses; for every other pattern the two NaN candidates
    # count as ties that rank against the shown one, so nothing is identified any more
    assert res.rank[3] == res.rank[7] == 30
    assert res.accuracy == 0.0
    others = np.setdiff1d(np.arange(30), [3, 7])
    np.testing.assert_array_equal(res.rank[others], 3)
    # pairwise: a NaN comparison is a tie (one half), so the accuracy lies below the clean 1.0
    n_pairs = 30 * 29
    expected = (28 * 27 + 28 * 2 * 0.5 + 2 * 29 * 0.5) / n_pairs
    assert res.pairwise_accuracy == pytest.approx(expected)
    assert np.all(res.predicted_index[others] == others)


def test_clean_patterns_do_not_warn():
    import warnings

    measured, predicted = _patterns(10, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        identify(measured, predicted)
