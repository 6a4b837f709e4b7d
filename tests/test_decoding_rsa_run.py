"""Decoding and RSA in a run: configuration, stages, tables, ground-truth checks, the Kay NMA labels."""

import json

import numpy as np
import pandas as pd
import pytest
import tomli_w
from dataset_fixtures import write_kay_nma
from run_fixtures import write_config

from scene2brain.decoding import decode
from scene2brain.pipeline.analyses.ground_truth import decoding_checks, rsa_checks
from scene2brain.pipeline.config import ConfigError, load_config
from scene2brain.pipeline.run import run_config
from scene2brain.representation import compare_models, compute_rdms
from scene2brain.results import DECODING, DECODING_BLUR, DECODING_CONFUSION, DECODING_NULL, RSA, read_results

DECODING_SECTION = {
    "labels": "face",
    "decoders": ["ridge"],
    "n_permutations": 19,
    "cv": 3,
    "blur_spaces": ["effnet:head"],
    "blur_sigmas": [0.0, 4.0],
    "blur_boxes": [3],
}
RSA_SECTION = {"n_bootstraps": 20, "n_permutations": 19, "labels": "coarse_class"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("decoding_run")
    config = write_config(folder, {"decoding": DECODING_SECTION, "rsa": RSA_SECTION})
    result = run_config(config, progress=False)
    return result, read_results(result.output)


def test_decoding_tables_hold_every_target_with_permutation_p_values(run):
    _, results = run
    table = results.table(DECODING)
    required = {
        "subject",
        "roi",
        "space",
        "decoder",
        "label",
        "accuracy",
        "balanced_accuracy",
        "chance",
        "p_value",
        "p_corrected",
        "n_test",
        "split",
    }
    assert required <= set(table.columns)
    assert set(table["kind"]) == {"roi", "space", "predicted"}
    rois = table[table["kind"] == "roi"]
    assert set(rois["roi"]) == {"EV", "HV", "FACE", "CAL", "BLIND", "SPARSE", "all"}
    assert set(table.loc[table["kind"] == "space", "space"]) == {"gabor:energy", "effnet:_blocks.2", "effnet:head"}
    assert (table["label"] == "face").all()
    # trained on the training stimuli and scored on the test ones; decoding of predictions is CV over the test set
    assert set(zip(table["kind"], table["split"], strict=True)) == {
        ("roi", "test"),
        ("space", "test"),
        ("predicted", "test (grouped CV)"),
    }
    # p-values are Monte-Carlo ones with 19 permutations: multiples of 1/20, never 0
    assert np.allclose((table["p_value"] * 20) % 1, 0) and (table["p_value"] >= 0.05).all()
    # max-statistic correction never makes a p-value smaller
    assert (table["p_corrected"] >= table["p_value"] - 1e-12).all()
    nulls = results.table(DECODING_NULL)
    assert len(nulls) == 19 * len(table)
    confusion = results.table(DECODING_CONFUSION)
    face = confusion[(confusion["kind"] == "roi") & (confusion["roi"] == "FACE")]
    assert face["count"].sum() == rois.loc[rois["roi"] == "FACE", "n_test"].item()


def test_a_decode_stage_equals_decode_on_the_stage_inputs(run):
    """The table's FACE row is what decode() gives on the responses and labels the stages stored."""
    result, results = run
    stages = result.output / "stages"
    labels = stages / "labels" / "sim01"
    responses = stages / "responses" / "sim01"
    voxels = pd.read_parquet(responses / "voxels.parquet")
    face = (voxels["roi"] == "FACE").to_numpy()
    train_rows, test_rows = np.load(labels / "train_rows.npy"), np.load(labels / "test_rows.npy")
    direct = decode(
        np.load(responses / "train.npy")[train_rows][:, face],
        np.load(labels / "y_train.npy"),
        np.load(responses / "test.npy")[test_rows][:, face],
        np.load(labels / "y_test.npy"),
        groups=np.load(labels / "train_groups.npy"),
        decoder="ridge",
        n_folds=3,
        n_permutations=19,
        seed=0,
    )
    row = results.table(DECODING).query("kind == 'roi' and roi == 'FACE'").iloc[0]
    assert row["balanced_accuracy"] == pytest.approx(direct.balanced_accuracy)
    assert row["p_value"] == pytest.approx(direct.p_value)


def test_blur_table_has_every_level_with_intervals(run):
    _, results = run
    blur = results.table(DECODING_BLUR)
    assert list(zip(blur["blur"], blur["level"], strict=True)) == [("gaussian", 0.0), ("gaussian", 4.0), ("box", 3.0)]
    assert blur.loc[blur["blur"] == "box", "sigma"].item() == pytest.approx(np.sqrt(8 / 12))
    finite = blur[["ci_low", "ci_high", "identification_ci_low", "identification_ci_high"]].notna().all(axis=1)
    assert finite.all()
    assert (blur["ci_low"] <= blur["accuracy"] + 1e-12).all() or blur["metric"].iloc[0] != "accuracy"


def test_rsa_table_compares_every_roi_with_every_space(run):
    result, results = run
    table = results.table(RSA)
    required = {
        "subject",
        "roi",
        "space",
        "distance",
        "comparator",
        "similarity",
        "ci_low",
        "ci_high",
        "p_value",
        "nc_low",
        "nc_high",
    }
    assert required <= set(table.columns)
    assert len(table) == 7 * 3  # six ROIs and "all", three spaces
    assert (table["ci_low"] <= table["ci_high"]).all()
    # one row recomputed from the stage inputs with the library
    responses = result.output / "stages" / "responses" / "sim01"
    voxels = pd.read_parquet(responses / "voxels.parquet")
    ev = (voxels["roi"] == "EV").to_numpy()
    test = np.load(responses / "test_stimuli.npy")
    features = np.load(result.output / "stages" / "features" / "gabor" / "energy" / "features.npy")
    direct = compare_models(
        compute_rdms(np.load(responses / "test.npy")[:, ev])[0],
        compute_rdms(features[test]),
        n_bootstrap=20,
        n_permutations=19,
        seed=0,
    )
    row = table.query("roi == 'EV' and space == 'gabor:energy'").iloc[0]
    assert row["similarity"] == pytest.approx(direct.similarity[0])
    assert row["p_value"] == pytest.approx(direct.p_value[0])


def test_checks_of_configured_analyses_are_reported(run):
    _, results = run
    ids = {c["id"] for c in results.checks["sim01"].values()}
    assert {"face-decoding", "blind-decoding", "blur-probe", "rsa-ev-gabor", "rsa-hv-driver"} <= ids


SPACES = {"gabor": ["gabor:energy"], "deep": ["effnet:head"], "calibration": []}


def _decoding_rows(face_p, blind_p, label_bal=0.9, n_permutations=1000):
    return pd.DataFrame(
        [
            {
                "kind": "roi",
                "roi": "FACE",
                "balanced_accuracy": label_bal,
                "chance": 0.5,
                "p_value": face_p,
                "p_corrected": face_p,
                "metric": "balanced_accuracy",
                "n_permutations": n_permutations,
            },
            {
                "kind": "roi",
                "roi": "BLIND",
                "balanced_accuracy": 0.5,
                "chance": 0.5,
                "p_value": blind_p,
                "p_corrected": blind_p,
                "metric": "balanced_accuracy",
                "n_permutations": n_permutations,
            },
        ]
    )


def _blur_rows(clean, blurred_high):
    return pd.DataFrame(
        [
            {"space": "effnet:head", "blur": "gaussian", "level": 0.0, "balanced_accuracy": clean, "ci_high": 1.0},
            {
                "space": "effnet:head",
                "blur": "gaussian",
                "level": 8.0,
                "balanced_accuracy": 0.6,
                "ci_high": blurred_high,
            },
        ]
    )


def _status(checks, check_id):
    return next(c["status"] for c in checks.values() if c["id"] == check_id)


def test_decoding_checks_pass_on_the_truth_and_fail_on_broken_inputs():
    good = decoding_checks(_decoding_rows(0.001, 0.5), _blur_rows(0.9, 0.7), SPACES, "face")
    assert {_status(good, k) for k in ("face-decoding", "blind-decoding", "blur-probe")} == {"pass"}
    # FACE not significant, BLIND decoded (shuffled ROI labels), blur that does not hurt
    bad = decoding_checks(_decoding_rows(0.2, 0.01), _blur_rows(0.9, 0.95), SPACES, "face")
    assert {_status(bad, k) for k in ("face-decoding", "blind-decoding", "blur-probe")} == {"fail"}
    # NaN p-values (no permutations) and another label: not run, which fails a run
    nan = decoding_checks(_decoding_rows(np.nan, np.nan), _blur_rows(0.9, 0.7), SPACES, "face")
    assert _status(nan, "face-decoding") == "not run"
    other = decoding_checks(_decoding_rows(0.001, 0.5), None, SPACES, "coarse_class")
    assert _status(other, "face-decoding") == "not run"
    # 19 permutations: no p-value can be below 0.05, so BLIND could never fail: not run
    few = decoding_checks(_decoding_rows(0.05, 0.05, n_permutations=19), None, SPACES, "face")
    assert _status(few, "blind-decoding") == "not run" and _status(few, "face-decoding") == "not run"
    # an analysis the configuration does not ask for is disabled, and says why
    absent = decoding_checks(None, None, SPACES, None)
    assert {c["status"] for c in absent.values()} == {"disabled"}


def test_rsa_checks_need_a_significant_paired_comparison():
    def rows(ev_gabor, ev_deep):
        return pd.DataFrame(
            [
                {"roi": "EV", "space": "gabor:energy", "similarity": ev_gabor, "ci_low": 0.0, "ci_high": 1.0},
                {"roi": "EV", "space": "effnet:head", "similarity": ev_deep, "ci_low": 0.0, "ci_high": 1.0},
                {"roi": "HV", "space": "gabor:energy", "similarity": 0.1, "ci_low": 0.05, "ci_high": 0.15},
                {"roi": "HV", "space": "effnet:head", "similarity": 0.4, "ci_low": 0.3, "ci_high": 0.5},
            ]
        )

    def pairs(p_ev, p_hv=0.001):
        return pd.DataFrame(
            [
                {"roi": "EV", "space_a": "gabor:energy", "space_b": "effnet:head", "p_value": p_ev},
                {"roi": "HV", "space_a": "gabor:energy", "space_b": "effnet:head", "p_value": p_hv},
            ]
        )

    good = rsa_checks(rows(0.5, 0.2), pairs(0.001), SPACES)
    assert _status(good, "rsa-ev-gabor") == "pass" and _status(good, "rsa-hv-driver") == "pass"
    assert _status(rsa_checks(rows(0.5, 0.2), pairs(0.3), SPACES), "rsa-ev-gabor") == "fail"  # not significant
    assert _status(rsa_checks(rows(0.2, 0.5), pairs(0.001), SPACES), "rsa-ev-gabor") == "fail"  # wrong winner
    assert _status(rsa_checks(rows(0.5, 0.2), pairs(np.nan), SPACES), "rsa-ev-gabor") == "not run"
    assert _status(rsa_checks(rows(0.5, 0.2), pairs(0.001), {**SPACES, "gabor": []}), "rsa-ev-gabor") == "not run"
    assert {c["status"] for c in rsa_checks(None, None, SPACES).values()} == {"disabled"}


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("decoding", {"labels": "face", "decoders": ["forest"]}, "decoding.decoders"),
        ("decoding", {"labels": "face", "spaces": ["nope:x"]}, "decoding.spaces"),
        ("decoding", {"labels": "face", "blur_spaces": ["effnet:nope"]}, "decoding.blur_spaces"),
        ("decoding", {"labels": "face", "options": {"svm": {"C": 1}}}, "not among decoders"),
        ("decoding", {"labels": "face", "options": {"logistic": {"bogus": 1}}}, "options.logistic"),
        ("decoding", {"labels": "face", "blur_boxes": [4]}, "odd"),
        ("decoding", {"labels": "face", "blur_boxes": [1]}, "no blur"),
        ("decoding", {"labels": "face", "classes": ["face", "face"]}, "each class once"),
        ("decoding", {"labels": "face", "options": {"logistic": {"C": -1.0}}}, "options.logistic"),
        ("decoding", {"decoders": ["ridge"]}, "decoding.labels: required"),
        ("rsa", {"distance": "manhattan"}, "rsa.distance"),
        ("rsa", {"comparator": "kendall"}, "rsa.comparator"),
        ("rsa", {"noise_normalise": True}, "crossvalidated"),
        ("rsa", {"spaces": ["effnet:nope"]}, "rsa.spaces"),
    ],
)
def test_bad_sections_are_refused_before_anything_runs(tmp_path, section, values, message):
    with pytest.raises(ConfigError) as err:
        write_config(tmp_path, {section: values})
    assert message in str(err.value)


def test_unknown_label_column_and_class_name_the_key(tmp_path):
    config = write_config(tmp_path, {"decoding": {**DECODING_SECTION, "labels": "species", "blur_spaces": []}})
    with pytest.raises(ConfigError, match=r"decoding.labels.*species"):
        run_config(config, progress=False)
    config = write_config(tmp_path, {"decoding": {**DECODING_SECTION, "classes": ["face", "cat"], "blur_spaces": []}})
    with pytest.raises(ConfigError, match=r"decoding.classes.*cat"):
        run_config(config, progress=False)


def test_kay_nma_labels_reach_the_decoder_with_the_class_filter_as_an_option(tmp_path):
    """The seed kept three WordNet classes; here that is ``[decoding] classes``, nothing is hard-coded."""
    root = tmp_path / "kay"
    root.mkdir()
    write_kay_nma(root, n_train=30, n_test=12)
    base = {
        "run": {"output": str(tmp_path / "out"), "cache": str(tmp_path / "cache")},
        "dataset": {"name": "kay2008-nma", "path": str(root)},
        "features": [{"name": "gabor", "model": "gabor", "options": {"image_size": 32}, "reduction": "standardise"}],
        "encoder": {"alphas": [1.0, 100.0], "cv": 2},
        "evaluation": {"noise_ceiling": "none", "n_bootstraps": 0},
        "decoding": {
            "labels": "wordnet_general",
            "classes": ["animal", "artifact"],
            "decoders": ["ridge"],
            "n_permutations": 9,
            "cv": 2,
            "from_predictions": False,
        },
        "report": {"enabled": False},
    }
    path = tmp_path / "kay.toml"
    path.write_text(tomli_w.dumps(base))
    result = run_config(load_config(path), progress=False)
    labels = json.loads((result.output / "stages" / "labels" / "kay2008-nma-01" / "labels.json").read_text())
    assert labels["classes"] == ["animal", "artifact"]
    # the fixture cycles artifact, entity, animal: entity is filtered out
    assert labels["n_train"] == {"animal": 10, "artifact": 10} and labels["n_test"] == {"animal": 4, "artifact": 4}
    table = read_results(result.output).table(DECODING)
    assert (table["n_train"] == 20).all() and (table["n_test"] == 8).all() and (table["chance"] == 0.5).all()


def test_crossvalidated_rsa_uses_the_test_repeats(tmp_path):
    """Crossnobis ROI RDMs over the test trials' repeats (noise-normalised), compared with the spaces' RDMs."""
    from scene2brain.data.storage import load_experiment
    from scene2brain.representation import crossvalidated_rdm

    config = write_config(
        tmp_path, {"rsa": {**RSA_SECTION, "crossvalidated": True, "distance": "euclidean", "rois": ["EV"]}}
    )
    result = run_config(config, progress=False)
    table = read_results(result.output).table(RSA)
    assert set(table["roi"]) == {"EV"} and table["similarity"].notna().all()
    # the EV RDM equals cross-validated Euclidean distances computed directly from the trials
    experiment = load_experiment(result.output / "stages" / "experiment" / "sim01" / "experiment")
    trials = experiment.trials_in_split("test")
    test = np.load(result.output / "stages" / "responses" / "sim01" / "test_stimuli.npy")
    position = {int(v): i for i, v in enumerate(test)}
    conditions = np.array([position[int(v)] for v in experiment.responses.trial_stimulus[trials]])
    partitions = np.zeros(len(conditions), dtype=int)
    for c in np.unique(conditions):
        partitions[conditions == c] = np.arange((conditions == c).sum())
    ev = (experiment.voxels["roi"] == "EV").to_numpy()
    direct, _ = crossvalidated_rdm(experiment.responses.data[trials][:, ev].astype(np.float64), conditions, partitions)
    stored = np.load(result.output / "stages" / "rsa" / "sim01" / "rdms.npz")
    assert np.allclose(stored["rdms"][0], direct, rtol=1e-4, atol=1e-6)
    # the display labels are the stimuli's classes (rsa.labels), not the condition order of the crossnobis RDM
    classes = set(experiment.stimuli.table["coarse_class"])
    assert len(stored["labels"]) == len(test) and set(stored["labels"]) <= classes
