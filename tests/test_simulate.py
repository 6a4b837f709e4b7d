import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scene2brain.data.simulate import (
    PHOTO_CLASSES,
    ROI_ORDER,
    ROIS,
    SPARSE_FACTORS,
    SPARSE_QUANTILE,
    SimulationDrivers,
    SubjectConfig,
    make_stimuli,
    photographs,
    simulate_responses,
)
from scene2brain.evaluation import ncsnr_from_repeats, noise_ceiling_from_ncsnr
from scene2brain.features import GaborPyramid


def test_photographs_come_from_installed_packages():
    photos = photographs()
    assert len(photos) >= 15
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in photos.values())


def test_default_stimulus_set_has_over_1000_crops():
    stimuli, splits = make_stimuli(seed=0)
    table = stimuli.table
    assert (table["category"] == "photo").sum() >= 1000
    assert table["source"].nunique() >= 15 and table["crop_size"].nunique() > 10
    assert table["is_face"].sum() == 100
    assert stimuli.load_images([0]).shape == (1, 128, 128, 3)
    assert len(np.intersect1d(splits["train"], splits["test"])) == 0
    assert len(splits["train"]) + len(splits["test"]) == len(stimuli)


def test_make_stimuli_is_reproducible():
    a, sa = make_stimuli(120, seed=3)
    b, sb = make_stimuli(120, seed=3)
    c, _ = make_stimuli(120, seed=4)
    np.testing.assert_array_equal(a.load_images(), b.load_images())
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(sa["test"], sb["test"])
    assert not np.array_equal(a.load_images(), c.load_images())


def _drivers(n, rng):
    pyramid = GaborPyramid(16, (1, 2, 4), n_orientations=4)
    return SimulationDrivers(
        gabor_energy=pyramid.transform(rng.random((n, 16, 16))),
        gabor_channels=pyramid.channels(),
        deep=rng.standard_normal((n, 20)),
        calibration=rng.standard_normal((n, 5)),
        is_face=rng.random(n) < 0.2,
    )


def _setup(n=1000, n_test=600, seed=0, config=None):
    stimuli, splits = make_stimuli(n, n_test=n_test, image_size=16, n_faces=0, seed=seed)
    drivers = _drivers(n, np.random.default_rng(seed))
    return simulate_responses(stimuli, splits, drivers, config or SubjectConfig.scaled(200), seed=seed)


def test_simulation_is_reproducible_and_carries_ground_truth():
    a, b, c = _setup(300, 100, seed=1), _setup(300, 100, seed=1), _setup(300, 100, seed=2)
    np.testing.assert_array_equal(a.responses.data, b.responses.data)
    pd.testing.assert_frame_equal(a.voxels, b.voxels)
    assert not np.array_equal(a.responses.data, c.responses.data)
    vox = a.voxels
    assert set(vox["roi"]) == {"EV", "HV", "FACE", "CAL", "BLIND", "SPARSE"} == set(ROIS) == set(ROI_ORDER)
    assert (vox.loc[vox["roi"] == "BLIND", "driver"] == "none").all()
    ev = vox[vox["roi"] == "EV"]
    for col in ("prf_x", "prf_y", "prf_size", "pref_orientation", "pref_frequency", "exponent"):
        assert ev[col].notna().all()
    assert (ev["driver"] == "gabor").all()
    assert ((vox["true_noise_ceiling"] > 0) & (vox["true_noise_ceiling"] < 1)).all()
    # repeats: 1 per training stimulus, 3 per test stimulus
    stim, counts = a.responses.repeat_counts()
    assert set(counts[np.isin(stim, a.splits["test"])]) == {3}
    assert set(counts[np.isin(stim, a.splits["train"])]) == {1}


def test_snr_follows_the_configured_law_and_the_data_carry_it():
    # per-ROI medians far apart and a log-SD other than the default, so a simulation that
    # ignores either (or scales the noise by anything but 1 / ncsnr) fails
    medians = {"EV": 0.3, "HV": 1.5, "FACE": 0.8, "CAL": 2.0, "BLIND": 1.1}
    config = SubjectConfig(n_voxels=dict.fromkeys(medians, 600), ncsnr_median=medians, ncsnr_log_sd=0.7)
    exp = _setup(900, 600, config=config)
    vox = exp.voxels
    true = vox["true_ncsnr"].to_numpy()
    roi = vox["roi"].to_numpy()
    # the voxel table's ncsnr is log-normal around each ROI's configured median with the configured log-SD
    for name, median in medians.items():
        assert np.median(true[roi == name]) == pytest.approx(median, rel=0.15), name
    log_resid = np.log(true) - np.log(vox["roi"].map(medians).to_numpy())
    assert np.std(log_resid, ddof=1) == pytest.approx(config.ncsnr_log_sd, abs=0.05)
    # and the trial noise matches it: ncsnr estimated from the test repeats recovers the truth
    test = exp.trials_in_split("test")
    est = ncsnr_from_repeats(exp.responses.data[test], exp.responses.trial_stimulus[test])
    for name in medians:
        sel = roi == name
        assert np.median(est[sel]) / np.median(true[sel]) == pytest.approx(1.0, abs=0.1), name
    strong = true > 0.5  # where three repeats pin the estimate down
    assert np.median(np.abs(np.log(est[strong] / true[strong]))) < 0.1
    assert stats.spearmanr(est, true)[0] > 0.9


def test_true_noise_ceiling_matches_estimate_from_repeats():
    exp = _setup(1200, 900)
    test_trials = exp.trials_in_split("test")
    stim = exp.responses.trial_stimulus[test_trials]
    est = noise_ceiling_from_ncsnr(ncsnr_from_repeats(exp.responses.data[test_trials], stim), 3)
    true = exp.voxels["true_noise_ceiling"].to_numpy()
    assert np.corrcoef(est, true)[0, 1] > 0.95
    assert np.median(np.abs(est - true)) < 0.04
    assert abs(np.mean(est - true)) < 0.02


def test_calibration_voxels_are_exactly_linear_in_their_space():
    n = 200
    stimuli, splits = make_stimuli(n, n_test=50, image_size=16, n_faces=0, seed=0)
    drivers = _drivers(n, np.random.default_rng(0))
    config = SubjectConfig(n_voxels={"CAL": 5}, ncsnr_median={"CAL": 1e6}, ncsnr_log_sd=0.0)
    exp = simulate_responses(stimuli, splits, drivers, config)
    avg = exp.average_repeats().responses
    X = np.column_stack([drivers.calibration[avg.trial_stimulus], np.ones(len(avg.trial_stimulus))])
    coef, *_ = np.linalg.lstsq(X, avg.data.astype(np.float64), rcond=None)
    np.testing.assert_allclose(X @ coef, avg.data, atol=1e-4)


def test_simulation_checks_driver_shapes():
    stimuli, splits = make_stimuli(100, n_test=20, image_size=16, n_faces=0)
    drivers = _drivers(99, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"drivers.gabor_energy: expected 100 rows"):
        simulate_responses(stimuli, splits, drivers)


def test_label_columns_of_the_bundled_stimuli():
    assert set(PHOTO_CLASSES) == set(photographs())  # every bundled photograph has a coarse class
    stimuli, _ = make_stimuli(300, image_size=16, seed=0)
    table = stimuli.table
    crops, lfw = table[table["source"] != "lfw"], table[table["source"] == "lfw"]
    assert table["coarse_class"].notna().all() and table["face"].notna().all()
    # crops of one photograph share its class; LFW images are "face" or "nonface" as is_face says
    assert (crops.groupby("source")["coarse_class"].nunique() == 1).all()
    assert (crops["coarse_class"] == crops["source"].map(PHOTO_CLASSES)).all()
    assert crops.loc[crops["source"] == "chelsea", "coarse_class"].eq("animal").all()
    assert lfw["coarse_class"].tolist() == np.where(lfw["is_face"], "face", "nonface").tolist()
    assert table["face"].tolist() == np.where(table["is_face"], "face", "nonface").tolist()
    assert set(table["face"]) == {"face", "nonface"} and (crops["face"] == "nonface").all()
    assert set(crops["coarse_class"]) <= set(PHOTO_CLASSES.values())


def _faces_experiment(config, n=400, seed=0):
    """Bundled stimuli with half of them LFW images (100 faces), Gabor energies of the pixels, random deep drivers."""
    stimuli, splits = make_stimuli(n, n_test=100, image_size=16, n_faces=200, seed=seed)
    rng = np.random.default_rng(seed)
    pyramid = GaborPyramid(16, (1, 2, 4), n_orientations=4)
    drivers = SimulationDrivers(
        gabor_energy=pyramid.transform(stimuli.load_images().mean(axis=-1) / 255.0),
        gabor_channels=pyramid.channels(),
        deep=rng.standard_normal((n, 20)),
        calibration=rng.standard_normal((n, 5)),
        is_face=stimuli.table["is_face"].to_numpy(),
    )
    return simulate_responses(stimuli, splits, drivers, config, seed=seed), drivers


def test_blind_roi_is_reliable_but_carries_no_face_information():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score, permutation_test_score

    exp, _ = _faces_experiment(SubjectConfig.scaled(600))
    vox = exp.voxels
    roi = vox["roi"].to_numpy()
    # a real noise ceiling, comparable to the face-selective ROI's (same ncsnr law)
    blind_nc = vox.loc[roi == "BLIND", "true_noise_ceiling"].median()
    face_nc = vox.loc[roi == "FACE", "true_noise_ceiling"].median()
    assert 0.3 < blind_nc and blind_nc == pytest.approx(face_nc, abs=0.2)  # 90 voxels each: sampling spread
    test = exp.trials_in_split("test")
    est = noise_ceiling_from_ncsnr(ncsnr_from_repeats(exp.responses.data[test], exp.responses.trial_stimulus[test]), 3)
    assert np.median(est[roi == "BLIND"]) == pytest.approx(blind_nc, abs=0.1)  # and it is measurable from repeats

    avg = exp.average_repeats().responses
    y = exp.stimuli.table["face"].to_numpy()[avg.trial_stimulus]
    assert (y == "face").sum() == 100
    decoder = LogisticRegression(C=0.01, max_iter=2000, class_weight="balanced")
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    face = cross_val_score(decoder, avg.data[:, roi == "FACE"], y, cv=cv, scoring="balanced_accuracy").mean()
    assert face > 0.9  # far above chance from the face-selective voxels
    score, _, p = permutation_test_score(
        decoder, avg.data[:, roi == "BLIND"], y, cv=cv, scoring="balanced_accuracy", n_permutations=50, random_state=0
    )
    assert abs(score - 0.5) < 0.08 and p > 0.1  # at chance from the category-blind voxels


def test_blind_signal_is_independent_of_the_drivers():
    """Noise-free voxels: the drivers predict the content-driven ROIs (the check can fail) but not BLIND."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict

    counts = {"EV": 100, "HV": 100, "FACE": 100, "BLIND": 100}
    config = SubjectConfig(n_voxels=counts, ncsnr_median=dict.fromkeys(counts, 1e6), ncsnr_log_sd=0.0)
    exp, drivers = _faces_experiment(config)
    avg = exp.average_repeats().responses
    order = np.argsort(avg.trial_stimulus)
    signal = avg.data[order].astype(np.float64)
    X = np.column_stack([drivers.gabor_energy, drivers.deep, drivers.calibration, drivers.is_face]).astype(np.float64)
    X = (X - X.mean(axis=0)) / X.std(axis=0).clip(1e-12)
    predicted = cross_val_predict(RidgeCV(alphas=np.logspace(-2, 4, 13)), X, signal, cv=KFold(5))
    r = np.array([np.corrcoef(predicted[:, j], signal[:, j])[0, 1] for j in range(signal.shape[1])])
    roi = exp.voxels["roi"].to_numpy()
    for content in ("EV", "HV", "FACE"):
        assert np.median(r[roi == content]) > 0.5, content
    assert abs(np.median(r[roi == "BLIND"])) < 0.1
    # and no single driver column tracks a BLIND voxel beyond what chance gives 400 stimuli
    z = (signal - signal.mean(axis=0)) / signal.std(axis=0)
    corr = X.T @ z / len(X)
    assert np.abs(corr[:, roi == "BLIND"]).max() < 0.3 < np.abs(corr[:, roi == "FACE"]).max()


def test_subject_config_names_unknown_rois():
    stimuli, splits = make_stimuli(100, n_test=20, image_size=16, n_faces=0)
    drivers = _drivers(100, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"config.n_voxels: \['V1'\] are not simulated ROIs"):
        simulate_responses(stimuli, splits, drivers, SubjectConfig(n_voxels={"V1": 3}))
    with pytest.raises(ValueError, match=r"no median ncsnr for ROIs \['BLIND'\]"):
        simulate_responses(stimuli, splits, drivers, SubjectConfig(n_voxels={"BLIND": 3}, ncsnr_median={}))
    with pytest.raises(ValueError, match=r"without: \['FAC'\] are not simulated ROIs"):
        SubjectConfig.scaled(100, without=("FAC",))
    assert set(SubjectConfig.scaled(100, without=("FACE",)).n_voxels) == {"EV", "HV", "CAL", "BLIND", "SPARSE"}


def test_scaled_config_has_exactly_the_voxels_asked_for():
    for n in (6, 10, 79, 80, 600, 2000):  # at least one voxel per ROI (six ROIs)
        for without in ((), ("FACE",)):
            counts = SubjectConfig.scaled(n, without=without).n_voxels
            assert sum(counts.values()) == n and min(counts.values()) >= 1, (n, without, counts)
    assert SubjectConfig.scaled(2500).n_voxels == SubjectConfig().n_voxels  # the default proportions


def _sparse_columns(k=SPARSE_FACTORS):
    return [f"sparse_factor_{i}" for i in range(k)]


def test_sparse_roi_is_factors_times_loadings_in_response_units():
    counts = {"FACE": 30, "SPARSE": 80}
    config = SubjectConfig(n_voxels=counts, ncsnr_median=dict.fromkeys(counts, 1e6), ncsnr_log_sd=0.0)
    exp, drivers = _faces_experiment(config)
    vox, table = exp.voxels, exp.stimuli.table
    sparse = (vox["roi"] == "SPARSE").to_numpy()
    F = table[_sparse_columns()].to_numpy()  # factor activations per stimulus (all stimuli)
    L = vox[_sparse_columns()].to_numpy().T  # loadings (K, n_voxels), response units
    # non-negative, sparse factors (active on 10% of the stimuli) and loadings (1-2 factors per SPARSE voxel)
    assert (F >= 0).all() and np.allclose((F > 0).mean(axis=0), 1 - SPARSE_QUANTILE, atol=0.01)
    assert (L >= 0).all() and (L[:, ~sparse] == 0).all()
    assert set((L[:, sparse] > 0).sum(axis=0)) == {1, 2} and ((L[:, sparse] > 0).sum(axis=1) >= 5).all()
    # the noise-free signal of the SPARSE voxels is exactly the centred factors times the loadings
    avg = exp.average_repeats().responses
    signal = avg.data[np.argsort(avg.trial_stimulus)].astype(np.float64)
    np.testing.assert_allclose(signal[:, sparse], (F - F.mean(axis=0)) @ L[:, sparse], atol=1e-4)
    assert signal[:, sparse].std(axis=0) == pytest.approx(1.0, abs=1e-4)  # standardised like every voxel
    # content, not the face label; correlated by design (a share of their drives in common: content
    # co-occurs), yet no two near-copies
    face = drivers.is_face.astype(float)
    assert max(abs(np.corrcoef(f, face)[0, 1]) for f in F.T) < 0.2
    off = np.corrcoef(F.T)[np.triu_indices(SPARSE_FACTORS, 1)]
    assert 0.1 < off.mean() < 0.4 and off.max() < 0.7
    # without SPARSE voxels: no factor columns anywhere
    plain, _ = _faces_experiment(SubjectConfig(n_voxels={"FACE": 30}, ncsnr_median={"FACE": 1.0}))
    assert not any(c.startswith("sparse_factor") for c in [*plain.voxels.columns, *plain.stimuli.table.columns])


def test_sparse_factors_follow_the_deep_drivers_and_the_seed():
    stimuli, splits = make_stimuli(300, n_test=50, image_size=16, n_faces=0, seed=0)
    drivers = _drivers(300, np.random.default_rng(0))
    config = SubjectConfig(n_voxels={"SPARSE": 40}, ncsnr_median={"SPARSE": 1.0})

    def factors(d, seed=0):
        return simulate_responses(stimuli, splits, d, config, seed=seed).stimuli.table[_sparse_columns()].to_numpy()

    base = factors(drivers)
    np.testing.assert_array_equal(base, factors(drivers))
    assert not np.array_equal(base, factors(drivers, seed=1))
    shuffled = SimulationDrivers(**{**vars(drivers), "deep": drivers.deep[::-1].copy()})
    assert not np.array_equal(base, factors(shuffled))  # the images' content drives the factors


def test_sparse_voxels_leave_the_other_rois_unchanged():
    counts = {"EV": 40, "HV": 30, "FACE": 20, "CAL": 20, "BLIND": 20}
    medians = SubjectConfig().ncsnr_median
    without = _setup(300, 100, seed=3, config=SubjectConfig(n_voxels=counts, ncsnr_median=medians))
    with_sparse = _setup(
        300, 100, seed=3, config=SubjectConfig(n_voxels={**counts, "SPARSE": 400}, ncsnr_median=medians)
    )
    n = without.responses.data.shape[1]
    np.testing.assert_array_equal(with_sparse.responses.data[:, :n], without.responses.data)
    np.testing.assert_array_equal(with_sparse.responses.trial_stimulus, without.responses.trial_stimulus)
    pd.testing.assert_frame_equal(with_sparse.voxels.iloc[:n][without.voxels.columns], without.voxels)
    sparse = with_sparse.voxels[with_sparse.voxels["roi"] == "SPARSE"]
    assert len(sparse) == 400 and sparse["hemisphere"].isin(["lh", "rh"]).all()
    # the SPARSE voxels' SNR follows the configured law, drawn from their own generator
    assert np.median(sparse["true_ncsnr"]) == pytest.approx(medians["SPARSE"], rel=0.15)
    with pytest.raises(ValueError, match=r"no median ncsnr for ROIs \['SPARSE'\]"):
        _setup(300, 100, config=SubjectConfig(n_voxels={"SPARSE": 3}, ncsnr_median={"EV": 1.0}))


def test_hv_voxels_share_a_few_nonlinear_features_of_the_driver():
    """Noise-free HV voxels span HV_FEATURES dimensions (shared); a linear model of their space misses part of them."""
    from sklearn.linear_model import LinearRegression

    from scene2brain.data.simulate import HV_FEATURES

    counts = {"HV": 60, "CAL": 20}
    config = SubjectConfig(n_voxels=counts, ncsnr_median=dict.fromkeys(counts, 1e6), ncsnr_log_sd=0.0)
    exp, drivers = _faces_experiment(config)
    avg = exp.average_repeats().responses
    signal = avg.data[np.argsort(avg.trial_stimulus)].astype(np.float64)
    roi = exp.voxels["roi"].to_numpy()
    hv = signal[:, roi == "HV"]
    singular = np.linalg.svd(hv - hv.mean(axis=0), compute_uv=False)
    assert singular[HV_FEATURES - 1] > 1e-3 * singular[0] and singular[HV_FEATURES] < 1e-4 * singular[0]
    calibration = drivers.calibration - drivers.calibration.mean(axis=0)
    linear = LinearRegression().fit(calibration, signal)
    r2 = 1 - ((signal - linear.predict(calibration)) ** 2).sum(axis=0) / ((signal - signal.mean(axis=0)) ** 2).sum(0)
    assert np.median(r2[roi == "HV"]) < 0.9  # nonlinear: the best linear map of their space misses a share
    assert np.median(r2[roi == "CAL"]) > 0.999  # the control: CAL is exactly linear in the same space
