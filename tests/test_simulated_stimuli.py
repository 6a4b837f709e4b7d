"""Your own images as simulation stimuli, experiment planning, and one meaning of the stored CV score."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from typer.testing import CliRunner

from scene2brain.cli import app
from scene2brain.data.images import folder_images
from scene2brain.data.simulate import stimuli_from_images
from scene2brain.encoding.registry import fit_encoder

KAY = Path(__file__).resolve().parents[2] / "shared" / "data" / "kay2008-stimuli-half"


def mixed_folder(folder: Path, n: int = 24, seed: int = 0) -> Path:
    """Images of several sizes and colour modes: RGB, grayscale, RGBA, palette, 16-bit grayscale."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    modes = ("RGB", "L", "RGBA", "P", "I;16")
    for i in range(n):
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        mode = modes[i % len(modes)]
        if mode == "I;16":  # the full 16-bit range
            img = Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)
        else:
            img = rgb.convert(mode)
        img.save(folder / f"img{i:03d}.png")
    return folder


def test_stimuli_from_mixed_images_are_square_rgb_and_split_as_asked(tmp_path):
    source = folder_images(mixed_folder(tmp_path / "imgs"))
    stimuli, splits = stimuli_from_images(source, source.names(), image_size=32, n_test=5, seed=1)
    images = stimuli.load_images()
    assert images.shape == (24, 32, 32, 3) and images.dtype == np.uint8
    assert len(splits["test"]) == 5 and len(splits["train"]) == 19
    assert list(stimuli.table["stimulus_id"][:2]) == ["img000.png", "img001.png"]
    for gray in images[1], images[4]:  # "L" and 16-bit images become three equal channels, full range
        assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
        assert 60 < gray.mean() < 200 and gray.std() > 20
    _, splits2 = stimuli_from_images(source, source.names(), image_size=32, n_test=5, seed=1)
    np.testing.assert_array_equal(splits["test"], splits2["test"])
    named, named_splits = stimuli_from_images(source, source.names(), 32, test_names=["img003.png", "img007.png"])
    assert list(named.table.loc[named_splits["test"], "stimulus_id"]) == ["img003.png", "img007.png"]
    with pytest.raises(ValueError, match="test_names: 1 names are not images of the set"):
        stimuli_from_images(source, source.names(), 32, test_names=["nope.png"])
    with pytest.raises(ValueError, match="n_test: expected between 1 and 23"):
        stimuli_from_images(source, source.names(), 32, n_test=24)


def test_stored_cv_score_means_the_same_for_every_encoder():
    """Mean over the training folds of each fold's held-out R^2 (scikit-learn), for OLS and for ridge."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 6))
    Y = X @ rng.standard_normal((6, 4)) + rng.standard_normal((90, 4))
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    expected = np.mean(
        [r2_score(Y[te], LinearRegression().fit(X[tr], Y[tr]).predict(X[te]), multioutput="raw_values")
         for tr, te in folds], axis=0,
    )  # fmt: skip
    np.testing.assert_allclose(fit_encoder("ols", X, Y, folds).cv_score, expected, rtol=1e-10)
    ridge = fit_encoder("ridge", X, Y, folds, alphas=[1e-8])  # vanishing penalty: the same fits
    np.testing.assert_allclose(ridge.cv_score, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="encoder: expected one of"):
        fit_encoder("bogus", X, Y, folds)


@pytest.mark.slow
def test_simulate_plan_command(tmp_path):
    folder = mixed_folder(tmp_path / "imgs", n=60)
    args = ["simulate", "plan", "--stimuli", str(folder), "--n-test", "12", "--n-train", "16,48", "--repeats",
            "1,3", "--n-voxels", "80", "--out", str(tmp_path / "plan"), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    plan = pd.read_csv(tmp_path / "plan" / "plan.csv")
    assert set(plan["n_train"]) == {16, 48} and set(plan["test_repeats"]) == {1, 3}
    assert set(plan["roi"]) == {"EV", "HV", "CAL", "BLIND", "SPARSE", "all"}  # no face labels: no FACE voxels
    pooled = plan[plan["roi"] == "all"].set_index(["n_train", "test_repeats"])
    assert pooled["nc_median_abs_error"].loc[(48, 1)] != pooled["nc_median_abs_error"].loc[(48, 1)]  # NaN: 1 repeat
    assert pooled["nc_median_abs_error"].loc[(48, 3)] < 0.2
    assert (pooled["chance"] == 1 / 12).all() and (tmp_path / "plan" / "plan.png").is_file()
    bad = CliRunner().invoke(app, [*args[:6], "--n-train", "16,5000", "--out", str(tmp_path / "p2"), "--quiet"])
    assert bad.exit_code == 2 and "n_train: [5000] outside 10..48" in bad.output


def _study(tmp_path, simulation, features=None):
    from scene2brain.pipeline.config import parse_config

    data = {
        "run": {"name": "own-images", "output": str(tmp_path / "results"), "cache": str(tmp_path / "cache")},
        "dataset": {"name": "simulated", "simulation": simulation},
        "features": features
        or [
            {"name": "gabor", "model": "gabor", "options": {"image_size": 64}, "reduction": "standardise"},
            {"name": "effnet", "model": "efficientnet-lite0", "layers": ["_blocks.6", "head"],
             "reduction": {"method": "pca", "n_components": 64}},
        ],
        "evaluation": {"n_bootstraps": 50},
        "report": {"enabled": False},
    }  # fmt: skip
    return parse_config(data)


@pytest.mark.slow
def test_run_simulates_a_subject_on_your_own_images(tmp_path):
    from scene2brain.pipeline.run import run_config
    from scene2brain.results import read_results

    folder = mixed_folder(tmp_path / "imgs", n=72)
    (tmp_path / "test.txt").write_text("# test images\n" + "\n".join(f"img{i:03d}.png" for i in range(0, 72, 6)))
    simulation = {"stimuli": str(folder), "test_stimuli": str(tmp_path / "test.txt"), "n_voxels": 120,
                  "image_size": 64, "n_components": 16}  # fmt: skip
    features = [{"name": "effnet", "model": "efficientnet-lite0", "layers": ["head"],
                 "reduction": {"method": "pca", "n_components": 16}}]  # fmt: skip
    run_config(_study(tmp_path, simulation, features), progress=False)
    results = read_results(tmp_path / "results")
    voxels = results.voxels("sim01")
    assert set(voxels["roi"]) == {"EV", "HV", "CAL", "BLIND", "SPARSE"}  # no face labels: no FACE voxels
    assert results.facts["subjects"]["sim01"]["n_test"] == 12
    statuses = {c["id"]: c["status"] for c in results.checks["sim01"].values()}
    assert statuses["ev-gabor"] == "not run" and statuses["noise-ceiling"] != "not run"  # no Gabor space here


@pytest.mark.slow
@pytest.mark.skipif(not KAY.is_dir(), reason=f"the Kay et al. 2008 photographs are not at {KAY} (shared folder)")
def test_simulation_on_kay2008_photographs_passes_the_checks(tmp_path):
    from scene2brain.pipeline.analyses.ground_truth import checks_passed
    from scene2brain.pipeline.run import run_config
    from scene2brain.results import read_results

    # Kay's photographs sit in a circular aperture: the pyramid zeroes the wavelets outside it (as Kay et al. did),
    # else channels that are nearly constant over the training images blow up when standardised
    features = [
        {"name": "gabor", "model": "gabor", "options": {"image_size": 64, "aperture": True},
         "reduction": "standardise"},
        {"name": "effnet", "model": "efficientnet-lite0", "layers": ["_blocks.6", "head"],
         "reduction": {"method": "pca", "n_components": 64}},
    ]  # fmt: skip
    run_config(_study(tmp_path, {"stimuli": str(KAY), "n_voxels": 600}, features), progress=False)
    results = read_results(tmp_path / "results")
    assert results.facts["subjects"]["sim01"]["n_stimuli"] == 875
    assert checks_passed(results.checks), results.checks


def _stimuli_stage(tmp_path, simulation):
    """Plan a simulated study and run only its stimulus stage; return the saved stimuli and splits."""
    from scene2brain.data.storage import load_stimuli
    from scene2brain.pipeline.executor import run_local
    from scene2brain.pipeline.graph import StageGraph
    from scene2brain.pipeline.plan import EXPERIMENT_DIR
    from scene2brain.pipeline.run import plan_run
    from scene2brain.pipeline.simulated import STIMULI

    graph, _ = plan_run(_study(tmp_path, simulation))
    report = run_local(StageGraph([graph[STIMULI]]), tmp_path / "results")
    return load_stimuli(report.folders[str(STIMULI)] / EXPERIMENT_DIR)


def test_simulation_stimuli_that_are_not_images_are_named_errors(tmp_path):
    from scene2brain.pipeline.config import ConfigError
    from scene2brain.pipeline.run import plan_run

    (tmp_path / "notes.txt").write_text("not images")
    (tmp_path / "empty").mkdir()
    for path, expected in (
        (tmp_path / "notes.txt", "is a file but not an HDF5 file"),
        (tmp_path / "empty", "holds no image files"),
        (tmp_path / "nowhere", "does not exist"),
    ):
        with pytest.raises(ConfigError, match=f"dataset.simulation.stimuli: .* {expected}; expected a folder"):
            plan_run(_study(tmp_path, {"stimuli": str(path)}))
    folder = mixed_folder(tmp_path / "imgs", n=12)
    (tmp_path / "test.txt").write_text("img001.png\nnope.png\n")
    with pytest.raises(ConfigError, match=r"dataset.simulation.test_stimuli .*'nope.png'"):
        _stimuli_stage(tmp_path, {"stimuli": str(folder), "test_stimuli": str(tmp_path / "test.txt")})


def test_n_test_sets_the_test_split_of_the_bundled_photographs(tmp_path):
    stimuli, splits = _stimuli_stage(tmp_path, {"n_stimuli": 60, "n_test": 12, "image_size": 32})
    assert len(stimuli) == 60 and len(splits["test"]) == 12  # not the default one sixth (10)


def _synthetic_drivers(n, seed=0):
    from scene2brain.data.simulate import SimulationDrivers
    from scene2brain.features.gabor import GaborPyramid

    rng = np.random.default_rng(seed)
    channels = GaborPyramid.kay2008(16, aperture=False).channels()
    deep = rng.standard_normal((n, 40)) * np.geomspace(10, 0.1, 40)  # PCA-like: decreasing variances
    return SimulationDrivers(
        gabor_energy=rng.random((n, len(channels))), gabor_channels=channels, deep=deep, calibration=deep[:, :12],
        is_face=np.zeros(n, bool),
    )  # fmt: skip


def test_plan_fits_the_calibration_space_unwhitened_and_needs_enough_training_images(monkeypatch):
    """A z-scored PCA space is white: ridge would give OLS's r for every alpha, and the plan would say nothing."""
    import scene2brain.pipeline.planning as planning
    from scene2brain.data.containers import Stimuli

    n = 60
    stimuli = Stimuli(pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "is_face": False}))
    splits = {"train": np.arange(48), "test": np.arange(48, n)}
    drivers = _synthetic_drivers(n)
    seen = []
    fit = planning.fit_encoder

    def spy(name, X, Y, folds, **options):
        seen.append(X)
        return fit(name, X, Y, folds, **options)

    monkeypatch.setattr(planning, "fit_encoder", spy)
    planning.plan_experiment(stimuli, splits, drivers, [40], [3], n_voxels=40)
    calibration = next(X for X in seen if X.shape[1] == 12)
    sd = calibration.std(axis=0)
    assert sd.max() > 2 * sd.min()  # its components keep their variances (z-scored: all 1)
    with pytest.raises(ValueError, match=r"n_train: \[6\] outside 10..48"):
        planning.plan_experiment(stimuli, splits, drivers, [6], [3], n_voxels=40)


def test_simulate_plan_refuses_impossible_sizes_before_extracting_features(tmp_path, monkeypatch):
    import scene2brain.pipeline.planning as planning

    def fail(*args, **kwargs):
        raise AssertionError("features extracted before the plan's sizes were checked")

    monkeypatch.setattr(planning, "simulation_drivers", fail)
    folder = mixed_folder(tmp_path / "imgs", n=30)
    args = ["simulate", "plan", "--stimuli", str(folder), "--n-train", "8,20", "--out", str(tmp_path / "p"), "--quiet"]
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 2 and "n_train: [8] outside 10..25" in result.output, result.output
    result = CliRunner().invoke(app, [*args[:4], "--out", str(tmp_path / "p")], terminal_width=200)
    assert result.exit_code == 2 and "n_train: [100, 200, 400, 800] outside 10..25" in result.output
