"""scikit-learn conformance of the encoding estimators, and their shared parameter docs."""

import inspect
import re

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold, LeaveOneOut
from sklearn.utils.estimator_checks import parametrize_with_checks

from scene2brain.encoding import BandedRidgeCV, RidgeCV, banded_ridge_cv, ridge_cv, sample_band_weights
from scene2brain.encoding._base import PARAMETER_DOCS
from scene2brain.utils.docs import doc_filler, fill_docstring


@parametrize_with_checks([RidgeCV(), BandedRidgeCV(bands=2)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _documented_parameters(doc):
    """Names listed in the numpydoc "Parameters" section of ``doc``, in order."""
    doc = inspect.cleandoc(doc)
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[^\n]*\n-+\n|\Z)", doc, re.S | re.M).group(1)
    return re.findall(r"^(\w+) :", section, re.M)


@pytest.mark.parametrize("obj", [ridge_cv, banded_ridge_cv, RidgeCV, BandedRidgeCV, RidgeCV.fit, BandedRidgeCV.fit])
def test_docstrings_are_filled_and_document_every_parameter(obj):
    doc = obj.__doc__
    assert "%(" not in doc
    signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    expected = [name for name in signature.parameters if name != "self"]
    assert _documented_parameters(doc) == expected


def test_shared_parameters_are_described_identically():
    """The drift the shared docs prevent: one text per parameter in every docstring."""
    for name in ("alphas", "fit_intercept", "scoring", "solver", "backend", "device", "memory_budget"):
        snippet = PARAMETER_DOCS[name].replace("\n", "\n    ")
        for obj in (ridge_cv, banded_ridge_cv, RidgeCV, BandedRidgeCV):
            assert snippet in obj.__doc__, (name, obj)


def test_fill_docstring_indents_snippets_like_their_placeholder():
    docs = {"a": "a : int\n    First line.\n    Second line.", "b": "b : str"}
    doc = "Summary 100%% sure.\n\n    Parameters\n    ----------\n    %(a)s\n        %(b)s\n"
    filled = fill_docstring(doc, docs)
    assert filled == (
        "Summary 100%% sure.\n\n    Parameters\n    ----------\n    a : int\n        First line.\n"
        "        Second line.\n        b : str\n"
    )
    with pytest.raises(KeyError, match=r"%\(c\)s"):
        fill_docstring("    %(c)s", docs)

    @doc_filler(docs)
    def f():
        """Takes:

        %(b)s
        """

    assert f.__doc__ == "Takes:\n\n        b : str\n        "
    assert doc_filler(docs)(lambda: None).__doc__ is None


def _two_bands(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 7))
    Y = X[:, :3] @ rng.standard_normal((3, 4)) + 0.3 * rng.standard_normal((n, 4))
    return X, Y


def test_banded_estimator_forwards_every_option():
    X, Y = _two_bands()
    bands = np.array([0] * 3 + [1] * 4)
    options = {"fit_intercept": False, "scoring": "correlation", "solver": "dual", "memory_budget": 5000}
    model = BandedRidgeCV(bands=bands, alphas=[0.1, 1.0, 10.0], cv=KFold(4), n_iter=5, concentration=(0.5,),
                          random_state=3, backend="numpy", **options).fit(X, Y)  # fmt: skip
    res = banded_ridge_cv(X, Y, bands, [0.1, 1.0, 10.0], list(KFold(4).split(X)), n_iter=5, concentration=(0.5,),
                          seed=3, **options)  # fmt: skip
    np.testing.assert_array_equal(model.band_alphas_, res.band_alphas)
    np.testing.assert_array_equal(model.coef_, res.coef)
    np.testing.assert_array_equal(model.intercept_, 0.0)
    np.testing.assert_array_equal(model.cv_scores_, res.cv_scores)
    assert list(model.bands_) == [0, 1]


def test_int_bands_are_contiguous_and_near_equal():
    X, Y = _two_bands()
    by_count = BandedRidgeCV(bands=2, alphas=[1.0, 10.0], cv=3, n_iter=4).fit(X, Y)
    by_label = BandedRidgeCV(bands=[0] * 4 + [1] * 3, alphas=[1.0, 10.0], cv=3, n_iter=4).fit(X, Y)
    np.testing.assert_array_equal(by_count.coef_, by_label.coef_)
    assert by_count.predict_split(X).shape == (2, 60, 4)
    with pytest.raises(ValueError, match=r"1 feature\(s\)"):
        BandedRidgeCV(bands=2).fit(X[:, :1], Y)
    with pytest.raises(ValueError, match="at least 2 feature bands"):
        BandedRidgeCV(bands=1).fit(X, Y)


def test_both_estimators_take_exact_leave_one_out():
    X, Y = _two_bands(n=30)
    alphas = np.logspace(-2, 2, 5)
    for cv in ("loo", LeaveOneOut()):
        ridge = RidgeCV(alphas=alphas, cv=cv).fit(X, Y)
        np.testing.assert_array_equal(ridge.cv_scores_, ridge_cv(X, Y, alphas, "loo").cv_scores)
        banded = BandedRidgeCV(bands=2, alphas=alphas, cv=cv, n_iter=4).fit(X, Y)
        expected = banded_ridge_cv(X, Y, 2, alphas, "loo", gammas=sample_band_weights(2, 4))
        np.testing.assert_array_equal(banded.cv_scores_, expected.cv_scores)


def test_clones_refit_identically():
    X, Y = _two_bands()
    for model in (RidgeCV(alphas=[0.1, 1.0], cv=3), BandedRidgeCV(bands=2, alphas=[0.1, 1.0], cv=3, n_iter=3)):
        first = model.fit(X, Y).predict(X)
        np.testing.assert_array_equal(clone(model).fit(X, Y).predict(X), first)
