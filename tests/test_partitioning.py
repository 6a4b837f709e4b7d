"""Variance partitioning: exact Venn recovery, a fitted two-space case with known shares, the negative caveat."""

import itertools

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from scene2brain.evaluation import r2_score, variance_partitioning


def test_three_spaces_recover_a_constructed_venn_diagram():
    rng = np.random.default_rng(0)
    spaces = ("A", "B", "C")
    regions = [frozenset(c) for k in (1, 2, 3) for c in itertools.combinations(spaces, k)]
    truth = {s: rng.uniform(0, 0.1, 5) for s in regions}
    # a model on spaces W explains every region that involves at least one space of W
    r2 = {
        "+".join(w): sum(v for s, v in truth.items() if s & set(w))
        for k in (1, 2, 3)
        for w in itertools.combinations(spaces, k)
    }
    part = variance_partitioning(r2)
    assert part.spaces == spaces
    for s, v in truth.items():
        np.testing.assert_allclose(part.regions["&".join(x for x in spaces if x in s)], v, atol=1e-12)
    np.testing.assert_allclose(sum(part.regions.values()), part.joint_r2)
    np.testing.assert_allclose(part.shared("C", "A"), truth[frozenset("AC")])
    np.testing.assert_allclose(part.unique("B"), truth[frozenset("B")])
    assert all(f == 0.0 for f in part.negative_fraction.values())


def test_two_fitted_spaces_with_a_shared_feature():
    """y = f1 + f2 + s + noise (unit variances); A = [f1, s], B = [f2, s]: each region holds 1/4."""
    rng = np.random.default_rng(1)
    n = 40_000
    f1, f2, s, noise = rng.standard_normal((4, n, 1))
    y = f1 + f2 + s + noise
    spaces = {"A": np.hstack([f1, s]), "B": np.hstack([f2, s])}
    train, test = slice(0, n // 2), slice(n // 2, None)
    r2 = {}
    for key in ("A", "B", "A+B"):
        X = np.hstack([spaces[k] for k in key.split("+")])
        model = LinearRegression().fit(X[train], y[train])
        r2[key] = r2_score(y[test], model.predict(X[test]))
    part = variance_partitioning(r2)
    for name in ("A", "B", "A&B"):
        assert part.regions[name][0] == pytest.approx(0.25, abs=0.02), name


def test_negative_regions_are_reported_and_handled_as_asked():
    # the single-space models beat the joint one on the second target: unique parts go negative
    r2 = {("A",): np.array([0.3, 0.5]), ("B",): np.array([0.2, 0.45]), ("A", "B"): np.array([0.4, 0.4])}
    keep = variance_partitioning(r2)
    np.testing.assert_allclose(keep.regions["A"], [0.2, -0.05])
    np.testing.assert_allclose(keep.regions["A&B"], [0.1, 0.55])
    assert keep.negative_fraction == {"A": 0.5, "B": 0.5, "A&B": 0.0}
    np.testing.assert_allclose(sum(keep.regions.values()), keep.joint_r2)
    np.testing.assert_allclose(variance_partitioning(r2, negative="clip").regions["A"], [0.2, 0.0])
    assert np.isnan(variance_partitioning(r2, negative="nan").regions["B"][1])


def test_partitioning_errors_name_what_is_missing():
    with pytest.raises(ValueError, match=r"missing the model\(s\) \['A\+B'\]"):
        variance_partitioning({"A": np.ones(2), "B": np.ones(2)})
    with pytest.raises(ValueError, match="2 or 3 feature spaces"):
        variance_partitioning({"A": np.ones(2)})
    with pytest.raises(ValueError, match="negative"):
        variance_partitioning({"A": np.ones(2), "B": np.ones(2), "A+B": np.ones(2)}, negative="drop")
    with pytest.raises(ValueError, match="same shape"):
        variance_partitioning({"A": np.ones(2), "B": np.ones(3), "A+B": np.ones(2)})
