"""`scene2brain run`: stages computed once, a changed setting recomputes exactly its dependents."""

import json
import tomllib

import numpy as np
import pandas as pd
import pytest
import tomli_w
from run_fixtures import SMALL, write_config
from typer.testing import CliRunner

from scene2brain.cli import app
from scene2brain.evaluation.metrics import pearson_r
from scene2brain.evaluation.noise_ceiling import noise_normalised_accuracy
from scene2brain.pipeline.config import ConfigError, load_config
from scene2brain.pipeline.run import run_config


def kinds(names):
    """Stage names without the subject: 'encode/sim01/effnet:head' -> 'encode/effnet:head'."""
    return sorted("/".join(part for part in n.split("/") if not part.startswith("sim0")) for n in names)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    return folder, run_config(write_config(folder), progress=False)


def test_first_run_computes_every_stage_and_writes_the_results_store(first_run):
    folder, result = first_run
    assert result.skipped == []
    spaces = ["gabor:energy", "effnet:_blocks.2", "effnet:head"]
    # One feature stage per model; the simulation's drivers differ from the configured spaces here (Gabor at
    # 64 px, PCA to 64), so they get their own stages, which find the shared layer (head) in the feature store.
    features = ["features/gabor", "features/effnet", "features/sim-gabor", "features/sim-driver"]
    assert kinds(result.computed) == sorted(
        ["stimuli", *features, "experiment", "responses", "noise_ceiling", "tables"]
        + [f"{k}/{s}" for k in ("encode", "scores", "identification") for s in spaces]
    )
    out = folder / "results"
    assert load_config(out / "config.toml").spaces() == spaces  # the resolved configuration reloads
    versions = json.loads((out / "provenance.json").read_text())["versions"]
    assert {"python", "scene2brain", "numpy", "torch"} <= set(versions)
    voxels = pd.read_parquet(out / "tables" / "voxels_sim01.parquet")
    assert len(voxels) == 80 and {"vertex", "noise_ceiling", "best_space", "alpha[effnet:head]"} <= set(voxels)
    pd.testing.assert_frame_equal(voxels, pd.read_csv(out / "tables" / "voxels_sim01.csv"), check_dtype=False)
    # The per-voxel table holds what the stage arrays hold, and scores recompute from them.
    stages = out / "stages"
    y_test = np.load(stages / "responses" / "sim01" / "test.npy")
    predictions = np.load(stages / "encode" / "sim01" / "effnet~head" / "predictions.npy")
    r = pearson_r(y_test, predictions)
    np.testing.assert_allclose(voxels["r[effnet:head]"], r, rtol=1e-6)
    nnacc = noise_normalised_accuracy(r, voxels["noise_ceiling"].to_numpy())
    np.testing.assert_allclose(voxels["nnacc[effnet:head]"], nnacc, rtol=1e-6)
    assert set(np.unique(voxels["alpha[effnet:head]"])) <= {1.0, 10.0, 100.0, 1000.0}
    roi = pd.read_parquet(out / "tables" / "roi_summary.parquet")
    row = roi[(roi["space"] == "effnet:head") & (roi["roi"] == "HV")].iloc[0]
    assert row["median"] == pytest.approx(np.nanmedian(nnacc[voxels["roi"] == "HV"]))
    assert row["ci_low"] <= row["median"] <= row["ci_high"]
    ident = pd.read_parquet(out / "tables" / "identification.parquet")
    assert set(ident["kind"]) == {"exact", "extrapolated"} and ident["n_candidates"].iloc[0] == 20


def test_rerun_does_no_work(first_run):
    folder, _ = first_run
    again = run_config(write_config(folder), progress=False)
    assert again.computed == []
    run = json.loads((folder / "results" / "run.json").read_text())
    assert run["computed"] == [] and len(run["skipped"]) == len(again.skipped)


def test_changed_settings_recompute_exactly_their_dependents(first_run):
    folder, _ = first_run
    spaces = ["gabor:energy", "effnet:_blocks.2", "effnet:head"]

    alphas = run_config(write_config(folder, {"encoder": {"alphas": [0.1, 1.0, 10.0]}}), progress=False)
    assert kinds(alphas.computed) == sorted(
        ["tables"] + [f"{k}/{s}" for k in ("encode", "scores", "identification") for s in spaces]
    )

    boots = run_config(write_config(folder, {"encoder": {"alphas": [0.1, 1.0, 10.0]}, "evaluation": {
        "n_bootstraps": 30, "identification": True, "identification_voxels": 40}}), progress=False)  # fmt: skip
    assert boots.computed == ["tables"]

    ceiling = run_config(
        write_config(folder, {"encoder": {"alphas": [0.1, 1.0, 10.0]}, "evaluation": {"noise_ceiling": "none",
            "n_bootstraps": 30, "identification": True, "identification_voxels": 40}}), progress=False,
    )  # fmt: skip
    assert kinds(ceiling.computed) == sorted(["noise_ceiling", "tables"] + [f"scores/{s}" for s in spaces])
    roi = pd.read_parquet(folder / "results" / "tables" / "roi_summary.parquet")
    assert set(roi["score"]) == {"r"}

    features = json.loads(json.dumps(SMALL["features"]))
    features[1]["layers"] = ["_blocks.2", "_blocks.6", "head"]
    layer = run_config(write_config(folder, {"features": features}), progress=False)
    new = "effnet:_blocks.6"
    # Back to the original encoder and evaluation: those stages are recomputed; the model's feature stage adds
    # the new layer (the others come from the feature store); nothing upstream of it is recomputed.
    assert not any(name.startswith(("stimuli", "experiment/", "responses/")) for name in layer.computed)
    assert "features/effnet" in layer.computed and "features/gabor" not in layer.computed
    assert f"encode/sim01/{new}" in layer.computed and "tables" in layer.computed

    again = run_config(write_config(folder, {"features": features}), progress=False)
    assert again.computed == []


def test_simulated_splits_are_checked_when_the_configuration_is_read(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"splits.test: 'val' is not a split of the simulated dataset; its splits: \['train', 'test'\]",
    ):
        write_config(tmp_path, {"splits": {"test": "val"}})
    assert not (tmp_path / "results").exists()


def test_cli_run_and_report(first_run, tmp_path):
    folder, _ = first_run
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(folder / "study.toml"), "--quiet"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "already done" in result.output and "All voxels" in result.output and "DISABLED sim01" in result.output
    # with the checks on, this tiny study cannot pass them (no calibration space: "not run"), and the run fails
    study = tmp_path / "checked.toml"
    study.write_text((folder / "study.toml").read_text().replace("skip_checks = [", "old_skip = ["))
    data = tomllib.loads(study.read_text())
    data["dataset"]["simulation"].pop("old_skip")
    data["run"]["output"] = str(folder / "results")
    data["run"]["cache"] = str(folder / "cache")
    study.write_text(tomli_w.dumps(data))
    result = runner.invoke(app, ["run", str(study), "--quiet"], terminal_width=200)
    assert result.exit_code == 1 and "NOT RUN sim01: CAL voxels" in result.output, result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[dataset]\nname = "simulated"\n[encoder]\nmodel = "bogus"\n')
    result = runner.invoke(app, ["run", str(bad)], terminal_width=200)
    assert result.exit_code == 2 and "encoder.model" in result.output and "features: required" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "nowhere")], terminal_width=200)
    assert result.exit_code == 2 and "results folder not found" in result.output


def test_two_subjects_three_spaces_compute_each_feature_matrix_once(tmp_path, monkeypatch):
    """Both simulated subjects share the stimulus set: one digest, one pass per extractor, drivers from the store."""
    from collections import Counter

    from scene2brain.data.images import ImageSource
    from scene2brain.features.gabor import GaborExtractor
    from scene2brain.features.models import FeatureModel

    rows: Counter = Counter()
    calls: Counter = Counter()
    digests = []

    def counting(batches):
        def wrapper(self, source, poolings, *args, **kwargs):
            name = self.name if isinstance(self, FeatureModel) else f"gabor@{self.pyramid.image_size}"
            calls[name] += 1
            for start, block in batches(self, source, poolings, *args, **kwargs):
                for layer, values in block.items():
                    rows[name, layer] += len(values)
                yield start, block

        return wrapper

    compute_digest = ImageSource._compute_digest

    def counting_digest(self):
        digests.append(type(self).__name__)
        return compute_digest(self)

    monkeypatch.setattr(FeatureModel, "batches", counting(FeatureModel.batches))
    monkeypatch.setattr(GaborExtractor, "batches", counting(GaborExtractor.batches))
    monkeypatch.setattr(ImageSource, "_compute_digest", counting_digest)
    config = write_config(tmp_path, {"dataset": {"subjects": [1, 2]}, "evaluation": {"identification": False}})
    result = run_config(config, progress=False)
    assert kinds(result.computed).count("experiment") == 2 and "encode/effnet:head" in kinds(result.computed)
    n = SMALL["dataset"]["simulation"]["n_stimuli"]
    # the configured spaces (Gabor at 32 px, two network layers) and the simulation's Gabor driver (64 px); the
    # driver layer (head) is one of the configured layers, so the driver's own stage reads it from the store
    assert rows == {("efficientnet-lite0", "_blocks.2"): n, ("efficientnet-lite0", "head"): n,
                    ("gabor@32", "energy"): n, ("gabor@64", "energy"): n}  # fmt: skip
    assert calls == {"efficientnet-lite0": 1, "gabor@32": 1, "gabor@64": 1}
    assert digests == ["ArrayImages"]  # the stimulus set, once; recorded with it and reused by every stage
    voxels = [pd.read_parquet(tmp_path / "results" / "tables" / f"voxels_sim0{s}.parquet") for s in (1, 2)]
    assert not np.allclose(voxels[0]["r[effnet:head]"], voxels[1]["r[effnet:head]"])  # two different subjects


def test_pca_spaces_are_not_whitened_and_layers_are_chosen_on_training_cv(first_run):
    folder, _ = first_run
    out = folder / "results"
    train = np.load(out / "stages" / "responses" / "sim01" / "train_stimuli.npy")
    X = np.load(out / "stages" / "features" / "effnet" / "head" / "features.npy")
    sd = X[train].std(axis=0)
    assert sd.max() > 2 * sd.min()  # PCA scores keep their variances; z-scoring them would make ridge ~ OLS
    gabor = np.load(out / "stages" / "features" / "gabor" / "energy" / "features.npy")
    np.testing.assert_allclose(gabor[train].std(axis=0), 1, rtol=1e-3)  # "standardise" z-scores
    roi = pd.read_parquet(out / "tables" / "roi_summary.parquet")
    best = pd.read_parquet(out / "tables" / "model_summary.parquet")
    for _, row in best.iterrows():
        rows = roi[(roi["subject"] == row["subject"]) & (roi["model"] == row["model"]) & (roi["roi"] == row["roi"])]
        assert row["layer"] == rows.loc[rows["median_cv"].idxmax(), "layer"]  # chosen on training CV, not on test
    voxels = pd.read_parquet(out / "tables" / "voxels_sim01.parquet")
    cv = voxels[[c for c in voxels if c.startswith("cv[")]].to_numpy()
    names = np.array([c[3:-1] for c in voxels if c.startswith("cv[")])
    np.testing.assert_array_equal(voxels["best_space"], names[np.argmax(cv, axis=1)])


def test_noise_ceiling_zero_and_all_nan_voxels_are_counted_and_flagged():
    from scene2brain.pipeline.analyses.encoding import _best_columns, _roi_rows

    rng = np.random.default_rng(0)
    spaces = [("a:x", "a", "x", 0), ("a:y", "a", "y", 1)]
    voxels = pd.DataFrame({"roi": ["V1", "V1", "V2", "V2"], "noise_ceiling": [0.0, 0.5, 0.4, 0.3]})
    for quantity, values in (
        ("nnacc", [[100, 50, np.nan, 20], [90, 40, np.nan, 30]]),
        ("cv", [[0.1, 0.2, np.nan, 0.1], [0.2, 0.1, np.nan, 0.3]]),
        ("alpha", [[1.0] * 4] * 2),
    ):
        for (space, *_), column in zip(spaces, values, strict=True):
            voxels[f"{quantity}[{space}]"] = column  # fmt: skip
    _best_columns(voxels, "nnacc", spaces)
    assert list(voxels["best_space"]) == ["a:y", "a:x", "", "a:y"]  # by CV; no choice without a CV score
    np.testing.assert_array_equal(voxels["best_score"], [90, 50, np.nan, 30])  # the chosen space's test score
    assert list(voxels["nc_zero"]) == [True, False, False, False] and list(voxels["all_nan"]) == [0, 0, 1, 0]
    masks = {"V1": np.array([1, 1, 0, 0], bool), "V2": np.array([0, 0, 1, 1], bool)}
    values = {"nnacc": voxels["nnacc[a:x]"].to_numpy(), "r": rng.random(4), "alpha": np.ones(4),
              "cv": voxels["cv[a:x]"].to_numpy()}  # fmt: skip
    y = rng.standard_normal((10, 4))
    settings = {"n_bootstraps": 0, "confidence": 0.95, "seed": 0}
    rows = _roi_rows(y, y, voxels["noise_ceiling"].to_numpy(), "nnacc", masks, values, settings).set_index("roi")
    assert rows.loc["V1", "n_nc_zero"] == 1 and rows.loc["V2", "n_nc_zero"] == 0
    assert rows.loc["V2", "n_nan"] == 1 and rows.loc["V2", "median"] == 20  # the NaN voxel is counted, not scored


def test_report_header_names_the_default_layers_of_an_entry_without_layers(tmp_path):
    from scene2brain.pipeline.config import parse_config
    from scene2brain.report.html import _header
    from scene2brain.results import Results, ResultsLayout

    config = parse_config(SMALL).to_dict()  # the Gabor entry names no layers: it has one, "energy"
    facts = {"subjects": {"sim01": {"n_train": 100, "n_test": 20, "n_voxels": 80}}}
    header = _header(Results(ResultsLayout(tmp_path), config, {}, facts))
    assert "= gabor [energy] pool" in header and "[_blocks.2, head]" in header


# -- a failed or killed run changes nothing; one run at a time writes a folder ----------------------------------------


def failing_tables(ctx):
    """A tables stage that fails (a full disk, a bug) after the run has recomputed other stages."""
    raise OSError(28, "No space left on device", str(ctx.out))


def _snapshot(folder):
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


def test_a_failed_run_puts_back_the_stages_it_recomputed(first_run, monkeypatch):
    import scene2brain.pipeline.report as report

    folder, _ = first_run
    out = folder / "results"
    before = _snapshot(out)
    monkeypatch.setattr(report, "compute_tables", failing_tables)
    with pytest.raises(OSError, match="No space left"):
        # new alphas: the encode and scores stages are recomputed, then the tables stage fails
        run_config(write_config(folder, {"encoder": {"alphas": [0.5, 5.0]}}), progress=False)
    assert _snapshot(out) == before  # config.toml, provenance.json, run.json and every stage as they were
    assert not [p for p in out.rglob(".*") if p.name != ".lock"]  # no temporaries, no folders moved aside


def test_recover_folder_undoes_what_a_killed_run_left(tmp_path):
    from scene2brain.pipeline.executor import recover_folder

    stage = tmp_path / "stages" / "encode" / "sim01" / "a"
    stage.mkdir(parents=True)
    (stage / "new.npy").write_text("recomputed by the killed run")
    earlier = stage.with_name(".a.prev")
    earlier.mkdir()
    (earlier / "old.npy").write_text("the earlier run's")
    (stage.parent / ".b.x1y2.tmp").mkdir()  # a stage being computed when the run was killed
    (tmp_path / ".tables.prev").mkdir()  # the earlier tables, moved aside; the killed run had not written new ones
    (tmp_path / ".config.toml.abc.tmp").write_text("half")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / ".entry.q.tmp").mkdir()  # the feature store's: another run may be writing it
    recover_folder(tmp_path, [tmp_path / "tables", tmp_path / "report"])
    assert [p.name for p in stage.iterdir()] == ["old.npy"]
    assert not earlier.exists() and not (stage.parent / ".b.x1y2.tmp").exists()
    assert (tmp_path / "tables").is_dir() and not (tmp_path / ".config.toml.abc.tmp").exists()
    assert (tmp_path / "cache" / ".entry.q.tmp").is_dir()


def test_a_split_without_responses_for_some_stimuli_is_refused(small_experiment):
    """The check used to ask whether any trial was in the split; the responses stage then failed with a KeyError."""
    from scene2brain.data import Experiment
    from scene2brain.pipeline.plan import check_splits

    e = small_experiment
    partial = Experiment(e.subject, e.stimuli, e.responses, {"train": [0, 1, 2], "test": [3, 4, 5]})
    keep = np.isin(e.responses.trial_stimulus, [0, 1, 2, 4, 5])  # stimulus 3 (test) has no trial
    from scene2brain.data import Responses

    r = Responses(e.responses.data[keep], e.responses.trial_stimulus[keep], e.responses.voxels)
    partial = Experiment(e.subject, e.stimuli, r, {"train": [0, 1, 2], "test": [3, 4, 5]})
    with pytest.raises(ConfigError, match=r"splits.test: split 'test' of sub01 has no measured responses for 1 of"):
        check_splits(partial, {"train": "train", "test": "test"}, "sub01")
    check_splits(partial, {"train": "train", "test": "train"} | {"test": "train"}, "sub01")  # train: all measured


def test_a_split_of_one_stimulus_is_refused_before_any_stage(small_experiment):
    """A one-image test split used to run every stage and fail in the scoring ('y_true: need at least 2')."""
    from scene2brain.data import Experiment
    from scene2brain.pipeline.plan import check_splits

    e = small_experiment
    one = Experiment(e.subject, e.stimuli, e.responses, {"train": [0, 1, 2, 3], "test": [4], "val": [5]})
    with pytest.raises(ConfigError, match=r"splits.test: split 'test' of sub01 holds 1 stimuli; .*at least 2"):
        check_splits(one, {"train": "train", "test": "test"}, "sub01")


TINY = """[run]
output = "results"
cache = "cache"
[dataset]
name = "simulated"
[dataset.simulation]
n_stimuli = 60
n_voxels = 20
image_size = 32
gabor_size = 16
n_components = 4
driver_model = "gabor"
driver_layer = "energy"
skip_checks = {checks}
[[features]]
name = "gabor"
model = "gabor"
options = {{ image_size = 16 }}
reduction = "standardise"
[encoder]
alphas = [1.0, 100.0]
cv = 2
[evaluation]
n_bootstraps = 5
[report]
enabled = false
"""


def _tiny(folder):
    from scene2brain.pipeline.config import GROUND_TRUTH_CHECKS

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.toml").write_text(TINY.format(checks=json.dumps(list(GROUND_TRUTH_CHECKS))))
    return folder / "study.toml"


def _command(study):
    import shutil
    import sys

    exe = shutil.which("scene2brain") or sys.executable
    return [exe, "run", str(study), "--quiet"] if exe.endswith("scene2brain") else [exe, "-m", "scene2brain.cli"]


def _results(out):
    """Every result file (arrays and tables; not the records with times and paths) and its bytes."""
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and p.suffix in (".npy", ".parquet", ".csv")}  # fmt: skip


@pytest.mark.slow
def test_kill_9_during_a_run_then_rerun_gives_the_uninterrupted_results(tmp_path):
    import subprocess
    import time

    reference = _tiny(tmp_path / "reference")
    subprocess.run(_command(reference), check=True, capture_output=True)
    study = _tiny(tmp_path / "killed")
    out = study.parent / "results"
    process = subprocess.Popen(_command(study), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if list((out / "stages").glob("*/**/.*.tmp")):  # a stage is being written
            break
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert not (out / "run.json").exists() and not (out / "config.toml").exists()  # killed mid-run
    subprocess.run(_command(study), check=True, capture_output=True)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.prev"))
    expected = _results(reference.parent / "results")
    assert _results(out).keys() == expected.keys() and len(expected) > 10
    assert [name for name, content in _results(out).items() if content != expected[name]] == []


@pytest.mark.slow
def test_two_concurrent_runs_into_one_folder_both_finish_with_one_result(tmp_path):
    import subprocess

    study = _tiny(tmp_path)
    runs = [subprocess.Popen(_command(study), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    computed = sorted(int(out.split(" stages computed")[0].split()[-1]) for out, _ in outputs)
    assert computed[0] == 0 and computed[1] > 0  # the second waited for the first, then found everything done
    assert any("waiting for another run" in err for _, err in outputs)
    out = tmp_path / "results"
    record = json.loads((out / "run.json").read_text())
    assert record["computed"] == [] and not list(out.rglob("*.tmp"))
    assert load_config(out / "config.toml") == load_config(study)
