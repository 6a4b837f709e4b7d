"""The bottleneck network: references are scikit-learn, numpy, our ridge and hand-built simulated subjects."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler
from torch import nn

from scene2brain.encoding import RidgeCV
from scene2brain.encoding._bottleneck_net import loss_value, make_optimizer
from scene2brain.encoding.ablation import run_ablation
from scene2brain.encoding.bottleneck import BottleneckNetwork, fit_bottleneck, pretrain_trunk
from scene2brain.evaluation.metrics import pearson_r, r2_score


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one torch thread is faster than two fighting over a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def nonlinear(n=600, p=8, v=20, noise=0.5, seed=0):
    """Y = softplus(2 X a) + (X b)^2 + noise: half of the signal is out of a linear model's reach."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    a = rng.standard_normal((p, v)) / np.sqrt(p)
    b = rng.standard_normal((p, v)) / np.sqrt(p)
    signal = np.logaddexp(0, 2 * X @ a) + (X @ b) ** 2
    return X * 3.0 + 1.0, signal * 2.0 + 5.0 + noise * rng.standard_normal((n, v)), signal


def small(**kw):
    params = dict(n_input_components=6, n_output_components=5, width=32, max_epochs=5, batch_size=32, device="cpu")
    return BottleneckNetwork(**{**params, **kw})


@pytest.fixture(scope="module")
def data():
    return nonlinear()


# ----------------------------------------------------------------------------- determinism, reductions


def test_predictions_are_deterministic_and_seeded(data):
    X, Y, _ = data
    a = small().fit(X[:400], Y[:400])
    first = a.predict(X[400:])
    np.testing.assert_array_equal(first, a.predict(X[400:]))  # eval mode: no dropout, no noise
    np.testing.assert_array_equal(first[:7], a.predict(X[400:407]))  # a row's prediction ignores other rows
    np.testing.assert_array_equal(first, small().fit(X[:400], Y[:400]).predict(X[400:]))  # same seed, same fit
    other = small(random_state=1).fit(X[:400], Y[:400]).predict(X[400:])
    assert np.abs(other - first).max() > 1e-3
    assert first.shape == (200, Y.shape[1]) and first.dtype == np.float64


def test_reductions_see_only_the_weight_training_rows(data):
    X, Y, _ = data
    X, Y = X[:300], Y[:300]
    model = small(validation_fraction=0.25).fit(X, Y)
    train, val = model.training_indices_, model.validation_indices_
    assert len(val) == 75 and np.intersect1d(train, val).size == 0 and len(train) + len(val) == 300
    assert not np.array_equal(val, np.arange(val[0], val[0] + 75))  # a shuffled draw, not a block of rows

    # the input and response reductions equal scikit-learn's fitted on exactly the training rows
    scaler = StandardScaler().fit(X[train])
    pca = PCA(6).fit(scaler.transform(X[train]))
    ours = model.input_pipeline_.named_steps["pca"]
    np.testing.assert_allclose(np.abs(ours.components_), np.abs(pca.components_), atol=1e-8)
    np.testing.assert_allclose(model.input_pipeline_.named_steps["scale"].mean_, X[train].mean(axis=0))
    y_scaler = StandardScaler().fit(Y[train])
    y_pca = PCA(5).fit(y_scaler.transform(Y[train]))
    coder_pca = model.response_coder_.pipelines_[0].named_steps["pca"]
    np.testing.assert_allclose(np.abs(coder_pca.components_), np.abs(y_pca.components_), atol=1e-8)

    # wrecking the validation rows leaves both reductions (and the ceiling) exactly as they were
    X2, Y2 = X.copy(), Y.copy()
    X2[val] = X2[val] * 100.0 + 50.0
    Y2[val] = -Y2[val] * 30.0 - 9.0
    again = small(validation_fraction=0.25).fit(X2, Y2)
    np.testing.assert_array_equal(again.validation_indices_, val)
    np.testing.assert_array_equal(again.input_pipeline_.named_steps["pca"].components_, ours.components_)
    np.testing.assert_array_equal(again.response_coder_.pipelines_[0].named_steps["pca"].components_,
                                  coder_pca.components_)  # fmt: skip
    np.testing.assert_array_equal(again.reconstruction_ceiling_, model.reconstruction_ceiling_)
    assert again.history_["validation_loss"][0] != model.history_["validation_loss"][0]  # val rows do matter there


def test_validation_part_takes_whole_row_groups(data):
    X, Y, _ = data
    photos = np.repeat(np.arange(100), 3)  # three crops per photograph
    model = small(validation_fraction=0.2).fit(X[:300], Y[:300], groups_of_rows=photos)
    held = np.unique(photos[model.validation_indices_])
    assert len(held) == 20 and not np.isin(photos[model.training_indices_], held).any()


def test_reconstruction_ceiling_per_voxel_group(data):
    X, Y, _ = data
    groups = np.array(["lh"] * 12 + ["rh"] * 8)
    model = small(n_output_components=4).fit(X[:400], Y[:400], groups=groups)
    assert model.n_output_components_ == 8 and model.response_coder_.slices_ == [slice(0, 4), slice(4, 8)]
    train = model.training_indices_
    expected = np.empty(20)
    for cols in (np.arange(12), np.arange(12, 20)):
        scaler = StandardScaler().fit(Y[train][:, cols])
        pca = PCA(4).fit(scaler.transform(Y[train][:, cols]))
        held = scaler.transform(Y[400:, cols])
        expected[cols] = r2_score(held, pca.inverse_transform(pca.transform(held)))  # R^2 is scale-free per voxel
    np.testing.assert_allclose(model.reconstruction_ceiling(Y[400:]), expected, rtol=1e-8)
    assert np.all(model.reconstruction_ceiling_ < 1)
    full = small(n_output_components=None).fit(X[:400], Y[:400])
    np.testing.assert_allclose(full.reconstruction_ceiling(Y[400:]), 1.0)
    assert full.n_output_components_ == 20


# ----------------------------------------------------------------------------- dropout, leak


def _record_dropout(run):
    """Run ``run()`` and return (training, input, output) of every dropout call on the way."""
    calls = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Dropout):
            calls.append((module.training, inputs[0].detach().clone(), output.detach().clone()))

    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        run()
    finally:
        handle.remove()
    return calls


def test_dropout_draws_a_fresh_mask_per_batch_and_none_at_evaluation(data):
    X, Y, _ = data
    model = small(dropout=0.5, max_epochs=1, validation_fraction=0.0, width=64)
    calls = _record_dropout(lambda: model.fit(X[:128], Y[:128]))
    training = [(i, o) for t, i, o in calls if t]
    assert len(training) == 4  # 128 rows in batches of 32
    masks = [(o == 0) & (i != 0) for i, o in training]
    assert all(0.4 < m.float().mean() < 0.6 for m in masks)  # p = 0.5 of the units dropped
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])
    inputs, outputs = training[0]
    torch.testing.assert_close(outputs[~masks[0]], inputs[~masks[0]] * 2.0)  # kept units scaled by 1 / (1 - p)
    evaluation = _record_dropout(lambda: model.predict(X[128:160]))
    assert evaluation and all(not t and torch.equal(i, o) for t, i, o in evaluation)


def test_leak_path_is_fed_zeros_at_inference(data):
    X, Y, _ = data
    model = small(leak=0.5, max_epochs=8).fit(X[:400], Y[:400])
    head = model.module_.heads["subject"]
    assert head.leak_projection is not None
    x = torch.as_tensor(model.input_pipeline_.transform(X[400:]) / model.input_scale_, dtype=torch.float32)
    with torch.no_grad():
        h = model.module_.trunk(x)
        zeros = head(h, torch.zeros(len(x), model.n_output_components_))
        leaked = head(h, torch.ones(len(x), model.n_output_components_))
    expected = model.response_coder_.decode(zeros.numpy().astype(np.float64))
    np.testing.assert_allclose(model.predict(X[400:]), expected, rtol=1e-6, atol=1e-6)
    assert torch.abs(leaked - zeros).max() > 1e-3  # the leak path is live: feeding targets would change the output
    np.testing.assert_array_equal(model.predict(X[400:]), model.predict(X[400:]))
    assert small().fit(X[:400], Y[:400]).module_.heads["subject"].leak_projection is None  # no leak: no path


# ----------------------------------------------------------------------------- losses, optimisers


def test_losses_match_numpy_references():
    rng = np.random.default_rng(3)
    pred, target = rng.standard_normal((50, 6)), rng.standard_normal((50, 6))
    tp, tt = torch.as_tensor(pred), torch.as_tensor(target)
    slices = [slice(0, 4), slice(4, 6)]
    assert float(loss_value("mse", tp, tt, slices)) == pytest.approx(np.mean((pred - target) ** 2))
    assert float(loss_value("correlation", tp, tt, slices)) == pytest.approx(1 - pearson_r(target, pred).mean())
    cosines = []
    for s in slices:
        a, b = pred[:, s], target[:, s]
        cosines.append(np.mean(np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
    racing = np.mean((pred - target) ** 2) + 1 - 0.5 * (min(cosines) + np.mean(cosines))
    assert float(loss_value("racing", tp, tt, slices)) == pytest.approx(racing)
    assert float(loss_value("racing", tt, tt, slices)) == pytest.approx(0.0, abs=1e-12)


def test_lion_and_adamw_optimisers_train(data):
    from lion_pytorch import Lion

    assert isinstance(make_optimizer("lion", nn.Linear(2, 2).parameters(), 1e-4, 0.0), Lion)
    assert isinstance(make_optimizer("adamw", nn.Linear(2, 2).parameters(), 1e-4, 0.0), torch.optim.AdamW)
    X, Y, _ = data
    for kw in (dict(optimizer="lion", lr=1e-3, weight_decay=0.1), dict(loss="racing"), dict(loss="correlation")):
        model = small(max_epochs=15, **kw).fit(X[:400], Y[:400])
        assert model.history_["train_loss"][-1] < model.history_["train_loss"][0]
        assert np.median(pearson_r(Y[400:], model.predict(X[400:]))) > 0.4


# ----------------------------------------------------------------------------- against ridge, pretraining


def test_beats_voxelwise_ridge_on_a_nonlinear_problem():
    X, Y, signal = nonlinear(n=1300, p=8, v=20, noise=1.0, seed=1)
    train, test = slice(0, 1000), slice(1000, None)
    net = BottleneckNetwork(n_output_components=None, width=128, max_epochs=150, patience=15, device="cpu")
    net.fit(X[train], Y[train])
    ridge = RidgeCV(cv=5).fit(X[train], Y[train])
    r_net = np.median(pearson_r(signal[test], net.predict(X[test])))
    r_ridge = np.median(pearson_r(signal[test], ridge.predict(X[test])))
    assert r_net > r_ridge + 0.2, (r_net, r_ridge)


def _subjects(shared: bool, seed: int = 0):
    """A target subject with few training rows and two with many; voxels = h_s(X) @ W_s + noise.

    ``shared``: every subject's h is one random two-layer network (shared tuning, own voxels);
    otherwise each subject has its own network (nothing to share).
    """
    rng = np.random.default_rng(seed)
    p, k = 16, 8

    def feature_map():
        W1, W2 = rng.standard_normal((p, 64)) / np.sqrt(p), rng.standard_normal((64, k)) / np.sqrt(64)
        return lambda X: np.tanh(2 * X @ W1) @ W2

    maps = [feature_map()] * 3 if shared else [feature_map() for _ in range(3)]
    out = {}
    for name, n, v, h in zip(("target", "a", "b"), (100, 2500, 2500), (30, 40, 25), maps, strict=True):
        X = rng.standard_normal((n + 400, p))
        S = h(X) @ rng.standard_normal((k, v))
        S /= S.std(axis=0)
        out[name] = (X[:n], S[:n] + rng.standard_normal((n, v)), X[n:], S[n:])
    return out


PRETRAIN = dict(n_input_components=None, n_output_components=None, width=96, dropout=0.1, max_epochs=60,
                patience=8, validation_fraction=0.2, lr=1e-3, batch_size=32, device="cpu")  # fmt: skip


def _gain(shared: bool, seed: int = 0) -> tuple[float, float]:
    subjects = _subjects(shared, seed)
    X, Y, X_test, S_test = subjects["target"]
    scratch = BottleneckNetwork(**PRETRAIN).fit(X, Y)
    trunk = pretrain_trunk({name: s[:2] for name, s in subjects.items()}, **PRETRAIN)
    tuned = BottleneckNetwork(**PRETRAIN, pretrained=trunk).fit(X, Y)
    r_scratch = np.median(pearson_r(S_test, scratch.predict(X_test)))
    r_tuned = np.median(pearson_r(S_test, tuned.predict(X_test)))
    return r_tuned, r_scratch


def test_pretraining_then_fine_tuning_beats_scratch_more_when_subjects_share_tuning():
    """Over three simulated studies: pretraining on subjects that share tuning helps every time, and more on average
    than pretraining on subjects that share nothing."""
    gains = {shared: [np.subtract(*_gain(shared, seed)) for seed in (0, 1, 2)] for shared in (True, False)}
    assert min(gains[True]) > 0.01, gains
    assert np.mean(gains[True]) > np.mean(gains[False]) + 0.01, gains


def test_pretrained_trunk_keeps_each_subjects_own_basis_and_head():
    subjects = _subjects(shared=True)
    pairs = {name: (s[0][:300], s[1][:300]) for name, s in subjects.items()}
    trunk = pretrain_trunk(pairs, **{**PRETRAIN, "max_epochs": 3, "n_output_components": 4})
    assert set(trunk.heads) == {"target", "a", "b"} and len(set(trunk.heads.values())) == 3
    for name, (X, Y) in pairs.items():
        head = trunk.module.heads[trunk.heads[name]]
        assert head.readout.out_features == 4
        assert trunk.coders[name].n_voxels_ == Y.shape[1]
        assert trunk.predict(name, X[:5]).shape == (5, Y.shape[1])
    # the input PCA is common: fitted on the pooled weight-training rows of all subjects
    rows = {name: np.setdiff1d(np.arange(len(X)), trunk.validation_indices[name]) for name, (X, _) in pairs.items()}
    pooled = np.concatenate([X[rows[name]] for name, (X, _) in pairs.items()])
    np.testing.assert_allclose(trunk.input_pipeline.named_steps["scale"].mean_, pooled.mean(axis=0))
    with pytest.raises(ValueError, match="width"):
        BottleneckNetwork(**{**PRETRAIN, "width": 32}, pretrained=trunk).fit(*pairs["target"])
    with pytest.raises(ValueError, match="subject"):
        trunk.predict("nobody", pairs["a"][0])


# ----------------------------------------------------------------------------- registry entry, ablation


def test_fit_bottleneck_cv_score_is_the_mean_held_out_r2_over_folds(data):
    X, Y, _ = data
    X, Y = X[:240], Y[:240, :6]
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    options = dict(n_input_components=5, n_output_components=3, width=16, max_epochs=3, batch_size=32)
    fitted = fit_bottleneck(X, Y, folds, random_state=2, device="cpu", **options)
    manual = []
    for train, test in folds:
        model = BottleneckNetwork(**options, random_state=2, device="cpu").fit(X[train], Y[train])
        manual.append(r2_score(Y[test], model.predict(X[test])))
    np.testing.assert_allclose(fitted.cv_score, np.mean(manual, axis=0), rtol=1e-10)
    np.testing.assert_array_equal(
        fitted.predict(X), BottleneckNetwork(**options, random_state=2, device="cpu").fit(X, Y).predict(X)
    )
    assert np.isnan(fitted.alphas).all() and fitted.alphas.shape == (6,)
    assert set(fitted.summary) == {
        "epochs", "best_epoch", "n_input_components", "n_output_components", "reconstruction_ceiling_median", "cv"
    }  # fmt: skip
    assert fitted.summary["n_output_components"] == 3 and fitted.summary["cv"] is True
    quick = fit_bottleneck(X, Y, folds, device="cpu", cv=False, **options)
    assert np.isnan(quick.cv_score).all() and quick.summary["cv"] is False
    pairs = np.arange(240) // 2
    grouped = fit_bottleneck(
        X, Y, folds, device="cpu", cv=False, voxel_groups=np.repeat(["lh", "rh"], 3), row_groups=pairs, **options
    )
    assert grouped.summary["n_output_components"] == 6  # 3 PCs per hemisphere
    held = np.unique(pairs[grouped.model.validation_indices_])
    assert not np.isin(pairs[grouped.model.training_indices_], held).any()


def test_ablation_gives_one_row_per_cell_with_intervals(data):
    X, Y, _ = data
    rng = np.random.default_rng(5)
    others = {"other": (X[:300] + 0.1 * rng.standard_normal((300, 8)), Y[:300, ::-1])}
    base = dict(n_input_components=6, n_output_components=4, width=16, max_epochs=4, batch_size=64, device="cpu")
    table = run_ablation(
        X[:300], Y[:300], X[300:], Y[300:], base,
        {"leak": [0.0, 0.3], "loss": ["racing"], "pretrain": [True]},
        seeds=(0, 1), n_bootstraps=200, pretrain=others,
    )  # fmt: skip
    assert list(table["factor"]) == ["base", "leak", "loss", "pretrain"]  # leak 0.0 is the base cell
    assert list(table["value"][1:]) == [0.3, "racing", True]
    assert (table["n_seeds"] == 2).all() and all(len(s) == 2 for s in table["seed_scores"])
    assert ((table["ci_low"] <= table["score"]) & (table["score"] <= table["ci_high"])).all()
    rest = table.iloc[1:]
    assert ((rest["diff_low"] <= rest["diff_vs_base"]) & (rest["diff_vs_base"] <= rest["diff_high"])).all()
    assert np.isnan(table.loc[0, "diff_vs_base"])
    # the score is the median r of the seed-averaged prediction: recomputed by hand for the base cell
    preds = [BottleneckNetwork(**base, random_state=s).fit(X[:300], Y[:300]).predict(X[300:]) for s in (0, 1)]
    assert table.loc[0, "score"] == pytest.approx(np.median(pearson_r(Y[300:], np.mean(preds, axis=0))))
    ceiling = np.full(Y.shape[1], 0.5)
    nn_table = run_ablation(X[:300], Y[:300], X[300:], Y[300:], base, {}, seeds=(0, 1), noise_ceiling=ceiling,
                            n_bootstraps=100)  # fmt: skip
    r = pearson_r(Y[300:], np.mean(preds, axis=0))
    assert nn_table.loc[0, "score"] == pytest.approx(np.median(np.minimum(100 * np.clip(r, 0, None) ** 2 / 0.5, 100)))
    with pytest.raises(ValueError, match="not ablation factors"):
        run_ablation(X[:300], Y[:300], X[300:], Y[300:], base, {"bogus": [1]})
    with pytest.raises(ValueError, match="pretrain"):
        run_ablation(X[:300], Y[:300], X[300:], Y[300:], base, {"pretrain": [True]})


# ----------------------------------------------------------------------------- bad input


BAD_PARAMS = [
    ({"loss": "bogus"}, "loss"),
    ({"optimizer": "bogus"}, "optimizer"),
    ({"activation": "tanh"}, "activation"),
    ({"leak": 1.0}, "leak"),
    ({"leak": -0.1}, "leak"),
    ({"dropout": 1.0}, "dropout"),
    ({"width": 0}, "width"),
    ({"depth": -1}, "depth"),
    ({"batch_size": 1}, "batch_size"),
    ({"n_input_components": 0}, "n_input_components"),
    ({"n_output_components": 2.5}, "n_output_components"),
    ({"lr": 0.0}, "lr"),
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"device": "tpu"}, "device"),
    ({"pretrained": "yes"}, "pretrained"),
]


@pytest.mark.parametrize(("params", "name"), BAD_PARAMS)
def test_bad_parameters_name_themselves(data, params, name):
    X, Y, _ = data
    with pytest.raises(ValueError, match=name):
        small(**params).fit(X[:100], Y[:100])


def test_bad_data_names_the_argument(data):
    X, Y, _ = data
    X, Y = X[:100].copy(), Y[:100].copy()
    cases = [
        ((X[:, 0], Y), "X"),
        ((X, Y[:90]), "X and Y"),
        ((X, Y[:, 0]), "Y"),
        ((np.where(np.arange(8) == 3, np.nan, X), Y), "X: expected finite"),
        ((X, np.where(np.arange(20) == 3, np.inf, Y)), "Y: expected finite"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            small().fit(*args)
    with pytest.raises(ValueError, match="groups"):
        small().fit(X, Y, groups=np.zeros(19))
    with pytest.raises(ValueError, match="groups_of_rows"):
        small().fit(X, Y, groups_of_rows=np.zeros(99))
    with pytest.raises(ValueError, match="validation_fraction"):
        small(validation_fraction=0.5).fit(X[:3], Y[:3])
    model = small().fit(X, Y)
    with pytest.raises(ValueError, match="X: expected 8 columns"):
        model.predict(X[:, :5])
    with pytest.raises(ValueError, match="subjects"):
        pretrain_trunk({"a": (X, Y), "b": (X[:, :5], Y)}, **PRETRAIN)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu_closely(data):
    X, Y, _ = data
    cpu = small(max_epochs=3).fit(X[:400], Y[:400]).predict(X[400:])
    gpu = small(max_epochs=3, device="cuda").fit(X[:400], Y[:400])
    assert next(gpu.module_.parameters()).device.type == "cuda"
    np.testing.assert_allclose(gpu.predict(X[400:]), cpu, rtol=1e-3, atol=1e-3)
