"""[[encoders]] in a run: configuration checks, the encoders table, the nonlinear-hv ground-truth check."""

import tomllib

import numpy as np
import pandas as pd
import pytest
from run_fixtures import write_config

from scene2brain.pipeline.analyses.ground_truth import encoder_checks
from scene2brain.pipeline.config import ConfigError
from scene2brain.pipeline.run import run_config
from scene2brain.results import ENCODERS_TABLE, ROI_SUMMARY, read_results

SPACES = {"gabor": ["gabor:energy"], "deep": ["effnet:head"], "calibration": ["effnet:head"]}


@pytest.mark.parametrize(
    ("encoders", "expected"),
    [
        ([{"name": "x", "model": "bogus"}], "bogus"),
        ([{"name": "x", "model": "ols", "options": {"alpha": 1.0}}], "not options of encoder 'ols'"),
        ([{"name": "ridge", "model": "ols"}], "each name once"),
        ([{"name": "a", "model": "ols"}, {"name": "a", "model": "ols"}], "each name once"),
        ([{"name": "a", "model": "ols", "spaces": ["effnet:nope"]}], "encoders[0].spaces"),
        ([{"name": "a b", "model": "ols"}], "name"),
        # option values are refused before any data is seen, with the entry's key
        ([{"name": "k", "model": "knn", "options": {"n_neighbors": "five"}}], "encoders[0]: n_neighbors"),
        ([{"name": "t", "model": "tree", "options": {"max_depth": [-1]}}], "encoders[0]: max_depth"),
        ([{"name": "b", "model": "bottleneck", "options": {"dropout": 2}}], "encoders[0]: dropout"),
        ([{"name": "b", "model": "bottleneck", "options": {"cv": "yes"}}], "encoders[0]: cv"),
        ([{"name": "f", "model": "forest", "options": {"n_estimators": 0}}], "encoders[0]: n_estimators"),
        ([{"name": "f", "model": "forest", "options": {"max_features": "all"}}], "max_features"),
        ([{"name": "k", "model": "knn", "device": "cpu"}], "encoders[0]: device: encoder 'knn' runs on the CPU"),
        ([{"name": "k", "model": "knn", "voxel_groups": "hemisphere"}], "does not group voxels"),
    ],
)
def test_bad_encoder_entries_are_refused_with_the_key(tmp_path, encoders, expected):
    with pytest.raises(ConfigError, match=None) as error:
        write_config(tmp_path, {"encoders": encoders})
    assert expected in str(error.value)


def test_voxel_groups_must_be_a_voxel_table_column_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entry = {"name": "net", "model": "bottleneck", "voxel_groups": "nope", "spaces": ["effnet:head"]}
    config = write_config(tmp_path, {"encoders": [entry]})
    with pytest.raises(ConfigError, match=r"encoders\[0\].voxel_groups: 'nope' is not a column"):
        run_config(config, progress=False)
    # (a simulated experiment is built from its features first; no encoder is fitted)
    assert not (tmp_path / "results" / "stages" / "encode").exists()


def test_ols_cv_score_is_held_out():
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold

    from scene2brain.encoding.registry import fit_encoder
    from scene2brain.evaluation.metrics import r2_score

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    Y = X @ rng.standard_normal((8, 3)) + 2 * rng.standard_normal((60, 3))
    folds = list(KFold(4, shuffle=True, random_state=0).split(X))
    expected = np.mean([r2_score(Y[te], LinearRegression().fit(X[tr], Y[tr]).predict(X[te])) for tr, te in folds], 0)
    np.testing.assert_allclose(fit_encoder("ols", X, Y, folds).cv_score, expected)
    assert (expected < r2_score(Y, LinearRegression().fit(X, Y).predict(X))).all()  # in-sample R^2 would be higher


def test_grids_bounded_by_the_data_are_not_refused_before_the_data_is_seen(tmp_path):
    entries = [
        {"name": "knn", "model": "knn", "options": {"n_neighbors": [5, 50, 200]}},
        {"name": "pls", "model": "pls", "options": {"n_components": [10, 100]}},
    ]
    config = write_config(tmp_path, {"encoders": entries})
    assert [e.options for e in config.encoders] == [e["options"] for e in entries]


def test_primary_encoder_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="not options of encoder 'ridge'"):
        write_config(tmp_path, {"encoder": {"options": {"n_neighbors": 3}}})
    with pytest.raises(ConfigError, match="not options of encoder 'ols'"):
        write_config(tmp_path, {"encoder": {"model": "ols", "alphas": [1.0]}})


@pytest.mark.slow
def test_encoders_table_compares_on_the_same_splits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(
        tmp_path,
        {
            "encoders": [
                {"name": "ols", "model": "ols", "spaces": ["effnet:head"]},
                # the primary ridge with its own grid: the same model on the same folds, so no difference
                {"name": "same", "model": "ridge", "options": {"alphas": [1.0, 10.0, 100.0, 1000.0]}},
            ]
        },
    )
    run_config(config, progress=False)
    results = read_results(tmp_path / "results")
    table = results.table(ENCODERS_TABLE)
    spaces = config.spaces()
    assert set(table["encoder"]) == {"ridge", "ols", "same"}
    assert set(table.loc[table["primary"], "encoder"]) == {"ridge"}
    assert set(table.loc[table["encoder"] == "ols", "space"]) == {"effnet:head"}
    assert set(table.loc[table["encoder"] == "same", "space"]) == set(spaces)
    for column in ("subject", "roi", "space", "encoder", "score", "ci_low", "ci_high", "fit_seconds"):
        assert column in table
    assert (table["fit_seconds"] > 0).all()
    finite = table.dropna(subset=["ci_low"])
    assert ((finite["ci_low"] <= finite["score"] + 1e-9) & (finite["score"] <= finite["ci_high"] + 1e-9)).all()
    # the primary rows repeat the ROI summary's numbers
    summary = results.table(ROI_SUMMARY).set_index(["space", "roi"])
    primary = table[table["encoder"] == "ridge"].set_index(["space", "roi"])
    np.testing.assert_allclose(primary["score"], summary.loc[primary.index, "median"])
    np.testing.assert_allclose(primary["ci_low"], summary.loc[primary.index, "ci_low"])
    # the same model on the same folds predicts the same: a zero paired difference
    same = table[table["encoder"] == "same"]
    np.testing.assert_allclose(same["diff"], 0, atol=1e-4)
    keys = list(zip(same["space"], same["roi"], strict=True))
    np.testing.assert_allclose(same["score"].to_numpy(), primary.loc[keys, "score"].to_numpy(), atol=1e-4)
    # ols differs from ridge, and its difference is its score minus ridge's
    ols = table[table["encoder"] == "ols"].set_index("roi")
    ridge_head = primary.loc["effnet:head"]
    np.testing.assert_allclose(ols["diff"], ols["score"] - ridge_head.loc[ols.index, "score"], atol=1e-9)
    assert not np.allclose(ols["score"], ridge_head.loc[ols.index, "score"])


def _rows(hv: tuple[float, float, float], cal: tuple[float, float, float], primary: str = "ridge") -> pd.DataFrame:
    base = {"subject": "sim01", "space": "effnet:head"}
    rows = [
        {**base, "roi": roi, "encoder": primary, "model": primary, "primary": True, "diff": np.nan,
         "diff_low": np.nan, "diff_high": np.nan}
        for roi in ("HV", "CAL")
    ]  # fmt: skip
    for roi, (d, low, high) in (("HV", hv), ("CAL", cal)):
        rows.append({**base, "roi": roi, "encoder": "net", "model": "bottleneck", "primary": False, "diff": d,
                     "diff_low": low, "diff_high": high})  # fmt: skip
    return pd.DataFrame(rows)


def _status(checks: dict, check_id: str) -> str:
    return next(c["status"] for c in checks.values() if c["id"] == check_id)


def test_nonlinear_check_passes_only_with_a_significant_gain_in_hv_and_none_in_cal():
    assert _status(encoder_checks(_rows((5, 2, 8), (-1, -3, 1)), SPACES), "nonlinear-hv") == "pass"
    assert _status(encoder_checks(_rows((5, -1, 8), (-1, -3, 1)), SPACES), "nonlinear-hv") == "fail"  # not significant
    assert _status(encoder_checks(_rows((-5, -8, -2), (-1, -3, 1)), SPACES), "nonlinear-hv") == "fail"  # worse
    assert _status(encoder_checks(_rows((5, 2, 8), (4, 1, 6)), SPACES), "nonlinear-hv") == "fail"  # beats ridge on CAL


def test_nonlinear_check_without_its_inputs_is_not_run_or_disabled():
    assert _status(encoder_checks(None, SPACES), "nonlinear-hv") == "disabled"
    no_net = _rows((5, 2, 8), (-1, -3, 1))
    assert _status(encoder_checks(no_net[no_net["model"] != "bottleneck"], SPACES), "nonlinear-hv") == "disabled"
    assert _status(encoder_checks(_rows((5, 2, 8), (-1, -3, 1), primary="ols"), SPACES), "nonlinear-hv") == "not run"
    other_space = {**SPACES, "deep": ["gabor:energy"]}
    assert _status(encoder_checks(_rows((5, 2, 8), (-1, -3, 1)), other_space), "nonlinear-hv") == "not run"
    no_bootstrap = _rows((5, np.nan, np.nan), (-1, np.nan, np.nan))
    assert _status(encoder_checks(no_bootstrap, SPACES), "nonlinear-hv") == "not run"
    only_hv = _rows((5, 2, 8), (-1, -3, 1))
    assert _status(encoder_checks(only_hv[only_hv["roi"] == "HV"], SPACES), "nonlinear-hv") == "not run"
    assert _status(encoder_checks(_rows((5, 2, 8), (-1, -3, 1)), SPACES, skip=["nonlinear-hv"]), "nonlinear-hv") == (
        "disabled"
    )


def test_packaged_encoders_configuration_lists_every_encoder():
    from scene2brain.encoding.registry import ENCODERS
    from scene2brain.pipeline.config import load_config, packaged_configs

    config = load_config(packaged_configs()["encoders"])
    models = {config.encoder.model, *(entry.model for entry in config.encoders)}
    assert models == set(ENCODERS) - {"multitask-elasticnet", "elasticnet"}  # their lasso forms stand for them
    assert config.dataset.simulation.skip_checks == []


@pytest.mark.slow
def test_bottleneck_beats_ridge_where_the_simulation_is_nonlinear(tmp_path):
    """The packaged encoders.toml, its bottleneck entry only: nonlinear-hv passes (HV gain, none in CAL)."""
    from scene2brain.pipeline.config import load_config, packaged_configs

    path = packaged_configs()["encoders"]
    network = next(entry for entry in load_config(path).encoders if entry.model == "bottleneck")
    entry = network.model_dump(mode="json", exclude_none=True)
    entry["options"] = {**entry["options"], "cv": False}  # the CV scores are not what this test is about
    overrides = {
        "run": {"output": str(tmp_path / "out")},
        "features": [f for f in tomllib.loads(path.read_text())["features"] if f["name"] == "effnet"],
        "encoders": [entry],
        "evaluation": {"n_bootstraps": 1000, "identification": False},
        "report": {"enabled": False},
        "dataset": {"simulation": {"skip_checks": ["ev-gabor", "hv-driver"]}},  # one feature space: nothing to beat
    }
    run_config(load_config(path, overrides), progress=False)
    checks = read_results(tmp_path / "out").checks["sim01"]
    check = next(c for c in checks.values() if c["id"] == "nonlinear-hv")
    assert check["status"] == "pass", check
    assert check["found"]["HV"]["diff_low"] > 0 >= check["found"]["CAL"]["diff_low"]


def test_nonlinear_check_reads_the_first_of_several_networks():
    second = _rows((-5, -8, -2), (4, 1, 6)).query("model == 'bottleneck'").assign(encoder="net-2")
    checks = encoder_checks(pd.concat([_rows((5, 2, 8), (-1, -3, 1)), second], ignore_index=True), SPACES)
    assert _status(checks, "nonlinear-hv") == "pass"
    assert next(iter(checks.values()))["found"]["encoder"] == "net"
