"""Permutation tests, bootstrap intervals and paired comparisons against scipy and known laws."""

import numpy as np
import pytest
from scipy import stats

from scene2brain.evaluation import (
    bootstrap_ci,
    compare_predictions,
    pearson_r,
    permutation_test_correlation,
    sign_flip_test,
)


def _r(x, y, axis=-1):
    x = x - x.mean(axis, keepdims=True)
    y = y - y.mean(axis, keepdims=True)
    return (x * y).sum(axis) / np.sqrt((x * x).sum(axis) * (y * y).sum(axis))


def test_exact_permutation_p_values_match_scipy():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((6, 4))
    pred = y + rng.standard_normal((6, 4)) * np.array([0.3, 1.0, 3.0, 10.0])
    res = permutation_test_correlation(y, pred, n_permutations=1000, alternative="greater")
    assert res.exact and len(res.null_max) == 720
    for alternative in ("greater", "two-sided", "less"):
        res = permutation_test_correlation(y, pred, n_permutations=1000, alternative=alternative)
        for v in range(4):
            # two-sided means |r| as extreme as observed (scipy would double the smaller tail instead)
            ref = stats.permutation_test(
                (y[:, v], pred[:, v]),
                (lambda a, b, axis=-1: np.abs(_r(a, b, axis))) if alternative == "two-sided" else _r,
                permutation_type="pairings",
                alternative="greater" if alternative == "two-sided" else alternative,
                n_resamples=np.inf,
                vectorized=True,
            )
            assert res.p[v] == pytest.approx(ref.pvalue, abs=1e-12), (alternative, v)


def test_max_statistic_and_fdr_corrections():
    rng = np.random.default_rng(1)
    n, v = 80, 300
    y = rng.standard_normal((n, v))
    pred = rng.standard_normal((n, v))
    pred[:, :20] += 0.8 * y[:, :20]  # 20 predicted voxels, 280 null ones
    res = permutation_test_correlation(y, pred, n_permutations=500, random_state=2)
    assert not res.exact
    # family-wise p from the null of the maximum, recomputed by hand
    expected = (1 + (res.null_max[None, :] >= res.r[:, None] - 1e-12).sum(axis=1)) / 501
    np.testing.assert_allclose(res.p_fwe, expected)
    np.testing.assert_allclose(res.p_fdr, stats.false_discovery_control(res.p))
    assert (res.p_fwe >= res.p).all() and (res.p_fdr >= res.p - 1e-15).all()
    assert (res.p_fwe[:20] < 0.05).all()
    assert (res.p_fwe[20:] < 0.05).sum() == 0
    # uncorrected p-values of the null voxels are close to uniform
    assert stats.kstest(res.p[20:], "uniform").pvalue > 0.01
    # seeded
    again = permutation_test_correlation(y, pred, n_permutations=500, random_state=2)
    np.testing.assert_array_equal(again.p, res.p)
    other = permutation_test_correlation(y, pred, n_permutations=500, random_state=3)
    assert not np.array_equal(other.null_max, res.null_max)


def test_permutation_chunking_and_constant_voxels():
    rng = np.random.default_rng(3)
    y, pred = rng.standard_normal((40, 10)), rng.standard_normal((40, 10))
    pred[:, 3] = 1.0
    full = permutation_test_correlation(y, pred, n_permutations=200)
    chunked = permutation_test_correlation(y, pred, n_permutations=200, chunk_size=3)
    np.testing.assert_allclose(chunked.p, full.p)
    np.testing.assert_allclose(chunked.null_max, full.null_max)
    assert np.isnan(full.p[3]) and np.isnan(full.p_fwe[3]) and np.isnan(full.p_fdr[3])
    assert np.isfinite(np.delete(full.p_fdr, 3)).all()
    with pytest.raises(ValueError, match="alternative"):
        permutation_test_correlation(y, pred, alternative="bigger")


def test_bootstrap_spread_of_r_matches_the_normal_theory():
    rng = np.random.default_rng(4)
    n, rho = 400, 0.5
    x = rng.standard_normal((n, 1))
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((n, 1))
    res = bootstrap_ci(y, x, n_bootstraps=2000, random_state=0)
    assert res.estimate == pytest.approx(pearson_r(y, x)[0])
    assert res.low < res.estimate < res.high
    # standard error of r for bivariate normal data: (1 - rho^2) / sqrt(n)
    assert res.distribution.std() == pytest.approx((1 - rho**2) / np.sqrt(n), rel=0.15)
    # the Fisher-z interval covers about the same range
    z, se = np.arctanh(res.estimate), 1 / np.sqrt(n - 3)
    assert res.low == pytest.approx(np.tanh(z - 1.96 * se), abs=0.02)
    assert res.high == pytest.approx(np.tanh(z + 1.96 * se), abs=0.02)


def test_bootstrap_summary_can_return_one_value_per_roi():
    rng = np.random.default_rng(5)
    y = rng.standard_normal((100, 6))
    pred = y + rng.standard_normal((100, 6)) * np.array([0.5, 0.5, 0.5, 3, 3, 3])
    roi = np.array([0, 0, 0, 1, 1, 1])
    res = bootstrap_ci(y, pred, summary=lambda s: np.array([s[roi == k].mean() for k in (0, 1)]), n_bootstraps=300)
    assert res.distribution.shape == (300, 2)
    assert res.low[0] > res.high[1]  # the well-predicted ROI is clearly above
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(y, pred, confidence=95)


def test_sign_flip_test_matches_scipy_exactly():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal(9) + 0.6, rng.standard_normal(9)
    for alternative in ("two-sided", "greater", "less"):
        mean, p = sign_flip_test(a - b, alternative=alternative)
        ref = stats.permutation_test(
            (a, b),
            lambda x, y: np.mean(x - y),
            permutation_type="samples",
            alternative=alternative,
            n_resamples=np.inf,
        )
        assert mean == pytest.approx(ref.statistic)
        assert p == pytest.approx(ref.pvalue, abs=1e-12), alternative
    with pytest.raises(ValueError, match="differences"):
        sign_flip_test(np.array([1.0, np.nan, 2.0]))


def test_compare_predictions_detects_the_better_model():
    rng = np.random.default_rng(7)
    y = rng.standard_normal((150, 50))
    good = y + rng.standard_normal((150, 50))
    poor = y + 2.5 * rng.standard_normal((150, 50))
    for method in ("bootstrap", "sign-flip"):
        res = compare_predictions(y, good, poor, method=method, n_resamples=500, random_state=1)
        assert res.difference > 0.1 and res.p_value < 0.01, method
    boot = compare_predictions(y, good, poor, method="bootstrap", n_resamples=500)
    assert boot.low < boot.difference < boot.high and boot.low > 0
    with pytest.raises(ValueError, match="method"):
        compare_predictions(y, good, poor, method="t-test")


def test_sign_flip_comparison_of_squared_error_is_the_classic_sign_flip():
    """For an additive score, swapping predictions per stimulus = flipping the per-stimulus loss difference."""
    rng = np.random.default_rng(8)
    y = rng.standard_normal((30, 4))
    a, b = y + rng.standard_normal((30, 4)), y + 1.2 * rng.standard_normal((30, 4))

    def neg_mse(t, p):
        return -((t - p) ** 2).mean(axis=0)

    res = compare_predictions(y, a, b, score=neg_mse, method="sign-flip", n_resamples=999, random_state=3)
    per_stimulus = (((y - b) ** 2) - ((y - a) ** 2)).mean(axis=1)  # mean over voxels, one value per stimulus
    mean, p = sign_flip_test(per_stimulus, n_permutations=999, random_state=3)
    assert res.difference == pytest.approx(mean)
    assert res.p_value == pytest.approx(p)


def test_sign_flip_comparison_controls_false_positives():
    rng = np.random.default_rng(9)
    rejections = 0
    for _ in range(200):
        y = rng.standard_normal((30, 5))
        a, b = y + rng.standard_normal((30, 5)), y + rng.standard_normal((30, 5))  # equally good
        res = compare_predictions(y, a, b, method="sign-flip", n_resamples=199, random_state=int(rng.integers(1e9)))
        rejections += res.p_value < 0.05
    assert 0.01 <= rejections / 200 <= 0.10


def _awkward_pair(rng, n=60, v=12):
    """Responses with a NaN, an inf, constant columns and a column dominated by one outlier."""
    y = rng.standard_normal((n, v))
    pred = 0.4 * y + rng.standard_normal((n, v))
    y[5, 1] = np.nan
    pred[7, 2] = np.inf
    pred[:, 4] = 2.0
    y[:, 6] = 1e6 * (np.arange(n) == 0) + 1e-3 * rng.standard_normal(n)  # one-pass sums lose digits here
    return y, pred


def test_bootstrap_matrix_form_equals_the_loop_over_resamples(monkeypatch):
    from scene2brain.evaluation.inference import CorrelationScore, _bootstrap_ci_loop
    from scene2brain.evaluation.noise_ceiling import noise_normalised_accuracy

    rng = np.random.default_rng(10)
    y, pred = _awkward_pair(rng)
    ceiling = rng.uniform(0.05, 1.0, y.shape[1])
    roi = np.arange(y.shape[1]) % 3

    def per_roi(s):
        return np.array([np.nanmedian(s[roi == k]) for k in range(3)])

    nnacc = CorrelationScore(lambda r: noise_normalised_accuracy(r, ceiling))
    for score, summary in ((pearson_r, lambda s: s), (nnacc, per_roi), (pearson_r, np.nanmean)):
        fast = bootstrap_ci(y, pred, score, summary, n_bootstraps=150, random_state=4)
        loop = _bootstrap_ci_loop(y, pred, score, summary, n_bootstraps=150, random_state=4)
        np.testing.assert_allclose(fast.distribution, loop.distribution, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fast.low, loop.low, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fast.high, loop.high, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(fast.estimate, loop.estimate)
    # chunked over voxels and resamples: the same numbers
    monkeypatch.setattr("scene2brain.evaluation.inference._STATS_BYTES", 8 * 5 * 60 * 5)
    monkeypatch.setattr("scene2brain.evaluation.inference._SCORES_BYTES", 8 * 12 * 7)
    chunked = bootstrap_ci(y, pred, pearson_r, lambda s: s, n_bootstraps=150, random_state=4)
    loop = _bootstrap_ci_loop(y, pred, pearson_r, lambda s: s, n_bootstraps=150, random_state=4)
    np.testing.assert_allclose(chunked.distribution, loop.distribution, rtol=0, atol=1e-12)


def test_bootstrap_r_is_nan_where_a_resample_is_constant():
    from scene2brain.evaluation.inference import CorrelationScore

    y = np.array([[1.0, 0.1], [2.0, 0.1], [3.0, 0.1], [5.0, 0.1]])
    pred = np.array([[1.0, 1.0], [3.0, 2.0], [2.0, 3.0], [4.0, 4.0]])
    res = bootstrap_ci(y, pred, CorrelationScore(), lambda s: s, n_bootstraps=200, random_state=1)
    assert np.isnan(res.distribution[:, 1]).all()  # a constant column has no r, on any resample
    rows = np.random.default_rng(1).integers(0, 4, size=(200, 4))
    one_stimulus = np.array([len(set(r)) == 1 for r in rows])
    np.testing.assert_array_equal(np.isnan(res.distribution[:, 0]), one_stimulus)


def test_compare_predictions_matrix_form_equals_the_loop():
    rng = np.random.default_rng(11)
    y, a = _awkward_pair(rng)
    b = y + 2 * rng.standard_normal(y.shape)
    fast = compare_predictions(y, a, b, method="bootstrap", n_resamples=120, random_state=2)
    loop = compare_predictions(y, a, b, score=lambda t, p: pearson_r(t, p), n_resamples=120, random_state=2)
    np.testing.assert_allclose(fast.distribution, loop.distribution, rtol=0, atol=1e-12)
    assert fast.p_value == loop.p_value and fast.difference == loop.difference


def test_blocked_permutation_null_equals_the_loop(monkeypatch):
    from scene2brain.evaluation import inference as inf

    rng = np.random.default_rng(12)
    y, pred = _awkward_pair(rng, n=30, v=40)
    y[:, 20:] = rng.standard_normal((30, 20))
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (y - y.mean(0)) / np.linalg.norm(y - y.mean(0), axis=0)
        b = (pred - pred.mean(0)) / np.linalg.norm(pred - pred.mean(0), axis=0)
    monkeypatch.setattr(inf, "_PERM_BLOCK_BYTES", 16 * 30 * 7)  # blocks of 7 voxels
    perms, _ = inf._permutations(30, 200, np.random.default_rng(0))
    for alternative in ("greater", "less", "two-sided"):
        observed = inf._oriented(np.einsum("ij,ij->j", a, b), alternative)
        exceed, null_max = inf._permutation_null(a, b, observed, perms, alternative, 4096)
        exceed_ref, null_max_ref = inf._permutation_null_loop(a, b, observed, perms, alternative, 4096)
        np.testing.assert_array_equal(exceed, exceed_ref)
        np.testing.assert_allclose(null_max, null_max_ref, rtol=0, atol=1e-15)
