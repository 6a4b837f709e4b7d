"""Ground-truth checks of a simulated run fail on deliberately broken inputs."""

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge

from scene2brain.data.simulate import make_stimuli
from scene2brain.encoding import RidgeCV
from scene2brain.evaluation import ncsnr_from_repeats, noise_ceiling_from_ncsnr, pearson_r
from scene2brain.pipeline.analyses.ground_truth import (
    DISABLED,
    FAIL,
    NOT_RUN,
    PASS,
    checks_passed,
    ground_truth_checks,
    winner,
)

SPACES = {"gabor": ["gabor:energy"], "deep": ["effnet:head"], "calibration": ["effnet:head"]}


def _table(n=400, seed=0):
    """A voxel table in which everything is recovered: EV best by Gabor, HV by effnet, CAL at its ceiling."""
    rng = np.random.default_rng(seed)
    roi = np.repeat(["EV", "HV", "CAL"], n // 4).tolist()
    roi += ["EV"] * (n - len(roi))
    true_nc = rng.uniform(0.2, 0.9, n)
    table = pd.DataFrame({"roi": roi, "true_noise_ceiling": true_nc})
    table["noise_ceiling"] = np.clip(true_nc + rng.normal(0, 0.02, n), 0, 1)
    ev = table["roi"].eq("EV").to_numpy()
    good, poor = np.sqrt(0.95 * true_nc), np.sqrt(0.2 * true_nc)
    table["r[gabor:energy]"] = np.where(ev, good, poor)
    table["r[effnet:head]"] = np.where(ev, poor, good)
    for space in ("gabor:energy", "effnet:head"):
        table[f"nnacc[{space}]"] = 100 * table[f"r[{space}]"] ** 2 / table["noise_ceiling"]
    return table


def _statuses(checks):
    return {c["id"]: c["status"] for c in checks.values()}


def test_a_recovered_truth_passes_every_check():
    checks = ground_truth_checks(_table(), SPACES)
    assert _statuses(checks) == dict.fromkeys(("ev-gabor", "hv-driver", "cal-ceiling", "noise-ceiling"), PASS)
    assert checks_passed({"sim01": checks})


def test_nan_scores_never_win():
    assert winner({"gabor": np.nan, "effnet": 0.3}) == ("effnet", ["gabor"])
    assert winner({"gabor": np.nan}) == (None, ["gabor"])
    table = _table()
    table[["r[gabor:energy]", "nnacc[gabor:energy]"]] = np.nan  # a broken Gabor space, listed first
    checks = ground_truth_checks(table, SPACES)
    ev = next(c for c in checks.values() if c["id"] == "ev-gabor")
    assert ev["status"] == FAIL and ev["found"]["best"] == "effnet:head" and ev["found"]["nan"] == ["gabor:energy"]
    table[["r[effnet:head]", "nnacc[effnet:head]"]] = np.nan
    assert _statuses(ground_truth_checks(table, SPACES))["hv-driver"] == FAIL  # nothing finite: no winner


def test_missing_inputs_are_not_run_and_fail_unless_disabled():
    table = _table().drop(columns=["noise_ceiling"]).assign(noise_ceiling=np.nan)
    table = table.drop(columns=[c for c in table if c.startswith("nnacc")])
    spaces = {"gabor": [], "deep": ["effnet:head"], "calibration": ["effnet:head"]}
    checks = ground_truth_checks(table, spaces)
    assert _statuses(checks) == {"ev-gabor": NOT_RUN, "hv-driver": PASS, "cal-ceiling": PASS, "noise-ceiling": NOT_RUN}
    assert not checks_passed({"sim01": checks})
    checks = ground_truth_checks(table, spaces, skip=["ev-gabor", "noise-ceiling"])
    assert _statuses(checks)["ev-gabor"] == DISABLED and checks_passed({"sim01": checks})
    assert not checks_passed({})  # no checks at all is not a pass


def _repeats_table(n_trials_assumed):
    """Noise ceilings of simulated voxels estimated from 3 repeats, assuming ``n_trials_assumed`` repeats."""
    rng = np.random.default_rng(1)
    n_stim, n_vox, repeats = 120, 300, 3
    ncsnr = 0.6 * np.exp(0.5 * rng.standard_normal(n_vox))
    signal = rng.standard_normal((n_stim, n_vox))
    stimulus = np.repeat(np.arange(n_stim), repeats)
    data = signal[stimulus] + rng.standard_normal((len(stimulus), n_vox)) / ncsnr
    estimate = noise_ceiling_from_ncsnr(ncsnr_from_repeats(data, stimulus), n_trials_assumed)
    table = _table(n_vox)
    table["true_noise_ceiling"] = ncsnr**2 / (ncsnr**2 + 1 / repeats)
    table["noise_ceiling"] = estimate
    return table


def test_noise_ceiling_check_catches_a_wrong_number_of_repeats():
    right = ground_truth_checks(_repeats_table(3), SPACES)
    wrong = ground_truth_checks(_repeats_table(1), SPACES)  # n = 1 instead of 3: still correlates with the truth
    found = next(c for c in wrong.values() if c["id"] == "noise-ceiling")["found"]
    assert found["correlation"] > 0.8 and found["bias"] < -0.1
    assert _statuses(right)["noise-ceiling"] == PASS and _statuses(wrong)["noise-ceiling"] == FAIL


def test_calibration_check_catches_a_wrong_alpha():
    """CAL voxels are linear in an unwhitened PCA space; a 1e6-fold too strong penalty shrinks its weak components."""
    rng = np.random.default_rng(2)
    n, n_test, p = 700, 200, 32
    features = rng.standard_normal((n, 200)) @ (rng.standard_normal((200, 200)) * (np.arange(1, 201) ** -1.0)[:, None])
    train, test = np.arange(n_test, n), np.arange(n_test)
    space = PCA(p, random_state=0).fit(features[train]).transform(features)  # not whitened
    z = (space - space[train].mean(0)) / space[train].std(0)
    n_vox = 60
    signal = z @ rng.standard_normal((p, n_vox))
    signal = (signal - signal.mean(0)) / signal.std(0)
    ncsnr = np.full(n_vox, 1.2)
    true_nc = ncsnr**2 / (ncsnr**2 + 1 / 3)
    noisy = (
        signal
        + rng.standard_normal(signal.shape) / ncsnr / np.sqrt(np.where(np.isin(np.arange(n), test), 3, 1))[:, None]
    )
    fitted = RidgeCV(cv=5).fit(space[train], noisy[train])
    wrong = Ridge(alpha=1e6 * np.median(fitted.best_alphas_)).fit(space[train], noisy[train])
    results = {}
    for name, model in (("right", fitted), ("wrong", wrong)):
        table = pd.DataFrame({"roi": "CAL", "true_noise_ceiling": true_nc, "noise_ceiling": true_nc})
        table["r[pca]"] = pearson_r(noisy[test], model.predict(space[test]))
        table["nnacc[pca]"] = 100 * table["r[pca]"] ** 2 / true_nc
        results[name] = ground_truth_checks(table, {"gabor": [], "deep": [], "calibration": ["pca"]})
    assert _statuses(results["right"])["cal-ceiling"] == PASS
    assert _statuses(results["wrong"])["cal-ceiling"] == FAIL


def test_simulated_test_set_is_novel():
    stimuli, splits = make_stimuli(1200, seed=0)
    table = stimuli.table
    photo = table["category"].eq("photo").to_numpy()
    test_photos = set(table.loc[splits["test"]][photo[splits["test"]]]["source"])
    train_photos = set(table.loc[splits["train"]][photo[splits["train"]]]["source"])
    assert test_photos and train_photos and not test_photos & train_photos
    images = stimuli.load_images()
    faces = np.flatnonzero(~photo)
    test_faces, train_faces = np.intersect1d(faces, splits["test"]), np.intersect1d(faces, splits["train"])
    assert len(test_faces) and table.loc[test_faces, "is_face"].mean() == pytest.approx(0.5)
    # no LFW test image is a copy of a training one
    flat = images.reshape(len(images), -1)
    assert not any((flat[train_faces] == flat[i]).all(axis=1).any() for i in test_faces)
    assert len(splits["test"]) == 200 and len(np.intersect1d(splits["train"], splits["test"])) == 0


def test_a_winner_check_without_a_competitor_is_not_run():
    """With only the Gabor space, "EV is best predicted by Gabor" would pass whatever its scores."""
    table = _table().drop(columns=["r[effnet:head]", "nnacc[effnet:head]"])
    table["r[gabor:energy]"] = table["nnacc[gabor:energy]"] = 0.0  # a useless space that nothing else can beat
    checks = ground_truth_checks(table, {"gabor": ["gabor:energy"], "deep": [], "calibration": []})
    ev = next(c for c in checks.values() if c["id"] == "ev-gabor")
    assert ev["status"] == NOT_RUN and "no other feature space" in ev["found"]
    assert not checks_passed({"sim01": checks})
