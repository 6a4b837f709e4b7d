"""The torch MLP decoder: seeded, eval-mode predictions, best-epoch weights, grouped validation split."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from scene2brain.decoding import MLPDecoder, decode
from scene2brain.decoding.mlp import validation_split

SMALL = {"hidden_layers": (32, 16), "max_epochs": 40, "patience": 8, "batch_size": 32, "validation_fraction": 0.25}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(80), 2)
    ys = rng.integers(0, 3, 80)
    X = rng.standard_normal((160, 30))
    X[:, :2] += ys[g, None] * 0.8
    return X, np.array(["a", "b", "c"])[ys[g]], g


def test_seeded_and_deterministic(data):
    X, y, g = data
    a = MLPDecoder(random_state=3, **SMALL).fit(X, y, groups=g)
    b = clone(a).fit(X, y, groups=g)
    c = MLPDecoder(random_state=4, **SMALL).fit(X, y, groups=g)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.validation_curve_, b.validation_curve_)
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))
    # the global torch generator is left alone
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    MLPDecoder(random_state=3, **SMALL).fit(X, y)
    assert torch.rand(1) == before


def test_predictions_do_not_depend_on_the_batch(data):
    X, y, g = data
    model = MLPDecoder(random_state=0, **SMALL).fit(X, y, groups=g)
    together = model.predict_proba(X)
    one_by_one = np.vstack([model.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)
    np.testing.assert_allclose(together.sum(axis=1), 1.0)
    assert set(model.predict(X)) <= set(model.classes_)
    assert model.decision_function(X).shape == (len(X), 3)


def test_early_stopping_keeps_the_best_epoch(data):
    X, y, g = data
    model = MLPDecoder(random_state=0, dropout=0.0, lr=0.01, **{**SMALL, "hidden_layers": (64, 32)}).fit(X, y, groups=g)
    curve = model.validation_curve_
    assert model.best_epoch_ == int(np.argmin(curve))
    assert model.best_epoch_ < len(curve) - 1 and curve[-1] > curve.min() + 1e-3  # training went on past the best
    assert len(curve) == model.best_epoch_ + 1 + SMALL["patience"]  # and stopped after `patience` worse epochs
    # the kept weights are the best epoch's: their validation loss is the curve's minimum, not its last value
    val = model.validation_indices_
    codes = np.searchsorted(model.classes_, y[val])
    counts = np.bincount(np.searchsorted(model.classes_, np.delete(y, val)), minlength=3)
    weight = torch.as_tensor(len(y[np.setdiff1d(np.arange(len(y)), val)]) / (3 * counts), dtype=torch.float32)
    logits = torch.as_tensor(model._logits(X[val]), dtype=torch.float32)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(codes), weight=weight)
    assert float(loss) == pytest.approx(curve.min(), abs=1e-5)


def test_dropout_is_active_in_training_only(data):
    X, y, g = data
    model = MLPDecoder(random_state=0, **SMALL).fit(X, y, groups=g)
    dropouts = [m for m in model.module_ if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 2 and all(m.p == 0.6 for m in dropouts)
    x = torch.as_tensor(X[:20], dtype=torch.float32)
    assert not model.module_.training
    with torch.no_grad():
        model.module_.eval()
        assert torch.equal(model.module_(x), model.module_(x))
        model.module_.train()
        assert not torch.equal(model.module_(x), model.module_(x))
    model.module_.eval()


def test_validation_split_keeps_groups_and_balance_options(data):
    X, y, g = data
    train, val = validation_split(len(g), 0.25, g, seed=1)
    assert len(np.intersect1d(g[train], g[val])) == 0 and len(train) + len(val) == len(g)
    assert len(np.unique(g[val])) == 20
    for balance in ("loss", None):
        model = MLPDecoder(random_state=0, balance=balance, **SMALL).fit(X, y, groups=g)
        assert model.score(X, y) > 0.5
    with pytest.raises(ValueError, match="balance"):
        MLPDecoder(balance="oversample").fit(X, y)


def test_mlp_in_decode_passes_groups_and_decodes(data):
    X, y, g = data
    X = X.copy()
    X[:, :2] += 2.0 * np.searchsorted(["a", "b", "c"], y)[:, None]  # an easy problem
    res = decode(X[:120], y[:120], X[120:], y[120:], groups=g[:120], decoder="mlp", options=SMALL)
    assert res.balanced_accuracy > 0.55 and res.hyperparameters == {}
