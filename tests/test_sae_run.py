"""Sparse autoencoders in a run: configuration, the stage against a direct fit, tables, FDR, checks."""

import json

import numpy as np
import pandas as pd
import pytest
from run_fixtures import write_config
from scipy import stats
from sklearn.metrics import r2_score

from scene2brain.data import load_experiment
from scene2brain.pipeline.analyses.ground_truth import sae_checks
from scene2brain.pipeline.analyses.sae import (
    _held_out_r2,
    _label_analyses,
    ceiling_of_fewer_repeats,
    positive_class,
    sae_id,
)
from scene2brain.pipeline.config import ConfigError
from scene2brain.pipeline.run import run_config
from scene2brain.representation import SparseAutoencoder
from scene2brain.results import SAE, SAE_EMBEDDING, SAE_LATENTS, SAE_SEPARABILITY, read_results

SAE_SECTION = {
    "rois": ["SPARSE", "FACE"],
    "labels": ["face"],
    "seeds": [0, 1],
    "n_permutations": 19,
    "cv": 3,
    "decoder": "ridge",
    "models": [{"name": "dict", "options": {"n_latents": 6, "max_epochs": 20, "l1": 0.05, "lr": 0.01}}],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sae_run")
    config = write_config(folder, {"sae": SAE_SECTION})
    result = run_config(config, progress=False)
    return result, read_results(result.output)


def test_sae_table_has_one_row_per_model_and_seed(run):
    _, results = run
    table = results.table(SAE)
    required = {"subject", "roi", "model", "n_latents", "sparsity", "recon_r2_test", "dead_units", "separability",
                "separability_p", "recovery", "recovery_pca", "recovery_ica", "split"}  # fmt: skip
    assert required <= set(table.columns)
    assert list(table["seed"]) == [0, 1] and set(table["model"]) == {"dict"}
    assert (table["roi"] == "FACE+SPARSE").all() and (table["split"] == "test").all()
    assert (table["n_latents"] == 6).all()
    assert table["sparsity"].between(0, 1).all() and table["recon_r2_test"].notna().all()
    assert table["separability_p"].between(1 / 20, 1).all()


def test_the_stage_is_a_fit_on_the_training_responses_only(run):
    result, _ = run
    stage = sae_id("sim01", "dict", 1).folder(result.output)
    responses = result.output / "stages" / "responses" / "sim01"
    voxels = pd.read_parquet(responses / "voxels.parquet")
    keep = voxels["roi"].isin(["SPARSE", "FACE"]).to_numpy()
    np.testing.assert_array_equal(np.load(stage / "voxel_index.npy"), np.flatnonzero(keep))
    x_train = np.load(responses / "train.npy")[:, keep].astype(np.float64)
    groups = np.load(responses / "train_groups.npy")
    direct = SparseAutoencoder(**SAE_SECTION["models"][0]["options"], random_state=1, device="cpu")
    direct.fit(x_train, groups=groups)
    np.testing.assert_allclose(np.load(stage / "dictionary.npy"), direct.dictionary_voxels(), rtol=1e-5, atol=1e-6)
    x_test = np.load(responses / "test.npy")[:, keep].astype(np.float64)
    np.testing.assert_allclose(np.load(stage / "recon_r2.npy"), direct.reconstruction_r2(x_test), atol=1e-6)
    record = json.loads((stage / "sae.json").read_text())
    assert record["n_train"] == len(x_train) and record["n_test"] == len(x_test)
    # cross-repeat: the first showing of each test stimulus reconstructed, scored against the mean of the others
    experiment = load_experiment(result.output / "stages" / "experiment" / "sim01" / "experiment")
    test_stim = np.load(responses / "test_stimuli.npy")
    first, rest = [], []
    for stimulus in test_stim:
        rows = experiment.responses.data[experiment.responses.trial_stimulus == stimulus][:, keep].astype(np.float64)
        first.append(rows[0])
        rest.append(rows[1:].mean(axis=0))
    expected = r2_score(np.array(rest), direct.reconstruct(np.array(first)), multioutput="raw_values")
    assert record["recon_r2_cross"] == pytest.approx(np.median(expected), abs=1e-5)
    assert record["recon_nnr2_cross"] is not None


def test_the_ceiling_of_fewer_repeats_follows_the_ncsnr():
    snr2 = np.array([0.25, 1.0, 4.0])
    for n in (2, 3, 5):
        nc_n = snr2 / (snr2 + 1 / n)
        np.testing.assert_allclose(ceiling_of_fewer_repeats(nc_n, n), snr2 / (snr2 + 1 / (n - 1)))
    assert np.isnan(ceiling_of_fewer_repeats(np.array([np.nan, 0.0]), 3)).all()


def test_latent_p_values_are_fdr_corrected_across_models_and_seeds(run):
    _, results = run
    latents = results.table(SAE_LATENTS)
    assert set(latents["seed"]) == {0, 1} and (latents["label"] == "face").all()
    assert (latents["positive"] == "face").all()  # the class named like the column
    tested = latents["p_permutation"].notna()
    expected = stats.false_discovery_control(latents.loc[tested, "p_permutation"].to_numpy())
    np.testing.assert_allclose(latents.loc[tested, "p_fdr_across"], expected)
    separability = results.table(SAE_SEPARABILITY)
    assert set(separability["code"]) == {"sae", "pca", "ica", "nmf", "voxels"}


def test_one_embedding_of_every_class_with_the_test_stimuli_placed(run):
    _, results = run
    embedding = results.table(SAE_EMBEDDING)
    assert set(embedding["seed"]) == {0}  # the first seed only
    facts = results.facts["subjects"]["sim01"]
    assert (embedding["split"] == "train").sum() == facts["n_train"]
    assert (embedding["split"] == "test").sum() == facts["n_test"]
    assert embedding.loc[embedding["split"] == "test", "placed"].all()
    train = embedding[embedding["split"] == "train"]
    assert set(train["label"]) == {"face", "nonface"}  # both classes in the one fitted map
    assert not set(train["stimulus"]) & set(embedding.loc[embedding["split"] == "test", "stimulus"])


def _sae_rows(recovery=0.9, pca=0.4, ica=0.6, roi="FACE"):
    return pd.DataFrame(
        [
            {"model": "dict", "seed": seed, "roi": "FACE+SPARSE", "recovery": recovery, "recovery_pca": pca,
             "recovery_ica": ica, "selective_roi[face]": roi}
            for seed in (0, 1, 2)
        ]
    )  # fmt: skip


def _status(checks, check_id):
    return next(c["status"] for c in checks.values() if c["id"] == check_id)


def test_sae_checks_pass_on_the_truth_and_fail_on_broken_inputs():
    good = sae_checks(_sae_rows())
    assert _status(good, "sae-recovery") == "pass" and _status(good, "sae-face") == "pass"
    assert _status(sae_checks(_sae_rows(recovery=0.7)), "sae-recovery") == "fail"  # below the threshold
    assert _status(sae_checks(_sae_rows(ica=0.95)), "sae-recovery") == "fail"  # ICA does better
    one_bad = _sae_rows()
    one_bad.loc[2, "recovery"] = np.nan  # one seed without a number fails, it does not pass silently
    assert _status(sae_checks(one_bad), "sae-recovery") == "fail"
    assert _status(sae_checks(_sae_rows(roi="SPARSE")), "sae-face") == "fail"  # the face latent elsewhere
    assert _status(sae_checks(_sae_rows(roi=None)), "sae-face") == "fail"  # no face-selective latent found
    no_truth = _sae_rows().drop(columns=["recovery"])
    assert _status(sae_checks(no_truth), "sae-recovery") == "not run"
    no_face = _sae_rows().drop(columns=["selective_roi[face]"])
    assert _status(sae_checks(no_face), "sae-face") == "not run"
    assert {c["status"] for c in sae_checks(None).values()} == {"disabled"}


def test_positive_class_rules():
    assert positive_class(np.array(["face", "nonface"]), "face", {}) == "face"
    assert positive_class(np.array(["a", "b"]), "kind", {}) == "b"
    assert positive_class(np.array(["a", "b", "c"]), "kind", {}) is None
    assert positive_class(np.array(["a", "b", "c"]), "kind", {"kind": "a"}) == "a"
    with pytest.raises(ConfigError, match=r"sae\.positive"):
        positive_class(np.array(["a", "b"]), "kind", {"kind": "z"})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"models": [{"name": "a", "options": {"bogus": 1}}]}, "not sparse-autoencoder options"),
        ({"models": [{"name": "a", "options": {"architecture": "vae"}}]}, "architecture"),
        ({"models": [{"name": "a", "options": {"sparsity": "topk", "k": 9, "n_latents": 4}}]}, "k:"),
        ({"models": [{"name": "a"}, {"name": "a"}]}, "each name once"),
        ({"labels": ["face"], "positive": {"kind": "a"}}, "positive: ['kind'] are not columns of sae.labels"),
        ({"decoder": "forest"}, "sae.decoder"),
        ({"seeds": [0, 0]}, "each seed once"),
        ({"embedding": "pca"}, "sae.embedding"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_sae_sections_are_refused_before_anything_runs(tmp_path, values, message):
    with pytest.raises(ConfigError) as err:
        write_config(tmp_path, {"sae": values})
    assert message in str(err.value)


def test_unknown_sae_roi_and_label_name_the_key(tmp_path):
    config = write_config(tmp_path, {"sae": {**SAE_SECTION, "labels": ["species"]}})
    with pytest.raises(ConfigError, match=r"sae.labels.*species"):
        run_config(config, progress=False)
    config = write_config(tmp_path, {"sae": {**SAE_SECTION, "rois": ["V9"]}})
    with pytest.raises(ConfigError, match=r"sae.rois.*V9"):
        run_config(config, progress=False)


def test_baseline_reconstruction_is_scored_out_of_sample():
    """Codes unrelated to the responses reconstruct nothing of held-out rows (in-sample they would, by chance)."""
    rng = np.random.default_rng(0)
    x_train, x_test = rng.standard_normal((300, 50)), rng.standard_normal((200, 50))
    codes_train, codes_test = rng.standard_normal((300, 12)), rng.standard_normal((200, 12))
    assert np.median(_held_out_r2([x_train, x_test], codes_train, codes_test)) < 0
    in_sample = _held_out_r2([x_test, x_test], codes_test, codes_test)
    assert np.median(in_sample) > 0.03  # what fitting the decoder on the scored rows would report


def test_a_continuous_label_column_is_refused():
    rng = np.random.default_rng(0)
    z = rng.random((60, 4))
    settings = {"label": "size", "positive": {}, "n_permutations": 0, "seed": 0, "decoder": "ridge", "cv": 3}
    with pytest.raises(ConfigError, match=r"sae\.labels: 'size' has 30 classes"):
        _label_analyses(settings, {"sae": z}, z, np.repeat(np.arange(30).astype(str), 2), np.arange(60).astype(str))
